/*
 * test_emu_diff.c: differential tests of the interpreter's integer instructions against the
 * host CPU. Each form is encoded here, run natively from an executable page (a trampoline
 * loads GPRs and RFLAGS from a struct, executes the instruction and stores them back;
 * memory operands point into a buffer mapped at a fixed address) and through emu_step() in
 * 64-bit mode over a fake bus mapping an identical buffer. Registers (but RSP), the defined
 * flags (undefined ones masked per form) and memory must match bit for bit; #DE must match
 * SIGFPE. Also emulator-only checks of branches, the stack, REP slicing and SMC.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "unit.h"
#include "x86/emu/emu.h"

#define BUF_ADDR 0x20000000ull	/* same linear address natively and in the guest */
#define BUF_SIZE 0x2000
#define MEM_BASE (BUF_ADDR + 0x1000)	/* RBX for memory operands */
#define LOW_SIZE 0x100000	/* guest RAM at 0: tables, code, stack */
#define CODE_GPA 0x10000
#define HANDLERS 0x20000	/* IDT vector v -> HLT at HANDLERS + v */
#define STACK_TOP 0x80000

#define F_CF 0x1
#define F_PF 0x4
#define F_AF 0x10
#define F_ZF 0x40
#define F_SF 0x80
#define F_DF 0x400
#define F_OF 0x800
#define F_ARITH (F_CF | F_PF | F_AF | F_ZF | F_SF | F_OF)

struct regs {
	uint64_t gpr[16];
	uint64_t rflags;
};

/* Native trampoline, copied to an executable page; the instruction replaces the NOPs. */
extern const uint8_t diff_tramp_start[], diff_tramp_insn[], diff_tramp_end[];
__asm__(".text\n"
	".globl diff_tramp_start\n"
	"diff_tramp_start:\n"
	"push %rbx\npush %rbp\npush %r12\npush %r13\npush %r14\npush %r15\n"
	"push %rdi\n"
	"pushq 128(%rdi)\npopfq\n"
	"mov 0(%rdi),%rax\nmov 8(%rdi),%rcx\nmov 16(%rdi),%rdx\nmov 24(%rdi),%rbx\n"
	"mov 40(%rdi),%rbp\nmov 48(%rdi),%rsi\nmov 64(%rdi),%r8\nmov 72(%rdi),%r9\n"
	"mov 80(%rdi),%r10\nmov 88(%rdi),%r11\nmov 96(%rdi),%r12\nmov 104(%rdi),%r13\n"
	"mov 112(%rdi),%r14\nmov 120(%rdi),%r15\nmov 56(%rdi),%rdi\n"
	".globl diff_tramp_insn\n"
	"diff_tramp_insn:\n"
	".fill 16,1,0x90\n"
	"xchg %rdi,(%rsp)\n"
	"mov %rax,0(%rdi)\nmov %rcx,8(%rdi)\nmov %rdx,16(%rdi)\nmov %rbx,24(%rdi)\n"
	"mov %rbp,40(%rdi)\nmov %rsi,48(%rdi)\nmov %r8,64(%rdi)\nmov %r9,72(%rdi)\n"
	"mov %r10,80(%rdi)\nmov %r11,88(%rdi)\nmov %r12,96(%rdi)\nmov %r13,104(%rdi)\n"
	"mov %r14,112(%rdi)\nmov %r15,120(%rdi)\n"
	"pushfq\npopq 128(%rdi)\ncld\n"
	"popq 56(%rdi)\n"
	"pop %r15\npop %r14\npop %r13\npop %r12\npop %rbp\npop %rbx\n"
	"ret\n"
	".globl diff_tramp_end\n"
	"diff_tramp_end:\n");

static uint8_t *native_code;
static uint8_t *native_buf;
static uint8_t *emu_low, *emu_buf;
static struct emu_machine *machine;
static struct emu_cpu *cpu;
static struct emu_state base_state;
static sigjmp_buf fpe_jmp;
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static unsigned forms_run, cases_run, diffs_reported;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* ---- the fake bus ---- */

static uint8_t *bus_page(void *opaque, uint64_t gpa, bool write)
{
	if (gpa < LOW_SIZE)
		return emu_low + (gpa & ~0xfffull);
	if (gpa >= BUF_ADDR && gpa < BUF_ADDR + BUF_SIZE)
		return emu_buf + ((gpa - BUF_ADDR) & ~0xfffull);
	return NULL;
}

static int bus_mmio(void *opaque, uint64_t gpa, unsigned size, bool write, uint64_t *val)
{
	if (!write)
		*val = ~0ull;
	return 0;
}

static int bus_pio(void *opaque, uint16_t port, unsigned size, bool write, uint32_t *val)
{
	if (!write)
		*val = ~0u;
	return 0;
}

static int bus_intr_ack(void *opaque)
{
	return -1;
}

static void bus_cpuid(void *opaque, uint32_t leaf, uint32_t sub, uint32_t out[4])
{
	memset(out, 0, 16);
	switch (leaf) {
	case 0:
		out[0] = 1;
		out[1] = 0x68747541;	/* "AuthenticAMD" */
		out[3] = 0x69746e65;
		out[2] = 0x444d4163;
		break;
	case 1:
		out[0] = 0xf00;
		out[3] = (1u << 0) | (1u << 4) | (1u << 5) | (1u << 6) | (1u << 8) | (1u << 9) |
			 (1u << 15) | (1u << 23) | (1u << 24) | (1u << 25) | (1u << 26);
		break;
	case 0x80000000:
		out[0] = 0x80000008;
		break;
	case 0x80000001:
		out[3] = (1u << 11) | (1u << 20) | (1u << 29);
		break;
	case 0x80000008:
		out[0] = 0x3028;
		break;
	}
}

static int bus_msr(void *opaque, uint32_t index, bool write, uint64_t *val)
{
	return -1;
}

static uint64_t bus_tsc(void *opaque)
{
	return 0;
}

static const struct emu_bus bus = {
	.page_ptr = bus_page, .mmio = bus_mmio, .pio = bus_pio, .intr_ack = bus_intr_ack,
	.cpuid = bus_cpuid, .msr = bus_msr, .tsc = bus_tsc,
};

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

/* 64-bit flat long mode: identity map of the first GiB with 2 MiB pages, GDT, IDT. */
static void setup_guest(void)
{
	struct emu_state *st = &base_state;

	memset(emu_low, 0, LOW_SIZE);
	put64(emu_low + 0x1000, 0x2000 | 3);		/* PML4[0] -> PDPT */
	put64(emu_low + 0x2000, 0x3000 | 3);		/* PDPT[0] -> PD */
	for (uint64_t i = 0; i < 512; i++)
		put64(emu_low + 0x3000 + i * 8, (i << 21) | 0x83);
	put64(emu_low + 0x4000 + 8, 0x00209a0000000000ull);	/* GDT[1]: 64-bit code */
	put64(emu_low + 0x4000 + 16, 0x00cf92000000ffffull);	/* GDT[2]: data */
	for (int v = 0; v < 32; v++) {
		uint64_t h = HANDLERS + v;
		uint8_t *g = emu_low + 0x5000 + v * 16;

		put64(g, (h & 0xffff) | (0x08ull << 16) | (0x8eull << 40) |
			     ((h >> 16) & 0xffff) << 48);
		put64(g + 8, h >> 32);
		emu_low[HANDLERS + v] = 0xf4;		/* HLT */
	}
	emu_reset_state(st);
	st->cr0 = 0x80000031;
	st->cr3 = 0x1000;
	st->cr4 = 0x20;
	st->efer = 0x500;
	st->gdtr_base = 0x4000;
	st->gdtr_limit = 0x17;
	st->idtr_base = 0x5000;
	st->idtr_limit = 32 * 16 - 1;
	for (int s = 0; s < EMU_NSREGS; s++) {
		st->seg[s].base = 0;
		st->seg[s].limit = 0xffffffff;
		st->seg[s].sel = 0x10;
		st->seg[s].attr = 0xc093;
	}
	st->seg[EMU_CS].sel = 0x08;
	st->seg[EMU_CS].attr = 0xa09b;
	st->tr.attr = 0x8b;
	st->tr.limit = 0x67;
	st->ldtr.attr = EMU_SEG_ATTR_UNUSABLE;
	st->rip = CODE_GPA;
	st->rflags = 0x2;
	st->gpr[EMU_RSP] = STACK_TOP;
}

static void on_fpe(int sig, siginfo_t *si, void *uc)
{
	siglongjmp(fpe_jmp, 1);
}

/* Run natively; returns 0, or 1 when the instruction raised #DE (SIGFPE). */
static int run_native(const uint8_t *insn, unsigned len, struct regs *r)
{
	void (*fn)(struct regs *) = (void (*)(struct regs *))(void *)native_code;
	unsigned off = diff_tramp_insn - diff_tramp_start;

	memset(native_code + off, 0x90, 16);
	memcpy(native_code + off, insn, len);
	__builtin___clear_cache((char *)native_code, (char *)native_code + 4096);
	if (sigsetjmp(fpe_jmp, 1))
		return 1;
	fn(r);
	return 0;
}

/* Run in the interpreter; returns 0, or 1 + vector when it raised an exception. */
static int run_emu(const uint8_t *insn, unsigned len, struct regs *r)
{
	struct emu_state st = base_state;
	enum emu_exit e;

	memset(emu_low + CODE_GPA, 0x90, 32);
	memcpy(emu_low + CODE_GPA, insn, len);
	emu_machine_invalidate(machine, CODE_GPA, 32);
	memcpy(st.gpr, r->gpr, sizeof(st.gpr));
	st.gpr[EMU_RSP] = STACK_TOP;
	st.rflags = r->rflags;
	emu_set_state(cpu, &st);
	e = emu_step(cpu);
	emu_get_state(cpu, &st);
	memcpy(r->gpr, st.gpr, sizeof(st.gpr));
	r->rflags = st.rflags;
	if (e != EMU_EXIT_BUDGET)
		return 100 + e;
	if (st.rip >= HANDLERS && st.rip < HANDLERS + 32)
		return 1 + (int)(st.rip - HANDLERS);
	if (st.rip != CODE_GPA + len)
		return 99;
	return 0;
}

/* ---- encoding ---- */

enum { RM_REG, RM_MEM };
#define HI8 16		/* register numbers 16..19: AH CH DH BH */

struct form {
	char name[48];
	uint8_t b[16];
	unsigned len;
	uint32_t undef;		/* flags undefined for this form */
};

/*
 * Encode [66] [REX] opcode ModRM [disp8] [imm]. `reg` is a register or a /digit (digit:
 * no REX.R), `rm` a register (RM_REG) or RBX+disp8 (RM_MEM).
 */
static void enc(struct form *f, unsigned osz, const uint8_t *opc, unsigned nopc, int reg,
		bool digit, int kind, int rm, int8_t disp, uint64_t imm, unsigned immsz)
{
	unsigned n = 0, rex = 0;

	if (osz == 2)
		f->b[n++] = 0x66;
	if (osz == 8)
		rex |= 8;
	if (!digit && reg >= 8 && reg < HI8)
		rex |= 4;
	if (kind == RM_REG && rm >= 8 && rm < HI8)
		rex |= 1;
	if (osz == 1 && ((!digit && reg >= 4 && reg < 8) || (kind == RM_REG && rm >= 4 && rm < 8)))
		rex |= 0x40;
	if (rex)
		f->b[n++] = 0x40 | rex;
	memcpy(f->b + n, opc, nopc);
	n += nopc;
	if (reg >= 0) {
		unsigned r = reg >= HI8 ? reg - HI8 + 4 : reg & 7;

		if (kind == RM_REG)
			f->b[n++] = 0xc0 | (r << 3) | (rm >= HI8 ? rm - HI8 + 4 : rm & 7);
		else {
			f->b[n++] = 0x40 | (r << 3) | 3;
			f->b[n++] = (uint8_t)disp;
		}
	}
	for (unsigned i = 0; i < immsz; i++)
		f->b[n++] = (uint8_t)(imm >> (8 * i));
	f->len = n;
}

/* A random register operand for size osz: never RSP (the trampoline's stack), and for
 * byte forms either AH..BH (no REX) or AL..R15B. */
static int pick_reg(unsigned osz, bool allow_hi)
{
	for (;;) {
		int r = rnd() % 20;

		if (r >= HI8 && !(osz == 1 && allow_hi))
			continue;
		if (r == 4 || r == 3)	/* RSP; RBX is the memory base */
			continue;
		return r;
	}
}

static uint64_t interesting(void)
{
	static const uint64_t v[] = {
		0, 1, 2, ~0ull, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff,
		0x80000000, 0xffffffff, 0x7fffffffffffffffull, 0x8000000000000000ull,
		0x100, 0x10000, 0x100000000ull, 0xfffffffffffffffeull,
	};
	unsigned k = rnd() % 4;

	if (k == 0)
		return v[rnd() % (sizeof(v) / sizeof(v[0]))];
	if (k == 1)
		return rnd() & 0xff;
	return rnd();
}

/* ---- running a form over many operand sets ---- */

typedef void (*setup_fn)(struct regs *r, const struct form *f);

static void check_case(const struct form *f, struct regs *in)
{
	struct regs nat = *in, emu = *in;
	int fn, fe;
	uint32_t fmask = (F_ARITH & ~f->undef) | F_DF;
	bool bad = false;

	memcpy(emu_buf, native_buf, BUF_SIZE);
	fn = run_native(f->b, f->len, &nat);
	fe = run_emu(f->b, f->len, &emu);
	cases_run++;
	if (fn || fe) {
		bad = !(fn == 1 && fe == 1 + 0);
	} else {
		for (int i = 0; i < 16; i++)
			if (i != 4 && nat.gpr[i] != emu.gpr[i])
				bad = true;
		if ((nat.rflags ^ emu.rflags) & fmask)
			bad = true;
		if (memcmp(native_buf, emu_buf, BUF_SIZE))
			bad = true;
	}
	if (!bad)
		return;
	if (diffs_reported++ < 12) {
		char bytes[64] = "";

		for (unsigned i = 0; i < f->len; i++)
			sprintf(bytes + strlen(bytes), "%02x ", f->b[i]);
		printf("    DIFF %s [%s] native=%d emu=%d flags in %#llx nat %#llx emu %#llx\n",
		       f->name, bytes, fn, fe, (unsigned long long)in->rflags,
		       (unsigned long long)nat.rflags, (unsigned long long)emu.rflags);
		for (int i = 0; i < 16; i++)
			if (i != 4 && nat.gpr[i] != emu.gpr[i])
				printf("      r%d in %#llx nat %#llx emu %#llx\n", i,
				       (unsigned long long)in->gpr[i],
				       (unsigned long long)nat.gpr[i], (unsigned long long)emu.gpr[i]);
		for (unsigned i = 0; i < BUF_SIZE; i++)
			if (native_buf[i] != emu_buf[i]) {
				printf("      mem +%#x nat %02x emu %02x\n", i, native_buf[i],
				       emu_buf[i]);
				break;
			}
	}
	unit_fail(__FILE__, __LINE__, f->name);
}

static void run_form(const struct form *f, unsigned ncases, setup_fn setup)
{
	forms_run++;
	for (unsigned c = 0; c < ncases; c++) {
		struct regs r;

		for (unsigned i = 0; i < BUF_SIZE; i += 8) {
			uint64_t v = rnd();

			memcpy(native_buf + i, &v, 8);
		}
		for (int i = 0; i < 16; i++)
			r.gpr[i] = interesting();
		r.rflags = 0x202 | (rnd() & F_ARITH);
		r.gpr[EMU_RBX] = MEM_BASE;
		if (setup)
			setup(&r, f);
		check_case(f, &r);
	}
}

static bool init_done, init_ok;

static bool init(void)
{
	struct sigaction sa;
	size_t tl = diff_tramp_end - diff_tramp_start;

	if (init_done)
		return init_ok;
	init_done = true;
	native_code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	native_buf = mmap((void *)BUF_ADDR, BUF_SIZE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	emu_low = calloc(1, LOW_SIZE);
	emu_buf = calloc(1, BUF_SIZE);
	if (native_code == MAP_FAILED || native_buf != (void *)BUF_ADDR || !emu_low || !emu_buf) {
		printf("    cannot map the native test pages\n");
		return false;
	}
	memcpy(native_code, diff_tramp_start, tl);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fpe;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGFPE, &sa, NULL);
	machine = emu_machine_create();
	cpu = emu_cpu_create(machine, &bus);
	if (!machine || !cpu)
		return false;
	setup_guest();
	init_ok = true;
	return true;
}

/* ---- the forms ---- */

static const unsigned sizes[] = { 1, 2, 4, 8 };
#define NCASES 120

static void name_form(struct form *f, const char *what, unsigned osz, int kind)
{
	snprintf(f->name, sizeof(f->name), "%s/%u%s", what, osz * 8, kind == RM_MEM ? "m" : "");
}

TEST(diff_alu)
{
	static const char *names[] = { "add", "or", "adc", "sbb", "and", "sub", "xor", "cmp" };

	if (!init())
		return;
	for (int op = 0; op < 8; op++)
		for (unsigned si = 0; si < 4; si++)
			for (int kind = RM_REG; kind <= RM_MEM; kind++)
				for (int form = 0; form < 5; form++) {
					unsigned osz = sizes[si];
					uint8_t opc = op * 8 + (osz > 1);
					struct form f = { .undef = (op == 1 || op == 4 || op == 6) ? F_AF : 0 };
					int reg = pick_reg(osz, true), rm = pick_reg(osz, reg < 4 || reg >= HI8);
					unsigned isz = osz == 8 ? 4 : osz;

					if ((reg >= HI8 || rm >= HI8) && ((reg >= 4 && reg < HI8) ||
									  (rm >= 4 && rm < HI8)))
						continue;
					if (form == 0) {	/* r/m, r */
						enc(&f, osz, &opc, 1, reg, false, kind, rm, rnd(), 0, 0);
					} else if (form == 1) {	/* r, r/m */
						opc += 2;
						enc(&f, osz, &opc, 1, reg, false, kind, rm, rnd(), 0, 0);
					} else if (form == 2) {	/* 80/81 /op imm */
						uint8_t o = osz > 1 ? 0x81 : 0x80;

						enc(&f, osz, &o, 1, op, true, kind, rm, rnd(), interesting(), isz);
					} else if (form == 3) {	/* 83 /op imm8 */
						uint8_t o = 0x83;

						if (osz == 1)
							continue;
						enc(&f, osz, &o, 1, op, true, kind, rm, rnd(), interesting(), 1);
					} else {		/* acc, imm */
						uint8_t o = op * 8 + 4 + (osz > 1);

						if (kind == RM_MEM)
							continue;
						enc(&f, osz, &o, 1, -1, false, 0, 0, 0, interesting(), isz);
					}
					name_form(&f, names[op], osz, kind);
					run_form(&f, NCASES, NULL);
				}
}

TEST(diff_unary_test)
{
	static const struct { const char *name; uint8_t op8, op, digit; uint32_t undef; } u[] = {
		{ "inc", 0xfe, 0xff, 0, 0 }, { "dec", 0xfe, 0xff, 1, 0 },
		{ "not", 0xf6, 0xf7, 2, 0 }, { "neg", 0xf6, 0xf7, 3, 0 },
		{ "test_ri", 0xf6, 0xf7, 0, F_AF },
	};

	if (!init())
		return;
	for (unsigned k = 0; k < sizeof(u) / sizeof(u[0]); k++)
		for (unsigned si = 0; si < 4; si++)
			for (int kind = RM_REG; kind <= RM_MEM; kind++) {
				unsigned osz = sizes[si];
				uint8_t o = osz == 1 ? u[k].op8 : u[k].op;
				struct form f = { .undef = u[k].undef };
				bool imm = k == 4;

				enc(&f, osz, &o, 1, u[k].digit, true, kind, pick_reg(osz, true), rnd(),
				    imm ? interesting() : 0, imm ? (osz == 8 ? 4 : osz) : 0);
				name_form(&f, u[k].name, osz, kind);
				run_form(&f, NCASES, NULL);
			}
	for (unsigned si = 0; si < 4; si++)
		for (int kind = RM_REG; kind <= RM_MEM; kind++) {
			unsigned osz = sizes[si];
			uint8_t o = osz == 1 ? 0x84 : 0x85;
			struct form f = { .undef = F_AF };
			int reg = pick_reg(osz, false);

			enc(&f, osz, &o, 1, reg, false, kind, pick_reg(osz, false), rnd(), 0, 0);
			name_form(&f, "test", osz, kind);
			run_form(&f, NCASES, NULL);
		}
}

static void setup_count(struct regs *r, const struct form *f)
{
	/* small counts most of the time, and the whole masked range sometimes */
	uint64_t c = rnd() % 3 ? rnd() % 10 : rnd() % 80;

	r->gpr[EMU_RCX] = (r->gpr[EMU_RCX] & ~0xffull) | c;
}

TEST(diff_shift)
{
	static const char *names[] = { "rol", "ror", "rcl", "rcr", "shl", "shr", "sal", "sar" };

	if (!init())
		return;
	for (int op = 0; op < 8; op++)
		for (unsigned si = 0; si < 4; si++)
			for (int kind = RM_REG; kind <= RM_MEM; kind++)
				for (int form = 0; form < 3; form++) {
					unsigned osz = sizes[si], w = osz * 8;
					struct form f = { 0 };
					uint8_t o;
					int rm = pick_reg(osz, true);
					char what[32];

					if (form == 2 && rm == 1)	/* CL is the count */
						rm = 0;
					if (form == 0) {
						/* imm8 count, one per form instance: several instances */
						for (int rep = 0; rep < 12; rep++) {
							unsigned cnt = rep < 4 ? (unsigned)rep : (unsigned)(rnd() % 70);
							unsigned mc = cnt & (osz == 8 ? 63 : 31);

							o = osz == 1 ? 0xc0 : 0xc1;
							f.undef = 0;
							if (mc > 1)
								f.undef |= F_OF;
							if (op >= 4 && mc)
								f.undef |= F_AF;
							if ((op == 4 || op == 5 || op == 6) && mc >= w)
								f.undef |= F_CF;
							enc(&f, osz, &o, 1, op, true, kind, rm, rnd(), cnt, 1);
							snprintf(what, sizeof(what), "%s_i%u", names[op], cnt);
							name_form(&f, what, osz, kind);
							run_form(&f, NCASES / 4, NULL);
						}
						continue;
					}
					o = form == 1 ? (osz == 1 ? 0xd0 : 0xd1) : (osz == 1 ? 0xd2 : 0xd3);
					f.undef = op >= 4 ? F_AF : 0;
					if (form == 2)
						f.undef |= F_OF | F_CF;	/* CL counts vary; CF checked via imm */
					enc(&f, osz, &o, 1, op, true, kind, rm, rnd(), 0, 0);
					snprintf(what, sizeof(what), "%s_%s", names[op], form == 1 ? "1" : "cl");
					name_form(&f, what, osz, kind);
					run_form(&f, NCASES, form == 2 ? setup_count : NULL);
				}
}

TEST(diff_shxd)
{
	if (!init())
		return;
	for (int right = 0; right < 2; right++)
		for (unsigned si = 1; si < 4; si++)
			for (int kind = RM_REG; kind <= RM_MEM; kind++)
				for (int rep = 0; rep < 10; rep++) {
					unsigned osz = sizes[si], w = osz * 8;
					unsigned cnt = rep < 3 ? (unsigned)rep : (unsigned)(rnd() % (w == 64 ? 64 : 32));
					uint8_t o[2] = { 0x0f, right ? 0xac : 0xa4 };
					struct form f = { 0 };
					char what[32];

					if (cnt > w)
						continue;	/* result undefined */
					f.undef = F_AF | ((cnt & (w == 64 ? 63 : 31)) > 1 ? F_OF : 0);
					if (cnt == w)
						f.undef |= F_CF;
					enc(&f, osz, o, 2, pick_reg(osz, false), false, kind,
					    pick_reg(osz, false), rnd(), cnt, 1);
					snprintf(what, sizeof(what), "%s_%u", right ? "shrd" : "shld", cnt);
					name_form(&f, what, osz, kind);
					run_form(&f, NCASES / 2, NULL);
				}
}

static void setup_div(struct regs *r, const struct form *f)
{
	/* make the quotient fit about half of the time */
	if (rnd() & 1)
		r->gpr[EMU_RDX] = rnd() % 3 == 0 ? ~0ull : rnd() % 4;
}

TEST(diff_muldiv)
{
	static const char *names[] = { "mul", "imul1", "div", "idiv" };

	if (!init())
		return;
	for (int op = 0; op < 4; op++)
		for (unsigned si = 0; si < 4; si++)
			for (int kind = RM_REG; kind <= RM_MEM; kind++) {
				unsigned osz = sizes[si];
				uint8_t o = osz == 1 ? 0xf6 : 0xf7;
				struct form f = { .undef = op < 2 ? F_SF | F_ZF | F_AF | F_PF : F_ARITH };

				enc(&f, osz, &o, 1, 4 + op, true, kind, pick_reg(osz, true), rnd(), 0, 0);
				name_form(&f, names[op], osz, kind);
				run_form(&f, NCASES * 2, op >= 2 ? setup_div : NULL);
			}
	for (unsigned si = 1; si < 4; si++)
		for (int kind = RM_REG; kind <= RM_MEM; kind++)
			for (int form = 0; form < 3; form++) {
				unsigned osz = sizes[si];
				struct form f = { .undef = F_SF | F_ZF | F_AF | F_PF };
				uint8_t o2[2] = { 0x0f, 0xaf }, o = form == 1 ? 0x69 : 0x6b;

				if (form == 0)
					enc(&f, osz, o2, 2, pick_reg(osz, false), false, kind,
					    pick_reg(osz, false), rnd(), 0, 0);
				else
					enc(&f, osz, &o, 1, pick_reg(osz, false), false, kind,
					    pick_reg(osz, false), rnd(), interesting(),
					    form == 1 ? (osz == 2 ? 2 : 4) : 1);
				name_form(&f, form == 0 ? "imul2" : form == 1 ? "imul3" : "imul3b", osz,
					  kind);
				run_form(&f, NCASES, NULL);
			}
}

static void setup_bitoff(struct regs *r, const struct form *f)
{
	for (int i = 0; i < 16; i++)
		if (i != EMU_RBX)
			r->gpr[i] = (uint64_t)((int64_t)(rnd() % 16000) - 8000);
}

TEST(diff_bits)
{
	static const char *names[] = { "bt", "bts", "btr", "btc" };
	static const uint8_t opc[] = { 0xa3, 0xab, 0xb3, 0xbb };

	if (!init())
		return;
	for (int op = 0; op < 4; op++)
		for (unsigned si = 1; si < 4; si++)
			for (int kind = RM_REG; kind <= RM_MEM; kind++)
				for (int form = 0; form < 2; form++) {
					unsigned osz = sizes[si];
					struct form f = { .undef = F_OF | F_SF | F_AF | F_PF };
					uint8_t o[2] = { 0x0f, opc[op] }, oi[2] = { 0x0f, 0xba };

					if (form == 0)
						enc(&f, osz, o, 2, pick_reg(osz, false), false, kind,
						    pick_reg(osz, false), rnd(), 0, 0);
					else
						enc(&f, osz, oi, 2, 4 + op, true, kind, pick_reg(osz, false),
						    rnd(), rnd() & 0xff, 1);
					name_form(&f, names[op], osz, kind);
					run_form(&f, NCASES, kind == RM_MEM && form == 0 ? setup_bitoff : NULL);
				}
	for (int op = 0; op < 2; op++)
		for (unsigned si = 1; si < 4; si++)
			for (int kind = RM_REG; kind <= RM_MEM; kind++) {
				unsigned osz = sizes[si];
				struct form f = { .undef = F_CF | F_OF | F_SF | F_AF | F_PF };
				uint8_t o[2] = { 0x0f, op ? 0xbd : 0xbc };

				enc(&f, osz, o, 2, pick_reg(osz, false), false, kind, pick_reg(osz, false),
				    rnd(), 0, 0);
				name_form(&f, op ? "bsr" : "bsf", osz, kind);
				run_form(&f, NCASES, NULL);
			}
	for (unsigned si = 2; si < 4; si++) {
		struct form f = { 0 };
		uint8_t o[2] = { 0x0f, 0xc8 };
		int r = pick_reg(4, false);

		o[1] |= r & 7;
		if (r >= 8) {
			uint8_t o3[3] = { 0x41, 0x0f, o[1] };

			if (sizes[si] == 8)
				o3[0] = 0x49;
			memcpy(f.b, o3, 3);
			f.len = 3;
		} else {
			enc(&f, sizes[si], o, 2, -1, false, 0, 0, 0, 0, 0);
		}
		name_form(&f, "bswap", sizes[si], RM_REG);
		run_form(&f, NCASES, NULL);
	}
}

static void setup_cmpxchg(struct regs *r, const struct form *f)
{
	/* make the comparison succeed about half of the time */
	if (rnd() & 1) {
		uint64_t m;

		memcpy(&m, native_buf + (MEM_BASE - BUF_ADDR) + (int8_t)f->b[f->len - 1], 8);
		r->gpr[EMU_RAX] = m;
		r->gpr[EMU_RDX] = m >> 32;
	}
}

TEST(diff_xchg_family)
{
	if (!init())
		return;
	for (unsigned si = 0; si < 4; si++)
		for (int kind = RM_REG; kind <= RM_MEM; kind++) {
			unsigned osz = sizes[si];
			int reg = pick_reg(osz, false);
			struct form f = { 0 };
			uint8_t o = osz == 1 ? 0x86 : 0x87;
			uint8_t cx[2] = { 0x0f, osz == 1 ? 0xb0 : 0xb1 }, xa[2] = { 0x0f, osz == 1 ? 0xc0 : 0xc1 };

			enc(&f, osz, &o, 1, reg, false, kind, pick_reg(osz, false), rnd(), 0, 0);
			name_form(&f, "xchg", osz, kind);
			run_form(&f, NCASES, NULL);
			enc(&f, osz, cx, 2, reg == 0 ? 2 : reg, false, kind, pick_reg(osz, false), 8, 0,
			    0);
			name_form(&f, "cmpxchg", osz, kind);
			run_form(&f, NCASES, kind == RM_MEM ? setup_cmpxchg : NULL);
			enc(&f, osz, xa, 2, reg, false, kind, pick_reg(osz, false), rnd(), 0, 0);
			name_form(&f, "xadd", osz, kind);
			run_form(&f, NCASES, NULL);
		}
	{
		struct form f = { 0 };
		uint8_t o[2] = { 0x0f, 0xc7 };

		enc(&f, 4, o, 2, 1, true, RM_MEM, 0, 8, 0, 0);
		name_form(&f, "cmpxchg8b", 8, RM_MEM);
		run_form(&f, NCASES, setup_cmpxchg);
	}
}

TEST(diff_moves)
{
	if (!init())
		return;
	for (unsigned si = 1; si < 4; si++)
		for (int kind = RM_REG; kind <= RM_MEM; kind++) {
			unsigned osz = sizes[si];
			struct form f = { 0 };
			uint8_t zx8[2] = { 0x0f, 0xb6 }, zx16[2] = { 0x0f, 0xb7 };
			uint8_t sx8[2] = { 0x0f, 0xbe }, sx16[2] = { 0x0f, 0xbf }, sxd = 0x63;

			enc(&f, osz, zx8, 2, pick_reg(osz, false), false, kind, pick_reg(1, false),
			    rnd(), 0, 0);
			name_form(&f, "movzx8", osz, kind);
			run_form(&f, NCASES / 2, NULL);
			enc(&f, osz, sx8, 2, pick_reg(osz, false), false, kind, pick_reg(1, false),
			    rnd(), 0, 0);
			name_form(&f, "movsx8", osz, kind);
			run_form(&f, NCASES / 2, NULL);
			if (osz > 2) {
				enc(&f, osz, zx16, 2, pick_reg(osz, false), false, kind,
				    pick_reg(osz, false), rnd(), 0, 0);
				name_form(&f, "movzx16", osz, kind);
				run_form(&f, NCASES / 2, NULL);
				enc(&f, osz, sx16, 2, pick_reg(osz, false), false, kind,
				    pick_reg(osz, false), rnd(), 0, 0);
				name_form(&f, "movsx16", osz, kind);
				run_form(&f, NCASES / 2, NULL);
			}
			if (osz == 8) {
				enc(&f, osz, &sxd, 1, pick_reg(osz, false), false, kind,
				    pick_reg(osz, false), rnd(), 0, 0);
				name_form(&f, "movsxd", osz, kind);
				run_form(&f, NCASES / 2, NULL);
			}
		}
	for (unsigned si = 0; si < 4; si++)
		for (int kind = RM_REG; kind <= RM_MEM; kind++) {
			unsigned osz = sizes[si];
			struct form f = { 0 };
			uint8_t o1 = osz == 1 ? 0x88 : 0x89, o2 = osz == 1 ? 0x8a : 0x8b;
			uint8_t oi = osz == 1 ? 0xc6 : 0xc7;

			enc(&f, osz, &o1, 1, pick_reg(osz, false), false, kind, pick_reg(osz, false),
			    rnd(), 0, 0);
			name_form(&f, "mov_st", osz, kind);
			run_form(&f, NCASES / 2, NULL);
			enc(&f, osz, &o2, 1, pick_reg(osz, true), false, kind, pick_reg(osz, false),
			    rnd(), 0, 0);
			name_form(&f, "mov_ld", osz, kind);
			run_form(&f, NCASES / 2, NULL);
			enc(&f, osz, &oi, 1, 0, true, kind, pick_reg(osz, false), rnd(), interesting(),
			    osz == 8 ? 4 : osz);
			name_form(&f, "mov_imm", osz, kind);
			run_form(&f, NCASES / 2, NULL);
		}
	/* LEA with SIB addressing and the three address sizes */
	for (int rep = 0; rep < 24; rep++) {
		struct form f = { 0 };
		unsigned osz = sizes[1 + rep % 3], n = 0;
		static const int low[] = { 0, 1, 2, 3, 5, 6, 7 };
		int dst = low[rnd() % 7], base = low[rnd() % 7], idx = low[rnd() % 7];

		if (rep & 4)
			f.b[n++] = 0x67;
		if (osz == 2)
			f.b[n++] = 0x66;
		if (osz == 8)
			f.b[n++] = 0x48;
		f.b[n++] = 0x8d;
		f.b[n++] = 0x84 | (dst << 3);	/* mod=2, rm=SIB */
		f.b[n++] = ((rep & 3) << 6) | (idx << 3) | base;
		for (int i = 0; i < 4; i++)
			f.b[n++] = rnd();
		f.len = n;
		snprintf(f.name, sizeof(f.name), "lea/%u%s", osz * 8, rep & 4 ? "a32" : "");
		run_form(&f, NCASES / 4, NULL);
	}
}

TEST(diff_cc)
{
	if (!init())
		return;
	for (unsigned cc = 0; cc < 16; cc++) {
		struct form f = { 0 };
		uint8_t set[2] = { 0x0f, 0x90 | cc }, cmov[2] = { 0x0f, 0x40 | cc };
		char what[32];

		enc(&f, 1, set, 2, 0, true, RM_REG, pick_reg(1, true), 0, 0, 0);
		snprintf(what, sizeof(what), "set%x", cc);
		name_form(&f, what, 1, RM_REG);
		run_form(&f, NCASES / 2, NULL);
		for (unsigned si = 1; si < 4; si++)
			for (int kind = RM_REG; kind <= RM_MEM; kind++) {
				enc(&f, sizes[si], cmov, 2, pick_reg(sizes[si], false), false, kind,
				    pick_reg(sizes[si], false), rnd(), 0, 0);
				snprintf(what, sizeof(what), "cmov%x", cc);
				name_form(&f, what, sizes[si], kind);
				run_form(&f, NCASES / 4, NULL);
			}
	}
}

TEST(diff_misc)
{
	static const struct { const char *name; uint8_t b[3]; unsigned len; } m[] = {
		{ "cbw", { 0x66, 0x98 }, 2 }, { "cwde", { 0x98 }, 1 }, { "cdqe", { 0x48, 0x98 }, 2 },
		{ "cwd", { 0x66, 0x99 }, 2 }, { "cdq", { 0x99 }, 1 }, { "cqo", { 0x48, 0x99 }, 2 },
		{ "lahf", { 0x9f }, 1 }, { "sahf", { 0x9e }, 1 }, { "clc", { 0xf8 }, 1 },
		{ "stc", { 0xf9 }, 1 }, { "cmc", { 0xf5 }, 1 }, { "cld", { 0xfc }, 1 },
		{ "std", { 0xfd }, 1 }, { "nop", { 0x90 }, 1 }, { "nopl", { 0x0f, 0x1f, 0xc0 }, 3 },
		{ "pause", { 0xf3, 0x90 }, 2 }, { "xchg_ax", { 0x48, 0x93 }, 2 },
		{ "xchg_eax", { 0x93 }, 1 }, { "mov_hi", { 0x88, 0xe7 }, 2 },
		{ "lfence", { 0x0f, 0xae, 0xe8 }, 3 },
	};

	if (!init())
		return;
	for (unsigned k = 0; k < sizeof(m) / sizeof(m[0]); k++) {
		struct form f = { 0 };

		memcpy(f.b, m[k].b, m[k].len);
		f.len = m[k].len;
		snprintf(f.name, sizeof(f.name), "%s", m[k].name);
		run_form(&f, NCASES / 2, NULL);
	}
}

static void setup_string(struct regs *r, const struct form *f)
{
	r->gpr[EMU_RSI] = BUF_ADDR + 0x400 + rnd() % 64;
	r->gpr[EMU_RDI] = BUF_ADDR + 0x1000 + rnd() % 64;
	r->gpr[EMU_RCX] = rnd() % 3 ? rnd() % 20 : 0;
	if (rnd() & 1)
		r->rflags |= F_DF;
	if (rnd() & 1)	/* make SCAS/CMPS see equal data sometimes */
		memset(native_buf, 0x5a, BUF_SIZE);
	r->gpr[EMU_RAX] = rnd() & 1 ? 0x5a5a5a5a5a5a5a5aull : rnd();
}

TEST(diff_string)
{
	static const char *names[] = { "movs", "cmps", "stos", "lods", "scas" };
	static const uint8_t opc[] = { 0xa4, 0xa6, 0xaa, 0xac, 0xae };
	static const uint8_t pfx[] = { 0, 0xf3, 0xf2 };

	if (!init())
		return;
	for (int op = 0; op < 5; op++)
		for (unsigned si = 0; si < 4; si++)
			for (int p = 0; p < 3; p++)
				for (int a32 = 0; a32 < 2; a32++) {
					struct form f = { 0 };
					unsigned n = 0, osz = sizes[si];
					char what[32];

					if (a32)
						f.b[n++] = 0x67;
					if (pfx[p])
						f.b[n++] = pfx[p];
					if (osz == 2)
						f.b[n++] = 0x66;
					if (osz == 8)
						f.b[n++] = 0x48;
					f.b[n++] = opc[op] + (osz > 1);
					f.len = n;
					snprintf(what, sizeof(what), "%s%s%s", p == 1 ? "rep_" : p == 2 ? "repne_" : "",
						 names[op], a32 ? "_a32" : "");
					name_form(&f, what, osz, RM_REG);
					run_form(&f, NCASES / 2, setup_string);
				}
	{
		struct form f = { .b = { 0xd7 }, .len = 1 };

		snprintf(f.name, sizeof(f.name), "xlat");
		run_form(&f, NCASES, NULL);
	}
}

TEST(diff_locked)
{
	static const char *names[] = { "add", "or", "adc", "sbb", "and", "sub", "xor" };

	if (!init())
		return;
	for (int op = 0; op < 7; op++)
		for (unsigned si = 0; si < 4; si++) {
			unsigned osz = sizes[si];
			uint8_t opc = op * 8 + (osz > 1);
			struct form f = { .undef = (op == 1 || op == 4 || op == 6) ? F_AF : 0 };
			char what[32];

			f.b[0] = 0xf0;
			enc(&f, osz, &opc, 1, pick_reg(osz, false), false, RM_MEM, 0, rnd(), 0, 0);
			/* enc() wrote from b[0]: shift right by one for the LOCK prefix */
			memmove(f.b + 1, f.b, f.len);
			f.b[0] = 0xf0;
			f.len++;
			snprintf(what, sizeof(what), "lock_%s", names[op]);
			name_form(&f, what, osz, RM_MEM);
			run_form(&f, NCASES / 2, NULL);
		}
}

__attribute__((destructor)) static void diff_summary(void)
{
	if (init_ok)
		printf("differential: %u forms, %u cases against the host CPU, %u differences\n",
		       forms_run, cases_run, diffs_reported);
}
