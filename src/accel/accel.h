/*
 * accel.h: the one boundary between the machine (src/vmm) and whatever runs guest code.
 * Two implementations: accel/kvm (Linux KVM with its in-kernel LAPIC, IOAPIC, PIC and PIT)
 * and accel/soft (khyve's interpreter, src/x86/emu, with khyve's own interrupt controllers).
 * Comparable to bhyve's libvmmapi: nothing KVM- or interpreter-specific leaks through here.
 */
#ifndef KHYVE_ACCEL_H
#define KHYVE_ACCEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct accel;
struct accel_vcpu;

enum accel_kind { ACCEL_AUTO, ACCEL_KVM, ACCEL_SOFT };

/* A segment register in KVM's unpacked form (also used by the software CPU). */
struct accel_segment {
	uint64_t base;
	uint32_t limit;		/* byte granular, already scaled by G */
	uint16_t selector;
	uint8_t type, present, dpl, db, s, l, g, avl, unusable;
};

struct accel_dtable {
	uint64_t base;
	uint16_t limit;
};

struct accel_regs {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rip, rflags;
};

struct accel_sregs {
	struct accel_segment cs, ds, es, fs, gs, ss, tr, ldt;
	struct accel_dtable gdt, idt;
	uint64_t cr0, cr2, cr3, cr4, cr8, efer, apic_base;
};

struct accel_cpuid_entry {
	uint32_t function, index;
	uint32_t flags;		/* ACCEL_CPUID_SIGNIFICANT_INDEX when index matters */
	uint32_t eax, ebx, ecx, edx;
};
#define ACCEL_CPUID_SIGNIFICANT_INDEX 1u
#define ACCEL_CPUID_MAX_ENTRIES 100

/*
 * Port and MMIO accesses the accelerator does not handle itself are passed to the machine
 * through these callbacks, synchronously, on the calling vCPU's thread. `vcpu` is the vCPU
 * index. Reads fill *val (the accelerator masks to `size` bytes). The callbacks always
 * succeed from the accelerator's point of view (unclaimed reads return all ones); they
 * return 0, or -1 when the machine has asked the vCPU to stop (for example `-e` strict I/O).
 */
struct accel_io_ops {
	void *opaque;
	int (*pio)(void *opaque, int vcpu, uint16_t port, unsigned size, bool write,
		   uint32_t *val);
	int (*mmio)(void *opaque, int vcpu, uint64_t gpa, unsigned size, bool write,
		    uint64_t *val);
	/* The software CPU's x87 FERR# (CR0.NE=0) to the chipset; returns IGNNE#. NULL: none. */
	bool (*ferr)(void *opaque, int vcpu, bool asserted);
};

struct accel_config {
	enum accel_kind kind;
	int ncpus;
	const struct accel_io_ops *io;
	uint64_t tsc_hz;	/* software CPU: fixed TSC frequency (0 = default 1 GHz) */
	bool x2apic;		/* start local APICs in x2APIC-capable mode (CPUID decides) */
	const uint32_t *apic_ids;	/* ncpus initial APIC IDs (cpuid_apic_id); NULL: index */
	bool ignore_msrs;	/* -w (x86.strictmsr=false): unknown MSRs read 0, writes dropped */
	bool verbose_msrs;	/* x86.verbosemsr: log accesses to unknown MSRs on stderr */
	/*
	 * Additive (H20). cpu_model: cpu.model, a level name of x86/cpuid.h or "host"; NULL
	 * picks the accelerator's default (the software CPU and a KVM without hardware
	 * virtualization: CPUID_LEVEL_SOFT; hardware KVM: host). stats: accel_stats, print
	 * what the accelerator counted on stderr when it is destroyed.
	 */
	const char *cpu_model;
	bool stats;
};

/* Why accel_vcpu_run() returned. PIO and MMIO never show up here: they go to accel_io_ops. */
enum accel_exit_reason {
	ACCEL_EXIT_KICKED,	/* accel_vcpu_kick() was called, or a signal arrived */
	ACCEL_EXIT_HALTED,	/* HLT with RFLAGS.IF=0 and no NMI possible: halted for good */
	ACCEL_EXIT_SHUTDOWN,	/* triple fault */
	ACCEL_EXIT_RESET,	/* the accelerator saw a platform reset request */
	ACCEL_EXIT_POWEROFF,	/* the accelerator saw a power-off request */
	ACCEL_EXIT_ERROR,	/* cannot continue: msg says why (unsupported instruction...) */
};

struct accel_exit {
	enum accel_exit_reason reason;
	char msg[512];		/* ACCEL_EXIT_ERROR: reason, mode, CS:RIP, bytes, disassembly */
};

/*
 * Create a VM on the requested accelerator. ACCEL_AUTO tries KVM and falls back to the
 * software CPU. On failure returns -errno and writes the cause (no /dev/kvm, permission
 * denied, module missing, ...) to err.
 */
int accel_create(const struct accel_config *cfg, struct accel **out, char *err, size_t errlen);
void accel_destroy(struct accel *accel);
enum accel_kind accel_kind(const struct accel *accel);
const char *accel_name(const struct accel *accel);	/* "kvm" or "soft" */

/* Map host memory at a guest-physical range. `host` must stay valid until destroy. */
int accel_map_memory(struct accel *accel, uint64_t gpa, uint64_t size, void *host,
		     bool readonly);

/* Guest memory was written by a device (DMA): lets the software CPU drop cached code. */
void accel_memory_written(struct accel *accel, uint64_t gpa, uint64_t len);

/* The CPUID leaves the accelerator can run (KVM: KVM_GET_SUPPORTED_CPUID; soft: its set). */
int accel_supported_cpuid(struct accel *accel, struct accel_cpuid_entry *ents, int max);

/* Interrupt lines (GSI numbering: 0-15 ISA/PIC+IOAPIC, 16-23 IOAPIC) and MSIs. Thread-safe. */
int accel_irq_line(struct accel *accel, unsigned gsi, bool level);
int accel_msi(struct accel *accel, uint64_t addr, uint32_t data);

/*
 * Notifiers (additive; KVM's ioeventfd and irqfd). An implementation without them (the
 * software CPU) returns -ENOTSUP, and the machine keeps the direct paths: guest writes reach
 * the io bus handlers and interrupts go through accel_msi/accel_irq_line.
 * accel_ioeventfd: a guest write of `len` bytes (1, 2, 4 or 8) to `addr` (MMIO, or PIO when
 * !mmio) signals eventfd `fd` instead of leaving the vCPU; assign=false removes it.
 * accel_irqfd_msi: writes to eventfd `fd` inject the MSI (addr, data); returns a route
 * handle >= 0 for accel_irqfd_update (new message, e.g. after the guest reprograms MSI-X)
 * and accel_irqfd_remove. All: 0 / handle, or -errno. Any thread.
 */
int accel_ioeventfd(struct accel *accel, bool mmio, uint64_t addr, unsigned len, int fd,
		    bool assign);
int accel_irqfd_msi(struct accel *accel, int fd, uint64_t addr, uint32_t data);
int accel_irqfd_update(struct accel *accel, int handle, uint64_t addr, uint32_t data);
int accel_irqfd_remove(struct accel *accel, int fd, int handle);

/* vCPUs. Create on the thread that will run it; all vcpu calls but kick on that thread. */
int accel_vcpu_create(struct accel *accel, int index, struct accel_vcpu **out);
void accel_vcpu_destroy(struct accel_vcpu *vcpu);
int accel_vcpu_set_cpuid(struct accel_vcpu *vcpu, const struct accel_cpuid_entry *ents, int n);
int accel_vcpu_get_regs(struct accel_vcpu *vcpu, struct accel_regs *regs);
int accel_vcpu_set_regs(struct accel_vcpu *vcpu, const struct accel_regs *regs);
int accel_vcpu_get_sregs(struct accel_vcpu *vcpu, struct accel_sregs *sregs);
int accel_vcpu_set_sregs(struct accel_vcpu *vcpu, const struct accel_sregs *sregs);
/* Application processors start waiting for INIT/SIPI; the BSP starts runnable. */
int accel_vcpu_set_wait_for_sipi(struct accel_vcpu *vcpu, bool wait);
/* Run until something the machine must see happens (see accel_exit_reason). */
int accel_vcpu_run(struct accel_vcpu *vcpu, struct accel_exit *exit);
/* Make accel_vcpu_run() return ACCEL_EXIT_KICKED soon. Any thread, async-signal-safe. */
void accel_vcpu_kick(struct accel_vcpu *vcpu);

#endif
