#!/bin/bash
# cli.sh: the khyve binary's command-line behaviour as bhyve(8) defines it: help output,
# exit codes for each class of bad argument, config.dump, one clear error line.
. "$(dirname "$0")/lib.sh"

# run_cli NAME EXPECTED_EXIT PATTERN -- args...  (PATTERN: regex over stdout+stderr)
run_cli() {
	local name=$1 want=$2 pattern=$3 log rc
	shift 4
	log="$LOGDIR/cli.$name.log"
	timeout 20 "$KHYVE" "$@" </dev/null >"$log" 2>&1
	rc=$?
	if [ $rc -ne "$want" ]; then
		echo "not ok cli_$name: exit $rc, expected $want"
		sed 's/^/    # /' "$log" | head -n 5
		FAILED=$((FAILED + 1))
	elif [ -n "$pattern" ] && ! grep -qE -- "$pattern" "$log"; then
		echo "not ok cli_$name: output lacks /$pattern/"
		sed 's/^/    # /' "$log" | head -n 5
		FAILED=$((FAILED + 1))
	else
		echo "ok cli_$name"
		PASSED=$((PASSED + 1))
	fi
}

run_cli help 0 '[Uu]sage' -- -h
run_cli long_help 0 '[Uu]sage' -- --help
run_cli s_help 0 '^hostbridge$' -- -s help
run_cli l_help 0 '^com1$' -- -l help
run_cli unknown_flag 1 '[Uu]sage' -- -Z vm
run_cli unknown_device 4 "nosuchdev" -- -s 0,nosuchdev vm
run_cli bad_slot 4 "40" -- -s 40,hostbridge vm
run_cli duplicate_slot 4 'already occupied' -- -s 0,hostbridge -s 0:0,hostbridge vm
run_cli bad_cpus 64 "abc" -- -c abc vm
run_cli bad_topology 64 "" -- -c cpus=3,sockets=2,cores=2 vm
run_cli bad_memory 64 "12Q" -- -m 12Q vm
run_cli bad_option 64 "bogus" -- -o bogus vm
run_cli bad_lpc 64 "nosuchlpc" -- -l nosuchlpc vm
run_cli bad_pin 64 "x:y" -- -p x:y vm
run_cli unknown_key 64 "no.such.key" -- -o no.such.key=1 -s 0,hostbridge vm
run_cli missing_name 1 "" -- -s 0,hostbridge
run_cli dump 1 '^cpus=2$' -- -c 2 -m 1G -o config.dump=true vm
run_cli dump_memory 1 '^memory.size=1G$' -- -c 2 -m 1G -o config.dump=true vm
run_cli dump_small_m 1 '^memory.size=512M?$' -- -m 512 -o config.dump=true vm
run_cli no_bootrom 4 'bootrom' -- -s 0,hostbridge -s 31,lpc vm
run_cli missing_rom 4 '/nonexistent/rom.bin' -- -s 0,hostbridge -s 31,lpc \
	-l bootrom,/nonexistent/rom.bin -o accel=soft vm
if [ ! -e /dev/kvm ]; then
	run_cli kvm_missing 4 '/dev/kvm' -- -o accel=kvm -s 0,hostbridge -s 31,lpc \
		-o boot.kernel=/nonexistent vm
	# accel=auto (the default) says once why it runs the guest on the software CPU
	run_cli auto_soft 1 '^khyve: KVM is not usable \(.*/dev/kvm.*\); using the software CPU$' -- \
		-s 0,hostbridge -s 31,lpc -l com1,stdio -A -o boot.kernel="$GUESTS/hello.elf" vm
	n=$(grep -c 'using the software CPU' "$LOGDIR/cli.auto_soft.log")
	if [ "$n" = 1 ]; then
		echo "ok cli_auto_soft_once"
		PASSED=$((PASSED + 1))
	else
		echo "not ok cli_auto_soft_once: the line appears $n times"
		FAILED=$((FAILED + 1))
	fi
fi
# cpu.model: the names, a level in config.dump, host only under KVM, a level booting a guest
run_cli cpu_model_bogus 64 "cpu.model' \(expected one of host\|khyve-v1\|x86-64\): 'bogus'" -- \
	-o cpu.model=bogus -s 0,hostbridge vm
run_cli cpu_model_dump 1 '^cpu.model=x86-64$' -- -o cpu.model=x86-64 -o config.dump=true vm
run_cli cpu_model_host_soft 4 'accel=soft: cpu.model=host needs KVM' -- -o accel=soft \
	-o cpu.model=host -s 0,hostbridge -s 31,lpc -A -o boot.kernel="$GUESTS/hello.elf" vm
if [ ! -e /dev/kvm ]; then
	run_cli cpu_model_host_auto 4 'cpu.model=host needs KVM, which is not usable' -- \
		-o cpu.model=host -s 0,hostbridge -s 31,lpc -A -o boot.kernel="$GUESTS/hello.elf" vm
fi
run_cli cpu_model_x86_64_boots 1 '^RESULT: PASS' -- -o accel=soft -o cpu.model=x86-64 \
	-s 0,hostbridge -s 31,lpc -l com1,stdio -A -o boot.kernel="$GUESTS/cpuid_level.elf" \
	-o boot.cmdline=level=x86-64 vm
run_cli accel_stats_soft 1 'khyve: accel_stats: software CPU: [1-9][0-9]* instructions executed' \
	-- -o accel=soft -o accel_stats=true -s 0,hostbridge -s 31,lpc -l com1,stdio -A \
	-o boot.kernel="$GUESTS/hello.elf" vm
run_cli accel_stats_bad 64 'accel_stats' -- -o accel_stats=maybe -s 0,hostbridge vm
# an instruction the software CPU lacks (XEND at the reset vector of a 64 KiB ROM): one
# clear line with the mode, CS:RIP and the disassembly, exit 4
rom="$LOGDIR/xend.rom"
head -c 65520 /dev/zero >"$rom"
printf '\017\001\325\364\000\000\000\000\000\000\000\000\000\000\000\000' >>"$rom"
run_cli unsupported_insn 4 'unsupported instruction: xend.*real mode.*CS:RIP f000:fff0' -- \
	-o accel=soft -s 0,hostbridge -s 31,lpc -l bootrom,"$rom" vm
finish
