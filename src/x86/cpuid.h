/*
 * cpuid.h: the CPUID policy. Named levels (cpu.model): each is one fixed set of leaves
 * (vendor, family, feature bits, extended leaves) that the accelerator offers instead of
 * its own; "host" is KVM's KVM_GET_SUPPORTED_CPUID. From that set, the -c topology and the
 * vCPU index, cpuid_build makes the leaves each vCPU sees: consistent APIC IDs, leaf
 * 4/0xB/0x8000001E topology, hypervisor leaf 0x40000000 ("khyve"). softcpu.md §3.7.
 */
#ifndef KHYVE_CPUID_H
#define KHYVE_CPUID_H

#include "accel/accel.h"

struct cpu_topology {
	int cpus, sockets, cores, threads;
};

/* Build the table for vCPU `index`. Returns the entry count or -errno. */
int cpuid_build(const struct accel_cpuid_entry *supported, int nsupported,
		const struct cpu_topology *topo, int index, bool x2apic,
		struct accel_cpuid_entry *out, int max);
/* APIC ID of vCPU `index` under the topology (socket/core/thread packing). */
uint32_t cpuid_apic_id(const struct cpu_topology *topo, int index);

/*
 * Named levels. "host" is not a level: the KVM accelerator answers it with the host's set.
 * CPUID_MODEL_NAMES is what cpu.model accepts (config/schema.c spells the same list).
 * CPUID_LEVEL_SOFT is the level the software CPU implements completely: its default, and
 * the default of a KVM without hardware virtualization (whose refused instructions the
 * software CPU finishes).
 */
#define CPUID_MODEL_HOST "host"
#define CPUID_LEVEL_SOFT "khyve-v1"
#define CPUID_MODEL_NAMES "host|khyve-v1|x86-64"

struct cpuid_level;

/* The level called `name`, or NULL (unknown, or "host"). */
const struct cpuid_level *cpuid_level_find(const char *name);
/* The n-th level (0, 1, ...), or NULL past the last. */
const struct cpuid_level *cpuid_level_at(int n);
const char *cpuid_level_name(const struct cpuid_level *level);
/* Fill `out` with the level's leaves (the same for every vCPU; cpuid_build adds topology
 * and the hypervisor leaf). Returns the entry count or -ENOSPC. */
int cpuid_level_leaves(const struct cpuid_level *level, struct accel_cpuid_entry *out, int max);
/* cpuid_level_leaves() of the level called `model`: the entry count, or -EINVAL (unknown
 * name, "host" included) / -ENOSPC with a message for cpu.model in err. */
int cpuid_level_named(const char *model, struct accel_cpuid_entry *out, int max, char *err,
		      size_t errlen);
/*
 * Clear the feature bits of leaves 1 and 0x80000001 (ECX, EDX) of `ents` that `supported`
 * (KVM_GET_SUPPORTED_CPUID) lacks, except those in keep_1ecx (bits KVM offers through a
 * capability instead, e.g. TSC-deadline). Writes the cleared bits' names, comma-separated,
 * to `dropped` ("" when none). Returns the number of bits cleared.
 */
int cpuid_level_restrict(struct accel_cpuid_entry *ents, int n,
			 const struct accel_cpuid_entry *supported, int nsupported,
			 uint32_t keep_1ecx, char *dropped, size_t len);

#endif
