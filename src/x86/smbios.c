/*
 * smbios.c: SMBIOS 2.8 tables (DMTF DSP0134 3.x numbering; 2.8 structure lengths). The 32-bit
 * entry point (5.2.1) is followed by BIOS (7.1), System (7.2), Baseboard (7.3), Chassis
 * (7.4), one Processor per socket (7.5), Physical Memory Array (7.17), a Memory Device
 * (7.18) and a Mapped Address (7.20) per RAM range, System Boot (7.33) and End of Table
 * (7.45). No caches, slots, ports or OEM strings; processor IDs and speeds read 0 (unknown).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "x86/cpuid.h"
#include "x86/smbios.h"

#define SMBIOS_EP_LEN 0x1f
#define SMBIOS_EP_SPAN 0x20		/* the structure table starts 16-byte aligned after it */
#define SMBIOS_HOSTNAME_BUF 256		/* FreeBSD's MAXHOSTNAMELEN, which bhyve hashes whole */
#define SMBIOS_MAX_STRINGS 8

const char *const smbios_keys[SMBIOS_NSTRINGS] = {
	[SMBIOS_BIOS_VENDOR] = "bios.vendor",
	[SMBIOS_BIOS_VERSION] = "bios.version",
	[SMBIOS_BIOS_RELEASE_DATE] = "bios.release_date",
	[SMBIOS_SYSTEM_FAMILY_NAME] = "system.family_name",
	[SMBIOS_SYSTEM_MANUFACTURER] = "system.manufacturer",
	[SMBIOS_SYSTEM_PRODUCT_NAME] = "system.product_name",
	[SMBIOS_SYSTEM_SERIAL_NUMBER] = "system.serial_number",
	[SMBIOS_SYSTEM_SKU] = "system.sku",
	[SMBIOS_SYSTEM_VERSION] = "system.version",
	[SMBIOS_BOARD_MANUFACTURER] = "board.manufacturer",
	[SMBIOS_BOARD_PRODUCT_NAME] = "board.product_name",
	[SMBIOS_BOARD_VERSION] = "board.version",
	[SMBIOS_BOARD_SERIAL_NUMBER] = "board.serial_number",
	[SMBIOS_BOARD_ASSET_TAG] = "board.asset_tag",
	[SMBIOS_BOARD_LOCATION] = "board.location",
	[SMBIOS_CHASSIS_MANUFACTURER] = "chassis.manufacturer",
	[SMBIOS_CHASSIS_VERSION] = "chassis.version",
	[SMBIOS_CHASSIS_SERIAL_NUMBER] = "chassis.serial_number",
	[SMBIOS_CHASSIS_ASSET_TAG] = "chassis.asset_tag",
	[SMBIOS_CHASSIS_SKU] = "chassis.sku",
};

/* ---- MD5 (RFC 1321) ---- */

static const uint32_t md5_k[64] = {
	0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee,
	0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
	0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be,
	0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
	0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa,
	0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
	0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
	0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
	0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c,
	0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
	0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05,
	0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
	0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039,
	0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
	0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1,
	0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

static const uint8_t md5_shift[4][4] = {
	{ 7, 12, 17, 22 }, { 5, 9, 14, 20 }, { 4, 11, 16, 23 }, { 6, 10, 15, 21 },
};

static void md5_block(uint32_t h[4], const uint8_t *blk)
{
	uint32_t m[16], a = h[0], b = h[1], c = h[2], d = h[3];

	for (int i = 0; i < 16; i++)
		m[i] = (uint32_t)blk[4 * i] | (uint32_t)blk[4 * i + 1] << 8 |
		       (uint32_t)blk[4 * i + 2] << 16 | (uint32_t)blk[4 * i + 3] << 24;
	for (int i = 0; i < 64; i++) {
		uint32_t f, tmp;
		int g, r = i / 16, s = md5_shift[r][i % 4];

		switch (r) {
		case 0:
			f = (b & c) | (~b & d);
			g = i;
			break;
		case 1:
			f = (d & b) | (~d & c);
			g = (5 * i + 1) % 16;
			break;
		case 2:
			f = b ^ c ^ d;
			g = (3 * i + 5) % 16;
			break;
		default:
			f = c ^ (b | ~d);
			g = (7 * i) % 16;
			break;
		}
		tmp = a + f + md5_k[i] + m[g];
		a = d;
		d = c;
		c = b;
		b += tmp << s | tmp >> (32 - s);
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
}

struct md5 {
	uint32_t h[4];
	uint8_t buf[64];
	uint64_t len;
};

static void md5_init(struct md5 *m)
{
	*m = (struct md5){ .h = { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476 } };
}

static void md5_update(struct md5 *m, const void *data, size_t n)
{
	const uint8_t *p = data;

	while (n) {
		size_t have = m->len % 64, take = 64 - have < n ? 64 - have : n;

		memcpy(m->buf + have, p, take);
		m->len += take;
		p += take;
		n -= take;
		if (m->len % 64 == 0)
			md5_block(m->h, m->buf);
	}
}

static void md5_final(struct md5 *m, uint8_t digest[16])
{
	uint64_t bits = m->len * 8;
	uint8_t pad[72] = { 0x80 }, lenb[8];

	md5_update(m, pad, (m->len % 64 < 56 ? 56 : 120) - m->len % 64);
	for (int i = 0; i < 8; i++)
		lenb[i] = (uint8_t)(bits >> (8 * i));
	md5_update(m, lenb, 8);
	for (int i = 0; i < 16; i++)
		digest[i] = (uint8_t)(m->h[i / 4] >> (8 * (i % 4)));
}

void smbios_md5(const void *data, size_t len, uint8_t digest[16])
{
	struct md5 m;

	md5_init(&m);
	md5_update(&m, data, len);
	md5_final(&m, digest);
}

/* ---- UUID ---- */

int smbios_uuid_parse(const char *s, uint8_t out[16])
{
	/* Byte i of the text lands at field index order[i] (DSP0134 7.2.1). */
	static const uint8_t order[16] = { 3, 2, 1, 0, 5, 4, 7, 6,
					   8, 9, 10, 11, 12, 13, 14, 15 };
	int n = 0;

	if (!s || strlen(s) != 36)
		return -EINVAL;
	for (int i = 0; i < 36; i++) {
		char ch = s[i];
		int d;

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (ch != '-')
				return -EINVAL;
			continue;
		}
		if (ch >= '0' && ch <= '9')
			d = ch - '0';
		else if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f')
			d = (ch | 0x20) - 'a' + 10;
		else
			return -EINVAL;
		if (n % 2 == 0)
			out[order[n / 2]] = (uint8_t)(d << 4);
		else
			out[order[n / 2]] |= (uint8_t)d;
		n++;
	}
	return 0;
}

void smbios_uuid_derive(const char *vm_name, const char *host_name, uint8_t out[16])
{
	char host[SMBIOS_HOSTNAME_BUF] = "";
	struct md5 m;

	strncpy(host, host_name, sizeof host - 1);
	md5_init(&m);
	md5_update(&m, vm_name, strlen(vm_name));
	md5_update(&m, host, sizeof host);
	md5_final(&m, out);
	out[6] = (uint8_t)((out[6] & 0x0f) | 0x30);	/* version 3 (name-based, MD5) */
	out[8] = (uint8_t)((out[8] & 0x3f) | 0x80);	/* RFC 4122 variant */
}

int smbios_info_from_config(struct cfg_node *root, const char *vm_name, struct smbios_info *out,
			    char *err, size_t errlen)
{
	const char *uuid;
	int ret;

	for (int i = 0; i < SMBIOS_NSTRINGS; i++) {
		const char *v;

		ret = cfg_get_checked(root, smbios_keys[i], &v, err, errlen);
		if (ret)
			return ret;
		if (!v) {
			const struct cfg_schema_key *k = config_schema_find(smbios_keys[i]);

			v = k ? k->def : NULL;
		}
		out->str[i] = v;
	}
	ret = cfg_get_checked(root, "uuid", &uuid, err, errlen);
	if (ret)
		return ret;
	if (uuid) {
		if (smbios_uuid_parse(uuid, out->uuid)) {
			snprintf(err, errlen, "bad UUID '%s' (uuid)", uuid);
			return -EINVAL;
		}
	} else {
		char host[SMBIOS_HOSTNAME_BUF] = "";

		if (gethostname(host, sizeof host - 1))
			host[0] = '\0';
		smbios_uuid_derive(vm_name ? vm_name : "", host, out->uuid);
	}
	return 0;
}

/* ---- structure table ---- */

struct sm_buf {
	uint8_t *b;
	size_t len, cap;
	int err;
	unsigned count, maxsize;
};

struct sm_strs {
	const char *s[SMBIOS_MAX_STRINGS];
	int n;
};

/* String number of v in the structure being built; 0 (none) for NULL or "". */
static uint8_t sm_str(struct sm_strs *ss, const char *v)
{
	if (!v || !*v || ss->n == SMBIOS_MAX_STRINGS)
		return 0;
	ss->s[ss->n++] = v;
	return (uint8_t)ss->n;
}

static void sm_put(struct sm_buf *t, const void *p, size_t n)
{
	if (t->err)
		return;
	if (n > t->cap - t->len) {
		t->err = -E2BIG;
		return;
	}
	memcpy(t->b + t->len, p, n);
	t->len += n;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Append one structure: formatted area f (type and length already in f[0], f[1]; the
 * handle is its index) and its string-set. */
static void sm_struct(struct sm_buf *t, uint8_t *f, const struct sm_strs *ss)
{
	size_t start = t->len;

	put_le(f + 2, t->count, 2);
	sm_put(t, f, f[1]);
	for (int i = 0; i < ss->n; i++)
		sm_put(t, ss->s[i], strlen(ss->s[i]) + 1);
	sm_put(t, "\0", ss->n ? 1 : 2);
	if (t->err)
		return;
	t->count++;
	if (t->len - start > t->maxsize)
		t->maxsize = (unsigned)(t->len - start);
}

/* "14.0" -> 14 and 0; 0xff each (unsupported) unless the text starts with two small numbers. */
static void bios_release(const char *v, uint8_t *major, uint8_t *minor)
{
	unsigned a, b;

	*major = *minor = 0xff;
	if (v && sscanf(v, "%u.%u", &a, &b) == 2 && a < 0xff && b < 0xff) {
		*major = (uint8_t)a;
		*minor = (uint8_t)b;
	}
}

static void build_type0(struct sm_buf *t, const struct smbios_info *si, bool acpi)
{
	uint8_t f[0x18] = { 0, sizeof f };
	struct sm_strs ss = { .n = 0 };

	f[0x04] = sm_str(&ss, si->str[SMBIOS_BIOS_VENDOR]);
	f[0x05] = sm_str(&ss, si->str[SMBIOS_BIOS_VERSION]);
	put_le(f + 0x06, 0xf000, 2);		/* starting address segment */
	f[0x08] = sm_str(&ss, si->str[SMBIOS_BIOS_RELEASE_DATE]);
	f[0x09] = 0;				/* ROM size: 64 KiB */
	put_le(f + 0x0a, 1u << 7, 8);		/* characteristics: PCI */
	f[0x12] = acpi ? 0x01 : 0;		/* extension 1: ACPI */
	f[0x13] = 1u << 4;			/* extension 2: a virtual machine */
	bios_release(si->str[SMBIOS_BIOS_VERSION], &f[0x14], &f[0x15]);
	f[0x16] = 0xff;				/* no embedded controller firmware */
	f[0x17] = 0xff;
	sm_struct(t, f, &ss);
}

static void build_type1(struct sm_buf *t, const struct smbios_info *si)
{
	uint8_t f[0x1b] = { 1, sizeof f };
	struct sm_strs ss = { .n = 0 };

	f[0x04] = sm_str(&ss, si->str[SMBIOS_SYSTEM_MANUFACTURER]);
	f[0x05] = sm_str(&ss, si->str[SMBIOS_SYSTEM_PRODUCT_NAME]);
	f[0x06] = sm_str(&ss, si->str[SMBIOS_SYSTEM_VERSION]);
	f[0x07] = sm_str(&ss, si->str[SMBIOS_SYSTEM_SERIAL_NUMBER]);
	memcpy(f + 0x08, si->uuid, 16);
	f[0x18] = 0x06;				/* wake-up type: power switch */
	f[0x19] = sm_str(&ss, si->str[SMBIOS_SYSTEM_SKU]);
	f[0x1a] = sm_str(&ss, si->str[SMBIOS_SYSTEM_FAMILY_NAME]);
	sm_struct(t, f, &ss);
}

static void build_type2(struct sm_buf *t, const struct smbios_info *si, uint16_t chassis)
{
	uint8_t f[0x0f] = { 2, sizeof f };
	struct sm_strs ss = { .n = 0 };

	f[0x04] = sm_str(&ss, si->str[SMBIOS_BOARD_MANUFACTURER]);
	f[0x05] = sm_str(&ss, si->str[SMBIOS_BOARD_PRODUCT_NAME]);
	f[0x06] = sm_str(&ss, si->str[SMBIOS_BOARD_VERSION]);
	f[0x07] = sm_str(&ss, si->str[SMBIOS_BOARD_SERIAL_NUMBER]);
	f[0x08] = sm_str(&ss, si->str[SMBIOS_BOARD_ASSET_TAG]);
	f[0x09] = 0x01;				/* hosting board */
	f[0x0a] = sm_str(&ss, si->str[SMBIOS_BOARD_LOCATION]);
	put_le(f + 0x0b, chassis, 2);
	f[0x0d] = 0x0a;				/* motherboard */
	f[0x0e] = 0;				/* no contained objects */
	sm_struct(t, f, &ss);
}

static void build_type3(struct sm_buf *t, const struct smbios_info *si)
{
	uint8_t f[0x16] = { 3, sizeof f };
	struct sm_strs ss = { .n = 0 };

	f[0x04] = sm_str(&ss, si->str[SMBIOS_CHASSIS_MANUFACTURER]);
	f[0x05] = 0x01;				/* type: other */
	f[0x06] = sm_str(&ss, si->str[SMBIOS_CHASSIS_VERSION]);
	f[0x07] = sm_str(&ss, si->str[SMBIOS_CHASSIS_SERIAL_NUMBER]);
	f[0x08] = sm_str(&ss, si->str[SMBIOS_CHASSIS_ASSET_TAG]);
	f[0x09] = 0x03;				/* boot-up, power supply, thermal: safe */
	f[0x0a] = 0x03;
	f[0x0b] = 0x03;
	f[0x0c] = 0x03;				/* security: none */
	f[0x13] = 0;				/* no contained elements */
	f[0x14] = 0;
	f[0x15] = sm_str(&ss, si->str[SMBIOS_CHASSIS_SKU]);
	sm_struct(t, f, &ss);
}

static void build_type4(struct sm_buf *t, const struct cpu_topology *topo, int socket)
{
	uint8_t f[0x2a] = { 4, sizeof f };
	struct sm_strs ss = { .n = 0 };
	int per = topo->cores * topo->threads, on = topo->cpus - socket * per;
	int cores_on;
	char name[24];

	on = on < 0 ? 0 : on > per ? per : on;
	cores_on = (on + topo->threads - 1) / topo->threads;
	snprintf(name, sizeof name, "CPU #%d", socket);
	f[0x04] = sm_str(&ss, name);
	f[0x05] = 0x03;				/* central processor */
	f[0x06] = 0x01;				/* family: other */
	f[0x18] = on ? 0x41 : 0x00;		/* populated and enabled, or empty */
	f[0x19] = 0x01;				/* upgrade: other */
	put_le(f + 0x1a, 0xffff, 2);		/* no L1/L2/L3 cache structures */
	put_le(f + 0x1c, 0xffff, 2);
	put_le(f + 0x1e, 0xffff, 2);
	f[0x23] = (uint8_t)(topo->cores > 0xff ? 0xff : topo->cores);
	f[0x24] = (uint8_t)(cores_on > 0xff ? 0xff : cores_on);
	f[0x25] = (uint8_t)(per > 0xff ? 0xff : per);
	/* 64-bit capable; multi-core and hardware thread as the topology says. */
	put_le(f + 0x26, 1u << 2 | (topo->cores > 1 ? 1u << 3 : 0) |
		     (topo->threads > 1 ? 1u << 4 : 0), 2);
	put_le(f + 0x28, 0x0001, 2);		/* family 2: other */
	sm_struct(t, f, &ss);
}

static void build_type16(struct sm_buf *t, uint64_t total, int ndevs)
{
	uint8_t f[0x17] = { 16, sizeof f };
	struct sm_strs ss = { .n = 0 };
	uint64_t kib = total >> 10;

	f[0x04] = 0x03;				/* location: system board */
	f[0x05] = 0x03;				/* use: system memory */
	f[0x06] = 0x03;				/* error correction: none */
	if (kib < 0x80000000ULL) {
		put_le(f + 0x07, kib, 4);
	} else {
		put_le(f + 0x07, 0x80000000u, 4);
		put_le(f + 0x0f, total, 8);	/* extended maximum capacity, bytes */
	}
	put_le(f + 0x0b, 0xfffe, 2);		/* no error information */
	put_le(f + 0x0d, (uint64_t)ndevs, 2);
	sm_struct(t, f, &ss);
}

static void build_type17(struct sm_buf *t, uint16_t array, uint64_t size, int index)
{
	uint8_t f[0x28] = { 17, sizeof f };
	struct sm_strs ss = { .n = 0 };
	uint64_t mib = size >> 20, kib = size >> 10;
	char loc[24];

	snprintf(loc, sizeof loc, "DIMM %d", index);
	put_le(f + 0x04, array, 2);
	put_le(f + 0x06, 0xfffe, 2);		/* no error information */
	put_le(f + 0x08, 64, 2);		/* total and data width */
	put_le(f + 0x0a, 64, 2);
	if (size % (1u << 20) && kib < 0x8000) {
		put_le(f + 0x0c, 0x8000 | kib, 2);	/* KiB granularity */
	} else if (mib < 0x7fff) {
		put_le(f + 0x0c, mib, 2);
	} else {
		put_le(f + 0x0c, 0x7fff, 2);
		put_le(f + 0x1c, mib > 0x7fffffff ? 0x7fffffff : mib, 4);	/* extended, MiB */
	}
	f[0x0e] = 0x09;				/* form factor: DIMM */
	f[0x10] = sm_str(&ss, loc);
	f[0x12] = 0x07;				/* type: RAM */
	put_le(f + 0x13, 1u << 1, 2);		/* type detail: other */
	sm_struct(t, f, &ss);
}

static void build_type19(struct sm_buf *t, uint16_t array, uint64_t start, uint64_t size)
{
	uint8_t f[0x1f] = { 19, sizeof f };
	struct sm_strs ss = { .n = 0 };
	uint64_t first = start >> 10, last = ((start + size) >> 10) - 1;

	if (last < 0xffffffffULL) {
		put_le(f + 0x04, first, 4);
		put_le(f + 0x08, last, 4);
	} else {
		put_le(f + 0x04, 0xffffffffu, 4);
		put_le(f + 0x08, 0xffffffffu, 4);
		put_le(f + 0x0f, start, 8);		/* extended, bytes */
		put_le(f + 0x17, start + size - 1, 8);
	}
	put_le(f + 0x0c, array, 2);
	f[0x0e] = 1;				/* partition width */
	sm_struct(t, f, &ss);
}

int smbios_build(const struct smbios_info *si, const struct cpu_topology *topo, uint64_t lowmem,
		 uint64_t highmem, bool acpi, uint32_t gpa, uint8_t *buf, size_t cap, size_t *len)
{
	struct sm_buf t = { .b = buf, .cap = cap };
	struct sm_strs none = { .n = 0 };
	uint8_t f32[0x0b] = { 32, sizeof f32 };	/* boot status 0: no errors */
	uint8_t f127[4] = { 127, sizeof f127 };
	uint64_t ranges[2][2] = { { 0, lowmem }, { 1ULL << 32, highmem } };
	int nranges = highmem ? 2 : 1;
	uint16_t array;
	uint8_t *ep = buf;
	uint8_t s;

	*len = 0;
	if (!topo || topo->sockets < 1 || topo->cores < 1 || topo->threads < 1 || lowmem < 1024 ||
	    gpa % 16)
		return -EINVAL;
	if (cap < SMBIOS_EP_SPAN)
		return -E2BIG;
	memset(buf, 0, SMBIOS_EP_SPAN);
	t.len = SMBIOS_EP_SPAN;

	build_type0(&t, si, acpi);
	build_type1(&t, si);
	build_type2(&t, si, 3);		/* the chassis comes next, handle 3 */
	build_type3(&t, si);
	for (int i = 0; i < topo->sockets && !t.err; i++)
		build_type4(&t, topo, i);
	array = (uint16_t)t.count;
	build_type16(&t, lowmem + highmem, nranges);
	for (int i = 0; i < nranges; i++)
		build_type17(&t, array, ranges[i][1], i);
	for (int i = 0; i < nranges; i++)
		build_type19(&t, array, ranges[i][0], ranges[i][1]);
	sm_struct(&t, f32, &none);
	sm_struct(&t, f127, &none);
	if (t.err)
		return t.err;
	if (t.len - SMBIOS_EP_SPAN > 0xffff || t.count > 0xffff)
		return -E2BIG;

	memcpy(ep, "_SM_", 4);
	ep[0x05] = SMBIOS_EP_LEN;
	ep[0x06] = 2;				/* version 2.8 */
	ep[0x07] = 8;
	put_le(ep + 0x08, t.maxsize, 2);
	ep[0x0a] = 0;				/* entry point revision */
	memcpy(ep + 0x10, "_DMI_", 5);
	put_le(ep + 0x16, t.len - SMBIOS_EP_SPAN, 2);
	put_le(ep + 0x18, (uint64_t)gpa + SMBIOS_EP_SPAN, 4);
	put_le(ep + 0x1c, t.count, 2);
	ep[0x1e] = 0x28;			/* BCD revision */
	s = 0;
	for (int i = 0x10; i < SMBIOS_EP_LEN; i++)
		s += ep[i];
	ep[0x15] = (uint8_t)-s;
	s = 0;
	for (int i = 0; i < SMBIOS_EP_LEN; i++)
		s += ep[i];
	ep[0x04] = (uint8_t)-s;
	*len = t.len;
	return 0;
}
