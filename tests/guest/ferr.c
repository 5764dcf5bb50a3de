/*
 * ferr: the PC's legacy x87 error reporting with CR0.NE=0 (SDM Vol. 1 §8.7; the chipset side
 * is dev/fpu_ferr.c). An unmasked x87 exception (divide by zero with FCW.ZM clear) makes the
 * next waiting instruction (FWAIT) assert FERR#, which raises IRQ 13 (here through IOAPIC
 * pin 13); the handler writes port 0xF0 and clears the exception with FNCLEX, and the FWAIT
 * then completes. A handler that only writes 0xF0 leaves the exception pending but asserts
 * IGNNE#: the FWAIT then goes on past it without another interrupt. With CR0.NE=1 the same
 * exception is #MF (vector 16) instead.
 */
#include "rt.h"

#define V_IRQ13 0x3d

static volatile int irq13s, clear_in_handler = 1;
static volatile uint16_t fsw_in_handler;

static void irq13(struct trap_frame *f)
{
	uint16_t sw;

	irq13s++;
	__asm__ volatile("fnstsw %0" : "=m"(sw));
	fsw_in_handler = sw;
	outb(0xf0, 0);
	if (clear_in_handler)
		__asm__ volatile("fnclex");
	lapic_eoi();
}

/* 1/0 with ZM unmasked: ZE and ES set, reported at the next waiting instruction (the
 * caller's FWAIT); the infinity stays in ST(0) until pop(). */
static void divide_by_zero(void)
{
	__asm__ volatile("fld1; fldz; fdivrp" ::: "memory");
}

static void pop(void)
{
	__asm__ volatile("fstp %%st(0)" ::: "memory");
}

static uint16_t fsw(void)
{
	uint16_t sw;

	__asm__ volatile("fnstsw %0" : "=m"(sw));
	return sw;
}

void test_main(void)
{
	struct acpi_madt_info m;
	uint32_t ioapic = 0xfec00000;
	uint16_t cw = 0x037b;	/* FNINIT's 0x037f with ZM (bit 2) clear */

	if (!acpi_madt(&m) && m.ioapic_addr)
		ioapic = m.ioapic_addr;
	lapic_enable();
	idt_set_handler(V_IRQ13, irq13);
	ioapic_write(ioapic, 0x10 + 2 * 13 + 1, lapic_id() << 24);
	ioapic_write(ioapic, 0x10 + 2 * 13, V_IRQ13);	/* fixed, edge, high, unmasked */
	WRITE_CR(0, (READ_CR(0) | (1 << 1)) & ~((1ull << 5) | (1ull << 2) | (1ull << 3)));
	__asm__ volatile("fninit; fldcw %0" : : "m"(cw));
	sti();

	/* FERR# -> IRQ 13; the handler clears the exception; FWAIT completes */
	divide_by_zero();
	check((fsw() & 0x84) == 0x84, "exception-pending", "FSW %x after 1/0", fsw());
	__asm__ volatile("fwait" ::: "memory");
	pop();
	check(irq13s == 1, "ferr-irq13", "%d IRQ 13s for one exception", irq13s);
	check((fsw_in_handler & 0x84) == 0x84, "handler-sees-exception", "FSW %x", fsw_in_handler);
	check((fsw() & 0x80) == 0, "cleared-after-handler", "FSW %x", fsw());
	__asm__ volatile("fwait" ::: "memory");
	check(irq13s == 1, "no-irq-when-clear", "%d IRQ 13s", irq13s);

	/* the handler only writes 0xF0: IGNNE# lets the FWAIT go on, exception still pending */
	clear_in_handler = 0;
	divide_by_zero();
	__asm__ volatile("fwait" ::: "memory");
	check(irq13s == 2, "ferr-irq13-again", "%d IRQ 13s", irq13s);
	check((fsw() & 0x84) == 0x84, "ignne-leaves-pending", "FSW %x", fsw());
	pop();	/* a waiting x87 instruction that IGNNE# lets past the exception */
	check(irq13s == 2, "ignne-runs-arithmetic", "%d IRQ 13s", irq13s);
	__asm__ volatile("fwait" ::: "memory");
	check(irq13s == 2, "ignne-no-second-irq", "%d IRQ 13s", irq13s);

	/* cleared by the program: FERR# negated, so the next exception interrupts again */
	clear_in_handler = 1;
	__asm__ volatile("fnclex; fwait" ::: "memory");
	divide_by_zero();
	__asm__ volatile("fwait" ::: "memory");
	pop();
	check(irq13s == 3, "ferr-after-negation", "%d IRQ 13s", irq13s);
	cli();

	/* CR0.NE=1: #MF instead */
	fault_probe_init();
	fault_probe_vector(16);
	WRITE_CR(0, READ_CR(0) | (1 << 5));
	divide_by_zero();
	__asm__ volatile("leaq 1f(%%rip), %%rax; movq %%rax, probe_recover_rip(%%rip)\n"
			 "fwait\n"
			 "1: movq $0, probe_recover_rip(%%rip)" ::: "rax", "memory");
	check(last_fault.vector == 16, "ne-gives-mf", "vector %d", last_fault.vector);
	__asm__ volatile("fnclex" ::: "memory");
	pop();
	check(irq13s == 3, "ne-no-irq13", "%d IRQ 13s", irq13s);
}
