/*
 * sys_ctl.c: control-register and processor-control instructions (SDM Vol. 2, Vol. 3
 * §2.5): MOV to/from CR0/CR2/CR3/CR4/CR8 with their #GP rules and the long-mode
 * transitions (EFER.LME + CR0.PG -> LMA), MOV DRn, CLTS, LMSW, SMSW, INVLPG, INVD/WBINVD,
 * CLFLUSH, HLT, CLI/STI (IOPL rules), CPUID, RDTSC/RDTSCP/RDPMC; MONITOR/MWAIT and
 * XGETBV/XSETBV raise #UD (hidden by the CPUID policy); DR7.GD (#DB on MOV DR, with
 * breakpoints in debug.c). Left out: VME/PVI.
 */
#include <Zydis/Zydis.h>
#include "x86/emu/emu_internal.h"

#define CR0_PE (1ull << 0)
#define CR0_MP (1ull << 1)
#define CR0_EM (1ull << 2)
#define CR0_TS (1ull << 3)
#define CR0_ET (1ull << 4)
#define CR0_NE (1ull << 5)
#define CR0_WP (1ull << 16)
#define CR0_AM (1ull << 18)
#define CR0_NW (1ull << 29)
#define CR0_CD (1ull << 30)
#define CR0_PG (1ull << 31)
#define CR4_TSD (1ull << 2)
#define CR4_DE (1ull << 3)
#define CR4_PSE (1ull << 4)
#define CR4_PAE (1ull << 5)
#define CR4_MCE (1ull << 6)
#define CR4_PGE (1ull << 7)
#define CR4_PCE (1ull << 8)
#define CR4_OSFXSR (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define RF_IF (1ull << 9)
#define RF_RF (1ull << 16)
#define DR7_GD (1ull << 13)

static int done(struct emu_cpu *cpu, const struct emu_insn *in)
{
	cpu->st.rip = emu_next_rip(cpu, in);
	return EMU_OK;
}

static int write_cr0(struct emu_cpu *cpu, uint64_t v)
{
	struct emu_state *st = &cpu->st;
	uint64_t old = st->cr0;

	if (v >> 32)
		return emu_gp0(cpu);
	if (((v & CR0_PG) && !(v & CR0_PE)) || ((v & CR0_NW) && !(v & CR0_CD)))
		return emu_gp0(cpu);
	if ((v & CR0_PG) && !(old & CR0_PG) && (st->efer & EFER_LME)) {
		if (!(st->cr4 & CR4_PAE) || (st->seg[EMU_CS].attr & EMU_SEG_ATTR_L))
			return emu_gp0(cpu);
		st->efer |= EFER_LMA;
	}
	if (!(v & CR0_PG) && (old & CR0_PG) && (st->efer & EFER_LMA)) {
		if (cpu->mode == EMU_MODE_LONG64)
			return emu_gp0(cpu);
		st->efer &= ~EFER_LMA;
	}
	st->cr0 = (v & (CR0_PE | CR0_MP | CR0_EM | CR0_TS | CR0_NE | CR0_WP | CR0_AM | CR0_NW |
			CR0_CD | CR0_PG)) | CR0_ET;
	emu_update_mode(cpu);
	return 0;
}

static int write_cr4(struct emu_cpu *cpu, uint64_t v)
{
	struct emu_state *st = &cpu->st;
	uint64_t ok = CR4_TSD | CR4_DE | CR4_PAE | CR4_MCE | CR4_PCE | CR4_OSXMMEXCPT;

	emu_sys_features(cpu);
	if (cpu->sys.has_pse)
		ok |= CR4_PSE;
	if (cpu->sys.has_pge)
		ok |= CR4_PGE;
	if (cpu->sys.has_fxsr)
		ok |= CR4_OSFXSR;
	if (v & ~ok)
		return emu_gp0(cpu);
	if ((st->efer & EFER_LMA) && !(v & CR4_PAE))
		return emu_gp0(cpu);
	st->cr4 = v;
	emu_update_mode(cpu);
	return 0;
}

static int exec_mov_cr(struct emu_cpu *cpu, const struct emu_insn *in)
{
	struct emu_state *st = &cpu->st;
	bool to_cr = in->op[0].kind == EMU_OPK_REG && in->op[0].reg >= EMU_REG_CR &&
		     in->op[0].reg < EMU_REG_DR;
	unsigned n = (to_cr ? in->op[0].reg : in->op[1].reg) - EMU_REG_CR;
	uint64_t v = 0;
	int r;

	if (n == 1 || (n > 4 && n != 8) || (n == 8 && cpu->mode != EMU_MODE_LONG64))
		return emu_ud(cpu);
	if (cpu->cpl)
		return emu_gp0(cpu);
	if (!to_cr) {
		switch (n) {
		case 0: v = st->cr0; break;
		case 2: v = st->cr2; break;
		case 3: v = st->cr3; break;
		case 4: v = st->cr4; break;
		default: v = st->cr8; break;
		}
		if ((r = emu_op_write(cpu, in, 0, v & emu_size_mask(in->op[0].size))))
			return r;
		return done(cpu, in);
	}
	if ((r = emu_op_read(cpu, in, 1, &v)))
		return r;
	switch (n) {
	case 0:
		if (write_cr0(cpu, v))
			return EMU_FAULT;
		break;
	case 2:
		st->cr2 = v;
		break;
	case 3:
		emu_sys_features(cpu);
		if ((st->efer & EFER_LMA) && (v >> cpu->sys.maxphyaddr))
			return emu_gp0(cpu);
		st->cr3 = v;
		emu_tlb_flush_nonglobal(cpu);
		break;
	case 4:
		if (write_cr4(cpu, v))
			return EMU_FAULT;
		break;
	default:
		if (v >> 4)
			return emu_gp0(cpu);
		st->cr8 = v;
		break;
	}
	return done(cpu, in);
}

static int exec_mov_dr(struct emu_cpu *cpu, const struct emu_insn *in)
{
	struct emu_state *st = &cpu->st;
	bool to_dr = in->op[0].kind == EMU_OPK_REG && in->op[0].reg >= EMU_REG_DR &&
		     in->op[0].reg < EMU_REG_DR + 8;
	unsigned n = (to_dr ? in->op[0].reg : in->op[1].reg) - EMU_REG_DR;
	uint64_t v;
	int r;

	if (n > 7)
		return emu_ud(cpu);
	if (n == 4 || n == 5) {
		if (st->cr4 & CR4_DE)
			return emu_ud(cpu);
		n += 2;
	}
	if (cpu->cpl)
		return emu_gp0(cpu);
	if (st->dr[7] & DR7_GD)
		return emu_dbg_mov_dr_gd(cpu);
	if (!to_dr) {
		if ((r = emu_op_write(cpu, in, 0, st->dr[n] & emu_size_mask(in->op[0].size))))
			return r;
		return done(cpu, in);
	}
	if ((r = emu_op_read(cpu, in, 1, &v)))
		return r;
	if (n >= 6 && (v >> 32))
		return emu_gp0(cpu);
	if (n == 6)
		v = (v & 0x1e00f) | 0xffff0ff0;
	else if (n == 7)
		v = (v & 0xffff2fffull) | 0x400;
	st->dr[n] = v;
	if (n == 7) {
		/* breakpoints on or off: back to the run loop, which steps while they are on */
		emu_dbg_update(cpu);
		cpu->brk = true;
	}
	/* RF ends with any instruction; one left by an IRET must not hide a new breakpoint */
	st->rflags &= ~RF_RF;
	return done(cpu, in);
}

static int exec_clts(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (cpu->cpl)
		return emu_gp0(cpu);
	cpu->st.cr0 &= ~CR0_TS;
	return done(cpu, in);
}

static int exec_lmsw(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t v;
	int r;

	if (cpu->cpl)
		return emu_gp0(cpu);
	if ((r = emu_op_read(cpu, in, 0, &v)))
		return r;
	/* Loads PE (set only), MP, EM, TS. */
	v = (cpu->st.cr0 & ~0xeull) | (v & 0xf) | (cpu->st.cr0 & CR0_PE);
	if (write_cr0(cpu, v))
		return EMU_FAULT;
	return done(cpu, in);
}

static int exec_smsw(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t v = cpu->st.cr0;
	int r;

	if (in->op[0].kind == EMU_OPK_MEM)
		v &= 0xffff;
	if ((r = emu_op_write(cpu, in, 0, v & emu_size_mask(in->op[0].size))))
		return r;
	return done(cpu, in);
}

static int exec_invlpg(struct emu_cpu *cpu, const struct emu_insn *in)
{
	int sreg;
	uint64_t off, lin;

	if (cpu->cpl)
		return emu_gp0(cpu);
	if (in->op[0].kind != EMU_OPK_MEM)
		return emu_ud(cpu);
	emu_op_ea(cpu, in, 0, &sreg, &off);
	if (cpu->mode == EMU_MODE_LONG64)
		lin = off + (sreg >= EMU_FS ? cpu->st.seg[sreg].base : 0);
	else
		lin = (uint32_t)(cpu->st.seg[sreg].base + off);
	emu_tlb_flush_page(cpu, lin);
	return done(cpu, in);
}

static int exec_wbinvd(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (cpu->cpl)
		return emu_gp0(cpu);
	return done(cpu, in);
}

/* CLFLUSH/CLFLUSHOPT: no cache to flush, but the access checks apply. */
static int exec_clflush(struct emu_cpu *cpu, const struct emu_insn *in)
{
	int sreg;
	uint64_t off;
	uint8_t b;
	int r;

	if (in->op[0].kind != EMU_OPK_MEM)
		return emu_ud(cpu);
	emu_op_ea(cpu, in, 0, &sreg, &off);
	if ((r = emu_mem_read(cpu, sreg, off, &b, 1)))
		return r;
	return done(cpu, in);
}

static int exec_hlt(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (cpu->cpl)
		return emu_gp0(cpu);
	cpu->st.rip = emu_next_rip(cpu, in);
	cpu->stop_reason = EMU_EXIT_HLT;
	return EMU_STOP;
}

static bool if_allowed(const struct emu_cpu *cpu)
{
	unsigned iopl = (cpu->st.rflags >> 12) & 3;

	if (cpu->mode == EMU_MODE_REAL)
		return true;
	if (cpu->mode == EMU_MODE_VM86)
		return iopl == 3;
	return cpu->cpl <= iopl;
}

static int exec_cli(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (!if_allowed(cpu))
		return emu_gp0(cpu);
	emu_set_rflags(cpu, emu_get_rflags(cpu) & ~RF_IF);
	return done(cpu, in);
}

static int exec_sti(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t f = emu_get_rflags(cpu);

	if (!if_allowed(cpu))
		return emu_gp0(cpu);
	if (!(f & RF_IF))
		cpu->st.interrupt_shadow = true;
	emu_set_rflags(cpu, f | RF_IF);
	return done(cpu, in);
}

static int exec_cpuid(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint32_t r[4] = { 0, 0, 0, 0 };
	uint64_t *g = cpu->st.gpr;

	if (cpu->bus.cpuid)
		cpu->bus.cpuid(cpu->bus.opaque, (uint32_t)g[EMU_RAX], (uint32_t)g[EMU_RCX], r);
	g[EMU_RAX] = r[0];
	g[EMU_RBX] = r[1];
	g[EMU_RCX] = r[2];
	g[EMU_RDX] = r[3];
	return done(cpu, in);
}

static uint64_t read_tsc(struct emu_cpu *cpu)
{
	return cpu->bus.tsc ? cpu->bus.tsc(cpu->bus.opaque) : cpu->insn_count;
}

static int exec_rdtsc(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t t;

	if ((cpu->st.cr4 & CR4_TSD) && cpu->cpl && cpu->mode != EMU_MODE_REAL)
		return emu_gp0(cpu);
	t = read_tsc(cpu);
	cpu->st.gpr[EMU_RAX] = (uint32_t)t;
	cpu->st.gpr[EMU_RDX] = t >> 32;
	return done(cpu, in);
}

static int exec_rdtscp(struct emu_cpu *cpu, const struct emu_insn *in)
{
	emu_sys_features(cpu);
	if (!cpu->sys.has_rdtscp)
		return emu_ud(cpu);
	if ((cpu->st.cr4 & CR4_TSD) && cpu->cpl && cpu->mode != EMU_MODE_REAL)
		return emu_gp0(cpu);
	uint64_t t = read_tsc(cpu);

	cpu->st.gpr[EMU_RAX] = (uint32_t)t;
	cpu->st.gpr[EMU_RDX] = t >> 32;
	cpu->st.gpr[EMU_RCX] = (uint32_t)cpu->st.tsc_aux;
	return done(cpu, in);
}

/* No performance counters are exposed: every RDPMC index is invalid. */
static int exec_rdpmc(struct emu_cpu *cpu, const struct emu_insn *in)
{
	return emu_gp0(cpu);
}

static int exec_ud(struct emu_cpu *cpu, const struct emu_insn *in)
{
	return emu_ud(cpu);
}

emu_exec_fn emu_sysctl_handler(unsigned m)
{
	switch (m) {
	case ZYDIS_MNEMONIC_CLTS: return exec_clts;
	case ZYDIS_MNEMONIC_LMSW: return exec_lmsw;
	case ZYDIS_MNEMONIC_SMSW: return exec_smsw;
	case ZYDIS_MNEMONIC_INVLPG: return exec_invlpg;
	case ZYDIS_MNEMONIC_INVD:
	case ZYDIS_MNEMONIC_WBINVD: return exec_wbinvd;
	case ZYDIS_MNEMONIC_CLFLUSH:
	case ZYDIS_MNEMONIC_CLFLUSHOPT: return exec_clflush;
	case ZYDIS_MNEMONIC_HLT: return exec_hlt;
	case ZYDIS_MNEMONIC_CLI: return exec_cli;
	case ZYDIS_MNEMONIC_STI: return exec_sti;
	case ZYDIS_MNEMONIC_CPUID: return exec_cpuid;
	case ZYDIS_MNEMONIC_RDTSC: return exec_rdtsc;
	case ZYDIS_MNEMONIC_RDTSCP: return exec_rdtscp;
	case ZYDIS_MNEMONIC_RDPMC: return exec_rdpmc;
	case ZYDIS_MNEMONIC_MONITOR:
	case ZYDIS_MNEMONIC_MWAIT:
	case ZYDIS_MNEMONIC_XGETBV:
	case ZYDIS_MNEMONIC_XSETBV: return exec_ud;
	default: return NULL;
	}
}

/* MOV to/from CRn or DRn (a form of the core's MOV). */
emu_exec_fn emu_sysctl_form(const struct emu_insn *in)
{
	/* SMSW, LMSW and CLTS name CR0 as a hidden operand: they are not MOVs. */
	if (in->mnemonic != ZYDIS_MNEMONIC_MOV)
		return NULL;
	for (int i = 0; i < 2; i++) {
		const struct emu_operand *op = &in->op[i];

		if (op->kind != EMU_OPK_REG)
			continue;
		if (op->reg >= EMU_REG_CR && op->reg < EMU_REG_CR + 16)
			return exec_mov_cr;
		if (op->reg >= EMU_REG_DR && op->reg < EMU_REG_DR + 16)
			return exec_mov_dr;
	}
	return NULL;
}
