/*
 * test_ferr.c: the chipset's x87 error logic (fpu_ferr.c): FERR# raises IRQ 13, a write to
 * port 0xF0 lowers it and asserts IGNNE# until FERR# goes away, IGNNE# never without FERR#;
 * and the whole path into the cascaded 8259 as a DOS-era handler sees it (vector base+5 on
 * the slave, OUT 0xF0 and FNCLEX in the handler).
 */
#include "dev/fpu_ferr.h"
#include "dev/i8259.h"
#include "unit.h"

struct irq_rec {
	bool level;
	int raises, lowers;
};

static void rec_irq(void *opaque, bool level)
{
	struct irq_rec *r = opaque;

	if (level && !r->level)
		r->raises++;
	if (!level && r->level)
		r->lowers++;
	r->level = level;
}

static void f0_write(struct fpu_ferr *f, uint8_t v)
{
	uint64_t val = v;

	fpu_ferr_io(f, 0, 1, true, &val);
}

TEST(ferr_raises_irq13_and_port_f0_clears_it)
{
	struct irq_rec r = { 0 };
	struct fpu_ferr *f;
	uint64_t val = 0;

	CHECK(fpu_ferr_create(rec_irq, &r, &f) == 0);
	CHECK(!r.level);
	CHECK(!fpu_ferr_ignne(f));
	fpu_ferr_set(f, true);
	CHECK(r.level);
	CHECK_EQ_U64(r.raises, 1);
	CHECK(!fpu_ferr_ignne(f));
	fpu_ferr_set(f, true);	/* a level: no second edge */
	CHECK_EQ_U64(r.raises, 1);
	f0_write(f, 0x00);	/* any value */
	CHECK(!r.level);
	CHECK(fpu_ferr_ignne(f));
	fpu_ferr_set(f, true);	/* still the same exception: IGNNE# holds, IRQ 13 stays low */
	CHECK(!r.level);
	CHECK(fpu_ferr_ignne(f));
	fpu_ferr_set(f, false);	/* FNCLEX: FERR# and IGNNE# go away */
	CHECK(!fpu_ferr_ignne(f));
	CHECK(!r.level);
	fpu_ferr_set(f, true);	/* the next exception raises IRQ 13 again */
	CHECK(r.level);
	CHECK_EQ_U64(r.raises, 2);
	fpu_ferr_io(f, 0, 1, false, &val);
	CHECK_EQ_U64(val & 0xff, 0xff);
	CHECK(r.level);		/* a read changes nothing */
	fpu_ferr_destroy(f);
}

TEST(ferr_ignne_never_without_ferr)
{
	struct irq_rec r = { 0 };
	struct fpu_ferr *f;

	CHECK(fpu_ferr_create(rec_irq, &r, &f) == 0);
	f0_write(f, 0xff);
	CHECK(!fpu_ferr_ignne(f));
	CHECK_EQ_U64(r.raises, 0);
	/* FERR# that goes away before the handler writes 0xF0 takes IRQ 13 down with it */
	fpu_ferr_set(f, true);
	fpu_ferr_set(f, false);
	CHECK(!r.level);
	CHECK_EQ_U64(r.lowers, 1);
	f0_write(f, 0);
	CHECK(!fpu_ferr_ignne(f));
	/* reset drops everything */
	fpu_ferr_set(f, true);
	f0_write(f, 0);
	CHECK(fpu_ferr_ignne(f));
	fpu_ferr_reset(f);
	CHECK(!fpu_ferr_ignne(f));
	CHECK(!r.level);
	fpu_ferr_set(f, true);
	CHECK(r.level);
	fpu_ferr_destroy(f);
	CHECK(fpu_ferr_create(NULL, NULL, &f) == 0);	/* no IRQ wired: still consistent */
	fpu_ferr_set(f, true);
	f0_write(f, 0);
	CHECK(fpu_ferr_ignne(f));
	fpu_ferr_destroy(f);
}

static int pic_notified;

static void pic_notify(void *opaque)
{
	pic_notified++;
}

static void pic_out(struct i8259 *p, uint16_t port, uint8_t v)
{
	i8259_pio(p, port, true, &v);
}

static void ferr_to_pic(void *opaque, bool level)
{
	i8259_set_irq(opaque, FPU_FERR_IRQ, level);
}

/* BIOS vector bases (0x08/0x70): IRQ 13 is INT 75h, through the slave's cascade on IRQ 2. */
TEST(ferr_irq13_through_the_8259)
{
	struct i8259_ops ops = { NULL, pic_notify };
	struct i8259 *p = i8259_create(&ops);
	struct fpu_ferr *f;

	pic_out(p, 0x20, 0x11);
	pic_out(p, 0x21, 0x08);
	pic_out(p, 0x21, 0x04);
	pic_out(p, 0x21, 0x01);
	pic_out(p, 0xa0, 0x11);
	pic_out(p, 0xa1, 0x70);
	pic_out(p, 0xa1, 0x02);
	pic_out(p, 0xa1, 0x01);
	pic_out(p, 0x21, 0x00);
	pic_out(p, 0xa1, 0x00);
	CHECK(fpu_ferr_create(ferr_to_pic, p, &f) == 0);
	CHECK(!i8259_output(p));
	fpu_ferr_set(f, true);	/* FWAIT with an unmasked exception pending, CR0.NE=0 */
	CHECK(i8259_output(p));
	CHECK_EQ_U64(i8259_intr_ack(p), 0x75);
	/* the handler: OUT 0xF0, FNCLEX, EOI to both controllers */
	f0_write(f, 0);
	CHECK(fpu_ferr_ignne(f));
	fpu_ferr_set(f, false);
	pic_out(p, 0xa0, 0x20);
	pic_out(p, 0x20, 0x20);
	CHECK(!i8259_output(p));
	/* a second exception is a new edge */
	fpu_ferr_set(f, true);
	CHECK(i8259_output(p));
	CHECK_EQ_U64(i8259_intr_ack(p), 0x75);
	fpu_ferr_destroy(f);
	i8259_destroy(p);
}
