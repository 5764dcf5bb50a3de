/*
 * test_kvm_emu_state.c: the KVM <-> interpreter state conversion of the emulation fallback
 * (accel/kvm/kvm_emu_state.c): round trips both ways on random states, segment attribute
 * bits, EFER/CR/DR values, the x87/SSE image, MSR slots, interrupt shadow and NMI blocking;
 * then kvm_emu_step, the fallback's step, on a 64-bit KVM state over a fake memory bus:
 * fninit, lock cmpxchg16b, pshufb, swapgs, and a #UD delivered through the guest's IDT;
 * the accel_stats line; the fallback's guest-page lookup in the memory slots (ROM writes go
 * to MMIO). Needs only <linux/kvm.h>'s structures, no /dev/kvm.
 */
#include <stdlib.h>

#include "accel/kvm/kvm_emu.h"
#include "accel/kvm/kvm_internal.h"
#include "unit.h"
#include "x86/cpuid.h"
#include "emu_fixture.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void fill(void *p, size_t n)
{
	uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)rnd();
}

static void rnd_seg(struct kvm_segment *s)
{
	fill(s, sizeof *s);
	s->type = rnd() & 15;
	s->present = rnd() & 1;
	s->dpl = rnd() & 3;
	s->db = rnd() & 1;
	s->s = rnd() & 1;
	s->l = rnd() & 1;
	s->g = rnd() & 1;
	s->avl = rnd() & 1;
	s->unusable = rnd() & 1;
	s->padding = 0;
}

/* A random KVM state with the fields' own ranges (flags are 0/1, DPL 0-3, ...). */
static void rnd_kvm(struct kvm_emu_regs *k)
{
	fill(k, sizeof *k);
	rnd_seg(&k->sregs.cs);
	rnd_seg(&k->sregs.ds);
	rnd_seg(&k->sregs.es);
	rnd_seg(&k->sregs.fs);
	rnd_seg(&k->sregs.gs);
	rnd_seg(&k->sregs.ss);
	rnd_seg(&k->sregs.tr);
	rnd_seg(&k->sregs.ldt);
	k->events.interrupt.shadow = rnd() % 3;
	k->events.nmi.masked = rnd() & 1;
	k->msr_valid &= (1ull << KVM_EMU_NMSRS) - 1;
}

TEST(kvm_to_emu_to_kvm_round_trip)
{
	for (int i = 0; i < 1000; i++) {
		struct kvm_emu_regs k, back;
		struct emu_state st;

		rnd_kvm(&k);
		back = k;
		kvm_emu_state_from_kvm(&k, &st);
		kvm_emu_state_to_kvm(&st, &back);
		CHECK(memcmp(&k, &back, sizeof k) == 0);
		if (memcmp(&k, &back, sizeof k)) {
			for (size_t b = 0; b < sizeof k; b++)
				if (((uint8_t *)&k)[b] != ((uint8_t *)&back)[b]) {
					printf("    first difference at byte %zu\n", b);
					break;
				}
			break;
		}
	}
}

static void rnd_emu_seg(struct emu_seg *s)
{
	s->base = rnd();
	s->limit = (uint32_t)rnd();
	s->sel = (uint16_t)rnd();
	s->attr = (uint32_t)rnd() & 0x1f0ffu;	/* the bits the packing defines */
}

/* A random interpreter state, field by field (the padding stays zero for memcmp). */
static void rnd_emu(struct emu_state *st)
{
	uint32_t mask = 0xffff;

	memset(st, 0, sizeof *st);
	for (int i = 0; i < 16; i++)
		st->gpr[i] = rnd();
	st->rip = rnd();
	st->rflags = rnd();
	for (int s = 0; s < EMU_NSREGS; s++)
		rnd_emu_seg(&st->seg[s]);
	rnd_emu_seg(&st->ldtr);
	rnd_emu_seg(&st->tr);
	st->gdtr_base = rnd();
	st->idtr_base = rnd();
	st->gdtr_limit = (uint16_t)rnd();
	st->idtr_limit = (uint16_t)rnd();
	st->cr0 = rnd();
	st->cr2 = rnd();
	st->cr3 = rnd();
	st->cr4 = rnd();
	st->cr8 = rnd();
	st->efer = rnd();
	st->xcr0 = rnd();
	for (int i = 0; i < 8; i++)
		st->dr[i] = i == 4 || i == 5 ? 0 : rnd();	/* DR4/5 alias DR6/7 */
	st->star = rnd();
	st->lstar = rnd();
	st->cstar = rnd();
	st->sfmask = rnd();
	st->kernel_gs_base = rnd();
	st->sysenter_cs = rnd();
	st->sysenter_esp = rnd();
	st->sysenter_eip = rnd();
	st->pat = rnd();
	st->tsc_aux = rnd();
	st->misc_enable = rnd();
	st->mtrr_cap = rnd();
	st->mtrr_def_type = rnd();
	for (int i = 0; i < 11; i++)
		st->mtrr_fixed[i] = rnd();
	for (int i = 0; i < 16; i++)
		st->mtrr_var[i] = rnd();
	fill(st->fxsave, 416);
	st->fxsave[5] = 0;			/* reserved */
	memcpy(&st->fxsave[28], &mask, 4);	/* MXCSR_MASK: KVM has none */
}

TEST(emu_to_kvm_to_emu_round_trip)
{
	for (int i = 0; i < 1000; i++) {
		struct kvm_emu_regs k;
		struct emu_state st, back;

		rnd_emu(&st);
		st.interrupt_shadow = rnd() & 1;
		st.nmi_blocked = rnd() & 1;
		memset(&k, 0, sizeof k);
		k.msr_valid = (1ull << KVM_EMU_NMSRS) - 1;
		kvm_emu_state_to_kvm(&st, &k);
		kvm_emu_state_from_kvm(&k, &back);
		CHECK(memcmp(&st, &back, sizeof st) == 0);
		if (memcmp(&st, &back, sizeof st)) {
			for (size_t b = 0; b < sizeof st; b++)
				if (((uint8_t *)&st)[b] != ((uint8_t *)&back)[b]) {
					printf("    first difference at byte %zu\n", b);
					break;
				}
			break;
		}
	}
}

TEST(segment_attribute_bits)
{
	struct kvm_emu_regs k;
	struct emu_state st;

	memset(&k, 0, sizeof k);
	/* 64-bit ring 0 code, flat data at DPL 3, busy 64-bit TSS, unusable LDT */
	k.sregs.cs = (struct kvm_segment){ .base = 0, .limit = 0xffffffff, .selector = 0x08,
					   .type = 11, .present = 1, .s = 1, .l = 1, .g = 1 };
	k.sregs.ds = (struct kvm_segment){ .limit = 0xffffffff, .selector = 0x2b, .type = 3,
					   .present = 1, .dpl = 3, .db = 1, .s = 1, .g = 1,
					   .avl = 1 };
	k.sregs.tr = (struct kvm_segment){ .base = 0xffff880000001000ull, .limit = 0x67,
					   .selector = 0x40, .type = 11, .present = 1 };
	k.sregs.ldt = (struct kvm_segment){ .unusable = 1 };
	kvm_emu_state_from_kvm(&k, &st);
	CHECK_EQ_U64(st.seg[EMU_CS].attr, 0xa09b);
	CHECK_EQ_U64(st.seg[EMU_CS].sel, 0x08);
	CHECK_EQ_U64(st.seg[EMU_DS].attr, 0xd0f3);
	CHECK_EQ_U64(st.seg[EMU_DS].limit, 0xffffffff);
	CHECK_EQ_U64(st.tr.attr, 0x8b);
	CHECK_EQ_U64(st.tr.base, 0xffff880000001000ull);
	CHECK_EQ_U64(st.ldtr.attr, EMU_SEG_ATTR_UNUSABLE);
	/* ES, FS, GS, SS land in the interpreter's SDM order */
	k.sregs.es.selector = 1;
	k.sregs.ss.selector = 2;
	k.sregs.fs.selector = 3;
	k.sregs.gs.selector = 4;
	k.sregs.fs.base = 0x7f0000001000ull;
	k.sregs.gs.base = 0xffff888000000000ull;
	kvm_emu_state_from_kvm(&k, &st);
	CHECK_EQ_U64(st.seg[EMU_ES].sel, 1);
	CHECK_EQ_U64(st.seg[EMU_SS].sel, 2);
	CHECK_EQ_U64(st.seg[EMU_FS].sel, 3);
	CHECK_EQ_U64(st.seg[EMU_GS].sel, 4);
	CHECK_EQ_U64(st.seg[EMU_FS].base, 0x7f0000001000ull);
	CHECK_EQ_U64(st.seg[EMU_GS].base, 0xffff888000000000ull);
	/* and back: a real-mode segment */
	st.seg[EMU_SS] = (struct emu_seg){ .base = 0xf0000, .limit = 0xffff, .sel = 0xf000,
					   .attr = 0x93 };
	kvm_emu_state_to_kvm(&st, &k);
	CHECK_EQ_U64(k.sregs.ss.type, 3);
	CHECK_EQ_U64(k.sregs.ss.s, 1);
	CHECK_EQ_U64(k.sregs.ss.present, 1);
	CHECK_EQ_U64(k.sregs.ss.dpl, 0);
	CHECK_EQ_U64(k.sregs.ss.db | k.sregs.ss.l | k.sregs.ss.g | k.sregs.ss.unusable, 0);
	CHECK_EQ_U64(k.sregs.ss.base, 0xf0000);
	CHECK_EQ_U64(k.sregs.ss.selector, 0xf000);
}

TEST(control_registers_and_efer)
{
	struct kvm_emu_regs k;
	struct emu_state st;

	memset(&k, 0, sizeof k);
	k.regs.rip = 0xffffffff81000000ull;
	k.regs.rflags = 0x246;
	k.regs.rax = 1;
	k.regs.rcx = 2;
	k.regs.rsp = 4;
	k.regs.r15 = 15;
	k.sregs.cr0 = 0x80050033;
	k.sregs.cr2 = 0xdead000;
	k.sregs.cr3 = 0x1234000;
	k.sregs.cr4 = 0x3606f0;
	k.sregs.cr8 = 5;
	k.sregs.efer = 0xd01;	/* SCE LME LMA NXE */
	k.sregs.gdt = (struct kvm_dtable){ .base = 0xfffffe0000001000ull, .limit = 0x7f };
	k.sregs.idt = (struct kvm_dtable){ .base = 0xfffffe0000000000ull, .limit = 0xfff };
	k.debug.db[2] = 0x401000;
	k.debug.dr6 = 0xffff0ff0;
	k.debug.dr7 = 0x400 | 0x30;
	k.xcr0 = 7;
	kvm_emu_state_from_kvm(&k, &st);
	CHECK_EQ_U64(st.rip, 0xffffffff81000000ull);
	CHECK_EQ_U64(st.rflags, 0x246);
	CHECK_EQ_U64(st.gpr[EMU_RAX], 1);
	CHECK_EQ_U64(st.gpr[EMU_RCX], 2);
	CHECK_EQ_U64(st.gpr[EMU_RSP], 4);
	CHECK_EQ_U64(st.gpr[EMU_R15], 15);
	CHECK_EQ_U64(st.cr0, 0x80050033);
	CHECK_EQ_U64(st.cr2, 0xdead000);
	CHECK_EQ_U64(st.cr3, 0x1234000);
	CHECK_EQ_U64(st.cr4, 0x3606f0);
	CHECK_EQ_U64(st.cr8, 5);
	CHECK_EQ_U64(st.efer, 0xd01);
	CHECK_EQ_U64(st.gdtr_base, 0xfffffe0000001000ull);
	CHECK_EQ_U64(st.gdtr_limit, 0x7f);
	CHECK_EQ_U64(st.idtr_limit, 0xfff);
	CHECK_EQ_U64(st.dr[2], 0x401000);
	CHECK_EQ_U64(st.dr[6], 0xffff0ff0);
	CHECK_EQ_U64(st.dr[7], 0x430);
	CHECK_EQ_U64(st.xcr0, 7);
	/* what an emulated instruction changes comes back */
	st.efer &= ~0x800ull;
	st.cr0 |= 8;	/* TS */
	st.cr8 = 9;
	st.gpr[EMU_RDX] = 0x1122334455667788ull;
	st.rip += 3;
	kvm_emu_state_to_kvm(&st, &k);
	CHECK_EQ_U64(k.sregs.efer, 0x501);
	CHECK_EQ_U64(k.sregs.cr0, 0x8005003b);
	CHECK_EQ_U64(k.sregs.cr8, 9);
	CHECK_EQ_U64(k.regs.rdx, 0x1122334455667788ull);
	CHECK_EQ_U64(k.regs.rip, 0xffffffff81000003ull);
}

TEST(fpu_and_sse_registers)
{
	struct kvm_emu_regs k;
	struct emu_state st;
	uint16_t w;
	uint32_t d;
	uint64_t q;

	memset(&k, 0, sizeof k);
	k.fpu.fcw = 0x37f;
	k.fpu.fsw = 0x3800 | 0x41;	/* TOP 7, IE, SF */
	k.fpu.ftwx = 0x80;		/* abridged: ST(7) physical register valid */
	k.fpu.last_opcode = 0x5e9;
	k.fpu.last_ip = 0xffffffff81234567ull;
	k.fpu.last_dp = 0x7ffe0000abcdull;
	k.fpu.mxcsr = 0x1f80 | 0x40;	/* DAZ */
	for (int i = 0; i < 10; i++)
		k.fpu.fpr[0][i] = (uint8_t)(0xa0 + i);	/* ST(0) */
	for (int i = 0; i < 16; i++) {
		k.fpu.xmm[0][i] = (uint8_t)i;
		k.fpu.xmm[15][i] = (uint8_t)(0xf0 + i);
	}
	kvm_emu_state_from_kvm(&k, &st);
	memcpy(&w, &st.fxsave[0], 2);
	CHECK_EQ_U64(w, 0x37f);
	memcpy(&w, &st.fxsave[2], 2);
	CHECK_EQ_U64(w, 0x3841);
	CHECK_EQ_U64(st.fxsave[4], 0x80);
	memcpy(&w, &st.fxsave[6], 2);
	CHECK_EQ_U64(w, 0x5e9);
	memcpy(&q, &st.fxsave[8], 8);
	CHECK_EQ_U64(q, 0xffffffff81234567ull);
	memcpy(&q, &st.fxsave[16], 8);
	CHECK_EQ_U64(q, 0x7ffe0000abcdull);
	memcpy(&d, &st.fxsave[24], 4);
	CHECK_EQ_U64(d, 0x1fc0);
	memcpy(&d, &st.fxsave[28], 4);
	CHECK_EQ_U64(d, 0xffff);
	CHECK_EQ_U64(st.fxsave[32], 0xa0);
	CHECK_EQ_U64(st.fxsave[41], 0xa9);
	CHECK_EQ_U64(st.fxsave[160], 0);
	CHECK_EQ_U64(st.fxsave[175], 15);
	CHECK_EQ_U64(st.fxsave[160 + 15 * 16], 0xf0);
	CHECK_EQ_U64(st.fxsave[160 + 15 * 16 + 15], 0xff);
	/* an emulated fninit + SSE write come back */
	st.fxsave[0] = 0x7f;
	st.fxsave[1] = 0x03;
	st.fxsave[2] = st.fxsave[3] = 0;
	st.fxsave[4] = 0;
	st.fxsave[160 + 3 * 16 + 7] = 0x5a;
	d = 0x1f80;
	memcpy(&st.fxsave[24], &d, 4);
	kvm_emu_state_to_kvm(&st, &k);
	CHECK_EQ_U64(k.fpu.fcw, 0x37f);
	CHECK_EQ_U64(k.fpu.fsw, 0);
	CHECK_EQ_U64(k.fpu.ftwx, 0);
	CHECK_EQ_U64(k.fpu.xmm[3][7], 0x5a);
	CHECK_EQ_U64(k.fpu.mxcsr, 0x1f80);
	CHECK_EQ_U64(k.fpu.fpr[0][0], 0xa0);
}

TEST(msr_slots)
{
	struct kvm_emu_regs k;
	struct emu_state st;

	memset(&k, 0, sizeof k);
	/* every slot names a distinct MSR */
	for (int i = 0; i < KVM_EMU_NMSRS; i++) {
		CHECK(kvm_emu_msr_index[i] != 0);
		for (int j = 0; j < i; j++)
			CHECK(kvm_emu_msr_index[i] != kvm_emu_msr_index[j]);
	}
	CHECK_EQ_U64(kvm_emu_msr_index[KVM_EMU_MSR_LSTAR], 0xc0000082);
	CHECK_EQ_U64(kvm_emu_msr_index[KVM_EMU_MSR_KERNEL_GS_BASE], 0xc0000102);
	CHECK_EQ_U64(kvm_emu_msr_index[KVM_EMU_MSR_MTRR_FIXED + 3], 0x268);
	CHECK_EQ_U64(kvm_emu_msr_index[KVM_EMU_MSR_MTRR_VAR + 15], 0x20f);
	k.msr[KVM_EMU_MSR_LSTAR] = 0xffffffff81a00000ull;
	k.msr[KVM_EMU_MSR_KERNEL_GS_BASE] = 0xffff88803fc00000ull;
	k.msr[KVM_EMU_MSR_TSC_AUX] = 7;	/* not valid: KVM did not report it */
	k.msr[KVM_EMU_MSR_MTRR_FIXED + 3] = 0x0606060606060606ull;
	k.msr[KVM_EMU_MSR_MTRR_VAR + 15] = 0xff800800ull;
	k.msr_valid = 1ull << KVM_EMU_MSR_LSTAR | 1ull << KVM_EMU_MSR_KERNEL_GS_BASE |
		      1ull << (KVM_EMU_MSR_MTRR_FIXED + 3) | 1ull << (KVM_EMU_MSR_MTRR_VAR + 15);
	kvm_emu_state_from_kvm(&k, &st);
	CHECK_EQ_U64(st.lstar, 0xffffffff81a00000ull);
	CHECK_EQ_U64(st.kernel_gs_base, 0xffff88803fc00000ull);
	CHECK_EQ_U64(st.tsc_aux, 0);
	CHECK_EQ_U64(st.mtrr_fixed[3], 0x0606060606060606ull);
	CHECK_EQ_U64(st.mtrr_var[15], 0xff800800ull);
	/* SWAPGS-like change goes back; the invalid slot is left alone */
	st.kernel_gs_base = 0;
	st.tsc_aux = 9;
	kvm_emu_state_to_kvm(&st, &k);
	CHECK_EQ_U64(k.msr[KVM_EMU_MSR_KERNEL_GS_BASE], 0);
	CHECK_EQ_U64(k.msr[KVM_EMU_MSR_TSC_AUX], 7);
}

TEST(interrupt_shadow_and_nmi)
{
	struct kvm_emu_regs k;
	struct emu_state st;

	memset(&k, 0, sizeof k);
	k.events.interrupt.shadow = KVM_X86_SHADOW_INT_MOV_SS;
	k.events.nmi.masked = 1;
	kvm_emu_state_from_kvm(&k, &st);
	CHECK(st.interrupt_shadow);
	CHECK(st.nmi_blocked);
	kvm_emu_state_to_kvm(&st, &k);
	CHECK_EQ_U64(k.events.interrupt.shadow, KVM_X86_SHADOW_INT_MOV_SS);
	/* the emulated instruction ends the shadow and IRET unblocks NMIs */
	st.interrupt_shadow = false;
	st.nmi_blocked = false;
	kvm_emu_state_to_kvm(&st, &k);
	CHECK_EQ_U64(k.events.interrupt.shadow, 0);
	CHECK_EQ_U64(k.events.nmi.masked, 0);
	/* an emulated STI starts one */
	st.interrupt_shadow = true;
	kvm_emu_state_to_kvm(&st, &k);
	CHECK_EQ_U64(k.events.interrupt.shadow, KVM_X86_SHADOW_INT_STI);
}

/* ---- kvm_emu_step: the fallback's step on a KVM state ---- */

#define DATA 0x300000ull

static struct accel_cpuid_entry level[ACCEL_CPUID_MAX_ENTRIES];
static int nlevel;

/* The software CPU's level, as the fallback's bus answers from the vCPU's table. */
static void level_cpuid(void *o, uint32_t leaf, uint32_t sub, uint32_t out[4])
{
	memset(out, 0, 16);
	for (int i = 0; i < nlevel; i++)
		if (level[i].function == leaf) {
			out[0] = level[i].eax;
			out[1] = level[i].ebx;
			out[2] = level[i].ecx;
			out[3] = level[i].edx;
			return;
		}
}

/* A 64-bit ring 0 KVM state about to run `code` at CODE (RDI = DATA), and its CPU. */
static struct emu_cpu *step_setup(struct vm *vm, struct kvm_emu_regs *k, const uint8_t *code,
				  size_t n)
{
	struct emu_bus b = bus;
	struct emu_state st;

	nlevel = cpuid_level_leaves(cpuid_level_find(CPUID_LEVEL_SOFT), level,
				    ACCEL_CPUID_MAX_ENTRIES);
	b.cpuid = level_cpuid;
	if (!ram)
		ram = malloc(RAM_SIZE);
	build_tables();
	vm->m = emu_machine_create();
	vm->cpu = emu_cpu_create(vm->m, &b);
	long_state(&st, 0);
	st.cr4 |= 0x600;	/* OSFXSR OSXMMEXCPT */
	st.gpr[EMU_RDI] = DATA;
	put_bytes(CODE, code, n);
	memset(k, 0, sizeof *k);
	k->msr_valid = (1ull << KVM_EMU_NMSRS) - 1;
	kvm_emu_state_to_kvm(&st, k);
	return vm->cpu;
}

TEST(step_fninit)
{
	static const uint8_t code[] = { 0xdb, 0xe3 };
	struct kvm_emu_regs k, after;
	struct vm vm;
	struct emu_cpu *cpu = step_setup(&vm, &k, code, sizeof code);

	k.fpu.fcw = 0x40;
	k.fpu.fsw = 0x3881;
	k.fpu.ftwx = 0xff;
	CHECK_EQ_U64(kvm_emu_step(cpu, &k, &after), EMU_EXIT_BUDGET);
	CHECK_EQ_U64(after.regs.rip, CODE + 2);
	CHECK_EQ_U64(after.fpu.fcw, 0x37f);
	CHECK_EQ_U64(after.fpu.fsw, 0);
	CHECK_EQ_U64(after.fpu.ftwx, 0);
	CHECK(memcmp(&k.sregs, &after.sregs, sizeof k.sregs) == 0);
	CHECK(memcmp(k.msr, after.msr, sizeof k.msr) == 0);
	vm_end(&vm);
}

TEST(step_lock_cmpxchg16b)
{
	static const uint8_t code[] = { 0xf0, 0x48, 0x0f, 0xc7, 0x0f };
	struct kvm_emu_regs k, after;
	struct vm vm;
	struct emu_cpu *cpu = step_setup(&vm, &k, code, sizeof code);

	put64(DATA, 0x1111);
	put64(DATA + 8, 0x2222);
	k.regs.rax = 0x1111;
	k.regs.rdx = 0x2222;
	k.regs.rbx = 0x3333;
	k.regs.rcx = 0x4444;
	CHECK_EQ_U64(kvm_emu_step(cpu, &k, &after), EMU_EXIT_BUDGET);
	CHECK_EQ_U64(after.regs.rip, CODE + sizeof code);
	CHECK_EQ_U64(get64(DATA), 0x3333);
	CHECK_EQ_U64(get64(DATA + 8), 0x4444);
	CHECK(after.regs.rflags & 0x40);	/* ZF */
	vm_end(&vm);
}

TEST(step_pshufb)
{
	static const uint8_t code[] = { 0x66, 0x0f, 0x38, 0x00, 0xc1 };	/* pshufb xmm0, xmm1 */
	struct kvm_emu_regs k, after;
	struct vm vm;
	struct emu_cpu *cpu = step_setup(&vm, &k, code, sizeof code);

	for (int i = 0; i < 16; i++) {
		k.fpu.xmm[0][i] = (uint8_t)(0x10 + i);
		k.fpu.xmm[1][i] = (uint8_t)(15 - i);
	}
	CHECK_EQ_U64(kvm_emu_step(cpu, &k, &after), EMU_EXIT_BUDGET);
	CHECK_EQ_U64(after.regs.rip, CODE + sizeof code);
	for (int i = 0; i < 16; i++)
		CHECK_EQ_U64(after.fpu.xmm[0][i], 0x10 + 15 - i);
	CHECK(memcmp(k.fpu.xmm[1], after.fpu.xmm[1], 16) == 0);
	vm_end(&vm);
}

TEST(step_swapgs)
{
	static const uint8_t code[] = { 0x0f, 0x01, 0xf8 };
	struct kvm_emu_regs k, after;
	struct vm vm;
	struct emu_cpu *cpu = step_setup(&vm, &k, code, sizeof code);

	k.sregs.gs.base = 0x1000;
	k.msr[KVM_EMU_MSR_KERNEL_GS_BASE] = 0xffff888000000000ull;
	CHECK_EQ_U64(kvm_emu_step(cpu, &k, &after), EMU_EXIT_BUDGET);
	CHECK_EQ_U64(after.sregs.gs.base, 0xffff888000000000ull);
	CHECK_EQ_U64(after.msr[KVM_EMU_MSR_KERNEL_GS_BASE], 0x1000);
	vm_end(&vm);
}

TEST(step_ud2_delivered_through_the_idt)
{
	static const uint8_t code[] = { 0x0f, 0x0b };
	struct kvm_emu_regs k, after;
	struct vm vm;
	struct emu_cpu *cpu = step_setup(&vm, &k, code, sizeof code);

	CHECK_EQ_U64(kvm_emu_step(cpu, &k, &after), EMU_EXIT_BUDGET);
	CHECK_EQ_U64(after.regs.rip, HANDLERS + 6 * 16);
	CHECK_EQ_U64(after.sregs.cs.selector, 0x08);
	CHECK_EQ_U64(after.regs.rsp, k.regs.rsp - 40);
	CHECK_EQ_U64(get64(after.regs.rsp), CODE);	/* the faulting RIP */
	vm_end(&vm);
}

TEST(stats_line)
{
	static _Atomic uint64_t counts[ZYDIS_MNEMONIC_MAX_VALUE + 1];
	char line[256];

	kvm_emu_stats_line(counts, ZYDIS_MNEMONIC_MAX_VALUE + 1, line, sizeof line);
	CHECK_STR(line, "emulated by the software CPU: 0 instructions");
	counts[ZYDIS_MNEMONIC_FNINIT] = 3;
	counts[ZYDIS_MNEMONIC_CMPXCHG16B] = 12;
	counts[ZYDIS_MNEMONIC_PSHUFB] = 3;
	counts[ZYDIS_MNEMONIC_MOVDQA] = 1;
	kvm_emu_stats_line(counts, ZYDIS_MNEMONIC_MAX_VALUE + 1, line, sizeof line);
	CHECK_STR(line, "emulated by the software CPU: 19 instructions: cmpxchg16b 12, fninit 3, "
			"pshufb 3, movdqa 1");
	memset(counts, 0, sizeof counts);
	counts[ZYDIS_MNEMONIC_XRSTOR64] = 1;
	kvm_emu_stats_line(counts, ZYDIS_MNEMONIC_MAX_VALUE + 1, line, sizeof line);
	CHECK_STR(line, "emulated by the software CPU: 1 instruction: xrstor64 1");
	/* a short buffer ends the line early but stays a string */
	kvm_emu_stats_line(counts, ZYDIS_MNEMONIC_MAX_VALUE + 1, line, 20);
	CHECK_EQ_U64(strlen(line), 19);
}

TEST(slot_page_lookup)
{
	struct accel *a = calloc(1, sizeof *a);
	static uint8_t ram0[0x4000] __attribute__((aligned(4096)));
	static uint8_t rom[0x1000] __attribute__((aligned(4096)));

	if (!a)
		return;
	pthread_mutex_init(&a->slot_lock, NULL);
	a->slots[0] = (struct kvm_slot){ .gpa = 0, .size = sizeof ram0, .host = ram0 };
	a->slots[1] = (struct kvm_slot){ .gpa = 0xfffff000, .size = sizeof rom, .host = rom,
					 .readonly = true };
	a->nslots = 2;
	CHECK(kvm_slot_page(a, 0x0, false) == ram0);
	CHECK(kvm_slot_page(a, 0x2abc, true) == ram0 + 0x2000);
	CHECK(kvm_slot_page(a, 0x3fff, false) == ram0 + 0x3000);
	CHECK(kvm_slot_page(a, 0x4000, false) == NULL);		/* past the RAM: MMIO */
	CHECK(kvm_slot_page(a, 0xfffffff0, false) == rom);
	CHECK(kvm_slot_page(a, 0xfffffff0, true) == NULL);	/* ROM write: MMIO */
	CHECK(kvm_slot_page(a, 0xfee00000, false) == NULL);
	pthread_mutex_destroy(&a->slot_lock);
	free(a);
}
