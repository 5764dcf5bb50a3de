/*
 * lapic.h: the local APIC of one software-CPU vCPU (xAPIC MMIO and x2APIC MSRs), used by
 * accel/soft. Time is the VM clock in nanoseconds, passed in by the caller (`now`), so the
 * model runs the same under a fake clock in tests. Thread-safe: other threads deliver
 * interrupts (IPIs, IOAPIC, MSIs); register access happens on the owning vCPU's thread.
 */
#ifndef KHYVE_DEV_LAPIC_H
#define KHYVE_DEV_LAPIC_H

#include <stdbool.h>
#include <stdint.h>

#define LAPIC_DEFAULT_BASE 0xfee00000ull
#define LAPIC_BUS_HZ 1000000000ull	/* timer input clock before the divider */

/* APIC_BASE MSR (0x1b) bits. */
#define LAPIC_BASE_BSP (1ull << 8)
#define LAPIC_BASE_EXTD (1ull << 10)
#define LAPIC_BASE_EN (1ull << 11)

#define LAPIC_MSR_APIC_BASE 0x1b
#define LAPIC_MSR_TSC_DEADLINE 0x6e0
#define LAPIC_MSR_X2APIC_FIRST 0x800
#define LAPIC_MSR_X2APIC_LAST 0x8ff

/* Delivery modes (ICR, LVT, IOAPIC RTE, MSI data bits 8-10). */
enum lapic_dm {
	LAPIC_DM_FIXED = 0, LAPIC_DM_LOWPRI = 1, LAPIC_DM_SMI = 2, LAPIC_DM_NMI = 4,
	LAPIC_DM_INIT = 5, LAPIC_DM_SIPI = 6, LAPIC_DM_EXTINT = 7,
};

/* Destination shorthands (ICR bits 18-19). */
enum lapic_shorthand {
	LAPIC_SH_NONE = 0, LAPIC_SH_SELF = 1, LAPIC_SH_ALL = 2, LAPIC_SH_OTHERS = 3,
};

/* One interrupt message: an IPI, an IOAPIC redirection or an MSI. */
struct lapic_msg {
	uint32_t dest;		/* APIC ID, or logical mask; 0xff (0xffffffff x2APIC) = all */
	uint8_t vector;
	uint8_t mode;		/* enum lapic_dm */
	uint8_t shorthand;	/* enum lapic_shorthand (IPIs only) */
	bool logical;		/* logical destination mode */
	bool level;		/* level-triggered: sets TMR, EOI is broadcast */
	bool x2apic;		/* dest is a 32-bit x2APIC destination */
};

/* Events reported through lapic_ops.notify (a bit mask). */
#define LAPIC_EV_INTR 0x1u	/* a fixed interrupt may be deliverable: ask lapic_intr_ack */
#define LAPIC_EV_NMI 0x2u	/* an NMI arrived */
#define LAPIC_EV_INIT 0x4u	/* INIT arrived: see lapic_take_events */
#define LAPIC_EV_SIPI 0x8u	/* SIPI arrived: see lapic_take_events */
#define LAPIC_EV_EXTINT 0x10u	/* ExtINT message: ask the 8259 for the vector */

/*
 * Callbacks, never called with the APIC's lock held. notify: any thread. send (an ICR
 * write: route msg, with `src` for shorthands, e.g. with lapic_route) and eoi (EOI of a
 * level-triggered vector, to broadcast to the IOAPIC): the owning vCPU's thread.
 */
struct lapic;
struct lapic_ops {
	void *opaque;
	void (*notify)(void *opaque, unsigned events);
	void (*send)(void *opaque, struct lapic *src, const struct lapic_msg *msg);
	void (*eoi)(void *opaque, uint8_t vector);
};

/* tsc_hz converts TSC-deadline values: guest TSC = now * tsc_hz / 1e9. */
struct lapic *lapic_create(uint32_t id, bool bsp, uint64_t tsc_hz, const struct lapic_ops *ops);
void lapic_destroy(struct lapic *l);
/* Power-on reset (APIC_BASE back to the default, xAPIC, enabled). */
void lapic_reset(struct lapic *l);
/* INIT: registers to their reset values; ID and APIC_BASE stay. */
void lapic_init_reset(struct lapic *l);
void lapic_set_id(struct lapic *l, uint32_t id);
uint32_t lapic_id(const struct lapic *l);

uint64_t lapic_get_apic_base(const struct lapic *l);
/* WRMSR APIC_BASE; -EINVAL for a transition the SDM forbids (the caller raises #GP). */
int lapic_set_apic_base(struct lapic *l, uint64_t val);
/* True (and *base set) when the xAPIC MMIO page is decoded: enabled, not in x2APIC mode. */
bool lapic_mmio_base(const struct lapic *l, uint64_t *base);

/* xAPIC register access at `off` within the 4 KiB page. Returns 0. */
int lapic_mmio(struct lapic *l, uint64_t off, unsigned size, bool write, uint64_t *val,
	       uint64_t now);
/* APIC_BASE, TSC_DEADLINE and the x2APIC range: 0, or -1 for #GP. */
int lapic_msr(struct lapic *l, uint32_t index, bool write, uint64_t *val, uint64_t now);

uint8_t lapic_get_tpr(const struct lapic *l);
void lapic_set_tpr(struct lapic *l, uint8_t tpr);

/* Does msg address this APIC? `src` is the sender for shorthands (NULL: none). */
bool lapic_match(const struct lapic *l, const struct lapic *src, const struct lapic_msg *msg);
/* Accept msg (already matched): fixed/lowest priority into IRR, NMI, INIT, SIPI, ExtINT. */
void lapic_deliver(struct lapic *l, const struct lapic_msg *msg);
/* Deliver msg to every matching APIC of `all` (lowest priority: to the first match). */
void lapic_route(struct lapic *const *all, int n, const struct lapic *src,
		 const struct lapic_msg *msg);

/* Interrupt acknowledge: highest IRR above PPR moves to ISR; returns it, or -1. */
int lapic_intr_ack(struct lapic *l);
/* A fixed interrupt is deliverable (highest IRR above PPR). */
bool lapic_intr_pending(struct lapic *l);
/* The 8259's INTR reaches the CPU: APIC disabled, LINT0 unmasked ExtINT, or ExtINT message. */
bool lapic_accepts_extint(struct lapic *l);
/* The 8259 vector was taken: clears a pending ExtINT message. */
void lapic_extint_done(struct lapic *l);
/* Pending INIT/SIPI (LAPIC_EV_INIT|LAPIC_EV_SIPI), cleared; *sipi_vector for SIPI. */
unsigned lapic_take_events(struct lapic *l, uint8_t *sipi_vector);

/* Fire the timer when it has expired (sets IRR, reloads periodic). */
void lapic_timer_check(struct lapic *l, uint64_t now);
/* When the timer next expires (ns), or UINT64_MAX. */
uint64_t lapic_timer_deadline(struct lapic *l);

#endif
