/*
 * sys_seg.c: segment and descriptor-table instructions (SDM Vol. 2): MOV/PUSH/POP Sreg,
 * LDS/LES/LFS/LGS/LSS, far JMP/CALL/RET (direct, indirect, same-privilege call gates, outer
 * returns), LGDT/LIDT/SGDT/SIDT, LLDT/SLDT, LTR/STR, LAR/LSL/VERR/VERW, ARPL.
 * Left out (stop as unsupported): task switches through TSS descriptors and task gates,
 * calls through a gate to a more privileged level.
 */
#include <Zydis/Zydis.h>
#include "x86/emu/emu_internal.h"

#define EFER_LMA (1ull << 10)
#define RF_ZF (1ull << 6)

static bool prot_mode(const struct emu_cpu *cpu)
{
	return cpu->mode != EMU_MODE_REAL && cpu->mode != EMU_MODE_VM86;
}

static void set_zf(struct emu_cpu *cpu, bool zf)
{
	uint64_t f = emu_get_rflags(cpu);

	emu_set_rflags(cpu, zf ? f | RF_ZF : f & ~RF_ZF);
}

static unsigned stack_opsize(const struct emu_insn *in)
{
	return in->stack_opsize ? in->stack_opsize : in->opsize;
}

/* ---- MOV/PUSH/POP Sreg, LxS ---- */

static int exec_mov_sreg(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t v;
	int r;

	if (in->op[0].kind == EMU_OPK_REG && in->op[0].reg >= EMU_REG_SREG &&
	    in->op[0].reg < EMU_REG_SREG + EMU_NSREGS) {
		int sreg = in->op[0].reg - EMU_REG_SREG;

		if (sreg == EMU_CS)
			return emu_ud(cpu);
		if ((r = emu_op_read(cpu, in, 1, &v)))
			return r;
		if ((r = emu_load_seg(cpu, sreg, (uint16_t)v)))
			return r;
		if (sreg == EMU_SS)
			cpu->st.interrupt_shadow = true;
	} else {
		v = cpu->st.seg[in->op[1].reg - EMU_REG_SREG].sel;
		if ((r = emu_op_write(cpu, in, 0, v)))
			return r;
	}
	cpu->st.rip = emu_next_rip(cpu, in);
	return EMU_OK;
}

static int exec_push_sreg(struct emu_cpu *cpu, const struct emu_insn *in)
{
	int r = emu_push(cpu, cpu->st.seg[in->op[0].reg - EMU_REG_SREG].sel, stack_opsize(in));

	if (r)
		return r;
	cpu->st.rip = emu_next_rip(cpu, in);
	return EMU_OK;
}

static int exec_pop_sreg(struct emu_cpu *cpu, const struct emu_insn *in)
{
	int sreg = in->op[0].reg - EMU_REG_SREG;
	unsigned n = stack_opsize(in);
	uint64_t m = emu_size_mask(cpu->stack_size), sp = cpu->st.gpr[EMU_RSP] & m, v = 0;
	int r;

	if (sreg == EMU_CS)
		return emu_ud(cpu);
	if ((r = emu_mem_read(cpu, EMU_SS, sp, &v, n)))
		return r;
	if ((r = emu_load_seg(cpu, sreg, (uint16_t)v)))
		return r;
	m = emu_size_mask(cpu->stack_size);
	cpu->st.gpr[EMU_RSP] = (cpu->st.gpr[EMU_RSP] & ~m) | ((sp + n) & m);
	if (sreg == EMU_SS)
		cpu->st.interrupt_shadow = true;
	cpu->st.rip = emu_next_rip(cpu, in);
	return EMU_OK;
}

/* Read a far pointer m16:16/32/64 from memory operand `idx`: offset first, then selector. */
static int read_far_ptr(struct emu_cpu *cpu, const struct emu_insn *in, int idx, unsigned osz,
			uint16_t *sel, uint64_t *off)
{
	int sreg, r;
	uint64_t ea;

	if (in->op[idx].kind == EMU_OPK_PTR) {
		*sel = (uint16_t)in->op[idx].imm;
		*off = (uint64_t)in->op[idx].disp & emu_size_mask(osz);
		return 0;
	}
	if (in->op[idx].kind != EMU_OPK_MEM)
		return emu_ud(cpu);
	emu_op_ea(cpu, in, idx, &sreg, &ea);
	*off = 0;
	*sel = 0;
	if ((r = emu_mem_read(cpu, sreg, ea, off, osz)))
		return r;
	return emu_mem_read(cpu, sreg, (ea + osz) & emu_size_mask(in->addrsize), sel, 2);
}

static int exec_lxs(struct emu_cpu *cpu, const struct emu_insn *in)
{
	int sreg, r;
	uint16_t sel;
	uint64_t off;

	switch (in->mnemonic) {
	case ZYDIS_MNEMONIC_LDS: sreg = EMU_DS; break;
	case ZYDIS_MNEMONIC_LES: sreg = EMU_ES; break;
	case ZYDIS_MNEMONIC_LFS: sreg = EMU_FS; break;
	case ZYDIS_MNEMONIC_LGS: sreg = EMU_GS; break;
	default: sreg = EMU_SS; break;
	}
	if ((r = read_far_ptr(cpu, in, 1, in->opsize, &sel, &off)))
		return r;
	if ((r = emu_load_seg(cpu, sreg, sel)))
		return r;
	if ((r = emu_op_write(cpu, in, 0, off)))
		return r;
	cpu->st.rip = emu_next_rip(cpu, in);
	return EMU_OK;
}

/* ---- far JMP/CALL/RET ---- */

static void load_cs_real(struct emu_cpu *cpu, uint16_t sel)
{
	cpu->st.seg[EMU_CS].sel = sel;
	cpu->st.seg[EMU_CS].base = (uint32_t)sel << 4;
}

/* Target checks shared by JMP and CALL; fills the new CS and the entry offset. */
static int far_target(struct emu_cpu *cpu, uint16_t sel, uint64_t off, bool call,
		      unsigned *psize, struct emu_seg *ncs, uint64_t *noff)
{
	bool lm = cpu->st.efer & EFER_LMA;
	unsigned cpl = cpu->cpl, rpl = sel & 3, type, dpl;
	uint64_t d[2] = { 0, 0 };
	uint32_t err = sel & 0xfffc;

	if (!(sel & 0xfffc))
		return emu_gp0(cpu);
	if (emu_desc_read(cpu, sel, d, false, EMU_GP, 0))
		return EMU_FAULT;
	type = (d[0] >> 40) & 0x1f;
	dpl = (d[0] >> 45) & 3;
	if ((type & 0x18) == 0x18) {
		if ((type & 4) ? dpl > cpl : (rpl > cpl || dpl != cpl))
			return emu_fault(cpu, EMU_GP, err, true);
		if (lm && ((d[0] >> 53) & 1) && ((d[0] >> 54) & 1))
			return emu_fault(cpu, EMU_GP, err, true);
		if (!((d[0] >> 47) & 1))
			return emu_fault(cpu, EMU_NP, err, true);
		if (emu_desc_set_bits(cpu, sel, d[0], 1ull << 40))
			return EMU_FAULT;
		d[0] |= 1ull << 40;
		emu_desc_to_seg(d, (sel & 0xfffc) | cpl, ncs);
		*noff = off;
		return 0;
	}
	if (type == 0x04 || type == 0x0c) {	/* call gate */
		uint16_t tsel;
		uint64_t td[2] = { 0, 0 };
		unsigned tdpl;

		if (lm && type != 0x0c)
			return emu_fault(cpu, EMU_GP, err, true);
		if (lm && emu_desc_read(cpu, sel, d, true, EMU_GP, 0))
			return EMU_FAULT;
		if (dpl < cpl || dpl < rpl)
			return emu_fault(cpu, EMU_GP, err, true);
		if (!((d[0] >> 47) & 1))
			return emu_fault(cpu, EMU_NP, err, true);
		tsel = (d[0] >> 16) & 0xffff;
		*noff = (d[0] & 0xffff) | (type == 0x0c ? ((d[0] >> 48) << 16) : 0) |
			(lm ? d[1] << 32 : 0);
		*psize = lm ? 8 : type == 0x0c ? 4 : 2;
		if (!(tsel & 0xfffc))
			return emu_gp0(cpu);
		if (emu_desc_read(cpu, tsel, td, false, EMU_GP, 0))
			return EMU_FAULT;
		tdpl = (td[0] >> 45) & 3;
		if (((td[0] >> 43) & 3) != 3 || tdpl > cpl)
			return emu_fault(cpu, EMU_GP, tsel & 0xfffc, true);
		if (!((td[0] >> 42) & 1) && tdpl != cpl) {
			if (!call)
				return emu_fault(cpu, EMU_GP, tsel & 0xfffc, true);
			return emu_unsupported(cpu, "far CALL through a call gate to a more "
					       "privileged level");
		}
		if (lm && (!((td[0] >> 53) & 1) || ((td[0] >> 54) & 1)))
			return emu_fault(cpu, EMU_GP, tsel & 0xfffc, true);
		if (!((td[0] >> 47) & 1))
			return emu_fault(cpu, EMU_NP, tsel & 0xfffc, true);
		if (emu_desc_set_bits(cpu, tsel, td[0], 1ull << 40))
			return EMU_FAULT;
		td[0] |= 1ull << 40;
		emu_desc_to_seg(td, (tsel & 0xfffc) | cpl, ncs);
		return 0;
	}
	if (!lm && (type == 0x01 || type == 0x09 || type == 0x05))
		return emu_unsupported(cpu, "task switch through a far %s", call ? "CALL" : "JMP");
	return emu_fault(cpu, EMU_GP, err, true);
}

static int far_jmp_call(struct emu_cpu *cpu, const struct emu_insn *in, bool call)
{
	unsigned osz = in->opsize, psize;
	uint16_t sel;
	uint64_t off, noff = 0;
	struct emu_seg ncs;
	struct emu_stack stk;
	bool to64;
	int r;

	if ((r = read_far_ptr(cpu, in, 0, osz, &sel, &off)))
		return r;
	if (!prot_mode(cpu)) {
		off &= emu_size_mask(osz);
		if (off > cpu->st.seg[EMU_CS].limit)
			return emu_gp0(cpu);
		if (call) {
			emu_stack_current(cpu, &stk);
			if (emu_stack_push(cpu, &stk, cpu->st.seg[EMU_CS].sel, osz) ||
			    emu_stack_push(cpu, &stk, emu_next_rip(cpu, in), osz))
				return EMU_FAULT;
			emu_stack_commit(cpu, &stk);
		}
		load_cs_real(cpu, sel);
		if (cpu->mode == EMU_MODE_VM86)
			cpu->st.seg[EMU_CS].limit = 0xffff;
		cpu->st.rip = off;
		return EMU_OK;
	}
	psize = osz;
	if ((r = far_target(cpu, sel, off, call, &psize, &ncs, &noff)))
		return r;
	to64 = (cpu->st.efer & EFER_LMA) && (ncs.attr & EMU_SEG_ATTR_L);
	if (to64) {
		if (!emu_canonical(noff))
			return emu_gp0(cpu);
	} else {
		noff &= emu_size_mask(psize);
		if (noff > ncs.limit)
			return emu_gp0(cpu);
	}
	if (call) {
		emu_stack_current(cpu, &stk);
		if (emu_stack_push(cpu, &stk, cpu->st.seg[EMU_CS].sel, psize) ||
		    emu_stack_push(cpu, &stk, emu_next_rip(cpu, in), psize))
			return EMU_FAULT;
		emu_stack_commit(cpu, &stk);
	}
	cpu->st.seg[EMU_CS] = ncs;
	cpu->st.rip = noff;
	emu_update_mode(cpu);
	return EMU_OK;
}

static int exec_jmp_far(struct emu_cpu *cpu, const struct emu_insn *in)
{
	return far_jmp_call(cpu, in, false);
}

static int exec_call_far(struct emu_cpu *cpu, const struct emu_insn *in)
{
	return far_jmp_call(cpu, in, true);
}

static int exec_ret_far(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned osz = in->opsize, cpl = cpu->cpl;
	uint64_t imm = in->opcode == 0xca ? (uint16_t)in->op[0].imm : 0;
	uint64_t ip, csv, spv, ssv;
	struct emu_stack stk;
	struct emu_seg ncs, nss;
	bool outer, to64;

	emu_stack_current(cpu, &stk);
	if (emu_stack_pop(cpu, &stk, &ip, osz) || emu_stack_pop(cpu, &stk, &csv, osz))
		return EMU_FAULT;
	if (!prot_mode(cpu)) {
		if (ip > cpu->st.seg[EMU_CS].limit)
			return emu_gp0(cpu);
		stk.sp = (stk.sp + imm) & emu_size_mask(stk.size);
		emu_stack_commit(cpu, &stk);
		load_cs_real(cpu, csv);
		cpu->st.rip = ip;
		return EMU_OK;
	}
	if (emu_check_return_cs(cpu, csv, &ncs))
		return EMU_FAULT;
	to64 = (cpu->st.efer & EFER_LMA) && (ncs.attr & EMU_SEG_ATTR_L);
	outer = (csv & 3) > cpl;
	stk.sp = (stk.sp + imm) & emu_size_mask(stk.size);
	if (outer) {
		if (emu_stack_pop(cpu, &stk, &spv, osz) || emu_stack_pop(cpu, &stk, &ssv, osz))
			return EMU_FAULT;
		if (emu_check_return_ss(cpu, ssv, csv & 3, to64, &nss))
			return EMU_FAULT;
	}
	if (to64) {
		if (!emu_canonical(ip))
			return emu_gp0(cpu);
	} else if (ip > ncs.limit) {
		return emu_gp0(cpu);
	}
	cpu->st.seg[EMU_CS] = ncs;
	cpu->st.rip = ip;
	if (outer) {
		cpu->st.seg[EMU_SS] = nss;
		if (to64 || (nss.attr & EMU_SEG_ATTR_DB))
			cpu->st.gpr[EMU_RSP] = spv + imm;
		else
			cpu->st.gpr[EMU_RSP] = (cpu->st.gpr[EMU_RSP] & ~0xffffull) |
					       ((spv + imm) & 0xffff);
		emu_update_mode(cpu);
		emu_null_outer_segs(cpu);
	} else {
		emu_stack_commit(cpu, &stk);
		emu_update_mode(cpu);
	}
	return EMU_OK;
}

/* ---- descriptor tables ---- */

static int exec_lgdt_lidt(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint16_t limit = 0;
	uint64_t base = 0, ea;
	int sreg, r;
	unsigned bsz = cpu->mode == EMU_MODE_LONG64 ? 8 : 4;

	if (cpu->cpl)
		return emu_gp0(cpu);
	if (in->op[0].kind != EMU_OPK_MEM)
		return emu_ud(cpu);
	emu_op_ea(cpu, in, 0, &sreg, &ea);
	if ((r = emu_mem_read(cpu, sreg, ea, &limit, 2)) ||
	    (r = emu_mem_read(cpu, sreg, (ea + 2) & emu_size_mask(in->addrsize), &base, bsz)))
		return r;
	if (bsz == 8 && !emu_canonical(base))
		return emu_gp0(cpu);
	if (in->opsize == 2 && bsz == 4)
		base &= 0xffffff;
	if (in->mnemonic == ZYDIS_MNEMONIC_LGDT) {
		cpu->st.gdtr_base = base;
		cpu->st.gdtr_limit = limit;
	} else {
		cpu->st.idtr_base = base;
		cpu->st.idtr_limit = limit;
	}
	cpu->st.rip = emu_next_rip(cpu, in);
	return EMU_OK;
}

static int exec_sgdt_sidt(struct emu_cpu *cpu, const struct emu_insn *in)
{
	bool g = in->mnemonic == ZYDIS_MNEMONIC_SGDT;
	uint16_t limit = g ? cpu->st.gdtr_limit : cpu->st.idtr_limit;
	uint64_t base = g ? cpu->st.gdtr_base : cpu->st.idtr_base, ea;
	unsigned bsz = cpu->mode == EMU_MODE_LONG64 ? 8 : 4;
	int sreg, r;

	if (in->op[0].kind != EMU_OPK_MEM)
		return emu_ud(cpu);
	if (in->opsize == 2 && bsz == 4)
		base &= 0xffffff;
	emu_op_ea(cpu, in, 0, &sreg, &ea);
	if ((r = emu_mem_write(cpu, sreg, ea, &limit, 2)) ||
	    (r = emu_mem_write(cpu, sreg, (ea + 2) & emu_size_mask(in->addrsize), &base, bsz)))
		return r;
	cpu->st.rip = emu_next_rip(cpu, in);
	return EMU_OK;
}

/* LLDT and LTR: a system descriptor from the GDT. */
static int load_sys_desc(struct emu_cpu *cpu, const struct emu_insn *in, bool tr)
{
	bool lm = cpu->st.efer & EFER_LMA;
	uint64_t v, d[2] = { 0, 0 };
	uint16_t sel;
	unsigned type;
	struct emu_seg s;
	int r;

	if (!prot_mode(cpu))
		return emu_ud(cpu);
	if (cpu->cpl)
		return emu_gp0(cpu);
	if ((r = emu_op_read(cpu, in, 0, &v)))
		return r;
	sel = v;
	if (!(sel & 0xfffc)) {
		if (tr)
			return emu_gp0(cpu);
		cpu->st.ldtr = (struct emu_seg){ .sel = sel, .attr = EMU_SEG_ATTR_UNUSABLE };
		cpu->st.rip = emu_next_rip(cpu, in);
		return EMU_OK;
	}
	if (sel & 4)
		return emu_fault(cpu, EMU_GP, sel & 0xfffc, true);
	if (emu_desc_read(cpu, sel, d, lm, EMU_GP, 0))
		return EMU_FAULT;
	type = (d[0] >> 40) & 0x1f;
	if (tr ? !(type == 0x09 || (!lm && type == 0x01)) : type != 0x02)
		return emu_fault(cpu, EMU_GP, sel & 0xfffc, true);
	if (lm && !emu_canonical(((d[0] >> 16) & 0xffffff) | ((d[0] >> 56) << 24) | (d[1] << 32)))
		return emu_fault(cpu, EMU_GP, sel & 0xfffc, true);
	if (!((d[0] >> 47) & 1))
		return emu_fault(cpu, EMU_NP, sel & 0xfffc, true);
	if (tr) {
		if (emu_desc_set_bits(cpu, sel, d[0], 2ull << 40))
			return EMU_FAULT;
		d[0] |= 2ull << 40;
	}
	emu_desc_to_seg(d, sel, &s);
	if (tr)
		cpu->st.tr = s;
	else
		cpu->st.ldtr = s;
	cpu->st.rip = emu_next_rip(cpu, in);
	return EMU_OK;
}

static int exec_lldt(struct emu_cpu *cpu, const struct emu_insn *in)
{
	return load_sys_desc(cpu, in, false);
}

static int exec_ltr(struct emu_cpu *cpu, const struct emu_insn *in)
{
	return load_sys_desc(cpu, in, true);
}

static int exec_sldt_str(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint16_t sel = in->mnemonic == ZYDIS_MNEMONIC_STR ? cpu->st.tr.sel : cpu->st.ldtr.sel;
	int r;

	if (!prot_mode(cpu))
		return emu_ud(cpu);
	if ((r = emu_op_write(cpu, in, 0, sel)))
		return r;
	cpu->st.rip = emu_next_rip(cpu, in);
	return EMU_OK;
}

/*
 * Descriptor for LAR/LSL/VERR/VERW without faulting on a bad selector: 0 found, -1 not
 * accessible (ZF=0), EMU_FAULT for a fault reading the table itself.
 */
static int probe_desc(struct emu_cpu *cpu, uint16_t sel, uint64_t d[2])
{
	uint64_t limit = (sel & 4) ? cpu->st.ldtr.limit : cpu->st.gdtr_limit;

	if (!(sel & 0xfffc))
		return -1;
	if ((sel & 4) && (cpu->st.ldtr.attr & EMU_SEG_ATTR_UNUSABLE))
		return -1;
	if ((uint64_t)(sel & ~7u) + 7 > limit)
		return -1;
	if (emu_desc_read(cpu, sel, d, false, EMU_GP, 0))
		return EMU_FAULT;
	return 0;
}

static bool priv_ok(const struct emu_cpu *cpu, uint16_t sel, uint64_t d)
{
	unsigned type = (d >> 40) & 0x1f, dpl = (d >> 45) & 3;

	if ((type & 0x1c) == 0x1c)	/* conforming code */
		return true;
	return dpl >= cpu->cpl && dpl >= (sel & 3u);
}

static int exec_lar_lsl(struct emu_cpu *cpu, const struct emu_insn *in)
{
	bool lar = in->mnemonic == ZYDIS_MNEMONIC_LAR, lm = cpu->st.efer & EFER_LMA;
	uint64_t v, d[2] = { 0, 0 }, res;
	unsigned type;
	bool ok;
	int r;

	if (!prot_mode(cpu))
		return emu_ud(cpu);
	if ((r = emu_op_read(cpu, in, 1, &v)))
		return r;
	r = probe_desc(cpu, v, d);
	if (r == EMU_FAULT)
		return r;
	type = (d[0] >> 40) & 0x1f;
	ok = r == 0 && priv_ok(cpu, v, d[0]);
	if (ok && !(type & 0x10)) {
		if (lm)
			ok = type == 2 || type == 9 || type == 11 || (lar && type == 12);
		else if (lar)
			ok = type != 0 && type != 8 && type != 10 && type != 13 && type != 14 &&
			     type != 15;
		else
			ok = type == 1 || type == 2 || type == 3 || type == 9 || type == 11;
	}
	if (ok) {
		if (lar) {
			res = (d[0] >> 32) & 0x00f0ff00;
		} else {
			struct emu_seg s;

			emu_desc_to_seg(d, v, &s);
			res = s.limit;
		}
		if ((r = emu_op_write(cpu, in, 0, res & emu_size_mask(in->op[0].size))))
			return r;
	}
	set_zf(cpu, ok);
	cpu->st.rip = emu_next_rip(cpu, in);
	return EMU_OK;
}

static int exec_verr_verw(struct emu_cpu *cpu, const struct emu_insn *in)
{
	bool w = in->mnemonic == ZYDIS_MNEMONIC_VERW;
	uint64_t v, d[2] = { 0, 0 };
	unsigned type;
	bool ok;
	int r;

	if (!prot_mode(cpu))
		return emu_ud(cpu);
	if ((r = emu_op_read(cpu, in, 0, &v)))
		return r;
	r = probe_desc(cpu, v, d);
	if (r == EMU_FAULT)
		return r;
	type = (d[0] >> 40) & 0x1f;
	ok = r == 0 && (type & 0x10) && priv_ok(cpu, v, d[0]);
	if (ok)
		ok = w ? (type & 0x1a) == 0x12 : (!(type & 8) || (type & 2));
	set_zf(cpu, ok);
	cpu->st.rip = emu_next_rip(cpu, in);
	return EMU_OK;
}

static int exec_arpl(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t dst, src;
	int r;

	if (!prot_mode(cpu))
		return emu_ud(cpu);
	if ((r = emu_op_read(cpu, in, 0, &dst)) || (r = emu_op_read(cpu, in, 1, &src)))
		return r;
	if ((dst & 3) < (src & 3)) {
		if ((r = emu_op_write(cpu, in, 0, (dst & ~3ull) | (src & 3))))
			return r;
		set_zf(cpu, true);
	} else {
		set_zf(cpu, false);
	}
	cpu->st.rip = emu_next_rip(cpu, in);
	return EMU_OK;
}

emu_exec_fn emu_segins_handler(unsigned m)
{
	switch (m) {
	case ZYDIS_MNEMONIC_LDS:
	case ZYDIS_MNEMONIC_LES:
	case ZYDIS_MNEMONIC_LFS:
	case ZYDIS_MNEMONIC_LGS:
	case ZYDIS_MNEMONIC_LSS: return exec_lxs;
	case ZYDIS_MNEMONIC_LGDT:
	case ZYDIS_MNEMONIC_LIDT: return exec_lgdt_lidt;
	case ZYDIS_MNEMONIC_SGDT:
	case ZYDIS_MNEMONIC_SIDT: return exec_sgdt_sidt;
	case ZYDIS_MNEMONIC_LLDT: return exec_lldt;
	case ZYDIS_MNEMONIC_LTR: return exec_ltr;
	case ZYDIS_MNEMONIC_SLDT:
	case ZYDIS_MNEMONIC_STR: return exec_sldt_str;
	case ZYDIS_MNEMONIC_LAR:
	case ZYDIS_MNEMONIC_LSL: return exec_lar_lsl;
	case ZYDIS_MNEMONIC_VERR:
	case ZYDIS_MNEMONIC_VERW: return exec_verr_verw;
	case ZYDIS_MNEMONIC_ARPL: return exec_arpl;
	default: return NULL;
	}
}

static bool is_sreg(const struct emu_operand *op)
{
	return op->kind == EMU_OPK_REG && op->reg >= EMU_REG_SREG &&
	       op->reg < EMU_REG_SREG + EMU_NSREGS;
}

/* System forms of the core's MOV/PUSH/POP/JMP/CALL/RET (see emu_internal.h). */
emu_exec_fn emu_segins_form(const struct emu_insn *in)
{
	switch (in->mnemonic) {
	case ZYDIS_MNEMONIC_MOV:
		if (is_sreg(&in->op[0]) || is_sreg(&in->op[1]))
			return exec_mov_sreg;
		return NULL;
	case ZYDIS_MNEMONIC_PUSH:
		return is_sreg(&in->op[0]) ? exec_push_sreg : NULL;
	case ZYDIS_MNEMONIC_POP:
		return is_sreg(&in->op[0]) ? exec_pop_sreg : NULL;
	case ZYDIS_MNEMONIC_JMP:
		return (in->flags & EMU_IF_FAR) || in->opcode == 0xea ? exec_jmp_far : NULL;
	case ZYDIS_MNEMONIC_CALL:
		return (in->flags & EMU_IF_FAR) || in->opcode == 0x9a ? exec_call_far : NULL;
	case ZYDIS_MNEMONIC_RET:
		return (in->flags & EMU_IF_FAR) || in->opcode == 0xca || in->opcode == 0xcb ?
			       exec_ret_far : NULL;
	default:
		return NULL;
	}
}
