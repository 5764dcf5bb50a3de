/*
 * exceptions: exception classes and the RIP and error code each reports (Intel SDM vol. 3
 * §6.5, §6.15, §17.3): #DE from DIV by zero and IDIV overflow (fault: RIP of the instruction),
 * #BP from INT3 (trap: RIP after it), #UD, single-step #DB with DR6.BS (one per instruction),
 * #GP(0) for HLT/CLI/IN/WRMSR/MOV CR in ring 3, IN allowed at IOPL 3, POPF not changing IOPL
 * or IF in ring 3, and #SS for a non-canonical stack reference (delivered on an IST stack;
 * #GP, #PF and #DF go there too during that check so a wrong vector cannot triple-fault).
 */
#include "rt.h"

/* Probe one instruction; *at gets its address and *after the next one. */
#define PROBE_AT(insn, at, after)                                                            \
	({                                                                                   \
		int r_;                                                                      \
		__asm__ volatile("leaq 2f(%%rip), %1; leaq 3f(%%rip), %2\n"                  \
				 "leaq 1f(%%rip), %%rax; movq %%rax, probe_recover_rip(%%rip)\n" \
				 "2: " insn "\n3: xorl %%eax, %%eax\n"                       \
				 "1: movq $0, probe_recover_rip(%%rip)"                      \
				 : "=a"(r_), "=r"(at), "=r"(after)::"rcx", "rdx", "memory");  \
		r_;                                                                          \
	})

static void expect(const char *name, int r, int vec, uint64_t err, uint64_t rip)
{
	check(r && last_fault.vector == vec && last_fault.error == err && last_fault.rip == rip, name,
	      "r %d vector %d (want %d) error %lx (want %lx) rip %lx (want %lx)", r, last_fault.vector,
	      vec, last_fault.error, err, last_fault.rip, rip);
}

static volatile int bp_count, db_count;
static volatile uint64_t bp_rip, db_rips[8], db_dr6;

static void bp_handler(struct trap_frame *f)
{
	bp_count++;
	bp_rip = f->rip;
}

static void db_handler(struct trap_frame *f)
{
	uint64_t dr6;
	__asm__ volatile("mov %%dr6, %0" : "=r"(dr6));
	if (db_count < 8)
		db_rips[db_count] = f->rip;
	db_count++;
	db_dr6 = dr6;
	__asm__ volatile("mov %0, %%dr6" ::"r"(0xffff0ff0ul));
	if (db_count >= 3)
		f->rflags &= ~0x100ull;
}

/* ring-3 helpers: each returns 0, or -1 with last_fault set */
static uint64_t u_at, u_after;
#define USER_PROBE(fn, insn)                                                                 \
	static uint64_t fn(uint64_t a)                                                       \
	{                                                                                    \
		uint64_t at, after;                                                          \
		int r = PROBE_AT(insn, at, after);                                           \
		u_at = at;                                                                   \
		u_after = after;                                                             \
		return (uint64_t)(int64_t)r;                                                 \
	}
USER_PROBE(u_hlt, "hlt")
USER_PROBE(u_cli, "cli")
USER_PROBE(u_in, "inb $0x80, %%al")
USER_PROBE(u_wrmsr, "wrmsr")
USER_PROBE(u_movcr, "movq %%cr0, %%rcx")

static uint64_t u_popf_iopl(uint64_t a)
{
	uint64_t f;
	__asm__ volatile("pushfq; orq $0x3000, (%%rsp); andq $~0x200, (%%rsp); popfq; pushfq; popq %0"
			 : "=r"(f)::"memory", "cc");
	return f;
}

uint64_t ss_saved_rsp;

static void ss_handler(struct trap_frame *f)
{
	last_fault.vector = (int)f->vector;
	last_fault.error = f->error;
	last_fault.rip = f->rip;
	last_fault.cr2 = f->vector == 14 ? READ_CR(2) : 0;
	f->rip = probe_recover_rip;
	f->rsp = ss_saved_rsp;
	f->rax = (uint64_t)-1;
}

void test_main(void)
{
	uint64_t at, after;
	int r;
	fault_probe_init();
	fault_probe_vector(0);

	r = PROBE_AT("xorl %%edx, %%edx; movl $1, %%eax; xorl %%ecx, %%ecx; divl %%ecx", at, after);
	expect("de-div-zero", r, 0, 0, after - 2);
	r = PROBE_AT("movabsq $0x8000000000000000, %%rax; cqto; movq $-1, %%rcx; idivq %%rcx", at, after);
	expect("de-idiv-overflow", r, 0, 0, after - 3);

	idt_set_handler(3, bp_handler);
	__asm__ volatile("leaq 1f(%%rip), %0; int3; 1:" : "=r"(at));
	check(bp_count == 1 && bp_rip == at, "bp-int3-trap-rip", "%d hits, rip %lx want %lx", bp_count,
	      bp_rip, at);

	r = PROBE_AT("ud2", at, after);
	expect("ud-ud2", r, 6, 0, at);

	/* single step: TF set by POPF traps after the next instruction */
	idt_set_handler(1, db_handler);
	uint64_t l1, l2, l3;	/* the first trap follows the instruction after POPF */
	__asm__ volatile("leaq 2f(%%rip), %0; leaq 3f(%%rip), %1; leaq 4f(%%rip), %2\n"
			 "pushfq; orq $0x100, (%%rsp); popfq\n"
			 "1: nop\n2: nop\n3: nop\n4: nop"
			 : "=r"(l1), "=r"(l2), "=r"(l3)::"memory", "cc");
	check(db_count == 3 && db_rips[0] == l1 && db_rips[1] == l2 && db_rips[2] == l3,
	      "db-single-step", "%d traps at %lx %lx %lx, want %lx %lx %lx", db_count, db_rips[0],
	      db_rips[1], db_rips[2], l1, l2, l3);
	check(db_dr6 & (1 << 14), "db-dr6-bs", "DR6 %lx", db_dr6);

	/* ring 3 */
	struct {
		const char *name;
		uint64_t (*fn)(uint64_t);
	} gp3[] = { { "gp-hlt-ring3", u_hlt }, { "gp-cli-ring3", u_cli }, { "gp-in-ring3-iopl0", u_in },
		    { "gp-wrmsr-ring3", u_wrmsr }, { "gp-mov-cr-ring3", u_movcr } };
	for (unsigned i = 0; i < sizeof(gp3) / sizeof(gp3[0]); i++) {
		r = (int)user_call(gp3[i].fn, 0);
		expect(gp3[i].name, r, 13, 0, u_at);
	}
	user_rflags = 0x3202;	/* IOPL 3 */
	r = (int)user_call(u_in, 0);
	check(r == 0, "in-ring3-iopl3", "vector %d", last_fault.vector);
	user_rflags = 0x202;
	uint64_t f = user_call(u_popf_iopl, 0);
	check((f & 0x3000) == 0 && (f & 0x200), "popf-ring3-keeps-iopl-if", "RFLAGS %lx", f);

	/* #SS on an IST stack; the handler puts RSP back */
	static uint8_t ist[8192] __attribute__((aligned(16)));
	tss_set_ist(1, (uint64_t)(ist + sizeof(ist)));
	idt_set_gate(12, 0, 1, true);
	idt_set_handler(12, ss_handler);
	static const int redirect[] = { 8, 13, 14 };
	for (int i = 0; i < 3; i++) {
		idt_set_gate(redirect[i], 0, 1, true);
		idt_set_handler(redirect[i], ss_handler);
	}
	__asm__ volatile("leaq 2f(%%rip), %1; leaq 1f(%%rip), %%rax; movq %%rax, probe_recover_rip(%%rip)\n"
			 "movq %%rsp, ss_saved_rsp(%%rip)\n"
			 "movabsq $0x8000000000000000, %%rcx; movq %%rcx, %%rsp\n"
			 "2: pushq %%rax\n xorl %%eax, %%eax\n"
			 "1: movq ss_saved_rsp(%%rip), %%rsp; movq $0, probe_recover_rip(%%rip)"
			 : "=a"(r), "=&r"(at)::"rcx", "memory");
	for (int i = 0; i < 3; i++)
		idt_set_gate(redirect[i], 0, 0, true);
	idt_set_handler(8, NULL);
	fault_probe_init();
	expect("ss-noncanonical-stack", r, 12, 0, at);
}
