#!/bin/bash
# mkinitramfs.sh [--virtio KERNEL-ROOT] OUT.cpio.gz: a minimal busybox initramfs for the Linux
# integration tests. Debian's busybox-static (scripts/setup.sh --test) is the only program;
# /init mounts /proc, prints KHYVE-USERSPACE-OK and ends the guest as the kernel command line
# says: khyve.end=poweroff (default) `poweroff -f`, khyve.end=reboot `reboot -f`,
# khyve.end=shell a shell, khyve.end=hang sleeps until killed.
# --virtio adds Debian's virtio modules from KERNEL-ROOT/lib/modules/*/kernel (.ko, .ko.xz or
# .ko.zst) and, with khyve.test=virtio on the command line, /init runs the virtio checks of
# tests/integration/linux_virtio.sh: insmod in dependency order, the host's marker line at the
# start of /dev/vda, the guest's own at 1 MiB and a copy of the 1 MiB at 4 MiB to 8 MiB (both
# written with conv=fsync), 32 bytes of /dev/hwrng, each printed as a tagged line.
set -eu
virtio=
if [ "${1:-}" = --virtio ]; then
	virtio=${2:?usage: mkinitramfs.sh [--virtio KERNEL-ROOT] OUT.cpio.gz}
	shift 2
fi
out=${1:?usage: mkinitramfs.sh [--virtio KERNEL-ROOT] OUT.cpio.gz}
bb=${BUSYBOX:-/bin/busybox}
[ -x "$bb" ] || { echo "mkinitramfs.sh: $bb missing (apt-get install busybox-static)" >&2; exit 1; }
file -L "$bb" 2>/dev/null | grep -q 'statically linked' ||
	{ echo "mkinitramfs.sh: $bb is not statically linked" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,lib/modules}
cp "$bb" "$root/bin/busybox"
for app in sh mount echo cat poweroff reboot uname insmod dd head od tr sleep ls grep cut sync; do
	ln -s busybox "$root/bin/$app"
done

# The virtio modules in load order (each after what its depends= names); rng-core is built
# into Debian's 6.1, the *_dev helpers exist from 5.16 on. A module missing from the tree is
# an error unless marked optional (?), or built in (modules.builtin lists it).
if [ -n "$virtio" ]; then
	moddir=$(ls -d "$virtio"/lib/modules/*/kernel 2>/dev/null | head -n 1)
	[ -n "$moddir" ] || { echo "mkinitramfs.sh: no lib/modules/*/kernel under $virtio" >&2; exit 1; }
	builtin=$moddir/../modules.builtin
	n=0
	for m in drivers/char/hw_random/rng-core? drivers/virtio/virtio_ring drivers/virtio/virtio \
		drivers/virtio/virtio_pci_modern_dev? drivers/virtio/virtio_pci_legacy_dev? \
		drivers/virtio/virtio_pci drivers/block/virtio_blk drivers/char/hw_random/virtio-rng; do
		opt=0
		case "$m" in *\?) opt=1; m=${m%\?} ;; esac
		name=$(basename "$m")
		dst=$root/lib/modules/$(printf '%02d' $n)-$name.ko
		if [ -f "$moddir/$m.ko" ]; then
			cp "$moddir/$m.ko" "$dst"
		elif [ -f "$moddir/$m.ko.xz" ]; then
			xz -dc "$moddir/$m.ko.xz" >"$dst"
		elif [ -f "$moddir/$m.ko.zst" ]; then
			zstd -qdc "$moddir/$m.ko.zst" >"$dst"
		elif [ -f "$moddir/$m.ko.gz" ]; then
			gzip -dc "$moddir/$m.ko.gz" >"$dst"
		elif [ $opt = 1 ] || grep -qx "kernel/$m.ko" "$builtin" 2>/dev/null; then
			continue
		else
			echo "mkinitramfs.sh: $moddir/$m.ko missing" >&2
			exit 1
		fi
		n=$((n + 1))
	done
fi

cat >"$root/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
end=poweroff
test=
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	khyve.end=*) end=${arg#khyve.end=} ;;
	khyve.test=*) test=${arg#khyve.test=} ;;
	esac
done
echo "KHYVE-USERSPACE-OK $(uname -r) end=$end"

virtio_test() {
	mount -t sysfs sysfs /sys
	mount -t devtmpfs devtmpfs /dev
	# insmod, unlike modprobe, does not take MODULE.PARAM=VALUE from the command line
	# (virtio_pci.force_legacy=1): pass those on by hand.
	for ko in /lib/modules/*.ko; do
		mod=${ko##*/[0-9][0-9]-}
		mod=$(echo "${mod%.ko}" | tr - _)
		params=
		for arg in $(cat /proc/cmdline); do
			case "$arg" in
			"$mod".*=*) params="$params ${arg#"$mod".}" ;;
			esac
		done
		insmod "$ko" $params || echo "VIRTIO-FAIL: insmod $ko$params"
	done
	i=0
	while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	[ -b /dev/vda ] || { echo "VIRTIO-FAIL: no /dev/vda"; return; }
	# The device id and whether VIRTIO_F_VERSION_1 (bit 32, the 33rd character of the
	# features string) was negotiated, i.e. the modern or the legacy interface.
	for d in /sys/bus/virtio/devices/*; do
		echo "VIRTIO-DEV: ${d##*/} device=$(cat "$d/device") version1=$(cut -c33 "$d/features")"
	done
	echo "HOST-MARKER: $(dd if=/dev/vda bs=512 count=1 2>/dev/null | head -n 1)"
	echo "KHYVE-GUEST-MARKER $(uname -r) end=$end" |
		dd of=/dev/vda bs=512 seek=2048 conv=sync,notrunc,fsync 2>/dev/null ||
		echo "VIRTIO-FAIL: marker write"
	dd if=/dev/vda of=/dev/vda bs=64k skip=64 seek=128 count=16 conv=notrunc,fsync 2>/dev/null ||
		echo "VIRTIO-FAIL: copy"
	sync
	echo "GUEST-FLUSHED"
	echo "HWRNG: $(cat /sys/class/misc/hw_random/rng_current) $(dd if=/dev/hwrng bs=32 count=1 2>/dev/null | od -An -tx1 | tr -d ' \n')"
}
[ "$test" = virtio ] && virtio_test

case "$end" in
reboot) reboot -f ;;
shell) exec sh ;;
hang) while :; do sleep 60; done ;;
*) poweroff -f ;;
esac
INIT
chmod 755 "$root/init"
# The kernel opens /dev/console for /init before anything mounts devtmpfs: the node is
# written as a newc entry by hand (mknod needs root) in a second archive after the tree
# (the kernel unpacks concatenated archives in order).
newc_dev() {	# NAME MODE MAJOR MINOR
	local name=$1 len=$((${#1} + 1)) pad
	printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%s\0' \
		1 "$2" 0 0 1 0 0 0 0 "$3" "$4" "$len" 0 "$name"
	pad=$(((4 - (110 + len) % 4) % 4))
	head -c "$pad" /dev/zero
}
{
	(cd "$root" && find . -mindepth 1 | sed 's|^\./||' | sort | cpio -o -H newc -R 0:0 --quiet)
	newc_dev dev/console $((0x2180)) 5 1
	newc_dev TRAILER!!! 0 0 0
} | gzip -9n >"$out"
