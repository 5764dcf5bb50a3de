/*
 * cpuid.c: the CPUID table each vCPU sees (Intel SDM vol. 2A "CPUID"; AMD APM vol. 3
 * appendix E). The named levels of cpu.model live in one table here (softcpu.md §3.7:
 * AuthenticAMD family 15, no XSAVE/AVX). cpuid_build starts from the accelerator's set (a
 * level, or KVM's host set), and rewrites every field that describes the topology (leaf 1
 * EBX/HTT, leaf 4, leaf 0xB, 0x80000008 ECX, 0x8000001E) from -c, so that all leaves agree.
 * Adds the hypervisor bit and leaf 0x40000000 "khyve khyve ". Leaf 0x1F and 0x80000026
 * (newer topology enumerations) are dropped rather than rewritten; nested virtualization is
 * hidden.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "x86/cpuid.h"

#define CPUID_1_ECX_VMX (1u << 5)
#define CPUID_1_ECX_SMX (1u << 6)
#define CPUID_1_ECX_X2APIC (1u << 21)
#define CPUID_1_ECX_HYPERVISOR (1u << 31)
#define CPUID_1_EDX_HTT (1u << 28)
#define CPUID_80000001_ECX_CMP_LEGACY (1u << 1)
#define CPUID_80000001_ECX_SVM (1u << 2)

#define CPUID_LEAF_TOPOLOGY 0xbu
#define CPUID_HV_BASE 0x40000000u

/* Bits needed to number `n` things (0 for 1). */
static unsigned cpuid_width(unsigned n)
{
	unsigned w = 0;

	while ((1u << w) < n)
		w++;
	return w;
}

static bool cpuid_topo_valid(const struct cpu_topology *t)
{
	return t && t->cpus >= 1 && t->sockets >= 1 && t->cores >= 1 && t->threads >= 1 &&
	       t->threads <= 256 && t->cores <= 256 && t->sockets <= 65536 &&
	       (uint64_t)t->sockets * t->cores * t->threads >= (uint64_t)t->cpus;
}

uint32_t cpuid_apic_id(const struct cpu_topology *topo, int index)
{
	unsigned tw = cpuid_width(topo->threads), cw = cpuid_width(topo->cores);
	unsigned thread = index % topo->threads;
	unsigned core = (index / topo->threads) % topo->cores;
	unsigned socket = index / (topo->threads * topo->cores);

	return (uint32_t)socket << (tw + cw) | core << tw | thread;
}

static bool cpuid_is_amd(const struct accel_cpuid_entry *leaf0)
{
	/* "AuthenticAMD" and "HygonGenuine" follow AMD's topology leaves. */
	return leaf0 && ((leaf0->ebx == 0x68747541 && leaf0->edx == 0x69746e65 &&
			  leaf0->ecx == 0x444d4163) ||
			 (leaf0->ebx == 0x6f677948 && leaf0->edx == 0x6e65476e &&
			  leaf0->ecx == 0x656e6975));
}

static int cpuid_push(struct accel_cpuid_entry *out, int n, int max,
		      const struct accel_cpuid_entry *e)
{
	if (n >= max)
		return -ENOSPC;
	out[n] = *e;
	return n + 1;
}

static const struct accel_cpuid_entry *cpuid_find(const struct accel_cpuid_entry *ents, int n,
						  uint32_t function, uint32_t index)
{
	for (int i = 0; i < n; i++)
		if (ents[i].function == function && ents[i].index == index)
			return &ents[i];
	return NULL;
}

int cpuid_build(const struct accel_cpuid_entry *supported, int nsupported,
		const struct cpu_topology *topo, int index, bool x2apic,
		struct accel_cpuid_entry *out, int max)
{
	const struct accel_cpuid_entry *leaf0;
	unsigned tw, cw, per_pkg_log;
	uint32_t apic, core, socket;
	bool amd;
	int n = 0;

	if (!cpuid_topo_valid(topo) || index < 0 || index >= topo->cpus || nsupported < 0)
		return -EINVAL;
	leaf0 = cpuid_find(supported, nsupported, 0, 0);
	if (!leaf0)
		return -EINVAL;
	amd = cpuid_is_amd(leaf0);
	tw = cpuid_width(topo->threads);
	cw = cpuid_width(topo->cores);
	per_pkg_log = 1u << (tw + cw);	/* addressable logical IDs per package */
	apic = cpuid_apic_id(topo, index);
	core = (index / topo->threads) % topo->cores;
	socket = index / (topo->threads * topo->cores);

	for (int i = 0; i < nsupported && n >= 0; i++) {
		struct accel_cpuid_entry e = supported[i];

		if ((e.function & 0xffff0000u) == CPUID_HV_BASE || e.function == 0x1f ||
		    e.function == 0x80000026 || e.function == CPUID_LEAF_TOPOLOGY)
			continue;
		switch (e.function) {
		case 0:
			if (e.eax < CPUID_LEAF_TOPOLOGY)
				e.eax = CPUID_LEAF_TOPOLOGY;
			break;
		case 1:
			e.ebx = (e.ebx & 0x0000ffffu) | (apic & 0xffu) << 24 |
				(per_pkg_log > 255 ? 255u : per_pkg_log) << 16;
			if (topo->cores * topo->threads > 1)
				e.edx |= CPUID_1_EDX_HTT;
			else
				e.edx &= ~CPUID_1_EDX_HTT;
			e.ecx &= ~(CPUID_1_ECX_VMX | CPUID_1_ECX_SMX);
			if (!x2apic)
				e.ecx &= ~CPUID_1_ECX_X2APIC;
			e.ecx |= CPUID_1_ECX_HYPERVISOR;
			break;
		case 4:
			/* Deterministic cache parameters: sharing by level (L1/L2 per core). */
			if ((e.eax & 0x1f) != 0) {
				unsigned level = (e.eax >> 5) & 7;
				uint32_t share = level >= 3 ? per_pkg_log : 1u << tw;

				e.eax &= 0x00003fffu;
				e.eax |= (((1u << cw) - 1) & 0x3f) << 26 | ((share - 1) & 0xfff) << 14;
			} else {
				e.eax = 0;
			}
			break;
		case 0x80000001:
			e.ecx &= ~CPUID_80000001_ECX_SVM;
			if (amd && topo->cores * topo->threads > 1)
				e.ecx |= CPUID_80000001_ECX_CMP_LEGACY;
			else
				e.ecx &= ~CPUID_80000001_ECX_CMP_LEGACY;
			break;
		case 0x80000008:
			e.ecx &= ~0xf0ffu;
			e.ecx |= (uint32_t)(topo->cores * topo->threads - 1) & 0xff;
			e.ecx |= (tw + cw) << 12;
			break;
		case 0x8000001e:
			e.eax = apic;
			e.ebx = (e.ebx & ~0xffffu) | (uint32_t)(topo->threads - 1) << 8 | (core & 0xff);
			e.ecx = (e.ecx & ~0x7ffu) | (socket & 0xff);
			e.edx = 0;
			break;
		}
		n = cpuid_push(out, n, max, &e);
	}
	if (n < 0)
		return n;

	/* Leaf 0xB: SMT level, then core level, then the invalid terminator. */
	for (uint32_t sub = 0; sub < 3 && n >= 0; sub++) {
		struct accel_cpuid_entry e = {
			.function = CPUID_LEAF_TOPOLOGY, .index = sub,
			.flags = ACCEL_CPUID_SIGNIFICANT_INDEX, .edx = apic,
		};

		if (sub == 0) {
			e.eax = tw;
			e.ebx = (uint32_t)topo->threads;
			e.ecx = 1u << 8;
		} else if (sub == 1) {
			e.eax = tw + cw;
			e.ebx = (uint32_t)(topo->threads * topo->cores);
			e.ecx = 2u << 8 | 1;
		} else {
			e.ecx = 2;
		}
		n = cpuid_push(out, n, max, &e);
	}
	if (n >= 0) {
		/* "khyve khyve " in EBX, ECX, EDX, as bhyve's "bhyve bhyve ". */
		struct accel_cpuid_entry hv = { .function = CPUID_HV_BASE, .eax = CPUID_HV_BASE };

		memcpy(&hv.ebx, "khyv", 4);
		memcpy(&hv.ecx, "e kh", 4);
		memcpy(&hv.edx, "yve ", 4);
		n = cpuid_push(out, n, max, &hv);
	}
	return n;
}

/* ---- named levels ---- */

#define F(n) (1u << (n))
/* FPU PSE TSC MSR PAE CX8 APIC PGE CMOV MMX FXSR SSE SSE2: the x86-64 baseline's leaf 1 */
#define CPUID_BASE_1EDX (F(0) | F(3) | F(4) | F(5) | F(6) | F(8) | F(9) | F(13) | F(15) | \
			 F(23) | F(24) | F(25) | F(26))
/* x2APIC and TSC-deadline: the machine's LAPIC, offered by every level */
#define CPUID_APIC_1ECX (F(21) | F(24))
/* Leaf 1 EDX bits AMD repeats in 0x80000001 EDX (APM vol. 3 E.4.2) */
#define CPUID_AMD_MIRROR (0x3ffu | 0x3f000u | F(23) | F(24))
/* SYSCALL, NX, LM */
#define CPUID_BASE_81EDX (F(11) | F(20) | F(29))

struct cpuid_level {
	const char *name;
	const char *brand;	/* 0x80000002-4, at most 47 characters */
	uint32_t ecx1, edx1, ecx81, edx81;
};

static const struct cpuid_level cpuid_levels[] = {
	/* What the software CPU implements: SSE3, SSSE3, CMPXCHG16B on top of x86-64. */
	{ "khyve-v1", "khyve virtual CPU (khyve-v1)",
	  F(0) | F(9) | F(13) | CPUID_APIC_1ECX, CPUID_BASE_1EDX, 0,
	  (CPUID_BASE_1EDX & CPUID_AMD_MIRROR) | CPUID_BASE_81EDX },
	/* The plain x86-64 baseline: SSE2 and nothing newer. */
	{ "x86-64", "khyve virtual CPU (x86-64)",
	  CPUID_APIC_1ECX, CPUID_BASE_1EDX, 0,
	  (CPUID_BASE_1EDX & CPUID_AMD_MIRROR) | CPUID_BASE_81EDX },
};

/* Family 15, model 6, stepping 1 (the extended family/model fields stay 0). */
#define CPUID_LEVEL_SIGNATURE 0x00000f61u

const struct cpuid_level *cpuid_level_find(const char *name)
{
	for (size_t i = 0; name && i < sizeof cpuid_levels / sizeof cpuid_levels[0]; i++)
		if (strcmp(cpuid_levels[i].name, name) == 0)
			return &cpuid_levels[i];
	return NULL;
}

const struct cpuid_level *cpuid_level_at(int n)
{
	if (n < 0 || (size_t)n >= sizeof cpuid_levels / sizeof cpuid_levels[0])
		return NULL;
	return &cpuid_levels[n];
}

const char *cpuid_level_name(const struct cpuid_level *level)
{
	return level->name;
}

static uint32_t cpuid_str4(const char *s)
{
	uint32_t v;

	memcpy(&v, s, 4);
	return v;
}

int cpuid_level_named(const char *model, struct accel_cpuid_entry *out, int max, char *err,
		      size_t errlen)
{
	const struct cpuid_level *level = cpuid_level_find(model);
	int n;

	if (!level) {
		snprintf(err, errlen, "unknown cpu.model '%s' (%s)", model, CPUID_MODEL_NAMES);
		return -EINVAL;
	}
	n = cpuid_level_leaves(level, out, max);
	if (n < 0)
		snprintf(err, errlen, "cpu.model=%s: %s", model, strerror(-n));
	return n;
}

int cpuid_level_leaves(const struct cpuid_level *l, struct accel_cpuid_entry *out, int max)
{
	char brand[48] = { 0 };
	uint32_t vb = cpuid_str4("Auth"), vd = cpuid_str4("enti"), vc = cpuid_str4("cAMD");
	struct accel_cpuid_entry e[] = {
		{ .function = 0, .eax = CPUID_LEAF_TOPOLOGY, .ebx = vb, .ecx = vc, .edx = vd },
		/* EBX: CLFLUSH line size 8 qwords; APIC ID and count come from cpuid_build */
		{ .function = 1, .eax = CPUID_LEVEL_SIGNATURE, .ebx = 8u << 8, .ecx = l->ecx1,
		  .edx = l->edx1 },
		{ .function = 7, .flags = ACCEL_CPUID_SIGNIFICANT_INDEX },
		{ .function = 0x80000000, .eax = 0x80000008, .ebx = vb, .ecx = vc, .edx = vd },
		{ .function = 0x80000001, .eax = CPUID_LEVEL_SIGNATURE, .ecx = l->ecx81,
		  .edx = l->edx81 },
		{ .function = 0x80000002 }, { .function = 0x80000003 }, { .function = 0x80000004 },
		{ .function = 0x80000005 }, { .function = 0x80000006 },
		{ .function = 0x80000007, .edx = F(8) },	/* invariant TSC */
		{ .function = 0x80000008, .eax = 0x3028 },	/* 40-bit physical, 48-bit linear */
	};
	int n = (int)(sizeof e / sizeof e[0]);

	strncpy(brand, l->brand, sizeof brand - 1);
	for (int i = 0; i < 3; i++)
		memcpy(&e[5 + i].eax, brand + 16 * i, 16);
	if (n > max)
		return -ENOSPC;
	memcpy(out, e, sizeof e);
	return n;
}

/* Feature words a level fills, and the names of the bits the levels use. */
static const struct {
	uint32_t function;
	uint8_t reg;	/* 0 EAX ... 3 EDX */
} cpuid_feature_words[] = {
	{ 1, 2 }, { 1, 3 }, { 7, 1 }, { 7, 2 }, { 7, 3 },
	{ 0x80000001, 2 }, { 0x80000001, 3 }, { 0x80000007, 3 },
};

static const struct {
	uint32_t function;
	uint8_t reg, bit;
	const char *name;
} cpuid_bit_names[] = {
	{ 1, 2, 0, "sse3" }, { 1, 2, 9, "ssse3" }, { 1, 2, 13, "cx16" }, { 1, 2, 21, "x2apic" },
	{ 1, 2, 24, "tsc-deadline" }, { 1, 2, 31, "hypervisor" },
	{ 1, 3, 0, "fpu" }, { 1, 3, 3, "pse" }, { 1, 3, 4, "tsc" }, { 1, 3, 5, "msr" },
	{ 1, 3, 6, "pae" }, { 1, 3, 8, "cx8" }, { 1, 3, 9, "apic" }, { 1, 3, 13, "pge" },
	{ 1, 3, 15, "cmov" }, { 1, 3, 23, "mmx" }, { 1, 3, 24, "fxsr" }, { 1, 3, 25, "sse" },
	{ 1, 3, 26, "sse2" }, { 0x80000001, 3, 11, "syscall" }, { 0x80000001, 3, 20, "nx" },
	{ 0x80000001, 3, 29, "lm" }, { 0x80000007, 3, 8, "invtsc" },
};

static uint32_t *cpuid_reg(struct accel_cpuid_entry *e, unsigned reg)
{
	return reg == 0 ? &e->eax : reg == 1 ? &e->ebx : reg == 2 ? &e->ecx : &e->edx;
}

static uint32_t cpuid_reg_val(const struct accel_cpuid_entry *e, unsigned reg)
{
	return reg == 0 ? e->eax : reg == 1 ? e->ebx : reg == 2 ? e->ecx : e->edx;
}

static void cpuid_name_bit(uint32_t function, unsigned reg, unsigned bit, char *buf,
			   size_t len, size_t *at)
{
	static const char regs[] = "abcd";
	const char *name = NULL;
	int w;

	for (size_t i = 0; i < sizeof cpuid_bit_names / sizeof cpuid_bit_names[0]; i++)
		if (cpuid_bit_names[i].function == function && cpuid_bit_names[i].reg == reg &&
		    cpuid_bit_names[i].bit == bit)
			name = cpuid_bit_names[i].name;
	if (*at >= len)
		return;
	if (name)
		w = snprintf(buf + *at, len - *at, "%s%s", *at ? ", " : "", name);
	else
		w = snprintf(buf + *at, len - *at, "%s0x%x.e%cx[%u]", *at ? ", " : "", function,
			     regs[reg], bit);
	*at = w < 0 ? len : *at + (size_t)w;
}

int cpuid_level_restrict(struct accel_cpuid_entry *ents, int n,
			 const struct accel_cpuid_entry *supported, int nsupported,
			 uint32_t keep_1ecx, char *dropped, size_t len)
{
	const struct accel_cpuid_entry *s8;
	size_t at = 0;
	int cleared = 0;

	if (len)
		dropped[0] = '\0';
	for (int i = 0; i < n; i++) {
		struct accel_cpuid_entry *e = &ents[i];

		for (size_t w = 0; w < sizeof cpuid_feature_words / sizeof cpuid_feature_words[0];
		     w++) {
			const struct accel_cpuid_entry *s;
			unsigned reg = cpuid_feature_words[w].reg;
			uint32_t have, *v, lost;

			if (cpuid_feature_words[w].function != e->function)
				continue;
			s = cpuid_find(supported, nsupported, e->function, e->index);
			have = s ? cpuid_reg_val(s, reg) : 0;
			if (e->function == 1 && reg == 2)
				have |= keep_1ecx | CPUID_1_ECX_HYPERVISOR;
			v = cpuid_reg(e, reg);
			lost = *v & ~have;
			*v &= have;
			for (unsigned b = 0; b < 32; b++) {
				if (!(lost & F(b)))
					continue;
				cleared++;
				cpuid_name_bit(e->function, reg, b, dropped, len, &at);
			}
		}
		/* No more physical address bits than the host has. */
		s8 = cpuid_find(supported, nsupported, 0x80000008, 0);
		if (e->function == 0x80000008 && s8 && (s8->eax & 0xff) &&
		    (s8->eax & 0xff) < (e->eax & 0xff))
			e->eax = (e->eax & ~0xffu) | (s8->eax & 0xff);
	}
	return cleared;
}
