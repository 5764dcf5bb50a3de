/*
 * pvh.c: the Xen PVH direct boot ABI (xen/include/public/arch-x86/hvm/start_info.h and
 * docs/misc/pvh.pandoc), as QEMU and cloud-hypervisor use it without Xen: the ELF is loaded
 * at its physical addresses and entered at XEN_ELFNOTE_PHYS32_ENTRY in 32-bit protected
 * mode, paging off, with EBX pointing at struct hvm_start_info (version 1: memory map,
 * command line, the initrd as module 0, RSDP).
 */
#include <errno.h>
#include <string.h>

#include "loader/loader_internal.h"
#include "vmm/guest_mem.h"

#define HVM_START_MAGIC 0x336ec578u
#define HVM_START_INFO_SIZE 0x38
#define HVM_MODLIST_GPA (LOADER_INFO_GPA + 0x100)
#define HVM_MEMMAP_ENTRY_SIZE 24

int loader_pvh(struct loader_ctx *c, const uint8_t *img, size_t size, uint32_t entry)
{
	uint8_t si[HVM_START_INFO_SIZE] = { 0 }, mod[32] = { 0 };
	uint8_t map[LOADER_E820_MAX * HVM_MEMMAP_ENTRY_SIZE] = { 0 };
	uint64_t kentry;
	int ret;

	ret = loader_elf_load(c, img, size, &kentry);
	if (!ret)
		ret = loader_load_initrd(c, 1ULL << 32);
	if (!ret)
		ret = loader_write_cmdline(c, LOADER_CMDLINE_MAX - 1);
	if (ret)
		return ret;

	for (int i = 0; i < c->e820_count; i++) {
		uint8_t *e = map + i * HVM_MEMMAP_ENTRY_SIZE;

		loader_put64(e, c->e820[i].addr);
		loader_put64(e + 8, c->e820[i].size);
		loader_put32(e + 16, c->e820[i].type);	/* XEN_HVM_MEMMAP_TYPE_* = E820 types */
	}
	if (c->p->initrd) {
		loader_put64(mod, c->initrd_gpa);
		loader_put64(mod + 8, c->initrd_size);
	}
	loader_put32(si, HVM_START_MAGIC);
	loader_put32(si + 0x04, 1);			/* version */
	loader_put32(si + 0x0c, c->p->initrd ? 1 : 0);	/* nr_modules */
	loader_put64(si + 0x10, c->p->initrd ? HVM_MODLIST_GPA : 0);
	loader_put64(si + 0x18, LOADER_CMDLINE_GPA);
	loader_put64(si + 0x20, c->p->rsdp_gpa);
	loader_put64(si + 0x28, LOADER_MAP_GPA);
	loader_put32(si + 0x30, (uint32_t)c->e820_count);
	if (gm_write(c->gm, LOADER_INFO_GPA, si, sizeof si) ||
	    gm_write(c->gm, HVM_MODLIST_GPA, mod, sizeof mod) ||
	    gm_write(c->gm, LOADER_MAP_GPA, map, (uint64_t)c->e820_count * HVM_MEMMAP_ENTRY_SIZE))
		return loader_error(c, -EFAULT, "guest memory too small for the PVH start info");
	ret = loader_enter_flat32(c, entry);
	if (!ret)
		c->bsp->regs.rbx = LOADER_INFO_GPA;
	return ret;
}
