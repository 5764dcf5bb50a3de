/*
 * intbench: the guest of the integer throughput benchmark. Runs workload_run for the
 * iteration count given as `iters=N` on the command line (default 10), prints the
 * checksum, and powers off through the test-guest runtime (tests/guest/rt).
 */
#include "rt.h"
#include "workload.h"

void test_main(void)
{
	uint64_t iters = cmdline_num("iters", 10);
	uint64_t sum = workload_run(iters);

	printf("intbench iters=%lu checksum=%016lx\n", (unsigned long)iters, (unsigned long)sum);
}
