/*
 * fuzz_emu.c: libFuzzer target for the x86 interpreter. The input picks a start mode (real,
 * 16/32-bit protected, 64-bit with paging), registers and flags, and supplies the bytes of
 * the code (also repeated over the page holding the IVT/GDT/IDT), over a fake bus with 1 MiB
 * of RAM (MMIO and ports answer all ones; CPUID offers x87..SSSE3 and CX16; FERR# alternates
 * IGNNE#). emu_run gets a small budget: it must not crash or hang
 * and must not touch host memory outside the fake RAM (ASan checks).
 * Built and run briefly by tests/fuzz/run.sh:
 */
/* FUZZ_SOURCES: src/x86/emu/[a-z]*.c */
/* FUZZ_LIBS: -lZydis */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "x86/emu/emu.h"

#define RAM_SIZE (1u << 20)
#define TABLES 0x0000	/* IVT / GDT / IDT, from the input */
#define PML4 0x80000
#define CODE 0x10000

static uint8_t *ram;
static struct emu_machine *machine;
static struct emu_cpu *cpu;

static uint8_t *bus_page(void *o, uint64_t gpa, bool write)
{
	if (gpa >= RAM_SIZE)
		return NULL;
	if (write && gpa >= 0xf0000)	/* the top 64 KiB behaves as ROM */
		return NULL;
	return ram + (gpa & ~0xfffull);
}

static int bus_mmio(void *o, uint64_t gpa, unsigned size, bool write, uint64_t *val)
{
	if (!write)
		*val = ~0ull;
	return 0;
}

static int bus_pio(void *o, uint16_t port, unsigned size, bool write, uint32_t *val)
{
	if (!write)
		*val = 0xffffffffu;
	return port == 0xf4 && write ? -1 : 0;
}

static int bus_intr(void *o)
{
	return 0x20;
}

static void bus_cpuid(void *o, uint32_t leaf, uint32_t sub, uint32_t out[4])
{
	memset(out, 0, 16);
	if (leaf == 1) {
		out[3] = 0x07808179;	/* fpu pse tsc msr pae cx8 pge cmov mmx fxsr sse sse2 */
		out[2] = 1u << 0 | 1u << 9 | 1u << 13;	/* sse3 ssse3 cx16 */
	}
	else if (leaf == 0x80000000)
		out[0] = 0x80000008;
	else if (leaf == 0x80000001)
		out[3] = (1u << 11) | (1u << 20) | (1u << 29);
	else if (leaf == 0x80000008)
		out[0] = 36;
}

/* x87 FERR# with CR0.NE=0: IGNNE# on every other assertion (both paths run). */
static bool bus_ferr(void *o, bool asserted)
{
	static unsigned n;

	return asserted && (n++ & 1);
}

static int bus_msr(void *o, uint32_t idx, bool write, uint64_t *val)
{
	return -1;
}

static uint64_t bus_tsc(void *o)
{
	return 1000;
}

static const struct emu_bus bus = {
	.page_ptr = bus_page, .mmio = bus_mmio, .pio = bus_pio, .intr_ack = bus_intr,
	.cpuid = bus_cpuid, .msr = bus_msr, .tsc = bus_tsc, .ferr = bus_ferr,
};

static uint64_t take(const uint8_t **d, size_t *n, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes && *n; i++, (*d)++, (*n)--)
		v |= (uint64_t)**d << (8 * i);
	return v;
}

static void flat(struct emu_seg *s, uint16_t sel, uint32_t attr)
{
	s->sel = sel;
	s->base = 0;
	s->limit = 0xffffffff;
	s->attr = attr;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct emu_state st;
	unsigned mode;
	size_t n;

	if (!ram) {
		ram = calloc(1, RAM_SIZE);
		machine = emu_machine_create();
		cpu = emu_cpu_create(machine, &bus);
		if (!ram || !machine || !cpu)
			abort();
	}
	memset(ram, 0, RAM_SIZE);
	emu_machine_invalidate(machine, 0, RAM_SIZE);
	emu_reset_state(&st);
	/* Byte 0: mode; bytes 1-34 (when present): registers and flags, also executed as code. */
	mode = take(&data, &size, 1);
	for (int i = 0; i < 8; i++) {
		const uint8_t *d = data + 4 * i;
		size_t left = size > 4u * i ? size - 4u * i : 0;

		st.gpr[i] = take(&d, &left, 4);
	}
	if (size >= 34)
		st.rflags = ((data[32] | data[33] << 8) & 0x0cd5) | 2;
	/* The rest is the code; the descriptor-table page repeats the whole input. */
	memset(ram + CODE, 0xf4, 0x1000);	/* HLT after the code */
	memcpy(ram + CODE, data, size < 0x10000 ? size : 0x10000);
	for (size_t i = 0; size && i < 4096; i += size)
		memcpy(ram + TABLES + i, data, size < 4096 - i ? size : 4096 - i);
	st.gdtr_base = st.idtr_base = TABLES;
	st.gdtr_limit = 0x7ff;
	st.idtr_limit = 0xfff;
	st.rip = CODE;
	switch (mode & 3) {
	case 0:	/* real mode, CS:IP = 1000:0000 */
		st.seg[EMU_CS].sel = CODE >> 4;
		st.seg[EMU_CS].base = CODE;
		st.rip = 0;
		st.idtr_limit = 0x3ff;
		st.seg[EMU_CS].limit = (mode & 4) ? 0xffffffff : 0xffff;	/* unreal */
		break;
	case 1:	/* 32-bit protected mode, flat */
	case 2:	/* 16-bit protected mode */
		st.cr0 = 0x11;
		flat(&st.seg[EMU_CS], 0x08, (mode & 3) == 1 ? 0xc09b : 0x009b);
		for (int i = 0; i < EMU_NSREGS; i++)
			if (i != EMU_CS)
				flat(&st.seg[i], 0x10, 0xc093);
		st.tr = (struct emu_seg){ .sel = 0x18, .base = 0x100, .limit = 0x2067,
					  .attr = 0x8b };
		break;
	default:	/* 64-bit mode, 2 MiB identity page, CPL from the mode byte */
		st.cr0 = 0x80010031;
		st.cr4 = 0x220;
		st.efer = 0xd01;
		st.cr3 = PML4;
		memset(ram + PML4, 0, 0x3000);
		ram[PML4] = 0x07;
		ram[PML4 + 1] = 0x10;
		ram[PML4 + 2] = 0x08;
		ram[PML4 + 0x1000] = 0x07;
		ram[PML4 + 0x1001] = 0x20;
		ram[PML4 + 0x1002] = 0x08;
		ram[PML4 + 0x2000] = 0x87;
		for (int i = 0; i < EMU_NSREGS; i++)
			flat(&st.seg[i], 0x10, (mode & 4) ? 0xc0f3 : 0xc093);
		flat(&st.seg[EMU_CS], (mode & 4) ? 0x2b : 0x08, (mode & 4) ? 0xa0fb : 0xa09b);
		st.seg[EMU_SS].sel = (mode & 4) ? 0x23 : 0x10;
		st.tr = (struct emu_seg){ .sel = 0x18, .base = 0x100, .limit = 0x67,
					  .attr = 0x8b };
		for (int i = 8; i < 16; i++)
			st.gpr[i] = st.gpr[i - 8] * 0x10001;
		break;
	}
	st.gpr[EMU_RSP] = 0x8000 + (st.gpr[EMU_RSP] & 0xff);
	emu_set_state(cpu, &st);
	if (mode & 8)
		emu_raise_events(cpu, EMU_EV_INTR);
	if (mode & 16)
		emu_raise_events(cpu, EMU_EV_NMI);
	for (int i = 0; i < 3; i++) {
		enum emu_exit e = emu_run(cpu, 300);

		if (e != EMU_EXIT_HLT && e != EMU_EXIT_BUDGET)
			break;
	}
	emu_clear_events(cpu, ~0u);
	return 0;
}
