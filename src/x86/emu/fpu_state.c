/*
 * fpu_state.c: the x87/SSE *state* instructions (SDM Vol. 1 ch. 8, 10.5, §8.1.10 and
 * figures 8-9..8-12; Vol. 2): FNINIT, FNSTCW/FLDCW, FNSTSW, FNCLEX, FWAIT, FNSTENV/FLDENV
 * and FNSAVE/FRSTOR in their 16- and 32-bit, real- and protected-mode layouts, FXSAVE/
 * FXRSTOR (+64), LDMXCSR/STMXCSR, EMMS, with the CR0.TS/EM/MP and CR4.OSFXSR rules (#NM,
 * #UD). State lives in st.fxsave (FXSAVE layout); x87 arithmetic is sse_native.c's. A pending
 * x87 exception at a waiting instruction is #MF, or FERR# with CR0.NE=0 (emu_x87_wait).
 */
#include <string.h>
#include <Zydis/Zydis.h>
#include "x86/emu/simd.h"

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

/*
 * Change FSW.TOP keeping the physical registers: st.fxsave holds them in stack order
 * (ST(i) at 32 + 16 * i), so the slots rotate with TOP.
 */
static void x87_set_top(struct emu_cpu *cpu, unsigned top)
{
	uint16_t fsw = fx16(cpu, FX_FSW);
	unsigned old = (fsw >> 11) & 7;
	uint8_t regs[128];

	if (top == old)
		return;
	memcpy(regs, &cpu->st.fxsave[32], 128);
	for (unsigned i = 0; i < 8; i++)
		memcpy(&cpu->st.fxsave[32 + 16 * i], &regs[16 * ((i + top - old) & 7)], 16);
	fx16_set(cpu, FX_FSW, (uint16_t)((fsw & ~0x3800) | top << 11));
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
	x87_set_top(cpu, 0);
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
	if ((r = emu_x87_wait(cpu)))	/* FLDCW waits */
		return r;
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
	int r;

	if ((cpu->st.cr0 & (CR0_TS | CR0_MP)) == (CR0_TS | CR0_MP))
		return emu_fault(cpu, EMU_NM, 0, false);
	if ((r = emu_x87_wait(cpu)))
		return r;
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

/* ---- FNSTENV/FLDENV/FNSAVE/FRSTOR ---- */

/* Full tag word from the abridged one and the register contents (SDM §8.1.7, §10.5.1.1). */
static uint16_t ftw_full(const struct emu_cpu *cpu)
{
	unsigned top = (fx16(cpu, FX_FSW) >> 11) & 7;
	uint8_t abr = cpu->st.fxsave[FX_FTW];
	uint16_t ftw = 0;

	for (unsigned phys = 0; phys < 8; phys++) {
		const uint8_t *r = &cpu->st.fxsave[32 + 16 * ((phys - top) & 7)];
		uint64_t mant;
		uint16_t se;
		unsigned tag;

		memcpy(&mant, r, 8);
		memcpy(&se, r + 8, 2);
		if (!(abr >> phys & 1))
			tag = 3;
		else if ((se & 0x7fff) == 0x7fff)
			tag = 2;
		else if ((se & 0x7fff) == 0)
			tag = mant ? 2 : 1;
		else
			tag = mant >> 63 ? 0 : 2;
		ftw |= (uint16_t)(tag << (2 * phys));
	}
	return ftw;
}

static bool x87_real_format(const struct emu_cpu *cpu)
{
	return cpu->mode == EMU_MODE_REAL || cpu->mode == EMU_MODE_VM86;
}

/* The environment image: 14 bytes (16-bit operand size) or 28 bytes; returns its length. */
static unsigned env_build(struct emu_cpu *cpu, const struct emu_insn *in, uint8_t *env)
{
	uint32_t fip, fdp, fcs, fds, fop, w[7];
	uint16_t h[7];

	memcpy(&fip, &cpu->st.fxsave[8], 4);
	fcs = fx16(cpu, 12);
	memcpy(&fdp, &cpu->st.fxsave[16], 4);
	fds = fx16(cpu, 20);
	fop = fx16(cpu, 6) & 0x7ff;
	if (cpu->mode == EMU_MODE_LONG64)
		fcs = fds = 0;
	if (x87_real_format(cpu)) {
		fip += fcs << 4;
		fdp += fds << 4;
	}
	if (in->opsize == 2) {
		h[0] = fx16(cpu, FX_FCW);
		h[1] = fx16(cpu, FX_FSW);
		h[2] = ftw_full(cpu);
		h[3] = (uint16_t)fip;
		h[5] = (uint16_t)fdp;
		if (x87_real_format(cpu)) {
			h[4] = (uint16_t)(((fip >> 16) & 0xf) << 12 | fop);
			h[6] = (uint16_t)(((fdp >> 16) & 0xf) << 12);
		} else {
			h[4] = (uint16_t)fcs;
			h[6] = (uint16_t)fds;
		}
		memcpy(env, h, 14);
		return 14;
	}
	w[0] = 0xffff0000u | fx16(cpu, FX_FCW);
	w[1] = 0xffff0000u | fx16(cpu, FX_FSW);
	w[2] = 0xffff0000u | ftw_full(cpu);
	if (x87_real_format(cpu)) {
		w[3] = 0xffff0000u | (fip & 0xffff);
		w[4] = (fip >> 16) << 12 | fop;
		w[5] = 0xffff0000u | (fdp & 0xffff);
		w[6] = (fdp >> 16) << 12;
	} else {
		w[3] = fip;
		w[4] = fop << 16 | fcs;
		w[5] = fdp;
		w[6] = 0xffff0000u | fds;
	}
	memcpy(env, w, 28);
	return 28;
}

static void env_load(struct emu_cpu *cpu, const struct emu_insn *in, const uint8_t *env)
{
	uint32_t fip, fdp, fcs = 0, fds = 0, fop = 0, zero = 0;
	uint16_t fcw, fsw, ftw, fop16;
	uint8_t abr = 0;

	if (in->opsize == 2) {
		uint16_t h[7];

		memcpy(h, env, 14);
		fcw = h[0], fsw = h[1], ftw = h[2];
		fip = h[3], fdp = h[5];
		if (x87_real_format(cpu)) {
			fip |= (uint32_t)(h[4] >> 12) << 16;
			fop = h[4] & 0x7ff;
			fdp |= (uint32_t)(h[6] >> 12) << 16;
		} else {
			fcs = h[4], fds = h[6];
		}
	} else {
		uint32_t w[7];

		memcpy(w, env, 28);
		fcw = (uint16_t)w[0], fsw = (uint16_t)w[1], ftw = (uint16_t)w[2];
		if (x87_real_format(cpu)) {
			fip = (w[3] & 0xffff) | (w[4] >> 12) << 16;
			fop = w[4] & 0x7ff;
			fdp = (w[5] & 0xffff) | (w[6] >> 12) << 16;
		} else {
			fip = w[3], fcs = w[4] & 0xffff, fop = (w[4] >> 16) & 0x7ff;
			fdp = w[5], fds = w[6] & 0xffff;
		}
	}
	for (unsigned i = 0; i < 8; i++)
		if (((ftw >> (2 * i)) & 3) != 3)
			abr |= (uint8_t)(1u << i);
	x87_set_top(cpu, (fsw >> 11) & 7);
	fx16_set(cpu, FX_FCW, (fcw & 0x1f3f) | 0x40);
	fx16_set(cpu, FX_FSW, fsw);
	cpu->st.fxsave[FX_FTW] = abr;
	fop16 = (uint16_t)fop;
	memcpy(&cpu->st.fxsave[6], &fop16, 2);
	memcpy(&cpu->st.fxsave[8], &fip, 4);
	memcpy(&cpu->st.fxsave[12], &fcs, 4);
	memcpy(&cpu->st.fxsave[16], &fdp, 4);
	memcpy(&cpu->st.fxsave[20], &fds, 2);
	memcpy(&cpu->st.fxsave[22], &zero, 2);
	fsw_update(cpu);
}

static int env_operand(struct emu_cpu *cpu, const struct emu_insn *in, int *sreg, uint64_t *off)
{
	if (x87_check(cpu))
		return EMU_FAULT;
	if (in->op[0].kind != EMU_OPK_MEM)
		return emu_ud(cpu);
	emu_op_ea(cpu, in, 0, sreg, off);
	return 0;
}

static int exec_fnstenv(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint8_t img[28 + 80];
	unsigned n;
	uint64_t off;
	int sreg, r;
	bool save = in->mnemonic == ZYDIS_MNEMONIC_FNSAVE;

	if (env_operand(cpu, in, &sreg, &off))
		return EMU_FAULT;
	n = env_build(cpu, in, img);
	if (save)
		for (unsigned i = 0; i < 8; i++, n += 10)
			memcpy(&img[n], &cpu->st.fxsave[32 + 16 * i], 10);
	if ((r = emu_mem_write(cpu, sreg, off, img, n)))
		return r;
	if (save) {
		x87_set_top(cpu, 0);
		fx16_set(cpu, FX_FCW, 0x37f);
		fx16_set(cpu, FX_FSW, 0);
		cpu->st.fxsave[FX_FTW] = 0;
		memset(&cpu->st.fxsave[6], 0, 18);
	} else {
		fx16_set(cpu, FX_FCW, fx16(cpu, FX_FCW) | 0x3f);
		fsw_update(cpu);
	}
	return done(cpu, in);
}

static int exec_fldenv(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint8_t img[28 + 80];
	unsigned n = in->opsize == 2 ? 14 : 28;
	uint64_t off;
	int sreg, r;
	bool rstor = in->mnemonic == ZYDIS_MNEMONIC_FRSTOR;

	if (env_operand(cpu, in, &sreg, &off))
		return EMU_FAULT;
	if ((r = emu_x87_wait(cpu)))
		return r;
	if ((r = emu_mem_read(cpu, sreg, off, img, n + (rstor ? 80 : 0))))
		return r;
	env_load(cpu, in, img);
	if (rstor)
		for (unsigned i = 0; i < 8; i++) {
			memcpy(&cpu->st.fxsave[32 + 16 * i], &img[n + 10 * i], 10);
			memset(&cpu->st.fxsave[32 + 16 * i + 10], 0, 6);
		}
	return done(cpu, in);
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
	case ZYDIS_MNEMONIC_FNSTENV:
	case ZYDIS_MNEMONIC_FNSAVE: return exec_fnstenv;
	case ZYDIS_MNEMONIC_FLDENV:
	case ZYDIS_MNEMONIC_FRSTOR: return exec_fldenv;
	default:
		return NULL;
	}
}
