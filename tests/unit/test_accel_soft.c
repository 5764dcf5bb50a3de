/*
 * test_accel_soft.c: the software-CPU accelerator end to end with tiny flat guests: a port
 * write, a LAPIC timer interrupt through the IDT with HLT (one-shot and TSC-deadline), PIT
 * IRQ0 through the 8259, a level-triggered IOAPIC line raised by another thread, an MSI, a
 * kick, and an SMP INIT/SIPI start of a second vCPU driven by the BSP's ICR.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "accel/accel.h"
#include "unit.h"

#define MEM_SIZE (1u << 20)

struct guest {
	struct accel *acc;
	uint8_t *mem;
	uint32_t port80[16];
	int nport80;
	int other_pio, other_mmio;
};

static int pio(void *opaque, int vcpu, uint16_t port, unsigned size, bool write, uint32_t *val)
{
	struct guest *g = opaque;

	if (port == 0x81 && write) {	/* the "device" behind GSI 16 is serviced */
		accel_irq_line(g->acc, 16, false);
		return 0;
	}

	if (port == 0x80 && write) {
		if (g->nport80 < 16)
			g->port80[g->nport80] = *val;
		g->nport80++;
		return 0;
	}
	g->other_pio++;
	if (!write)
		*val = ~0u;
	return 0;
}

static int mmio(void *opaque, int vcpu, uint64_t gpa, unsigned size, bool write, uint64_t *val)
{
	struct guest *g = opaque;

	g->other_mmio++;
	if (!write)
		*val = ~0ull;
	return 0;
}

static struct accel_io_ops io_ops = { .pio = pio, .mmio = mmio };

static int guest_create(struct guest *g, int ncpus)
{
	struct accel_config cfg = { .kind = ACCEL_SOFT, .ncpus = ncpus, .io = &io_ops };
	char err[256];
	int ret;

	memset(g, 0, sizeof *g);
	alarm(60);	/* a guest that never stops fails the program instead of hanging it */
	io_ops.opaque = g;
	g->mem = aligned_alloc(4096, MEM_SIZE);
	if (!g->mem)
		return -1;
	memset(g->mem, 0, MEM_SIZE);
	ret = accel_create(&cfg, &g->acc, err, sizeof err);
	if (ret)
		return ret;
	return accel_map_memory(g->acc, 0, MEM_SIZE, g->mem, false);
}

static void guest_destroy(struct guest *g)
{
	accel_destroy(g->acc);
	free(g->mem);
}

static void put(struct guest *g, uint32_t at, const uint8_t *code, size_t n)
{
	memcpy(g->mem + at, code, n);
}

/* Flat 32-bit protected mode: GDT at 0x800 (code 0x08, data 0x10), IDT at 0x1000. */
static void flat32(struct guest *g, struct accel_vcpu *v, uint32_t rip)
{
	static const uint64_t gdt[3] = { 0, 0x00cf9a000000ffffull, 0x00cf92000000ffffull };
	struct accel_segment code = { .base = 0, .limit = 0xffffffff, .selector = 0x08,
				      .type = 0xb, .present = 1, .db = 1, .s = 1, .g = 1 };
	struct accel_segment data = code;
	struct accel_segment tr = { .limit = 0x67, .type = 0xb, .present = 1 };
	struct accel_segment ldt = { .type = 2, .present = 1, .unusable = 1 };
	struct accel_sregs s;
	struct accel_regs r = { .rip = rip, .rflags = 2, .rsp = 0x7000 };

	memcpy(g->mem + 0x800, gdt, sizeof gdt);
	data.selector = 0x10;
	data.type = 0x3;
	accel_vcpu_get_sregs(v, &s);
	s.cs = code;
	s.ds = s.es = s.fs = s.gs = s.ss = data;
	s.tr = tr;
	s.ldt = ldt;
	s.gdt.base = 0x800;
	s.gdt.limit = sizeof gdt - 1;
	s.idt.base = 0x1000;
	s.idt.limit = 256 * 8 - 1;
	s.cr0 = 0x11;
	accel_vcpu_set_sregs(v, &s);
	accel_vcpu_set_regs(v, &r);
}

static void idt_gate(struct guest *g, unsigned vec, uint32_t handler)
{
	uint8_t *e = g->mem + 0x1000 + vec * 8;

	e[0] = (uint8_t)handler;
	e[1] = (uint8_t)(handler >> 8);
	e[2] = 0x08;
	e[3] = 0;
	e[4] = 0;
	e[5] = 0x8e;
	e[6] = (uint8_t)(handler >> 16);
	e[7] = (uint8_t)(handler >> 24);
}

/* Run until something other than a kick; gives up after `seconds`. */
static enum accel_exit_reason run_until_stop(struct accel_vcpu *v, struct accel_exit *ex)
{
	for (int i = 0; i < 1000; i++) {
		if (accel_vcpu_run(v, ex))
			return ACCEL_EXIT_ERROR;
		if (ex->reason != ACCEL_EXIT_KICKED)
			return ex->reason;
	}
	return ACCEL_EXIT_KICKED;
}

/* mov dword [addr], imm32 */
#define MOVD(addr, imm)                                                                   \
	0xc7, 0x05, (uint8_t)(addr), (uint8_t)((addr) >> 8), (uint8_t)((addr) >> 16),       \
		(uint8_t)((addr) >> 24), (uint8_t)(imm), (uint8_t)((imm) >> 8),             \
		(uint8_t)((imm) >> 16), (uint8_t)((imm) >> 24)

TEST(soft_port_write_and_halt)
{
	struct guest g;
	struct accel_vcpu *v;
	struct accel_exit ex;
	struct accel_regs r;
	/* real mode at 0x0: mov al,0x42; out 0x80,al; mov ax,0x1234; out 0x80,ax; cli; hlt */
	static const uint8_t code[] = { 0xb0, 0x42, 0xe6, 0x80, 0xb8, 0x34, 0x12, 0xe7, 0x80,
					0xfa, 0xf4 };
	struct accel_sregs s;

	CHECK_EQ_U64(guest_create(&g, 1), 0);
	CHECK_STR(accel_name(g.acc), "soft");
	CHECK_EQ_U64(accel_vcpu_create(g.acc, 0, &v), 0);
	put(&g, 0x7c00, code, sizeof code);
	accel_vcpu_get_sregs(v, &s);
	s.cs.selector = 0;
	s.cs.base = 0;
	accel_vcpu_set_sregs(v, &s);
	accel_vcpu_get_regs(v, &r);
	r.rip = 0x7c00;
	accel_vcpu_set_regs(v, &r);
	CHECK_EQ_U64(run_until_stop(v, &ex), ACCEL_EXIT_HALTED);
	CHECK_EQ_U64(g.nport80, 2);
	CHECK_EQ_U64(g.port80[0], 0x42);
	CHECK_EQ_U64(g.port80[1], 0x1234);
	accel_vcpu_get_regs(v, &r);
	CHECK_EQ_U64(r.rip, 0x7c00 + sizeof code);
	accel_vcpu_destroy(v);
	guest_destroy(&g);
}

TEST(soft_cpuid_set)
{
	struct guest g;
	struct accel_cpuid_entry e[ACCEL_CPUID_MAX_ENTRIES];
	int n;
	bool amd = false, l1 = false, ext = false;

	CHECK_EQ_U64(guest_create(&g, 1), 0);
	n = accel_supported_cpuid(g.acc, e, ACCEL_CPUID_MAX_ENTRIES);
	CHECK(n > 0);
	for (int i = 0; i < n; i++) {
		if (e[i].function == 0)
			amd = e[i].ebx == 0x68747541 && e[i].edx == 0x69746e65 &&
			      e[i].ecx == 0x444d4163;
		if (e[i].function == 1) {
			l1 = (e[i].edx & 0x07808379) == 0x07808379 && (e[i].ecx & (1u << 21)) &&
			     (e[i].ecx & (1u << 24)) && !(e[i].ecx & (1u << 26)) &&
			     (e[i].ecx & 1) && (e[i].ecx & (1u << 9)) &&
			     (e[i].ecx & (1u << 13)) && !(e[i].ecx & (1u << 19)) &&
			     !(e[i].edx & (1u << 12));
			CHECK_EQ_U64((e[i].eax >> 8) & 0xf, 15);
		}
		if (e[i].function == 0x80000001)
			ext = (e[i].edx & (1u << 29)) && (e[i].edx & (1u << 20)) &&
			      (e[i].edx & (1u << 11)) && !(e[i].edx & (1u << 27));
	}
	CHECK(amd && l1 && ext);
	guest_destroy(&g);
}

/* The LAPIC timer interrupts a HLT loop through the IDT; the handler EOIs and IRETs. */
TEST(soft_lapic_timer_interrupt)
{
	struct guest g;
	struct accel_vcpu *v;
	struct accel_exit ex;
	const uint8_t main_code[] = {
		MOVD(0xfee000f0, 0x1ff),	/* SVR: enable */
		MOVD(0xfee003e0, 0xb),		/* divide by 1 */
		MOVD(0xfee00320, 0x40),		/* LVT timer: one-shot, vector 0x40 */
		MOVD(0xfee00380, 2000000),	/* 2 ms */
		0xfb,				/* sti */
		0xf4,				/* loop: hlt */
		0x83, 0x3d, 0x00, 0x05, 0x00, 0x00, 0x01,	/* cmp dword [0x500], 1 */
		0x75, 0xf6,			/* jne loop */
		0xb0, 0x99, 0xe6, 0x80,		/* mov al, 0x99; out 0x80, al */
		0xfa, 0xf4,			/* cli; hlt */
	};
	const uint8_t handler[] = {
		MOVD(0x500, 1),
		MOVD(0xfee000b0, 0),		/* EOI */
		0xcf,				/* iret */
	};
	struct timespec t0, t1;
	double ms;

	CHECK_EQ_U64(guest_create(&g, 1), 0);
	CHECK_EQ_U64(accel_vcpu_create(g.acc, 0, &v), 0);
	put(&g, 0x2000, main_code, sizeof main_code);
	put(&g, 0x3000, handler, sizeof handler);
	idt_gate(&g, 0x40, 0x3000);
	flat32(&g, v, 0x2000);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK_EQ_U64(run_until_stop(v, &ex), ACCEL_EXIT_HALTED);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
	CHECK_EQ_U64(*(uint32_t *)(g.mem + 0x500), 1);
	CHECK_EQ_U64(g.nport80, 1);
	CHECK_EQ_U64(g.port80[0], 0x99);
	CHECK(ms >= 1.9 && ms < 5000);
	if (ex.reason == ACCEL_EXIT_ERROR)
		printf("    %s\n", ex.msg);
	accel_vcpu_destroy(v);
	guest_destroy(&g);
}

/* PIT channel 0 (mode 2) through the 8259 in virtual wire mode: count three IRQ0s. */
TEST(soft_pit_irq0_through_pic)
{
	struct guest g;
	struct accel_vcpu *v;
	struct accel_exit ex;
	const uint8_t main_code[] = {
		0xb0, 0x11, 0xe6, 0x20,		/* ICW1 */
		0xb0, 0x30, 0xe6, 0x21,		/* ICW2: vectors 0x30 */
		0xb0, 0x04, 0xe6, 0x21,		/* ICW3 */
		0xb0, 0x01, 0xe6, 0x21,		/* ICW4 */
		0xb0, 0xfe, 0xe6, 0x21,		/* unmask IRQ0 only */
		0xb0, 0x34, 0xe6, 0x43,		/* ch0, lo/hi, mode 2 */
		0xb0, 0xa9, 0xe6, 0x40,		/* 1193 = 0x4a9: ~1 ms */
		0xb0, 0x04, 0xe6, 0x40,
		0xfb,				/* sti */
		0xf4,				/* loop: hlt */
		0x83, 0x3d, 0x00, 0x05, 0x00, 0x00, 0x03,	/* cmp dword [0x500], 3 */
		0x72, 0xf6,			/* jb loop */
		0xfa, 0xf4,			/* cli; hlt */
	};
	const uint8_t handler[] = {
		0xff, 0x05, 0x00, 0x05, 0x00, 0x00,	/* inc dword [0x500] */
		0xb0, 0x20, 0xe6, 0x20,		/* EOI */
		0xcf,
	};

	CHECK_EQ_U64(guest_create(&g, 1), 0);
	CHECK_EQ_U64(accel_vcpu_create(g.acc, 0, &v), 0);
	put(&g, 0x2000, main_code, sizeof main_code);
	put(&g, 0x3000, handler, sizeof handler);
	idt_gate(&g, 0x30, 0x3000);
	flat32(&g, v, 0x2000);
	CHECK_EQ_U64(run_until_stop(v, &ex), ACCEL_EXIT_HALTED);
	if (ex.reason == ACCEL_EXIT_ERROR)
		printf("    %s\n", ex.msg);
	CHECK_EQ_U64(*(uint32_t *)(g.mem + 0x500), 3);
	CHECK_EQ_U64(g.other_pio, 0);
	accel_vcpu_destroy(v);
	guest_destroy(&g);
}

/* A kick makes a vCPU sleeping in HLT (IF=1, nothing pending) return KICKED. */
static void *kicker(void *arg)
{
	struct timespec ts = { 0, 20 * 1000000 };

	nanosleep(&ts, NULL);
	accel_vcpu_kick(arg);
	return NULL;
}

TEST(soft_kick_wakes_hlt)
{
	struct guest g;
	struct accel_vcpu *v;
	struct accel_exit ex;
	pthread_t t;
	static const uint8_t code[] = { 0xfb, 0xf4, 0xeb, 0xfd };	/* sti; hlt; jmp hlt */

	CHECK_EQ_U64(guest_create(&g, 1), 0);
	CHECK_EQ_U64(accel_vcpu_create(g.acc, 0, &v), 0);
	put(&g, 0x2000, code, sizeof code);
	flat32(&g, v, 0x2000);
	pthread_create(&t, NULL, kicker, v);
	CHECK_EQ_U64(accel_vcpu_run(v, &ex), 0);
	CHECK_EQ_U64(ex.reason, ACCEL_EXIT_KICKED);
	pthread_join(t, NULL);
	accel_vcpu_destroy(v);
	guest_destroy(&g);
}

struct ap_arg {
	struct guest *g;
	enum accel_exit_reason reason;
	int created;
};

static void *ap_thread(void *arg)
{
	struct ap_arg *a = arg;
	struct accel_vcpu *v;
	struct accel_exit ex;

	a->reason = ACCEL_EXIT_ERROR;
	if (accel_vcpu_create(a->g->acc, 1, &v))
		return NULL;
	accel_vcpu_set_wait_for_sipi(v, true);
	__atomic_store_n(&a->created, 1, __ATOMIC_SEQ_CST);
	/* the first run reports the AP as halted (waiting for SIPI) */
	if (accel_vcpu_run(v, &ex) || ex.reason != ACCEL_EXIT_HALTED)
		return NULL;
	/* then it wakes on SIPI (reported once as KICKED) and runs to cli; hlt */
	a->reason = run_until_stop(v, &ex);
	accel_vcpu_destroy(v);
	return NULL;
}

TEST(soft_smp_init_sipi)
{
	struct guest g;
	struct accel_vcpu *v;
	struct accel_exit ex;
	struct ap_arg a = { .g = &g };
	pthread_t t;
	const uint8_t bsp[] = {
		MOVD(0xfee000f0, 0x1ff),
		MOVD(0xfee00310, 0x01000000),	/* destination: APIC 1 */
		MOVD(0xfee00300, 0x00004500),	/* INIT, assert */
		MOVD(0xfee00300, 0x00008500),	/* INIT, de-assert (level) */
		MOVD(0xfee00300, 0x00004608),	/* SIPI, vector 8: 0x8000 */
		0x80, 0x3d, 0x00, 0x06, 0x00, 0x00, 0x01,	/* wait: cmp byte [0x600], 1 */
		0x75, 0xf7,			/* jne wait */
		0xfa, 0xf4,
	};
	/* AP, real mode at 0800:0000: mov byte [0x600], 1 (DS=0); cli; hlt */
	static const uint8_t ap[] = { 0xc6, 0x06, 0x00, 0x06, 0x01, 0xfa, 0xf4 };

	CHECK_EQ_U64(guest_create(&g, 2), 0);
	put(&g, 0x2000, bsp, sizeof bsp);
	put(&g, 0x8000, ap, sizeof ap);
	pthread_create(&t, NULL, ap_thread, &a);
	while (!__atomic_load_n(&a.created, __ATOMIC_SEQ_CST))
		sched_yield();
	CHECK_EQ_U64(accel_vcpu_create(g.acc, 0, &v), 0);
	flat32(&g, v, 0x2000);
	CHECK_EQ_U64(run_until_stop(v, &ex), ACCEL_EXIT_HALTED);
	if (ex.reason == ACCEL_EXIT_ERROR)
		printf("    %s\n", ex.msg);
	pthread_join(t, NULL);
	CHECK_EQ_U64(a.reason, ACCEL_EXIT_HALTED);
	CHECK_EQ_U64(g.mem[0x600], 1);
	accel_vcpu_destroy(v);
	guest_destroy(&g);
}

/* The LAPIC timer in TSC-deadline mode, armed with RDTSC + WRMSR 0x6e0. */
TEST(soft_tsc_deadline_interrupt)
{
	struct guest g;
	struct accel_vcpu *v;
	struct accel_exit ex;
	const uint8_t main_code[] = {
		MOVD(0xfee000f0, 0x1ff),
		MOVD(0xfee00320, 0x40041),	/* LVT timer: TSC-deadline, vector 0x41 */
		0xb9, 0x10, 0x00, 0x00, 0x00,	/* mov ecx, 0x10 (TSC) */
		0x31, 0xc0,			/* xor eax, eax */
		0xba, 0x00, 0x00, 0x00, 0x40,	/* mov edx, 0x40000000: move the TSC far ahead */
		0x0f, 0x30,			/* wrmsr */
		0x0f, 0x31,			/* rdtsc */
		0x89, 0x15, 0x0c, 0x05, 0x00, 0x00,	/* mov [0x50c], edx */
		0x05, 0x40, 0x42, 0x0f, 0x00,	/* add eax, 1000000 (1 ms at 1 GHz) */
		0x83, 0xd2, 0x00,		/* adc edx, 0 */
		0xb9, 0xe0, 0x06, 0x00, 0x00,	/* mov ecx, 0x6e0 */
		0x0f, 0x30,			/* wrmsr */
		0xfb,				/* sti */
		0xf4,				/* loop: hlt */
		0x83, 0x3d, 0x00, 0x05, 0x00, 0x00, 0x01,	/* cmp dword [0x500], 1 */
		0x75, 0xf6,			/* jne loop */
		0x0f, 0x32,			/* rdmsr: the deadline reads 0 once fired */
		0xa3, 0x04, 0x05, 0x00, 0x00,	/* mov [0x504], eax */
		0xfa, 0xf4,
	};
	const uint8_t handler[] = {
		MOVD(0x500, 1),
		MOVD(0xfee000b0, 0),
		0xcf,
	};

	CHECK_EQ_U64(guest_create(&g, 1), 0);
	CHECK_EQ_U64(accel_vcpu_create(g.acc, 0, &v), 0);
	put(&g, 0x2000, main_code, sizeof main_code);
	put(&g, 0x3000, handler, sizeof handler);
	memset(g.mem + 0x504, 0xff, 4);
	idt_gate(&g, 0x41, 0x3000);
	flat32(&g, v, 0x2000);
	CHECK_EQ_U64(run_until_stop(v, &ex), ACCEL_EXIT_HALTED);
	if (ex.reason == ACCEL_EXIT_ERROR)
		printf("    %s\n", ex.msg);
	CHECK_EQ_U64(*(uint32_t *)(g.mem + 0x500), 1);
	CHECK_EQ_U64(*(uint32_t *)(g.mem + 0x504), 0);
	CHECK_EQ_U64(*(uint32_t *)(g.mem + 0x50c), 0x40000000);
	accel_vcpu_destroy(v);
	guest_destroy(&g);
}

static void *assert_gsi16(void *arg)
{
	struct guest *g = arg;
	struct timespec ts = { 0, 20 * 1000000 };

	nanosleep(&ts, NULL);
	accel_irq_line(g->acc, 16, true);
	nanosleep(&ts, NULL);
	accel_msi(g->acc, 0xfee00000, 0x62);	/* fixed, vector 0x62, APIC 0 */
	return NULL;
}

/*
 * A level-triggered IOAPIC pin raised by another thread wakes the HLT; the handler
 * services the "device" (port 0x81 lowers the line) and EOIs, which must clear remote IRR.
 * Then an MSI arrives.
 */
TEST(soft_ioapic_level_and_msi)
{
	struct guest g;
	struct accel_vcpu *v;
	struct accel_exit ex;
	pthread_t t;
	const uint8_t main_code[] = {
		MOVD(0xfee000f0, 0x1ff),
		MOVD(0xfec00000, 0x31),		/* IOREGSEL: pin 16 high dword */
		MOVD(0xfec00010, 0),		/* destination APIC 0 */
		MOVD(0xfec00000, 0x30),		/* pin 16 low dword */
		MOVD(0xfec00010, 0xa052),	/* level, active low, vector 0x52 */
		0xfb,
		0xf4,				/* loop: hlt */
		0x83, 0x3d, 0x08, 0x05, 0x00, 0x00, 0x01,	/* cmp dword [0x508], 1 */
		0x75, 0xf6,			/* jne loop */
		0xa1, 0x10, 0x00, 0xc0, 0xfe,	/* mov eax, [0xfec00010]: RTE low */
		0xa3, 0x04, 0x05, 0x00, 0x00,	/* mov [0x504], eax */
		0xfa, 0xf4,
	};
	const uint8_t level_handler[] = {
		0xff, 0x05, 0x00, 0x05, 0x00, 0x00,	/* inc dword [0x500] */
		0xe6, 0x81,			/* out 0x81, al: device lowers GSI 16 */
		MOVD(0xfee000b0, 0),
		0xcf,
	};
	const uint8_t msi_handler[] = {
		0xff, 0x05, 0x08, 0x05, 0x00, 0x00,	/* inc dword [0x508] */
		MOVD(0xfee000b0, 0),
		0xcf,
	};

	CHECK_EQ_U64(guest_create(&g, 1), 0);
	CHECK_EQ_U64(accel_vcpu_create(g.acc, 0, &v), 0);
	put(&g, 0x2000, main_code, sizeof main_code);
	put(&g, 0x3000, level_handler, sizeof level_handler);
	put(&g, 0x3100, msi_handler, sizeof msi_handler);
	idt_gate(&g, 0x52, 0x3000);
	idt_gate(&g, 0x62, 0x3100);
	flat32(&g, v, 0x2000);
	pthread_create(&t, NULL, assert_gsi16, &g);
	CHECK_EQ_U64(run_until_stop(v, &ex), ACCEL_EXIT_HALTED);
	pthread_join(t, NULL);
	if (ex.reason == ACCEL_EXIT_ERROR)
		printf("    %s\n", ex.msg);
	CHECK_EQ_U64(*(uint32_t *)(g.mem + 0x500), 1);	/* once: the line went low before EOI */
	CHECK_EQ_U64(*(uint32_t *)(g.mem + 0x508), 1);
	CHECK_EQ_U64(*(uint32_t *)(g.mem + 0x504), 0xa052);	/* remote IRR clear */
	accel_vcpu_destroy(v);
	guest_destroy(&g);
}

/*
 * NMIs: two self-NMIs sent back to back are both delivered (one latched behind the other);
 * three more sent from inside the first handler, with one already waiting, merge into it.
 */
TEST(soft_nmi_latch)
{
	struct guest g;
	struct accel_vcpu *v;
	struct accel_exit ex;
	const uint8_t main_code[] = {
		MOVD(0xfee000f0, 0x1ff),
		MOVD(0xfee00300, 0x44400),	/* NMI to self */
		MOVD(0xfee00300, 0x44400),
		0xb9, 0x80, 0x96, 0x98, 0x00,	/* mov ecx, 10000000 */
		0xff, 0xc9,			/* dec ecx */
		0x75, 0xfc,			/* jnz dec */
		0xfa, 0xf4,
	};
	const uint8_t handler[] = {
		0xff, 0x05, 0x00, 0x05, 0x00, 0x00,	/* inc dword [0x500] */
		0x83, 0x3d, 0x00, 0x05, 0x00, 0x00, 0x01,	/* cmp dword [0x500], 1 */
		0x75, 0x1e,			/* jne out */
		MOVD(0xfee00300, 0x44400),
		MOVD(0xfee00300, 0x44400),
		MOVD(0xfee00300, 0x44400),
		0xcf,				/* out: iret */
	};

	CHECK_EQ_U64(guest_create(&g, 1), 0);
	CHECK_EQ_U64(accel_vcpu_create(g.acc, 0, &v), 0);
	put(&g, 0x2000, main_code, sizeof main_code);
	put(&g, 0x3000, handler, sizeof handler);
	idt_gate(&g, 2, 0x3000);
	flat32(&g, v, 0x2000);
	CHECK_EQ_U64(run_until_stop(v, &ex), ACCEL_EXIT_HALTED);
	if (ex.reason == ACCEL_EXIT_ERROR)
		printf("    %s\n", ex.msg);
	CHECK_EQ_U64(*(uint32_t *)(g.mem + 0x500), 2);
	accel_vcpu_destroy(v);
	guest_destroy(&g);
}
