#!/bin/sh
# run-qemu.sh [BUILD_DIR [NAME...]]: boot every guest of guests.txt under QEMU (TCG, -M pc),
# check its RESULT line, the not-ok checks against the known QEMU differences, and QEMU's
# exit status. Prints one line per guest and "N passed, N failed".
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build/guest}
[ $# -gt 0 ] && shift
pass=0 fail=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT
while IFS='|' read -r name image cpus mem cmdline _kexit qcmd qargs qexit known _kargs; do
	case $name in ''|'#'*) continue ;; esac
	if [ $# -gt 0 ]; then
		want=0
		for n in "$@"; do [ "$n" = "$name" ] && want=1; done
		[ $want = 1 ] || continue
	fi
	[ -n "$qcmd" ] && cmdline=$qcmd
	[ "$cmdline" = - ] && cmdline=
	topo=$cpus
	for tok in $cmdline; do
		case $tok in sockets=* | cores=* | threads=*) topo="$topo,$tok" ;; esac
	done
	case $qargs in *-smp*) smp= ;; *) smp="-smp $topo" ;; esac
	case $image in
	*.bin) boot="-bios $build/$image" ;;
	*) boot="-kernel $build/$image" ;;
	esac
	limit=30
	[ "$qexit" = timeout ] && limit=5
	# shellcheck disable=SC2086
	timeout $limit qemu-system-x86_64 -M pc -accel tcg -nographic -no-reboot -m "$mem" $smp $qargs \
		-device isa-debug-exit,iobase=0xf4,iosize=4 $boot ${cmdline:+-append "$cmdline"} \
		</dev/null >"$out" 2>&1
	rc=$?
	why=
	if [ "$qexit" = timeout ]; then
		[ $rc = 124 ] || why="QEMU exited $rc, expected to keep running"
	elif [ "$rc" != "$qexit" ]; then
		why="QEMU exit $rc, want $qexit"
	fi
	grep -q '^RESULT: ' "$out" || why="${why:+$why; }no RESULT line"
	bad=$(sed -n 's/^not ok \([^:]*\).*/\1/p' "$out" | tr -d '\r')
	for b in $bad; do
		case " $known " in *" $b "*) ;; *) why="${why:+$why; }not ok $b" ;; esac
	done
	if [ -z "$why" ]; then
		pass=$((pass + 1))
		echo "PASS $name${known:+ (known QEMU failures: $known)}"
	else
		fail=$((fail + 1))
		echo "FAIL $name: $why"
		sed 's/^/    /' "$out" | tail -20
	fi
done <"$here/guests.txt"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
