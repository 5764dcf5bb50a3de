/*
 * test_emu_x87.c: differential tests of the interpreter's x87 instructions against the host
 * CPU (harness in simd_diff.h): every D8-DF encoding Zydis decodes, register forms (all 512
 * ModRM values) and memory forms ([RBX+disp8], every /digit, m16/m32/m64 integers, m32/m64/
 * m80 reals, m80 BCD, control/status words, FNSTENV/FLDENV/FNSAVE/FRSTOR in 16- and 32-bit
 * forms), on random stacks (TOP, tags, zeros, denormals, pseudo-denormals, unnormals,
 * infinities, QNaN/SNaN) under every precision and rounding control, with exceptions masked
 * and unmasked (the unmasked responses and pending #MF at the next waiting instruction).
 */
#include "simd_diff.h"

static void x87_run(const char *name, const uint8_t *b0, unsigned len, int disp_off,
		    unsigned ign_len, unsigned cases)
{
	uint8_t b[16];
	struct sd_regs r;

	sd_forms++;
	for (unsigned c = 0; c < cases; c++) {
		memcpy(b, b0, len);
		sd_ign_len = 0;
		if (disp_off >= 0) {
			int8_t d = (int8_t)((sd_rnd() % 16) * 8 - 64);

			b[disp_off] = (uint8_t)d;
			sd_ign_off = (unsigned)(0x1000 + d + (ign_len == 16 ? 6 : 12));
			sd_ign_len = ign_len == 16 ? 8 : ign_len;
		}
		sd_random_start(&r, 8, c % 3 == 2);
		if (c % 8 == 7) {
			/* a pending unmasked exception: waiting forms must raise #MF */
			uint16_t fcw = 0x0370, fsw;

			memcpy(&fsw, r.fx + 2, 2);
			fsw |= 0x8081;
			memcpy(r.fx, &fcw, 2);
			memcpy(r.fx + 2, &fsw, 2);
		}
		if (!sd_case(name, b, len, &r))
			break;
	}
	sd_ign_len = 0;
}

TEST(x87_every_form_against_host)
{
	ZydisDecoder dec;
	ZydisDecodedInstruction zi;
	ZydisDecodedOperand zo[ZYDIS_MAX_OPERAND_COUNT];
	unsigned forms = 0;

	sd_init();
	ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
	for (unsigned op = 0xd8; op <= 0xdf; op++) {
		for (unsigned m = 0; m < 256 + 16; m++) {
			uint8_t b[8];
			unsigned n = 0, ign = 0;
			bool mem = m >= 256;
			char name[40];

			if (!mem && m < 0xc0)
				continue;
			if (mem && (m - 256) >= 8)
				b[n++] = 0x66;	/* 16-bit operand size (FNSTENV and friends) */
			b[n++] = (uint8_t)op;
			b[n++] = mem ? (uint8_t)(0x43 | ((m - 256) & 7) << 3) : (uint8_t)m;
			if (mem)
				b[n++] = 0;
			if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&dec, b, n, &zi, zo)) ||
			    zi.meta.isa_ext != ZYDIS_ISA_EXT_X87)
				continue;
			if (mem && b[0] == 0x66 && zi.mnemonic != ZYDIS_MNEMONIC_FNSTENV &&
			    zi.mnemonic != ZYDIS_MNEMONIC_FLDENV && zi.mnemonic != ZYDIS_MNEMONIC_FNSAVE &&
			    zi.mnemonic != ZYDIS_MNEMONIC_FRSTOR)
				continue;
			if (zi.mnemonic == ZYDIS_MNEMONIC_FNSTENV || zi.mnemonic == ZYDIS_MNEMONIC_FNSAVE)
				ign = b[0] == 0x66 ? 16 : 16;
			snprintf(name, sizeof name, "%s%s%s", ZydisMnemonicGetString(zi.mnemonic),
				 mem ? " mem" : "", b[0] == 0x66 ? "16" : "");
			x87_run(name, b, n, mem ? (int)n - 1 : -1, ign, 60);
			forms++;
		}
	}
	printf("    %u x87 forms, %u cases, %u faults compared, %u differences\n", forms, sd_cases,
	       sd_faults, sd_diffs);
	CHECK(forms > 300);
	CHECK_EQ_U64(sd_diffs, 0);
}
