/*
 * rtc: the MC146818 CMOS clock (registers 0-9, status A/B, century 0x32): values coherent with
 * status B's BCD/binary and 12/24-hour bits, a plausible date, two reads agreeing, and the
 * seconds register advancing within 2 s with about 1 s between ticks (TSC, PIT-calibrated).
 */
#include "rt.h"

static uint8_t cmos(uint8_t r)
{
	outb(0x70, r);
	return inb(0x71);
}

static bool bcd_ok(uint8_t v)
{
	return (v & 0xf) <= 9 && (v >> 4) <= 9;
}

static int conv(uint8_t v, bool bcd)
{
	return bcd ? (v >> 4) * 10 + (v & 0xf) : v;
}

struct tm6 {
	uint8_t sec, min, hour, day, mon, year;
};

static void read_clock(struct tm6 *t)
{
	for (int i = 0; i < 100000 && (cmos(0x0a) & 0x80); i++)
		cpu_relax();
	t->sec = cmos(0);
	t->min = cmos(2);
	t->hour = cmos(4);
	t->day = cmos(7);
	t->mon = cmos(8);
	t->year = cmos(9);
}

static uint8_t wait_tick(uint8_t from, uint64_t us, bool *ticked)
{
	uint64_t end = tsc_deadline(us);
	uint8_t s = from;
	*ticked = false;
	while ((int64_t)(rdtsc() - end) < 0) {
		if (!(cmos(0x0a) & 0x80) && (s = cmos(0)) != from) {
			*ticked = true;
			break;
		}
		udelay(1000);
	}
	return s;
}

void test_main(void)
{
	uint8_t b = cmos(0x0b);
	bool bcd = !(b & 4), h24 = b & 2;
	printf("# status A %02x B %02x C %02x D %02x (%s, %s)\n", cmos(0x0a), b, cmos(0x0c), cmos(0x0d),
	       bcd ? "BCD" : "binary", h24 ? "24h" : "12h");
	check(cmos(0x0d) & 0x80, "valid-ram-time", "status D %x", cmos(0x0d));

	struct tm6 t;
	read_clock(&t);
	uint8_t hr = t.hour & (h24 ? 0xff : 0x7f);
	bool fmt = !bcd || (bcd_ok(t.sec) && bcd_ok(t.min) && bcd_ok(hr) && bcd_ok(t.day) &&
			    bcd_ok(t.mon) && bcd_ok(t.year));
	check(fmt, "bcd-digits", "raw %02x:%02x:%02x %02x/%02x/%02x", t.hour, t.min, t.sec, t.day,
	      t.mon, t.year);
	int sec = conv(t.sec, bcd), min = conv(t.min, bcd), hour = conv(hr, bcd);
	int day = conv(t.day, bcd), mon = conv(t.mon, bcd), year = conv(t.year, bcd);
	int cent = conv(cmos(0x32), bcd);
	printf("# %02d%02d-%02d-%02d %02d:%02d:%02d%s\n", cent, year, mon, day, hour, min, sec,
	       h24 ? "" : (t.hour & 0x80 ? " pm" : " am"));
	bool range = sec < 60 && min < 60 && (h24 ? hour < 24 : hour >= 1 && hour <= 12) &&
		     day >= 1 && day <= 31 && mon >= 1 && mon <= 12 && year <= 99;
	check(range, "field-ranges", "%d:%d:%d %d/%d/%d", hour, min, sec, day, mon, year);
	check(cent == 20 && year >= 24, "plausible-date", "century %d year %d", cent, year);

	struct tm6 u;
	read_clock(&u);
	check(u.min == t.min || u.sec < t.sec, "reads-agree", "minute %02x then %02x", t.min, u.min);

	bool ticked;
	uint8_t s1 = wait_tick(cmos(0), 2000000, &ticked);
	check(ticked, "seconds-advance", "seconds stuck at %02x for 2 s", s1);
	if (!ticked)
		return;
	uint64_t t0 = rdtsc();
	uint8_t s2 = wait_tick(s1, 2000000, &ticked);
	uint64_t ms = (rdtsc() - t0) / tsc_khz();
	int d = (conv(s2, bcd) - conv(s1, bcd) + 60) % 60;
	printf("# next tick after %lu ms (TSC %lu kHz)\n", ms, tsc_khz());
	check(ticked && d == 1, "seconds-step", "%02x -> %02x", s1, s2);
	check(ticked && ms >= 600 && ms <= 1500, "tick-interval", "%lu ms between ticks", ms);
}
