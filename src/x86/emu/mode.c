/*
 * mode.c: the interpreter's operating mode (SDM Vol. 3 §2.2, §9.8, §10.8.5): real, virtual-
 * 8086, 16/32-bit protected, compatibility and 64-bit mode from CR0.PE, EFLAGS.VM, EFER.LMA
 * and CS.L/D; CPL from SS.DPL as VMX keeps it; the RESET/INIT state (§10.1.1); and the
 * "unsupported" stop with mode, CS:RIP and instruction bytes.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "x86/emu/emu_internal.h"

#define CR0_PE (1ull << 0)
#define EFER_LMA (1ull << 10)
#define RFLAGS_VM (1ull << 17)

void emu_update_mode(struct emu_cpu *cpu)
{
	const struct emu_state *st = &cpu->st;
	uint32_t cs = st->seg[EMU_CS].attr, ss = st->seg[EMU_SS].attr;

	if (st->cr0 != cpu->sys.pg_cr0 || st->cr3 != cpu->sys.pg_cr3 ||
	    st->cr4 != cpu->sys.pg_cr4 || st->efer != cpu->sys.pg_efer)
		emu_tlb_flush(cpu);
	if (!(st->cr0 & CR0_PE)) {
		cpu->mode = EMU_MODE_REAL;
		cpu->cpl = 0;
	} else if (st->efer & EFER_LMA) {
		if (cs & EMU_SEG_ATTR_L)
			cpu->mode = EMU_MODE_LONG64;
		else
			cpu->mode = (cs & EMU_SEG_ATTR_DB) ? EMU_MODE_COMPAT32 : EMU_MODE_COMPAT16;
		cpu->cpl = EMU_SEG_ATTR_DPL(ss);
	} else if (st->rflags & RFLAGS_VM) {
		cpu->mode = EMU_MODE_VM86;
		cpu->cpl = 3;
	} else {
		cpu->mode = (cs & EMU_SEG_ATTR_DB) ? EMU_MODE_PROT32 : EMU_MODE_PROT16;
		cpu->cpl = EMU_SEG_ATTR_DPL(ss);
	}
	if (cpu->mode == EMU_MODE_LONG64) {
		cpu->code_size = 8;
		cpu->stack_size = 8;
	} else if (cpu->mode == EMU_MODE_VM86) {
		cpu->code_size = 2;
		cpu->stack_size = 2;
	} else {
		cpu->code_size = (cs & EMU_SEG_ATTR_DB) ? 4 : 2;
		cpu->stack_size = (ss & EMU_SEG_ATTR_DB) ? 4 : 2;
	}
}

void emu_sys_state_changed(struct emu_cpu *cpu)
{
	emu_tlb_flush(cpu);
	emu_update_mode(cpu);
	emu_dbg_update(cpu);
}

void emu_reset_state(struct emu_state *st)
{
	memset(st, 0, sizeof *st);
	st->rip = 0xfff0;
	st->rflags = 0x2;
	st->gpr[EMU_RDX] = 0x00000f00;	/* family 15; the accelerator puts its exact signature */
	for (int i = 0; i < EMU_NSREGS; i++) {
		st->seg[i].sel = 0;
		st->seg[i].base = 0;
		st->seg[i].limit = 0xffff;
		st->seg[i].attr = 0x93;
	}
	st->seg[EMU_CS].sel = 0xf000;
	st->seg[EMU_CS].base = 0xffff0000;
	st->seg[EMU_CS].attr = 0x9b;
	st->ldtr.limit = 0xffff;
	st->ldtr.attr = 0x82;
	st->tr.limit = 0xffff;
	st->tr.attr = 0x8b;
	st->gdtr_limit = 0xffff;
	st->idtr_limit = 0xffff;
	st->cr0 = 0x60000010;
	st->dr[6] = 0xffff0ff0;
	st->dr[7] = 0x400;
	st->xcr0 = 1;
	st->pat = 0x0007040600070406ull;
	st->mtrr_cap = 0x508;	/* 8 variable ranges, fixed ranges, write-combining */
	/* x87: FCW 0x0040 at RESET (FNINIT gives 0x037F); MXCSR 0x1F80 */
	st->fxsave[0] = 0x40;
	st->fxsave[24] = 0x80;
	st->fxsave[25] = 0x1f;
}

static const char *mode_name(enum emu_mode m)
{
	static const char *const names[] = {
		[EMU_MODE_REAL] = "real mode", [EMU_MODE_VM86] = "virtual-8086 mode",
		[EMU_MODE_PROT16] = "16-bit protected mode",
		[EMU_MODE_PROT32] = "32-bit protected mode",
		[EMU_MODE_COMPAT16] = "16-bit compatibility mode",
		[EMU_MODE_COMPAT32] = "32-bit compatibility mode",
		[EMU_MODE_LONG64] = "64-bit mode",
	};
	return (unsigned)m < sizeof names / sizeof names[0] ? names[m] : "unknown mode";
}

int emu_unsupported(struct emu_cpu *cpu, const char *fmt, ...)
{
	struct emu_pending_fault saved = cpu->fault;
	uint64_t cr2 = cpu->st.cr2;
	uint8_t bytes[15];
	unsigned n = 0;
	size_t len;
	va_list ap;

	/* Peek at the instruction bytes one by one; a fault here is not the guest's. */
	for (; n < sizeof bytes; n++) {
		uint64_t lin = cpu->st.seg[EMU_CS].base + cpu->insn_rip + n;

		if (cpu->mode != EMU_MODE_LONG64)
			lin = (uint32_t)lin;
		if (emu_lin_read(cpu, lin, &bytes[n], 1, EMU_ACC_EXEC))
			break;
	}
	cpu->fault = saved;
	cpu->st.cr2 = cr2;
	va_start(ap, fmt);
	len = vsnprintf(cpu->error, sizeof cpu->error, fmt, ap);
	va_end(ap);
	if (len >= sizeof cpu->error)
		len = sizeof cpu->error - 1;
	len += snprintf(cpu->error + len, sizeof cpu->error - len, " (%s, CS:RIP %04x:%llx, bytes",
			mode_name(cpu->mode), cpu->st.seg[EMU_CS].sel,
			(unsigned long long)cpu->insn_rip);
	for (unsigned i = 0; i < n && len < sizeof cpu->error; i++)
		len += snprintf(cpu->error + len, sizeof cpu->error - len, " %02x", bytes[i]);
	if (len < sizeof cpu->error)
		snprintf(cpu->error + len, sizeof cpu->error - len, ")");
	cpu->stop_reason = EMU_EXIT_UNSUPPORTED;
	return EMU_STOP;
}
