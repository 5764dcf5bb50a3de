/*
 * workload.h: the integer workload of the throughput benchmark (softcpu.md §1.2): a 64K
 * sieve, an insertion sort of 1,024 LCG words, a bitwise CRC32 over 4 KiB and a 64-bit
 * multiply/divide loop. The same object file is linked into the guest and the native
 * counting program, so both run exactly the same instructions.
 */
#ifndef BENCH_WORKLOAD_H
#define BENCH_WORKLOAD_H

#include <stdint.h>

/* One iteration: always the same input, so every iteration runs the same instructions.
 * Returns a checksum of the results. */
uint64_t workload_iter(void);

/* `iters` iterations; the checksums folded together. */
uint64_t workload_run(uint64_t iters);

#endif
