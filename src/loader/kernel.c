/*
 * kernel.c: direct kernel boot. Detects the format (Linux bzImage, multiboot v1, ELF with a
 * Xen PVH note, ELF64 vmlinux, in QEMU's order), and holds what the formats share: ELF
 * program-header loading (ELF spec "Program Header"), initrd and command-line placement,
 * and the 32-bit flat and 64-bit long-mode entry states (Intel SDM vol. 3A §9.8-9.9).
 * Every size and offset taken from a file is checked before use.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader/loader_internal.h"
#include "vmm/guest_mem.h"

#define LOADER_PAGE 4096ULL
#define XEN_ELFNOTE_PHYS32_ENTRY 18

int loader_error(struct loader_ctx *c, int ret, const char *fmt, ...)
{
	va_list ap;

	if (c->err && c->errlen) {
		va_start(ap, fmt);
		vsnprintf(c->err, c->errlen, fmt, ap);
		va_end(ap);
	}
	return ret;
}

int loader_read_file(struct loader_ctx *c, const char *what, const char *path, uint64_t max,
		     uint8_t **data, size_t *size)
{
	struct stat st;
	uint8_t *buf;
	size_t done = 0;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return loader_error(c, -errno, "%s %s: %s", what, path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return loader_error(c, -EINVAL, "%s %s: not a regular file", what, path);
	}
	if ((uint64_t)st.st_size > max) {
		close(fd);
		return loader_error(c, -EFBIG, "%s %s: too large (%lld bytes, at most %llu)", what,
				    path, (long long)st.st_size, (unsigned long long)max);
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		close(fd);
		return loader_error(c, -ENOMEM, "%s %s: out of memory", what, path);
	}
	while (done < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + done, (size_t)st.st_size - done);

		if (r <= 0) {
			ret = r < 0 ? -errno : -EIO;
			close(fd);
			free(buf);
			return loader_error(c, ret, "%s %s: read failed", what, path);
		}
		done += (size_t)r;
	}
	close(fd);
	*data = buf;
	*size = done;
	return 0;
}

int loader_check_placement(struct loader_ctx *c, const char *what, uint64_t gpa, uint64_t len)
{
	uint64_t end = gpa + len, low = c->low_end ? c->low_end : LOADER_LOW_END;

	if (end < gpa)
		return loader_error(c, -EINVAL, "%s: address range wraps", what);
	if (gpa < low)
		return loader_error(c, -EINVAL,
				    "%s at 0x%llx overlaps the boot structures below 0x%llx", what,
				    (unsigned long long)gpa, (unsigned long long)low);
	for (int i = 0; i < c->e820_count; i++) {
		const struct e820_entry *e = &c->e820[i];

		if (e->type == E820_RAM && gpa >= e->addr && end <= e->addr + e->size &&
		    gm_ptr(c->gm, gpa, len, false))
			return 0;
	}
	return loader_error(c, -ERANGE, "%s [0x%llx-0x%llx) is not in guest RAM", what,
			    (unsigned long long)gpa, (unsigned long long)end);
}

bool loader_is_elf(const uint8_t *img, size_t size)
{
	return size >= EI_NIDENT && memcmp(img, ELFMAG, SELFMAG) == 0;
}

/* One program header, widened to 64 bits. */
struct loader_phdr {
	uint32_t type;
	uint64_t offset, vaddr, paddr, filesz, memsz;
};

struct loader_elf {
	bool is64;
	uint64_t entry, phoff;
	uint16_t phentsize, phnum;
};

static int loader_elf_parse(struct loader_ctx *c, const uint8_t *img, size_t size,
			    struct loader_elf *elf)
{
	if (!loader_is_elf(img, size))
		return loader_error(c, -ENOEXEC, "kernel: not an ELF image");
	if (img[EI_DATA] != ELFDATA2LSB)
		return loader_error(c, -ENOEXEC, "kernel: ELF image is not little-endian");
	if (img[EI_CLASS] == ELFCLASS64) {
		Elf64_Ehdr eh;

		if (size < sizeof eh)
			return loader_error(c, -ENOEXEC, "kernel: truncated ELF header");
		memcpy(&eh, img, sizeof eh);
		if (eh.e_machine != EM_X86_64)
			return loader_error(c, -ENOEXEC, "kernel: ELF64 image is not x86-64");
		elf->is64 = true;
		elf->entry = eh.e_entry;
		elf->phoff = eh.e_phoff;
		elf->phentsize = eh.e_phentsize;
		elf->phnum = eh.e_phnum;
		if (elf->phentsize < sizeof(Elf64_Phdr))
			return loader_error(c, -ENOEXEC, "kernel: bad ELF program header size");
	} else if (img[EI_CLASS] == ELFCLASS32) {
		Elf32_Ehdr eh;

		if (size < sizeof eh)
			return loader_error(c, -ENOEXEC, "kernel: truncated ELF header");
		memcpy(&eh, img, sizeof eh);
		if (eh.e_machine != EM_386)
			return loader_error(c, -ENOEXEC, "kernel: ELF32 image is not i386");
		elf->is64 = false;
		elf->entry = eh.e_entry;
		elf->phoff = eh.e_phoff;
		elf->phentsize = eh.e_phentsize;
		elf->phnum = eh.e_phnum;
		if (elf->phentsize < sizeof(Elf32_Phdr))
			return loader_error(c, -ENOEXEC, "kernel: bad ELF program header size");
	} else {
		return loader_error(c, -ENOEXEC, "kernel: unknown ELF class %u", img[EI_CLASS]);
	}
	if (elf->phnum == 0 || elf->phnum == PN_XNUM)
		return loader_error(c, -ENOEXEC, "kernel: ELF image has no usable program headers");
	if (elf->phoff > size || (uint64_t)elf->phnum * elf->phentsize > size - elf->phoff)
		return loader_error(c, -ENOEXEC, "kernel: ELF program headers lie outside the file");
	return 0;
}

static void loader_elf_phdr(const uint8_t *img, const struct loader_elf *elf, int i,
			    struct loader_phdr *ph)
{
	const uint8_t *p = img + elf->phoff + (uint64_t)i * elf->phentsize;

	if (elf->is64) {
		Elf64_Phdr h;

		memcpy(&h, p, sizeof h);
		*ph = (struct loader_phdr){ h.p_type, h.p_offset, h.p_vaddr, h.p_paddr,
					    h.p_filesz, h.p_memsz };
	} else {
		Elf32_Phdr h;

		memcpy(&h, p, sizeof h);
		*ph = (struct loader_phdr){ h.p_type, h.p_offset, h.p_vaddr, h.p_paddr,
					    h.p_filesz, h.p_memsz };
	}
}

int loader_elf_load(struct loader_ctx *c, const uint8_t *img, size_t size, uint64_t *entry)
{
	struct loader_elf elf;
	struct loader_phdr ph;
	bool found = false, have_entry = false;
	uint64_t end = 0;
	int ret;

	ret = loader_elf_parse(c, img, size, &elf);
	if (ret)
		return ret;
	/* Check every segment before writing anything. */
	for (int i = 0; i < elf.phnum; i++) {
		loader_elf_phdr(img, &elf, i, &ph);
		if (ph.type != PT_LOAD || ph.memsz == 0)
			continue;
		if (ph.filesz > ph.memsz)
			return loader_error(c, -ENOEXEC, "kernel: ELF segment %d: p_filesz > p_memsz", i);
		if (ph.offset > size || ph.filesz > size - ph.offset)
			return loader_error(c, -ENOEXEC,
					    "kernel: ELF segment %d lies outside the file", i);
		ret = loader_check_placement(c, "kernel segment", ph.paddr, ph.memsz);
		if (ret)
			return ret;
		found = true;
		if (ph.paddr + ph.memsz > end)
			end = ph.paddr + ph.memsz;
		/* The entry may be given as a virtual or a physical address. */
		if (!have_entry && elf.entry - ph.vaddr < ph.memsz) {
			*entry = elf.entry - ph.vaddr + ph.paddr;
			have_entry = true;
		} else if (!have_entry && elf.entry - ph.paddr < ph.memsz) {
			*entry = elf.entry;
			have_entry = true;
		}
	}
	if (!found)
		return loader_error(c, -ENOEXEC, "kernel: ELF image has no loadable segment");
	for (int i = 0; i < elf.phnum; i++) {
		uint8_t *dst;

		loader_elf_phdr(img, &elf, i, &ph);
		if (ph.type != PT_LOAD || ph.memsz == 0)
			continue;
		dst = gm_ptr(c->gm, ph.paddr, ph.memsz, true);
		memcpy(dst, img + ph.offset, ph.filesz);
		memset(dst + ph.filesz, 0, ph.memsz - ph.filesz);
	}
	if (end > c->kernel_end)
		c->kernel_end = (end + LOADER_PAGE - 1) & ~(LOADER_PAGE - 1);
	if (!have_entry)
		*entry = elf.entry;
	return 0;
}

int loader_elf_pvh_entry(struct loader_ctx *c, const uint8_t *img, size_t size,
			 uint32_t *entry)
{
	struct loader_elf elf;
	struct loader_phdr ph;
	int ret;

	ret = loader_elf_parse(c, img, size, &elf);
	if (ret)
		return ret;
	for (int i = 0; i < elf.phnum; i++) {
		uint64_t off, end;

		loader_elf_phdr(img, &elf, i, &ph);
		if (ph.type != PT_NOTE)
			continue;
		if (ph.offset > size || ph.filesz > size - ph.offset)
			return loader_error(c, -ENOEXEC, "kernel: ELF note segment outside the file");
		off = ph.offset;
		end = ph.offset + ph.filesz;
		while (end - off >= 12) {
			uint32_t namesz = loader_le32(img + off), descsz = loader_le32(img + off + 4);
			uint32_t type = loader_le32(img + off + 8);
			uint64_t name = off + 12, desc = name + (((uint64_t)namesz + 3) & ~3ULL);
			uint64_t next = desc + (((uint64_t)descsz + 3) & ~3ULL);

			if (next > end)
				return loader_error(c, -ENOEXEC, "kernel: malformed ELF note");
			if (type == XEN_ELFNOTE_PHYS32_ENTRY && namesz == 4 &&
			    memcmp(img + name, "Xen", 4) == 0) {
				uint64_t e;

				if (descsz == 4)
					e = loader_le32(img + desc);
				else if (descsz == 8)
					e = loader_le64(img + desc);
				else
					return loader_error(c, -ENOEXEC,
							    "kernel: bad PVH entry note size %u",
							    descsz);
				if (e > UINT32_MAX)
					return loader_error(c, -ENOEXEC,
							    "kernel: PVH entry 0x%llx above 4 GiB",
							    (unsigned long long)e);
				*entry = (uint32_t)e;
				return 1;
			}
			off = next;
		}
	}
	return 0;
}

int loader_load_initrd(struct loader_ctx *c, uint64_t limit)
{
	const char *path = c->p->initrd;
	struct stat st;
	uint64_t size, floor, gpa = 0;
	uint8_t *dst;
	bool placed = false;
	int fd, ret = 0;

	if (!path)
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return loader_error(c, -errno, "initrd %s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return loader_error(c, -EINVAL, "initrd %s: not a regular file", path);
	}
	size = (uint64_t)st.st_size;
	floor = c->kernel_end > LOADER_LOW_END ? c->kernel_end : LOADER_LOW_END;
	/* Highest page-aligned spot in RAM below `limit` and above the kernel. */
	for (int i = c->e820_count - 1; i >= 0 && !placed; i--) {
		const struct e820_entry *e = &c->e820[i];
		uint64_t top = e->addr + e->size, base = e->addr > floor ? e->addr : floor;

		if (e->type != E820_RAM)
			continue;
		if (top > limit)
			top = limit;
		if (top <= base || top - base < size)
			continue;
		gpa = (top - size) & ~(LOADER_PAGE - 1);
		placed = gpa >= base;
	}
	if (!placed) {
		close(fd);
		return loader_error(c, -ENOMEM,
				    "initrd %s (%llu bytes) does not fit in guest RAM between 0x%llx and 0x%llx",
				    path, (unsigned long long)size, (unsigned long long)floor,
				    (unsigned long long)limit);
	}
	dst = gm_ptr(c->gm, gpa, size, true);
	if (!dst && size) {
		close(fd);
		return loader_error(c, -EFAULT, "initrd %s: guest memory at 0x%llx", path,
				    (unsigned long long)gpa);
	}
	for (uint64_t done = 0; done < size;) {
		ssize_t r = read(fd, dst + done, size - done);

		if (r <= 0) {
			ret = loader_error(c, r < 0 ? -errno : -EIO, "initrd %s: read failed", path);
			break;
		}
		done += (uint64_t)r;
	}
	close(fd);
	c->initrd_gpa = gpa;
	c->initrd_size = size;
	return ret;
}

int loader_write_cmdline(struct loader_ctx *c, uint64_t max)
{
	const char *s = c->p->cmdline ? c->p->cmdline : "";
	size_t len = strlen(s);

	if (max > LOADER_CMDLINE_MAX - 1)
		max = LOADER_CMDLINE_MAX - 1;
	if (len > max)
		return loader_error(c, -E2BIG, "kernel command line too long (%zu bytes, at most %llu)",
				    len, (unsigned long long)max);
	if (gm_write(c->gm, c->cmdline_gpa ? c->cmdline_gpa : LOADER_CMDLINE_GPA, s, len + 1))
		return loader_error(c, -EFAULT, "guest memory too small for the command line");
	return 0;
}

static struct accel_segment loader_seg(uint16_t sel, uint8_t type, bool code64)
{
	return (struct accel_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = type, .present = 1,
		.s = 1, .g = 1, .l = code64, .db = !code64,
	};
}

/* GDT: null, null, code at 0x10 (the boot protocol's __BOOT_CS), data at 0x18 (__BOOT_DS). */
static int loader_write_gdt(struct loader_ctx *c, bool long_mode)
{
	uint8_t gdt[32] = { 0 };

	loader_put64(gdt + 0x10, long_mode ? 0x00af9b000000ffffULL : 0x00cf9b000000ffffULL);
	loader_put64(gdt + 0x18, 0x00cf93000000ffffULL);
	if (gm_write(c->gm, LOADER_GDT_GPA, gdt, sizeof gdt))
		return loader_error(c, -EFAULT, "guest memory too small for the boot GDT");

	memset(c->bsp, 0, sizeof *c->bsp);
	c->bsp->sregs.cs = loader_seg(0x10, 0xb, long_mode);
	c->bsp->sregs.ds = loader_seg(0x18, 0x3, false);
	c->bsp->sregs.es = c->bsp->sregs.ds;
	c->bsp->sregs.fs = c->bsp->sregs.ds;
	c->bsp->sregs.gs = c->bsp->sregs.ds;
	c->bsp->sregs.ss = c->bsp->sregs.ds;
	/* A busy 32-bit (in long mode: 64-bit) TSS at 0, limit 0x67, as the PVH ABI states. */
	c->bsp->sregs.tr = (struct accel_segment){ .limit = 0x67, .type = 0xb, .present = 1 };
	c->bsp->sregs.ldt = (struct accel_segment){ .limit = 0xffff, .type = 0x2, .present = 1 };
	c->bsp->sregs.gdt = (struct accel_dtable){ .base = LOADER_GDT_GPA, .limit = sizeof gdt - 1 };
	c->bsp->sregs.apic_base = 0xfee00000ULL | 0x900;	/* enabled, BSP */
	c->bsp->regs.rflags = 0x2;
	c->bsp->regs.rsp = LOADER_STACK_TOP;
	return 0;
}

int loader_enter_flat32(struct loader_ctx *c, uint32_t entry)
{
	int ret = loader_write_gdt(c, false);

	if (ret)
		return ret;
	c->bsp->sregs.cr0 = 0x11;	/* PE, ET; paging off */
	c->bsp->regs.rip = entry;
	return 0;
}

int loader_enter_long64(struct loader_ctx *c, uint64_t entry)
{
	uint8_t pml4[LOADER_PAGE] = { 0 }, pdpt[LOADER_PAGE] = { 0 }, pd[LOADER_PAGE];
	int ret = loader_write_gdt(c, true);

	if (ret)
		return ret;
	loader_put64(pml4, LOADER_PDPT_GPA | 3);
	for (uint64_t i = 0; i < 4; i++) {
		loader_put64(pdpt + i * 8, (LOADER_PD_GPA + i * LOADER_PAGE) | 3);
		for (uint64_t j = 0; j < 512; j++)	/* present, writable, 2 MiB page */
			loader_put64(pd + j * 8, ((i * 512 + j) << 21) | 0x83);
		if (gm_write(c->gm, LOADER_PD_GPA + i * LOADER_PAGE, pd, sizeof pd))
			return loader_error(c, -EFAULT, "guest memory too small for page tables");
	}
	if (gm_write(c->gm, LOADER_PML4_GPA, pml4, sizeof pml4) ||
	    gm_write(c->gm, LOADER_PDPT_GPA, pdpt, sizeof pdpt))
		return loader_error(c, -EFAULT, "guest memory too small for page tables");
	c->bsp->sregs.cr0 = 0x80000011;	/* PG, ET, PE */
	c->bsp->sregs.cr3 = LOADER_PML4_GPA;
	c->bsp->sregs.cr4 = 0x20;		/* PAE */
	c->bsp->sregs.efer = 0x500;		/* LME, LMA */
	c->bsp->regs.rip = entry;
	return 0;
}

int loader_load_kernel(struct guest_mem *gm, const struct loader_kernel_params *p,
		       struct boot_cpu_state *bsp, char *err, size_t errlen)
{
	struct loader_ctx *c;
	uint8_t *img = NULL;
	size_t size = 0;
	uint32_t pvh_entry;
	int ret;

	if (err && errlen)
		err[0] = '\0';
	c = calloc(1, sizeof *c);
	if (!c) {
		if (err && errlen)
			snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	*c = (struct loader_ctx){ .gm = gm, .p = p, .bsp = bsp, .err = err, .errlen = errlen };
	if (!p->kernel) {
		ret = loader_error(c, -EINVAL, "no kernel given");
		goto out;
	}
	if (p->e820_count > 0) {
		if (p->e820_count > LOADER_E820_MAX) {
			ret = loader_error(c, -E2BIG, "memory map has too many entries");
			goto out;
		}
		memcpy(c->e820, p->e820, sizeof(*p->e820) * p->e820_count);
		c->e820_count = p->e820_count;
	} else {
		ret = e820_build(gm, 0, 0, c->e820, LOADER_E820_MAX);
		if (ret < 0) {
			ret = loader_error(c, ret, "cannot build the memory map");
			goto out;
		}
		c->e820_count = ret;
	}
	ret = loader_read_file(c, "kernel", p->kernel, LOADER_KERNEL_MAX, &img, &size);
	if (ret)
		goto out;

	if (size >= 0x206 && memcmp(img + 0x202, "HdrS", 4) == 0) {
		ret = loader_bzimage(c, img, size);
		goto out;
	}
	ret = loader_multiboot(c, img, size);
	if (ret != 0) {
		ret = ret < 0 ? ret : 0;
		goto out;
	}
	if (!loader_is_elf(img, size)) {
		ret = loader_error(c, -ENOEXEC,
				   "kernel %s: unknown format (not a bzImage, multiboot or ELF image)",
				   p->kernel);
		goto out;
	}
	ret = loader_elf_pvh_entry(c, img, size, &pvh_entry);
	if (ret > 0)
		ret = loader_pvh(c, img, size, pvh_entry);
	else if (ret == 0 && img[EI_CLASS] == ELFCLASS64)
		ret = loader_linux64(c, img, size);
	else if (ret == 0)
		ret = loader_error(c, -ENOEXEC,
				   "kernel %s: 32-bit ELF without a PVH note or multiboot header",
				   p->kernel);
out:
	free(img);
	free(c);
	return ret;
}
