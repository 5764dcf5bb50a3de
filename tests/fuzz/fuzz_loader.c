/*
 * fuzz_loader.c: libFuzzer target for the image parsers of loader.h. The input is written
 * to a memfd and given to loader_load_kernel as boot.kernel over 64 MiB of guest memory
 * (bzImage with gzip/xz/zstd payloads, ELF64 vmlinux, PVH ELF, multiboot v1), alone for
 * inputs of even length and with itself as boot.initrd for odd ones (a compressed payload
 * costs a 64 MiB buffer, slow under ASan); then to loader_load_bootrom, as is and padded to
 * a whole number of 4 KiB pages. Guest memory is only ever reached through guest_mem.
 */
/* FUZZ_SOURCES: src/loader/*.c src/vmm/guest_mem.c src/x86/e820.c */
/* FUZZ_LIBS: -lz -llzma -lzstd */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "loader/loader.h"
#include "vmm/guest_mem.h"

#define FUZZ_RAM (64ULL << 20)
#define FUZZ_ROM_RAM (2ULL << 20)	/* enough RAM for the bootrom's copy at 0xE0000 */

static struct guest_mem *kernel_gm;

/* A memfd holding `size` bytes of data followed by `pad` zero bytes; -1 on failure. */
static int fuzz_memfd(const uint8_t *data, size_t size, size_t pad, char *path, size_t len)
{
	int fd = memfd_create("fuzz-image", MFD_CLOEXEC);

	if (fd < 0)
		return -1;
	if ((size && write(fd, data, size) != (ssize_t)size) ||
	    ftruncate(fd, (off_t)(size + pad)) != 0) {
		close(fd);
		return -1;
	}
	snprintf(path, len, "/proc/self/fd/%d", fd);
	return fd;
}

static void fuzz_kernel(const char *path, const char *initrd, const char *cmdline)
{
	struct loader_kernel_params p = {
		.kernel = path, .initrd = initrd, .cmdline = cmdline, .rsdp_gpa = 0xf0000,
	};
	struct boot_cpu_state bsp;
	char err[256];

	(void)loader_load_kernel(kernel_gm, &p, &bsp, err, sizeof err);
}

/* A fresh guest memory per ROM: a mapped ROM stays until guest_mem goes, and its buffer
 * is then ours to unmap (bootrom.c). */
static void fuzz_bootrom(const char *path)
{
	struct guest_mem *gm;
	struct boot_cpu_state bsp;
	char err[256];

	if (gm_create(&gm, FUZZ_ROM_RAM) != 0)
		return;
	if (loader_load_bootrom(gm, path, &bsp, err, sizeof err) == 0) {
		for (int i = 0; i < gm_region_count(gm); i++) {
			const struct gm_region *r = gm_region(gm, i);

			if (r->kind == GM_ROM)
				munmap(r->host, r->size);
		}
	}
	gm_destroy(gm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	size_t pad;
	int fd;

	if (!kernel_gm && gm_create(&kernel_gm, FUZZ_RAM) != 0)
		return 0;
	fd = fuzz_memfd(data, size, 0, path, sizeof path);
	if (fd < 0)
		return 0;
	if (size % 2 == 0)
		fuzz_kernel(path, NULL, NULL);
	else
		fuzz_kernel(path, path, "console=ttyS0 root=/dev/ram0");
	fuzz_bootrom(path);
	close(fd);

	pad = (4096 - size % 4096) % 4096;
	if (pad || size == 0) {
		fd = fuzz_memfd(data, size, size ? pad : 4096, path, sizeof path);
		if (fd < 0)
			return 0;
		fuzz_bootrom(path);
		close(fd);
	}
	return 0;
}
