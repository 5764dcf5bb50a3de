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
#define EMU_TRACE_BYTES (EMU_TRACE_MAX * 15)	/* the most code bytes a trace can span */
#define EMU_TRACE_SLOTS 65536		/* direct-mapped trace table, power of two */
/* Decoded-instruction pool per vCPU: 64 MiB of address space, touched as code is seen
 * (Linux's boot runs through ~500k instructions of traces; a full pool is flushed). */
#define EMU_POOL_INSNS (1u << 19)
#define EMU_NMODES 7

/*
 * Per guest-physical page, one atomic word: the low 32 bits say which 128-byte lines hold
 * cached code (bit n: line n), the high 32 bits are a generation. A write to a marked line
 * bumps the generation and clears every mark in one step (all traces of the page are
 * stale then, so later writes to the page cost nothing); a trace records the generation
 * that was current when it marked its lines and is valid while that is unchanged.
 */
struct emu_page {
	_Atomic uint64_t state;
};

static inline uint32_t emu_page_gen(const struct emu_page *p)
{
	return atomic_load_explicit(&p->state, memory_order_relaxed) >> 32;
}

static inline uint32_t emu_page_lines(const struct emu_page *p)
{
	return (uint32_t)atomic_load_explicit(&p->state, memory_order_relaxed);
}

struct emu_trace {
	uint64_t tag;			/* emu_trace_tag(gpa, mode); 0 when the slot is empty */
	struct emu_page *page;
	struct emu_insn *insn;
	uint32_t gen;
	uint8_t n;
};

/* Key of a trace: guest-physical address of its first instruction and the CPU mode. */
static inline uint64_t emu_trace_tag(uint64_t gpa, unsigned mode)
{
	return (gpa << 4) | 8 | mode;
}

struct emu_core {
	ZydisDecoder dec[EMU_NMODES];
	ZydisFormatter fmt;
	struct emu_trace *traces;
	struct emu_insn *pool;
	unsigned pool_used;
	struct emu_trace scratch;	/* uncached: MMIO code, page-crossing instructions */
	struct emu_insn scratch_insn[2];	/* one instruction and its trace end */
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
#define EMU_CHUNK_SHIFT 30			/* 1 GiB of pages per chunk */
#define EMU_PHYS_BITS 46			/* code above this is never cached */
#define EMU_NCHUNKS (1u << (EMU_PHYS_BITS - EMU_CHUNK_SHIFT))
#define EMU_CHUNK_PAGES (1u << (EMU_CHUNK_SHIFT - 12))

struct emu_machine {
	_Atomic(struct emu_page *) chunk[EMU_NCHUNKS];
	/* indices of the chunks allocated, so that teardown touches only those */
	_Atomic uint32_t nused;
	uint16_t used[EMU_NCHUNKS];
};

void emu_smc_hit(struct emu_machine *m, uint64_t gpa, unsigned len);

/* A write to guest-physical [gpa, gpa+len) within one page: drop code cached there. */
static inline void emu_smc_check(struct emu_cpu *cpu, uint64_t gpa, unsigned len)
{
	struct emu_page *c;

	if (gpa >> EMU_PHYS_BITS)
		return;
	c = atomic_load_explicit(&cpu->machine->chunk[gpa >> EMU_CHUNK_SHIFT],
				 memory_order_relaxed);
	if (c && emu_page_lines(&c[(gpa >> 12) & (EMU_CHUNK_PAGES - 1)])) {
		emu_smc_hit(cpu->machine, gpa, len);
		cpu->brk = true;
	}
}

static inline unsigned emu_trace_slot(uint64_t gpa, unsigned mode)
{
	uint64_t h = gpa ^ (gpa >> 14) ^ ((uint64_t)mode << 11);

	return h & (EMU_TRACE_SLOTS - 1);
}

/* The trace at RIP when its code page is the last one translated (taken branches). */
static inline const struct emu_trace *emu_trace_fast(struct emu_cpu *cpu)
{
	struct emu_core *core = emu_core(cpu);
	uint64_t lin = cpu->st.rip, gpa;
	unsigned mode = cpu->mode;
	const struct emu_trace *t;

	if (!core->fetch_valid || core->fetch_mode != mode)
		return NULL;
	if (mode != EMU_MODE_LONG64) {
		const struct emu_seg *cs = &cpu->st.seg[EMU_CS];

		if (lin > cs->limit)
			return NULL;
		lin = (cs->base + lin) & 0xffffffffull;
	}
	if ((lin & ~0xfffull) != core->fetch_lin_page)
		return NULL;
	gpa = core->fetch_gpa_page | (lin & 0xfff);
	t = &core->traces[emu_trace_slot(gpa, mode)];
	if (t->tag == emu_trace_tag(gpa, mode) &&
	    t->gen == emu_page_gen(t->page))
		return t;
	return NULL;
}
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
emu_exec_fn emu_fast_handler(const struct emu_insn *in, unsigned mnemonic);
/* Give pairs of a trace of 64-bit code that one handler can run together that handler
 * (EMU_IF_FUSED on the first); emu_core_handler() gives the first one's own handler back. */
void emu_fuse(struct emu_insn *insn, unsigned n);
emu_exec_fn emu_int_handler(const struct emu_insn *in, unsigned mnemonic);
emu_exec_fn emu_ctl_handler(const struct emu_insn *in, unsigned mnemonic);
emu_exec_fn emu_str_handler(const struct emu_insn *in, unsigned mnemonic);
int emu_exec_ud(struct emu_cpu *cpu, const struct emu_insn *in);

/*
 * Chained dispatch. Every trace's instructions are followed by a trace end (an instruction
 * of length 0 whose handler emu_exec_trace_end returns EMU_OK). emu_chain_start() runs
 * one instruction with the RIP convention of emu_internal.h and notes it in
 * cpu->chain_at. A handler that completed without a fault, without moving RIP off the
 * straight line and without setting cpu->brk may end with `return emu_next(cpu, in)`:
 * the next instruction of the trace then starts at once (a tail call), so that a trace
 * runs as one chain of jumps and each handler has its own indirect branch to predict.
 * Any other handler simply returns; the run loop (run.c) finds where the chain stopped in
 * cpu->chain_at and goes on from there. Handlers must not call chaining handlers except
 * as their final `return`.
 */
int emu_exec_trace_end(struct emu_cpu *cpu, const struct emu_insn *in);
extern const struct emu_insn emu_trace_end_insn;

static inline __attribute__((always_inline)) int emu_chain_start(struct emu_cpu *cpu,
								const struct emu_insn *in)
{
	uint64_t rip = cpu->st.rip;

	cpu->insn_rip = rip;
	cpu->st.rip = (rip + in->len) & cpu->ip_mask;
	cpu->chain_at = in;
	return in->exec(cpu, in);
}

static inline __attribute__((always_inline)) int emu_next(struct emu_cpu *cpu,
								const struct emu_insn *in)
{
	if (__builtin_expect(cpu->brk, 0))
		return EMU_OK;
	return emu_chain_start(cpu, in + 1);
}

/* emu_next for handlers that touch only registers (they cannot have set cpu->brk). */
static inline __attribute__((always_inline)) int emu_next_reg(struct emu_cpu *cpu,
							       const struct emu_insn *in)
{
	return emu_chain_start(cpu, in + 1);
}

/* emu_next for handlers that cannot have set cpu->brk (no access but through the TLB fast
 * path, which sets it only on the way out) and that run only in 64-bit mode (no wrap). */
static inline __attribute__((always_inline)) int emu_next64(struct emu_cpu *cpu,
								const struct emu_insn *in)
{
	const struct emu_insn *n = in + 1;
	uint64_t rip = cpu->st.rip;

	cpu->insn_rip = rip;
	cpu->st.rip = rip + n->len;
	cpu->chain_at = n;
	return n->exec(cpu, n);
}

/*
 * A taken branch whose handler has set st.rip to its target goes on in the chain: at an
 * instruction of the same trace (in->link), or else at the start of the trace that the
 * fast lookup finds for the target. The run loop counts the instructions that such jumps
 * repeat, skip or leave behind in cpu->chain_extra (the instructions run are chain_extra
 * plus the position in the trace at cpu->chain_base) and bounds it with cpu->chain_room:
 * the instruction budget, and a cap (EMU_LINK_ROOM) that also bounds how long a pending
 * event or code changed by another vCPU waits for the loop. The handler must not have set
 * cpu->brk (a CALL whose push hit cached code returns instead).
 */
/* Whether the chain may go on at in->link (counted in chain_extra when it may). */
static inline bool emu_link_allowed(struct emu_cpu *cpu, const struct emu_insn *in)
{
	int64_t extra = cpu->chain_extra + 1 - in->link;

	if (extra > cpu->chain_room)
		return false;
	cpu->chain_extra = extra;
	return true;
}

static inline int emu_jump(struct emu_cpu *cpu, const struct emu_insn *in)
{
	const struct emu_trace *t;
	int64_t extra;

	if (in->link)
		return emu_link_allowed(cpu, in) ? emu_chain_start(cpu, in + in->link) : EMU_OK;
	extra = cpu->chain_extra + (in - cpu->chain_base) + 1;
	if (extra > cpu->chain_room || !(t = emu_trace_fast(cpu)))
		return EMU_OK;
	cpu->chain_extra = extra;
	cpu->chain_base = t->insn;
	return emu_chain_start(cpu, t->insn);
}

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
		a += op->rip_rel ? cpu->insn_rip + in->len : cpu->st.gpr[op->base];
	if (op->index != EMU_REG_NONE)
		a += cpu->st.gpr[op->index] * op->scale;
	return a & emu_size_mask(in->addrsize);
}

/*
 * Data-access fast path for 64-bit code: a host pointer from the system half's software
 * TLB when the entry is present and its permissions allow the access exactly as
 * tlb_allows() in mmu.c decides (U/S for CPL 3, R/W with CR0.WP, D already set, writable
 * RAM), the access stays in one page and the page is RAM. NULL means "take the full path"
 * (emu_mem_read/emu_mem_write), which also raises any fault.
 */
/* Recompute the fast path's mode and permission needs; the run loop calls it before each
 * run of traces (mode, CPL and CR0.WP change only in system handlers and deliveries, which
 * end a run). */
static inline void emu_fast_refresh(struct emu_cpu *cpu)
{
	bool user = cpu->cpl == 3;
	/* outside 64-bit mode (or with data breakpoints, see seg.c) no entry has EMU_TLB_NEVER */
	uint32_t off = cpu->mode == EMU_MODE_LONG64 && !cpu->sys.dr_data ? 0 : EMU_TLB_NEVER;

	cpu->ip_mask = emu_size_mask(cpu->code_size);
	cpu->fast_need_r = (user ? EMU_TLB_USER : 0) | EMU_TLB_HOST | off;
	cpu->fast_need_w = cpu->fast_need_r | EMU_TLB_DIRTY | EMU_TLB_HOSTW |
			   ((user || (cpu->st.cr0 & (1u << 16))) ? EMU_TLB_WRITE : 0);
	/* 64-bit mode: only FS and GS have a base */
	cpu->fast_base[EMU_FS] = cpu->st.seg[EMU_FS].base;
	cpu->fast_base[EMU_GS] = cpu->st.seg[EMU_GS].base;
}

/* No fast accesses until the next emu_fast_refresh() (system handlers). */
static inline void emu_fast_off(struct emu_cpu *cpu)
{
	cpu->fast_need_r |= EMU_TLB_NEVER;
	cpu->fast_need_w |= EMU_TLB_NEVER;
}

/*
 * The TLB entry for a fast access at `off` (linear address in *lin), or NULL. The entry is
 * the one of the first byte's page, its tag is compared with the last byte's page: an
 * access that crosses a page never matches.
 */
static inline const struct emu_tlb_entry *emu_fast_entry(struct emu_cpu *cpu, int sreg,
							 uint64_t off, unsigned size,
							 bool write, uint64_t *lin)
{
	const struct emu_tlb_entry *e;
	uint64_t l;
	uint32_t need = write ? cpu->fast_need_w : cpu->fast_need_r;

	if ((size & (size - 1)) || size > 8)
		return NULL;
	l = off + cpu->fast_base[sreg & 7];
	e = &cpu->sys.tlb[(l >> 12) % EMU_TLB_SIZE];
	/* EMU_TLB_HOST (reads) and EMU_TLB_HOSTW (writes) in `need` mean host is set */
	if (e->tag != (((l + size - 1) & ~0xfffull) | 1) || (e->perm & need) != need)
		return NULL;
	*lin = l;
	return e;
}

static inline uint64_t emu_load_n(const uint8_t *p, unsigned size)
{
	switch (size) {
	case 1:
		return *p;
	case 2: {
		uint16_t v;

		__builtin_memcpy(&v, p, 2);
		return v;
	}
	case 4: {
		uint32_t v;

		__builtin_memcpy(&v, p, 4);
		return v;
	}
	default: {
		uint64_t v;

		__builtin_memcpy(&v, p, 8);
		return v;
	}
	}
}

static inline void emu_store_n(uint8_t *p, uint64_t v, unsigned size)
{
	switch (size) {
	case 1:
		*p = (uint8_t)v;
		break;
	case 2:
		__builtin_memcpy(p, &v, 2);
		break;
	case 4:
		__builtin_memcpy(p, &v, 4);
		break;
	default:
		__builtin_memcpy(p, &v, 8);
		break;
	}
}

/*
 * The system half's segment-relative access, noting an MMIO stop for the run loop (it
 * checks only cpu->brk after each instruction).
 */
static inline int emu_mread(struct emu_cpu *cpu, int sreg, uint64_t off, void *v,
			    unsigned size)
{
	int r = emu_mem_read(cpu, sreg, off, v, size);

	if (__builtin_expect(cpu->sys.bus_stop, 0))
		cpu->brk = true;
	return r;
}

static inline int emu_mwrite(struct emu_cpu *cpu, int sreg, uint64_t off, const void *v,
			     unsigned size)
{
	int r = emu_mem_write(cpu, sreg, off, v, size);

	if (__builtin_expect(cpu->sys.bus_stop, 0))
		cpu->brk = true;
	return r;
}

/* The slow halves of emu_rd/emu_wr (run.c), out of line so that the fast ones need no
 * stack frame. */
int emu_rd_slow(struct emu_cpu *cpu, int sreg, uint64_t off, uint64_t *v, unsigned size);
int emu_wr_slow(struct emu_cpu *cpu, int sreg, uint64_t off, uint64_t v, unsigned size);

/* Segment-relative read/write of 1, 2, 4 or 8 bytes (value little-endian in *v). */
static inline __attribute__((always_inline)) int emu_rd(struct emu_cpu *cpu, int sreg,
							 uint64_t off, uint64_t *v,
							 unsigned size)
{
	uint64_t lin;
	const struct emu_tlb_entry *e = emu_fast_entry(cpu, sreg, off, size, false, &lin);

	if (__builtin_expect(e != NULL, 1)) {
		*v = emu_load_n(e->host + (lin & 0xfff), size);
		return 0;
	}
	return emu_rd_slow(cpu, sreg, off, v, size);
}

static inline __attribute__((always_inline)) int emu_wr(struct emu_cpu *cpu, int sreg,
							 uint64_t off, uint64_t v,
							 unsigned size)
{
	uint64_t lin;
	const struct emu_tlb_entry *e = emu_fast_entry(cpu, sreg, off, size, true, &lin);

	if (__builtin_expect(e != NULL, 1)) {
		emu_store_n(e->host + (lin & 0xfff), v, size);
		if (emu_page_lines(e->code)) {
			emu_smc_hit(cpu->machine, e->gpa | (lin & 0xfff), size);
			cpu->brk = true;
		}
		return 0;
	}
	return emu_wr_slow(cpu, sreg, off, v, size);
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
		return emu_rd(cpu, op->seg, emu_ea_off(cpu, in, op), v, op->size);
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
		return emu_wr(cpu, op->seg, emu_ea_off(cpu, in, op), v, op->size);
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
