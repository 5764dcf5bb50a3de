#!/bin/bash
# linux_virtio.sh: Linux's own virtio drivers (Debian's 6.1 modules virtio_pci, virtio_blk,
# virtio-rng, loaded by the busybox initramfs of scripts/mkinitramfs.sh --virtio) against
# khyve's virtio-blk on a file and virtio-rnd, through the modern interface and with
# virtio_pci.force_legacy=1. The host writes a marker line at the start of the disk and 1 MiB of
# random data at 4 MiB; the guest prints the marker, writes its own at 1 MiB and copies the
# 4 MiB block to 8 MiB (dd conv=fsync), reads /dev/hwrng and powers off (exit 1); the host
# finds both in the file. Then the same guest as the writer of the kill -9 durability test:
# khyve is killed as soon as the guest prints GUEST-FLUSHED. 1 vCPU; SLOW=1 (make check-slow)
# adds both interfaces with 2 vCPUs. 25-60 s per boot on the software CPU.
. "$(dirname "$0")/lib.sh"
data=${KHYVE_TESTDATA:-/var/cache/khyve}
kernel=$(ls "$data"/kernel/boot/vmlinuz-* 2>/dev/null | head -n 1)
initrd=$LOGDIR/initramfs-virtio.cpio.gz
img=$LOGDIR/disk.img
if [ -z "$kernel" ]; then
	echo "not ok linux_virtio: no kernel in $data/kernel/boot (run scripts/setup.sh --test)"
	FAILED=$((FAILED + 1))
	finish
	exit
fi
if ! "$(dirname "$0")/../../scripts/mkinitramfs.sh" --virtio "$data/kernel" "$initrd"; then
	echo "not ok linux_virtio: scripts/mkinitramfs.sh --virtio failed"
	FAILED=$((FAILED + 1))
	finish
	exit
fi
case "$BUILD" in
*asan*) tmo=${LINUX_USERSPACE_TIMEOUT:-900} ;;
*) tmo=${LINUX_USERSPACE_TIMEOUT:-240} ;;
esac

result() {	# NAME ACCEL WHY (empty: passed)
	if [ -z "$3" ]; then
		echo "ok $1 [$2]"
		PASSED=$((PASSED + 1))
	else
		echo "not ok $1 [$2]: $3"
		FAILED=$((FAILED + 1))
	fi
}

# A 16 MiB sparse disk: the host's marker line (with a random token) in sector 0, 1 MiB of
# random data at 4 MiB, zeros at 1 MiB and 8 MiB where the guest writes.
mkdisk() {
	rm -f "$img"
	truncate -s 16M "$img"
	token=KHYVE-HOST-MARKER-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
	echo "$token" | dd of="$img" conv=notrunc status=none
	head -c 1M /dev/urandom | dd of="$img" bs=1M seek=4 conv=notrunc status=none
}

# What the guest printed (WANT-VERSION1: 1 modern, 0 legacy; the hwrng line unless RNG is 0,
# as when khyve is killed before it) and what it left in the file.
verify() {	# LOG WANT-VERSION1 RNG
	local log=$1 v1=$2 rng=$3 marker
	if grep -q 'VIRTIO-FAIL' "$log"; then
		grep -m1 -o 'VIRTIO-FAIL.*' "$log" | tr -d '\r'
	elif ! grep -q "VIRTIO-DEV: virtio[0-9]* device=0x0002 version1=$v1" "$log"; then
		echo "no virtio-blk device with version1=$v1: $(grep -o 'VIRTIO-DEV.*' "$log" | tr -d '\r' | tr '\n' ' ')"
	elif ! grep -q "VIRTIO-DEV: virtio[0-9]* device=0x0004 version1=$v1" "$log"; then
		echo "no virtio-rng device with version1=$v1"
	elif ! grep -q "HOST-MARKER: $token" "$log"; then
		echo "the guest did not read the host's marker $token: $(grep -o 'HOST-MARKER.*' "$log" | tr -d '\r')"
	elif [ "$rng" = 1 ] && { ! grep -qE 'HWRNG: virtio_rng\.[0-9]+ [0-9a-f]{64}' "$log" ||
		grep -qE 'HWRNG: .* (00){32}' "$log"; }; then
		echo "no 32 bytes from /dev/hwrng: $(grep -o 'HWRNG.*' "$log" | tr -d '\r')"
	else
		marker=$(dd if="$img" bs=512 skip=2048 count=1 status=none | head -n 1 | tr -d '\0')
		case "$marker" in
		"KHYVE-GUEST-MARKER "*) ;;
		*) echo "the guest's marker is not at 1 MiB in the host file"; return ;;
		esac
		cmp -s <(dd if="$img" bs=1M skip=4 count=1 status=none) \
			<(dd if="$img" bs=1M skip=8 count=1 status=none) ||
			echo "the 1 MiB the guest copied from 4 MiB differs at 8 MiB in the host file"
	fi
}

ARGS=(-s 0,hostbridge -s 31,lpc -l com1,stdio -m 512M -A -s "3,virtio-blk,$img"
	-s 4,virtio-rnd -o boot.kernel="$kernel" -o boot.initrd="$initrd")

combos="1:modern 1:legacy"
[ "${SLOW:-0}" = 1 ] && combos="$combos 2:modern 2:legacy"
for accel in $ACCELS; do
	for c in $combos; do
		cpus=${c%%:*}
		mode=${c#*:}
		name=linux_virtio_$mode$([ "$cpus" = 1 ] || echo "_c$cpus")
		extra=
		v1=1
		[ $mode = legacy ] && { extra=" virtio_pci.force_legacy=1"; v1=0; }
		mkdisk
		check "$name" "$accel" 1 'GUEST-FLUSHED' "$tmo" -- "${ARGS[@]}" -c "$cpus" \
			-o boot.cmdline="console=ttyS0 panic=-1 khyve.test=virtio$extra" linuxvirtio
		why=$(verify "$LOGDIR/$name.$accel.log" $v1 1)
		result "${name}_host_file" "$accel" "$why"
	done

	# kill -9 right after the guest's fsyncs: what it flushed must be in the file.
	mkdisk
	log=$LOGDIR/linux_durable.$accel.log
	"$KHYVE" -o accel="$accel" "${ARGS[@]}" -c 1 \
		-o boot.cmdline="console=ttyS0 panic=-1 khyve.test=virtio khyve.end=hang" \
		linuxdurable </dev/null >"$log" 2>&1 &
	pid=$!
	waited=0
	while [ $waited -lt $((tmo * 100)) ] && ! grep -q '^GUEST-FLUSHED' "$log" &&
		kill -0 $pid 2>/dev/null; do
		sleep 0.01
		waited=$((waited + 1))
	done
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	if grep -q '^GUEST-FLUSHED' "$log"; then
		why=$(verify "$log" 1 0)
	else
		why="no GUEST-FLUSHED line: $(tail -n 3 "$log" | tr -d '\r' | tr '\n' ' ')"
	fi
	result linux_virtio_durable_kill9 "$accel" "$why"
done
finish
