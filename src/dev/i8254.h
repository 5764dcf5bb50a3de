/*
 * i8254.h: the 8254 programmable interval timer (ports 0x40-0x43) and the port 0x61 bits
 * that gate channel 2 and read its output, for the software CPU. Time is the VM clock in
 * nanoseconds passed by the caller. Channel 0's output drives ISA IRQ 0 through
 * i8254_ops.irq0 once the owner calls i8254_check. Thread-safe.
 */
#ifndef KHYVE_DEV_I8254_H
#define KHYVE_DEV_I8254_H

#include <stdbool.h>
#include <stdint.h>

#define I8254_HZ 1193182ull

struct i8254_ops {
	void *opaque;
	/* Level of IRQ 0; periodic modes pulse it (true then false). Called under the PIT's
	 * lock: it must not call back into the PIT. */
	void (*irq0)(void *opaque, bool level);
};

struct i8254 *i8254_create(const struct i8254_ops *ops);
void i8254_destroy(struct i8254 *pit);
void i8254_reset(struct i8254 *pit);
/* True for 0x40-0x43 and 0x61. */
bool i8254_port(uint16_t port);
/* One byte at `port` (see i8254_port). Returns 0, or -EINVAL for another port. */
int i8254_pio(struct i8254 *pit, uint16_t port, bool write, uint8_t *val, uint64_t now);
/* Bring channel 0's IRQ line up to date at `now`. */
void i8254_check(struct i8254 *pit, uint64_t now);
/* When channel 0 next raises IRQ 0 (ns), or UINT64_MAX. */
uint64_t i8254_deadline(struct i8254 *pit);

#endif
