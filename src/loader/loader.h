/*
 * loader.h: putting a guest's first code into memory and describing the boot vCPU's state.
 * Direct kernel boot (config boot.kernel, boot.initrd, boot.cmdline): Linux bzImage (64-bit
 * boot protocol; the payload is decompressed on the host), ELF vmlinux (64-bit entry), ELF
 * with a Xen PVH note (32-bit entry), multiboot v1. Boot ROMs (-l bootrom): mapped read-only
 * so the last byte is at 0xFFFFFFFF, the BSP starts at the reset vector.
 */
#ifndef KHYVE_LOADER_H
#define KHYVE_LOADER_H

#include <stddef.h>
#include <stdint.h>
#include "accel/accel.h"
#include "x86/e820.h"

struct guest_mem;

struct boot_cpu_state {
	struct accel_regs regs;
	struct accel_sregs sregs;
};

struct loader_kernel_params {
	const char *kernel;
	const char *initrd;	/* NULL for none */
	const char *cmdline;	/* NULL for empty */
	const struct e820_entry *e820;
	int e820_count;
	uint64_t rsdp_gpa;	/* 0 when no ACPI tables */
};

/* Load the kernel and fill the BSP state. 0 or -errno with a one-line message in err. */
int loader_load_kernel(struct guest_mem *gm, const struct loader_kernel_params *p,
		       struct boot_cpu_state *bsp, char *err, size_t errlen);

/*
 * Read a ROM image (size a multiple of 4 KiB, at most 16 MiB), map it so its last byte is at
 * 4 GiB - 1 (and, for images up to 128 KiB, also its last 128 KiB at 0xE0000-0xFFFFF as the
 * chipset aliases it), and fill the reset state. The buffer is owned by guest_mem after this.
 */
int loader_load_bootrom(struct guest_mem *gm, const char *path, struct boot_cpu_state *bsp,
			char *err, size_t errlen);

/* The architectural reset state (CS=F000 base FFFF0000, IP=FFF0). */
void loader_reset_state(struct boot_cpu_state *bsp);

#endif
