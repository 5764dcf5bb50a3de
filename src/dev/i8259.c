/*
 * i8259.c: two cascaded 8259A PICs (Intel 8259A datasheet: ICW1-ICW4, OCW1-OCW3) and the
 * PIIX/ICH ELCR edge/level registers. Fully nested and special fully nested modes, priority
 * rotation, specific and non-specific EOI, auto-EOI, special mask mode, IRR/ISR read, poll,
 * spurious IRQ7/IRQ15. The cascade input IRQ2 latches the slave's INT. Left out:
 * 8080 mode, buffered mode, LTIM (level mode comes from the ELCR as on PCs).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "dev/i8259.h"

struct pic_chip {
	uint8_t irr, isr, imr;
	uint8_t lines;		/* input levels */
	uint8_t elcr, elcr_mask;
	uint8_t vector_base;
	uint8_t lowest;		/* IRQ of lowest priority - 1 (priority rotation) */
	uint8_t init_step;	/* 0: ready; 2..4: expecting ICW2..ICW4 */
	bool icw4_needed, single;
	bool auto_eoi, rotate_aeoi, sfnm, special_mask;
	bool read_isr, poll;
};

struct i8259 {
	pthread_mutex_t lock;
	struct i8259_ops ops;
	struct pic_chip chip[2];
	bool out;
};

/* Priority number (0 = highest) of the highest-priority bit set in `mask`, or 8. */
static int prio_of(const struct pic_chip *c, uint8_t mask)
{
	for (int p = 0; p < 8; p++)
		if (mask & (1u << ((p + c->lowest + 1) & 7)))
			return p;
	return 8;
}

static int irq_of_prio(const struct pic_chip *c, int p)
{
	return (p + c->lowest + 1) & 7;
}

/* The IRQ the chip would signal, or -1. */
static int chip_pending(const struct pic_chip *c, bool master)
{
	uint8_t req = c->irr & ~c->imr, in_service = c->isr;
	int p = prio_of(c, req), ps;

	if (p == 8)
		return -1;
	if (c->special_mask)
		in_service &= ~c->imr;
	/* Special fully nested: the slave may interrupt its own in-service cascade. */
	if (master && c->sfnm)
		in_service &= ~(1u << 2);
	ps = prio_of(c, in_service);
	return p < ps ? irq_of_prio(c, p) : -1;
}

/* Recompute the cascade and the INTR output; returns true when notify is due. */
static bool update_locked(struct i8259 *pic)
{
	struct pic_chip *m = &pic->chip[0], *s = &pic->chip[1];
	bool out;

	/* IRQ2 latches the slave's INT; only the master's INTA clears it. */
	if (chip_pending(s, false) >= 0)
		m->irr |= 1u << 2;
	out = chip_pending(m, true) >= 0;
	pic->out = out;
	return out;
}

static void chip_reset(struct pic_chip *c)
{
	uint8_t elcr = c->elcr, mask = c->elcr_mask, lines = c->lines;

	memset(c, 0, sizeof *c);
	c->elcr = elcr;
	c->elcr_mask = mask;
	c->lines = lines;
	c->lowest = 7;
}

struct i8259 *i8259_create(const struct i8259_ops *ops)
{
	struct i8259 *pic = calloc(1, sizeof *pic);

	if (!pic)
		return NULL;
	pthread_mutex_init(&pic->lock, NULL);
	if (ops)
		pic->ops = *ops;
	pic->chip[0].elcr_mask = 0xf8;
	pic->chip[1].elcr_mask = 0xde;
	i8259_reset(pic);
	return pic;
}

void i8259_destroy(struct i8259 *pic)
{
	if (!pic)
		return;
	pthread_mutex_destroy(&pic->lock);
	free(pic);
}

void i8259_reset(struct i8259 *pic)
{
	pthread_mutex_lock(&pic->lock);
	for (int i = 0; i < 2; i++) {
		chip_reset(&pic->chip[i]);
		pic->chip[i].elcr = 0;
	}
	/* Vector bases as a PC BIOS leaves them (IRQ0-7 -> 0x08, IRQ8-15 -> 0x70), for
	 * kernels booted directly that run real-mode code without programming the PICs
	 * (kvm-unit-tests' realmode); ICW1 replaces them for everyone else. */
	pic->chip[0].vector_base = 0x08;
	pic->chip[1].vector_base = 0x70;
	pic->out = false;
	pthread_mutex_unlock(&pic->lock);
}

bool i8259_port(uint16_t port)
{
	return port == 0x20 || port == 0x21 || port == 0xa0 || port == 0xa1 || port == 0x4d0 ||
	       port == 0x4d1;
}

/* Take the chip's highest request into service; returns its IRQ or -1. */
static int chip_ack(struct pic_chip *c, bool master)
{
	int irq = chip_pending(c, master);

	if (irq < 0)
		return -1;
	if (c->auto_eoi) {
		if (c->rotate_aeoi)
			c->lowest = (uint8_t)irq;
	} else {
		c->isr |= 1u << irq;
	}
	/* Edge requests are consumed; level ones stay while the line is high. */
	if (!(c->elcr & (1u << irq)))
		c->irr &= ~(1u << irq);
	return irq;
}

static void eoi(struct pic_chip *c, uint8_t ocw2)
{
	unsigned cmd = ocw2 >> 5, level = ocw2 & 7;
	int p;

	switch (cmd) {
	case 1:	/* non-specific EOI */
	case 5:	/* rotate on non-specific EOI */
		p = prio_of(c, c->isr);
		if (p == 8)
			return;
		c->isr &= ~(1u << irq_of_prio(c, p));
		if (cmd == 5)
			c->lowest = (uint8_t)irq_of_prio(c, p);
		return;
	case 3:	/* specific EOI */
		c->isr &= ~(1u << level);
		return;
	case 7:	/* rotate on specific EOI */
		c->isr &= ~(1u << level);
		c->lowest = (uint8_t)level;
		return;
	case 6:	/* set priority */
		c->lowest = (uint8_t)level;
		return;
	case 4:
		c->rotate_aeoi = true;
		return;
	case 0:
		c->rotate_aeoi = false;
		return;
	default:
		return;
	}
}

static void command_write(struct pic_chip *c, uint8_t val)
{
	if (val & 0x10) {	/* ICW1 */
		chip_reset(c);
		/* Edge sense is reset: edge inputs need a new rising edge. */
		c->irr = c->lines & c->elcr;
		c->icw4_needed = val & 1;
		c->single = val & 2;
		c->init_step = 2;
		return;
	}
	if (val & 0x08) {	/* OCW3 */
		if (val & 0x40)
			c->special_mask = val & 0x20;
		if (val & 0x02)
			c->read_isr = val & 0x01;
		c->poll = val & 0x04;
		return;
	}
	eoi(c, val);		/* OCW2 */
}

static void data_write(struct pic_chip *c, uint8_t val)
{
	switch (c->init_step) {
	case 2:
		c->vector_base = val & 0xf8;
		c->init_step = c->single ? (c->icw4_needed ? 4 : 0) : 3;
		return;
	case 3:
		c->init_step = c->icw4_needed ? 4 : 0;
		return;
	case 4:
		c->auto_eoi = val & 0x02;
		c->sfnm = val & 0x10;
		c->init_step = 0;
		return;
	default:
		c->imr = val;	/* OCW1 */
		return;
	}
}

static uint8_t poll_read(struct i8259 *pic, int idx)
{
	int irq = chip_ack(&pic->chip[idx], idx == 0);

	pic->chip[idx].poll = false;
	if (irq < 0)
		return 0;
	if (idx == 0 && irq == 2)
		chip_ack(&pic->chip[1], false);
	return 0x80 | (uint8_t)irq;
}

int i8259_pio(struct i8259 *pic, uint16_t port, bool write, uint8_t *val)
{
	int idx = (port & 0x80) ? 1 : 0;
	struct pic_chip *c;
	bool notify;

	if (!i8259_port(port))
		return -EINVAL;
	pthread_mutex_lock(&pic->lock);
	if (port == 0x4d0 || port == 0x4d1) {
		c = &pic->chip[port & 1];
		if (write) {
			c->elcr = *val & c->elcr_mask;
			/* Level inputs request while high; edge inputs keep their latch. */
			c->irr = (c->irr & ~c->elcr) | (c->lines & c->elcr);
		} else {
			*val = c->elcr;
		}
	} else {
		c = &pic->chip[idx];
		if (write) {
			if (port & 1)
				data_write(c, *val);
			else
				command_write(c, *val);
		} else if (c->poll) {
			*val = poll_read(pic, idx);
		} else if (port & 1) {
			*val = c->imr;
		} else {
			*val = c->read_isr ? c->isr : c->irr;
		}
	}
	notify = update_locked(pic);
	pthread_mutex_unlock(&pic->lock);
	if (notify && pic->ops.notify)
		pic->ops.notify(pic->ops.opaque);
	return 0;
}

int i8259_set_irq(struct i8259 *pic, unsigned irq, bool level)
{
	struct pic_chip *c;
	uint8_t bit;
	bool notify, old;

	if (irq >= 16 || irq == 2)
		return irq == 2 ? 0 : -EINVAL;	/* IRQ2 is the cascade */
	pthread_mutex_lock(&pic->lock);
	c = &pic->chip[irq >> 3];
	bit = (uint8_t)(1u << (irq & 7));
	old = c->lines & bit;
	if (level)
		c->lines |= bit;
	else
		c->lines &= ~bit;
	if (c->elcr & bit) {
		if (level)
			c->irr |= bit;
		else
			c->irr &= ~bit;
	} else if (level && !old) {
		c->irr |= bit;
	}
	notify = update_locked(pic);
	pthread_mutex_unlock(&pic->lock);
	if (notify && pic->ops.notify)
		pic->ops.notify(pic->ops.opaque);
	return 0;
}

bool i8259_output(struct i8259 *pic)
{
	bool out;

	pthread_mutex_lock(&pic->lock);
	out = pic->out;
	pthread_mutex_unlock(&pic->lock);
	return out;
}

int i8259_intr_ack(struct i8259 *pic)
{
	struct pic_chip *m = &pic->chip[0], *s = &pic->chip[1];
	int irq, sirq, vec;

	pthread_mutex_lock(&pic->lock);
	irq = chip_ack(m, true);
	if (irq < 0) {
		vec = m->vector_base | 7;	/* spurious IRQ7: nothing in service */
	} else if (irq == 2) {
		sirq = chip_ack(s, false);
		vec = sirq < 0 ? (s->vector_base | 7) : (s->vector_base | sirq);
	} else {
		vec = m->vector_base | irq;
	}
	update_locked(pic);
	pthread_mutex_unlock(&pic->lock);
	return vec;
}
