/* test_guest_mem.c: guest_mem bounds, overflow, the split around the PCI hole, ROM. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "unit.h"
#include "vmm/guest_mem.h"

static uint64_t hook_gpa, hook_len;
static int hook_calls;

static void hook(void *opaque, uint64_t gpa, uint64_t len)
{
	(void)opaque;
	hook_gpa = gpa;
	hook_len = len;
	hook_calls++;
}

TEST(small_ram_is_lowmem_only)
{
	struct guest_mem *gm;

	CHECK(gm_create(&gm, 64 << 20) == 0);
	CHECK_EQ_U64(gm_ram_size(gm), 64 << 20);
	CHECK_EQ_U64(gm_lowmem_size(gm), 64 << 20);
	CHECK_EQ_U64(gm_highmem_size(gm), 0);
	CHECK_EQ_U64(gm_region_count(gm), 1);
	CHECK_EQ_U64(gm_region(gm, 0)->gpa, 0);
	CHECK(gm_region(gm, 0)->kind == GM_RAM);
	CHECK(gm_region(gm, 1) == NULL);
	CHECK(gm_region(gm, -1) == NULL);
	gm_destroy(gm);
}

TEST(size_rounds_up_and_zero_fails)
{
	struct guest_mem *gm;

	CHECK(gm_create(&gm, 0) == -EINVAL);
	CHECK(gm_create(&gm, 5000) == 0);
	CHECK_EQ_U64(gm_ram_size(gm), 8192);
	gm_destroy(gm);
}

TEST(split_around_pci_hole)
{
	struct guest_mem *gm;
	uint8_t buf[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, got[8];
	uint64_t size = (4ULL << 30) + (1ULL << 20);	/* 4 GiB + 1 MiB: 1 GiB + 1 MiB above */

	CHECK(gm_create(&gm, size) == 0);
	CHECK_EQ_U64(gm_lowmem_size(gm), 3ULL << 30);
	CHECK_EQ_U64(gm_highmem_size(gm), (1ULL << 30) + (1ULL << 20));
	CHECK_EQ_U64(gm_region_count(gm), 2);
	CHECK_EQ_U64(gm_region(gm, 1)->gpa, GUEST_MEM_HIGHMEM_BASE);
	/* Last byte of lowmem works, the hole does not. */
	CHECK(gm_ptr(gm, (3ULL << 30) - 1, 1, true) != NULL);
	CHECK(gm_ptr(gm, (3ULL << 30) - 1, 2, false) == NULL);
	CHECK(gm_ptr(gm, 3ULL << 30, 1, false) == NULL);
	CHECK(gm_ptr(gm, (4ULL << 30) - 1, 1, false) == NULL);
	CHECK(gm_read(gm, (3ULL << 30) - 4, got, 8) == -EFAULT);
	/* Highmem is backed by the bytes after lowmem in one mapping. */
	CHECK(gm_write(gm, GUEST_MEM_HIGHMEM_BASE, buf, 8) == 0);
	CHECK(gm_read(gm, GUEST_MEM_HIGHMEM_BASE, got, 8) == 0);
	CHECK(memcmp(buf, got, 8) == 0);
	CHECK((uint8_t *)gm_ptr(gm, GUEST_MEM_HIGHMEM_BASE, 8, false) ==
	      gm_region(gm, 0)->host + (3ULL << 30));
	/* End of highmem. */
	CHECK(gm_ptr(gm, GUEST_MEM_HIGHMEM_BASE + gm_highmem_size(gm) - 8, 8, false) != NULL);
	CHECK(gm_ptr(gm, GUEST_MEM_HIGHMEM_BASE + gm_highmem_size(gm) - 8, 9, false) == NULL);
	gm_destroy(gm);
}

TEST(bounds_and_overflow)
{
	struct guest_mem *gm;
	uint8_t b[16] = { 0 };

	CHECK(gm_create(&gm, 1 << 20) == 0);
	CHECK(gm_ptr(gm, 0, 1 << 20, false) != NULL);
	CHECK(gm_ptr(gm, 0, (1 << 20) + 1, false) == NULL);
	CHECK(gm_ptr(gm, (1 << 20) - 1, 1, false) != NULL);
	CHECK(gm_ptr(gm, 1 << 20, 1, false) == NULL);
	CHECK(gm_ptr(gm, 16, UINT64_MAX, false) == NULL);
	CHECK(gm_ptr(gm, UINT64_MAX, 2, false) == NULL);
	CHECK(gm_ptr(gm, UINT64_MAX - 3, 8, false) == NULL);
	CHECK(gm_read(gm, 16, b, UINT64_MAX) == -EFAULT);
	CHECK(gm_read(gm, UINT64_MAX - 3, b, 8) == -EFAULT);
	CHECK(gm_write(gm, (1 << 20) - 8, b, 16) == -EFAULT);
	CHECK(gm_write(gm, (1 << 20) - 16, b, 16) == 0);
	CHECK(gm_read(gm, 0x12345, b, 0) == 0);
	gm_destroy(gm);
}

TEST(rom_is_read_only)
{
	struct guest_mem *gm;
	static uint8_t rom[8192];
	uint8_t b[4];

	memset(rom, 0xab, sizeof rom);
	CHECK(gm_create(&gm, 1 << 20) == 0);
	CHECK(gm_add_rom(gm, 0xFFFFE000ULL, sizeof rom, rom) == 0);
	CHECK_EQ_U64(gm_region_count(gm), 2);
	CHECK(gm_region(gm, 1)->kind == GM_ROM);
	CHECK(gm_ptr(gm, 0xFFFFFFF0ULL, 16, false) == rom + 0x1ff0);
	CHECK(gm_ptr(gm, 0xFFFFFFF0ULL, 16, true) == NULL);
	CHECK(gm_ptr(gm, 0xFFFFFFF0ULL, 17, false) == NULL);
	CHECK(gm_read(gm, 0xFFFFE000ULL, b, 4) == 0);
	CHECK_EQ_U64(b[0], 0xab);
	CHECK(gm_write(gm, 0xFFFFE000ULL, b, 4) == -EFAULT);
	/* Overlaps and nonsense are refused. */
	CHECK(gm_add_rom(gm, 0xFFFFF000ULL, 4096, rom) == -EEXIST);
	CHECK(gm_add_rom(gm, 0xFF000, 0x2000, rom) == -EEXIST);	/* past the end of RAM */
	CHECK(gm_add_rom(gm, 0x200000, 0, rom) == -EINVAL);
	CHECK(gm_add_rom(gm, UINT64_MAX - 10, 4096, rom) == -EINVAL);
	CHECK(gm_add_rom(gm, 0x200000, 4096, NULL) == -EINVAL);
	gm_destroy(gm);
}

TEST(copies_cross_adjacent_regions)
{
	struct guest_mem *gm;
	static uint8_t rom[4096];
	uint8_t b[8];

	memset(rom, 0x5a, sizeof rom);
	CHECK(gm_create(&gm, 1 << 20) == 0);
	CHECK(gm_add_rom(gm, 1 << 20, sizeof rom, rom) == 0);
	memset(gm_ptr(gm, (1 << 20) - 4, 4, true), 0x11, 4);
	CHECK(gm_read(gm, (1 << 20) - 4, b, 8) == 0);
	CHECK_EQ_U64(b[3], 0x11);
	CHECK_EQ_U64(b[4], 0x5a);
	CHECK(gm_ptr(gm, (1 << 20) - 4, 8, false) == NULL);
	/* A write that would reach ROM changes nothing. */
	memset(b, 0x22, sizeof b);
	CHECK(gm_write(gm, (1 << 20) - 4, b, 8) == -EFAULT);
	CHECK_EQ_U64(*(uint8_t *)gm_ptr(gm, (1 << 20) - 4, 1, false), 0x11);
	gm_destroy(gm);
}

TEST(write_hook_sees_writes)
{
	struct guest_mem *gm;
	uint8_t b[4] = { 0 };

	CHECK(gm_create(&gm, 1 << 20) == 0);
	gm_set_write_hook(gm, hook, NULL);
	hook_calls = 0;
	CHECK(gm_write(gm, 0x1000, b, 4) == 0);
	CHECK_EQ_U64(hook_calls, 1);
	CHECK_EQ_U64(hook_gpa, 0x1000);
	CHECK_EQ_U64(hook_len, 4);
	CHECK(gm_ptr(gm, 0x2000, 16, true) != NULL);
	CHECK_EQ_U64(hook_calls, 2);
	CHECK_EQ_U64(hook_gpa, 0x2000);
	CHECK(gm_ptr(gm, 0x2000, 16, false) != NULL);
	CHECK(gm_read(gm, 0x2000, b, 4) == 0);
	CHECK(gm_write(gm, 1 << 20, b, 4) == -EFAULT);
	CHECK_EQ_U64(hook_calls, 2);
	gm_destroy(gm);
}

TEST(large_sparse_ram_is_cheap)
{
	struct guest_mem *gm;

	/* MAP_NORESERVE: 64 GiB of address space, nothing touched. */
	CHECK(gm_create(&gm, 64ULL << 30) == 0);
	CHECK_EQ_U64(gm_highmem_size(gm), 61ULL << 30);
	CHECK(gm_ptr(gm, GUEST_MEM_HIGHMEM_BASE + (61ULL << 30) - 1, 1, true) != NULL);
	gm_destroy(gm);
}

TEST(rom_alias_splits_ram)
{
	struct guest_mem *gm;
	static uint8_t bios[0x20000];
	uint8_t b[2];
	int ram = 0, roms = 0;

	memset(bios, 0xcc, sizeof bios);
	CHECK(gm_create(&gm, 16 << 20) == 0);
	memset(gm_ptr(gm, 0xDFFFF, 1, true), 0x11, 1);
	memset(gm_ptr(gm, 0x100000, 1, true), 0x22, 1);
	CHECK(gm_add_rom(gm, 0xE0000, sizeof bios, bios) == 0);
	CHECK_EQ_U64(gm_region_count(gm), 3);
	for (int i = 0; i < gm_region_count(gm); i++) {
		const struct gm_region *r = gm_region(gm, i);

		if (r->kind == GM_RAM) {
			ram++;
			CHECK(r->gpa == 0 || r->gpa == 0x100000);
			CHECK_EQ_U64(r->gpa + r->size, r->gpa ? 16 << 20 : 0xE0000);
		} else {
			roms++;
		}
	}
	CHECK_EQ_U64(ram, 2);
	CHECK_EQ_U64(roms, 1);
	/* RAM on both sides keeps its contents; the ROM reads through, refuses writes. */
	CHECK(gm_read(gm, 0xDFFFF, b, 2) == 0);
	CHECK_EQ_U64(b[0], 0x11);
	CHECK_EQ_U64(b[1], 0xcc);
	CHECK(gm_read(gm, 0xFFFFF, b, 2) == 0);
	CHECK_EQ_U64(b[0], 0xcc);
	CHECK_EQ_U64(b[1], 0x22);
	CHECK(gm_ptr(gm, 0xF0000, 1, true) == NULL);
	CHECK(gm_write(gm, 0xDFFFF, b, 2) == -EFAULT);
	CHECK_EQ_U64(gm_lowmem_size(gm), 16 << 20);
	/* A second ROM over the first is refused; one at the top of 4 GiB is fine. */
	CHECK(gm_add_rom(gm, 0xF0000, 0x1000, bios) == -EEXIST);
	CHECK(gm_add_rom(gm, 0xFFFE0000ULL, sizeof bios, bios) == 0);
	gm_destroy(gm);
}

TEST(wire_locks_or_says_why)
{
	struct guest_mem *gm;
	int ret;

	CHECK(gm_create(&gm, 1 << 20) == 0);
	/* Root or a large RLIMIT_MEMLOCK: 0; otherwise the errno the machine reports. */
	ret = gm_wire(gm);
	CHECK(ret == 0 || ret == -ENOMEM || ret == -EPERM || ret == -EAGAIN);
	gm_destroy(gm);
}
