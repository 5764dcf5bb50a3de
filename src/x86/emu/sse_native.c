/*
 * sse_native.c: x87, MMX, SSE, SSE2, SSE3 and SSSE3 instructions (SDM Vol. 1 ch. 8-12,
 * Vol. 2), and SSE4.1/4.2, POPCNT, AES and PCLMULQDQ when the guest's CPUID offers them
 * (#UD for any set it does not offer), executed on the host's own units so that results, flags and
 * exception bits are bit for bit an x86 CPU's. At decode time each form is rewritten into a
 * native template (the guest's bytes without segment/address-size prefixes, any memory
 * operand turned into [reg] on a host buffer) in an executable arena; at run time the
 * guest's state (FXSAVE image, or only MXCSR and XMMs for pure SSE forms), GPRs and
 * arithmetic flags are loaded, the template runs, and the state comes back.
 * SSE runs under the guest's MXCSR: an unmasked exception traps on the host (SIGFPE, caught
 * here only for faults inside the template arena) and becomes #XM (#UD without
 * CR4.OSXMMEXCPT) with the trap's MXCSR and the destination unchanged. x87 runs under the
 * guest's FCW (the host traps only at a waiting instruction, and none runs before the state
 * is saved); a pending x87 exception at the next waiting instruction raises #MF, or with
 * CR0.NE=0 asserts FERR# (emu_bus.ferr) and waits there for its interrupt unless IGNNE# is
 * asserted (emu_x87_wait, SDM Vol. 1 §8.7). MASKMOVQ/MASKMOVDQU read and write back all
 * 8/16 bytes at [rDI]. Left out: forms naming RSP as a register. CMPXCHG16B is here too.
 */
#include <cpuid.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include "x86/emu/exec.h"
#include "x86/emu/simd.h"

#define CR0_EM (1ull << 2)
#define CR0_TS (1ull << 3)
#define CR0_NE (1ull << 5)
#define CR4_OSFXSR (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)
#define RFL_ARITH 0x8d5ull

#define FX_FCW 0
#define FX_FSW 2
#define FX_FOP 6
#define FX_FIP 8
#define FX_FDP 16
#define FX_MXCSR 24

enum { K_X87, K_MMX, K_SSE };
#define F_MEM_R 0x1
#define F_MEM_W 0x2
#define F_ALIGN 0x4		/* 16-byte legacy SSE operand that must be aligned */
#define F_RFL_R 0x8
#define F_RFL_W 0x10
#define F_X87_STORE 0x20	/* x87 store to memory: not written on unmasked exceptions */
#define F_NOWAIT 0x40		/* FNENI/FNDISI/FNSETPM: no pending-exception check */

struct simd_form {
	uint8_t code[16];	/* template + RET */
	uint8_t kind, flags, mem, memsize, base, x87_fop_hi;
	uint16_t fop;
	uint8_t pad[8];
};

#define SIMD_MAX_FORMS 65536u
#define SIMD_HASH (SIMD_MAX_FORMS * 2)
static struct simd_form *simd_forms;	/* RWX arena: code is the first member */
static uint32_t *simd_hash;
static uint32_t simd_nforms = 1;	/* index 0 unused */
static pthread_mutex_t simd_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sigaction simd_old_fpe;
static __thread sigjmp_buf *simd_trap_jmp;
static __thread uint32_t simd_trap_mxcsr;

struct simd_ctx {
	uint8_t fx[512];
	uint64_t gpr[16];
	uint64_t rflags;
	uint32_t host_mxcsr;
	uint16_t host_fcw;
	uint8_t pad[2];
	uint8_t *xmm_image;	/* simd_sse_run: the FXSAVE image whose MXCSR and XMMs it uses */
	uint8_t buf[16] __attribute__((aligned(16)));
} __attribute__((aligned(64)));

_Static_assert(sizeof(struct simd_form) == 32, "form slot");
_Static_assert(offsetof(struct simd_ctx, gpr) == 512, "ctx layout");
_Static_assert(offsetof(struct simd_ctx, rflags) == 640, "ctx layout");
_Static_assert(offsetof(struct simd_ctx, host_mxcsr) == 648, "ctx layout");
_Static_assert(offsetof(struct simd_ctx, host_fcw) == 652, "ctx layout");
_Static_assert(offsetof(struct simd_ctx, xmm_image) == 656, "ctx layout");

/*
 * simd_native_run(ctx, code): host MXCSR/FCW saved, guest image in, GPRs (all but RSP) and
 * arithmetic flags loaded, the template called, everything stored back, then FNINIT (drops
 * any pending x87 exception; empty stack as the ABI wants) and the host control words.
 */
void simd_native_run(struct simd_ctx *ctx, const void *code);
__asm__(".text\n"
	".globl simd_native_run\n"
	".type simd_native_run,@function\n"
	"simd_native_run:\n"
	"push %rbx\npush %rbp\npush %r12\npush %r13\npush %r14\npush %r15\n"
	"push %rdi\npush %rsi\n"
	"stmxcsr 648(%rdi)\nfnstcw 652(%rdi)\n"
	"fxrstor64 (%rdi)\n"
	"pushq 640(%rdi)\npopfq\n"
	"mov 512(%rdi),%rax\nmov 520(%rdi),%rcx\nmov 528(%rdi),%rdx\nmov 536(%rdi),%rbx\n"
	"mov 552(%rdi),%rbp\nmov 560(%rdi),%rsi\nmov 576(%rdi),%r8\nmov 584(%rdi),%r9\n"
	"mov 592(%rdi),%r10\nmov 600(%rdi),%r11\nmov 608(%rdi),%r12\nmov 616(%rdi),%r13\n"
	"mov 624(%rdi),%r14\nmov 632(%rdi),%r15\nmov 568(%rdi),%rdi\n"
	"call *(%rsp)\n"
	"push %rdi\nmov 16(%rsp),%rdi\n"
	"mov %rax,512(%rdi)\nmov %rcx,520(%rdi)\nmov %rdx,528(%rdi)\nmov %rbx,536(%rdi)\n"
	"mov %rbp,552(%rdi)\nmov %rsi,560(%rdi)\nmov %r8,576(%rdi)\nmov %r9,584(%rdi)\n"
	"mov %r10,592(%rdi)\nmov %r11,600(%rdi)\nmov %r12,608(%rdi)\nmov %r13,616(%rdi)\n"
	"mov %r14,624(%rdi)\nmov %r15,632(%rdi)\n"
	"pushfq\npopq 640(%rdi)\ncld\n"
	"popq 568(%rdi)\n"
	"fxsave64 (%rdi)\n"
	"fninit\n"
	"ldmxcsr 648(%rdi)\nfldcw 652(%rdi)\n"
	"add $16,%rsp\n"
	"pop %r15\npop %r14\npop %r13\npop %r12\npop %rbp\npop %rbx\n"
	"ret\n"
	".size simd_native_run,.-simd_native_run\n");

/*
 * simd_sse_run(ctx, code): the same for SSE forms that touch no x87/MMX state: only MXCSR
 * and XMM0-15, straight from/to the image at ctx->xmm_image (the guest's own: a trap leaves
 * before the stores), instead of FXRSTOR/FXSAVE/FNINIT.
 */
void simd_sse_run(struct simd_ctx *ctx, const void *code);
#define XMM_LD(n) "movdqa " #n "*16+160(%rax),%xmm" #n "\n"
#define XMM_ST(n) "movdqa %xmm" #n "," #n "*16+160(%rax)\n"
__asm__(".text\n"
	".globl simd_sse_run\n"
	".type simd_sse_run,@function\n"
	"simd_sse_run:\n"
	"push %rbx\npush %rbp\npush %r12\npush %r13\npush %r14\npush %r15\n"
	"push %rdi\npush %rsi\n"
	"mov 656(%rdi),%rax\n"
	"stmxcsr 648(%rdi)\nmov 24(%rax),%ecx\ncmp 648(%rdi),%ecx\nje 1f\n"
	"ldmxcsr 24(%rax)\n1:\n"
	XMM_LD(0) XMM_LD(1) XMM_LD(2) XMM_LD(3) XMM_LD(4) XMM_LD(5) XMM_LD(6) XMM_LD(7)
	XMM_LD(8) XMM_LD(9) XMM_LD(10) XMM_LD(11) XMM_LD(12) XMM_LD(13) XMM_LD(14) XMM_LD(15)
	"pushq 640(%rdi)\npopfq\n"
	"mov 512(%rdi),%rax\nmov 520(%rdi),%rcx\nmov 528(%rdi),%rdx\nmov 536(%rdi),%rbx\n"
	"mov 552(%rdi),%rbp\nmov 560(%rdi),%rsi\nmov 576(%rdi),%r8\nmov 584(%rdi),%r9\n"
	"mov 592(%rdi),%r10\nmov 600(%rdi),%r11\nmov 608(%rdi),%r12\nmov 616(%rdi),%r13\n"
	"mov 624(%rdi),%r14\nmov 632(%rdi),%r15\nmov 568(%rdi),%rdi\n"
	"call *(%rsp)\n"
	"push %rdi\nmov 16(%rsp),%rdi\n"
	"mov %rax,512(%rdi)\nmov %rcx,520(%rdi)\nmov %rdx,528(%rdi)\nmov %rbx,536(%rdi)\n"
	"mov %rbp,552(%rdi)\nmov %rsi,560(%rdi)\nmov %r8,576(%rdi)\nmov %r9,584(%rdi)\n"
	"mov %r10,592(%rdi)\nmov %r11,600(%rdi)\nmov %r12,608(%rdi)\nmov %r13,616(%rdi)\n"
	"mov %r14,624(%rdi)\nmov %r15,632(%rdi)\n"
	"pushfq\npopq 640(%rdi)\ncld\n"
	"popq 568(%rdi)\n"
	"mov 656(%rdi),%rax\n"
	XMM_ST(0) XMM_ST(1) XMM_ST(2) XMM_ST(3) XMM_ST(4) XMM_ST(5) XMM_ST(6) XMM_ST(7)
	XMM_ST(8) XMM_ST(9) XMM_ST(10) XMM_ST(11) XMM_ST(12) XMM_ST(13) XMM_ST(14) XMM_ST(15)
	"stmxcsr 24(%rax)\nmov 24(%rax),%ecx\ncmp 648(%rdi),%ecx\nje 2f\n"
	"ldmxcsr 648(%rdi)\n2:\n"
	"add $16,%rsp\n"
	"pop %r15\npop %r14\npop %r13\npop %r12\npop %rbp\npop %rbx\n"
	"ret\n"
	".size simd_sse_run,.-simd_sse_run\n");

static uint16_t fx16(const uint8_t *fx, unsigned off)
{
	uint16_t v;

	memcpy(&v, fx + off, 2);
	return v;
}

static uint32_t fx32(const uint8_t *fx, unsigned off)
{
	uint32_t v;

	memcpy(&v, fx + off, 4);
	return v;
}

static bool x87_has_pending(const struct emu_cpu *cpu)
{
	return fx16(cpu->st.fxsave, FX_FSW) & ~fx16(cpu->st.fxsave, FX_FCW) & 0x3f;
}

int emu_x87_wait(struct emu_cpu *cpu)
{
	if (!x87_has_pending(cpu)) {
		if (cpu->ferr) {
			cpu->ferr = false;
			if (cpu->bus.ferr)
				cpu->bus.ferr(cpu->bus.opaque, false);
		}
		return 0;
	}
	if (cpu->st.cr0 & CR0_NE)
		return emu_fault(cpu, EMU_MF, 0, false);
	if (!cpu->bus.ferr)
		return emu_unsupported(cpu, "x87 exception pending with CR0.NE=0 and no FERR# "
					    "wiring");
	cpu->ferr = true;
	if (cpu->bus.ferr(cpu->bus.opaque, true))
		return 0;	/* IGNNE#: go on past the pending exception */
	/* the processor waits at the instruction for an interrupt (FERR# raised IRQ 13) */
	cpu->st.rip = cpu->insn_rip;
	cpu->stop_reason = EMU_EXIT_HLT;
	return EMU_STOP;
}

static int simd_checks(struct emu_cpu *cpu, const struct simd_form *f)
{
	uint64_t cr0 = cpu->st.cr0;

	switch (f->kind) {
	case K_X87:
		if (cr0 & (CR0_EM | CR0_TS))
			return emu_fault(cpu, EMU_NM, 0, false);
		return (f->flags & F_NOWAIT) ? 0 : emu_x87_wait(cpu);
	case K_MMX:
		if (cr0 & CR0_EM)
			return emu_ud(cpu);
		if (cr0 & CR0_TS)
			return emu_fault(cpu, EMU_NM, 0, false);
		return emu_x87_wait(cpu);
	default:
		if ((cr0 & CR0_EM) || !(cpu->st.cr4 & CR4_OSFXSR))
			return emu_ud(cpu);
		if (cr0 & CR0_TS)
			return emu_fault(cpu, EMU_NM, 0, false);
		return 0;
	}
}

static uint64_t lin_of(const struct emu_cpu *cpu, int sreg, uint64_t off)
{
	if (cpu->mode == EMU_MODE_LONG64 && sreg < EMU_FS)
		return off;
	return cpu->st.seg[sreg].base + off;
}

/* x87 last-instruction pointers for a non-control instruction (FXSAVE image fields). */
static void x87_pointers(struct emu_cpu *cpu, const struct simd_form *f, int sreg,
			 uint64_t off)
{
	uint8_t *fx = cpu->st.fxsave;
	uint16_t fop = f->fop;
	uint32_t v;

	memcpy(fx + FX_FOP, &fop, 2);
	if (cpu->mode == EMU_MODE_LONG64) {
		memcpy(fx + FX_FIP, &cpu->insn_rip, 8);
		if (f->mem != 0xff)
			memcpy(fx + FX_FDP, &off, 8);
		return;
	}
	v = (uint32_t)cpu->insn_rip;
	memcpy(fx + FX_FIP, &v, 4);
	memcpy(fx + FX_FIP + 4, &cpu->st.seg[EMU_CS].sel, 2);
	memset(fx + FX_FIP + 6, 0, 2);
	if (f->mem != 0xff) {
		v = (uint32_t)off;
		memcpy(fx + FX_FDP, &v, 4);
		memcpy(fx + FX_FDP + 4, &cpu->st.seg[sreg].sel, 2);
		memset(fx + FX_FDP + 6, 0, 2);
	}
}

/*
 * SIGFPE: a SIMD exception the guest unmasked, raised by a template (the faulting RIP is in
 * the arena): note the trap's MXCSR and return to exec_native. Anything else goes to the
 * handler that was installed before.
 */
static void simd_sigfpe(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	uintptr_t rip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
	uintptr_t lo = (uintptr_t)simd_forms;

	if (simd_trap_jmp && rip >= lo && rip < lo + SIMD_MAX_FORMS * sizeof(struct simd_form)) {
		simd_trap_mxcsr = uc->uc_mcontext.fpregs->mxcsr;
		siglongjmp(*simd_trap_jmp, 1);
	}
	if (simd_old_fpe.sa_flags & SA_SIGINFO) {
		simd_old_fpe.sa_sigaction(sig, si, ucv);
	} else if (simd_old_fpe.sa_handler != SIG_DFL && simd_old_fpe.sa_handler != SIG_IGN) {
		simd_old_fpe.sa_handler(sig);
	} else {
		/* default action: the faulting instruction runs again without us */
		signal(SIGFPE, SIG_DFL);
	}
}

typedef void (*simd_run_fn)(struct simd_ctx *ctx, const void *code);

/* Run the template; 1 when an unmasked SIMD exception trapped (MXCSR in *mx). */
static int simd_run_trapping(simd_run_fn run, struct simd_ctx *ctx, const struct simd_form *f,
			     uint32_t *mx)
{
	sigjmp_buf jb;
	volatile uint32_t hmx = 0x1f80;
	volatile uint16_t hcw = 0x37f;

	__asm__ volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(hmx), "=m"(hcw));
	if (sigsetjmp(jb, 0)) {
		simd_trap_jmp = NULL;
		__asm__ volatile("fninit\n\tldmxcsr %0\n\tfldcw %1" : : "m"(hmx), "m"(hcw));
		*mx = simd_trap_mxcsr;
		return 1;
	}
	simd_trap_jmp = &jb;
	run(ctx, f->code);
	simd_trap_jmp = NULL;
	return 0;
}

static int exec_native(struct emu_cpu *cpu, const struct emu_insn *in)
{
	const struct simd_form *f = &simd_forms[in->aux];
	struct simd_ctx ctx;
	uint32_t mx, trap_mx;
	uint64_t off = 0;
	int sreg = EMU_DS, r;
	uint16_t ignored = 0, fcw, fsw;
	bool light = f->kind == K_SSE;
	simd_run_fn run = light ? simd_sse_run : simd_native_run;

	if ((r = simd_checks(cpu, f)))
		return r;
	if (f->mem != 0xff) {
		const struct emu_operand *op = &in->op[f->mem];

		sreg = op->seg;
		off = emu_ea_off(cpu, in, op);
		if ((f->flags & F_ALIGN) && (lin_of(cpu, sreg, off) & 15))
			return emu_gp0(cpu);
		if ((f->flags & F_MEM_R) && emu_mread(cpu, sreg, off, ctx.buf, f->memsize))
			return EMU_FAULT;
	}
	mx = fx32(cpu->st.fxsave, FX_MXCSR) & 0xffff;	/* reserved bits would fault */
	if (light) {
		memcpy(cpu->st.fxsave + FX_MXCSR, &mx, 4);
		ctx.xmm_image = cpu->st.fxsave;
	} else {
		memcpy(ctx.fx, cpu->st.fxsave, 416);
		memcpy(ctx.fx + FX_MXCSR, &mx, 4);
		/*
		 * An x87 exception still pending here was let through by IGNNE#
		 * (emu_x87_wait): the host would trap on it, so it is masked while the
		 * instruction runs and the guest's FCW comes back afterwards.
		 */
		fcw = fx16(ctx.fx, FX_FCW);
		ignored = fx16(ctx.fx, FX_FSW) & ~fcw & 0x3f;
		fcw |= ignored;
		memcpy(ctx.fx + FX_FCW, &fcw, 2);
	}
	memcpy(ctx.gpr, cpu->st.gpr, sizeof(ctx.gpr));
	ctx.gpr[f->base] = (uint64_t)(uintptr_t)ctx.buf;
	ctx.rflags = 2;
	if (f->flags & F_RFL_R)
		ctx.rflags |= emu_get_rflags(cpu) & RFL_ARITH;
	if ((mx & 0x1f80) == 0x1f80) {
		run(&ctx, f->code);
	} else if (simd_run_trapping(run, &ctx, f, &trap_mx)) {
		/* unmasked SIMD exception: the trap's flags, destination unchanged */
		memcpy(cpu->st.fxsave + FX_MXCSR, &trap_mx, 4);
		if (!(cpu->st.cr4 & CR4_OSXMMEXCPT))
			return emu_ud(cpu);
		return emu_fault(cpu, EMU_XM, 0, false);
	}
	if (f->flags & F_MEM_W) {
		bool skip = false;

		if (f->flags & F_X87_STORE) {
			uint16_t fsw = fx16(ctx.fx, FX_FSW), fcw = fx16(ctx.fx, FX_FCW);

			skip = fsw & ~fcw & 0x1f;
		}
		if (!skip && emu_mwrite(cpu, sreg, off, ctx.buf, f->memsize))
			return EMU_FAULT;
	}
	/* commit: the image but the x87 pointers (the light path wrote its part), GPRs, flags;
	 * SSE forms that write memory leave the XMM registers as they were */
	if (ignored) {
		fcw = fx16(ctx.fx, FX_FCW) & ~ignored;
		fsw = fx16(ctx.fx, FX_FSW);
		if (fsw & ~fcw & 0x3f)
			fsw |= 0x8080;	/* ES and B: still pending */
		memcpy(ctx.fx + FX_FCW, &fcw, 2);
		memcpy(ctx.fx + FX_FSW, &fsw, 2);
	}
	if (!light) {
		memcpy(cpu->st.fxsave, ctx.fx, FX_FOP);
		memcpy(cpu->st.fxsave + FX_MXCSR, ctx.fx + FX_MXCSR, 4);
		memcpy(cpu->st.fxsave + 32, ctx.fx + 32, 416 - 32);
	}
	if (f->kind == K_X87)
		x87_pointers(cpu, f, sreg, off);
	for (int i = 0; i < 16; i++)
		if (i != EMU_RSP && i != f->base)
			cpu->st.gpr[i] = ctx.gpr[i];
	if (f->flags & F_RFL_W)
		emu_set_rflags(cpu, (emu_get_rflags(cpu) & ~RFL_ARITH) | (ctx.rflags & RFL_ARITH));
	return EMU_OK;
}

/* ---- CMPXCHG16B (SDM Vol. 2 "CMPXCHG8B/CMPXCHG16B") ---- */

static int exec_cmpxchg16b(struct emu_cpu *cpu, const struct emu_insn *in)
{
	const struct emu_operand *op = &in->op[0];
	uint64_t off = emu_ea_off(cpu, in, op), cur[2];
	uint64_t lo = cpu->st.gpr[EMU_RAX], hi = cpu->st.gpr[EMU_RDX];
	uint64_t nlo = cpu->st.gpr[EMU_RBX], nhi = cpu->st.gpr[EMU_RCX];
	uint64_t fl;
	bool eq;
	void *p;

	if (op->kind != EMU_OPK_MEM)
		return emu_ud(cpu);
	if (lin_of(cpu, op->seg, off) & 15)
		return emu_gp0(cpu);
	p = emu_mem_rmw_ptr(cpu, op->seg, off, 16);
	if (!p && cpu->fault.pending)
		return EMU_FAULT;
	if (p) {
		uint8_t z;

		__asm__ volatile("lock cmpxchg16b %1\n\tsetz %0"
				 : "=q"(z), "+m"(*(volatile unsigned __int128 *)p), "+a"(lo),
				   "+d"(hi)
				 : "b"(nlo), "c"(nhi)
				 : "memory", "cc");
		eq = z;
		cur[0] = lo;
		cur[1] = hi;
	} else {
		uint64_t nv[2] = { nlo, nhi };

		if (emu_mread(cpu, op->seg, off, cur, 16))
			return EMU_FAULT;
		eq = cur[0] == lo && cur[1] == hi;
		/* the processor always writes: the old value back when unequal */
		if (emu_mwrite(cpu, op->seg, off, eq ? nv : cur, 16))
			return EMU_FAULT;
	}
	if (!eq) {
		cpu->st.gpr[EMU_RAX] = cur[0];
		cpu->st.gpr[EMU_RDX] = cur[1];
	}
	fl = emu_get_rflags(cpu) & ~0x40ull;
	emu_set_rflags(cpu, fl | (eq ? 0x40 : 0));
	return EMU_OK;
}

/* ---- decode-time form building ---- */

static bool simd_arena_init(void)
{
	struct sigaction sa;
	void *a, *h;

	if (simd_forms)
		return true;
	a = mmap(NULL, SIMD_MAX_FORMS * sizeof(struct simd_form),
		 PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED)
		return false;
	h = mmap(NULL, SIMD_HASH * sizeof(uint32_t), PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (h == MAP_FAILED) {
		munmap(a, SIMD_MAX_FORMS * sizeof(struct simd_form));
		return false;
	}
	simd_hash = h;
	simd_forms = a;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = simd_sigfpe;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGFPE, &sa, &simd_old_fpe);
	return true;
}

/* Index of an identical form, interned on first use; 0 when the arena is full. */
static uint32_t simd_intern(const struct simd_form *nf)
{
	uint64_t h = 0xcbf29ce484222325ull;
	const uint8_t *b = (const uint8_t *)nf;
	uint32_t idx = 0, slot;

	for (size_t i = 0; i < sizeof(*nf); i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	pthread_mutex_lock(&simd_lock);
	if (!simd_arena_init())
		goto out;
	for (slot = h % SIMD_HASH;; slot = (slot + 1) % SIMD_HASH) {
		uint32_t e = simd_hash[slot];

		if (!e)
			break;
		if (!memcmp(&simd_forms[e], nf, sizeof(*nf))) {
			idx = e;
			goto out;
		}
	}
	if (simd_nforms >= SIMD_MAX_FORMS)
		goto out;
	idx = simd_nforms++;
	memcpy(&simd_forms[idx], nf, sizeof(*nf));
	simd_hash[slot] = idx;
out:
	pthread_mutex_unlock(&simd_lock);
	return idx;
}

static bool simd_excluded(unsigned m)
{
	switch (m) {
	/* state instructions: fpu_state.c */
	case ZYDIS_MNEMONIC_FNINIT: case ZYDIS_MNEMONIC_FNSTCW: case ZYDIS_MNEMONIC_FLDCW:
	case ZYDIS_MNEMONIC_FNSTSW: case ZYDIS_MNEMONIC_FNCLEX: case ZYDIS_MNEMONIC_FWAIT:
	case ZYDIS_MNEMONIC_FNSTENV: case ZYDIS_MNEMONIC_FLDENV: case ZYDIS_MNEMONIC_FNSAVE:
	case ZYDIS_MNEMONIC_FRSTOR: case ZYDIS_MNEMONIC_EMMS: case ZYDIS_MNEMONIC_LDMXCSR:
	case ZYDIS_MNEMONIC_STMXCSR: case ZYDIS_MNEMONIC_FXSAVE: case ZYDIS_MNEMONIC_FXSAVE64:
	case ZYDIS_MNEMONIC_FXRSTOR: case ZYDIS_MNEMONIC_FXRSTOR64:
	/* hints and ordering: the core's */
	case ZYDIS_MNEMONIC_LFENCE: case ZYDIS_MNEMONIC_SFENCE: case ZYDIS_MNEMONIC_MFENCE:
	case ZYDIS_MNEMONIC_PAUSE: case ZYDIS_MNEMONIC_PREFETCHNTA:
	case ZYDIS_MNEMONIC_PREFETCHT0: case ZYDIS_MNEMONIC_PREFETCHT1:
	case ZYDIS_MNEMONIC_PREFETCHT2: case ZYDIS_MNEMONIC_CLFLUSH:
	case ZYDIS_MNEMONIC_MONITOR: case ZYDIS_MNEMONIC_MWAIT:
		return true;
	default:
		return false;
	}
}

static bool simd_mem_unaligned_ok(unsigned m)
{
	switch (m) {
	case ZYDIS_MNEMONIC_MOVUPS: case ZYDIS_MNEMONIC_MOVUPD: case ZYDIS_MNEMONIC_MOVDQU:
	case ZYDIS_MNEMONIC_LDDQU: case ZYDIS_MNEMONIC_PCMPESTRI: case ZYDIS_MNEMONIC_PCMPESTRM:
	case ZYDIS_MNEMONIC_PCMPISTRI: case ZYDIS_MNEMONIC_PCMPISTRM:
		return true;
	default:
		return false;
	}
}

/* Does CPUID offer this extension (leaf 1 EDX/ECX)? */
/* CPUID.1 register (2 = ECX, 3 = EDX) and bit of an extension; false for other sets. */
static bool simd_feature_bit(const ZydisDecodedInstruction *zi, unsigned *reg, unsigned *bit)
{
	switch (zi->meta.isa_ext) {
	case ZYDIS_ISA_EXT_MMX: *reg = 3, *bit = 23; return true;
	case ZYDIS_ISA_EXT_SSE: *reg = 3, *bit = 25; return true;
	case ZYDIS_ISA_EXT_SSE2: *reg = 3, *bit = 26; return true;
	case ZYDIS_ISA_EXT_SSE3: *reg = 2, *bit = 0; return true;
	case ZYDIS_ISA_EXT_SSSE3: *reg = 2, *bit = 9; return true;
	case ZYDIS_ISA_EXT_SSE4:	/* Zydis files POPCNT here too */
		*reg = 2;
		*bit = zi->meta.isa_set == ZYDIS_ISA_SET_SSE42	  ? 20
		       : zi->meta.isa_set == ZYDIS_ISA_SET_POPCNT ? 23
								  : 19;
		return true;
	case ZYDIS_ISA_EXT_AES: *reg = 2, *bit = 25; return true;
	case ZYDIS_ISA_EXT_PCLMULQDQ: *reg = 2, *bit = 1; return true;
	default: return false;
	}
}

/* Does the guest's CPUID offer the instruction's extension? */
static bool simd_offered(struct emu_cpu *cpu, unsigned reg, unsigned bit)
{
	uint32_t o[4] = { 0, 0, 0, 0 };

	if (!cpu->bus.cpuid)
		return true;
	cpu->bus.cpuid(cpu->bus.opaque, 1, 0, o);
	return o[reg] >> bit & 1;
}

/* Does the host have it (the sets past SSSE3 are not in every x86-64)? */
static bool simd_host_has(unsigned reg, unsigned bit)
{
	unsigned a, b, c, d;

	if (!__get_cpuid(1, &a, &b, &c, &d))
		return false;
	return (reg == 2 ? c : d) >> bit & 1;
}

static bool simd_cx16_offered(struct emu_cpu *cpu)
{
	uint32_t o[4] = { 0, 0, 0, 0 };

	if (!cpu->bus.cpuid)
		return true;
	cpu->bus.cpuid(cpu->bus.opaque, 1, 0, o);
	return o[2] & (1u << 13);
}

static int exec_unsupported_form(struct emu_cpu *cpu, const struct emu_insn *in)
{
	return emu_unsupported(cpu, "x87/SSE form not executable natively (%s)",
			       ZydisMnemonicGetString((ZydisMnemonic)in->mnemonic));
}

emu_exec_fn emu_simd_handler(struct emu_cpu *cpu, struct emu_insn *in, const uint8_t *bytes,
			     const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *zo)
{
	ZydisISAExt ext = zi->meta.isa_ext;
	struct simd_form f;
	uint32_t used = 1u << EMU_RSP | 1u << EMU_RBP | 1u << EMU_R12 | 1u << EMU_R13;
	unsigned n = 0, kind, opc, freg = 0, fbit = 0;
	int mem = -1;
	bool implicit_mem = false;

	/*
	 * VEX, EVEX, XOP, MVEX and 3DNow! encodings: #UD under a CPUID without AVX (khyve's
	 * levels); under one that offers AVX (KVM's host level, for the fallback) they are
	 * real instructions the interpreter lacks.
	 */
	if (zi->encoding != ZYDIS_INSTRUCTION_ENCODING_LEGACY)
		return simd_offered(cpu, 2, 28) ? NULL : emu_exec_ud;
	if (zi->mnemonic == ZYDIS_MNEMONIC_CMPXCHG16B)
		return simd_cx16_offered(cpu) ? exec_cmpxchg16b : emu_exec_ud;
	if (ext != ZYDIS_ISA_EXT_X87 && !simd_feature_bit(zi, &freg, &fbit))
		return NULL;
	if (simd_excluded(zi->mnemonic))
		return NULL;
	if (ext != ZYDIS_ISA_EXT_X87 && !simd_offered(cpu, freg, fbit))
		return emu_exec_ud;
	if (ext != ZYDIS_ISA_EXT_X87 && !simd_host_has(freg, fbit))
		return exec_unsupported_form;
	kind = ext == ZYDIS_ISA_EXT_X87 ? K_X87 : K_SSE;
	memset(&f, 0, sizeof(f));
	f.mem = 0xff;
	for (unsigned i = 0; i < zi->operand_count; i++) {
		const ZydisDecodedOperand *o = &zo[i];

		if (o->type == ZYDIS_OPERAND_TYPE_REGISTER) {
			ZydisRegisterClass c = ZydisRegisterGetClass(o->reg.value);

			if (c == ZYDIS_REGCLASS_MMX)
				kind = K_MMX;
			if (c == ZYDIS_REGCLASS_GPR8 || c == ZYDIS_REGCLASS_GPR16 ||
			    c == ZYDIS_REGCLASS_GPR32 || c == ZYDIS_REGCLASS_GPR64) {
				ZydisRegister big = ZydisRegisterGetLargestEnclosing(
					ZYDIS_MACHINE_MODE_LONG_64, o->reg.value);
				unsigned g = big - ZYDIS_REGISTER_RAX;

				if (g == EMU_RSP && o->visibility != ZYDIS_OPERAND_VISIBILITY_HIDDEN)
					return exec_unsupported_form;
				used |= 1u << (g & 15);
			}
		} else if (o->type == ZYDIS_OPERAND_TYPE_MEMORY && o->mem.type == ZYDIS_MEMOP_TYPE_MEM) {
			if (mem >= 0 || i >= 4)
				return exec_unsupported_form;
			mem = (int)i;
			implicit_mem = o->visibility == ZYDIS_OPERAND_VISIBILITY_HIDDEN;
		}
	}
	if (zi->cpu_flags && zi->cpu_flags->tested)
		f.flags |= F_RFL_R;
	if (zi->cpu_flags && (zi->cpu_flags->modified | zi->cpu_flags->set_0 |
			      zi->cpu_flags->set_1 | zi->cpu_flags->undefined))
		f.flags |= F_RFL_W | F_RFL_R;
	/* a base register for the buffer that the instruction does not name; MASKMOVQ and
	 * MASKMOVDQU store through [rDI], so the host's RDI points at the buffer */
	for (f.base = 0; f.base < 16 && (used >> f.base & 1); f.base++)
		;
	if (implicit_mem)
		f.base = EMU_RDI;
	if (f.base >= 16 || (implicit_mem && (used >> EMU_RDI & 1)))
		return exec_unsupported_form;
	/* legacy prefixes without segment overrides, address size, LOCK and REX */
	opc = zi->raw.prefix_count;
	for (unsigned i = 0; i < zi->raw.prefix_count; i++) {
		uint8_t p = bytes[i];

		if (p == 0x26 || p == 0x2e || p == 0x36 || p == 0x3e || p == 0x64 || p == 0x65 ||
		    p == 0x67 || p == 0xf0)
			continue;
		if (zi->machine_mode == ZYDIS_MACHINE_MODE_LONG_64 && (p & 0xf0) == 0x40)
			continue;
		f.code[n++] = p;
	}
	if (mem >= 0 && !implicit_mem) {
		uint8_t rex = 0x40 | (zi->raw.rex.W ? 8 : 0) | (zi->raw.rex.R ? 4 : 0) |
			      (f.base >= 8 ? 1 : 0);
		unsigned mo = zi->raw.modrm.offset;

		if (rex != 0x40)
			f.code[n++] = rex;
		memcpy(&f.code[n], bytes + opc, mo - opc);
		n += mo - opc;
		f.code[n++] = (uint8_t)((zi->raw.modrm.reg & 7) << 3 | (f.base & 7));
		for (int k = 0; k < 2; k++)
			if (zi->raw.imm[k].size) {
				memcpy(&f.code[n], bytes + zi->raw.imm[k].offset, zi->raw.imm[k].size / 8);
				n += zi->raw.imm[k].size / 8;
			}
	} else {
		if (zi->machine_mode == ZYDIS_MACHINE_MODE_LONG_64 &&
		    (zi->raw.rex.W || zi->raw.rex.R || zi->raw.rex.X || zi->raw.rex.B))
			f.code[n++] = 0x40 | (zi->raw.rex.W ? 8 : 0) | (zi->raw.rex.R ? 4 : 0) |
				      (zi->raw.rex.X ? 2 : 0) | (zi->raw.rex.B ? 1 : 0);
		memcpy(&f.code[n], bytes + opc, zi->length - opc);
		n += zi->length - opc;
	}
	if (mem >= 0) {
		f.mem = (uint8_t)mem;
		f.memsize = zo[mem].size / 8;
		if (zo[mem].actions & ZYDIS_OPERAND_ACTION_MASK_READ || implicit_mem)
			f.flags |= F_MEM_R;
		if (zo[mem].actions & ZYDIS_OPERAND_ACTION_MASK_WRITE)
			f.flags |= F_MEM_W;
		if (kind == K_X87 && (f.flags & F_MEM_W))
			f.flags |= F_X87_STORE;
		if (kind != K_X87 && f.memsize == 16 && !implicit_mem &&
		    !simd_mem_unaligned_ok(zi->mnemonic))
			f.flags |= F_ALIGN;
		if (!f.memsize || f.memsize > 16)
			return exec_unsupported_form;
	}
	if (n > 15)
		return exec_unsupported_form;
	f.code[n] = 0xc3;	/* RET */
	f.kind = (uint8_t)kind;
	if (zi->mnemonic == ZYDIS_MNEMONIC_FENI8087_NOP ||
	    zi->mnemonic == ZYDIS_MNEMONIC_FDISI8087_NOP ||
	    zi->mnemonic == ZYDIS_MNEMONIC_FSETPM287_NOP)
		f.flags |= F_NOWAIT;
	if (kind == K_X87)
		f.fop = (uint16_t)((bytes[opc] & 7) << 8 |
				   (zi->raw.modrm.offset ? bytes[zi->raw.modrm.offset] : 0));
	in->aux = simd_intern(&f);
	if (!in->aux)
		return exec_unsupported_form;
	return exec_native;
}
