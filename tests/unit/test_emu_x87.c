/*
 * test_emu_x87.c: differential tests of the interpreter's x87 instructions against the host
 * CPU (harness in simd_diff.h): every D8-DF encoding Zydis decodes, register forms (all 512
 * ModRM values) and memory forms ([RBX+disp8], every /digit, m16/m32/m64 integers, m32/m64/
 * m80 reals, m80 BCD, control/status words, FNSTENV/FLDENV/FNSAVE/FRSTOR in 16- and 32-bit
 * forms), on random stacks (TOP, tags, zeros, denormals, pseudo-denormals, unnormals,
 * infinities, QNaN/SNaN) under every precision and rounding control, with exceptions masked
 * and unmasked (the unmasked responses and pending #MF at the next waiting instruction).
 * Also CR0.NE=0 (FERR#: the vCPU stops) and a real-mode FNSAVE/FRSTOR round trip.
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

/* A pending unmasked exception at a waiting instruction: #MF with CR0.NE=1; with CR0.NE=0
 * (FERR#, not modelled) the vCPU stops with a message instead of going on wrongly. */
TEST(x87_pending_exception_ne)
{
	static const uint8_t fdiv_wait[] = { 0xd9, 0xee, 0xd9, 0xe8, 0xde, 0xf1, 0x9b };
	struct emu_state st;
	uint16_t fcw = 0x037b;	/* ZE unmasked */

	sd_init();
	st = sd_base;
	memset(st.fxsave, 0, 512);
	memcpy(st.fxsave, &fcw, 2);
	st.fxsave[24] = 0x80, st.fxsave[25] = 0x1f;
	memset(sd_low + SD_CODE, 0x90, 32);
	memcpy(sd_low + SD_CODE, fdiv_wait, sizeof fdiv_wait);	/* fldz; fld1; fdivrp; fwait */
	emu_machine_invalidate(sd_machine, SD_CODE, 32);
	emu_set_state(sd_cpu, &st);
	for (int i = 0; i < 3; i++)
		CHECK_EQ_U64(emu_step(sd_cpu), EMU_EXIT_BUDGET);
	emu_get_state(sd_cpu, &st);
	CHECK_EQ_U64(st.rip, SD_CODE + 6);
	CHECK_EQ_U64(st.fxsave[2] & 0x84, 0x84);	/* ZE and ES */
	CHECK_EQ_U64(emu_step(sd_cpu), EMU_EXIT_BUDGET);	/* FWAIT -> #MF */
	emu_get_state(sd_cpu, &st);
	CHECK_EQ_U64(st.rip, SD_HANDLERS + 16);

	st.rip = SD_CODE + 6;
	st.cr0 &= ~0x20ull;
	emu_set_state(sd_cpu, &st);
	CHECK_EQ_U64(emu_step(sd_cpu), EMU_EXIT_UNSUPPORTED);
	CHECK(strstr(emu_last_error(sd_cpu), "FERR") != NULL);
}

/* FNSAVE then FRSTOR with the 32-bit layout in real mode (66 prefix): the registers, tags,
 * control and status words come back. */
TEST(x87_fnsave_frstor_real_mode_round_trip)
{
	static const uint8_t code[] = {
		0xd9, 0xeb, 0xd9, 0xe8, 0xd9, 0xee,	/* fldpi; fld1; fldz */
		0x66, 0xdd, 0x34,			/* fnsave [si] (108 bytes) */
		0x66, 0xdd, 0x24,			/* frstor [si] */
	};
	struct emu_state st, before;

	sd_init();
	st = sd_base;
	emu_reset_state(&st);
	st.seg[EMU_CS].sel = 0x1000;
	st.seg[EMU_CS].base = 0x10000;
	st.rip = 0;
	st.seg[EMU_DS].sel = 0x3000;
	st.seg[EMU_DS].base = 0x30000;
	st.gpr[EMU_RSI] = 0x100;
	memset(st.fxsave, 0, 512);
	st.fxsave[0] = 0x7f, st.fxsave[1] = 0x03;
	st.fxsave[24] = 0x80, st.fxsave[25] = 0x1f;
	memset(sd_low + SD_CODE, 0x90, 32);
	memcpy(sd_low + SD_CODE, code, sizeof code);
	emu_machine_invalidate(sd_machine, SD_CODE, 32);
	emu_set_state(sd_cpu, &st);
	for (int i = 0; i < 3; i++)
		CHECK_EQ_U64(emu_step(sd_cpu), EMU_EXIT_BUDGET);
	emu_get_state(sd_cpu, &before);
	CHECK_EQ_U64(emu_step(sd_cpu), EMU_EXIT_BUDGET);
	emu_get_state(sd_cpu, &st);
	CHECK_EQ_U64(st.fxsave[4], 0);			/* FNSAVE initialised: all empty */
	CHECK_EQ_U64(st.fxsave[2] | st.fxsave[3] << 8, 0);
	/* FTW: physical 0-4 empty, 5 zero (FLDZ), 6-7 valid */
	CHECK_EQ_U64(sd_low[0x30100 + 8] | sd_low[0x30100 + 9] << 8, 0x07ff);
	CHECK_EQ_U64(emu_step(sd_cpu), EMU_EXIT_BUDGET);
	emu_get_state(sd_cpu, &st);
	CHECK_EQ_U64(st.rip, sizeof code);
	CHECK(!memcmp(st.fxsave, before.fxsave, 6));	/* FCW FSW (TOP 5) FTW */
	for (int i = 0; i < 8; i++)
		CHECK(!memcmp(st.fxsave + 32 + 16 * i, before.fxsave + 32 + 16 * i, 10));
}
