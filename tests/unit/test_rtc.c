/*
 * test_rtc.c: the MC146818 model on a fake wall clock: BCD/binary, 12/24h, setting the time
 * (SET bit and running writes), UIP and the update/periodic/alarm flags with IRQ 8, register
 * D, local time versus UTC, and the CMOS memory-size bytes for 512 MiB and 4 GiB.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dev/rtc.h"
#include "unit.h"
#include "util/event_loop.h"

#define NS 1000000000LL

static int64_t fake_now;
static bool irq_level;
static int irq_raises;

static int64_t fake_clock(void *opaque)
{
	return fake_now;
}

static void fake_irq(void *opaque, bool level)
{
	if (level && !irq_level)
		irq_raises++;
	irq_level = level;
}

static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
			 .tm_hour = h, .tm_min = mi, .tm_sec = s };

	return (int64_t)timegm(&tm);
}

static struct rtc *mk(uint64_t lowmem, uint64_t highmem, bool localtime)
{
	struct rtc_params p = {
		.localtime = localtime, .lowmem = lowmem, .highmem = highmem, .ncpus = 2,
		.irq = fake_irq, .clock_ns = fake_clock,
	};
	struct rtc *rtc = NULL;

	irq_level = false;
	irq_raises = 0;
	CHECK(rtc_create(&p, &rtc) == 0);
	return rtc;
}

static uint8_t rd(struct rtc *rtc, uint8_t reg)
{
	uint64_t v = reg;

	rtc_io(rtc, 0, 1, true, &v);
	rtc_io(rtc, 1, 1, false, &v);
	return (uint8_t)v;
}

static void wr(struct rtc *rtc, uint8_t reg, uint8_t val)
{
	uint64_t v = reg;

	rtc_io(rtc, 0, 1, true, &v);
	v = val;
	rtc_io(rtc, 1, 1, true, &v);
}

TEST(rtc_bcd_24h_default)
{
	struct rtc *rtc;

	fake_now = utc(2024, 2, 29, 13, 45, 56) * NS + NS / 2;
	rtc = mk(512 << 20, 0, false);
	CHECK_EQ_U64(rd(rtc, 0x0b), 0x02);	/* 24h, BCD */
	CHECK_EQ_U64(rd(rtc, 0x00), 0x56);
	CHECK_EQ_U64(rd(rtc, 0x02), 0x45);
	CHECK_EQ_U64(rd(rtc, 0x04), 0x13);
	CHECK_EQ_U64(rd(rtc, 0x06), 0x05);	/* Thursday; Sunday is 1 */
	CHECK_EQ_U64(rd(rtc, 0x07), 0x29);
	CHECK_EQ_U64(rd(rtc, 0x08), 0x02);
	CHECK_EQ_U64(rd(rtc, 0x09), 0x24);
	CHECK_EQ_U64(rd(rtc, 0x32), 0x20);
	CHECK_EQ_U64(rd(rtc, 0x0d), 0x80);	/* VRT */
	CHECK_EQ_U64(rd(rtc, 0x0a) & 0x7f, 0x26);
	fake_now += 5 * NS;
	CHECK_EQ_U64(rd(rtc, 0x00), 0x01);
	CHECK_EQ_U64(rd(rtc, 0x02), 0x46);
	rtc_destroy(rtc);
}

TEST(rtc_binary_and_12h)
{
	struct rtc *rtc;

	fake_now = utc(2023, 12, 31, 23, 59, 58) * NS;
	rtc = mk(512 << 20, 0, false);
	wr(rtc, 0x0b, 0x06);	/* binary, 24h */
	CHECK_EQ_U64(rd(rtc, 0x00), 58);
	CHECK_EQ_U64(rd(rtc, 0x04), 23);
	CHECK_EQ_U64(rd(rtc, 0x09), 23);
	CHECK_EQ_U64(rd(rtc, 0x32), 20);
	wr(rtc, 0x0b, 0x00);	/* BCD, 12h */
	CHECK_EQ_U64(rd(rtc, 0x04), 0x91);	/* 11 PM */
	wr(rtc, 0x0b, 0x04);	/* binary, 12h */
	CHECK_EQ_U64(rd(rtc, 0x04), 0x80 | 11);
	fake_now = utc(2024, 1, 1, 0, 30, 0) * NS;
	CHECK_EQ_U64(rd(rtc, 0x04), 12);	/* 12 AM */
	fake_now = utc(2024, 1, 1, 12, 30, 0) * NS;
	CHECK_EQ_U64(rd(rtc, 0x04), 0x80 | 12);	/* 12 PM */
	wr(rtc, 0x0b, 0x00);
	CHECK_EQ_U64(rd(rtc, 0x04), 0x92);
	CHECK_EQ_U64(rd(rtc, 0x09), 0x24);
	rtc_destroy(rtc);
}

TEST(rtc_set_time_then_read)
{
	struct rtc *rtc;

	fake_now = utc(2024, 6, 1, 10, 0, 0) * NS;
	rtc = mk(512 << 20, 0, false);
	wr(rtc, 0x0b, 0x82);	/* SET: the update stops */
	wr(rtc, 0x00, 0x05);
	wr(rtc, 0x02, 0x04);
	wr(rtc, 0x04, 0x03);
	wr(rtc, 0x07, 0x02);
	wr(rtc, 0x08, 0x01);
	wr(rtc, 0x09, 0x30);
	wr(rtc, 0x32, 0x20);
	fake_now += 3 * NS;	/* frozen while SET */
	CHECK_EQ_U64(rd(rtc, 0x00), 0x05);
	CHECK_EQ_U64(rd(rtc, 0x0a) & 0x80, 0);	/* no update in progress while SET */
	wr(rtc, 0x0b, 0x02);	/* run from 2030-01-02 03:04:05 */
	fake_now += 10 * NS;
	CHECK_EQ_U64(rd(rtc, 0x00), 0x15);
	CHECK_EQ_U64(rd(rtc, 0x02), 0x04);
	CHECK_EQ_U64(rd(rtc, 0x04), 0x03);
	CHECK_EQ_U64(rd(rtc, 0x07), 0x02);
	CHECK_EQ_U64(rd(rtc, 0x08), 0x01);
	CHECK_EQ_U64(rd(rtc, 0x09), 0x30);
	CHECK_EQ_U64(rd(rtc, 0x06), 0x04);	/* 2030-01-02 is a Wednesday */
	/* A write while running changes that field at once and keeps counting. */
	wr(rtc, 0x02, 0x30);
	fake_now += 60 * NS;
	CHECK_EQ_U64(rd(rtc, 0x02), 0x31);
	CHECK_EQ_U64(rd(rtc, 0x00), 0x15);
	rtc_destroy(rtc);
}

TEST(rtc_divider_reset_holds_time)
{
	struct rtc *rtc;

	fake_now = utc(2024, 6, 1, 10, 0, 0) * NS;
	rtc = mk(512 << 20, 0, false);
	wr(rtc, 0x0a, 0x70);	/* divider in reset */
	fake_now += 7 * NS;
	CHECK_EQ_U64(rd(rtc, 0x00), 0x00);
	wr(rtc, 0x0a, 0x26);
	fake_now += 2 * NS;
	CHECK_EQ_U64(rd(rtc, 0x00), 0x02);
	rtc_destroy(rtc);
}

TEST(rtc_update_in_progress)
{
	struct rtc *rtc;

	fake_now = utc(2024, 6, 1, 10, 0, 0) * NS + NS / 2;
	rtc = mk(512 << 20, 0, false);
	CHECK_EQ_U64(rd(rtc, 0x0a) & 0x80, 0);
	fake_now = utc(2024, 6, 1, 10, 0, 0) * NS + NS - 100000;	/* 100 us before */
	CHECK_EQ_U64(rd(rtc, 0x0a) & 0x80, 0x80);
	fake_now += 200000;	/* just after the update */
	CHECK_EQ_U64(rd(rtc, 0x0a) & 0x80, 0);
	rtc_destroy(rtc);
}

TEST(rtc_update_flag_and_irq)
{
	struct rtc *rtc;

	fake_now = utc(2024, 6, 1, 10, 0, 0) * NS;
	rtc = mk(512 << 20, 0, false);
	CHECK_EQ_U64(rd(rtc, 0x0c), 0x00);
	fake_now += NS;
	/* UF (PF too: the 1024 Hz periodic flag runs whatever PIE says), no IRQF. */
	CHECK_EQ_U64(rd(rtc, 0x0c) & 0xb0, 0x10);
	CHECK(!irq_level);
	CHECK_EQ_U64(rd(rtc, 0x0c), 0x00);	/* read clears */
	wr(rtc, 0x0b, 0x12);	/* UIE */
	fake_now += NS;
	CHECK_EQ_U64(rd(rtc, 0x0c) & 0xb0, 0x90);
	CHECK_EQ_U64(irq_raises, 1);
	CHECK(!irq_level);	/* reading C lowers IRQ 8 */
	rtc_destroy(rtc);
}

TEST(rtc_periodic_flag)
{
	struct rtc *rtc;

	fake_now = utc(2024, 6, 1, 10, 0, 0) * NS;
	rtc = mk(512 << 20, 0, false);
	wr(rtc, 0x0a, 0x2f);	/* 2 Hz */
	CHECK_EQ_U64(rd(rtc, 0x0c) & 0x40, 0);
	fake_now += NS / 4;
	CHECK_EQ_U64(rd(rtc, 0x0c) & 0x40, 0);
	fake_now += NS / 4;
	CHECK_EQ_U64(rd(rtc, 0x0c) & 0x40, 0x40);
	wr(rtc, 0x0b, 0x42);	/* PIE */
	fake_now += NS / 2;
	CHECK_EQ_U64(rd(rtc, 0x0c) & 0xc0, 0xc0);
	CHECK(irq_raises >= 1);
	wr(rtc, 0x0a, 0x20);	/* RS = 0: no periodic flag */
	fake_now += NS;
	CHECK_EQ_U64(rd(rtc, 0x0c) & 0x40, 0);
	rtc_destroy(rtc);
}

TEST(rtc_alarm)
{
	struct rtc *rtc;

	fake_now = utc(2024, 6, 1, 10, 0, 0) * NS;
	rtc = mk(512 << 20, 0, false);
	wr(rtc, 0x01, 0x03);	/* 10:00:03 */
	wr(rtc, 0x03, 0x00);
	wr(rtc, 0x05, 0x10);
	wr(rtc, 0x0b, 0x22);	/* AIE */
	fake_now += 2 * NS;
	CHECK_EQ_U64(rd(rtc, 0x0c) & 0xa0, 0x00);
	fake_now += NS;
	CHECK_EQ_U64(rd(rtc, 0x0c) & 0xa0, 0xa0);
	/* Don't-care hours and minutes: every minute at :03. */
	wr(rtc, 0x03, 0xc0);
	wr(rtc, 0x05, 0xff);
	fake_now += 60 * NS;
	CHECK_EQ_U64(rd(rtc, 0x0c) & 0x20, 0x20);
	rtc_destroy(rtc);
}

TEST(rtc_localtime)
{
	struct rtc *rtc;
	char *old = getenv("TZ") ? strdup(getenv("TZ")) : NULL;

	setenv("TZ", "KHY-2", 1);	/* two hours east of UTC */
	tzset();
	fake_now = utc(2024, 6, 1, 10, 0, 0) * NS;
	rtc = mk(512 << 20, 0, true);
	CHECK_EQ_U64(rd(rtc, 0x04), 0x12);
	rtc_destroy(rtc);
	rtc = mk(512 << 20, 0, false);	/* -u */
	CHECK_EQ_U64(rd(rtc, 0x04), 0x10);
	rtc_destroy(rtc);
	if (old) {
		setenv("TZ", old, 1);
		free(old);
	} else {
		unsetenv("TZ");
	}
	tzset();
}

TEST(rtc_cmos_memory_512m)
{
	struct rtc *rtc;

	fake_now = 0;
	rtc = mk(512ULL << 20, 0, false);
	CHECK_EQ_U64(rd(rtc, 0x15), 0x80);	/* 640 KiB base memory */
	CHECK_EQ_U64(rd(rtc, 0x16), 0x02);
	CHECK_EQ_U64(rd(rtc, 0x17), 0xff);	/* KiB above 1 MiB, capped */
	CHECK_EQ_U64(rd(rtc, 0x18), 0xff);
	CHECK_EQ_U64(rd(rtc, 0x30), 0xff);
	CHECK_EQ_U64(rd(rtc, 0x31), 0xff);
	CHECK_EQ_U64(rd(rtc, 0x34), 0x00);	/* (512M - 16M) / 64K = 0x1f00 */
	CHECK_EQ_U64(rd(rtc, 0x35), 0x1f);
	CHECK_EQ_U64(rd(rtc, 0x5b), 0x00);
	CHECK_EQ_U64(rd(rtc, 0x5c), 0x00);
	CHECK_EQ_U64(rd(rtc, 0x5d), 0x00);
	CHECK_EQ_U64(rd(rtc, 0x5f), 0x01);	/* CPUs - 1 */
	rtc_destroy(rtc);
}

TEST(rtc_cmos_memory_4g)
{
	struct rtc *rtc;

	fake_now = 0;
	rtc = mk(3ULL << 30, 1ULL << 30, false);	/* 4 GiB split at the 3 GiB hole */
	CHECK_EQ_U64(rd(rtc, 0x34), 0x00);	/* (3G - 16M) / 64K = 0xbf00 */
	CHECK_EQ_U64(rd(rtc, 0x35), 0xbf);
	CHECK_EQ_U64(rd(rtc, 0x5b), 0x00);	/* 1G / 64K = 0x4000 */
	CHECK_EQ_U64(rd(rtc, 0x5c), 0x40);
	CHECK_EQ_U64(rd(rtc, 0x5d), 0x00);
	rtc_destroy(rtc);
	rtc = mk(12ULL << 20, 0, false);	/* tiny: nothing above 16 MiB */
	CHECK_EQ_U64(rd(rtc, 0x34), 0x00);
	CHECK_EQ_U64(rd(rtc, 0x35), 0x00);
	CHECK_EQ_U64(rd(rtc, 0x17) | rd(rtc, 0x18) << 8, 11 * 1024);
	rtc_destroy(rtc);
}

TEST(rtc_cmos_ram_and_index)
{
	struct rtc *rtc;
	uint64_t v;

	fake_now = 0;
	rtc = mk(512 << 20, 0, false);
	wr(rtc, 0x40, 0xa5);
	CHECK_EQ_U64(rd(rtc, 0x40), 0xa5);
	wr(rtc, 0x0d, 0x00);	/* read-only */
	CHECK_EQ_U64(rd(rtc, 0x0d), 0x80);
	v = 0x80 | 0x40;	/* NMI mask bit is not part of the index */
	rtc_io(rtc, 0, 1, true, &v);
	rtc_io(rtc, 1, 1, false, &v);
	CHECK_EQ_U64(v, 0xa5);
	rtc_destroy(rtc);
}

static atomic_int loop_raises;

static void loop_irq(void *opaque, bool level)
{
	if (level)
		atomic_fetch_add(&loop_raises, 1);
}

static void *loop_thread(void *opaque)
{
	evl_run(opaque);
	return NULL;
}

/* The periodic interrupt arrives by itself, from the event loop's timerfd. */
TEST(rtc_periodic_irq_from_event_loop)
{
	struct event_loop *loop;
	struct rtc_params p = { .lowmem = 512 << 20, .ncpus = 1, .irq = loop_irq };
	struct rtc *rtc;
	pthread_t t;

	CHECK(evl_create(&loop) == 0);
	p.loop = loop;
	CHECK(rtc_create(&p, &rtc) == 0);
	CHECK(pthread_create(&t, NULL, loop_thread, loop) == 0);
	wr(rtc, 0x0b, 0x42);	/* PIE at the default 1024 Hz */
	for (int i = 0; i < 1000 && atomic_load(&loop_raises) == 0; i++)
		usleep(1000);
	CHECK_EQ_U64(atomic_load(&loop_raises), 1);	/* held until C is read */
	CHECK_EQ_U64(rd(rtc, 0x0c) & 0xc0, 0xc0);
	for (int i = 0; i < 1000 && atomic_load(&loop_raises) < 2; i++)
		usleep(1000);
	CHECK_EQ_U64(atomic_load(&loop_raises), 2);
	wr(rtc, 0x0b, 0x02);	/* off: the timer stops */
	rd(rtc, 0x0c);
	usleep(20000);
	CHECK_EQ_U64(atomic_load(&loop_raises), 2);
	evl_stop(loop);
	pthread_join(t, NULL);
	rtc_destroy(rtc);
	evl_destroy(loop);
}
