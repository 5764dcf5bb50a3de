/*
 * idt.c: the 64-bit IDT (Intel SDM vol. 3 §6.14), exception reporting for unexpected traps,
 * the TSS with RSP0 and IST stacks (§7.7), the way back from ring 3 (vector 0x80, DPL 3) and
 * the #PF/#GP/#UD recovery used by the fault probes.
 */
#include "rt.h"

struct idt_gate {
	uint16_t off0, sel;
	uint8_t ist, attr;
	uint16_t off1;
	uint32_t off2, zero;
} __attribute__((packed));

static struct idt_gate idt[256] __attribute__((aligned(16)));
static trap_handler handlers[256];
uint8_t tss[104] __attribute__((aligned(16)));
extern char trap_stubs[];
extern uint64_t gdt_tss[2];
extern char user_return_rip[];
volatile struct fault_info last_fault;

static struct {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed)) idt_ptr = { sizeof(idt) - 1, 0 };

void idt_set_gate(int vec, int dpl, int ist, bool present)
{
	uint64_t a = (uint64_t)(trap_stubs + 16 * vec);
	idt[vec] = (struct idt_gate){
		.off0 = (uint16_t)a, .sel = SEL_CODE64, .ist = (uint8_t)ist,
		.attr = (uint8_t)((present ? 0x80 : 0) | dpl << 5 | 0xe),
		.off1 = (uint16_t)(a >> 16), .off2 = (uint32_t)(a >> 32),
	};
}

void idt_set_handler(int vec, trap_handler h)
{
	handlers[vec] = h;
}

void idt_load(void)
{
	idt_ptr.base = (uint64_t)idt;
	__asm__ volatile("lidt %0" ::"m"(idt_ptr));
}

static void user_return(struct trap_frame *f)
{
	f->rip = (uint64_t)user_return_rip;
	f->cs = SEL_CODE64;
	f->ss = SEL_DATA;
	f->rflags &= ~0x200ull;
}

void idt_init(void)
{
	for (int i = 0; i < 256; i++)
		idt_set_gate(i, 0, 0, true);
	idt_set_gate(USER_RETURN_VECTOR, 3, 0, true);
	handlers[USER_RETURN_VECTOR] = user_return;
	idt_load();
}

static uint8_t rsp0_stack[16384] __attribute__((aligned(16)));

void tss_init(void)
{
	uint64_t a = (uint64_t)tss;
	memset(tss, 0, sizeof(tss));
	*(uint16_t *)(tss + 102) = sizeof(tss);	/* no I/O bitmap */
	gdt_tss[0] = (sizeof(tss) - 1) | (a & 0xffffff) << 16 | 0x89ull << 40 |
		     ((a >> 24) & 0xff) << 56;
	gdt_tss[1] = a >> 32;
	tss_set_rsp0((uint64_t)(rsp0_stack + sizeof(rsp0_stack)));
	__asm__ volatile("ltr %w0" ::"r"(SEL_TSS));
}

void tss_set_rsp0(uint64_t rsp)
{
	memcpy(tss + 4, &rsp, 8);
}

void tss_set_ist(int n, uint64_t rsp)
{
	memcpy(tss + 36 + 8 * (n - 1), &rsp, 8);
}

static const char *const exc_names[32] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "?", "#TS", "#NP",
	"#SS", "#GP", "#PF", "?", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
};

static void probe_fault(struct trap_frame *f)
{
	last_fault.vector = (int)f->vector;
	last_fault.error = f->error;
	last_fault.cr2 = f->vector == 14 ? READ_CR(2) : 0;
	last_fault.rip = f->rip;
	f->rip = probe_recover_rip;
	f->rax = (uint64_t)-1;
}

void fault_probe_vector(int vec)
{
	handlers[vec] = probe_fault;
}

void fault_probe_init(void)
{
	fault_probe_vector(6);
	fault_probe_vector(13);
	fault_probe_vector(14);
}

void rt_trap(struct trap_frame *f);
void rt_trap(struct trap_frame *f)
{
	int v = (int)f->vector;
	if (handlers[v] == probe_fault && !probe_recover_rip)
		goto unexpected;
	if (handlers[v]) {
		handlers[v](f);
		return;
	}
unexpected:
	not_ok("unexpected-trap", "vector %d %s error %lx rip %lx cs %lx cr2 %lx", v,
	       v < 32 && exc_names[v] ? exc_names[v] : "irq", f->error, f->rip, f->cs,
	       (uint64_t)READ_CR(2));
	finish();
}
