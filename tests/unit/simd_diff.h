/*
 * simd_diff.h: the differential harness shared by test_emu_x87.c and test_emu_sse.c. An
 * instruction runs natively from an executable page (a trampoline loads an FXSAVE image, the
 * GPRs but RSP and RFLAGS, runs it and stores everything back; RBX points into a buffer
 * mapped at the same address natively and in the guest) and through emu_step() in 64-bit
 * mode. The x87/MMX/XMM registers, FCW/FSW/abridged FTW, MXCSR, GPRs, arithmetic flags and
 * the buffer must match bit for bit; a native SIGFPE must be #MF/#XM in the guest and a
 * SIGSEGV (misaligned operand) #GP. FOP/FIP/FDP differ by construction and are not compared.
 */
#ifndef KHYVE_SIMD_DIFF_H
#define KHYVE_SIMD_DIFF_H

#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <Zydis/Zydis.h>
#include "unit.h"
#include "x86/emu/emu.h"

#define SD_BUF_ADDR 0x30000000ull
#define SD_BUF_SIZE 0x2000
#define SD_MEM (SD_BUF_ADDR + 0x1000)	/* RBX */
#define SD_LOW 0x100000
#define SD_CODE 0x10000
#define SD_HANDLERS 0x20000
#define SD_STACK 0x80000
#define SD_ARITH 0x8d5ull

struct sd_regs {
	uint64_t gpr[16];
	uint64_t rflags;
	uint64_t pad;
	uint8_t fx[512] __attribute__((aligned(16)));
};

extern const uint8_t sd_tramp_start[], sd_tramp_insn[], sd_tramp_end[];
__asm__(".text\n"
	".globl sd_tramp_start\n"
	"sd_tramp_start:\n"
	"push %rbx\npush %rbp\npush %r12\npush %r13\npush %r14\npush %r15\n"
	"push %rdi\n"
	"fxrstor64 144(%rdi)\n"
	"pushq 128(%rdi)\npopfq\n"
	"mov 0(%rdi),%rax\nmov 8(%rdi),%rcx\nmov 16(%rdi),%rdx\nmov 24(%rdi),%rbx\n"
	"mov 40(%rdi),%rbp\nmov 48(%rdi),%rsi\nmov 64(%rdi),%r8\nmov 72(%rdi),%r9\n"
	"mov 80(%rdi),%r10\nmov 88(%rdi),%r11\nmov 96(%rdi),%r12\nmov 104(%rdi),%r13\n"
	"mov 112(%rdi),%r14\nmov 120(%rdi),%r15\nmov 56(%rdi),%rdi\n"
	".globl sd_tramp_insn\n"
	"sd_tramp_insn:\n"
	".fill 16,1,0x90\n"
	"xchg %rdi,(%rsp)\n"
	"mov %rax,0(%rdi)\nmov %rcx,8(%rdi)\nmov %rdx,16(%rdi)\nmov %rbx,24(%rdi)\n"
	"mov %rbp,40(%rdi)\nmov %rsi,48(%rdi)\nmov %r8,64(%rdi)\nmov %r9,72(%rdi)\n"
	"mov %r10,80(%rdi)\nmov %r11,88(%rdi)\nmov %r12,96(%rdi)\nmov %r13,104(%rdi)\n"
	"mov %r14,112(%rdi)\nmov %r15,120(%rdi)\n"
	"pushfq\npopq 128(%rdi)\ncld\n"
	"popq 56(%rdi)\n"
	"fxsave64 144(%rdi)\n"
	"fninit\n"
	"pop %r15\npop %r14\npop %r13\npop %r12\npop %rbp\npop %rbx\n"
	"ret\n"
	".globl sd_tramp_end\n"
	"sd_tramp_end:\n");

static uint8_t *sd_code, *sd_nbuf, *sd_low, *sd_ebuf;
static struct emu_machine *sd_machine;
static struct emu_cpu *sd_cpu;
static struct emu_state sd_base;
static sigjmp_buf sd_jmp;
static uint64_t sd_rng = 0x2545f4914f6cdd1dull;
static unsigned sd_forms, sd_cases, sd_diffs, sd_faults;
/* A buffer range not compared (x87 instruction/data pointers stored by FNSTENV/FNSAVE). */
static unsigned sd_ign_off, sd_ign_len;

static uint64_t sd_rnd(void)
{
	sd_rng ^= sd_rng << 13;
	sd_rng ^= sd_rng >> 7;
	sd_rng ^= sd_rng << 17;
	return sd_rng;
}

static uint8_t *sd_page(void *o, uint64_t gpa, bool w)
{
	if (gpa < SD_LOW)
		return sd_low + (gpa & ~0xfffull);
	if (gpa >= SD_BUF_ADDR && gpa < SD_BUF_ADDR + SD_BUF_SIZE)
		return sd_ebuf + ((gpa - SD_BUF_ADDR) & ~0xfffull);
	return NULL;
}

static int sd_mmio(void *o, uint64_t gpa, unsigned size, bool w, uint64_t *v)
{
	if (!w)
		*v = ~0ull;
	return 0;
}

static int sd_pio(void *o, uint16_t port, unsigned size, bool w, uint32_t *v)
{
	if (!w)
		*v = ~0u;
	return 0;
}

static int sd_ack(void *o)
{
	return -1;
}

/* CPUID leaf 1 ECX the fake bus offers (tests turn bits off to see #UD). */
/* SSE3 PCLMULQDQ SSSE3 CX16 SSE4.1 SSE4.2 POPCNT AES */
#define SD_ECX1_ALL (1u << 0 | 1u << 1 | 1u << 9 | 1u << 13 | 1u << 19 | 1u << 20 | 1u << 23 | \
		     1u << 25)
static uint32_t sd_ecx1 = SD_ECX1_ALL;

static void sd_cpuid(void *o, uint32_t leaf, uint32_t sub, uint32_t out[4])
{
	memset(out, 0, 16);
	if (leaf == 1) {
		out[0] = 0xf00;
		out[2] = sd_ecx1;
		out[3] = 1u << 0 | 1u << 4 | 1u << 5 | 1u << 6 | 1u << 8 | 1u << 9 | 1u << 15 |
			 1u << 23 | 1u << 24 | 1u << 25 | 1u << 26;
	} else if (leaf == 0x80000001) {
		out[3] = 1u << 11 | 1u << 20 | 1u << 29;
	} else if (leaf == 0x80000000) {
		out[0] = 0x80000008;
	} else if (leaf == 0x80000008) {
		out[0] = 0x3028;
	}
}

static int sd_msr(void *o, uint32_t i, bool w, uint64_t *v)
{
	return -1;
}

static uint64_t sd_tsc(void *o)
{
	return 0;
}

static const struct emu_bus sd_bus = {
	.page_ptr = sd_page, .mmio = sd_mmio, .pio = sd_pio, .intr_ack = sd_ack,
	.cpuid = sd_cpuid, .msr = sd_msr, .tsc = sd_tsc,
};

static void sd_put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static uint32_t sd_trap_mxcsr;

static void sd_on_signal(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;

	if (sig == SIGFPE)
		sd_trap_mxcsr = uc->uc_mcontext.fpregs->mxcsr;
	siglongjmp(sd_jmp, sig);
}

/* 64-bit flat long mode, OSFXSR and OSXMMEXCPT, CR0.NE: as test_emu_diff.c. */
static void sd_init(void)
{
	struct emu_state *st = &sd_base;
	struct sigaction sa;

	if (sd_cpu)
		return;
	sd_code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	sd_nbuf = mmap((void *)SD_BUF_ADDR, SD_BUF_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	sd_low = calloc(1, SD_LOW);
	sd_ebuf = aligned_alloc(4096, SD_BUF_SIZE);
	if (sd_code == MAP_FAILED || sd_nbuf != (void *)SD_BUF_ADDR || !sd_low || !sd_ebuf) {
		fprintf(stderr, "simd_diff: set-up failed\n");
		exit(1);
	}
	memcpy(sd_code, sd_tramp_start, (size_t)(sd_tramp_end - sd_tramp_start));
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sd_on_signal;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGFPE, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);

	sd_put64(sd_low + 0x1000, 0x2000 | 3);
	sd_put64(sd_low + 0x2000, 0x3000 | 3);
	for (uint64_t i = 0; i < 512; i++)
		sd_put64(sd_low + 0x3000 + i * 8, (i << 21) | 0x83);
	sd_put64(sd_low + 0x4000 + 8, 0x00209a0000000000ull);
	sd_put64(sd_low + 0x4000 + 16, 0x00cf92000000ffffull);
	for (int v = 0; v < 32; v++) {
		uint64_t h = SD_HANDLERS + v;
		uint8_t *g = sd_low + 0x5000 + v * 16;

		sd_put64(g, (h & 0xffff) | (0x08ull << 16) | (0x8eull << 40) |
				((h >> 16) & 0xffff) << 48);
		sd_put64(g + 8, h >> 32);
		sd_low[SD_HANDLERS + v] = 0xf4;
	}
	emu_reset_state(st);
	st->cr0 = 0x80000031;
	st->cr3 = 0x1000;
	st->cr4 = 0x620;
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
	st->rip = SD_CODE;
	st->rflags = 0x2;
	st->gpr[EMU_RSP] = SD_STACK;
	sd_machine = emu_machine_create();
	sd_cpu = emu_cpu_create(sd_machine, &sd_bus);
}

/* Native run: 0, or the signal number. */
static int sd_native(const uint8_t *insn, unsigned len, struct sd_regs *r)
{
	void (*fn)(struct sd_regs *) = (void (*)(struct sd_regs *))(void *)sd_code;
	unsigned off = (unsigned)(sd_tramp_insn - sd_tramp_start);
	volatile uint32_t mx;
	volatile uint16_t cw;
	int sig;

	memset(sd_code + off, 0x90, 16);
	memcpy(sd_code + off, insn, len);
	__builtin___clear_cache((char *)sd_code, (char *)sd_code + 4096);
	__asm__ volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(mx), "=m"(cw));
	sig = sigsetjmp(sd_jmp, 1);
	if (!sig)
		fn(r);
	__asm__ volatile("fninit\n\tldmxcsr %0\n\tfldcw %1" : : "m"(mx), "m"(cw));
	return sig;
}

/* Interpreter run: 0, 1 + vector for an exception, 100 + exit otherwise. */
static int sd_emu(const uint8_t *insn, unsigned len, struct sd_regs *r)
{
	struct emu_state st = sd_base;
	enum emu_exit e;

	memset(sd_low + SD_CODE, 0x90, 32);
	memcpy(sd_low + SD_CODE, insn, len);
	emu_machine_invalidate(sd_machine, SD_CODE, 32);
	memcpy(st.gpr, r->gpr, sizeof(st.gpr));
	st.gpr[EMU_RSP] = SD_STACK;
	st.rflags = r->rflags;
	memcpy(st.fxsave, r->fx, 512);
	emu_set_state(sd_cpu, &st);
	e = emu_step(sd_cpu);
	emu_get_state(sd_cpu, &st);
	memcpy(r->gpr, st.gpr, sizeof(st.gpr));
	r->rflags = st.rflags;
	memcpy(r->fx, st.fxsave, 512);
	if (e != EMU_EXIT_BUDGET)
		return 100 + e;
	if (st.rip >= SD_HANDLERS && st.rip < SD_HANDLERS + 32)
		return 1 + (int)(st.rip - SD_HANDLERS);
	if (st.rip != SD_CODE + len)
		return 99;
	return 0;
}

static void sd_hex(char *out, const uint8_t *b, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		sprintf(out + 3 * i, "%02x ", b[i]);
}

/*
 * Run one case both ways from the same start (regs, buffer contents in sd_nbuf); compare.
 * Returns true when they agree.
 */
static bool sd_case(const char *name, const uint8_t *insn, unsigned len, const struct sd_regs *in)
{
	static struct sd_regs n, e;
	static uint8_t start[SD_BUF_SIZE];
	int rn, re, want;
	bool ok = true;
	char what[160] = "";

	memcpy(start, sd_nbuf, SD_BUF_SIZE);
	memcpy(sd_ebuf, start, SD_BUF_SIZE);
	n = *in;
	e = *in;
	rn = sd_native(insn, len, &n);
	re = sd_emu(insn, len, &e);
	sd_cases++;
	want = rn == SIGFPE ? -1 : rn == SIGSEGV || rn == SIGBUS ? 1 + 13 : 0;
	if (rn) {
		sd_faults++;
		if (!(want == -1 ? (re == 1 + 16 || re == 1 + 19) : re == want))
			snprintf(what, sizeof what, "native signal %d, interpreter %d", rn, re);
		else if (re == 1 + 19 && memcmp(&sd_trap_mxcsr, e.fx + 24, 4))
			snprintf(what, sizeof what, "#XM: MXCSR native %08x, interpreter %08x",
				 sd_trap_mxcsr, *(uint32_t *)(e.fx + 24));
		goto out;
	}
	if (re) {
		snprintf(what, sizeof what, "interpreter %d (%s), native ran", re,
			 re >= 100 ? emu_last_error(sd_cpu) : "exception");
		goto out;
	}
	for (int i = 0; i < 16; i++)
		if (i != EMU_RSP && n.gpr[i] != e.gpr[i]) {
			snprintf(what, sizeof what, "gpr %d: native %llx, interpreter %llx", i,
				 (unsigned long long)n.gpr[i], (unsigned long long)e.gpr[i]);
			goto out;
		}
	if ((n.rflags ^ e.rflags) & SD_ARITH) {
		snprintf(what, sizeof what, "rflags: native %llx, interpreter %llx",
			 (unsigned long long)n.rflags, (unsigned long long)e.rflags);
		goto out;
	}
	if (memcmp(n.fx, e.fx, 6) || memcmp(n.fx + 24, e.fx + 24, 4)) {
		snprintf(what, sizeof what, "fcw/fsw/ftw/mxcsr: native %04x %04x %02x %08x, "
			 "interpreter %04x %04x %02x %08x",
			 n.fx[0] | n.fx[1] << 8, n.fx[2] | n.fx[3] << 8, n.fx[4],
			 *(uint32_t *)(n.fx + 24), e.fx[0] | e.fx[1] << 8,
			 e.fx[2] | e.fx[3] << 8, e.fx[4], *(uint32_t *)(e.fx + 24));
		goto out;
	}
	for (int i = 0; i < 8; i++)
		if (memcmp(n.fx + 32 + 16 * i, e.fx + 32 + 16 * i, 10)) {
			snprintf(what, sizeof what, "st%d differs", i);
			goto out;
		}
	if (memcmp(n.fx + 160, e.fx + 160, 256)) {
		snprintf(what, sizeof what, "xmm registers differ");
		goto out;
	}
	if (sd_ign_len)
		memcpy(sd_ebuf + sd_ign_off, sd_nbuf + sd_ign_off, sd_ign_len);
	if (memcmp(sd_nbuf, sd_ebuf, SD_BUF_SIZE)) {
		snprintf(what, sizeof what, "memory differs");
		goto out;
	}
out:
	if (what[0]) {
		char hex[64];

		ok = false;
		sd_diffs++;
		if (sd_diffs <= 20) {
			sd_hex(hex, insn, len);
			printf("    %s [%s]: %s\n", name, hex, what);
		}
	}
	memcpy(sd_nbuf, start, SD_BUF_SIZE);
	return ok;
}

/* Interesting 80-bit values: zeros, denormals, pseudo-denormals, unnormals, infinities,
 * NaNs (quiet and signalling), integers, and random normals. */
static void sd_f80(uint8_t *p)
{
	uint64_t m = sd_rnd();
	uint16_t se = (uint16_t)(sd_rnd() & 0x8000);

	switch (sd_rnd() % 12) {
	case 0: m = 0; break;						/* zero */
	case 1: m &= ~(1ull << 63); break;				/* denormal */
	case 2: m |= 1ull << 63; break;				/* pseudo-denormal */
	case 3: m = 1ull << 63; se |= 0x7fff; break;			/* infinity */
	case 4: m |= 3ull << 62; se |= 0x7fff; break;			/* QNaN */
	case 5: m = (m & ~(3ull << 62)) | (1ull << 63) | 1; se |= 0x7fff; break; /* SNaN */
	case 6: m &= ~(1ull << 63); se |= (uint16_t)(1 + sd_rnd() % 0x7ffe); break; /* unnormal */
	case 7: m = (sd_rnd() % 1000) << 54 | 1ull << 63; se |= 0x3fff + 9; break;
	case 8: se |= (uint16_t)(0x3fff + (sd_rnd() % 130) - 65); m |= 1ull << 63; break;
	case 9: se |= (uint16_t)(sd_rnd() & 0x7fff); m |= 1ull << 63; break;
	default: se |= (uint16_t)(0x3fff + (sd_rnd() % 40) - 20); m |= 1ull << 63; break;
	}
	if ((se & 0x7fff) == 0x7fff && !(m << 1) && sd_rnd() % 2)
		m = 1ull << 63;
	memcpy(p, &m, 8);
	memcpy(p + 8, &se, 2);
}

/* Interesting 32-/64-bit floats and integers for XMM lanes and memory. */
static void sd_lane(uint8_t *p, unsigned size)
{
	static const uint32_t f32[] = {
		0, 0x80000000, 0x00000001, 0x807fffff, 0x7f800000, 0xff800000, 0x7fc00000,
		0x7fa00000, 0xffc00001, 0x3f800000, 0xbf800000, 0x7f7fffff, 0x00800000,
		0x4f000000, 0xcf000000, 0x3f000000,
	};
	static const uint64_t f64[] = {
		0, 0x8000000000000000ull, 1, 0x800fffffffffffffull, 0x7ff0000000000000ull,
		0xfff0000000000000ull, 0x7ff8000000000000ull, 0x7ff4000000000000ull,
		0x3ff0000000000000ull, 0xbff0000000000000ull, 0x7fefffffffffffffull,
		0x0010000000000000ull, 0x43e0000000000000ull, 0xc3e0000000000000ull,
		0x41dfffffffc00000ull, 0x3fe0000000000000ull,
	};
	uint64_t v = sd_rnd();
	unsigned k = sd_rnd() % 4;

	if (size == 4 && k == 0)
		v = f32[sd_rnd() % 16];
	else if (size == 8 && k == 0)
		v = f64[sd_rnd() % 16];
	else if (k == 1)
		v = sd_rnd() % 2 ? (sd_rnd() & 0xff) : ~0ull << (sd_rnd() % 64);
	else if (k == 2 && size == 4)
		v = (uint32_t)((0x3f800000u + (uint32_t)(sd_rnd() % 0x08000000) - 0x04000000) |
			       (sd_rnd() % 2) << 31);
	else if (k == 2 && size == 8)
		v = 0x3ff0000000000000ull + (sd_rnd() % 0x0400000000000000ull) -
		    0x0200000000000000ull;
	memcpy(p, &v, size);
}

/* A random start: x87 stack with random TOP/tags/values, FCW (precision, rounding, masks
 * mostly set), XMM lanes of one width, MXCSR (rounding, FTZ/DAZ, masks mostly set), GPRs,
 * flags, and the buffer. `unmask` lets exceptions be unmasked in FCW/MXCSR. */
static void sd_random_start(struct sd_regs *r, unsigned lane, bool unmask)
{
	uint16_t fcw = 0x037f, fsw;
	uint32_t mx = 0x1f80;
	unsigned top = sd_rnd() % 8;

	memset(r, 0, sizeof(*r));
	fcw = (uint16_t)((fcw & ~0xf00u) | (uint16_t)((sd_rnd() % 4) << 10) |
			 (uint16_t)((sd_rnd() % 3 == 0 ? 0 : sd_rnd() % 2 ? 2 : 3) << 8));
	if (unmask && sd_rnd() % 3 == 0)
		fcw &= (uint16_t)~(1u << (sd_rnd() % 6));
	fsw = (uint16_t)(top << 11 | (sd_rnd() & 0x4700));
	if (sd_rnd() % 4 == 0)
		fsw |= (uint16_t)(sd_rnd() & 0x3f & fcw);	/* sticky flags, masked: not pending */
	memcpy(r->fx, &fcw, 2);
	memcpy(r->fx + 2, &fsw, 2);
	r->fx[4] = (uint8_t)(sd_rnd() % 3 == 0 ? 0xff : sd_rnd());
	for (int i = 0; i < 8; i++)
		sd_f80(r->fx + 32 + 16 * i);
	for (int i = 0; i < 16; i++)
		for (unsigned b = 0; b < 16; b += lane)
			sd_lane(r->fx + 160 + 16 * i + b, lane);
	mx |= (uint32_t)(sd_rnd() % 4) << 13;
	if (sd_rnd() % 4 == 0)
		mx |= 1u << 15;
	if (sd_rnd() % 4 == 0)
		mx |= 1u << 6;
	if (unmask && sd_rnd() % 3 == 0)
		mx &= ~(1u << (7 + sd_rnd() % 6));
	if (sd_rnd() % 4 == 0)
		mx |= (uint32_t)(sd_rnd() & 0x3f);
	memcpy(r->fx + 24, &mx, 4);
	for (int i = 0; i < 16; i++)
		r->gpr[i] = sd_rnd() % 3 ? sd_rnd() : (sd_rnd() & 0xffff);
	r->gpr[EMU_RBX] = SD_MEM;
	r->rflags = 0x2 | (sd_rnd() & SD_ARITH);
	for (unsigned b = 0; b < SD_BUF_SIZE; b += lane)
		sd_lane(sd_nbuf + b, lane);
	for (unsigned b = 0x1000 - 128; b < 0x1000 + 256; b += 16)
		if (sd_rnd() % 3 == 0)
			sd_f80(sd_nbuf + b);
}

#endif
