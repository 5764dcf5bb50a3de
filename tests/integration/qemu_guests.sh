#!/bin/bash
# qemu_guests.sh: the same test-guest binaries boot under QEMU (TCG, -M pc), so that khyve and
# QEMU can be compared side by side; tests/guest/run-qemu.sh does the work.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
if ! command -v qemu-system-x86_64 >/dev/null; then
	echo "not ok qemu_guests: qemu-system-x86_64 missing (run scripts/setup.sh --test)"
	echo "0 passed, 1 failed"
	exit 1
fi
exec tests/guest/run-qemu.sh "$BUILD/guest"
