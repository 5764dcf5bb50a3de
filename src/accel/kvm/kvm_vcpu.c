/*
 * kvm_vcpu.c: the KVM accelerator's vCPU half: KVM_CREATE_VCPU, the mmap'd kvm_run, register
 * transfer, and the KVM_RUN loop. Port I/O (string forms included) and MMIO exits go to the
 * machine's accel_io_ops; reset, power-off and triple fault are reported; an instruction KVM
 * cannot emulate runs on the interpreter (kvm_fallback.c); anything else stops with the
 * reason, CS:RIP and the instruction bytes (found through KVM_TRANSLATE). Halting
 * for good happens inside KVM (in-kernel LAPIC), so a 200 ms per-vCPU timer signal makes
 * KVM_RUN return and KVM_GET_MP_STATE plus RFLAGS.IF tell whether the vCPU can still wake.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <Zydis/Zydis.h>

#include "accel/kvm/kvm_emu.h"
#include "accel/kvm/kvm_internal.h"

#define KVM_HALT_POLL_NS 200000000L
#define RFLAGS_IF (1ULL << 9)
#define CR0_PE 1ULL
#define EFER_LMA (1ULL << 10)

static int kvm_kick_signal(void)
{
	return SIGRTMIN + 1;
}

static void kvm_kick_handler(int sig)
{
	(void)sig;
}

static pthread_once_t kvm_signal_once = PTHREAD_ONCE_INIT;
static int kvm_signal_err;

/* SA_RESTART: other system calls on the vCPU thread carry on; KVM_RUN still returns EINTR. */
static void kvm_install_signal(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = kvm_kick_handler;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(kvm_kick_signal(), &sa, NULL) < 0)
		kvm_signal_err = -errno;
}

int kvm_vcpu_create(struct accel *a, int index, struct accel_vcpu **out)
{
	struct itimerspec its = {
		.it_interval = { .tv_nsec = KVM_HALT_POLL_NS },
		.it_value = { .tv_nsec = KVM_HALT_POLL_NS },
	};
	struct sigevent sev;
	struct accel_vcpu *v;
	sigset_t set;
	int ret;

	*out = NULL;
	if (index < 0 || index >= a->ncpus)
		return -EINVAL;
	pthread_once(&kvm_signal_once, kvm_install_signal);
	if (kvm_signal_err)
		return kvm_signal_err;
	sigemptyset(&set);
	sigaddset(&set, kvm_kick_signal());
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	v = calloc(1, sizeof *v);
	if (!v)
		return -ENOMEM;
	v->common.impl = &accel_kvm_impl;
	v->accel = a;
	v->index = index;
	v->thread = pthread_self();
	v->run = MAP_FAILED;
	v->fd = ioctl(a->vm_fd, KVM_CREATE_VCPU, (unsigned long)a->apic_ids[index]);
	if (v->fd < 0) {
		ret = -errno;
		goto fail;
	}
	v->run = mmap(NULL, (size_t)a->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		ret = -errno;
		goto fail;
	}
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = kvm_kick_signal();
	sev._sigev_un._tid = gettid();
	if (timer_create(CLOCK_MONOTONIC, &sev, &v->halt_timer) < 0) {
		ret = -errno;
		goto fail;
	}
	v->has_timer = true;
	if (timer_settime(v->halt_timer, 0, &its, NULL) < 0) {
		ret = -errno;
		goto fail;
	}
	*out = v;
	return 0;
fail:
	kvm_vcpu_destroy(v);
	return ret;
}

void kvm_vcpu_destroy(struct accel_vcpu *v)
{
	kvm_emu_vcpu_destroy(v);
	if (v->has_timer)
		timer_delete(v->halt_timer);
	if (v->run != MAP_FAILED)
		munmap(v->run, (size_t)v->accel->run_size);
	if (v->fd >= 0)
		close(v->fd);
	free(v);
}

int kvm_vcpu_set_cpuid(struct accel_vcpu *v, const struct accel_cpuid_entry *ents, int n)
{
	struct kvm_cpuid2 *c;
	int ret = 0;

	if (n < 0)
		return -EINVAL;
	c = calloc(1, sizeof *c + (size_t)n * sizeof c->entries[0]);
	if (!c)
		return -ENOMEM;
	c->nent = (uint32_t)n;
	for (int i = 0; i < n; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		e->function = ents[i].function;
		e->index = ents[i].index;
		e->flags = (ents[i].flags & ACCEL_CPUID_SIGNIFICANT_INDEX)
				   ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0;
		e->eax = ents[i].eax;
		e->ebx = ents[i].ebx;
		e->ecx = ents[i].ecx;
		e->edx = ents[i].edx;
	}
	if (ioctl(v->fd, KVM_SET_CPUID2, c) < 0)
		ret = -errno;
	free(c);
	if (ret == 0 && n <= ACCEL_CPUID_MAX_ENTRIES) {
		/* the fallback's interpreter answers CPUID and checks features from it */
		memcpy(v->cpuid, ents, sizeof ents[0] * (size_t)n);
		v->ncpuid = n;
	}
	return ret;
}

int kvm_vcpu_get_regs(struct accel_vcpu *v, struct accel_regs *r)
{
	struct kvm_regs k;

	if (ioctl(v->fd, KVM_GET_REGS, &k) < 0)
		return -errno;
	*r = (struct accel_regs){
		.rax = k.rax, .rbx = k.rbx, .rcx = k.rcx, .rdx = k.rdx,
		.rsi = k.rsi, .rdi = k.rdi, .rsp = k.rsp, .rbp = k.rbp,
		.r8 = k.r8, .r9 = k.r9, .r10 = k.r10, .r11 = k.r11,
		.r12 = k.r12, .r13 = k.r13, .r14 = k.r14, .r15 = k.r15,
		.rip = k.rip, .rflags = k.rflags,
	};
	return 0;
}

int kvm_vcpu_set_regs(struct accel_vcpu *v, const struct accel_regs *r)
{
	struct kvm_regs k = {
		.rax = r->rax, .rbx = r->rbx, .rcx = r->rcx, .rdx = r->rdx,
		.rsi = r->rsi, .rdi = r->rdi, .rsp = r->rsp, .rbp = r->rbp,
		.r8 = r->r8, .r9 = r->r9, .r10 = r->r10, .r11 = r->r11,
		.r12 = r->r12, .r13 = r->r13, .r14 = r->r14, .r15 = r->r15,
		.rip = r->rip, .rflags = r->rflags,
	};

	if (ioctl(v->fd, KVM_SET_REGS, &k) < 0)
		return -errno;
	return 0;
}

static void seg_from_kvm(struct accel_segment *a, const struct kvm_segment *k)
{
	*a = (struct accel_segment){
		.base = k->base, .limit = k->limit, .selector = k->selector, .type = k->type,
		.present = k->present, .dpl = k->dpl, .db = k->db, .s = k->s, .l = k->l,
		.g = k->g, .avl = k->avl, .unusable = k->unusable,
	};
}

static void seg_to_kvm(struct kvm_segment *k, const struct accel_segment *a)
{
	*k = (struct kvm_segment){
		.base = a->base, .limit = a->limit, .selector = a->selector, .type = a->type,
		.present = a->present, .dpl = a->dpl, .db = a->db, .s = a->s, .l = a->l,
		.g = a->g, .avl = a->avl, .unusable = a->unusable,
	};
}

int kvm_vcpu_get_sregs(struct accel_vcpu *v, struct accel_sregs *s)
{
	struct kvm_sregs k;

	if (ioctl(v->fd, KVM_GET_SREGS, &k) < 0)
		return -errno;
	seg_from_kvm(&s->cs, &k.cs);
	seg_from_kvm(&s->ds, &k.ds);
	seg_from_kvm(&s->es, &k.es);
	seg_from_kvm(&s->fs, &k.fs);
	seg_from_kvm(&s->gs, &k.gs);
	seg_from_kvm(&s->ss, &k.ss);
	seg_from_kvm(&s->tr, &k.tr);
	seg_from_kvm(&s->ldt, &k.ldt);
	s->gdt = (struct accel_dtable){ .base = k.gdt.base, .limit = k.gdt.limit };
	s->idt = (struct accel_dtable){ .base = k.idt.base, .limit = k.idt.limit };
	s->cr0 = k.cr0;
	s->cr2 = k.cr2;
	s->cr3 = k.cr3;
	s->cr4 = k.cr4;
	s->cr8 = k.cr8;
	s->efer = k.efer;
	s->apic_base = k.apic_base;
	return 0;
}

/* apic_base 0 keeps the vCPU's own (the in-kernel LAPIC's enable and BSP bits). */
int kvm_vcpu_set_sregs(struct accel_vcpu *v, const struct accel_sregs *s)
{
	struct kvm_sregs k;

	if (ioctl(v->fd, KVM_GET_SREGS, &k) < 0)
		return -errno;
	seg_to_kvm(&k.cs, &s->cs);
	seg_to_kvm(&k.ds, &s->ds);
	seg_to_kvm(&k.es, &s->es);
	seg_to_kvm(&k.fs, &s->fs);
	seg_to_kvm(&k.gs, &s->gs);
	seg_to_kvm(&k.ss, &s->ss);
	seg_to_kvm(&k.tr, &s->tr);
	seg_to_kvm(&k.ldt, &s->ldt);
	k.gdt.base = s->gdt.base;
	k.gdt.limit = s->gdt.limit;
	k.idt.base = s->idt.base;
	k.idt.limit = s->idt.limit;
	k.cr0 = s->cr0;
	k.cr2 = s->cr2;
	k.cr3 = s->cr3;
	k.cr4 = s->cr4;
	k.cr8 = s->cr8;
	k.efer = s->efer;
	if (s->apic_base)
		k.apic_base = s->apic_base;
	if (ioctl(v->fd, KVM_SET_SREGS, &k) < 0)
		return -errno;
	return 0;
}

int kvm_vcpu_set_wait_for_sipi(struct accel_vcpu *v, bool wait)
{
	struct kvm_mp_state mp = {
		.mp_state = wait ? KVM_MP_STATE_INIT_RECEIVED : KVM_MP_STATE_RUNNABLE,
	};

	if (ioctl(v->fd, KVM_SET_MP_STATE, &mp) < 0)
		return -errno;
	return 0;
}

void kvm_vcpu_kick(struct accel_vcpu *v)
{
	atomic_store(&v->kicked, true);
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	pthread_kill(v->thread, kvm_kick_signal());
}

/*
 * True when the vCPU cannot run again by itself: halted with RFLAGS.IF clear, or (an AP)
 * still waiting for INIT/SIPI.
 */
static bool kvm_vcpu_stuck(struct accel_vcpu *v)
{
	struct kvm_mp_state mp;
	struct kvm_regs regs;

	if (ioctl(v->fd, KVM_GET_MP_STATE, &mp) < 0)
		return false;
	if (mp.mp_state == KVM_MP_STATE_INIT_RECEIVED ||
	    mp.mp_state == KVM_MP_STATE_UNINITIALIZED)
		return true;
	if (mp.mp_state != KVM_MP_STATE_HALTED)
		return false;
	if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0)
		return false;
	return !(regs.rflags & RFLAGS_IF);
}

/* Fetch up to `max` instruction bytes at the linear address, page by page. */
static size_t kvm_fetch_insn(struct accel_vcpu *v, uint64_t linear, uint8_t *buf, size_t max)
{
	size_t got = 0;

	while (got < max) {
		struct kvm_translation tr = { .linear_address = linear + got };
		size_t chunk = 4096 - ((linear + got) & 4095);

		if (chunk > max - got)
			chunk = max - got;
		if (ioctl(v->fd, KVM_TRANSLATE, &tr) < 0 || !tr.valid)
			break;
		if (kvm_read_phys(v->accel, tr.physical_address, buf + got, chunk))
			break;
		got += chunk;
	}
	return got;
}

#define RFLAGS_VM (1ULL << 17)

int kvm_zydis_mode(const struct kvm_sregs *sregs, uint64_t rflags, const char **name)
{
	const char *mode;
	ZydisMachineMode zmode;

	if (!(sregs->cr0 & CR0_PE)) {
		mode = "real";
		zmode = ZYDIS_MACHINE_MODE_REAL_16;
	} else if ((sregs->efer & EFER_LMA) && sregs->cs.l) {
		mode = "long";
		zmode = ZYDIS_MACHINE_MODE_LONG_64;
	} else if (sregs->efer & EFER_LMA) {
		mode = "compatibility";
		zmode = sregs->cs.db ? ZYDIS_MACHINE_MODE_LONG_COMPAT_32
				     : ZYDIS_MACHINE_MODE_LONG_COMPAT_16;
	} else if (rflags & RFLAGS_VM) {
		mode = "virtual-8086";
		zmode = ZYDIS_MACHINE_MODE_REAL_16;
	} else {
		mode = "protected";
		zmode = sregs->cs.db ? ZYDIS_MACHINE_MODE_LEGACY_32 : ZYDIS_MACHINE_MODE_LEGACY_16;
	}
	if (name)
		*name = mode;
	return (int)zmode;
}

/* Fill exit->msg: what happened, the CPU mode, CS:RIP, the bytes there and their decoding. */
void kvm_describe(struct accel_vcpu *v, struct accel_exit *exit, const char *what)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	ZydisDisassembledInstruction insn;
	ZydisMachineMode zmode;
	const char *mode;
	uint8_t bytes[15];
	size_t n, len;

	exit->reason = ACCEL_EXIT_ERROR;
	if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0 || ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0) {
		snprintf(exit->msg, sizeof exit->msg, "%s (registers unreadable: %s)", what,
			 strerror(errno));
		return;
	}
	zmode = (ZydisMachineMode)kvm_zydis_mode(&sregs, regs.rflags, &mode);
	len = (size_t)snprintf(exit->msg, sizeof exit->msg,
			       "%s; %s mode, CS:RIP %04x:%016llx", what, mode, sregs.cs.selector,
			       (unsigned long long)regs.rip);
	n = kvm_fetch_insn(v, sregs.cs.base + regs.rip, bytes, sizeof bytes);
	if (n == 0) {
		snprintf(exit->msg + len, sizeof exit->msg - len, ", code not readable");
		return;
	}
	len += (size_t)snprintf(exit->msg + len, sizeof exit->msg - len, ", bytes");
	for (size_t i = 0; i < n && len < sizeof exit->msg; i++)
		len += (size_t)snprintf(exit->msg + len, sizeof exit->msg - len, " %02x",
					bytes[i]);
	if (len < sizeof exit->msg &&
	    ZYAN_SUCCESS(ZydisDisassembleIntel(zmode, regs.rip, bytes, n, &insn)))
		snprintf(exit->msg + len, sizeof exit->msg - len, " (%s)", insn.text);
}

static const char *kvm_internal_error_name(uint32_t suberror)
{
	switch (suberror) {
	case KVM_INTERNAL_ERROR_EMULATION:
		return "instruction emulation failed";
	case KVM_INTERNAL_ERROR_SIMUL_EX:
		return "exception while delivering an exception";
	case KVM_INTERNAL_ERROR_DELIVERY_EV:
		return "exit during event delivery";
	case KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON:
		return "unexpected hardware exit";
	default:
		return "internal error";
	}
}

/* Port I/O: `count` items of `size` bytes in the kvm_run data area (rep ins/outs). */
static int kvm_handle_pio(struct accel_vcpu *v)
{
	const struct accel_io_ops *io = v->accel->io;
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool write = run->io.direction == KVM_EXIT_IO_OUT;
	unsigned size = run->io.size;

	if (size != 1 && size != 2 && size != 4)
		return -EINVAL;
	if (run->io.data_offset + (uint64_t)run->io.count * size > (uint64_t)v->accel->run_size)
		return -EINVAL;
	for (uint32_t i = 0; i < run->io.count; i++, data += size) {
		uint32_t val = 0;

		if (write)
			memcpy(&val, data, size);
		if (io->pio(io->opaque, v->index, run->io.port, size, write, &val) < 0)
			return 1;
		if (!write)
			memcpy(data, &val, size);
	}
	return 0;
}

static int kvm_handle_mmio(struct accel_vcpu *v)
{
	const struct accel_io_ops *io = v->accel->io;
	struct kvm_run *run = v->run;
	unsigned len = run->mmio.len;
	uint64_t val = 0;

	if (len == 0 || len > 8)
		return -EINVAL;
	if (run->mmio.is_write)
		memcpy(&val, run->mmio.data, len);
	if (io->mmio(io->opaque, v->index, run->mmio.phys_addr, len, run->mmio.is_write != 0,
		     &val) < 0)
		return 1;
	if (!run->mmio.is_write)
		memcpy(run->mmio.data, &val, len);
	return 0;
}

/*
 * An MSR KVM does not know: with -w it reads as 0 and writes are dropped; otherwise (only
 * x86.verbosemsr asked for the exit) the guest gets the #GP it would have had.
 */
static void kvm_handle_msr(struct accel_vcpu *v)
{
	struct kvm_run *run = v->run;
	bool write = run->exit_reason == KVM_EXIT_X86_WRMSR;

	if (v->accel->verbose_msrs && write)
		fprintf(stderr, "khyve: vcpu %d: write 0x%llx to unknown MSR 0x%x (%s)\n",
			v->index, (unsigned long long)run->msr.data, run->msr.index,
			v->accel->ignore_msrs ? "ignored" : "#GP");
	else if (v->accel->verbose_msrs)
		fprintf(stderr, "khyve: vcpu %d: read of unknown MSR 0x%x (%s)\n", v->index,
			run->msr.index, v->accel->ignore_msrs ? "0" : "#GP");
	run->msr.error = v->accel->ignore_msrs ? 0 : 1;
	if (!write)
		run->msr.data = 0;
}

/*
 * Report ACCEL_EXIT_HALTED while the vCPU is stuck, and once (as KICKED) when it was and no
 * longer is, so the machine's count of halted vCPUs stays true.
 */
static bool kvm_halt_check(struct accel_vcpu *v, struct accel_exit *exit)
{
	bool stuck = kvm_vcpu_stuck(v);

	if (stuck || v->reported_halted) {
		exit->reason = stuck ? ACCEL_EXIT_HALTED : ACCEL_EXIT_KICKED;
		v->reported_halted = stuck;
		return true;
	}
	return false;
}

/*
 * KVM_RUN returned EINTR (a kick, the halt timer, or a stray signal). Returns true when
 * accel_vcpu_run must return with exit->reason set.
 */
static bool kvm_interrupted(struct accel_vcpu *v, struct accel_exit *exit)
{
	__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	if (atomic_exchange(&v->kicked, false)) {
		exit->reason = ACCEL_EXIT_KICKED;
		return true;
	}
	return kvm_halt_check(v, exit);
}

int kvm_vcpu_run(struct accel_vcpu *v, struct accel_exit *exit)
{
	struct kvm_run *run = v->run;
	char what[160];
	int ret;

	exit->msg[0] = '\0';
	for (;;) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				if (kvm_interrupted(v, exit))
					return 0;
				continue;
			}
			snprintf(what, sizeof what, "KVM_RUN failed: %s", strerror(errno));
			kvm_describe(v, exit, what);
			return 0;
		}
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			ret = kvm_handle_pio(v);
			break;
		case KVM_EXIT_MMIO:
			ret = kvm_handle_mmio(v);
			break;
		case KVM_EXIT_X86_RDMSR:
		case KVM_EXIT_X86_WRMSR:
			kvm_handle_msr(v);
			continue;
		case KVM_EXIT_INTR:
			if (kvm_interrupted(v, exit))
				return 0;
			continue;
		case KVM_EXIT_HLT:
			if (kvm_halt_check(v, exit))
				return 0;
			continue;
		case KVM_EXIT_SHUTDOWN:
			exit->reason = ACCEL_EXIT_SHUTDOWN;
			return 0;
		case KVM_EXIT_SYSTEM_EVENT:
			if (run->system_event.type == KVM_SYSTEM_EVENT_RESET) {
				exit->reason = ACCEL_EXIT_RESET;
				return 0;
			}
			if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN) {
				exit->reason = ACCEL_EXIT_POWEROFF;
				return 0;
			}
			snprintf(what, sizeof what, "KVM system event %u",
				 run->system_event.type);
			kvm_describe(v, exit, what);
			return 0;
		case KVM_EXIT_INTERNAL_ERROR:
			if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION) {
				/* KVM refused an instruction: the software CPU runs it */
				if (kvm_emulate(v, exit))
					return 0;
				continue;
			}
			snprintf(what, sizeof what, "KVM %s (suberror %u)",
				 kvm_internal_error_name(run->internal.suberror),
				 run->internal.suberror);
			kvm_describe(v, exit, what);
			return 0;
		case KVM_EXIT_FAIL_ENTRY:
			snprintf(what, sizeof what, "VM entry failed (hardware reason 0x%llx)",
				 (unsigned long long)
					 run->fail_entry.hardware_entry_failure_reason);
			kvm_describe(v, exit, what);
			return 0;
		default:
			snprintf(what, sizeof what, "unexpected KVM exit %u", run->exit_reason);
			kvm_describe(v, exit, what);
			return 0;
		}
		if (ret > 0) {
			/* The machine asked this vCPU to stop (strict I/O...): it checks why. */
			exit->reason = ACCEL_EXIT_KICKED;
			return 0;
		}
		if (ret < 0) {
			snprintf(what, sizeof what, "malformed %s exit from KVM",
				 run->exit_reason == KVM_EXIT_IO ? "port I/O" : "MMIO");
			kvm_describe(v, exit, what);
			return 0;
		}
	}
}
