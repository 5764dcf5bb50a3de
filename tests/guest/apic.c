/*
 * apic: the local APIC in xAPIC mode (Intel SDM vol. 3 §10.5.4 timer, §10.6 IPIs, §10.8 TPR,
 * ISR/IRR and EOI): one-shot and periodic timer interrupts counted, the current-count register
 * counting down, a masked timer staying silent, self-IPI with ISR set until EOI, TPR holding
 * back a lower-class vector in IRR, and fixed IPIs between the BSP and an AP (needs cpus>=2).
 */
#include "rt.h"

#define V_TIMER 0x40
#define V_SELF 0x41
#define V_TO_AP 0x52
#define V_TO_BSP 0x63

static volatile int n_timer, n_self, n_ap, n_bsp, ap_ready;
static volatile uint32_t self_isr, self_isr_after;

static bool isr_bit(int v)
{
	return lapic_read(LAPIC_ISR + 0x10 * (v / 32)) & (1u << (v % 32));
}

static bool irr_bit(int v)
{
	return lapic_read(LAPIC_IRR + 0x10 * (v / 32)) & (1u << (v % 32));
}

static void timer_irq(struct trap_frame *f)
{
	n_timer++;
	lapic_eoi();
}

static void self_irq(struct trap_frame *f)
{
	n_self++;
	self_isr = isr_bit(V_SELF);
	lapic_eoi();
	self_isr_after = isr_bit(V_SELF);
}

static void bsp_irq(struct trap_frame *f)
{
	n_bsp++;
	lapic_eoi();
}

static void ap_irq(struct trap_frame *f)
{
	n_ap++;
	lapic_eoi();
	lapic_ipi(smp_apic_ids[0], V_TO_BSP);
}

static void ap_main(int idx)
{
	lapic_enable();
	ap_ready = 1;
	sti();
	uint64_t end = tsc_deadline(5000000);
	while (n_ap < 3 && (int64_t)(rdtsc() - end) < 0)
		__asm__ volatile("hlt");
	cli();
}

static bool wait_count(volatile int *c, int want, uint64_t us)
{
	uint64_t end = tsc_deadline(us);
	while (*c < want && (int64_t)(rdtsc() - end) < 0)
		cpu_relax();
	return *c >= want;
}

void test_main(void)
{
	lapic_enable();
	uint32_t ver = lapic_read(LAPIC_VER);
	printf("# LAPIC ID %u version %x, max LVT %u\n", lapic_id(), ver & 0xff, (ver >> 16) & 0xff);
	check((ver & 0xff) >= 0x10 && ((ver >> 16) & 0xff) >= 3, "lapic-version", "version %x", ver);
	check(lapic_read(LAPIC_SVR) == 0x1ff, "svr-readback", "SVR %x", lapic_read(LAPIC_SVR));

	idt_set_handler(V_TIMER, timer_irq);
	idt_set_handler(V_SELF, self_irq);
	idt_set_handler(V_TO_BSP, bsp_irq);
	idt_set_handler(V_TO_AP, ap_irq);
	sti();

	/* one-shot */
	lapic_write(LAPIC_TIMER_DIV, 0xb);	/* divide by 1 */
	lapic_write(LAPIC_LVT_TIMER, V_TIMER);
	lapic_write(LAPIC_TIMER_INIT, 200000);
	uint32_t c1 = lapic_read(LAPIC_TIMER_CUR);
	udelay(100);
	uint32_t c2 = lapic_read(LAPIC_TIMER_CUR);
	check(c1 <= 200000 && (c2 < c1 || n_timer == 1), "timer-counts-down", "current %u then %u", c1, c2);
	check(wait_count(&n_timer, 1, 2000000), "timer-one-shot", "no interrupt in 2 s");
	udelay(20000);
	check(n_timer == 1 && lapic_read(LAPIC_TIMER_CUR) == 0, "timer-one-shot-once",
	      "%d interrupts, current %u", n_timer, lapic_read(LAPIC_TIMER_CUR));

	/* periodic */
	n_timer = 0;
	lapic_write(LAPIC_LVT_TIMER, V_TIMER | 1 << 17);
	lapic_write(LAPIC_TIMER_INIT, 100000);
	check(wait_count(&n_timer, 5, 3000000), "timer-periodic", "%d interrupts in 3 s", n_timer);
	lapic_write(LAPIC_LVT_TIMER, V_TIMER | 1 << 16);	/* masked */
	int seen = n_timer;
	udelay(20000);
	check(n_timer <= seen + 1, "timer-masked", "%d more interrupts while masked", n_timer - seen);
	lapic_write(LAPIC_TIMER_INIT, 0);
	seen = n_timer;
	udelay(5000);
	check(n_timer == seen, "timer-stopped", "interrupts after init count 0");

	/* self-IPI, ISR until EOI */
	lapic_ipi(0, V_SELF | 1 << 18);
	check(wait_count(&n_self, 1, 100000), "self-ipi", "not delivered");
	check(self_isr && !self_isr_after, "isr-until-eoi", "ISR bit %u in handler, %u after EOI",
	      self_isr, self_isr_after);

	/* TPR */
	lapic_write(LAPIC_TPR, 0x50);
	lapic_ipi(0, V_SELF | 1 << 18);
	udelay(1000);
	check(n_self == 1 && irr_bit(V_SELF), "tpr-blocks", "%d deliveries, IRR %u", n_self, irr_bit(V_SELF));
	lapic_write(LAPIC_TPR, 0);
	check(wait_count(&n_self, 2, 100000), "tpr-release", "held vector not delivered after TPR 0");

	/* IPIs between CPUs */
	if (smp_cpu_count() < 2) {
		not_ok("ipi-cross-cpu", "needs 2 CPUs (cpus=2)");
		return;
	}
	int up = smp_start_aps(ap_main);
	if (!up || !wait_count(&ap_ready, 1, 1000000)) {
		not_ok("ipi-cross-cpu", "AP did not start");
		return;
	}
	for (int i = 0; i < 3; i++) {
		lapic_ipi(smp_apic_ids[1], V_TO_AP);
		wait_count(&n_bsp, i + 1, 1000000);
	}
	check(n_ap == 3, "ipi-bsp-to-ap", "%d of 3 delivered", n_ap);
	check(n_bsp == 3, "ipi-ap-to-bsp", "%d of 3 delivered", n_bsp);
	cli();
}
