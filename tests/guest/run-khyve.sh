#!/bin/sh
# run-khyve.sh KHYVE [BUILD_DIR [ACCEL [NAME...]]]: boot every guest of guests.txt under khyve
# (accel soft by default), check its RESULT line, that no check failed, and khyve's exit status.
# Prints one line per guest and "N passed, N failed". The integration runner is tests/integration.
here=$(cd "$(dirname "$0")" && pwd)
khyve=${1:?usage: run-khyve.sh KHYVE [BUILD_DIR [ACCEL [NAME...]]]}
build=${2:-$here/../../build/guest}
accel=${3:-soft}
if [ $# -gt 3 ]; then shift 3; else set --; fi
names=$*
pass=0 fail=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT
while IFS='|' read -r name image cpus mem cmdline kexit _qcmd _qargs _qexit _known kargs; do
	case $name in ''|'#'*) continue ;; esac
	case " $names " in "  ") ;; *" $name "*) ;; *) continue ;; esac
	topo=$cpus
	for tok in $cmdline; do
		case $tok in sockets=* | cores=* | threads=*) topo="$topo,$tok" ;; esac
	done
	case $image in
	*.bin) set -- -l "bootrom,$build/$image" ;;
	*) set -- -A -o "boot.kernel=$build/$image" ;;
	esac
	[ -n "$cmdline" ] && set -- "$@" -o "boot.cmdline=$cmdline"
	# shellcheck disable=SC2086
	[ -n "$kargs" ] && set -- $kargs "$@"
	timeout 60 "$khyve" -o "accel=$accel" -c "$topo" -m "$mem" -s 0,hostbridge -s 31,lpc \
		-l com1,stdio "$@" testvm </dev/null >"$out" 2>&1
	rc=$?
	set --
	why=
	[ "$rc" = "$kexit" ] || why="exit $rc, want $kexit"
	grep -q '^RESULT: PASS' "$out" || why="${why:+$why; }no RESULT: PASS"
	if [ -z "$why" ]; then
		pass=$((pass + 1))
		echo "PASS $name"
	else
		fail=$((fail + 1))
		echo "FAIL $name: $why"
		sed 's/^/    /' "$out" | tail -25
	fi
done <"$here/guests.txt"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
