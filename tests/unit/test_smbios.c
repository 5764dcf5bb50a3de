/*
 * test_smbios.c: SMBIOS tables parse back as a guest would find them: the entry point by a
 * 16-byte scan of 0xF0000-0xFFFFF, both checksums, the structure walk with its strings, the
 * UUID byte order, bhyve's derived UUID, defaults and overrides by config keys, MD5 vectors.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "config/config.h"
#include "dev/platform.h"
#include "unit.h"
#include "vmm/guest_mem.h"
#include "x86/smbios.h"
#include "x86/tables.h"

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

/* One structure of a walked table. */
struct sm {
	const uint8_t *f;		/* formatted area */
	const char *str[16];		/* str[1..nstr] */
	int nstr;
	size_t size;			/* formatted area and strings */
};

#define WALK_KEEP 64

/* Every structure is checked and counted; the first WALK_KEEP are kept. */
struct walk {
	struct sm s[WALK_KEEP + 1];
	int n;
	size_t maxsize;
	bool ok;
};

/* Walk a structure table of len bytes, checking every string-set is terminated in bounds. */
static void walk(const uint8_t *t, size_t len, struct walk *w)
{
	size_t off = 0;

	w->n = 0;
	w->maxsize = 0;
	w->ok = false;
	while (off + 4 <= len && w->n < 0x10000) {
		struct sm *s = &w->s[w->n < WALK_KEEP ? w->n : WALK_KEEP];
		size_t p = off + t[off + 1];

		s->f = t + off;
		s->nstr = 0;
		if (t[off + 1] < 4 || p + 2 > len)
			return;
		if (t[p] == 0) {
			if (t[p + 1] != 0)
				return;
			p += 2;
		} else {
			while (p < len && t[p]) {
				if (s->nstr < 15)
					s->str[++s->nstr] = (const char *)t + p;
				p += strlen((const char *)t + p) + 1;
				if (p > len)
					return;
			}
			if (p >= len)
				return;
			p++;
		}
		w->n++;
		s->size = p - off;
		if (s->size > w->maxsize)
			w->maxsize = s->size;
		off = p;
		if (s->f[0] == 127) {
			w->ok = off == len;
			return;
		}
	}
}

/* String n of structure s, "" for 0 (none), NULL when out of range. */
static const char *sstr(const struct sm *s, int off)
{
	int n = s->f[off];

	if (n == 0)
		return "";
	return n <= s->nstr ? s->str[n] : NULL;
}

static const struct sm *find(const struct walk *w, int type, int nth)
{
	for (int i = 0; i < w->n && i < WALK_KEEP; i++)
		if (w->s[i].f[0] == type && nth-- == 0)
			return &w->s[i];
	return NULL;
}

/* Scan as Linux's dmi_scan and FreeBSD's smbios(4) do; check the entry point; walk. */
static uint64_t scan(struct guest_mem *gm, struct walk *w)
{
	const uint8_t *bios = gm_ptr(gm, 0xf0000, 0x10000, false), *ep = NULL, *t;
	uint64_t at = 0;

	w->n = 0;
	w->ok = false;
	for (uint32_t off = 0; bios && off + 0x1f <= 0x10000; off += 16) {
		if (memcmp(bios + off, "_SM_", 4) == 0) {
			ep = bios + off;
			at = 0xf0000 + off;
			break;
		}
	}
	CHECK(ep != NULL);
	if (!ep)
		return 0;
	CHECK_EQ_U64(ep[5], 0x1f);
	CHECK_EQ_U64(sum(ep, ep[5]), 0);
	CHECK(memcmp(ep + 0x10, "_DMI_", 5) == 0);
	CHECK_EQ_U64(sum(ep + 0x10, 15), 0);
	CHECK_EQ_U64(ep[6], 2);
	CHECK_EQ_U64(ep[7], 8);
	CHECK_EQ_U64(ep[0x1e], 0x28);
	CHECK_EQ_U64(le(ep + 0x18, 4) % 16, 0);
	t = gm_ptr(gm, le(ep + 0x18, 4), le(ep + 0x16, 2), false);
	CHECK(t != NULL);
	if (!t)
		return 0;
	walk(t, le(ep + 0x16, 2), w);
	CHECK(w->ok);
	CHECK_EQ_U64(w->n, le(ep + 0x1c, 2));
	CHECK_EQ_U64(w->maxsize, le(ep + 8, 2));
	for (int i = 0; i < w->n && i < WALK_KEEP; i++)
		CHECK_EQ_U64(le(w->s[i].f + 2, 2), i);	/* unique handles */
	return at;
}

static struct tables_params params(const struct cpu_topology *topo, bool mp, bool acpi,
				   const struct smbios_info *si)
{
	return (struct tables_params){
		.topo = topo, .mptable = mp, .acpi = acpi, .smbios = si,
		.pm1a_evt_port = PLATFORM_PM1A_EVT, .pm1a_cnt_port = PLATFORM_PM1A_CNT,
		.pm_tmr_port = PLATFORM_PM_TMR, .smi_cmd_port = PLATFORM_SMI_CMD,
		.sci_irq = PLATFORM_SCI_IRQ, .acpi_enable_value = PLATFORM_ACPI_ENABLE,
		.acpi_disable_value = PLATFORM_ACPI_DISABLE,
	};
}

static void hex(const uint8_t *d, int n, char *out)
{
	for (int i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

TEST(smbios_md5_vectors)
{
	static const struct {
		const char *in, *out;
	} v[] = {	/* RFC 1321 A.5 */
		{ "", "d41d8cd98f00b204e9800998ecf8427e" },
		{ "a", "0cc175b9c0f1b6a831c399e269772661" },
		{ "abc", "900150983cd24fb0d6963f7d28e17f72" },
		{ "message digest", "f96b697d7cb7938d525a2f31aaf161d0" },
		{ "abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b" },
		{ "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
		  "d174ab98d277d9f5a5611c2c9f419d9f" },
		{ "1234567890123456789012345678901234567890"
		  "1234567890123456789012345678901234567890",
		  "57edf4a22be3c955ac49da2e2107b67a" },
	};
	uint8_t d[16];
	char h[33];

	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		smbios_md5(v[i].in, strlen(v[i].in), d);
		hex(d, 16, h);
		CHECK_STR(h, v[i].out);
	}
}

TEST(smbios_uuid_byte_order)
{
	static const uint8_t want[16] = { 0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66,
					  0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };
	uint8_t u[16];

	CHECK_EQ_U64(smbios_uuid_parse("00112233-4455-6677-8899-AABBCCDDEEFF", u), 0);
	CHECK(memcmp(u, want, 16) == 0);
	CHECK_EQ_U64(smbios_uuid_parse("00112233-4455-6677-8899-aabbccddeef", u),
		     (uint64_t)-EINVAL);
	CHECK_EQ_U64(smbios_uuid_parse("00112233-4455-6677-8899-aabbccddeeffa", u),
		     (uint64_t)-EINVAL);
	CHECK_EQ_U64(smbios_uuid_parse("0011223304455-6677-8899-aabbccddeeff", u),
		     (uint64_t)-EINVAL);
	CHECK_EQ_U64(smbios_uuid_parse("00112233-4455-6677-8899-aabbccddeegf", u),
		     (uint64_t)-EINVAL);
	CHECK_EQ_U64(smbios_uuid_parse(NULL, u), (uint64_t)-EINVAL);
}

TEST(smbios_uuid_derived_as_bhyve)
{
	uint8_t msg[5 + 256], d[16], u[16], u2[16];

	/* The VM name, then the host name in a zero-filled 256-byte buffer. */
	memcpy(msg, "guest", 5);
	memset(msg + 5, 0, 256);
	memcpy(msg + 5, "host.example", 12);
	smbios_md5(msg, sizeof msg, d);
	d[6] = (uint8_t)((d[6] & 0x0f) | 0x30);
	d[8] = (uint8_t)((d[8] & 0x3f) | 0x80);
	smbios_uuid_derive("guest", "host.example", u);
	CHECK(memcmp(u, d, 16) == 0);
	CHECK_EQ_U64(u[6] >> 4, 3);
	CHECK_EQ_U64(u[8] >> 6, 2);
	smbios_uuid_derive("guest", "host.example", u2);
	CHECK(memcmp(u, u2, 16) == 0);
	smbios_uuid_derive("guest2", "host.example", u2);
	CHECK(memcmp(u, u2, 16) != 0);
	smbios_uuid_derive("guest", "other.example", u2);
	CHECK(memcmp(u, u2, 16) != 0);
}

TEST(smbios_defaults_from_config)
{
	struct cpu_topology topo = { .cpus = 4, .sockets = 2, .cores = 2, .threads = 1 };
	struct smbios_info si;
	struct tables_params p = params(&topo, true, true, &si);
	struct guest_mem *gm;
	uint64_t rsdp, rgpa, rlen, at;
	struct walk w;
	const struct sm *s;
	char err[128] = "";
	uint8_t derived[16];

	cfg_reset();
	CHECK_EQ_U64(smbios_info_from_config(cfg_root(), "vm1", &si, err, sizeof err), 0);
	CHECK(gm_create(&gm, 64 << 20) == 0);
	CHECK_EQ_U64(tables_build(gm, &p, &rsdp, &rgpa, &rlen), 0);
	at = scan(gm, &w);
	/* After the MP table (its floating pointer still first and intact). */
	CHECK(at > 0xf0000);
	CHECK(memcmp(gm_ptr(gm, 0xf0000, 4, false), "_MP_", 4) == 0);
	CHECK_EQ_U64(sum(gm_ptr(gm, 0xf0000, 16, false), 16), 0);

	/* 0, 1, 2, 3, 4 x2, 16, 17, 19, 32, 127 */
	CHECK_EQ_U64(w.n, 11);
	s = find(&w, 0, 0);
	CHECK(s != NULL);
	if (s) {
		CHECK_EQ_U64(s->f[1], 0x18);
		CHECK_STR(sstr(s, 4), "BHYVE");
		CHECK_STR(sstr(s, 5), "14.0");
		CHECK_STR(sstr(s, 8), "10/17/2021");
		CHECK_EQ_U64(le(s->f + 6, 2), 0xf000);
		CHECK_EQ_U64(s->f[0x12] & 1, 1);	/* ACPI */
		CHECK_EQ_U64(s->f[0x13] & 0x10, 0x10);	/* a virtual machine */
		CHECK_EQ_U64(s->f[0x14], 14);
		CHECK_EQ_U64(s->f[0x15], 0);
	}
	s = find(&w, 1, 0);
	CHECK(s != NULL);
	if (s) {
		CHECK_EQ_U64(s->f[1], 0x1b);
		CHECK_STR(sstr(s, 4), "FreeBSD");
		CHECK_STR(sstr(s, 5), "BHYVE");
		CHECK_STR(sstr(s, 6), "1.0");
		CHECK_STR(sstr(s, 7), "None");
		CHECK_STR(sstr(s, 0x19), "None");
		CHECK_STR(sstr(s, 0x1a), "Virtual Machine");
		CHECK(memcmp(s->f + 8, si.uuid, 16) == 0);
		CHECK_EQ_U64(s->f[0x18], 6);
	}
	/* Without a uuid key: bhyve's derivation from the VM and host names. */
	{
		char host[256] = "";

		CHECK(gethostname(host, sizeof host - 1) == 0);
		smbios_uuid_derive("vm1", host, derived);
		CHECK(memcmp(si.uuid, derived, 16) == 0);
	}
	s = find(&w, 2, 0);
	CHECK(s != NULL);
	if (s) {
		CHECK_STR(sstr(s, 4), "FreeBSD");
		CHECK_STR(sstr(s, 5), "BHYVE");
		CHECK_STR(sstr(s, 6), "1.0");
		CHECK_STR(sstr(s, 7), "None");
		CHECK_STR(sstr(s, 8), "None");
		CHECK_STR(sstr(s, 0x0a), "None");
		CHECK_EQ_U64(s->f[0x0d], 0x0a);
		/* Its chassis handle names the type 3 structure. */
		CHECK(find(&w, 3, 0) && le(s->f + 0x0b, 2) == le(find(&w, 3, 0)->f + 2, 2));
	}
	s = find(&w, 3, 0);
	CHECK(s != NULL);
	if (s) {
		CHECK_EQ_U64(s->f[1], 0x16);
		CHECK_STR(sstr(s, 4), "FreeBSD");
		CHECK_STR(sstr(s, 6), "1.0");
		CHECK_STR(sstr(s, 7), "None");
		CHECK_STR(sstr(s, 8), "None");
		CHECK_STR(sstr(s, 0x15), "None");
	}
	for (int i = 0; i < 2; i++) {
		s = find(&w, 4, i);
		CHECK(s != NULL);
		if (!s)
			continue;
		CHECK_STR(sstr(s, 4), i ? "CPU #1" : "CPU #0");
		CHECK_EQ_U64(s->f[0x18], 0x41);
		CHECK_EQ_U64(s->f[0x23], 2);
		CHECK_EQ_U64(s->f[0x24], 2);
		CHECK_EQ_U64(s->f[0x25], 2);
	}
	CHECK(find(&w, 4, 2) == NULL);
	s = find(&w, 16, 0);
	CHECK(s != NULL);
	if (s) {
		uint16_t array = (uint16_t)le(s->f + 2, 2);
		const struct sm *d = find(&w, 17, 0), *m = find(&w, 19, 0);

		CHECK_EQ_U64(le(s->f + 7, 4), 64 << 10);	/* KiB */
		CHECK_EQ_U64(le(s->f + 0x0d, 2), 1);
		CHECK(d && le(d->f + 4, 2) == array && le(d->f + 0x0c, 2) == 64);
		CHECK(d && strcmp(sstr(d, 0x10), "DIMM 0") == 0);
		CHECK(m && le(m->f + 0x0c, 2) == array);
		CHECK(m && le(m->f + 4, 4) == 0 && le(m->f + 8, 4) == (64 << 10) - 1);
	}
	CHECK(find(&w, 32, 0) != NULL);
	CHECK_EQ_U64(w.s[w.n - 1].f[0], 127);
	gm_destroy(gm);
	cfg_reset();
}

TEST(smbios_overrides_by_keys)
{
	struct cpu_topology topo = { .cpus = 1, .sockets = 1, .cores = 1, .threads = 1 };
	static const uint8_t want[16] = { 0x78, 0x56, 0x34, 0x12, 0xbc, 0x9a, 0xf0, 0xde,
					  0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef };
	struct smbios_info si;
	struct tables_params p = params(&topo, false, false, &si);
	struct guest_mem *gm;
	uint64_t rsdp, rgpa, rlen;
	struct walk w;
	const struct sm *s;
	char err[128] = "";

	cfg_reset();
	CHECK_EQ_U64(cfg_set(NULL, "uuid", "12345678-9abc-def0-0123-456789abcdef"), 0);
	CHECK_EQ_U64(cfg_set(NULL, "bios.vendor", "Acme BIOS"), 0);
	CHECK_EQ_U64(cfg_set(NULL, "bios.version", "rel-7"), 0);
	CHECK_EQ_U64(cfg_set(NULL, "system.manufacturer", "Acme"), 0);
	CHECK_EQ_U64(cfg_set(NULL, "system.product_name", "Rocket %(name)"), 0);
	CHECK_EQ_U64(cfg_set(NULL, "name", "vm7"), 0);
	CHECK_EQ_U64(cfg_set(NULL, "system.serial_number", ""), 0);
	CHECK_EQ_U64(cfg_set(NULL, "board.product_name", "Board X"), 0);
	CHECK_EQ_U64(cfg_set(NULL, "chassis.asset_tag", "tag-9"), 0);
	CHECK_EQ_U64(smbios_info_from_config(cfg_root(), "vm7", &si, err, sizeof err), 0);
	CHECK(memcmp(si.uuid, want, 16) == 0);
	CHECK(gm_create(&gm, 32 << 20) == 0);
	CHECK_EQ_U64(tables_build(gm, &p, &rsdp, &rgpa, &rlen), 0);
	/* No MP table: the entry point takes its place at 0xF0000. */
	CHECK_EQ_U64(scan(gm, &w), 0xf0000);
	s = find(&w, 0, 0);
	CHECK(s && strcmp(sstr(s, 4), "Acme BIOS") == 0 && strcmp(sstr(s, 5), "rel-7") == 0);
	CHECK(s && s->f[0x14] == 0xff && s->f[0x15] == 0xff);	/* no release numbers */
	CHECK(s && (s->f[0x12] & 1) == 0);			/* no ACPI */
	s = find(&w, 1, 0);
	CHECK(s != NULL);
	if (s) {
		CHECK_STR(sstr(s, 4), "Acme");
		CHECK_STR(sstr(s, 5), "Rocket vm7");
		CHECK_STR(sstr(s, 7), "");		/* empty: no string */
		CHECK_STR(sstr(s, 6), "1.0");
		CHECK(memcmp(s->f + 8, want, 16) == 0);
	}
	s = find(&w, 2, 0);
	CHECK(s && strcmp(sstr(s, 5), "Board X") == 0);
	s = find(&w, 3, 0);
	CHECK(s && strcmp(sstr(s, 8), "tag-9") == 0 && strcmp(sstr(s, 7), "None") == 0);

	/* A bad reference is reported, not hidden. */
	CHECK_EQ_U64(cfg_set(NULL, "board.version", "%(nosuch.key)"), 0);
	CHECK_EQ_U64(smbios_info_from_config(cfg_root(), "vm7", &si, err, sizeof err),
		     (uint64_t)-EINVAL);
	CHECK(strstr(err, "board.version") != NULL);
	gm_destroy(gm);
	cfg_reset();
}

TEST(smbios_memory_and_sockets)
{
	struct cpu_topology topo = { .cpus = 5, .sockets = 3, .cores = 2, .threads = 2 };
	struct smbios_info si = { .str = { [SMBIOS_BIOS_VENDOR] = "v" } };
	size_t cap = 0x10000, len;
	uint8_t *buf = calloc(1, cap);
	uint64_t low = 3ULL << 30, high = 6ULL << 40;	/* 3 GiB + 6 TiB */
	struct walk w;
	const struct sm *s;

	CHECK(buf != NULL);
	if (!buf)
		return;
	CHECK_EQ_U64(smbios_build(&si, &topo, low, high, false, 0xf1000, buf, cap, &len), 0);
	CHECK_EQ_U64(sum(buf, 0x1f), 0);
	CHECK_EQ_U64(le(buf + 0x18, 4), 0xf1020);
	walk(buf + 0x20, le(buf + 0x16, 2), &w);
	CHECK(w.ok);
	CHECK_EQ_U64(len, 0x20 + le(buf + 0x16, 2));
	/* Sockets: 4 CPUs, 1 CPU, none. */
	s = find(&w, 4, 0);
	CHECK(s && s->f[0x18] == 0x41 && s->f[0x24] == 2 && s->f[0x25] == 4);
	CHECK(s && (le(s->f + 0x26, 2) & 0x1c) == 0x1c);
	s = find(&w, 4, 1);
	CHECK(s && s->f[0x18] == 0x41 && s->f[0x24] == 1);
	s = find(&w, 4, 2);
	CHECK(s && s->f[0x18] == 0 && s->f[0x24] == 0);
	/* Two ranges: the array's size in extended form, a device and a mapping each. */
	s = find(&w, 16, 0);
	CHECK(s && le(s->f + 7, 4) == 0x80000000u && le(s->f + 0x0f, 8) == low + high);
	CHECK(s && le(s->f + 0x0d, 2) == 2);
	s = find(&w, 17, 0);
	CHECK(s && le(s->f + 0x0c, 2) == 3072);
	s = find(&w, 17, 1);
	CHECK(s && le(s->f + 0x0c, 2) == 0x7fff && le(s->f + 0x1c, 4) == (6ULL << 20));
	CHECK(s && strcmp(sstr(s, 0x10), "DIMM 1") == 0);
	s = find(&w, 19, 0);
	CHECK(s && le(s->f + 4, 4) == 0 && le(s->f + 8, 4) == (3ULL << 20) - 1);
	s = find(&w, 19, 1);
	CHECK(s && le(s->f + 4, 4) == 0xffffffffu && le(s->f + 8, 4) == 0xffffffffu);
	CHECK(s && le(s->f + 0x0f, 8) == 1ULL << 32 && le(s->f + 0x17, 8) == (1ULL << 32) + high - 1);
	/* Strings left NULL name no string. */
	s = find(&w, 1, 0);
	CHECK(s && s->f[4] == 0 && s->f[5] == 0 && s->nstr == 0);
	free(buf);
}

TEST(smbios_errors)
{
	struct cpu_topology topo = { .cpus = 1, .sockets = 1, .cores = 1, .threads = 1 };
	struct cpu_topology many = { .cpus = 2000, .sockets = 2000, .cores = 1, .threads = 1 };
	struct smbios_info si = { .str = { "x" } };
	uint8_t buf[256];
	size_t len = 1;

	CHECK_EQ_U64(smbios_build(&si, &topo, 1 << 20, 0, false, 0xf0000, buf, 16, &len),
		     (uint64_t)-E2BIG);
	CHECK_EQ_U64(len, 0);
	CHECK_EQ_U64(smbios_build(&si, &topo, 1 << 20, 0, false, 0xf0000, buf, sizeof buf, &len),
		     (uint64_t)-E2BIG);
	CHECK_EQ_U64(smbios_build(&si, &topo, 1 << 20, 0, false, 0xf0008, buf, sizeof buf, &len),
		     (uint64_t)-EINVAL);
	CHECK_EQ_U64(smbios_build(&si, NULL, 1 << 20, 0, false, 0xf0000, buf, sizeof buf, &len),
		     (uint64_t)-EINVAL);
	/* khyve's largest VM (1024 vCPUs, one per socket, no MP table) fits in the F segment;
	 * more sockets than that is refused, nothing is truncated. */
	{
		struct cpu_topology most = { .cpus = 1024, .sockets = 1024, .cores = 1,
					     .threads = 1 };
		struct tables_params p = params(&most, false, true, &si);
		struct guest_mem *gm;
		uint64_t rsdp, rgpa, rlen;
		struct walk w;

		CHECK(gm_create(&gm, 16 << 20) == 0);
		CHECK_EQ_U64(tables_build(gm, &p, &rsdp, &rgpa, &rlen), 0);
		CHECK_EQ_U64(scan(gm, &w), 0xf0000);
		p = params(&many, false, false, &si);
		CHECK_EQ_U64(tables_build(gm, &p, &rsdp, &rgpa, &rlen), (uint64_t)-E2BIG);
		gm_destroy(gm);
	}
}
