/* test_cpuid.c: the CPUID policy: topology leaves agree with each other and with -c. */
#include <errno.h>

#include "unit.h"
#include "x86/cpuid.h"

/* A software-CPU-like set: AuthenticAMD family 15, x2APIC available, TOPOEXT leaves. */
static const struct accel_cpuid_entry amd_set[] = {
	{ .function = 0, .eax = 0xd, .ebx = 0x68747541, .edx = 0x69746e65, .ecx = 0x444d4163 },
	{ .function = 1, .eax = 0x00000f00, .ebx = 0x00000800, .ecx = (1u << 21) | (1u << 5),
	  .edx = 0x078bfbff },
	{ .function = 0x80000000, .eax = 0x8000001e },
	{ .function = 0x80000001, .ecx = (1u << 2) | (1u << 22), .edx = 0x20100800 },
	{ .function = 0x80000008, .eax = 0x3028, .ecx = 0x0000f0ff },
	{ .function = 0x8000001e, .eax = 7, .ebx = 0x0000ffff, .ecx = 0xffff },
};

/* A KVM-on-Intel-like set: leaf 4 caches, its own 0xB and 0x1F, KVM's signature leaves. */
static const struct accel_cpuid_entry intel_set[] = {
	{ .function = 0, .eax = 0x1f, .ebx = 0x756e6547, .edx = 0x49656e69, .ecx = 0x6c65746e },
	{ .function = 1, .eax = 0x000506f0, .ebx = 0x00010800, .ecx = 1u << 21, .edx = 0x078bfbff },
	{ .function = 4, .index = 0, .flags = 1, .eax = 0x1c004121 },
	{ .function = 4, .index = 1, .flags = 1, .eax = 0x1c004122 },
	{ .function = 4, .index = 2, .flags = 1, .eax = 0x1c004143 },
	{ .function = 4, .index = 3, .flags = 1, .eax = 0x1c03c163 },
	{ .function = 4, .index = 4, .flags = 1, .eax = 0 },
	{ .function = 0xb, .index = 0, .flags = 1, .eax = 1, .ebx = 2, .ecx = 0x100 },
	{ .function = 0x1f, .index = 0, .flags = 1, .eax = 1, .ebx = 2, .ecx = 0x100 },
	{ .function = 0x40000000, .eax = 0x40000001, .ebx = 0x4b4d564b },
	{ .function = 0x40000001, .eax = 0x01007afb },
	{ .function = 0x80000000, .eax = 0x80000008 },
	{ .function = 0x80000008, .eax = 0x3027 },
};

#define NELEMS(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const struct accel_cpuid_entry *find(const struct accel_cpuid_entry *e, int n,
					    uint32_t fn, uint32_t idx)
{
	for (int i = 0; i < n; i++)
		if (e[i].function == fn && e[i].index == idx)
			return &e[i];
	return NULL;
}

/* Every topology field of vCPU `idx` agrees with the topology and with each other. */
static void check_vcpu(const struct accel_cpuid_entry *set, int nset,
		       const struct cpu_topology *t, int idx, bool amd)
{
	struct accel_cpuid_entry out[ACCEL_CPUID_MAX_ENTRIES];
	const struct accel_cpuid_entry *l1, *b0, *b1, *b2, *e8, *e1e;
	int n = cpuid_build(set, nset, t, idx, true, out, ACCEL_CPUID_MAX_ENTRIES);
	uint32_t apic = cpuid_apic_id(t, idx);

	CHECK(n > 0);
	if (n <= 0)
		return;
	l1 = find(out, n, 1, 0);
	b0 = find(out, n, 0xb, 0);
	b1 = find(out, n, 0xb, 1);
	b2 = find(out, n, 0xb, 2);
	CHECK(l1 && b0 && b1 && b2);
	if (!l1 || !b0 || !b1 || !b2)
		return;
	CHECK_EQ_U64(l1->ebx >> 24, apic & 0xff);
	CHECK_EQ_U64(b0->edx, apic);
	CHECK_EQ_U64(b1->edx, apic);
	CHECK_EQ_U64(b0->ebx, t->threads);
	CHECK_EQ_U64(b1->ebx, t->threads * t->cores);
	CHECK_EQ_U64((b0->ecx >> 8) & 0xff, 1);
	CHECK_EQ_U64((b1->ecx >> 8) & 0xff, 2);
	CHECK_EQ_U64((b2->ecx >> 8) & 0xff, 0);
	/* The shifts split the APIC ID into thread, core and package. */
	CHECK_EQ_U64(apic & ((1u << b0->eax) - 1), idx % t->threads);
	CHECK_EQ_U64((apic & ((1u << b1->eax) - 1)) >> b0->eax, (idx / t->threads) % t->cores);
	CHECK_EQ_U64(apic >> b1->eax, idx / (t->threads * t->cores));
	CHECK(((l1->ebx >> 16) & 0xff) >= (uint32_t)(t->threads * t->cores));
	CHECK_EQ_U64(!!(l1->edx & (1u << 28)), t->threads * t->cores > 1);
	CHECK(l1->ecx & (1u << 31));
	CHECK(!(l1->ecx & (1u << 5)));
	CHECK(!find(out, n, 0x1f, 0));
	CHECK(!find(out, n, 0x40000001, 0));
	CHECK(find(out, n, 0, 0)->eax >= 0xb);

	e8 = find(out, n, 0x80000008, 0);
	CHECK(e8 != NULL);
	if (e8) {
		CHECK_EQ_U64(e8->ecx & 0xff, t->threads * t->cores - 1);
		CHECK_EQ_U64(1u << ((e8->ecx >> 12) & 0xf), 1u << b1->eax);
		CHECK_EQ_U64(e8->eax, find(set, nset, 0x80000008, 0)->eax);
	}
	e1e = find(out, n, 0x8000001e, 0);
	if (amd) {
		CHECK(e1e != NULL);
		if (e1e) {
			CHECK_EQ_U64(e1e->eax, apic);
			CHECK_EQ_U64((e1e->ebx >> 8) & 0xff, t->threads - 1);
			CHECK_EQ_U64(e1e->ebx & 0xff, (idx / t->threads) % t->cores);
			CHECK_EQ_U64(e1e->ecx & 0xff, idx / (t->threads * t->cores));
		}
		CHECK(!(find(out, n, 0x80000001, 0)->ecx & (1u << 2)));
		CHECK_EQ_U64(!!(find(out, n, 0x80000001, 0)->ecx & 2), t->threads * t->cores > 1);
	} else {
		for (uint32_t i = 0; i < 4; i++) {
			const struct accel_cpuid_entry *c = find(out, n, 4, i);
			unsigned level = (c->eax >> 5) & 7;
			uint32_t share = ((c->eax >> 14) & 0xfff) + 1;

			CHECK_EQ_U64((c->eax >> 26) + 1, 1u << (b1->eax - b0->eax));
			CHECK_EQ_U64(share, level == 3 ? 1u << b1->eax : 1u << b0->eax);
			CHECK_EQ_U64(c->eax & 0x3fff, intel_set[2 + i].eax & 0x3fff);
		}
		CHECK_EQ_U64(find(out, n, 4, 4)->eax, 0);
	}
}

static void check_topology(const struct cpu_topology *t)
{
	for (int i = 0; i < t->cpus; i++) {
		check_vcpu(amd_set, NELEMS(amd_set), t, i, true);
		check_vcpu(intel_set, NELEMS(intel_set), t, i, false);
		for (int j = 0; j < i; j++)
			CHECK(cpuid_apic_id(t, i) != cpuid_apic_id(t, j));
	}
}

TEST(cpuid_c2)
{
	struct cpu_topology t = { .cpus = 2, .sockets = 2, .cores = 1, .threads = 1 };

	check_topology(&t);
	CHECK_EQ_U64(cpuid_apic_id(&t, 0), 0);
	CHECK_EQ_U64(cpuid_apic_id(&t, 1), 1);
}

TEST(cpuid_4cpus_2sockets_2cores)
{
	struct cpu_topology t = { .cpus = 4, .sockets = 2, .cores = 2, .threads = 1 };

	check_topology(&t);
	for (int i = 0; i < 4; i++)
		CHECK_EQ_U64(cpuid_apic_id(&t, i), i);
}

TEST(cpuid_odd_topology_packs_ids)
{
	struct cpu_topology t = { .cpus = 12, .sockets = 2, .cores = 3, .threads = 2 };

	check_topology(&t);
	/* 1 thread bit, 2 core bits: socket 1 core 0 thread 0 is APIC ID 8. */
	CHECK_EQ_U64(cpuid_apic_id(&t, 6), 8);
	CHECK_EQ_U64(cpuid_apic_id(&t, 5), 5);
}

TEST(cpuid_fewer_cpus_than_slots)
{
	struct cpu_topology t = { .cpus = 3, .sockets = 1, .cores = 4, .threads = 1 };

	check_topology(&t);
}

TEST(cpuid_vendor_and_hypervisor_leaf)
{
	struct cpu_topology t = { .cpus = 1, .sockets = 1, .cores = 1, .threads = 1 };
	struct accel_cpuid_entry out[ACCEL_CPUID_MAX_ENTRIES];
	int n = cpuid_build(amd_set, NELEMS(amd_set), &t, 0, true, out, ACCEL_CPUID_MAX_ENTRIES);
	const struct accel_cpuid_entry *hv = find(out, n, 0x40000000, 0), *l0 = find(out, n, 0, 0);
	char sig[13] = { 0 };

	CHECK(hv && l0);
	if (!hv || !l0)
		return;
	memcpy(sig, &hv->ebx, 4);
	memcpy(sig + 4, &hv->ecx, 4);
	memcpy(sig + 8, &hv->edx, 4);
	CHECK_STR(sig, "khyve khyve ");
	CHECK_EQ_U64(l0->ebx, amd_set[0].ebx);
	CHECK_EQ_U64(l0->ecx, amd_set[0].ecx);
	CHECK_EQ_U64(l0->edx, amd_set[0].edx);
	CHECK_EQ_U64(find(out, n, 1, 0)->eax, 0xf00);
	CHECK(find(out, n, 1, 0)->ecx & (1u << 21));
	n = cpuid_build(amd_set, NELEMS(amd_set), &t, 0, false, out, ACCEL_CPUID_MAX_ENTRIES);
	CHECK(!(find(out, n, 1, 0)->ecx & (1u << 21)));
}

TEST(cpuid_errors)
{
	struct cpu_topology t = { .cpus = 4, .sockets = 1, .cores = 2, .threads = 1 };
	struct cpu_topology ok = { .cpus = 2, .sockets = 1, .cores = 2, .threads = 1 };
	struct accel_cpuid_entry out[ACCEL_CPUID_MAX_ENTRIES];

	CHECK_EQ_U64(cpuid_build(amd_set, NELEMS(amd_set), &t, 0, true, out, 100),
		     (uint64_t)-EINVAL);
	CHECK_EQ_U64(cpuid_build(amd_set, NELEMS(amd_set), &ok, 2, true, out, 100),
		     (uint64_t)-EINVAL);
	CHECK_EQ_U64(cpuid_build(amd_set, NELEMS(amd_set), &ok, -1, true, out, 100),
		     (uint64_t)-EINVAL);
	CHECK_EQ_U64(cpuid_build(amd_set + 1, NELEMS(amd_set) - 1, &ok, 0, true, out, 100),
		     (uint64_t)-EINVAL);
	CHECK_EQ_U64(cpuid_build(amd_set, NELEMS(amd_set), &ok, 0, true, out, 5),
		     (uint64_t)-ENOSPC);
	CHECK_EQ_U64(cpuid_build(amd_set, NELEMS(amd_set), &ok, 0, true, out, 9),
		     (uint64_t)-ENOSPC);
	CHECK_EQ_U64(cpuid_build(amd_set, NELEMS(amd_set), &ok, 0, true, out, 10), 10);
}
