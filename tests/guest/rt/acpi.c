/*
 * acpi.c: finding and reading ACPI tables (ACPI 6.5 §5.2: RSDP, RSDT/XSDT, FADT, MADT) and
 * the \_S5 sleep type from the DSDT by a byte scan for the `_S5_` name and its package (no AML
 * interpreter), and the power helpers: ACPI S5 through PM1a_CNT, the 0xF4 isa-debug-exit /
 * pc-testdev port as the fallback, 0xCF9 and 8042 reset, halt.
 */
#include "rt.h"

bool acpi_checksum_ok(const void *p, size_t len)
{
	uint8_t s = 0;
	for (size_t i = 0; i < len; i++)
		s += ((const uint8_t *)p)[i];
	return s == 0;
}

static uint64_t rsdp_scan(uint64_t from, uint64_t to)
{
	for (uint64_t a = from; a < to; a += 16)
		if (!memcmp(PHYS(a), "RSD PTR ", 8) && acpi_checksum_ok(PHYS(a), 20))
			return a;
	return 0;
}

uint64_t acpi_rsdp(void)
{
	uint64_t r = bootinfo.rsdp_paddr;
	if (r && r < (1ull << 32) && !memcmp(PHYS(r), "RSD PTR ", 8))
		return r;
	uint64_t ebda = (uint64_t)*(volatile uint16_t *)PHYS(0x40e) << 4;
	if (ebda >= 0x80000 && ebda < 0xa0000 && (r = rsdp_scan(ebda, ebda + 1024)))
		return r;
	return rsdp_scan(0xe0000, 0x100000);
}

static const struct acpi_header *table_at(uint64_t pa)
{
	if (!pa || pa >= (1ull << 32))
		return NULL;
	const struct acpi_header *h = PHYS(pa);
	if (h->length < sizeof(*h) || h->length > (1u << 24) || !acpi_checksum_ok(h, h->length))
		return NULL;
	return h;
}

const struct acpi_header *acpi_find(const char *sig, int n)
{
	uint64_t rp = acpi_rsdp();
	if (!rp)
		return NULL;
	const uint8_t *rsdp = PHYS(rp);
	const struct acpi_header *root = NULL;
	int esz = 4;
	if (rsdp[15] >= 2) {
		root = table_at(*(const uint64_t *)(rsdp + 24));
		esz = 8;
	}
	if (!root) {
		root = table_at(*(const uint32_t *)(rsdp + 16));
		esz = 4;
	}
	if (!root)
		return NULL;
	int count = (int)(root->length - sizeof(*root)) / esz;
	const uint8_t *ents = (const uint8_t *)(root + 1);
	for (int i = 0; i < count; i++) {
		uint64_t pa = esz == 8 ? *(const uint64_t *)(ents + 8 * i) : *(const uint32_t *)(ents + 4 * i);
		const struct acpi_header *h = table_at(pa);
		if (h && !memcmp(h->sig, sig, 4) && n-- == 0)
			return h;
	}
	return NULL;
}

int acpi_madt(struct acpi_madt_info *out)
{
	memset(out, 0, sizeof(*out));
	const struct acpi_header *h = acpi_find("APIC", 0);
	if (!h)
		return -1;
	const uint8_t *p = (const uint8_t *)h;
	out->lapic_addr = *(const uint32_t *)(p + 36);
	for (uint32_t off = 44; off + 2 <= h->length;) {
		uint8_t type = p[off], len = p[off + 1];
		if (len < 2 || off + len > h->length)
			break;
		if (type == 0 && len >= 8 && (p[off + 4] & 1) && out->ncpus < 64)
			out->apic_ids[out->ncpus++] = p[off + 3];
		if (type == 1 && len >= 12 && !out->ioapic_addr) {
			out->ioapic_addr = *(const uint32_t *)(p + off + 4);
			out->ioapic_gsi_base = *(const uint32_t *)(p + off + 8);
		}
		if (type == 2 && len >= 10 && p[off + 3] == 0)
			out->irq0_gsi = (int)*(const uint32_t *)(p + off + 4);
		off += len;
	}
	return 0;
}

int acpi_irq_override(int irq, uint32_t *gsi, uint16_t *flags)
{
	const struct acpi_header *h = acpi_find("APIC", 0);
	if (!h)
		return -1;
	const uint8_t *p = (const uint8_t *)h;
	for (uint32_t off = 44; off + 2 <= h->length;) {
		uint8_t type = p[off], len = p[off + 1];
		if (len < 2 || off + len > h->length)
			break;
		if (type == 2 && len >= 10 && p[off + 3] == irq) {
			*gsi = *(const uint32_t *)(p + off + 4);
			*flags = *(const uint16_t *)(p + off + 8);
			return 0;
		}
		off += len;
	}
	return -1;
}

/* AML: NameOp '_S5_' PackageOp PkgLength NumElements then a byte/const for SLP_TYPa. */
static int dsdt_s5(const struct acpi_header *d)
{
	const uint8_t *p = (const uint8_t *)d;
	for (uint32_t i = sizeof(*d); i + 12 < d->length; i++) {
		if (memcmp(p + i, "_S5_", 4) || p[i + 4] != 0x12)
			continue;
		uint32_t j = i + 5;
		j += (p[j] >> 6) + 1;	/* PkgLength */
		j++;			/* NumElements */
		if (p[j] == 0x0a)	/* BytePrefix */
			return p[j + 1];
		if (p[j] == 0x00 || p[j] == 0x01)	/* ZeroOp, OneOp */
			return p[j];
		if (p[j] == 0xff)
			return -1;
		return p[j] < 8 ? p[j] : -1;
	}
	return -1;
}

int acpi_pm(struct acpi_pm_info *out)
{
	memset(out, 0, sizeof(*out));
	out->s5_typ = -1;
	const struct acpi_header *f = acpi_find("FACP", 0);
	if (!f)
		return -1;
	const uint8_t *p = (const uint8_t *)f;
	memcpy(out->oemid, f->oemid, 6);
	out->pm1a_evt = (uint16_t)*(const uint32_t *)(p + 56);
	out->pm1a_cnt = (uint16_t)*(const uint32_t *)(p + 64);
	out->pm_tmr = (uint16_t)*(const uint32_t *)(p + 76);
	out->sci_int = *(const uint16_t *)(p + 46);
	out->smi_cmd = *(const uint32_t *)(p + 48);
	out->acpi_enable = p[52];
	out->pm1_evt_len = p[88];
	uint64_t dsdt = *(const uint32_t *)(p + 40);
	if (f->length >= 148 && *(const uint64_t *)(p + 140))
		dsdt = *(const uint64_t *)(p + 140);
	const struct acpi_header *d = table_at(dsdt);
	if (d)
		out->s5_typ = dsdt_s5(d);
	return 0;
}

void halt_forever(void)
{
	for (;;)
		__asm__ volatile("cli; hlt");
}

/*
 * S5 through the FADT's PM1a_CNT with \_S5 from the DSDT; without ACPI tables, bhyve's fixed
 * block (0x404, SLP_TYP 5). If the machine is still running, QEMU's isa-debug-exit (or
 * khyve's pc-testdev) at 0xF4 with qemu_code, then halt.
 */
void power_off(int qemu_code)
{
	struct acpi_pm_info pm;
	uint16_t port = 0x404;
	int typ = 5;
	if (!acpi_pm(&pm) && pm.pm1a_cnt) {
		port = pm.pm1a_cnt;
		if (pm.s5_typ >= 0)
			typ = pm.s5_typ;
	}
	outw(port, (uint16_t)(typ << 10 | 1 << 13));
	udelay(200000);	/* QEMU acts on the request asynchronously */
	outl(0xf4, (uint32_t)qemu_code);
	halt_forever();
}

void reset_cf9(void)
{
	outb(0xcf9, 0x02);
	outb(0xcf9, 0x06);
	halt_forever();
}

void reset_8042(void)
{
	for (int i = 0; i < 100000 && (inb(0x64) & 2); i++)
		cpu_relax();
	outb(0x64, 0xfe);
	halt_forever();
}
