/*
 * i8259.h: the two cascaded 8259A PICs of a PC (master 0x20/0x21, slave 0xA0/0xA1 on the
 * master's IRQ2) with the ELCR (0x4D0/0x4D1), for the software CPU. Thread-safe; the
 * owner learns through notify that INTR may have risen and fetches the vector with
 * i8259_intr_ack when the CPU takes it (through LAPIC LINT0 in ExtINT mode).
 */
#ifndef KHYVE_DEV_I8259_H
#define KHYVE_DEV_I8259_H

#include <stdbool.h>
#include <stdint.h>

struct i8259_ops {
	void *opaque;
	/* INTR is asserted (called without the PIC's lock held). */
	void (*notify)(void *opaque);
};

struct i8259 *i8259_create(const struct i8259_ops *ops);
void i8259_destroy(struct i8259 *pic);
void i8259_reset(struct i8259 *pic);
/* True for 0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1. */
bool i8259_port(uint16_t port);
/* One byte at `port` (see i8259_port). Returns 0, or -EINVAL for another port. */
int i8259_pio(struct i8259 *pic, uint16_t port, bool write, uint8_t *val);
/* Drive ISA IRQ line `irq` (0-15). */
int i8259_set_irq(struct i8259 *pic, unsigned irq, bool level);
/* INTR output of the master. */
bool i8259_output(struct i8259 *pic);
/* INTA cycle: the vector (spurious IRQ7/IRQ15 vector when the request went away). */
int i8259_intr_ack(struct i8259 *pic);

#endif
