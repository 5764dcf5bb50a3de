/*
 * fpustate: the x87/SSE state instructions a kernel runs at start-up (Intel SDM vol. 1 §8.1,
 * §10.5, vol. 3 §2.5, §13): FNINIT defaults, FNSTCW/FLDCW, FNSTSW, FNCLEX, FXSAVE layout and
 * FXRSTOR, LDMXCSR/STMXCSR (#GP on reserved bits), CR0.TS -> #NM and CLTS, CR0.EM -> #NM
 * for x87 and #UD for SSE, CR4.OSFXSR off -> #UD, FXSAVE alignment #GP. No x87 arithmetic.
 */
#include "rt.h"

static uint8_t area[512] __attribute__((aligned(16)));
static uint8_t area2[512 + 16] __attribute__((aligned(16)));

/* Run one instruction (asm text) with recovery; returns 0 or -1 (last_fault set). */
#define PROBE(insn, ...)                                                                     \
	({                                                                                   \
		int r_;                                                                      \
		__asm__ volatile("leaq 1f(%%rip), %%rax; movq %%rax, probe_recover_rip(%%rip)\n" \
				 insn "\n xorl %%eax, %%eax\n"                               \
				 "1: movq $0, probe_recover_rip(%%rip)"                      \
				 : "=a"(r_) __VA_ARGS__ : "memory");                         \
		r_;                                                                          \
	})

void test_main(void)
{
	uint16_t cw = 0, sw = 0xffff;
	uint32_t mx = 0;
	fault_probe_init();
	fault_probe_vector(7);

	uint64_t cr0 = READ_CR(0), cr4 = READ_CR(4);
	cr0 = (cr0 | (1 << 1) | (1 << 5)) & ~((1ull << 2) | (1ull << 3));	/* MP, NE; no EM, TS */
	WRITE_CR(0, cr0);
	WRITE_CR(4, cr4 | (1 << 9) | (1 << 10));				/* OSFXSR, OSXMMEXCPT */

	__asm__ volatile("fninit; fnstcw %0; fnstsw %1" : "=m"(cw), "=m"(sw));
	check(cw == 0x037f && sw == 0, "fninit-defaults", "FCW %x FSW %x", cw, sw);
	uint16_t ncw = 0x027f;
	__asm__ volatile("fldcw %1; fnstcw %0" : "=m"(cw) : "m"(ncw));
	check(cw == 0x027f, "fldcw-fnstcw", "FCW %x", cw);
	__asm__ volatile("fnclex; fnstsw %%ax" : "=a"(sw));
	check(sw == 0, "fnclex-fnstsw-ax", "FSW %x", sw);

	uint32_t nmx = 0x1fa0;
	__asm__ volatile("ldmxcsr %1; stmxcsr %0" : "=m"(mx) : "m"(nmx));
	check(mx == 0x1fa0, "ldmxcsr-stmxcsr", "MXCSR %x", mx);
	nmx = 0x11f80;
	check(PROBE("ldmxcsr %1", : "m"(nmx)) && last_fault.vector == 13, "ldmxcsr-reserved-gp",
	      "vector %d", last_fault.vector);

	nmx = 0x1fa0;
	memset(area, 0xcc, sizeof(area));
	__asm__ volatile("ldmxcsr %1; fxsave %0" : "=m"(area) : "m"(nmx));
	uint16_t fcw = (uint16_t)(area[0] | area[1] << 8), fsw = (uint16_t)(area[2] | area[3] << 8);
	uint32_t amx;
	memcpy(&amx, area + 24, 4);
	check(fcw == 0x027f && fsw == 0 && amx == 0x1fa0, "fxsave-layout", "FCW %x FSW %x MXCSR %x",
	      fcw, fsw, amx);
	area[0] = 0x7f;
	area[1] = 0x03;
	amx = 0x1f80;
	memcpy(area + 24, &amx, 4);
	__asm__ volatile("fxrstor %2; fnstcw %0; stmxcsr %1" : "=m"(cw), "=m"(mx) : "m"(area));
	check(cw == 0x037f && mx == 0x1f80, "fxrstor", "FCW %x MXCSR %x", cw, mx);
	check(PROBE("fxsave 8(%1)", : "r"(area2)) && last_fault.vector == 13, "fxsave-misaligned-gp",
	      "vector %d", last_fault.vector);

	WRITE_CR(0, cr0 | (1 << 3));	/* TS */
	check(PROBE("fnstcw %1", : "m"(cw)) && last_fault.vector == 7, "ts-nm-x87", "vector %d",
	      last_fault.vector);
	check(PROBE("fxsave %1", : "m"(area)) && last_fault.vector == 7, "ts-nm-fxsave", "vector %d",
	      last_fault.vector);
	__asm__ volatile("clts");
	check(!(READ_CR(0) & (1 << 3)) && !PROBE("fnstcw %1", : "m"(cw)), "clts", "CR0 %lx",
	      (uint64_t)READ_CR(0));

	WRITE_CR(0, cr0 | (1 << 2));	/* EM */
	check(PROBE("fninit", :) && last_fault.vector == 7, "em-nm-x87", "vector %d", last_fault.vector);
	check(PROBE("stmxcsr %1", : "m"(mx)) && last_fault.vector == 6, "em-ud-sse", "vector %d",
	      last_fault.vector);
	WRITE_CR(0, cr0);

	WRITE_CR(4, cr4 & ~(1ull << 9));
	check(PROBE("stmxcsr %1", : "m"(mx)) && last_fault.vector == 6, "no-osfxsr-ud", "vector %d",
	      last_fault.vector);
	WRITE_CR(4, cr4 | (1 << 9) | (1 << 10));
}
