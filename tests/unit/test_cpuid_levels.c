/*
 * test_cpuid_levels.c: the named CPUID levels of cpu.model (x86/cpuid.c). Every level's
 * leaves agree with each other after cpuid_build (vendor, signature, maximum leaves, the
 * AMD mirror of leaf 1 in 0x80000001, feature dependencies), every vCPU gets the same
 * leaves but its own APIC ID, cpuid_level_restrict cuts a level to a KVM's set, and the
 * interpreter reports each level through CPUID and runs an instruction of every feature a
 * level offers (and raises #UD for the SIMD sets it hides).
 */
#include <errno.h>
#include <stdlib.h>

#include "config/config.h"
#include "unit.h"
#include "x86/cpuid.h"
#include "emu_fixture.h"

#define BIT(n) (1u << (n))

static const struct accel_cpuid_entry *find(const struct accel_cpuid_entry *e, int n,
					    uint32_t fn, uint32_t idx)
{
	for (int i = 0; i < n; i++)
		if (e[i].function == fn && (!(e[i].flags & ACCEL_CPUID_SIGNIFICANT_INDEX) ||
					    e[i].index == idx))
			return &e[i];
	return NULL;
}

/* vCPU `idx`'s table under a level and topology; returns the count (CHECKed > 0). */
static int build(const struct cpuid_level *l, const struct cpu_topology *t, int idx,
		 struct accel_cpuid_entry *out)
{
	struct accel_cpuid_entry set[ACCEL_CPUID_MAX_ENTRIES];
	int ns = cpuid_level_leaves(l, set, ACCEL_CPUID_MAX_ENTRIES), n;

	CHECK(ns > 0);
	n = cpuid_build(set, ns, t, idx, true, out, ACCEL_CPUID_MAX_ENTRIES);
	CHECK(n > 0);
	return n;
}

TEST(level_names)
{
	const struct cfg_schema_key *k = config_schema_find("cpu.model");
	char names[128] = CPUID_MODEL_HOST;
	int n = 0;

	for (const struct cpuid_level *l; (l = cpuid_level_at(n)); n++) {
		CHECK(cpuid_level_find(cpuid_level_name(l)) == l);
		snprintf(names + strlen(names), sizeof names - strlen(names), "|%s",
			 cpuid_level_name(l));
	}
	CHECK(n >= 2);
	CHECK_STR(names, CPUID_MODEL_NAMES);
	CHECK(k && k->type == CFG_ENUM);
	if (k)
		CHECK_STR(k->choices, CPUID_MODEL_NAMES);
	CHECK(cpuid_level_find(CPUID_LEVEL_SOFT) != NULL);
	CHECK(cpuid_level_find(CPUID_MODEL_HOST) == NULL);
	CHECK(cpuid_level_find("bogus") == NULL);
	CHECK(cpuid_level_find(NULL) == NULL);
	CHECK(cpuid_level_at(-1) == NULL);
}

/* Leaves of one vCPU agree with each other. */
static void check_consistent(const char *name, const struct accel_cpuid_entry *e, int n)
{
	const struct accel_cpuid_entry *l0 = find(e, n, 0, 0), *l1 = find(e, n, 1, 0);
	const struct accel_cpuid_entry *x0 = find(e, n, 0x80000000, 0);
	const struct accel_cpuid_entry *x1 = find(e, n, 0x80000001, 0);
	const struct accel_cpuid_entry *x8 = find(e, n, 0x80000008, 0);
	const uint32_t mirror = 0x3ffu | 0x3f000u | BIT(23) | BIT(24);
	char brand[49] = { 0 };

	printf("    %s: %d leaves, 1: %08x %08x, 0x80000001: %08x %08x\n", name, n,
	       l1 ? l1->ecx : 0, l1 ? l1->edx : 0, x1 ? x1->ecx : 0, x1 ? x1->edx : 0);
	CHECK(l0 && l1 && x0 && x1 && x8);
	if (!l0 || !l1 || !x0 || !x1 || !x8)
		return;
	/* every leaf lies within its range's maximum, and the maxima are leaves we have */
	for (int i = 0; i < n; i++) {
		uint32_t f = e[i].function;

		if (f < 0x40000000)
			CHECK(f <= l0->eax);
		else if (f >= 0x80000000)
			CHECK(f <= x0->eax);
	}
	CHECK(find(e, n, l0->eax, 0) != NULL);
	CHECK(find(e, n, x0->eax, 0) != NULL);
	CHECK(l0->eax >= 0xb && l0->eax < 0x20);
	/* the same vendor, family, model and stepping in both ranges */
	CHECK_EQ_U64(l0->ebx, x0->ebx);
	CHECK_EQ_U64(l0->ecx, x0->ecx);
	CHECK_EQ_U64(l0->edx, x0->edx);
	CHECK_EQ_U64(l1->eax, x1->eax);
	CHECK_EQ_U64((l1->eax >> 8) & 0xf, 15);
	/* AMD repeats leaf 1's EDX bits in 0x80000001 */
	CHECK_EQ_U64(x1->edx & mirror, l1->edx & mirror);
	/* what the x86-64 architecture and Linux require (softcpu.md §3.2) */
	CHECK_EQ_U64(l1->edx & 0x0780a179u, 0x0780a179u); /* FPU TSC MSR PAE CX8 CMOV MMX FXSR SSE SSE2 */
	CHECK_EQ_U64(x1->edx & (BIT(11) | BIT(20) | BIT(29)), BIT(11) | BIT(20) | BIT(29));
	/* dependencies: SSSE3 -> SSE3, SSE3 -> SSE2; no XSAVE, AVX, VMX or SVM */
	CHECK(!(l1->ecx & BIT(9)) || (l1->ecx & BIT(0)));
	CHECK(!(l1->ecx & BIT(0)) || (l1->edx & BIT(26)));
	CHECK(!(l1->ecx & (BIT(26) | BIT(27) | BIT(28) | BIT(5))));
	CHECK(!(x1->ecx & BIT(2)));
	CHECK(l1->ecx & BIT(31));
	/* physical and linear address widths */
	CHECK((x8->eax & 0xff) >= 36 && (x8->eax & 0xff) <= 52);
	CHECK_EQ_U64((x8->eax >> 8) & 0xff, 48);
	/* a NUL-terminated, printable brand string */
	for (int i = 0; i < 3; i++) {
		const struct accel_cpuid_entry *b = find(e, n, 0x80000002 + (uint32_t)i, 0);

		CHECK(b != NULL);
		if (b)
			memcpy(brand + 16 * i, &b->eax, 16);
	}
	CHECK(strlen(brand) > 0 && strlen(brand) < 48);
	for (size_t i = 0; i < strlen(brand); i++)
		CHECK(brand[i] >= 0x20 && brand[i] < 0x7f);
}

TEST(levels_self_consistent)
{
	static const struct cpu_topology topos[] = {
		{ 1, 1, 1, 1 }, { 4, 1, 2, 2 }, { 3, 3, 1, 1 }, { 16, 2, 4, 2 },
	};

	for (int i = 0; cpuid_level_at(i); i++)
		for (size_t t = 0; t < sizeof topos / sizeof topos[0]; t++) {
			struct accel_cpuid_entry e[ACCEL_CPUID_MAX_ENTRIES];

			for (int v = 0; v < topos[t].cpus; v++) {
				int n = build(cpuid_level_at(i), &topos[t], v, e);

				if (n > 0 && v == 0 && t == 0)
					check_consistent(cpuid_level_name(cpuid_level_at(i)), e, n);
				else if (n > 0 && v == topos[t].cpus - 1)
					check_consistent(cpuid_level_name(cpuid_level_at(i)), e, n);
			}
		}
}

/* Every vCPU sees the same leaves but for the fields that carry its APIC ID. */
TEST(levels_same_on_every_vcpu)
{
	const struct cpu_topology t = { 8, 2, 2, 2 };

	for (int i = 0; cpuid_level_at(i); i++) {
		struct accel_cpuid_entry e0[ACCEL_CPUID_MAX_ENTRIES], e[ACCEL_CPUID_MAX_ENTRIES];
		int n0 = build(cpuid_level_at(i), &t, 0, e0);
		uint32_t seen[8];

		for (int v = 0; v < t.cpus; v++) {
			int n = build(cpuid_level_at(i), &t, v, e);
			const struct accel_cpuid_entry *l1 = find(e, n, 1, 0);
			const struct accel_cpuid_entry *b0 = find(e, n, 0xb, 0);

			CHECK_EQ_U64(n, n0);
			if (n != n0 || !l1 || !b0)
				continue;
			seen[v] = b0->edx;
			CHECK_EQ_U64(b0->edx, cpuid_apic_id(&t, v));
			CHECK_EQ_U64(l1->ebx >> 24, b0->edx & 0xff);
			for (int j = 0; j < v; j++)
				CHECK(seen[j] != seen[v]);
			for (int k = 0; k < n; k++) {
				struct accel_cpuid_entry a = e[k], b = e0[k];

				if (a.function == 1)
					a.ebx &= 0x00ffffffu, b.ebx &= 0x00ffffffu;
				if (a.function == 0xb)
					a.edx = b.edx = 0;
				CHECK(memcmp(&a, &b, sizeof a) == 0);
			}
		}
	}
}

TEST(levels_differ_in_simd_only)
{
	struct accel_cpuid_entry v1[ACCEL_CPUID_MAX_ENTRIES], base[ACCEL_CPUID_MAX_ENTRIES];
	const struct cpu_topology t = { 1, 1, 1, 1 };
	int n1 = build(cpuid_level_find("khyve-v1"), &t, 0, v1);
	int nb = build(cpuid_level_find("x86-64"), &t, 0, base);
	const struct accel_cpuid_entry *a = find(v1, n1, 1, 0), *b = find(base, nb, 1, 0);
	const uint32_t simd = BIT(0) | BIT(9) | BIT(13);	/* SSE3 SSSE3 CX16 */

	CHECK(a && b);
	if (!a || !b)
		return;
	CHECK_EQ_U64(a->ecx & simd, simd);
	CHECK_EQ_U64(b->ecx & simd, 0);
	CHECK_EQ_U64(a->ecx & ~simd, b->ecx);
	CHECK_EQ_U64(a->edx, b->edx);
	CHECK_EQ_U64(find(v1, n1, 0x80000001, 0)->edx, find(base, nb, 0x80000001, 0)->edx);
}

/* A KVM that lacks SSSE3, CX16 and TSC-deadline in its set, with 39 physical bits. */
TEST(level_restricted_to_kvm)
{
	struct accel_cpuid_entry e[ACCEL_CPUID_MAX_ENTRIES];
	const struct accel_cpuid_entry kvm[] = {
		{ .function = 0, .eax = 0xd },
		{ .function = 1, .ecx = BIT(0) | BIT(21), .edx = 0xffffffffu },
		{ .function = 7, .flags = ACCEL_CPUID_SIGNIFICANT_INDEX },
		{ .function = 0x80000001, .edx = 0xffffffffu, .ecx = 0xffffffffu },
		{ .function = 0x80000007, .edx = BIT(8) },
		{ .function = 0x80000008, .eax = 0x3027 },
	};
	char dropped[128];
	int n = cpuid_level_leaves(cpuid_level_find("khyve-v1"), e, ACCEL_CPUID_MAX_ENTRIES);
	int cleared;

	CHECK(n > 0);
	cleared = cpuid_level_restrict(e, n, kvm, 6, 0, dropped, sizeof dropped);
	CHECK_EQ_U64(cleared, 3);
	CHECK_STR(dropped, "ssse3, cx16, tsc-deadline");
	CHECK_EQ_U64(find(e, n, 1, 0)->ecx, BIT(0) | BIT(21));
	CHECK_EQ_U64(find(e, n, 0x80000008, 0)->eax & 0xff, 39);
	/* TSC-deadline offered as a KVM capability, the hypervisor bit always kept */
	n = cpuid_level_leaves(cpuid_level_find("x86-64"), e, ACCEL_CPUID_MAX_ENTRIES);
	e[1].ecx |= BIT(31);
	cleared = cpuid_level_restrict(e, n, kvm, 6, BIT(24), dropped, sizeof dropped);
	CHECK_EQ_U64(cleared, 0);
	CHECK_STR(dropped, "");
	CHECK_EQ_U64(find(e, n, 1, 0)->ecx, BIT(21) | BIT(24) | BIT(31));
	CHECK(cpuid_level_leaves(cpuid_level_find("x86-64"), e, 3) == -ENOSPC);
}

/* ---- the interpreter under each level ---- */

static struct accel_cpuid_entry lvl[ACCEL_CPUID_MAX_ENTRIES];
static int nlvl;

static void lvl_cpuid(void *o, uint32_t leaf, uint32_t sub, uint32_t out[4])
{
	const struct accel_cpuid_entry *e = find(lvl, nlvl, leaf, sub);

	out[0] = e ? e->eax : 0;
	out[1] = e ? e->ebx : 0;
	out[2] = e ? e->ecx : 0;
	out[3] = e ? e->edx : 0;
}

static int lvl_msr(void *o, uint32_t idx, bool write, uint64_t *val)
{
	return -1;
}

#define DATA 0x300000ull

/* One instruction per feature bit; rdi points at 16-byte aligned scratch memory. */
static const struct feature_insn {
	uint32_t function;
	unsigned reg, bit;	/* 2 ECX, 3 EDX */
	const char *name;
	uint8_t len, bytes[8];
} feature_insns[] = {
	{ 1, 3, 0, "fninit", 2, { 0xdb, 0xe3 } },
	{ 1, 3, 4, "rdtsc", 2, { 0x0f, 0x31 } },
	{ 1, 3, 5, "rdmsr EFER", 7, { 0xb9, 0x80, 0x00, 0x00, 0xc0, 0x0f, 0x32 } },
	{ 1, 3, 8, "cmpxchg8b", 3, { 0x0f, 0xc7, 0x0f } },
	{ 1, 3, 15, "cmove", 4, { 0x48, 0x0f, 0x44, 0xc1 } },
	{ 1, 3, 23, "movq mm0, mm1", 3, { 0x0f, 0x6f, 0xc1 } },
	{ 1, 3, 24, "fxsave", 3, { 0x0f, 0xae, 0x07 } },
	{ 1, 3, 25, "addps", 3, { 0x0f, 0x58, 0xc1 } },
	{ 1, 3, 26, "paddd", 4, { 0x66, 0x0f, 0xfe, 0xc1 } },
	{ 1, 2, 0, "haddps", 4, { 0xf2, 0x0f, 0x7c, 0xc1 } },
	{ 1, 2, 0, "movshdup", 4, { 0xf3, 0x0f, 0x16, 0xc1 } },
	{ 1, 2, 9, "pshufb", 5, { 0x66, 0x0f, 0x38, 0x00, 0xc1 } },
	{ 1, 2, 9, "palignr", 6, { 0x66, 0x0f, 0x3a, 0x0f, 0xc1, 0x04 } },
	{ 1, 2, 13, "cmpxchg16b", 4, { 0x48, 0x0f, 0xc7, 0x0f } },
};

/*
 * Feature bits that name no instruction of their own: paging and APIC features (the
 * fixture runs with paging, PAE, NX and long mode), SYSCALL (test_emu_sys), the hypervisor
 * bit and the invariant TSC.
 */
static bool not_an_insn(uint32_t function, unsigned reg, unsigned bit)
{
	if (function == 1 && reg == 3)
		return bit == 3 || bit == 6 || bit == 9 || bit == 13;
	if (function == 1 && reg == 2)
		return bit == 21 || bit == 24 || bit == 31;
	return function == 0x80000001 && reg == 3;
}

/* Run `bytes; hlt` at CPL 0 and return the vector taken (-1: none, -2: stopped). */
static int run_insn(const uint8_t *bytes, unsigned len)
{
	struct emu_bus b = bus;
	struct vm vm;
	enum emu_exit x;
	int v;

	b.cpuid = lvl_cpuid;
	b.msr = lvl_msr;
	if (!ram)
		ram = malloc(RAM_SIZE);
	build_tables();
	vm.m = emu_machine_create();
	vm.cpu = emu_cpu_create(vm.m, &b);
	long_state(&vm.st, 0);
	vm.st.cr4 |= 0x600;	/* OSFXSR OSXMMEXCPT */
	vm.st.gpr[EMU_RDI] = DATA;
	put_bytes(CODE, bytes, len);
	ram[CODE + len] = 0xf4;
	x = vm_run(&vm);
	v = handler_taken(&vm.st);
	if (x != EMU_EXIT_HLT)
		v = -2;
	else if (v < 0 && vm.st.rip != CODE + len + 1)
		v = -3;
	vm_end(&vm);
	return v;
}

TEST(interpreter_reports_each_level)
{
	for (int i = 0; cpuid_level_at(i); i++) {
		const struct cpu_topology t = { 2, 1, 2, 1 };

		nlvl = build(cpuid_level_at(i), &t, 1, lvl);
		for (int k = 0; k < nlvl; k++) {
			/* mov eax, fn; mov ecx, index; cpuid */
			uint8_t code[12] = { 0xb8, 0, 0, 0, 0, 0xb9, 0, 0, 0, 0, 0x0f, 0xa2 };
			struct emu_bus b = bus;
			struct vm vm;

			b.cpuid = lvl_cpuid;
			memcpy(code + 1, &lvl[k].function, 4);
			memcpy(code + 6, &lvl[k].index, 4);
			if (!ram)
				ram = malloc(RAM_SIZE);
			build_tables();
			vm.m = emu_machine_create();
			vm.cpu = emu_cpu_create(vm.m, &b);
			long_state(&vm.st, 0);
			put_bytes(CODE, code, sizeof code);
			ram[CODE + sizeof code] = 0xf4;
			CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
			CHECK_EQ_U64(vm.st.gpr[EMU_RAX], lvl[k].eax);
			CHECK_EQ_U64(vm.st.gpr[EMU_RBX], lvl[k].ebx);
			CHECK_EQ_U64(vm.st.gpr[EMU_RCX], lvl[k].ecx);
			CHECK_EQ_U64(vm.st.gpr[EMU_RDX], lvl[k].edx);
			vm_end(&vm);
		}
	}
}

TEST(interpreter_runs_every_offered_feature)
{
	const struct cpu_topology t = { 1, 1, 1, 1 };

	for (int i = 0; cpuid_level_at(i); i++) {
		static const uint32_t fns[] = { 1, 0x80000001 };

		nlvl = build(cpuid_level_at(i), &t, 0, lvl);
		/* every offered bit is an instruction we run, or names none */
		for (size_t f = 0; f < 2; f++)
			for (unsigned reg = 2; reg <= 3; reg++) {
				const struct accel_cpuid_entry *e = find(lvl, nlvl, fns[f], 0);
				uint32_t bits = e ? (reg == 2 ? e->ecx : e->edx) : 0;

				for (unsigned bit = 0; bit < 32; bit++) {
					bool covered = not_an_insn(fns[f], reg, bit);

					if (!(bits & BIT(bit)))
						continue;
					for (size_t k = 0; k < sizeof feature_insns /
								       sizeof feature_insns[0]; k++)
						covered |= feature_insns[k].function == fns[f] &&
							    feature_insns[k].reg == reg &&
							    feature_insns[k].bit == bit;
					if (!covered)
						printf("    %s: 0x%x.e%cx bit %u has no test insn\n",
						       cpuid_level_name(cpuid_level_at(i)), fns[f],
						       reg == 2 ? 'c' : 'd', bit);
					CHECK(covered);
				}
			}
		/* offered: runs without #UD; hidden SIMD sets: #UD */
		for (size_t k = 0; k < sizeof feature_insns / sizeof feature_insns[0]; k++) {
			const struct feature_insn *fi = &feature_insns[k];
			const struct accel_cpuid_entry *e = find(lvl, nlvl, fi->function, 0);
			bool offered = e && ((fi->reg == 2 ? e->ecx : e->edx) >> fi->bit & 1);
			int v = run_insn(fi->bytes, fi->len);

			if (v != (offered ? -1 : 6))
				printf("    %s: %s (%s): vector %d\n",
				       cpuid_level_name(cpuid_level_at(i)), fi->name,
				       offered ? "offered" : "hidden", v);
			CHECK_EQ_U64(v, offered ? -1 : 6);
		}
	}
}

/* The software CPU offers the level cpu.model names (default khyve-v1), never "host". */
TEST(soft_accel_offers_the_named_level)
{
	static const struct {
		const char *model;
		int ret;
		uint32_t ecx1_simd;	/* SSE3 SSSE3 CX16 expected in leaf 1 ECX */
		const char *err;
	} cases[] = {
		{ NULL, 0, BIT(0) | BIT(9) | BIT(13), "" },
		{ "khyve-v1", 0, BIT(0) | BIT(9) | BIT(13), "" },
		{ "x86-64", 0, 0, "" },
		{ "host", -EINVAL, 0, "cpu.model=host needs KVM" },
		{ "bogus", -EINVAL, 0, "host|khyve-v1|x86-64" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct accel_config cfg = { .kind = ACCEL_SOFT, .ncpus = 1,
					    .cpu_model = cases[i].model };
		struct accel_cpuid_entry e[ACCEL_CPUID_MAX_ENTRIES];
		struct accel *acc = NULL;
		char err[256] = "";
		int ret = accel_create(&cfg, &acc, err, sizeof err), n;

		CHECK_EQ_U64(ret, cases[i].ret);
		CHECK(strstr(err, cases[i].err) != NULL);
		if (ret)
			continue;
		n = accel_supported_cpuid(acc, e, ACCEL_CPUID_MAX_ENTRIES);
		CHECK(n > 0);
		if (n > 0 && find(e, n, 1, 0))
			CHECK_EQ_U64(find(e, n, 1, 0)->ecx & (BIT(0) | BIT(9) | BIT(13)),
				     cases[i].ecx1_simd);
		accel_destroy(acc);
	}
}
