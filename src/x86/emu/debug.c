/*
 * debug.c: the debug facilities of SDM Vol. 3 ch. 18: instruction and data breakpoints in
 * DR0-DR3 (DR7 L/G enables, R/W and LEN fields, DR6 B0-B3), the single-step trap (BS) with
 * its exceptions (SYSCALL/SYSRET test TF after the instruction, MOV SS/POP SS suppress it and
 * delay data breakpoints by one instruction, §6.8.3), RF for instruction breakpoints. The run
 * loop steps one instruction at a time while any breakpoint is enabled. Left out: I/O
 * breakpoints (R/W=10), branch trace (BTF), and the Intel rule that MOV SS also blocks
 * instruction breakpoints (the CPUID policy is AMD's, which does not).
 */
#include <Zydis/Zydis.h>
#include "x86/emu/emu_internal.h"

#define RF_TF (1ull << 8)
#define RF_RF (1ull << 16)
#define DR6_BS (1ull << 14)

static unsigned bp_enabled(uint64_t dr7, unsigned n)
{
	return (dr7 >> (2 * n)) & 3;
}

static unsigned bp_rw(uint64_t dr7, unsigned n)
{
	return (dr7 >> (16 + 4 * n)) & 3;
}

static uint64_t bp_len(uint64_t dr7, unsigned n)
{
	static const uint8_t len[4] = { 1, 2, 8, 4 };

	return len[(dr7 >> (18 + 4 * n)) & 3];
}

void emu_dbg_update(struct emu_cpu *cpu)
{
	uint64_t dr7 = cpu->st.dr[7];

	cpu->sys.dr_exec = cpu->sys.dr_data = false;
	for (unsigned n = 0; n < 4; n++) {
		if (!bp_enabled(dr7, n))
			continue;
		if (bp_rw(dr7, n) == 0)
			cpu->sys.dr_exec = true;
		else if (bp_rw(dr7, n) != 2)
			cpu->sys.dr_data = true;
	}
	cpu->sys.dr_active = cpu->sys.dr_exec || cpu->sys.dr_data;
}

void emu_dbg_data(struct emu_cpu *cpu, uint64_t lin, unsigned size, bool write)
{
	uint64_t dr7 = cpu->st.dr[7];

	for (unsigned n = 0; n < 4; n++) {
		unsigned rw = bp_rw(dr7, n);
		uint64_t len = bp_len(dr7, n), a = cpu->st.dr[n] & ~(len - 1);

		if (!bp_enabled(dr7, n) || rw == 0 || rw == 2 || (rw == 1 && !write))
			continue;
		if (lin < a + len && a < lin + size)
			cpu->sys.db_hits |= 1u << n;
	}
}

/* Deliver a #DB with DR6's B0-B3 replaced by `hits` and BS added when `bs`. */
static int deliver_db(struct emu_cpu *cpu, unsigned hits, bool bs)
{
	uint64_t *dr6 = &cpu->st.dr[6];

	*dr6 = (*dr6 & ~0xfull) | hits | (bs ? DR6_BS : 0);
	return emu_deliver(cpu, EMU_DB, EMU_EVT_EXCEPTION, 0, false, cpu->st.rip);
}

int emu_dbg_before(struct emu_cpu *cpu, struct emu_dbg_insn *d)
{
	uint64_t dr7 = cpu->st.dr[7], lin = cpu->st.rip;
	unsigned hits = 0;

	d->tf = cpu->st.rflags & RF_TF;
	d->rf = cpu->st.rflags & RF_RF;
	cpu->sys.db_hits = 0;
	if (!cpu->sys.dr_exec || d->rf)
		return EMU_DBG_NONE;
	if (cpu->mode != EMU_MODE_LONG64)
		lin = (uint32_t)(lin + cpu->st.seg[EMU_CS].base);
	for (unsigned n = 0; n < 4; n++)
		if (bp_enabled(dr7, n) && bp_rw(dr7, n) == 0 && cpu->st.dr[n] == lin)
			hits |= 1u << n;
	if (!hits)
		return EMU_DBG_NONE;
	/* A fault: the handler returns with RF=1 to run the instruction once unchecked. */
	cpu->st.rflags |= RF_RF;
	return deliver_db(cpu, hits, false);
}

static bool is_sreg_ss(const struct emu_operand *op)
{
	return op->kind == EMU_OPK_REG && op->reg == EMU_REG_SREG + EMU_SS;
}

int emu_dbg_after(struct emu_cpu *cpu, const struct emu_insn *in,
		  const struct emu_dbg_insn *d, bool halted)
{
	unsigned m = in->mnemonic, hits = cpu->sys.db_hits;
	bool step = d->tf;

	cpu->sys.db_hits = 0;
	if (d->rf)
		cpu->st.rflags &= ~RF_RF;
	/* MOV SS/POP SS: no single-step trap, data breakpoints wait one instruction. */
	if ((m == ZYDIS_MNEMONIC_MOV || m == ZYDIS_MNEMONIC_POP) && is_sreg_ss(&in->op[0]) &&
	    cpu->st.interrupt_shadow) {
		cpu->sys.db_delayed |= hits;
		return EMU_DBG_NONE;
	}
	hits |= cpu->sys.db_delayed;
	cpu->sys.db_delayed = 0;
	switch (m) {
	case ZYDIS_MNEMONIC_SYSCALL:
		/* the trap follows TF as SYSCALL leaves it (SFMASK may clear it) */
		step = cpu->st.rflags & RF_TF;
		break;
	case ZYDIS_MNEMONIC_SYSRET:
		/* so does SYSRET's, already taken through emu_dbg_tf_after */
		step = false;
		break;
	case ZYDIS_MNEMONIC_INT1:
		/* ICEBP's own #DB already runs: it reports the breakpoints too */
		cpu->st.dr[6] |= hits;
		return EMU_DBG_NONE;
	case ZYDIS_MNEMONIC_INTO:
		/* INTO with OF=0 is an ordinary instruction */
		if (cpu->st.rip == ((cpu->insn_rip + in->len) & emu_size_mask(cpu->code_size)))
			break;
		/* fall through */
	case ZYDIS_MNEMONIC_INT:
	case ZYDIS_MNEMONIC_INT3:
		/* the handler starts with TF=0; breakpoint traps are taken at its entry */
		step = false;
		break;
	default:
		break;
	}
	if (halted && !step && !hits)
		return EMU_STOP;
	if (!step && !hits)
		return EMU_DBG_NONE;
	/* The trap is taken before the CPU would halt, at the instruction after HLT. */
	return deliver_db(cpu, hits, step);
}

int emu_dbg_mov_dr_gd(struct emu_cpu *cpu)
{
	cpu->st.dr[6] |= 1ull << 13;	/* BD */
	cpu->st.dr[7] &= ~(1ull << 13);	/* GD is cleared on entry to the handler */
	cpu->st.rflags |= RF_RF;	/* a fault: the pushed image has RF=1 */
	return emu_fault(cpu, EMU_DB, 0, false);
}

void emu_dbg_tf_after(struct emu_cpu *cpu)
{
	if (cpu->st.rflags & RF_TF) {
		cpu->sys.db_step = true;
		cpu->brk = true;
	}
}

int emu_dbg_step_trap(struct emu_cpu *cpu)
{
	unsigned hits = cpu->sys.db_hits;

	cpu->sys.db_step = false;
	cpu->sys.db_hits = 0;
	return deliver_db(cpu, hits, true);
}
