#!/bin/bash
# kvm_fallback.sh: instructions KVM refuses to emulate run on khyve's software CPU. Where
# /dev/kvm opens, the cpuid_level guest (fninit, cmpxchg8b/16b, MMX, SSE..SSSE3 with their
# results) boots under accel=kvm with accel_stats=true: its checks pass and khyve reports
# what it emulated. On a KVM without hardware virtualization (kvm_pvm) every one of those
# instructions stops KVM, so the report must name fninit and cmpxchg16b. Without /dev/kvm
# this prints a skip line: the software CPU runs the same guest in guests.sh.
. "$(dirname "$0")/lib.sh"

case " $ACCELS " in
*" kvm "*) ;;
*)
	echo "skip kvm_fallback: /dev/kvm does not open here (the guest runs on soft in guests.sh)"
	finish
	exit $?
	;;
esac

stats='khyve: accel_stats: emulated by the software CPU: [0-9]+ instruction'
for model in khyve-v1 x86-64; do
	check "kvm_fallback_$model" kvm 1 '^RESULT: PASS' 60 -- -o cpu.model=$model \
		-o accel_stats=true -s 0,hostbridge -s 31,lpc -l com1,stdio -A \
		-o boot.kernel="$GUESTS/cpuid_level.elf" -o boot.cmdline="level=$model" vm
	log="$LOGDIR/kvm_fallback_$model.kvm.log"
	# with hardware virtualization KVM runs them all itself: the count may be 0
	want="$stats"
	if [ -d /sys/module/kvm_pvm ]; then
		want="$stats.*fninit"
		[ $model = khyve-v1 ] && want="$stats.*cmpxchg16b.*fninit|$stats.*fninit.*cmpxchg16b"
	fi
	if grep -qE "$want" "$log"; then
		echo "ok kvm_fallback_${model}_stats [kvm]: $(grep -E 'accel_stats' "$log")"
		PASSED=$((PASSED + 1))
	else
		echo "not ok kvm_fallback_${model}_stats [kvm]: no /$want/ line"
		grep -E 'accel_stats' "$log" | sed 's/^/    # /'
		FAILED=$((FAILED + 1))
	fi
done
finish
