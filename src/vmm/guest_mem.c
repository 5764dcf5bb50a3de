/*
 * guest_mem.c: guest-physical memory. RAM is one anonymous MAP_NORESERVE mapping, shown to
 * the guest as lowmem [0, min(size, 3 GiB)) and, for the rest, highmem from 4 GiB (the PCI
 * hole sits between). ROM regions are caller-owned buffers mapped read-only, possibly over
 * part of the RAM (which they then hide). Every lookup
 * checks the whole [gpa, gpa+len) range with overflow-safe arithmetic. Regions are added
 * at build time only; lookups after that are lock-free.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "vmm/guest_mem.h"

#define GM_MAX_REGIONS 16
#define GM_PAGE 4096ULL

struct guest_mem {
	struct gm_region regions[GM_MAX_REGIONS];
	int nregions;
	uint8_t *ram;
	uint64_t ram_size, lowmem, highmem;
	void (*write_hook)(void *opaque, uint64_t gpa, uint64_t len);
	void *write_hook_opaque;
};

/* True when [a, a+alen) and [b, b+blen) intersect; lengths are non-zero and do not wrap. */
static bool gm_overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static int gm_insert(struct guest_mem *gm, uint64_t gpa, uint64_t size, uint8_t *host,
		     enum gm_region_kind kind)
{
	if (gm->nregions == GM_MAX_REGIONS)
		return -ENOSPC;
	for (int i = 0; i < gm->nregions; i++)
		if (gm_overlaps(gpa, size, gm->regions[i].gpa, gm->regions[i].size))
			return -EEXIST;
	gm->regions[gm->nregions++] = (struct gm_region){
		.gpa = gpa, .size = size, .host = host, .kind = kind,
	};
	return 0;
}

int gm_create(struct guest_mem **out, uint64_t size)
{
	struct guest_mem *gm;
	void *ram;
	int ret;

	*out = NULL;
	/* Round up to a page; refuse sizes whose highmem end would not fit 64 bits. */
	if (size == 0 || size > (1ULL << 52))
		return -EINVAL;
	size = (size + GM_PAGE - 1) & ~(GM_PAGE - 1);

	gm = calloc(1, sizeof *gm);
	if (!gm)
		return -ENOMEM;
	ram = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		   -1, 0);
	if (ram == MAP_FAILED) {
		ret = -errno;
		free(gm);
		return ret;
	}
	gm->ram = ram;
	gm->ram_size = size;
	gm->lowmem = size < GUEST_MEM_LOWMEM_LIMIT ? size : GUEST_MEM_LOWMEM_LIMIT;
	gm->highmem = size - gm->lowmem;
	gm_insert(gm, 0, gm->lowmem, gm->ram, GM_RAM);
	if (gm->highmem)
		gm_insert(gm, GUEST_MEM_HIGHMEM_BASE, gm->highmem, gm->ram + gm->lowmem, GM_RAM);
	*out = gm;
	return 0;
}

void gm_destroy(struct guest_mem *gm)
{
	if (!gm)
		return;
	munmap(gm->ram, gm->ram_size);
	free(gm);
}

/*
 * A ROM may cover part of one RAM region (the chipset's BIOS alias at 0xE0000-0xFFFFF): the
 * RAM region is split around it and the RAM underneath is hidden. ROMs never overlap ROMs.
 */
int gm_add_rom(struct guest_mem *gm, uint64_t gpa, uint64_t size, uint8_t *host)
{
	uint64_t end = gpa + size;

	if (size == 0 || !host || end < gpa)
		return -EINVAL;
	for (int i = 0; i < gm->nregions; i++) {
		struct gm_region r = gm->regions[i];
		int need;

		if (!gm_overlaps(gpa, size, r.gpa, r.size))
			continue;
		if (r.kind != GM_RAM || gpa < r.gpa || end > r.gpa + r.size)
			return -EEXIST;
		/* Replace r by its part below the ROM, its part above, and the ROM. */
		need = (gpa > r.gpa) + (end < r.gpa + r.size) + 1;
		if (gm->nregions - 1 + need > GM_MAX_REGIONS)
			return -ENOSPC;
		gm->regions[i] = gm->regions[--gm->nregions];
		if (gpa > r.gpa)
			gm_insert(gm, r.gpa, gpa - r.gpa, r.host, GM_RAM);
		if (end < r.gpa + r.size)
			gm_insert(gm, end, r.gpa + r.size - end, r.host + (end - r.gpa), GM_RAM);
		break;
	}
	return gm_insert(gm, gpa, size, host, GM_ROM);
}

int gm_wire(struct guest_mem *gm)
{
	if (mlock(gm->ram, gm->ram_size) != 0)
		return -errno;
	return 0;
}

int gm_region_count(const struct guest_mem *gm)
{
	return gm->nregions;
}

const struct gm_region *gm_region(const struct guest_mem *gm, int i)
{
	if (i < 0 || i >= gm->nregions)
		return NULL;
	return &gm->regions[i];
}

uint64_t gm_ram_size(const struct guest_mem *gm)
{
	return gm->ram_size;
}

uint64_t gm_lowmem_size(const struct guest_mem *gm)
{
	return gm->lowmem;
}

uint64_t gm_highmem_size(const struct guest_mem *gm)
{
	return gm->highmem;
}

/* The region holding gpa, or NULL. */
static const struct gm_region *gm_find(const struct guest_mem *gm, uint64_t gpa)
{
	for (int i = 0; i < gm->nregions; i++) {
		const struct gm_region *r = &gm->regions[i];

		if (gpa >= r->gpa && gpa - r->gpa < r->size)
			return r;
	}
	return NULL;
}

void *gm_ptr(struct guest_mem *gm, uint64_t gpa, uint64_t len, bool write)
{
	const struct gm_region *r = gm_find(gm, gpa);
	uint64_t off;

	if (!r || (write && r->kind != GM_RAM))
		return NULL;
	off = gpa - r->gpa;
	if (len > r->size - off)
		return NULL;
	if (write && gm->write_hook && len)
		gm->write_hook(gm->write_hook_opaque, gpa, len);
	return r->host + off;
}

/*
 * Copies may cross from one region into an adjacent one (no gap between them); any byte
 * outside memory, or a write into ROM, fails the whole access before anything is copied.
 */
static int gm_check_span(const struct guest_mem *gm, uint64_t gpa, uint64_t len, bool write)
{
	while (len) {
		const struct gm_region *r = gm_find(gm, gpa);
		uint64_t chunk;

		if (!r || (write && r->kind != GM_RAM))
			return -EFAULT;
		chunk = r->size - (gpa - r->gpa);
		if (chunk >= len)
			return 0;
		if (gpa + chunk < gpa)
			return -EFAULT;
		gpa += chunk;
		len -= chunk;
	}
	return 0;
}

int gm_read(struct guest_mem *gm, uint64_t gpa, void *dst, uint64_t len)
{
	uint8_t *d = dst;

	if (gm_check_span(gm, gpa, len, false))
		return -EFAULT;
	while (len) {
		const struct gm_region *r = gm_find(gm, gpa);
		uint64_t off = gpa - r->gpa, chunk = r->size - off;

		if (chunk > len)
			chunk = len;
		memcpy(d, r->host + off, chunk);
		d += chunk;
		gpa += chunk;
		len -= chunk;
	}
	return 0;
}

int gm_write(struct guest_mem *gm, uint64_t gpa, const void *src, uint64_t len)
{
	const uint8_t *s = src;

	if (gm_check_span(gm, gpa, len, true))
		return -EFAULT;
	if (gm->write_hook && len)
		gm->write_hook(gm->write_hook_opaque, gpa, len);
	while (len) {
		const struct gm_region *r = gm_find(gm, gpa);
		uint64_t off = gpa - r->gpa, chunk = r->size - off;

		if (chunk > len)
			chunk = len;
		memcpy(r->host + off, s, chunk);
		s += chunk;
		gpa += chunk;
		len -= chunk;
	}
	return 0;
}

void gm_set_write_hook(struct guest_mem *gm, void (*hook)(void *opaque, uint64_t gpa,
							  uint64_t len), void *opaque)
{
	gm->write_hook = hook;
	gm->write_hook_opaque = opaque;
}
