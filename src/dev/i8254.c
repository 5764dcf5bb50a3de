/*
 * i8254.c: Intel 8254 PIT (datasheet: control word, modes 0-5, counter latch, read-back,
 * LSB/MSB/both access) clocked at 1.193182 MHz from the caller's clock, computed lazily
 * from the time counting started. Gate of channel 2 and its OUT through port 0x61 (with
 * the refresh toggle, bit 4), as Linux's PIT TSC calibration and firmware delays use them;
 * channels 0 and 1 are always gated on. BCD counting is not supported (counts are binary).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "dev/i8254.h"

#define RW_LATCH 0
#define RW_LSB 1
#define RW_MSB 2
#define RW_BOTH 3

struct pit_channel {
	uint8_t mode, rw, bcd;
	uint32_t count;		/* 1..65536 */
	bool count_loaded;	/* a full count was written since the control word */
	bool armed;		/* counting (modes 1 and 5: since the gate trigger) */
	bool null_count;
	bool gate;
	uint64_t running_since;	/* ns; ticks accumulate from here while counting */
	uint64_t base_ticks;	/* ticks counted before running_since (gate pauses) */
	/* access state */
	bool write_msb_next, read_msb_next, latch_msb_next;
	uint8_t write_lsb;
	bool count_latched, status_latched;
	uint16_t latched_count;
	uint8_t latched_status;
	/* IRQ tracking (channel 0) */
	uint64_t fired;		/* periods signalled (modes 2, 3) or 1 once fired (0, 1, 4, 5) */
	bool irq_level;
};

struct i8254 {
	pthread_mutex_t lock;
	struct i8254_ops ops;
	struct pit_channel ch[3];
	uint8_t port61;		/* bits 0-3 as written */
};

static uint64_t ns_to_ticks(uint64_t ns)
{
	return (uint64_t)((unsigned __int128)ns * I8254_HZ / 1000000000u);
}

static uint64_t ticks_to_ns_ceil(uint64_t ticks)
{
	return (uint64_t)(((unsigned __int128)ticks * 1000000000u + I8254_HZ - 1) / I8254_HZ);
}

static bool counting(const struct pit_channel *c)
{
	if (!c->armed)
		return false;
	/* Modes 0, 2, 3, 4 stop while the gate is low; 1 and 5 only use its rising edge. */
	return c->gate || c->mode == 1 || c->mode == 5;
}

static uint64_t elapsed(const struct pit_channel *c, uint64_t now)
{
	uint64_t d = c->base_ticks;

	if (counting(c) && now > c->running_since)
		d += ns_to_ticks(now - c->running_since);
	return d;
}

static uint16_t value_at(const struct pit_channel *c, uint64_t d)
{
	uint32_t n = c->count, p, h;

	if (!c->armed)
		return (uint16_t)n;
	switch (c->mode) {
	case 2:
		return (uint16_t)(n - d % n);
	case 3:
		p = (uint32_t)(d % n);
		h = (n + 1) / 2;
		return (uint16_t)((p < h ? n - 2 * p : n - 2 * (p - h)) & ~1u);
	default:
		return (uint16_t)((n - d) & 0xffff);
	}
}

static bool out_at(const struct pit_channel *c, uint64_t d)
{
	uint32_t n = c->count;

	if (!c->armed)
		return c->mode != 0;
	switch (c->mode) {
	case 0:
	case 1:
		return d >= n;
	case 2:
		return !c->gate || d % n != n - 1;
	case 3:
		return !c->gate || d % n < (n + 1) / 2;
	default:
		return d != n;
	}
}

static uint8_t status_of(const struct pit_channel *c, uint64_t now)
{
	return (uint8_t)(out_at(c, elapsed(c, now)) << 7 | c->null_count << 6 | c->rw << 4 |
			 c->mode << 1 | c->bcd);
}

static void start_counting(struct pit_channel *c, uint64_t now)
{
	c->armed = true;
	c->null_count = false;
	c->base_ticks = 0;
	c->running_since = now;
	c->fired = 0;
}

/* Channel 0 output to IRQ 0. */
static void irq_update(struct i8254 *pit, uint64_t now)
{
	struct pit_channel *c = &pit->ch[0];
	uint64_t d, periods;
	bool level;

	if (!pit->ops.irq0)
		return;
	if (!c->armed) {
		level = false;
		if (c->irq_level != level) {
			c->irq_level = level;
			pit->ops.irq0(pit->ops.opaque, level);
		}
		return;
	}
	d = elapsed(c, now);
	switch (c->mode) {
	case 0:
	case 1:
		level = d >= c->count;
		if (level != c->irq_level) {
			c->irq_level = level;
			pit->ops.irq0(pit->ops.opaque, level);
		}
		break;
	case 2:
	case 3:
		periods = d / c->count;
		if (periods > c->fired) {
			c->fired = periods;
			pit->ops.irq0(pit->ops.opaque, true);
			pit->ops.irq0(pit->ops.opaque, false);
		}
		break;
	default:
		if (d >= c->count && !c->fired) {
			c->fired = 1;
			pit->ops.irq0(pit->ops.opaque, true);
			pit->ops.irq0(pit->ops.opaque, false);
		}
		break;
	}
}

struct i8254 *i8254_create(const struct i8254_ops *ops)
{
	struct i8254 *pit = calloc(1, sizeof *pit);

	if (!pit)
		return NULL;
	pthread_mutex_init(&pit->lock, NULL);
	if (ops)
		pit->ops = *ops;
	i8254_reset(pit);
	return pit;
}

void i8254_destroy(struct i8254 *pit)
{
	if (!pit)
		return;
	pthread_mutex_destroy(&pit->lock);
	free(pit);
}

void i8254_reset(struct i8254 *pit)
{
	pthread_mutex_lock(&pit->lock);
	memset(pit->ch, 0, sizeof pit->ch);
	for (int i = 0; i < 3; i++) {
		pit->ch[i].count = 65536;
		pit->ch[i].gate = i != 2;
		pit->ch[i].rw = RW_BOTH;
	}
	pit->port61 = 0;
	pthread_mutex_unlock(&pit->lock);
}

bool i8254_port(uint16_t port)
{
	return (port >= 0x40 && port <= 0x43) || port == 0x61;
}

static void latch_count(struct pit_channel *c, uint64_t now)
{
	if (c->count_latched)
		return;
	c->latched_count = value_at(c, elapsed(c, now));
	c->count_latched = true;
	c->latch_msb_next = c->rw == RW_MSB;
}

static void control_write(struct i8254 *pit, uint8_t val, uint64_t now)
{
	unsigned sel = val >> 6, rw = (val >> 4) & 3, mode = (val >> 1) & 7;
	struct pit_channel *c;

	if (sel == 3) {		/* read-back */
		for (int i = 0; i < 3; i++) {
			if (!(val & (2u << i)))
				continue;
			c = &pit->ch[i];
			if (!(val & 0x20))
				latch_count(c, now);
			if (!(val & 0x10) && !c->status_latched) {
				c->latched_status = status_of(c, now);
				c->status_latched = true;
			}
		}
		return;
	}
	c = &pit->ch[sel];
	if (rw == RW_LATCH) {
		latch_count(c, now);
		return;
	}
	if (mode > 5)
		mode -= 4;
	c->mode = (uint8_t)mode;
	c->rw = (uint8_t)rw;
	c->bcd = val & 1;
	c->armed = false;
	c->count_loaded = false;
	c->null_count = true;
	c->write_msb_next = c->read_msb_next = c->latch_msb_next = false;
	c->count_latched = c->status_latched = false;
	c->fired = 0;
	if (sel == 0)
		irq_update(pit, now);
}

static void count_write(struct i8254 *pit, struct pit_channel *c, uint8_t val, uint64_t now)
{
	uint32_t n;

	switch (c->rw) {
	case RW_LSB:
		n = val;
		break;
	case RW_MSB:
		n = (uint32_t)val << 8;
		break;
	default:
		if (!c->write_msb_next) {
			c->write_lsb = val;
			c->write_msb_next = true;
			/* Mode 0: writing the first byte stops the count. */
			if (c->mode == 0)
				c->armed = false;
			return;
		}
		c->write_msb_next = false;
		n = c->write_lsb | (uint32_t)val << 8;
		break;
	}
	c->count = n ? n : 65536;
	c->count_loaded = true;
	c->null_count = true;
	if (c->mode == 1 || c->mode == 5)
		return;		/* waits for a gate trigger */
	start_counting(c, now);
}

static uint8_t count_read(struct pit_channel *c, uint64_t now)
{
	uint16_t v;
	uint8_t b;

	if (c->status_latched) {
		c->status_latched = false;
		return c->latched_status;
	}
	if (c->count_latched) {
		v = c->latched_count;
		if (c->latch_msb_next) {
			c->count_latched = false;
			c->latch_msb_next = false;
			return (uint8_t)(v >> 8);
		}
		if (c->rw == RW_BOTH)
			c->latch_msb_next = true;
		else
			c->count_latched = false;
		return (uint8_t)v;
	}
	v = value_at(c, elapsed(c, now));
	switch (c->rw) {
	case RW_MSB:
		return (uint8_t)(v >> 8);
	case RW_BOTH:
		b = c->read_msb_next ? (uint8_t)(v >> 8) : (uint8_t)v;
		c->read_msb_next = !c->read_msb_next;
		return b;
	default:
		return (uint8_t)v;
	}
}

static void gate2_write(struct pit_channel *c, bool gate, uint64_t now)
{
	if (gate == c->gate)
		return;
	if (!gate) {
		if (counting(c) && c->mode != 1 && c->mode != 5) {
			c->base_ticks = elapsed(c, now);
			c->running_since = now;
		}
		c->gate = false;
		return;
	}
	c->gate = true;
	switch (c->mode) {
	case 1:
	case 2:
	case 3:
	case 5:
		/* A rising gate (re)starts the count. */
		if (c->count_loaded)
			start_counting(c, now);
		break;
	default:
		c->running_since = now;	/* resume */
		break;
	}
}

int i8254_pio(struct i8254 *pit, uint16_t port, bool write, uint8_t *val, uint64_t now)
{
	struct pit_channel *c2 = &pit->ch[2];

	if (!i8254_port(port))
		return -EINVAL;
	pthread_mutex_lock(&pit->lock);
	if (port == 0x61) {
		if (write) {
			pit->port61 = *val & 0xf;
			gate2_write(c2, *val & 1, now);
		} else {
			/* bit 4 toggles with each DRAM refresh, every 15.085 us */
			*val = (uint8_t)(pit->port61 | (((now / 15085) & 1) << 4) |
					 (out_at(c2, elapsed(c2, now)) << 5));
		}
	} else if (port == 0x43) {
		if (write)
			control_write(pit, *val, now);
		else
			*val = 0xff;	/* the control word register cannot be read */
	} else {
		struct pit_channel *c = &pit->ch[port - 0x40];

		if (write) {
			count_write(pit, c, *val, now);
			if (port == 0x40)
				irq_update(pit, now);
		} else {
			*val = count_read(c, now);
		}
	}
	pthread_mutex_unlock(&pit->lock);
	return 0;
}

void i8254_check(struct i8254 *pit, uint64_t now)
{
	pthread_mutex_lock(&pit->lock);
	irq_update(pit, now);
	pthread_mutex_unlock(&pit->lock);
}

uint64_t i8254_deadline(struct i8254 *pit)
{
	struct pit_channel *c = &pit->ch[0];
	uint64_t target, r = UINT64_MAX;

	pthread_mutex_lock(&pit->lock);
	if (c->armed && counting(c)) {
		switch (c->mode) {
		case 0:
		case 1:
			target = c->irq_level ? UINT64_MAX : c->count;
			break;
		case 2:
		case 3:
			target = (c->fired + 1) * c->count;
			break;
		default:
			target = c->fired ? UINT64_MAX : c->count;
			break;
		}
		if (target != UINT64_MAX) {
			if (target <= c->base_ticks)
				r = c->running_since;
			else
				r = c->running_since + ticks_to_ns_ceil(target - c->base_ticks);
		}
	}
	pthread_mutex_unlock(&pit->lock);
	return r;
}
