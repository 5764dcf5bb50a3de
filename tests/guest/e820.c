/*
 * e820: the memory map in hvm_start_info (PVH, version >= 1) against the size given on the
 * command line ("mem=64M"): RAM from 0 ending at or below 640 KiB, nothing usable in
 * 0xA0000-0xFFFFF, RAM from 1 MiB, sorted and non-overlapping entries, RAM total and top within
 * 1 MiB of mem= (QEMU reserves 128 KiB at the top), and the last RAM page readable/writable.
 */
#include "rt.h"

void test_main(void)
{
	uint64_t mem = cmdline_num("mem", 0);
	struct rt_memmap *m = bootinfo.memmap;
	int n = bootinfo.memmap_count;

	check(bootinfo.start_info_version != 0xffffffff, "start-info-magic", "no hvm_start_info in EBX");
	check(bootinfo.start_info_version >= 1 && n > 0, "start-info-memmap",
	      "version %u, %d entries", bootinfo.start_info_version, n);
	check(mem != 0, "cmdline-mem", "no mem= on the command line (\"%s\")", bootinfo.cmdline);
	for (int i = 0; i < n; i++)
		printf("# e820 %016lx-%016lx type %u\n", m[i].addr, m[i].addr + m[i].size - 1, m[i].type);

	bool sorted = true;
	for (int i = 1; i < n; i++)
		if (m[i].addr < m[i - 1].addr + m[i - 1].size)
			sorted = false;
	check(sorted, "sorted-non-overlapping", "entries overlap or are out of order");

	bool low = n > 0 && m[0].addr == 0 && m[0].type == 1 && m[0].size >= 0x80000 &&
		   m[0].size <= 0xa0000;
	check(low, "ram-below-640k", "first entry %lx+%lx type %u", n ? m[0].addr : 0,
	      n ? m[0].size : 0, n ? m[0].type : 0);

	bool hole = true, at1m = false;
	uint64_t total = 0, top_low = 0, top = 0;
	for (int i = 0; i < n; i++) {
		if (m[i].type != 1)
			continue;
		uint64_t s = m[i].addr, e = s + m[i].size;
		if (s < 0x100000 && e > 0xa0000)
			hole = false;
		if (s == 0x100000)
			at1m = true;
		total += m[i].size;
		if (e <= (1ull << 32) && e > top_low)
			top_low = e;
		if (e > top)
			top = e;
	}
	check(hole, "hole-640k-1m", "RAM overlaps 0xA0000-0xFFFFF");
	check(at1m, "ram-at-1m", "no RAM entry starting at 1 MiB");
	/* Below 3 GiB everything is below the PCI hole. */
	if (mem && mem <= (3ull << 30)) {
		check(top_low <= mem && top_low + (1 << 20) >= mem, "ram-top",
		      "RAM ends at %lx, mem=%lx", top_low, mem);
		check(top == top_low, "no-ram-above-4g", "RAM up to %lx", top);
	}
	check(mem && total <= mem && total + (2 << 20) >= mem, "ram-total",
	      "RAM total %lx, mem=%lx", total, mem);

	if (top_low > (2 << 20) && top_low <= (1ull << 32)) {
		volatile uint64_t *p = PHYS(top_low - 8);
		volatile uint64_t *q = PHYS(top_low - 4096);
		*p = 0x1122334455667788ull;
		*q = ~0x1122334455667788ull;
		check(*p == 0x1122334455667788ull && *q == ~0x1122334455667788ull, "top-page-rw",
		      "read back %lx %lx", *p, *q);
	}
}
