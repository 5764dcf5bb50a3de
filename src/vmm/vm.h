/*
 * vm.h: the machine as devices and loaders see it. vm_build() turns the frozen config tree
 * into a VM (memory, accelerator, devices, boot state) and vm_run() runs it to an exit code
 * with bhyve's meaning (0 reset, 1 power-off, 2 halt, 3 triple fault, 4 error).
 */
#ifndef KHYVE_VM_H
#define KHYVE_VM_H

#include <stdbool.h>
#include <stdint.h>

struct vm;
struct cfg_node;
struct guest_mem;
struct io_bus;
struct event_loop;

enum vm_exit_code {
	VM_EXIT_RESET = 0,
	VM_EXIT_POWEROFF = 1,
	VM_EXIT_HALT = 2,
	VM_EXIT_TRIPLEFAULT = 3,
	VM_EXIT_ERROR = 4,
};

/* Build from the config tree (already validated). 0 or -errno; prints its own errors. */
int vm_build(struct cfg_node *root, struct vm **out);
/* Run every vCPU to completion; returns an enum vm_exit_code. */
int vm_run(struct vm *vm);
void vm_destroy(struct vm *vm);

struct guest_mem *vm_mem(struct vm *vm);
struct io_bus *vm_io(struct vm *vm);
/* The event loop (consoles, sockets, timerfds): devices add their fds at init. */
struct event_loop *vm_event_loop(struct vm *vm);
int vm_ncpus(const struct vm *vm);
const char *vm_name(const struct vm *vm);

/*
 * Ask the VM to stop with `code` (first request wins). Any thread, async-signal-safe:
 * sets the code and kicks every vCPU.
 */
void vm_request_exit(struct vm *vm, enum vm_exit_code code);
/*
 * Same, but khyve's process exit status is `status` itself rather than an enum vm_exit_code
 * (pc-testdev's exit port 0xF4: status (V << 1) | 1, as bhyve). First request wins.
 */
void vm_request_exit_status(struct vm *vm, int status);

/* Interrupts by GSI (ISA IRQ n = GSI n; PCI INTx on GSI 16-23). Any thread. */
void vm_irq_assert(struct vm *vm, unsigned gsi);
void vm_irq_deassert(struct vm *vm, unsigned gsi);
void vm_irq_pulse(struct vm *vm, unsigned gsi);	/* edge: assert then deassert */
void vm_msi(struct vm *vm, uint64_t addr, uint32_t data);

/* ACPI power button (SIGTERM): set PWRBTN_STS and raise the SCI when enabled. */
void vm_press_power_button(struct vm *vm);

#endif
