#!/bin/bash
# linux_boot.sh: Debian's 6.1 kernel (unpacked by scripts/setup.sh --test), entered directly
# (the loader decompresses the bzImage payload on the host), prints its "Linux version" line on
# COM1. Runs on every accelerator available; shows how far the boot got.
. "$(dirname "$0")/lib.sh"
data=${KHYVE_TESTDATA:-/var/cache/khyve}
kernel=$(ls "$data"/kernel/boot/vmlinuz-* 2>/dev/null | head -n 1)
if [ -z "$kernel" ]; then
	echo "not ok linux_version: no kernel in $data/kernel/boot (run scripts/setup.sh --test)"
	FAILED=$((FAILED + 1))
	finish
	exit
fi
for accel in $ACCELS; do
	expect_line linux_version "$accel" 'Linux version 6\.1' 120 -- \
		-s 0,hostbridge -s 31,lpc -l com1,stdio -c 1 -m 512M -A \
		-o boot.kernel="$kernel" \
		-o boot.cmdline="console=ttyS0 earlyprintk=serial,ttyS0 clearcpuid=cx16 panic=-1" \
		linuxguest
done
finish
