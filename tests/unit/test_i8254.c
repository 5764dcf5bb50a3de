/* test_i8254.c: the 8254 PIT and port 0x61 with a fake clock (ns). */
#include "dev/i8254.h"
#include "unit.h"

static int pulses, level_changes;
static bool irq_level;

static void irq0(void *opaque, bool level)
{
	if (level && !irq_level)
		pulses++;
	if (level != irq_level)
		level_changes++;
	irq_level = level;
}

static struct i8254 *mk(void)
{
	struct i8254_ops ops = { NULL, irq0 };

	pulses = level_changes = 0;
	irq_level = false;
	return i8254_create(&ops);
}

static void out(struct i8254 *p, uint16_t port, uint8_t v, uint64_t now)
{
	i8254_pio(p, port, true, &v, now);
}

static uint8_t in(struct i8254 *p, uint16_t port, uint64_t now)
{
	uint8_t v = 0;

	i8254_pio(p, port, false, &v, now);
	return v;
}

/* ns at which `ticks` PIT clocks have elapsed (rounded up). */
static uint64_t at(uint64_t ticks)
{
	return (ticks * 1000000000ull + I8254_HZ - 1) / I8254_HZ;
}

TEST(i8254_linux_pit_calibrate_tsc)
{
	struct i8254 *p = mk();
	const uint64_t t0 = 5000000, latch = I8254_HZ / (1000 / 50);
	int loops = 0;
	uint64_t t;

	/* arch/x86/kernel/tsc.c pit_calibrate_tsc(): gate high, speaker off, mode 0 */
	out(p, 0x61, (in(p, 0x61, t0) & ~0x02) | 0x01, t0);
	out(p, 0x43, 0xb0, t0);
	out(p, 0x42, latch & 0xff, t0);
	out(p, 0x42, latch >> 8, t0);
	for (t = t0; (in(p, 0x61, t) & 0x20) == 0; t += 1000)
		loops++;
	/* OUT2 rises after exactly `latch` clocks: 50 ms, to the microsecond step */
	CHECK(t >= t0 + at(latch) && t < t0 + at(latch) + 1000);
	CHECK(loops > 49000 && loops < 50100);
	/* gate low stops the count; OUT stays as it was */
	CHECK(in(p, 0x61, t) & 0x01);
	i8254_destroy(p);
}

TEST(i8254_linux_quick_pit_calibrate)
{
	struct i8254 *p = mk();
	const uint64_t t0 = 1000;
	uint8_t lsb, msb, prev = 0xff;
	bool monotonic = true;

	/* quick_pit_calibrate(): mode 0, count 0xffff, then read lsb/msb pairs */
	out(p, 0x61, (in(p, 0x61, t0) & ~0x02) | 0x01, t0);
	out(p, 0x43, 0xb0, t0);
	out(p, 0x42, 0xff, t0);
	out(p, 0x42, 0xff, t0);
	lsb = in(p, 0x42, t0);
	msb = in(p, 0x42, t0);
	CHECK_EQ_U64(msb, 0xff);
	CHECK_EQ_U64(lsb, 0xff);
	for (int i = 1; i < 200; i++) {
		uint64_t t = t0 + at(256ull * i) + 10;

		lsb = in(p, 0x42, t);
		msb = in(p, 0x42, t);
		if (msb != (uint8_t)(0xff - i))
			monotonic = false;
		if (msb > prev)
			monotonic = false;
		prev = msb;
	}
	CHECK(monotonic);
	i8254_destroy(p);
}

TEST(i8254_mode2_rate_generator_irq0)
{
	struct i8254 *p = mk();

	out(p, 0x43, 0x34, 0);			/* ch0, lsb/msb, mode 2 */
	out(p, 0x40, 1193 & 0xff, 0);
	out(p, 0x40, 1193 >> 8, 0);
	CHECK_EQ_U64(i8254_deadline(p), at(1193));
	i8254_check(p, at(1193) - 1);
	CHECK_EQ_U64(pulses, 0);
	i8254_check(p, at(1193));
	CHECK_EQ_U64(pulses, 1);
	CHECK(!irq_level);			/* pulsed */
	CHECK_EQ_U64(i8254_deadline(p), at(2 * 1193));
	for (int k = 2; k <= 10; k++)
		i8254_check(p, at(1193ull * k));
	CHECK_EQ_U64(pulses, 10);
	/* late check: missed periods coalesce */
	i8254_check(p, at(1193ull * 20));
	CHECK_EQ_U64(pulses, 11);
	/* counter value: 1193 .. 1 */
	{
		uint64_t t = at(1193ull * 30 + 100);
		uint8_t lo = in(p, 0x40, t), hi = in(p, 0x40, t);

		CHECK_EQ_U64(lo | hi << 8, 1093);
	}
	i8254_destroy(p);
}

TEST(i8254_mode3_square_and_readback)
{
	struct i8254 *p = mk();
	uint8_t st, lo, hi;

	/* SeaBIOS timer_setup: ch0, mode 3, count 0 (65536) */
	out(p, 0x43, 0x36, 0);
	out(p, 0x40, 0, 0);
	out(p, 0x40, 0, 0);
	i8254_check(p, at(65536) - 1);
	CHECK_EQ_U64(pulses, 0);
	i8254_check(p, at(65536));
	CHECK_EQ_U64(pulses, 1);
	/* read-back: status and count of ch0 */
	out(p, 0x43, 0xc2, at(65536 + 1000));
	st = in(p, 0x40, at(70000));
	CHECK_EQ_U64(st & 0x3f, 0x36);
	CHECK(st & 0x80);			/* first half: OUT high */
	lo = in(p, 0x40, at(80000));
	hi = in(p, 0x40, at(90000));
	CHECK_EQ_U64(lo | hi << 8, (65536 - 2000) & 0xffff);
	/* second half: OUT low */
	out(p, 0x43, 0xe2, at(65536 + 40000));
	st = in(p, 0x40, at(65536 + 40000));
	CHECK(!(st & 0x80));
	/* values are even, counting down by two */
	lo = in(p, 0x40, at(3 * 65536 + 10));
	hi = in(p, 0x40, at(3 * 65536 + 10));
	CHECK_EQ_U64((lo | hi << 8) & 1, 0);
	i8254_destroy(p);
}

TEST(i8254_latch_and_access_modes)
{
	struct i8254 *p = mk();
	uint8_t lo, hi, st;

	out(p, 0x43, 0x34, 0);
	out(p, 0x40, 0x00, 0);
	out(p, 0x40, 0x10, 0);			/* 4096 */
	out(p, 0x43, 0x00, at(96));		/* counter latch */
	lo = in(p, 0x40, at(2000));
	hi = in(p, 0x40, at(3000));
	CHECK_EQ_U64(lo | hi << 8, 4000);
	/* a second latch before the first is read is ignored */
	out(p, 0x43, 0x00, at(100));
	out(p, 0x43, 0x00, at(200));
	lo = in(p, 0x40, at(300));
	hi = in(p, 0x40, at(300));
	CHECK_EQ_U64(lo | hi << 8, 3996);
	/* LSB-only and MSB-only access on ch1 */
	out(p, 0x43, 0x50, 0);			/* ch1, lsb only, mode 0 */
	out(p, 0x41, 200, 0);
	CHECK_EQ_U64(in(p, 0x41, at(50)), 150);
	out(p, 0x43, 0x60, 0);			/* ch1, msb only, mode 0 */
	out(p, 0x41, 0x02, 0);
	CHECK_EQ_U64(in(p, 0x41, at(1)), 0x01);	/* 0x1ff */
	/* null count until the count is written */
	out(p, 0x43, 0x72, 0);			/* ch1, lsb/msb, mode 1 */
	out(p, 0x43, 0xe4, 0);
	st = in(p, 0x41, 0);
	CHECK(st & 0x40);
	CHECK_EQ_U64(st & 0x3f, 0x32);
	i8254_destroy(p);
}

TEST(i8254_mode0_irq_level_and_gate)
{
	struct i8254 *p = mk();

	/* Linux's oneshot clockevent: mode 0 on ch0 raises IRQ0 once and keeps it high */
	out(p, 0x43, 0x30, 0);
	out(p, 0x40, 100, 0);
	out(p, 0x40, 0, 0);
	i8254_check(p, at(99));
	CHECK(!irq_level);
	i8254_check(p, at(100));
	CHECK(irq_level);
	CHECK_EQ_U64(i8254_deadline(p), UINT64_MAX);
	/* reprogramming lowers OUT */
	out(p, 0x43, 0x30, at(200));
	CHECK(!irq_level);
	i8254_destroy(p);

	p = mk();
	/* channel 2 gate low pauses mode 0 */
	out(p, 0x61, 0x01, 0);
	out(p, 0x43, 0xb0, 0);
	out(p, 0x42, 0xe8, 0);
	out(p, 0x42, 0x03, 0);			/* 1000 */
	out(p, 0x61, 0x00, at(400));
	CHECK(!(in(p, 0x61, at(5000)) & 0x20));
	out(p, 0x61, 0x01, at(5000));
	CHECK(!(in(p, 0x61, at(5000) + at(599)) & 0x20));
	CHECK(in(p, 0x61, at(5000) + at(601)) & 0x20);
	/* mode 1: the gate's rising edge triggers a one-shot */
	out(p, 0x61, 0x00, 0);
	out(p, 0x43, 0xb2, 0);
	out(p, 0x42, 10, 0);
	out(p, 0x42, 0, 0);
	CHECK(in(p, 0x61, at(100)) & 0x20);	/* OUT high until triggered */
	out(p, 0x61, 0x01, at(100));
	CHECK(!(in(p, 0x61, at(105)) & 0x20));
	CHECK(in(p, 0x61, at(110)) & 0x20);
	/* refresh toggle (bit 4) flips about every 15 us */
	CHECK((in(p, 0x61, 0) & 0x10) != (in(p, 0x61, 15085) & 0x10));
	/* port 0x61 keeps bits 0-3 */
	out(p, 0x61, 0x03, 0);
	CHECK_EQ_U64(in(p, 0x61, 0) & 0x0f, 0x03);
	i8254_destroy(p);
}
