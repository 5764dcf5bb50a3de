/*
 * fake_vm.h: a stand-in for the machine (vm.h) in device unit tests: an io bus, optional
 * guest memory and event loop, and a record of interrupt lines and exit requests. Include it
 * in exactly one test file per program; it defines the vm.h functions devices call, so the
 * real vm.c is not linked in.
 */
#ifndef KHYVE_TEST_FAKE_VM_H
#define KHYVE_TEST_FAKE_VM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "vmm/guest_mem.h"
#include "vmm/io_bus.h"
#include "vmm/vm.h"

#define FAKE_VM_NIRQ 64

struct vm {
	struct io_bus *io;
	struct guest_mem *gm;
	struct event_loop *loop;
	int ncpus;
	int irq_level[FAKE_VM_NIRQ];	/* current level per GSI */
	int irq_raises[FAKE_VM_NIRQ];	/* 0 -> 1 transitions */
	int exit_code;			/* -1 none */
	int exit_status;		/* -1 none */
	int msis;			/* messages sent */
	uint64_t msi_addr;
	uint32_t msi_data;
};

static inline struct vm *fake_vm_new(void)
{
	struct vm *vm = calloc(1, sizeof *vm);

	io_bus_create(&vm->io);
	vm->ncpus = 1;
	vm->exit_code = -1;
	vm->exit_status = -1;
	return vm;
}

static inline void fake_vm_free(struct vm *vm)
{
	io_bus_destroy(vm->io);
	free(vm);
}

/* Port access helpers for tests. */
static inline uint64_t fake_in(struct vm *vm, uint64_t port, unsigned size)
{
	uint64_t v = 0;

	io_bus_access(vm->io, IO_SPACE_PIO, port, size, false, &v);
	return v;
}

static inline void fake_out(struct vm *vm, uint64_t port, unsigned size, uint64_t v)
{
	io_bus_access(vm->io, IO_SPACE_PIO, port, size, true, &v);
}

struct io_bus *vm_io(struct vm *vm)
{
	return vm->io;
}

struct guest_mem *vm_mem(struct vm *vm)
{
	return vm->gm;
}

struct event_loop *vm_event_loop(struct vm *vm)
{
	return vm->loop;
}

int vm_ncpus(const struct vm *vm)
{
	return vm->ncpus;
}

void vm_irq_assert(struct vm *vm, unsigned gsi)
{
	if (gsi < FAKE_VM_NIRQ) {
		if (!vm->irq_level[gsi])
			vm->irq_raises[gsi]++;
		vm->irq_level[gsi] = 1;
	}
}

void vm_irq_deassert(struct vm *vm, unsigned gsi)
{
	if (gsi < FAKE_VM_NIRQ)
		vm->irq_level[gsi] = 0;
}

void vm_msi(struct vm *vm, uint64_t addr, uint32_t data)
{
	vm->msis++;
	vm->msi_addr = addr;
	vm->msi_data = data;
}

void vm_request_exit(struct vm *vm, enum vm_exit_code code)
{
	if (vm->exit_code < 0)
		vm->exit_code = (int)code;
}

void vm_request_exit_status(struct vm *vm, int status)
{
	if (vm->exit_status < 0)
		vm->exit_status = status;
}

#endif
