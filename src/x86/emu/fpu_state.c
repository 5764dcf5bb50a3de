/*
 * fpu_state.c: the x87/SSE *state* instructions a kernel or firmware runs at start-up (SDM
 * Vol. 1 ch. 8, 10.5; Vol. 2): FNINIT, FNSTCW/FLDCW, FNSTSW, FNCLEX, FWAIT, FXSAVE/FXRSTOR
 * (+64), LDMXCSR/STMXCSR, EMMS, with the CR0.TS/EM/MP and CR4.OSFXSR rules (#NM, #UD).
 * State lives in st.fxsave (FXSAVE layout). x87 arithmetic and the other x87 state forms
 * stop as unsupported after the #NM check; an unmasked pending x87 exception at FWAIT too.
 */
#include <string.h>
#include <Zydis/Zydis.h>
#include "x86/emu/emu_internal.h"

#define CR0_MP (1ull << 1)
#define CR0_EM (1ull << 2)
#define CR0_TS (1ull << 3)
#define CR0_NE (1ull << 5)
#define CR4_OSFXSR (1ull << 9)

#define FX_FCW 0
#define FX_FSW 2
#define FX_FTW 4
#define FX_MXCSR 24
#define FX_MXCSR_MASK 28
#define MXCSR_MASK 0xffffu	/* DAZ supported */

static uint16_t fx16(const struct emu_cpu *cpu, unsigned off)
{
	uint16_t v;

	memcpy(&v, &cpu->st.fxsave[off], 2);
	return v;
}

static void fx16_set(struct emu_cpu *cpu, unsigned off, uint16_t v)
{
	memcpy(&cpu->st.fxsave[off], &v, 2);
}

static uint32_t mxcsr(const struct emu_cpu *cpu)
{
	uint32_t v;

	memcpy(&v, &cpu->st.fxsave[FX_MXCSR], 4);
	return v;
}

/* FSW.ES/B follow the unmasked exception flags. */
static void fsw_update(struct emu_cpu *cpu)
{
	uint16_t fsw = fx16(cpu, FX_FSW), fcw = fx16(cpu, FX_FCW);

	if (fsw & ~fcw & 0x3f)
		fsw |= 0x8080;
	else
		fsw &= ~0x8080;
	fx16_set(cpu, FX_FSW, fsw);
}

static int x87_check(struct emu_cpu *cpu)
{
	if (cpu->st.cr0 & (CR0_EM | CR0_TS))
		return emu_fault(cpu, EMU_NM, 0, false);
	return 0;
}

static int done(struct emu_cpu *cpu, const struct emu_insn *in)
{
	cpu->st.rip = emu_next_rip(cpu, in);
	return EMU_OK;
}

static int exec_fninit(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (x87_check(cpu))
		return EMU_FAULT;
	fx16_set(cpu, FX_FCW, 0x37f);
	fx16_set(cpu, FX_FSW, 0);
	cpu->st.fxsave[FX_FTW] = 0;	/* abridged: all empty */
	memset(&cpu->st.fxsave[6], 0, 18);	/* FOP, FIP/FCS, FDP/FDS */
	return done(cpu, in);
}

static int exec_fnstcw(struct emu_cpu *cpu, const struct emu_insn *in)
{
	int r;

	if (x87_check(cpu))
		return EMU_FAULT;
	if ((r = emu_op_write(cpu, in, 0, fx16(cpu, FX_FCW))))
		return r;
	return done(cpu, in);
}

static int exec_fldcw(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t v;
	int r;

	if (x87_check(cpu))
		return EMU_FAULT;
	if ((r = emu_op_read(cpu, in, 0, &v)))
		return r;
	fx16_set(cpu, FX_FCW, (v & 0x1f3f) | 0x40);
	fsw_update(cpu);
	return done(cpu, in);
}

static int exec_fnstsw(struct emu_cpu *cpu, const struct emu_insn *in)
{
	int r;

	if (x87_check(cpu))
		return EMU_FAULT;
	if ((r = emu_op_write(cpu, in, 0, fx16(cpu, FX_FSW))))
		return r;
	return done(cpu, in);
}

static int exec_fnclex(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (x87_check(cpu))
		return EMU_FAULT;
	fx16_set(cpu, FX_FSW, fx16(cpu, FX_FSW) & ~0x80ff);
	return done(cpu, in);
}

static int exec_fwait(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if ((cpu->st.cr0 & (CR0_TS | CR0_MP)) == (CR0_TS | CR0_MP))
		return emu_fault(cpu, EMU_NM, 0, false);
	if (fx16(cpu, FX_FSW) & 0x80) {
		if (cpu->st.cr0 & CR0_NE)
			return emu_fault(cpu, EMU_MF, 0, false);
		return emu_unsupported(cpu, "FWAIT with a pending x87 exception and CR0.NE=0 "
					    "(FERR#/IRQ 13 is not modelled)");
	}
	return done(cpu, in);
}

static int exec_emms(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (cpu->st.cr0 & CR0_EM)
		return emu_ud(cpu);
	if (cpu->st.cr0 & CR0_TS)
		return emu_fault(cpu, EMU_NM, 0, false);
	cpu->st.fxsave[FX_FTW] = 0;
	return done(cpu, in);
}

static int sse_state_check(struct emu_cpu *cpu, bool need_osfxsr)
{
	emu_sys_features(cpu);
	if (!cpu->sys.has_fxsr || (cpu->st.cr0 & CR0_EM) ||
	    (need_osfxsr && !(cpu->st.cr4 & CR4_OSFXSR)))
		return emu_ud(cpu);
	if (cpu->st.cr0 & CR0_TS)
		return emu_fault(cpu, EMU_NM, 0, false);
	return 0;
}

static int exec_ldmxcsr(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t v;
	uint32_t m;
	int r;

	if (sse_state_check(cpu, true))
		return EMU_FAULT;
	if ((r = emu_op_read(cpu, in, 0, &v)))
		return r;
	if (v & ~(uint64_t)MXCSR_MASK)
		return emu_gp0(cpu);
	m = v;
	memcpy(&cpu->st.fxsave[FX_MXCSR], &m, 4);
	return done(cpu, in);
}

static int exec_stmxcsr(struct emu_cpu *cpu, const struct emu_insn *in)
{
	int r;

	if (sse_state_check(cpu, true))
		return EMU_FAULT;
	if ((r = emu_op_write(cpu, in, 0, mxcsr(cpu))))
		return r;
	return done(cpu, in);
}

/* Bytes of the image FXSAVE writes: XMM8-15 only in 64-bit mode. */
static unsigned fx_len(const struct emu_cpu *cpu)
{
	return cpu->mode == EMU_MODE_LONG64 ? 416 : 288;
}

static int fx_operand(struct emu_cpu *cpu, const struct emu_insn *in, int *sreg, uint64_t *off)
{
	if (in->op[0].kind != EMU_OPK_MEM)
		return emu_ud(cpu);
	emu_op_ea(cpu, in, 0, sreg, off);
	if ((cpu->st.seg[*sreg].base + *off) & 15)
		return emu_gp0(cpu);
	return 0;
}

static int exec_fxsave(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint32_t mask = MXCSR_MASK;
	uint64_t off;
	int sreg, r;

	if (sse_state_check(cpu, false) || fx_operand(cpu, in, &sreg, &off))
		return EMU_FAULT;
	memcpy(&cpu->st.fxsave[FX_MXCSR_MASK], &mask, 4);
	if ((r = emu_mem_write(cpu, sreg, off, cpu->st.fxsave, fx_len(cpu))))
		return r;
	return done(cpu, in);
}

static int exec_fxrstor(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint8_t img[512];
	uint32_t m;
	uint64_t off;
	int sreg, r;

	if (sse_state_check(cpu, false) || fx_operand(cpu, in, &sreg, &off))
		return EMU_FAULT;
	if ((r = emu_mem_read(cpu, sreg, off, img, fx_len(cpu))))
		return r;
	memcpy(&m, &img[FX_MXCSR], 4);
	if (m & ~MXCSR_MASK)
		return emu_gp0(cpu);
	memcpy(cpu->st.fxsave, img, fx_len(cpu));
	fsw_update(cpu);
	return done(cpu, in);
}

static int exec_x87_unsupported(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (x87_check(cpu))
		return EMU_FAULT;
	return emu_unsupported(cpu, "x87 instruction (arithmetic and the FSAVE/FLDENV family "
				    "are not implemented yet)");
}

emu_exec_fn emu_fpu_handler(unsigned m)
{
	switch (m) {
	case ZYDIS_MNEMONIC_FNINIT: return exec_fninit;
	case ZYDIS_MNEMONIC_FNSTCW: return exec_fnstcw;
	case ZYDIS_MNEMONIC_FLDCW: return exec_fldcw;
	case ZYDIS_MNEMONIC_FNSTSW: return exec_fnstsw;
	case ZYDIS_MNEMONIC_FNCLEX: return exec_fnclex;
	case ZYDIS_MNEMONIC_FWAIT: return exec_fwait;
	case ZYDIS_MNEMONIC_EMMS: return exec_emms;
	case ZYDIS_MNEMONIC_LDMXCSR: return exec_ldmxcsr;
	case ZYDIS_MNEMONIC_STMXCSR: return exec_stmxcsr;
	case ZYDIS_MNEMONIC_FXSAVE:
	case ZYDIS_MNEMONIC_FXSAVE64: return exec_fxsave;
	case ZYDIS_MNEMONIC_FXRSTOR:
	case ZYDIS_MNEMONIC_FXRSTOR64: return exec_fxrstor;
	default:
		break;
	}
	/* Every other x87 mnemonic (F... between FABS and FYL2XP1). */
	if (m >= ZYDIS_MNEMONIC_F2XM1 && m <= ZYDIS_MNEMONIC_FYL2XP1)
		return exec_x87_unsupported;
	return NULL;
}
