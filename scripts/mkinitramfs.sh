#!/bin/bash
# mkinitramfs.sh OUT.cpio.gz: a minimal busybox initramfs for tests/integration/
# linux_userspace.sh. Debian's busybox-static (installed by scripts/setup.sh --test) is the only
# program; /init mounts /proc, prints the marker KHYVE-USERSPACE-OK on the console and ends the
# guest as the kernel command line says: khyve.end=poweroff (default) runs `poweroff -f`,
# khyve.end=reboot runs `reboot -f`, khyve.end=shell starts a shell.
set -eu
out=${1:?usage: mkinitramfs.sh OUT.cpio.gz}
bb=${BUSYBOX:-/bin/busybox}
[ -x "$bb" ] || { echo "mkinitramfs.sh: $bb missing (apt-get install busybox-static)" >&2; exit 1; }
file -L "$bb" 2>/dev/null | grep -q 'statically linked' ||
	{ echo "mkinitramfs.sh: $bb is not statically linked" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp}
cp "$bb" "$root/bin/busybox"
for app in sh mount echo cat poweroff reboot uname; do
	ln -s busybox "$root/bin/$app"
done
cat >"$root/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
end=poweroff
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	khyve.end=*) end=${arg#khyve.end=} ;;
	esac
done
echo "KHYVE-USERSPACE-OK $(uname -r) end=$end"
case "$end" in
reboot) reboot -f ;;
shell) exec sh ;;
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
