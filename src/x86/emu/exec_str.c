/*
 * exec_str.c: string instructions MOVS/CMPS/SCAS/LODS/STOS with REP/REPE/REPNE, address
 * size and segment overrides (SDM Vol. 2 "REP/REPE/REPZ/REPNE/REPNZ"), the REP iteration
 * helper the system half shares for INS/OUTS, and the BCD instructions DAA/DAS/AAA/AAS/
 * AAM/AAD (legal outside 64-bit mode; the decoder rejects them there). Long REP runs are
 * split into bounded slices so events are taken and the instruction resumes.
 */
#include "exec.h"

#define TRY(x)                                  \
	do {                                    \
		int rc_ = (x);                  \
		if (rc_)                        \
			return rc_;             \
	} while (0)

#define EMU_REP_SLICE 4096	/* iterations per handler call */

uint64_t emu_str_reg(struct emu_cpu *cpu, const struct emu_insn *in, int gpr)
{
	return cpu->st.gpr[gpr] & emu_size_mask(in->addrsize);
}

void emu_str_advance(struct emu_cpu *cpu, const struct emu_insn *in, int gpr)
{
	uint64_t m = emu_size_mask(in->addrsize), v = cpu->st.gpr[gpr];
	uint64_t d = (cpu->st.rflags & EMU_DF) ? -(uint64_t)in->opsize : in->opsize;

	cpu->st.gpr[gpr] = (v & ~m) | ((v + d) & m);
}

int emu_str_rep(struct emu_cpu *cpu, const struct emu_insn *in, emu_str_step_fn step, bool cond)
{
	uint64_t m = emu_size_mask(in->addrsize), next;
	unsigned n;

	next = (cpu->insn_rip + in->len) & emu_ip_mask(cpu);
	if (!(in->prefixes & (EMU_PFX_REP | EMU_PFX_REPNE))) {
		TRY(step(cpu, in));
		cpu->st.rip = next;
		return EMU_OK;
	}
	for (n = 0;; n++) {
		uint64_t c = cpu->st.gpr[EMU_RCX] & m;

		if (c == 0)
			break;
		if (n == EMU_REP_SLICE) {
			cpu->st.rip = cpu->insn_rip;	/* resume after events */
			return EMU_OK;
		}
		TRY(step(cpu, in));
		cpu->st.gpr[EMU_RCX] = (cpu->st.gpr[EMU_RCX] & ~m) | ((c - 1) & m);
		if (cond) {
			bool zf = emu_flag_zf(cpu);

			if ((in->prefixes & EMU_PFX_REPNE) ? zf : !zf)
				break;
		}
	}
	cpu->st.rip = next;
	return EMU_OK;
}

static int step_movs(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t v;

	TRY(emu_rd(cpu, in->op[1].seg, emu_str_reg(cpu, in, EMU_RSI), &v, in->opsize));
	TRY(emu_wr(cpu, EMU_ES, emu_str_reg(cpu, in, EMU_RDI), v, in->opsize));
	emu_str_advance(cpu, in, EMU_RSI);
	emu_str_advance(cpu, in, EMU_RDI);
	return EMU_OK;
}

static int step_stos(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t v = cpu->st.gpr[EMU_RAX];

	TRY(emu_wr(cpu, EMU_ES, emu_str_reg(cpu, in, EMU_RDI), v, in->opsize));
	emu_str_advance(cpu, in, EMU_RDI);
	return EMU_OK;
}

static int step_lods(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t v;

	TRY(emu_rd(cpu, in->op[1].seg, emu_str_reg(cpu, in, EMU_RSI), &v, in->opsize));
	emu_reg_set(cpu, EMU_RAX, in->opsize, v);
	emu_str_advance(cpu, in, EMU_RSI);
	return EMU_OK;
}

static int step_scas(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned sz = in->opsize;
	uint64_t v = 0, a = cpu->st.gpr[EMU_RAX] & emu_size_mask(sz);

	TRY(emu_rd(cpu, EMU_ES, emu_str_reg(cpu, in, EMU_RDI), &v, sz));
	emu_str_advance(cpu, in, EMU_RDI);
	emu_lf_set(cpu, LF_SUB, sz, a, v, a - v);
	return EMU_OK;
}

static int step_cmps(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned sz = in->opsize;
	uint64_t a = 0, b = 0;

	TRY(emu_rd(cpu, in->op[0].seg, emu_str_reg(cpu, in, EMU_RSI), &a, sz));
	TRY(emu_rd(cpu, EMU_ES, emu_str_reg(cpu, in, EMU_RDI), &b, sz));
	emu_str_advance(cpu, in, EMU_RSI);
	emu_str_advance(cpu, in, EMU_RDI);
	emu_lf_set(cpu, LF_SUB, sz, a, b, a - b);
	return EMU_OK;
}

static int exec_movs(struct emu_cpu *cpu, const struct emu_insn *in)
{
	return emu_str_rep(cpu, in, step_movs, false);
}

static int exec_stos(struct emu_cpu *cpu, const struct emu_insn *in)
{
	return emu_str_rep(cpu, in, step_stos, false);
}

static int exec_lods(struct emu_cpu *cpu, const struct emu_insn *in)
{
	return emu_str_rep(cpu, in, step_lods, false);
}

static int exec_scas(struct emu_cpu *cpu, const struct emu_insn *in)
{
	return emu_str_rep(cpu, in, step_scas, true);
}

static int exec_cmps(struct emu_cpu *cpu, const struct emu_insn *in)
{
	return emu_str_rep(cpu, in, step_cmps, true);
}

/* ---- BCD (SDM Vol. 2: DAA, DAS, AAA, AAS, AAM, AAD) ---- */

static int exec_daa_das(struct emu_cpu *cpu, const struct emu_insn *in)
{
	bool das = in->mnemonic == ZYDIS_MNEMONIC_DAS;
	uint64_t rf = emu_get_rflags(cpu);
	unsigned al = cpu->st.gpr[EMU_RAX] & 0xff, old = al;
	bool cf = rf & EMU_CF, af = false, ncf = false;

	if ((al & 0xf) > 9 || (rf & EMU_AF)) {
		ncf = cf || (das ? al < 6 : al > 0xf9);
		al = (das ? al - 6 : al + 6) & 0xff;
		af = true;
	}
	if (old > 0x99 || cf) {
		al = (das ? al - 0x60 : al + 0x60) & 0xff;
		ncf = true;
	}
	emu_reg_set(cpu, EMU_RAX, 1, al);
	emu_flags_set(cpu, EMU_ARITH & ~EMU_OF,
		      emu_szp(al, 1) | (ncf ? EMU_CF : 0) | (af ? EMU_AF : 0));
	return EMU_OK;
}

static int exec_aaa_aas(struct emu_cpu *cpu, const struct emu_insn *in)
{
	bool aas = in->mnemonic == ZYDIS_MNEMONIC_AAS;
	uint64_t rf = emu_get_rflags(cpu), ax = cpu->st.gpr[EMU_RAX] & 0xffff;
	bool adj = (ax & 0xf) > 9 || (rf & EMU_AF);

	if (adj) {
		if (aas) {
			ax = (ax - 6) & 0xffff;
			ax = (ax & 0xff) | (((ax >> 8) - 1) & 0xff) << 8;
		} else {
			ax = (ax + 0x106) & 0xffff;
		}
	}
	ax &= 0xff0f;
	emu_reg_set(cpu, EMU_RAX, 2, ax);
	emu_flags_set(cpu, EMU_ARITH & ~EMU_OF,
		      emu_szp(ax & 0xff, 1) | (adj ? EMU_CF | EMU_AF : 0));
	return EMU_OK;
}

static int exec_aam(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned base = in->op[0].imm & 0xff, al = cpu->st.gpr[EMU_RAX] & 0xff;

	if (base == 0)
		return emu_fault(cpu, EMU_DE, 0, false);
	emu_reg_set(cpu, EMU_RAX, 2, ((al / base) << 8) | (al % base));
	emu_flags_set(cpu, EMU_ARITH, emu_szp(al % base, 1));
	return EMU_OK;
}

static int exec_aad(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned base = in->op[0].imm & 0xff, ax = cpu->st.gpr[EMU_RAX] & 0xffff;
	unsigned al = ax & 0xff, t = (ax >> 8) * base, r = (al + t) & 0xff;
	uint32_t f = emu_szp(r, 1);

	/* CF/OF/AF as the 8-bit addition AL + AH*imm8 sets them (what hardware does) */
	if (r < al)
		f |= EMU_CF;
	if (((al ^ r) & ((t & 0xff) ^ r) & 0x80))
		f |= EMU_OF;
	f |= (al ^ t ^ r) & EMU_AF;
	emu_reg_set(cpu, EMU_RAX, 2, r);
	emu_flags_set(cpu, EMU_ARITH, f);
	return EMU_OK;
}

emu_exec_fn emu_str_handler(const struct emu_insn *in, unsigned mnemonic)
{
	/* MOVSD/CMPSD with operands are the SSE instructions */
	if (in->nops != 0 && mnemonic != ZYDIS_MNEMONIC_AAM && mnemonic != ZYDIS_MNEMONIC_AAD)
		return NULL;
	switch (mnemonic) {
	case ZYDIS_MNEMONIC_MOVSB: case ZYDIS_MNEMONIC_MOVSW:
	case ZYDIS_MNEMONIC_MOVSD: case ZYDIS_MNEMONIC_MOVSQ:
		return exec_movs;
	case ZYDIS_MNEMONIC_STOSB: case ZYDIS_MNEMONIC_STOSW:
	case ZYDIS_MNEMONIC_STOSD: case ZYDIS_MNEMONIC_STOSQ:
		return exec_stos;
	case ZYDIS_MNEMONIC_LODSB: case ZYDIS_MNEMONIC_LODSW:
	case ZYDIS_MNEMONIC_LODSD: case ZYDIS_MNEMONIC_LODSQ:
		return exec_lods;
	case ZYDIS_MNEMONIC_SCASB: case ZYDIS_MNEMONIC_SCASW:
	case ZYDIS_MNEMONIC_SCASD: case ZYDIS_MNEMONIC_SCASQ:
		return exec_scas;
	case ZYDIS_MNEMONIC_CMPSB: case ZYDIS_MNEMONIC_CMPSW:
	case ZYDIS_MNEMONIC_CMPSD: case ZYDIS_MNEMONIC_CMPSQ:
		return exec_cmps;
	case ZYDIS_MNEMONIC_DAA:
	case ZYDIS_MNEMONIC_DAS:
		return exec_daa_das;
	case ZYDIS_MNEMONIC_AAA:
	case ZYDIS_MNEMONIC_AAS:
		return exec_aaa_aas;
	case ZYDIS_MNEMONIC_AAM:
		return exec_aam;
	case ZYDIS_MNEMONIC_AAD:
		return exec_aad;
	default:
		return NULL;
	}
}
