/*
 * test_emu_core.c: the interpreter core on small guest programs over a fake bus, for what
 * the differential tests cannot run natively: near branches, calls and the stack, LOOP/JRCXZ,
 * ENTER/LEAVE, 16-bit real-mode code, self-modifying and host-modified code, REP slicing
 * with events, external interrupts, the trap flag, #UD/#DE delivery, unsupported
 * instructions, instructions crossing a page, the budget, and LOCK atomicity across
 * threads (two vCPUs on one machine).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "unit.h"
#include "x86/emu/emu.h"
#include "x86/emu/flags.h"

#define RAM_SIZE 0x400000
#define CODE 0x10000
#define HANDLERS 0x20000	/* vector v -> HLT at HANDLERS + v (0x20: INC R15; IRETQ) */
#define STACK_TOP 0x80000
#define DATA 0x100000

static uint8_t *ram;
static int pending_vector = -1;

static uint8_t *bus_page(void *o, uint64_t gpa, bool w)
{
	return gpa < RAM_SIZE ? ram + (gpa & ~0xfffull) : NULL;
}

static int bus_mmio(void *o, uint64_t gpa, unsigned size, bool w, uint64_t *v)
{
	if (!w)
		*v = ~0ull;
	return 0;
}

static int bus_pio(void *o, uint16_t port, unsigned size, bool w, uint32_t *v)
{
	if (!w)
		*v = ~0u;
	return 0;
}

static int bus_intr_ack(void *o)
{
	int v = pending_vector;

	pending_vector = -1;
	return v;
}

static void bus_cpuid(void *o, uint32_t leaf, uint32_t sub, uint32_t out[4])
{
	memset(out, 0, 16);
	if (leaf == 0x80000000)
		out[0] = 0x80000008;
	else if (leaf == 0x80000001)
		out[3] = (1u << 11) | (1u << 20) | (1u << 29);
	else if (leaf == 0x80000008)
		out[0] = 0x3028;
}

static int bus_msr(void *o, uint32_t i, bool w, uint64_t *v)
{
	return -1;
}

static uint64_t bus_tsc(void *o)
{
	return 0;
}

static const struct emu_bus bus = {
	.page_ptr = bus_page, .mmio = bus_mmio, .pio = bus_pio, .intr_ack = bus_intr_ack,
	.cpuid = bus_cpuid, .msr = bus_msr, .tsc = bus_tsc,
};

static void put64(uint64_t gpa, uint64_t v)
{
	memcpy(ram + gpa, &v, 8);
}

static uint64_t get64(uint64_t gpa)
{
	uint64_t v;

	memcpy(&v, ram + gpa, 8);
	return v;
}

/* Fresh RAM with 64-bit page tables, GDT and IDT; returns the long-mode state. */
static void guest_init(struct emu_state *st)
{
	static const uint8_t irq_handler[] = { 0x49, 0xff, 0xc7, 0x48, 0xcf }; /* inc r15; iretq */

	if (!ram)
		ram = malloc(RAM_SIZE);
	memset(ram, 0, RAM_SIZE);
	put64(0x1000, 0x2003);
	put64(0x2000, 0x3003);
	for (uint64_t i = 0; i < 512; i++)
		put64(0x3000 + i * 8, (i << 21) | 0x83);
	put64(0x4008, 0x00209a0000000000ull);
	put64(0x4010, 0x00cf92000000ffffull);
	for (int v = 0; v < 64; v++) {
		uint64_t h = HANDLERS + (v == 0x20 ? 0x100 : v);

		put64(0x5000 + v * 16, (h & 0xffff) | (0x08ull << 16) | (0x8eull << 40) |
					       ((h >> 16) & 0xffff) << 48);
		put64(0x5008 + v * 16, h >> 32);
		ram[HANDLERS + v] = 0xf4;
	}
	memcpy(ram + HANDLERS + 0x100, irq_handler, sizeof(irq_handler));
	emu_reset_state(st);
	st->cr0 = 0x80000031;
	st->cr3 = 0x1000;
	st->cr4 = 0x20;
	st->efer = 0x500;
	st->gdtr_base = 0x4000;
	st->gdtr_limit = 0x17;
	st->idtr_base = 0x5000;
	st->idtr_limit = 64 * 16 - 1;
	for (int s = 0; s < EMU_NSREGS; s++)
		st->seg[s] = (struct emu_seg){ .limit = 0xffffffff, .sel = 0x10, .attr = 0xc093 };
	st->seg[EMU_CS] = (struct emu_seg){ .limit = 0xffffffff, .sel = 0x08, .attr = 0xa09b };
	st->tr.attr = 0x8b;
	st->tr.limit = 0x67;
	st->ldtr.attr = EMU_SEG_ATTR_UNUSABLE;
	st->rip = CODE;
	st->rflags = 2;
	st->gpr[EMU_RSP] = STACK_TOP;
}

static struct emu_machine *machine;

static struct emu_cpu *new_cpu(const struct emu_state *st)
{
	struct emu_cpu *cpu;

	if (!machine)
		machine = emu_machine_create();
	cpu = emu_cpu_create(machine, &bus);
	emu_set_state(cpu, st);
	return cpu;
}

static enum emu_exit run_to_stop(struct emu_cpu *cpu)
{
	enum emu_exit e;
	int n = 0;

	do
		e = emu_run(cpu, 100000);
	while (e == EMU_EXIT_BUDGET && ++n < 1000);
	return e;
}

static const uint8_t prog_branches[] = {
	0xb9, 0x0a, 0x00, 0x00, 0x00, 0x31, 0xc0, 0x01, 0xc8, 0xff, 0xc9, 0x75, 0xfa, 0xe8, 0x01,
	0x00, 0x00, 0x00, 0xf4, 0x53, 0x48, 0xc7, 0xc3, 0x07, 0x00, 0x00, 0x00, 0x48, 0x01, 0xd8,
	0x5b, 0xc3,
};

TEST(core_branches_call_ret)
{
	struct emu_state st;
	struct emu_cpu *cpu;

	guest_init(&st);
	memcpy(ram + CODE, prog_branches, sizeof(prog_branches));
	st.gpr[EMU_RBX] = 0xabcd;
	cpu = new_cpu(&st);
	CHECK_EQ_U64(run_to_stop(cpu), EMU_EXIT_HLT);
	emu_get_state(cpu, &st);
	CHECK_EQ_U64(st.gpr[EMU_RAX], 55 + 7);
	CHECK_EQ_U64(st.gpr[EMU_RBX], 0xabcd);
	CHECK_EQ_U64(st.gpr[EMU_RSP], STACK_TOP);
	CHECK_EQ_U64(st.rip, CODE + 19);
	CHECK_EQ_U64(emu_insn_count(cpu), 2 + 30 + 1 + 5 + 1);
	emu_cpu_destroy(cpu);
}

static const uint8_t prog_loop_enter[] = {
	0xb9, 0x05, 0x00, 0x00, 0x00, 0x31, 0xd2, 0xff, 0xc2, 0xe2, 0xfc, 0xe3, 0x05, 0xba, 0x63,
	0x00, 0x00, 0x00, 0xc8, 0x10, 0x00, 0x00, 0x48, 0xc7, 0x45, 0xf8, 0x22, 0x11, 0x00, 0x00,
	0x4c, 0x8b, 0x45, 0xf8, 0xc9, 0x9c, 0x41, 0x59, 0xf9, 0x41, 0x0f, 0x92, 0xc2, 0xf4,
};

TEST(core_loop_jrcxz_enter_leave_pushf)
{
	struct emu_state st;
	struct emu_cpu *cpu;

	guest_init(&st);
	memcpy(ram + CODE, prog_loop_enter, sizeof(prog_loop_enter));
	st.gpr[EMU_RBP] = 0x5555;
	cpu = new_cpu(&st);
	CHECK_EQ_U64(run_to_stop(cpu), EMU_EXIT_HLT);
	emu_get_state(cpu, &st);
	CHECK_EQ_U64(st.gpr[EMU_RDX], 5);
	CHECK_EQ_U64(st.gpr[EMU_R8], 0x1122);
	CHECK_EQ_U64(st.gpr[EMU_RBP], 0x5555);
	CHECK_EQ_U64(st.gpr[EMU_RSP], STACK_TOP);
	CHECK_EQ_U64(get64(STACK_TOP - 8), 0x006);	/* PUSHFQ reused ENTER's slot */
	CHECK_EQ_U64(get64(STACK_TOP - 16), 0x1122);	/* the ENTER frame's local */
	CHECK_EQ_U64(st.gpr[EMU_R9] & 0xfff, 0x006);	/* PF from the last INC (5) */
	CHECK_EQ_U64(st.gpr[EMU_R10] & 0xff, 1);
	CHECK(st.rflags & 1);
	emu_cpu_destroy(cpu);
}

static const uint8_t prog_real[] = {
	0xbc, 0x00, 0x01, 0xb9, 0x03, 0x00, 0x31, 0xc0, 0x01, 0xc8, 0xe2, 0xfc, 0xe8, 0x0f, 0x00,
	0x50, 0x5b, 0xfc, 0xbe, 0x00, 0x02, 0xbf, 0x00, 0x03, 0xb9, 0x04, 0x00, 0xf3, 0xa4, 0xf4,
	0x05, 0x00, 0x01, 0xc3,
};

TEST(core_real_mode_segments)
{
	struct emu_state st;
	struct emu_cpu *cpu;

	guest_init(&st);
	emu_reset_state(&st);
	/* CS=1000h, DS=2000h, ES=3000h, SS=4000h: every access goes through segment bases */
	st.seg[EMU_CS] = (struct emu_seg){ .base = 0x10000, .limit = 0xffff, .sel = 0x1000,
					   .attr = 0x9b };
	st.seg[EMU_DS] = (struct emu_seg){ .base = 0x20000, .limit = 0xffff, .sel = 0x2000,
					   .attr = 0x93 };
	st.seg[EMU_ES] = (struct emu_seg){ .base = 0x30000, .limit = 0xffff, .sel = 0x3000,
					   .attr = 0x93 };
	st.seg[EMU_SS] = (struct emu_seg){ .base = 0x40000, .limit = 0xffff, .sel = 0x4000,
					   .attr = 0x93 };
	st.rip = 0;
	memcpy(ram + 0x10000, prog_real, sizeof(prog_real));
	memcpy(ram + 0x20200, "\x11\x22\x33\x44", 4);
	cpu = new_cpu(&st);
	CHECK_EQ_U64(run_to_stop(cpu), EMU_EXIT_HLT);
	emu_get_state(cpu, &st);
	CHECK_EQ_U64(st.gpr[EMU_RAX] & 0xffff, 6 + 0x100);
	CHECK_EQ_U64(st.gpr[EMU_RBX] & 0xffff, 6 + 0x100);
	CHECK_EQ_U64(st.gpr[EMU_RSP] & 0xffff, 0x100);
	CHECK_EQ_U64(get64(0x30300) & 0xffffffff, 0x44332211);
	CHECK_EQ_U64(st.gpr[EMU_RSI] & 0xffff, 0x204);
	CHECK_EQ_U64(st.gpr[EMU_RDI] & 0xffff, 0x304);
	CHECK_EQ_U64(st.gpr[EMU_RCX] & 0xffff, 0);
	CHECK_EQ_U64(get64(0x400fe) & 0xffff, 0x106);	/* PUSH AX after the RET, at SS:FE */
	CHECK_EQ_U64(st.rip, 0x1e);
	emu_cpu_destroy(cpu);
}

TEST(core_self_modifying_code)
{
	static const uint8_t prog[] = { 0xc6, 0x05, 0x01, 0x00, 0x00, 0x00, 0x02, 0xb0, 0x01, 0xf4 };
	struct emu_state st;
	struct emu_cpu *cpu;

	guest_init(&st);
	memcpy(ram + CODE, prog, sizeof(prog));
	cpu = new_cpu(&st);
	/* run once with the store turned into a NOP-like store elsewhere to cache the code */
	CHECK_EQ_U64(run_to_stop(cpu), EMU_EXIT_HLT);
	emu_get_state(cpu, &st);
	CHECK_EQ_U64(st.gpr[EMU_RAX] & 0xff, 2);	/* the store changed the next insn */
	/* the host rewrites the code (DMA): invalidate and run again */
	ram[CODE + 8] = 0x07;
	ram[CODE + 6] = 0x07;
	emu_machine_invalidate(machine, CODE, 16);
	st.rip = CODE;
	emu_set_state(cpu, &st);
	CHECK_EQ_U64(run_to_stop(cpu), EMU_EXIT_HLT);
	emu_get_state(cpu, &st);
	CHECK_EQ_U64(st.gpr[EMU_RAX] & 0xff, 7);
	emu_cpu_destroy(cpu);
}

TEST(core_rep_slices_and_events)
{
	static const uint8_t prog[] = { 0xf3, 0xaa, 0xf4 };	/* rep stosb; hlt */
	struct emu_state st;
	struct emu_cpu *cpu;

	guest_init(&st);
	memcpy(ram + CODE, prog, sizeof(prog));
	st.gpr[EMU_RCX] = 100000;
	st.gpr[EMU_RDI] = DATA;
	st.gpr[EMU_RAX] = 0xa5;
	cpu = new_cpu(&st);
	CHECK_EQ_U64(emu_run(cpu, 1), EMU_EXIT_BUDGET);
	emu_get_state(cpu, &st);
	CHECK_EQ_U64(st.rip, CODE);		/* resumes at the REP instruction */
	CHECK(st.gpr[EMU_RCX] < 100000 && st.gpr[EMU_RCX] > 0);
	emu_raise_events(cpu, EMU_EV_EXIT);
	CHECK_EQ_U64(emu_run(cpu, 1000), EMU_EXIT_EVENT);
	CHECK(emu_pending_events(cpu) & EMU_EV_EXIT);
	emu_clear_events(cpu, EMU_EV_EXIT);
	CHECK_EQ_U64(run_to_stop(cpu), EMU_EXIT_HLT);
	emu_get_state(cpu, &st);
	CHECK_EQ_U64(st.gpr[EMU_RCX], 0);
	CHECK_EQ_U64(st.gpr[EMU_RDI], DATA + 100000);
	CHECK_EQ_U64(ram[DATA + 99999], 0xa5);
	CHECK_EQ_U64(ram[DATA + 100000], 0);
	emu_cpu_destroy(cpu);
}

TEST(core_external_interrupt)
{
	/* inc rax; jmp back (an endless loop the interrupt breaks into) */
	static const uint8_t prog[] = { 0x48, 0xff, 0xc0, 0xeb, 0xfb };
	struct emu_state st;
	struct emu_cpu *cpu;

	guest_init(&st);
	memcpy(ram + CODE, prog, sizeof(prog));
	st.rflags = 0x202;
	cpu = new_cpu(&st);
	CHECK_EQ_U64(emu_run(cpu, 1000), EMU_EXIT_BUDGET);
	pending_vector = 0x20;
	emu_raise_events(cpu, EMU_EV_INTR);
	CHECK_EQ_U64(emu_run(cpu, 1000), EMU_EXIT_BUDGET);
	emu_get_state(cpu, &st);
	CHECK_EQ_U64(st.gpr[EMU_R15], 1);	/* the handler ran once and returned */
	CHECK_EQ_U64(st.gpr[EMU_RSP], STACK_TOP);
	CHECK(st.rip == CODE || st.rip == CODE + 3);
	CHECK(!(emu_pending_events(cpu) & EMU_EV_INTR));
	/* with IF=0 the request stays pending and nothing is acknowledged */
	st.rflags = 0x2;
	emu_set_state(cpu, &st);
	pending_vector = 0x20;
	emu_raise_events(cpu, EMU_EV_INTR);
	CHECK_EQ_U64(emu_run(cpu, 1000), EMU_EXIT_BUDGET);
	emu_get_state(cpu, &st);
	CHECK_EQ_U64(st.gpr[EMU_R15], 1);
	CHECK(emu_pending_events(cpu) & EMU_EV_INTR);
	pending_vector = -1;
	emu_cpu_destroy(cpu);
}

TEST(core_exceptions_tf_ud_de)
{
	static const uint8_t nops[] = { 0x90, 0x90, 0xf4 };
	static const uint8_t ud2[] = { 0x0f, 0x0b };
	static const uint8_t div0[] = { 0x31, 0xc9, 0xf7, 0xf1 };	/* xor ecx,ecx; div ecx */
	static const uint8_t bad[] = { 0xff, 0xff };	/* FF /7: invalid encoding */
	static const uint8_t vex[][5] = {
		{ 0xc5, 0xf9, 0xef, 0xc0, 0x90 },	/* vpxor xmm0,xmm0,xmm0 */
		{ 0xc5, 0xfc, 0x77, 0x90, 0x90 },	/* vzeroall */
		{ 0xc4, 0xe2, 0x78, 0xf2, 0xc1 },	/* andn eax,eax,ecx (BMI1) */
	};
	struct emu_state st, s0;
	struct emu_cpu *cpu;

	guest_init(&s0);
	memcpy(ram + CODE, nops, sizeof(nops));
	st = s0;
	st.rflags = 0x102;		/* TF */
	cpu = new_cpu(&st);
	CHECK_EQ_U64(emu_step(cpu), EMU_EXIT_BUDGET);
	emu_get_state(cpu, &st);
	CHECK_EQ_U64(st.rip, HANDLERS + 1);	/* #DB trap after the first NOP */
	CHECK_EQ_U64(get64(STACK_TOP - 40), CODE + 1);
	CHECK(st.dr[6] & 0x4000);

	memcpy(ram + CODE, ud2, sizeof(ud2));
	emu_machine_invalidate(machine, CODE, 16);
	emu_set_state(cpu, &s0);
	CHECK_EQ_U64(run_to_stop(cpu), EMU_EXIT_HLT);
	emu_get_state(cpu, &st);
	CHECK_EQ_U64(st.rip, HANDLERS + 6 + 1);
	CHECK_EQ_U64(get64(STACK_TOP - 40), CODE);	/* faulting RIP pushed */

	memcpy(ram + CODE, bad, sizeof(bad));
	emu_machine_invalidate(machine, CODE, 16);
	emu_set_state(cpu, &s0);
	CHECK_EQ_U64(run_to_stop(cpu), EMU_EXIT_HLT);
	emu_get_state(cpu, &st);
	CHECK_EQ_U64(st.rip, HANDLERS + 6 + 1);

	/* VEX (AVX, BMI) and other non-legacy encodings: no CPUID level offers them */
	for (unsigned i = 0; i < sizeof(vex) / sizeof(vex[0]); i++) {
		memcpy(ram + CODE, vex[i], 5);
		emu_machine_invalidate(machine, CODE, 16);
		emu_set_state(cpu, &s0);
		CHECK_EQ_U64(run_to_stop(cpu), EMU_EXIT_HLT);
		emu_get_state(cpu, &st);
		CHECK_EQ_U64(st.rip, HANDLERS + 6 + 1);
		CHECK_EQ_U64(get64(STACK_TOP - 40), CODE);
	}

	memcpy(ram + CODE, div0, sizeof(div0));
	emu_machine_invalidate(machine, CODE, 16);
	emu_set_state(cpu, &s0);
	CHECK_EQ_U64(run_to_stop(cpu), EMU_EXIT_HLT);
	emu_get_state(cpu, &st);
	CHECK_EQ_U64(st.rip, HANDLERS + 0 + 1);
	CHECK_EQ_U64(get64(STACK_TOP - 40), CODE + 2);
	emu_cpu_destroy(cpu);
}

TEST(core_unsupported_message)
{
	/* nop; xend (RTM: the interpreter has no handler for it) */
	static const uint8_t prog[] = { 0x90, 0x0f, 0x01, 0xd5 };
	struct emu_state st;
	struct emu_cpu *cpu;
	const char *msg;

	guest_init(&st);
	memcpy(ram + CODE, prog, sizeof(prog));
	cpu = new_cpu(&st);
	CHECK_EQ_U64(run_to_stop(cpu), EMU_EXIT_UNSUPPORTED);
	msg = emu_last_error(cpu);
	printf("    message: %s\n", msg);
	CHECK(strstr(msg, "xend") != NULL);
	emu_cpu_destroy(cpu);
}

TEST(core_page_crossing_and_budget)
{
	static const uint8_t prog[] = { 0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8, 0xf4 };
	struct emu_state st;
	struct emu_cpu *cpu;

	guest_init(&st);
	memcpy(ram + CODE + 0xffa, prog, sizeof(prog));	/* mov rax, imm64 crosses 0x11000 */
	st.rip = CODE + 0xffa;
	cpu = new_cpu(&st);
	CHECK_EQ_U64(run_to_stop(cpu), EMU_EXIT_HLT);
	emu_get_state(cpu, &st);
	CHECK_EQ_U64(st.gpr[EMU_RAX], 0x0807060504030201ull);
	/* the budget: exactly max instructions */
	memcpy(ram + CODE, (const uint8_t[]){ 0x48, 0xff, 0xc0, 0xeb, 0xfb }, 5);
	emu_machine_invalidate(machine, CODE, 16);
	st.rip = CODE;
	st.gpr[EMU_RAX] = 0;
	emu_set_state(cpu, &st);
	CHECK_EQ_U64(emu_run(cpu, 101), EMU_EXIT_BUDGET);
	emu_get_state(cpu, &st);
	CHECK_EQ_U64(st.gpr[EMU_RAX], 51);
	emu_cpu_destroy(cpu);
}

#define LOCK_ITERS 200000

static void *lock_thread(void *arg)
{
	struct emu_cpu *cpu = arg;

	run_to_stop(cpu);
	return NULL;
}

TEST(core_lock_is_atomic_across_vcpus)
{
	/* lock add qword [rbx], 1; dec ecx; jnz; hlt */
	static const uint8_t prog[] = { 0xf0, 0x48, 0x83, 0x03, 0x01, 0xff, 0xc9, 0x75, 0xf7,
					0xf4 };
	struct emu_state st;
	struct emu_cpu *a, *b;
	pthread_t ta, tb;

	guest_init(&st);
	memcpy(ram + CODE, prog, sizeof(prog));
	st.gpr[EMU_RBX] = DATA;
	st.gpr[EMU_RCX] = LOCK_ITERS;
	a = new_cpu(&st);
	st.gpr[EMU_RSP] = STACK_TOP - 0x1000;
	b = new_cpu(&st);
	pthread_create(&ta, NULL, lock_thread, a);
	pthread_create(&tb, NULL, lock_thread, b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	CHECK_EQ_U64(get64(DATA), 2 * LOCK_ITERS);
	emu_cpu_destroy(a);
	emu_cpu_destroy(b);
}

TEST(core_jcc_fast_conditions_match_emu_cond)
{
	struct emu_state st;
	struct emu_cpu *cpu;
	uint64_t x = 0x243f6a8885a308d3ull;
	unsigned bad = 0;

	guest_init(&st);
	cpu = new_cpu(&st);
	for (int i = 0; i < 20000; i++) {
		static const uint64_t edge[] = { 0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000,
						 0x7fffffff, 0x80000000, ~0ull };

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		cpu->lf_op = x % 6;
		cpu->lf_size = 1u << ((x >> 3) & 3);
		cpu->lf_cin = (x >> 5) & 1;
		cpu->lf_src1 = (x >> 6) & 1 ? edge[(x >> 8) % 10] : x * 31;
		cpu->lf_src2 = (x >> 7) & 1 ? edge[(x >> 12) % 10] : x * 17;
		cpu->lf_res = (cpu->lf_op == LF_SUB || cpu->lf_op == LF_DEC)
				      ? cpu->lf_src1 - cpu->lf_src2 - cpu->lf_cin
				      : cpu->lf_src1 + cpu->lf_src2 + cpu->lf_cin;
		cpu->lf_res &= cpu->lf_size == 8 ? ~0ull : (1ull << (cpu->lf_size * 8)) - 1;
		cpu->st.rflags = 2 | (x >> 20 & 0x8d5);
		for (unsigned cc = 0; cc < 16; cc++)
			if (emu_cond_fast(cpu, cc) != emu_cond(cpu, cc))
				bad++;
	}
	CHECK_EQ_U64(bad, 0);
	emu_cpu_destroy(cpu);
}

/*
 * CMP/TEST followed by Jcc runs as one fused handler in a trace (exec_fast.c emu_fuse) and
 * as two plain handlers when single-stepped: for every condition, operand form and size,
 * and boundary operands, both must leave the same registers, flags, RIP and count.
 */
static void fused_program(bool test, bool imm, bool wide, unsigned cc, uint32_t b)
{
	uint8_t *p = ram + CODE;

	if (wide)
		*p++ = 0x48;				/* REX.W */
	if (imm) {
		*p++ = test ? 0xf7 : 0x81;		/* TEST r/m,imm32 (/0) or CMP r/m,imm32 (/7) */
		*p++ = test ? 0xc0 : 0xf8;		/* rax */
		memcpy(p, &b, 4);
		p += 4;
	} else {
		*p++ = test ? 0x85 : 0x39;		/* TEST/CMP r/m, r */
		*p++ = 0xd8;				/* rax, rbx */
	}
	*p++ = 0x70 | cc;				/* Jcc +7 */
	*p++ = 7;
	memcpy(p, "\xb9\x01\x00\x00\x00\xf4\xf4", 7);	/* mov ecx,1; hlt */
	p += 7;
	memcpy(p, "\xb9\x02\x00\x00\x00\xf4", 6);	/* mov ecx,2; hlt */
	emu_machine_invalidate(machine, CODE, 64);
}

TEST(core_fused_cmp_test_jcc_match_single_steps)
{
	static const uint64_t vals[] = { 0, 1, 0x7f, 0x80, 0x7fffffff, 0x80000000, 0xffffffff,
					 0x100000000ull, 0x8000000000000000ull, ~0ull, 0x1234 };
	const unsigned nv = sizeof(vals) / sizeof(vals[0]);
	unsigned cases = 0, bad = 0;
	struct emu_state st, a, s;

	for (unsigned form = 0; form < 8; form++) {
		bool test = form & 1, imm = form & 2, wide = form & 4;

		for (unsigned cc = 0; cc < 16; cc++) {
			for (unsigned i = 0; i < nv; i++) {
				for (unsigned j = 0; j < nv; j++) {
					struct emu_cpu *fused, *stepped;
					enum emu_exit e;
					int n = 0;

					guest_init(&st);
					fused_program(test, imm, wide, cc, (uint32_t)vals[j]);
					st.gpr[EMU_RAX] = vals[i];
					st.gpr[EMU_RBX] = vals[j];
					fused = new_cpu(&st);
					stepped = new_cpu(&st);
					e = run_to_stop(fused);
					while ((e = emu_step(stepped)) == EMU_EXIT_BUDGET && ++n < 10)
						;
					emu_get_state(fused, &a);
					emu_get_state(stepped, &s);
					cases++;
					if (a.rip != s.rip || a.gpr[EMU_RCX] != s.gpr[EMU_RCX] ||
					    (a.rflags & 0x8d5) != (s.rflags & 0x8d5) ||
					    emu_insn_count(fused) != emu_insn_count(stepped) ||
					    a.gpr[EMU_RCX] == 0) {
						if (bad++ < 5)
							fprintf(stderr, "form %u cc %u a %#llx b %#llx: fused rip %#llx rcx %llu fl %#llx n %llu, steps rip %#llx rcx %llu fl %#llx n %llu\n",
								form, cc, (unsigned long long)vals[i],
								(unsigned long long)vals[j],
								(unsigned long long)a.rip,
								(unsigned long long)a.gpr[EMU_RCX],
								(unsigned long long)a.rflags,
								(unsigned long long)emu_insn_count(fused),
								(unsigned long long)s.rip,
								(unsigned long long)s.gpr[EMU_RCX],
								(unsigned long long)s.rflags,
								(unsigned long long)emu_insn_count(stepped));
					}
					emu_cpu_destroy(fused);
					emu_cpu_destroy(stepped);
				}
			}
		}
	}
	CHECK_EQ_U64(bad, 0);
	CHECK(cases == 8 * 16 * nv * nv);
}
