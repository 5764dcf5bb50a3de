/*
 * smp: start every CPU (cpus=4) with INIT-SIPI-SIPI through a real-mode trampoline at 0x8000
 * (Intel SDM vol. 3 §8.4.4); each CPU adds to shared counters N times with LOCK ADD, LOCK
 * XADD, and LOCK CMPXCHG / LOCK CMPXCHG8B retry loops, and the totals must be exact. A spin
 * lock built on XCHG guards one more counter updated with ordinary loads and stores.
 */
#include "rt.h"

#define N 5000

static volatile uint64_t c_add, c_xadd, c_cmpxchg, c_cmpxchg8b, c_locked;
static volatile int lock, go;
static volatile uint32_t ids[16];

static void work(int idx)
{
	uint32_t r[4];
	cpuid(1, 0, r);
	ids[idx] = r[1] >> 24;
	while (!go)
		cpu_relax();
	for (int i = 0; i < N; i++) {
		__asm__ volatile("lock addq $1, %0" : "+m"(c_add)::"memory");
		uint64_t one = 1;
		__asm__ volatile("lock xaddq %0, %1" : "+r"(one), "+m"(c_xadd)::"memory");
		uint64_t old = c_cmpxchg, nv;
		do {
			nv = old + 1;
		} while (!__atomic_compare_exchange_n(&c_cmpxchg, &old, nv, false, __ATOMIC_SEQ_CST,
						      __ATOMIC_SEQ_CST));
		uint32_t lo = (uint32_t)c_cmpxchg8b, hi = (uint32_t)(c_cmpxchg8b >> 32);
		for (;;) {
			uint64_t n8 = ((uint64_t)hi << 32 | lo) + 1;
			uint8_t okk;
			__asm__ volatile("lock cmpxchg8b %1; sete %0"
					 : "=q"(okk), "+m"(c_cmpxchg8b), "+a"(lo), "+d"(hi)
					 : "b"((uint32_t)n8), "c"((uint32_t)(n8 >> 32))
					 : "memory", "cc");
			if (okk)
				break;
		}
		while (__atomic_exchange_n(&lock, 1, __ATOMIC_ACQUIRE))
			cpu_relax();
		c_locked = c_locked + 1;
		__atomic_store_n(&lock, 0, __ATOMIC_RELEASE);
	}
}

void test_main(void)
{
	int n = smp_cpu_count();
	uint32_t want = (uint32_t)cmdline_num("cpus", (uint64_t)n);
	check((uint32_t)n == want, "cpu-count", "%d CPUs, cmdline says %u", n, want);
	int up = smp_start_aps(work);
	check(up == n - 1, "aps-started", "%d of %d APs", up, n - 1);
	__atomic_store_n(&go, 1, __ATOMIC_SEQ_CST);
	work(0);
	uint64_t end = tsc_deadline(20000000);
	while (smp_aps_done < up && (int64_t)(rdtsc() - end) < 0)
		cpu_relax();
	check(smp_aps_done == up, "aps-finished", "%d of %d", smp_aps_done, up);
	uint64_t total = (uint64_t)(up + 1) * N;
	printf("# %d CPUs x %d: add %lu xadd %lu cmpxchg %lu locked %lu\n", up + 1, N, c_add, c_xadd,
	       c_cmpxchg, c_locked);
	check(c_add == total, "lock-add", "%lu, want %lu", c_add, total);
	check(c_xadd == total, "lock-xadd", "%lu, want %lu", c_xadd, total);
	check(c_cmpxchg == total, "lock-cmpxchg", "%lu, want %lu", c_cmpxchg, total);
	check(c_cmpxchg8b == total, "lock-cmpxchg8b", "%lu, want %lu", c_cmpxchg8b, total);
	check(c_locked == total, "xchg-spinlock", "%lu, want %lu", c_locked, total);
	bool distinct = true;
	for (int i = 0; i <= up; i++)
		for (int j = 0; j < i; j++)
			if (ids[i] == ids[j])
				distinct = false;
	check(distinct, "apic-ids-distinct", "two CPUs share an APIC ID");
}
