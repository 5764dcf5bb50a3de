/*
 * rtc.c: Motorola MC146818A real-time clock and CMOS RAM (datasheet: "Address Map", "Register
 * A-D", "Interrupts"). Time registers 0-9 and the century byte 0x32 in BCD or binary and 12/24h,
 * computed from the host clock plus an offset the guest's writes set; UIP shown in the 244 us
 * before each second; periodic, alarm and update-ended interrupts on IRQ 8 by a timerfd on the
 * event loop (flags are also computed when read, for polling guests). CMOS memory-size bytes as
 * QEMU's pc.c (firmware-platform.md §4.1). Leaves out: daylight-saving (DSE) adjustment.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "dev/rtc.h"
#include "util/event_loop.h"

#define RTC_SEC 0x00
#define RTC_SEC_ALARM 0x01
#define RTC_MIN 0x02
#define RTC_MIN_ALARM 0x03
#define RTC_HOUR 0x04
#define RTC_HOUR_ALARM 0x05
#define RTC_WDAY 0x06
#define RTC_MDAY 0x07
#define RTC_MONTH 0x08
#define RTC_YEAR 0x09
#define RTC_REG_A 0x0a
#define RTC_REG_B 0x0b
#define RTC_REG_C 0x0c
#define RTC_REG_D 0x0d
#define RTC_CENTURY 0x32

#define REGA_UIP 0x80
#define REGA_DV_MASK 0x70
#define REGA_DV_NORMAL 0x20	/* 32.768 kHz time base, running */
#define REGA_RS_MASK 0x0f
#define REGB_SET 0x80
#define REGB_PIE 0x40
#define REGB_AIE 0x20
#define REGB_UIE 0x10
#define REGB_DM 0x04	/* 1 = binary */
#define REGB_24H 0x02
#define REGC_IRQF 0x80
#define REGC_PF 0x40
#define REGC_AF 0x20
#define REGC_UF 0x10
#define REGD_VRT 0x80

#define NS_PER_SEC 1000000000LL
#define RTC_UIP_NS 244000LL	/* update cycle length: 244 us */

struct rtc {
	pthread_mutex_t lock;
	struct rtc_params p;
	uint8_t cmos[128];
	uint8_t index;
	int64_t offset;		/* guest seconds minus host (local or UTC) seconds */
	uint8_t flags;		/* PF/AF/UF pending, IRQF */
	int64_t last_sec;	/* guest second last seen by the flag logic */
	int64_t last_pf_ns;	/* host ns of the last periodic flag */
	int timerfd;
	bool timer_watched;
};

static int64_t rtc_host_ns(struct rtc *rtc)
{
	struct timespec ts;

	if (rtc->p.clock_ns)
		return rtc->p.clock_ns(rtc->p.clock_opaque);
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

/* Host seconds in the RTC's time zone. */
static int64_t rtc_host_sec(struct rtc *rtc, int64_t ns)
{
	time_t t = (time_t)(ns / NS_PER_SEC);

	if (rtc->p.localtime) {
		struct tm tm;

		if (localtime_r(&t, &tm))
			return (int64_t)t + tm.tm_gmtoff;
	}
	return (int64_t)t;
}

static int64_t rtc_guest_sec(struct rtc *rtc, int64_t ns)
{
	return rtc_host_sec(rtc, ns) + rtc->offset;
}

static bool rtc_binary(const struct rtc *rtc)
{
	return rtc->cmos[RTC_REG_B] & REGB_DM;
}

static uint8_t rtc_enc(const struct rtc *rtc, int v)
{
	if (rtc_binary(rtc))
		return (uint8_t)v;
	return (uint8_t)(((v / 10) % 10) << 4 | (v % 10));
}

static int rtc_dec(const struct rtc *rtc, uint8_t v)
{
	if (rtc_binary(rtc))
		return v;
	return (v >> 4) * 10 + (v & 0x0f);
}

static uint8_t rtc_enc_hour(const struct rtc *rtc, int h)
{
	if (rtc->cmos[RTC_REG_B] & REGB_24H)
		return rtc_enc(rtc, h);
	return (uint8_t)(rtc_enc(rtc, h % 12 == 0 ? 12 : h % 12) | (h >= 12 ? 0x80 : 0));
}

static int rtc_dec_hour(const struct rtc *rtc, uint8_t v)
{
	int h;

	if (rtc->cmos[RTC_REG_B] & REGB_24H)
		return rtc_dec(rtc, v);
	h = rtc_dec(rtc, v & 0x7f) % 12;
	return (v & 0x80) ? h + 12 : h;
}

/* Write guest time `sec` into the time registers. */
static void rtc_store_time(struct rtc *rtc, int64_t sec)
{
	time_t t = (time_t)sec;
	struct tm tm;

	if (!gmtime_r(&t, &tm))
		return;
	rtc->cmos[RTC_SEC] = rtc_enc(rtc, tm.tm_sec);
	rtc->cmos[RTC_MIN] = rtc_enc(rtc, tm.tm_min);
	rtc->cmos[RTC_HOUR] = rtc_enc_hour(rtc, tm.tm_hour);
	rtc->cmos[RTC_WDAY] = rtc_enc(rtc, tm.tm_wday + 1);
	rtc->cmos[RTC_MDAY] = rtc_enc(rtc, tm.tm_mday);
	rtc->cmos[RTC_MONTH] = rtc_enc(rtc, tm.tm_mon + 1);
	rtc->cmos[RTC_YEAR] = rtc_enc(rtc, (tm.tm_year + 1900) % 100);
	rtc->cmos[RTC_CENTURY] = rtc_enc(rtc, (tm.tm_year + 1900) / 100);
}

/* The time the registers hold, as seconds. */
static int64_t rtc_load_time(struct rtc *rtc)
{
	struct tm tm;

	memset(&tm, 0, sizeof tm);
	tm.tm_sec = rtc_dec(rtc, rtc->cmos[RTC_SEC]);
	tm.tm_min = rtc_dec(rtc, rtc->cmos[RTC_MIN]);
	tm.tm_hour = rtc_dec_hour(rtc, rtc->cmos[RTC_HOUR]);
	tm.tm_mday = rtc_dec(rtc, rtc->cmos[RTC_MDAY]);
	tm.tm_mon = rtc_dec(rtc, rtc->cmos[RTC_MONTH]) - 1;
	tm.tm_year = rtc_dec(rtc, rtc->cmos[RTC_CENTURY]) * 100 +
		     rtc_dec(rtc, rtc->cmos[RTC_YEAR]) - 1900;
	return (int64_t)timegm(&tm);
}

static bool rtc_running(const struct rtc *rtc)
{
	return !(rtc->cmos[RTC_REG_B] & REGB_SET) &&
	       (rtc->cmos[RTC_REG_A] & REGA_DV_MASK) == REGA_DV_NORMAL;
}

/* Periodic interrupt period from RS, 0 when off. */
static int64_t rtc_period_ns(const struct rtc *rtc)
{
	unsigned rs = rtc->cmos[RTC_REG_A] & REGA_RS_MASK;

	if (rs == 0)
		return 0;
	if (rs < 3)
		rs += 7;
	return ((int64_t)1 << (rs - 1)) * NS_PER_SEC / 32768;
}

/* An alarm byte matches when equal or a don't-care (two high bits set). */
static bool rtc_alarm_match(const struct rtc *rtc)
{
	static const uint8_t pairs[3][2] = {
		{ RTC_SEC, RTC_SEC_ALARM }, { RTC_MIN, RTC_MIN_ALARM }, { RTC_HOUR, RTC_HOUR_ALARM },
	};

	for (int i = 0; i < 3; i++) {
		uint8_t alarm = rtc->cmos[pairs[i][1]];

		if ((alarm & 0xc0) != 0xc0 && alarm != rtc->cmos[pairs[i][0]])
			return false;
	}
	return true;
}

/* Bring PF/AF/UF up to date with the clock and drive IRQ 8. Lock held. */
static void rtc_update_flags(struct rtc *rtc)
{
	int64_t ns = rtc_host_ns(rtc), period = rtc_period_ns(rtc);
	uint8_t enables = rtc->cmos[RTC_REG_B] & (REGB_PIE | REGB_AIE | REGB_UIE);

	if (rtc_running(rtc)) {
		int64_t sec = rtc_guest_sec(rtc, ns);

		if (sec != rtc->last_sec) {
			rtc->last_sec = sec;
			rtc->flags |= REGC_UF;
			rtc_store_time(rtc, sec);
			if (rtc_alarm_match(rtc))
				rtc->flags |= REGC_AF;
		}
	}
	if (period && (rtc->cmos[RTC_REG_A] & REGA_DV_MASK) == REGA_DV_NORMAL &&
	    ns - rtc->last_pf_ns >= period) {
		rtc->flags |= REGC_PF;
		rtc->last_pf_ns = ns;
	}
	/* PIE/AIE/UIE sit at the same bit positions as PF/AF/UF. */
	if ((rtc->flags & enables) && !(rtc->flags & REGC_IRQF)) {
		rtc->flags |= REGC_IRQF;
		if (rtc->p.irq)
			rtc->p.irq(rtc->p.irq_opaque, true);
	}
}

/* Arm the timerfd for whatever interrupts are enabled. Lock held. */
static void rtc_arm_timer(struct rtc *rtc)
{
	struct itimerspec its;
	uint8_t b = rtc->cmos[RTC_REG_B];
	int64_t period = 0;

	if (rtc->timerfd < 0)
		return;
	memset(&its, 0, sizeof its);
	if (b & REGB_PIE)
		period = rtc_period_ns(rtc);
	if (!period && (b & (REGB_AIE | REGB_UIE)))
		period = NS_PER_SEC / 4;	/* notice each second's update promptly */
	if (period) {
		its.it_interval.tv_sec = period / NS_PER_SEC;
		its.it_interval.tv_nsec = period % NS_PER_SEC;
		its.it_value = its.it_interval;
	}
	timerfd_settime(rtc->timerfd, 0, &its, NULL);
}

static void rtc_timer_cb(void *opaque, int fd, uint32_t events)
{
	struct rtc *rtc = opaque;
	uint64_t expirations;

	if (read(fd, &expirations, sizeof expirations) < 0)
		return;
	pthread_mutex_lock(&rtc->lock);
	rtc_update_flags(rtc);
	pthread_mutex_unlock(&rtc->lock);
}

static uint8_t rtc_read(struct rtc *rtc, unsigned reg)
{
	uint8_t v;

	switch (reg) {
	case RTC_SEC: case RTC_MIN: case RTC_HOUR: case RTC_WDAY: case RTC_MDAY:
	case RTC_MONTH: case RTC_YEAR: case RTC_CENTURY:
		if (rtc_running(rtc))
			rtc_store_time(rtc, rtc_guest_sec(rtc, rtc_host_ns(rtc)));
		return rtc->cmos[reg];
	case RTC_REG_A: {
		int64_t ns = rtc_host_ns(rtc);

		v = rtc->cmos[RTC_REG_A] & (uint8_t)~REGA_UIP;
		if (rtc_running(rtc) && ns % NS_PER_SEC >= NS_PER_SEC - RTC_UIP_NS)
			v |= REGA_UIP;
		return v;
	}
	case RTC_REG_C:
		rtc_update_flags(rtc);
		v = rtc->flags;
		if (v & REGC_IRQF) {
			if (rtc->p.irq)
				rtc->p.irq(rtc->p.irq_opaque, false);
		}
		rtc->flags = 0;
		return v;
	case RTC_REG_D:
		return REGD_VRT;
	default:
		return rtc->cmos[reg];
	}
}

static void rtc_write(struct rtc *rtc, unsigned reg, uint8_t v)
{
	int64_t ns = rtc_host_ns(rtc);

	switch (reg) {
	case RTC_SEC: case RTC_MIN: case RTC_HOUR: case RTC_WDAY: case RTC_MDAY:
	case RTC_MONTH: case RTC_YEAR: case RTC_CENTURY:
		if (rtc_running(rtc)) {
			/* Running: change that field of the current time at once. */
			rtc_store_time(rtc, rtc_guest_sec(rtc, ns));
			rtc->cmos[reg] = v;
			rtc->offset = rtc_load_time(rtc) - rtc_host_sec(rtc, ns);
			rtc->last_sec = rtc_guest_sec(rtc, ns);
		} else {
			rtc->cmos[reg] = v;
		}
		return;
	case RTC_REG_A: {
		bool was_running = rtc_running(rtc);

		if (was_running)
			rtc_store_time(rtc, rtc_guest_sec(rtc, ns));
		rtc->cmos[RTC_REG_A] = v & (uint8_t)~REGA_UIP;
		if (was_running && !rtc_running(rtc))
			return;	/* divider stopped: registers hold the time */
		if (!was_running && rtc_running(rtc)) {
			rtc->offset = rtc_load_time(rtc) - rtc_host_sec(rtc, ns);
			rtc->last_sec = rtc_guest_sec(rtc, ns);
		}
		rtc_arm_timer(rtc);
		return;
	}
	case RTC_REG_B: {
		bool was_running = rtc_running(rtc);
		int64_t held = was_running ? rtc_guest_sec(rtc, ns) : 0;

		rtc->cmos[RTC_REG_B] = v;
		/* Running: the registers follow the clock in the (possibly new) format; SET
		 * just set: they hold this second until it clears. */
		if (was_running)
			rtc_store_time(rtc, held);
		if (!was_running && rtc_running(rtc)) {
			rtc->offset = rtc_load_time(rtc) - rtc_host_sec(rtc, ns);
			rtc->last_sec = rtc_guest_sec(rtc, ns);
		}
		rtc_arm_timer(rtc);
		rtc_update_flags(rtc);
		return;
	}
	case RTC_REG_C:
	case RTC_REG_D:
		return;	/* read-only */
	default:
		rtc->cmos[reg] = v;
		return;
	}
}

void rtc_io(void *opaque, uint64_t offset, unsigned size, bool write, uint64_t *val)
{
	struct rtc *rtc = opaque;

	pthread_mutex_lock(&rtc->lock);
	if (offset == 0) {
		if (write)
			rtc->index = (uint8_t)*val & 0x7f;	/* bit 7 is the NMI mask */
		else
			*val = rtc->index;
	} else if (offset == 1) {
		if (write)
			rtc_write(rtc, rtc->index, (uint8_t)*val);
		else
			*val = rtc_read(rtc, rtc->index);
	} else if (!write) {
		*val = 0xff;
	}
	pthread_mutex_unlock(&rtc->lock);
}

/* Memory sizes and CPU count in the CMOS, as QEMU's pc.c lays them out. */
static void rtc_fill_cmos(struct rtc *rtc)
{
	uint64_t ext = rtc->p.lowmem / 1024, v;

	rtc->cmos[0x15] = 640 & 0xff;	/* base memory: 640 KiB */
	rtc->cmos[0x16] = 640 >> 8;
	ext = ext > 1024 ? ext - 1024 : 0;	/* KiB above 1 MiB */
	if (ext > 0xffff)
		ext = 0xffff;
	rtc->cmos[0x17] = rtc->cmos[0x30] = (uint8_t)ext;
	rtc->cmos[0x18] = rtc->cmos[0x31] = (uint8_t)(ext >> 8);
	v = rtc->p.lowmem > (16ULL << 20) ? (rtc->p.lowmem - (16ULL << 20)) >> 16 : 0;
	if (v > 0xffff)
		v = 0xffff;
	rtc->cmos[0x34] = (uint8_t)v;
	rtc->cmos[0x35] = (uint8_t)(v >> 8);
	v = rtc->p.highmem >> 16;
	rtc->cmos[0x5b] = (uint8_t)v;
	rtc->cmos[0x5c] = (uint8_t)(v >> 8);
	rtc->cmos[0x5d] = (uint8_t)(v >> 16);
	rtc->cmos[0x5f] = (uint8_t)(rtc->p.ncpus > 0 ? rtc->p.ncpus - 1 : 0);
}

int rtc_create(const struct rtc_params *p, struct rtc **out)
{
	struct rtc *rtc = calloc(1, sizeof *rtc);
	int64_t ns;

	*out = NULL;
	if (!rtc)
		return -ENOMEM;
	rtc->p = *p;
	rtc->timerfd = -1;
	pthread_mutex_init(&rtc->lock, NULL);
	rtc->cmos[RTC_REG_A] = REGA_DV_NORMAL | 0x06;	/* 1024 Hz periodic rate */
	rtc->cmos[RTC_REG_B] = REGB_24H;
	rtc_fill_cmos(rtc);
	ns = rtc_host_ns(rtc);
	rtc->last_sec = rtc_guest_sec(rtc, ns);
	rtc->last_pf_ns = ns;
	rtc_store_time(rtc, rtc->last_sec);
	if (p->loop) {
		int ret;

		rtc->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (rtc->timerfd < 0) {
			ret = -errno;
			rtc_destroy(rtc);
			return ret;
		}
		ret = evl_add_fd(p->loop, rtc->timerfd, EPOLLIN, rtc_timer_cb, rtc);
		if (ret < 0) {
			rtc_destroy(rtc);
			return ret;
		}
		rtc->timer_watched = true;
	}
	*out = rtc;
	return 0;
}

void rtc_destroy(struct rtc *rtc)
{
	if (!rtc)
		return;
	if (rtc->timer_watched)
		evl_del_fd(rtc->p.loop, rtc->timerfd);
	if (rtc->timerfd >= 0)
		close(rtc->timerfd);
	pthread_mutex_destroy(&rtc->lock);
	free(rtc);
}
