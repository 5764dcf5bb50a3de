#!/bin/bash
# boot.sh MARKER LIMIT -- command...: run one guest boot and time it from exec. The command's
# stdout and stderr go to a temporary file (stdin is /dev/null) that is scanned every 5 ms, so
# the timing does not depend on how many writes an engine makes for its console (a reader on
# a pipe would be woken once per write: per byte for a UART without buffering). Prints
# "MARKER_MS EXIT_MS STATUS": wall milliseconds from just before exec to the first line
# holding MARKER ("-" when none did; seen within 5 ms), to the exit, and the exit status
# (124 when `timeout LIMIT` ended it). Used by the `boot` section of bench/run.sh, so that
# khyve and QEMU are timed the same way; the console output itself is discarded.
set -u
export LC_ALL=C
marker=${1:?usage: boot.sh MARKER LIMIT -- command...}
limit=${2:?usage: boot.sh MARKER LIMIT -- command...}
[ "${3:-}" = -- ] || { echo "usage: boot.sh MARKER LIMIT -- command..." >&2; exit 64; }
shift 3

us() {	# EPOCHREALTIME (seconds.microseconds) as integer microseconds
	local s=${1%.*} f=${1#*.}
	echo $((s * 1000000 + 10#$f))
}
ms() {	# ms FROM TO: (TO - FROM) microseconds as milliseconds with one decimal
	local d=$(($2 - $1))
	printf '%d.%d' $((d / 1000)) $((d % 1000 / 100))
}

dir=$(mktemp -d) || exit 1
trap 'rm -rf "$dir"' EXIT
mkfifo "$dir/tick" || exit 1
exec {tick}<>"$dir/tick"	# nobody writes: `read -t` on it is a sleep without a fork
: >"$dir/out"
t0=$EPOCHREALTIME
(
	timeout "$limit" "$@" </dev/null >"$dir/out" 2>&1
	rc=$?
	echo "$rc $EPOCHREALTIME" >"$dir/done"
) &
exec {in}<"$dir/out"
tm=
part=
while :; do
	[ -e "$dir/done" ] && last=1 || last=0
	# whole lines as they are now; a line still being written stays in $part
	while IFS= read -r -u "$in" line; do
		line=$part$line
		part=
		if [ -z "$tm" ] && [[ $line == *"$marker"* ]]; then
			tm=$EPOCHREALTIME
		fi
	done
	part=$part$line
	if [ -z "$tm" ] && [[ $part == *"$marker"* ]]; then
		tm=$EPOCHREALTIME
	fi
	[ $last = 1 ] && break
	read -r -t 0.005 -u "$tick"
done
wait
read -r rc te <"$dir/done"
exec {in}<&- {tick}<&-
t0=$(us "$t0")
te=$(us "$te")
m=-
if [ -n "$tm" ]; then
	tm=$(us "$tm")
	[ "$tm" -le "$te" ] || tm=$te	# seen only after the exit: it came before
	m=$(ms "$t0" "$tm")
fi
echo "$m $(ms "$t0" "$te") $rc"
