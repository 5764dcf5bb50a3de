#!/bin/sh
# demo.sh: boot the demo VM, a small test guest that prints what it sees of the machine on
# COM1 and powers off (khyve exits 1). KVM when /dev/kvm is usable, else the software CPU.
set -u
BUILD=${1:-build}
exec "$BUILD/khyve" -A -H -P -c 2 -m 256M -s 0:0,hostbridge -s 31:0,lpc -l com1,stdio \
	-o boot.kernel="$BUILD/guest/hello.elf" -o boot.cmdline="demo" demo
