/*
 * msr.c: model-specific registers and fast system calls (SDM Vol. 4, Vol. 2 "RDMSR",
 * "SYSCALL", "SYSRET", "SYSENTER", "SYSEXIT", "SWAPGS"; AMD APM Vol. 2 §6.1). The
 * interpreter owns EFER, STAR/LSTAR/CSTAR/SFMASK, FS/GS/KERNEL_GS base, TSC, TSC_AUX, PAT,
 * MTRRs, MISC_ENABLE and SYSENTER_*; every other index goes to bus.msr, which answers or
 * makes the access #GP. SYSENTER/SYSEXIT are #UD in long mode, as on AMD.
 */
#include <Zydis/Zydis.h>
#include "x86/emu/emu_internal.h"

#define EFER_SCE (1ull << 0)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define EFER_NXE (1ull << 11)
#define CR0_PG (1ull << 31)
#define RF_IF (1ull << 9)
#define RF_RF (1ull << 16)
#define RF_VM (1ull << 17)

enum {
	MSR_TSC = 0x10, MSR_MTRRCAP = 0xfe, MSR_SYSENTER_CS = 0x174, MSR_SYSENTER_ESP = 0x175,
	MSR_SYSENTER_EIP = 0x176, MSR_MISC_ENABLE = 0x1a0, MSR_MTRR_PHYS0 = 0x200,
	MSR_MTRR_FIX64K = 0x250, MSR_MTRR_FIX16K0 = 0x258, MSR_MTRR_FIX16K1 = 0x259,
	MSR_MTRR_FIX4K0 = 0x268, MSR_PAT = 0x277, MSR_MTRR_DEF = 0x2ff,
	MSR_EFER = 0xc0000080, MSR_STAR = 0xc0000081, MSR_LSTAR = 0xc0000082,
	MSR_CSTAR = 0xc0000083, MSR_SFMASK = 0xc0000084, MSR_FS_BASE = 0xc0000100,
	MSR_GS_BASE = 0xc0000101, MSR_KGS_BASE = 0xc0000102, MSR_TSC_AUX = 0xc0000103,
};

static bool valid_mem_type(unsigned t)
{
	return t == 0 || t == 1 || t == 4 || t == 5 || t == 6;
}

static uint64_t *mtrr_slot(struct emu_state *st, uint32_t idx)
{
	if (idx >= MSR_MTRR_PHYS0 && idx < MSR_MTRR_PHYS0 + 16)
		return &st->mtrr_var[idx - MSR_MTRR_PHYS0];
	if (idx == MSR_MTRR_FIX64K)
		return &st->mtrr_fixed[0];
	if (idx == MSR_MTRR_FIX16K0 || idx == MSR_MTRR_FIX16K1)
		return &st->mtrr_fixed[1 + idx - MSR_MTRR_FIX16K0];
	if (idx >= MSR_MTRR_FIX4K0 && idx < MSR_MTRR_FIX4K0 + 8)
		return &st->mtrr_fixed[3 + idx - MSR_MTRR_FIX4K0];
	return NULL;
}

/* Returns 0, or -1 for #GP. */
int emu_msr_read(struct emu_cpu *cpu, uint32_t idx, uint64_t *val)
{
	struct emu_state *st = &cpu->st;
	uint64_t *slot;

	switch (idx) {
	case MSR_TSC: *val = cpu->bus.tsc ? cpu->bus.tsc(cpu->bus.opaque) : 0; return 0;
	case MSR_MTRRCAP: *val = st->mtrr_cap; return 0;
	case MSR_SYSENTER_CS: *val = st->sysenter_cs; return 0;
	case MSR_SYSENTER_ESP: *val = st->sysenter_esp; return 0;
	case MSR_SYSENTER_EIP: *val = st->sysenter_eip; return 0;
	case MSR_MISC_ENABLE: *val = st->misc_enable; return 0;
	case MSR_PAT: *val = st->pat; return 0;
	case MSR_MTRR_DEF: *val = st->mtrr_def_type; return 0;
	case MSR_EFER: *val = st->efer; return 0;
	case MSR_STAR: *val = st->star; return 0;
	case MSR_LSTAR: *val = st->lstar; return 0;
	case MSR_CSTAR: *val = st->cstar; return 0;
	case MSR_SFMASK: *val = st->sfmask; return 0;
	case MSR_FS_BASE: *val = st->seg[EMU_FS].base; return 0;
	case MSR_GS_BASE: *val = st->seg[EMU_GS].base; return 0;
	case MSR_KGS_BASE: *val = st->kernel_gs_base; return 0;
	case MSR_TSC_AUX: *val = st->tsc_aux; return 0;
	default:
		break;
	}
	if ((slot = mtrr_slot(st, idx))) {
		*val = *slot;
		return 0;
	}
	*val = 0;
	if (!cpu->bus.msr)
		return -1;
	return cpu->bus.msr(cpu->bus.opaque, idx, false, val) < 0 ? -1 : 0;
}

int emu_msr_write(struct emu_cpu *cpu, uint32_t idx, uint64_t v)
{
	struct emu_state *st = &cpu->st;
	uint64_t *slot, ok;

	emu_sys_features(cpu);
	switch (idx) {
	case MSR_SYSENTER_CS: st->sysenter_cs = v & 0xffff; return 0;
	case MSR_SYSENTER_ESP:
	case MSR_SYSENTER_EIP:
	case MSR_LSTAR:
	case MSR_CSTAR:
	case MSR_FS_BASE:
	case MSR_GS_BASE:
	case MSR_KGS_BASE:
		if (!emu_canonical(v))
			return -1;
		if (idx == MSR_SYSENTER_ESP)
			st->sysenter_esp = v;
		else if (idx == MSR_SYSENTER_EIP)
			st->sysenter_eip = v;
		else if (idx == MSR_LSTAR)
			st->lstar = v;
		else if (idx == MSR_CSTAR)
			st->cstar = v;
		else if (idx == MSR_FS_BASE)
			st->seg[EMU_FS].base = v;
		else if (idx == MSR_GS_BASE)
			st->seg[EMU_GS].base = v;
		else
			st->kernel_gs_base = v;
		return 0;
	case MSR_MISC_ENABLE: st->misc_enable = v; return 0;
	case MSR_MTRRCAP: return -1;
	case MSR_PAT:
		for (int i = 0; i < 8; i++)
			if (!valid_mem_type((v >> (i * 8)) & 0xff) && ((v >> (i * 8)) & 0xff) != 7)
				return -1;
		st->pat = v;
		return 0;
	case MSR_MTRR_DEF:
		if ((v & ~0xcffull) || !valid_mem_type(v & 0xff))
			return -1;
		st->mtrr_def_type = v;
		return 0;
	case MSR_EFER:
		ok = (cpu->sys.has_syscall ? EFER_SCE : 0) | (cpu->sys.has_lm ? EFER_LME : 0) |
		     (cpu->sys.has_nx ? EFER_NXE : 0) | EFER_LMA;
		if (v & ~ok)
			return -1;
		/* LME cannot change while paging is on; LMA is read-only. */
		if ((st->cr0 & CR0_PG) && ((v ^ st->efer) & EFER_LME))
			return -1;
		st->efer = (v & ~EFER_LMA) | (st->efer & EFER_LMA);
		emu_update_mode(cpu);
		return 0;
	case MSR_STAR: st->star = v; return 0;
	case MSR_SFMASK:
		if (v >> 32)
			return -1;
		st->sfmask = v;
		return 0;
	case MSR_TSC_AUX:
		if (v >> 32)
			return -1;
		st->tsc_aux = v;
		return 0;
	default:
		break;
	}
	if ((slot = mtrr_slot(st, idx))) {
		if (idx < MSR_MTRR_PHYS0 + 16 && !(idx & 1)) {
			if (!valid_mem_type(v & 0xff) || (v & 0xf00) ||
			    (v >> cpu->sys.maxphyaddr))
				return -1;
		} else if (idx < MSR_MTRR_PHYS0 + 16) {
			if ((v & 0x7ff) || (v >> cpu->sys.maxphyaddr))
				return -1;
		} else {
			for (int i = 0; i < 8; i++)
				if (!valid_mem_type((v >> (i * 8)) & 0xff))
					return -1;
		}
		*slot = v;
		return 0;
	}
	if (!cpu->bus.msr)
		return -1;
	return cpu->bus.msr(cpu->bus.opaque, idx, true, &v) < 0 ? -1 : 0;
}

static int exec_rdmsr(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t v;

	if (cpu->cpl)
		return emu_gp0(cpu);
	if (emu_msr_read(cpu, (uint32_t)cpu->st.gpr[EMU_RCX], &v))
		return emu_gp0(cpu);
	cpu->st.gpr[EMU_RAX] = (uint32_t)v;
	cpu->st.gpr[EMU_RDX] = v >> 32;
	cpu->st.rip = emu_next_rip(cpu, in);
	return EMU_OK;
}

static int exec_wrmsr(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t v = (uint32_t)cpu->st.gpr[EMU_RAX] | (cpu->st.gpr[EMU_RDX] << 32);

	if (cpu->cpl)
		return emu_gp0(cpu);
	if (emu_msr_write(cpu, (uint32_t)cpu->st.gpr[EMU_RCX], v))
		return emu_gp0(cpu);
	cpu->st.rip = emu_next_rip(cpu, in);
	return EMU_OK;
}

/* Flat segments loaded by SYSCALL/SYSRET/SYSENTER/SYSEXIT (descriptors are not read). */
static void flat_seg(struct emu_seg *s, uint16_t sel, unsigned dpl, bool code, bool l64)
{
	s->sel = sel;
	s->base = 0;
	s->limit = 0xffffffff;
	s->attr = (code ? 0x9b : 0x93) | (dpl << 5) | EMU_SEG_ATTR_G |
		  (l64 ? EMU_SEG_ATTR_L : EMU_SEG_ATTR_DB);
}

static int exec_syscall(struct emu_cpu *cpu, const struct emu_insn *in)
{
	struct emu_state *st = &cpu->st;
	uint64_t next = emu_next_rip(cpu, in), fl = emu_get_rflags(cpu);
	uint16_t sel = (st->star >> 32) & 0xfffc;

	if (!(st->efer & EFER_SCE) || cpu->mode == EMU_MODE_REAL || cpu->mode == EMU_MODE_VM86)
		return emu_ud(cpu);
	if (st->efer & EFER_LMA) {
		st->gpr[EMU_RCX] = next;
		st->gpr[EMU_R11] = fl & ~RF_RF;
		flat_seg(&st->seg[EMU_CS], sel, 0, true, true);
		st->rip = cpu->mode == EMU_MODE_LONG64 ? st->lstar : st->cstar;
		fl &= ~(st->sfmask | RF_RF);
	} else {
		st->gpr[EMU_RCX] = (uint32_t)next;
		flat_seg(&st->seg[EMU_CS], sel, 0, true, false);
		st->rip = (uint32_t)st->star;
		fl &= ~(RF_IF | RF_RF | RF_VM);
	}
	flat_seg(&st->seg[EMU_SS], sel + 8, 0, false, false);
	emu_set_rflags(cpu, fl | 2);
	emu_update_mode(cpu);
	return EMU_OK;
}

static int exec_sysret(struct emu_cpu *cpu, const struct emu_insn *in)
{
	struct emu_state *st = &cpu->st;
	uint16_t sel = (st->star >> 48) & 0xffff;

	if (!(st->efer & EFER_SCE) || cpu->mode == EMU_MODE_REAL || cpu->mode == EMU_MODE_VM86)
		return emu_ud(cpu);
	if (cpu->cpl)
		return emu_gp0(cpu);
	if (st->efer & EFER_LMA) {
		if (in->opsize == 8) {
			if (!emu_canonical(st->gpr[EMU_RCX]))
				return emu_gp0(cpu);
			flat_seg(&st->seg[EMU_CS], (sel + 16) | 3, 3, true, true);
			st->rip = st->gpr[EMU_RCX];
		} else {
			flat_seg(&st->seg[EMU_CS], sel | 3, 3, true, false);
			st->rip = (uint32_t)st->gpr[EMU_RCX];
		}
		emu_set_rflags(cpu, (st->gpr[EMU_R11] & 0x3c7fd7ull & ~(RF_RF | RF_VM)) | 2);
	} else {
		flat_seg(&st->seg[EMU_CS], sel | 3, 3, true, false);
		st->rip = (uint32_t)st->gpr[EMU_RCX];
		emu_set_rflags(cpu, emu_get_rflags(cpu) | RF_IF);
	}
	/* SS keeps the DPL-3 flat attributes whatever the GDT holds, as hardware does. */
	flat_seg(&st->seg[EMU_SS], (sel + 8) | 3, 3, false, false);
	emu_update_mode(cpu);
	emu_dbg_tf_after(cpu);
	return EMU_OK;
}

static int exec_sysenter(struct emu_cpu *cpu, const struct emu_insn *in)
{
	struct emu_state *st = &cpu->st;
	uint16_t sel = st->sysenter_cs & 0xfffc;

	if (st->efer & EFER_LMA)
		return emu_ud(cpu);
	if (cpu->mode == EMU_MODE_REAL || !sel)
		return emu_gp0(cpu);
	flat_seg(&st->seg[EMU_CS], sel, 0, true, false);
	flat_seg(&st->seg[EMU_SS], sel + 8, 0, false, false);
	st->gpr[EMU_RSP] = (uint32_t)st->sysenter_esp;
	st->rip = (uint32_t)st->sysenter_eip;
	emu_set_rflags(cpu, emu_get_rflags(cpu) & ~(RF_IF | RF_RF | RF_VM));
	emu_update_mode(cpu);
	return EMU_OK;
}

static int exec_sysexit(struct emu_cpu *cpu, const struct emu_insn *in)
{
	struct emu_state *st = &cpu->st;
	uint16_t sel = st->sysenter_cs & 0xfffc;

	if (st->efer & EFER_LMA)
		return emu_ud(cpu);
	if (cpu->mode == EMU_MODE_REAL || cpu->mode == EMU_MODE_VM86 || cpu->cpl || !sel)
		return emu_gp0(cpu);
	flat_seg(&st->seg[EMU_CS], (sel + 16) | 3, 3, true, false);
	flat_seg(&st->seg[EMU_SS], (sel + 24) | 3, 3, false, false);
	st->gpr[EMU_RSP] = (uint32_t)st->gpr[EMU_RCX];
	st->rip = (uint32_t)st->gpr[EMU_RDX];
	emu_update_mode(cpu);
	return EMU_OK;
}

static int exec_swapgs(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t t;

	if (cpu->mode != EMU_MODE_LONG64)
		return emu_ud(cpu);
	if (cpu->cpl)
		return emu_gp0(cpu);
	t = cpu->st.seg[EMU_GS].base;
	cpu->st.seg[EMU_GS].base = cpu->st.kernel_gs_base;
	cpu->st.kernel_gs_base = t;
	cpu->st.rip = emu_next_rip(cpu, in);
	return EMU_OK;
}

emu_exec_fn emu_msr_handler(unsigned m)
{
	switch (m) {
	case ZYDIS_MNEMONIC_RDMSR: return exec_rdmsr;
	case ZYDIS_MNEMONIC_WRMSR: return exec_wrmsr;
	case ZYDIS_MNEMONIC_SYSCALL: return exec_syscall;
	case ZYDIS_MNEMONIC_SYSRET: return exec_sysret;
	case ZYDIS_MNEMONIC_SYSENTER: return exec_sysenter;
	case ZYDIS_MNEMONIC_SYSEXIT: return exec_sysexit;
	case ZYDIS_MNEMONIC_SWAPGS: return exec_swapgs;
	default: return NULL;
	}
}
