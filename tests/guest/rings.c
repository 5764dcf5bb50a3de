/*
 * rings: privilege transitions (Intel SDM vol. 3 §5.8, §6.12, §7.7): ring 3 through IRETQ,
 * back to ring 0 through a DPL-3 interrupt gate on the TSS RSP0 stack with IF cleared, #GP
 * for a DPL-0 gate from ring 3, #UD from ring 3, SYSCALL/SYSRET (STAR/LSTAR/SFMASK), an IST
 * stack for #DF (raised by a #GP whose gate is not present) and for an NMI sent to itself.
 */
#include "rt.h"

#define IST_SIZE 8192
static uint8_t ist1[IST_SIZE] __attribute__((aligned(16)));
static uint8_t ist2[IST_SIZE] __attribute__((aligned(16)));
uint64_t df_saved_rsp;

uint64_t probe_int82(void);
uint64_t probe_ud2(void);
uint64_t probe_noncanonical(void);
void syscall_entry(void);
__asm__(".text\n"
	"probe_int82: leaq 1f(%rip), %rax; movq %rax, probe_recover_rip(%rip)\n"
	"  int $0x82\n  xorl %eax, %eax\n"
	"1: movq $0, probe_recover_rip(%rip); ret\n"
	"probe_ud2: leaq 1f(%rip), %rax; movq %rax, probe_recover_rip(%rip)\n"
	"  ud2\n  xorl %eax, %eax\n"
	"1: movq $0, probe_recover_rip(%rip); ret\n"
	"probe_noncanonical: leaq 1f(%rip), %rax; movq %rax, probe_recover_rip(%rip)\n"
	"  movq %rsp, df_saved_rsp(%rip)\n"
	"  movabsq $0x8000000000000000, %rax\n  movq (%rax), %rax\n  xorl %eax, %eax\n"
	"1: movq $0, probe_recover_rip(%rip); ret\n"
	"syscall_entry: movq %cs, %rdx; movq %rsp, %rsi; pushfq; popq %rdi; incq %rax; sysretq\n");

static volatile uint64_t h_cs, h_ss, h_rsp, h_rflags, h_frame_rflags, h_err;
static volatile int h_count;

static uint64_t cur_rsp(void)
{
	uint64_t sp;
	__asm__ volatile("mov %%rsp,%0" : "=r"(sp));
	return sp;
}

static uint64_t cur_rflags(void)
{
	uint64_t f;
	__asm__ volatile("pushfq; popq %0" : "=r"(f));
	return f;
}

static void gate81(struct trap_frame *f)
{
	h_cs = f->cs;
	h_ss = f->ss;
	h_rsp = cur_rsp();
	h_rflags = cur_rflags();
	h_frame_rflags = f->rflags;
	h_count++;
	f->rax = 0x4242;
}

static void df_handler(struct trap_frame *f)
{
	h_rsp = cur_rsp();
	h_err = f->error;
	h_count++;
	f->rip = probe_recover_rip;
	f->cs = SEL_CODE64;
	f->ss = SEL_DATA;
	f->rsp = df_saved_rsp;
	f->rax = (uint64_t)-1;
}

static void nmi_handler(struct trap_frame *f)
{
	h_rsp = cur_rsp();
	h_count++;
}

static uint64_t user_cpl(uint64_t a)
{
	uint16_t cs, ss;
	__asm__ volatile("mov %%cs,%0; mov %%ss,%1" : "=r"(cs), "=r"(ss));
	return (uint64_t)cs << 16 | ss;
}

static uint64_t user_int81(uint64_t a)
{
	uint64_t r = 0;
	__asm__ volatile("int $0x81" : "+a"(r)::"memory");
	return r;
}

static uint64_t user_int82(uint64_t a)
{
	return probe_int82();
}

static uint64_t user_ud2(uint64_t a)
{
	return probe_ud2();
}

static volatile uint64_t sc_rdx, sc_rflags, sc_cs;

static uint64_t user_syscall(uint64_t a)
{
	uint64_t rax = 41, rdx, rsi, rdi;
	uint16_t cs;
	__asm__ volatile("syscall" : "+a"(rax), "=d"(rdx), "=S"(rsi), "=D"(rdi)::"rcx", "r11", "memory");
	__asm__ volatile("mov %%cs,%0" : "=r"(cs));
	sc_rdx = rdx;
	sc_rflags = rdi;
	sc_cs = cs;
	return rax;
}

void test_main(void)
{
	fault_probe_init();
	uint64_t r = user_call(user_cpl, 0);
	check((r >> 16) == SEL_UCODE64 && (r & 0xffff) == SEL_UDATA, "ring3-iretq",
	      "CS %lx SS %lx in user code", r >> 16, r & 0xffff);

	uint64_t rsp0;
	memcpy(&rsp0, tss + 4, 8);
	idt_set_gate(0x81, 3, 0, true);
	idt_set_handler(0x81, gate81);
	r = user_call(user_int81, 0);
	check(r == 0x4242 && h_count == 1, "int-dpl3-gate", "returned %lx, %d calls", r, h_count);
	check(h_cs == SEL_UCODE64 && h_ss == SEL_UDATA, "int-frame-selectors", "CS %lx SS %lx", h_cs, h_ss);
	check(h_rsp < rsp0 && h_rsp > rsp0 - 16384, "tss-rsp0-stack", "handler rsp %lx, RSP0 %lx", h_rsp, rsp0);
	check(!(h_rflags & 0x200) && (h_frame_rflags & 0x200), "interrupt-gate-clears-if",
	      "handler RFLAGS %lx, saved %lx", h_rflags, h_frame_rflags);

	r = user_call(user_int82, 0);
	check(r == (uint64_t)-1 && last_fault.vector == 13 && last_fault.error == (0x82 << 3 | 2),
	      "gp-dpl0-gate-from-ring3", "r %lx vector %d error %lx", r, last_fault.vector, last_fault.error);
	r = user_call(user_ud2, 0);
	check(r == (uint64_t)-1 && last_fault.vector == 6, "ud-from-ring3", "r %lx vector %d", r,
	      last_fault.vector);

	if (rdmsr(0xc0000080) & 1) {
		wrmsr(0xc0000081, (uint64_t)SEL_STAR_USER << 48 | (uint64_t)SEL_CODE64 << 32);
		wrmsr(0xc0000082, (uint64_t)syscall_entry);
		wrmsr(0xc0000084, 0x200);
		r = user_call(user_syscall, 0);
		check(r == 42 && sc_rdx == SEL_CODE64, "syscall-sysret", "rax %lx, CS in handler %lx", r, sc_rdx);
		check(!(sc_rflags & 0x200), "syscall-sfmask", "handler RFLAGS %lx", sc_rflags);
		check(sc_cs == SEL_UCODE64, "sysret-cs", "CS after SYSRET %lx", sc_cs);
	} else {
		not_ok("syscall-sysret", "EFER.SCE off (no SYSCALL in CPUID)");
	}

	/* #DF on IST1: #GP (non-canonical access) whose gate is not present. */
	tss_set_ist(1, (uint64_t)(ist1 + IST_SIZE));
	idt_set_gate(8, 0, 1, true);
	idt_set_handler(8, df_handler);
	idt_set_gate(13, 0, 0, false);
	h_count = 0;
	r = probe_noncanonical();
	idt_set_gate(13, 0, 0, true);
	check(r == (uint64_t)-1 && h_count == 1 && h_err == 0, "double-fault", "r %lx, %d #DF, error %lx",
	      r, h_count, h_err);
	check(h_rsp < (uint64_t)(ist1 + IST_SIZE) && h_rsp >= (uint64_t)ist1, "df-ist-stack",
	      "handler rsp %lx, IST1 %p", h_rsp, ist1 + IST_SIZE);

	/* NMI on IST2, delivered with IF clear. */
	tss_set_ist(2, (uint64_t)(ist2 + IST_SIZE));
	idt_set_gate(2, 0, 2, true);
	idt_set_handler(2, nmi_handler);
	lapic_enable();
	h_count = 0;
	cli();
	lapic_ipi(lapic_id(), 0x400);
	uint64_t end = tsc_deadline(100000);
	while (!h_count && (int64_t)(rdtsc() - end) < 0)
		cpu_relax();
	check(h_count == 1, "nmi-self", "%d NMIs", h_count);
	check(h_rsp < (uint64_t)(ist2 + IST_SIZE) && h_rsp >= (uint64_t)ist2, "nmi-ist-stack",
	      "handler rsp %lx, IST2 %p", h_rsp, ist2 + IST_SIZE);
}
