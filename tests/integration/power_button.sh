#!/bin/bash
# power_button.sh: bhyve's power button. The pwrbtn guest enables PWRBTN_EN and routes the SCI,
# prints READY; SIGTERM to khyve presses the ACPI power button, the guest takes the SCI, clears
# PWRBTN_STS and powers off through S5: khyve exits 1 with "RESULT: PASS". Also a SIGTERM as
# soon as the guest prints its first line (before it enables PWRBTN_EN, on most runs): the press
# is only latched, khyve keeps running, and a second SIGTERM after READY ends it the same way.
. "$(dirname "$0")/lib.sh"

# press NAME ACCEL EARLY: run the guest; SIGTERM at its first line when EARLY=1, then after READY.
press() {
	local name=$1 accel=$2 early=$3 log pid waited=0 rc why=
	log="$LOGDIR/$name.$accel.log"
	"$KHYVE" -o accel="$accel" -A -H -P -c 1 -m 64M -s 0:0,hostbridge -s 31:0,lpc -l com1,stdio \
		-o "boot.kernel=$GUESTS/pwrbtn.elf" -o boot.cmdline=wait=60 pwrbtn </dev/null >"$log" 2>&1 &
	pid=$!
	if [ "$early" = 1 ]; then
		while [ $waited -lt 600 ] && ! grep -q 'acpi-tables' "$log" && kill -0 $pid 2>/dev/null; do
			sleep 0.01
			waited=$((waited + 1))
		done
		kill -TERM $pid 2>/dev/null
	fi
	while [ $waited -lt 600 ] && ! grep -q '^READY' "$log" && kill -0 $pid 2>/dev/null; do
		sleep 0.1
		waited=$((waited + 1))
	done
	if grep -q '^READY' "$log"; then
		sleep 0.2
		kill -TERM $pid 2>/dev/null
		waited=0
		while [ $waited -lt 300 ] && kill -0 $pid 2>/dev/null; do
			sleep 0.1
			waited=$((waited + 1))
		done
		kill -0 $pid 2>/dev/null && why="still running 30 s after SIGTERM"
	else
		why="no READY line"
	fi
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	rc=$?
	[ -z "$why" ] && [ $rc -ne 1 ] && why="exit $rc, expected 1"
	[ -z "$why" ] && ! grep -q '^RESULT: PASS' "$log" && why="no RESULT: PASS"
	if [ -z "$why" ]; then
		echo "ok $name [$accel]"
		PASSED=$((PASSED + 1))
	else
		echo "not ok $name [$accel]: $why; last output:"
		tail -n 8 "$log" | sed 's/^/    # /'
		FAILED=$((FAILED + 1))
	fi
}

for accel in $ACCELS; do
	press power_button "$accel" 0
	press power_button_early "$accel" 1
done
finish
