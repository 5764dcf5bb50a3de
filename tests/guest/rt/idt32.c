/*
 * idt32.c: the 32-bit runtime's IDT (Intel SDM vol. 3 §6.11, 8-byte interrupt gates), the
 * 32-bit TSS with ESP0/SS0 (§7.2.1), GDT slots for tests, the way back from ring 3 (vector
 * 0x80, DPL 3) and fault-probe recovery. Task gates and hardware task switches are left out.
 */
#include "rt.h"

struct idt_gate32 {
	uint16_t off0, sel;
	uint8_t zero, attr;
	uint16_t off1;
} __attribute__((packed));

static struct idt_gate32 idt[256] __attribute__((aligned(16)));
static trap_handler handlers[256];
uint8_t tss[104] __attribute__((aligned(16)));
extern char trap_stubs[];
extern uint64_t gdt[];
extern char user_return_eip[];
volatile struct fault_info last_fault;

static struct {
	uint16_t limit;
	uint32_t base;
} __attribute__((packed)) idt_ptr = { sizeof(idt) - 1, 0 };

void gdt_set(uint16_t sel, uint64_t desc)
{
	gdt[sel >> 3] = desc;
}

void idt_set_gate(int vec, int dpl, int ist, bool present)
{
	uint32_t a = (uint32_t)(trap_stubs + 16 * vec);
	idt[vec] = (struct idt_gate32){
		.off0 = (uint16_t)a, .sel = SEL_CODE32,
		.attr = (uint8_t)((present ? 0x80 : 0) | dpl << 5 | 0xe), .off1 = (uint16_t)(a >> 16),
	};
}

void idt_set_handler(int vec, trap_handler h)
{
	handlers[vec] = h;
}

void idt_load(void)
{
	idt_ptr.base = (uint32_t)idt;
	__asm__ volatile("lidt %0" ::"m"(idt_ptr));
}

static void user_return(struct trap_frame *f)
{
	f->eip = (uint32_t)user_return_eip;
	f->cs = SEL_CODE32;
	f->eflags &= ~0x200u;
}

void idt_init(void)
{
	for (int i = 0; i < 256; i++)
		idt_set_gate(i, 0, 0, true);
	idt_set_gate(USER_RETURN_VECTOR, 3, 0, true);
	handlers[USER_RETURN_VECTOR] = user_return;
	idt_load();
}

static uint8_t esp0_stack[16384] __attribute__((aligned(16)));

void tss_init(void)
{
	uint32_t a = (uint32_t)tss;
	memset(tss, 0, sizeof(tss));
	*(uint16_t *)(tss + 102) = sizeof(tss);
	*(uint16_t *)(tss + 8) = SEL_DATA;	/* SS0 */
	gdt_set(SEL_TSS, (sizeof(tss) - 1) | (uint64_t)(a & 0xffffff) << 16 | 0x89ull << 40 |
				 (uint64_t)(a >> 24) << 56);
	tss_set_esp0((uint32_t)(esp0_stack + sizeof(esp0_stack)));
	__asm__ volatile("ltr %w0" ::"r"(SEL_TSS));
}

void tss_set_esp0(uint32_t esp)
{
	memcpy(tss + 4, &esp, 4);
}

static void probe_fault(struct trap_frame *f)
{
	last_fault.vector = (int)f->vector;
	last_fault.error = f->error;
	last_fault.cr2 = f->vector == 14 ? READ_CR(2) : 0;
	last_fault.rip = f->eip;
	f->eip = probe_recover_rip;
	f->eax = (uint32_t)-1;
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
	if (handlers[v] && (handlers[v] != probe_fault || probe_recover_rip)) {
		handlers[v](f);
		return;
	}
	not_ok("unexpected-trap", "vector %d error %x eip %x cs %x cr2 %llx", v, f->error, f->eip,
	       f->cs, (unsigned long long)READ_CR(2));
	finish();
}
