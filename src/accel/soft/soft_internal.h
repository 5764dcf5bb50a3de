/*
 * soft_internal.h: what the software-CPU accelerator's two files share. soft_vm.c owns the
 * VM (memory map, CPUID set, interrupt controllers and the PIT, IRQ lines, MSIs);
 * soft_vcpu.c runs one vCPU over the interpreter (src/x86/emu) on its caller's thread.
 * Depends only on x86/emu and the device models dev/{lapic,ioapic,i8259,i8254}.
 */
#ifndef KHYVE_ACCEL_SOFT_INTERNAL_H
#define KHYVE_ACCEL_SOFT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include "accel/accel_impl.h"
#include "dev/i8254.h"
#include "dev/i8259.h"
#include "dev/ioapic.h"
#include "dev/lapic.h"
#include "x86/emu/emu.h"

#define SOFT_MAX_REGIONS 64
#define SOFT_LOW_PAGES (1u << 20)	/* 4 KiB pages below 4 GiB */
#define SOFT_DEFAULT_TSC_HZ 1000000000ull

struct soft_region {
	uint64_t gpa, size;
	uint8_t *host;
	bool readonly;
};

struct accel {
	struct accel_common common;
	struct accel_io_ops io;
	int ncpus;
	uint64_t tsc_hz;
	uint64_t start_ns;	/* CLOCK_MONOTONIC at creation: VM time 0 */
	struct emu_machine *machine;
	pthread_mutex_t map_lock;
	struct soft_region regions[SOFT_MAX_REGIONS];
	_Atomic int nregions;
	uint8_t *_Atomic *rd_pages;	/* host page per guest page below 4 GiB, or NULL */
	uint8_t *_Atomic *wr_pages;	/* same, NULL for ROM */
	struct accel_cpuid_entry cpuid[ACCEL_CPUID_MAX_ENTRIES];
	int ncpuid;
	struct lapic **lapics;
	struct accel_vcpu *vcpus;	/* ncpus, allocated with the VM */
	struct ioapic *ioapic;
	struct i8259 *pic;
	struct i8254 *pit;
	bool stats;			/* accel_stats: report insns at destroy */
	_Atomic uint64_t insns;		/* instructions of the vCPUs destroyed so far */
};

struct accel_vcpu {
	struct accel_vcpu_common common;
	struct accel *acc;
	int index;
	struct emu_cpu *_Atomic cpu;	/* NULL until accel_vcpu_create */
	struct lapic *lapic;
	struct accel_cpuid_entry cpuid[ACCEL_CPUID_MAX_ENTRIES];
	int ncpuid;
	_Atomic uint32_t wake_seq;	/* futex word: bumped by every wake-up */
	_Atomic uint32_t early_events;	/* EMU_EV_* raised before the emu_cpu existed */
	atomic_bool nmi_latched;	/* a second NMI waits behind the interpreter's one */
	pthread_mutex_t nmi_lock;	/* serialises NMI senders: look at the bit, then act */
	atomic_bool kicked;
	atomic_bool stuck;		/* cannot run by itself (for the PIT owner choice) */
	bool created;
	bool wait_sipi;
	bool halted;			/* executed HLT, waiting for an event */
	bool reported_halted;		/* last run returned ACCEL_EXIT_HALTED */
	uint64_t apic_page;		/* xAPIC page decoded by this vCPU, or UINT64_MAX */
	uint64_t msr_hwcr, msr_de_cfg;	/* AMD MSRs Linux reads and writes back */
	bool has_x2apic, has_tsc_deadline;	/* from this vCPU's CPUID leaf 1 */
	int64_t tsc_offset;		/* WRMSR TSC: this vCPU's TSC minus the VM's */
	uint8_t cr8_seen;		/* CR8 as last synchronised with the LAPIC's TPR */
	bool tpr_written;		/* an MMIO TPR write stopped the run to reload CR8 */
	struct emu_state scratch;
};

uint64_t soft_now(const struct accel *acc);
uint64_t soft_tsc(const struct accel *acc, uint64_t now);
/* Host pointer of the page holding gpa (NULL: not RAM, or ROM when write). */
uint8_t *soft_page(struct accel *acc, uint64_t gpa, bool write);
/* Wake a vCPU sleeping in HLT/wait-for-SIPI and raise emu events on it. Any thread. */
void soft_vcpu_notify(struct accel_vcpu *v, uint32_t emu_events);
/* An NMI for the vCPU: queued (one in delivery, one latched) and raised. Any thread. */
void soft_vcpu_nmi(struct accel_vcpu *v);
/* ISA IRQ `irq` (0-15) to the 8259 and the IOAPIC (IRQ 0 -> pin 2). */
void soft_isa_irq(struct accel *acc, unsigned irq, bool level);

int soft_vcpu_create(struct accel *acc, int index, struct accel_vcpu **out);
void soft_vcpu_destroy(struct accel_vcpu *v);
int soft_vcpu_set_cpuid(struct accel_vcpu *v, const struct accel_cpuid_entry *ents, int n);
int soft_vcpu_get_regs(struct accel_vcpu *v, struct accel_regs *regs);
int soft_vcpu_set_regs(struct accel_vcpu *v, const struct accel_regs *regs);
int soft_vcpu_get_sregs(struct accel_vcpu *v, struct accel_sregs *sregs);
int soft_vcpu_set_sregs(struct accel_vcpu *v, const struct accel_sregs *sregs);
int soft_vcpu_set_wait_for_sipi(struct accel_vcpu *v, bool wait);
int soft_vcpu_run(struct accel_vcpu *v, struct accel_exit *exit);
void soft_vcpu_kick(struct accel_vcpu *v);

#endif
