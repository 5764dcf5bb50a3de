/*
 * guest_mem.h: guest-physical memory, the only code that turns a GPA into a host pointer.
 * RAM below the PCI hole (lowmem, up to 3 GiB) and above 4 GiB (highmem), and read-only
 * ROM regions (the bootrom). Every helper takes a length and checks the whole range.
 */
#ifndef KHYVE_GUEST_MEM_H
#define KHYVE_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_MEM_LOWMEM_LIMIT (3ULL << 30)	/* PCI hole from 3 GiB to 4 GiB */
#define GUEST_MEM_HIGHMEM_BASE (4ULL << 30)

struct guest_mem;

enum gm_region_kind { GM_RAM, GM_ROM };

struct gm_region {
	uint64_t gpa, size;
	uint8_t *host;
	enum gm_region_kind kind;
};

/* Allocate RAM of `size` bytes split around the PCI hole. 0 or -errno. */
int gm_create(struct guest_mem **out, uint64_t size);
void gm_destroy(struct guest_mem *gm);
/* Add a read-only region backed by `host` (copied? no: caller keeps it alive). */
int gm_add_rom(struct guest_mem *gm, uint64_t gpa, uint64_t size, uint8_t *host);
/* Lock all RAM in memory (-S). */
int gm_wire(struct guest_mem *gm);

int gm_region_count(const struct guest_mem *gm);
const struct gm_region *gm_region(const struct guest_mem *gm, int i);
uint64_t gm_ram_size(const struct guest_mem *gm);
uint64_t gm_lowmem_size(const struct guest_mem *gm);	/* RAM below 4 GiB */
uint64_t gm_highmem_size(const struct guest_mem *gm);	/* RAM at/above 4 GiB */

/*
 * Host pointer for [gpa, gpa+len) when the whole range lies in one region (RAM, or ROM with
 * write=false); NULL otherwise. A write pointer notifies the write hook (code caches).
 */
void *gm_ptr(struct guest_mem *gm, uint64_t gpa, uint64_t len, bool write);
int gm_read(struct guest_mem *gm, uint64_t gpa, void *dst, uint64_t len);	/* 0/-EFAULT */
int gm_write(struct guest_mem *gm, uint64_t gpa, const void *src, uint64_t len);

/* Called for every write through gm_ptr(write=true)/gm_write (the software CPU's cache). */
void gm_set_write_hook(struct guest_mem *gm, void (*hook)(void *opaque, uint64_t gpa,
							  uint64_t len), void *opaque);

#endif
