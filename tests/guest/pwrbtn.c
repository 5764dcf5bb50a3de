/*
 * pwrbtn: the ACPI fixed power button (ACPI 6.5 §4.8.3.1 PM1 event registers, §4.8.2.2.1 power
 * button, §5.2.9 FADT SCI_INT/SMI_CMD/PM1a_EVT_BLK, §5.2.12.5 MADT interrupt source override).
 * Enters ACPI mode if needed, routes the SCI through the IOAPIC as the override says (level /
 * active-low by default), sets PWRBTN_EN, prints READY and waits ("wait=" seconds, default 60)
 * for the SCI the host raises (khyve/bhyve: SIGTERM; QEMU: system_powerdown); the handler checks
 * and clears PWRBTN_STS before the EOI, then the guest powers off through S5.
 */
#include "rt.h"

#define SCI_VECTOR 0x45
#define PWRBTN 0x0100
#define SCI_EN 0x0001

static struct acpi_pm_info pm;
static uint16_t pm1_en;
static volatile int scis;
static volatile uint16_t sts_seen, sts_after;

static void sci(struct trap_frame *f)
{
	uint16_t s = inw(pm.pm1a_evt);
	sts_seen |= s;
	if (s & PWRBTN)
		outw(pm.pm1a_evt, PWRBTN);	/* write 1 to clear, before the EOI (level) */
	sts_after = inw(pm.pm1a_evt);
	scis++;
	lapic_eoi();
}

void test_main(void)
{
	struct acpi_madt_info madt;
	if (acpi_pm(&pm) || !pm.pm1a_evt || acpi_madt(&madt) || !madt.ioapic_addr) {
		not_ok("acpi-tables", "no FADT PM1a_EVT_BLK or no MADT IOAPIC");
		finish();
	}
	ok("acpi-tables");
	pm1_en = (uint16_t)(pm.pm1a_evt + (pm.pm1_evt_len ? pm.pm1_evt_len / 2 : 2));
	printf("# PM1a_EVT %x (EN at %x), PM1a_CNT %x, SCI_INT %u, SMI_CMD %x ACPI_ENABLE %x\n",
	       pm.pm1a_evt, pm1_en, pm.pm1a_cnt, pm.sci_int, pm.smi_cmd, pm.acpi_enable);
	check(pm.pm1_evt_len >= 4, "pm1-evt-len", "PM1_EVT_LEN %u", pm.pm1_evt_len);

	if (!(inw(pm.pm1a_cnt) & SCI_EN) && pm.smi_cmd && pm.acpi_enable) {
		outb((uint16_t)pm.smi_cmd, pm.acpi_enable);
		uint64_t end = tsc_deadline(1000000);
		while (!(inw(pm.pm1a_cnt) & SCI_EN) && (int64_t)(rdtsc() - end) < 0)
			cpu_relax();
	}
	check(inw(pm.pm1a_cnt) & SCI_EN, "acpi-mode", "SCI_EN clear in PM1a_CNT (%x)",
	      inw(pm.pm1a_cnt));

	uint32_t gsi = pm.sci_int;
	uint16_t flags = 0;
	bool over = !acpi_irq_override(pm.sci_int, &gsi, &flags);
	/* MPS INTI flags: polarity 01 high / 11 low, trigger 01 edge / 11 level; 00 = bus default,
	 * which for the SCI is level, active low (§5.2.9 SCI_INT). */
	bool low = (flags & 3) != 1, level = ((flags >> 2) & 3) != 1;
	printf("# SCI: IRQ %u -> GSI %u, %s, active %s%s\n", pm.sci_int, gsi, level ? "level" : "edge",
	       low ? "low" : "high", over ? "" : " (no override)");
	check(over && level && !low, "sci-override", "want a level/active-high override for the SCI "
	      "(flags %x%s)", flags, over ? "" : ", none");
	uint32_t pin = gsi - madt.ioapic_gsi_base;
	if (gsi < madt.ioapic_gsi_base || pin > 23) {
		not_ok("sci-pin", "GSI %u not on the first IOAPIC", gsi);
		finish();
	}

	pic_disable();
	lapic_enable();
	idt_set_handler(SCI_VECTOR, sci);
	outw(pm.pm1a_evt, 0xffff);			/* clear stale status */
	outw(pm1_en, PWRBTN);
	check((inw(pm1_en) & PWRBTN) && !(inw(pm.pm1a_evt) & PWRBTN), "pwrbtn-enabled",
	      "PM1a_EN %x, PM1a_STS %x", inw(pm1_en), inw(pm.pm1a_evt));
	ioapic_write(madt.ioapic_addr, 0x11 + 2 * pin, lapic_id() << 24);
	ioapic_write(madt.ioapic_addr, 0x10 + 2 * pin,
		     SCI_VECTOR | (low ? 1u << 13 : 0) | (level ? 1u << 15 : 0));

	printf("READY\n");
	uint64_t end = tsc_deadline(cmdline_num("wait", 60) * 1000000);
	sti();
	while (!scis && (int64_t)(rdtsc() - end) < 0)
		cpu_relax();
	udelay(100000);	/* a level interrupt that was not cleared would come back */
	cli();
	if (!scis) {
		not_ok("sci-delivered", "no SCI while waiting");
		finish();
	}
	ok("sci-delivered");
	check(sts_seen & PWRBTN, "pwrbtn-status", "PM1a_STS %x in the SCI handler", sts_seen);
	check(!(sts_after & PWRBTN), "pwrbtn-cleared", "PM1a_STS %x after writing 1", sts_after);
	check(scis == 1, "sci-once", "%d SCIs for one press", scis);
	uint32_t rte = ioapic_read(madt.ioapic_addr, 0x10 + 2 * pin);
	check(!(rte & (1u << 14)), "remote-irr-clear", "redirection entry %x after the EOI", rte);
	finish();
}
