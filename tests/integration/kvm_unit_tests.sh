#!/bin/bash
# kvm_unit_tests.sh: run the x86_64 tests of a built kvm-unit-tests tree under khyve, the way
# its own runner (run_tests.sh, x86/run) runs them under QEMU: x86/unittests.cfg gives each
# test's .flat (a multiboot kernel), -smp, test_args (the multiboot command line) and
# qemu_params (-cpu flags and -m become khyve options where khyve has them); khyve boots it with
# -l pc-testdev and an environment module (boot.initrd) that replaces QEMU's fw_cfg.
# Verdicts follow kvm-unit-tests: exit 1 = PASS (report_summary 0 through the 0xF4 port),
# 77 = SKIP (all skipped), 3 = FAIL, 127 = abort (unhandled exception), a timeout = FAIL.
# A test that needs what khyve cannot give (VMX/SVM, KVM-only devices or CPU models, an i386
# build, host KVM parameters, "nodefault" manual tests) prints "SKIP NAME: needs X".
# SKIPs count neither way. The tree is never part of this repository: set
#   KVM_UNIT_TESTS=/path/to/kvm-unit-tests   (built with ./configure && make, x86_64)
#   KUT_TESTS="realmode emulator ..."        only these tests (names or shell globs)
#   KUT_TIMEOUT=N                            seconds per test instead of the cfg's (default 90)
#   KUT_LOGDIR=dir                           keep each test's serial and stderr logs there
# Without KVM_UNIT_TESTS it prints "not run: KVM_UNIT_TESTS not set" and counts nothing.
. "$(dirname "$0")/lib.sh"

if [ -z "${KVM_UNIT_TESTS:-}" ]; then
	echo "not run: KVM_UNIT_TESTS not set (point it at a built kvm-unit-tests tree)"
	echo "0 passed, 0 failed"
	exit 0
fi
KUT=$KVM_UNIT_TESTS
CFG=$KUT/x86/unittests.cfg
if [ ! -r "$CFG" ] || [ ! -d "$KUT/x86" ]; then
	echo "not ok kvm-unit-tests: $CFG not found (KVM_UNIT_TESTS=$KUT)"
	echo "0 passed, 1 failed"
	exit 1
fi
if [ -n "${KUT_LOGDIR:-}" ]; then
	mkdir -p "$KUT_LOGDIR" || exit 1
	LOGS=$KUT_LOGDIR
else
	LOGS=$LOGDIR
fi
SKIPPED=0

selected() {
	local pat
	[ -z "${KUT_TESTS:-}" ] && return 0
	for pat in $KUT_TESTS; do
		# shellcheck disable=SC2053
		[[ $1 == $pat ]] && return 0
	done
	return 1
}

# QEMU's -m: a number is MiB, with an optional k/m/g/t suffix. Prints MiB.
qemu_mem_mib() {
	local v=${1,,} n
	n=${v%[kmgt]}
	case $v in
	*g) echo $((n * 1024)) ;;
	*t) echo $((n * 1024 * 1024)) ;;
	*k) echo $((n / 1024)) ;;
	*) echo "$n" ;;
	esac
}

# Translate qemu_params into khyve options. Sets KARGS (array), MEM (MiB), NOTE (what khyve
# cannot match but the test may still run with) and NEED (why the test cannot run; empty if it can).
translate_params() {
	local -a p
	local i opt val f model
	local -a feats
	KARGS=()
	NOTE=""
	NEED=""
	eval "p=($1)"
	for ((i = 0; i < ${#p[@]}; i++)); do
		opt=${p[i]}
		val=${p[i + 1]:-}
		case $opt in
		-cpu)
			i=$((i + 1))
			model=${val%%,*}
			case $model in
			host) NEED="needs -cpu host (the host CPU model under KVM)"; return ;;
			esac
			[ "$model" = "$val" ] && continue
			IFS=, read -r -a feats <<<"${val#*,}"
			for f in "${feats[@]}"; do
				case $f in
				+vmx) NEED="needs VMX (nested virtualisation)"; return ;;
				+svm) NEED="needs SVM (nested virtualisation)"; return ;;
				+x2apic) KARGS+=(-x) ;;
				-x2apic) KARGS+=(-a) ;;
				hv_*) NEED="needs Hyper-V enlightenments ($f)"; return ;;
				host-phys-bits | host-phys-bits=* | migratable=*) ;;
				# what khyve's CPUID always has (its software CPU is AuthenticAMD)
				vendor=AuthenticAMD | +tsc-deadline) ;;
				*) NOTE="$NOTE${NOTE:+, }cpu $f not selectable" ;;
				esac
			done
			;;
		-m)
			i=$((i + 1))
			MEM=$(qemu_mem_mib "$val")
			;;
		-enable-kvm)
			NEED="needs KVM (-enable-kvm)"
			return
			;;
		-machine | -M)
			i=$((i + 1))
			case $val in
			*vmport=on*) NEED="needs the VMware backdoor port (-machine vmport=on)"; return ;;
			q35*) NEED="needs QEMU's q35 machine (-M $val)"; return ;;
			*) NOTE="$NOTE${NOTE:+, }-machine $val ignored" ;;
			esac
			;;
		-device)
			i=$((i + 1))
			NEED="needs QEMU device ${val%%,*}"
			return
			;;
		-overcommit | -global)
			i=$((i + 1))
			NOTE="$NOTE${NOTE:+, }$opt $val ignored"
			;;
		-append)
			i=$((i + 1))
			CMDLINE="$CMDLINE${CMDLINE:+ }$val"
			;;
		*)
			NEED="needs QEMU option $opt"
			return
			;;
		esac
	done
}

# run_one ACCEL NAME FILE SMP TEST_ARGS QEMU_PARAMS TIMEOUT
run_one() {
	local accel=$1 name=$2 file=$3 smp=$4 targs=$5 qparams=$6 tmo=$7
	local out err env rc t0 t1 secs summary why
	local -a args
	MEM=128	# QEMU's default
	CMDLINE=""
	translate_params "$qparams"
	if [ -n "$NEED" ]; then
		echo "SKIP $name [$accel]: $NEED"
		SKIPPED=$((SKIPPED + 1))
		return
	fi
	if [ -n "$targs" ]; then
		eval "args=($targs)"
		CMDLINE="$CMDLINE${CMDLINE:+ }${args[*]}"
	fi
	# As QEMU's multiboot loader, the command line starts with the kernel's name (argv[0]).
	CMDLINE="x86/${file##*/}${CMDLINE:+ }$CMDLINE"
	out=$LOGS/$name.$accel.out
	err=$LOGS/$name.$accel.err
	env=$LOGS/$name.$accel.env
	# The environment module replaces fw_cfg (khyve has none): CPU count and RAM size.
	{
		echo "NR_CPUS=$smp"
		echo "MEMSIZE=$MEM"
		[ "$accel" = soft ] && echo "ERRATA_FORCE=y"
	} >"$env"
	local -a cmd=("$KHYVE" -o accel="$accel" -A -H -P -c "$smp" -m "${MEM}M"
		-s 0:0,hostbridge -s 31:0,lpc -l com1,stdio -l pc-testdev "${KARGS[@]}"
		-o boot.kernel="$file" -o boot.initrd="$env")
	cmd+=(-o boot.cmdline="$CMDLINE" "kut-$name")
	echo "${cmd[*]}" >"$LOGS/$name.$accel.cmd"
	t0=$(date +%s.%N)
	# khyve takes SIGTERM as the ACPI power button, which these guests ignore: KILL follows.
	# The subshell keeps bash from reporting the killed job.
	(timeout --kill-after=3 "$tmo" "${cmd[@]}" </dev/null >"$out" 2>"$err"; exit $?) 2>/dev/null
	rc=$?
	t1=$(date +%s.%N)
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
	summary=$(grep -a -m1 '^SUMMARY:' "$out" | tr -d '\r')
	why=$(grep -a -m1 '^FAIL' "$out" | tr -d '\r')
	case $rc in
	1)
		echo "PASS $name [$accel] (${secs} s)${summary:+ $summary}${NOTE:+ ($NOTE)}"
		PASSED=$((PASSED + 1))
		return
		;;
	77)
		echo "SKIP $name [$accel]: test skipped itself (${secs} s)${summary:+ $summary}${NOTE:+ ($NOTE)}"
		SKIPPED=$((SKIPPED + 1))
		return
		;;
	3)
		if [ -n "$summary" ] || grep -aq -- '--- DONE' "$out"; then
			why="$summary${why:+; first $why}"
		else
			why="triple fault or failure without summary: $(tail -n1 "$err")"
		fi
		;;
	124 | 137) why="timed out after ${tmo}s${why:+; first $why}" ;;
	127) why="aborted: $(grep -a -m1 -E 'Unhandled exception|Assertion|abort' "$out" | tr -d '\r')" ;;
	4) why="khyve error: $(grep -m1 '^khyve' "$err")" ;;
	2) why="guest halted (every vCPU HLT with interrupts off)${why:+; first $why}" ;;
	0) why="guest reset${why:+; first $why}" ;;
	*) why="exit $rc${summary:+, $summary}${why:+; first $why}" ;;
	esac
	echo "FAIL $name [$accel] (${secs} s): $why${NOTE:+ ($NOTE)}"
	tail -n 4 "$out" | tr -d '\r' | sed 's/^/    # /'
	grep -v '^khyve: using' "$err" | tail -n 3 | sed 's/^/    # stderr: /'
	FAILED=$((FAILED + 1))
}

# Each [section] of unittests.cfg, as NAME|file|smp|test_args|qemu_params|arch|groups|accel|timeout|check
parse_cfg() {
	awk '
	function flush() {
		if (name != "")
			print name "|" v["file"] "|" v["smp"] "|" v["test_args"] "|" v["params"] "|" \
			      v["arch"] "|" v["groups"] "|" v["accel"] "|" v["timeout"] "|" v["check"]
		delete v
	}
	/^[ \t]*#/ || /^[ \t]*$/ { next }
	/^\[.*\]/ { flush(); name = substr($0, 2, index($0, "]") - 2); next }
	{
		k = $0; sub(/[ \t]*=.*/, "", k); gsub(/^[ \t]+/, "", k)
		val = $0; sub(/^[^=]*=[ \t]*/, "", val); sub(/[ \t]+$/, "", val)
		if (k == "extra_params" || k == "qemu_params") k = "params"
		v[k] = val
	}
	END { flush() }' "$CFG"
}

for accel in $ACCELS; do
	while IFS='|' read -r name file smp targs params arch groups taccel tmo check; do
		selected "$name" || continue
		smp=${smp:-1}
		tmo=${KUT_TIMEOUT:-${tmo:-90}}
		tmo=${tmo%s}
		if [ -n "$arch" ] && [ "$arch" != x86_64 ]; then
			echo "SKIP $name [$accel]: needs an $arch build (configure --arch=$arch)"
		elif [[ " $groups " == *" nodefault "* ]]; then
			echo "SKIP $name [$accel]: manual test (group nodefault)"
		elif [ -n "$taccel" ] && [ "$taccel" != "$accel" ]; then
			echo "SKIP $name [$accel]: needs accel=$taccel"
		elif [ -n "$check" ]; then
			echo "SKIP $name [$accel]: needs the host setting $check"
		elif [ ! -r "$KUT/x86/$file" ]; then
			echo "SKIP $name [$accel]: x86/$file not built"
		else
			run_one "$accel" "$name" "$KUT/x86/$file" "$smp" "$targs" "$params" "$tmo"
			continue
		fi
		SKIPPED=$((SKIPPED + 1))
	done < <(parse_cfg)
done
echo "kvm-unit-tests: $PASSED pass, $FAILED fail, $SKIPPED skip"
finish
