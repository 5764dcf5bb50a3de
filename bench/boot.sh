#!/bin/bash
# boot.sh MARKER LIMIT -- command...: run one guest boot and time it from exec. The command's
# stdout and stderr are read line by line as they come (stdin is /dev/null); prints
# "MARKER_MS EXIT_MS STATUS": wall milliseconds from just before exec to the first line that
# holds MARKER ("-" when none did), to the end of its output (the exit), and the exit status
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

t0=$EPOCHREALTIME
exec {fd}< <(exec timeout "$limit" "$@" </dev/null 2>&1)
pid=$!
tm=
while IFS= read -r -u "$fd" line || [ -n "$line" ]; do
	if [ -z "$tm" ] && [[ $line == *"$marker"* ]]; then
		tm=$EPOCHREALTIME
	fi
done
te=$EPOCHREALTIME
wait "$pid"
rc=$?
exec {fd}<&-
t0=$(us "$t0")
m=-
[ -n "$tm" ] && m=$(ms "$t0" "$(us "$tm")")
echo "$m $(ms "$t0" "$(us "$te")") $rc"
