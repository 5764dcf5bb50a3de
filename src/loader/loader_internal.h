/*
 * loader_internal.h: what the kernel-format loaders share: the low-memory layout of the
 * boot structures khyve writes, a loading context, the ELF program-header loader, initrd
 * and command-line placement, and the two entry states (32-bit flat, 64-bit long mode).
 */
#ifndef KHYVE_LOADER_INTERNAL_H
#define KHYVE_LOADER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loader/loader.h"

/* Low memory used by the loaders; a kernel image may not overlap [0, LOADER_LOW_END). */
#define LOADER_GDT_GPA 0x500ULL
#define LOADER_STACK_TOP 0x7000ULL	/* initial RSP/ESP, growing down */
#define LOADER_INFO_GPA 0x7000ULL	/* zero page, hvm_start_info or multiboot info */
#define LOADER_MAP_GPA 0x8000ULL	/* memory map for PVH / multiboot */
#define LOADER_PML4_GPA 0x9000ULL
#define LOADER_PDPT_GPA 0xa000ULL
#define LOADER_PD_GPA 0xb000ULL	/* four page directories: 4 GiB in 2 MiB pages */
#define LOADER_CMDLINE_GPA 0x20000ULL
#define LOADER_CMDLINE_MAX 0x10000ULL	/* bytes including the NUL */
#define LOADER_LOW_END 0x30000ULL

#define LOADER_KERNEL_MAX (512ULL << 20)	/* largest kernel file or decompressed image */
#define LOADER_E820_MAX 128

struct loader_ctx {
	struct guest_mem *gm;
	const struct loader_kernel_params *p;
	struct boot_cpu_state *bsp;
	char *err;
	size_t errlen;
	struct e820_entry e820[LOADER_E820_MAX];
	int e820_count;
	uint64_t kernel_end;		/* end of the highest loaded byte (page aligned) */
	uint64_t initrd_gpa, initrd_size;
	uint64_t low_end;		/* images may not start below it; 0: LOADER_LOW_END */
	uint64_t cmdline_gpa;		/* where loader_write_cmdline writes; 0: LOADER_CMDLINE_GPA */
};

/* Format the one-line message into ctx->err and return `ret` (a -errno). */
int loader_error(struct loader_ctx *c, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Read a whole file of at most `max` bytes into a malloc'd buffer. */
int loader_read_file(struct loader_ctx *c, const char *what, const char *path, uint64_t max,
		     uint8_t **data, size_t *size);

/* [gpa, gpa+len) lies in guest RAM of type E820_RAM and above ctx->low_end (LOADER_LOW_END). */
int loader_check_placement(struct loader_ctx *c, const char *what, uint64_t gpa, uint64_t len);

/*
 * Load the PT_LOAD segments of an ELF32 (EM_386) or ELF64 (EM_X86_64) image at their
 * physical addresses and return the entry point translated to a physical address.
 */
int loader_elf_load(struct loader_ctx *c, const uint8_t *img, size_t size, uint64_t *entry);
/* 1 and *entry when the image is an ELF with a Xen PVH note (XEN_ELFNOTE_PHYS32_ENTRY),
 * 0 when it has none, -errno (message in ctx) when its headers are malformed. */
int loader_elf_pvh_entry(struct loader_ctx *c, const uint8_t *img, size_t size,
			 uint32_t *entry);
bool loader_is_elf(const uint8_t *img, size_t size);

/* Read boot.initrd (if any) into the highest free RAM below `limit`, page aligned. */
int loader_load_initrd(struct loader_ctx *c, uint64_t limit);
/* Write boot.cmdline at ctx->cmdline_gpa (LOADER_CMDLINE_GPA); `max` is the longest accepted (no NUL). */
int loader_write_cmdline(struct loader_ctx *c, uint64_t max);

/* Entry states. Both write a flat GDT at LOADER_GDT_GPA; long mode also writes page
 * tables identity-mapping the first 4 GiB. */
int loader_enter_flat32(struct loader_ctx *c, uint32_t entry);
int loader_enter_long64(struct loader_ctx *c, uint64_t entry);

/* The formats. `img` stays owned by the caller. */
int loader_linux64(struct loader_ctx *c, const uint8_t *img, size_t size);
int loader_bzimage(struct loader_ctx *c, const uint8_t *img, size_t size);
int loader_pvh(struct loader_ctx *c, const uint8_t *img, size_t size, uint32_t entry);
/* 1 when the image has a multiboot v1 header and was loaded, 0 when it has none. */
int loader_multiboot(struct loader_ctx *c, const uint8_t *img, size_t size);

/* Little-endian field access on byte buffers. */
static inline uint16_t loader_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t loader_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}
static inline uint64_t loader_le64(const uint8_t *p)
{
	return loader_le32(p) | (uint64_t)loader_le32(p + 4) << 32;
}
static inline void loader_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static inline void loader_put32(uint8_t *p, uint32_t v)
{
	loader_put16(p, (uint16_t)v);
	loader_put16(p + 2, (uint16_t)(v >> 16));
}
static inline void loader_put64(uint8_t *p, uint64_t v)
{
	loader_put32(p, (uint32_t)v);
	loader_put32(p + 4, (uint32_t)(v >> 32));
}

#endif
