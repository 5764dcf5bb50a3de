/*
 * io_bus.h: port-I/O and MMIO dispatch. Devices register ranges with a handler; the vCPU
 * loop (through accel_io_ops) looks the access up and calls it. Unclaimed reads return all
 * ones and unclaimed writes are dropped (with -e, x86.strictio, the VM stops instead).
 */
#ifndef KHYVE_IO_BUS_H
#define KHYVE_IO_BUS_H

#include <stdbool.h>
#include <stdint.h>

struct io_bus;

/*
 * A handler gets the offset from the start of its range, the access size (1, 2, 4, 8) and
 * direction; reads fill *val. Called on the vCPU thread; a device serialises its own state.
 */
typedef void (*io_handler_fn)(void *opaque, uint64_t offset, unsigned size, bool write,
			      uint64_t *val);

enum io_space { IO_SPACE_PIO, IO_SPACE_MMIO };

int io_bus_create(struct io_bus **out);
void io_bus_destroy(struct io_bus *bus);
/* Claim [base, base+len). -EEXIST on overlap. `name` is for diagnostics. */
int io_bus_register(struct io_bus *bus, enum io_space space, uint64_t base, uint64_t len,
		    io_handler_fn fn, void *opaque, const char *name);
int io_bus_unregister(struct io_bus *bus, enum io_space space, uint64_t base);
/* Dispatch; returns false when nothing claimed the address (reads then give all ones). */
bool io_bus_access(struct io_bus *bus, enum io_space space, uint64_t addr, unsigned size,
		   bool write, uint64_t *val);

#endif
