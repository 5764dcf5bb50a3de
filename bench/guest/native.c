/*
 * native.c: the integer workload as a host program, linked with the same workload.o as the
 * guest. `intbench-native N` prints the checksum of N iterations; bench/count_insns.sh runs
 * it under callgrind at two counts to get the instructions per iteration.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "workload.h"

int main(int argc, char **argv)
{
	uint64_t iters = argc > 1 ? strtoull(argv[1], NULL, 0) : 10;

	printf("intbench iters=%" PRIu64 " checksum=%016" PRIx64 "\n", iters, workload_run(iters));
	return 0;
}
