/*
 * prot32: 32-bit protected mode (Intel SDM vol. 3 §3.4-3.5, §4.3-4.4, §5.3-5.8, §6.12):
 * segment bases and limits (#GP beyond the limit, expand-down, read-only data, writes through
 * CS, null selector), selector checks (#GP past the GDT, #NP), a 16-bit code segment called
 * from 32-bit code; 32-bit paging with 4 KiB and 4 MiB (PSE) pages and PAE paging with NX:
 * A/D bits, #PF error codes and CR2, CR0.WP; ring 3 through IRET and back through a DPL-3
 * gate on the TSS ESP0 stack, #GP for a DPL-0 gate. Paging is off again before power-off.
 */
#include "rt.h"

/* One instruction with fault recovery: 0, or -1 with last_fault set. O: one more output
 * operand (%1), I: one input operand (%1), N: none. */
#define PROBE_ASM(insn) "movl $1f, probe_recover_rip\n" insn "\n xorl %%eax, %%eax\n" \
			"1: movl $0, probe_recover_rip"
#define PROBE_O(insn, o) ({ int r_; __asm__ volatile(PROBE_ASM(insn) : "=a"(r_), o::"memory"); r_; })
#define PROBE_I(insn, i) ({ int r_; __asm__ volatile(PROBE_ASM(insn) : "=a"(r_) : i : "memory"); r_; })
#define PROBE_N(insn) ({ int r_; __asm__ volatile(PROBE_ASM(insn) : "=a"(r_)::"memory"); r_; })

int probe_exec(uint32_t va);
__asm__(".text\nprobe_exec:\n"
	"  movl $1f, probe_recover_rip\n  movl %esp, exec_saved_esp\n"
	"  call *4(%esp)\n  xorl %eax, %eax\n  jmp 2f\n"
	"1: movl exec_saved_esp, %esp\n"
	"2: movl $0, probe_recover_rip\n  ret\n"
	".data\nexec_saved_esp: .long 0\n.text\n");

static uint64_t seg_desc(uint32_t base, uint32_t limit, uint8_t access, uint8_t flags)
{
	return (limit & 0xffff) | (uint64_t)(base & 0xffffff) << 16 | (uint64_t)access << 40 |
	       (uint64_t)((limit >> 16) & 0xf) << 48 | (uint64_t)flags << 52 | (uint64_t)(base >> 24) << 56;
}

static int load_fs(uint16_t sel)
{
	return PROBE_I("movw %w1, %%fs", "r"(sel));
}

static void expect(const char *name, int r, int vec, uint32_t err)
{
	check(r && last_fault.vector == vec && last_fault.error == err, name,
	      "r %d vector %d error %llx (want %d/%x)", r, last_fault.vector,
	      (unsigned long long)last_fault.error, vec, err);
}

static void segmentation(void)
{
	uint32_t v = 0;
	/* data, base 2 MiB, limit 0xffff, byte granular */
	gdt_set(SEL_SCRATCH, seg_desc(0x200000, 0xffff, 0x92, 0x4));
	load_fs(SEL_SCRATCH);
	*(volatile uint32_t *)PHYS(0x200010) = 0;
	int r = PROBE_N("movl $0xabcd1234, %%fs:0x10");
	check(!r && *(volatile uint32_t *)PHYS(0x200010) == 0xabcd1234, "seg-base", "r %d, memory %x", r,
	      *(volatile uint32_t *)PHYS(0x200010));
	expect("seg-limit-gp", PROBE_O("movl %%fs:0x10000, %1", "=r"(v)), 13, 0);
	expect("seg-limit-straddle-gp", PROBE_O("movl %%fs:0xfffe, %1", "=r"(v)), 13, 0);
	check(!PROBE_O("movl %%fs:0xfffc, %1", "=r"(v)), "seg-limit-last-dword", "faulted");

	/* expand-down, B=1: offsets 0x1000..0xffffffff are valid */
	gdt_set(SEL_SCRATCH, seg_desc(0, 0xfff, 0x96, 0x4));
	load_fs(SEL_SCRATCH);
	expect("seg-expand-down-low-gp", PROBE_O("movl %%fs:0x800, %1", "=r"(v)), 13, 0);
	check(!PROBE_O("movl %%fs:0x200000, %1", "=r"(v)), "seg-expand-down-high", "faulted");

	/* read-only data */
	gdt_set(SEL_SCRATCH, seg_desc(0, 0xfffff, 0x90, 0xc));
	load_fs(SEL_SCRATCH);
	check(!PROBE_O("movl %%fs:0x200010, %1", "=r"(v)) && v == 0xabcd1234, "seg-read-only-read",
	      "value %x", v);
	expect("seg-read-only-write-gp", PROBE_N("movl $1, %%fs:0x200010"), 13, 0);
	expect("cs-write-gp", PROBE_N("movl $1, %%cs:0x200010"), 13, 0);
	check(!PROBE_O("movl %%cs:0x200010, %1", "=r"(v)) && v == 0xabcd1234, "cs-read", "value %x", v);

	/* null selector: loads, then faults on use */
	check(!load_fs(0), "null-selector-load", "faulted");
	expect("null-selector-use-gp", PROBE_O("movl %%fs:0x200010, %1", "=r"(v)), 13, 0);
	/* beyond the GDT limit, not present */
	expect("selector-beyond-gdt-gp", load_fs(0x1f8), 13, 0x1f8);
	gdt_set(SEL_SCRATCH + 8, seg_desc(0, 0xfffff, 0x12, 0xc));
	expect("segment-not-present-np", load_fs(SEL_SCRATCH + 8), 11, SEL_SCRATCH + 8);
	load_fs(SEL_DATA);

	/* 16-bit code: mov %sp,%cx; push %ax; mov %sp,%dx; pop %ax; sub %dx,%cx; mov %cx,%ax; lretl */
	static const uint8_t code16[] = { 0x89, 0xe1, 0x50, 0x89, 0xe2, 0x58, 0x29, 0xd1, 0x89, 0xc8,
					  0x66, 0xcb };
	memcpy(PHYS(0x9000), code16, sizeof(code16));
	uint32_t ax = 0xffffffff;
	__asm__ volatile("lcall $0x18, $0x9000" : "+a"(ax)::"ecx", "edx", "memory");
	check((ax & 0xffff) == 2, "code16-push-size", "16-bit push moved SP by %u", ax & 0xffff);
}

/* ---- paging ---- */
static volatile uint32_t pd[1024] __attribute__((aligned(4096)));
static volatile uint32_t pt[1024] __attribute__((aligned(4096)));
static volatile uint64_t pdpt_pae[4] __attribute__((aligned(32)));
static volatile uint64_t pd_pae[4][512] __attribute__((aligned(4096)));
static volatile uint64_t pt_pae[512] __attribute__((aligned(4096)));
static uint8_t pg[3][4096] __attribute__((aligned(4096)));
#define TVA 0x40000000u		/* 4 KiB test pages */
#define BIGVA 0x40400000u	/* a 4 MiB page aliasing 4-8 MiB */

static uint32_t user_read(uint32_t va)
{
	uint32_t v;
	return probe_read(va, &v) ? 0xffffffffu : v;
}

static void expect_pf(const char *name, int r, uint32_t err, uint32_t cr2)
{
	check(r && last_fault.vector == 14 && last_fault.error == err && last_fault.cr2 == cr2, name,
	      "r %d vector %d error %llx (want %x) cr2 %llx (want %x)", r, last_fault.vector,
	      (unsigned long long)last_fault.error, err, (unsigned long long)last_fault.cr2, cr2);
}

static void paging_off(void)
{
	WRITE_CR(0, READ_CR(0) & ~0x80000000ul);
	WRITE_CR(4, READ_CR(4) & ~0x30ul);
}

static void paging32(void)
{
	uint32_t v;
	for (int i = 0; i < 2; i++)	/* 0-8 MiB identity, 4 MiB pages, user accessible */
		pd[i] = (uint32_t)i << 22 | 0x87;
	pd[TVA >> 22] = (uint32_t)pt | 7;
	pd[BIGVA >> 22] = 0x400000 | 0x87;
	*(volatile uint32_t *)PHYS(0x400100) = 0x5a5a5a5a;
	pt[0] = (uint32_t)pg[0] | 3;		/* RW supervisor */
	pt[1] = (uint32_t)pg[1] | 1;		/* RO supervisor */
	pt[2] = 0;				/* not present */
	*(uint32_t *)pg[0] = 0x11111111;
	*(uint32_t *)pg[1] = 0x22222222;
	WRITE_CR(3, (uint32_t)pd);
	WRITE_CR(4, READ_CR(4) | 0x10);		/* PSE */
	WRITE_CR(0, READ_CR(0) | 0x80010000);	/* PG, WP */

	check(*(volatile uint32_t *)TVA == 0x11111111 && (pt[0] & 0x20) && !(pt[0] & 0x40) &&
	      (pd[TVA >> 22] & 0x20), "pg32-4k-read-accessed", "PTE %x PDE %x", pt[0], pd[TVA >> 22]);
	*(volatile uint32_t *)TVA = 0x33333333;
	check((pt[0] & 0x40) && *(volatile uint32_t *)pg[0] == 0x33333333, "pg32-4k-write-dirty",
	      "PTE %x", pt[0]);
	check(*(volatile uint32_t *)(BIGVA + 0x100) == 0x5a5a5a5a && (pd[BIGVA >> 22] & 0x20),
	      "pg32-pse-4m", "read %x PDE %x", *(volatile uint32_t *)(BIGVA + 0x100), pd[BIGVA >> 22]);
	*(volatile uint32_t *)(BIGVA + 0x104) = 1;
	check(pd[BIGVA >> 22] & 0x40, "pg32-pse-dirty", "PDE %x", pd[BIGVA >> 22]);
	expect_pf("pg32-not-present-read", probe_read(TVA + 0x2008, &v), 0, TVA + 0x2008);
	expect_pf("pg32-not-present-write", probe_write(TVA + 0x2010, 1), 2, TVA + 0x2010);
	expect_pf("pg32-write-read-only", probe_write(TVA + 0x1000, 1), 3, TVA + 0x1000);
	expect_pf("pg32-pde-not-present", probe_read(0x80000000u, &v), 0, 0x80000000u);
	WRITE_CR(0, READ_CR(0) & ~0x10000ul);
	int r = probe_write(TVA + 0x1000, 0x44);
	WRITE_CR(0, READ_CR(0) | 0x10000);
	check(!r && *(volatile uint32_t *)pg[1] == 0x44, "pg32-wp-off", "r %d value %x", r,
	      *(volatile uint32_t *)pg[1]);
	pd[TVA >> 22] |= 4;	/* PT user-accessible; the PTEs stay supervisor */
	WRITE_CR(3, (uint32_t)pd);
	check(user_call(user_read, TVA) == 0xffffffffu, "pg32-user-supervisor-faults", "no fault");
	expect_pf("pg32-user-supervisor-read", -1, 5, TVA);
	pt[0] |= 4;
	invlpg(TVA);
	check(user_call(user_read, TVA) == 0x33333333, "pg32-user-page-read", "failed");
	paging_off();
}

static void paging_pae(void)
{
	uint32_t x[4], v;
	cpuid(0x80000001, 0, x);
	bool nx = x[3] & (1 << 20);
	if (nx)
		wrmsr(0xc0000080, rdmsr(0xc0000080) | (1 << 11));
	for (int i = 0; i < 4; i++)
		pdpt_pae[i] = (uint32_t)pd_pae[i] | 1;
	for (int i = 0; i < 4; i++)	/* 0-8 MiB identity, 2 MiB pages */
		pd_pae[0][i] = (uint64_t)i << 21 | 0x87;
	pd_pae[1][0] = (uint32_t)pt_pae | 7;	/* 0x40000000 */
	pt_pae[0] = (uint32_t)pg[0] | 3;
	pt_pae[1] = (uint32_t)pg[2] | 3 | (nx ? PTE_NX : 0);
	pt_pae[2] = 0;
	pg[2][0] = 0xc3;	/* ret */
	*(uint32_t *)pg[0] = 0x77777777;
	WRITE_CR(3, (uint32_t)pdpt_pae);
	WRITE_CR(4, READ_CR(4) | 0x20);		/* PAE */
	WRITE_CR(0, READ_CR(0) | 0x80010000);

	check(*(volatile uint32_t *)TVA == 0x77777777 && (pt_pae[0] & 0x20), "pae-4k-read",
	      "read %x PTE %llx", *(volatile uint32_t *)TVA, (unsigned long long)pt_pae[0]);
	*(volatile uint32_t *)TVA = 1;
	check(pt_pae[0] & 0x40, "pae-dirty", "PTE %llx", (unsigned long long)pt_pae[0]);
	check((pd_pae[0][0] & 0x20) && (pd_pae[0][0] & 0x40), "pae-2m-accessed-dirty", "PDE %llx",
	      (unsigned long long)pd_pae[0][0]);
	expect_pf("pae-not-present-read", probe_read(TVA + 0x2000, &v), 0, TVA + 0x2000);
	expect_pf("pae-not-present-pde", probe_read(0x40200000u, &v), 0, 0x40200000u);
	if (nx)
		expect_pf("pae-nx-fetch", probe_exec(TVA + 0x1000), 0x11, TVA + 0x1000);
	else
		not_ok("pae-nx-fetch", "no NX in CPUID");
	pt_pae[1] &= ~PTE_NX;
	invlpg(TVA + 0x1000);
	check(!probe_exec(TVA + 0x1000), "pae-exec", "fetch faulted");
	paging_off();
}

/* ---- rings ---- */
static volatile uint32_t h_cs, h_ss, h_esp;

static void gate81(struct trap_frame *f)
{
	uint32_t sp;
	__asm__ volatile("movl %%esp, %0" : "=r"(sp));
	h_cs = f->cs;
	h_ss = f->ss;
	h_esp = sp;
	f->eax = 0x4242;
}

static uint32_t user_cs(uint32_t a)
{
	uint16_t cs;
	__asm__ volatile("movw %%cs, %0" : "=r"(cs));
	return cs;
}

static uint32_t user_int81(uint32_t a)
{
	uint32_t r = 0;
	__asm__ volatile("int $0x81" : "+a"(r)::"memory");
	return r;
}

static uint32_t user_int82(uint32_t a)
{
	return (uint32_t)PROBE_N("int $0x82");
}

static void rings(void)
{
	uint32_t esp0;
	memcpy(&esp0, tss + 4, 4);
	check(user_call(user_cs, 0) == SEL_UCODE32, "ring3-iret", "CS %x", user_call(user_cs, 0));
	idt_set_gate(0x81, 3, 0, true);
	idt_set_handler(0x81, gate81);
	uint32_t r = user_call(user_int81, 0);
	check(r == 0x4242 && h_cs == SEL_UCODE32 && h_ss == SEL_UDATA, "int-dpl3-gate",
	      "r %x CS %x SS %x", r, h_cs, h_ss);
	check(h_esp < esp0 && h_esp > esp0 - 16384, "tss-esp0-stack", "handler esp %x, ESP0 %x", h_esp, esp0);
	r = user_call(user_int82, 0);
	check(r == 0xffffffffu && last_fault.vector == 13 && last_fault.error == (0x82 << 3 | 2),
	      "gp-dpl0-gate-from-ring3", "r %x vector %d error %llx", r, last_fault.vector,
	      (unsigned long long)last_fault.error);
}

void test_main(void)
{
	fault_probe_init();
	fault_probe_vector(11);
	segmentation();
	paging32();
	paging_pae();
	rings();
}
