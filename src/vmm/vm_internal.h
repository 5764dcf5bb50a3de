/*
 * vm_internal.h: the machine's own state, shared by vm.c (build, run, exit requests),
 * vcpu.c (the vCPU threads and their exit table) and irq.c. Nothing outside src/vmm/
 * includes this; devices see struct vm only through vm.h.
 */
#ifndef KHYVE_VM_INTERNAL_H
#define KHYVE_VM_INTERNAL_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "accel/accel.h"
#include "loader/loader.h"
#include "pci/pci.h"
#include "vmm/vm.h"
#include "x86/cpuid.h"

struct vcpu {
	struct vm *vm;
	int index;
	pthread_t thread;
	bool started;
	_Atomic(struct accel_vcpu *) accel;	/* set once created, for kicks */
	atomic_bool halted;			/* last run ended ACCEL_EXIT_HALTED */
	bool pinned;
	cpu_set_t cpuset;
};

struct vm {
	char name[64];
	int ncpus;
	struct cpu_topology topo;
	uint32_t *apic_ids;
	bool strictio, x2apic;

	struct guest_mem *mem;
	struct io_bus *io;
	struct event_loop *loop;
	struct accel *accel;
	struct accel_io_ops io_ops;
	struct platform *platform;
	struct pci_bus *pci;
	struct pci_notifiers pci_notifiers;	/* KVM's ioeventfd/irqfd for devices */

	struct boot_cpu_state bsp;
	struct accel_cpuid_entry supported[ACCEL_CPUID_MAX_ENTRIES];
	int nsupported;

	struct vcpu *vcpus;
	pthread_mutex_t start_lock;	/* start-up: vCPUs ready, then go */
	pthread_cond_t start_cond;
	int nready;
	bool go;
	atomic_int exit_code;		/* -1 until the first vm_request_exit */
	int term_fd;			/* eventfd: SIGTERM -> power button on the loop */
};

/* vcpu.c */
int vcpu_parse_cpuset(const char *s, cpu_set_t *set);
void *vcpu_thread(void *arg);
int vcpu_pio(void *opaque, int vcpu, uint16_t port, unsigned size, bool write, uint32_t *val);
int vcpu_mmio(void *opaque, int vcpu, uint64_t gpa, unsigned size, bool write, uint64_t *val);
bool vcpu_ferr(void *opaque, int vcpu, bool asserted);

#endif
