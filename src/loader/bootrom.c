/*
 * bootrom.c: -l bootrom,FILE. The image is mapped read-only so that its last byte is at
 * 0xFFFFFFFF (as bhyve's bootrom.c and QEMU's pflash/-bios do), and the boot CPU gets the
 * architectural reset state (Intel SDM vol. 3A §9.1.4: CS F000 base FFFF0000, IP FFF0).
 * Writable variable stores (OVMF VARS) are not handled here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader/loader.h"
#include "vmm/guest_mem.h"

#define BOOTROM_MAX (16ULL << 20)
#define BOOTROM_LOW_ALIAS (128ULL << 10)
#define BOOTROM_LOW_END 0x100000ULL

void loader_reset_state(struct boot_cpu_state *bsp)
{
	struct accel_segment data = {
		.limit = 0xffff, .type = 0x3, .present = 1, .s = 1,
	};

	memset(bsp, 0, sizeof *bsp);
	bsp->regs.rip = 0xfff0;
	bsp->regs.rflags = 0x2;
	bsp->regs.rdx = 0x600;		/* processor signature, as after RESET */
	bsp->sregs.cs = (struct accel_segment){
		.base = 0xffff0000, .limit = 0xffff, .selector = 0xf000, .type = 0xb,
		.present = 1, .s = 1,
	};
	bsp->sregs.ds = data;
	bsp->sregs.es = data;
	bsp->sregs.fs = data;
	bsp->sregs.gs = data;
	bsp->sregs.ss = data;
	bsp->sregs.tr = (struct accel_segment){ .limit = 0xffff, .type = 0xb, .present = 1 };
	bsp->sregs.ldt = (struct accel_segment){ .limit = 0xffff, .type = 0x2, .present = 1 };
	bsp->sregs.gdt.limit = 0xffff;
	bsp->sregs.idt.limit = 0xffff;
	bsp->sregs.cr0 = 0x60000010;	/* CD, NW, ET */
	bsp->sregs.apic_base = 0xfee00000ULL | 0x900;	/* enabled, BSP */
}

static int bootrom_error(char *err, size_t errlen, int ret, const char *path, const char *what)
{
	if (err && errlen)
		snprintf(err, errlen, "bootrom %s: %s", path, what);
	return ret;
}

int loader_load_bootrom(struct guest_mem *gm, const char *path, struct boot_cpu_state *bsp,
			char *err, size_t errlen)
{
	struct stat st;
	uint8_t *buf;
	uint64_t size, alias;
	size_t done = 0;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return bootrom_error(err, errlen, -errno, path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return bootrom_error(err, errlen, -EINVAL, path, "not a regular file");
	}
	size = (uint64_t)st.st_size;
	if (size == 0 || size % 4096 != 0 || size > BOOTROM_MAX) {
		close(fd);
		return bootrom_error(err, errlen, -EINVAL, path,
				     "size must be a non-zero multiple of 4 KiB, at most 16 MiB");
	}
	/*
	 * Page-aligned anonymous memory, as accelerator memory slots want it. guest_mem keeps
	 * the region until it is destroyed and does not unmap it; it lives as long as the
	 * process (munmap(host, size) releases it).
	 */
	buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		close(fd);
		return bootrom_error(err, errlen, -ENOMEM, path, "out of memory");
	}
	while (done < size) {
		ssize_t r = read(fd, buf + done, size - done);

		if (r <= 0) {
			ret = r < 0 ? -errno : -EIO;
			close(fd);
			munmap(buf, size);
			return bootrom_error(err, errlen, ret, path, "read failed");
		}
		done += (size_t)r;
	}
	close(fd);

	ret = gm_add_rom(gm, (1ULL << 32) - size, size, buf);
	if (ret) {
		munmap(buf, size);
		return bootrom_error(err, errlen, ret, path,
				     "cannot map it below 4 GiB (overlaps other memory)");
	}
	/*
	 * The chipset also shows the image's last 128 KiB at 0xE0000-0xFFFFF, where SeaBIOS is
	 * linked to run. guest_mem keeps that range as ordinary RAM (the "simple" PAM model of
	 * firmware-platform.md §1.4), so the tail is copied there instead of aliased.
	 */
	alias = size < BOOTROM_LOW_ALIAS ? size : BOOTROM_LOW_ALIAS;
	if (gm_write(gm, BOOTROM_LOW_END - alias, buf + size - alias, alias))
		return bootrom_error(err, errlen, -EFAULT, path,
				     "guest RAM too small for the copy at 0xE0000-0xFFFFF");
	loader_reset_state(bsp);
	return 0;
}
