/*
 * linux.c: Linux's 64-bit boot protocol (Documentation/x86/boot.rst, "64-bit BOOT PROTOCOL"
 * and "THE REAL-MODE KERNEL HEADER"). A bzImage's compressed payload is decompressed here
 * on the host (gzip, xz, zstd; an uncompressed payload is taken as is), and the resulting
 * vmlinux, or a vmlinux given directly, is loaded at its ELF physical addresses and entered
 * in long mode with the zero page (struct boot_params) in RSI. The real-mode setup code and
 * the in-guest decompressor are never run; lzma, lzo, lz4 and bzip2 payloads are refused.
 */
#include <elf.h>
#include <errno.h>
#include <lzma.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "loader/loader_internal.h"
#include "vmm/guest_mem.h"

/* struct boot_params offsets (arch/x86/include/uapi/asm/bootparam.h). */
#define BP_ACPI_RSDP_ADDR 0x070
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_HDR 0x1f1
#define BP_HDR_END_MAX 0x290	/* edd_mbr_sig_buffer follows the setup header */
#define BP_E820_TABLE 0x2d0
#define BP_E820_MAX 128

/* struct setup_header fields, at their zero-page (and bzImage file) offsets. */
#define HDR_SETUP_SECTS 0x1f1
#define HDR_BOOT_FLAG 0x1fe
#define HDR_JUMP 0x200
#define HDR_MAGIC 0x202
#define HDR_VERSION 0x206
#define HDR_TYPE_OF_LOADER 0x210
#define HDR_LOADFLAGS 0x211
#define HDR_RAMDISK_IMAGE 0x218
#define HDR_RAMDISK_SIZE 0x21c
#define HDR_CMD_LINE_PTR 0x228
#define HDR_INITRD_ADDR_MAX 0x22c
#define HDR_XLOADFLAGS 0x236
#define HDR_CMDLINE_SIZE 0x238
#define HDR_PAYLOAD_OFFSET 0x248
#define HDR_PAYLOAD_LENGTH 0x24c

#define LOADFLAGS_LOADED_HIGH 0x01
#define XLF_KERNEL_64 0x01
#define XLF_CAN_BE_LOADED_ABOVE_4G 0x02

#define LINUX_CMDLINE_DEFAULT 2047	/* COMMAND_LINE_SIZE - 1 before protocol 2.06 */

/* Fill the zero page; `hdr` is the bzImage (setup header copied from it) or NULL. */
static int loader_zero_page(struct loader_ctx *c, const uint8_t *hdr, size_t hdr_size)
{
	uint8_t *bp = calloc(1, 4096);
	int n = c->e820_count < BP_E820_MAX ? c->e820_count : BP_E820_MAX;

	if (!bp)
		return loader_error(c, -ENOMEM, "out of memory");
	if (hdr) {
		size_t end = HDR_MAGIC + hdr[HDR_JUMP + 1];

		if (end > BP_HDR_END_MAX)
			end = BP_HDR_END_MAX;
		if (end > hdr_size)
			end = hdr_size;
		memcpy(bp + BP_HDR, hdr + BP_HDR, end - BP_HDR);
	} else {
		loader_put16(bp + HDR_BOOT_FLAG, 0xaa55);
		memcpy(bp + HDR_MAGIC, "HdrS", 4);
		loader_put16(bp + HDR_VERSION, 0x020f);
		loader_put32(bp + HDR_INITRD_ADDR_MAX, 0x7fffffff);
		loader_put16(bp + HDR_XLOADFLAGS, XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G);
		loader_put32(bp + HDR_CMDLINE_SIZE, LINUX_CMDLINE_DEFAULT);
	}
	bp[HDR_TYPE_OF_LOADER] = 0xff;
	bp[HDR_LOADFLAGS] |= LOADFLAGS_LOADED_HIGH;
	loader_put32(bp + HDR_CMD_LINE_PTR, (uint32_t)LOADER_CMDLINE_GPA);
	loader_put32(bp + BP_EXT_CMD_LINE_PTR, 0);
	loader_put32(bp + HDR_RAMDISK_IMAGE, (uint32_t)c->initrd_gpa);
	loader_put32(bp + HDR_RAMDISK_SIZE, (uint32_t)c->initrd_size);
	loader_put32(bp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(c->initrd_gpa >> 32));
	loader_put32(bp + BP_EXT_RAMDISK_SIZE, (uint32_t)(c->initrd_size >> 32));
	loader_put64(bp + BP_ACPI_RSDP_ADDR, c->p->rsdp_gpa);
	bp[BP_E820_ENTRIES] = (uint8_t)n;
	for (int i = 0; i < n; i++) {
		uint8_t *e = bp + BP_E820_TABLE + i * 20;

		loader_put64(e, c->e820[i].addr);
		loader_put64(e + 8, c->e820[i].size);
		loader_put32(e + 16, c->e820[i].type);
	}
	if (gm_write(c->gm, LOADER_INFO_GPA, bp, 4096)) {
		free(bp);
		return loader_error(c, -EFAULT, "guest memory too small for the zero page");
	}
	free(bp);
	return 0;
}

/* Load a vmlinux (ELF64) and enter it; `hdr` as for loader_zero_page. */
static int loader_linux_boot(struct loader_ctx *c, const uint8_t *elf, size_t elf_size,
			     const uint8_t *hdr, size_t hdr_size)
{
	uint64_t entry, limit = 1ULL << 32, cmdline_max = LINUX_CMDLINE_DEFAULT;
	int ret;

	if (!loader_is_elf(elf, elf_size) || elf[EI_CLASS] != ELFCLASS64)
		return loader_error(c, -ENOEXEC, "kernel: the Linux image is not an ELF64 vmlinux");
	ret = loader_elf_load(c, elf, elf_size, &entry);
	if (ret)
		return ret;
	if (hdr) {
		uint16_t version = loader_le16(hdr + HDR_VERSION);
		uint16_t xlf = loader_le16(hdr + HDR_XLOADFLAGS);

		if (!(xlf & XLF_CAN_BE_LOADED_ABOVE_4G))
			limit = (uint64_t)loader_le32(hdr + HDR_INITRD_ADDR_MAX) + 1;
		if (version >= 0x0206)
			cmdline_max = loader_le32(hdr + HDR_CMDLINE_SIZE);
	}
	ret = loader_load_initrd(c, limit);
	if (!ret)
		ret = loader_write_cmdline(c, cmdline_max);
	if (!ret)
		ret = loader_zero_page(c, hdr, hdr_size);
	if (!ret)
		ret = loader_enter_long64(c, entry);
	if (!ret)
		c->bsp->regs.rsi = LOADER_INFO_GPA;
	return ret;
}

int loader_linux64(struct loader_ctx *c, const uint8_t *img, size_t size)
{
	return loader_linux_boot(c, img, size, NULL, 0);
}

/* A growing output buffer for the decompressors, capped at LOADER_KERNEL_MAX. */
struct loader_out {
	uint8_t *buf;
	size_t len, cap;
};

static int loader_out_grow(struct loader_out *o)
{
	size_t cap = o->cap ? o->cap * 2 : 64u << 20;
	uint8_t *b;

	if (o->cap >= LOADER_KERNEL_MAX)
		return -EFBIG;
	if (cap > LOADER_KERNEL_MAX)
		cap = LOADER_KERNEL_MAX;
	b = realloc(o->buf, cap);
	if (!b)
		return -ENOMEM;
	o->buf = b;
	o->cap = cap;
	return 0;
}

static int loader_gunzip(const uint8_t *in, size_t inlen, struct loader_out *o)
{
	z_stream zs = { 0 };
	int zr = Z_OK, ret = 0;

	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
		return -ENOMEM;
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)inlen;
	while (zr != Z_STREAM_END) {
		if (o->len == o->cap && (ret = loader_out_grow(o)) != 0)
			break;
		zs.next_out = o->buf + o->len;
		zs.avail_out = (uInt)(o->cap - o->len);
		zr = inflate(&zs, Z_NO_FLUSH);
		o->len = o->cap - zs.avail_out;
		if (zr == Z_STREAM_END)
			break;
		if (zr != Z_OK && !(zr == Z_BUF_ERROR && zs.avail_out == 0)) {
			ret = -EINVAL;
			break;
		}
		if (zs.avail_in == 0 && zs.avail_out != 0) {
			ret = -EINVAL;	/* truncated */
			break;
		}
	}
	inflateEnd(&zs);
	return ret;
}

static int loader_unxz(const uint8_t *in, size_t inlen, struct loader_out *o)
{
	lzma_stream s = LZMA_STREAM_INIT;
	lzma_ret lr = LZMA_OK;
	int ret = 0;

	if (lzma_stream_decoder(&s, 256u << 20, 0) != LZMA_OK)
		return -ENOMEM;
	s.next_in = in;
	s.avail_in = inlen;
	while (lr != LZMA_STREAM_END) {
		if (o->len == o->cap && (ret = loader_out_grow(o)) != 0)
			break;
		s.next_out = o->buf + o->len;
		s.avail_out = o->cap - o->len;
		lr = lzma_code(&s, LZMA_FINISH);
		o->len = o->cap - s.avail_out;
		if (lr == LZMA_STREAM_END)
			break;
		if (lr == LZMA_MEMLIMIT_ERROR || lr == LZMA_MEM_ERROR) {
			ret = -ENOMEM;
			break;
		}
		if (lr != LZMA_OK && !(lr == LZMA_BUF_ERROR && s.avail_out == 0)) {
			ret = -EINVAL;
			break;
		}
	}
	lzma_end(&s);
	return ret;
}

static int loader_unzstd(const uint8_t *in, size_t inlen, struct loader_out *o)
{
	ZSTD_DCtx *d = ZSTD_createDCtx();
	ZSTD_inBuffer ib = { in, inlen, 0 };
	size_t zr = 1;
	int ret = 0;

	if (!d)
		return -ENOMEM;
	while (zr != 0) {
		ZSTD_outBuffer ob;

		if (o->len == o->cap && (ret = loader_out_grow(o)) != 0)
			break;
		ob = (ZSTD_outBuffer){ o->buf, o->cap, o->len };
		zr = ZSTD_decompressStream(d, &ob, &ib);
		o->len = ob.pos;
		if (ZSTD_isError(zr)) {
			ret = -EINVAL;
			break;
		}
		if (zr != 0 && ib.pos == ib.size && ob.pos < ob.size) {
			ret = -EINVAL;	/* truncated */
			break;
		}
	}
	ZSTD_freeDCtx(d);
	return ret;
}

int loader_bzimage(struct loader_ctx *c, const uint8_t *img, size_t size)
{
	static const struct {
		const char *name;
		uint8_t magic[6];
		size_t len;
		int (*fn)(const uint8_t *in, size_t inlen, struct loader_out *o);
	} formats[] = {
		{ "gzip", { 0x1f, 0x8b }, 2, loader_gunzip },
		{ "xz", { 0xfd, '7', 'z', 'X', 'Z', 0 }, 6, loader_unxz },
		{ "zstd", { 0x28, 0xb5, 0x2f, 0xfd }, 4, loader_unzstd },
		{ "bzip2", { 'B', 'Z', 'h' }, 3, NULL },
		{ "lzma", { 0x5d, 0, 0 }, 3, NULL },
		{ "lzo", { 0x89, 'L', 'Z', 'O' }, 4, NULL },
		{ "lz4", { 0x02, 0x21, 0x4c, 0x18 }, 4, NULL },
	};
	struct loader_out out = { 0 };
	uint64_t setup, poff, plen;
	const uint8_t *payload;
	uint16_t version;
	int ret;

	if (size < 0x250)
		return loader_error(c, -ENOEXEC, "kernel: truncated bzImage header");
	version = loader_le16(img + HDR_VERSION);
	if (version < 0x020c || !(loader_le16(img + HDR_XLOADFLAGS) & XLF_KERNEL_64))
		return loader_error(c, -ENOEXEC,
				    "kernel: bzImage has no 64-bit entry (boot protocol %u.%02u, need 2.12 with XLF_KERNEL_64)",
				    version >> 8, version & 0xff);
	setup = img[HDR_SETUP_SECTS] ? img[HDR_SETUP_SECTS] : 4;
	setup = (setup + 1) * 512;
	poff = loader_le32(img + HDR_PAYLOAD_OFFSET);
	plen = loader_le32(img + HDR_PAYLOAD_LENGTH);
	if (setup > size || poff > size - setup || plen > size - setup - poff || plen < 8)
		return loader_error(c, -ENOEXEC,
				    "kernel: bzImage payload (offset 0x%llx, length 0x%llx) lies outside the file",
				    (unsigned long long)(setup + poff), (unsigned long long)plen);
	payload = img + setup + poff;
	if (loader_is_elf(payload, plen))
		return loader_linux_boot(c, payload, plen, img, size);

	for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
		if (memcmp(payload, formats[i].magic, formats[i].len) != 0)
			continue;
		if (!formats[i].fn)
			return loader_error(c, -ENOTSUP,
					    "kernel: unsupported compression %s in bzImage (gzip, xz and zstd are supported)",
					    formats[i].name);
		ret = formats[i].fn(payload, plen, &out);
		if (ret) {
			free(out.buf);
			return loader_error(c, ret, "kernel: bzImage %s payload: %s", formats[i].name,
					    ret == -EFBIG ? "decompresses to more than 512 MiB" :
					    ret == -ENOMEM ? "out of memory" : "corrupt or truncated");
		}
		ret = loader_linux_boot(c, out.buf, out.len, img, size);
		free(out.buf);
		return ret;
	}
	return loader_error(c, -ENOEXEC, "kernel: unknown bzImage payload format");
}
