/*
 * vcpu.c: one host thread per vCPU ("vcpu N"), optionally pinned (vcpu.N.cpuset, -p). The
 * thread creates its accelerator vCPU, loads CPUID and its start state (the BSP the loader's,
 * APs wait for INIT/SIPI), waits until every vCPU exists, then runs the exit table:
 * reset 0, power-off 1, every vCPU halted with interrupts off 2, triple fault 3, error 4
 * (bhyve's exit codes). Port and MMIO accesses and the software CPU's FERR# arrive here
 * through accel_io_ops.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev/platform.h"
#include "vmm/io_bus.h"
#include "vmm/vm_internal.h"

/* "0,2,4-7": host CPU numbers and inclusive ranges. 0 or -EINVAL. */
int vcpu_parse_cpuset(const char *s, cpu_set_t *set)
{
	CPU_ZERO(set);
	if (!s || !*s)
		return -EINVAL;
	while (*s) {
		char *end;
		unsigned long lo, hi;

		if (*s < '0' || *s > '9')
			return -EINVAL;
		lo = strtoul(s, &end, 10);
		hi = lo;
		if (*end == '-') {
			if (end[1] < '0' || end[1] > '9')
				return -EINVAL;
			hi = strtoul(end + 1, &end, 10);
		}
		if (hi < lo || hi >= CPU_SETSIZE)
			return -EINVAL;
		for (unsigned long c = lo; c <= hi; c++)
			CPU_SET(c, set);
		if (*end == ',')
			end++;
		else if (*end)
			return -EINVAL;
		s = end;
	}
	return 0;
}

static int vcpu_stop_access(struct vm *vm, int vcpu, const char *space, uint64_t addr,
			    unsigned size, bool write)
{
	fprintf(stderr, "khyve: vcpu %d: unhandled %u-byte %s %s 0x%llx (strict I/O)\n", vcpu,
		size, space, write ? "write to" : "read from", (unsigned long long)addr);
	vm_request_exit(vm, VM_EXIT_ERROR);
	return -1;
}

int vcpu_pio(void *opaque, int vcpu, uint16_t port, unsigned size, bool write, uint32_t *val)
{
	struct vm *vm = opaque;
	uint64_t v = *val;

	if (!io_bus_access(vm->io, IO_SPACE_PIO, port, size, write, &v) && vm->strictio)
		return vcpu_stop_access(vm, vcpu, "port", port, size, write);
	if (!write)
		*val = (uint32_t)v;
	return 0;
}

int vcpu_mmio(void *opaque, int vcpu, uint64_t gpa, unsigned size, bool write, uint64_t *val)
{
	struct vm *vm = opaque;

	if (!io_bus_access(vm->io, IO_SPACE_MMIO, gpa, size, write, val) && vm->strictio)
		return vcpu_stop_access(vm, vcpu, "MMIO", gpa, size, write);
	return 0;
}

bool vcpu_ferr(void *opaque, int vcpu, bool asserted)
{
	struct vm *vm = opaque;

	return platform_ferr(vm->platform, asserted);
}

/* Create the accelerator vCPU and give it CPUID and its start state. 0 or -errno (printed). */
static int vcpu_setup(struct vcpu *vc, struct accel_vcpu **out)
{
	struct vm *vm = vc->vm;
	struct accel_cpuid_entry cpuid[ACCEL_CPUID_MAX_ENTRIES];
	struct accel_vcpu *av;
	const char *step;
	int n, ret;

	ret = accel_vcpu_create(vm->accel, vc->index, &av);
	if (ret) {
		fprintf(stderr, "khyve: vcpu %d: cannot create: %s\n", vc->index, strerror(-ret));
		return ret;
	}
	atomic_store(&vc->accel, av);
	*out = av;

	step = "CPUID";
	n = cpuid_build(vm->supported, vm->nsupported, &vm->topo, vc->index, vm->x2apic, cpuid,
			ACCEL_CPUID_MAX_ENTRIES);
	ret = n < 0 ? n : accel_vcpu_set_cpuid(av, cpuid, n);
	if (ret)
		goto fail;
	if (vc->index == 0) {
		step = "start state";
		ret = accel_vcpu_set_sregs(av, &vm->bsp.sregs);
		if (!ret)
			ret = accel_vcpu_set_regs(av, &vm->bsp.regs);
	} else {
		step = "wait-for-SIPI state";
		ret = accel_vcpu_set_wait_for_sipi(av, true);
	}
	if (ret)
		goto fail;
	return 0;
fail:
	fprintf(stderr, "khyve: vcpu %d: cannot set %s: %s\n", vc->index, step, strerror(-ret));
	return ret;
}

/* Every vCPU's last run ended halted (interrupts off, or an AP never started). */
static bool vcpu_all_halted(struct vm *vm)
{
	for (int i = 0; i < vm->ncpus; i++)
		if (!atomic_load(&vm->vcpus[i].halted))
			return false;
	return true;
}

static void vcpu_loop(struct vcpu *vc, struct accel_vcpu *av)
{
	struct vm *vm = vc->vm;
	struct accel_exit ex;

	while (atomic_load(&vm->exit_code) < 0) {
		int ret = accel_vcpu_run(av, &ex);

		if (ret) {
			fprintf(stderr, "khyve: vcpu %d: run failed: %s\n", vc->index,
				strerror(-ret));
			vm_request_exit(vm, VM_EXIT_ERROR);
			return;
		}
		atomic_store(&vc->halted, ex.reason == ACCEL_EXIT_HALTED);
		switch (ex.reason) {
		case ACCEL_EXIT_KICKED:
			break;
		case ACCEL_EXIT_HALTED:
			if (vcpu_all_halted(vm))
				vm_request_exit(vm, VM_EXIT_HALT);
			break;
		case ACCEL_EXIT_SHUTDOWN:
			if (ex.msg[0])
				fprintf(stderr, "khyve: vcpu %d: %s\n", vc->index, ex.msg);
			vm_request_exit(vm, VM_EXIT_TRIPLEFAULT);
			break;
		case ACCEL_EXIT_RESET:
			vm_request_exit(vm, VM_EXIT_RESET);
			break;
		case ACCEL_EXIT_POWEROFF:
			vm_request_exit(vm, VM_EXIT_POWEROFF);
			break;
		case ACCEL_EXIT_ERROR:
		default:
			fprintf(stderr, "khyve: vcpu %d: %s\n", vc->index,
				ex.msg[0] ? ex.msg : "unknown accelerator error");
			vm_request_exit(vm, VM_EXIT_ERROR);
			break;
		}
	}
}

void *vcpu_thread(void *arg)
{
	struct vcpu *vc = arg;
	struct vm *vm = vc->vm;
	struct accel_vcpu *av = NULL;
	char name[16];

	snprintf(name, sizeof name, "vcpu %d", vc->index);
	pthread_setname_np(pthread_self(), name);
	if (vc->pinned) {
		int ret = pthread_setaffinity_np(pthread_self(), sizeof vc->cpuset, &vc->cpuset);

		if (ret) {
			fprintf(stderr, "khyve: vcpu %d: cannot pin to its cpuset: %s\n",
				vc->index, strerror(ret));
			vm_request_exit(vm, VM_EXIT_ERROR);
		}
	}
	if (atomic_load(&vm->exit_code) < 0 && vcpu_setup(vc, &av))
		vm_request_exit(vm, VM_EXIT_ERROR);
	pthread_mutex_lock(&vm->start_lock);
	vm->nready++;
	pthread_cond_broadcast(&vm->start_cond);
	/* A lone vCPU has no IPI target to wait for: no round trip through the main thread. */
	while (!vm->go && vm->ncpus > 1)
		pthread_cond_wait(&vm->start_cond, &vm->start_lock);
	pthread_mutex_unlock(&vm->start_lock);
	if (av)
		vcpu_loop(vc, av);
	/* Destroyed when the VM is: a late kick must still find it. */
	return NULL;
}
