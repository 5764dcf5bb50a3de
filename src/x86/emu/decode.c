/*
 * decode.c: Zydis 4 decodes each instruction once (on a cache miss) and the result is
 * turned into the compact struct emu_insn with its handler chosen here: a core handler for
 * the integer instructions (exec_*.c), the system half's emu_sys_handler() otherwise, or
 * a handler that stops with a clear "unsupported" message. Decoder modes follow the CPUID
 * policy (softcpu.md §2, §3.7): LZCNT/TZCNT off (F3 0F BC/BD are BSF/BSR), MPX off, AMD
 * branch semantics, CET off (ENDBR is a hint NOP; 3E stays a DS override). Invalid
 * encodings raise #UD when executed.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "exec.h"
#include "simd.h"

static const struct {
	ZydisMachineMode mm;
	ZydisStackWidth sw;
} emu_zmodes[EMU_NMODES] = {
	[EMU_MODE_REAL] = { ZYDIS_MACHINE_MODE_REAL_16, ZYDIS_STACK_WIDTH_16 },
	[EMU_MODE_VM86] = { ZYDIS_MACHINE_MODE_REAL_16, ZYDIS_STACK_WIDTH_16 },
	[EMU_MODE_PROT16] = { ZYDIS_MACHINE_MODE_LEGACY_16, ZYDIS_STACK_WIDTH_16 },
	[EMU_MODE_PROT32] = { ZYDIS_MACHINE_MODE_LEGACY_32, ZYDIS_STACK_WIDTH_32 },
	[EMU_MODE_COMPAT16] = { ZYDIS_MACHINE_MODE_LONG_COMPAT_16, ZYDIS_STACK_WIDTH_16 },
	[EMU_MODE_COMPAT32] = { ZYDIS_MACHINE_MODE_LONG_COMPAT_32, ZYDIS_STACK_WIDTH_32 },
	[EMU_MODE_LONG64] = { ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64 },
};

int emu_decoder_init(struct emu_core *core)
{
	for (int i = 0; i < EMU_NMODES; i++) {
		ZydisDecoder *d = &core->dec[i];

		if (!ZYAN_SUCCESS(ZydisDecoderInit(d, emu_zmodes[i].mm, emu_zmodes[i].sw)))
			return -EINVAL;
		ZydisDecoderEnableMode(d, ZYDIS_DECODER_MODE_LZCNT, ZYAN_FALSE);
		ZydisDecoderEnableMode(d, ZYDIS_DECODER_MODE_TZCNT, ZYAN_FALSE);
		ZydisDecoderEnableMode(d, ZYDIS_DECODER_MODE_MPX, ZYAN_FALSE);
		ZydisDecoderEnableMode(d, ZYDIS_DECODER_MODE_AMD_BRANCHES, ZYAN_TRUE);
		ZydisDecoderEnableMode(d, ZYDIS_DECODER_MODE_CET, ZYAN_FALSE);
	}
	if (!ZYAN_SUCCESS(ZydisFormatterInit(&core->fmt, ZYDIS_FORMATTER_STYLE_INTEL)))
		return -EINVAL;
	return 0;
}

static uint8_t conv_reg(ZydisRegister r)
{
	ZydisRegister big;

	switch (r) {
	case ZYDIS_REGISTER_AH:
		return EMU_REG_HIGH8 + 0;
	case ZYDIS_REGISTER_CH:
		return EMU_REG_HIGH8 + 1;
	case ZYDIS_REGISTER_DH:
		return EMU_REG_HIGH8 + 2;
	case ZYDIS_REGISTER_BH:
		return EMU_REG_HIGH8 + 3;
	default:
		break;
	}
	switch (ZydisRegisterGetClass(r)) {
	case ZYDIS_REGCLASS_GPR8:
	case ZYDIS_REGCLASS_GPR16:
	case ZYDIS_REGCLASS_GPR32:
	case ZYDIS_REGCLASS_GPR64:
		big = ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, r);
		return big - ZYDIS_REGISTER_RAX;
	case ZYDIS_REGCLASS_SEGMENT:
		return EMU_REG_SREG + (r - ZYDIS_REGISTER_ES);
	case ZYDIS_REGCLASS_CONTROL:
		return EMU_REG_CR + (r - ZYDIS_REGISTER_CR0);
	case ZYDIS_REGCLASS_DEBUG:
		return EMU_REG_DR + (r - ZYDIS_REGISTER_DR0);
	case ZYDIS_REGCLASS_X87:
		return EMU_REG_MM + (r - ZYDIS_REGISTER_ST0);
	case ZYDIS_REGCLASS_MMX:
		return EMU_REG_MM + (r - ZYDIS_REGISTER_MM0);
	case ZYDIS_REGCLASS_XMM:
		return EMU_REG_XMM + (r - ZYDIS_REGISTER_XMM0);
	default:
		return EMU_REG_NONE;
	}
}

static void conv_op(const ZydisDecodedOperand *zo, struct emu_operand *op)
{
	memset(op, 0, sizeof(*op));
	op->size = zo->size / 8;
	op->base = op->index = EMU_REG_NONE;
	switch (zo->type) {
	case ZYDIS_OPERAND_TYPE_REGISTER:
		op->kind = EMU_OPK_REG;
		op->reg = conv_reg(zo->reg.value);
		break;
	case ZYDIS_OPERAND_TYPE_MEMORY:
		op->kind = EMU_OPK_MEM;
		op->seg = zo->mem.segment >= ZYDIS_REGISTER_ES && zo->mem.segment <= ZYDIS_REGISTER_GS
				  ? zo->mem.segment - ZYDIS_REGISTER_ES
				  : EMU_DS;
		if (zo->mem.base == ZYDIS_REGISTER_RIP || zo->mem.base == ZYDIS_REGISTER_EIP) {
			op->rip_rel = 1;
			op->base = 0;
		} else if (zo->mem.base != ZYDIS_REGISTER_NONE) {
			op->base = conv_reg(zo->mem.base);
		}
		if (zo->mem.index != ZYDIS_REGISTER_NONE)
			op->index = conv_reg(zo->mem.index);
		op->scale = zo->mem.scale ? zo->mem.scale : 1;
		op->disp = zo->mem.disp.value;
		break;
	case ZYDIS_OPERAND_TYPE_IMMEDIATE:
		op->kind = EMU_OPK_IMM;
		op->imm = zo->imm.is_signed ? (uint64_t)zo->imm.value.s : zo->imm.value.u;
		break;
	case ZYDIS_OPERAND_TYPE_POINTER:
		op->kind = EMU_OPK_PTR;
		op->disp = zo->ptr.offset;
		op->imm = zo->ptr.segment;
		break;
	default:
		break;
	}
}

static bool has_reg_class(const struct emu_insn *in, unsigned lo, unsigned hi)
{
	for (int i = 0; i < in->nops; i++)
		if (in->op[i].kind == EMU_OPK_REG && in->op[i].reg >= lo && in->op[i].reg < hi)
			return true;
	return false;
}

/* System-half handlers run with st.rip at the instruction (their contract). */
static int exec_sys(struct emu_cpu *cpu, const struct emu_insn *in)
{
	int r;

	cpu->st.rip = cpu->insn_rip;
	emu_fast_off(cpu);	/* modes and privileges may change inside: full checks */
	r = in->sys_exec(cpu, in);
	emu_fast_refresh(cpu);	/* for the traces chained after this one */
	emu_core(cpu)->fetch_valid = false;
	if (cpu->sys.bus_stop)
		cpu->brk = true;
	return r;
}

int emu_exec_ud(struct emu_cpu *cpu, const struct emu_insn *in)
{
	return emu_ud(cpu);
}

static int exec_unsupported(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint8_t bytes[15];
	char text[96];
	uint64_t lin = cpu->st.seg[EMU_CS].base + cpu->insn_rip;

	if (cpu->mode == EMU_MODE_LONG64)
		lin = cpu->insn_rip;
	else
		lin &= 0xffffffffull;
	if (emu_lin_read(cpu, lin, bytes, in->len, EMU_ACC_EXEC)) {
		cpu->fault.pending = false;
		snprintf(text, sizeof(text), "(mnemonic %s)",
			 ZydisMnemonicGetString((ZydisMnemonic)in->mnemonic));
	} else {
		emu_disasm(cpu, bytes, in->len, text, sizeof(text));
	}
	return emu_unsupported(cpu, "unsupported instruction: %s", text);
}

void emu_disasm(struct emu_cpu *cpu, const uint8_t *bytes, unsigned len, char *buf,
		size_t size)
{
	struct emu_core *core = emu_core(cpu);
	ZydisDecodedInstruction zi;
	ZydisDecodedOperand zo[ZYDIS_MAX_OPERAND_COUNT];

	if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&core->dec[cpu->mode], bytes, len, &zi, zo)) ||
	    !ZYAN_SUCCESS(ZydisFormatterFormatInstruction(&core->fmt, &zi, zo,
							   zi.operand_count_visible, buf, size,
							   cpu->insn_rip, NULL)))
		snprintf(buf, size, "(undecodable)");
}

int emu_decode(struct emu_cpu *cpu, const uint8_t *bytes, unsigned avail, struct emu_insn *in)
{
	struct emu_core *core = emu_core(cpu);
	ZydisDecodedInstruction zi;
	ZydisDecodedOperand zo[ZYDIS_MAX_OPERAND_COUNT];
	ZyanStatus st;
	emu_exec_fn fn = NULL;
	bool sys = true;

	st = ZydisDecoderDecodeFull(&core->dec[cpu->mode], bytes, avail, &zi, zo);
	memset(in, 0, sizeof(*in));
	if (st == ZYDIS_STATUS_NO_MORE_DATA && avail < 15)
		return -EAGAIN;
	if (!ZYAN_SUCCESS(st)) {
		in->exec = emu_exec_ud;
		in->len = 1;
		in->flags = EMU_IF_END_TRACE;
		return -EINVAL;
	}
	in->mnemonic = zi.mnemonic;
	in->len = zi.length;
	in->opsize = zi.operand_width / 8;
	in->addrsize = zi.address_width / 8;
	in->opcode = zi.opcode;
	in->cc = zi.opcode & 0xf;
	in->stack_opsize = in->opsize;
	if (zi.attributes & ZYDIS_ATTRIB_HAS_LOCK)
		in->prefixes |= EMU_PFX_LOCK;
	if (zi.attributes & ZYDIS_ATTRIB_HAS_REP || zi.attributes & ZYDIS_ATTRIB_HAS_REPE)
		in->prefixes |= EMU_PFX_REP;
	if (zi.attributes & ZYDIS_ATTRIB_HAS_REPNE)
		in->prefixes |= EMU_PFX_REPNE;
	in->nops = zi.operand_count_visible < 4 ? zi.operand_count_visible : 4;
	/* Hidden operands too: string instructions find their (overridden) segments there. */
	for (int i = 0; i < zi.operand_count && i < 4; i++)
		conv_op(&zo[i], &in->op[i]);

	if (zi.meta.branch_type == ZYDIS_BRANCH_TYPE_FAR)
		in->flags |= EMU_IF_FAR;
	else if ((zi.meta.category == ZYDIS_CATEGORY_COND_BR ||
		  (zi.meta.category == ZYDIS_CATEGORY_UNCOND_BR && zi.mnemonic == ZYDIS_MNEMONIC_JMP)) &&
		 in->op[0].kind == EMU_OPK_IMM)
		in->flags |= EMU_IF_REL_BRANCH;
	switch (zi.meta.category) {
	case ZYDIS_CATEGORY_UNCOND_BR:
	case ZYDIS_CATEGORY_CALL:
	case ZYDIS_CATEGORY_RET:
	case ZYDIS_CATEGORY_INTERRUPT:
	case ZYDIS_CATEGORY_SYSCALL:
	case ZYDIS_CATEGORY_SYSRET:
		in->flags |= EMU_IF_END_TRACE;
		break;
	default:
		break;
	}
	/* POPF may set TF or IF: take both at the next boundary */
	if (zi.mnemonic == ZYDIS_MNEMONIC_POPF || zi.mnemonic == ZYDIS_MNEMONIC_POPFD ||
	    zi.mnemonic == ZYDIS_MNEMONIC_POPFQ)
		in->flags |= EMU_IF_END_TRACE;
	fn = emu_sys_handler_insn(in);
	if (!fn && (fn = emu_simd_handler(cpu, in, bytes, &zi, zo)))
		sys = false;
	if (!fn && !(in->flags & EMU_IF_FAR) && !has_reg_class(in, EMU_REG_SREG, EMU_REG_MM)) {
		fn = emu_core_handler(in, zi.mnemonic);
		sys = !fn;
	}
	if (!fn)
		fn = emu_sys_handler(zi.mnemonic);
	if (fn && sys) {
		in->flags |= EMU_IF_SYS | EMU_IF_END_TRACE;
		in->sys_exec = fn;
		fn = exec_sys;
	}
	if (!fn) {
		fn = exec_unsupported;
		in->flags |= EMU_IF_END_TRACE;
	}
	if ((in->prefixes & EMU_PFX_LOCK) && !sys &&
	    (in->nops == 0 || in->op[0].kind != EMU_OPK_MEM))
		fn = emu_exec_ud;
	in->exec = fn;
	return 0;
}
