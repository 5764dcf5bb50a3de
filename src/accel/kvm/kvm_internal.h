/*
 * kvm_internal.h: state shared by the parts of the KVM accelerator, kvm_vm.c (the VM:
 * /dev/kvm, memory slots, irqchip, interrupts, CPUID), kvm_vcpu.c (the vCPU run loop) and
 * kvm_fallback.c (instructions KVM refuses, run on the interpreter). Only accel/kvm files
 * include <linux/kvm.h>.
 */
#ifndef KHYVE_KVM_INTERNAL_H
#define KHYVE_KVM_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <linux/kvm.h>
#include <Zydis/Zydis.h>

#include "accel/accel_impl.h"
#include "x86/emu/emu.h"

#define KVM_MAX_SLOTS 32
#define KVM_MSI_GSI_BASE 24	/* after the IOAPIC's 24 pins */
#define KVM_MAX_MSI_ROUTES 256

struct kvm_slot {
	uint64_t gpa, size;
	uint8_t *host;
	bool copied;		/* host is our own page-aligned copy (munmap on destroy) */
	bool readonly;		/* KVM_MEM_READONLY: guest writes are MMIO exits */
};

struct accel {
	struct accel_common common;
	int kvm_fd, vm_fd;
	int run_size;
	int ncpus;
	const struct accel_io_ops *io;
	uint32_t *apic_ids;
	bool ignore_msrs, verbose_msrs;	/* unknown MSRs exit to us (-w, x86.verbosemsr) */
	bool hw_virt;		/* VMX/SVM underneath, not a software KVM such as kvm_pvm */
	/* The CPUID set offered (cpu.model): a named level cut to what KVM runs, or the host's */
	struct accel_cpuid_entry cpuid[ACCEL_CPUID_MAX_ENTRIES];
	int ncpuid;
	bool has_xcrs;		/* KVM_CAP_XCRS: XCR0 for the fallback */
	bool stats;		/* accel_stats: print the fallback's counts at destroy */
	/* The emulation fallback (kvm_fallback.c): one code cache for all vCPUs, made on
	 * first use, and instructions emulated per Zydis mnemonic. */
	pthread_mutex_t emu_lock;
	struct emu_machine *emu_machine;
	_Atomic uint64_t emu_counts[ZYDIS_MNEMONIC_MAX_VALUE + 1];
	pthread_mutex_t slot_lock;
	struct kvm_slot slots[KVM_MAX_SLOTS];
	int nslots;
	/* MSI routes behind irqfds (kvm_notify.c), GSIs from KVM_MSI_GSI_BASE. */
	pthread_mutex_t route_lock;
	struct kvm_msi_route {
		bool used;
		uint64_t addr;
		uint32_t data;
	} msi_routes[KVM_MAX_MSI_ROUTES];
};

struct accel_vcpu {
	struct accel_vcpu_common common;
	struct accel *accel;
	int index, fd;
	struct kvm_run *run;
	pthread_t thread;
	timer_t halt_timer;
	bool has_timer;
	atomic_bool kicked;
	bool reported_halted;	/* the last run returned ACCEL_EXIT_HALTED */
	struct emu_cpu *emu;	/* the fallback's interpreter, made on first use */
	struct accel_cpuid_entry cpuid[ACCEL_CPUID_MAX_ENTRIES];	/* as set, for it */
	int ncpuid;
};

/* Install the GSI routing table: the irqchip pins and the used MSI routes. route_lock held
 * (or start-up). 0 or -errno. */
int kvm_setup_routing(struct accel *accel);
int kvm_ioeventfd(struct accel *accel, bool mmio, uint64_t addr, unsigned len, int fd,
		  bool assign);
int kvm_irqfd_msi(struct accel *accel, int fd, uint64_t addr, uint32_t data);
int kvm_irqfd_update(struct accel *accel, int handle, uint64_t addr, uint32_t data);
int kvm_irqfd_remove(struct accel *accel, int fd, int handle);

/* The Zydis machine mode (a ZydisMachineMode) of the CPU state, and its name if asked. */
int kvm_zydis_mode(const struct kvm_sregs *sregs, uint64_t rflags, const char **name);
/* Fill exit (ACCEL_EXIT_ERROR) with `what`, the CPU mode, CS:RIP, the bytes there and their
 * disassembly. */
void kvm_describe(struct accel_vcpu *v, struct accel_exit *exit, const char *what);

/* Host address of the guest-physical page holding gpa: NULL when no slot maps it, or for a
 * write to a read-only (ROM) slot. The slots never move, so the pointer stays valid. */
uint8_t *kvm_slot_page(struct accel *a, uint64_t gpa, bool write);
/* Copy guest-physical bytes out of the mapped slots; 0 or -EFAULT. */
int kvm_read_phys(struct accel *accel, uint64_t gpa, void *dst, size_t len);

int kvm_vcpu_create(struct accel *accel, int index, struct accel_vcpu **out);
void kvm_vcpu_destroy(struct accel_vcpu *vcpu);
int kvm_vcpu_set_cpuid(struct accel_vcpu *vcpu, const struct accel_cpuid_entry *ents, int n);
int kvm_vcpu_get_regs(struct accel_vcpu *vcpu, struct accel_regs *regs);
int kvm_vcpu_set_regs(struct accel_vcpu *vcpu, const struct accel_regs *regs);
int kvm_vcpu_get_sregs(struct accel_vcpu *vcpu, struct accel_sregs *sregs);
int kvm_vcpu_set_sregs(struct accel_vcpu *vcpu, const struct accel_sregs *sregs);
int kvm_vcpu_set_wait_for_sipi(struct accel_vcpu *vcpu, bool wait);
int kvm_vcpu_run(struct accel_vcpu *vcpu, struct accel_exit *exit);
void kvm_vcpu_kick(struct accel_vcpu *vcpu);

#endif
