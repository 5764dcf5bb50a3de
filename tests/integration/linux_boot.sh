#!/bin/bash
# linux_boot.sh: Debian's 6.1 kernel (unpacked by scripts/setup.sh --test), entered directly
# (the loader decompresses the bzImage payload on the host), prints its "Linux version" line on
# COM1, and its "DMI:" line shows the SMBIOS strings: bhyve's defaults, then the bios.*,
# system.* and board.* keys (with -Y, so SMBIOS sits where the MP table would). Runs on every
# accelerator available; shows how far the boot got.
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
	expect_line dmi_defaults "$accel" 'DMI: FreeBSD BHYVE/BHYVE, BIOS 14\.0 10/17/2021' 60 -- \
		-s 0,hostbridge -s 31,lpc -l com1,stdio -c 2 -m 256M -A \
		-o boot.kernel="$kernel" -o boot.cmdline="console=ttyS0 clearcpuid=cx16 panic=-1" \
		linuxguest
	expect_line dmi_keys "$accel" 'DMI: Acme Rocket 9/Board X, BIOS rel-7 01/02/2025' 60 -- \
		-s 0,hostbridge -s 31,lpc -l com1,stdio -m 256M -Y \
		-U 12345678-9abc-def0-0123-456789abcdef \
		-o system.manufacturer=Acme -o system.product_name="Rocket 9" \
		-o board.product_name="Board X" -o bios.version=rel-7 \
		-o bios.release_date=01/02/2025 \
		-o boot.kernel="$kernel" -o boot.cmdline="console=ttyS0 clearcpuid=cx16 panic=-1" \
		linuxguest
done
finish
