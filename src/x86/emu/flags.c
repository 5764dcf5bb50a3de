/*
 * flags.c: lazy EFLAGS evaluation (see flags.h), condition codes (SDM Vol. 1 Appendix B) and
 * the RFLAGS accessors used by both halves of the interpreter. Only the arithmetic flags are
 * lazy; control and system flags always live in st.rflags.
 */
#include "flags.h"

bool emu_lf_cf(const struct emu_cpu *cpu)
{
	uint64_t m = emu_size_mask(cpu->lf_size);
	uint64_t s1 = cpu->lf_src1 & m, s2 = cpu->lf_src2 & m, r = cpu->lf_res;

	switch (cpu->lf_op) {
	case LF_ADD:
		return cpu->lf_cin ? r <= s1 : r < s1;
	case LF_SUB:
		return cpu->lf_cin ? s1 <= s2 : s1 < s2;
	case LF_INC:
	case LF_DEC:
		return cpu->lf_cin;
	default:
		return false;
	}
}

uint32_t emu_lf_compute(const struct emu_cpu *cpu)
{
	unsigned size = cpu->lf_size;
	uint64_t m = emu_size_mask(size), sign = emu_sign_bit(size);
	uint64_t s1 = cpu->lf_src1 & m, s2 = cpu->lf_src2 & m, r = cpu->lf_res;
	uint32_t f = emu_szp(r, size);

	switch (cpu->lf_op) {
	case LF_ADD:
	case LF_INC:
		if ((s1 ^ r) & (s2 ^ r) & sign)
			f |= EMU_OF;
		f |= (s1 ^ s2 ^ r) & EMU_AF;
		break;
	case LF_SUB:
	case LF_DEC:
		if ((s1 ^ s2) & (s1 ^ r) & sign)
			f |= EMU_OF;
		f |= (s1 ^ s2 ^ r) & EMU_AF;
		break;
	default:
		break;
	}
	if (emu_lf_cf(cpu))
		f |= EMU_CF;
	return f;
}

bool emu_cond(const struct emu_cpu *cpu, unsigned cc)
{
	bool r;

	switch (cc >> 1) {
	case 0:
		r = emu_flag_of(cpu);
		break;
	case 1:
		r = emu_flag_cf(cpu);
		break;
	case 2:
		r = emu_flag_zf(cpu);
		break;
	case 3:
		r = emu_flag_cf(cpu) || emu_flag_zf(cpu);
		break;
	case 4:
		r = emu_flag_sf(cpu);
		break;
	case 5:
		if (cpu->lf_op == LF_NONE)
			r = cpu->st.rflags & EMU_PF;
		else
			r = emu_parity(cpu->lf_res);
		break;
	case 6:
		r = emu_flag_sf(cpu) != emu_flag_of(cpu);
		break;
	default:
		r = emu_flag_zf(cpu) || (emu_flag_sf(cpu) != emu_flag_of(cpu));
		break;
	}
	return (cc & 1) ? !r : r;
}

uint64_t emu_get_rflags(struct emu_cpu *cpu)
{
	emu_flags_materialise(cpu);
	return cpu->st.rflags;
}

void emu_set_rflags(struct emu_cpu *cpu, uint64_t rflags)
{
	const uint64_t valid = EMU_ARITH | EMU_TF | EMU_IF | EMU_DF | EMU_IOPL | EMU_NT | EMU_RF |
			       EMU_VM | EMU_AC | EMU_VIF | EMU_VIP | EMU_ID;

	cpu->lf_kind = LF_NONE;
	cpu->st.rflags = (rflags & valid) | 2;
}
