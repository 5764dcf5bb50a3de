#!/bin/bash
# check-includes.sh: design.md's dependency directions, checked on #include lines.
# Prints one line per rule and a closing "N passed, N failed" line.
set -u
cd "$(dirname "$0")/.."
pass=0
fail=0

# rule NAME FILES-GLOB FORBIDDEN-REGEX: no file under FILES may include a header matching it.
rule() {
	local name=$1 dir=$2 forbidden=$3 hits
	hits=$(grep -rnE "^#[[:space:]]*include[[:space:]]*[<\"]($forbidden)" "$dir" \
		--include='*.c' --include='*.h' 2>/dev/null)
	if [ -n "$hits" ]; then
		echo "FAIL $name"
		echo "$hits" | sed 's/^/    /'
		fail=$((fail + 1))
	else
		echo "ok   $name"
		pass=$((pass + 1))
	fi
}

# <linux/kvm.h> only in accel/kvm (and the unit tests of its pure parts, test_kvm_*.c).
hits=$(grep -rlE '^#[[:space:]]*include[[:space:]]*[<"](linux/kvm\.h|accel/kvm/)' src tools tests \
	2>/dev/null | grep -v '^src/accel/kvm/' | grep -v '^tests/unit/test_kvm_[a-z0-9_]*\.c$')
if [ -n "$hits" ]; then
	echo "FAIL only accel/kvm includes <linux/kvm.h>: $hits"
	fail=$((fail + 1))
else
	echo "ok   only accel/kvm (and tests/unit/test_kvm_*.c) includes <linux/kvm.h>"
	pass=$((pass + 1))
fi
rule "x86/emu depends on nothing of the VMM" src/x86/emu \
	'(vmm|dev|pci|virtio|accel|config|cli|backend|loader|ctl|util)/'
rule "backends never include bus or device headers" src/backend '(vmm|dev|pci|virtio|accel)/'
rule "cli writes config keys only" src/cli '(vmm|pci|virtio|accel|backend|loader)/'
rule "config depends on nothing but the registry" src/config '(vmm|pci|virtio|accel|backend|loader|cli)/'
rule "the machine never reaches an accelerator's inside" src/vmm 'accel/(kvm|soft)/|accel/accel_impl'
rule "devices never reach an accelerator" src/dev 'accel/'
rule "devices never reach an accelerator (pci)" src/pci 'accel/'
rule "the software CPU uses only the interpreter and its own interrupt models" src/accel/soft \
	'(vmm|pci|virtio|backend|config|cli|loader)/|accel/kvm/'
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
