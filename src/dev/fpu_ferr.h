/*
 * fpu_ferr.h: the PC chipset's x87 error logic (FERR#/IGNNE#, as on the AT and later PIIX/ICH
 * south bridges): with CR0.NE=0 the CPU reports an unmasked x87 exception on FERR#, which
 * raises IRQ 13; a write to port 0xF0 lowers IRQ 13 and asserts IGNNE# (the CPU then goes on
 * past the pending exception) until FERR# is negated (FSW.ES cleared). With CR0.NE=1 the CPU
 * raises #MF itself and this logic stays idle.
 */
#ifndef KHYVE_DEV_FPU_FERR_H
#define KHYVE_DEV_FPU_FERR_H

#include <stdbool.h>
#include <stdint.h>

#define FPU_FERR_PORT 0xf0
#define FPU_FERR_IRQ 13

struct fpu_ferr;

/* irq: IRQ 13's level, called with the device's lock held (any vCPU thread). */
int fpu_ferr_create(void (*irq)(void *opaque, bool level), void *opaque, struct fpu_ferr **out);
void fpu_ferr_destroy(struct fpu_ferr *f);
/* Back to power-on: FERR#, IGNNE# and IRQ 13 negated. */
void fpu_ferr_reset(struct fpu_ferr *f);
/* The CPU's FERR# output (the level of FSW.ES while CR0.NE=0). */
void fpu_ferr_set(struct fpu_ferr *f, bool asserted);
/* IGNNE#, as the CPU sees it: true after a write to port 0xF0 while FERR# is asserted. */
bool fpu_ferr_ignne(struct fpu_ferr *f);
/*
 * io_handler_fn for port 0xF0: any write lowers IRQ 13 and asserts IGNNE# (while FERR# is
 * asserted); reads give all ones (nothing to read).
 */
void fpu_ferr_io(void *opaque, uint64_t offset, unsigned size, bool write, uint64_t *val);

#endif
