/*
 * smc: self-modifying code (Intel SDM vol. 3 §8.1.3): rewriting an immediate and calling the
 * code again, a store that rewrites the very next instruction, rewriting code that runs hot in
 * a loop, writing code through a second virtual alias of its page, and cross-modifying code:
 * another CPU runs the code, the BSP rewrites it, the AP executes CPUID (serialising) and must
 * then see the new instruction (needs cpus>=2).
 */
#include "rt.h"

static uint8_t code[3][4096] __attribute__((aligned(4096)));
typedef uint32_t (*fn_t)(void);

/* mov $imm32, %eax; ret */
static void gen_mov_ret(uint8_t *p, uint32_t imm)
{
	p[0] = 0xb8;
	memcpy(p + 1, &imm, 4);
	p[5] = 0xc3;
}

static volatile int xm_phase;
static volatile uint32_t xm_before, xm_after;

static void ap_xmc(int idx)
{
	fn_t f = (fn_t)(uintptr_t)code[2];
	uint32_t r[4];
	for (int i = 0; i < 50; i++)
		xm_before = f();
	xm_phase = 1;
	while (xm_phase != 2)
		cpu_relax();
	cpuid(0, 0, r);
	xm_after = f();
	xm_phase = 3;
}

void test_main(void)
{
	fn_t f = (fn_t)(uintptr_t)code[0];
	gen_mov_ret(code[0], 111);
	uint32_t a = f();
	gen_mov_ret(code[0], 222);
	uint32_t b = f();
	check(a == 111 && b == 222, "rewrite-immediate", "%u then %u", a, b);

	/* movb $0x42, 1(%rip); movb $0x11, %al; ret -- the store hits the next instruction. */
	static const uint8_t next[] = { 0xc6, 0x05, 0x01, 0x00, 0x00, 0x00, 0x42, 0xb0, 0x11, 0xc3 };
	memcpy(code[1], next, sizeof(next));
	uint32_t r = ((fn_t)(uintptr_t)code[1])() & 0xff;
	check(r == 0x42, "modify-next-instruction", "al %x (0x11 = stale)", r);

	int bad = 0;
	for (uint32_t i = 0; i < 200; i++) {
		gen_mov_ret(code[0], i * 7 + 1);
		if (f() != i * 7 + 1)
			bad++;
	}
	check(!bad, "rewrite-in-loop", "%d of 200 stale", bad);

	/* second mapping of the code page */
	uint64_t alias = 0x0000008000000000ull;
	map_page(alias, (uint64_t)code[0], PTE_P | PTE_W);
	gen_mov_ret(code[0], 5);
	(void)f();
	*(volatile uint32_t *)(alias + 1) = 6;
	uint32_t c = f();
	check(c == 6, "rewrite-through-alias", "%u (5 = stale)", c);

	/* cross-modifying code */
	gen_mov_ret(code[2], 1000);
	if (smp_cpu_count() < 2) {
		not_ok("cross-modifying", "needs 2 CPUs (cpus=2)");
		return;
	}
	if (!smp_start_aps(ap_xmc)) {
		not_ok("cross-modifying", "AP did not start");
		return;
	}
	uint64_t end = tsc_deadline(5000000);
	while (xm_phase != 1 && (int64_t)(rdtsc() - end) < 0)
		cpu_relax();
	gen_mov_ret(code[2], 2000);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	xm_phase = 2;
	end = tsc_deadline(5000000);
	while (xm_phase != 3 && (int64_t)(rdtsc() - end) < 0)
		cpu_relax();
	check(xm_before == 1000 && xm_after == 2000, "cross-modifying", "AP saw %u then %u",
	      xm_before, xm_after);
}
