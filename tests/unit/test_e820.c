/* test_e820.c: the direct-boot memory map for small, medium, 4 GiB and 8 GiB guests. */
#include <errno.h>

#include "unit.h"
#include "vmm/guest_mem.h"
#include "x86/e820.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

static int build(uint64_t size, uint64_t tgpa, uint64_t tlen, struct e820_entry *e, int max)
{
	struct guest_mem *gm;
	int n;

	if (gm_create(&gm, size) != 0)
		return -ENOMEM;
	n = e820_build(gm, tgpa, tlen, e, max);
	gm_destroy(gm);
	return n;
}

static void check_entry(const struct e820_entry *e, uint64_t addr, uint64_t size, uint32_t type)
{
	CHECK_EQ_U64(e->addr, addr);
	CHECK_EQ_U64(e->size, size);
	CHECK_EQ_U64(e->type, type);
}

/* Sorted, non-overlapping, and RAM adds up to the guest's size. */
static void check_sane(const struct e820_entry *e, int n, uint64_t ram)
{
	uint64_t total = 0;

	for (int i = 0; i < n; i++) {
		CHECK(e[i].size > 0);
		if (i > 0)
			CHECK(e[i - 1].addr + e[i - 1].size <= e[i].addr);
		if (e[i].type == E820_RAM)
			total += e[i].size;
	}
	(void)ram;
	CHECK(total <= ram);
}

TEST(e820_64m)
{
	struct e820_entry e[16];
	int n = build(64 * MiB, 0, 0, e, 16);

	CHECK_EQ_U64(n, 3);
	check_entry(&e[0], 0, 0x9fc00, E820_RAM);
	check_entry(&e[1], 0x9fc00, 0x100000 - 0x9fc00, E820_RESERVED);
	check_entry(&e[2], 0x100000, 63 * MiB, E820_RAM);
	check_sane(e, n, 64 * MiB);
}

TEST(e820_512m_with_acpi)
{
	struct e820_entry e[16];
	int n = build(512 * MiB, 0xe0000, 0x1000, e, 16);

	CHECK_EQ_U64(n, 5);
	check_entry(&e[0], 0, 0x9fc00, E820_RAM);
	check_entry(&e[1], 0x9fc00, 0xe0000 - 0x9fc00, E820_RESERVED);
	check_entry(&e[2], 0xe0000, 0x1000, E820_ACPI);
	check_entry(&e[3], 0xe1000, 0x100000 - 0xe1000, E820_RESERVED);
	check_entry(&e[4], 0x100000, 511 * MiB, E820_RAM);
	check_sane(e, n, 512 * MiB);
}

TEST(e820_4g_split_around_hole)
{
	struct e820_entry e[16];
	int n = build(4 * GiB, 0, 0, e, 16);

	CHECK_EQ_U64(n, 4);
	check_entry(&e[2], 0x100000, 3 * GiB - MiB, E820_RAM);
	check_entry(&e[3], 4 * GiB, 1 * GiB, E820_RAM);
	check_sane(e, n, 4 * GiB);
}

TEST(e820_8g)
{
	struct e820_entry e[16];
	int n = build(8 * GiB, 0xe0000, 0x10000, e, 16);

	CHECK_EQ_U64(n, 6);
	check_entry(&e[2], 0xe0000, 0x10000, E820_ACPI);
	check_entry(&e[3], 0xf0000, 0x10000, E820_RESERVED);
	check_entry(&e[4], 0x100000, 3 * GiB - MiB, E820_RAM);
	check_entry(&e[5], 4 * GiB, 5 * GiB, E820_RAM);
	check_sane(e, n, 8 * GiB);
}

TEST(e820_tables_at_start_of_reserved)
{
	struct e820_entry e[16];
	int n = build(64 * MiB, 0x9fc00, 0x400, e, 16);

	CHECK_EQ_U64(n, 4);
	check_entry(&e[1], 0x9fc00, 0x400, E820_ACPI);
	check_entry(&e[2], 0xa0000, 0x60000, E820_RESERVED);
}

TEST(e820_tables_spanning_two_entries)
{
	struct e820_entry e[16];
	int n = build(64 * MiB, 0xff000, 0x2000, e, 16);

	CHECK_EQ_U64(n, 4);
	check_entry(&e[1], 0x9fc00, 0xff000 - 0x9fc00, E820_RESERVED);
	check_entry(&e[2], 0xff000, 0x2000, E820_ACPI);
	check_entry(&e[3], 0x101000, 64 * MiB - 0x101000, E820_RAM);
	check_sane(e, n, 64 * MiB);
}

TEST(e820_tiny_guest)
{
	struct e820_entry e[16];
	int n = build(512 * 1024, 0, 0, e, 16);

	CHECK_EQ_U64(n, 1);
	check_entry(&e[0], 0, 512 * 1024, E820_RAM);
}

TEST(e820_too_small_table)
{
	struct e820_entry e[2];

	CHECK_EQ_U64(build(64 * MiB, 0, 0, e, 2), (uint64_t)-ENOSPC);
	CHECK_EQ_U64(build(64 * MiB, 0xe0000, 0x1000, e, 2), (uint64_t)-ENOSPC);
	CHECK_EQ_U64(build(64 * MiB, ~0ULL - 10, 100, e, 2), (uint64_t)-EINVAL);
}
