/*
 * kvm_emu.h: the KVM accelerator's fallback to the software CPU. When KVM stops with
 * KVM_EXIT_INTERNAL_ERROR / KVM_INTERNAL_ERROR_EMULATION (a KVM without hardware
 * virtualization, kvm_pvm, refuses fninit, cmpxchg16b, SSE...), kvm_fallback.c reads the
 * vCPU's state, converts it (kvm_emu_state.c, pure functions), runs that one instruction on
 * the interpreter (src/x86/emu) against guest memory and the machine's devices, writes the
 * state back and resumes. Included only by accel/kvm files and their unit test.
 */
#ifndef KHYVE_KVM_EMU_H
#define KHYVE_KVM_EMU_H

#include <stdatomic.h>
#include <stddef.h>
#include <linux/kvm.h>
#include "x86/emu/emu.h"

/* The MSRs the interpreter keeps in struct emu_state (EFER and the bases are in sregs). */
enum kvm_emu_msr {
	KVM_EMU_MSR_STAR, KVM_EMU_MSR_LSTAR, KVM_EMU_MSR_CSTAR, KVM_EMU_MSR_SFMASK,
	KVM_EMU_MSR_KERNEL_GS_BASE, KVM_EMU_MSR_SYSENTER_CS, KVM_EMU_MSR_SYSENTER_ESP,
	KVM_EMU_MSR_SYSENTER_EIP, KVM_EMU_MSR_PAT, KVM_EMU_MSR_TSC_AUX,
	KVM_EMU_MSR_MISC_ENABLE, KVM_EMU_MSR_MTRR_CAP, KVM_EMU_MSR_MTRR_DEF_TYPE,
	KVM_EMU_MSR_MTRR_FIXED,				/* 11: 0x250, 0x258-0x259, 0x268-0x26f */
	KVM_EMU_MSR_MTRR_VAR = KVM_EMU_MSR_MTRR_FIXED + 11,	/* 16: 0x200-0x20f */
	KVM_EMU_NMSRS = KVM_EMU_MSR_MTRR_VAR + 16,
};

/* MSR number of each enum kvm_emu_msr slot. */
extern const uint32_t kvm_emu_msr_index[KVM_EMU_NMSRS];

/* Everything of a KVM vCPU the interpreter reads or changes. */
struct kvm_emu_regs {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;		/* x87, MMX, SSE: the FXSAVE image's contents */
	struct kvm_debugregs debug;
	struct kvm_vcpu_events events;	/* interrupt shadow, NMI blocking */
	uint64_t xcr0;
	uint64_t msr[KVM_EMU_NMSRS];
	uint64_t msr_valid;		/* bit i: msr[i] was read (KVM knows that MSR) */
};

/*
 * KVM -> interpreter: fills all of *st (MSRs KVM did not report stay 0, MXCSR_MASK is
 * 0xffff). Interpreter -> KVM: updates the fields of *k that struct emu_state holds and
 * leaves the rest (interrupt bitmap, APIC base, pending exceptions, msr_valid) as they are,
 * so that from(k) then to(k) gives k back.
 */
void kvm_emu_state_from_kvm(const struct kvm_emu_regs *k, struct emu_state *st);
void kvm_emu_state_to_kvm(const struct emu_state *st, struct kvm_emu_regs *k);
/*
 * One instruction of `before` on the interpreter `cpu` (whose bus reaches guest memory):
 * *after is `before` with what the instruction (or the exception it raised, delivered
 * through the guest's IDT) changed. Returns emu_step's exit; *after is meaningful unless
 * that is EMU_EXIT_UNSUPPORTED or EMU_EXIT_TRIPLE_FAULT.
 */
enum emu_exit kvm_emu_step(struct emu_cpu *cpu, const struct kvm_emu_regs *before,
			   struct kvm_emu_regs *after);

/*
 * "emulated by the software CPU: 15 instructions: cmpxchg16b 12, fninit 3": the total of
 * counts[0..n) (indexed by Zydis mnemonic) and each non-zero one, largest first.
 */
void kvm_emu_stats_line(const _Atomic uint64_t *counts, int n, char *buf, size_t len);

/* kvm_fallback.c */
struct accel;
struct accel_vcpu;
struct accel_exit;
/*
 * Run the instruction KVM refused on the interpreter. 0: resume KVM_RUN; 1: return to
 * the machine with exit filled (kicked by a device callback, shutdown, or an error).
 */
int kvm_emulate(struct accel_vcpu *v, struct accel_exit *exit);
void kvm_emu_vcpu_destroy(struct accel_vcpu *v);
void kvm_emu_destroy(struct accel *a);	/* prints the accel_stats line when asked */

#endif
