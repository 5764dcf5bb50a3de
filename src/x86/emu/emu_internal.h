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
	struct emu_operand op[4];
};

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

/* Vectors. */
enum {
	EMU_DE = 0, EMU_DB = 1, EMU_NMI = 2, EMU_BP = 3, EMU_OF = 4, EMU_BR = 5, EMU_UD = 6,
	EMU_NM = 7, EMU_DF = 8, EMU_TS = 10, EMU_NP = 11, EMU_SS = 12, EMU_GP = 13,
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
	void *sys_private;		/* TLB and other state owned by the system half */

	/* core half */
	void *core_private;		/* decode cache, lazy flags and other core state */
};

#endif
