/*
 * sys_io.c: port I/O for the interpreter (SDM Vol. 1 §19.5, Vol. 2 "IN", "OUT", "INS",
 * "OUTS"): the IOPL check and the TSS I/O permission bitmap, IN/OUT with immediate or DX
 * port, INS/OUTS with REP through the core's string iteration, all to bus.pio.
 */
#include <Zydis/Zydis.h>
#include "x86/emu/emu_internal.h"


int emu_io_allowed(struct emu_cpu *cpu, uint16_t port, unsigned size)
{
	const struct emu_seg *tr = &cpu->st.tr;
	unsigned iopl = (cpu->st.rflags >> 12) & 3;
	uint16_t base, bits;
	uint32_t mask = ((1u << size) - 1) << (port & 7);

	if (cpu->mode == EMU_MODE_REAL || (cpu->mode != EMU_MODE_VM86 && cpu->cpl <= iopl))
		return EMU_OK;
	/* The I/O bitmap exists only in a 32-bit (or 64-bit) TSS. */
	if ((tr->attr & EMU_SEG_ATTR_UNUSABLE) || (EMU_SEG_ATTR_TYPE(tr->attr) & 0x9) != 0x9 ||
	    tr->limit < 0x67)
		return emu_gp0(cpu);
	if (emu_lin_read(cpu, tr->base + 0x66, &base, 2, EMU_ACC_IMPLICIT))
		return EMU_FAULT;
	if ((uint32_t)base + port / 8 + 1 > tr->limit)
		return emu_gp0(cpu);
	if (emu_lin_read(cpu, tr->base + base + port / 8, &bits, 2, EMU_ACC_IMPLICIT))
		return EMU_FAULT;
	if (bits & mask)
		return emu_gp0(cpu);
	return EMU_OK;
}

static int pio(struct emu_cpu *cpu, uint16_t port, unsigned size, bool write, uint32_t *val)
{
	if (!cpu->bus.pio) {
		if (!write)
			*val = 0xffffffffu;
		return 0;
	}
	return cpu->bus.pio(cpu->bus.opaque, port, size, write, val);
}

static int bus_stopped(struct emu_cpu *cpu)
{
	cpu->stop_reason = EMU_EXIT_BUS_STOP;
	return EMU_STOP;
}

static int exec_in_out(struct emu_cpu *cpu, const struct emu_insn *in)
{
	bool out = in->mnemonic == ZYDIS_MNEMONIC_OUT;
	int data = out ? 1 : 0, port_op = out ? 0 : 1;
	unsigned size = in->op[data].size;
	uint64_t port, v = 0;
	uint32_t val;
	int r, b;

	if ((r = emu_op_read(cpu, in, port_op, &port)))
		return r;
	port &= 0xffff;
	if ((r = emu_io_allowed(cpu, port, size)))
		return r;
	if (out && (r = emu_op_read(cpu, in, data, &v)))
		return r;
	val = v;
	b = pio(cpu, port, size, out, &val);
	if (!out && (r = emu_op_write(cpu, in, data, val & emu_size_mask(size))))
		return r;
	cpu->st.rip = emu_next_rip(cpu, in);
	return b < 0 ? bus_stopped(cpu) : EMU_OK;
}

/* Iterations of a REP INS/OUTS run per call before events get a look in. */
#define IO_REP_BATCH 4096

static int exec_ins_outs(struct emu_cpu *cpu, const struct emu_insn *in)
{
	bool out = in->mnemonic == ZYDIS_MNEMONIC_OUTSB || in->mnemonic == ZYDIS_MNEMONIC_OUTSW ||
		   in->mnemonic == ZYDIS_MNEMONIC_OUTSD;
	unsigned size = (in->mnemonic == ZYDIS_MNEMONIC_INSB ||
			 in->mnemonic == ZYDIS_MNEMONIC_OUTSB) ? 1 :
			(in->mnemonic == ZYDIS_MNEMONIC_INSW ||
			 in->mnemonic == ZYDIS_MNEMONIC_OUTSW) ? 2 : 4;
	bool rep = in->prefixes & (EMU_PFX_REP | EMU_PFX_REPNE);
	uint64_t am = emu_size_mask(in->addrsize), *g = cpu->st.gpr;
	int idx = out ? EMU_RSI : EMU_RDI;
	int sreg = EMU_ES;
	uint16_t port = g[EMU_RDX];
	int64_t step = (emu_get_rflags(cpu) & (1u << 10)) ? -(int64_t)size : size;
	unsigned n = 0;
	int r, b = 0;

	/* OUTS takes the memory operand's segment (override allowed); INS always uses ES. */
	for (int i = 0; out && i < in->nops; i++)
		if (in->op[i].kind == EMU_OPK_MEM)
			sreg = in->op[i].seg;
	if (out && in->nops == 0)
		sreg = EMU_DS;
	if ((r = emu_io_allowed(cpu, port, size)))
		return r;
	while (!rep || (g[EMU_RCX] & am)) {
		uint64_t off = g[idx] & am;
		uint32_t val = 0;

		if (out) {
			if ((r = emu_mem_read(cpu, sreg, off, &val, size)))
				return r;
			b = pio(cpu, port, size, true, &val);
		} else {
			uint64_t lin;

			/* Check the destination before the port is read. */
			if (emu_seg_lin(cpu, &cpu->st.seg[sreg], sreg, off, size, EMU_ACC_WRITE,
					&lin) ||
			    emu_lin_check(cpu, lin, size, EMU_ACC_WRITE))
				return EMU_FAULT;
			b = pio(cpu, port, size, false, &val);
			if ((r = emu_lin_write(cpu, lin, &val, size, 0)))
				return r;
		}
		g[idx] = (g[idx] & ~am) | ((off + step) & am);
		if (!rep)
			break;
		g[EMU_RCX] = (g[EMU_RCX] & ~am) | (((g[EMU_RCX] & am) - 1) & am);
		if (b < 0 || ++n >= IO_REP_BATCH)
			break;
	}
	if (!rep || !(g[EMU_RCX] & am))
		cpu->st.rip = emu_next_rip(cpu, in);
	return b < 0 ? bus_stopped(cpu) : EMU_OK;
}

emu_exec_fn emu_io_handler(unsigned m)
{
	switch (m) {
	case ZYDIS_MNEMONIC_IN:
	case ZYDIS_MNEMONIC_OUT: return exec_in_out;
	case ZYDIS_MNEMONIC_INSB:
	case ZYDIS_MNEMONIC_INSW:
	case ZYDIS_MNEMONIC_INSD:
	case ZYDIS_MNEMONIC_OUTSB:
	case ZYDIS_MNEMONIC_OUTSW:
	case ZYDIS_MNEMONIC_OUTSD: return exec_ins_outs;
	default: return NULL;
	}
}
