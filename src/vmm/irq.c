/*
 * irq.c: interrupts from devices to the accelerator, by GSI (ISA IRQ n = GSI n, PCI INTx on
 * GSIs 16-23) and by MSI address/data. Any thread. The first failure is logged, once: a
 * device cannot do anything about a line the accelerator refuses.
 */
#include <stdio.h>
#include <string.h>

#include "vmm/vm_internal.h"

static void irq_report(const char *what, unsigned n, int ret)
{
	static atomic_bool reported;

	if (!atomic_exchange(&reported, true))
		fprintf(stderr, "khyve: %s %u refused by the accelerator: %s\n", what, n,
			strerror(-ret));
}

void vm_irq_assert(struct vm *vm, unsigned gsi)
{
	int ret = accel_irq_line(vm->accel, gsi, true);

	if (ret)
		irq_report("GSI", gsi, ret);
}

void vm_irq_deassert(struct vm *vm, unsigned gsi)
{
	int ret = accel_irq_line(vm->accel, gsi, false);

	if (ret)
		irq_report("GSI", gsi, ret);
}

void vm_irq_pulse(struct vm *vm, unsigned gsi)
{
	vm_irq_assert(vm, gsi);
	vm_irq_deassert(vm, gsi);
}

void vm_msi(struct vm *vm, uint64_t addr, uint32_t data)
{
	int ret = accel_msi(vm->accel, addr, data);

	if (ret)
		irq_report("MSI with data", data, ret);
}
