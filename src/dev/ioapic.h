/*
 * ioapic.h: the I/O APIC of the software CPU's machine (82093AA): 24 pins, redirection
 * table, edge and level (remote IRR), masking. Messages leave through ioapic_ops.deliver
 * (the owner routes them to the local APICs); level EOIs come back via ioapic_eoi.
 * Thread-safe.
 */
#ifndef KHYVE_DEV_IOAPIC_H
#define KHYVE_DEV_IOAPIC_H

#include <stdbool.h>
#include <stdint.h>
#include "dev/lapic.h"

#define IOAPIC_BASE 0xfec00000ull
#define IOAPIC_SIZE 0x1000ull
#define IOAPIC_PINS 24

struct ioapic_ops {
	void *opaque;
	/* Called with the IOAPIC's lock held: must not call back into the IOAPIC. */
	void (*deliver)(void *opaque, const struct lapic_msg *msg);
};

struct ioapic *ioapic_create(const struct ioapic_ops *ops);
void ioapic_destroy(struct ioapic *io);
void ioapic_reset(struct ioapic *io);
/* IOREGSEL (0x00), IOWIN (0x10) and the EOI register (0x40) at `off` in the page. */
int ioapic_mmio(struct ioapic *io, uint64_t off, unsigned size, bool write, uint64_t *val);
/* Drive input pin `pin` (asserted = true; polarity is not applied, as under KVM). */
int ioapic_set_irq(struct ioapic *io, unsigned pin, bool level);
/* A local APIC EOI'd level-triggered `vector`: clear remote IRR, redeliver if still high. */
void ioapic_eoi(struct ioapic *io, uint8_t vector);
/* The redirection entry of `pin` (for tests and debugging). */
uint64_t ioapic_get_rte(struct ioapic *io, unsigned pin);

#endif
