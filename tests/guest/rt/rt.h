/*
 * rt.h: the freestanding runtime of khyve's 64-bit test guests. Port and MMIO access, MSRs,
 * CPUID, COM1 output and formatting, the PVH start_info (Xen arch-x86/hvm/start_info.h),
 * ACPI tables (ACPI 6.x §5.2), xAPIC/IOAPIC, IDT/TSS, SMP start-up (INIT-SIPI-SIPI, Intel SDM
 * vol. 3 §8.4), extra 4 KiB mappings, and the "ok/not ok ... RESULT" protocol. No SSE, no libc.
 * The 32-bit runtime (rt/entry32.S, rt/idt32.c, rt/stubs32.S) shares the parts not marked
 * 64-bit only: no SMP, no user_call/probes/paging helpers of the 64-bit form.
 */
#ifndef RT_H
#define RT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __x86_64__
/* Segment selectors of the runtime's GDT (entry.S). */
#define SEL_CODE32 0x08
#define SEL_CODE64 0x10
#define SEL_DATA 0x18
#define SEL_STAR_USER 0x30	/* STAR[63:48]: SYSRET uses +8 (SS) and +16 (CS) */
#define SEL_UDATA 0x3b
#define SEL_UCODE64 0x43
#define SEL_TSS 0x48
#else
/* Segment selectors of the 32-bit runtime's GDT (entry32.S). */
#define SEL_CODE32 0x08
#define SEL_DATA 0x10
#define SEL_CODE16 0x18
#define SEL_DATA16 0x20
#define SEL_UCODE32 0x2b
#define SEL_UDATA 0x33
#define SEL_TSS 0x38
#define SEL_SCRATCH 0x40	/* free for tests: gdt_set(SEL_SCRATCH + 8 * i, ...), i < 8 */
#endif

#define LAPIC_BASE 0xfee00000ul

/* ---- port I/O, MSR, CPUID, control registers ---- */
static inline void outb(uint16_t p, uint8_t v) { __asm__ volatile("outb %0,%1" ::"a"(v), "Nd"(p)); }
static inline void outw(uint16_t p, uint16_t v) { __asm__ volatile("outw %0,%1" ::"a"(v), "Nd"(p)); }
static inline void outl(uint16_t p, uint32_t v) { __asm__ volatile("outl %0,%1" ::"a"(v), "Nd"(p)); }
static inline uint8_t inb(uint16_t p) { uint8_t v; __asm__ volatile("inb %1,%0" : "=a"(v) : "Nd"(p)); return v; }
static inline uint16_t inw(uint16_t p) { uint16_t v; __asm__ volatile("inw %1,%0" : "=a"(v) : "Nd"(p)); return v; }
static inline uint32_t inl(uint16_t p) { uint32_t v; __asm__ volatile("inl %1,%0" : "=a"(v) : "Nd"(p)); return v; }

static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return lo | (uint64_t)hi << 32;
}
static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" ::"c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}
static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}
static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return lo | (uint64_t)hi << 32;
}
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }
static inline void cli(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void sti(void) { __asm__ volatile("sti" ::: "memory"); }
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }

#define READ_CR(n) ({ unsigned long v_; __asm__ volatile("mov %%cr" #n ",%0" : "=r"(v_)); (uint64_t)v_; })
#define WRITE_CR(n, v) __asm__ volatile("mov %0,%%cr" #n ::"r"((unsigned long)(v)) : "memory")

/* A pointer to physical (= virtual) address a, hidden from the compiler's bounds analysis. */
#define PHYS(a) ({ uintptr_t p_ = (uintptr_t)(a); __asm__("" : "+r"(p_)); (void *)p_; })

static inline uint32_t mmio_read32(uintptr_t a) { return *(volatile uint32_t *)a; }
static inline void mmio_write32(uintptr_t a, uint32_t v) { *(volatile uint32_t *)a = v; }

/* ---- memory and strings ---- */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);

/* ---- console and formatting (COM1, 16550 polled) ---- */
void serial_init(void);
void serial_putc(char c);
int vsnprintf(char *buf, size_t len, const char *fmt, va_list ap);
int snprintf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- results ---- */
void ok(const char *name);
void not_ok(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* ok or not ok depending on cond; detail printed on failure */
void check(bool cond, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int failures(void);
/* Print RESULT, then power off (never returns). */
void finish(void) __attribute__((noreturn));

/* ---- boot information (PVH start_info, copied at entry) ---- */
struct rt_memmap {
	uint64_t addr, size;
	uint32_t type, reserved;
};
#define RT_MEMMAP_MAX 32
struct rt_bootinfo {
	uint32_t start_info_version;	/* 0xffffffff: no start_info */
	uint64_t rsdp_paddr;
	int memmap_count;
	struct rt_memmap memmap[RT_MEMMAP_MAX];
	char cmdline[512];
};
extern struct rt_bootinfo bootinfo;
/* The value of "key=value" on the command line, or NULL. */
const char *cmdline_get(const char *key, char *buf, size_t len);
/* A numeric "key=N[KMG]" on the command line, or def. */
uint64_t cmdline_num(const char *key, uint64_t def);
uint64_t parse_num(const char *s, const char **end);

/* ---- ACPI ---- */
struct acpi_header {
	char sig[4];
	uint32_t length;
	uint8_t revision, checksum;
	char oemid[6], oem_table_id[8];
	uint32_t oem_revision, creator_id, creator_revision;
} __attribute__((packed));
/* The RSDP (start_info, else the 0xE0000-0xFFFFF scan), 0 if none. */
uint64_t acpi_rsdp(void);
/* A table by signature (n-th instance), checksum verified; NULL if absent. */
const struct acpi_header *acpi_find(const char *sig, int n);
bool acpi_checksum_ok(const void *p, size_t len);
struct acpi_madt_info {
	uint32_t lapic_addr;
	int ncpus;
	uint8_t apic_ids[64];
	uint32_t ioapic_addr;	/* first IOAPIC, 0 if none */
	uint32_t ioapic_gsi_base;
	int irq0_gsi;		/* from an interrupt source override, else 0 */
};
int acpi_madt(struct acpi_madt_info *out);
struct acpi_pm_info {
	uint16_t pm1a_cnt, pm1a_evt, pm_tmr;
	int s5_typ;		/* from DSDT \_S5, -1 if not found */
	char oemid[7];
	uint16_t sci_int;	/* FADT SCI_INT (an ISA IRQ unless overridden in the MADT) */
	uint32_t smi_cmd;	/* FADT SMI_CMD, 0: ACPI mode fixed */
	uint8_t acpi_enable;	/* value for SMI_CMD that enters ACPI mode */
	uint8_t pm1_evt_len;	/* PM1a_EN is at pm1a_evt + pm1_evt_len / 2 */
};
int acpi_pm(struct acpi_pm_info *out);
/* The MADT interrupt source override for ISA irq: 0 with gsi and MPS INTI flags (bits 1:0
 * polarity, 3:2 trigger mode), -1 when there is none. */
int acpi_irq_override(int irq, uint32_t *gsi, uint16_t *flags);

/* ---- power ---- */
void power_off(int qemu_code) __attribute__((noreturn));
void reset_cf9(void) __attribute__((noreturn));
void reset_8042(void) __attribute__((noreturn));
void halt_forever(void) __attribute__((noreturn));

/* ---- time (TSC, calibrated with PIT channel 2 on first use) ---- */
/* Measure the TSC over a PIT channel 2 one-shot of `ms` milliseconds through port 0x61;
 * returns the TSC ticks or 0 when the PIT output never rose. */
uint64_t pit_ch2_measure(unsigned ms);
/* A late look at the output (the vCPU preempted on a busy host) only adds ticks: the shortest
 * of up to `runs` measurements, stopping when two agree within 2%. 0 if none succeeded. */
uint64_t pit_ch2_best(unsigned ms, int runs);
uint64_t tsc_khz(void);
void udelay(uint64_t us);
uint64_t tsc_deadline(uint64_t us);	/* rdtsc value us microseconds from now */

/* ---- interrupts ---- */
#ifdef __x86_64__
struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;
};
#else
struct trap_frame {
	uint32_t edi, esi, ebp, esp_pusha, ebx, edx, ecx, eax;
	uint32_t es, ds;
	uint32_t vector, error;
	uint32_t eip, cs, eflags, esp, ss;	/* esp, ss only from ring 3 */
};
/* Write GDT entry sel (8 bytes, raw descriptor). */
void gdt_set(uint16_t sel, uint64_t desc);
#endif
typedef void (*trap_handler)(struct trap_frame *f);
void idt_init(void);		/* all 256 vectors, DPL 0, no IST; loads the IDT */
void idt_load(void);		/* on an AP */
void idt_set_handler(int vec, trap_handler h);
void idt_set_gate(int vec, int dpl, int ist, bool present);
#ifdef __x86_64__
extern uint8_t tss[104];
/* Install the TSS (rsp0 and IST stacks set by the caller with tss_set). */
void tss_init(void);
void tss_set_rsp0(uint64_t rsp);
void tss_set_ist(int n, uint64_t rsp);
/* Run fn(arg) in ring 3 (user code/stack); returns fn's value. Vector 0x80 is the way back. */
uint64_t user_call(uint64_t (*fn)(uint64_t), uint64_t arg);
extern uint64_t user_rflags;	/* RFLAGS user_call starts ring 3 with (0x202) */
#else
extern uint8_t tss[104];
void tss_init(void);
void tss_set_esp0(uint32_t esp);
/* Run fn(arg) in ring 3 (flat user segments); returns fn's value. Vector 0x80 is the way back. */
uint32_t user_call(uint32_t (*fn)(uint32_t), uint32_t arg);
/* 0, or -1 with last_fault set; probe_recover_rip as in the 64-bit form. */
int probe_read(uint32_t va, uint32_t *val);
int probe_write(uint32_t va, uint32_t val);
#endif
#define USER_RETURN_VECTOR 0x80

/* Probes: set by the #PF/#GP handlers installed by fault_probe_init(). */
struct fault_info {
	int vector;
	uint64_t error, cr2, rip;
};
extern volatile struct fault_info last_fault;
void fault_probe_init(void);	/* #UD, #GP and #PF */
void fault_probe_vector(int vec);	/* one more vector recovered the same way */
#ifdef __x86_64__
int probe_rdmsr(uint32_t msr, uint64_t *val);
int probe_wrmsr(uint32_t msr, uint64_t val);
#endif
/* 0, or -1 with last_fault set, for a read/write/execute ("call") at va, or an MSR access.
 * Other probes: set probe_recover_rip to the resume address before the instruction. */
extern unsigned long probe_recover_rip;
#ifdef __x86_64__
int probe_read(uint64_t va, uint64_t *val);
int probe_write(uint64_t va, uint64_t val);
int probe_exec(uint64_t va);
#endif

/* ---- paging: extra 4 KiB mappings in the upper half of the PML4 (identity map below 4 GiB
 * stays as it is) ---- */
#define PTE_P 1ull
#define PTE_W 2ull
#define PTE_U 4ull
#define PTE_A 0x20ull
#define PTE_D 0x40ull
#define PTE_NX (1ull << 63)
#ifdef __x86_64__
uint64_t *page_pte(uint64_t va);	/* the PTE, creating the tables */
void map_page(uint64_t va, uint64_t pa, uint64_t flags);
#endif
static inline void invlpg(unsigned long va) { __asm__ volatile("invlpg (%0)" ::"r"(va) : "memory"); }

/* ---- local APIC (xAPIC MMIO) and IOAPIC ---- */
static inline uint32_t lapic_read(uint32_t reg) { return mmio_read32(LAPIC_BASE + reg); }
static inline void lapic_write(uint32_t reg, uint32_t v) { mmio_write32(LAPIC_BASE + reg, v); }
#define LAPIC_ID 0x20
#define LAPIC_VER 0x30
#define LAPIC_TPR 0x80
#define LAPIC_EOI 0xb0
#define LAPIC_SVR 0xf0
#define LAPIC_ISR 0x100
#define LAPIC_IRR 0x200
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_CUR 0x390
#define LAPIC_TIMER_DIV 0x3e0
void lapic_enable(void);
uint32_t lapic_id(void);
void lapic_eoi(void);
/* Send an IPI (ICR low bits as given) to dest; waits for the delivery-status bit to clear. */
void lapic_ipi(uint32_t dest, uint32_t icr_lo);
uint32_t ioapic_read(uint32_t base, uint32_t reg);
void ioapic_write(uint32_t base, uint32_t reg, uint32_t v);
/* Mask and remap the two 8259s (vectors 0x20-0x2f) so they stay out of the way. */
void pic_disable(void);

#ifdef __x86_64__
/* ---- SMP ---- */
/* The CPUs from the MADT, else cmdline "cpus=" with APIC IDs 0..n-1. */
int smp_cpu_count(void);
/* Start every AP; each runs fn(index) (index 1..n-1) on its own stack and then halts
 * (cli; hlt). Returns the number of APs that reported in within the timeout. */
int smp_start_aps(void (*fn)(int idx));
/* Number of APs that have finished fn. */
extern volatile int smp_aps_done;
extern uint32_t smp_apic_ids[64];
#endif

/* ---- PCI configuration mechanism #1 ---- */
uint32_t pci_read32(int bus, int slot, int fn, int off);
uint16_t pci_read16(int bus, int slot, int fn, int off);
uint8_t pci_read8(int bus, int slot, int fn, int off);
void pci_write32(int bus, int slot, int fn, int off, uint32_t v);

/* The test's entry point. */
void test_main(void);

#endif
