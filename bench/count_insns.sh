#!/bin/sh
# count_insns.sh: instructions per iteration of the integer benchmark's workload, counted on
# the host with callgrind at two iteration counts (the difference removes start-up and exit),
# and compared with INSNS_PER_ITER in bench/run.sh. Rerun it when workload.c, its flags or the
# compiler change, and update the constant.
set -eu
cd "$(dirname "$0")/.."
out=${BUILD:-build}/bench
make -s -C bench/guest BUILD="$(mkdir -p "$out" && cd "$out" && pwd)"
count() {
	valgrind --tool=callgrind --callgrind-out-file=/dev/null "$out/intbench-native" "$1" 2>&1 |
		sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
a=$(count 10)
b=$(count 20)
per=$(((b - a) / 10))
have=$(sed -n 's/^INSNS_PER_ITER=\([0-9]*\).*/\1/p' bench/run.sh)
echo "10 iterations: $a, 20 iterations: $b, per iteration: $per (bench/run.sh: $have)"
[ "$per" = "$have" ]
