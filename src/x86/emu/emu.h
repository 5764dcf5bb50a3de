/*
 * emu.h: khyve's x86-64 interpreter, the public side. It knows nothing of the VMM: all it
 * touches goes through struct emu_bus (physical memory pages, MMIO, port I/O, interrupt
 * acknowledge, CPUID, MSRs it does not own, the TSC). Used by accel/soft to run guests and
 * (later) by accel/kvm to finish instructions KVM refuses; unit-, differential- and
 * fuzz-tested on its own.
 */
#ifndef KHYVE_EMU_H
#define KHYVE_EMU_H

#include <stdbool.h>
#include <stdint.h>

/* Segment register indexes, in the SDM's encoding order (Sreg field of ModRM). */
enum emu_sreg { EMU_ES, EMU_CS, EMU_SS, EMU_DS, EMU_FS, EMU_GS, EMU_NSREGS };

/* General-purpose register indexes (ModRM encoding). */
enum emu_gpr {
	EMU_RAX, EMU_RCX, EMU_RDX, EMU_RBX, EMU_RSP, EMU_RBP, EMU_RSI, EMU_RDI,
	EMU_R8, EMU_R9, EMU_R10, EMU_R11, EMU_R12, EMU_R13, EMU_R14, EMU_R15,
};

/*
 * A segment register with its hidden part. `attr` holds the descriptor's access-rights
 * bits as VMX packs them: bits 0-3 type, 4 S, 5-6 DPL, 7 P, 12 AVL, 13 L, 14 D/B, 15 G,
 * and bit 16 "unusable" (null selector loaded in protected mode).
 */
struct emu_seg {
	uint64_t base;
	uint32_t limit;		/* byte granular */
	uint16_t sel;
	uint32_t attr;
};
#define EMU_SEG_ATTR_TYPE(a) ((a) & 0xf)
#define EMU_SEG_ATTR_S (1u << 4)
#define EMU_SEG_ATTR_DPL(a) (((a) >> 5) & 3)
#define EMU_SEG_ATTR_P (1u << 7)
#define EMU_SEG_ATTR_AVL (1u << 12)
#define EMU_SEG_ATTR_L (1u << 13)
#define EMU_SEG_ATTR_DB (1u << 14)
#define EMU_SEG_ATTR_G (1u << 15)
#define EMU_SEG_ATTR_UNUSABLE (1u << 16)

/* Architectural state, exchanged whole with emu_get_state()/emu_set_state(). */
struct emu_state {
	uint64_t gpr[16];
	uint64_t rip, rflags;
	struct emu_seg seg[EMU_NSREGS], ldtr, tr;
	uint64_t gdtr_base, idtr_base;
	uint16_t gdtr_limit, idtr_limit;
	uint64_t cr0, cr2, cr3, cr4, cr8, efer, xcr0;
	uint64_t dr[8];
	/* MSRs owned by the interpreter (others go to emu_bus.msr) */
	uint64_t star, lstar, cstar, sfmask, kernel_gs_base;
	uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
	uint64_t pat, tsc_aux, misc_enable;
	uint64_t mtrr_cap, mtrr_def_type, mtrr_fixed[11], mtrr_var[16];
	/* x87, MMX and SSE state in FXSAVE layout (FCW, FSW, FTW abridged, ..., MXCSR, regs) */
	uint8_t fxsave[512] __attribute__((aligned(16)));
	bool interrupt_shadow;	/* after MOV SS / POP SS / STI */
	bool nmi_blocked;	/* between NMI delivery and IRET */
};

/*
 * What the interpreter asks of the machine. All callbacks run on the vCPU's thread.
 * page_ptr: host pointer to the start of the 4 KiB guest-physical page holding `gpa`, or NULL
 *   when that page is not RAM (then accesses go to mmio). With write=true, NULL for
 *   read-only memory (ROM): the write is then given to mmio, which may drop it.
 * mmio/pio: 0, or -1 to stop the vCPU (emu_run returns EMU_EXIT_BUS_STOP after the access).
 * intr_ack: the vector of the highest-priority deliverable external interrupt, moved to
 *   in-service, or -1 when there is none (spurious); called only with RFLAGS.IF=1.
 * cpuid: fill out[0..3] = eax, ebx, ecx, edx for leaf/subleaf.
 * msr: MSRs the interpreter does not own (APIC base, x2APIC, TSC deadline, ...); return 0
 *   when handled, -1 to raise #GP.
 * tsc: the guest's current TSC.
 */
struct emu_bus {
	void *opaque;
	uint8_t *(*page_ptr)(void *opaque, uint64_t gpa, bool write);
	int (*mmio)(void *opaque, uint64_t gpa, unsigned size, bool write, uint64_t *val);
	int (*pio)(void *opaque, uint16_t port, unsigned size, bool write, uint32_t *val);
	int (*intr_ack)(void *opaque);
	void (*cpuid)(void *opaque, uint32_t leaf, uint32_t subleaf, uint32_t out[4]);
	int (*msr)(void *opaque, uint32_t index, bool write, uint64_t *val);
	uint64_t (*tsc)(void *opaque);
	/*
	 * The x87 FERR# output with CR0.NE=0 (SDM Vol. 1 §8.7): asserted when a waiting x87
	 * or MMX instruction finds an unmasked exception pending, negated at the next x87
	 * instruction after the handler cleared it. Returns IGNNE#: true lets the instruction
	 * go on past the pending exception. NULL: such an instruction stops the VM as
	 * unsupported.
	 */
	bool (*ferr)(void *opaque, bool asserted);
};

/* Asynchronous events, raised from any thread with emu_raise_events(). */
#define EMU_EV_EXIT 0x1u	/* return from emu_run at the next instruction boundary */
#define EMU_EV_INTR 0x2u	/* an external interrupt may be deliverable: ask intr_ack */
#define EMU_EV_NMI 0x4u		/* deliver an NMI */

enum emu_exit {
	EMU_EXIT_EVENT,		/* EMU_EV_EXIT was raised */
	EMU_EXIT_BUDGET,	/* max_insns executed */
	EMU_EXIT_HLT,		/* HLT executed (RIP past it), or an x87 instruction waits for
				   the interrupt its FERR# raised (RIP at it). Resume with emu_run */
	EMU_EXIT_TRIPLE_FAULT,
	EMU_EXIT_BUS_STOP,	/* a bus callback returned -1 */
	EMU_EXIT_UNSUPPORTED,	/* unimplemented instruction or state: see emu_last_error */
};

struct emu_machine;	/* shared by all vCPUs of one VM: code cache invalidation */
struct emu_cpu;

struct emu_machine *emu_machine_create(void);
void emu_machine_destroy(struct emu_machine *m);
/* Guest-physical memory was written behind the interpreter's back (DMA). Thread-safe. */
void emu_machine_invalidate(struct emu_machine *m, uint64_t gpa, uint64_t len);

struct emu_cpu *emu_cpu_create(struct emu_machine *m, const struct emu_bus *bus);
void emu_cpu_destroy(struct emu_cpu *cpu);

/* Processor state after RESET or INIT (SDM Vol. 3 §10.1.1): real mode, CS:IP F000:FFF0. */
void emu_reset_state(struct emu_state *st);
void emu_get_state(struct emu_cpu *cpu, struct emu_state *st);
void emu_set_state(struct emu_cpu *cpu, const struct emu_state *st);

/* Run until an exit (see enum emu_exit) or max_insns instructions. */
enum emu_exit emu_run(struct emu_cpu *cpu, uint64_t max_insns);
/* Execute exactly one instruction (or deliver one pending event). */
enum emu_exit emu_step(struct emu_cpu *cpu);

void emu_raise_events(struct emu_cpu *cpu, uint32_t events);	/* any thread */
uint32_t emu_pending_events(const struct emu_cpu *cpu);
void emu_clear_events(struct emu_cpu *cpu, uint32_t events);

/* Human-readable description of the last EMU_EXIT_UNSUPPORTED/TRIPLE_FAULT. */
const char *emu_last_error(const struct emu_cpu *cpu);
uint64_t emu_insn_count(const struct emu_cpu *cpu);

#endif
