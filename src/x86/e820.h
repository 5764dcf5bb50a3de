/* e820.h: the BIOS memory map a direct-booted kernel gets (ACPI spec §15, "INT 15h E820"). */
#ifndef KHYVE_E820_H
#define KHYVE_E820_H

#include <stdint.h>

#define E820_RAM 1
#define E820_RESERVED 2
#define E820_ACPI 3

struct e820_entry {
	uint64_t addr, size;
	uint32_t type;
} __attribute__((packed));

struct guest_mem;

/*
 * RAM 0-0x9FC00, reserved EBDA/VGA/BIOS 0x9FC00-0x100000, RAM 1 MiB-lowmem end, the
 * reserved LAPIC/IOAPIC/ROM windows are left out (holes), RAM above 4 GiB. `tables_gpa/len`
 * marks a region holding ACPI tables as E820_ACPI (len 0: none). Returns the entry count.
 */
int e820_build(const struct guest_mem *gm, uint64_t tables_gpa, uint64_t tables_len,
	       struct e820_entry *out, int max);

#endif
