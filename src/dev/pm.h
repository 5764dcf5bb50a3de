/*
 * pm.h: bhyve's ACPI PM block (pm.c): PM1a event and control registers, the PM timer and
 * SMI_CMD, at the ports platform.h names. The owner registers the handlers and supplies the
 * SCI line and the power-off action as callbacks.
 */
#ifndef KHYVE_DEV_PM_H
#define KHYVE_DEV_PM_H

#include <stdbool.h>
#include <stdint.h>

struct pm;

struct pm_params {
	/* SCI (IRQ 9) level, called with the block's lock held. */
	void (*sci)(void *opaque, bool level);
	/* The guest entered S5. */
	void (*poweroff)(void *opaque);
	void *opaque;
	/* Monotonic ns for the PM timer; NULL = CLOCK_MONOTONIC (tests pass a fake). */
	int64_t (*clock_ns)(void *opaque);
};

int pm_create(const struct pm_params *p, struct pm **out);
void pm_destroy(struct pm *pm);
/* io_handler_fns: PM1a_EVT (4 ports: status, enable), PM1a_CNT (2), PM_TMR (4), SMI_CMD (1). */
void pm_evt_io(void *opaque, uint64_t offset, unsigned size, bool write, uint64_t *val);
void pm_cnt_io(void *opaque, uint64_t offset, unsigned size, bool write, uint64_t *val);
void pm_tmr_io(void *opaque, uint64_t offset, unsigned size, bool write, uint64_t *val);
void pm_smi_io(void *opaque, uint64_t offset, unsigned size, bool write, uint64_t *val);
/* Press the power button: PWRBTN_STS, and the SCI when PWRBTN_EN. Any thread. */
void pm_power_button(struct pm *pm);

#endif
