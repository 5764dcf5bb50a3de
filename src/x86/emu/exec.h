/*
 * exec.h: private to the interpreter core (decode.c, cache.c, run.c, flags.c, exec_*.c):
 * the decoded-trace cache layout, the per-vCPU core state, register and operand helpers
 * inlined into the instruction handlers, and the handler table the decoder consults.
 */
#ifndef KHYVE_EMU_EXEC_H
#define KHYVE_EMU_EXEC_H

#include <Zydis/Zydis.h>
#include "flags.h"

#define EMU_TRACE_MAX 32		/* instructions per trace */
#define EMU_TRACE_SLOTS 16384		/* direct-mapped trace table, power of two */
#define EMU_POOL_INSNS (1u << 17)	/* decoded-instruction pool per vCPU */
#define EMU_NMODES 7

/* Per guest-physical page: generation bumped on writes to lines holding cached code. */
struct emu_page {
	_Atomic uint32_t gen;
	_Atomic uint32_t lines;		/* bit n: 128-byte line n holds cached code */
};

struct emu_trace {
	uint64_t gpa;			/* first instruction; ~0 when the slot is empty */
	struct emu_page *page;
	struct emu_insn *insn;
	uint32_t gen;
	uint8_t mode;
	uint8_t n;
};

struct emu_core {
	ZydisDecoder dec[EMU_NMODES];
	ZydisFormatter fmt;
	struct emu_trace *traces;
	struct emu_insn *pool;
	unsigned pool_used;
	struct emu_trace scratch;	/* uncached: MMIO code, page-crossing instructions */
	struct emu_insn scratch_insn;
	/* last code-page translation, valid until a system instruction or an event */
	bool fetch_valid;
	uint8_t fetch_mode;
	uint64_t fetch_lin_page, fetch_gpa_page;
};

static inline struct emu_core *emu_core(struct emu_cpu *cpu)
{
	return cpu->core_private;
}

/* ---- machine (cache.c) ---- */
struct emu_page *emu_page_get(struct emu_machine *m, uint64_t gpa, bool create);
/* Find or build the trace at `rip`; NULL with EMU_FAULT/EMU_STOP in *res when none. */
const struct emu_trace *emu_trace_get(struct emu_cpu *cpu, int *res);
void emu_cache_flush(struct emu_cpu *cpu);

/* ---- decoder (decode.c) ---- */
int emu_decoder_init(struct emu_core *core);
/*
 * Decode one instruction from `bytes` (`avail` of them) in the cpu's mode into *in.
 * Returns 0, -EAGAIN when more bytes are needed, -EINVAL for an invalid encoding
 * (in->exec then raises #UD).
 */
int emu_decode(struct emu_cpu *cpu, const uint8_t *bytes, unsigned avail, struct emu_insn *in);
/* Disassemble for error messages. */
void emu_disasm(struct emu_cpu *cpu, const uint8_t *bytes, unsigned len, char *buf,
		size_t size);

/* Handler table filled by the exec_*.c files: core handler for a Zydis mnemonic. */
emu_exec_fn emu_core_handler(const struct emu_insn *in, unsigned mnemonic);
emu_exec_fn emu_int_handler(const struct emu_insn *in, unsigned mnemonic);
emu_exec_fn emu_ctl_handler(const struct emu_insn *in, unsigned mnemonic);
emu_exec_fn emu_str_handler(const struct emu_insn *in, unsigned mnemonic);
int emu_exec_ud(struct emu_cpu *cpu, const struct emu_insn *in);

/* ---- registers ---- */
static inline uint64_t emu_reg_get(const struct emu_cpu *cpu, unsigned reg, unsigned size)
{
	if (reg >= EMU_REG_HIGH8 && reg < EMU_REG_HIGH8 + 4)
		return (cpu->st.gpr[reg - EMU_REG_HIGH8] >> 8) & 0xff;
	return cpu->st.gpr[reg & 15] & emu_size_mask(size);
}

static inline void emu_reg_set(struct emu_cpu *cpu, unsigned reg, unsigned size, uint64_t v)
{
	uint64_t *r;

	if (reg >= EMU_REG_HIGH8 && reg < EMU_REG_HIGH8 + 4) {
		r = &cpu->st.gpr[reg - EMU_REG_HIGH8];
		*r = (*r & ~0xff00ull) | ((v & 0xff) << 8);
		return;
	}
	r = &cpu->st.gpr[reg & 15];
	switch (size) {
	case 1:
		*r = (*r & ~0xffull) | (v & 0xff);
		break;
	case 2:
		*r = (*r & ~0xffffull) | (v & 0xffff);
		break;
	case 4:
		*r = (uint32_t)v;
		break;
	default:
		*r = v;
		break;
	}
}

static inline uint64_t emu_ea_off(const struct emu_cpu *cpu, const struct emu_insn *in,
				  const struct emu_operand *op)
{
	uint64_t a = (uint64_t)op->disp;

	if (op->base != EMU_REG_NONE)
		a += op->rip_rel ? cpu->st.rip : cpu->st.gpr[op->base];
	if (op->index != EMU_REG_NONE)
		a += cpu->st.gpr[op->index] * op->scale;
	return a & emu_size_mask(in->addrsize);
}

/* Fast operand access (inlined); the EMU_OPK_* switch folds away in specialised handlers. */
static inline int emu_opr(struct emu_cpu *cpu, const struct emu_insn *in, int idx,
			  uint64_t *v)
{
	const struct emu_operand *op = &in->op[idx];

	switch (op->kind) {
	case EMU_OPK_REG:
		*v = emu_reg_get(cpu, op->reg, op->size);
		return 0;
	case EMU_OPK_IMM:
		*v = op->imm;
		return 0;
	case EMU_OPK_MEM:
		*v = 0;
		return emu_mem_read(cpu, op->seg, emu_ea_off(cpu, in, op), v, op->size);
	default:
		return emu_op_read(cpu, in, idx, v);
	}
}

static inline int emu_opw(struct emu_cpu *cpu, const struct emu_insn *in, int idx, uint64_t v)
{
	const struct emu_operand *op = &in->op[idx];

	if (op->kind == EMU_OPK_REG && op->reg < EMU_REG_SREG) {
		emu_reg_set(cpu, op->reg, op->size, v);
		return 0;
	}
	if (op->kind == EMU_OPK_MEM)
		return emu_mem_write(cpu, op->seg, emu_ea_off(cpu, in, op), &v, op->size);
	return emu_op_write(cpu, in, idx, v);
}

static inline uint64_t emu_ip_mask(const struct emu_cpu *cpu)
{
	return emu_size_mask(cpu->code_size);
}

static inline uint64_t emu_sext(uint64_t v, unsigned size)
{
	unsigned sh = 64 - size * 8;

	return (uint64_t)((int64_t)(v << sh) >> sh);
}

/* Near branch to `target` (already truncated to the operand size): #GP beyond CS.limit or
 * non-canonical in 64-bit mode. */
int emu_branch(struct emu_cpu *cpu, uint64_t target);

#endif
