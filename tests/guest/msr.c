/*
 * msr: the MSRs firmware and Linux touch (Intel SDM vol. 4; AMD APM vol. 2 appendix A): APIC
 * base (BSP, enable, 0xFEE00000), EFER, STAR/LSTAR/CSTAR/SFMASK and SYSENTER_* round trips,
 * FS/GS base used by FS:/GS: accesses, SWAPGS with KERNEL_GS_BASE, the TSC MSR against RDTSC
 * and written, TSC_AUX through RDTSCP, PAT, MTRR cap/default type, and #GP for an unknown
 * MSR and for a non-canonical FS base.
 */
#include "rt.h"

static volatile uint64_t fsvar = 0x1111222233334444ull, gsvar = 0x5555666677778888ull;

static void roundtrip(const char *name, uint32_t msr, uint64_t v)
{
	uint64_t old = 0, back = 0;
	int r1 = probe_rdmsr(msr, &old);
	int r2 = probe_wrmsr(msr, v);
	int r3 = probe_rdmsr(msr, &back);
	check(!r1 && !r2 && !r3 && back == v, name, "msr %x: read %d write %d, wrote %lx read %lx", msr,
	      r1, r2, v, back);
	if (!r2)
		probe_wrmsr(msr, old);
}

void test_main(void)
{
	uint32_t c[4], x[4];
	uint64_t v;
	fault_probe_init();
	cpuid(1, 0, c);
	cpuid(0x80000001, 0, x);

	v = rdmsr(0x1b);
	check((v & (1 << 8)) && (v & 0xfffff000) == 0xfee00000, "apic-base", "IA32_APIC_BASE %lx", v);
	v = rdmsr(0xc0000080);
	check((v & 0x500) == 0x500 && !!(v & 0x800) == !!(x[3] & (1 << 20)), "efer",
	      "EFER %lx (want LME|LMA, NXE as CPUID says)", v);

	roundtrip("star", 0xc0000081, 0x0030001000000000ull);
	roundtrip("lstar", 0xc0000082, 0xffffffff81000000ull);
	roundtrip("cstar", 0xc0000083, 0xffffffff81000040ull);
	roundtrip("sfmask", 0xc0000084, 0x47700);
	roundtrip("sysenter-cs", 0x174, 0x10);
	roundtrip("sysenter-esp", 0x175, 0xffffffff82000000ull);
	roundtrip("sysenter-eip", 0x176, 0xffffffff81000080ull);
	roundtrip("kernel-gs-base", 0xc0000102, 0xffff888000001000ull);

	wrmsr(0xc0000100, (uint64_t)&fsvar - 8);
	wrmsr(0xc0000101, (uint64_t)&gsvar - 16);
	uint64_t f, g;
	__asm__ volatile("movq %%fs:8, %0; movq %%gs:16, %1" : "=r"(f), "=r"(g));
	check(f == fsvar && g == gsvar, "fs-gs-base", "FS:8 %lx GS:16 %lx", f, g);
	wrmsr(0xc0000102, 0x123000);
	uint64_t gsb = rdmsr(0xc0000101);
	__asm__ volatile("swapgs" ::: "memory");
	uint64_t after = rdmsr(0xc0000101), kgs = rdmsr(0xc0000102);
	__asm__ volatile("swapgs" ::: "memory");
	check(after == 0x123000 && kgs == gsb && rdmsr(0xc0000101) == gsb, "swapgs",
	      "GS base %lx kernel %lx after SWAPGS", after, kgs);
	check(probe_wrmsr(0xc0000100, 0x0000800000000000ull) && last_fault.vector == 13,
	      "fs-base-noncanonical-gp", "no #GP");
	wrmsr(0xc0000100, 0);

	uint64_t t0 = rdtsc(), tm = rdmsr(0x10), t1 = rdtsc();
	check(t0 <= tm && tm <= t1, "tsc-msr-read", "rdtsc %lx, MSR %lx, rdtsc %lx", t0, tm, t1);
	int w = probe_wrmsr(0x10, 1ull << 40);
	t0 = rdtsc();
	check(!w && t0 >= (1ull << 40) && t0 < (1ull << 40) + 100000000000ull, "tsc-msr-write",
	      "wrmsr %s, rdtsc %lx after writing 1<<40", w ? "faulted" : "ok", t0);
	if (x[3] & (1 << 27)) {
		wrmsr(0xc0000103, 0x55);
		uint32_t aux, lo, hi;
		__asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux));
		check(aux == 0x55 && ((uint64_t)hi << 32 | lo) >= t0, "rdtscp-tsc-aux",
		      "ecx %x tsc %lx", aux, (uint64_t)hi << 32 | lo);
	}

	v = rdmsr(0x277);
	printf("# PAT %016lx\n", v);
	check(v == 0x0007040600070406ull, "pat-reset-value", "PAT %lx", v);
	roundtrip("pat", 0x277, 0x0007010600070106ull);
	if (c[3] & (1 << 12)) {
		uint64_t cap;
		check(!probe_rdmsr(0xfe, &cap), "mtrrcap", "#GP");
		printf("# MTRRcap %lx\n", cap);
		roundtrip("mtrr-def-type", 0x2ff, 0xc06);
	}
	check(probe_rdmsr(0x4b564dff, &v) && last_fault.vector == 13, "unknown-msr-gp",
	      "rdmsr 0x4b564dff gave %lx", v);
}
