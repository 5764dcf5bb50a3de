/*
 * cpuid_level: the CPUID level (cpu.model) as a guest sees it (Intel SDM vol. 2A CPUID;
 * AMD APM vol. 3 appendix E): maximum leaves, vendor and signature alike in both ranges,
 * AMD's copy of leaf 1 EDX in 0x80000001, and one instruction of every x87/MMX/SSE/CX16
 * feature offered runs with the right result (under a KVM without hardware virtualization
 * these are the instructions the software CPU finishes for KVM), while the SIMD sets hidden
 * raise #UD. "level=khyve-v1" or "level=x86-64" on the command line checks that level's set.
 */
#include "rt.h"

#define BIT(n) (1u << (n))

static uint8_t area[512] __attribute__((aligned(16)));
static uint64_t pair[2] __attribute__((aligned(16)));
static uint8_t xmm_out[16] __attribute__((aligned(16)));

/*
 * Run asm text with #UD/#GP/#PF/#NM recovery; 0, or -1 with last_fault set. `in` is the
 * input list (IN(...) for more than one), the rest the registers the text clobbers.
 */
#define IN(...) __VA_ARGS__
#define PROBE(insn, in, ...)                                                                 \
	({                                                                                   \
		int r_;                                                                      \
		__asm__ volatile("leaq 1f(%%rip), %%rax; movq %%rax, probe_recover_rip(%%rip)\n" \
				 insn "\n xorl %%eax, %%eax\n"                               \
				 "1: movq $0, probe_recover_rip(%%rip)"                      \
				 : "=&a"(r_) : in : "memory", ##__VA_ARGS__);                \
		r_;                                                                          \
	})

/* Offered: it runs (0); hidden: #UD (6). Returns whether that held. */
static bool expect(const char *name, bool offered, int r)
{
	int got = r ? last_fault.vector : -1;

	check(offered ? r == 0 : (r != 0 && got == 6), name, "%s, but %s %d",
	      offered ? "offered" : "hidden", r ? "vector" : "ran, no fault", got);
	return offered && r == 0;
}

static void run_features(uint32_t ecx1, uint32_t edx1)
{
	uint16_t cw = 0;
	uint64_t zf;
	int r;

	/* FPU: fninit leaves FCW 0x37f */
	r = PROBE("fninit; fnstcw (%%rdi)", "D"(&cw));
	if (expect("insn-fninit", edx1 & BIT(0), r))
		check(cw == 0x37f, "fninit-fcw", "FCW %x", cw);
	/* CX8 */
	pair[0] = 5;
	r = PROBE("movl $5, %%eax; xorl %%edx, %%edx; movl $9, %%ebx; xorl %%ecx, %%ecx\n"
		  "lock cmpxchg8b (%%rsi)", "S"(pair), "rbx", "rcx", "rdx");
	if (expect("insn-cmpxchg8b", edx1 & BIT(8), r))
		check(pair[0] == 9, "cmpxchg8b-result", "%lx", (unsigned long)pair[0]);
	r = PROBE("xorl %%ecx, %%ecx; cmove %%ecx, %%edx", "i"(0), "rcx", "rdx");
	expect("insn-cmov", edx1 & BIT(15), r);
	r = PROBE("movq %%mm1, %%mm0; emms", "i"(0));
	expect("insn-mmx", edx1 & BIT(23), r);
	r = PROBE("fxsave (%%rsi)", "S"(area));
	expect("insn-fxsave", edx1 & BIT(24), r);
	r = PROBE("xorps %%xmm0, %%xmm0; addps %%xmm0, %%xmm0", "i"(0));
	expect("insn-sse", edx1 & BIT(25), r);
	r = PROBE("pxor %%xmm1, %%xmm1; paddd %%xmm1, %%xmm1", "i"(0));
	expect("insn-sse2", edx1 & BIT(26), r);
	/* SSE3: haddps of (1,2,3,4) with itself gives (3,7,3,7) */
	{
		static const float in[4] __attribute__((aligned(16))) = { 1, 2, 3, 4 };
		static const uint32_t want[4] = { 0x40400000, 0x40e00000, 0x40400000, 0x40e00000 };
		uint32_t got[2];

		r = PROBE("movaps (%%rsi), %%xmm0; haddps %%xmm0, %%xmm0; movaps %%xmm0, (%%rdi)",
			  IN("S"(in), "D"(xmm_out)));
		memcpy(got, xmm_out, 8);
		if (expect("insn-sse3", ecx1 & BIT(0), r))
			check(memcmp(xmm_out, want, 16) == 0, "haddps-result", "%x %x", got[0],
			      got[1]);
	}
	/* SSSE3: pshufb reversing the bytes */
	{
		static const uint8_t data[16] __attribute__((aligned(16))) = {
			0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
		static const uint8_t rev[16] __attribute__((aligned(16))) = {
			15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0 };

		r = PROBE("movdqa (%%rsi), %%xmm0; pshufb (%%rdx), %%xmm0; movdqa %%xmm0, (%%rdi)",
			  IN("S"(data), "d"(rev), "D"(xmm_out)));
		if (expect("insn-ssse3", ecx1 & BIT(9), r))
			check(memcmp(xmm_out, rev, 16) == 0, "pshufb-result", "%x %x %x",
			      xmm_out[0], xmm_out[1], xmm_out[15]);
	}
	/* CX16: lock cmpxchg16b swaps in rcx:rbx when rdx:rax matches */
	pair[0] = 0x1111;
	pair[1] = 0x2222;
	zf = 0;
	r = PROBE("movl $0x1111, %%eax; movl $0x2222, %%edx; movl $0x3333, %%ebx;\n"
		  "movl $0x4444, %%ecx; lock cmpxchg16b (%%rsi); setz %%r8b; movzbq %%r8b, %%r8;"
		  "movq %%r8, (%%rdi)", IN("S"(pair), "D"(&zf)), "rbx", "rcx", "rdx", "r8");
	if (expect("insn-cmpxchg16b", ecx1 & BIT(13), r))
		check(zf == 1 && pair[0] == 0x3333 && pair[1] == 0x4444, "cmpxchg16b-result",
		      "ZF %lu, %lx:%lx", (unsigned long)zf, (unsigned long)pair[1],
		      (unsigned long)pair[0]);
}

void test_main(void)
{
	uint32_t r0[4], r1[4], x0[4], x1[4];
	char level[32];
	bool amd;

	fault_probe_init();
	fault_probe_vector(7);
	/* x87 and SSE usable: MP, NE, no EM/TS; OSFXSR, OSXMMEXCPT */
	WRITE_CR(0, (READ_CR(0) | BIT(1) | BIT(5)) & ~(uint64_t)(BIT(2) | BIT(3)));
	WRITE_CR(4, READ_CR(4) | BIT(9) | BIT(10));

	cpuid(0, 0, r0);
	cpuid(1, 0, r1);
	cpuid(0x80000000, 0, x0);
	cpuid(0x80000001, 0, x1);
	printf("# leaf 0 %08x, 1: eax %08x ecx %08x edx %08x\n", r0[0], r1[0], r1[2], r1[3]);
	printf("# leaf 0x80000000 %08x, 0x80000001: eax %08x ecx %08x edx %08x\n", x0[0], x1[0],
	       x1[2], x1[3]);
	amd = r0[1] == 0x68747541 && r0[3] == 0x69746e65 && r0[2] == 0x444d4163;
	check(r0[0] >= 1 && r0[0] < 0x100, "max-leaf", "%x", r0[0]);
	check(x0[0] >= 0x80000001 && x0[0] < 0x80000100, "max-ext-leaf", "%x", x0[0]);
	if (amd) {
		const uint32_t mirror = 0x3ffu | 0x3f000u | BIT(23) | BIT(24);

		check(x0[1] == r0[1] && x0[2] == r0[2] && x0[3] == r0[3], "ext-vendor",
		      "%x %x %x", x0[1], x0[2], x0[3]);
		check(x1[0] == r1[0], "ext-signature", "%x vs %x", x1[0], r1[0]);
		check((x1[3] & mirror) == (r1[3] & mirror), "ext-edx-mirror", "%x vs %x",
		      x1[3] & mirror, r1[3] & mirror);
	}
	check((x1[3] & (BIT(11) | BIT(20) | BIT(29))) == (BIT(11) | BIT(20) | BIT(29)),
	      "ext-syscall-nx-lm", "%x", x1[3]);
	check((r1[3] & 0x0780a179u) == 0x0780a179u, "x86-64-baseline", "leaf 1 EDX %x", r1[3]);

	if (cmdline_get("level", level, sizeof level)) {
		bool v1 = strncmp(level, "khyve-v1", 9) == 0;
		uint32_t simd = BIT(0) | BIT(9) | BIT(13);	/* SSE3 SSSE3 CX16 */

		printf("# level %s\n", level);
		check(v1 || strncmp(level, "x86-64", 7) == 0, "level-name", "'%s'", level);
		check((r1[2] & simd) == (v1 ? simd : 0), "level-simd", "leaf 1 ECX %x", r1[2]);
		/* no SSE4.1, SSE4.2, POPCNT, XSAVE, AVX in either level */
		check(!(r1[2] & (BIT(19) | BIT(20) | BIT(23) | BIT(26) | BIT(28))), "level-no-newer",
		      "leaf 1 ECX %x", r1[2]);
		check(amd && ((r1[0] >> 8) & 0xf) == 15, "level-amd-family-15", "signature %x",
		      r1[0]);
	}
	run_features(r1[2], r1[3]);
	finish();
}
