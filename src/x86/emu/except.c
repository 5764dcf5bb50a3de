/*
 * except.c: exceptions and interrupts (SDM Vol. 3 ch. 6): delivery through the real-mode
 * IVT and the protected/long-mode IDT (interrupt and trap gates, stack switch through the
 * TSS, IST, error codes with the EXT/IDT bits), the #DF classes of Table 6-5 and triple
 * fault; INT n/INT3/INTO/INT1 and IRET in every mode, with NMI unblocking.
 * Left out: task gates and task switches, virtual-8086 delivery (stop as unsupported).
 */
#include <stdio.h>
#include <Zydis/Zydis.h>
#include "x86/emu/emu_internal.h"

#define RF_TF (1ull << 8)
#define RF_IF (1ull << 9)
#define RF_OF (1ull << 11)
#define RF_IOPL (3ull << 12)
#define RF_NT (1ull << 14)
#define RF_RF (1ull << 16)
#define RF_VM (1ull << 17)
#define RF_AC (1ull << 18)
#define RF_VIF (1ull << 19)
#define RF_VIP (1ull << 20)
#define EFER_LMA (1ull << 10)

int emu_fault(struct emu_cpu *cpu, int vector, uint32_t error_code, bool has_error)
{
	cpu->fault.pending = true;
	cpu->fault.vector = vector;
	cpu->fault.has_error = has_error;
	cpu->fault.error_code = has_error ? error_code : 0;
	return EMU_FAULT;
}

void emu_stack_current(struct emu_cpu *cpu, struct emu_stack *s)
{
	s->seg = cpu->st.seg[EMU_SS];
	s->sp = cpu->st.gpr[EMU_RSP] & emu_size_mask(cpu->stack_size);
	s->size = cpu->stack_size;
	s->acc = 0;
}

int emu_stack_push(struct emu_cpu *cpu, struct emu_stack *s, uint64_t val, unsigned n)
{
	if (s->size == 8) {
		uint64_t sp = s->sp - n;

		if (!emu_canonical(sp) || !emu_canonical(sp + n - 1))
			return emu_fault(cpu, EMU_SSF, 0, true);
		if (emu_lin_write(cpu, sp, &val, n, s->acc))
			return EMU_FAULT;
		s->sp = sp;
		return 0;
	}
	uint64_t sp = (s->sp - n) & emu_size_mask(s->size);

	if (emu_seg_access(cpu, &s->seg, EMU_SS, sp, &val, n, EMU_ACC_WRITE | s->acc))
		return EMU_FAULT;
	s->sp = sp;
	return 0;
}

int emu_stack_pop(struct emu_cpu *cpu, struct emu_stack *s, uint64_t *val, unsigned n)
{
	*val = 0;
	if (s->size == 8) {
		if (!emu_canonical(s->sp) || !emu_canonical(s->sp + n - 1))
			return emu_fault(cpu, EMU_SSF, 0, true);
		if (emu_lin_read(cpu, s->sp, val, n, s->acc))
			return EMU_FAULT;
		s->sp += n;
		return 0;
	}
	if (emu_seg_access(cpu, &s->seg, EMU_SS, s->sp, val, n, EMU_ACC_READ | s->acc))
		return EMU_FAULT;
	s->sp = (s->sp + n) & emu_size_mask(s->size);
	return 0;
}

void emu_stack_commit(struct emu_cpu *cpu, const struct emu_stack *s)
{
	uint64_t m = emu_size_mask(s->size);

	cpu->st.gpr[EMU_RSP] = (cpu->st.gpr[EMU_RSP] & ~m) | (s->sp & m);
}

static bool is_contributory(int v)
{
	return v == EMU_DE || (v >= EMU_TS && v <= EMU_GP);
}

/* Faults (as opposed to traps) get RF=1 in the pushed flags image. */
static bool is_fault_class(int v)
{
	return v == EMU_DE || v == EMU_BR || v == EMU_UD || v == EMU_NM || v == EMU_TS ||
	       v == EMU_NP || v == EMU_SSF || v == EMU_GP || v == EMU_PF || v == EMU_MF ||
	       v == EMU_AC || v == EMU_XM;
}

static int deliver_real(struct emu_cpu *cpu, int vector, uint64_t rflags, uint64_t ret)
{
	struct emu_stack stk;
	uint16_t ent[2];
	struct emu_seg *cs = &cpu->st.seg[EMU_CS];

	if ((uint32_t)vector * 4 + 3 > cpu->st.idtr_limit)
		return emu_gp0(cpu);
	if (emu_lin_read(cpu, cpu->st.idtr_base + vector * 4, ent, 4, EMU_ACC_IMPLICIT))
		return EMU_FAULT;
	emu_stack_current(cpu, &stk);
	if (emu_stack_push(cpu, &stk, rflags & 0xffff, 2) ||
	    emu_stack_push(cpu, &stk, cs->sel, 2) || emu_stack_push(cpu, &stk, ret & 0xffff, 2))
		return EMU_FAULT;
	emu_stack_commit(cpu, &stk);
	cs->sel = ent[1];
	cs->base = (uint32_t)ent[1] << 4;
	cpu->st.rip = ent[0];
	emu_set_rflags(cpu, rflags & ~(RF_IF | RF_TF | RF_AC | RF_RF));
	return EMU_OK;
}

/* Read the inner stack pointer for privilege level `dpl` (or IST slot) from the TSS. */
static int tss_read(struct emu_cpu *cpu, uint32_t off, void *dst, unsigned n, uint32_t ext)
{
	const struct emu_seg *tr = &cpu->st.tr;

	if ((tr->attr & EMU_SEG_ATTR_UNUSABLE) || off + n - 1 > tr->limit)
		return emu_fault(cpu, EMU_TS, (tr->sel & 0xfffc) | ext, true);
	return emu_lin_read(cpu, tr->base + off, dst, n, EMU_ACC_IMPLICIT);
}

/* The checks on a new stack segment for a privilege change (#TS/#SS with its selector). */
static int check_new_ss(struct emu_cpu *cpu, uint16_t ss, unsigned dpl, uint32_t ext,
			struct emu_seg *out)
{
	uint64_t d[2];
	uint32_t err = (ss & 0xfffc) | ext;
	unsigned type;

	if (!(ss & 0xfffc))
		return emu_fault(cpu, EMU_TS, ext, true);
	if ((ss & 3) != dpl)
		return emu_fault(cpu, EMU_TS, err, true);
	if (emu_desc_read(cpu, ss, d, false, EMU_TS, ext))
		return EMU_FAULT;
	type = (d[0] >> 40) & 0x1f;
	if (((d[0] >> 45) & 3) != dpl || (type & 0x1a) != 0x12)
		return emu_fault(cpu, EMU_TS, err, true);
	if (!((d[0] >> 47) & 1))
		return emu_fault(cpu, EMU_SSF, err, true);
	if (emu_desc_set_bits(cpu, ss, d[0], 1ull << 40))
		return EMU_FAULT;
	d[0] |= 1ull << 40;
	emu_desc_to_seg(d, ss, out);
	return 0;
}

static int deliver_prot(struct emu_cpu *cpu, int vector, enum emu_event_kind kind,
			uint32_t error_code, bool has_error, uint64_t rflags, uint64_t ret,
			uint32_t ext)
{
	struct emu_state *st = &cpu->st;
	uint32_t idt_err = vector * 8 + 2 + ext;
	bool lm = st->efer & EFER_LMA;
	uint64_t g[2] = { 0, 0 }, d[2];
	unsigned gtype, gdpl, cpl = cpu->cpl, dpl, new_cpl, gsize;
	uint16_t sel;
	uint64_t off;
	struct emu_seg ncs, nss;
	struct emu_stack stk;
	bool switch_stack = false;

	if ((uint32_t)vector * (lm ? 16 : 8) + (lm ? 15 : 7) > st->idtr_limit)
		return emu_fault(cpu, EMU_GP, idt_err, true);
	if (emu_lin_read(cpu, st->idtr_base + vector * (lm ? 16 : 8), g, lm ? 16 : 8,
			 EMU_ACC_IMPLICIT))
		return EMU_FAULT;
	gtype = (g[0] >> 40) & 0x1f;
	gdpl = (g[0] >> 45) & 3;
	if (lm ? (gtype != 0xe && gtype != 0xf) :
		 (gtype != 0x5 && gtype != 0x6 && gtype != 0x7 && gtype != 0xe && gtype != 0xf))
		return emu_fault(cpu, EMU_GP, idt_err, true);
	if ((kind == EMU_EVT_SOFTINT || kind == EMU_EVT_SOFTEXC) && gdpl < cpl)
		return emu_fault(cpu, EMU_GP, vector * 8 + 2, true);
	if (!((g[0] >> 47) & 1))
		return emu_fault(cpu, EMU_NP, idt_err, true);
	if (gtype == 0x5)
		return emu_unsupported(cpu, "task gate for vector %d", vector);
	gsize = lm ? 8 : (gtype & 8) ? 4 : 2;
	sel = (g[0] >> 16) & 0xffff;
	off = (g[0] & 0xffff) | (gsize > 2 ? ((g[0] >> 48) << 16) : 0) | (g[1] << 32);
	if (!(sel & 0xfffc))
		return emu_fault(cpu, EMU_GP, ext, true);
	if (emu_desc_read(cpu, sel, d, false, EMU_GP, ext))
		return EMU_FAULT;
	dpl = (d[0] >> 45) & 3;
	if (((d[0] >> 43) & 3) != 3 || dpl > cpl)	/* S=1 and code */
		return emu_fault(cpu, EMU_GP, (sel & 0xfffc) | ext, true);
	if (lm && (!((d[0] >> 53) & 1) || ((d[0] >> 54) & 1)))
		return emu_fault(cpu, EMU_GP, (sel & 0xfffc) | ext, true);
	if (!((d[0] >> 47) & 1))
		return emu_fault(cpu, EMU_NP, (sel & 0xfffc) | ext, true);
	new_cpl = ((d[0] >> 42) & 1) ? cpl : dpl;	/* conforming keeps CPL */
	emu_desc_to_seg(d, (sel & 0xfffc) | new_cpl, &ncs);
	ncs.attr |= 1;

	if (lm) {
		unsigned ist = (g[0] >> 32) & 7;
		uint64_t rsp = st->gpr[EMU_RSP];

		if (ist) {
			if (tss_read(cpu, 0x24 + (ist - 1) * 8, &rsp, 8, ext))
				return EMU_FAULT;
		} else if (new_cpl != cpl) {
			if (tss_read(cpu, 4 + new_cpl * 8, &rsp, 8, ext))
				return EMU_FAULT;
		}
		if (!emu_canonical(rsp))
			return emu_fault(cpu, EMU_SSF, ext, true);
		stk.seg = st->seg[EMU_SS];
		stk.sp = rsp & ~0xfull;
		stk.size = 8;
		stk.acc = new_cpl < 3 ? EMU_ACC_IMPLICIT : 0;
		if (emu_stack_push(cpu, &stk, st->seg[EMU_SS].sel, 8) ||
		    emu_stack_push(cpu, &stk, st->gpr[EMU_RSP], 8))
			return EMU_FAULT;
		if (new_cpl != cpl) {
			nss = (struct emu_seg){ .sel = new_cpl,
						.attr = EMU_SEG_ATTR_UNUSABLE | (new_cpl << 5) };
			switch_stack = true;
		}
	} else if (new_cpl != cpl) {
		uint32_t esp = 0;
		uint16_t ss = 0;
		bool tss32 = EMU_SEG_ATTR_TYPE(st->tr.attr) & 8;

		if (cpu->mode == EMU_MODE_VM86)
			return emu_unsupported(cpu, "interrupt from virtual-8086 mode");
		if (tss32 ? tss_read(cpu, 4 + new_cpl * 8, &esp, 4, ext) ||
				    tss_read(cpu, 8 + new_cpl * 8, &ss, 2, ext) :
			    tss_read(cpu, 2 + new_cpl * 4, &esp, 2, ext) ||
				    tss_read(cpu, 4 + new_cpl * 4, &ss, 2, ext))
			return EMU_FAULT;
		if (check_new_ss(cpu, ss, new_cpl, ext, &nss))
			return EMU_FAULT;
		stk.seg = nss;
		stk.size = (nss.attr & EMU_SEG_ATTR_DB) ? 4 : 2;
		stk.sp = esp & emu_size_mask(stk.size);
		stk.acc = EMU_ACC_IMPLICIT;
		if (emu_stack_push(cpu, &stk, st->seg[EMU_SS].sel, gsize) ||
		    emu_stack_push(cpu, &stk, st->gpr[EMU_RSP], gsize))
			goto new_stack_fault;
		switch_stack = true;
	} else {
		if (cpu->mode == EMU_MODE_VM86)
			return emu_unsupported(cpu, "interrupt from virtual-8086 mode");
		emu_stack_current(cpu, &stk);
	}
	if (emu_stack_push(cpu, &stk, rflags, gsize) ||
	    emu_stack_push(cpu, &stk, st->seg[EMU_CS].sel, gsize) ||
	    emu_stack_push(cpu, &stk, ret, gsize) ||
	    (has_error && emu_stack_push(cpu, &stk, error_code, gsize)))
		goto new_stack_fault;
	if (lm ? !emu_canonical(off) : off > ncs.limit)
		return emu_fault(cpu, EMU_GP, 0, true);

	if (emu_desc_set_bits(cpu, sel, d[0], 1ull << 40))
		return EMU_FAULT;
	if (switch_stack) {
		st->seg[EMU_SS] = nss;
		st->gpr[EMU_RSP] = stk.sp;
	} else if (lm) {
		st->gpr[EMU_RSP] = stk.sp;
	} else {
		emu_stack_commit(cpu, &stk);
	}
	st->seg[EMU_CS] = ncs;
	st->rip = off;
	rflags &= ~(RF_TF | RF_NT | RF_RF | RF_VM);
	if (!(gtype & 1))
		rflags &= ~RF_IF;
	emu_set_rflags(cpu, rflags);
	emu_update_mode(cpu);
	return EMU_OK;

new_stack_fault:
	if (switch_stack && cpu->fault.vector == EMU_SSF && !lm)
		cpu->fault.error_code = (nss.sel & 0xfffc) | ext;
	return EMU_FAULT;
}

static int deliver_once(struct emu_cpu *cpu, int vector, enum emu_event_kind kind,
			uint32_t error_code, bool has_error, uint64_t ret)
{
	uint64_t rflags = emu_get_rflags(cpu);
	uint32_t ext = (kind == EMU_EVT_SOFTINT || kind == EMU_EVT_SOFTEXC) ? 0 : 1;

	if (kind == EMU_EVT_EXCEPTION && is_fault_class(vector))
		rflags |= RF_RF;
	if (cpu->mode == EMU_MODE_REAL)
		return deliver_real(cpu, vector, rflags, ret);
	return deliver_prot(cpu, vector, kind, error_code, has_error, rflags, ret, ext);
}

int emu_deliver(struct emu_cpu *cpu, int vector, enum emu_event_kind kind, uint32_t error_code,
		bool has_error, uint64_t return_rip)
{
	/* A fault while delivering reports the instruction that caused the event, if any. */
	uint64_t fault_rip = (kind == EMU_EVT_SOFTINT || kind == EMU_EVT_SOFTEXC ||
			      kind == EMU_EVT_ICEBP) ? cpu->insn_rip : return_rip;

	for (int tries = 0;; tries++) {
		int r = deliver_once(cpu, vector, kind, error_code, has_error, return_rip);
		struct emu_pending_fault f = cpu->fault;

		if (r != EMU_FAULT) {
			if (r == EMU_OK && kind == EMU_EVT_NMI)
				cpu->st.nmi_blocked = true;
			cpu->st.interrupt_shadow = false;
			return r;
		}
		cpu->fault.pending = false;
		if ((vector == EMU_DF && kind == EMU_EVT_EXCEPTION) || tries > 4) {
			snprintf(cpu->error, sizeof cpu->error,
				 "triple fault: vector %d (error %#x) while delivering #DF at "
				 "CS:RIP %04x:%llx",
				 f.vector, f.error_code, cpu->st.seg[EMU_CS].sel,
				 (unsigned long long)cpu->st.rip);
			cpu->stop_reason = EMU_EXIT_TRIPLE_FAULT;
			return EMU_STOP;
		}
		if (kind == EMU_EVT_EXCEPTION &&
		    ((is_contributory(vector) && is_contributory(f.vector)) ||
		     (vector == EMU_PF && (is_contributory(f.vector) || f.vector == EMU_PF)))) {
			vector = EMU_DF;
			error_code = 0;
			has_error = true;
		} else {
			vector = f.vector;
			error_code = f.error_code;
			has_error = f.has_error;
		}
		if (cpu->mode == EMU_MODE_REAL)
			has_error = false;
		kind = EMU_EVT_EXCEPTION;
		return_rip = fault_rip;
	}
}

int emu_deliver_pending_fault(struct emu_cpu *cpu)
{
	struct emu_pending_fault f = cpu->fault;

	cpu->fault.pending = false;
	if (!f.pending)
		return emu_unsupported(cpu, "internal error: a handler reported a fault "
					    "without raising one");
	return emu_deliver(cpu, f.vector, EMU_EVT_EXCEPTION, f.error_code,
			   f.has_error && cpu->mode != EMU_MODE_REAL, cpu->st.rip);
}

/* ---- INT n, INT3, INTO, INT1 ---- */

static int exec_int(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (cpu->mode == EMU_MODE_VM86)
		return emu_unsupported(cpu, "INT n in virtual-8086 mode");
	return emu_deliver(cpu, (uint8_t)in->op[0].imm, EMU_EVT_SOFTINT, 0, false,
			   emu_next_rip(cpu, in));
}

static int exec_int3(struct emu_cpu *cpu, const struct emu_insn *in)
{
	return emu_deliver(cpu, EMU_BP, EMU_EVT_SOFTEXC, 0, false, emu_next_rip(cpu, in));
}

static int exec_into(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (cpu->mode == EMU_MODE_LONG64)
		return emu_ud(cpu);
	if (emu_get_rflags(cpu) & RF_OF)
		return emu_deliver(cpu, EMU_OF, EMU_EVT_SOFTEXC, 0, false, emu_next_rip(cpu, in));
	cpu->st.rip = emu_next_rip(cpu, in);
	return EMU_OK;
}

static int exec_int1(struct emu_cpu *cpu, const struct emu_insn *in)
{
	return emu_deliver(cpu, EMU_DB, EMU_EVT_ICEBP, 0, false, emu_next_rip(cpu, in));
}

/* ---- IRET ---- */

static int iret_real(struct emu_cpu *cpu, unsigned opsize)
{
	struct emu_stack stk;
	uint64_t ip, cs, fl, rflags = emu_get_rflags(cpu);

	emu_stack_current(cpu, &stk);
	if (emu_stack_pop(cpu, &stk, &ip, opsize) || emu_stack_pop(cpu, &stk, &cs, opsize) ||
	    emu_stack_pop(cpu, &stk, &fl, opsize))
		return EMU_FAULT;
	if (ip > cpu->st.seg[EMU_CS].limit)
		return emu_gp0(cpu);
	if (opsize == 4)
		rflags = (fl & 0x257fd5) | (rflags & 0x1a0000);
	else
		rflags = (rflags & ~0xffffull) | (fl & 0x7fd5);
	emu_stack_commit(cpu, &stk);
	cpu->st.seg[EMU_CS].sel = cs;
	cpu->st.seg[EMU_CS].base = (uint32_t)(cs & 0xffff) << 4;
	cpu->st.rip = ip;
	emu_set_rflags(cpu, rflags | 2);
	cpu->st.nmi_blocked = false;
	return EMU_OK;
}

void emu_null_outer_segs(struct emu_cpu *cpu)
{
	static const int regs[] = { EMU_ES, EMU_DS, EMU_FS, EMU_GS };

	for (unsigned i = 0; i < 4; i++) {
		struct emu_seg *s = &cpu->st.seg[regs[i]];
		unsigned type = EMU_SEG_ATTR_TYPE(s->attr);

		if (s->attr & EMU_SEG_ATTR_UNUSABLE)
			continue;
		if ((!(type & 8) || !(type & 4)) && EMU_SEG_ATTR_DPL(s->attr) < cpu->cpl) {
			/* Only the selector is cleared (SDM IRET/RET pseudocode): the hidden
			 * base stays, and 64-bit code still addresses through FS/GS bases. */
			s->sel = 0;
			s->limit = 0;
			s->attr = EMU_SEG_ATTR_UNUSABLE;
		}
	}
}

int emu_check_return_cs(struct emu_cpu *cpu, uint16_t sel, struct emu_seg *out)
{
	uint64_t d[2];
	unsigned rpl = sel & 3, dpl, type;
	uint32_t err = sel & 0xfffc;

	if (!(sel & 0xfffc))
		return emu_gp0(cpu);
	if (emu_desc_read(cpu, sel, d, false, EMU_GP, 0))
		return EMU_FAULT;
	type = (d[0] >> 40) & 0x1f;
	dpl = (d[0] >> 45) & 3;
	if ((type & 0x18) != 0x18 || rpl < cpu->cpl)
		return emu_fault(cpu, EMU_GP, err, true);
	if ((type & 4) ? dpl > rpl : dpl != rpl)
		return emu_fault(cpu, EMU_GP, err, true);
	if ((cpu->st.efer & EFER_LMA) && ((d[0] >> 53) & 1) && ((d[0] >> 54) & 1))
		return emu_fault(cpu, EMU_GP, err, true);
	if (!((d[0] >> 47) & 1))
		return emu_fault(cpu, EMU_NP, err, true);
	if (emu_desc_set_bits(cpu, sel, d[0], 1ull << 40))
		return EMU_FAULT;
	d[0] |= 1ull << 40;
	emu_desc_to_seg(d, sel, out);
	return 0;
}

int emu_check_return_ss(struct emu_cpu *cpu, uint16_t sel, unsigned rpl, bool to64,
			struct emu_seg *out)
{
	uint64_t d[2];
	uint32_t err = sel & 0xfffc;

	if (!(sel & 0xfffc)) {
		if (!(to64 && rpl < 3 && (sel & 3) == rpl))
			return emu_gp0(cpu);
		*out = (struct emu_seg){ .sel = sel, .attr = EMU_SEG_ATTR_UNUSABLE | (rpl << 5) };
		return 0;
	}
	if ((sel & 3) != rpl)
		return emu_fault(cpu, EMU_GP, err, true);
	if (emu_desc_read(cpu, sel, d, false, EMU_GP, 0))
		return EMU_FAULT;
	if (((d[0] >> 40) & 0x1a) != 0x12 || ((d[0] >> 45) & 3) != rpl)
		return emu_fault(cpu, EMU_GP, err, true);
	if (!((d[0] >> 47) & 1))
		return emu_fault(cpu, EMU_SSF, err, true);
	if (emu_desc_set_bits(cpu, sel, d[0], 1ull << 40))
		return EMU_FAULT;
	d[0] |= 1ull << 40;
	emu_desc_to_seg(d, sel, out);
	return 0;
}

static int exec_iret(struct emu_cpu *cpu, const struct emu_insn *in)
{
	struct emu_state *st = &cpu->st;
	unsigned os = in->opsize, cpl = cpu->cpl, iopl;
	bool lm = st->efer & EFER_LMA;
	uint64_t ip, csv, fl, spv = 0, ssv = 0, rflags = emu_get_rflags(cpu), mask;
	struct emu_stack stk;
	struct emu_seg ncs, nss;
	bool outer, to64;

	if (cpu->mode == EMU_MODE_REAL)
		return iret_real(cpu, os);
	if (cpu->mode == EMU_MODE_VM86)
		return emu_unsupported(cpu, "IRET in virtual-8086 mode");
	if (rflags & RF_NT) {
		if (lm)
			return emu_gp0(cpu);
		return emu_unsupported(cpu, "IRET with NT=1 (task return)");
	}
	emu_stack_current(cpu, &stk);
	if (emu_stack_pop(cpu, &stk, &ip, os) || emu_stack_pop(cpu, &stk, &csv, os) ||
	    emu_stack_pop(cpu, &stk, &fl, os))
		return EMU_FAULT;
	if (!lm && os == 4 && (fl & RF_VM) && cpl == 0)
		return emu_unsupported(cpu, "IRET to virtual-8086 mode");
	if (emu_check_return_cs(cpu, csv, &ncs))
		return EMU_FAULT;
	to64 = lm && (ncs.attr & EMU_SEG_ATTR_L);
	outer = (csv & 3) > cpl || cpu->mode == EMU_MODE_LONG64;
	if (outer) {
		if (emu_stack_pop(cpu, &stk, &spv, os) || emu_stack_pop(cpu, &stk, &ssv, os))
			return EMU_FAULT;
		if (emu_check_return_ss(cpu, ssv, csv & 3, to64, &nss))
			return EMU_FAULT;
	}
	if (to64) {
		if (!emu_canonical(ip))
			return emu_gp0(cpu);
	} else {
		ip &= emu_size_mask(os);
		if (ip > ncs.limit)
			return emu_gp0(cpu);
	}
	/* Flags: what IRET may change depends on the old CPL and IOPL. */
	iopl = (rflags >> 12) & 3;
	mask = 0x3f7fd5ull & ~(RF_IOPL | RF_IF | RF_VM | RF_VIF | RF_VIP);
	if (cpl <= iopl)
		mask |= RF_IF;
	if (cpl == 0)
		mask |= RF_IOPL | RF_VIF | RF_VIP;
	if (os == 2)
		mask &= 0xffff;
	rflags = (rflags & ~mask) | (fl & mask) | 2;

	st->seg[EMU_CS] = ncs;
	st->rip = ip;
	if (outer) {
		st->seg[EMU_SS] = nss;
		if (to64 || (nss.attr & EMU_SEG_ATTR_DB))
			st->gpr[EMU_RSP] = spv;
		else
			st->gpr[EMU_RSP] = (st->gpr[EMU_RSP] & ~0xffffull) | (spv & 0xffff);
	} else {
		emu_stack_commit(cpu, &stk);
	}
	emu_set_rflags(cpu, rflags);
	emu_update_mode(cpu);
	if ((csv & 3) > cpl)
		emu_null_outer_segs(cpu);
	st->nmi_blocked = false;
	return EMU_OK;
}

emu_exec_fn emu_except_handler(unsigned m)
{
	switch (m) {
	case ZYDIS_MNEMONIC_INT: return exec_int;
	case ZYDIS_MNEMONIC_INT3: return exec_int3;
	case ZYDIS_MNEMONIC_INTO: return exec_into;
	case ZYDIS_MNEMONIC_INT1: return exec_int1;
	case ZYDIS_MNEMONIC_IRET:
	case ZYDIS_MNEMONIC_IRETD:
	case ZYDIS_MNEMONIC_IRETQ: return exec_iret;
	default: return NULL;
	}
}
