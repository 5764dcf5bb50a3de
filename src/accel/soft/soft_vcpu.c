/*
 * soft_vcpu.c: one software-CPU vCPU on its caller's thread: the emu_bus (memory pages,
 * LAPIC/IOAPIC MMIO, PIC/PIT/ELCR/port 0x61 I/O, the rest to accel_io_ops; APIC MSRs;
 * per-vCPU CPUID; interrupt acknowledge from the LAPIC or the 8259), the run loop with timer
 * checks between bounded emu_run calls (a run is shortened to end at the next timer
 * deadline, from how long full runs take), HLT sleeping on a futex until an interrupt, NMI,
 * INIT/SIPI, timer or kick, and register conversion. CR8 and the LAPIC's TPR are
 * synchronised between emu_run calls, so a MOV to CR8 takes effect within one run budget.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "accel/soft/soft_internal.h"

/* Instructions per emu_run: short enough that timers are checked every few 100 us. */
#define SOFT_BUDGET 20000
/* The least a run shortened for a timer deadline executes. */
#define SOFT_MIN_BUDGET 500
#define RFLAGS_IF (1ull << 9)

/* AMD MSRs Linux touches on family 15 (softcpu.md §3.2). */
#define MSR_TSC 0x10
#define MSR_PATCH_LEVEL 0x8b
#define MSR_MCG_CAP 0x179
#define MSR_AMD_PERF_FIRST 0xc0010000	/* legacy PERF_CTL0-3, PERF_CTR0-3 */
#define MSR_AMD_PERF_LAST 0xc0010007
#define MSR_AMD_HWCR 0xc0010015
#define MSR_AMD_INT_PENDING 0xc0010055
#define MSR_AMD_DE_CFG 0xc0011029

static void futex_wake(_Atomic uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* The vCPU whose run loop this thread is in (for NMIs a vCPU sends itself). */
static __thread struct accel_vcpu *soft_current;

void soft_vcpu_notify(struct accel_vcpu *v, uint32_t emu_events)
{
	struct emu_cpu *cpu = atomic_load(&v->cpu);

	if (emu_events) {
		if (cpu)
			emu_raise_events(cpu, emu_events);
		else
			atomic_fetch_or(&v->early_events, emu_events);
	}
	atomic_fetch_add(&v->wake_seq, 1);
	/* a vCPU's own thread is not asleep (its timers, self-IPIs): no system call */
	if (soft_current != v)
		futex_wake(&v->wake_seq);
}

/* Sleep until wake_seq moves from `seq` or VM time `deadline` (ns) passes. */
static void soft_sleep(struct accel_vcpu *v, uint32_t seq, uint64_t deadline)
{
	struct timespec ts, *tp = NULL;

	if (deadline != UINT64_MAX) {
		uint64_t now = soft_now(v->acc), d;

		if (deadline <= now)
			return;
		d = deadline - now;
		ts.tv_sec = (time_t)(d / 1000000000u);
		ts.tv_nsec = (long)(d % 1000000000u);
		tp = &ts;
	}
	syscall(SYS_futex, &v->wake_seq, FUTEX_WAIT_PRIVATE, seq, tp, NULL, 0);
}

/* ---- state shared with the interpreter: CR8 and NMIs ---- */

/*
 * CR8 is TPR[7:4]. The interpreter keeps CR8 in its state. A TPR written through the APIC
 * page or MSR ends the run and is copied in before the next one (rare: it costs a state
 * reload); a CR8 written by MOV is copied out before any APIC access, interrupt acknowledge
 * and at the end of the run.
 */
static void tpr_to_cr8(struct accel_vcpu *v, struct emu_cpu *cpu)
{
	uint8_t tpr = lapic_get_tpr(v->lapic) >> 4;

	if (tpr == v->cr8_seen)
		return;
	emu_get_state(cpu, &v->scratch);
	v->scratch.cr8 = tpr;
	emu_set_state(cpu, &v->scratch);
	v->cr8_seen = tpr;
}

/* From v->scratch, just filled by emu_get_state. */
static void cr8_to_tpr(struct accel_vcpu *v, struct emu_cpu *cpu)
{
	uint8_t cr8 = (uint8_t)(v->scratch.cr8 & 0xf);

	if (cr8 == v->cr8_seen)
		return;
	v->cr8_seen = cr8;
	lapic_set_tpr(v->lapic, (uint8_t)(cr8 << 4));
}

/*
 * NMIs. The interpreter keeps one request bit (EMU_EV_NMI), cleared when it delivers the
 * NMI and held while an NMI handler runs (until IRET). As under KVM, an NMI that arrives
 * while the bit is set is latched here (once) and raised again when the bit clears; only
 * when the vCPU sends itself an NMI from inside its handler, with one already waiting, is
 * it dropped (the hardware latch is full).
 */
static void nmi_sync(struct accel_vcpu *v, struct emu_cpu *cpu)
{
	if (atomic_load(&v->nmi_latched) && !(emu_pending_events(cpu) & EMU_EV_NMI) &&
	    atomic_exchange(&v->nmi_latched, false))
		emu_raise_events(cpu, EMU_EV_NMI);
}

/* Look at the interpreter's state between or inside instructions: CR8 and NMIs. */
static void peek_state(struct accel_vcpu *v, struct emu_cpu *cpu)
{
	emu_get_state(cpu, &v->scratch);
	cr8_to_tpr(v, cpu);
	nmi_sync(v, cpu);
}

void soft_vcpu_nmi(struct accel_vcpu *v)
{
	struct emu_cpu *cpu = atomic_load(&v->cpu);
	uint32_t raise = EMU_EV_NMI;

	pthread_mutex_lock(&v->nmi_lock);
	if (cpu && (emu_pending_events(cpu) & EMU_EV_NMI)) {
		raise = 0;
		if (soft_current == v)
			peek_state(v, cpu);
		if (soft_current != v || !v->scratch.nmi_blocked)
			atomic_store(&v->nmi_latched, true);
	}
	if (raise)
		soft_vcpu_notify(v, raise);
	pthread_mutex_unlock(&v->nmi_lock);
	if (!raise)
		soft_vcpu_notify(v, 0);
}

/* ---- emu_bus ---- */

static uint8_t *bus_page_ptr(void *opaque, uint64_t gpa, bool write)
{
	struct accel_vcpu *v = opaque;

	if ((gpa & ~0xfffull) == v->apic_page)
		return NULL;
	return soft_page(v->acc, gpa, write);
}

static int bus_mmio(void *opaque, uint64_t gpa, unsigned size, bool write, uint64_t *val)
{
	struct accel_vcpu *v = opaque;
	struct accel *acc = v->acc;

	if ((gpa & ~0xfffull) == v->apic_page) {
		peek_state(v, atomic_load(&v->cpu));
		lapic_mmio(v->lapic, gpa & 0xfff, size, write, val, soft_now(acc));
		if (write && (gpa & 0xff0) == 0x80) {
			v->tpr_written = true;
			return -1;	/* stop after this access: CR8 must follow */
		}
		return 0;
	}
	if (gpa >= IOAPIC_BASE && gpa < IOAPIC_BASE + IOAPIC_SIZE)
		return ioapic_mmio(acc->ioapic, gpa - IOAPIC_BASE, size, write, val);
	if (!acc->io.mmio) {
		if (!write)
			*val = ~0ull;
		return 0;
	}
	return acc->io.mmio(acc->io.opaque, v->index, gpa, size, write, val) < 0 ? -1 : 0;
}

static bool own_port(uint16_t port)
{
	return i8259_port(port) || i8254_port(port);
}

/* FERR# goes to the chipset's x87 error logic (dev/fpu_ferr.c) through the machine. */
static bool bus_ferr(void *opaque, bool asserted)
{
	struct accel_vcpu *v = opaque;

	return v->acc->io.ferr(v->acc->io.opaque, v->index, asserted);
}

static int bus_pio(void *opaque, uint16_t port, unsigned size, bool write, uint32_t *val)
{
	struct accel_vcpu *v = opaque;
	struct accel *acc = v->acc;
	uint32_t out = 0;

	if (!own_port(port)) {
		if (!acc->io.pio) {
			if (!write)
				*val = ~0u;
			return 0;
		}
		return acc->io.pio(acc->io.opaque, v->index, port, size, write, val) < 0 ? -1 : 0;
	}
	/* byte by byte: ELCR is read as a word at 0x4d0 by some firmware */
	for (unsigned i = 0; i < size; i++) {
		uint16_t p = (uint16_t)(port + i);
		uint8_t b = write ? (uint8_t)(*val >> (8 * i)) : 0xff;

		if (i8259_port(p))
			i8259_pio(acc->pic, p, write, &b);
		else if (i8254_port(p))
			i8254_pio(acc->pit, p, write, &b, soft_now(acc));
		out |= (uint32_t)b << (8 * i);
	}
	if (!write)
		*val = out;
	return 0;
}

static int bus_intr_ack(void *opaque)
{
	struct accel_vcpu *v = opaque;
	struct accel *acc = v->acc;
	int vec;

	peek_state(v, atomic_load(&v->cpu));
	vec = lapic_intr_ack(v->lapic);

	if (vec < 0 && lapic_accepts_extint(v->lapic) && i8259_output(acc->pic)) {
		vec = i8259_intr_ack(acc->pic);
		lapic_extint_done(v->lapic);
	}
	/* the interpreter consumed EMU_EV_INTR: keep it raised while more are waiting */
	if (lapic_intr_pending(v->lapic) ||
	    (i8259_output(acc->pic) && lapic_accepts_extint(v->lapic)))
		emu_raise_events(atomic_load(&v->cpu), EMU_EV_INTR);
	return vec;
}

static void bus_cpuid(void *opaque, uint32_t leaf, uint32_t subleaf, uint32_t out[4])
{
	struct accel_vcpu *v = opaque;
	const struct accel_cpuid_entry *t = v->ncpuid ? v->cpuid : v->acc->cpuid;
	int n = v->ncpuid ? v->ncpuid : v->acc->ncpuid;

	out[0] = out[1] = out[2] = out[3] = 0;
	for (int i = 0; i < n; i++) {
		if (t[i].function != leaf)
			continue;
		if ((t[i].flags & ACCEL_CPUID_SIGNIFICANT_INDEX) && t[i].index != subleaf)
			continue;
		out[0] = t[i].eax;
		out[1] = t[i].ebx;
		out[2] = t[i].ecx;
		out[3] = t[i].edx;
		/* the APIC feature bit follows APIC_BASE.EN */
		if ((leaf == 1 || leaf == 0x80000001) &&
		    !(lapic_get_apic_base(v->lapic) & LAPIC_BASE_EN))
			out[3] &= ~(1u << 9);
		return;
	}
}

/* RESET/INIT state, with the processor signature (CPUID leaf 1 EAX) in EDX (SDM Vol. 3
 * §10.1.4). */
static void reset_state(struct accel_vcpu *v, struct emu_state *st)
{
	uint32_t r[4];

	emu_reset_state(st);
	bus_cpuid(v, 1, 0, r);
	if (r[0])
		st->gpr[EMU_RDX] = r[0];
}

static void update_apic_page(struct accel_vcpu *v)
{
	uint64_t base;

	v->apic_page = lapic_mmio_base(v->lapic, &base) ? base : UINT64_MAX;
}

static uint64_t bus_tsc(void *opaque)
{
	struct accel_vcpu *v = opaque;

	return soft_tsc(v->acc, soft_now(v->acc)) + (uint64_t)v->tsc_offset;
}

static int bus_msr(void *opaque, uint32_t index, bool write, uint64_t *val)
{
	struct accel_vcpu *v = opaque;
	int r;

	switch (index) {
	case LAPIC_MSR_APIC_BASE:
		if (write && (*val & LAPIC_BASE_EXTD) && !v->has_x2apic)
			return -1;
		r = lapic_msr(v->lapic, index, write, val, soft_now(v->acc));
		update_apic_page(v);
		return r;
	case MSR_TSC:
		/* reads are the interpreter's (bus.tsc); a write moves this vCPU's TSC */
		if (write)
			v->tsc_offset = (int64_t)(*val - soft_tsc(v->acc, soft_now(v->acc)));
		else
			*val = bus_tsc(v);
		return 0;
	case LAPIC_MSR_TSC_DEADLINE: {
		/* the LAPIC counts in the VM's TSC; the guest in its own */
		uint64_t d;

		if (!v->has_tsc_deadline)
			return -1;
		d = write && *val ? *val - (uint64_t)v->tsc_offset : *val;
		r = lapic_msr(v->lapic, index, write, &d, soft_now(v->acc));
		if (!write)
			*val = d ? d + (uint64_t)v->tsc_offset : 0;
		return r;
	}
	case MSR_PATCH_LEVEL:
		if (!write)
			*val = 0;
		return 0;
	case MSR_MCG_CAP:
	case MSR_AMD_INT_PENDING:
		if (write)
			return -1;
		*val = 0;
		return 0;
	case MSR_AMD_HWCR:
		if (write)
			v->msr_hwcr = *val;
		else
			*val = v->msr_hwcr;
		return 0;
	case MSR_AMD_DE_CFG:
		if (write)
			v->msr_de_cfg = *val;
		else
			*val = v->msr_de_cfg;
		return 0;
	default:
		break;
	}
	/* No PMU: the legacy counters exist on every family 15 part; they read 0, as KVM's. */
	if (index >= MSR_AMD_PERF_FIRST && index <= MSR_AMD_PERF_LAST) {
		if (!write)
			*val = 0;
		return 0;
	}
	if (index >= LAPIC_MSR_X2APIC_FIRST && index <= LAPIC_MSR_X2APIC_LAST) {
		struct emu_cpu *cpu = atomic_load(&v->cpu);

		peek_state(v, cpu);
		r = lapic_msr(v->lapic, index, write, val, soft_now(v->acc));
		/* WRMSR ends its trace: the run returns before the next instruction */
		if (write && index == LAPIC_MSR_X2APIC_FIRST + (0x80 >> 4) && r == 0)
			emu_raise_events(cpu, EMU_EV_EXIT);
		return r;
	}
	return -1;
}

/* ---- create and state ---- */

int soft_vcpu_create(struct accel *acc, int index, struct accel_vcpu **out)
{
	struct accel_vcpu *v;
	struct emu_bus bus;
	struct emu_cpu *cpu;
	struct emu_state st;

	if (index < 0 || index >= acc->ncpus)
		return -EINVAL;
	v = &acc->vcpus[index];
	if (v->created)
		return -EEXIST;
	bus = (struct emu_bus){
		.opaque = v,
		.page_ptr = bus_page_ptr,
		.mmio = bus_mmio,
		.pio = bus_pio,
		.intr_ack = bus_intr_ack,
		.cpuid = bus_cpuid,
		.msr = bus_msr,
		.tsc = bus_tsc,
		.ferr = acc->io.ferr ? bus_ferr : NULL,
	};
	cpu = emu_cpu_create(acc->machine, &bus);
	if (!cpu)
		return -ENOMEM;
	reset_state(v, &st);
	emu_set_state(cpu, &st);
	lapic_reset(v->lapic);
	update_apic_page(v);
	v->has_x2apic = v->has_tsc_deadline = true;	/* the supported set, until set_cpuid */
	v->cr8_seen = 0;
	v->tsc_offset = 0;
	v->created = true;
	v->wait_sipi = false;
	v->halted = false;
	v->reported_halted = false;
	atomic_store(&v->cpu, cpu);
	/* INTR is raised by the run loop when an interrupt is deliverable */
	emu_raise_events(cpu, atomic_exchange(&v->early_events, 0));
	*out = v;
	return 0;
}

void soft_vcpu_destroy(struct accel_vcpu *v)
{
	struct emu_cpu *cpu = atomic_exchange(&v->cpu, NULL);

	/* The struct stays with the VM: a late kick must still find it. */
	if (cpu)
		emu_cpu_destroy(cpu);
	v->created = false;
}

int soft_vcpu_set_cpuid(struct accel_vcpu *v, const struct accel_cpuid_entry *ents, int n)
{
	uint32_t id = (uint32_t)v->index;

	if (n < 0 || n > ACCEL_CPUID_MAX_ENTRIES)
		return -E2BIG;
	memcpy(v->cpuid, ents, sizeof ents[0] * (size_t)n);
	v->ncpuid = n;
	/* The APIC ID is the one the table advertises (x2APIC ID of leaf 0xB, else leaf 1). */
	v->has_x2apic = v->has_tsc_deadline = false;
	for (int i = 0; i < n; i++) {
		if (ents[i].function != 1)
			continue;
		id = ents[i].ebx >> 24;
		v->has_x2apic = (ents[i].ecx >> 21) & 1;
		v->has_tsc_deadline = (ents[i].ecx >> 24) & 1;
	}
	for (int i = 0; i < n; i++)
		if (ents[i].function == 0xb && ents[i].index == 0 && ents[i].ebx)
			id = ents[i].edx;
	lapic_set_id(v->lapic, id);
	return 0;
}

static void seg_from_emu(struct accel_segment *s, const struct emu_seg *e)
{
	s->base = e->base;
	s->limit = e->limit;
	s->selector = e->sel;
	s->type = EMU_SEG_ATTR_TYPE(e->attr);
	s->s = (e->attr & EMU_SEG_ATTR_S) != 0;
	s->dpl = EMU_SEG_ATTR_DPL(e->attr);
	s->present = (e->attr & EMU_SEG_ATTR_P) != 0;
	s->avl = (e->attr & EMU_SEG_ATTR_AVL) != 0;
	s->l = (e->attr & EMU_SEG_ATTR_L) != 0;
	s->db = (e->attr & EMU_SEG_ATTR_DB) != 0;
	s->g = (e->attr & EMU_SEG_ATTR_G) != 0;
	s->unusable = (e->attr & EMU_SEG_ATTR_UNUSABLE) != 0;
}

static void seg_to_emu(struct emu_seg *e, const struct accel_segment *s)
{
	e->base = s->base;
	e->limit = s->limit;
	e->sel = s->selector;
	e->attr = (s->type & 0xfu) | (s->s ? EMU_SEG_ATTR_S : 0) | ((s->dpl & 3u) << 5) |
		  (s->present ? EMU_SEG_ATTR_P : 0) | (s->avl ? EMU_SEG_ATTR_AVL : 0) |
		  (s->l ? EMU_SEG_ATTR_L : 0) | (s->db ? EMU_SEG_ATTR_DB : 0) |
		  (s->g ? EMU_SEG_ATTR_G : 0) | (s->unusable ? EMU_SEG_ATTR_UNUSABLE : 0);
}

static const uint8_t gpr_order[16] = {
	EMU_RAX, EMU_RBX, EMU_RCX, EMU_RDX, EMU_RSI, EMU_RDI, EMU_RSP, EMU_RBP,
	EMU_R8, EMU_R9, EMU_R10, EMU_R11, EMU_R12, EMU_R13, EMU_R14, EMU_R15,
};

int soft_vcpu_get_regs(struct accel_vcpu *v, struct accel_regs *regs)
{
	struct emu_state *st = &v->scratch;
	uint64_t *r = &regs->rax;

	emu_get_state(atomic_load(&v->cpu), st);
	for (int i = 0; i < 16; i++)
		r[i] = st->gpr[gpr_order[i]];
	regs->rip = st->rip;
	regs->rflags = st->rflags;
	return 0;
}

int soft_vcpu_set_regs(struct accel_vcpu *v, const struct accel_regs *regs)
{
	struct emu_cpu *cpu = atomic_load(&v->cpu);
	struct emu_state *st = &v->scratch;
	const uint64_t *r = &regs->rax;

	emu_get_state(cpu, st);
	for (int i = 0; i < 16; i++)
		st->gpr[gpr_order[i]] = r[i];
	st->rip = regs->rip;
	st->rflags = regs->rflags | 2;
	emu_set_state(cpu, st);
	return 0;
}

int soft_vcpu_get_sregs(struct accel_vcpu *v, struct accel_sregs *sregs)
{
	struct emu_state *st = &v->scratch;

	emu_get_state(atomic_load(&v->cpu), st);
	seg_from_emu(&sregs->cs, &st->seg[EMU_CS]);
	seg_from_emu(&sregs->ds, &st->seg[EMU_DS]);
	seg_from_emu(&sregs->es, &st->seg[EMU_ES]);
	seg_from_emu(&sregs->fs, &st->seg[EMU_FS]);
	seg_from_emu(&sregs->gs, &st->seg[EMU_GS]);
	seg_from_emu(&sregs->ss, &st->seg[EMU_SS]);
	seg_from_emu(&sregs->tr, &st->tr);
	seg_from_emu(&sregs->ldt, &st->ldtr);
	sregs->gdt.base = st->gdtr_base;
	sregs->gdt.limit = st->gdtr_limit;
	sregs->idt.base = st->idtr_base;
	sregs->idt.limit = st->idtr_limit;
	sregs->cr0 = st->cr0;
	sregs->cr2 = st->cr2;
	sregs->cr3 = st->cr3;
	sregs->cr4 = st->cr4;
	sregs->cr8 = lapic_get_tpr(v->lapic) >> 4;
	sregs->efer = st->efer;
	sregs->apic_base = lapic_get_apic_base(v->lapic);
	return 0;
}

int soft_vcpu_set_sregs(struct accel_vcpu *v, const struct accel_sregs *sregs)
{
	struct emu_cpu *cpu = atomic_load(&v->cpu);
	struct emu_state *st = &v->scratch;

	if (sregs->apic_base != lapic_get_apic_base(v->lapic) &&
	    lapic_set_apic_base(v->lapic, sregs->apic_base))
		return -EINVAL;
	update_apic_page(v);
	emu_get_state(cpu, st);
	seg_to_emu(&st->seg[EMU_CS], &sregs->cs);
	seg_to_emu(&st->seg[EMU_DS], &sregs->ds);
	seg_to_emu(&st->seg[EMU_ES], &sregs->es);
	seg_to_emu(&st->seg[EMU_FS], &sregs->fs);
	seg_to_emu(&st->seg[EMU_GS], &sregs->gs);
	seg_to_emu(&st->seg[EMU_SS], &sregs->ss);
	seg_to_emu(&st->tr, &sregs->tr);
	seg_to_emu(&st->ldtr, &sregs->ldt);
	st->gdtr_base = sregs->gdt.base;
	st->gdtr_limit = sregs->gdt.limit;
	st->idtr_base = sregs->idt.base;
	st->idtr_limit = sregs->idt.limit;
	st->cr0 = sregs->cr0;
	st->cr2 = sregs->cr2;
	st->cr3 = sregs->cr3;
	st->cr4 = sregs->cr4;
	st->cr8 = sregs->cr8;
	st->efer = sregs->efer;
	emu_set_state(cpu, st);
	lapic_set_tpr(v->lapic, (uint8_t)(sregs->cr8 << 4));
	v->cr8_seen = (uint8_t)(sregs->cr8 & 0xf);
	return 0;
}

int soft_vcpu_set_wait_for_sipi(struct accel_vcpu *v, bool wait)
{
	v->wait_sipi = wait;
	return 0;
}

void soft_vcpu_kick(struct accel_vcpu *v)
{
	atomic_store(&v->kicked, true);
	soft_vcpu_notify(v, EMU_EV_EXIT);
}

/* ---- run ---- */

/* INIT and SIPI from the local APIC (SDM Vol. 3 §8.4.4 / §10.4.7.3). */
static void take_init_sipi(struct accel_vcpu *v)
{
	struct emu_cpu *cpu = atomic_load(&v->cpu);
	struct emu_state *st = &v->scratch;
	uint8_t vec = 0;
	unsigned ev = lapic_take_events(v->lapic, &vec);

	if (ev & LAPIC_EV_INIT) {
		atomic_store(&v->nmi_latched, false);
		emu_clear_events(cpu, EMU_EV_NMI);
		reset_state(v, st);
		emu_set_state(cpu, st);
		lapic_init_reset(v->lapic);
		v->halted = false;
		/* the BSP restarts at the reset vector; APs wait for a SIPI */
		v->wait_sipi = !(lapic_get_apic_base(v->lapic) & LAPIC_BASE_BSP);
	}
	if ((ev & LAPIC_EV_SIPI) && v->wait_sipi) {
		reset_state(v, st);
		st->seg[EMU_CS].sel = (uint16_t)(vec << 8);
		st->seg[EMU_CS].base = (uint64_t)vec << 12;
		st->rip = 0;
		emu_set_state(cpu, st);
		v->wait_sipi = false;
		v->halted = false;
	}
}

static bool intr_deliverable(struct accel_vcpu *v)
{
	return lapic_intr_pending(v->lapic) ||
	       (lapic_accepts_extint(v->lapic) && i8259_output(v->acc->pic));
}

/* Fire due timers; returns the next deadline this vCPU must wake up for. */
static uint64_t run_timers(struct accel_vcpu *v, uint64_t now)
{
	struct accel *acc = v->acc;
	uint64_t next, pit;

	lapic_timer_check(v->lapic, now);
	i8254_check(acc->pit, now);
	next = lapic_timer_deadline(v->lapic);
	/* The PIT wakes vCPU 0, or the first vCPU when vCPU 0 cannot run. */
	if (v->index == 0 || (atomic_load(&acc->vcpus[0].stuck) && v->index == 1)) {
		pit = i8254_deadline(acc->pit);
		if (pit < next)
			next = pit;
	}
	return next;
}

/*
 * Host ns the last full (SOFT_BUDGET) runs of this thread's vCPU took, averaged; 0 until one
 * is measured. Per thread: a vCPU runs on one thread.
 */
static __thread uint64_t soft_budget_ns;

/* Instructions for the next run, so that it ends about when the next timer is due. */
static uint64_t run_budget(uint64_t now, uint64_t next)
{
	uint64_t left, n;

	if (next == UINT64_MAX || next <= now || !soft_budget_ns)
		return SOFT_BUDGET;
	left = next - now;
	if (left >= soft_budget_ns)
		return SOFT_BUDGET;
	n = SOFT_BUDGET * left / soft_budget_ns;
	return n < SOFT_MIN_BUDGET ? SOFT_MIN_BUDGET : n;
}

static uint64_t rflags(struct accel_vcpu *v)
{
	emu_get_state(atomic_load(&v->cpu), &v->scratch);
	return v->scratch.rflags;
}

static void describe_error(struct accel_vcpu *v, struct accel_exit *exit, const char *what)
{
	const char *why = emu_last_error(atomic_load(&v->cpu));

	snprintf(exit->msg, sizeof exit->msg, "software CPU: %s%s%s", what, why ? ": " : "",
		 why ? why : "");
}

int soft_vcpu_run(struct accel_vcpu *v, struct accel_exit *exit)
{
	struct emu_cpu *cpu = atomic_load(&v->cpu);
	enum emu_exit r;
	uint64_t next, now, budget, start = 0;
	uint32_t seq;
	bool stuck, full = false;

	exit->msg[0] = '\0';
	if (!cpu)
		return -EINVAL;
	if (soft_current != v) {
		/* futex timeouts for HLT end at the timer deadline, not up to 50 us later */
		prctl(PR_SET_TIMERSLACK, 1ul, 0, 0, 0);
		soft_current = v;
	}
	for (;;) {
		seq = atomic_load(&v->wake_seq);
		take_init_sipi(v);
		now = soft_now(v->acc);
		if (full) {
			uint64_t took = now - start;

			soft_budget_ns = soft_budget_ns ? (3 * soft_budget_ns + took) / 4 : took;
			full = false;
		}
		next = run_timers(v, now);
		if (intr_deliverable(v))
			emu_raise_events(cpu, EMU_EV_INTR);
		stuck = v->wait_sipi ||
			(v->halted && !(rflags(v) & RFLAGS_IF) &&
			 !(emu_pending_events(cpu) & EMU_EV_NMI));
		atomic_store(&v->stuck, stuck);
		if (atomic_exchange(&v->kicked, false)) {
			emu_clear_events(cpu, EMU_EV_EXIT);
			v->reported_halted = stuck;
			exit->reason = stuck ? ACCEL_EXIT_HALTED : ACCEL_EXIT_KICKED;
			return 0;
		}
		if (stuck) {
			if (!v->reported_halted) {
				v->reported_halted = true;
				exit->reason = ACCEL_EXIT_HALTED;
				return 0;
			}
			soft_sleep(v, seq, next);
			continue;
		}
		if (v->reported_halted) {
			/* tell the machine once that this vCPU runs again */
			v->reported_halted = false;
			exit->reason = ACCEL_EXIT_KICKED;
			return 0;
		}
		if (v->halted) {
			if (!(emu_pending_events(cpu) & EMU_EV_NMI) && !intr_deliverable(v)) {
				soft_sleep(v, seq, next);
				continue;
			}
			v->halted = false;
		}
		tpr_to_cr8(v, cpu);
		budget = run_budget(now, next);
		start = now;
		r = emu_run(cpu, budget);
		peek_state(v, cpu);
		switch (r) {
		case EMU_EXIT_BUDGET:
			full = budget == SOFT_BUDGET;
			break;
		case EMU_EXIT_HLT:
			v->halted = true;
			break;
		case EMU_EXIT_EVENT:
			emu_clear_events(cpu, EMU_EV_EXIT);
			break;
		case EMU_EXIT_TRIPLE_FAULT:
			describe_error(v, exit, "triple fault");
			exit->reason = ACCEL_EXIT_SHUTDOWN;
			return 0;
		case EMU_EXIT_BUS_STOP:
			if (v->tpr_written) {
				v->tpr_written = false;
				break;
			}
			exit->reason = ACCEL_EXIT_KICKED;
			return 0;
		case EMU_EXIT_UNSUPPORTED:
		default:
			describe_error(v, exit, "cannot continue");
			exit->reason = ACCEL_EXIT_ERROR;
			return 0;
		}
	}
}
