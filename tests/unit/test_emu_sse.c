/*
 * test_emu_sse.c: differential tests of the interpreter's MMX, SSE, SSE2, SSE3 and SSSE3
 * instructions (and SSE4.1/4.2, AES, PCLMULQDQ where the host has them) against the host
 * CPU (harness in simd_diff.h). The forms are every legacy
 * encoding Zydis decodes as one of those extensions under no/66/F2/F3 prefixes in the 0F,
 * 0F 38 and 0F 3A maps, in register and [RBX+disp8] memory forms, with and without REX.W and
 * high registers; each runs on random and boundary lanes (zeros, denormals, infinities,
 * QNaN/SNaN, integer limits) under every rounding mode, FTZ/DAZ and unmasked exceptions.
 * Also CMPXCHG16B, the alignment #GP and the #UD/#NM rules of CR0/CR4.
 */
#include <cpuid.h>
#include "simd_diff.h"

static bool sse_skip(ZydisMnemonic m)
{
	switch (m) {
	/* state and hints: other tests (test_emu_sys.c) */
	case ZYDIS_MNEMONIC_LDMXCSR: case ZYDIS_MNEMONIC_STMXCSR: case ZYDIS_MNEMONIC_FXSAVE:
	case ZYDIS_MNEMONIC_FXRSTOR: case ZYDIS_MNEMONIC_FXSAVE64: case ZYDIS_MNEMONIC_FXRSTOR64:
	case ZYDIS_MNEMONIC_LFENCE: case ZYDIS_MNEMONIC_SFENCE: case ZYDIS_MNEMONIC_MFENCE:
	case ZYDIS_MNEMONIC_PAUSE: case ZYDIS_MNEMONIC_PREFETCHNTA: case ZYDIS_MNEMONIC_PREFETCHT0:
	case ZYDIS_MNEMONIC_PREFETCHT1: case ZYDIS_MNEMONIC_PREFETCHT2:
	case ZYDIS_MNEMONIC_CLFLUSH: case ZYDIS_MNEMONIC_MONITOR: case ZYDIS_MNEMONIC_MWAIT:
	case ZYDIS_MNEMONIC_EMMS:
		return true;
	default:
		return false;
	}
}

/* The sets under test; SSE4.1/4.2, AES and PCLMULQDQ only where the host has them. */
static bool sse_ext(ZydisISAExt e)
{
	unsigned a = 0, b = 0, c = 0, d = 0;

	if (e == ZYDIS_ISA_EXT_MMX || e == ZYDIS_ISA_EXT_SSE || e == ZYDIS_ISA_EXT_SSE2 ||
	    e == ZYDIS_ISA_EXT_SSE3 || e == ZYDIS_ISA_EXT_SSSE3)
		return true;
	__get_cpuid(1, &a, &b, &c, &d);
	if (e == ZYDIS_ISA_EXT_SSE4)
		return (c & (3u << 19)) == (3u << 19);
	if (e == ZYDIS_ISA_EXT_AES)
		return c & (1u << 25);
	if (e == ZYDIS_ISA_EXT_PCLMULQDQ)
		return c & (1u << 1);
	return false;
}

/* Lane width for the random start: from the mnemonic's last letters (ps/ss: 4, pd/sd: 8). */
static unsigned sse_lane(const char *name)
{
	size_t l = strlen(name);

	if (l > 2 && (!strcmp(name + l - 2, "ps") || !strcmp(name + l - 2, "ss")))
		return 4;
	if (l > 2 && (!strcmp(name + l - 2, "pd") || !strcmp(name + l - 2, "sd")))
		return 8;
	return sd_rnd() % 2 ? 4 : 8;
}

/* Encode [pfx] [REX] 0F map op ModRM [disp8] [imm8]; false when Zydis rejects it or the
 * form is not one of ours. */
static bool sse_encode(ZydisDecoder *dec, uint8_t pfx, unsigned map, uint8_t op, bool mem,
		       unsigned rex, unsigned reg, unsigned rm, uint8_t *b, unsigned *len,
		       ZydisDecodedInstruction *zi, ZydisDecodedOperand *zo)
{
	unsigned n = 0;

	if (pfx)
		b[n++] = pfx;
	if (mem)
		rex &= ~3u;	/* the base stays RBX */
	if (rex)
		b[n++] = (uint8_t)(0x40 | rex);
	b[n++] = 0x0f;
	if (map == 1)
		b[n++] = 0x38;
	if (map == 2)
		b[n++] = 0x3a;
	b[n++] = op;
	if (mem) {
		b[n++] = (uint8_t)(0x40 | (reg & 7) << 3 | 3);
		b[n++] = 0;	/* disp8, set per case */
	} else {
		b[n++] = (uint8_t)(0xc0 | (reg & 7) << 3 | (rm & 7));
	}
	b[n++] = 0;		/* imm8 if any, set per case */
	if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(dec, b, n, zi, zo)))
		return false;
	if (zi->encoding != ZYDIS_INSTRUCTION_ENCODING_LEGACY || !sse_ext(zi->meta.isa_ext) ||
	    sse_skip(zi->mnemonic))
		return false;
	*len = zi->length;
	return true;
}

/* The offsets of disp8 and imm8 in an encoded form (from Zydis's raw info). */
struct sse_form {
	uint8_t b[16];
	unsigned len;
	int disp_off, imm_off;
	unsigned memsize;
	bool align;
	char name[32];
};

static void sse_run_form(const struct sse_form *f, unsigned cases)
{
	uint8_t b[16];
	struct sd_regs r;

	sd_forms++;
	for (unsigned c = 0; c < cases; c++) {
		memcpy(b, f->b, f->len);
		if (f->disp_off >= 0) {
			int8_t d = (int8_t)((sd_rnd() % 16) * 16 - 128);

			if (sd_rnd() % 8 == 0)
				d = (int8_t)(d + 1 + sd_rnd() % 15);	/* misaligned */
			b[f->disp_off] = (uint8_t)d;
		}
		if (f->imm_off >= 0)
			b[f->imm_off] = (uint8_t)sd_rnd();
		sd_random_start(&r, sse_lane(f->name), c % 4 == 3);
		if (!strncmp(f->name, "maskmov", 7))	/* stores through [RDI] */
			r.gpr[EMU_RDI] = SD_MEM + (sd_rnd() % 64) * 4;
		if (!sd_case(f->name, b, f->len, &r))
			break;
	}
}

TEST(sse_every_form_against_host)
{
	static const uint8_t pfxs[] = { 0, 0x66, 0xf2, 0xf3 };
	ZydisDecoder dec;
	ZydisDecodedInstruction zi;
	ZydisDecodedOperand zo[ZYDIS_MAX_OPERAND_COUNT];
	unsigned forms = 0;

	sd_init();
	ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
	for (unsigned map = 0; map < 3; map++)
		for (unsigned op = 0; op < 256; op++)
			for (unsigned p = 0; p < 4; p++)
				for (unsigned v = 0; v < 6; v++) {
					struct sse_form f;
					bool mem = v & 1;
					unsigned rex = (v >> 1) == 1 ? 8 : (v >> 1) == 2 ? 5 : 0;
					unsigned reg = 1 + (unsigned)(sd_rnd() % 2) * 5;
					unsigned rm = 2 + (unsigned)(sd_rnd() % 2) * 5;

					memset(&f, 0, sizeof(f));
					if (!sse_encode(&dec, pfxs[p], map, (uint8_t)op, mem, rex, reg,
							rm, f.b, &f.len, &zi, zo))
						continue;
					f.disp_off = zi.raw.disp.size ? zi.raw.disp.offset : -1;
					f.imm_off = zi.raw.imm[0].size ? zi.raw.imm[0].offset : -1;
					snprintf(f.name, sizeof f.name, "%s%s%s",
						 ZydisMnemonicGetString(zi.mnemonic),
						 mem ? " mem" : "", rex & 8 ? " w" : "");
					sse_run_form(&f, 40);
					forms++;
				}
	printf("    %u SSE/MMX forms, %u cases, %u faults compared, %u differences\n", forms,
	       sd_cases, sd_faults, sd_diffs);
	CHECK(forms > 500);
	CHECK_EQ_U64(sd_diffs, 0);
}

/* lock cmpxchg16b [rbx+disp8]: equal and unequal, and the alignment #GP. */
TEST(sse_cmpxchg16b)
{
	uint8_t b[] = { 0xf0, 0x48, 0x0f, 0xc7, 0x4b, 0x00 };
	struct sd_regs r;
	unsigned before = sd_diffs;

	sd_init();
	for (int c = 0; c < 64; c++) {
		sd_random_start(&r, 8, false);
		b[5] = (uint8_t)(c % 8 == 7 ? 8 : (sd_rnd() % 8) * 16);
		if (c % 2) {
			memcpy(&r.gpr[EMU_RAX], sd_nbuf + 0x1000 + b[5], 8);
			memcpy(&r.gpr[EMU_RDX], sd_nbuf + 0x1000 + b[5] + 8, 8);
		}
		sd_case("cmpxchg16b", b, sizeof b, &r);
	}
	CHECK_EQ_U64(sd_diffs, before);
}

/* Forms CPUID does not offer are #UD: CMPXCHG16B without CX16, PSHUFB without SSSE3,
 * HADDPS without SSE3 (each decoded afresh: the machine is new). */
TEST(sse_ud_when_not_offered)
{
	static const uint8_t cx16[] = { 0x48, 0x0f, 0xc7, 0x0b };
	static const uint8_t pshufb[] = { 0x66, 0x0f, 0x38, 0x00, 0xc1 };
	static const uint8_t haddps[] = { 0xf2, 0x0f, 0x7c, 0xc1 };
	static const uint8_t ptest[] = { 0x66, 0x0f, 0x38, 0x17, 0xc1 };
	static const uint8_t aesenc[] = { 0x66, 0x0f, 0x38, 0xdc, 0xc1 };
	struct sd_regs r;

	sd_init();
	sd_ecx1 = 0;
	emu_cpu_destroy(sd_cpu);
	emu_machine_destroy(sd_machine);
	sd_machine = emu_machine_create();
	sd_cpu = emu_cpu_create(sd_machine, &sd_bus);
	sd_random_start(&r, 4, false);
	CHECK_EQ_U64(sd_emu(cx16, sizeof cx16, &r), 1 + 6);
	CHECK_EQ_U64(sd_emu(pshufb, sizeof pshufb, &r), 1 + 6);
	CHECK_EQ_U64(sd_emu(haddps, sizeof haddps, &r), 1 + 6);
	CHECK_EQ_U64(sd_emu(ptest, sizeof ptest, &r), 1 + 6);
	CHECK_EQ_U64(sd_emu(aesenc, sizeof aesenc, &r), 1 + 6);
	sd_ecx1 = SD_ECX1_ALL;
	emu_cpu_destroy(sd_cpu);
	emu_machine_destroy(sd_machine);
	sd_machine = emu_machine_create();
	sd_cpu = emu_cpu_create(sd_machine, &sd_bus);
	CHECK_EQ_U64(sd_emu(pshufb, sizeof pshufb, &r), 0);
}

/* CR0.EM / CR4.OSFXSR=0: #UD; CR0.TS: #NM; unmasked exception without OSXMMEXCPT: #UD. */
TEST(sse_control_register_rules)
{
	static const uint8_t addps[] = { 0x0f, 0x58, 0xc1 };
	static const uint8_t divss[] = { 0xf3, 0x0f, 0x5e, 0xc1 };
	struct emu_state st;
	struct sd_regs r;
	uint32_t mx = 0x1f80 & ~(1u << 9);	/* ZE unmasked */
	float one = 1.0f, zero = 0.0f;

	sd_init();
	sd_random_start(&r, 4, false);
	struct { uint64_t cr0, cr4; int want; } cases[] = {
		{ 0x80000031 | 4, 0x620, 1 + 6 },
		{ 0x80000031, 0x020, 1 + 6 },
		{ 0x80000031 | 8, 0x620, 1 + 7 },
		{ 0x80000031, 0x620, 0 },
	};
	for (unsigned i = 0; i < 4; i++) {
		st = sd_base;
		sd_base.cr0 = cases[i].cr0;
		sd_base.cr4 = cases[i].cr4;
		CHECK_EQ_U64(sd_emu(addps, sizeof addps, &r), cases[i].want);
		sd_base = st;
	}
	memcpy(r.fx + 24, &mx, 4);
	memcpy(r.fx + 160, &one, 4);
	memcpy(r.fx + 176, &zero, 4);
	st = sd_base;
	sd_base.cr4 = 0x220;
	CHECK_EQ_U64(sd_emu(divss, sizeof divss, &r), 1 + 6);
	sd_base = st;
	memcpy(&mx, r.fx + 24, 4);
	CHECK(mx & 4);	/* ZE flag set */
	memcpy(&one, r.fx + 160, 4);
	CHECK(one == 1.0f);	/* destination unchanged */
	memcpy(r.fx + 24, &(uint32_t){ 0x1f80 & ~(1u << 9) }, 4);
	CHECK_EQ_U64(sd_emu(divss, sizeof divss, &r), 1 + 19);
}

/* Run `code` from SD_CODE in the state `st` until `n` instructions ran; 0 or the exit. */
static int legacy_run(struct emu_state *st, const uint8_t *code, unsigned len, unsigned n)
{
	memset(sd_low + SD_CODE, 0x90, 64);
	memcpy(sd_low + SD_CODE, code, len);
	emu_machine_invalidate(sd_machine, SD_CODE, 64);
	emu_set_state(sd_cpu, st);
	for (unsigned i = 0; i < n; i++) {
		enum emu_exit e = emu_step(sd_cpu);

		if (e != EMU_EXIT_BUDGET)
			return 100 + e;
	}
	emu_get_state(sd_cpu, st);
	return st->rip == SD_CODE + len ? 0 : 99;
}

/* 32-bit protected mode (DS and FS bases, 32- and 16-bit addressing) and real mode: the
 * templates drop segment and address-size prefixes and the EA is the guest's. */
TEST(sse_x87_legacy_modes)
{
	static const uint8_t code32[] = {
		0x0f, 0x10, 0x4b, 0x10,		/* movups xmm1, [ebx+0x10] */
		0x0f, 0x58, 0x4b, 0x20,		/* addps xmm1, [ebx+0x20] */
		0x67, 0x0f, 0x28, 0x00,		/* movaps xmm0, [bx+si] */
		0xdd, 0x43, 0x40,		/* fld qword [ebx+0x40] */
		0xdc, 0x43, 0x50,		/* fadd qword [ebx+0x50] */
		0xdd, 0x5b, 0x48,		/* fstp qword [ebx+0x48] */
		0x66, 0x0f, 0x7e, 0xca,		/* movd edx, xmm1 */
		0x64, 0x0f, 0x10, 0x13,		/* movups xmm2, fs:[ebx] */
	};
	static const uint8_t code16[] = {
		0xd9, 0x04,			/* fld dword [si] */
		0xd9, 0x34,			/* fnstenv [si+0] (14-byte real-mode layout) */
	};
	struct emu_state st;
	float a[4] = { 1.5f, -2.0f, 3.25f, 1e30f }, b[4] = { 0.5f, 2.0f, -3.25f, 1e30f }, f;
	double x = 1.25, y = 2.5, z;
	uint8_t xm[16];
	uint16_t env[7];

	sd_init();
	memset(sd_nbuf, 0, SD_BUF_SIZE);
	memcpy(sd_ebuf + 0x1010, a, 16);
	memcpy(sd_ebuf + 0x1020, b, 16);
	for (int i = 0; i < 16; i++)
		sd_ebuf[0x1030 + i] = (uint8_t)(0xa0 + i);
	memcpy(sd_ebuf + 0x1040, &x, 8);
	memcpy(sd_ebuf + 0x1050, &y, 8);
	for (int i = 0; i < 16; i++)
		sd_ebuf[0x1100 + i] = (uint8_t)(0x10 + i);

	st = sd_base;
	st.cr0 = 0x31;
	st.cr4 = 0x600;
	st.efer = 0;
	st.seg[EMU_CS].attr = 0xc09b;
	st.seg[EMU_DS].base = SD_BUF_ADDR;
	st.seg[EMU_FS].base = SD_BUF_ADDR + 0x100;
	st.gpr[EMU_RBX] = 0x1000;
	st.gpr[EMU_RSI] = 0x30;
	st.gpr[EMU_RDX] = 0xdeadbeef;
	memset(st.fxsave, 0, 512);
	st.fxsave[0] = 0x7f, st.fxsave[1] = 0x03;
	st.fxsave[24] = 0x80, st.fxsave[25] = 0x1f;
	CHECK_EQ_U64(legacy_run(&st, code32, sizeof code32, 8), 0);
	memcpy(&f, st.fxsave + 160 + 16, 4);
	CHECK(f == 2.0f);
	memcpy(&f, st.fxsave + 160 + 16 + 12, 4);
	CHECK(f == 2e30f);
	CHECK_EQ_U64(st.gpr[EMU_RDX], 0x40000000);	/* low lane of xmm1: 2.0f */
	for (int i = 0; i < 16; i++)
		xm[i] = (uint8_t)(0xa0 + i);
	CHECK(!memcmp(st.fxsave + 160, xm, 16));
	for (int i = 0; i < 16; i++)
		xm[i] = (uint8_t)(0x10 + i);
	CHECK(!memcmp(st.fxsave + 160 + 32, xm, 16));
	memcpy(&z, sd_ebuf + 0x1048, 8);
	CHECK(z == 3.75);
	CHECK_EQ_U64(st.fxsave[4], 0);	/* stack empty again */
	/* FIP/FCS/FDP/FDS of the last x87 instruction (the FSTP) in the FXSAVE image */
	CHECK_EQ_U64(st.fxsave[8] | st.fxsave[9] << 8, (SD_CODE + 18) & 0xffff);
	CHECK_EQ_U64(st.fxsave[16] | st.fxsave[17] << 8, 0x1048);
	CHECK_EQ_U64((st.fxsave[6] | st.fxsave[7] << 8), 0x55b);	/* FOP: DD 5B */

	/* real mode: FLD m32, then FNSTENV's real-mode layout (linear FIP in two parts) */
	f = 3.0f;
	st = sd_base;
	emu_reset_state(&st);
	st.seg[EMU_CS].sel = 0x1000;
	st.seg[EMU_CS].base = 0x10000;
	st.rip = 0;
	st.seg[EMU_DS].sel = 0x3000;
	st.seg[EMU_DS].base = 0x30000;
	st.gpr[EMU_RSI] = 0x200;
	st.cr4 = 0x600;
	memset(st.fxsave, 0, 512);
	st.fxsave[0] = 0x7f, st.fxsave[1] = 0x03;
	st.fxsave[24] = 0x80, st.fxsave[25] = 0x1f;
	memcpy(sd_low + 0x30200, &f, 4);
	memset(sd_low + SD_CODE, 0x90, 64);
	memcpy(sd_low + SD_CODE, code16, sizeof code16);
	emu_machine_invalidate(sd_machine, SD_CODE, 64);
	emu_set_state(sd_cpu, &st);
	CHECK_EQ_U64(emu_step(sd_cpu), EMU_EXIT_BUDGET);
	CHECK_EQ_U64(emu_step(sd_cpu), EMU_EXIT_BUDGET);
	emu_get_state(sd_cpu, &st);
	CHECK_EQ_U64(st.rip, sizeof code16);
	memcpy(env, sd_low + 0x30200, 14);
	CHECK_EQ_U64(env[0], 0x37f);
	CHECK_EQ_U64((env[1] >> 11) & 7, 7);		/* TOP after one load */
	CHECK_EQ_U64(env[2], 0x3fff);			/* ST0 valid, the rest empty */
	CHECK_EQ_U64(env[3], 0x0000);			/* FIP 15..0 of linear 0x10000 */
	CHECK_EQ_U64(env[4], 0x1000 | 0x104);		/* FIP 19..16, FOP D9 04 */
	CHECK_EQ_U64(env[5], 0x0200);			/* FDP 15..0 of linear 0x30200 */
	CHECK_EQ_U64(env[6], 0x3000);			/* FDP 19..16 */
}
