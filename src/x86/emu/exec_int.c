/*
 * exec_int.c: general-purpose integer instructions (SDM Vol. 2): ALU, INC/DEC/NEG/NOT,
 * shifts and rotates (with the count masking and CF/OF rules of hardware), SHLD/SHRD,
 * MUL/IMUL/DIV/IDIV (#DE), BT/BTS/BTR/BTC (memory bit offsets beyond the operand), BSF/BSR,
 * CMPXCHG/CMPXCHG8B/XADD/XCHG, BSWAP, moves and extensions, SETcc/CMOVcc, flag and
 * conversion instructions. LOCKed read-modify-writes use host atomics on guest RAM.
 */
#include "exec.h"

#define TRY(x)                                  \
	do {                                    \
		int rc_ = (x);                  \
		if (rc_)                        \
			return rc_;             \
	} while (0)

enum { ALU_ADD, ALU_OR, ALU_ADC, ALU_SBB, ALU_AND, ALU_SUB, ALU_XOR, ALU_CMP, ALU_TEST };

static inline uint64_t alu_calc(int op, uint64_t a, uint64_t b, bool cin)
{
	switch (op) {
	case ALU_ADD:
		return a + b;
	case ALU_ADC:
		return a + b + cin;
	case ALU_SBB:
		return a - b - cin;
	case ALU_SUB:
	case ALU_CMP:
		return a - b;
	case ALU_AND:
	case ALU_TEST:
		return a & b;
	case ALU_OR:
		return a | b;
	default:
		return a ^ b;
	}
}

static inline void alu_flags(struct emu_cpu *cpu, int op, unsigned sz, uint64_t a, uint64_t b,
			     uint64_t r, bool cin)
{
	switch (op) {
	case ALU_ADD:
	case ALU_ADC:
		emu_lf_setc(cpu, LF_ADD, sz, cin, a, b, r);
		break;
	case ALU_SUB:
	case ALU_SBB:
	case ALU_CMP:
		emu_lf_setc(cpu, LF_SUB, sz, cin, a, b, r);
		break;
	default:
		emu_lf_set(cpu, LF_LOGIC, sz, a, b, r);
		break;
	}
}

/*
 * Atomic read-modify-write of a memory operand for LOCK/XCHG: `calc` gives the new value
 * from the old one. *old receives the previous value. Falls back to read+write when the
 * system half has no host pointer (MMIO, page-crossing).
 */
typedef uint64_t (*rmw_calc)(uint64_t old, uint64_t a1, uint64_t a2);

static int mem_rmw(struct emu_cpu *cpu, const struct emu_insn *in, int idx, uint64_t ea_adj,
		   rmw_calc calc, uint64_t a1, uint64_t a2, uint64_t *old)
{
	const struct emu_operand *op = &in->op[idx];
	unsigned sz = op->size;
	uint64_t off = (emu_ea_off(cpu, in, op) + ea_adj) & emu_size_mask(in->addrsize), nv;
	void *p = emu_mem_rmw_ptr(cpu, op->seg, off, sz);

	if (!p) {
		if (cpu->fault.pending)
			return EMU_FAULT;
		*old = 0;
		TRY(emu_mread(cpu, op->seg, off, old, sz));
		nv = calc(*old, a1, a2);
		return emu_mwrite(cpu, op->seg, off, &nv, sz);
	}
#define RMW_CASE(T)                                                                      \
	{                                                                                \
		T o = __atomic_load_n((T *)p, __ATOMIC_RELAXED);                        \
		T n;                                                                     \
		do {                                                                     \
			n = (T)calc(o, a1, a2);                                          \
		} while (!__atomic_compare_exchange_n((T *)p, &o, n, false, __ATOMIC_SEQ_CST, \
						      __ATOMIC_RELAXED));                \
		*old = o;                                                                \
		break;                                                                   \
	}
	switch (sz) {
	case 1:
		RMW_CASE(uint8_t)
	case 2:
		RMW_CASE(uint16_t)
	case 4:
		RMW_CASE(uint32_t)
	default:
		RMW_CASE(uint64_t)
	}
#undef RMW_CASE
	return EMU_OK;
}

static uint64_t calc_add(uint64_t o, uint64_t b, uint64_t c) { return o + b + c; }
static uint64_t calc_sub(uint64_t o, uint64_t b, uint64_t c) { return o - b - c; }
static uint64_t calc_and(uint64_t o, uint64_t b, uint64_t c) { return o & b; }
static uint64_t calc_or(uint64_t o, uint64_t b, uint64_t c) { return o | b; }
static uint64_t calc_xor(uint64_t o, uint64_t b, uint64_t c) { return o ^ b; }
static uint64_t calc_set(uint64_t o, uint64_t b, uint64_t c) { return b; }
static uint64_t calc_neg(uint64_t o, uint64_t b, uint64_t c) { return -o; }
static uint64_t calc_not(uint64_t o, uint64_t b, uint64_t c) { return ~o; }
static uint64_t calc_cmpxchg(uint64_t o, uint64_t acc, uint64_t src)
{
	return o == acc ? src : o;
}

static int alu_locked(struct emu_cpu *cpu, const struct emu_insn *in, int op, uint64_t b)
{
	unsigned sz = in->op[0].size;
	uint64_t m = emu_size_mask(sz), a, r;
	bool cin = (op == ALU_ADC || op == ALU_SBB) && emu_flag_cf(cpu);
	static const rmw_calc fns[] = {
		[ALU_ADD] = calc_add, [ALU_OR] = calc_or, [ALU_ADC] = calc_add,
		[ALU_SBB] = calc_sub, [ALU_AND] = calc_and, [ALU_SUB] = calc_sub,
		[ALU_XOR] = calc_xor,
	};

	TRY(mem_rmw(cpu, in, 0, 0, fns[op], b & m, cin, &a));
	r = alu_calc(op, a, b, cin) & m;
	alu_flags(cpu, op, sz, a, b, r, cin);
	return EMU_OK;
}

#define DEF_ALU(name, OP, WB)                                                            \
	static int name(struct emu_cpu *cpu, const struct emu_insn *in)                  \
	{                                                                                \
		uint64_t a, b, r;                                                        \
		unsigned sz = in->op[0].size;                                            \
		bool cin = false;                                                        \
		TRY(emu_opr(cpu, in, 1, &b));                                            \
		if (WB && (in->prefixes & EMU_PFX_LOCK))                                 \
			return alu_locked(cpu, in, OP, b);                               \
		TRY(emu_opr(cpu, in, 0, &a));                                            \
		if (OP == ALU_ADC || OP == ALU_SBB)                                      \
			cin = emu_flag_cf(cpu);                                          \
		r = alu_calc(OP, a, b, cin) & emu_size_mask(sz);                         \
		if (WB)                                                                  \
			TRY(emu_opw(cpu, in, 0, r));                                     \
		alu_flags(cpu, OP, sz, a, b, r, cin);                                    \
		return emu_next(cpu, in);                                                \
	}                                                                                \
	static int name##_rr(struct emu_cpu *cpu, const struct emu_insn *in)             \
	{                                                                                \
		unsigned sz = in->op[0].size;                                            \
		uint64_t m = emu_size_mask(sz);                                          \
		uint64_t a = cpu->st.gpr[in->op[0].reg] & m;                             \
		uint64_t b = cpu->st.gpr[in->op[1].reg] & m, r;                          \
		bool cin = false;                                                        \
		if (OP == ALU_ADC || OP == ALU_SBB)                                      \
			cin = emu_flag_cf(cpu);                                          \
		r = alu_calc(OP, a, b, cin) & m;                                         \
		if (WB)                                                                  \
			emu_reg_set(cpu, in->op[0].reg, sz, r);                          \
		alu_flags(cpu, OP, sz, a, b, r, cin);                                    \
		return emu_next_reg(cpu, in);                                            \
	}                                                                                \
	static int name##_ri(struct emu_cpu *cpu, const struct emu_insn *in)             \
	{                                                                                \
		unsigned sz = in->op[0].size;                                            \
		uint64_t m = emu_size_mask(sz);                                          \
		uint64_t a = cpu->st.gpr[in->op[0].reg] & m;                             \
		uint64_t b = in->op[1].imm & m, r;                                       \
		bool cin = false;                                                        \
		if (OP == ALU_ADC || OP == ALU_SBB)                                      \
			cin = emu_flag_cf(cpu);                                          \
		r = alu_calc(OP, a, b, cin) & m;                                         \
		if (WB)                                                                  \
			emu_reg_set(cpu, in->op[0].reg, sz, r);                          \
		alu_flags(cpu, OP, sz, a, b, r, cin);                                    \
		return emu_next_reg(cpu, in);                                            \
	}

/* 32- and 64-bit register forms with the size folded in (no size switches). */
#define DEF_ALU_SZ(name, OP, WB, SZ)                                                     \
	static int name##_rr##SZ(struct emu_cpu *cpu, const struct emu_insn *in)         \
	{                                                                                \
		uint64_t m = emu_size_mask(SZ), *d = &cpu->st.gpr[in->op[0].reg];        \
		uint64_t a = *d & m, b = cpu->st.gpr[in->op[1].reg] & m, r;              \
		bool cin = (OP == ALU_ADC || OP == ALU_SBB) && emu_flag_cf(cpu);         \
		r = alu_calc(OP, a, b, cin) & m;                                         \
		if (WB)                                                                  \
			*d = r;                                                          \
		alu_flags(cpu, OP, SZ, a, b, r, cin);                                    \
		return emu_next_reg(cpu, in);                                            \
	}                                                                                \
	static int name##_ri##SZ(struct emu_cpu *cpu, const struct emu_insn *in)         \
	{                                                                                \
		uint64_t m = emu_size_mask(SZ), *d = &cpu->st.gpr[in->op[0].reg];        \
		uint64_t a = *d & m, b = in->op[1].imm & m, r;                           \
		bool cin = (OP == ALU_ADC || OP == ALU_SBB) && emu_flag_cf(cpu);         \
		r = alu_calc(OP, a, b, cin) & m;                                         \
		if (WB)                                                                  \
			*d = r;                                                          \
		alu_flags(cpu, OP, SZ, a, b, r, cin);                                    \
		return emu_next_reg(cpu, in);                                            \
	}
#define DEF_ALU_ALL(name, OP, WB) \
	DEF_ALU(name, OP, WB) DEF_ALU_SZ(name, OP, WB, 4) DEF_ALU_SZ(name, OP, WB, 8)

DEF_ALU_ALL(exec_add, ALU_ADD, 1)
DEF_ALU_ALL(exec_or, ALU_OR, 1)
DEF_ALU_ALL(exec_adc, ALU_ADC, 1)
DEF_ALU_ALL(exec_sbb, ALU_SBB, 1)
DEF_ALU_ALL(exec_and, ALU_AND, 1)
DEF_ALU_ALL(exec_sub, ALU_SUB, 1)
DEF_ALU_ALL(exec_xor, ALU_XOR, 1)
DEF_ALU_ALL(exec_cmp, ALU_CMP, 0)
DEF_ALU_ALL(exec_test, ALU_TEST, 0)

/* Register forms need plain GPRs (not AH..BH) for the specialised variants. */
static bool is_gpr(const struct emu_operand *op)
{
	return op->kind == EMU_OPK_REG && op->reg < 16;
}

#define PICK_ALU(name)                                                                   \
	(is_gpr(&in->op[0]) && is_gpr(&in->op[1])                                        \
		 ? (in->op[0].size == 8 ? name##_rr8 : in->op[0].size == 4 ? name##_rr4 : name##_rr) \
	 : is_gpr(&in->op[0]) && in->op[1].kind == EMU_OPK_IMM                           \
		 ? (in->op[0].size == 8 ? name##_ri8 : in->op[0].size == 4 ? name##_ri4 : name##_ri) \
		 : name)

static int exec_incdec(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned sz = in->op[0].size;
	bool dec = in->mnemonic == ZYDIS_MNEMONIC_DEC;
	bool cf = emu_flag_cf(cpu);
	uint64_t a, r;

	if (in->prefixes & EMU_PFX_LOCK) {
		TRY(mem_rmw(cpu, in, 0, 0, dec ? calc_sub : calc_add, 1, 0, &a));
	} else {
		TRY(emu_opr(cpu, in, 0, &a));
		TRY(emu_opw(cpu, in, 0, dec ? a - 1 : a + 1));
	}
	r = (dec ? a - 1 : a + 1) & emu_size_mask(sz);
	emu_lf_setc(cpu, dec ? LF_DEC : LF_INC, sz, cf, a, 1, r);
	return emu_next(cpu, in);
}

static int exec_neg(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned sz = in->op[0].size;
	uint64_t a;

	if (in->prefixes & EMU_PFX_LOCK) {
		TRY(mem_rmw(cpu, in, 0, 0, calc_neg, 0, 0, &a));
	} else {
		TRY(emu_opr(cpu, in, 0, &a));
		TRY(emu_opw(cpu, in, 0, -a));
	}
	emu_lf_set(cpu, LF_SUB, sz, 0, a, -a);
	return emu_next(cpu, in);
}

static int exec_not(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t a;

	if (in->prefixes & EMU_PFX_LOCK)
		return mem_rmw(cpu, in, 0, 0, calc_not, 0, 0, &a);
	TRY(emu_opr(cpu, in, 0, &a));
	return emu_opw(cpu, in, 0, ~a);
}

/* ---- shifts and rotates ---- */

static int exec_shift(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned sz = in->op[0].size, w = sz * 8;
	uint64_t m = emu_size_mask(sz), sign = emu_sign_bit(sz), a, c, r = 0;
	uint32_t f = 0, mask = EMU_ARITH;
	unsigned n, i;
	bool cf;

	if (in->op[0].kind == EMU_OPK_REG && in->op[0].reg < 16)
		a = cpu->st.gpr[in->op[0].reg];
	else
		TRY(emu_opr(cpu, in, 0, &a));
	if (in->nops < 2)
		c = 1;
	else if (in->op[1].kind == EMU_OPK_IMM)
		c = in->op[1].imm;
	else
		c = cpu->st.gpr[EMU_RCX];
	a &= m;
	n = c & (sz == 8 ? 63 : 31);
	if (n == 0)
		return emu_opw(cpu, in, 0, a);	/* writes (zero-extends) even with count 0 */
	switch (in->mnemonic) {
	case ZYDIS_MNEMONIC_SHL:
		r = n < 64 ? a << n : 0;
		cf = n <= w && ((a >> (w - n)) & 1);
		f = emu_szp(r, sz) | (cf ? EMU_CF : 0) |
		    ((((r & sign) != 0) != cf) ? EMU_OF : 0);
		break;
	case ZYDIS_MNEMONIC_SHR:
		r = a >> n;
		cf = n <= w && ((a >> (n - 1)) & 1);
		f = emu_szp(r, sz) | (cf ? EMU_CF : 0) | ((a & sign) ? EMU_OF : 0);
		break;
	case ZYDIS_MNEMONIC_SAR: {
		int64_t s = (int64_t)emu_sext(a, sz);

		r = (uint64_t)(s >> (n > 63 ? 63 : n));
		cf = (s >> (n - 1 > 63 ? 63 : n - 1)) & 1;
		f = emu_szp(r, sz) | (cf ? EMU_CF : 0);
		break;
	}
	case ZYDIS_MNEMONIC_ROL:
		i = n % w;
		r = i ? ((a << i) | (a >> (w - i))) & m : a;
		cf = r & 1;
		f = (cf ? EMU_CF : 0) | ((((r & sign) != 0) != cf) ? EMU_OF : 0);
		mask = EMU_CF | EMU_OF;
		break;
	case ZYDIS_MNEMONIC_ROR:
		i = n % w;
		r = i ? ((a >> i) | (a << (w - i))) & m : a;
		cf = r & sign;
		f = (cf ? EMU_CF : 0) | ((((r & sign) != 0) != ((r & (sign >> 1)) != 0)) ? EMU_OF : 0);
		mask = EMU_CF | EMU_OF;
		break;
	case ZYDIS_MNEMONIC_RCL:
		cf = emu_flag_cf(cpu);
		r = a;
		for (i = 0; i < (sz < 4 ? n % (w + 1) : n); i++) {
			bool out = r & sign;

			r = ((r << 1) | cf) & m;
			cf = out;
		}
		f = (cf ? EMU_CF : 0) | ((((r & sign) != 0) != cf) ? EMU_OF : 0);
		mask = EMU_CF | EMU_OF;
		break;
	default: /* RCR */
		cf = emu_flag_cf(cpu);
		r = a;
		f = (((a & sign) != 0) != cf) ? EMU_OF : 0;
		for (i = 0; i < (sz < 4 ? n % (w + 1) : n); i++) {
			bool out = r & 1;

			r = (r >> 1) | (cf ? sign : 0);
			cf = out;
		}
		f |= cf ? EMU_CF : 0;
		mask = EMU_CF | EMU_OF;
		break;
	}
	TRY(emu_opw(cpu, in, 0, r & m));
	emu_flags_set(cpu, mask, f);
	return emu_next(cpu, in);
}

static int exec_shxd(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned sz = in->op[0].size, w = sz * 8, n;
	uint64_t m = emu_size_mask(sz), sign = emu_sign_bit(sz), a, b, c, r;
	bool cf, left = in->mnemonic == ZYDIS_MNEMONIC_SHLD;
	unsigned __int128 x;

	TRY(emu_opr(cpu, in, 0, &a));
	TRY(emu_opr(cpu, in, 1, &b));
	TRY(emu_opr(cpu, in, 2, &c));
	a &= m;
	b &= m;
	n = c & (sz == 8 ? 63 : 31);
	if (n == 0)
		return emu_opw(cpu, in, 0, a);
	/* 16-bit counts above 16 shift through the pattern dst:src:dst, as hardware does */
	if (w == 16)
		x = ((unsigned __int128)a << 32) | ((unsigned __int128)b << 16) | a;
	else if (left)
		x = ((unsigned __int128)a << w) | b;
	else
		x = ((unsigned __int128)b << w) | a;
	if (left) {
		unsigned top = w == 16 ? 48 : 2 * w;

		r = (uint64_t)(x >> (top - w - n)) & m;
		cf = (x >> (top - n)) & 1;
	} else {
		r = (uint64_t)(x >> n) & m;
		cf = (x >> (n - 1)) & 1;
	}
	TRY(emu_opw(cpu, in, 0, r));
	emu_flags_set(cpu, EMU_ARITH,
		      emu_szp(r, sz) | (cf ? EMU_CF : 0) |
			      ((((r ^ a) & sign) != 0) ? EMU_OF : 0));
	return emu_next(cpu, in);
}

/* ---- multiply and divide ---- */

static int exec_mul1(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned sz = in->op[0].size;
	bool sgn = in->mnemonic == ZYDIS_MNEMONIC_IMUL;
	uint64_t m = emu_size_mask(sz), b, a = cpu->st.gpr[EMU_RAX] & m, lo, hi;
	bool ov;

	TRY(emu_opr(cpu, in, 0, &b));
	b &= m;
	if (sz == 8) {
		if (sgn) {
			__int128 p = (__int128)(int64_t)a * (int64_t)b;

			lo = (uint64_t)p;
			hi = (uint64_t)(p >> 64);
			ov = p != (__int128)(int64_t)lo;
		} else {
			unsigned __int128 p = (unsigned __int128)a * b;

			lo = (uint64_t)p;
			hi = (uint64_t)(p >> 64);
			ov = hi != 0;
		}
	} else {
		uint64_t p;

		if (sgn) {
			int64_t sp = (int64_t)emu_sext(a, sz) * (int64_t)emu_sext(b, sz);

			p = (uint64_t)sp;
			ov = sp != (int64_t)emu_sext(p & m, sz);
		} else {
			p = a * b;
			ov = (p >> (sz * 8)) != 0;
		}
		lo = p & m;
		hi = (p >> (sz * 8)) & m;
	}
	if (sz == 1) {
		emu_reg_set(cpu, EMU_RAX, 2, lo | (hi << 8));
	} else {
		emu_reg_set(cpu, EMU_RAX, sz, lo);
		emu_reg_set(cpu, EMU_RDX, sz, hi);
	}
	emu_flags_set(cpu, EMU_ARITH, (ov ? EMU_CF | EMU_OF : 0) | emu_szp(lo, sz));
	return emu_next(cpu, in);
}

static int exec_imul_n(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned sz = in->op[0].size;
	uint64_t m = emu_size_mask(sz), a, b, lo;
	bool ov;

	if (in->nops == 1)
		return exec_mul1(cpu, in);
	TRY(emu_opr(cpu, in, in->nops == 3 ? 1 : 0, &a));
	TRY(emu_opr(cpu, in, in->nops == 3 ? 2 : 1, &b));
	if (sz == 8) {
		__int128 p = (__int128)(int64_t)a * (int64_t)b;

		lo = (uint64_t)p;
		ov = p != (__int128)(int64_t)lo;
	} else {
		int64_t p = (int64_t)emu_sext(a & m, sz) * (int64_t)emu_sext(b & m, sz);

		lo = (uint64_t)p & m;
		ov = p != (int64_t)emu_sext(lo, sz);
	}
	TRY(emu_opw(cpu, in, 0, lo));
	emu_flags_set(cpu, EMU_ARITH, (ov ? EMU_CF | EMU_OF : 0) | emu_szp(lo, sz));
	return emu_next(cpu, in);
}

static int exec_div(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned sz = in->op[0].size, w = sz * 8;
	bool sgn = in->mnemonic == ZYDIS_MNEMONIC_IDIV;
	uint64_t m = emu_size_mask(sz), d, q, rem;
	unsigned __int128 n;

	TRY(emu_opr(cpu, in, 0, &d));
	d &= m;
	if (d == 0)
		return emu_fault(cpu, EMU_DE, 0, false);
	if (sz == 1)
		n = cpu->st.gpr[EMU_RAX] & 0xffff;
	else
		n = ((unsigned __int128)(cpu->st.gpr[EMU_RDX] & m) << w) |
		    (cpu->st.gpr[EMU_RAX] & m);
	if (!sgn) {
		unsigned __int128 qq = n / d;

		if (qq > m)
			return emu_fault(cpu, EMU_DE, 0, false);
		q = (uint64_t)qq;
		rem = (uint64_t)(n % d);
	} else {
		__int128 sn, sd = (int64_t)emu_sext(d, sz), sq;

		/* sign-extend the 2w-bit dividend */
		if (w == 64)
			sn = (__int128)n;
		else
			sn = (__int128)(((__int128)(n << (128 - 2 * w))) >> (128 - 2 * w));
		if (w == 64 && sd == -1 && n == ((unsigned __int128)1 << 127))
			return emu_fault(cpu, EMU_DE, 0, false);
		sq = sn / sd;
		if (sq > (__int128)(m >> 1) || sq < -(__int128)(m >> 1) - 1)
			return emu_fault(cpu, EMU_DE, 0, false);
		q = (uint64_t)sq & m;
		rem = (uint64_t)(sn % sd) & m;
	}
	if (sz == 1) {
		emu_reg_set(cpu, EMU_RAX, 2, (q & 0xff) | ((rem & 0xff) << 8));
	} else {
		emu_reg_set(cpu, EMU_RAX, sz, q);
		emu_reg_set(cpu, EMU_RDX, sz, rem);
	}
	return emu_next(cpu, in);
}

/* ---- bit instructions ---- */

static uint64_t calc_bts(uint64_t o, uint64_t bit, uint64_t c) { return o | (1ull << bit); }
static uint64_t calc_btr(uint64_t o, uint64_t bit, uint64_t c) { return o & ~(1ull << bit); }
static uint64_t calc_btc(uint64_t o, uint64_t bit, uint64_t c) { return o ^ (1ull << bit); }

static int exec_bt(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned sz = in->op[0].size, w = sz * 8;
	uint64_t off, a, r, adj = 0, bit;
	rmw_calc calc = NULL;

	TRY(emu_opr(cpu, in, 1, &off));
	switch (in->mnemonic) {
	case ZYDIS_MNEMONIC_BTS:
		calc = calc_bts;
		break;
	case ZYDIS_MNEMONIC_BTR:
		calc = calc_btr;
		break;
	case ZYDIS_MNEMONIC_BTC:
		calc = calc_btc;
		break;
	default:
		break;
	}
	if (in->op[0].kind == EMU_OPK_MEM && in->op[1].kind == EMU_OPK_REG) {
		int64_t so = (int64_t)emu_sext(off & emu_size_mask(sz), sz);

		adj = (uint64_t)((so >> (sz == 8 ? 6 : sz == 4 ? 5 : 4)) * (int64_t)sz);
		bit = (uint64_t)so & (w - 1);
	} else {
		bit = off & (w - 1);
	}
	if (in->op[0].kind == EMU_OPK_MEM) {
		const struct emu_operand *op = &in->op[0];
		uint64_t ea = (emu_ea_off(cpu, in, op) + adj) & emu_size_mask(in->addrsize);

		if (calc && (in->prefixes & EMU_PFX_LOCK)) {
			TRY(mem_rmw(cpu, in, 0, adj, calc, bit, 0, &a));
		} else {
			a = 0;
			TRY(emu_mread(cpu, op->seg, ea, &a, sz));
			if (calc) {
				r = calc(a, bit, 0);
				TRY(emu_mwrite(cpu, op->seg, ea, &r, sz));
			}
		}
	} else {
		TRY(emu_opr(cpu, in, 0, &a));
		if (calc)
			TRY(emu_opw(cpu, in, 0, calc(a, bit, 0)));
	}
	emu_flags_set(cpu, EMU_CF, (a >> bit) & 1 ? EMU_CF : 0);
	return emu_next(cpu, in);
}

static int exec_bsf(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned sz = in->op[0].size;
	uint64_t s;

	TRY(emu_opr(cpu, in, 1, &s));
	s &= emu_size_mask(sz);
	if (s == 0) {
		emu_flags_set(cpu, EMU_ZF, EMU_ZF);
		return emu_next(cpu, in);
	}
	TRY(emu_opw(cpu, in, 0, in->mnemonic == ZYDIS_MNEMONIC_BSF ? __builtin_ctzll(s)
								   : 63 - __builtin_clzll(s)));
	emu_flags_set(cpu, EMU_ZF, 0);
	return emu_next(cpu, in);
}

/* ---- exchange and compare ---- */

static int exec_xchg(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t a, b;
	int mi = in->op[0].kind == EMU_OPK_MEM ? 0 : in->op[1].kind == EMU_OPK_MEM ? 1 : -1;

	if (mi >= 0) {
		TRY(emu_opr(cpu, in, 1 - mi, &b));
		TRY(mem_rmw(cpu, in, mi, 0, calc_set, b, 0, &a));
		return emu_opw(cpu, in, 1 - mi, a);
	}
	TRY(emu_opr(cpu, in, 0, &a));
	TRY(emu_opr(cpu, in, 1, &b));
	TRY(emu_opw(cpu, in, 0, b));
	return emu_opw(cpu, in, 1, a);
}

static int exec_xadd(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned sz = in->op[0].size;
	uint64_t a, b, r;

	TRY(emu_opr(cpu, in, 1, &b));
	if (in->prefixes & EMU_PFX_LOCK) {
		TRY(mem_rmw(cpu, in, 0, 0, calc_add, b & emu_size_mask(sz), 0, &a));
		r = a + b;
	} else {
		TRY(emu_opr(cpu, in, 0, &a));
		r = a + b;
		if (in->op[0].kind == EMU_OPK_MEM) {
			TRY(emu_opw(cpu, in, 0, r));
			TRY(emu_opw(cpu, in, 1, a));
		} else {
			TRY(emu_opw(cpu, in, 1, a));
			TRY(emu_opw(cpu, in, 0, r));
		}
	}
	if (in->prefixes & EMU_PFX_LOCK)
		TRY(emu_opw(cpu, in, 1, a));
	emu_lf_set(cpu, LF_ADD, sz, a, b, r);
	return emu_next(cpu, in);
}

static int exec_cmpxchg(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned sz = in->op[0].size;
	uint64_t m = emu_size_mask(sz), acc = cpu->st.gpr[EMU_RAX] & m, src, d;

	TRY(emu_opr(cpu, in, 1, &src));
	if (in->op[0].kind == EMU_OPK_MEM) {
		if (in->prefixes & EMU_PFX_LOCK) {
			TRY(mem_rmw(cpu, in, 0, 0, calc_cmpxchg, acc, src & m, &d));
		} else {
			TRY(emu_opr(cpu, in, 0, &d));
			d &= m;
			TRY(emu_opw(cpu, in, 0, d == acc ? src : d));
		}
	} else {
		TRY(emu_opr(cpu, in, 0, &d));
		d &= m;
		if (d == acc)
			TRY(emu_opw(cpu, in, 0, src));
	}
	d &= m;
	if (d != acc)
		emu_reg_set(cpu, EMU_RAX, sz, d);
	emu_lf_set(cpu, LF_SUB, sz, acc, d, acc - d);
	return emu_next(cpu, in);
}

static int exec_cmpxchg8b(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t acc = (cpu->st.gpr[EMU_RDX] << 32) | (uint32_t)cpu->st.gpr[EMU_RAX];
	uint64_t src = (cpu->st.gpr[EMU_RCX] << 32) | (uint32_t)cpu->st.gpr[EMU_RBX], d;
	const struct emu_operand *op = &in->op[0];
	uint64_t off = emu_ea_off(cpu, in, op);
	void *p = emu_mem_rmw_ptr(cpu, op->seg, off, 8);

	if (p) {
		d = acc;
		if (!__atomic_compare_exchange_n((uint64_t *)p, &d, src, false, __ATOMIC_SEQ_CST,
						 __ATOMIC_SEQ_CST))
			__atomic_compare_exchange_n((uint64_t *)p, &d, d, false, __ATOMIC_SEQ_CST,
						    __ATOMIC_SEQ_CST);
	} else {
		if (cpu->fault.pending)
			return EMU_FAULT;
		d = 0;
		TRY(emu_mread(cpu, op->seg, off, &d, 8));
		TRY(emu_mwrite(cpu, op->seg, off, d == acc ? &src : &d, 8));
	}
	if (d == acc) {
		emu_flags_set(cpu, EMU_ZF, EMU_ZF);
	} else {
		emu_reg_set(cpu, EMU_RAX, 4, (uint32_t)d);
		emu_reg_set(cpu, EMU_RDX, 4, d >> 32);
		emu_flags_set(cpu, EMU_ZF, 0);
	}
	return emu_next(cpu, in);
}

static int exec_bswap(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned sz = in->op[0].size, r = in->op[0].reg;
	uint64_t v = cpu->st.gpr[r];

	if (sz == 8)
		cpu->st.gpr[r] = __builtin_bswap64(v);
	else if (sz == 4)
		cpu->st.gpr[r] = __builtin_bswap32((uint32_t)v);
	else
		emu_reg_set(cpu, r, 2, 0);	/* undefined; zero as common hardware does */
	return emu_next(cpu, in);
}

/* ---- moves ---- */

static int exec_mov(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t v;

	TRY(emu_opr(cpu, in, 1, &v));
	return emu_opw(cpu, in, 0, v);
}

static int exec_mov_rr(struct emu_cpu *cpu, const struct emu_insn *in)
{
	emu_reg_set(cpu, in->op[0].reg, in->op[0].size, cpu->st.gpr[in->op[1].reg]);
	return emu_next(cpu, in);
}

static int exec_mov_ri(struct emu_cpu *cpu, const struct emu_insn *in)
{
	emu_reg_set(cpu, in->op[0].reg, in->op[0].size, in->op[1].imm);
	return emu_next(cpu, in);
}

/* Loads and stores of 4 and 8 bytes with a base+displacement address, the common case. */
#define DEF_MOV_SZ(SZ)                                                                   \
	static int exec_mov_rm##SZ(struct emu_cpu *cpu, const struct emu_insn *in)       \
	{                                                                                \
		const struct emu_operand *op = &in->op[1];                               \
		uint64_t v, off = (cpu->st.gpr[op->base] + op->disp) &                   \
				  emu_size_mask(in->addrsize);                           \
		TRY(emu_rd(cpu, op->seg, off, &v, SZ));                                  \
		cpu->st.gpr[in->op[0].reg] = v;                                          \
		return emu_next(cpu, in);                                                \
	}                                                                                \
	static int exec_mov_mr##SZ(struct emu_cpu *cpu, const struct emu_insn *in)       \
	{                                                                                \
		const struct emu_operand *op = &in->op[0];                               \
		uint64_t off = (cpu->st.gpr[op->base] + op->disp) &                      \
			       emu_size_mask(in->addrsize);                              \
		return emu_wr(cpu, op->seg, off, cpu->st.gpr[in->op[1].reg], SZ);        \
	}
DEF_MOV_SZ(4)
DEF_MOV_SZ(8)

/* Any addressing form, with the access size folded in. */
#define DEF_MOVX_SZ(SZ)                                                                  \
	static int exec_mov_rmx##SZ(struct emu_cpu *cpu, const struct emu_insn *in)      \
	{                                                                                \
		const struct emu_operand *op = &in->op[1];                               \
		uint64_t v;                                                              \
		TRY(emu_rd(cpu, op->seg, emu_ea_off(cpu, in, op), &v, SZ));              \
		cpu->st.gpr[in->op[0].reg] = v;                                          \
		return emu_next(cpu, in);                                                \
	}                                                                                \
	static int exec_mov_mrx##SZ(struct emu_cpu *cpu, const struct emu_insn *in)      \
	{                                                                                \
		const struct emu_operand *op = &in->op[0];                               \
		return emu_wr(cpu, op->seg, emu_ea_off(cpu, in, op),                     \
			      cpu->st.gpr[in->op[1].reg], SZ);                           \
	}                                                                                \
	static int exec_mov_mix##SZ(struct emu_cpu *cpu, const struct emu_insn *in)      \
	{                                                                                \
		const struct emu_operand *op = &in->op[0];                               \
		return emu_wr(cpu, op->seg, emu_ea_off(cpu, in, op), in->op[1].imm, SZ); \
	}
DEF_MOVX_SZ(4)
DEF_MOVX_SZ(8)

static int exec_mov_mix1(struct emu_cpu *cpu, const struct emu_insn *in)
{
	const struct emu_operand *op = &in->op[0];

	return emu_wr(cpu, op->seg, emu_ea_off(cpu, in, op), in->op[1].imm, 1);
}

static bool base_disp(const struct emu_operand *op)
{
	return op->kind == EMU_OPK_MEM && op->base < 16 && !op->rip_rel &&
	       op->index == EMU_REG_NONE;
}

static int exec_mov_rm(struct emu_cpu *cpu, const struct emu_insn *in)
{
	const struct emu_operand *op = &in->op[1];
	uint64_t v;

	TRY(emu_rd(cpu, op->seg, emu_ea_off(cpu, in, op), &v, op->size));
	emu_reg_set(cpu, in->op[0].reg, in->op[0].size, v);
	return emu_next(cpu, in);
}

static int exec_mov_mr(struct emu_cpu *cpu, const struct emu_insn *in)
{
	const struct emu_operand *op = &in->op[0];
	uint64_t v = cpu->st.gpr[in->op[1].reg];

	return emu_wr(cpu, op->seg, emu_ea_off(cpu, in, op), v, op->size);
}

static int exec_mov_mi(struct emu_cpu *cpu, const struct emu_insn *in)
{
	const struct emu_operand *op = &in->op[0];

	return emu_wr(cpu, op->seg, emu_ea_off(cpu, in, op), in->op[1].imm, op->size);
}

static int exec_movx(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t v;

	TRY(emu_opr(cpu, in, 1, &v));
	v &= emu_size_mask(in->op[1].size);
	if (in->mnemonic != ZYDIS_MNEMONIC_MOVZX)
		v = emu_sext(v, in->op[1].size);
	return emu_opw(cpu, in, 0, v);
}

static int exec_lea(struct emu_cpu *cpu, const struct emu_insn *in)
{
	emu_reg_set(cpu, in->op[0].reg, in->op[0].size, emu_ea_off(cpu, in, &in->op[1]));
	return emu_next(cpu, in);
}

static int exec_setcc(struct emu_cpu *cpu, const struct emu_insn *in)
{
	return emu_opw(cpu, in, 0, emu_cond(cpu, in->cc & 15));
}

static int exec_cmovcc(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t v;

	TRY(emu_opr(cpu, in, 1, &v));
	if (!emu_cond(cpu, in->cc))
		v = cpu->st.gpr[in->op[0].reg];
	emu_reg_set(cpu, in->op[0].reg, in->op[0].size, v);
	return emu_next(cpu, in);
}

static int exec_cbw(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned sz = in->opsize;

	emu_reg_set(cpu, EMU_RAX, sz, emu_sext(cpu->st.gpr[EMU_RAX] & emu_size_mask(sz / 2),
					       sz / 2));
	return emu_next(cpu, in);
}

static int exec_cwd(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned sz = in->opsize;

	emu_reg_set(cpu, EMU_RDX, sz, (cpu->st.gpr[EMU_RAX] & emu_sign_bit(sz)) ? ~0ull : 0);
	return emu_next(cpu, in);
}

static int exec_lahf(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t f = emu_get_rflags(cpu);

	emu_reg_set(cpu, EMU_REG_HIGH8, 1, (f & (EMU_SF | EMU_ZF | EMU_AF | EMU_PF | EMU_CF)) | 2);
	return emu_next(cpu, in);
}

static int exec_sahf(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint32_t m = EMU_SF | EMU_ZF | EMU_AF | EMU_PF | EMU_CF;

	emu_flags_set(cpu, m, (uint32_t)(cpu->st.gpr[EMU_RAX] >> 8));
	return emu_next(cpu, in);
}

static int exec_flagop(struct emu_cpu *cpu, const struct emu_insn *in)
{
	switch (in->mnemonic) {
	case ZYDIS_MNEMONIC_CLC:
		emu_flags_set(cpu, EMU_CF, 0);
		break;
	case ZYDIS_MNEMONIC_STC:
		emu_flags_set(cpu, EMU_CF, EMU_CF);
		break;
	case ZYDIS_MNEMONIC_CMC:
		emu_flags_set(cpu, EMU_CF, emu_flag_cf(cpu) ? 0 : EMU_CF);
		break;
	case ZYDIS_MNEMONIC_CLD:
		cpu->st.rflags &= ~(uint64_t)EMU_DF;
		break;
	default:
		cpu->st.rflags |= EMU_DF;
		break;
	}
	return emu_next(cpu, in);
}

static int exec_salc(struct emu_cpu *cpu, const struct emu_insn *in)
{
	emu_reg_set(cpu, EMU_RAX, 1, emu_flag_cf(cpu) ? 0xff : 0);
	return emu_next(cpu, in);
}

static int exec_xlat(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t off = (cpu->st.gpr[EMU_RBX] + (cpu->st.gpr[EMU_RAX] & 0xff)) &
		       emu_size_mask(in->addrsize);
	uint64_t v = 0;

	TRY(emu_mread(cpu, in->op[0].seg, off, &v, 1));
	emu_reg_set(cpu, EMU_RAX, 1, v);
	return emu_next(cpu, in);
}

static int exec_nop(struct emu_cpu *cpu, const struct emu_insn *in)
{
	return emu_next(cpu, in);
}

static int exec_bound(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned sz = in->op[0].size;
	const struct emu_operand *op = &in->op[1];
	uint64_t off = emu_ea_off(cpu, in, op), lo = 0, hi = 0;
	int64_t v = (int64_t)emu_sext(cpu->st.gpr[in->op[0].reg], sz);

	TRY(emu_mread(cpu, op->seg, off, &lo, sz));
	TRY(emu_mread(cpu, op->seg, (off + sz) & emu_size_mask(in->addrsize), &hi, sz));
	if (v < (int64_t)emu_sext(lo, sz) || v > (int64_t)emu_sext(hi, sz))
		return emu_fault(cpu, EMU_BR, 0, false);
	return emu_next(cpu, in);
}

emu_exec_fn emu_int_handler(const struct emu_insn *in, unsigned mnemonic)
{
	bool r0 = is_gpr(&in->op[0]), r1 = in->nops > 1 && is_gpr(&in->op[1]);

	switch (mnemonic) {
	case ZYDIS_MNEMONIC_ADD:
		return PICK_ALU(exec_add);
	case ZYDIS_MNEMONIC_OR:
		return PICK_ALU(exec_or);
	case ZYDIS_MNEMONIC_ADC:
		return PICK_ALU(exec_adc);
	case ZYDIS_MNEMONIC_SBB:
		return PICK_ALU(exec_sbb);
	case ZYDIS_MNEMONIC_AND:
		return PICK_ALU(exec_and);
	case ZYDIS_MNEMONIC_SUB:
		return PICK_ALU(exec_sub);
	case ZYDIS_MNEMONIC_XOR:
		return PICK_ALU(exec_xor);
	case ZYDIS_MNEMONIC_CMP:
		return PICK_ALU(exec_cmp);
	case ZYDIS_MNEMONIC_TEST:
		return PICK_ALU(exec_test);
	case ZYDIS_MNEMONIC_INC:
	case ZYDIS_MNEMONIC_DEC:
		return exec_incdec;
	case ZYDIS_MNEMONIC_NEG:
		return exec_neg;
	case ZYDIS_MNEMONIC_NOT:
		return exec_not;
	case ZYDIS_MNEMONIC_SHL:
	case ZYDIS_MNEMONIC_SHR:
	case ZYDIS_MNEMONIC_SAR:
	case ZYDIS_MNEMONIC_ROL:
	case ZYDIS_MNEMONIC_ROR:
	case ZYDIS_MNEMONIC_RCL:
	case ZYDIS_MNEMONIC_RCR:
		return exec_shift;
	case ZYDIS_MNEMONIC_SHLD:
	case ZYDIS_MNEMONIC_SHRD:
		return exec_shxd;
	case ZYDIS_MNEMONIC_MUL:
		return exec_mul1;
	case ZYDIS_MNEMONIC_IMUL:
		return exec_imul_n;
	case ZYDIS_MNEMONIC_DIV:
	case ZYDIS_MNEMONIC_IDIV:
		return exec_div;
	case ZYDIS_MNEMONIC_BT:
	case ZYDIS_MNEMONIC_BTS:
	case ZYDIS_MNEMONIC_BTR:
	case ZYDIS_MNEMONIC_BTC:
		return exec_bt;
	case ZYDIS_MNEMONIC_BSF:
	case ZYDIS_MNEMONIC_BSR:
		return exec_bsf;
	case ZYDIS_MNEMONIC_XCHG:
		return exec_xchg;
	case ZYDIS_MNEMONIC_XADD:
		return exec_xadd;
	case ZYDIS_MNEMONIC_CMPXCHG:
		return exec_cmpxchg;
	case ZYDIS_MNEMONIC_CMPXCHG8B:
		return exec_cmpxchg8b;
	case ZYDIS_MNEMONIC_BSWAP:
		return exec_bswap;
	case ZYDIS_MNEMONIC_MOV:
		if (r0 && r1)
			return exec_mov_rr;
		if (r0 && in->op[1].kind == EMU_OPK_IMM)
			return exec_mov_ri;
		if (r0 && base_disp(&in->op[1]) && (in->op[0].size == 4 || in->op[0].size == 8))
			return in->op[0].size == 8 ? exec_mov_rm8 : exec_mov_rm4;
		if (r1 && base_disp(&in->op[0]) && (in->op[0].size == 4 || in->op[0].size == 8))
			return in->op[0].size == 8 ? exec_mov_mr8 : exec_mov_mr4;
		if (r0 && in->op[1].kind == EMU_OPK_MEM && (in->op[0].size & 12))
			return in->op[0].size == 8 ? exec_mov_rmx8 : exec_mov_rmx4;
		if (r1 && in->op[0].kind == EMU_OPK_MEM && (in->op[0].size & 12))
			return in->op[0].size == 8 ? exec_mov_mrx8 : exec_mov_mrx4;
		if (r0 && in->op[1].kind == EMU_OPK_MEM)
			return exec_mov_rm;
		if (in->op[0].kind == EMU_OPK_MEM && r1)
			return exec_mov_mr;
		if (in->op[0].kind == EMU_OPK_MEM && in->op[1].kind == EMU_OPK_IMM)
			return in->op[0].size == 8 ? exec_mov_mix8 : in->op[0].size == 4 ? exec_mov_mix4 :
			       in->op[0].size == 1 ? exec_mov_mix1 : exec_mov_mi;
		return exec_mov;
	case ZYDIS_MNEMONIC_MOVZX:
	case ZYDIS_MNEMONIC_MOVSX:
	case ZYDIS_MNEMONIC_MOVSXD:
		return exec_movx;
	case ZYDIS_MNEMONIC_LEA:
		return exec_lea;
	case ZYDIS_MNEMONIC_SETB: case ZYDIS_MNEMONIC_SETBE: case ZYDIS_MNEMONIC_SETL:
	case ZYDIS_MNEMONIC_SETLE: case ZYDIS_MNEMONIC_SETNB: case ZYDIS_MNEMONIC_SETNBE:
	case ZYDIS_MNEMONIC_SETNL: case ZYDIS_MNEMONIC_SETNLE: case ZYDIS_MNEMONIC_SETNO:
	case ZYDIS_MNEMONIC_SETNP: case ZYDIS_MNEMONIC_SETNS: case ZYDIS_MNEMONIC_SETNZ:
	case ZYDIS_MNEMONIC_SETO: case ZYDIS_MNEMONIC_SETP: case ZYDIS_MNEMONIC_SETS:
	case ZYDIS_MNEMONIC_SETZ:
		return exec_setcc;
	case ZYDIS_MNEMONIC_CMOVB: case ZYDIS_MNEMONIC_CMOVBE: case ZYDIS_MNEMONIC_CMOVL:
	case ZYDIS_MNEMONIC_CMOVLE: case ZYDIS_MNEMONIC_CMOVNB: case ZYDIS_MNEMONIC_CMOVNBE:
	case ZYDIS_MNEMONIC_CMOVNL: case ZYDIS_MNEMONIC_CMOVNLE: case ZYDIS_MNEMONIC_CMOVNO:
	case ZYDIS_MNEMONIC_CMOVNP: case ZYDIS_MNEMONIC_CMOVNS: case ZYDIS_MNEMONIC_CMOVNZ:
	case ZYDIS_MNEMONIC_CMOVO: case ZYDIS_MNEMONIC_CMOVP: case ZYDIS_MNEMONIC_CMOVS:
	case ZYDIS_MNEMONIC_CMOVZ:
		return exec_cmovcc;
	case ZYDIS_MNEMONIC_CBW:
	case ZYDIS_MNEMONIC_CWDE:
	case ZYDIS_MNEMONIC_CDQE:
		return exec_cbw;
	case ZYDIS_MNEMONIC_CWD:
	case ZYDIS_MNEMONIC_CDQ:
	case ZYDIS_MNEMONIC_CQO:
		return exec_cwd;
	case ZYDIS_MNEMONIC_LAHF:
		return exec_lahf;
	case ZYDIS_MNEMONIC_SAHF:
		return exec_sahf;
	case ZYDIS_MNEMONIC_CLC:
	case ZYDIS_MNEMONIC_STC:
	case ZYDIS_MNEMONIC_CMC:
	case ZYDIS_MNEMONIC_CLD:
	case ZYDIS_MNEMONIC_STD:
		return exec_flagop;
	case ZYDIS_MNEMONIC_SALC:
		return exec_salc;
	case ZYDIS_MNEMONIC_XLAT:
		return exec_xlat;
	case ZYDIS_MNEMONIC_NOP:
	case ZYDIS_MNEMONIC_PAUSE:
	case ZYDIS_MNEMONIC_ENDBR32:
	case ZYDIS_MNEMONIC_ENDBR64:
	case ZYDIS_MNEMONIC_LFENCE:
	case ZYDIS_MNEMONIC_SFENCE:
	case ZYDIS_MNEMONIC_MFENCE:
	case ZYDIS_MNEMONIC_PREFETCH:
	case ZYDIS_MNEMONIC_PREFETCHW:
	case ZYDIS_MNEMONIC_PREFETCHNTA:
	case ZYDIS_MNEMONIC_PREFETCHT0:
	case ZYDIS_MNEMONIC_PREFETCHT1:
	case ZYDIS_MNEMONIC_PREFETCHT2:
		return exec_nop;
	case ZYDIS_MNEMONIC_BOUND:
		return exec_bound;
	/* not in the CPUID policy: #UD */
	case ZYDIS_MNEMONIC_UD0:
	case ZYDIS_MNEMONIC_UD1:
	case ZYDIS_MNEMONIC_UD2:
	case ZYDIS_MNEMONIC_CMPXCHG16B:
	case ZYDIS_MNEMONIC_POPCNT:
	case ZYDIS_MNEMONIC_LZCNT:
	case ZYDIS_MNEMONIC_TZCNT:
	case ZYDIS_MNEMONIC_MOVBE:
	case ZYDIS_MNEMONIC_ADCX:
	case ZYDIS_MNEMONIC_ADOX:
	case ZYDIS_MNEMONIC_ANDN:
	case ZYDIS_MNEMONIC_BEXTR:
	case ZYDIS_MNEMONIC_BLSI:
	case ZYDIS_MNEMONIC_BLSMSK:
	case ZYDIS_MNEMONIC_BLSR:
	case ZYDIS_MNEMONIC_BZHI:
	case ZYDIS_MNEMONIC_MULX:
	case ZYDIS_MNEMONIC_PDEP:
	case ZYDIS_MNEMONIC_PEXT:
	case ZYDIS_MNEMONIC_RORX:
	case ZYDIS_MNEMONIC_SARX:
	case ZYDIS_MNEMONIC_SHLX:
	case ZYDIS_MNEMONIC_SHRX:
	/* VMX and SVM are not in the policy: outside VMX operation (SDM Vol. 3C 31.3) and
	 * with no hypervisor intercepting them (APM Vol. 3 VMMCALL), all of these #UD. */
	case ZYDIS_MNEMONIC_VMCALL:
	case ZYDIS_MNEMONIC_VMMCALL:
	case ZYDIS_MNEMONIC_VMLAUNCH:
	case ZYDIS_MNEMONIC_VMRESUME:
	case ZYDIS_MNEMONIC_VMXON:
	case ZYDIS_MNEMONIC_VMXOFF:
	case ZYDIS_MNEMONIC_VMPTRLD:
	case ZYDIS_MNEMONIC_VMPTRST:
	case ZYDIS_MNEMONIC_VMCLEAR:
	case ZYDIS_MNEMONIC_VMREAD:
	case ZYDIS_MNEMONIC_VMWRITE:
	case ZYDIS_MNEMONIC_VMFUNC:
	case ZYDIS_MNEMONIC_INVEPT:
	case ZYDIS_MNEMONIC_INVVPID:
	case ZYDIS_MNEMONIC_VMRUN:
	case ZYDIS_MNEMONIC_VMLOAD:
	case ZYDIS_MNEMONIC_VMSAVE:
	case ZYDIS_MNEMONIC_STGI:
	case ZYDIS_MNEMONIC_CLGI:
	case ZYDIS_MNEMONIC_SKINIT:
	case ZYDIS_MNEMONIC_INVLPGA:
	/* CPUID.7.0:EBX.INVPCID, 8000_0008h:EBX.RDPRU, 7.0:ECX.RDPID, RDRAND/RDSEED are 0 */
	case ZYDIS_MNEMONIC_INVPCID:
	case ZYDIS_MNEMONIC_RDPRU:
	case ZYDIS_MNEMONIC_RDPID:
	case ZYDIS_MNEMONIC_RDRAND:
	case ZYDIS_MNEMONIC_RDSEED:
		return emu_exec_ud;
	default:
		return NULL;
	}
}
