#!/bin/sh
# setup.sh: install what khyve needs on Debian 12.
#   scripts/setup.sh          build dependencies (compilers and libraries)
#   scripts/setup.sh --test   also what the tests need: clang's fuzzer/sanitizer runtimes,
#                             QEMU (side-by-side runs, benchmarks) and Debian's 6.1 kernel
#                             (unpacked into $KHYVE_TESTDATA, default /var/cache/khyve, for
#                             the direct-boot integration test; nothing is installed in /boot)
set -eu

want_test=0
for arg in "$@"; do
	case "$arg" in
	--test) want_test=1 ;;
	*) echo "usage: $0 [--test]" >&2; exit 64 ;;
	esac
done

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

BUILD_PKGS="build-essential gcc clang make pkg-config libzydis-dev zlib1g-dev liblzma-dev libzstd-dev liburing-dev"
TEST_PKGS="libclang-rt-14-dev llvm qemu-system-x86 xz-utils cpio busybox-static"

pkgs=$BUILD_PKGS
[ $want_test -eq 0 ] || pkgs="$pkgs $TEST_PKGS"

missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi

[ $want_test -eq 1 ] || exit 0

# Debian's 6.1 kernel, unpacked (not installed) for tests/integration/linux_boot.sh.
data=${KHYVE_TESTDATA:-/var/cache/khyve}
if ! ls "$data"/kernel/boot/vmlinuz-* >/dev/null 2>&1; then
	$SUDO mkdir -p "$data/kernel"
	pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
		awk '/Depends: linux-image-6/ { print $2; exit }')
	if [ -z "$pkg" ]; then
		$SUDO apt-get update -qq
		pkg=$(apt-cache depends linux-image-amd64 |
			awk '/Depends: linux-image-6/ { print $2; exit }')
	fi
	tmp=$(mktemp -d)
	(cd "$tmp" && apt-get download "$pkg" >/dev/null)
	$SUDO dpkg-deb -x "$tmp"/*.deb "$data/kernel"
	rm -rf "$tmp"
fi
echo "setup: test data in $data"
