/*
 * lapic.c: local APIC for the software CPU (Intel SDM Vol. 3 ch. 11; x2APIC spec): xAPIC
 * MMIO and x2APIC MSR register files, TPR/PPR, IRR/ISR/TMR, EOI (level EOI broadcast),
 * LDR/DFR, SVR, ESR, ICR IPIs (fixed, lowest priority as fixed to the first match, NMI,
 * INIT, SIPI, shorthands), LVT and the timer (one-shot, periodic, TSC-deadline) on a 1 GHz
 * bus clock. Left out: SMI, thermal/performance/CMCI sources, directed EOI, LINT1 input.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "dev/lapic.h"

/* Register offsets (xAPIC MMIO; x2APIC MSR = 0x800 + off / 16). */
#define REG_ID 0x20
#define REG_VERSION 0x30
#define REG_TPR 0x80
#define REG_APR 0x90
#define REG_PPR 0xa0
#define REG_EOI 0xb0
#define REG_RRD 0xc0
#define REG_LDR 0xd0
#define REG_DFR 0xe0
#define REG_SVR 0xf0
#define REG_ISR 0x100
#define REG_TMR 0x180
#define REG_IRR 0x200
#define REG_ESR 0x280
#define REG_LVT_CMCI 0x2f0
#define REG_ICR_LO 0x300
#define REG_ICR_HI 0x310
#define REG_LVT_TIMER 0x320
#define REG_LVT_THERMAL 0x330
#define REG_LVT_PERF 0x340
#define REG_LVT_LINT0 0x350
#define REG_LVT_LINT1 0x360
#define REG_LVT_ERROR 0x370
#define REG_TIMER_ICR 0x380
#define REG_TIMER_CCR 0x390
#define REG_TIMER_DCR 0x3e0
#define REG_SELF_IPI 0x3f0

enum { LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR, LVT_CMCI, NLVT };

#define LVT_MASKED (1u << 16)
#define LVT_TIMER_MODE(v) (((v) >> 17) & 3)
#define TIMER_ONESHOT 0
#define TIMER_PERIODIC 1
#define TIMER_TSC_DEADLINE 2
#define SVR_ENABLE (1u << 8)
#define ICR_LEVEL_ASSERT (1u << 14)
#define ICR_TRIGGER_LEVEL (1u << 15)
#define ESR_SEND_ILLEGAL (1u << 5)
#define ESR_RECV_ILLEGAL (1u << 6)
#define ESR_ILLEGAL_REG (1u << 7)
#define VERSION_VALUE 0x00050014u	/* version 0x14, max LVT entry 5 */

static const uint32_t lvt_writable[NLVT] = {
	[LVT_TIMER] = 0x000700ff, [LVT_THERMAL] = 0x000107ff, [LVT_PERF] = 0x000107ff,
	[LVT_LINT0] = 0x0001a7ff, [LVT_LINT1] = 0x0001a7ff, [LVT_ERROR] = 0x000100ff,
	[LVT_CMCI] = 0x000107ff,
};

struct lapic {
	pthread_mutex_t lock;
	struct lapic_ops ops;
	uint64_t tsc_hz;
	bool bsp;
	uint32_t id, initial_id;
	uint64_t apic_base;
	uint32_t tpr, ldr, dfr, svr, esr, esr_pending;
	uint32_t icr_lo, icr_hi;
	uint32_t irr[8], isr[8], tmr[8];
	uint32_t lvt[NLVT];
	/* timer */
	uint32_t timer_icr, timer_dcr;
	uint64_t timer_start;	/* ns when the count was (re)loaded */
	uint64_t timer_next;	/* ns of next expiry, UINT64_MAX when stopped */
	uint64_t tsc_deadline;
	/* pending events for the owner */
	unsigned events;
	uint8_t sipi_vector;
	bool extint_pending;
};

/* Side effects collected under the lock and run after it is dropped. */
struct lapic_after {
	unsigned notify;
	bool send;
	struct lapic_msg msg;
	int eoi_vector;
};

static bool is_x2apic(const struct lapic *l)
{
	return (l->apic_base & LAPIC_BASE_EXTD) != 0;
}

static bool hw_enabled(const struct lapic *l)
{
	return (l->apic_base & LAPIC_BASE_EN) != 0;
}

static int highest_bit(const uint32_t v[8])
{
	for (int i = 7; i >= 0; i--)
		if (v[i])
			return i * 32 + 31 - __builtin_clz(v[i]);
	return -1;
}

static void set_vec(uint32_t v[8], unsigned vec)
{
	v[vec >> 5] |= 1u << (vec & 31);
}

static void clear_vec(uint32_t v[8], unsigned vec)
{
	v[vec >> 5] &= ~(1u << (vec & 31));
}

static bool test_vec(const uint32_t v[8], unsigned vec)
{
	return (v[vec >> 5] >> (vec & 31)) & 1;
}

static uint32_t ppr(const struct lapic *l)
{
	int isrv = highest_bit(l->isr);
	uint32_t isr_class = isrv < 0 ? 0 : (uint32_t)isrv & 0xf0;

	if ((l->tpr & 0xf0) >= isr_class)
		return l->tpr & 0xff;
	return isr_class;
}

static bool pending_locked(const struct lapic *l)
{
	int v = highest_bit(l->irr);

	return v >= 0 && ((uint32_t)v & 0xf0) > (ppr(l) & 0xf0);
}

static uint32_t x2apic_ldr(uint32_t id)
{
	return ((id >> 4) << 16) | (1u << (id & 0xf));
}

static unsigned timer_divisor(uint32_t dcr)
{
	unsigned v = (dcr & 3) | ((dcr >> 1) & 4);

	return v == 7 ? 1 : 2u << v;
}

static uint64_t tsc_to_ns(const struct lapic *l, uint64_t tsc)
{
	unsigned __int128 ns = ((unsigned __int128)tsc * 1000000000u + l->tsc_hz - 1) / l->tsc_hz;

	return ns > UINT64_MAX ? UINT64_MAX : (uint64_t)ns;
}

/* Raise the vector of an LVT entry as a local interrupt (edge). */
static void lvt_fire_locked(struct lapic *l, int lvt, struct lapic_after *after)
{
	uint32_t v = l->lvt[lvt];

	if (v & LVT_MASKED)
		return;
	switch ((v >> 8) & 7) {
	case LAPIC_DM_FIXED:
		if ((v & 0xff) < 16) {
			l->esr_pending |= ESR_RECV_ILLEGAL;
			return;
		}
		set_vec(l->irr, v & 0xff);
		clear_vec(l->tmr, v & 0xff);
		after->notify |= LAPIC_EV_INTR;
		break;
	case LAPIC_DM_NMI:
		after->notify |= LAPIC_EV_NMI;
		break;
	default:
		break;
	}
}

static void run_after(struct lapic *l, struct lapic_after *after)
{
	if (after->eoi_vector >= 0 && l->ops.eoi)
		l->ops.eoi(l->ops.opaque, (uint8_t)after->eoi_vector);
	if (after->send && l->ops.send)
		l->ops.send(l->ops.opaque, l, &after->msg);
	if (after->notify && l->ops.notify)
		l->ops.notify(l->ops.opaque, after->notify);
}

static void registers_reset(struct lapic *l)
{
	l->tpr = 0;
	l->ldr = is_x2apic(l) ? x2apic_ldr(l->id) : 0;
	l->dfr = 0xffffffff;
	l->svr = 0xff;
	l->esr = l->esr_pending = 0;
	l->icr_lo = l->icr_hi = 0;
	memset(l->irr, 0, sizeof l->irr);
	memset(l->isr, 0, sizeof l->isr);
	memset(l->tmr, 0, sizeof l->tmr);
	for (int i = 0; i < NLVT; i++)
		l->lvt[i] = LVT_MASKED;
	/*
	 * As QEMU and KVM do, the BSP's LINT0 starts as unmasked ExtINT (virtual wire), so the
	 * 8259 reaches a CPU whose firmware never programs the APIC.
	 */
	if (l->bsp)
		l->lvt[LVT_LINT0] = LAPIC_DM_EXTINT << 8;
	l->timer_icr = l->timer_dcr = 0;
	l->timer_start = 0;
	l->timer_next = UINT64_MAX;
	l->tsc_deadline = 0;
	l->events = 0;
	l->extint_pending = false;
}

struct lapic *lapic_create(uint32_t id, bool bsp, uint64_t tsc_hz, const struct lapic_ops *ops)
{
	struct lapic *l = calloc(1, sizeof *l);

	if (!l)
		return NULL;
	pthread_mutex_init(&l->lock, NULL);
	if (ops)
		l->ops = *ops;
	l->tsc_hz = tsc_hz ? tsc_hz : 1000000000ull;
	l->id = l->initial_id = id;
	l->bsp = bsp;
	lapic_reset(l);
	return l;
}

void lapic_destroy(struct lapic *l)
{
	if (!l)
		return;
	pthread_mutex_destroy(&l->lock);
	free(l);
}

void lapic_reset(struct lapic *l)
{
	pthread_mutex_lock(&l->lock);
	l->apic_base = LAPIC_DEFAULT_BASE | LAPIC_BASE_EN | (l->bsp ? LAPIC_BASE_BSP : 0);
	l->id = l->initial_id;
	registers_reset(l);
	pthread_mutex_unlock(&l->lock);
}

void lapic_init_reset(struct lapic *l)
{
	pthread_mutex_lock(&l->lock);
	registers_reset(l);
	pthread_mutex_unlock(&l->lock);
}

void lapic_set_id(struct lapic *l, uint32_t id)
{
	pthread_mutex_lock(&l->lock);
	l->id = l->initial_id = id;
	if (is_x2apic(l))
		l->ldr = x2apic_ldr(id);
	pthread_mutex_unlock(&l->lock);
}

uint32_t lapic_id(const struct lapic *l)
{
	return l->id;
}

uint64_t lapic_get_apic_base(const struct lapic *l)
{
	return l->apic_base;
}

int lapic_set_apic_base(struct lapic *l, uint64_t val)
{
	uint64_t old = l->apic_base;
	uint64_t reserved = ~(0x000000fffffff000ull | LAPIC_BASE_EXTD | LAPIC_BASE_EN |
			      LAPIC_BASE_BSP);
	bool en = val & LAPIC_BASE_EN, extd = val & LAPIC_BASE_EXTD;

	if (val & reserved)
		return -EINVAL;
	if (extd && !en)
		return -EINVAL;
	/* x2APIC -> xAPIC directly is illegal; it must go through disabled. */
	if ((old & LAPIC_BASE_EXTD) && en && !extd)
		return -EINVAL;
	/* disabled -> x2APIC directly is illegal too. */
	if (!(old & LAPIC_BASE_EN) && extd)
		return -EINVAL;
	pthread_mutex_lock(&l->lock);
	l->apic_base = (val & ~LAPIC_BASE_BSP) | (l->bsp ? LAPIC_BASE_BSP : 0);
	if (!en && (old & LAPIC_BASE_EN)) {
		registers_reset(l);
		/* A globally disabled APIC has all LVTs masked, LINT0 included. */
		l->lvt[LVT_LINT0] = LVT_MASKED;
	}
	/* Enabling (xAPIC from disabled, or x2APIC) restores the initial APIC ID. */
	if ((en && !(old & LAPIC_BASE_EN)) || (extd && !(old & LAPIC_BASE_EXTD)))
		l->id = l->initial_id;
	if (extd && !(old & LAPIC_BASE_EXTD))
		l->ldr = x2apic_ldr(l->id);
	pthread_mutex_unlock(&l->lock);
	return 0;
}

bool lapic_mmio_base(const struct lapic *l, uint64_t *base)
{
	uint64_t b = l->apic_base;

	if (!(b & LAPIC_BASE_EN) || (b & LAPIC_BASE_EXTD))
		return false;
	*base = b & 0x000000fffffff000ull;
	return true;
}

uint8_t lapic_get_tpr(const struct lapic *l)
{
	return (uint8_t)l->tpr;
}

void lapic_set_tpr(struct lapic *l, uint8_t tpr)
{
	bool pend;

	pthread_mutex_lock(&l->lock);
	l->tpr = tpr;
	pend = pending_locked(l);
	pthread_mutex_unlock(&l->lock);
	if (pend && l->ops.notify)
		l->ops.notify(l->ops.opaque, LAPIC_EV_INTR);
}

/* ---- timer ---- */

static uint32_t timer_ccr(const struct lapic *l, uint64_t now)
{
	uint64_t div = timer_divisor(l->timer_dcr), elapsed;

	if (l->timer_icr == 0 || l->timer_next == UINT64_MAX ||
	    LVT_TIMER_MODE(l->lvt[LVT_TIMER]) == TIMER_TSC_DEADLINE)
		return 0;
	if (now < l->timer_start)
		return l->timer_icr;
	elapsed = (now - l->timer_start) / div;
	if (LVT_TIMER_MODE(l->lvt[LVT_TIMER]) == TIMER_PERIODIC)
		return l->timer_icr - (uint32_t)(elapsed % l->timer_icr);
	if (elapsed >= l->timer_icr)
		return 0;
	return l->timer_icr - (uint32_t)elapsed;
}

static uint64_t timer_period(const struct lapic *l)
{
	return (uint64_t)l->timer_icr * timer_divisor(l->timer_dcr);
}

static void timer_load(struct lapic *l, uint64_t now)
{
	l->timer_start = now;
	if (l->timer_icr == 0)
		l->timer_next = UINT64_MAX;
	else
		l->timer_next = now + timer_period(l);
}

static void timer_check_locked(struct lapic *l, uint64_t now, struct lapic_after *after)
{
	uint64_t period;

	if (l->timer_next == UINT64_MAX || now < l->timer_next)
		return;
	lvt_fire_locked(l, LVT_TIMER, after);
	switch (LVT_TIMER_MODE(l->lvt[LVT_TIMER])) {
	case TIMER_PERIODIC:
		period = timer_period(l);
		if (period == 0) {
			l->timer_next = UINT64_MAX;
			break;
		}
		/* Missed periods coalesce into one interrupt; the phase is kept. */
		l->timer_next += ((now - l->timer_next) / period + 1) * period;
		break;
	case TIMER_TSC_DEADLINE:
		l->tsc_deadline = 0;
		l->timer_next = UINT64_MAX;
		break;
	default:
		l->timer_next = UINT64_MAX;
		break;
	}
}

void lapic_timer_check(struct lapic *l, uint64_t now)
{
	struct lapic_after after = { .eoi_vector = -1 };

	pthread_mutex_lock(&l->lock);
	timer_check_locked(l, now, &after);
	pthread_mutex_unlock(&l->lock);
	run_after(l, &after);
}

uint64_t lapic_timer_deadline(struct lapic *l)
{
	return __atomic_load_n(&l->timer_next, __ATOMIC_RELAXED);
}

/* ---- register file ---- */

static void do_eoi(struct lapic *l, struct lapic_after *after)
{
	int v = highest_bit(l->isr);

	if (v < 0)
		return;
	clear_vec(l->isr, (unsigned)v);
	if (test_vec(l->tmr, (unsigned)v))
		after->eoi_vector = v;
	if (pending_locked(l))
		after->notify |= LAPIC_EV_INTR;
}

static void do_icr(struct lapic *l, uint32_t lo, uint32_t dest, struct lapic_after *after)
{
	struct lapic_msg *m = &after->msg;

	m->vector = lo & 0xff;
	m->mode = (lo >> 8) & 7;
	m->logical = (lo >> 11) & 1;
	m->level = (lo & ICR_TRIGGER_LEVEL) != 0;
	m->shorthand = (lo >> 18) & 3;
	m->x2apic = is_x2apic(l);
	m->dest = dest;
	l->icr_lo = lo & ~(1u << 12);	/* delivery status: always idle */
	switch (m->mode) {
	case LAPIC_DM_FIXED:
	case LAPIC_DM_LOWPRI:
		if (m->vector < 16) {
			l->esr_pending |= ESR_SEND_ILLEGAL;
			lvt_fire_locked(l, LVT_ERROR, after);
			return;
		}
		break;
	case LAPIC_DM_INIT:
		/* INIT level de-assert: no effect on modern processors. */
		if (!(lo & ICR_LEVEL_ASSERT) && m->level)
			return;
		break;
	case LAPIC_DM_NMI:
	case LAPIC_DM_SIPI:
		break;
	default:
		return;		/* SMI, reserved, ExtINT: not sent */
	}
	after->send = true;
}

static int reg_read(struct lapic *l, unsigned reg, uint64_t *val, uint64_t now)
{
	bool x2 = is_x2apic(l);

	switch (reg) {
	case REG_ID:
		*val = x2 ? l->id : (uint64_t)(l->id & 0xff) << 24;
		return 0;
	case REG_VERSION:
		*val = VERSION_VALUE;
		return 0;
	case REG_TPR:
		*val = l->tpr;
		return 0;
	case REG_APR:
		if (x2)
			return -1;
		*val = 0;
		return 0;
	case REG_PPR:
		*val = ppr(l);
		return 0;
	case REG_LDR:
		*val = l->ldr;
		return 0;
	case REG_DFR:
		if (x2)
			return -1;
		*val = l->dfr;
		return 0;
	case REG_SVR:
		*val = l->svr;
		return 0;
	case REG_ESR:
		*val = l->esr;
		return 0;
	case REG_ICR_LO:
		*val = x2 ? (uint64_t)l->icr_hi << 32 | l->icr_lo : l->icr_lo;
		return 0;
	case REG_ICR_HI:
		if (x2)
			return -1;
		*val = l->icr_hi;
		return 0;
	case REG_LVT_CMCI:
		*val = l->lvt[LVT_CMCI];
		return 0;
	case REG_LVT_TIMER:
	case REG_LVT_THERMAL:
	case REG_LVT_PERF:
	case REG_LVT_LINT0:
	case REG_LVT_LINT1:
	case REG_LVT_ERROR:
		*val = l->lvt[(reg - REG_LVT_TIMER) >> 4];
		return 0;
	case REG_TIMER_ICR:
		*val = l->timer_icr;
		return 0;
	case REG_TIMER_CCR:
		*val = timer_ccr(l, now);
		return 0;
	case REG_TIMER_DCR:
		*val = l->timer_dcr;
		return 0;
	default:
		break;
	}
	if (reg >= REG_ISR && reg < REG_ISR + 0x80) {
		*val = l->isr[(reg - REG_ISR) >> 4];
		return 0;
	}
	if (reg >= REG_TMR && reg < REG_TMR + 0x80) {
		*val = l->tmr[(reg - REG_TMR) >> 4];
		return 0;
	}
	if (reg >= REG_IRR && reg < REG_IRR + 0x80) {
		*val = l->irr[(reg - REG_IRR) >> 4];
		return 0;
	}
	if (x2)
		return -1;
	*val = 0;		/* reserved and write-only xAPIC registers read as 0 */
	return 0;
}

static void svr_write(struct lapic *l, uint32_t v, struct lapic_after *after)
{
	l->svr = v & 0x1ff;
	if (!(l->svr & SVR_ENABLE)) {
		for (int i = 0; i < NLVT; i++)
			l->lvt[i] |= LVT_MASKED;
		/* the timer keeps counting but cannot interrupt */
	} else if (pending_locked(l)) {
		after->notify |= LAPIC_EV_INTR;
	}
}

static void lvt_write(struct lapic *l, int lvt, uint32_t v, uint64_t now)
{
	uint32_t old = l->lvt[lvt], ccr = 0;
	bool deadline_old, deadline_new;

	v &= lvt_writable[lvt];
	if (!(l->svr & SVR_ENABLE))
		v |= LVT_MASKED;
	if (lvt != LVT_TIMER || LVT_TIMER_MODE(old) == LVT_TIMER_MODE(v)) {
		l->lvt[lvt] = v;
		return;
	}
	deadline_old = LVT_TIMER_MODE(old) == TIMER_TSC_DEADLINE;
	deadline_new = LVT_TIMER_MODE(v) == TIMER_TSC_DEADLINE;
	if (!deadline_old && !deadline_new && l->timer_next != UINT64_MAX)
		ccr = timer_ccr(l, now);
	l->lvt[lvt] = v;
	if (deadline_old || deadline_new) {
		/* Entering or leaving TSC-deadline mode disarms the timer. */
		l->timer_icr = 0;
		l->tsc_deadline = 0;
		l->timer_next = UINT64_MAX;
	} else if (ccr) {
		/* One-shot <-> periodic: the count goes on from where it is. */
		uint64_t div = timer_divisor(l->timer_dcr);

		l->timer_start = now - (uint64_t)(l->timer_icr - ccr) * div;
		l->timer_next = now + (uint64_t)ccr * div;
	}
}

/*
 * Write a register. `val` is 32 bits except the x2APIC ICR (64). Returns 0, or -1 for an
 * x2APIC #GP (read-only or reserved register, nonzero EOI/ESR value).
 */
static int reg_write(struct lapic *l, unsigned reg, uint64_t val, uint64_t now,
		     struct lapic_after *after)
{
	bool x2 = is_x2apic(l);
	uint32_t v = (uint32_t)val;

	switch (reg) {
	case REG_ID:
		/* Writable in xAPIC mode, as on P6 and later and under KVM. */
		if (x2)
			return -1;
		l->id = v >> 24;
		return 0;
	case REG_VERSION:
	case REG_PPR:
	case REG_RRD:
	case REG_TIMER_CCR:
		return x2 ? -1 : 0;	/* read-only */
	case REG_APR:
		return x2 ? -1 : 0;
	case REG_TPR:
		l->tpr = v & 0xff;
		if (pending_locked(l))
			after->notify |= LAPIC_EV_INTR;
		return 0;
	case REG_EOI:
		if (x2 && val)
			return -1;
		do_eoi(l, after);
		return 0;
	case REG_LDR:
		if (x2)
			return -1;
		l->ldr = v & 0xff000000u;
		return 0;
	case REG_DFR:
		if (x2)
			return -1;
		l->dfr = v | 0x0fffffffu;
		return 0;
	case REG_SVR:
		svr_write(l, v, after);
		return 0;
	case REG_ESR:
		if (x2 && val)
			return -1;
		l->esr = l->esr_pending;
		l->esr_pending = 0;
		return 0;
	case REG_ICR_LO:
		if (x2) {
			l->icr_hi = (uint32_t)(val >> 32);
			do_icr(l, v, l->icr_hi, after);
		} else {
			do_icr(l, v, l->icr_hi >> 24, after);
		}
		return 0;
	case REG_ICR_HI:
		if (x2)
			return -1;
		l->icr_hi = v & 0xff000000u;
		return 0;
	case REG_LVT_CMCI:
		lvt_write(l, LVT_CMCI, v, now);
		return 0;
	case REG_LVT_TIMER:
	case REG_LVT_THERMAL:
	case REG_LVT_PERF:
	case REG_LVT_LINT0:
	case REG_LVT_LINT1:
	case REG_LVT_ERROR:
		lvt_write(l, (int)((reg - REG_LVT_TIMER) >> 4), v, now);
		return 0;
	case REG_TIMER_ICR:
		if (LVT_TIMER_MODE(l->lvt[LVT_TIMER]) == TIMER_TSC_DEADLINE)
			return 0;
		l->timer_icr = v;
		timer_load(l, now);
		return 0;
	case REG_TIMER_DCR: {
		uint32_t ccr = timer_ccr(l, now);

		l->timer_dcr = v & 0xb;
		/* Keep the current count; it goes on at the new rate. */
		if (l->timer_next != UINT64_MAX && l->timer_icr) {
			uint64_t div = timer_divisor(l->timer_dcr);

			l->timer_start = now - (uint64_t)(l->timer_icr - ccr) * div;
			l->timer_next = now + (uint64_t)ccr * div;
		}
		return 0;
	}
	case REG_SELF_IPI:
		if (!x2)
			return 0;
		after->msg = (struct lapic_msg){ .vector = v & 0xff, .mode = LAPIC_DM_FIXED,
						 .shorthand = LAPIC_SH_SELF, .x2apic = true };
		if (after->msg.vector < 16) {
			l->esr_pending |= ESR_SEND_ILLEGAL;
			return 0;
		}
		after->send = true;
		return 0;
	default:
		break;
	}
	/* ISR, TMR, IRR and reserved registers are read-only. */
	return x2 ? -1 : 0;
}

int lapic_mmio(struct lapic *l, uint64_t off, unsigned size, bool write, uint64_t *val,
	       uint64_t now)
{
	struct lapic_after after = { .eoi_vector = -1 };
	unsigned reg = (unsigned)(off & 0xff0), sub = (unsigned)(off & 0xf);
	uint64_t v = 0;

	pthread_mutex_lock(&l->lock);
	timer_check_locked(l, now, &after);	/* registers show the timer up to date */
	if (write) {
		/* Only the low dword of each 16-byte register slot exists. */
		if (sub == 0)
			reg_write(l, reg, *val & 0xffffffffu, now, &after);
	} else {
		reg_read(l, reg, &v, now);
		if (sub >= 4)
			v = 0;
		else
			v >>= sub * 8;
		if (size < 8)
			v &= (1ull << (size * 8)) - 1;
		*val = v;
	}
	pthread_mutex_unlock(&l->lock);
	run_after(l, &after);
	return 0;
}

int lapic_msr(struct lapic *l, uint32_t index, bool write, uint64_t *val, uint64_t now)
{
	struct lapic_after after = { .eoi_vector = -1 };
	unsigned reg;
	int r = 0;

	if (index == LAPIC_MSR_APIC_BASE) {
		if (!write) {
			*val = lapic_get_apic_base(l);
			return 0;
		}
		return lapic_set_apic_base(l, *val) ? -1 : 0;
	}
	if (index == LAPIC_MSR_TSC_DEADLINE) {
		pthread_mutex_lock(&l->lock);
		if (!write) {
			*val = LVT_TIMER_MODE(l->lvt[LVT_TIMER]) == TIMER_TSC_DEADLINE ?
				       l->tsc_deadline : 0;
		} else if (LVT_TIMER_MODE(l->lvt[LVT_TIMER]) == TIMER_TSC_DEADLINE) {
			l->tsc_deadline = *val;
			l->timer_next = *val ? tsc_to_ns(l, *val) : UINT64_MAX;
			timer_check_locked(l, now, &after);
		}
		pthread_mutex_unlock(&l->lock);
		run_after(l, &after);
		return 0;
	}
	if (index < LAPIC_MSR_X2APIC_FIRST || index > LAPIC_MSR_X2APIC_LAST)
		return -1;
	if (!is_x2apic(l))
		return -1;
	reg = (index - LAPIC_MSR_X2APIC_FIRST) << 4;
	pthread_mutex_lock(&l->lock);
	timer_check_locked(l, now, &after);
	if (write) {
		if (reg != REG_ICR_LO && (*val >> 32))
			r = -1;
		else
			r = reg_write(l, reg, *val, now, &after);
	} else if (reg == REG_EOI || reg == REG_SELF_IPI) {
		r = -1;
	} else {
		uint64_t v = 0;

		r = reg_read(l, reg, &v, now);
		*val = v;
	}
	pthread_mutex_unlock(&l->lock);
	run_after(l, &after);
	return r;
}

/* ---- delivery ---- */

bool lapic_match(const struct lapic *l, const struct lapic *src, const struct lapic_msg *msg)
{
	uint32_t dest = msg->dest;

	switch (msg->shorthand) {
	case LAPIC_SH_SELF:
		return l == src;
	case LAPIC_SH_ALL:
		return true;
	case LAPIC_SH_OTHERS:
		return l != src;
	default:
		break;
	}
	if (dest == (msg->x2apic ? 0xffffffffu : 0xffu))
		return true;
	if (!msg->logical)
		return l->id == dest;
	if (is_x2apic(l)) {
		return (dest >> 16) == (l->ldr >> 16) && (dest & l->ldr & 0xffff) != 0;
	} else {
		uint32_t ldr8 = l->ldr >> 24, d8 = dest & 0xff;

		if ((l->dfr >> 28) == 0xf)	/* flat model */
			return (ldr8 & d8) != 0;
		return (ldr8 >> 4) == (d8 >> 4) && (ldr8 & d8 & 0xf) != 0;	/* cluster */
	}
}

void lapic_deliver(struct lapic *l, const struct lapic_msg *msg)
{
	struct lapic_after after = { .eoi_vector = -1 };

	pthread_mutex_lock(&l->lock);
	switch (msg->mode) {
	case LAPIC_DM_FIXED:
	case LAPIC_DM_LOWPRI:
		if (!hw_enabled(l) || !(l->svr & SVR_ENABLE))
			break;	/* a disabled APIC drops fixed interrupts */
		if (msg->vector < 16) {
			l->esr_pending |= ESR_RECV_ILLEGAL;
			lvt_fire_locked(l, LVT_ERROR, &after);
			break;
		}
		set_vec(l->irr, msg->vector);
		if (msg->level)
			set_vec(l->tmr, msg->vector);
		else
			clear_vec(l->tmr, msg->vector);
		after.notify |= LAPIC_EV_INTR;
		break;
	case LAPIC_DM_NMI:
		after.notify |= LAPIC_EV_NMI;
		break;
	case LAPIC_DM_INIT:
		l->events |= LAPIC_EV_INIT;
		l->events &= ~LAPIC_EV_SIPI;
		after.notify |= LAPIC_EV_INIT;
		break;
	case LAPIC_DM_SIPI:
		l->events |= LAPIC_EV_SIPI;
		l->sipi_vector = msg->vector;
		after.notify |= LAPIC_EV_SIPI;
		break;
	case LAPIC_DM_EXTINT:
		l->extint_pending = true;
		after.notify |= LAPIC_EV_EXTINT;
		break;
	default:
		break;		/* SMI is not modelled */
	}
	pthread_mutex_unlock(&l->lock);
	run_after(l, &after);
}

void lapic_route(struct lapic *const *all, int n, const struct lapic *src,
		 const struct lapic_msg *msg)
{
	for (int i = 0; i < n; i++) {
		if (!all[i] || !lapic_match(all[i], src, msg))
			continue;
		lapic_deliver(all[i], msg);
		if (msg->mode == LAPIC_DM_LOWPRI)
			break;
	}
}

int lapic_intr_ack(struct lapic *l)
{
	int v = -1;

	pthread_mutex_lock(&l->lock);
	if (pending_locked(l)) {
		v = highest_bit(l->irr);
		clear_vec(l->irr, (unsigned)v);
		set_vec(l->isr, (unsigned)v);
	}
	pthread_mutex_unlock(&l->lock);
	return v;
}

bool lapic_intr_pending(struct lapic *l)
{
	bool p;

	pthread_mutex_lock(&l->lock);
	p = pending_locked(l);
	pthread_mutex_unlock(&l->lock);
	return p;
}

bool lapic_accepts_extint(struct lapic *l)
{
	uint32_t lint0;
	bool r;

	pthread_mutex_lock(&l->lock);
	lint0 = l->lvt[LVT_LINT0];
	r = !hw_enabled(l) || l->extint_pending ||
	    (!(lint0 & LVT_MASKED) && ((lint0 >> 8) & 7) == LAPIC_DM_EXTINT);
	pthread_mutex_unlock(&l->lock);
	return r;
}

void lapic_extint_done(struct lapic *l)
{
	pthread_mutex_lock(&l->lock);
	l->extint_pending = false;
	pthread_mutex_unlock(&l->lock);
}

unsigned lapic_take_events(struct lapic *l, uint8_t *sipi_vector)
{
	unsigned ev;

	pthread_mutex_lock(&l->lock);
	ev = l->events;
	l->events = 0;
	if (sipi_vector)
		*sipi_vector = l->sipi_vector;
	pthread_mutex_unlock(&l->lock);
	return ev;
}
