/* test_ioapic.c: the software CPU's IOAPIC through its MMIO window and input pins. */
#include "dev/ioapic.h"
#include "unit.h"

static struct lapic_msg sent[16];
static int nsent;

static void deliver(void *opaque, const struct lapic_msg *msg)
{
	if (nsent < 16)
		sent[nsent] = *msg;
	nsent++;
}

static struct ioapic *mk(void)
{
	struct ioapic_ops ops = { NULL, deliver };

	nsent = 0;
	return ioapic_create(&ops);
}

static uint32_t rd(struct ioapic *io, uint32_t reg)
{
	uint64_t v = reg;

	ioapic_mmio(io, 0, 4, true, &v);
	ioapic_mmio(io, 0x10, 4, false, &v);
	return (uint32_t)v;
}

static void wr(struct ioapic *io, uint32_t reg, uint32_t val)
{
	uint64_t v = reg;

	ioapic_mmio(io, 0, 4, true, &v);
	v = val;
	ioapic_mmio(io, 0x10, 4, true, &v);
}

static void rte(struct ioapic *io, unsigned pin, uint64_t val)
{
	wr(io, 0x10 + 2 * pin + 1, (uint32_t)(val >> 32));
	wr(io, 0x10 + 2 * pin, (uint32_t)val);
}

TEST(ioapic_registers)
{
	struct ioapic *io = mk();

	CHECK_EQ_U64(rd(io, 1), 0x00170011);
	wr(io, 0, 0x0a000000);
	CHECK_EQ_U64(rd(io, 0), 0x0a000000);
	CHECK_EQ_U64(rd(io, 0x10), 0x10000);	/* masked at reset */
	rte(io, 5, 0x0300000000000000ull | 0xa000 | 0x931);
	CHECK_EQ_U64(rd(io, 0x10 + 10), 0xa931);
	CHECK_EQ_U64(rd(io, 0x10 + 11), 0x03000000);
	/* remote IRR and delivery status are read-only */
	wr(io, 0x10 + 10, 0x5000 | 0x31);
	CHECK_EQ_U64(rd(io, 0x10 + 10), 0x31);
	CHECK_EQ_U64(ioapic_set_irq(io, 24, true), (uint64_t)-22);
	ioapic_destroy(io);
}

TEST(ioapic_edge)
{
	struct ioapic *io = mk();

	rte(io, 2, 0x0100000000000000ull | 0x30);
	ioapic_set_irq(io, 2, true);
	CHECK_EQ_U64(nsent, 1);
	CHECK_EQ_U64(sent[0].vector, 0x30);
	CHECK_EQ_U64(sent[0].dest, 1);
	CHECK(!sent[0].level && !sent[0].logical);
	CHECK_EQ_U64(sent[0].mode, LAPIC_DM_FIXED);
	/* staying high is not a new edge */
	ioapic_set_irq(io, 2, true);
	CHECK_EQ_U64(nsent, 1);
	ioapic_set_irq(io, 2, false);
	ioapic_set_irq(io, 2, true);
	CHECK_EQ_U64(nsent, 2);
	/* masked: edges are lost */
	rte(io, 2, 0x10000 | 0x30);
	ioapic_set_irq(io, 2, false);
	ioapic_set_irq(io, 2, true);
	CHECK_EQ_U64(nsent, 2);
	/* logical, lowest priority */
	rte(io, 3, 0x0f00000000000000ull | 0x900 | 0x41);
	ioapic_set_irq(io, 3, true);
	CHECK_EQ_U64(nsent, 3);
	CHECK(sent[2].logical);
	CHECK_EQ_U64(sent[2].mode, LAPIC_DM_LOWPRI);
	CHECK_EQ_U64(sent[2].dest, 0x0f);
	ioapic_destroy(io);
}

TEST(ioapic_level_remote_irr_eoi)
{
	struct ioapic *io = mk();

	rte(io, 16, 0x8000 | 0x50);
	ioapic_set_irq(io, 16, true);
	CHECK_EQ_U64(nsent, 1);
	CHECK(sent[0].level);
	CHECK(ioapic_get_rte(io, 16) & (1u << 14));	/* remote IRR */
	/* no redelivery while remote IRR is set */
	ioapic_set_irq(io, 16, true);
	CHECK_EQ_U64(nsent, 1);
	/* EOI of another vector: nothing */
	ioapic_eoi(io, 0x51);
	CHECK_EQ_U64(nsent, 1);
	/* EOI while still asserted: redelivered */
	ioapic_eoi(io, 0x50);
	CHECK_EQ_U64(nsent, 2);
	/* deassert, EOI: remote IRR clears and nothing more */
	ioapic_set_irq(io, 16, false);
	ioapic_eoi(io, 0x50);
	CHECK_EQ_U64(nsent, 2);
	CHECK(!(ioapic_get_rte(io, 16) & (1u << 14)));
	/* the EOI register (0x40) works too */
	ioapic_set_irq(io, 16, true);
	CHECK_EQ_U64(nsent, 3);
	{
		uint64_t v = 0x50;

		ioapic_mmio(io, 0x40, 4, true, &v);
	}
	CHECK_EQ_U64(nsent, 4);
	ioapic_destroy(io);
}

TEST(ioapic_level_masking)
{
	struct ioapic *io = mk();

	rte(io, 9, 0x18000 | 0x61);	/* level, masked */
	ioapic_set_irq(io, 9, true);
	CHECK_EQ_U64(nsent, 0);
	/* unmasking an asserted level line delivers it */
	rte(io, 9, 0x8000 | 0x61);
	CHECK_EQ_U64(nsent, 1);
	CHECK_EQ_U64(sent[0].vector, 0x61);
	/* ExtINT and NMI messages */
	rte(io, 0, 0x700);
	ioapic_set_irq(io, 0, true);
	CHECK_EQ_U64(sent[1].mode, LAPIC_DM_EXTINT);
	rte(io, 1, 0x400);
	ioapic_set_irq(io, 1, true);
	CHECK_EQ_U64(sent[2].mode, LAPIC_DM_NMI);
	ioapic_destroy(io);
}

/* The IOAPIC wired to real local APICs: level EOI broadcast closes the loop. */
static struct lapic *apics[2];
static struct ioapic *wired;

static void route(void *opaque, const struct lapic_msg *msg)
{
	lapic_route(apics, 2, NULL, msg);
}

static void eoi(void *opaque, uint8_t vector)
{
	ioapic_eoi(wired, vector);
}

TEST(ioapic_to_lapic)
{
	struct ioapic_ops iops = { NULL, route };
	struct lapic_ops lops = { NULL, NULL, NULL, eoi };
	uint64_t v = 0x1ff;

	wired = ioapic_create(&iops);
	for (int i = 0; i < 2; i++) {
		apics[i] = lapic_create((uint32_t)i, i == 0, 0, &lops);
		lapic_mmio(apics[i], 0xf0, 4, true, &v, 0);
	}
	rte(wired, 20, 0x0100000000000000ull | 0x8000 | 0x72);
	ioapic_set_irq(wired, 20, true);
	CHECK(!lapic_intr_pending(apics[0]));
	CHECK_EQ_U64(lapic_intr_ack(apics[1]), 0x72);
	v = 0;
	lapic_mmio(apics[1], 0xb0, 4, true, &v, 0);	/* EOI: line still high -> again */
	CHECK_EQ_U64(lapic_intr_ack(apics[1]), 0x72);
	ioapic_set_irq(wired, 20, false);
	lapic_mmio(apics[1], 0xb0, 4, true, &v, 0);
	CHECK(!lapic_intr_pending(apics[1]));
	CHECK(!(ioapic_get_rte(wired, 20) & (1u << 14)));
	for (int i = 0; i < 2; i++)
		lapic_destroy(apics[i]);
	ioapic_destroy(wired);
}
