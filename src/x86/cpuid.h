/*
 * cpuid.h: the CPUID policy. From what the accelerator can run (accel_supported_cpuid), the
 * -c topology and the vCPU index, build the leaves each vCPU sees: consistent vendor,
 * family, feature bits, APIC IDs, leaf 4/0xB/0x8000001E topology, hypervisor leaf 0x40000000
 * ("khyve"). softcpu.md §3.7 gives the software CPU's set.
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

#endif
