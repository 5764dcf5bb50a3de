/* test_tables.c: MP and ACPI tables parse back: checksums, pointers, MADT, FADT, DSDT. */
#include <errno.h>

#include "dev/platform.h"
#include "unit.h"
#include "vmm/guest_mem.h"
#include "x86/tables.h"

static const struct pci_intx_route routes[] = {
	{ .bus = 0, .slot = 3, .pin = 1, .gsi = 16 },
	{ .bus = 0, .slot = 4, .pin = 1, .gsi = 17 },
	{ .bus = 0, .slot = 4, .pin = 2, .gsi = 18 },
};

static struct tables_params params(const struct cpu_topology *topo, bool mp, bool acpi)
{
	return (struct tables_params){
		.topo = topo, .mptable = mp, .acpi = acpi, .routes = routes, .nroutes = 3,
		.pm1a_evt_port = PLATFORM_PM1A_EVT, .pm1a_cnt_port = PLATFORM_PM1A_CNT,
		.pm_tmr_port = PLATFORM_PM_TMR, .smi_cmd_port = PLATFORM_SMI_CMD,
		.sci_irq = PLATFORM_SCI_IRQ, .acpi_enable_value = PLATFORM_ACPI_ENABLE,
		.acpi_disable_value = PLATFORM_ACPI_DISABLE,
	};
}

static uint64_t le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s += *p++;
	return s;
}

/* Pointer to a checksummed ACPI table at gpa with signature sig, or NULL. */
static const uint8_t *table(struct guest_mem *gm, uint64_t gpa, const char *sig)
{
	const uint8_t *h = gm_ptr(gm, gpa, 36, false);
	uint32_t len;

	if (!h || memcmp(h, sig, 4) != 0)
		return NULL;
	len = (uint32_t)le(h + 4, 4);
	h = gm_ptr(gm, gpa, len, false);
	if (!h || sum(h, len) != 0)
		return NULL;
	return h;
}

/* Decode an AML PkgLength at p; returns its value and the byte count in *n. */
static size_t pkglen(const uint8_t *p, int *n)
{
	int extra = p[0] >> 6;
	size_t v = extra ? p[0] & 0xf : p[0] & 0x3f;

	for (int i = 0; i < extra; i++)
		v |= (size_t)p[1 + i] << (4 + 8 * i);
	*n = 1 + extra;
	return v;
}

static const uint8_t *find_bytes(const uint8_t *h, size_t len, const void *needle, size_t n)
{
	for (size_t i = 0; i + n <= len; i++)
		if (memcmp(h + i, needle, n) == 0)
			return h + i;
	return NULL;
}

TEST(tables_acpi_4cpus)
{
	struct cpu_topology topo = { .cpus = 4, .sockets = 2, .cores = 2, .threads = 1 };
	struct tables_params p = params(&topo, true, true);
	struct guest_mem *gm;
	uint64_t rsdp, rgpa, rlen;
	const uint8_t *r, *xsdt, *rsdt, *fadt = NULL, *madt = NULL, *dsdt, *facs;

	CHECK(gm_create(&gm, 64 << 20) == 0);
	CHECK_EQ_U64(tables_build(gm, &p, &rsdp, &rgpa, &rlen), 0);
	CHECK_EQ_U64(rsdp, 0xe0000);
	CHECK_EQ_U64(rgpa, 0xe0000);
	CHECK(rlen > 0 && rgpa + rlen <= 0xf0000);

	r = gm_ptr(gm, rsdp, 36, false);
	CHECK(memcmp(r, "RSD PTR ", 8) == 0);
	CHECK_EQ_U64(sum(r, 20), 0);
	CHECK_EQ_U64(sum(r, 36), 0);
	CHECK_EQ_U64(r[15], 2);
	CHECK_EQ_U64(le(r + 20, 4), 36);
	CHECK((rsdp & 15) == 0);

	xsdt = table(gm, le(r + 24, 8), "XSDT");
	rsdt = table(gm, le(r + 16, 4), "RSDT");
	CHECK(xsdt && rsdt);
	if (!xsdt || !rsdt)
		goto out;
	CHECK_EQ_U64(le(xsdt + 4, 4), 36 + 2 * 8);
	CHECK_EQ_U64(le(rsdt + 4, 4), 36 + 2 * 4);
	for (int i = 0; i < 2; i++) {
		uint64_t a = le(xsdt + 36 + 8 * i, 8);

		CHECK_EQ_U64(a, le(rsdt + 36 + 4 * i, 4));
		CHECK(a >= rgpa && a < rgpa + rlen);
		if (table(gm, a, "FACP"))
			fadt = table(gm, a, "FACP");
		if (table(gm, a, "APIC"))
			madt = table(gm, a, "APIC");
	}
	CHECK(fadt && madt);
	if (!fadt || !madt)
		goto out;

	/* FADT: revision 6, 276 bytes, bhyve's PM block, reset register, century. */
	CHECK_EQ_U64(fadt[8], 6);
	CHECK_EQ_U64(le(fadt + 4, 4), 276);
	CHECK_EQ_U64(le(fadt + 46, 2), 9);
	CHECK_EQ_U64(le(fadt + 48, 4), 0xb2);
	CHECK_EQ_U64(fadt[52], 0xa0);
	CHECK_EQ_U64(fadt[53], 0xa1);
	CHECK_EQ_U64(le(fadt + 56, 4), 0x400);
	CHECK_EQ_U64(le(fadt + 64, 4), 0x404);
	CHECK_EQ_U64(le(fadt + 76, 4), 0x408);
	CHECK_EQ_U64(fadt[88], 4);
	CHECK_EQ_U64(fadt[89], 2);
	CHECK_EQ_U64(fadt[91], 4);
	CHECK_EQ_U64(fadt[108], 0x32);
	CHECK_EQ_U64(le(fadt + 109, 2), 3);
	CHECK(!(le(fadt + 112, 4) & (1u << 20)));	/* not HW_REDUCED_ACPI */
	CHECK(le(fadt + 112, 4) & (1u << 10));		/* RESET_REG_SUP */
	CHECK_EQ_U64(fadt[116], 1);			/* RESET_REG in system I/O */
	CHECK_EQ_U64(le(fadt + 120, 8), 0xcf9);
	CHECK_EQ_U64(fadt[128], 6);
	CHECK_EQ_U64(le(fadt + 152, 8), 0x400);	/* X_PM1a_EVT_BLK */
	CHECK_EQ_U64(le(fadt + 176, 8), 0x404);	/* X_PM1a_CNT_BLK */
	CHECK_EQ_U64(le(fadt + 212, 8), 0x408);	/* X_PM_TMR_BLK */
	CHECK_EQ_U64(le(fadt + 140, 8), le(fadt + 40, 4));
	facs = gm_ptr(gm, le(fadt + 36, 4), 64, false);
	CHECK(facs && memcmp(facs, "FACS", 4) == 0 && le(facs + 4, 4) == 64);
	CHECK((le(fadt + 36, 4) & 63) == 0);

	/* MADT: 4 LAPICs with the topology's IDs, IOAPIC, IRQ0->GSI2, SCI level/high, NMI. */
	{
		uint32_t len = (uint32_t)le(madt + 4, 4);
		int lapics = 0, ioapics = 0, isos = 0, nmis = 0;

		CHECK_EQ_U64(le(madt + 36, 4), 0xfee00000);
		CHECK_EQ_U64(le(madt + 40, 4) & 1, 1);
		for (uint32_t off = 44; off < len;) {
			const uint8_t *e = madt + off;

			CHECK(e[1] >= 2 && off + e[1] <= len);
			if (e[1] < 2)
				break;
			if (e[0] == 0) {
				CHECK_EQ_U64(e[2], lapics);
				CHECK_EQ_U64(e[3], cpuid_apic_id(&topo, lapics));
				CHECK_EQ_U64(le(e + 4, 4), 1);
				lapics++;
			} else if (e[0] == 1) {
				CHECK_EQ_U64(le(e + 4, 4), 0xfec00000);
				CHECK_EQ_U64(le(e + 8, 4), 0);
				ioapics++;
			} else if (e[0] == 2) {
				if (e[3] == 0) {
					CHECK_EQ_U64(le(e + 4, 4), 2);
				} else {
					CHECK_EQ_U64(e[3], 9);
					CHECK_EQ_U64(le(e + 4, 4), 9);
					CHECK_EQ_U64(le(e + 8, 2), 0xd);
				}
				isos++;
			} else if (e[0] == 4) {
				CHECK_EQ_U64(e[5], 1);
				nmis++;
			}
			off += e[1];
		}
		CHECK_EQ_U64(lapics, 4);
		CHECK_EQ_U64(ioapics, 1);
		CHECK_EQ_U64(isos, 2);
		CHECK_EQ_U64(nmis, 1);
	}

	/* DSDT: \_S5 then one Scope whose PkgLength ends exactly at the table's end. */
	dsdt = table(gm, le(fadt + 40, 4), "DSDT");
	CHECK(dsdt != NULL);
	if (dsdt) {
		uint32_t len = (uint32_t)le(dsdt + 4, 4);
		static const uint8_t s5[] = { 0x08, '\\', '_', 'S', '5', '_', 0x12 };
		static const uint8_t hid[] = { '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x03 };
		const uint8_t *q = dsdt + 36, *prt;
		int n;
		size_t pl;

		CHECK(memcmp(q, s5, sizeof s5) == 0);
		pl = pkglen(q + sizeof s5, &n);
		q += sizeof s5 + pl;
		CHECK_EQ_U64(q[0], 0x10);	/* ScopeOp */
		pl = pkglen(q + 1, &n);
		CHECK_EQ_U64(q + 1 + pl - dsdt, len);
		CHECK(memcmp(q + 1 + n, "\\_SB_", 5) == 0);
		CHECK(memcmp(q + 1 + n + 5, "\x5b\x82", 2) == 0);	/* Device */
		CHECK(find_bytes(dsdt, len, "PCI0", 4) != NULL);
		CHECK(find_bytes(dsdt, len, hid, sizeof hid) != NULL);
		CHECK(find_bytes(dsdt, len, "_CRS\x11", 5) != NULL);
		prt = find_bytes(dsdt, len, "_PRT\x12", 5);
		CHECK(prt != NULL);
		if (prt) {
			pl = pkglen(prt + 5, &n);
			CHECK_EQ_U64(prt[5 + n], 3);		/* three routes */
			/* First entry: Package(4) { 0x0003FFFF, Zero, Zero, 16 }. */
			CHECK(memcmp(prt + 5 + n + 1,
				     "\x12\x0b\x04\x0c\xff\xff\x03\x00\x00\x00\x0a\x10", 12) == 0);
		}
	}
out:
	gm_destroy(gm);
}

TEST(tables_mptable_parses)
{
	struct cpu_topology topo = { .cpus = 4, .sockets = 1, .cores = 4, .threads = 1 };
	struct tables_params p = params(&topo, true, false);
	struct guest_mem *gm;
	uint64_t rsdp, rgpa, rlen;
	const uint8_t *fp = NULL, *ct;
	int counts[5] = { 0 }, pci_ints = 0, sci_level = 0;

	CHECK(gm_create(&gm, 64 << 20) == 0);
	CHECK_EQ_U64(tables_build(gm, &p, &rsdp, &rgpa, &rlen), 0);
	CHECK_EQ_U64(rsdp, 0);
	CHECK_EQ_U64(rlen, 0);
	/* Find the floating pointer as a guest does: 16-byte steps in 0xF0000-0xFFFFF. */
	for (uint64_t a = 0xf0000; a < 0x100000 && !fp; a += 16) {
		const uint8_t *c = gm_ptr(gm, a, 16, false);

		if (memcmp(c, "_MP_", 4) == 0 && sum(c, 16) == 0)
			fp = c;
	}
	CHECK(fp != NULL);
	if (!fp)
		goto out;
	CHECK_EQ_U64(fp[8], 1);
	CHECK_EQ_U64(fp[9], 4);
	CHECK_EQ_U64(fp[11], 0);
	ct = gm_ptr(gm, le(fp + 4, 4), 44, false);
	CHECK(ct && memcmp(ct, "PCMP", 4) == 0);
	if (!ct)
		goto out;
	ct = gm_ptr(gm, le(fp + 4, 4), le(ct + 4, 2), false);
	CHECK_EQ_U64(sum(ct, le(ct + 4, 2)), 0);
	CHECK_EQ_U64(le(ct + 36, 4), 0xfee00000);
	{
		const uint8_t *e = ct + 44, *end = ct + le(ct + 4, 2);
		int n = 0;

		while (e < end) {
			CHECK(e[0] <= 4);
			if (e[0] > 4)
				break;
			counts[e[0]]++;
			if (e[0] == 0) {
				CHECK_EQ_U64(e[1], counts[0] - 1);
				CHECK_EQ_U64(e[3] & 2, counts[0] == 1 ? 2 : 0);
				CHECK(e[3] & 1);
			}
			if (e[0] == 3 && e[4] == 0)	/* source bus: PCI 0 */
				pci_ints += e[6] == 0 && e[7] >= 16;
			if (e[0] == 3 && e[5] == 9 && le(e + 2, 2) == 0xd)
				sci_level++;
			e += e[0] == 0 ? 20 : 8;
			n++;
		}
		CHECK(e == end);
		CHECK_EQ_U64(n, le(ct + 34, 2));
	}
	CHECK_EQ_U64(counts[0], 4);
	CHECK_EQ_U64(counts[1], 2);	/* PCI 0, ISA */
	CHECK_EQ_U64(counts[2], 1);
	CHECK_EQ_U64(counts[3], 1 + 15 + 3);
	CHECK_EQ_U64(counts[4], 2);
	CHECK_EQ_U64(pci_ints, 3);
	CHECK_EQ_U64(sci_level, 1);
out:
	gm_destroy(gm);
}

TEST(tables_none_and_errors)
{
	struct cpu_topology topo = { .cpus = 1, .sockets = 1, .cores = 1, .threads = 1 };
	struct cpu_topology big = { .cpus = 300, .sockets = 300, .cores = 1, .threads = 1 };
	struct tables_params p = params(&topo, false, false);
	struct guest_mem *gm;
	uint64_t rsdp = 1, rgpa = 1, rlen = 1;

	CHECK(gm_create(&gm, 16 << 20) == 0);
	CHECK_EQ_U64(tables_build(gm, &p, &rsdp, &rgpa, &rlen), 0);
	CHECK_EQ_U64(rsdp + rgpa + rlen, 0);
	CHECK(memcmp(gm_ptr(gm, 0xf0000, 4, false), "\0\0\0\0", 4) == 0);
	/* Over 254 APIC IDs: no MP table, but the MADT uses x2APIC entries. */
	p = params(&big, true, false);
	CHECK_EQ_U64(tables_build(gm, &p, &rsdp, &rgpa, &rlen), (uint64_t)-ERANGE);
	p = params(&big, false, true);
	CHECK_EQ_U64(tables_build(gm, &p, &rsdp, &rgpa, &rlen), 0);
	{
		const uint8_t *r = gm_ptr(gm, rsdp, 36, false);
		const uint8_t *xsdt = table(gm, le(r + 24, 8), "XSDT"), *madt;
		int lapic = 0, x2apic = 0;

		CHECK(xsdt != NULL);
		madt = xsdt ? table(gm, le(xsdt + 44, 8), "APIC") : NULL;
		CHECK(madt != NULL);
		for (uint32_t off = 44; madt && off < le(madt + 4, 4); off += madt[off + 1]) {
			lapic += madt[off] == 0;
			if (madt[off] == 9) {
				CHECK_EQ_U64(le(madt + off + 4, 4), 255 + x2apic);
				CHECK_EQ_U64(le(madt + off + 12, 4), 255 + x2apic);
				x2apic++;
			}
		}
		CHECK_EQ_U64(lapic, 255);
		CHECK_EQ_U64(x2apic, 45);
	}
	p.topo = NULL;
	CHECK_EQ_U64(tables_build(gm, &p, &rsdp, &rgpa, &rlen), (uint64_t)-EINVAL);
	gm_destroy(gm);
}

/* 128 routes make the DSDT's package lengths multi-byte; the Scope still spans the table. */
TEST(tables_dsdt_many_routes)
{
	struct cpu_topology topo = { .cpus = 2, .sockets = 2, .cores = 1, .threads = 1 };
	struct pci_intx_route many[128];
	struct tables_params p = params(&topo, true, true);
	struct guest_mem *gm;
	uint64_t rsdp, rgpa, rlen;
	const uint8_t *r, *xsdt, *fadt, *dsdt, *q, *prt;
	size_t pl;
	int n;

	for (int i = 0; i < 128; i++)
		many[i] = (struct pci_intx_route){ .bus = 0, .slot = (uint8_t)(i / 4),
						   .pin = (uint8_t)(i % 4 + 1), .gsi = 16 + (i + i / 4) % 8 };
	p.routes = many;
	p.nroutes = 128;
	CHECK(gm_create(&gm, 64 << 20) == 0);
	CHECK_EQ_U64(tables_build(gm, &p, &rsdp, &rgpa, &rlen), 0);
	r = gm_ptr(gm, rsdp, 36, false);
	xsdt = table(gm, le(r + 24, 8), "XSDT");
	fadt = xsdt ? table(gm, le(xsdt + 36, 8), "FACP") : NULL;
	dsdt = fadt ? table(gm, le(fadt + 40, 4), "DSDT") : NULL;
	CHECK(dsdt != NULL);
	if (!dsdt)
		goto out;
	CHECK(le(dsdt + 4, 4) > 1024);
	q = dsdt + 36 + 7;
	q += pkglen(q, &n);
	CHECK_EQ_U64(q[0], 0x10);
	pl = pkglen(q + 1, &n);
	CHECK_EQ_U64(n, 2);
	CHECK_EQ_U64(q + 1 + pl - dsdt, le(dsdt + 4, 4));
	prt = find_bytes(dsdt, le(dsdt + 4, 4), "_PRT\x12", 5);
	CHECK(prt != NULL);
	if (prt) {
		pl = pkglen(prt + 5, &n);
		CHECK_EQ_U64(prt[5 + n], 128);
		CHECK_EQ_U64(prt + 5 + pl - dsdt, le(dsdt + 4, 4));	/* _PRT ends the table */
	}
	CHECK(rgpa + rlen <= 0xf0000);
out:
	gm_destroy(gm);
}
