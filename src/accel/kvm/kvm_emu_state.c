/*
 * kvm_emu_state.c: a KVM vCPU's state (struct kvm_regs, kvm_sregs, kvm_fpu, kvm_debugregs,
 * kvm_vcpu_events, XCR0, MSRs; Linux Documentation/virt/kvm/api.rst §4) to the
 * interpreter's struct emu_state and back, for the emulation fallback (pure functions), one
 * interpreter step between the two, and the accel_stats line of what was emulated.
 * Segment attributes use the VMX access-rights packing (SDM vol. 3 §25.4.1); the FPU state
 * is the FXSAVE image (SDM vol. 1 §10.5.1, 64-bit FIP/FDP form).
 */
#include <stdio.h>
#include <string.h>
#include <Zydis/Zydis.h>

#include "accel/kvm/kvm_emu.h"

const uint32_t kvm_emu_msr_index[KVM_EMU_NMSRS] = {
	[KVM_EMU_MSR_STAR] = 0xc0000081, [KVM_EMU_MSR_LSTAR] = 0xc0000082,
	[KVM_EMU_MSR_CSTAR] = 0xc0000083, [KVM_EMU_MSR_SFMASK] = 0xc0000084,
	[KVM_EMU_MSR_KERNEL_GS_BASE] = 0xc0000102, [KVM_EMU_MSR_SYSENTER_CS] = 0x174,
	[KVM_EMU_MSR_SYSENTER_ESP] = 0x175, [KVM_EMU_MSR_SYSENTER_EIP] = 0x176,
	[KVM_EMU_MSR_PAT] = 0x277, [KVM_EMU_MSR_TSC_AUX] = 0xc0000103,
	[KVM_EMU_MSR_MISC_ENABLE] = 0x1a0, [KVM_EMU_MSR_MTRR_CAP] = 0xfe,
	[KVM_EMU_MSR_MTRR_DEF_TYPE] = 0x2ff,
	[KVM_EMU_MSR_MTRR_FIXED + 0] = 0x250, [KVM_EMU_MSR_MTRR_FIXED + 1] = 0x258,
	[KVM_EMU_MSR_MTRR_FIXED + 2] = 0x259, [KVM_EMU_MSR_MTRR_FIXED + 3] = 0x268,
	[KVM_EMU_MSR_MTRR_FIXED + 4] = 0x269, [KVM_EMU_MSR_MTRR_FIXED + 5] = 0x26a,
	[KVM_EMU_MSR_MTRR_FIXED + 6] = 0x26b, [KVM_EMU_MSR_MTRR_FIXED + 7] = 0x26c,
	[KVM_EMU_MSR_MTRR_FIXED + 8] = 0x26d, [KVM_EMU_MSR_MTRR_FIXED + 9] = 0x26e,
	[KVM_EMU_MSR_MTRR_FIXED + 10] = 0x26f,
	[KVM_EMU_MSR_MTRR_VAR + 0] = 0x200, [KVM_EMU_MSR_MTRR_VAR + 1] = 0x201,
	[KVM_EMU_MSR_MTRR_VAR + 2] = 0x202, [KVM_EMU_MSR_MTRR_VAR + 3] = 0x203,
	[KVM_EMU_MSR_MTRR_VAR + 4] = 0x204, [KVM_EMU_MSR_MTRR_VAR + 5] = 0x205,
	[KVM_EMU_MSR_MTRR_VAR + 6] = 0x206, [KVM_EMU_MSR_MTRR_VAR + 7] = 0x207,
	[KVM_EMU_MSR_MTRR_VAR + 8] = 0x208, [KVM_EMU_MSR_MTRR_VAR + 9] = 0x209,
	[KVM_EMU_MSR_MTRR_VAR + 10] = 0x20a, [KVM_EMU_MSR_MTRR_VAR + 11] = 0x20b,
	[KVM_EMU_MSR_MTRR_VAR + 12] = 0x20c, [KVM_EMU_MSR_MTRR_VAR + 13] = 0x20d,
	[KVM_EMU_MSR_MTRR_VAR + 14] = 0x20e, [KVM_EMU_MSR_MTRR_VAR + 15] = 0x20f,
};

/* FXSAVE image offsets */
#define FX_FCW 0
#define FX_FSW 2
#define FX_FTW 4
#define FX_FOP 6
#define FX_FIP 8
#define FX_FDP 16
#define FX_MXCSR 24
#define FX_MXCSR_MASK 28
#define FX_ST 32
#define FX_XMM 160

/* The interpreter's MSR fields, in enum kvm_emu_msr order (MTRRs handled apart). */
static uint64_t *kvm_emu_msr_field(struct emu_state *st, int i)
{
	switch (i) {
	case KVM_EMU_MSR_STAR: return &st->star;
	case KVM_EMU_MSR_LSTAR: return &st->lstar;
	case KVM_EMU_MSR_CSTAR: return &st->cstar;
	case KVM_EMU_MSR_SFMASK: return &st->sfmask;
	case KVM_EMU_MSR_KERNEL_GS_BASE: return &st->kernel_gs_base;
	case KVM_EMU_MSR_SYSENTER_CS: return &st->sysenter_cs;
	case KVM_EMU_MSR_SYSENTER_ESP: return &st->sysenter_esp;
	case KVM_EMU_MSR_SYSENTER_EIP: return &st->sysenter_eip;
	case KVM_EMU_MSR_PAT: return &st->pat;
	case KVM_EMU_MSR_TSC_AUX: return &st->tsc_aux;
	case KVM_EMU_MSR_MISC_ENABLE: return &st->misc_enable;
	case KVM_EMU_MSR_MTRR_CAP: return &st->mtrr_cap;
	case KVM_EMU_MSR_MTRR_DEF_TYPE: return &st->mtrr_def_type;
	}
	if (i < KVM_EMU_MSR_MTRR_VAR)
		return &st->mtrr_fixed[i - KVM_EMU_MSR_MTRR_FIXED];
	return &st->mtrr_var[i - KVM_EMU_MSR_MTRR_VAR];
}

static void seg_from_kvm(struct emu_seg *e, const struct kvm_segment *k)
{
	e->base = k->base;
	e->limit = k->limit;
	e->sel = k->selector;
	e->attr = (k->type & 0xfu) | (k->s ? EMU_SEG_ATTR_S : 0) | (k->dpl & 3u) << 5 |
		  (k->present ? EMU_SEG_ATTR_P : 0) | (k->avl ? EMU_SEG_ATTR_AVL : 0) |
		  (k->l ? EMU_SEG_ATTR_L : 0) | (k->db ? EMU_SEG_ATTR_DB : 0) |
		  (k->g ? EMU_SEG_ATTR_G : 0) | (k->unusable ? EMU_SEG_ATTR_UNUSABLE : 0);
}

static void seg_to_kvm(struct kvm_segment *k, const struct emu_seg *e)
{
	k->base = e->base;
	k->limit = e->limit;
	k->selector = e->sel;
	k->type = (uint8_t)EMU_SEG_ATTR_TYPE(e->attr);
	k->s = !!(e->attr & EMU_SEG_ATTR_S);
	k->dpl = (uint8_t)EMU_SEG_ATTR_DPL(e->attr);
	k->present = !!(e->attr & EMU_SEG_ATTR_P);
	k->avl = !!(e->attr & EMU_SEG_ATTR_AVL);
	k->l = !!(e->attr & EMU_SEG_ATTR_L);
	k->db = !!(e->attr & EMU_SEG_ATTR_DB);
	k->g = !!(e->attr & EMU_SEG_ATTR_G);
	k->unusable = !!(e->attr & EMU_SEG_ATTR_UNUSABLE);
}

/* struct kvm_regs in enum emu_gpr order */
#define KVM_GPRS(r)                                                                        \
	{ &(r)->rax, &(r)->rcx, &(r)->rdx, &(r)->rbx, &(r)->rsp, &(r)->rbp, &(r)->rsi,     \
	  &(r)->rdi, &(r)->r8, &(r)->r9, &(r)->r10, &(r)->r11, &(r)->r12, &(r)->r13,       \
	  &(r)->r14, &(r)->r15 }

void kvm_emu_state_from_kvm(const struct kvm_emu_regs *k, struct emu_state *st)
{
	const __u64 *gpr[16] = KVM_GPRS(&k->regs);
	const struct kvm_sregs *s = &k->sregs;
	const struct kvm_fpu *f = &k->fpu;
	uint32_t mask = 0xffff;

	memset(st, 0, sizeof *st);
	for (int i = 0; i < 16; i++)
		st->gpr[i] = *gpr[i];
	st->rip = k->regs.rip;
	st->rflags = k->regs.rflags;
	seg_from_kvm(&st->seg[EMU_ES], &s->es);
	seg_from_kvm(&st->seg[EMU_CS], &s->cs);
	seg_from_kvm(&st->seg[EMU_SS], &s->ss);
	seg_from_kvm(&st->seg[EMU_DS], &s->ds);
	seg_from_kvm(&st->seg[EMU_FS], &s->fs);
	seg_from_kvm(&st->seg[EMU_GS], &s->gs);
	seg_from_kvm(&st->ldtr, &s->ldt);
	seg_from_kvm(&st->tr, &s->tr);
	st->gdtr_base = s->gdt.base;
	st->gdtr_limit = s->gdt.limit;
	st->idtr_base = s->idt.base;
	st->idtr_limit = s->idt.limit;
	st->cr0 = s->cr0;
	st->cr2 = s->cr2;
	st->cr3 = s->cr3;
	st->cr4 = s->cr4;
	st->cr8 = s->cr8;
	st->efer = s->efer;
	st->xcr0 = k->xcr0;
	for (int i = 0; i < 4; i++)
		st->dr[i] = k->debug.db[i];
	st->dr[6] = k->debug.dr6;
	st->dr[7] = k->debug.dr7;
	for (int i = 0; i < KVM_EMU_NMSRS; i++)
		if (k->msr_valid >> i & 1)
			*kvm_emu_msr_field(st, i) = k->msr[i];

	memcpy(&st->fxsave[FX_FCW], &f->fcw, 2);
	memcpy(&st->fxsave[FX_FSW], &f->fsw, 2);
	st->fxsave[FX_FTW] = f->ftwx;
	memcpy(&st->fxsave[FX_FOP], &f->last_opcode, 2);
	memcpy(&st->fxsave[FX_FIP], &f->last_ip, 8);
	memcpy(&st->fxsave[FX_FDP], &f->last_dp, 8);
	memcpy(&st->fxsave[FX_MXCSR], &f->mxcsr, 4);
	memcpy(&st->fxsave[FX_MXCSR_MASK], &mask, 4);
	memcpy(&st->fxsave[FX_ST], f->fpr, sizeof f->fpr);
	memcpy(&st->fxsave[FX_XMM], f->xmm, sizeof f->xmm);

	st->interrupt_shadow = k->events.interrupt.shadow != 0;
	st->nmi_blocked = k->events.nmi.masked != 0;
}

void kvm_emu_state_to_kvm(const struct emu_state *st, struct kvm_emu_regs *k)
{
	__u64 *gpr[16] = KVM_GPRS(&k->regs);
	struct kvm_sregs *s = &k->sregs;
	struct kvm_fpu *f = &k->fpu;
	struct emu_state copy = *st;

	for (int i = 0; i < 16; i++)
		*gpr[i] = st->gpr[i];
	k->regs.rip = st->rip;
	k->regs.rflags = st->rflags;
	seg_to_kvm(&s->es, &st->seg[EMU_ES]);
	seg_to_kvm(&s->cs, &st->seg[EMU_CS]);
	seg_to_kvm(&s->ss, &st->seg[EMU_SS]);
	seg_to_kvm(&s->ds, &st->seg[EMU_DS]);
	seg_to_kvm(&s->fs, &st->seg[EMU_FS]);
	seg_to_kvm(&s->gs, &st->seg[EMU_GS]);
	seg_to_kvm(&s->ldt, &st->ldtr);
	seg_to_kvm(&s->tr, &st->tr);
	s->gdt.base = st->gdtr_base;
	s->gdt.limit = st->gdtr_limit;
	s->idt.base = st->idtr_base;
	s->idt.limit = st->idtr_limit;
	s->cr0 = st->cr0;
	s->cr2 = st->cr2;
	s->cr3 = st->cr3;
	s->cr4 = st->cr4;
	s->cr8 = st->cr8;
	s->efer = st->efer;
	k->xcr0 = st->xcr0;
	for (int i = 0; i < 4; i++)
		k->debug.db[i] = st->dr[i];
	k->debug.dr6 = st->dr[6];
	k->debug.dr7 = st->dr[7];
	for (int i = 0; i < KVM_EMU_NMSRS; i++)
		if (k->msr_valid >> i & 1)
			k->msr[i] = *kvm_emu_msr_field(&copy, i);

	memcpy(&f->fcw, &st->fxsave[FX_FCW], 2);
	memcpy(&f->fsw, &st->fxsave[FX_FSW], 2);
	f->ftwx = st->fxsave[FX_FTW];
	memcpy(&f->last_opcode, &st->fxsave[FX_FOP], 2);
	memcpy(&f->last_ip, &st->fxsave[FX_FIP], 8);
	memcpy(&f->last_dp, &st->fxsave[FX_FDP], 8);
	memcpy(&f->mxcsr, &st->fxsave[FX_MXCSR], 4);
	memcpy(f->fpr, &st->fxsave[FX_ST], sizeof f->fpr);
	memcpy(f->xmm, &st->fxsave[FX_XMM], sizeof f->xmm);

	/* The interpreter does not say which shadow: keep KVM's kind, else STI's. */
	if (!st->interrupt_shadow)
		k->events.interrupt.shadow = 0;
	else if (!k->events.interrupt.shadow)
		k->events.interrupt.shadow = KVM_X86_SHADOW_INT_STI;
	k->events.nmi.masked = st->nmi_blocked;
}

enum emu_exit kvm_emu_step(struct emu_cpu *cpu, const struct kvm_emu_regs *before,
			   struct kvm_emu_regs *after)
{
	struct emu_state st;
	enum emu_exit x;

	kvm_emu_state_from_kvm(before, &st);
	emu_set_state(cpu, &st);
	x = emu_step(cpu);
	emu_get_state(cpu, &st);
	*after = *before;
	kvm_emu_state_to_kvm(&st, after);
	return x;
}

void kvm_emu_stats_line(const _Atomic uint64_t *counts, int n, char *buf, size_t len)
{
	uint64_t total = 0, last = UINT64_MAX;
	int last_i = -1;
	size_t at;

	for (int i = 0; i < n; i++)
		total += atomic_load(&counts[i]);
	at = (size_t)snprintf(buf, len, "emulated by the software CPU: %llu instruction%s",
			      (unsigned long long)total, total == 1 ? "" : "s");
	/* largest count first; equal counts in mnemonic order */
	for (bool first = true; at < len; first = false) {
		uint64_t best = 0;
		int bi = -1;

		for (int i = 0; i < n; i++) {
			uint64_t c = atomic_load(&counts[i]);

			if (c && (c < last || (c == last && i > last_i)) && c > best) {
				best = c;
				bi = i;
			}
		}
		if (bi < 0)
			break;
		at += (size_t)snprintf(buf + at, len - at, "%s %s %llu", first ? ":" : ",",
				       ZydisMnemonicGetString((ZydisMnemonic)bi),
				       (unsigned long long)best);
		last = best;
		last_i = bi;
	}
}
