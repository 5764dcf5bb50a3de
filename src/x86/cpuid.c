/*
 * cpuid.c: the CPUID table each vCPU sees (Intel SDM vol. 2A "CPUID"; AMD APM vol. 3
 * appendix E). Starts from what the accelerator can run, keeps its vendor and feature
 * bits, and rewrites every field that describes the topology (leaf 1 EBX/HTT, leaf 4,
 * leaf 0xB, 0x80000008 ECX, 0x8000001E) from -c, so that all leaves agree. Adds the
 * hypervisor bit and leaf 0x40000000 "khyve khyve ". Leaf 0x1F and 0x80000026 (newer
 * topology enumerations) are dropped rather than rewritten; nested virtualization is hidden.
 */
#include <errno.h>
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
