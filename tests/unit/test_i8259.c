/* test_i8259.c: the cascaded 8259A pair programmed the way Linux and SeaBIOS do it. */
#include "dev/i8259.h"
#include "unit.h"

static int notified;

static void notify(void *opaque)
{
	notified++;
}

static void out(struct i8259 *p, uint16_t port, uint8_t v)
{
	i8259_pio(p, port, true, &v);
}

static uint8_t in(struct i8259 *p, uint16_t port)
{
	uint8_t v = 0;

	i8259_pio(p, port, false, &v);
	return v;
}

/* Linux's init_8259A(): vectors 0x30/0x38, cascade on IRQ2, ICW4 8086 mode. */
static struct i8259 *linux_init(bool auto_eoi)
{
	struct i8259_ops ops = { NULL, notify };
	struct i8259 *p = i8259_create(&ops);

	notified = 0;
	out(p, 0x21, 0xff);
	out(p, 0xa1, 0xff);
	out(p, 0x20, 0x11);
	out(p, 0x21, 0x30);
	out(p, 0x21, 0x04);
	out(p, 0x21, auto_eoi ? 0x03 : 0x01);
	out(p, 0xa0, 0x11);
	out(p, 0xa1, 0x38);
	out(p, 0xa1, 0x02);
	out(p, 0xa1, 0x01);
	out(p, 0x21, 0x00);
	out(p, 0xa1, 0x00);
	return p;
}

TEST(i8259_init_and_priorities)
{
	struct i8259 *p = linux_init(false);

	CHECK_EQ_U64(in(p, 0x21), 0);
	CHECK(!i8259_output(p));
	i8259_set_irq(p, 3, true);
	i8259_set_irq(p, 1, true);
	CHECK(i8259_output(p));
	CHECK(notified > 0);
	CHECK_EQ_U64(i8259_intr_ack(p), 0x31);
	/* IRQ3 has lower priority than IRQ1 in service */
	CHECK(!i8259_output(p));
	out(p, 0x20, 0x0b);			/* OCW3: read ISR */
	CHECK_EQ_U64(in(p, 0x20), 0x02);
	out(p, 0x20, 0x0a);			/* OCW3: read IRR */
	CHECK_EQ_U64(in(p, 0x20), 0x08);
	/* IRQ0 preempts */
	i8259_set_irq(p, 0, true);
	CHECK(i8259_output(p));
	CHECK_EQ_U64(i8259_intr_ack(p), 0x30);
	out(p, 0x20, 0x20);			/* non-specific EOI: IRQ0 */
	out(p, 0x20, 0x61);			/* specific EOI: IRQ1 */
	CHECK(i8259_output(p));
	CHECK_EQ_U64(i8259_intr_ack(p), 0x33);
	out(p, 0x20, 0x20);
	CHECK(!i8259_output(p));
	/* masking (OCW1) */
	out(p, 0x21, 0x10);
	i8259_set_irq(p, 4, true);
	CHECK(!i8259_output(p));
	out(p, 0x21, 0x00);
	CHECK(i8259_output(p));
	CHECK_EQ_U64(i8259_intr_ack(p), 0x34);
	out(p, 0x20, 0x20);
	i8259_destroy(p);
}

TEST(i8259_cascade)
{
	struct i8259 *p = linux_init(false);

	i8259_set_irq(p, 10, true);
	CHECK(i8259_output(p));
	CHECK_EQ_U64(i8259_intr_ack(p), 0x3a);
	out(p, 0x20, 0x0b);
	CHECK_EQ_U64(in(p, 0x20), 0x04);
	out(p, 0xa0, 0x0b);
	CHECK_EQ_U64(in(p, 0xa0), 0x04);
	/* another slave IRQ waits until both EOIs (fully nested) */
	i8259_set_irq(p, 12, true);
	CHECK(!i8259_output(p));
	out(p, 0xa0, 0x62);			/* Linux: specific EOI slave, then master */
	out(p, 0x20, 0x62);
	CHECK(i8259_output(p));
	CHECK_EQ_U64(i8259_intr_ack(p), 0x3c);
	out(p, 0xa0, 0x20);
	out(p, 0x20, 0x20);
	CHECK(!i8259_output(p));
	/* slave masked at the master's IMR */
	out(p, 0x21, 0x04);
	i8259_set_irq(p, 8, true);
	CHECK(!i8259_output(p));
	out(p, 0x21, 0x00);
	CHECK_EQ_U64(i8259_intr_ack(p), 0x38);
	i8259_destroy(p);
}

TEST(i8259_seabios_vectors_and_poll)
{
	struct i8259_ops ops = { NULL, notify };
	struct i8259 *p = i8259_create(&ops);

	/* SeaBIOS pic_setup: 0x08 and 0x70 */
	out(p, 0x20, 0x11);
	out(p, 0xa0, 0x11);
	out(p, 0x21, 0x08);
	out(p, 0xa1, 0x70);
	out(p, 0x21, 0x04);
	out(p, 0xa1, 0x02);
	out(p, 0x21, 0x01);
	out(p, 0xa1, 0x01);
	out(p, 0x21, 0xfb);
	out(p, 0xa1, 0xff);
	out(p, 0x21, 0xfa);			/* unmask IRQ0 */
	i8259_set_irq(p, 0, true);
	CHECK_EQ_U64(i8259_intr_ack(p), 0x08);
	out(p, 0x20, 0x20);
	out(p, 0xa1, 0xfe);
	i8259_set_irq(p, 8, true);
	CHECK_EQ_U64(i8259_intr_ack(p), 0x70);
	out(p, 0xa0, 0x20);
	out(p, 0x20, 0x20);
	/* poll mode: the read acknowledges */
	i8259_set_irq(p, 0, false);
	i8259_set_irq(p, 0, true);
	out(p, 0x20, 0x0c);
	CHECK_EQ_U64(in(p, 0x20), 0x80);
	out(p, 0x20, 0x0b);
	CHECK_EQ_U64(in(p, 0x20), 0x01);
	out(p, 0x20, 0x20);
	out(p, 0x20, 0x0c);
	CHECK_EQ_U64(in(p, 0x20), 0x00);	/* nothing pending */
	i8259_destroy(p);
}

TEST(i8259_elcr_level_and_spurious)
{
	struct i8259 *p = linux_init(false);

	out(p, 0x4d1, 0xff);
	CHECK_EQ_U64(in(p, 0x4d1), 0xde);	/* IRQ8 and IRQ13 are always edge */
	out(p, 0x4d0, 0xff);
	CHECK_EQ_U64(in(p, 0x4d0), 0xf8);
	out(p, 0x4d1, 0x02);
	out(p, 0x4d0, 0x00);
	/* level IRQ9 requests again after EOI while the line is high */
	i8259_set_irq(p, 9, true);
	CHECK_EQ_U64(i8259_intr_ack(p), 0x39);
	out(p, 0xa0, 0x20);
	out(p, 0x20, 0x20);
	CHECK(i8259_output(p));
	CHECK_EQ_U64(i8259_intr_ack(p), 0x39);
	i8259_set_irq(p, 9, false);
	out(p, 0xa0, 0x20);
	out(p, 0x20, 0x20);
	CHECK(!i8259_output(p));
	/* a level request that goes away before INTA: spurious IRQ15 */
	i8259_set_irq(p, 9, true);
	CHECK(i8259_output(p));
	i8259_set_irq(p, 9, false);
	CHECK_EQ_U64(i8259_intr_ack(p), 0x3f);
	out(p, 0xa0, 0x0b);
	CHECK_EQ_U64(in(p, 0xa0), 0);		/* nothing in service on the slave */
	out(p, 0x20, 0x20);			/* Linux EOIs the master cascade */
	/* nothing pending at all: spurious IRQ7 */
	CHECK_EQ_U64(i8259_intr_ack(p), 0x37);
	out(p, 0x20, 0x0b);
	CHECK_EQ_U64(in(p, 0x20), 0);
	i8259_destroy(p);
}

TEST(i8259_auto_eoi_and_rotation)
{
	struct i8259 *p = linux_init(true);

	i8259_set_irq(p, 5, true);
	CHECK_EQ_U64(i8259_intr_ack(p), 0x35);
	out(p, 0x20, 0x0b);
	CHECK_EQ_U64(in(p, 0x20), 0);		/* auto-EOI: not in service */
	i8259_destroy(p);

	p = linux_init(false);
	/* set priority: IRQ4 lowest, so IRQ5 is now highest */
	out(p, 0x20, 0xc4);
	i8259_set_irq(p, 1, true);
	i8259_set_irq(p, 6, true);
	CHECK_EQ_U64(i8259_intr_ack(p), 0x36);
	/* rotate on non-specific EOI: IRQ6 becomes lowest, IRQ7 highest */
	out(p, 0x20, 0xa0);
	CHECK_EQ_U64(i8259_intr_ack(p), 0x31);
	out(p, 0x20, 0x20);
	/* special mask mode lets a lower priority in while a higher one is in service */
	i8259_set_irq(p, 1, false);
	i8259_set_irq(p, 1, true);
	out(p, 0x20, 0xc7);			/* back to IRQ0 highest */
	CHECK_EQ_U64(i8259_intr_ack(p), 0x31);
	i8259_set_irq(p, 3, true);
	CHECK(!i8259_output(p));
	out(p, 0x21, 0x02);			/* mask IRQ1 */
	out(p, 0x20, 0x68);			/* OCW3: set special mask */
	CHECK(i8259_output(p));
	CHECK_EQ_U64(i8259_intr_ack(p), 0x33);
	out(p, 0x20, 0x48);			/* clear special mask */
	i8259_destroy(p);
}
