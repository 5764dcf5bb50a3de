/*
 * test_loader.c: direct kernel boot and bootrom loading on synthetic images built here
 * (ELF64, PVH ELF32/ELF64, multiboot ELF32 and a.out kludge, bzImages with gzip, xz and
 * zstd payloads), plus hostile variants that must fail cleanly, and Debian's kernel when
 * the test data is installed (reported, never required).
 */
#include <elf.h>
#include <errno.h>
#include <glob.h>
#include <lzma.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "loader/loader.h"
#include "unit.h"
#include "vmm/guest_mem.h"

#define MiB (1ULL << 20)

struct img {
	uint8_t *b;
	size_t len;
};

static void img_put(struct img *m, size_t off, const void *p, size_t n)
{
	if (off + n > m->len) {
		m->b = realloc(m->b, off + n);
		memset(m->b + m->len, 0, off + n - m->len);
		m->len = off + n;
	}
	memcpy(m->b + off, p, n);
}

static void put32(struct img *m, size_t off, uint32_t v)
{
	img_put(m, off, &v, 4);
}

static char *write_tmp(const void *p, size_t n)
{
	char *path = strdup("/tmp/khyve-test-loader-XXXXXX");
	int fd = mkstemp(path);

	if (fd < 0 || write(fd, p, n) != (ssize_t)n)
		abort();
	close(fd);
	return path;
}

static void rm_tmp(char *path)
{
	unlink(path);
	free(path);
}

/* Kernel payload pattern: byte i of a segment is (i * 7 + seed). */
static void pattern(uint8_t *p, size_t n, int seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7 + seed);
}

static bool pattern_ok(const uint8_t *p, size_t n, int seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (uint8_t)(i * 7 + seed))
			return false;
	return true;
}

/* ELF64 x86-64: text at phys 0x1000000 (virt 0xffffffff81000000), data+bss at 0x1400000. */
static struct img make_elf64(bool pvh_note)
{
	struct img m = { 0 };
	Elf64_Ehdr eh = { 0 };
	Elf64_Phdr ph[3] = { 0 };
	uint8_t seg[0x300];
	int n = pvh_note ? 3 : 2;

	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = ET_EXEC;
	eh.e_machine = EM_X86_64;
	eh.e_entry = 0x1000000;
	eh.e_phoff = sizeof eh;
	eh.e_ehsize = sizeof eh;
	eh.e_phentsize = sizeof(Elf64_Phdr);
	eh.e_phnum = (uint16_t)n;
	ph[0] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = 0x1000,
			      .p_vaddr = 0xffffffff81000000ULL, .p_paddr = 0x1000000,
			      .p_filesz = 0x300, .p_memsz = 0x300 };
	ph[1] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = 0x2000,
			      .p_vaddr = 0xffffffff81400000ULL, .p_paddr = 0x1400000,
			      .p_filesz = 0x100, .p_memsz = 0x5000 };
	ph[2] = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = 0x3000, .p_filesz = 24 };
	img_put(&m, 0, &eh, sizeof eh);
	img_put(&m, sizeof eh, ph, sizeof(Elf64_Phdr) * n);
	pattern(seg, sizeof seg, 1);
	img_put(&m, 0x1000, seg, 0x300);
	pattern(seg, sizeof seg, 2);
	img_put(&m, 0x2000, seg, 0x100);
	if (pvh_note) {
		/* namesz 4, descsz 8, type 18, "Xen\0", entry 0x1000040 as a quad */
		put32(&m, 0x3000, 4);
		put32(&m, 0x3004, 8);
		put32(&m, 0x3008, 18);
		img_put(&m, 0x300c, "Xen", 4);
		put32(&m, 0x3010, 0x1000040);
		put32(&m, 0x3014, 0);
	}
	return m;
}

/* ELF32 i386 with one segment at phys 0x100000; optional PVH note or multiboot header. */
static struct img make_elf32(bool pvh_note, bool multiboot, uint32_t mb_flags)
{
	struct img m = { 0 };
	Elf32_Ehdr eh = { 0 };
	Elf32_Phdr ph[2] = { 0 };
	uint8_t seg[0x2000];

	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS32;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = ET_EXEC;
	eh.e_machine = EM_386;
	eh.e_entry = 0x100020;
	eh.e_phoff = sizeof eh;
	eh.e_ehsize = sizeof eh;
	eh.e_phentsize = sizeof(Elf32_Phdr);
	eh.e_phnum = pvh_note ? 2 : 1;
	ph[0] = (Elf32_Phdr){ .p_type = PT_LOAD, .p_offset = 0x1000, .p_vaddr = 0x100000,
			      .p_paddr = 0x100000, .p_filesz = 0x800, .p_memsz = 0x2000 };
	ph[1] = (Elf32_Phdr){ .p_type = PT_NOTE, .p_offset = 0x1800, .p_filesz = 20 };
	img_put(&m, 0, &eh, sizeof eh);
	img_put(&m, sizeof eh, ph, sizeof(Elf32_Phdr) * eh.e_phnum);
	pattern(seg, sizeof seg, 3);
	img_put(&m, 0x1000, seg, 0x800);
	if (multiboot) {
		put32(&m, 0x1000, 0x1badb002);
		put32(&m, 0x1004, mb_flags);
		put32(&m, 0x1008, (uint32_t)-(0x1badb002u + mb_flags));
	}
	if (pvh_note) {
		put32(&m, 0x1800, 4);
		put32(&m, 0x1804, 4);
		put32(&m, 0x1808, 18);
		img_put(&m, 0x180c, "Xen", 4);
		put32(&m, 0x1810, 0x100010);
	}
	return m;
}

/* Multiboot a.out kludge: a flat binary loaded at 0x200000 with bss to 0x210000. */
static struct img make_mb_aout(void)
{
	struct img m = { 0 };
	uint8_t body[0x1000];
	uint32_t flags = 0x00010002;

	pattern(body, sizeof body, 4);
	img_put(&m, 0, body, sizeof body);
	put32(&m, 0x40, 0x1badb002);
	put32(&m, 0x44, flags);
	put32(&m, 0x48, (uint32_t)-(0x1badb002u + flags));
	put32(&m, 0x4c, 0x200040);	/* header_addr */
	put32(&m, 0x50, 0x200000);	/* load_addr */
	put32(&m, 0x54, 0);		/* load_end_addr: whole file */
	put32(&m, 0x58, 0x210000);	/* bss_end_addr */
	put32(&m, 0x5c, 0x200100);	/* entry_addr */
	return m;
}

enum comp { COMP_GZIP, COMP_XZ, COMP_ZSTD, COMP_LZMA_MAGIC };

static struct img pack(const struct img *in, enum comp c)
{
	struct img out = { 0 };
	size_t cap = in->len * 2 + 1024;

	out.b = malloc(cap);
	if (c == COMP_GZIP) {
		z_stream zs = { 0 };

		deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
		zs.next_in = in->b;
		zs.avail_in = (uInt)in->len;
		zs.next_out = out.b;
		zs.avail_out = (uInt)cap;
		deflate(&zs, Z_FINISH);
		out.len = zs.total_out;
		deflateEnd(&zs);
	} else if (c == COMP_XZ) {
		size_t pos = 0;

		lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, NULL, in->b, in->len, out.b, &pos, cap);
		out.len = pos;
	} else if (c == COMP_ZSTD) {
		out.len = ZSTD_compress(out.b, cap, in->b, in->len, 19);
	} else {
		memcpy(out.b, "\x5d\x00\x00\x80\x00", 5);
		out.len = 64;
		memset(out.b + 5, 0, 59);
	}
	/* The kernel build appends the decompressed size. */
	put32(&out, out.len, (uint32_t)in->len);
	return out;
}

/* A bzImage: 1 setup sector after the boot sector, payload after 0x100 bytes of "code". */
static struct img make_bzimage(const struct img *payload, uint16_t version, uint16_t xlf,
			       uint32_t cmdline_size)
{
	struct img m = { 0 };
	uint8_t jump[2] = { 0xeb, 0x66 };

	img_put(&m, 0x1f1, "\x01", 1);			/* setup_sects */
	img_put(&m, 0x1fe, "\x55\xaa", 2);
	img_put(&m, 0x200, jump, 2);
	img_put(&m, 0x202, "HdrS", 4);
	img_put(&m, 0x206, &version, 2);
	img_put(&m, 0x211, "\x01", 1);			/* loadflags: LOADED_HIGH */
	put32(&m, 0x22c, 0x7fffffff);			/* initrd_addr_max */
	img_put(&m, 0x236, &xlf, 2);
	put32(&m, 0x238, cmdline_size);
	put32(&m, 0x248, 0x100);			/* payload_offset */
	put32(&m, 0x24c, (uint32_t)payload->len);	/* payload_length */
	img_put(&m, 0x400 + 0x100, payload->b, payload->len);
	return m;
}

struct boot {
	struct guest_mem *gm;
	struct boot_cpu_state bsp;
	char err[256];
	int ret;
	struct e820_entry e820[8];
	int ne820;
};

static const char initrd_data[] = "INITRD-CONTENTS-0123456789";

static void boot(struct boot *b, const struct img *k, uint64_t mem, const char *cmdline,
		 bool initrd)
{
	char *kpath = write_tmp(k->b, k->len), *ipath = NULL;
	struct loader_kernel_params p = { .kernel = kpath, .cmdline = cmdline, .rsdp_gpa = 0xe0000 };

	memset(b, 0, sizeof *b);
	if (gm_create(&b->gm, mem))
		abort();
	b->ne820 = e820_build(b->gm, 0xe0000, 0x1000, b->e820, 8);
	p.e820 = b->e820;
	p.e820_count = b->ne820;
	if (initrd) {
		ipath = write_tmp(initrd_data, sizeof initrd_data);
		p.initrd = ipath;
	}
	b->ret = loader_load_kernel(b->gm, &p, &b->bsp, b->err, sizeof b->err);
	rm_tmp(kpath);
	if (ipath)
		rm_tmp(ipath);
}

static uint64_t rd(struct boot *b, uint64_t gpa, int n)
{
	uint64_t v = 0;

	if (gm_read(b->gm, gpa, &v, (uint64_t)n))
		return ~0ULL;
	return v;
}

static const char *str(struct boot *b, uint64_t gpa)
{
	const char *s = gm_ptr(b->gm, gpa, 1, false);

	return s ? s : "";
}

/* Follow the loader's page tables for a virtual address (4-level, 2 MiB pages). */
static uint64_t walk(struct boot *b, uint64_t va)
{
	uint64_t pml4e = rd(b, (b->bsp.sregs.cr3 & ~0xfffULL) + ((va >> 39) & 511) * 8, 8);
	uint64_t pdpte, pde;

	if (!(pml4e & 1))
		return ~0ULL;
	pdpte = rd(b, (pml4e & 0xffffffffff000ULL) + ((va >> 30) & 511) * 8, 8);
	if (!(pdpte & 1))
		return ~0ULL;
	pde = rd(b, (pdpte & 0xffffffffff000ULL) + ((va >> 21) & 511) * 8, 8);
	if ((pde & 0x81) != 0x81)
		return ~0ULL;
	return (pde & 0xfffffffe00000ULL) + (va & 0x1fffff);
}

static void check_elf64_loaded(struct boot *b)
{
	CHECK(pattern_ok(gm_ptr(b->gm, 0x1000000, 0x300, false), 0x300, 1));
	CHECK(pattern_ok(gm_ptr(b->gm, 0x1400000, 0x100, false), 0x100, 2));
	for (uint64_t a = 0x1400100; a < 0x1405000; a += 0x100)
		CHECK_EQ_U64(rd(b, a, 8), 0);	/* bss cleared */
}

/* Linux 64-bit entry: long mode, identity map, flat segments, zero page in RSI. */
static void check_linux_entry(struct boot *b, const char *cmdline)
{
	uint64_t zp = b->bsp.regs.rsi;
	uint64_t rd_image, rd_size;

	CHECK_EQ_U64(b->bsp.regs.rip, 0x1000000);
	CHECK_EQ_U64(zp, 0x7000);
	CHECK_EQ_U64(b->bsp.sregs.cr0 & 0x80000001, 0x80000001);
	CHECK_EQ_U64(b->bsp.sregs.cr4 & 0x20, 0x20);
	CHECK_EQ_U64(b->bsp.sregs.efer & 0x500, 0x500);
	CHECK(b->bsp.sregs.cs.l && !b->bsp.sregs.cs.db && b->bsp.sregs.cs.present);
	CHECK_EQ_U64(b->bsp.sregs.cs.selector, 0x10);
	CHECK_EQ_U64(b->bsp.sregs.ds.selector, 0x18);
	CHECK_EQ_U64(b->bsp.regs.rflags & 0x200, 0);
	CHECK_EQ_U64(walk(b, 0x1000000), 0x1000000);
	CHECK_EQ_U64(walk(b, 0x7000), 0x7000);
	CHECK_EQ_U64(walk(b, 0xfee00000), 0xfee00000);
	CHECK_EQ_U64(walk(b, 0xffffffff), 0xffffffff);
	/* GDT descriptors match the cached segments. */
	CHECK_EQ_U64(rd(b, b->bsp.sregs.gdt.base + 0x10, 8), 0x00af9b000000ffffULL);
	CHECK_EQ_U64(rd(b, b->bsp.sregs.gdt.base + 0x18, 8), 0x00cf93000000ffffULL);

	/* Zero page. */
	CHECK_EQ_U64(rd(b, zp + 0x1fe, 2), 0xaa55);
	CHECK_EQ_U64(rd(b, zp + 0x202, 4), 0x53726448);
	CHECK_EQ_U64(rd(b, zp + 0x210, 1), 0xff);
	CHECK_EQ_U64(rd(b, zp + 0x211, 1) & 1, 1);
	CHECK_STR(str(b, rd(b, zp + 0x228, 4) | rd(b, zp + 0x0c8, 4) << 32), cmdline);
	CHECK_EQ_U64(rd(b, zp + 0x070, 8), 0xe0000);
	CHECK_EQ_U64(rd(b, zp + 0x1e8, 1), b->ne820);
	for (int i = 0; i < b->ne820; i++) {
		uint64_t e = zp + 0x2d0 + 20 * i;

		CHECK_EQ_U64(rd(b, e, 8), b->e820[i].addr);
		CHECK_EQ_U64(rd(b, e + 8, 8), b->e820[i].size);
		CHECK_EQ_U64(rd(b, e + 16, 4), b->e820[i].type);
	}
	rd_image = rd(b, zp + 0x218, 4) | rd(b, zp + 0x0c0, 4) << 32;
	rd_size = rd(b, zp + 0x21c, 4) | rd(b, zp + 0x0c4, 4) << 32;
	CHECK_EQ_U64(rd_size, sizeof initrd_data);
	CHECK_EQ_U64(rd_image & 0xfff, 0);
	CHECK(rd_image >= 0x1405000);
	CHECK(rd_image + rd_size <= gm_lowmem_size(b->gm));
	CHECK(rd_image + rd_size > gm_lowmem_size(b->gm) - 0x2000);	/* placed high */
	CHECK(memcmp(gm_ptr(b->gm, rd_image, rd_size, false), initrd_data, rd_size) == 0);
}

TEST(loader_elf64_vmlinux)
{
	struct img k = make_elf64(false);
	struct boot b;

	boot(&b, &k, 64 * MiB, "console=ttyS0 root=/dev/vda", true);
	CHECK_EQ_U64(b.ret, 0);
	CHECK_STR(b.err, "");
	check_elf64_loaded(&b);
	check_linux_entry(&b, "console=ttyS0 root=/dev/vda");
	gm_destroy(b.gm);
	free(k.b);
}

static void bz_test(enum comp c)
{
	struct img k = make_elf64(false), z = pack(&k, c), bz = make_bzimage(&z, 0x020f, 3, 255);
	struct boot b;

	boot(&b, &bz, 128 * MiB, "quiet", true);
	CHECK_EQ_U64(b.ret, 0);
	CHECK_STR(b.err, "");
	check_elf64_loaded(&b);
	check_linux_entry(&b, "quiet");
	/* The setup header is copied from the image (version, cmdline_size, payload fields). */
	CHECK_EQ_U64(rd(&b, 0x7000 + 0x206, 2), 0x020f);
	CHECK_EQ_U64(rd(&b, 0x7000 + 0x238, 4), 255);
	CHECK_EQ_U64(rd(&b, 0x7000 + 0x24c, 4), z.len);
	CHECK_EQ_U64(rd(&b, 0x7000 + 0x1f1, 1), 1);
	gm_destroy(b.gm);
	free(k.b);
	free(z.b);
	free(bz.b);
}

TEST(loader_bzimage_gzip)
{
	bz_test(COMP_GZIP);
}

TEST(loader_bzimage_xz)
{
	bz_test(COMP_XZ);
}

TEST(loader_bzimage_zstd)
{
	bz_test(COMP_ZSTD);
}

TEST(loader_bzimage_refusals)
{
	struct img k = make_elf64(false), z = pack(&k, COMP_GZIP), bad = pack(&k, COMP_LZMA_MAGIC);
	struct img bz;
	struct boot b;

	/* lzma payload: a clear "unsupported compression" error. */
	bz = make_bzimage(&bad, 0x020f, 3, 255);
	boot(&b, &bz, 64 * MiB, NULL, false);
	CHECK_EQ_U64(b.ret, (uint64_t)-ENOTSUP);
	CHECK(strstr(b.err, "unsupported compression lzma") != NULL);
	gm_destroy(b.gm);
	free(bz.b);

	/* Boot protocol 2.11, or no XLF_KERNEL_64. */
	bz = make_bzimage(&z, 0x020b, 3, 255);
	boot(&b, &bz, 64 * MiB, NULL, false);
	CHECK_EQ_U64(b.ret, (uint64_t)-ENOEXEC);
	CHECK(strstr(b.err, "64-bit entry") != NULL);
	gm_destroy(b.gm);
	free(bz.b);
	bz = make_bzimage(&z, 0x020f, 0, 255);
	boot(&b, &bz, 64 * MiB, NULL, false);
	CHECK_EQ_U64(b.ret, (uint64_t)-ENOEXEC);
	gm_destroy(b.gm);

	/* Command line longer than cmdline_size. */
	free(bz.b);
	bz = make_bzimage(&z, 0x020f, 3, 4);
	boot(&b, &bz, 64 * MiB, "too long", false);
	CHECK_EQ_U64(b.ret, (uint64_t)-E2BIG);
	gm_destroy(b.gm);

	/* Payload beyond the end of the file. */
	put32(&bz, 0x248, 0x10000000);
	boot(&b, &bz, 64 * MiB, NULL, false);
	CHECK_EQ_U64(b.ret, (uint64_t)-ENOEXEC);
	CHECK(strstr(b.err, "outside the file") != NULL);
	gm_destroy(b.gm);
	put32(&bz, 0x248, 0x100);
	put32(&bz, 0x24c, 0xffffff00);
	boot(&b, &bz, 64 * MiB, NULL, false);
	CHECK_EQ_U64(b.ret, (uint64_t)-ENOEXEC);
	gm_destroy(b.gm);

	/* Corrupt and truncated compressed streams. */
	put32(&bz, 0x24c, (uint32_t)z.len);
	for (size_t i = 0x500 + 20; i < 0x500 + 40; i++)
		bz.b[i] ^= 0x5a;
	boot(&b, &bz, 64 * MiB, NULL, false);
	CHECK(b.ret != 0);
	CHECK(strstr(b.err, "corrupt or truncated") != NULL);
	gm_destroy(b.gm);
	free(bz.b);
	put32(&z, 0, 0);	/* keep the buffer valid */
	{
		struct img x = pack(&k, COMP_XZ), t = { 0 };

		img_put(&t, 0, x.b, x.len / 2);
		bz = make_bzimage(&t, 0x020f, 3, 255);
		boot(&b, &bz, 64 * MiB, NULL, false);
		CHECK(b.ret != 0);
		CHECK(strstr(b.err, "xz payload") != NULL);
		gm_destroy(b.gm);
		free(bz.b);
		free(x.b);
		free(t.b);
	}

	/* Truncated header. */
	bz = make_bzimage(&z, 0x020f, 3, 255);
	bz.len = 0x220;
	boot(&b, &bz, 64 * MiB, NULL, false);
	CHECK_EQ_U64(b.ret, (uint64_t)-ENOEXEC);
	gm_destroy(b.gm);
	free(bz.b);
	free(k.b);
	free(z.b);
	free(bad.b);
}

TEST(loader_pvh_elf32)
{
	struct img k = make_elf32(true, false, 0);
	struct boot b;
	uint64_t si, map;

	boot(&b, &k, 64 * MiB, "pvh cmdline", true);
	CHECK_EQ_U64(b.ret, 0);
	CHECK_STR(b.err, "");
	CHECK(pattern_ok(gm_ptr(b.gm, 0x100000, 0x800, false), 0x800, 3));
	CHECK_EQ_U64(rd(&b, 0x100800, 8), 0);
	CHECK_EQ_U64(b.bsp.regs.rip, 0x100010);
	CHECK_EQ_U64(b.bsp.sregs.cr0 & 0x80000001, 1);
	CHECK_EQ_U64(b.bsp.sregs.efer, 0);
	CHECK(b.bsp.sregs.cs.db && !b.bsp.sregs.cs.l && b.bsp.sregs.cs.limit == 0xffffffff);
	CHECK_EQ_U64(b.bsp.sregs.ss.limit, 0xffffffff);
	CHECK_EQ_U64(b.bsp.sregs.tr.type, 0xb);
	CHECK_EQ_U64(rd(&b, b.bsp.sregs.gdt.base + 0x10, 8), 0x00cf9b000000ffffULL);
	si = b.bsp.regs.rbx;
	CHECK_EQ_U64(rd(&b, si, 4), 0x336ec578);
	CHECK_EQ_U64(rd(&b, si + 4, 4), 1);
	CHECK_EQ_U64(rd(&b, si + 0xc, 4), 1);
	CHECK_STR(str(&b, rd(&b, si + 0x18, 8)), "pvh cmdline");
	CHECK_EQ_U64(rd(&b, si + 0x20, 8), 0xe0000);
	CHECK_EQ_U64(rd(&b, si + 0x30, 4), b.ne820);
	map = rd(&b, si + 0x28, 8);
	for (int i = 0; i < b.ne820; i++) {
		CHECK_EQ_U64(rd(&b, map + 24 * i, 8), b.e820[i].addr);
		CHECK_EQ_U64(rd(&b, map + 24 * i + 8, 8), b.e820[i].size);
		CHECK_EQ_U64(rd(&b, map + 24 * i + 16, 4), b.e820[i].type);
	}
	{
		uint64_t mod = rd(&b, si + 0x10, 8), addr = rd(&b, mod, 8), len = rd(&b, mod + 8, 8);

		CHECK_EQ_U64(len, sizeof initrd_data);
		CHECK(addr >= 0x102000 && (addr & 0xfff) == 0);
		CHECK(memcmp(gm_ptr(b.gm, addr, len, false), initrd_data, len) == 0);
	}
	gm_destroy(b.gm);
	free(k.b);
}

TEST(loader_pvh_elf64_note_wins)
{
	struct img k = make_elf64(true);
	struct boot b;

	boot(&b, &k, 64 * MiB, NULL, false);
	CHECK_EQ_U64(b.ret, 0);
	check_elf64_loaded(&b);
	CHECK_EQ_U64(b.bsp.regs.rip, 0x1000040);
	CHECK_EQ_U64(rd(&b, b.bsp.regs.rbx, 4), 0x336ec578);
	CHECK_EQ_U64(rd(&b, b.bsp.regs.rbx + 0xc, 4), 0);	/* no modules */
	CHECK_STR(str(&b, rd(&b, b.bsp.regs.rbx + 0x18, 8)), "");
	gm_destroy(b.gm);
	free(k.b);
}

static void check_mbi(struct boot *b, const char *cmdline, uint64_t kernel_end)
{
	uint64_t mbi = b->bsp.regs.rbx, mods, mmap, len;

	CHECK_EQ_U64(b->bsp.regs.rax, 0x2badb002);
	CHECK_EQ_U64(b->bsp.sregs.cr0 & 0x80000001, 1);
	CHECK(b->bsp.sregs.cs.db && b->bsp.sregs.cs.base == 0);
	CHECK_EQ_U64(rd(b, mbi, 4) & 0x24d, 0x24d);	/* mem, cmdline, mods, mmap, name */
	CHECK_EQ_U64(rd(b, mbi + 4, 4), 639);
	CHECK_EQ_U64(rd(b, mbi + 8, 4), (gm_lowmem_size(b->gm) - MiB) / 1024);
	CHECK_STR(str(b, rd(b, mbi + 16, 4)), cmdline);
	CHECK_STR(str(b, rd(b, mbi + 64, 4)), "khyve");
	CHECK_EQ_U64(rd(b, mbi + 20, 4), 1);
	mods = rd(b, mbi + 24, 4);
	CHECK_EQ_U64(rd(b, mods + 4, 4) - rd(b, mods, 4), sizeof initrd_data);
	CHECK(rd(b, mods, 4) >= kernel_end && (rd(b, mods, 4) & 0xfff) == 0);
	CHECK(memcmp(gm_ptr(b->gm, rd(b, mods, 4), sizeof initrd_data, false), initrd_data,
		     sizeof initrd_data) == 0);
	CHECK(strstr(str(b, rd(b, mods + 8, 4)), "khyve-test-loader-") != NULL);
	len = rd(b, mbi + 44, 4);
	mmap = rd(b, mbi + 48, 4);
	CHECK_EQ_U64(len, 24 * (uint64_t)b->ne820);
	for (int i = 0; i < b->ne820; i++) {
		CHECK_EQ_U64(rd(b, mmap + 24 * i, 4), 20);
		CHECK_EQ_U64(rd(b, mmap + 24 * i + 4, 8), b->e820[i].addr);
		CHECK_EQ_U64(rd(b, mmap + 24 * i + 12, 8), b->e820[i].size);
		CHECK_EQ_U64(rd(b, mmap + 24 * i + 20, 4), b->e820[i].type);
	}
}

TEST(loader_multiboot_elf32)
{
	struct img k = make_elf32(false, true, 3);
	struct boot b;

	boot(&b, &k, 64 * MiB, "-smp 2 test", true);
	CHECK_EQ_U64(b.ret, 0);
	CHECK_STR(b.err, "");
	CHECK_EQ_U64(b.bsp.regs.rip, 0x100020);
	CHECK_EQ_U64(rd(&b, 0x100000, 4), 0x1badb002);
	CHECK_EQ_U64(rd(&b, 0x101000, 8), 0);
	check_mbi(&b, "-smp 2 test", 0x102000);
	gm_destroy(b.gm);
	free(k.b);
}

TEST(loader_multiboot_aout_kludge)
{
	struct img k = make_mb_aout();
	struct boot b;

	boot(&b, &k, 64 * MiB, "", true);
	CHECK_EQ_U64(b.ret, 0);
	CHECK_STR(b.err, "");
	CHECK_EQ_U64(b.bsp.regs.rip, 0x200100);
	CHECK_EQ_U64(rd(&b, 0x200000, 4), *(uint32_t *)k.b);
	CHECK_EQ_U64(rd(&b, 0x200040, 4), 0x1badb002);
	CHECK_EQ_U64(rd(&b, 0x200ff8, 8), *(uint64_t *)(k.b + 0xff8));
	CHECK_EQ_U64(rd(&b, 0x20fff8, 8), 0);
	check_mbi(&b, "", 0x210000);
	gm_destroy(b.gm);
	free(k.b);
}

TEST(loader_multiboot_refusals)
{
	struct img k = make_elf32(false, true, 1u << 3);	/* an unknown required flag */
	struct img a = make_mb_aout();
	struct boot b;

	boot(&b, &k, 64 * MiB, NULL, false);
	CHECK_EQ_U64(b.ret, (uint64_t)-ENOTSUP);
	CHECK(strstr(b.err, "multiboot") != NULL);
	gm_destroy(b.gm);
	put32(&a, 0x4c, 0x100000);	/* header_addr below load_addr */
	boot(&b, &a, 64 * MiB, NULL, false);
	CHECK_EQ_U64(b.ret, (uint64_t)-ENOEXEC);
	gm_destroy(b.gm);
	put32(&a, 0x4c, 0x200040);
	put32(&a, 0x54, 0x300000);	/* load_end_addr past the file */
	boot(&b, &a, 64 * MiB, NULL, false);
	CHECK_EQ_U64(b.ret, (uint64_t)-ENOEXEC);
	gm_destroy(b.gm);
	put32(&a, 0x54, 0);
	put32(&a, 0x58, 0x100000);	/* bss_end below the image end */
	boot(&b, &a, 64 * MiB, NULL, false);
	CHECK_EQ_U64(b.ret, (uint64_t)-ENOEXEC);
	gm_destroy(b.gm);
	put32(&a, 0x58, 0);
	put32(&a, 0x50, 0xfff00000);	/* loads into the PCI hole */
	put32(&a, 0x4c, 0xfff00040);
	boot(&b, &a, 64 * MiB, NULL, false);
	CHECK_EQ_U64(b.ret, (uint64_t)-ERANGE);
	gm_destroy(b.gm);
	free(k.b);
	free(a.b);
}

TEST(loader_hostile_elf)
{
	struct img k = make_elf64(false);
	struct boot b;
	Elf64_Phdr *ph = (Elf64_Phdr *)(k.b + sizeof(Elf64_Ehdr));
	Elf64_Ehdr *eh = (Elf64_Ehdr *)k.b;

	ph[0].p_filesz = 0xffffffffffff0000ULL;	/* huge p_filesz */
	boot(&b, &k, 64 * MiB, NULL, false);
	CHECK_EQ_U64(b.ret, (uint64_t)-ENOEXEC);
	gm_destroy(b.gm);
	ph[0].p_memsz = 0xffffffffffff0000ULL;
	boot(&b, &k, 64 * MiB, NULL, false);
	CHECK(b.ret != 0);
	gm_destroy(b.gm);
	ph[0].p_filesz = ph[0].p_memsz = 0x300;
	ph[0].p_offset = 0xfffffffffffff000ULL;	/* offset outside the file */
	boot(&b, &k, 64 * MiB, NULL, false);
	CHECK_EQ_U64(b.ret, (uint64_t)-ENOEXEC);
	gm_destroy(b.gm);
	ph[0].p_offset = 0x1000;
	ph[0].p_paddr = 0x1000;			/* over the boot structures */
	boot(&b, &k, 64 * MiB, NULL, false);
	CHECK_EQ_U64(b.ret, (uint64_t)-EINVAL);
	CHECK(strstr(b.err, "boot structures") != NULL);
	gm_destroy(b.gm);
	ph[0].p_paddr = 0x1000000;
	boot(&b, &k, 16 * MiB, NULL, false);	/* kernel above the end of RAM */
	CHECK_EQ_U64(b.ret, (uint64_t)-ERANGE);
	gm_destroy(b.gm);
	eh->e_phoff = 0xfffffffffffffff0ULL;	/* program headers outside the file */
	boot(&b, &k, 64 * MiB, NULL, false);
	CHECK_EQ_U64(b.ret, (uint64_t)-ENOEXEC);
	gm_destroy(b.gm);
	eh->e_phoff = sizeof *eh;
	eh->e_phentsize = 8;
	boot(&b, &k, 64 * MiB, NULL, false);
	CHECK_EQ_U64(b.ret, (uint64_t)-ENOEXEC);
	gm_destroy(b.gm);
	eh->e_phentsize = sizeof(Elf64_Phdr);
	k.len = 40;				/* truncated ELF header */
	boot(&b, &k, 64 * MiB, NULL, false);
	CHECK_EQ_U64(b.ret, (uint64_t)-ENOEXEC);
	gm_destroy(b.gm);
	k.len = 3;				/* not any format */
	boot(&b, &k, 64 * MiB, NULL, false);
	CHECK_EQ_U64(b.ret, (uint64_t)-ENOEXEC);
	CHECK(strstr(b.err, "unknown format") != NULL);
	gm_destroy(b.gm);
	free(k.b);
}

TEST(loader_hostile_notes_and_initrd)
{
	struct img k = make_elf32(true, false, 0);
	struct boot b;
	struct loader_kernel_params p = { 0 };
	char err[128];

	put32(&k, 0x1800, 0x7ffffff0);	/* note name size runs past the segment */
	boot(&b, &k, 64 * MiB, NULL, false);
	CHECK_EQ_U64(b.ret, (uint64_t)-ENOEXEC);
	CHECK(strstr(b.err, "note") != NULL);
	gm_destroy(b.gm);
	free(k.b);

	/* Missing files. */
	CHECK(gm_create(&b.gm, 64 * MiB) == 0);
	p.kernel = "/nonexistent/kernel";
	CHECK_EQ_U64(loader_load_kernel(b.gm, &p, &b.bsp, err, sizeof err), (uint64_t)-ENOENT);
	CHECK(strstr(err, "/nonexistent/kernel") != NULL);
	{
		struct img e = make_elf64(false);
		char *kp = write_tmp(e.b, e.len);

		p.kernel = kp;
		p.initrd = "/nonexistent/initrd";
		CHECK_EQ_U64(loader_load_kernel(b.gm, &p, &b.bsp, err, sizeof err),
			     (uint64_t)-ENOENT);
		CHECK(strstr(err, "initrd") != NULL);
		rm_tmp(kp);
		free(e.b);
	}
	gm_destroy(b.gm);
}

TEST(loader_initrd_too_big)
{
	struct img k = make_elf64(false);
	char *kp = write_tmp(k.b, k.len), *ip;
	struct guest_mem *gm;
	struct boot_cpu_state bsp;
	struct loader_kernel_params p = { .kernel = kp };
	char err[256];
	int fd;

	CHECK(gm_create(&gm, 24 * MiB) == 0);
	ip = strdup("/tmp/khyve-test-initrd-XXXXXX");
	fd = mkstemp(ip);
	CHECK(fd >= 0 && ftruncate(fd, 16 * MiB) == 0);
	close(fd);
	p.initrd = ip;
	CHECK_EQ_U64(loader_load_kernel(gm, &p, &bsp, err, sizeof err), (uint64_t)-ENOMEM);
	CHECK(strstr(err, "does not fit") != NULL);
	rm_tmp(ip);
	rm_tmp(kp);
	gm_destroy(gm);
	free(k.b);
}

/* Random corruption of every valid image: errors are fine, crashes and hangs are not. */
TEST(loader_mutations_do_not_crash)
{
	struct img base[5];
	struct img k64 = make_elf64(true), z;
	unsigned seed = 12345;

	base[0] = make_elf64(false);
	base[1] = make_elf32(true, false, 0);
	base[2] = make_elf32(false, true, 2);
	base[3] = make_mb_aout();
	z = pack(&k64, COMP_GZIP);
	base[4] = make_bzimage(&z, 0x020f, 3, 255);
	for (int iter = 0; iter < 300; iter++) {
		struct img m = { 0 };
		const struct img *src = &base[iter % 5];
		struct boot b;

		img_put(&m, 0, src->b, src->len);
		for (int j = 0; j < 4; j++) {
			seed = seed * 1103515245 + 12345;
			m.b[(seed >> 8) % (iter % 5 == 4 ? 0x600 : m.len)] = (uint8_t)(seed >> 16);
		}
		if (iter % 7 == 0)
			m.len = (seed >> 4) % m.len + 1;
		boot(&b, &m, 64 * MiB, "x", iter & 1);
		CHECK(b.ret == 0 || b.err[0] != '\0');
		gm_destroy(b.gm);
		free(m.b);
	}
	for (int i = 0; i < 5; i++)
		free(base[i].b);
	free(k64.b);
	free(z.b);
}

TEST(loader_bootrom)
{
	struct guest_mem *gm;
	struct boot_cpu_state bsp;
	uint8_t *rom = malloc(256 << 10);
	char err[256], *path;
	const struct gm_region *r = NULL;

	pattern(rom, 256 << 10, 5);
	CHECK(gm_create(&gm, 64 * MiB) == 0);
	path = write_tmp(rom, 64 << 10);
	CHECK_EQ_U64(loader_load_bootrom(gm, path, &bsp, err, sizeof err), 0);
	for (int i = 0; i < gm_region_count(gm); i++)
		if (gm_region(gm, i)->kind == GM_ROM)
			r = gm_region(gm, i);
	CHECK(r && r->gpa == 0xffff0000 && r->size == 64 << 10);
	CHECK(memcmp(gm_ptr(gm, 0xffff0000, 64 << 10, false), rom, 64 << 10) == 0);
	CHECK(gm_ptr(gm, 0xffff0000, 16, true) == NULL);	/* read-only */
	CHECK(memcmp(gm_ptr(gm, 0xf0000, 64 << 10, false), rom, 64 << 10) == 0);
	CHECK_EQ_U64(bsp.regs.rip, 0xfff0);
	CHECK_EQ_U64(bsp.sregs.cs.selector, 0xf000);
	CHECK_EQ_U64(bsp.sregs.cs.base, 0xffff0000);
	CHECK_EQ_U64(bsp.sregs.cs.limit, 0xffff);
	CHECK_EQ_U64(bsp.sregs.cr0, 0x60000010);
	CHECK_EQ_U64(bsp.regs.rflags, 2);
	rm_tmp(path);
	gm_destroy(gm);

	/* 256 KiB: only the last 128 KiB appear at 0xE0000. */
	CHECK(gm_create(&gm, 64 * MiB) == 0);
	path = write_tmp(rom, 256 << 10);
	CHECK_EQ_U64(loader_load_bootrom(gm, path, &bsp, err, sizeof err), 0);
	CHECK(memcmp(gm_ptr(gm, 0xfffc0000, 256 << 10, false), rom, 256 << 10) == 0);
	CHECK(memcmp(gm_ptr(gm, 0xe0000, 128 << 10, false), rom + (128 << 10), 128 << 10) == 0);
	rm_tmp(path);
	gm_destroy(gm);

	/* Sizes that are not a multiple of 4 KiB, empty, or above 16 MiB. */
	CHECK(gm_create(&gm, 64 * MiB) == 0);
	path = write_tmp(rom, 5000);
	CHECK_EQ_U64(loader_load_bootrom(gm, path, &bsp, err, sizeof err), (uint64_t)-EINVAL);
	CHECK(strstr(err, "4 KiB") != NULL);
	CHECK(truncate(path, 0) == 0);
	CHECK_EQ_U64(loader_load_bootrom(gm, path, &bsp, err, sizeof err), (uint64_t)-EINVAL);
	CHECK(truncate(path, 32 * MiB) == 0);
	CHECK_EQ_U64(loader_load_bootrom(gm, path, &bsp, err, sizeof err), (uint64_t)-EINVAL);
	CHECK_EQ_U64(loader_load_bootrom(gm, "/nonexistent.rom", &bsp, err, sizeof err),
		     (uint64_t)-ENOENT);
	CHECK(strstr(err, "/nonexistent.rom") != NULL);
	CHECK_EQ_U64(gm_region_count(gm), 1);
	rm_tmp(path);
	gm_destroy(gm);
	free(rom);
}

/* Debian's kernel, if scripts/setup.sh --test unpacked it: report, never require. */
TEST(loader_debian_kernel_if_present)
{
	glob_t g;
	struct boot b;

	if (glob("/var/cache/khyve/kernel/boot/vmlinuz-*", 0, NULL, &g) != 0 &&
	    glob("/boot/vmlinuz-*", 0, NULL, &g) != 0) {
		printf("    (no Debian kernel found: skipped)\n");
		return;
	}
	{
		struct guest_mem *gm;
		struct loader_kernel_params p = { .kernel = g.gl_pathv[0], .cmdline = "console=ttyS0" };

		memset(&b, 0, sizeof b);
		CHECK(gm_create(&gm, 512 * MiB) == 0);
		b.gm = gm;
		b.ret = loader_load_kernel(gm, &p, &b.bsp, b.err, sizeof b.err);
		printf("    %s: ret %d%s%s, entry 0x%llx, %llu e820 entries, setup version 0x%llx\n",
		       g.gl_pathv[0], b.ret, b.ret ? ": " : "", b.err,
		       (unsigned long long)b.bsp.regs.rip, (unsigned long long)rd(&b, 0x71e8, 1),
		       (unsigned long long)rd(&b, 0x7206, 2));
		if (b.ret == 0) {
			CHECK(b.bsp.sregs.efer & 0x400);
			CHECK_EQ_U64(rd(&b, 0x7210, 1), 0xff);
		}
		gm_destroy(gm);
	}
	globfree(&g);
}
