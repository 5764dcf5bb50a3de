/*
 * x2apic: the local APIC's TSC-deadline timer mode (Intel SDM vol. 3 §10.5.4.1) and x2APIC
 * mode (§10.12): IA32_TSC_DEADLINE arming, firing no earlier than the deadline, reading 0
 * after it fires and disarming on 0; then x2APIC through IA32_APIC_BASE.EXTD: ID and version
 * MSRs, SELF IPI, ICR, TPR, EOI and the timer through MSRs, #GP for a reserved x2APIC MSR and
 * for leaving x2APIC mode straight to xAPIC. "need=x2apic,tscdeadline" makes a feature
 * missing from CPUID a failure; without it a missing feature is reported and skipped.
 */
#include "rt.h"

#define V_TIMER 0x40
#define V_IPI 0x41

static volatile int n_timer, n_ipi;
static volatile uint64_t fired_at;
static bool x2mode;

static void eoi(void)
{
	if (x2mode)
		wrmsr(0x80b, 0);
	else
		lapic_eoi();
}

static void timer_irq(struct trap_frame *f)
{
	fired_at = rdtsc();
	n_timer++;
	eoi();
}

static void ipi_irq(struct trap_frame *f)
{
	n_ipi++;
	eoi();
}

static bool wait_count(volatile int *c, int want, uint64_t us)
{
	uint64_t end = tsc_deadline(us);
	while (*c < want && (int64_t)(rdtsc() - end) < 0)
		cpu_relax();
	return *c >= want;
}

static bool needed(const char *feature)
{
	char buf[64];
	if (!cmdline_get("need", buf, sizeof(buf)))
		return false;
	size_t l = strlen(feature);
	for (const char *p = buf; *p;) {
		if (!strncmp(p, feature, l) && (p[l] == ',' || !p[l]))
			return true;
		while (*p && *p != ',')
			p++;
		if (*p)
			p++;
	}
	return false;
}

static void tsc_deadline_mode(void)
{
	uint64_t khz = tsc_khz();
	lapic_write(LAPIC_LVT_TIMER, V_TIMER | 2 << 17);
	uint64_t dl = rdtsc() + 2 * khz;	/* 2 ms */
	wrmsr(0x6e0, dl);
	check(rdmsr(0x6e0) == dl || n_timer, "tsc-deadline-readback", "MSR %lx, wrote %lx",
	      rdmsr(0x6e0), dl);
	check(wait_count(&n_timer, 1, 2000000), "tsc-deadline-fires", "no interrupt in 2 s");
	check(fired_at >= dl, "tsc-deadline-not-early", "fired %lu ticks early", dl - fired_at);
	check(rdmsr(0x6e0) == 0, "tsc-deadline-reads-0-after", "MSR %lx", rdmsr(0x6e0));
	wrmsr(0x6e0, rdtsc() + 5 * khz);
	wrmsr(0x6e0, 0);
	udelay(10000);
	check(n_timer == 1, "tsc-deadline-disarm", "%d interrupts", n_timer);
	lapic_write(LAPIC_LVT_TIMER, 1 << 16);
}

static void x2apic_mode(void)
{
	uint32_t r[4], xver = lapic_read(LAPIC_VER);
	uint64_t base = rdmsr(0x1b), v;
	fault_probe_init();
	wrmsr(0x1b, base | 1 << 10 | 1 << 11);
	x2mode = true;
	cpuid(0xb, 0, r);
	uint64_t id = rdmsr(0x802);
	check(id == r[3], "x2apic-id", "ID MSR %lx, CPUID.0xB x2APIC ID %u", id, r[3]);
	check((rdmsr(0x803) & 0xff00ff) == (xver & 0xff00ff), "x2apic-version", "%lx vs xAPIC %x",
	      rdmsr(0x803), xver);
	wrmsr(0x80f, 0x1ff);	/* SVR */
	wrmsr(0x808, 0);	/* TPR */
	wrmsr(0x83f, V_IPI);	/* SELF IPI */
	check(wait_count(&n_ipi, 1, 100000), "x2apic-self-ipi", "not delivered");
	wrmsr(0x830, id << 32 | V_IPI);	/* ICR: fixed, physical, to itself */
	check(wait_count(&n_ipi, 2, 100000), "x2apic-icr", "not delivered");
	wrmsr(0x808, 0x50);
	wrmsr(0x83f, V_IPI);
	udelay(1000);
	check(n_ipi == 2, "x2apic-tpr-blocks", "%d deliveries", n_ipi);
	wrmsr(0x808, 0);
	check(wait_count(&n_ipi, 3, 100000), "x2apic-tpr-release", "not delivered");

	n_timer = 0;
	wrmsr(0x83e, 0xb);		/* divide by 1 */
	wrmsr(0x832, V_TIMER);		/* one-shot */
	wrmsr(0x838, 100000);
	uint64_t cur = rdmsr(0x839);
	check(cur <= 100000, "x2apic-timer-current", "current count %lu", cur);
	check(wait_count(&n_timer, 1, 2000000), "x2apic-timer", "no interrupt in 2 s");
	check(probe_rdmsr(0x801, &v) && last_fault.vector == 13, "x2apic-reserved-msr-gp", "read %lx", v);
	check(probe_wrmsr(0x1b, (rdmsr(0x1b) & ~(1ull << 10))) && last_fault.vector == 13,
	      "x2apic-to-xapic-gp", "no #GP");
	check(rdmsr(0x1b) & (1 << 10), "x2apic-still-on", "APIC_BASE %lx", rdmsr(0x1b));
	wrmsr(0x832, 1 << 16);
}

void test_main(void)
{
	uint32_t c[4];
	cpuid(1, 0, c);
	lapic_enable();
	idt_set_handler(V_TIMER, timer_irq);
	idt_set_handler(V_IPI, ipi_irq);
	sti();
	if (c[2] & (1 << 24))
		tsc_deadline_mode();
	else if (needed("tscdeadline"))
		not_ok("tsc-deadline", "CPUID.1:ECX.TSC_DEADLINE is clear");
	else
		printf("# no TSC-deadline timer in CPUID: skipped\n");
	if (c[2] & (1 << 21))
		x2apic_mode();
	else if (needed("x2apic"))
		not_ok("x2apic", "CPUID.1:ECX.x2APIC is clear");
	else
		printf("# no x2APIC in CPUID: skipped\n");
	cli();
}
