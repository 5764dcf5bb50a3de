/*
 * e820.c: the BIOS memory map handed to direct-booted kernels (ACPI spec §15, INT 15h E820;
 * the Linux zero page, PVH and multiboot copy it). Base memory up to the EBDA, the reserved
 * EBDA/VGA/BIOS area, RAM from 1 MiB to the PCI hole and above 4 GiB; the firmware-table
 * region is cut out of whatever entry holds it and typed E820_ACPI. The MMIO windows
 * (LAPIC, IOAPIC, ROM) are holes, as on bhyve.
 */
#include <errno.h>

#include "vmm/guest_mem.h"
#include "x86/e820.h"

#define E820_EBDA_START 0x9fc00ULL
#define E820_HIGH_START 0x100000ULL

static int e820_add(struct e820_entry *out, int n, int max, uint64_t addr, uint64_t end,
		    uint32_t type)
{
	if (end <= addr)
		return n;
	if (n >= max)
		return -ENOSPC;
	out[n].addr = addr;
	out[n].size = end - addr;
	out[n].type = type;
	return n + 1;
}

/*
 * Cut [t, t_end) out of the sorted map `in` and insert it as one E820_ACPI entry, keeping
 * the order. The region is marked even where no entry covered it (the table builder put
 * the tables there).
 */
static int e820_carve(const struct e820_entry *in, int nin, uint64_t t, uint64_t t_end,
		      struct e820_entry *out, int max)
{
	int n = 0;
	bool placed = false;

	for (int i = 0; i < nin; i++) {
		uint64_t a = in[i].addr, end = in[i].addr + in[i].size;

		if (!placed && a >= t) {
			n = e820_add(out, n, max, t, t_end, E820_ACPI);
			placed = true;
		}
		if (n >= 0 && (end <= t || a >= t_end)) {
			n = e820_add(out, n, max, a, end, in[i].type);
		} else if (n >= 0) {
			n = e820_add(out, n, max, a, t, in[i].type);
			if (n >= 0 && !placed) {
				n = e820_add(out, n, max, t, t_end, E820_ACPI);
				placed = true;
			}
			if (n >= 0)
				n = e820_add(out, n, max, t_end, end, in[i].type);
		}
		if (n < 0)
			return n;
	}
	if (!placed)
		n = e820_add(out, n, max, t, t_end, E820_ACPI);
	return n;
}

int e820_build(const struct guest_mem *gm, uint64_t tables_gpa, uint64_t tables_len,
	       struct e820_entry *out, int max)
{
	struct e820_entry base[4];
	uint64_t low = gm_lowmem_size(gm), high = gm_highmem_size(gm);
	int n = 0;

	if (max <= 0 || tables_gpa + tables_len < tables_gpa)
		return -EINVAL;
	if (low <= E820_EBDA_START) {
		n = e820_add(base, n, 4, 0, low, E820_RAM);
	} else {
		n = e820_add(base, n, 4, 0, E820_EBDA_START, E820_RAM);
		n = e820_add(base, n, 4, E820_EBDA_START, E820_HIGH_START, E820_RESERVED);
		n = e820_add(base, n, 4, E820_HIGH_START, low, E820_RAM);
	}
	n = e820_add(base, n, 4, GUEST_MEM_HIGHMEM_BASE, GUEST_MEM_HIGHMEM_BASE + high,
		     E820_RAM);

	if (tables_len == 0) {
		if (n > max)
			return -ENOSPC;
		for (int i = 0; i < n; i++)
			out[i] = base[i];
		return n;
	}
	return e820_carve(base, n, tables_gpa, tables_gpa + tables_len, out, max);
}
