/*
 * sys_io.c: port I/O for the interpreter (SDM Vol. 1 §19.5, Vol. 2 "IN", "OUT", "INS",
 * "OUTS"): the IOPL check and the TSS I/O permission bitmap, IN/OUT with immediate or DX
 * port, INS/OUTS with REP through the core's string iteration, all to bus.pio.
 */
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
