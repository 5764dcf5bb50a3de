#!/bin/bash
# blk.sh: the block device path benchmark (bench/blk_bench.c): virtio-blk's model and I/O
# engine driven from a harness against the host's own io_uring O_DIRECT reads on the same
# file, 4 KiB random reads at QD32 and 1 MiB sequential reads at QD8. Prints a markdown
# table. BENCH_BLK_DIR (default: the build folder; it must allow O_DIRECT: tmpfs does from
# Linux 6.6, and /dev/shm then takes the disk out and leaves the software path alone),
# BENCH_BLK_MB (file size, default 512), BENCH_BLK_SECS (timed seconds per side per round,
# default 0.5) and BENCH_BLK_ROUNDS (alternating rounds, default 12).
set -u
cd "$(dirname "$0")/.." || exit 1
build=${BUILD:-build}
out=$build/bench
mkdir -p "$out"
make -s "$build/libkhyve.a" || exit 1
cc -std=gnu11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wno-unused-parameter -Isrc \
	-o "$out/blk_bench" bench/blk_bench.c "$build/libkhyve.a" \
	-lZydis -luring -lpthread -lz -llzma -lzstd -lm || exit 1
dir=${BENCH_BLK_DIR:-$out}
echo "## Block device path (virtio-blk model + I/O engine vs host direct I/O)"
"$out/blk_bench" "$dir/blk_bench.img" "${BENCH_BLK_MB:-512}" "${BENCH_BLK_SECS:-0.5}" \
	"${BENCH_BLK_ROUNDS:-12}"
