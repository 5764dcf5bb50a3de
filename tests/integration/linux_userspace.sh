#!/bin/bash
# linux_userspace.sh: Debian's 6.1 kernel (scripts/setup.sh --test) with the busybox initramfs
# of scripts/mkinitramfs.sh, entered directly: /init prints KHYVE-USERSPACE-OK (busybox is
# glibc-static: SSE2 string functions, x87 from the kernel's FXSAVE-leak workaround on an
# AMD-signature CPU) and ends the guest with `poweroff -f` (khyve exits 1) or `reboot -f`
# (exits 0). Runs 1 vCPU/poweroff and 2 vCPUs/reboot; SLOW=1 (make check-slow) adds the other
# two combinations. About 10 s per boot on the software CPU here (2 host cores); sanitizer
# builds (BUILD=*asan*) get a longer time limit. Under KVM the boots run with accel_stats=true
# and print what khyve's software CPU emulated for KVM (issue: the fallback on kvm_pvm).
. "$(dirname "$0")/lib.sh"
data=${KHYVE_TESTDATA:-/var/cache/khyve}
kernel=$(ls "$data"/kernel/boot/vmlinuz-* 2>/dev/null | head -n 1)
initrd=$LOGDIR/initramfs.cpio.gz
if [ -z "$kernel" ]; then
	echo "not ok linux_userspace: no kernel in $data/kernel/boot (run scripts/setup.sh --test)"
	FAILED=$((FAILED + 1))
	finish
	exit
fi
if ! "$(dirname "$0")/../../scripts/mkinitramfs.sh" "$initrd"; then
	echo "not ok linux_userspace: scripts/mkinitramfs.sh failed (busybox-static installed?)"
	FAILED=$((FAILED + 1))
	finish
	exit
fi
combos="1:poweroff:1 2:reboot:0"
[ "${SLOW:-0}" = 1 ] && combos="$combos 2:poweroff:1 1:reboot:0"
case "$BUILD" in
*asan*) tmo=${LINUX_USERSPACE_TIMEOUT:-900} ;;
*) tmo=${LINUX_USERSPACE_TIMEOUT:-240} ;;
esac
for accel in $ACCELS; do
	# under KVM, say what the software CPU ran for it (kvm_pvm refuses FNINIT, SSE, ...)
	stats=()
	[ "$accel" = kvm ] && stats=(-o accel_stats=true)
	for c in $combos; do
		IFS=: read -r cpus end want <<<"$c"
		check "userspace_c${cpus}_$end" "$accel" "$want" 'KHYVE-USERSPACE-OK' "$tmo" -- \
			-s 0,hostbridge -s 31,lpc -l com1,stdio -c "$cpus" -m 512M -A \
			"${stats[@]}" -o boot.kernel="$kernel" -o boot.initrd="$initrd" \
			-o boot.cmdline="console=ttyS0 panic=-1 khyve.end=$end" \
			linuxguest
		[ "$accel" = kvm ] && grep -h 'accel_stats' "$LOGDIR/userspace_c${cpus}_$end.kvm.log" |
			sed 's/^/    # /'
	done
done
finish
