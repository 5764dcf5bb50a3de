/*
 * exec_fast.c: specialised handlers for the hottest integer forms, chosen before the
 * generic ones of exec_int.c and exec_ctl.c: MOV and MOVZX loads and stores with a 64-bit
 * address in each addressing form (base+disp, index*scale+disp, base+index*scale+disp,
 * RIP+disp), 32/64-bit register MOV, MOVZX, MOVSXD, NEG, IMUL and SHL/SHR/SAR by a
 * constant, 64-bit PUSH/POP of a register, near CALL rel and RET, Jcc and JMP rel with a
 * 64-bit target, and CMP/TEST + Jcc pairs run by one handler. They do what the generic
 * handlers do (SDM Vol. 2 MOV, MOVZX, MOVSXD, NEG, IMUL, SAL/SAR/SHL/SHR, PUSH, POP, CALL,
 * RET, Jcc) with the operand form fixed at decode time; the TLB fast path is inline and
 * everything slower out of line, so that the chaining jump (exec.h) stays a tail call.
 * Other forms, sizes and prefixes stay generic.
 */
#include "exec.h"

/* Address forms of a 64-bit memory operand. */
enum { FORM_B, FORM_I, FORM_BI, FORM_R, FORM_NONE };

#define EA_B(cpu, op) ((cpu)->st.gpr[(op)->base] + (uint64_t)(op)->disp)
#define EA_I(cpu, op) ((cpu)->st.gpr[(op)->index] * (op)->scale + (uint64_t)(op)->disp)
#define EA_BI(cpu, op) (EA_B(cpu, op) + (cpu)->st.gpr[(op)->index] * (op)->scale)
/* Core handlers run with st.rip at the next instruction, the base of RIP+disp. */
#define EA_R(cpu, op) ((cpu)->st.rip + (uint64_t)(op)->disp)

/* A load the TLB fast path did not serve; the register changes only when it succeeds. */
static __attribute__((noinline)) int load_slow(struct emu_cpu *cpu, int sreg, uint64_t off,
					       unsigned size, uint64_t *dst)
{
	uint64_t v;
	int r = emu_rd_slow(cpu, sreg, off, &v, size);

	if (!r)
		*dst = v;
	return r;
}

#define DEF_LOAD(name, F, SZ)                                                            \
	static int name##_##F(struct emu_cpu *cpu, const struct emu_insn *in)            \
	{                                                                                \
		const struct emu_operand *op = &in->op[1];                               \
		uint64_t off = EA_##F(cpu, op), lin;                                     \
		const struct emu_tlb_entry *e =                                          \
			emu_fast_entry(cpu, op->seg, off, SZ, false, &lin);              \
		if (__builtin_expect(e != NULL, 1)) {                                    \
			cpu->st.gpr[in->op[0].reg] = emu_load_n(e->host + (lin & 0xfff), SZ); \
			return emu_next64(cpu, in);                                      \
		}                                                                        \
		return load_slow(cpu, op->seg, off, SZ, &cpu->st.gpr[in->op[0].reg]);    \
	}
/* The part of a fast store that found cached code in the written line: drop it and end the
 * chain (cpu->brk), as emu_wr() does. */
static __attribute__((noinline)) int store_hit_code(struct emu_cpu *cpu,
						    const struct emu_tlb_entry *e, uint64_t lin,
						    unsigned size)
{
	emu_smc_hit(cpu->machine, e->gpa | (lin & 0xfff), size);
	cpu->brk = true;
	return EMU_OK;
}

/* Stores: the TLB fast path inline (no stack frame), everything else out of line. */
#define DEF_STORE(name, F, SZ, VAL)                                                      \
	static int name##_##F(struct emu_cpu *cpu, const struct emu_insn *in)            \
	{                                                                                \
		const struct emu_operand *op = &in->op[0];                               \
		uint64_t off = EA_##F(cpu, op), lin;                                     \
		const struct emu_tlb_entry *e =                                          \
			emu_fast_entry(cpu, op->seg, off, SZ, true, &lin);               \
		if (__builtin_expect(e == NULL, 0))                                      \
			return emu_wr_slow(cpu, op->seg, off, VAL, SZ);                  \
		emu_store_n(e->host + (lin & 0xfff), VAL, SZ);                           \
		if (__builtin_expect(emu_page_lines(e->code) != 0, 0))                   \
			return store_hit_code(cpu, e, lin, SZ);                          \
		return emu_next64(cpu, in);                                              \
	}
/*
 * Per form: MOV r64,m / r32,m (zero-extends) / MOVZX r32|r64,m8|m16; MOV m,r64|r32|r8;
 * MOV m,imm8|imm32|imm32 sign-extended to 64.
 */
#define DEF_FORM(F)                                                                      \
	DEF_LOAD(ld8, F, 8) DEF_LOAD(ld4, F, 4) DEF_LOAD(ld2, F, 2) DEF_LOAD(ld1, F, 1)   \
	DEF_STORE(st8, F, 8, cpu->st.gpr[in->op[1].reg])                                 \
	DEF_STORE(st4, F, 4, cpu->st.gpr[in->op[1].reg])                                 \
	DEF_STORE(st1, F, 1, cpu->st.gpr[in->op[1].reg])                                 \
	DEF_STORE(sti8, F, 8, in->op[1].imm)                                             \
	DEF_STORE(sti4, F, 4, in->op[1].imm)                                             \
	DEF_STORE(sti1, F, 1, in->op[1].imm)
DEF_FORM(B)
DEF_FORM(I)
DEF_FORM(BI)
DEF_FORM(R)

#define FORMS(name) { name##_B, name##_I, name##_BI, name##_R }
static const emu_exec_fn fast_ld[4][4] = {	/* [log2 size][form] */
	FORMS(ld1), FORMS(ld2), FORMS(ld4), FORMS(ld8),
};
static const emu_exec_fn fast_st[4][4] = {
	FORMS(st1), { NULL }, FORMS(st4), FORMS(st8),
};
static const emu_exec_fn fast_sti[4][4] = {
	FORMS(sti1), { NULL }, FORMS(sti4), FORMS(sti8),
};

static int exec_mov_rr8(struct emu_cpu *cpu, const struct emu_insn *in)
{
	cpu->st.gpr[in->op[0].reg] = cpu->st.gpr[in->op[1].reg];
	return emu_next_reg(cpu, in);
}

static int exec_mov_rr4(struct emu_cpu *cpu, const struct emu_insn *in)
{
	cpu->st.gpr[in->op[0].reg] = (uint32_t)cpu->st.gpr[in->op[1].reg];
	return emu_next_reg(cpu, in);
}

static int exec_movzx_rr1(struct emu_cpu *cpu, const struct emu_insn *in)
{
	cpu->st.gpr[in->op[0].reg] = cpu->st.gpr[in->op[1].reg] & 0xff;
	return emu_next_reg(cpu, in);
}

static int exec_movzx_rr2(struct emu_cpu *cpu, const struct emu_insn *in)
{
	cpu->st.gpr[in->op[0].reg] = cpu->st.gpr[in->op[1].reg] & 0xffff;
	return emu_next_reg(cpu, in);
}

static int exec_movsxd_rr(struct emu_cpu *cpu, const struct emu_insn *in)
{
	cpu->st.gpr[in->op[0].reg] = (uint64_t)(int64_t)(int32_t)cpu->st.gpr[in->op[1].reg];
	return emu_next_reg(cpu, in);
}

/*
 * SHL/SHR/SAR of a 32/64-bit register by an immediate or 1, with the flags exec_shift()
 * gives: CF the last bit out, OF by the count-1 rule, SF/ZF/PF of the result, AF clear; a
 * count of 0 (after masking) changes no flag but still zero-extends a 32-bit register.
 */
#define DEF_SHIFT(NAME, SZ)                                                              \
	static int exec_##NAME##_ri##SZ(struct emu_cpu *cpu, const struct emu_insn *in)  \
	{                                                                                \
		const uint64_t m = emu_size_mask(SZ), sign = emu_sign_bit(SZ);           \
		(void)sign;                                                              \
		uint64_t *d = &cpu->st.gpr[in->op[0].reg], a = *d & m, r;                \
		unsigned n = (in->nops < 2 ? 1 : in->op[1].imm) & (SZ == 8 ? 63 : 31);   \
		uint32_t f;                                                              \
		bool cf;                                                                 \
		if (n == 0) {                                                            \
			*d = a;                                                          \
			return emu_next_reg(cpu, in);                                    \
		}                                                                        \
		SHIFT_##NAME(SZ);                                                        \
		*d = r & m;                                                              \
		emu_flags_set(cpu, EMU_ARITH, f);                                        \
		return emu_next_reg(cpu, in);                                            \
	}
#define SHIFT_shl(SZ)                                                                    \
	r = (a << n) & m;                                                                \
	cf = (a >> (SZ * 8 - n)) & 1;                                                    \
	f = emu_szp(r, SZ) | (cf ? EMU_CF : 0) | ((((r & sign) != 0) != cf) ? EMU_OF : 0)
#define SHIFT_shr(SZ)                                                                    \
	r = a >> n;                                                                      \
	cf = (a >> (n - 1)) & 1;                                                         \
	f = emu_szp(r, SZ) | (cf ? EMU_CF : 0) | ((a & sign) ? EMU_OF : 0)
#define SHIFT_sar(SZ)                                                                    \
	r = (uint64_t)((int64_t)emu_sext(a, SZ) >> n) & m;                              \
	cf = ((int64_t)emu_sext(a, SZ) >> (n - 1)) & 1;                                  \
	f = emu_szp(r, SZ) | (cf ? EMU_CF : 0)
DEF_SHIFT(shl, 4) DEF_SHIFT(shl, 8) DEF_SHIFT(shr, 4) DEF_SHIFT(shr, 8)
DEF_SHIFT(sar, 4) DEF_SHIFT(sar, 8)

/* NEG of a 32/64-bit register: CF = (operand != 0), the rest as SUB 0 - operand. */
#define DEF_NEG(SZ)                                                                      \
	static int exec_neg_r##SZ(struct emu_cpu *cpu, const struct emu_insn *in)        \
	{                                                                                \
		uint64_t *d = &cpu->st.gpr[in->op[0].reg], a = *d & emu_size_mask(SZ);  \
		*d = -a & emu_size_mask(SZ);                                             \
		emu_lf_set(cpu, LF_SUB, SZ, 0, a, -a);                                   \
		return emu_next_reg(cpu, in);                                            \
	}
DEF_NEG(4) DEF_NEG(8)

/*
 * IMUL r, r/m (two operands) and IMUL r, r/m, imm with registers only, 32/64-bit: the low
 * half of the signed product; CF = OF = the product does not fit; SF/ZF/PF of the result
 * and AF clear, as exec_imul_n() gives them.
 */
#define DEF_IMUL(SZ)                                                                     \
	static int exec_imul_rr##SZ(struct emu_cpu *cpu, const struct emu_insn *in)      \
	{                                                                                \
		uint64_t a = cpu->st.gpr[in->op[in->nops == 3 ? 1 : 0].reg];             \
		uint64_t b = in->nops == 3 ? in->op[2].imm : cpu->st.gpr[in->op[1].reg]; \
		uint64_t lo;                                                             \
		bool ov;                                                                 \
		if (SZ == 8) {                                                           \
			__int128 p = (__int128)(int64_t)a * (int64_t)b;                  \
			lo = (uint64_t)p;                                                \
			ov = p != (__int128)(int64_t)lo;                                 \
		} else {                                                                 \
			int64_t p = (int64_t)(int32_t)a * (int64_t)(int32_t)b;           \
			lo = (uint32_t)p;                                                \
			ov = p != (int64_t)(int32_t)lo;                                  \
		}                                                                        \
		cpu->st.gpr[in->op[0].reg] = lo;                                         \
		emu_flags_set(cpu, EMU_ARITH, (ov ? EMU_CF | EMU_OF : 0) | emu_szp(lo, SZ)); \
		return emu_next_reg(cpu, in);                                            \
	}
DEF_IMUL(4) DEF_IMUL(8)

/*
 * 64-bit stack operations (64-bit mode, operand size 8: the stack is flat and RSP is used
 * whole). RSP and RIP change only when the access and the target check succeed.
 */
static __attribute__((noinline)) int push_slow(struct emu_cpu *cpu, uint64_t v)
{
	uint64_t sp = cpu->st.gpr[EMU_RSP] - 8;
	int r = emu_wr_slow(cpu, EMU_SS, sp, v, 8);

	if (!r)
		cpu->st.gpr[EMU_RSP] = sp;
	return r;
}

static __attribute__((noinline)) int pop_slow(struct emu_cpu *cpu, uint64_t *v)
{
	int r = emu_rd_slow(cpu, EMU_SS, cpu->st.gpr[EMU_RSP], v, 8);

	if (!r)
		cpu->st.gpr[EMU_RSP] += 8;
	return r;
}

/* 64-bit PUSH: 0 or a fault; a hit on cached code sets cpu->brk. */
static inline int push64(struct emu_cpu *cpu, uint64_t v)
{
	uint64_t sp = cpu->st.gpr[EMU_RSP] - 8, lin;
	const struct emu_tlb_entry *e = emu_fast_entry(cpu, EMU_SS, sp, 8, true, &lin);

	if (__builtin_expect(e == NULL, 0))
		return push_slow(cpu, v);
	emu_store_n(e->host + (lin & 0xfff), v, 8);
	cpu->st.gpr[EMU_RSP] = sp;
	if (__builtin_expect(emu_page_lines(e->code) != 0, 0))
		store_hit_code(cpu, e, lin, 8);
	return 0;
}

/* push64() written out, so that the cached-code case is a tail call too and the fast path
 * needs no stack frame (calling push64() here, gcc 12 gives the handler one). */
static int exec_push_r64(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t sp = cpu->st.gpr[EMU_RSP] - 8, v = cpu->st.gpr[in->op[0].reg], lin;
	const struct emu_tlb_entry *e = emu_fast_entry(cpu, EMU_SS, sp, 8, true, &lin);

	if (__builtin_expect(e == NULL, 0))
		return push_slow(cpu, v);
	emu_store_n(e->host + (lin & 0xfff), v, 8);
	cpu->st.gpr[EMU_RSP] = sp;
	if (__builtin_expect(emu_page_lines(e->code) != 0, 0))
		return store_hit_code(cpu, e, lin, 8);
	return emu_next64(cpu, in);
}

static __attribute__((noinline)) int pop_r64_slow(struct emu_cpu *cpu,
						  const struct emu_insn *in)
{
	uint64_t v;
	int r = pop_slow(cpu, &v);

	if (!r)
		cpu->st.gpr[in->op[0].reg] = v;	/* POP RSP loads the popped value */
	return r;
}

static int exec_pop_r64(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t lin;
	const struct emu_tlb_entry *e =
		emu_fast_entry(cpu, EMU_SS, cpu->st.gpr[EMU_RSP], 8, false, &lin);

	if (__builtin_expect(e == NULL, 0))
		return pop_r64_slow(cpu, in);
	cpu->st.gpr[EMU_RSP] += 8;
	/* POP RSP loads the popped value */
	cpu->st.gpr[in->op[0].reg] = emu_load_n(e->host + (lin & 0xfff), 8);
	return emu_next64(cpu, in);
}

static int exec_call_rel64(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t t = cpu->st.rip + in->op[0].imm;
	int r;

	if (!emu_canonical(t))
		return emu_gp0(cpu);
	r = push64(cpu, cpu->st.rip);
	if (r)
		return r;
	cpu->st.rip = t;
	return cpu->brk ? EMU_OK : emu_jump(cpu, in);
}

static __attribute__((noinline)) int ret64_slow(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t t;
	int r = emu_rd_slow(cpu, EMU_SS, cpu->st.gpr[EMU_RSP], &t, 8);

	if (r)
		return r;
	if (!emu_canonical(t))
		return emu_gp0(cpu);
	cpu->st.gpr[EMU_RSP] += 8;
	cpu->st.rip = t;
	return EMU_OK;
}

static int exec_ret64(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t t, lin;
	const struct emu_tlb_entry *e =
		emu_fast_entry(cpu, EMU_SS, cpu->st.gpr[EMU_RSP], 8, false, &lin);

	if (__builtin_expect(e == NULL, 0))
		return ret64_slow(cpu, in);
	t = emu_load_n(e->host + (lin & 0xfff), 8);
	if (!emu_canonical(t))
		return emu_gp0(cpu);
	cpu->st.gpr[EMU_RSP] += 8;
	cpu->st.rip = t;
	return emu_jump(cpu, in);
}

/* emu_jump() for 64-bit code: a link without the RIP wrap, inline. */
static inline int jump64_on(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (in->link)
		return emu_link_allowed(cpu, in) ? emu_next64(cpu, in + in->link - 1) : EMU_OK;
	return emu_jump(cpu, in);
}

/* Jcc/JMP rel in 64-bit mode: the target is next RIP + displacement, #GP if
 * non-canonical; the chain goes on at the target (emu_jump). */
static inline int jump64(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t t = cpu->st.rip + in->op[0].imm;

	if (!emu_canonical(t))
		return emu_gp0(cpu);
	cpu->st.rip = t;
	return jump64_on(cpu, in);
}

static int exec_jmp_rel64(struct emu_cpu *cpu, const struct emu_insn *in)
{
	return jump64(cpu, in);
}

/* Conditions emu_cond_try() leaves open, out of line so that the Jcc handlers stay small. */
static __attribute__((noinline)) int jcc64_slow(struct emu_cpu *cpu, const struct emu_insn *in,
						unsigned cc)
{
	return emu_cond(cpu, cc) ? jump64(cpu, in) : emu_next64(cpu, in);
}

#define DEF_JCC64(cc)                                                                    \
	static int exec_j64_##cc(struct emu_cpu *cpu, const struct emu_insn *in)        \
	{                                                                                \
		int v = emu_cond_try(cpu, cc);                                           \
		if (__builtin_expect(v < 0, 0))                                          \
			return jcc64_slow(cpu, in, cc);                                  \
		return v ? jump64(cpu, in) : emu_next64(cpu, in);                        \
	}
DEF_JCC64(0) DEF_JCC64(1) DEF_JCC64(2) DEF_JCC64(3) DEF_JCC64(4) DEF_JCC64(5) DEF_JCC64(6)
DEF_JCC64(7) DEF_JCC64(8) DEF_JCC64(9) DEF_JCC64(10) DEF_JCC64(11) DEF_JCC64(12)
DEF_JCC64(13) DEF_JCC64(14) DEF_JCC64(15)

static const emu_exec_fn exec_j64[16] = {
	exec_j64_0, exec_j64_1, exec_j64_2, exec_j64_3, exec_j64_4, exec_j64_5, exec_j64_6,
	exec_j64_7, exec_j64_8, exec_j64_9, exec_j64_10, exec_j64_11, exec_j64_12,
	exec_j64_13, exec_j64_14, exec_j64_15,
};

static int mem_form(const struct emu_insn *in, const struct emu_operand *op)
{
	if (op->kind != EMU_OPK_MEM || in->addrsize != 8)
		return FORM_NONE;
	if (op->rip_rel)
		return op->index == EMU_REG_NONE ? FORM_R : FORM_NONE;
	if (op->base < 16)
		return op->index == EMU_REG_NONE ? FORM_B : op->index < 16 ? FORM_BI : FORM_NONE;
	return op->base == EMU_REG_NONE && op->index < 16 ? FORM_I : FORM_NONE;
}

static bool gpr(const struct emu_operand *op)
{
	return op->kind == EMU_OPK_REG && op->reg < 16;
}

/*
 * A CMP or TEST of a 32/64-bit register with a register or an immediate, followed by a
 * Jcc with a 64-bit target: one handler (chosen by emu_fuse()) runs both. It records the
 * lazy flags as CMP/TEST do and decides the branch from the operands directly; the pair
 * still counts as two instructions, and a #GP of the Jcc is reported at the Jcc.
 */
static inline bool cond_sub(unsigned cc, uint64_t a, uint64_t b, uint64_t r, unsigned sz)
{
	uint64_t sign = emu_sign_bit(sz);
	bool v;

	switch (cc >> 1) {
	case 0: v = (a ^ b) & (a ^ r) & sign; break;			/* O */
	case 1: v = a < b; break;					/* B */
	case 2: v = a == b; break;					/* E */
	case 3: v = a <= b; break;					/* BE */
	case 4: v = r & sign; break;					/* S */
	case 5: v = !__builtin_parityll(r & 0xff); break;		/* P */
	case 6: v = (int64_t)emu_sext(a, sz) < (int64_t)emu_sext(b, sz); break;	/* L */
	default: v = (int64_t)emu_sext(a, sz) <= (int64_t)emu_sext(b, sz); break;	/* LE */
	}
	return (cc & 1) ? !v : v;
}

/* After TEST: CF = OF = 0. */
static inline bool cond_logic(unsigned cc, uint64_t r, unsigned sz)
{
	bool s = r & emu_sign_bit(sz), z = r == 0, v;

	switch (cc >> 1) {
	case 0: case 1: v = false; break;				/* O, B */
	case 2: case 3: v = z; break;					/* E, BE */
	case 4: case 6: v = s; break;					/* S, L */
	case 5: v = !__builtin_parityll(r & 0xff); break;		/* P */
	default: v = z || s; break;					/* LE */
	}
	return (cc & 1) ? !v : v;
}

/* The Jcc `j` of a pair, with st.rip at the Jcc itself. */
static inline int fused_jcc(struct emu_cpu *cpu, const struct emu_insn *j, bool taken)
{
	uint64_t next = cpu->st.rip + j->len, t;

	if (!taken) {
		cpu->st.rip = next;
		return emu_next64(cpu, j);
	}
	cpu->insn_rip = cpu->st.rip;
	cpu->chain_at = j;
	cpu->st.rip = next;
	t = next + j->op[0].imm;
	if (!emu_canonical(t))
		return emu_gp0(cpu);
	cpu->st.rip = t;
	return jump64_on(cpu, j);
}

#define FUSE_SRC_rr(cpu, in) (cpu)->st.gpr[(in)->op[1].reg]
#define FUSE_SRC_ri(cpu, in) (in)->op[1].imm
#define DEF_CMP_JCC(F, SZ, cc)                                                           \
	static int exec_cmp_##F##SZ##_j##cc(struct emu_cpu *cpu, const struct emu_insn *in) \
	{                                                                                \
		uint64_t m = emu_size_mask(SZ), a = cpu->st.gpr[in->op[0].reg] & m;      \
		uint64_t b = FUSE_SRC_##F(cpu, in) & m, r = (a - b) & m;                 \
		emu_lf_set(cpu, LF_SUB, SZ, a, b, r);                                    \
		return fused_jcc(cpu, in + 1, cond_sub(cc, a, b, r, SZ));                \
	}
#define DEF_TEST_JCC(F, SZ, cc)                                                          \
	static int exec_test_##F##SZ##_j##cc(struct emu_cpu *cpu, const struct emu_insn *in) \
	{                                                                                \
		uint64_t m = emu_size_mask(SZ), a = cpu->st.gpr[in->op[0].reg] & m;      \
		uint64_t b = FUSE_SRC_##F(cpu, in) & m, r = a & b;                       \
		emu_lf_set(cpu, LF_LOGIC, SZ, a, b, r);                                  \
		return fused_jcc(cpu, in + 1, cond_logic(cc, r, SZ));                    \
	}
#define DEF_PAIR_CCS(DEF, F, SZ)                                                         \
	DEF(F, SZ, 0) DEF(F, SZ, 1) DEF(F, SZ, 2) DEF(F, SZ, 3) DEF(F, SZ, 4) DEF(F, SZ, 5) \
	DEF(F, SZ, 6) DEF(F, SZ, 7) DEF(F, SZ, 8) DEF(F, SZ, 9) DEF(F, SZ, 10)         \
	DEF(F, SZ, 11) DEF(F, SZ, 12) DEF(F, SZ, 13) DEF(F, SZ, 14) DEF(F, SZ, 15)
#define DEF_PAIRS(DEF) \
	DEF_PAIR_CCS(DEF, rr, 4) DEF_PAIR_CCS(DEF, rr, 8) DEF_PAIR_CCS(DEF, ri, 4) DEF_PAIR_CCS(DEF, ri, 8)
DEF_PAIRS(DEF_CMP_JCC)
DEF_PAIRS(DEF_TEST_JCC)

#define PAIR_CCS(op, F, SZ)                                                              \
	{ op##F##SZ##_j0, op##F##SZ##_j1, op##F##SZ##_j2, op##F##SZ##_j3,                \
	  op##F##SZ##_j4, op##F##SZ##_j5, op##F##SZ##_j6, op##F##SZ##_j7,                \
	  op##F##SZ##_j8, op##F##SZ##_j9, op##F##SZ##_j10, op##F##SZ##_j11,              \
	  op##F##SZ##_j12, op##F##SZ##_j13, op##F##SZ##_j14, op##F##SZ##_j15 }
/* [TEST?][immediate?][64-bit?][cc] */
static const emu_exec_fn fused_pairs[2][2][2][16] = {
	{ { PAIR_CCS(exec_cmp_, rr, 4), PAIR_CCS(exec_cmp_, rr, 8) },
	  { PAIR_CCS(exec_cmp_, ri, 4), PAIR_CCS(exec_cmp_, ri, 8) } },
	{ { PAIR_CCS(exec_test_, rr, 4), PAIR_CCS(exec_test_, rr, 8) },
	  { PAIR_CCS(exec_test_, ri, 4), PAIR_CCS(exec_test_, ri, 8) } },
};

static bool is_jcc64(const struct emu_insn *in)
{
	return (in->flags & EMU_IF_REL_BRANCH) && in->opsize == 8 && !in->prefixes &&
	       ((in->opcode & 0xf0) == 0x70 || (in->opcode & 0xf0) == 0x80);
}

void emu_fuse(struct emu_insn *insn, unsigned n)
{
	for (unsigned k = 0; k + 1 < n; k++) {
		struct emu_insn *in = &insn[k];
		const struct emu_operand *o0 = &in->op[0], *o1 = &in->op[1];
		bool test = in->mnemonic == ZYDIS_MNEMONIC_TEST, imm;

		if ((!test && in->mnemonic != ZYDIS_MNEMONIC_CMP) || in->prefixes ||
		    in->nops != 2 || !gpr(o0) || (o0->size != 4 && o0->size != 8) ||
		    !is_jcc64(&insn[k + 1]))
			continue;
		imm = o1->kind == EMU_OPK_IMM;
		if (!imm && !(gpr(o1) && o1->size == o0->size))
			continue;
		in->exec = fused_pairs[test][imm][o0->size == 8][insn[k + 1].cc & 15];
		in->flags |= EMU_IF_FUSED;
	}
}

static unsigned log2_size(unsigned size)
{
	return size == 8 ? 3 : size == 4 ? 2 : size == 2 ? 1 : 0;
}

emu_exec_fn emu_fast_handler(const struct emu_insn *in, unsigned mnemonic)
{
	const struct emu_operand *o0 = &in->op[0], *o1 = &in->op[1];
	int f;

	if (in->prefixes)
		return NULL;
	switch (mnemonic) {
	case ZYDIS_MNEMONIC_MOV:
		if (gpr(o0) && gpr(o1) && o0->size == o1->size && (o0->size == 8 || o0->size == 4))
			return o0->size == 8 ? exec_mov_rr8 : exec_mov_rr4;
		if (gpr(o0) && (o0->size == 8 || o0->size == 4) &&
		    (f = mem_form(in, o1)) != FORM_NONE && o1->size == o0->size)
			return fast_ld[log2_size(o0->size)][f];
		if ((f = mem_form(in, o0)) == FORM_NONE || o0->size == 2)
			return NULL;
		if (gpr(o1) && o1->size == o0->size)
			return fast_st[log2_size(o0->size)][f];
		if (o1->kind == EMU_OPK_IMM)
			return fast_sti[log2_size(o0->size)][f];
		return NULL;
	case ZYDIS_MNEMONIC_MOVZX:
		if (!gpr(o0) || (o0->size != 4 && o0->size != 8) ||
		    (o1->size != 1 && o1->size != 2))
			return NULL;
		if (gpr(o1))
			return o1->size == 1 ? exec_movzx_rr1 : exec_movzx_rr2;
		f = mem_form(in, o1);
		return f == FORM_NONE ? NULL : fast_ld[log2_size(o1->size)][f];
	case ZYDIS_MNEMONIC_MOVSXD:
		return gpr(o0) && gpr(o1) && o0->size == 8 && o1->size == 4 ? exec_movsxd_rr
									      : NULL;
	case ZYDIS_MNEMONIC_SHL:
	case ZYDIS_MNEMONIC_SHR:
	case ZYDIS_MNEMONIC_SAR:
		if (!gpr(o0) || (o0->size != 4 && o0->size != 8) ||
		    (in->nops >= 2 && o1->kind != EMU_OPK_IMM))
			return NULL;
		if (mnemonic == ZYDIS_MNEMONIC_SHL)
			return o0->size == 8 ? exec_shl_ri8 : exec_shl_ri4;
		if (mnemonic == ZYDIS_MNEMONIC_SHR)
			return o0->size == 8 ? exec_shr_ri8 : exec_shr_ri4;
		return o0->size == 8 ? exec_sar_ri8 : exec_sar_ri4;
	case ZYDIS_MNEMONIC_IMUL:
		if (in->nops < 2 || !gpr(o0) || (o0->size != 4 && o0->size != 8) || !gpr(o1) ||
		    o1->size != o0->size || (in->nops == 3 && in->op[2].kind != EMU_OPK_IMM))
			return NULL;
		return o0->size == 8 ? exec_imul_rr8 : exec_imul_rr4;
	case ZYDIS_MNEMONIC_NEG:
		if (!gpr(o0) || (o0->size != 4 && o0->size != 8))
			return NULL;
		return o0->size == 8 ? exec_neg_r8 : exec_neg_r4;
	case ZYDIS_MNEMONIC_PUSH:
		return in->opsize == 8 && gpr(o0) && o0->size == 8 ? exec_push_r64 : NULL;
	case ZYDIS_MNEMONIC_POP:
		return in->opsize == 8 && gpr(o0) && o0->size == 8 ? exec_pop_r64 : NULL;
	case ZYDIS_MNEMONIC_CALL:
		return in->opsize == 8 && o0->kind == EMU_OPK_IMM && !(in->flags & EMU_IF_FAR)
			       ? exec_call_rel64 : NULL;
	case ZYDIS_MNEMONIC_JMP:
		return in->opsize == 8 && (in->flags & EMU_IF_REL_BRANCH) ? exec_jmp_rel64 : NULL;
	case ZYDIS_MNEMONIC_RET:
		return in->opsize == 8 && in->nops == 0 && !(in->flags & EMU_IF_FAR) ? exec_ret64
										     : NULL;
	case ZYDIS_MNEMONIC_JB: case ZYDIS_MNEMONIC_JBE: case ZYDIS_MNEMONIC_JL:
	case ZYDIS_MNEMONIC_JLE: case ZYDIS_MNEMONIC_JNB: case ZYDIS_MNEMONIC_JNBE:
	case ZYDIS_MNEMONIC_JNL: case ZYDIS_MNEMONIC_JNLE: case ZYDIS_MNEMONIC_JNO:
	case ZYDIS_MNEMONIC_JNP: case ZYDIS_MNEMONIC_JNS: case ZYDIS_MNEMONIC_JNZ:
	case ZYDIS_MNEMONIC_JO: case ZYDIS_MNEMONIC_JP: case ZYDIS_MNEMONIC_JS:
	case ZYDIS_MNEMONIC_JZ:
		return in->opsize == 8 && o0->kind == EMU_OPK_IMM ? exec_j64[in->cc & 15] : NULL;
	default:
		return NULL;
	}
}
