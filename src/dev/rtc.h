/*
 * rtc.h: the MC146818 RTC and CMOS RAM (rtc.c), created by platform.c on ports 0x70/0x71
 * with IRQ 8. Memory-size and CPU-count bytes are filled from the parameters.
 */
#ifndef KHYVE_DEV_RTC_H
#define KHYVE_DEV_RTC_H

#include <stdbool.h>
#include <stdint.h>

struct rtc;
struct event_loop;

struct rtc_params {
	bool localtime;		/* guest clock = host local time (bhyve's default), else UTC */
	uint64_t lowmem;	/* RAM below 4 GiB, bytes */
	uint64_t highmem;	/* RAM above 4 GiB, bytes */
	int ncpus;
	/* IRQ 8 level, called with the RTC's lock held. */
	void (*irq)(void *opaque, bool level);
	void *irq_opaque;
	/* Periodic/update/alarm interrupts need the loop; NULL gives polled flags only. */
	struct event_loop *loop;
	/* Host wall clock in ns since the epoch; NULL = CLOCK_REALTIME (tests pass a fake). */
	int64_t (*clock_ns)(void *opaque);
	void *clock_opaque;
};

int rtc_create(const struct rtc_params *p, struct rtc **out);
void rtc_destroy(struct rtc *rtc);
/* io_handler_fn for ports 0x70 (offset 0, index) and 0x71 (offset 1, data). */
void rtc_io(void *opaque, uint64_t offset, unsigned size, bool write, uint64_t *val);

#endif
