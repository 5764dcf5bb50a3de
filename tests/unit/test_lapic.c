/* test_lapic.c: the software CPU's local APIC driven through its API with a fake clock. */
#include <stdlib.h>
#include "dev/lapic.h"
#include "unit.h"

struct harness {
	struct lapic *l[2];
	unsigned events[2];
	int eoi_count, eoi_vector;
	int idx[2];
};

static struct harness H;

static void h_notify(void *opaque, unsigned ev)
{
	H.events[*(int *)opaque] |= ev;
}

static void h_send(void *opaque, struct lapic *src, const struct lapic_msg *msg)
{
	lapic_route(H.l, 2, src, msg);
}

static void h_eoi(void *opaque, uint8_t vector)
{
	H.eoi_count++;
	H.eoi_vector = vector;
}

static void setup(void)
{
	memset(&H, 0, sizeof H);
	for (int i = 0; i < 2; i++) {
		struct lapic_ops ops = { &H.idx[i], h_notify, h_send, h_eoi };

		H.idx[i] = i;
		H.l[i] = lapic_create((uint32_t)i, i == 0, 2000000000ull, &ops);
	}
}

static void teardown(void)
{
	lapic_destroy(H.l[0]);
	lapic_destroy(H.l[1]);
}

static uint32_t rd(struct lapic *l, unsigned off, uint64_t now)
{
	uint64_t v = 0;

	lapic_mmio(l, off, 4, false, &v, now);
	return (uint32_t)v;
}

static void wr(struct lapic *l, unsigned off, uint32_t val, uint64_t now)
{
	uint64_t v = val;

	lapic_mmio(l, off, 4, true, &v, now);
}

static void fixed(struct lapic *l, uint8_t vec, bool level)
{
	struct lapic_msg m = { .vector = vec, .mode = LAPIC_DM_FIXED, .level = level };

	lapic_deliver(l, &m);
}

static void enable(struct lapic *l)
{
	wr(l, 0xf0, 0x1ff, 0);
}

TEST(lapic_reset_state)
{
	uint64_t base;

	setup();
	CHECK_EQ_U64(lapic_get_apic_base(H.l[0]), 0xfee00900);
	CHECK_EQ_U64(lapic_get_apic_base(H.l[1]), 0xfee00800);
	CHECK(lapic_mmio_base(H.l[0], &base));
	CHECK_EQ_U64(base, 0xfee00000);
	CHECK_EQ_U64(rd(H.l[1], 0x20, 0), 0x01000000);
	CHECK_EQ_U64(rd(H.l[0], 0x30, 0) & 0xff, 0x14);
	/* the xAPIC ID is writable (KVM's apic test aliases two APICs to ID 0) */
	wr(H.l[1], 0x20, 0x05000000, 0);
	CHECK_EQ_U64(lapic_id(H.l[1]), 5);
	lapic_set_id(H.l[1], 1);
	CHECK_EQ_U64(rd(H.l[0], 0xf0, 0), 0xff);
	CHECK_EQ_U64(rd(H.l[0], 0xe0, 0), 0xffffffff);
	/* BSP LINT0 is virtual wire (ExtINT) at reset, AP's is masked */
	CHECK(lapic_accepts_extint(H.l[0]));
	CHECK(!lapic_accepts_extint(H.l[1]));
	CHECK_EQ_U64(rd(H.l[1], 0x350, 0), 0x10000);
	teardown();
}

TEST(lapic_irr_isr_ppr_order)
{
	setup();
	enable(H.l[0]);
	fixed(H.l[0], 0x31, false);
	fixed(H.l[0], 0x52, false);
	fixed(H.l[0], 0x41, false);
	CHECK(H.events[0] & LAPIC_EV_INTR);
	CHECK_EQ_U64(rd(H.l[0], 0x200 + 0x10 * 1, 0), 1u << (0x31 - 32));
	CHECK(lapic_intr_pending(H.l[0]));
	CHECK_EQ_U64(lapic_intr_ack(H.l[0]), 0x52);
	CHECK_EQ_U64(rd(H.l[0], 0xa0, 0), 0x50);	/* PPR */
	CHECK_EQ_U64(rd(H.l[0], 0x100 + 0x10 * 2, 0), 1u << (0x52 - 64));
	/* 0x41 is a lower class than the one in service */
	CHECK(!lapic_intr_pending(H.l[0]));
	CHECK_EQ_U64(lapic_intr_ack(H.l[0]), (uint64_t)-1);
	/* a higher class preempts */
	fixed(H.l[0], 0x61, false);
	CHECK_EQ_U64(lapic_intr_ack(H.l[0]), 0x61);
	wr(H.l[0], 0xb0, 0, 0);		/* EOI 0x61 */
	wr(H.l[0], 0xb0, 0, 0);		/* EOI 0x52 */
	CHECK_EQ_U64(rd(H.l[0], 0xa0, 0), 0);
	CHECK_EQ_U64(H.eoi_count, 0);
	/* TPR blocks its class and below */
	wr(H.l[0], 0x80, 0x45, 0);
	CHECK_EQ_U64(rd(H.l[0], 0xa0, 0), 0x45);
	CHECK(!lapic_intr_pending(H.l[0]));
	H.events[0] = 0;
	wr(H.l[0], 0x80, 0x30, 0);
	CHECK(H.events[0] & LAPIC_EV_INTR);
	CHECK_EQ_U64(lapic_intr_ack(H.l[0]), 0x41);
	CHECK_EQ_U64(rd(H.l[0], 0xa0, 0), 0x40);
	wr(H.l[0], 0xb0, 0, 0);
	/* 0x31 is in TPR's class 3: not above it */
	CHECK_EQ_U64(lapic_intr_ack(H.l[0]), (uint64_t)-1);
	lapic_set_tpr(H.l[0], 0);
	CHECK_EQ_U64(lapic_intr_ack(H.l[0]), 0x31);
	wr(H.l[0], 0xb0, 0, 0);
	CHECK_EQ_U64(lapic_intr_ack(H.l[0]), (uint64_t)-1);
	teardown();
}

TEST(lapic_level_eoi_broadcast)
{
	setup();
	enable(H.l[0]);
	fixed(H.l[0], 0x70, true);
	CHECK_EQ_U64(rd(H.l[0], 0x180 + 0x10 * 3, 0), 1u << (0x70 - 96));	/* TMR */
	CHECK_EQ_U64(lapic_intr_ack(H.l[0]), 0x70);
	wr(H.l[0], 0xb0, 0, 0);
	CHECK_EQ_U64(H.eoi_count, 1);
	CHECK_EQ_U64(H.eoi_vector, 0x70);
	/* edge interrupt: no broadcast */
	fixed(H.l[0], 0x71, false);
	CHECK_EQ_U64(lapic_intr_ack(H.l[0]), 0x71);
	wr(H.l[0], 0xb0, 0, 0);
	CHECK_EQ_U64(H.eoi_count, 1);
	teardown();
}

TEST(lapic_software_disable)
{
	setup();
	/* SVR bit 8 clear at reset: fixed interrupts are dropped, LVTs stay masked */
	fixed(H.l[1], 0x40, false);
	CHECK(!lapic_intr_pending(H.l[1]));
	wr(H.l[1], 0x320, 0x40, 0);
	CHECK_EQ_U64(rd(H.l[1], 0x320, 0), 0x10040);
	enable(H.l[1]);
	wr(H.l[1], 0x320, 0x40, 0);
	CHECK_EQ_U64(rd(H.l[1], 0x320, 0), 0x40);
	wr(H.l[1], 0xf0, 0xff, 0);
	CHECK_EQ_U64(rd(H.l[1], 0x320, 0), 0x10040);
	/* illegal vector: ESR receive illegal after the ESR write */
	enable(H.l[1]);
	fixed(H.l[1], 5, false);
	CHECK(!lapic_intr_pending(H.l[1]));
	wr(H.l[1], 0x280, 0, 0);
	CHECK_EQ_U64(rd(H.l[1], 0x280, 0), 0x40);
	wr(H.l[1], 0x280, 0, 0);
	CHECK_EQ_U64(rd(H.l[1], 0x280, 0), 0);
	teardown();
}

TEST(lapic_timer_oneshot)
{
	struct lapic *l;

	setup();
	l = H.l[0];
	enable(l);
	wr(l, 0x3e0, 0xb, 0);		/* divide by 1 */
	wr(l, 0x320, 0x40, 0);		/* one-shot, vector 0x40 */
	wr(l, 0x380, 1000, 100);
	CHECK_EQ_U64(lapic_timer_deadline(l), 1100);
	CHECK_EQ_U64(rd(l, 0x390, 500), 600);
	lapic_timer_check(l, 1099);
	CHECK(!lapic_intr_pending(l));
	lapic_timer_check(l, 1100);
	CHECK(lapic_intr_pending(l));
	CHECK_EQ_U64(lapic_timer_deadline(l), UINT64_MAX);
	CHECK_EQ_U64(rd(l, 0x390, 1200), 0);
	CHECK_EQ_U64(lapic_intr_ack(l), 0x40);
	wr(l, 0xb0, 0, 0);
	lapic_timer_check(l, 5000);
	CHECK(!lapic_intr_pending(l));
	/* divide by 16: 10 counts = 160 ns; masked timer counts but does not interrupt */
	wr(l, 0x3e0, 0x3, 0);
	wr(l, 0x320, 0x10040, 0);
	wr(l, 0x380, 10, 10000);
	CHECK_EQ_U64(lapic_timer_deadline(l), 10160);
	CHECK_EQ_U64(rd(l, 0x390, 10032), 8);
	lapic_timer_check(l, 10160);
	CHECK(!lapic_intr_pending(l));
	CHECK_EQ_U64(rd(l, 0x390, 10200), 0);
	/* writing 0 stops the timer */
	wr(l, 0x380, 10, 20000);
	wr(l, 0x380, 0, 20001);
	CHECK_EQ_U64(lapic_timer_deadline(l), UINT64_MAX);
	teardown();
}

TEST(lapic_timer_periodic)
{
	struct lapic *l;
	int n = 0;

	setup();
	l = H.l[0];
	enable(l);
	wr(l, 0x3e0, 0x0, 0);		/* divide by 2 */
	wr(l, 0x320, 0x20000 | 0x50, 0);
	wr(l, 0x380, 1000, 0);
	CHECK_EQ_U64(lapic_timer_deadline(l), 2000);
	CHECK_EQ_U64(rd(l, 0x390, 2500), 750);
	for (uint64_t t = 2000; t <= 6000; t += 2000) {
		lapic_timer_check(l, t);
		if (lapic_intr_ack(l) == 0x50) {
			n++;
			wr(l, 0xb0, 0, 0);
		}
	}
	CHECK_EQ_U64(n, 3);
	CHECK_EQ_U64(lapic_timer_deadline(l), 8000);
	/* late: missed periods coalesce and the phase is kept */
	lapic_timer_check(l, 13000);
	CHECK_EQ_U64(lapic_intr_ack(l), 0x50);
	CHECK_EQ_U64(lapic_timer_deadline(l), 14000);
	/* periodic -> one-shot: the count goes on, ends at the period's end, stops there */
	wr(l, 0x320, 0x50, 13500);
	CHECK_EQ_U64(rd(l, 0x380, 13500), 1000);
	CHECK_EQ_U64(rd(l, 0x390, 13500), 250);
	CHECK_EQ_U64(lapic_timer_deadline(l), 14000);
	wr(l, 0xb0, 0, 13500);
	lapic_timer_check(l, 14000);
	CHECK_EQ_U64(lapic_intr_ack(l), 0x50);
	wr(l, 0xb0, 0, 14000);
	CHECK_EQ_U64(lapic_timer_deadline(l), UINT64_MAX);
	CHECK_EQ_U64(rd(l, 0x390, 14100), 0);
	/* an expired one-shot switched to periodic stays at zero */
	wr(l, 0x320, 0x20050, 14200);
	CHECK_EQ_U64(rd(l, 0x390, 14300), 0);
	CHECK_EQ_U64(lapic_timer_deadline(l), UINT64_MAX);
	/* one-shot -> periodic while running: reloads at expiry */
	wr(l, 0x320, 0x50, 20000);
	wr(l, 0x380, 1000, 20000);
	wr(l, 0x320, 0x20050, 20500);
	CHECK_EQ_U64(rd(l, 0x390, 20500), 750);
	lapic_timer_check(l, 22000);
	CHECK_EQ_U64(lapic_timer_deadline(l), 24000);
	CHECK_EQ_U64(rd(l, 0x390, 22500), 750);
	/* entering TSC-deadline mode disarms and clears the initial count */
	wr(l, 0x320, 0x40050, 22600);
	CHECK_EQ_U64(lapic_timer_deadline(l), UINT64_MAX);
	CHECK_EQ_U64(rd(l, 0x380, 22600), 0);
	teardown();
}

TEST(lapic_timer_tsc_deadline)
{
	struct lapic *l;
	uint64_t v;

	setup();
	l = H.l[0];			/* TSC at 2 GHz */
	enable(l);
	/* not in deadline mode: the MSR write is ignored */
	v = 1000;
	CHECK_EQ_U64(lapic_msr(l, 0x6e0, true, &v, 0), 0);
	CHECK_EQ_U64(lapic_timer_deadline(l), UINT64_MAX);
	wr(l, 0x320, 0x40000 | 0x60, 0);
	v = 5000;
	lapic_msr(l, 0x6e0, true, &v, 0);
	CHECK_EQ_U64(lapic_timer_deadline(l), 2500);
	/* initial-count writes are ignored in deadline mode */
	wr(l, 0x380, 7, 0);
	CHECK_EQ_U64(rd(l, 0x380, 0), 0);
	lapic_msr(l, 0x6e0, false, &v, 100);
	CHECK_EQ_U64(v, 5000);
	lapic_timer_check(l, 2499);
	CHECK(!lapic_intr_pending(l));
	lapic_timer_check(l, 2500);
	CHECK_EQ_U64(lapic_intr_ack(l), 0x60);
	lapic_msr(l, 0x6e0, false, &v, 3000);
	CHECK_EQ_U64(v, 0);
	/* a deadline in the past fires at once */
	v = 10;
	lapic_msr(l, 0x6e0, true, &v, 3000);
	CHECK(lapic_intr_pending(l) == false);	/* 0x60 still in service */
	wr(l, 0xb0, 0, 0);
	CHECK_EQ_U64(lapic_intr_ack(l), 0x60);
	/* writing 0 disarms */
	v = 100000;
	lapic_msr(l, 0x6e0, true, &v, 3000);
	v = 0;
	lapic_msr(l, 0x6e0, true, &v, 3000);
	CHECK_EQ_U64(lapic_timer_deadline(l), UINT64_MAX);
	teardown();
}

TEST(lapic_ipi_physical_logical_shorthand)
{
	setup();
	enable(H.l[0]);
	enable(H.l[1]);
	/* fixed, physical, to APIC 1 */
	wr(H.l[0], 0x310, 1u << 24, 0);
	wr(H.l[0], 0x300, 0x4033, 0);
	CHECK_EQ_U64(lapic_intr_ack(H.l[1]), 0x33);
	CHECK(!lapic_intr_pending(H.l[0]));
	CHECK_EQ_U64(rd(H.l[0], 0x300, 0) & 0x1000, 0);		/* delivery status idle */
	/* self */
	wr(H.l[0], 0x300, 0x40000 | 0x34, 0);
	CHECK_EQ_U64(lapic_intr_ack(H.l[0]), 0x34);
	CHECK(!lapic_intr_pending(H.l[1]));
	/* all excluding self */
	wr(H.l[1], 0x300, 0xc0000 | 0x45, 0);
	CHECK_EQ_U64(lapic_intr_ack(H.l[0]), 0x45);
	CHECK(!lapic_intr_pending(H.l[1]));
	/* all including self */
	wr(H.l[1], 0x300, 0x80000 | 0x56, 0);
	CHECK_EQ_U64(lapic_intr_ack(H.l[0]), 0x56);
	CHECK_EQ_U64(lapic_intr_ack(H.l[1]), 0x56);
	/* logical flat: LDR bits */
	wr(H.l[0], 0xd0, 0x01000000, 0);
	wr(H.l[1], 0xd0, 0x02000000, 0);
	wr(H.l[0], 0x310, 0x02000000, 0);
	wr(H.l[0], 0x300, 0x800 | 0x66, 0);
	CHECK_EQ_U64(lapic_intr_ack(H.l[1]), 0x66);
	CHECK(!lapic_intr_pending(H.l[0]));
	for (int i = 0; i < 4; i++) {
		wr(H.l[0], 0xb0, 0, 0);
		wr(H.l[1], 0xb0, 0, 0);
	}
	/* logical cluster: cluster 1, member bit 0 */
	wr(H.l[0], 0xe0, 0x0fffffff, 0);
	wr(H.l[1], 0xe0, 0x0fffffff, 0);
	wr(H.l[1], 0xd0, 0x11000000, 0);
	wr(H.l[0], 0x310, 0x11000000, 0);
	wr(H.l[0], 0x300, 0x800 | 0x67, 0);
	CHECK_EQ_U64(lapic_intr_ack(H.l[1]), 0x67);
	wr(H.l[1], 0xb0, 0, 0);
	/* physical broadcast */
	wr(H.l[0], 0x310, 0xff000000, 0);
	wr(H.l[0], 0x300, 0x78, 0);
	CHECK_EQ_U64(lapic_intr_ack(H.l[1]), 0x78);
	wr(H.l[1], 0xb0, 0, 0);
	/* lowest priority goes to one APIC only */
	wr(H.l[0], 0x300, 0x100 | 0x79, 0);
	CHECK((lapic_intr_ack(H.l[0]) == 0x79) != (lapic_intr_ack(H.l[1]) == 0x79));
	/* an illegal vector is not sent and sets ESR send-illegal */
	wr(H.l[0], 0x310, 1u << 24, 0);
	wr(H.l[0], 0x300, 0x05, 0);
	wr(H.l[0], 0x280, 0, 0);
	CHECK_EQ_U64(rd(H.l[0], 0x280, 0), 0x20);
	teardown();
}

TEST(lapic_ipi_nmi_init_sipi)
{
	uint8_t vec = 0;

	setup();
	enable(H.l[0]);
	/* NMI */
	wr(H.l[0], 0x310, 1u << 24, 0);
	wr(H.l[0], 0x300, 0x4400, 0);
	CHECK(H.events[1] & LAPIC_EV_NMI);
	/* INIT assert, INIT de-assert (no effect), SIPI, as Linux's wakeup_secondary_cpu */
	wr(H.l[0], 0x300, 0xc500, 0);
	CHECK(H.events[1] & LAPIC_EV_INIT);
	CHECK_EQ_U64(lapic_take_events(H.l[1], &vec), LAPIC_EV_INIT);
	H.events[1] = 0;
	wr(H.l[0], 0x300, 0x8500, 0);
	CHECK_EQ_U64(H.events[1], 0);
	CHECK_EQ_U64(lapic_take_events(H.l[1], &vec), 0);
	wr(H.l[0], 0x300, 0x0600 | 0x9a, 0);
	CHECK(H.events[1] & LAPIC_EV_SIPI);
	CHECK_EQ_U64(lapic_take_events(H.l[1], &vec), LAPIC_EV_SIPI);
	CHECK_EQ_U64(vec, 0x9a);
	/* INIT and SIPI are accepted by a software-disabled APIC; INIT resets registers */
	wr(H.l[1], 0x80, 0x20, 0);
	lapic_init_reset(H.l[1]);
	CHECK_EQ_U64(rd(H.l[1], 0x80, 0), 0);
	CHECK_EQ_U64(rd(H.l[1], 0x20, 0), 0x01000000);
	teardown();
}

TEST(lapic_x2apic_msrs)
{
	struct lapic *l;
	uint64_t v, base;

	setup();
	l = H.l[1];
	lapic_set_id(l, 0x23);
	CHECK_EQ_U64(lapic_msr(l, 0x802, false, &v, 0), (uint64_t)-1);	/* xAPIC: #GP */
	v = 0xfee00000 | LAPIC_BASE_EN | LAPIC_BASE_EXTD;
	CHECK_EQ_U64(lapic_msr(l, 0x1b, true, &v, 0), 0);
	CHECK(!lapic_mmio_base(l, &base));
	CHECK_EQ_U64(lapic_msr(l, 0x802, false, &v, 0), 0);
	CHECK_EQ_U64(v, 0x23);
	CHECK_EQ_U64(lapic_msr(l, 0x80d, false, &v, 0), 0);
	CHECK_EQ_U64(v, (2u << 16) | (1u << 3));
	CHECK_EQ_U64(lapic_msr(l, 0x80b, false, &v, 0), (uint64_t)-1);	/* EOI is write-only */
	v = 1;
	CHECK_EQ_U64(lapic_msr(l, 0x80b, true, &v, 0), (uint64_t)-1);	/* nonzero EOI */
	v = 5;
	CHECK_EQ_U64(lapic_msr(l, 0x802, true, &v, 0), (uint64_t)-1);	/* ID is read-only */
	CHECK_EQ_U64(lapic_msr(l, 0x80e, false, &v, 0), (uint64_t)-1);	/* no DFR */
	CHECK_EQ_U64(lapic_msr(l, 0x831, false, &v, 0), (uint64_t)-1);	/* no ICR high */
	v = 0x1ff;
	CHECK_EQ_U64(lapic_msr(l, 0x80f, true, &v, 0), 0);
	/* ICR as one 64-bit MSR: fixed IPI to APIC 0 (still xAPIC, ID 0) */
	enable(H.l[0]);
	v = 0x4044;
	CHECK_EQ_U64(lapic_msr(l, 0x830, true, &v, 0), 0);
	CHECK_EQ_U64(lapic_intr_ack(H.l[0]), 0x44);
	/* self IPI register */
	v = 0x55;
	CHECK_EQ_U64(lapic_msr(l, 0x83f, true, &v, 0), 0);
	CHECK_EQ_U64(lapic_intr_ack(l), 0x55);
	v = 0;
	CHECK_EQ_U64(lapic_msr(l, 0x80b, true, &v, 0), 0);
	CHECK_EQ_U64(lapic_msr(l, 0x80a, false, &v, 0), 0);	/* PPR */
	CHECK_EQ_U64(v, 0);
	/* IPI to the x2APIC by its 32-bit ID */
	wr(H.l[0], 0x310, 0x23u << 24, 0);
	wr(H.l[0], 0x300, 0x4046, 0);
	CHECK_EQ_U64(lapic_intr_ack(l), 0x46);
	/* timer through MSRs */
	v = 0xb;
	lapic_msr(l, 0x83e, true, &v, 0);
	v = 0x47;
	lapic_msr(l, 0x832, true, &v, 0);
	v = 300;
	lapic_msr(l, 0x838, true, &v, 1000);
	CHECK_EQ_U64(lapic_timer_deadline(l), 1300);
	lapic_msr(l, 0x839, false, &v, 1100);
	CHECK_EQ_U64(v, 200);
	/* x2APIC -> xAPIC directly is illegal; through disabled it is fine */
	v = 0xfee00000 | LAPIC_BASE_EN;
	CHECK_EQ_U64(lapic_msr(l, 0x1b, true, &v, 0), (uint64_t)-1);
	v = 0xfee00000;
	CHECK_EQ_U64(lapic_msr(l, 0x1b, true, &v, 0), 0);
	CHECK(lapic_accepts_extint(l));		/* globally disabled: INTR goes straight in */
	v = 0xfee00000 | LAPIC_BASE_EXTD | LAPIC_BASE_EN;
	CHECK_EQ_U64(lapic_msr(l, 0x1b, true, &v, 0), (uint64_t)-1);
	v = 0xfee00000 | LAPIC_BASE_EN;
	CHECK_EQ_U64(lapic_msr(l, 0x1b, true, &v, 0), 0);
	CHECK(lapic_mmio_base(l, &base));
	teardown();
}
