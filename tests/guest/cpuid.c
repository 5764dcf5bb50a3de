/*
 * cpuid: the CPUID the guest sees (Intel SDM vol. 2A CPUID; AMD APM vol. 3 appendix E):
 * vendor string, leaf 1 initial APIC ID of the BSP (0, equal to the LAPIC ID register),
 * leaf 0xB levels against the topology on the command line ("cpus=2", optional sockets=,
 * cores=, threads= with bhyve's defaults: only cpus -> that many sockets), and every CPU
 * started by INIT-SIPI-SIPI reporting a distinct APIC ID whose package bits match.
 */
#include "rt.h"

static uint32_t ap_leaf1_id[16], ap_x2_id[16];

static void ap(int idx)
{
	uint32_t r[4];
	cpuid(1, 0, r);
	ap_leaf1_id[idx] = r[1] >> 24;
	cpuid(0xb, 0, r);
	ap_x2_id[idx] = r[3];
}

void test_main(void)
{
	uint32_t r[4], maxleaf;
	char vendor[13];
	cpuid(0, 0, r);
	maxleaf = r[0];
	memcpy(vendor, &r[1], 4);
	memcpy(vendor + 4, &r[3], 4);
	memcpy(vendor + 8, &r[2], 4);
	vendor[12] = 0;
	bool printable = true;
	for (int i = 0; i < 12; i++)
		if (vendor[i] < 0x20 || vendor[i] > 0x7e)
			printable = false;
	printf("# vendor \"%s\", max leaf %x\n", vendor, maxleaf);
	check(printable && maxleaf >= 1, "vendor", "vendor not printable or max leaf %x", maxleaf);

	uint32_t cpus = (uint32_t)cmdline_num("cpus", 1);
	uint32_t sockets = (uint32_t)cmdline_num("sockets", 0);
	uint32_t cores = (uint32_t)cmdline_num("cores", 1);
	uint32_t threads = (uint32_t)cmdline_num("threads", 1);
	if (!sockets)
		sockets = cpus / (cores * threads) ? cpus / (cores * threads) : 1;
	printf("# expecting %u CPUs: %u sockets x %u cores x %u threads\n", cpus, sockets, cores, threads);

	cpuid(1, 0, r);
	uint32_t bsp_id = r[1] >> 24;
	lapic_enable();
	check(bsp_id == 0, "leaf1-bsp-apic-id", "initial APIC ID %u", bsp_id);
	check(bsp_id == lapic_id(), "leaf1-matches-lapic", "leaf 1 %u, LAPIC ID register %u", bsp_id,
	      lapic_id());
	uint32_t per_pkg = cores * threads;
	uint32_t lcount = (r[3] & (1 << 28)) ? (r[1] >> 16) & 0xff : 1;
	check(lcount >= per_pkg, "leaf1-logical-count", "HTT %u, EBX[23:16] %u, want >= %u",
	      (r[3] >> 28) & 1, (r[1] >> 16) & 0xff, per_pkg);

	uint32_t pkg_shift = 0;
	if (maxleaf >= 0xb) {
		uint32_t a[4], b[4];
		cpuid(0xb, 0, a);
		cpuid(0xb, 1, b);
		printf("# leaf 0xb.0 %08x %08x %08x %08x\n", a[0], a[1], a[2], a[3]);
		printf("# leaf 0xb.1 %08x %08x %08x %08x\n", b[0], b[1], b[2], b[3]);
		check(((a[2] >> 8) & 0xff) == 1 && (a[1] & 0xffff) == threads, "leaf-b-smt",
		      "type %u, %u logical, want SMT with %u", (a[2] >> 8) & 0xff, a[1] & 0xffff, threads);
		check(((b[2] >> 8) & 0xff) == 2 && (b[1] & 0xffff) == per_pkg, "leaf-b-core",
		      "type %u, %u logical, want core with %u", (b[2] >> 8) & 0xff, b[1] & 0xffff, per_pkg);
		check(a[3] == bsp_id && b[3] == bsp_id, "leaf-b-x2apic-id", "EDX %u/%u", a[3], b[3]);
		check((1u << (b[0] & 0x1f)) >= per_pkg && (a[0] & 0x1f) <= (b[0] & 0x1f), "leaf-b-shifts",
		      "shifts %u, %u", a[0] & 0x1f, b[0] & 0x1f);
		pkg_shift = b[0] & 0x1f;
	} else {
		not_ok("leaf-b", "max leaf %x has no 0xb", maxleaf);
	}

	int n = smp_cpu_count();
	check((uint32_t)n == cpus, "cpu-count", "%d CPUs in the MADT/cmdline, want %u", n, cpus);
	int up = smp_start_aps(ap);
	check(up == n - 1, "aps-started", "%d of %d APs", up, n - 1);
	uint64_t end = tsc_deadline(1000000);
	while (smp_aps_done < up && (int64_t)(rdtsc() - end) < 0)
		cpu_relax();
	bool distinct = true, match = true;
	uint32_t pkgs = 1;
	for (int i = 1; i <= up; i++) {
		printf("# AP %d: APIC ID %u, leaf 1 %u, x2APIC %u\n", i, smp_apic_ids[i], ap_leaf1_id[i],
		       ap_x2_id[i]);
		if (ap_leaf1_id[i] != smp_apic_ids[i] || (maxleaf >= 0xb && ap_x2_id[i] != smp_apic_ids[i]))
			match = false;
		bool newpkg = true;
		for (int j = 0; j < i; j++) {
			uint32_t idj = j ? ap_leaf1_id[j] : bsp_id;
			if (idj == ap_leaf1_id[i])
				distinct = false;
			if ((idj >> pkg_shift) == (ap_leaf1_id[i] >> pkg_shift))
				newpkg = false;
		}
		pkgs += newpkg;
	}
	check(distinct, "apic-ids-distinct", "two CPUs report the same APIC ID");
	check(match, "apic-ids-match", "an AP's CPUID APIC ID differs from the one it was started by");
	if (maxleaf >= 0xb)
		check(pkgs == sockets, "packages", "%u packages from APIC IDs, want %u", pkgs, sockets);
}
