/*
 * emu_mips.c: guest instructions per second of the software CPU on an integer workload
 * (sieve, insertion sort of LCG words, bitwise CRC32, 64-bit multiply/divide: the mix of
 * softcpu.md §1.2). The workload is a C function of this program, compiled for general
 * registers only; its machine code is copied into a flat 64-bit guest and run with
 * emu_run() until it returns to a HLT.
 *   make && cc -O2 -Isrc bench/emu_mips.c build/libkhyve.a -lZydis -lpthread -o build/emu_mips
 *   build/emu_mips [iterations]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "x86/emu/emu.h"

#define RAM_SIZE (16u << 20)
#define CODE_GPA 0x100000
#define DATA_GPA 0x400000
#define STACK_TOP 0x300000
#define RET_GPA 0x2ff000

__attribute__((noinline, optimize("O1"), target("general-regs-only")))
static uint64_t workload(uint8_t *mem, uint64_t iters)
{
	uint64_t sum = 0;

	for (uint64_t it = 0; it < iters; it++) {
		uint8_t *sieve = mem;
		uint32_t *words = (uint32_t *)(mem + 65536);
		uint32_t seed = 12345 + (uint32_t)it, crc = 0xffffffff;
		uint64_t x = 0x123456789abcdefull + it, y = 0;

		for (unsigned i = 0; i < 65536; i++)
			sieve[i] = 1;
		for (unsigned i = 2; i * i < 65536; i++)
			if (sieve[i])
				for (unsigned j = i * i; j < 65536; j += i)
					sieve[j] = 0;
		for (unsigned i = 0; i < 65536; i++)
			sum += sieve[i];
		for (unsigned i = 0; i < 1024; i++) {
			uint32_t v;
			unsigned j = i;

			seed = seed * 1103515245u + 12345u;
			v = seed >> 8;
			while (j > 0 && words[j - 1] > v) {
				words[j] = words[j - 1];
				j--;
			}
			words[j] = v;
		}
		sum += words[512];
		for (unsigned i = 0; i < 4096; i++) {
			crc ^= mem[i + 70000];
			for (int k = 0; k < 8; k++)
				crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
		}
		sum += crc;
		for (unsigned i = 1; i < 20000; i++) {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			y += x / (i | 1) + x % 977;
		}
		sum += y;
	}
	return sum;
}

static uint8_t *ram;

static uint8_t *page_ptr(void *o, uint64_t gpa, bool w)
{
	return gpa < RAM_SIZE ? ram + (gpa & ~0xfffull) : NULL;
}

static int mmio(void *o, uint64_t gpa, unsigned size, bool w, uint64_t *v)
{
	if (!w)
		*v = ~0ull;
	return 0;
}

static int pio(void *o, uint16_t port, unsigned size, bool w, uint32_t *v)
{
	if (!w)
		*v = ~0u;
	return 0;
}

static int intr_ack(void *o)
{
	return -1;
}

static void cpuid(void *o, uint32_t leaf, uint32_t sub, uint32_t out[4])
{
	memset(out, 0, 16);
	if (leaf == 0x80000000)
		out[0] = 0x80000008;
	else if (leaf == 0x80000001)
		out[3] = (1u << 11) | (1u << 20) | (1u << 29);
	else if (leaf == 0x80000008)
		out[0] = 0x3028;
}

static int msr(void *o, uint32_t i, bool w, uint64_t *v)
{
	return -1;
}

static uint64_t tsc(void *o)
{
	return 0;
}

/* CPU time of this thread: other load on the machine does not count against the guest. */
static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	uint64_t iters = argc > 1 ? strtoull(argv[1], NULL, 0) : 20;
	struct emu_bus bus = { .page_ptr = page_ptr, .mmio = mmio, .pio = pio,
			       .intr_ack = intr_ack, .cpuid = cpuid, .msr = msr, .tsc = tsc };
	struct emu_machine *m = emu_machine_create();
	struct emu_cpu *cpu;
	struct emu_state st;
	uint64_t ret = RET_GPA, native_sum, n;
	enum emu_exit e;
	double t0, t1, t2;

	ram = calloc(1, RAM_SIZE);
	cpu = m ? emu_cpu_create(m, &bus) : NULL;
	if (!ram || !cpu) {
		fprintf(stderr, "emu_mips: cannot create the CPU\n");
		return 1;
	}
	/* identity map of the first GiB with 2 MiB pages */
	memcpy(ram + 0x1000, &(uint64_t){ 0x2003 }, 8);
	memcpy(ram + 0x2000, &(uint64_t){ 0x3003 }, 8);
	for (uint64_t i = 0; i < 512; i++)
		memcpy(ram + 0x3000 + i * 8, &(uint64_t){ (i << 21) | 0x83 }, 8);
	memcpy(ram + 0x4008, &(uint64_t){ 0x00209a0000000000ull }, 8);
	memcpy(ram + 0x4010, &(uint64_t){ 0x00cf92000000ffffull }, 8);
	memcpy(ram + CODE_GPA, (const void *)workload, 8192);
	ram[RET_GPA] = 0xf4;
	memcpy(ram + STACK_TOP - 8, &ret, 8);

	emu_reset_state(&st);
	st.cr0 = 0x80000031;
	st.cr3 = 0x1000;
	st.cr4 = 0x20;
	st.efer = 0x500;
	st.gdtr_base = 0x4000;
	st.gdtr_limit = 0x17;
	for (int s = 0; s < EMU_NSREGS; s++)
		st.seg[s] = (struct emu_seg){ .base = 0, .limit = 0xffffffff, .sel = 0x10,
					      .attr = 0xc093 };
	st.seg[EMU_CS] = (struct emu_seg){ .limit = 0xffffffff, .sel = 0x08, .attr = 0xa09b };
	st.tr.attr = 0x8b;
	st.tr.limit = 0x67;
	st.ldtr.attr = EMU_SEG_ATTR_UNUSABLE;
	st.rip = CODE_GPA;
	st.rflags = 2;
	st.gpr[EMU_RSP] = STACK_TOP - 8;
	st.gpr[EMU_RDI] = DATA_GPA;
	st.gpr[EMU_RSI] = iters;
	emu_set_state(cpu, &st);

	t0 = now();
	native_sum = workload(calloc(1, RAM_SIZE), iters);
	t1 = now();
	do
		e = emu_run(cpu, 100000);
	while (e == EMU_EXIT_BUDGET);
	t2 = now();
	emu_get_state(cpu, &st);
	n = emu_insn_count(cpu);
	if (e != EMU_EXIT_HLT || st.gpr[EMU_RAX] != native_sum) {
		fprintf(stderr, "emu_mips: guest stopped with %d (%s), rax %#llx want %#llx\n", e,
			emu_last_error(cpu), (unsigned long long)st.gpr[EMU_RAX],
			(unsigned long long)native_sum);
		return 1;
	}
	printf("emu_mips: %llu guest instructions in %.3f s of CPU time: %.1f M instr/s "
	       "(native %.3f s, %.1fx slower)\n",
	       (unsigned long long)n, t2 - t1, n / (t2 - t1) / 1e6, t1 - t0,
	       (t2 - t1) / (t1 - t0));
	emu_cpu_destroy(cpu);
	emu_machine_destroy(m);
	free(ram);
	return 0;
}
