/*
 * tables.c: firmware tables for direct boot. The MP table (Intel MP spec 1.4 ch. 4:
 * floating pointer, processors, PCI and ISA buses, IOAPIC, I/O and local interrupt
 * assignments) at 0xF0000; ACPI 6.0 tables (ch. 5: RSDP v2, RSDT, XSDT, FADT rev 6 with
 * FACS, MADT, and a DSDT with \_S5 and \_SB.PCI0: _CRS windows and _PRT from the INTx
 * routes) from 0xE0000. The DSDT's AML is written by the small builder below. SMBIOS
 * (smbios.c) follows the MP table. No HPET, MCFG, SRAT or device objects beyond PCI0.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/guest_mem.h"
#include "x86/smbios.h"
#include "x86/tables.h"

#define TABLES_ACPI_BASE 0xe0000ULL
#define TABLES_MP_BASE 0xf0000ULL
#define TABLES_AREA_SIZE 0x10000ULL	/* each: 64 KiB */
#define TABLES_BIOS_END 0x100000ULL	/* SMBIOS entry points are found below this */

#define LAPIC_BASE 0xfee00000u
#define IOAPIC_BASE 0xfec00000u
#define IOAPIC_ID 0
#define IOAPIC_PINS 24

/* Byte buffer with overflow tracking; every writer below goes through it. */
struct tbuf {
	uint8_t *b;
	size_t len, cap;
	int err;
};

static int tbuf_init(struct tbuf *t, size_t cap)
{
	*t = (struct tbuf){ .b = calloc(1, cap ? cap : 1), .cap = cap };
	return t->b ? 0 : -ENOMEM;
}

/* Reserve n bytes at the end; returns their offset (writes are dropped after an error). */
static size_t tbuf_reserve(struct tbuf *t, size_t n)
{
	size_t off = t->len;

	if (t->err || n > t->cap - t->len) {
		if (!t->err) {
			size_t cap = t->cap * 2 > t->len + n ? t->cap * 2 : t->len + n;
			uint8_t *b = realloc(t->b, cap);

			if (!b) {
				t->err = -ENOMEM;
				return 0;
			}
			memset(b + t->cap, 0, cap - t->cap);
			t->b = b;
			t->cap = cap;
		} else {
			return 0;
		}
	}
	t->len += n;
	return off;
}

static void tbuf_bytes(struct tbuf *t, const void *p, size_t n)
{
	size_t off = tbuf_reserve(t, n);

	if (!t->err)
		memcpy(t->b + off, p, n);
}

static void tbuf_le(struct tbuf *t, uint64_t v, unsigned n)
{
	uint8_t b[8];

	for (unsigned i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	tbuf_bytes(t, b, n);
}

static void tbuf_u8(struct tbuf *t, uint8_t v)
{
	tbuf_le(t, v, 1);
}

static void tbuf_align(struct tbuf *t, size_t a)
{
	tbuf_reserve(t, (a - t->len % a) % a);
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s += *p++;
	return (uint8_t)-s;
}

/* ---- AML (ACPI 6.0 ch. 20) ---- */

#define AML_NAME_OP 0x08
#define AML_BYTE_PREFIX 0x0a
#define AML_WORD_PREFIX 0x0b
#define AML_DWORD_PREFIX 0x0c
#define AML_QWORD_PREFIX 0x0e
#define AML_SCOPE_OP 0x10
#define AML_BUFFER_OP 0x11
#define AML_PACKAGE_OP 0x12
#define AML_EXT_PREFIX 0x5b
#define AML_DEVICE_OP 0x82

static void aml_int(struct tbuf *t, uint64_t v)
{
	if (v <= 1) {
		tbuf_u8(t, (uint8_t)v);	/* ZeroOp, OneOp */
	} else if (v <= 0xff) {
		tbuf_u8(t, AML_BYTE_PREFIX);
		tbuf_u8(t, (uint8_t)v);
	} else if (v <= 0xffff) {
		tbuf_u8(t, AML_WORD_PREFIX);
		tbuf_le(t, v, 2);
	} else if (v <= 0xffffffff) {
		tbuf_u8(t, AML_DWORD_PREFIX);
		tbuf_le(t, v, 4);
	} else {
		tbuf_u8(t, AML_QWORD_PREFIX);
		tbuf_le(t, v, 8);
	}
}

/* A NameString: "\\" root prefix then dot-separated 4-character segments. */
static void aml_name(struct tbuf *t, const char *path)
{
	int segs = 1;

	if (*path == '\\')
		tbuf_u8(t, *path++);
	for (const char *p = path; *p; p++)
		segs += *p == '.';
	if (segs == 2)
		tbuf_u8(t, 0x2e);	/* DualNamePrefix */
	else if (segs > 2) {
		tbuf_u8(t, 0x2f);	/* MultiNamePrefix */
		tbuf_u8(t, (uint8_t)segs);
	}
	for (int i = 0; i < segs; i++) {
		tbuf_bytes(t, path, 4);
		path += 4 + (i + 1 < segs);
	}
}

/* Append `op` (1 or 2 bytes), a PkgLength covering `body`, then body. */
static void aml_pkg(struct tbuf *t, const uint8_t *op, size_t oplen, const struct tbuf *body)
{
	size_t len = body->len;

	if (body->err) {
		t->err = body->err;
		return;
	}
	tbuf_bytes(t, op, oplen);
	if (len + 1 < 0x40) {
		tbuf_u8(t, (uint8_t)(len + 1));
	} else {
		int n = len + 2 < (1u << 12) ? 1 : len + 3 < (1u << 20) ? 2 : 3;
		size_t v = len + 1 + n;

		tbuf_u8(t, (uint8_t)(n << 6 | (v & 0xf)));
		for (int i = 0; i < n; i++)
			tbuf_u8(t, (uint8_t)(v >> (4 + 8 * i)));
	}
	tbuf_bytes(t, body->b, len);
}

static void aml_name_int(struct tbuf *t, const char *name, uint64_t v)
{
	tbuf_u8(t, AML_NAME_OP);
	aml_name(t, name);
	aml_int(t, v);
}

/* EISA ID compression of "PNP0A03" into the dword _HID form. */
static uint32_t aml_eisaid(const char *id)
{
	uint32_t v = (uint32_t)((id[0] - 0x40) << 26 | (id[1] - 0x40) << 21 | (id[2] - 0x40) << 16);

	v |= (uint32_t)strtoul(id + 3, NULL, 16);
	return __builtin_bswap32(v);
}

static void res_word(struct tbuf *t, uint8_t type, uint8_t tflags, uint16_t min, uint16_t max)
{
	tbuf_bytes(t, (uint8_t[]){ 0x88, 0x0d, 0x00, type, 0x0c, tflags }, 6);
	tbuf_le(t, 0, 2);
	tbuf_le(t, min, 2);
	tbuf_le(t, max, 2);
	tbuf_le(t, 0, 2);
	tbuf_le(t, (uint32_t)max - min + 1, 2);
}

static void res_dword_mem(struct tbuf *t, uint8_t tflags, uint32_t min, uint32_t max)
{
	tbuf_bytes(t, (uint8_t[]){ 0x87, 0x17, 0x00, 0x00, 0x0c, tflags }, 6);
	tbuf_le(t, 0, 4);
	tbuf_le(t, min, 4);
	tbuf_le(t, max, 4);
	tbuf_le(t, 0, 4);
	tbuf_le(t, (uint64_t)max - min + 1, 4);
}

static void res_qword_mem(struct tbuf *t, uint8_t tflags, uint64_t min, uint64_t max)
{
	tbuf_bytes(t, (uint8_t[]){ 0x8a, 0x2b, 0x00, 0x00, 0x0c, tflags }, 6);
	tbuf_le(t, 0, 8);
	tbuf_le(t, min, 8);
	tbuf_le(t, max, 8);
	tbuf_le(t, 0, 8);
	tbuf_le(t, max - min + 1, 8);
}

/* \_SB.PCI0 _CRS: bus 0-255, the config ports, I/O outside them, VGA, 32- and 64-bit holes. */
static void dsdt_pci_crs(struct tbuf *t, const struct guest_mem *gm)
{
	struct tbuf res, buf;
	uint64_t low = gm_lowmem_size(gm), hi64;

	if (tbuf_init(&res, 256) || tbuf_init(&buf, 256)) {
		free(res.b);
		t->err = -ENOMEM;
		return;
	}
	res_word(&res, 2, 0, 0x00, 0xff);				/* WordBusNumber */
	tbuf_bytes(&res, (uint8_t[]){ 0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08 }, 8);
	res_word(&res, 1, 3, 0x0000, 0x0cf7);				/* WordIO */
	res_word(&res, 1, 3, 0x0d00, 0xffff);
	res_dword_mem(&res, 0x03, 0xa0000, 0xbffff);			/* cacheable, RW */
	res_dword_mem(&res, 0x01, (uint32_t)(low > 0x100000 ? low : 0x100000), IOAPIC_BASE - 1);
	hi64 = (GUEST_MEM_HIGHMEM_BASE + gm_highmem_size(gm) + (1ULL << 30) - 1) & ~((1ULL << 30) - 1);
	res_qword_mem(&res, 0x01, hi64, hi64 + (32ULL << 30) - 1);
	tbuf_bytes(&res, (uint8_t[]){ 0x79, 0x00 }, 2);		/* EndTag */

	aml_int(&buf, res.len);
	tbuf_bytes(&buf, res.b, res.len);
	if (res.err)
		buf.err = res.err;
	tbuf_u8(t, AML_NAME_OP);
	aml_name(t, "_CRS");
	aml_pkg(t, (uint8_t[]){ AML_BUFFER_OP }, 1, &buf);
	free(res.b);
	free(buf.b);
}

/* _PRT: Package { Package { 0xSSSSFFFF, pin, Zero, GSI } ... } for the bus-0 routes. */
static void dsdt_pci_prt(struct tbuf *t, const struct tables_params *p)
{
	struct tbuf list, ent;
	int n = 0;

	if (tbuf_init(&list, 1024) || tbuf_init(&ent, 32)) {
		free(list.b);
		t->err = -ENOMEM;
		return;
	}
	tbuf_u8(&list, 0);	/* NumElements, patched below */
	for (int i = 0; i < p->nroutes; i++) {
		const struct pci_intx_route *r = &p->routes[i];

		if (r->bus != 0 || r->pin < 1 || r->pin > 4 || r->slot > 31 || r->gsi < 0)
			continue;
		ent.len = 0;
		tbuf_u8(&ent, 4);
		aml_int(&ent, (uint32_t)r->slot << 16 | 0xffff);
		aml_int(&ent, (uint64_t)r->pin - 1);
		aml_int(&ent, 0);
		aml_int(&ent, (uint64_t)r->gsi);
		aml_pkg(&list, (uint8_t[]){ AML_PACKAGE_OP }, 1, &ent);
		n++;
	}
	if (n > 255)
		list.err = -E2BIG;
	else if (!list.err)
		list.b[0] = (uint8_t)n;
	tbuf_u8(t, AML_NAME_OP);
	aml_name(t, "_PRT");
	aml_pkg(t, (uint8_t[]){ AML_PACKAGE_OP }, 1, &list);
	free(list.b);
	free(ent.b);
}

static void acpi_header(struct tbuf *t, const char *sig, uint8_t rev)
{
	tbuf_bytes(t, sig, 4);
	tbuf_le(t, 0, 4);	/* length, patched by acpi_finish */
	tbuf_u8(t, rev);
	tbuf_u8(t, 0);		/* checksum */
	tbuf_bytes(t, "KHYVE ", 6);
	tbuf_bytes(t, "KHYVEVM ", 8);
	tbuf_le(t, 1, 4);
	tbuf_bytes(t, "KHYV", 4);
	tbuf_le(t, 1, 4);
}

/* Patch length and checksum of the table that starts at `start`. */
static void acpi_finish(struct tbuf *t, size_t start)
{
	if (t->err)
		return;
	put_le(t->b + start + 4, t->len - start, 4);
	t->b[start + 9] = checksum(t->b + start, t->len - start);
}

static void build_dsdt(struct tbuf *t, const struct guest_mem *gm, const struct tables_params *p)
{
	struct tbuf dev, scope, s5;
	size_t start = t->len;

	if (tbuf_init(&dev, 1024) || tbuf_init(&scope, 1024) || tbuf_init(&s5, 16)) {
		free(dev.b);
		free(scope.b);
		t->err = -ENOMEM;
		return;
	}
	acpi_header(t, "DSDT", 2);

	/* \_S5: SLP_TYPa = SLP_TYPb = 5, the value bhyve's PM1a_CNT treats as soft-off. */
	tbuf_u8(&s5, 4);
	aml_int(&s5, 5);
	aml_int(&s5, 5);
	aml_int(&s5, 0);
	aml_int(&s5, 0);
	tbuf_u8(t, AML_NAME_OP);
	aml_name(t, "\\_S5_");
	aml_pkg(t, (uint8_t[]){ AML_PACKAGE_OP }, 1, &s5);

	aml_name(&dev, "PCI0");
	aml_name_int(&dev, "_HID", aml_eisaid("PNP0A03"));
	aml_name_int(&dev, "_ADR", 0);
	aml_name_int(&dev, "_UID", 0);
	aml_name_int(&dev, "_BBN", 0);
	dsdt_pci_crs(&dev, gm);
	dsdt_pci_prt(&dev, p);

	aml_name(&scope, "\\_SB_");
	aml_pkg(&scope, (uint8_t[]){ AML_EXT_PREFIX, AML_DEVICE_OP }, 2, &dev);
	aml_pkg(t, (uint8_t[]){ AML_SCOPE_OP }, 1, &scope);
	acpi_finish(t, start);
	free(dev.b);
	free(scope.b);
	free(s5.b);
}

/* Generic Address Structure for a System I/O register block. */
static void acpi_gas_io(struct tbuf *t, uint16_t port, uint8_t bits, uint8_t access)
{
	tbuf_u8(t, port ? 1 : 0);
	tbuf_u8(t, port ? bits : 0);
	tbuf_u8(t, 0);
	tbuf_u8(t, port ? access : 0);
	tbuf_le(t, port, 8);
}

static void build_fadt(struct tbuf *t, const struct tables_params *p, uint32_t facs,
		       uint32_t dsdt)
{
	size_t start = t->len;

	acpi_header(t, "FACP", 6);
	tbuf_le(t, facs, 4);		/* FIRMWARE_CTRL */
	tbuf_le(t, dsdt, 4);		/* DSDT */
	tbuf_u8(t, 0);			/* reserved */
	tbuf_u8(t, 0);			/* Preferred_PM_Profile: unspecified */
	tbuf_le(t, p->sci_irq, 2);
	tbuf_le(t, p->smi_cmd_port, 4);
	tbuf_u8(t, p->acpi_enable_value);
	tbuf_u8(t, p->acpi_disable_value);
	tbuf_u8(t, 0);			/* S4BIOS_REQ */
	tbuf_u8(t, 0);			/* PSTATE_CNT */
	tbuf_le(t, p->pm1a_evt_port, 4);
	tbuf_le(t, 0, 4);		/* PM1b_EVT_BLK */
	tbuf_le(t, p->pm1a_cnt_port, 4);
	tbuf_le(t, 0, 4);		/* PM1b_CNT_BLK */
	tbuf_le(t, 0, 4);		/* PM2_CNT_BLK */
	tbuf_le(t, p->pm_tmr_port, 4);
	tbuf_le(t, 0, 4);		/* GPE0_BLK */
	tbuf_le(t, 0, 4);		/* GPE1_BLK */
	tbuf_u8(t, 4);			/* PM1_EVT_LEN */
	tbuf_u8(t, 2);			/* PM1_CNT_LEN */
	tbuf_u8(t, 0);			/* PM2_CNT_LEN */
	tbuf_u8(t, 4);			/* PM_TMR_LEN */
	tbuf_u8(t, 0);			/* GPE0_BLK_LEN */
	tbuf_u8(t, 0);			/* GPE1_BLK_LEN */
	tbuf_u8(t, 0);			/* GPE1_BASE */
	tbuf_u8(t, 0);			/* CST_CNT */
	tbuf_le(t, 101, 2);		/* P_LVL2_LAT: C2 unsupported */
	tbuf_le(t, 1001, 2);		/* P_LVL3_LAT: C3 unsupported */
	tbuf_le(t, 0, 2);		/* FLUSH_SIZE */
	tbuf_le(t, 0, 2);		/* FLUSH_STRIDE */
	tbuf_u8(t, 0);			/* DUTY_OFFSET */
	tbuf_u8(t, 0);			/* DUTY_WIDTH */
	tbuf_u8(t, 0);			/* DAY_ALRM */
	tbuf_u8(t, 0);			/* MON_ALRM */
	tbuf_u8(t, 0x32);		/* CENTURY: CMOS index */
	tbuf_le(t, 0x0003, 2);		/* IAPC_BOOT_ARCH: LEGACY_DEVICES, 8042 */
	tbuf_u8(t, 0);
	/* Flags: WBINVD, PROC_C1, SLP_BUTTON (none), RESET_REG_SUP; 24-bit PM timer. */
	tbuf_le(t, 1u << 0 | 1u << 2 | 1u << 5 | 1u << 10, 4);
	acpi_gas_io(t, 0xcf9, 8, 1);	/* RESET_REG */
	tbuf_u8(t, 0x06);		/* RESET_VALUE */
	tbuf_le(t, 0, 2);		/* ARM_BOOT_ARCH */
	tbuf_u8(t, 0);			/* FADT minor version */
	tbuf_le(t, 0, 8);		/* X_FIRMWARE_CTRL: FIRMWARE_CTRL is used */
	tbuf_le(t, dsdt, 8);		/* X_DSDT */
	acpi_gas_io(t, p->pm1a_evt_port, 32, 2);
	acpi_gas_io(t, 0, 0, 0);
	acpi_gas_io(t, p->pm1a_cnt_port, 16, 2);
	acpi_gas_io(t, 0, 0, 0);
	acpi_gas_io(t, 0, 0, 0);
	acpi_gas_io(t, p->pm_tmr_port, 32, 3);
	acpi_gas_io(t, 0, 0, 0);	/* X_GPE0_BLK */
	acpi_gas_io(t, 0, 0, 0);	/* X_GPE1_BLK */
	acpi_gas_io(t, 0, 0, 0);	/* SLEEP_CONTROL_REG */
	acpi_gas_io(t, 0, 0, 0);	/* SLEEP_STATUS_REG */
	tbuf_le(t, 0, 8);		/* hypervisor vendor identity */
	acpi_finish(t, start);
}

static void build_madt(struct tbuf *t, const struct tables_params *p)
{
	size_t start = t->len;
	uint16_t sci_flags = 0x000d;	/* level-triggered, active-high */

	acpi_header(t, "APIC", 4);
	tbuf_le(t, LAPIC_BASE, 4);
	tbuf_le(t, 1, 4);		/* PCAT_COMPAT: 8259s present */
	for (int i = 0; i < p->topo->cpus; i++) {
		uint32_t id = cpuid_apic_id(p->topo, i);

		if (id < 255 && i < 255) {
			tbuf_bytes(t, (uint8_t[]){ 0, 8, (uint8_t)i, (uint8_t)id }, 4);
			tbuf_le(t, 1, 4);	/* enabled */
		} else {
			tbuf_bytes(t, (uint8_t[]){ 9, 16, 0, 0 }, 4);
			tbuf_le(t, id, 4);
			tbuf_le(t, 1, 4);
			tbuf_le(t, (uint32_t)i, 4);
		}
	}
	tbuf_bytes(t, (uint8_t[]){ 1, 12, IOAPIC_ID, 0 }, 4);
	tbuf_le(t, IOAPIC_BASE, 4);
	tbuf_le(t, 0, 4);		/* GSI base */
	tbuf_bytes(t, (uint8_t[]){ 2, 10, 0, 0 }, 4);	/* IRQ0 -> GSI2 */
	tbuf_le(t, 2, 4);
	tbuf_le(t, 0, 2);
	tbuf_bytes(t, (uint8_t[]){ 2, 10, 0, p->sci_irq }, 4);
	tbuf_le(t, p->sci_irq, 4);
	tbuf_le(t, sci_flags, 2);
	tbuf_bytes(t, (uint8_t[]){ 4, 6, 0xff, 0, 0, 1 }, 6);	/* NMI on LINT1, all CPUs */
	acpi_finish(t, start);
}

/* ACPI tables into t, whose first byte lands at TABLES_ACPI_BASE; the RSDP comes first. */
static void build_acpi(struct tbuf *t, const struct guest_mem *gm, const struct tables_params *p)
{
	size_t rsdp, rsdt, xsdt, facs, fadt, madt, dsdt;
	const uint32_t base = (uint32_t)TABLES_ACPI_BASE;

	rsdp = tbuf_reserve(t, 36);
	tbuf_align(t, 64);
	facs = tbuf_reserve(t, 64);
	dsdt = t->len;
	build_dsdt(t, gm, p);
	tbuf_align(t, 16);
	fadt = t->len;
	build_fadt(t, p, base + (uint32_t)facs, base + (uint32_t)dsdt);
	tbuf_align(t, 16);
	madt = t->len;
	build_madt(t, p);
	tbuf_align(t, 16);
	rsdt = t->len;
	acpi_header(t, "RSDT", 1);
	tbuf_le(t, base + fadt, 4);
	tbuf_le(t, base + madt, 4);
	acpi_finish(t, rsdt);
	tbuf_align(t, 16);
	xsdt = t->len;
	acpi_header(t, "XSDT", 1);
	tbuf_le(t, base + fadt, 8);
	tbuf_le(t, base + madt, 8);
	acpi_finish(t, xsdt);
	tbuf_align(t, 16);
	if (t->err)
		return;

	memcpy(t->b + facs, "FACS", 4);
	put_le(t->b + facs + 4, 64, 4);
	t->b[facs + 32] = 2;		/* version */

	memcpy(t->b + rsdp, "RSD PTR ", 8);
	memcpy(t->b + rsdp + 9, "KHYVE ", 6);
	t->b[rsdp + 15] = 2;		/* revision: ACPI 2.0+ */
	put_le(t->b + rsdp + 16, base + rsdt, 4);
	put_le(t->b + rsdp + 20, 36, 4);
	put_le(t->b + rsdp + 24, base + xsdt, 8);
	t->b[rsdp + 8] = checksum(t->b + rsdp, 20);
	t->b[rsdp + 32] = checksum(t->b + rsdp, 36);
}

/* MP spec 1.4 table: floating pointer at offset 0, configuration table after it. */
static int build_mptable(struct tbuf *t, const struct tables_params *p)
{
	size_t hdr;
	int count = 0, max_bus = 0;
	uint8_t isa_bus;

	for (int i = 0; i < p->topo->cpus; i++)
		if (cpuid_apic_id(p->topo, i) >= 255)
			return -ERANGE;	/* xAPIC IDs only: use x86.mptable=false */
	for (int i = 0; i < p->nroutes; i++)
		if (p->routes[i].bus > max_bus)
			max_bus = p->routes[i].bus;
	if (max_bus >= 255)
		return -ERANGE;
	isa_bus = (uint8_t)(max_bus + 1);

	tbuf_bytes(t, "_MP_", 4);
	tbuf_le(t, TABLES_MP_BASE + 16, 4);
	tbuf_bytes(t, (uint8_t[]){ 1, 4, 0, 0, 0, 0, 0, 0 }, 8);	/* length, rev, sum, features */
	t->b[10] = checksum(t->b, 16);

	hdr = t->len;
	tbuf_bytes(t, "PCMP", 4);
	tbuf_le(t, 0, 2);		/* base table length */
	tbuf_u8(t, 4);
	tbuf_u8(t, 0);
	tbuf_bytes(t, "KHYVE   ", 8);
	tbuf_bytes(t, "KHYVE VM    ", 12);
	tbuf_le(t, 0, 4);		/* OEM table pointer */
	tbuf_le(t, 0, 2);
	tbuf_le(t, 0, 2);		/* entry count */
	tbuf_le(t, LAPIC_BASE, 4);
	tbuf_le(t, 0, 4);		/* extended table length, checksum, reserved */

	for (int i = 0; i < p->topo->cpus; i++, count++) {
		tbuf_bytes(t, (uint8_t[]){ 0, (uint8_t)cpuid_apic_id(p->topo, i), 0x14,
					   (uint8_t)(i == 0 ? 3 : 1) }, 4);
		tbuf_le(t, 0x00000f00, 4);	/* signature: family 15 */
		tbuf_le(t, 0x00000201, 4);	/* features: FPU, APIC */
		tbuf_le(t, 0, 8);
	}
	for (int b = 0; b <= max_bus; b++, count++)
		tbuf_bytes(t, (uint8_t[]){ 1, (uint8_t)b, 'P', 'C', 'I', ' ', ' ', ' ' }, 8);
	tbuf_bytes(t, (uint8_t[]){ 1, isa_bus, 'I', 'S', 'A', ' ', ' ', ' ' }, 8);
	count++;
	tbuf_bytes(t, (uint8_t[]){ 2, IOAPIC_ID, 0x11, 1 }, 4);
	tbuf_le(t, IOAPIC_BASE, 4);
	count++;

	/* ISA IRQs: 0 as ExtINT on pin 0 and to pin 2, the rest identity (2 is the cascade). */
	tbuf_bytes(t, (uint8_t[]){ 3, 3, 0, 0, isa_bus, 0, IOAPIC_ID, 0 }, 8);
	count++;
	for (int irq = 0; irq < 16; irq++) {
		uint16_t flags = irq == p->sci_irq ? 0x000d : 0;	/* SCI: level, high */

		if (irq == 2)
			continue;
		count++;
		tbuf_bytes(t, (uint8_t[]){ 3, 0, (uint8_t)flags, (uint8_t)(flags >> 8), isa_bus,
					   (uint8_t)irq, IOAPIC_ID, (uint8_t)(irq ? irq : 2) }, 8);
	}
	/* PCI INTx: source IRQ is (slot << 2) | (pin - 1), level-triggered, active-high. */
	for (int i = 0; i < p->nroutes; i++) {
		const struct pci_intx_route *r = &p->routes[i];

		if (r->pin < 1 || r->pin > 4 || r->slot > 31 || r->gsi < 0 ||
		    r->gsi >= IOAPIC_PINS)
			continue;
		tbuf_bytes(t, (uint8_t[]){ 3, 0, 0x0d, 0, r->bus,
					   (uint8_t)(r->slot << 2 | (r->pin - 1)), IOAPIC_ID,
					   (uint8_t)r->gsi }, 8);
		count++;
	}
	tbuf_bytes(t, (uint8_t[]){ 4, 3, 0, 0, isa_bus, 0, 0xff, 0 }, 8);	/* LINT0 ExtINT */
	tbuf_bytes(t, (uint8_t[]){ 4, 1, 0, 0, isa_bus, 0, 0xff, 1 }, 8);	/* LINT1 NMI */
	count += 2;
	if (t->err)
		return t->err;
	put_le(t->b + hdr + 4, t->len - hdr, 2);
	put_le(t->b + hdr + 34, (uint64_t)count, 2);
	t->b[hdr + 7] = checksum(t->b + hdr, t->len - hdr);
	return 0;
}

/* SMBIOS at gpa (16-byte aligned), in what is left of 0xF0000-0xFFFFF. */
static int build_smbios(struct guest_mem *gm, const struct tables_params *p, uint64_t gpa)
{
	size_t cap = gpa < TABLES_BIOS_END ? TABLES_BIOS_END - gpa : 0, len;
	uint8_t *buf;
	int ret;

	if (cap < 4096)
		return -E2BIG;
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	ret = smbios_build(p->smbios, p->topo, gm_lowmem_size(gm), gm_highmem_size(gm), p->acpi,
			   (uint32_t)gpa, buf, cap, &len);
	if (!ret && gm_write(gm, gpa, buf, len))
		ret = -EFAULT;
	free(buf);
	return ret;
}

int tables_build(struct guest_mem *gm, const struct tables_params *p, uint64_t *rsdp_gpa,
		 uint64_t *region_gpa, uint64_t *region_len)
{
	uint64_t smbios_gpa = TABLES_MP_BASE;
	struct tbuf t;
	int ret = 0;

	*rsdp_gpa = 0;
	*region_gpa = 0;
	*region_len = 0;
	if (!p->topo || p->topo->cpus < 1 || p->nroutes < 0 || (p->nroutes && !p->routes))
		return -EINVAL;
	if (p->mptable) {
		ret = tbuf_init(&t, 4096);
		if (!ret)
			ret = build_mptable(&t, p);
		if (!ret && t.len > TABLES_AREA_SIZE)
			ret = -E2BIG;
		if (!ret && gm_write(gm, TABLES_MP_BASE, t.b, t.len))
			ret = -EFAULT;
		smbios_gpa += (t.len + 15) & ~(size_t)15;
		free(t.b);
		if (ret)
			return ret;
	}
	if (p->smbios) {
		ret = build_smbios(gm, p, smbios_gpa);
		if (ret)
			return ret;
	}
	if (p->acpi) {
		ret = tbuf_init(&t, 4096);
		if (!ret) {
			build_acpi(&t, gm, p);
			ret = t.err;
		}
		if (!ret && t.len > TABLES_AREA_SIZE)
			ret = -E2BIG;
		if (!ret && gm_write(gm, TABLES_ACPI_BASE, t.b, t.len))
			ret = -EFAULT;
		if (!ret) {
			*rsdp_gpa = TABLES_ACPI_BASE;
			*region_gpa = TABLES_ACPI_BASE;
			*region_len = t.len;
		}
		free(t.b);
	}
	return ret;
}
