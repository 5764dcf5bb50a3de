/*
 * kvm_fallback.c: instructions KVM refuses (KVM_EXIT_INTERNAL_ERROR with
 * KVM_INTERNAL_ERROR_EMULATION: a KVM without hardware virtualization, kvm_pvm, stops on
 * fninit, cmpxchg16b, xrstor, SSE...) run on khyve's interpreter: read the vCPU's state
 * (regs, sregs, FPU, debug registers, events, XCR0, MSRs), step one instruction against
 * guest memory (the interpreter walks the guest page tables) and the machine's port/MMIO
 * callbacks, write back what changed, resume. Counts per mnemonic for accel_stats.
 * Interrupts stay KVM's (in-kernel LAPIC): the interpreter never acknowledges one. Left out:
 * an emulated access to the in-kernel LAPIC/IOAPIC pages reaches the machine's MMIO
 * handlers, which do not have them (reads all ones); KVM has no call to forward it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <Zydis/Zydis.h>

#include "accel/kvm/kvm_emu.h"
#include "accel/kvm/kvm_internal.h"

#define MSR_IA32_TSC 0x10u

/* ---- the interpreter's bus: guest memory, devices, CPUID and MSRs of this vCPU ---- */

static uint8_t *fb_page_ptr(void *opaque, uint64_t gpa, bool write)
{
	struct accel_vcpu *v = opaque;

	return kvm_slot_page(v->accel, gpa, write);
}

static int fb_mmio(void *opaque, uint64_t gpa, unsigned size, bool write, uint64_t *val)
{
	struct accel_vcpu *v = opaque;
	const struct accel_io_ops *io = v->accel->io;

	return io->mmio(io->opaque, v->index, gpa, size, write, val) < 0 ? -1 : 0;
}

static int fb_pio(void *opaque, uint16_t port, unsigned size, bool write, uint32_t *val)
{
	struct accel_vcpu *v = opaque;
	const struct accel_io_ops *io = v->accel->io;

	return io->pio(io->opaque, v->index, port, size, write, val) < 0 ? -1 : 0;
}

/* Interrupts are delivered by KVM's LAPIC when the vCPU resumes. */
static int fb_intr_ack(void *opaque)
{
	(void)opaque;
	return -1;
}

/* This vCPU's table, looked up as KVM does (index only where significant). */
static void fb_cpuid(void *opaque, uint32_t leaf, uint32_t subleaf, uint32_t out[4])
{
	struct accel_vcpu *v = opaque;

	out[0] = out[1] = out[2] = out[3] = 0;
	for (int i = 0; i < v->ncpuid; i++) {
		const struct accel_cpuid_entry *e = &v->cpuid[i];

		if (e->function != leaf ||
		    ((e->flags & ACCEL_CPUID_SIGNIFICANT_INDEX) && e->index != subleaf))
			continue;
		out[0] = e->eax;
		out[1] = e->ebx;
		out[2] = e->ecx;
		out[3] = e->edx;
		return;
	}
}

/* One MSR through KVM_GET_MSRS/KVM_SET_MSRS; -1 (the guest gets #GP) when KVM refuses. */
static int fb_msr(void *opaque, uint32_t index, bool write, uint64_t *val)
{
	struct accel_vcpu *v = opaque;
	union {
		struct kvm_msrs h;
		uint8_t bytes[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
	} m;

	memset(&m, 0, sizeof m);
	m.h.nmsrs = 1;
	m.h.entries[0].index = index;
	m.h.entries[0].data = write ? *val : 0;
	if (ioctl(v->fd, write ? KVM_SET_MSRS : KVM_GET_MSRS, &m) != 1) {
		/* as kvm_handle_msr: -w reads 0 and drops writes, else #GP */
		if (!v->accel->ignore_msrs)
			return -1;
		if (!write)
			*val = 0;
	}
	if (!write)
		*val = m.h.entries[0].data;
	return 0;
}

static uint64_t fb_tsc(void *opaque)
{
	uint64_t tsc = 0;

	fb_msr(opaque, MSR_IA32_TSC, false, &tsc);
	return tsc;
}

/* The vCPU's interpreter, made on first use (on the vCPU's thread). */
static struct emu_cpu *fb_cpu(struct accel_vcpu *v)
{
	struct accel *a = v->accel;
	struct emu_bus bus = {
		.opaque = v, .page_ptr = fb_page_ptr, .mmio = fb_mmio, .pio = fb_pio,
		.intr_ack = fb_intr_ack, .cpuid = fb_cpuid, .msr = fb_msr, .tsc = fb_tsc,
	};

	if (v->emu)
		return v->emu;
	pthread_mutex_lock(&a->emu_lock);
	if (!a->emu_machine)
		a->emu_machine = emu_machine_create();
	pthread_mutex_unlock(&a->emu_lock);
	if (a->emu_machine)
		v->emu = emu_cpu_create(a->emu_machine, &bus);
	return v->emu;
}

/* ---- KVM state in and out ---- */

#define FB_MSRS_BYTES (sizeof(struct kvm_msrs) + KVM_EMU_NMSRS * sizeof(struct kvm_msr_entry))

/* KVM_GET_MSRS stops at the first MSR it does not know: skip that one and go on. */
static int fb_read_msrs(struct accel_vcpu *v, struct kvm_emu_regs *k)
{
	union {
		struct kvm_msrs h;
		uint8_t bytes[FB_MSRS_BYTES];
	} m;
	int i = 0;

	while (i < KVM_EMU_NMSRS) {
		int r;

		memset(&m, 0, sizeof m);
		m.h.nmsrs = (uint32_t)(KVM_EMU_NMSRS - i);
		for (int j = i; j < KVM_EMU_NMSRS; j++)
			m.h.entries[j - i].index = kvm_emu_msr_index[j];
		r = ioctl(v->fd, KVM_GET_MSRS, &m);
		if (r < 0)
			return -errno;
		for (int j = 0; j < r; j++) {
			k->msr[i + j] = m.h.entries[j].data;
			k->msr_valid |= 1ull << (i + j);
		}
		i += r + 1;
	}
	return 0;
}

static int fb_read(struct accel_vcpu *v, struct kvm_emu_regs *k)
{
	memset(k, 0, sizeof *k);
	if (ioctl(v->fd, KVM_GET_REGS, &k->regs) < 0 ||
	    ioctl(v->fd, KVM_GET_SREGS, &k->sregs) < 0 ||
	    ioctl(v->fd, KVM_GET_FPU, &k->fpu) < 0 ||
	    ioctl(v->fd, KVM_GET_DEBUGREGS, &k->debug) < 0 ||
	    ioctl(v->fd, KVM_GET_VCPU_EVENTS, &k->events) < 0)
		return -errno;
	k->xcr0 = 1;
	if (v->accel->has_xcrs) {
		struct kvm_xcrs x;

		if (ioctl(v->fd, KVM_GET_XCRS, &x) < 0)
			return -errno;
		for (uint32_t i = 0; i < x.nr_xcrs && i < KVM_MAX_XCRS; i++)
			if (x.xcrs[i].xcr == 0)
				k->xcr0 = x.xcrs[i].value;
	}
	return fb_read_msrs(v, k);
}

/* Write back what the instruction changed (the interpreter cannot change XCR0). */
static int fb_write(struct accel_vcpu *v, const struct kvm_emu_regs *old,
		    const struct kvm_emu_regs *k)
{
	union {
		struct kvm_msrs h;
		uint8_t bytes[FB_MSRS_BYTES];
	} m;
	int n = 0;

	if (ioctl(v->fd, KVM_SET_REGS, &k->regs) < 0)
		return -errno;
	if (memcmp(&old->sregs, &k->sregs, sizeof k->sregs) &&
	    ioctl(v->fd, KVM_SET_SREGS, &k->sregs) < 0)
		return -errno;
	if (memcmp(&old->fpu, &k->fpu, sizeof k->fpu) && ioctl(v->fd, KVM_SET_FPU, &k->fpu) < 0)
		return -errno;
	if (memcmp(&old->debug, &k->debug, sizeof k->debug) &&
	    ioctl(v->fd, KVM_SET_DEBUGREGS, &k->debug) < 0)
		return -errno;
	if (old->events.interrupt.shadow != k->events.interrupt.shadow ||
	    old->events.nmi.masked != k->events.nmi.masked) {
		struct kvm_vcpu_events e = k->events;

		e.flags |= KVM_VCPUEVENT_VALID_SHADOW;
		if (ioctl(v->fd, KVM_SET_VCPU_EVENTS, &e) < 0)
			return -errno;
	}
	memset(&m, 0, sizeof m);
	for (int i = 0; i < KVM_EMU_NMSRS; i++)
		if ((k->msr_valid >> i & 1) && k->msr[i] != old->msr[i])
			m.h.entries[n++] = (struct kvm_msr_entry){ .index = kvm_emu_msr_index[i],
								   .data = k->msr[i] };
	m.h.nmsrs = (uint32_t)n;
	if (n && ioctl(v->fd, KVM_SET_MSRS, &m) != n)
		return -EIO;
	return 0;
}

/*
 * The instruction's bytes (for its mnemonic), found through KVM_TRANSLATE; the pages they
 * lie on are dropped from the interpreter's code cache, since the guest may have rewritten
 * them while KVM ran it.
 */
static ZydisMnemonic fb_mnemonic(struct accel_vcpu *v, const struct kvm_emu_regs *k)
{
	ZydisMachineMode mode = (ZydisMachineMode)kvm_zydis_mode(&k->sregs, k->regs.rflags, NULL);
	uint64_t linear = k->regs.rip;
	ZydisDecodedInstruction insn;
	ZydisDecoder dec;
	uint8_t bytes[15];
	size_t got = 0;

	if (mode != ZYDIS_MACHINE_MODE_LONG_64)
		linear = k->sregs.cs.base + (uint32_t)k->regs.rip;
	while (got < sizeof bytes) {
		struct kvm_translation tr = { .linear_address = linear + got };
		size_t chunk = 4096 - ((linear + got) & 4095);

		if (chunk > sizeof bytes - got)
			chunk = sizeof bytes - got;
		if (ioctl(v->fd, KVM_TRANSLATE, &tr) < 0 || !tr.valid)
			break;
		emu_machine_invalidate(v->accel->emu_machine, tr.physical_address, chunk);
		if (kvm_read_phys(v->accel, tr.physical_address, bytes + got, chunk))
			break;
		got += chunk;
	}
	if (got == 0) {
		/* not even the first byte translates: forget all cached code to be safe */
		emu_machine_invalidate(v->accel->emu_machine, 0, UINT64_MAX);
		return ZYDIS_MNEMONIC_INVALID;
	}
	if (!ZYAN_SUCCESS(ZydisDecoderInit(&dec, mode, mode == ZYDIS_MACHINE_MODE_LONG_64
							   ? ZYDIS_STACK_WIDTH_64
							   : ZYDIS_STACK_WIDTH_32)) ||
	    !ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&dec, NULL, bytes, got, &insn)))
		return ZYDIS_MNEMONIC_INVALID;
	return insn.mnemonic;
}

int kvm_emulate(struct accel_vcpu *v, struct accel_exit *exit)
{
	struct accel *a = v->accel;
	struct kvm_emu_regs before, after;
	struct emu_cpu *cpu = fb_cpu(v);
	ZydisMnemonic mn;
	enum emu_exit x;
	char what[400];
	int ret;

	if (!cpu) {
		kvm_describe(v, exit, "KVM could not emulate an instruction, and the software "
				      "CPU cannot start (out of memory)");
		return 1;
	}
	ret = fb_read(v, &before);
	if (ret) {
		snprintf(what, sizeof what, "KVM could not emulate an instruction; reading the "
					    "vCPU state for the software CPU failed: %s",
			 strerror(-ret));
		kvm_describe(v, exit, what);
		return 1;
	}
	mn = fb_mnemonic(v, &before);
	x = kvm_emu_step(cpu, &before, &after);
	if (x == EMU_EXIT_TRIPLE_FAULT) {
		exit->reason = ACCEL_EXIT_SHUTDOWN;
		return 1;
	}
	if (x == EMU_EXIT_UNSUPPORTED) {
		snprintf(what, sizeof what, "KVM could not emulate an instruction, nor could the "
					    "software CPU: %s", emu_last_error(cpu));
		kvm_describe(v, exit, what);
		return 1;
	}
	ret = fb_write(v, &before, &after);
	if (ret) {
		snprintf(what, sizeof what, "the software CPU ran an instruction KVM could not "
					    "emulate; writing the vCPU state back failed: %s",
			 strerror(-ret));
		kvm_describe(v, exit, what);
		return 1;
	}
	atomic_fetch_add(&a->emu_counts[mn <= ZYDIS_MNEMONIC_MAX_VALUE ? mn : 0], 1);
	if (x == EMU_EXIT_HLT) {
		/* HLT itself: let KVM's LAPIC wake the vCPU. */
		struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_HALTED };

		ioctl(v->fd, KVM_SET_MP_STATE, &mp);
	}
	if (x == EMU_EXIT_BUS_STOP) {
		exit->reason = ACCEL_EXIT_KICKED;	/* a device asked the vCPU to stop */
		return 1;
	}
	return 0;
}

void kvm_emu_vcpu_destroy(struct accel_vcpu *v)
{
	if (v->emu)
		emu_cpu_destroy(v->emu);
	v->emu = NULL;
}

void kvm_emu_destroy(struct accel *a)
{
	if (a->stats) {
		char line[4096];

		kvm_emu_stats_line(a->emu_counts, ZYDIS_MNEMONIC_MAX_VALUE + 1, line, sizeof line);
		fprintf(stderr, "khyve: accel_stats: %s\n", line);
	}
	if (a->emu_machine)
		emu_machine_destroy(a->emu_machine);
	a->emu_machine = NULL;
}
