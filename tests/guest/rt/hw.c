/*
 * hw.c: local APIC in xAPIC mode (Intel SDM vol. 3 §10.4-10.6), IOAPIC register window
 * (82093AA datasheet: IOREGSEL/IOWIN), 8259 masking, PIT channel 2 timing through port 0x61
 * (8254 datasheet, mode 0), TSC-based delays, PCI configuration mechanism #1 (PCI 3.0 §3.2.2.3),
 * and SMP start-up with INIT-SIPI-SIPI (Intel SDM vol. 3 §8.4.4).
 */
#include "rt.h"

void lapic_enable(void)
{
	uint64_t base = rdmsr(0x1b);
	if (!(base & (1 << 11)))
		wrmsr(0x1b, base | 1 << 11);
	lapic_write(LAPIC_TPR, 0);
	lapic_write(LAPIC_SVR, 0x1ff);
}

uint32_t lapic_id(void)
{
	return lapic_read(LAPIC_ID) >> 24;
}

void lapic_eoi(void)
{
	lapic_write(LAPIC_EOI, 0);
}

void lapic_ipi(uint32_t dest, uint32_t icr_lo)
{
	lapic_write(LAPIC_ICR_HI, dest << 24);
	lapic_write(LAPIC_ICR_LO, icr_lo);
	for (int i = 0; i < 1000000 && (lapic_read(LAPIC_ICR_LO) & (1 << 12)); i++)
		cpu_relax();
}

uint32_t ioapic_read(uint32_t base, uint32_t reg)
{
	mmio_write32(base, reg);
	return mmio_read32(base + 0x10);
}

void ioapic_write(uint32_t base, uint32_t reg, uint32_t v)
{
	mmio_write32(base, reg);
	mmio_write32(base + 0x10, v);
}

void pic_disable(void)
{
	static const uint8_t icw[2][4] = { { 0x11, 0x20, 0x04, 0x01 }, { 0x11, 0x28, 0x02, 0x01 } };
	for (int i = 0; i < 2; i++) {
		uint16_t base = i ? 0xa0 : 0x20;
		outb(base, icw[i][0]);
		outb(base + 1, icw[i][1]);
		outb(base + 1, icw[i][2]);
		outb(base + 1, icw[i][3]);
		outb(base + 1, 0xff);
	}
}

uint64_t pit_ch2_measure(unsigned ms)
{
	uint32_t latch = 1193182u * ms / 1000;
	outb(0x61, (inb(0x61) & ~0x02) | 0x01);	/* gate high, speaker off */
	outb(0x43, 0xb0);			/* channel 2, lo/hi, mode 0, binary */
	outb(0x42, latch & 0xff);
	outb(0x42, (uint8_t)(latch >> 8));
	uint64_t t0 = rdtsc();
	for (long i = 0; i < 4000000; i++)
		if (inb(0x61) & 0x20)
			return rdtsc() - t0;
	return 0;
}

uint64_t pit_ch2_best(unsigned ms, int runs)
{
	uint64_t best = 0;
	int agree = 0;
	for (int i = 0; i < runs && agree < 2; i++) {
		uint64_t t = pit_ch2_measure(ms);
		if (!t)
			continue;
		if (!best || t < best - best / 50) {
			best = t;
			agree = 1;
		} else if (t <= best + best / 50) {
			agree++;
			if (t < best)
				best = t;
		}
	}
	return best;
}

static uint64_t khz;

uint64_t tsc_khz(void)
{
	if (!khz) {
		uint64_t t = pit_ch2_best(10, 10);
		khz = t ? t / 10 : 1000000;
		if (!t)
			printf("# PIT channel 2 calibration failed; assuming a 1 GHz TSC\n");
	}
	return khz;
}

uint64_t tsc_deadline(uint64_t us)
{
	return rdtsc() + us * tsc_khz() / 1000;
}

void udelay(uint64_t us)
{
	uint64_t end = tsc_deadline(us);
	while ((int64_t)(rdtsc() - end) < 0)
		cpu_relax();
}

static uint32_t pci_addr(int bus, int slot, int fn, int off)
{
	return 0x80000000u | (uint32_t)bus << 16 | (uint32_t)slot << 11 | (uint32_t)fn << 8 | (off & 0xfc);
}

uint32_t pci_read32(int bus, int slot, int fn, int off)
{
	outl(0xcf8, pci_addr(bus, slot, fn, off));
	return inl(0xcfc);
}

uint16_t pci_read16(int bus, int slot, int fn, int off)
{
	outl(0xcf8, pci_addr(bus, slot, fn, off));
	return inw((uint16_t)(0xcfc + (off & 2)));
}

uint8_t pci_read8(int bus, int slot, int fn, int off)
{
	outl(0xcf8, pci_addr(bus, slot, fn, off));
	return inb((uint16_t)(0xcfc + (off & 3)));
}

void pci_write32(int bus, int slot, int fn, int off, uint32_t v)
{
	outl(0xcf8, pci_addr(bus, slot, fn, off));
	outl(0xcfc, v);
}

#ifdef __x86_64__
/* ---- SMP (64-bit runtime only) ---- */
#define TRAMP_BASE 0x8000
#define AP_STACK 16384
#define MAX_CPUS 16

extern char tramp_start[], tramp_end[];
extern uint64_t ap_stack_top;
static uint8_t ap_stacks[MAX_CPUS][AP_STACK] __attribute__((aligned(16)));
static void (*ap_fn)(int);
static volatile int ap_idx, ap_started;
volatile int smp_aps_done;
uint32_t smp_apic_ids[64];

int smp_cpu_count(void)
{
	struct acpi_madt_info m;
	if (!acpi_madt(&m) && m.ncpus) {
		for (int i = 0; i < m.ncpus; i++)
			smp_apic_ids[i] = m.apic_ids[i];
		return m.ncpus > MAX_CPUS ? MAX_CPUS : m.ncpus;
	}
	int n = (int)cmdline_num("cpus", 1);
	if (n > MAX_CPUS)
		n = MAX_CPUS;
	for (int i = 0; i < n; i++)
		smp_apic_ids[i] = (uint32_t)i;
	return n;
}

void rt_ap_main(void);
void rt_ap_main(void)
{
	int idx = ap_idx;
	idt_load();
	__atomic_store_n(&ap_started, 1, __ATOMIC_SEQ_CST);
	ap_fn(idx);
	__atomic_add_fetch(&smp_aps_done, 1, __ATOMIC_SEQ_CST);
}

int smp_start_aps(void (*fn)(int idx))
{
	int n = smp_cpu_count(), up = 0;
	uint32_t self = lapic_id();
	lapic_enable();
	memcpy((void *)TRAMP_BASE, tramp_start, (size_t)(tramp_end - tramp_start));
	ap_fn = fn;
	/* Put the BSP first in smp_apic_ids. */
	for (int i = 0; i < n; i++)
		if (smp_apic_ids[i] == self) {
			smp_apic_ids[i] = smp_apic_ids[0];
			smp_apic_ids[0] = self;
		}
	for (int i = 1; i < n; i++) {
		uint32_t id = smp_apic_ids[i];
		ap_idx = i;
		ap_started = 0;
		ap_stack_top = (uint64_t)(ap_stacks[i] + AP_STACK);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		lapic_ipi(id, 0x4500);		/* INIT, assert, level */
		udelay(10000);
		for (int s = 0; s < 2 && !ap_started; s++) {
			lapic_ipi(id, 0x4600 | TRAMP_BASE >> 12);	/* SIPI */
			udelay(200);
		}
		uint64_t end = tsc_deadline(1000000);
		while (!ap_started && (int64_t)(rdtsc() - end) < 0)
			cpu_relax();
		if (!ap_started) {
			printf("# AP %d (APIC ID %u) did not start\n", i, id);
			continue;
		}
		up++;
	}
	return up;
}
#endif
