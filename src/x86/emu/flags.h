/*
 * flags.h: lazy arithmetic flags for the interpreter core. ALU instructions record their
 * operands, result, size and kind; OF/SF/ZF/AF/PF/CF are computed only when something reads
 * them (Jcc, SETcc, PUSHF, ...). Instructions with unusual flag rules set flags eagerly with
 * emu_flags_set(). SDM Vol. 1 §3.4.3 and Appendix A (EFLAGS cross-reference).
 */
#ifndef KHYVE_EMU_FLAGS_H
#define KHYVE_EMU_FLAGS_H

#include "emu_internal.h"

#define EMU_CF 0x1u
#define EMU_PF 0x4u
#define EMU_AF 0x10u
#define EMU_ZF 0x40u
#define EMU_SF 0x80u
#define EMU_TF 0x100u
#define EMU_IF 0x200u
#define EMU_DF 0x400u
#define EMU_OF 0x800u
#define EMU_IOPL 0x3000u
#define EMU_NT 0x4000u
#define EMU_RF 0x10000u
#define EMU_VM 0x20000u
#define EMU_AC 0x40000u
#define EMU_VIF 0x80000u
#define EMU_VIP 0x100000u
#define EMU_ID 0x200000u
#define EMU_ARITH (EMU_CF | EMU_PF | EMU_AF | EMU_ZF | EMU_SF | EMU_OF)

/* Lazy flag kinds (cpu->lf_op). LF_NONE: st.rflags holds the arithmetic bits. */
enum {
	LF_NONE,
	LF_ADD,		/* res = src1 + src2 (+ lf_cin for ADC) */
	LF_SUB,		/* res = src1 - src2 (- lf_cin for SBB); also CMP, NEG (src1 = 0) */
	LF_LOGIC,	/* AND/OR/XOR/TEST: CF=OF=AF=0 */
	LF_INC,		/* like ADD with src2 = 1, CF = lf_cin */
	LF_DEC,		/* like SUB with src2 = 1, CF = lf_cin */
};

/* Size 0 (no lazy result recorded) gives bit 63, which callers then ignore. */
static inline uint64_t emu_sign_bit(unsigned size)
{
	return 1ull << ((size * 8 - 1) & 63);
}

/* Record a lazy result; `cin` is ADC/SBB's carry in, or the CF that INC/DEC keep. */
static inline void emu_lf_setc(struct emu_cpu *cpu, int op, unsigned size, bool cin,
			       uint64_t s1, uint64_t s2, uint64_t res)
{
	cpu->lf_kind = (uint32_t)op | size << 8 | (uint32_t)cin << 16;
	cpu->lf_src1 = s1;
	cpu->lf_src2 = s2;
	cpu->lf_res = res & emu_size_mask(size);
}

static inline void emu_lf_set(struct emu_cpu *cpu, int op, unsigned size, uint64_t s1,
			      uint64_t s2, uint64_t res)
{
	emu_lf_setc(cpu, op, size, false, s1, s2, res);
}

bool emu_lf_cf(const struct emu_cpu *cpu);
uint32_t emu_lf_compute(const struct emu_cpu *cpu);

static inline bool emu_flag_cf(const struct emu_cpu *cpu)
{
	if (cpu->lf_op == LF_NONE)
		return cpu->st.rflags & EMU_CF;
	return emu_lf_cf(cpu);
}

static inline bool emu_flag_zf(const struct emu_cpu *cpu)
{
	if (cpu->lf_op == LF_NONE)
		return cpu->st.rflags & EMU_ZF;
	return cpu->lf_res == 0;
}

static inline bool emu_flag_sf(const struct emu_cpu *cpu)
{
	if (cpu->lf_op == LF_NONE)
		return cpu->st.rflags & EMU_SF;
	return cpu->lf_res & emu_sign_bit(cpu->lf_size);
}

static inline bool emu_flag_of(const struct emu_cpu *cpu)
{
	if (cpu->lf_op == LF_NONE)
		return cpu->st.rflags & EMU_OF;
	return emu_lf_compute(cpu) & EMU_OF;
}

/* Make st.rflags hold the arithmetic flags (lazy state dropped). */
static inline void emu_flags_materialise(struct emu_cpu *cpu)
{
	if (cpu->lf_op != LF_NONE) {
		cpu->st.rflags = (cpu->st.rflags & ~(uint64_t)EMU_ARITH) | emu_lf_compute(cpu);
		cpu->lf_kind = LF_NONE;
	}
}

/* Set the arithmetic flags in `mask` to those of `val`, eagerly. */
static inline void emu_flags_set(struct emu_cpu *cpu, uint32_t mask, uint32_t val)
{
	if ((mask & EMU_ARITH) == EMU_ARITH)	/* all lazy flags replaced: nothing to compute */
		cpu->lf_kind = LF_NONE;
	else
		emu_flags_materialise(cpu);
	cpu->st.rflags = (cpu->st.rflags & ~(uint64_t)mask) | (val & mask);
}

static inline uint32_t emu_parity(uint64_t v)
{
	return __builtin_parity((unsigned)(v & 0xff)) ? 0 : EMU_PF;
}

/* ZF, SF and PF of a result of `size` bytes. */
static inline uint32_t emu_szp(uint64_t res, unsigned size)
{
	res &= emu_size_mask(size);
	return (res ? 0 : EMU_ZF) | ((res & emu_sign_bit(size)) ? EMU_SF : 0) | emu_parity(res);
}

/* Condition codes 0-15 as in Jcc's low opcode nibble. */
bool emu_cond(const struct emu_cpu *cpu, unsigned cc);

/* Masks of lazy-flag sizes 1, 2, 4 and 8 (one load instead of a variable shift). */
static const uint64_t emu_lf_masks[16] = {
	[1] = 0xff, [2] = 0xffff, [4] = 0xffffffff, [8] = ~0ull,
};

/*
 * emu_cond() for a constant `cc` in the common cases (after CMP/SUB, after TEST/AND/OR/XOR,
 * and with eager flags), computed straight from the lazy operands: 1 or 0, or -1 when
 * emu_cond() must decide.
 */
static inline __attribute__((always_inline)) int emu_cond_try(const struct emu_cpu *cpu,
							       unsigned cc)
{
	uint32_t kind = cpu->lf_kind, op = kind & 0xff;
	unsigned sz = (kind >> 8) & 0xff;
	uint64_t m = emu_lf_masks[sz & 15], sign = m ^ (m >> 1), r = cpu->lf_res;
	bool v;

	if (kind == (LF_SUB | sz << 8) && (cc >> 1) != 5 && (cc >> 1) != 0) {
		uint64_t a = cpu->lf_src1 & m, b = cpu->lf_src2 & m;
		int64_t sa = (int64_t)((a ^ sign) - sign), sb = (int64_t)((b ^ sign) - sign);

		switch (cc >> 1) {
		case 1:
			v = a < b;
			break;
		case 2:
			v = a == b;
			break;
		case 3:
			v = a <= b;
			break;
		case 4:
			v = r & sign;
			break;
		case 6:
			v = sa < sb;
			break;
		default:
			v = sa <= sb;
			break;
		}
		return (cc & 1) ? !v : v;
	}
	if (op == LF_NONE) {
		uint64_t f = cpu->st.rflags;

		switch (cc >> 1) {
		case 0:
			v = f & EMU_OF;
			break;
		case 1:
			v = f & EMU_CF;
			break;
		case 2:
			v = f & EMU_ZF;
			break;
		case 3:
			v = f & (EMU_CF | EMU_ZF);
			break;
		case 4:
			v = f & EMU_SF;
			break;
		case 5:
			v = f & EMU_PF;
			break;
		case 6:
			v = !(f & EMU_SF) != !(f & EMU_OF);
			break;
		default:
			v = (f & EMU_ZF) || (!(f & EMU_SF) != !(f & EMU_OF));
			break;
		}
		return (cc & 1) ? !v : v;
	}
	if (op == LF_LOGIC && (cc >> 1) != 5) {
		switch (cc >> 1) {
		case 0:
		case 1:
			v = false;
			break;
		case 2:
		case 3:
			v = r == 0;
			break;
		case 4:
		case 6:
			v = r & sign;
			break;
		default:
			v = r == 0 || (r & sign);
			break;
		}
		return (cc & 1) ? !v : v;
	}
	return -1;
}

static inline __attribute__((always_inline)) bool emu_cond_fast(const struct emu_cpu *cpu,
								 unsigned cc)
{
	int v = emu_cond_try(cpu, cc);

	return v >= 0 ? v : emu_cond(cpu, cc);
}

#endif
