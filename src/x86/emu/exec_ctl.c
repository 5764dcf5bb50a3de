/*
 * exec_ctl.c: near control transfers and the stack (SDM Vol. 1 §6.3-6.5, Vol. 2): Jcc,
 * JMP/CALL/RET near (incl. RET imm16), LOOP/LOOPE/LOOPNE, JCXZ/JECXZ/JRCXZ, PUSH/POP
 * (register, memory, immediate), PUSHA/POPA, PUSHF/POPF with the CPL/IOPL/VM rules for the
 * flags they may change, ENTER (with nesting) and LEAVE. Far forms belong to the system half.
 */
#include "exec.h"

#define TRY(x)                                  \
	do {                                    \
		int rc_ = (x);                  \
		if (rc_)                        \
			return rc_;             \
	} while (0)

/* Relative target: next RIP + displacement, truncated to the operand size. */
static inline uint64_t rel_target(const struct emu_cpu *cpu, const struct emu_insn *in)
{
	return (cpu->st.rip + in->op[0].imm) & emu_size_mask(in->opsize);
}

/* Taken near branch, with the 64-bit canonical check inline. */
static inline int branch_to(struct emu_cpu *cpu, uint64_t target)
{
	if (cpu->mode == EMU_MODE_LONG64 &&
	    emu_canonical(target)) {
		cpu->st.rip = target;
		return EMU_OK;
	}
	return emu_branch(cpu, target);
}

/* After a branch: its fault, or on in the chain at the target (emu_jump). */
static inline int jump(struct emu_cpu *cpu, const struct emu_insn *in, int r)
{
	return r ? r : emu_jump(cpu, in);
}

#define DEF_JCC(cc)                                                                      \
	static int exec_j##cc(struct emu_cpu *cpu, const struct emu_insn *in)            \
	{                                                                                \
		if (!emu_cond_fast(cpu, cc))                                             \
			return emu_next(cpu, in);                                        \
		return jump(cpu, in, branch_to(cpu, rel_target(cpu, in)));               \
	}
DEF_JCC(0) DEF_JCC(1) DEF_JCC(2) DEF_JCC(3) DEF_JCC(4) DEF_JCC(5) DEF_JCC(6) DEF_JCC(7)
DEF_JCC(8) DEF_JCC(9) DEF_JCC(10) DEF_JCC(11) DEF_JCC(12) DEF_JCC(13) DEF_JCC(14) DEF_JCC(15)

static const emu_exec_fn exec_jcc[16] = {
	exec_j0, exec_j1, exec_j2, exec_j3, exec_j4, exec_j5, exec_j6, exec_j7,
	exec_j8, exec_j9, exec_j10, exec_j11, exec_j12, exec_j13, exec_j14, exec_j15,
};

static int exec_jmp_rel(struct emu_cpu *cpu, const struct emu_insn *in)
{
	return jump(cpu, in, branch_to(cpu, rel_target(cpu, in)));
}

static int exec_jmp_ind(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t t;

	TRY(emu_opr(cpu, in, 0, &t));
	return jump(cpu, in, emu_branch(cpu, t & emu_size_mask(in->opsize)));
}

static int do_call(struct emu_cpu *cpu, const struct emu_insn *in, uint64_t target)
{
	uint64_t sp = cpu->st.gpr[EMU_RSP];
	int r;

	TRY(emu_push(cpu, cpu->st.rip, in->opsize));
	r = emu_branch(cpu, target);
	if (r) {
		cpu->st.gpr[EMU_RSP] = sp;
		return r;
	}
	return cpu->brk ? EMU_OK : emu_jump(cpu, in);
}

static int exec_call_rel(struct emu_cpu *cpu, const struct emu_insn *in)
{
	return do_call(cpu, in, rel_target(cpu, in));
}

static int exec_call_ind(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t t;

	TRY(emu_opr(cpu, in, 0, &t));
	return do_call(cpu, in, t & emu_size_mask(in->opsize));
}

static int exec_ret(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t sp = cpu->st.gpr[EMU_RSP], t, m = emu_size_mask(cpu->stack_size);
	int r;

	TRY(emu_pop(cpu, &t, in->opsize));
	r = emu_branch(cpu, t & emu_size_mask(in->opsize));
	if (r) {
		cpu->st.gpr[EMU_RSP] = sp;
		return r;
	}
	if (in->nops > 0)
		cpu->st.gpr[EMU_RSP] = (cpu->st.gpr[EMU_RSP] & ~m) |
				       ((cpu->st.gpr[EMU_RSP] + (in->op[0].imm & 0xffff)) & m);
	return emu_jump(cpu, in);
}

static int exec_loop(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t m = emu_size_mask(in->addrsize);
	uint64_t c = (cpu->st.gpr[EMU_RCX] - 1) & m;
	bool take = c != 0;

	cpu->st.gpr[EMU_RCX] = (cpu->st.gpr[EMU_RCX] & ~m) | c;
	if (in->mnemonic == ZYDIS_MNEMONIC_LOOPE)
		take = take && emu_flag_zf(cpu);
	else if (in->mnemonic == ZYDIS_MNEMONIC_LOOPNE)
		take = take && !emu_flag_zf(cpu);
	return take ? jump(cpu, in, emu_branch(cpu, rel_target(cpu, in))) : emu_next(cpu, in);
}

static int exec_jcxz(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (cpu->st.gpr[EMU_RCX] & emu_size_mask(in->addrsize))
		return emu_next(cpu, in);
	return jump(cpu, in, emu_branch(cpu, rel_target(cpu, in)));
}

/* ---- stack ---- */

static int exec_push(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t v;

	TRY(emu_opr(cpu, in, 0, &v));
	TRY(emu_push(cpu, v, in->opsize));
	return emu_next(cpu, in);
}

static int exec_push_r(struct emu_cpu *cpu, const struct emu_insn *in)
{
	TRY(emu_push(cpu, cpu->st.gpr[in->op[0].reg], in->opsize));
	return emu_next(cpu, in);
}

static int exec_pop(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t sp = cpu->st.gpr[EMU_RSP], v;
	int r;

	TRY(emu_pop(cpu, &v, in->opsize));
	/* a memory destination uses RSP after the pop (SDM: POP) */
	r = emu_opw(cpu, in, 0, v);
	if (r) {
		cpu->st.gpr[EMU_RSP] = sp;
		return r;
	}
	return emu_next(cpu, in);
}

static int exec_pop_r(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t v;

	TRY(emu_pop(cpu, &v, in->opsize));
	emu_reg_set(cpu, in->op[0].reg, in->opsize, v);
	return emu_next(cpu, in);
}

static int exec_pusha(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned sz = in->opsize;
	uint64_t sp = cpu->st.gpr[EMU_RSP];
	int r = EMU_OK;

	for (int i = EMU_RAX; i <= EMU_RDI && !r; i++)
		r = emu_push(cpu, i == EMU_RSP ? sp : cpu->st.gpr[i], sz);
	if (r) {
		cpu->st.gpr[EMU_RSP] = sp;
		return r;
	}
	return emu_next(cpu, in);
}

static int exec_popa(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned sz = in->opsize;
	uint64_t sp = cpu->st.gpr[EMU_RSP], v[8];
	int r;

	for (int i = EMU_RDI; i >= EMU_RAX; i--) {
		r = emu_pop(cpu, &v[i], sz);
		if (r) {
			cpu->st.gpr[EMU_RSP] = sp;
			return r;
		}
	}
	for (int i = EMU_RAX; i <= EMU_RDI; i++)
		if (i != EMU_RSP)
			emu_reg_set(cpu, i, sz, v[i]);
	return EMU_OK;
}

static unsigned iopl(const struct emu_cpu *cpu)
{
	return (cpu->st.rflags >> 12) & 3;
}

static int exec_pushf(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (cpu->mode == EMU_MODE_VM86 && iopl(cpu) < 3)
		return emu_gp0(cpu);
	return emu_push(cpu, emu_get_rflags(cpu) & ~(uint64_t)(EMU_VM | EMU_RF), in->opsize);
}

static int exec_popf(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t v, old, mask = EMU_ARITH | EMU_TF | EMU_DF | EMU_NT | EMU_AC | EMU_ID;

	if (cpu->mode == EMU_MODE_VM86 && iopl(cpu) < 3)
		return emu_gp0(cpu);
	TRY(emu_pop(cpu, &v, in->opsize));
	old = emu_get_rflags(cpu);
	if (cpu->mode == EMU_MODE_REAL || cpu->cpl == 0)
		mask |= EMU_IOPL | EMU_IF;
	else if (cpu->cpl <= iopl(cpu) && cpu->mode != EMU_MODE_VM86)
		mask |= EMU_IF;
	if (cpu->mode == EMU_MODE_VM86)
		mask |= EMU_IF;
	if (in->opsize == 2)
		mask &= 0xffff;
	emu_set_rflags(cpu, ((old & ~mask) | (v & mask)) & ~(uint64_t)EMU_RF);
	return EMU_OK;
}

static int exec_enter(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned sz = in->opsize, level = in->op[1].imm & 31;
	uint64_t m = emu_size_mask(cpu->stack_size), size = in->op[0].imm & 0xffff;
	uint64_t sp0 = cpu->st.gpr[EMU_RSP], bp = cpu->st.gpr[EMU_RBP], frame, v;
	int r;

	r = emu_push(cpu, bp, sz);
	if (r)
		return r;
	frame = cpu->st.gpr[EMU_RSP] & m;
	for (unsigned i = 1; i < level && !r; i++) {
		bp = (bp & ~m) | ((bp - sz) & m);
		v = 0;
		r = emu_mread(cpu, EMU_SS, bp & m, &v, sz);
		if (!r)
			r = emu_push(cpu, v, sz);
	}
	if (!r && level > 0)
		r = emu_push(cpu, frame, sz);
	if (!r) {
		/* the final stack pointer must be writable: probe it */
		uint64_t nsp = (cpu->st.gpr[EMU_RSP] - size) & m, probe = 0;

		if (size) {
			r = emu_mread(cpu, EMU_SS, nsp, &probe, 1);
			if (!r)
				r = emu_mwrite(cpu, EMU_SS, nsp, &probe, 1);
		}
		if (!r) {
			emu_reg_set(cpu, EMU_RBP, sz, frame);
			cpu->st.gpr[EMU_RSP] = (cpu->st.gpr[EMU_RSP] & ~m) | nsp;
			return EMU_OK;
		}
	}
	cpu->st.gpr[EMU_RSP] = sp0;
	return r;
}

static int exec_leave(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t m = emu_size_mask(cpu->stack_size), sp = cpu->st.gpr[EMU_RSP], v;
	int r;

	cpu->st.gpr[EMU_RSP] = (sp & ~m) | (cpu->st.gpr[EMU_RBP] & m);
	r = emu_pop(cpu, &v, in->opsize);
	if (r) {
		cpu->st.gpr[EMU_RSP] = sp;
		return r;
	}
	emu_reg_set(cpu, EMU_RBP, in->opsize, v);
	return emu_next(cpu, in);
}

emu_exec_fn emu_ctl_handler(const struct emu_insn *in, unsigned mnemonic)
{
	bool r0 = in->nops > 0 && in->op[0].kind == EMU_OPK_REG && in->op[0].reg < 16;

	switch (mnemonic) {
	case ZYDIS_MNEMONIC_JB: case ZYDIS_MNEMONIC_JBE: case ZYDIS_MNEMONIC_JL:
	case ZYDIS_MNEMONIC_JLE: case ZYDIS_MNEMONIC_JNB: case ZYDIS_MNEMONIC_JNBE:
	case ZYDIS_MNEMONIC_JNL: case ZYDIS_MNEMONIC_JNLE: case ZYDIS_MNEMONIC_JNO:
	case ZYDIS_MNEMONIC_JNP: case ZYDIS_MNEMONIC_JNS: case ZYDIS_MNEMONIC_JNZ:
	case ZYDIS_MNEMONIC_JO: case ZYDIS_MNEMONIC_JP: case ZYDIS_MNEMONIC_JS:
	case ZYDIS_MNEMONIC_JZ:
		return exec_jcc[in->cc & 15];
	case ZYDIS_MNEMONIC_JMP:
		return in->op[0].kind == EMU_OPK_IMM ? exec_jmp_rel : exec_jmp_ind;
	case ZYDIS_MNEMONIC_CALL:
		return in->op[0].kind == EMU_OPK_IMM ? exec_call_rel : exec_call_ind;
	case ZYDIS_MNEMONIC_RET:
		return exec_ret;
	case ZYDIS_MNEMONIC_LOOP:
	case ZYDIS_MNEMONIC_LOOPE:
	case ZYDIS_MNEMONIC_LOOPNE:
		return exec_loop;
	case ZYDIS_MNEMONIC_JCXZ:
	case ZYDIS_MNEMONIC_JECXZ:
	case ZYDIS_MNEMONIC_JRCXZ:
		return exec_jcxz;
	case ZYDIS_MNEMONIC_PUSH:
		return r0 ? exec_push_r : exec_push;
	case ZYDIS_MNEMONIC_POP:
		return r0 ? exec_pop_r : exec_pop;
	case ZYDIS_MNEMONIC_PUSHA:
	case ZYDIS_MNEMONIC_PUSHAD:
		return exec_pusha;
	case ZYDIS_MNEMONIC_POPA:
	case ZYDIS_MNEMONIC_POPAD:
		return exec_popa;
	case ZYDIS_MNEMONIC_PUSHF:
	case ZYDIS_MNEMONIC_PUSHFD:
	case ZYDIS_MNEMONIC_PUSHFQ:
		return exec_pushf;
	case ZYDIS_MNEMONIC_POPF:
	case ZYDIS_MNEMONIC_POPFD:
	case ZYDIS_MNEMONIC_POPFQ:
		return exec_popf;
	case ZYDIS_MNEMONIC_ENTER:
		return exec_enter;
	case ZYDIS_MNEMONIC_LEAVE:
		return exec_leave;
	default:
		return NULL;
	}
}
