#!/bin/bash
# guests.sh: boot every test guest of tests/guest/guests.txt under khyve, on each available
# accelerator, and check its exit status and its "RESULT: PASS" line (ROM guests: their
# banner). The last field of a line adds khyve arguments. The same guests pass under QEMU (tests/guest/run-qemu.sh).
. "$(dirname "$0")/lib.sh"
list=tests/guest/guests.txt

for accel in $ACCELS; do
	while IFS='|' read -r name image cpus mem cmdline kexit _qcmd _qargs _qexit _known kargs; do
		case $name in '' | '#'*) continue ;; esac
		topo="$cpus"
		for tok in $cmdline; do
			case $tok in
			sockets=* | cores=* | threads=*) topo="$topo,$tok" ;;
			esac
		done
		case $image in
		*.bin)
			boot=(-l "bootrom,$GUESTS/$image")
			pattern='khyve bootrom|RESULT: PASS'
			;;
		*)
			boot=(-o "boot.kernel=$GUESTS/$image")
			[ -z "$cmdline" ] || boot+=(-o "boot.cmdline=$cmdline")
			pattern='^RESULT: PASS'
			;;
		esac
		check "$name" "$accel" "$kexit" "$pattern" 60 -- -A -H -P -c "$topo" -m "$mem" \
			-s 0:0,hostbridge -s 31:0,lpc -l com1,stdio "${boot[@]}" $kargs "guest-$name"
	done <"$list"
done
finish
