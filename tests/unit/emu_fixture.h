/*
 * emu_fixture.h: a small 64-bit machine for the interpreter's unit tests (test_emu_sys.c,
 * test_emu_debug.c): 4 MiB of RAM behind a fake emu_bus (one page may be made MMIO, with a
 * log of accesses), a GDT with ring 0/3 code and data and a 64-bit TSS, an identity map of the
 * 4 MiB, a HLT at every interrupt handler slot, 64-bit IDT gates, the 64-bit CPU state at
 * CPL 0 or 3, and a one-vCPU run harness.
 */
#ifndef KHYVE_TEST_EMU_FIXTURE_H
#define KHYVE_TEST_EMU_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include "x86/emu/emu.h"

#define RAM_SIZE (4u << 20)
#define GDT 0x1000
#define IDT 0x2000
#define TSS 0x3000
#define PML4 0x10000
#define PDPT 0x11000
#define PD 0x12000
#define PT 0x13000
#define CODE 0x100000
#define HANDLERS 0x101000	/* one HLT per vector, 16 bytes apart */
#define STACK0 0x180000		/* RSP0 */
#define STACK_IST 0x190000	/* IST1 */
#define STACK3 0x170000		/* ring 3 stack */

static uint8_t *ram;

/* Page of the 4 MiB that is MMIO instead of RAM (0 = none), and a log of MMIO accesses. */
static uint64_t mmio_page;
static struct {
	uint64_t gpa, val;
	unsigned size;
	bool write;
} mmio_log[16];
static int mmio_n;

static inline uint8_t *bus_page(void *o, uint64_t gpa, bool write)
{
	if (mmio_page && (gpa & ~0xfffull) == mmio_page)
		return NULL;
	return gpa < RAM_SIZE ? ram + (gpa & ~0xfffull) : NULL;
}

static inline int bus_mmio(void *o, uint64_t gpa, unsigned size, bool write, uint64_t *val)
{
	if (mmio_n < 16)
		mmio_log[mmio_n++] = (typeof(mmio_log[0])){ gpa, write ? *val : 0, size, write };
	if (!write)
		*val = ~0ull;
	return 0;
}

static inline int bus_pio(void *o, uint16_t port, unsigned size, bool write, uint32_t *val)
{
	if (!write)
		*val = 0xffffffffu;
	return 0;
}

static inline int bus_intr(void *o)
{
	return -1;
}

/* A small policy: FPU TSC MSR PAE PSE PGE CX8 FXSR SSE SSE2, SYSCALL NX LM. */
static inline void bus_cpuid(void *o, uint32_t leaf, uint32_t sub, uint32_t out[4])
{
	memset(out, 0, 16);
	if (leaf == 0)
		out[0] = 1;
	else if (leaf == 1)
		out[3] = (1u << 0) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) | (1u << 8) |
			 (1u << 13) | (1u << 24) | (1u << 25) | (1u << 26);
	else if (leaf == 0x80000000)
		out[0] = 0x80000008;
	else if (leaf == 0x80000001)
		out[3] = (1u << 11) | (1u << 20) | (1u << 29);
	else if (leaf == 0x80000008)
		out[0] = 40;
}

static inline int bus_msr(void *o, uint32_t idx, bool write, uint64_t *val)
{
	return -1;
}

static inline uint64_t bus_tsc(void *o)
{
	return 12345;
}

static const struct emu_bus bus = {
	.page_ptr = bus_page, .mmio = bus_mmio, .pio = bus_pio, .intr_ack = bus_intr,
	.cpuid = bus_cpuid, .msr = bus_msr, .tsc = bus_tsc,
};

static inline void put64(uint64_t a, uint64_t v)
{
	memcpy(ram + a, &v, 8);
}

static inline uint64_t get64(uint64_t a)
{
	uint64_t v;

	memcpy(&v, ram + a, 8);
	return v;
}

static inline void put_bytes(uint64_t a, const uint8_t *b, size_t n)
{
	memcpy(ram + a, b, n);
}

/*
 * GDT: 0x08 code64 DPL0, 0x10 data DPL0, 0x18 code32 DPL3, 0x20 data DPL3, 0x28 code64
 * DPL3, 0x30 64-bit TSS (16 bytes), 0x40 code32 DPL0, 0x48 data DPL0 with limit 0xfff.
 */
static inline void build_tables(void)
{
	memset(ram, 0, RAM_SIZE);
	put64(GDT + 0x08, 0x00af9b000000ffffull);
	put64(GDT + 0x10, 0x00cf93000000ffffull);
	put64(GDT + 0x18, 0x00cffb000000ffffull);
	put64(GDT + 0x20, 0x00cff3000000ffffull);
	put64(GDT + 0x28, 0x00affb000000ffffull);
	put64(GDT + 0x30, 0x0000890000000067ull | ((uint64_t)TSS << 16));
	put64(GDT + 0x38, 0);
	put64(GDT + 0x40, 0x00cf9b000000ffffull);
	put64(GDT + 0x48, 0x0040930000000fffull);
	/* TSS: RSP0, IST1 */
	put64(TSS + 4, STACK0);
	put64(TSS + 0x24, STACK_IST);
	/* Identity map of 4 MiB: 2 MiB page for the first, 4 KiB pages for the second. */
	put64(PML4, PDPT | 7);
	put64(PDPT, PD | 7);
	put64(PD, 0x000000 | 0x87);
	put64(PD + 8, PT | 7);
	for (int i = 0; i < 512; i++)
		put64(PT + i * 8, (0x200000ull + i * 4096) | 7);
	/* A HLT at every handler slot. */
	for (int v = 0; v < 256; v++)
		ram[HANDLERS + v * 16] = 0xf4;
}

static inline void gate64(int vec, unsigned dpl, unsigned ist, bool present)
{
	uint64_t h = HANDLERS + vec * 16;
	uint64_t lo = (h & 0xffff) | (0x08ull << 16) | ((uint64_t)ist << 32) |
		      (0xeull << 40) | ((uint64_t)dpl << 45) | ((uint64_t)present << 47) |
		      ((h >> 16) << 48);

	put64(IDT + vec * 16, lo);
	put64(IDT + vec * 16 + 8, h >> 32);
}

static inline void seg(struct emu_seg *s, uint16_t sel, uint32_t attr)
{
	s->sel = sel;
	s->base = 0;
	s->limit = 0xffffffff;
	s->attr = attr;
}

/* 64-bit mode at CPL 0 or 3, paging on, IDT of 64-bit gates for every vector. */
static inline void long_state(struct emu_state *st, int cpl)
{
	emu_reset_state(st);
	st->cr0 = 0x80010031;	/* PG WP NE ET PE */
	st->cr4 = 0x20;
	st->cr3 = PML4;
	st->efer = 0xd01;	/* SCE LME LMA NXE */
	st->gdtr_base = GDT;
	st->gdtr_limit = 0x4f;
	st->idtr_base = IDT;
	st->idtr_limit = 0xfff;
	st->tr = (struct emu_seg){ .sel = 0x30, .base = TSS, .limit = 0x67, .attr = 0x8b };
	st->ldtr = (struct emu_seg){ .attr = 1u << 16 };
	for (int i = 0; i < 6; i++)
		seg(&st->seg[i], 0, cpl ? 0xc0f3 : 0xc093);
	if (cpl) {
		seg(&st->seg[EMU_CS], 0x2b, 0xa0fb);
		seg(&st->seg[EMU_SS], 0x23, 0xc0f3);
		st->gpr[EMU_RSP] = STACK3;
	} else {
		seg(&st->seg[EMU_CS], 0x08, 0xa09b);
		seg(&st->seg[EMU_SS], 0x10, 0xc093);
		st->gpr[EMU_RSP] = STACK0 - 0x1000;
	}
	st->rip = CODE;
	st->rflags = 0x202;
	for (int v = 0; v < 256; v++)
		gate64(v, 0, 0, true);
}

struct vm {
	struct emu_machine *m;
	struct emu_cpu *cpu;
	struct emu_state st;
};

static inline void vm_start(struct vm *vm)
{
	if (!ram)
		ram = malloc(RAM_SIZE);
	build_tables();
	vm->m = emu_machine_create();
	vm->cpu = emu_cpu_create(vm->m, &bus);
}

static inline enum emu_exit vm_run(struct vm *vm)
{
	enum emu_exit e;

	emu_set_state(vm->cpu, &vm->st);
	e = emu_run(vm->cpu, 10000);
	emu_get_state(vm->cpu, &vm->st);
	if (e == EMU_EXIT_UNSUPPORTED || e == EMU_EXIT_TRIPLE_FAULT)
		printf("  exit %d: %s\n", e, emu_last_error(vm->cpu));
	return e;
}

static inline void vm_end(struct vm *vm)
{
	emu_cpu_destroy(vm->cpu);
	emu_machine_destroy(vm->m);
}

/* Which handler stopped the CPU (RIP is past its HLT), or -1. */
static inline int handler_taken(const struct emu_state *st)
{
	if (st->rip <= HANDLERS || st->rip > HANDLERS + 256 * 16 || (st->rip - 1) % 16)
		return -1;
	return (st->rip - 1 - HANDLERS) / 16;
}

#endif
