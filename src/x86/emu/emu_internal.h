/*
 * emu_internal.h: what the interpreter's parts share. Two halves with one owner each:
 *   core   (decode.c, cache.c, run.c, flags.c, exec_*.c): Zydis decode into struct emu_insn,
 *          the physical-address code cache and SMC tracking, the dispatch loop, lazy flags,
 *          integer/string/bit/BCD instructions, operand access;
 *   system (mode.c, mmu.c, seg.c, except.c, sys_*.c, fpu_state.c): modes, segmentation,
 *          paging with the software TLB, guest memory access, exceptions and interrupt
 *          delivery (IVT/IDT/TSS/IST, #DF, triple fault), system instructions, MSRs, port I/O
 *          permission, FPU/SSE state instructions.
 * Fields and functions may be added in each half's section; change shared ones by agreement.
 */
#ifndef KHYVE_EMU_INTERNAL_H
#define KHYVE_EMU_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include "emu.h"

struct emu_cpu;
struct emu_insn;

/* Handler results. */
enum {
	EMU_OK = 0,		/* instruction done, RIP already advanced by the handler/loop */
	EMU_FAULT = 1,		/* an exception is pending in cpu->fault: deliver it */
	EMU_STOP = 2,		/* leave the run loop with cpu->stop_reason */
};

typedef int (*emu_exec_fn)(struct emu_cpu *cpu, const struct emu_insn *in);

/* ---- decoded instructions (core) ---- */
enum emu_opkind { EMU_OPK_NONE, EMU_OPK_REG, EMU_OPK_MEM, EMU_OPK_IMM, EMU_OPK_PTR };

/*
 * Register numbering for EMU_OPK_REG: 0-15 GPRs (size says which part), 16-19 the legacy
 * high bytes AH CH DH BH, 32+n segment register n, 48+n CRn, 64+n DRn, 80+n x87/MMX n,
 * 96+n XMMn. The decoder converts Zydis registers into this.
 */
#define EMU_REG_HIGH8 16
#define EMU_REG_SREG 32
#define EMU_REG_CR 48
#define EMU_REG_DR 64
#define EMU_REG_MM 80
#define EMU_REG_XMM 96
#define EMU_REG_NONE 0xff

struct emu_operand {
	uint8_t kind;		/* enum emu_opkind */
	uint8_t size;		/* bytes */
	uint8_t reg;		/* REG: register number as above */
	uint8_t seg;		/* MEM: effective segment (overrides applied) */
	uint8_t base, index;	/* MEM: GPR numbers or EMU_REG_NONE; base may be RIP (rip_rel) */
	uint8_t scale;		/* MEM: 1, 2, 4, 8 */
	uint8_t rip_rel;
	int64_t disp;		/* MEM displacement; PTR offset */
	uint64_t imm;		/* IMM value (sign-extended as the instruction defines); PTR selector */
};

#define EMU_PFX_LOCK 0x1
#define EMU_PFX_REP 0x2		/* F3 */
#define EMU_PFX_REPNE 0x4	/* F2 */

struct emu_insn {
	emu_exec_fn exec;
	uint16_t mnemonic;	/* ZydisMnemonic */
	uint8_t len;		/* bytes */
	uint8_t opsize;		/* effective operand size in bytes */
	uint8_t addrsize;	/* effective address size in bytes */
	uint8_t nops;		/* number of explicit operands */
	uint8_t prefixes;	/* EMU_PFX_* */
	uint8_t opcode;		/* last opcode byte (for handlers shared by forms) */
	uint8_t cc;		/* Jcc/SETcc/CMOVcc/LOOPcc: condition code (low nibble of opcode) */
	uint8_t flags;		/* EMU_IF_* */
	uint8_t stack_opsize;	/* PUSH/POP/CALL/RET: bytes moved on the stack */
	int8_t link;		/* EMU_IF_REL_BRANCH in 64-bit code whose target is an instruction
				   of the same trace: its index minus this one's (cache.c), else 0 */
	uint32_t aux;		/* x87/SSE (simd.h): index of the native form */
	struct emu_operand op[4];
	emu_exec_fn sys_exec;	/* EMU_IF_SYS: the system half's handler (exec wraps it) */
};
#define EMU_IF_END_TRACE 0x1	/* nothing after this instruction in the trace (branches, sys) */
#define EMU_IF_FAR 0x2		/* JMP/CALL/RET far form (handled by the system half) */
#define EMU_IF_SYS 0x4		/* handler from emu_sys_handler() */
#define EMU_IF_REL_BRANCH 0x8	/* near Jcc/JMP with a relative target in op[0].imm */
#define EMU_IF_FUSED 0x10	/* exec also runs the next instruction (exec_fast.c emu_fuse) */

/*
 * Execution conventions (core run loop):
 * - Core handlers run with st.rip already holding the address of the NEXT instruction
 *   (truncated to the code size); branches overwrite it. System handlers (EMU_IF_SYS) run
 *   with st.rip at the instruction itself, as the system contract below says. Both see
 *   cpu->insn_rip = the instruction's own RIP. On EMU_FAULT the loop puts st.rip back to
 *   insn_rip before emu_deliver_pending_fault().
 * - Instructions whose handler comes from the system half end the decoded trace, so a
 *   handler may change modes, paging or CS freely.
 * - The decoder first asks emu_sys_handler_insn(in) (system forms of core mnemonics), then
 *   the core's table, then emu_sys_handler(mnemonic). Far JMP/CALL/RET also have
 *   EMU_IF_FAR set in insn->flags.
 */

/* Core provides: operand access for all handlers (faults leave EMU_FAULT pending). */
int emu_op_read(struct emu_cpu *cpu, const struct emu_insn *in, int idx, uint64_t *val);
int emu_op_write(struct emu_cpu *cpu, const struct emu_insn *in, int idx, uint64_t val);
/* Effective address of a memory operand: segment and offset (truncated to addrsize). */
void emu_op_ea(struct emu_cpu *cpu, const struct emu_insn *in, int idx, int *sreg,
	       uint64_t *offset);
uint64_t emu_get_rflags(struct emu_cpu *cpu);	/* materialise lazy flags */
void emu_set_rflags(struct emu_cpu *cpu, uint64_t rflags);
/* Stack push/pop of `size` bytes at the current stack size (SS.B / 64-bit). */
int emu_push(struct emu_cpu *cpu, uint64_t val, unsigned size);
int emu_pop(struct emu_cpu *cpu, uint64_t *val, unsigned size);
/* A guest-physical range was written: drop cached code in it (no-op unless it holds code). */
void emu_code_written(struct emu_cpu *cpu, uint64_t gpa, unsigned len);
/* Fill a handler for a system mnemonic, or NULL when the system half has none. */
emu_exec_fn emu_sys_handler(unsigned zydis_mnemonic);

/*
 * REP string iteration shared with the system half (INS/OUTS). `step` performs one element
 * (reading/advancing rSI/rDI itself with emu_str_reg/emu_str_advance). Without a REP
 * prefix it runs once; with REP/REPE/REPNE it runs while the address-size rCX is non-zero,
 * decrementing it, and for CMPS/SCAS (`cond`=true) stops when ZF says so. It sets st.rip
 * itself (from cpu->insn_rip): past the instruction when done, or at the instruction after
 * a bounded number of iterations so that events are taken and it resumes. Returns EMU_OK,
 * EMU_FAULT or EMU_STOP.
 */
typedef int (*emu_str_step_fn)(struct emu_cpu *cpu, const struct emu_insn *in);
int emu_str_rep(struct emu_cpu *cpu, const struct emu_insn *in, emu_str_step_fn step, bool cond);
/* rSI/rDI/rCX truncated to the address size; advance by +/- opsize per EFLAGS.DF. */
uint64_t emu_str_reg(struct emu_cpu *cpu, const struct emu_insn *in, int gpr);
void emu_str_advance(struct emu_cpu *cpu, const struct emu_insn *in, int gpr);

/* ---- modes, memory and exceptions (system) ---- */
enum emu_mode {
	EMU_MODE_REAL,		/* CR0.PE=0 */
	EMU_MODE_VM86,		/* EFLAGS.VM=1 */
	EMU_MODE_PROT16,	/* CS.D=0 */
	EMU_MODE_PROT32,	/* CS.D=1 */
	EMU_MODE_COMPAT16,	/* long mode, CS.L=0, CS.D=0 */
	EMU_MODE_COMPAT32,	/* long mode, CS.L=0, CS.D=1 */
	EMU_MODE_LONG64,	/* long mode, CS.L=1 */
};

/* Access flags for memory helpers. */
#define EMU_ACC_READ 0x1
#define EMU_ACC_WRITE 0x2
#define EMU_ACC_EXEC 0x4
#define EMU_ACC_IMPLICIT 0x8	/* supervisor access to GDT/LDT/IDT/TSS regardless of CPL */

/* Interrupt/exception kinds for delivery (they differ in privilege checks and error codes). */
enum emu_event_kind {
	EMU_EVT_EXTERNAL,	/* from intr_ack */
	EMU_EVT_NMI,
	EMU_EVT_EXCEPTION,	/* fault or trap raised by the CPU */
	EMU_EVT_SOFTINT,	/* INT n */
	EMU_EVT_SOFTEXC,	/* INT3, INTO */
	EMU_EVT_ICEBP,		/* INT1 (F1) */
};

/* Vectors (#SS is EMU_SSF: EMU_SS is the segment register). */
enum {
	EMU_DE = 0, EMU_DB = 1, EMU_NMI = 2, EMU_BP = 3, EMU_OF = 4, EMU_BR = 5, EMU_UD = 6,
	EMU_NM = 7, EMU_DF = 8, EMU_TS = 10, EMU_NP = 11, EMU_SSF = 12, EMU_GP = 13,
	EMU_PF = 14, EMU_MF = 16, EMU_AC = 17, EMU_MC = 18, EMU_XM = 19,
};

/* Segment-relative data access with limit/type checks, paging, MMIO. 0 or EMU_FAULT. */
int emu_mem_read(struct emu_cpu *cpu, int sreg, uint64_t offset, void *dst, unsigned size);
int emu_mem_write(struct emu_cpu *cpu, int sreg, uint64_t offset, const void *src,
		  unsigned size);
/*
 * Host pointer for a read-modify-write of `size` bytes (LOCK, XCHG) when the range is RAM in
 * one page; NULL with EMU_FAULT pending on a fault; NULL with cpu->fault.pending clear when
 * the access must go through emu_mem_read/emu_mem_write (MMIO or page-crossing).
 */
void *emu_mem_rmw_ptr(struct emu_cpu *cpu, int sreg, uint64_t offset, unsigned size);
/* Linear-address access (descriptor tables, TSS, IDT); flags are EMU_ACC_*. */
int emu_lin_read(struct emu_cpu *cpu, uint64_t lin, void *dst, unsigned size, unsigned flags);
int emu_lin_write(struct emu_cpu *cpu, uint64_t lin, const void *src, unsigned size,
		  unsigned flags);
/*
 * Instruction fetch: translate linear `lin` for execution and return the host pointer to
 * its byte and the guest-physical address; *avail = bytes readable from there up to the
 * page end. NULL + EMU_FAULT pending on a fault; NULL + no fault when the code is in MMIO
 * (the core then reads bytes one by one with emu_lin_read).
 */
const uint8_t *emu_fetch_ptr(struct emu_cpu *cpu, uint64_t lin, uint64_t *gpa,
			     unsigned *avail);

/* Raise an exception: sets cpu->fault (handling #DF/triple-fault promotion at delivery). */
int emu_fault(struct emu_cpu *cpu, int vector, uint32_t error_code, bool has_error);
static inline int emu_gp0(struct emu_cpu *cpu) { return emu_fault(cpu, EMU_GP, 0, true); }
static inline int emu_ud(struct emu_cpu *cpu) { return emu_fault(cpu, EMU_UD, 0, false); }
/*
 * Deliver an event through the IVT (real mode) or IDT, with stack switches. `return_rip`
 * is what gets pushed (the next instruction for INT n and traps, the faulting one for
 * faults). Returns EMU_OK, EMU_FAULT (a new exception is pending) or EMU_STOP (triple fault).
 */
int emu_deliver(struct emu_cpu *cpu, int vector, enum emu_event_kind kind, uint32_t error_code,
		bool has_error, uint64_t return_rip);
/* Deliver cpu->fault (called by the run loop after a handler returned EMU_FAULT). */
int emu_deliver_pending_fault(struct emu_cpu *cpu);
/* Load a segment register with the protected-mode checks (MOV/POP Sreg, LxS). */
int emu_load_seg(struct emu_cpu *cpu, int sreg, uint16_t selector);
/* Recompute cpu->mode, cpu->cpl and the decoder-relevant sizes after CR0/EFER/CS/VM changes. */
void emu_update_mode(struct emu_cpu *cpu);
/* Drop all software TLB entries (CR3 write, CR0/CR4 paging bits, INVLPG does one page). */
void emu_tlb_flush(struct emu_cpu *cpu);
/* Check IOPL/TSS I/O bitmap for port access; EMU_OK or EMU_FAULT (#GP(0)). */
int emu_io_allowed(struct emu_cpu *cpu, uint16_t port, unsigned size);
/* Stop the run loop with a message (unsupported instruction or state). */
int emu_unsupported(struct emu_cpu *cpu, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Contract for system handlers (and what the run loop may rely on): while a handler runs,
 * cpu->st.rip is the address of the instruction's first byte. A handler returning EMU_OK
 * has set st.rip itself (emu_next_rip() or a branch target); EMU_FAULT leaves st.rip at the
 * faulting instruction, and emu_deliver_pending_fault() pushes that RIP. EMU_STOP for HLT,
 * BUS_STOP and unsupported: HLT and completed I/O leave st.rip past the instruction.
 */
static inline uint64_t emu_next_rip(const struct emu_cpu *cpu, const struct emu_insn *in);
/*
 * System handlers for forms of mnemonics the core owns (MOV Sreg/CRn/DRn, PUSH/POP Sreg,
 * far JMP/CALL/RET: EMU_IF_FAR, or opcode 0xEA/0x9A/0xCA/0xCB). NULL when the form is the
 * core's.
 */
emu_exec_fn emu_sys_handler_insn(const struct emu_insn *in);
/* Call once after the whole state changed (emu_set_state, creation): mode + full TLB flush. */
void emu_sys_state_changed(struct emu_cpu *cpu);
/* Flush the TLB entries for one linear page (INVLPG, emulated flush-page port). */
void emu_tlb_flush_page(struct emu_cpu *cpu, uint64_t lin);
static inline bool emu_canonical(uint64_t a)
{
	return (uint64_t)((int64_t)(a << 16) >> 16) == a;
}
/* Mask of an address/operand size in bytes (2, 4, 8). */
static inline uint64_t emu_size_mask(unsigned size)
{
	return size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
}

/* Software TLB: direct-mapped, one entry per linear 4 KiB page, permissions kept raw so
 * that CPL and CR0.WP are checked at each lookup and cannot leak. */
#define EMU_TLB_SIZE 512
#define EMU_TLB_USER 0x1	/* U/S=1 at every level */
#define EMU_TLB_WRITE 0x2	/* R/W=1 at every level */
#define EMU_TLB_EXEC 0x4	/* no NX at any level */
#define EMU_TLB_DIRTY 0x8	/* D already set in the leaf (or paging off) */
#define EMU_TLB_GLOBAL 0x10	/* G=1 with CR4.PGE: survives CR3 writes */
#define EMU_TLB_HOSTW 0x20	/* host page is writable RAM (not ROM) */
#define EMU_TLB_LARGE 0x40	/* from a 2M/4M/1G page: INVLPG drops all large entries */
#define EMU_TLB_HOST 0x80	/* host is set: the page is RAM or ROM */
#define EMU_TLB_NEVER 0x80000000u	/* in no entry: a fast-path need that always misses */
struct emu_page;
struct emu_tlb_entry {
	uint64_t tag;		/* linear page address | 1; 0 when empty */
	uint8_t *host;		/* host pointer to the page, NULL for MMIO */
	uint64_t gpa;		/* guest-physical page address */
	uint32_t perm;		/* EMU_TLB_* */
	struct emu_page *code;	/* HOSTW: the page's code-cache tracking (emu_tlb_code_page) */
};
/* Code-cache tracking of a writable RAM page, for the write fast path's SMC check. */
struct emu_page *emu_tlb_code_page(struct emu_cpu *cpu, uint64_t gpa);

/* System state that is not architectural (struct emu_cpu, system half). */
struct emu_sys {
	struct emu_tlb_entry tlb[EMU_TLB_SIZE];
	uint64_t pg_cr0, pg_cr3, pg_cr4, pg_efer;	/* paging state the TLB was filled under */
	bool feat_valid;	/* the CPUID-derived fields below are filled */
	uint8_t maxphyaddr;
	bool has_1g, has_rdtscp, has_nx, has_lm, has_syscall, has_fxsr, has_pge, has_pse;
	/*
	 * An MMIO callback returned -1 during the current instruction. The run loop checks it
	 * after the instruction (also after EMU_FAULT), clears it and returns
	 * EMU_EXIT_BUS_STOP.
	 */
	bool bus_stop;
	/* debug.c: DR7 enables some breakpoint (any, instruction, data), from emu_dbg_update */
	bool dr_active, dr_exec, dr_data;
	uint8_t db_hits;	/* DR6 B0-B3 of data breakpoints hit by the current instruction */
	uint8_t db_delayed;	/* hits held back by MOV SS/POP SS for one instruction */
	bool db_step;		/* SYSRET loaded TF=1: single-step trap right after it */
};

/* System-half helpers shared between its files. */
void emu_sys_features(struct emu_cpu *cpu);
void emu_tlb_flush_nonglobal(struct emu_cpu *cpu);
void *emu_lin_rmw_ptr(struct emu_cpu *cpu, uint64_t lin, unsigned size);
/* Translate (and fault) without accessing: every page of [lin, lin+size) for `flags`. */
int emu_lin_check(struct emu_cpu *cpu, uint64_t lin, unsigned size, unsigned flags);
/* Descriptor of `sel` from the GDT/LDT (8 bytes; 16 for system descriptors in long mode). */
int emu_desc_read(struct emu_cpu *cpu, uint16_t sel, uint64_t desc[2], bool sys16,
		  int fault_vec, uint32_t ext);
void emu_desc_to_seg(const uint64_t desc[2], uint16_t sel, struct emu_seg *seg);
int emu_desc_set_bits(struct emu_cpu *cpu, uint16_t sel, uint64_t desc, uint64_t bits);
/* Segment-checked access through an explicit segment cache (new stacks, far returns). */
int emu_seg_access(struct emu_cpu *cpu, const struct emu_seg *seg, int sreg, uint64_t offset,
		   void *buf, unsigned size, unsigned acc);
/* A stack being built or unwound by event delivery and far transfers; committed at the end. */
struct emu_stack {
	struct emu_seg seg;
	uint64_t sp;
	uint8_t size;		/* address size: 2, 4, or 8 for a 64-bit (flat, canonical) stack */
	unsigned acc;		/* EMU_ACC_IMPLICIT for a more privileged stack */
};
void emu_stack_current(struct emu_cpu *cpu, struct emu_stack *s);
int emu_stack_push(struct emu_cpu *cpu, struct emu_stack *s, uint64_t val, unsigned n);
int emu_stack_pop(struct emu_cpu *cpu, struct emu_stack *s, uint64_t *val, unsigned n);
/* RSP <- s->sp, keeping the bits above the stack size. */
void emu_stack_commit(struct emu_cpu *cpu, const struct emu_stack *s);
/* Far returns (RET far, IRET): checks on the popped CS, and on SS for an outer return. */
int emu_check_return_cs(struct emu_cpu *cpu, uint16_t sel, struct emu_seg *out);
int emu_check_return_ss(struct emu_cpu *cpu, uint16_t sel, unsigned rpl, bool to64,
			struct emu_seg *out);
/* Data segments the new (outer) CPL may not use become null (SDM "RET", "IRET"). */
void emu_null_outer_segs(struct emu_cpu *cpu);
/* Per-file handler lookups by Zydis mnemonic, combined by emu_sys_handler(). */
emu_exec_fn emu_except_handler(unsigned zydis_mnemonic);
emu_exec_fn emu_segins_handler(unsigned zydis_mnemonic);
emu_exec_fn emu_sysctl_handler(unsigned zydis_mnemonic);
emu_exec_fn emu_msr_handler(unsigned zydis_mnemonic);
emu_exec_fn emu_io_handler(unsigned zydis_mnemonic);
emu_exec_fn emu_fpu_handler(unsigned zydis_mnemonic);
emu_exec_fn emu_segins_form(const struct emu_insn *in);
emu_exec_fn emu_sysctl_form(const struct emu_insn *in);
/* MSR access as RDMSR/WRMSR do it (also for accel/soft's state exchange): 0, or -1 = #GP. */
int emu_msr_read(struct emu_cpu *cpu, uint32_t index, uint64_t *val);
int emu_msr_write(struct emu_cpu *cpu, uint32_t index, uint64_t val);
/*
 * Debug registers (debug.c, SDM Vol. 3 ch. 18). emu_dbg_update recomputes sys.dr_* after
 * DR7 or the whole state changed; the run loop then steps one instruction at a time while
 * sys.dr_active, calling emu_dbg_before (instruction breakpoints: EMU_DBG_NONE to execute,
 * or the result of delivering the #DB fault) and emu_dbg_after (single-step and
 * data-breakpoint traps: EMU_DBG_NONE, or a delivery result; with `halted` after HLT,
 * EMU_STOP when it halts).
 * emu_dbg_data records data-breakpoint hits; data accesses call it while sys.dr_data.
 * emu_dbg_mov_dr_gd raises the DR7.GD #DB of a MOV DR.
 */
#define EMU_DBG_NONE (-1)	/* no #DB was delivered */
struct emu_dbg_insn {
	bool tf, rf;		/* RFLAGS.TF and RF before the instruction */
};
void emu_dbg_update(struct emu_cpu *cpu);
void emu_dbg_data(struct emu_cpu *cpu, uint64_t lin, unsigned size, bool write);
int emu_dbg_before(struct emu_cpu *cpu, struct emu_dbg_insn *d);
int emu_dbg_after(struct emu_cpu *cpu, const struct emu_insn *in,
		  const struct emu_dbg_insn *d, bool halted);
int emu_dbg_mov_dr_gd(struct emu_cpu *cpu);
/*
 * SYSRET takes its single-step trap from TF as it leaves it: its handler calls
 * emu_dbg_tf_after, which sets sys.db_step and cpu->brk when TF=1; the run loop then calls
 * emu_dbg_step_trap (a delivery result) after the instruction.
 */
void emu_dbg_tf_after(struct emu_cpu *cpu);
int emu_dbg_step_trap(struct emu_cpu *cpu);
/* Offset-to-linear with the limit/type/canonical checks of `sreg` (0 or EMU_FAULT). */
int emu_seg_lin(struct emu_cpu *cpu, const struct emu_seg *seg, int sreg, uint64_t offset,
		unsigned size, unsigned acc, uint64_t *lin);

/* ---- the CPU ---- */
struct emu_pending_fault {
	bool pending;
	uint8_t vector;
	bool has_error;
	uint32_t error_code;
};

struct emu_cpu {
	struct emu_state st;		/* rflags arithmetic bits are lazy: use emu_get_rflags */
	struct emu_machine *machine;
	struct emu_bus bus;
	_Atomic uint32_t events;	/* EMU_EV_* */
	uint64_t insn_count;
	enum emu_exit stop_reason;
	char error[512];
	struct emu_pending_fault fault;

	/* system half */
	enum emu_mode mode;
	uint8_t cpl;
	uint8_t code_size;		/* default operand size of CS: 2, 4 or 8 */
	uint8_t stack_size;		/* 2, 4 or 8 */
	uint8_t fault_depth;		/* 0, or 1 while delivering (for #DF), 2 -> triple fault */
	bool ferr;			/* FERR# as last told to bus.ferr (sse_native.c) */
	void *sys_private;		/* TLB and other state owned by the system half */
	struct emu_sys sys;		/* zeroed at creation (calloc) */

	/* core half */
	void *core_private;		/* decode cache and other core state */
	uint64_t insn_rip;		/* RIP of the instruction being executed */
	uint64_t ip_mask;		/* mask of code_size: RIP wraps there (exec.h) */
	const struct emu_insn *chain_at;	/* instruction the chained dispatch is at */
	const struct emu_insn *chain_base;	/* first instruction of the chain's current trace */
	int64_t chain_extra;		/* instructions run in a chain besides its trace position */
	int64_t chain_room;		/* how far chain_extra may grow (exec.h emu_jump) */
	/* lazy arithmetic flags (see flags.h): valid while lf_op != 0 */
	uint64_t lf_res, lf_src1, lf_src2;
	union {	/* written and read as one word, so that loads forward from the store */
		struct {
			uint8_t lf_op, lf_size, lf_cin, lf_pad;
		};
		uint32_t lf_kind;
	};
	bool brk;			/* leave the trace loop after this instruction (SMC, MMIO stop) */
	uint32_t fast_need_r, fast_need_w;	/* software-TLB permissions a fast access needs */
	uint64_t fast_base[8];		/* segment bases the fast path adds (exec.h) */
};

static inline uint64_t emu_next_rip(const struct emu_cpu *cpu, const struct emu_insn *in)
{
	return (cpu->st.rip + in->len) & emu_size_mask(cpu->code_size);
}

#endif
