/*
 * multiboot.c: Multiboot Specification 0.6.96 (version 1) kernels, as kvm-unit-tests builds
 * them: the header in the first 8 KiB, the image loaded from the a.out-kludge addresses
 * (flag 16) or else from its ELF32 PT_LOAD segments, entered in 32-bit flat protected mode
 * with EAX=0x2BADB002 and EBX at the multiboot information (memory sizes, memory map,
 * command line, boot.initrd as the only module, loader name). No video mode is set (flag 2
 * is accepted and ignored, as QEMU does); no symbol tables, drives, APM or VBE data.
 * As in QEMU, the image may start at 4 KiB (kvm-unit-tests' realmode links at 0x8000) and the
 * information, memory map and command line follow it.
 */
#include <elf.h>
#include <errno.h>
#include <string.h>

#include "loader/loader_internal.h"
#include "vmm/guest_mem.h"

#define MB_HEADER_MAGIC 0x1badb002u
#define MB_BOOT_MAGIC 0x2badb002u
#define MB_SEARCH 8192
#define MB_FLAG_PAGE_ALIGN (1u << 0)
#define MB_FLAG_MEMORY_INFO (1u << 1)
#define MB_FLAG_VIDEO_MODE (1u << 2)
#define MB_FLAG_AOUT_KLUDGE (1u << 16)
#define MB_FLAGS_REQUIRED_MASK 0xffffu	/* bits a loader must understand */
#define MB_FLAGS_KNOWN (MB_FLAG_PAGE_ALIGN | MB_FLAG_MEMORY_INFO | MB_FLAG_VIDEO_MODE)

/* multiboot_info flags */
#define MBI_MEM (1u << 0)
#define MBI_CMDLINE (1u << 2)
#define MBI_MODS (1u << 3)
#define MBI_MMAP (1u << 6)
#define MBI_LOADER_NAME (1u << 9)

#define MBI_SIZE 88
/* The block after the image: info, its strings and module list, memory map, command line. */
#define MB_LOW_END 0x1000ULL	/* the image stays above the boot GDT */
#define MBI_LOADER_NAME_OFF 0x100
#define MBI_MODS_OFF 0x200
#define MBI_MOD_STRING_OFF 0x300
#define MBI_MOD_STRING_MAX 0xd00
#define MBI_MAP_OFF 0x1000
#define MBI_CMDLINE_OFF 0x2000
#define MBI_BLOCK_SIZE (MBI_CMDLINE_OFF + LOADER_CMDLINE_MAX)

/* Load the image described by the a.out kludge fields of the header at `off`. */
static int loader_mb_aout(struct loader_ctx *c, const uint8_t *img, size_t size, size_t off,
			  uint32_t *entry)
{
	const uint8_t *h = img + off;
	uint32_t header_addr, load_addr, load_end, bss_end;
	uint64_t file_off, len, mem_end;
	uint8_t *dst;
	int ret;

	if (off + 32 > size)
		return loader_error(c, -ENOEXEC, "kernel: truncated multiboot header");
	header_addr = loader_le32(h + 12);
	load_addr = loader_le32(h + 16);
	load_end = loader_le32(h + 20);
	bss_end = loader_le32(h + 24);
	if (header_addr < load_addr || header_addr - load_addr > off)
		return loader_error(c, -ENOEXEC, "kernel: multiboot header_addr/load_addr inconsistent");
	file_off = off - (header_addr - load_addr);
	if (load_end == 0) {
		len = size - file_off;
	} else {
		if (load_end < load_addr)
			return loader_error(c, -ENOEXEC, "kernel: multiboot load_end_addr below load_addr");
		len = load_end - load_addr;
		if (len > size - file_off)
			return loader_error(c, -ENOEXEC,
					    "kernel: multiboot load range extends past the file");
	}
	mem_end = (uint64_t)load_addr + len;
	if (bss_end) {
		if (bss_end < mem_end)
			return loader_error(c, -ENOEXEC, "kernel: multiboot bss_end_addr below load end");
		mem_end = bss_end;
	}
	if (mem_end == load_addr)
		return loader_error(c, -ENOEXEC, "kernel: multiboot image is empty");
	ret = loader_check_placement(c, "kernel", load_addr, mem_end - load_addr);
	if (ret)
		return ret;
	dst = gm_ptr(c->gm, load_addr, mem_end - load_addr, true);
	memcpy(dst, img + file_off, len);
	memset(dst + len, 0, mem_end - load_addr - len);
	c->kernel_end = (mem_end + 4095) & ~4095ULL;
	*entry = loader_le32(h + 28);
	return 0;
}

/* The memory info at `base`: mem_lower/upper from the map, mmap entries with their size fields. */
static int loader_mb_info(struct loader_ctx *c, uint64_t base)
{
	uint8_t mbi[MBI_SIZE] = { 0 }, mods[16] = { 0 };
	uint8_t mmap[LOADER_E820_MAX * 24];
	uint64_t lower = 0, upper = 0;
	uint32_t flags = MBI_MEM | MBI_CMDLINE | MBI_MMAP | MBI_LOADER_NAME;

	for (int i = 0; i < c->e820_count; i++) {
		const struct e820_entry *e = &c->e820[i];
		uint8_t *m = mmap + i * 24;

		if (e->type == E820_RAM && e->addr == 0)
			lower = e->size;
		if (e->type == E820_RAM && e->addr <= 0x100000 && e->addr + e->size > 0x100000)
			upper = e->addr + e->size - 0x100000;
		loader_put32(m, 20);
		loader_put64(m + 4, e->addr);
		loader_put64(m + 12, e->size);
		loader_put32(m + 20, e->type);
	}
	if (lower > 640 * 1024)
		lower = 640 * 1024;
	if (upper > 0xffffffffULL * 1024)
		upper = 0xffffffffULL * 1024;
	if (c->p->initrd) {
		const char *name = c->p->initrd;
		size_t len = strlen(name);

		if (len >= MBI_MOD_STRING_MAX)
			name += len - (MBI_MOD_STRING_MAX - 1);	/* keep the tail */
		if (gm_write(c->gm, base + MBI_MOD_STRING_OFF, name, strlen(name) + 1))
			return loader_error(c, -EFAULT, "guest memory too small for multiboot info");
		flags |= MBI_MODS;
		loader_put32(mods, (uint32_t)c->initrd_gpa);
		loader_put32(mods + 4, (uint32_t)(c->initrd_gpa + c->initrd_size));
		loader_put32(mods + 8, (uint32_t)(base + MBI_MOD_STRING_OFF));
		loader_put32(mbi + 20, 1);
		loader_put32(mbi + 24, (uint32_t)(base + MBI_MODS_OFF));
	}
	loader_put32(mbi, flags);
	loader_put32(mbi + 4, (uint32_t)(lower / 1024));
	loader_put32(mbi + 8, (uint32_t)(upper / 1024));
	loader_put32(mbi + 16, (uint32_t)(base + MBI_CMDLINE_OFF));
	loader_put32(mbi + 44, (uint32_t)c->e820_count * 24);
	loader_put32(mbi + 48, (uint32_t)(base + MBI_MAP_OFF));
	loader_put32(mbi + 64, (uint32_t)(base + MBI_LOADER_NAME_OFF));
	if (gm_write(c->gm, base, mbi, sizeof mbi) ||
	    gm_write(c->gm, base + MBI_LOADER_NAME_OFF, "khyve", 6) ||
	    gm_write(c->gm, base + MBI_MODS_OFF, mods, sizeof mods) ||
	    gm_write(c->gm, base + MBI_MAP_OFF, mmap, (uint64_t)c->e820_count * 24))
		return loader_error(c, -EFAULT, "guest memory too small for multiboot info");
	return 0;
}

int loader_multiboot(struct loader_ctx *c, const uint8_t *img, size_t size)
{
	size_t limit = size < MB_SEARCH ? size : MB_SEARCH, off;
	uint32_t flags = 0, entry = 0;
	uint64_t entry64, base = 0;
	int ret;

	for (off = 0; off + 12 <= limit; off += 4) {
		flags = loader_le32(img + off + 4);
		if (loader_le32(img + off) == MB_HEADER_MAGIC &&
		    (uint32_t)(MB_HEADER_MAGIC + flags + loader_le32(img + off + 8)) == 0)
			break;
	}
	if (off + 12 > limit)
		return 0;
	if (flags & MB_FLAGS_REQUIRED_MASK & ~MB_FLAGS_KNOWN)
		return loader_error(c, -ENOTSUP,
				    "kernel: multiboot header requires unsupported features (flags 0x%x)",
				    flags);
	c->low_end = MB_LOW_END;
	if (flags & MB_FLAG_AOUT_KLUDGE) {
		ret = loader_mb_aout(c, img, size, off, &entry);
	} else if (loader_is_elf(img, size) && img[EI_CLASS] == ELFCLASS32) {
		ret = loader_elf_load(c, img, size, &entry64);
		if (!ret && entry64 > UINT32_MAX)
			ret = loader_error(c, -ENOEXEC, "kernel: multiboot entry above 4 GiB");
		entry = (uint32_t)entry64;
	} else {
		ret = loader_error(c, -ENOEXEC,
				   "kernel: multiboot image is neither ELF32 nor uses the a.out kludge");
	}
	if (!ret) {
		base = c->kernel_end > LOADER_LOW_END ? c->kernel_end : LOADER_LOW_END;
		ret = loader_check_placement(c, "multiboot information", base, MBI_BLOCK_SIZE);
	}
	if (!ret) {
		c->cmdline_gpa = base + MBI_CMDLINE_OFF;
		c->kernel_end = base + MBI_BLOCK_SIZE;	/* the initrd goes above the block */
		ret = loader_load_initrd(c, 1ULL << 32);
	}
	if (!ret)
		ret = loader_write_cmdline(c, LOADER_CMDLINE_MAX - 1);
	if (!ret)
		ret = loader_mb_info(c, base);
	if (!ret)
		ret = loader_enter_flat32(c, entry);
	if (ret)
		return ret;
	c->bsp->regs.rax = MB_BOOT_MAGIC;
	c->bsp->regs.rbx = base;
	return 1;
}
