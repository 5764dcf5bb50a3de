/*
 * stubs.S: the 256 interrupt/exception entry stubs (a zero error code is pushed for vectors
 * without one, Intel SDM vol. 3 §6.13), the common save/restore path around rt_trap, the
 * ring-3 call (IRETQ to user code, back through vector 0x80), and the fault probes.
 */
	.text
	.code64
	.altmacro
	.macro stub n
	.balign 16
stub_\n:
	.if (\n == 8) || ((\n >= 10) && (\n <= 14)) || (\n == 17) || (\n == 21) || (\n == 29) || (\n == 30)
	.else
	pushq $0
	.endif
	pushq $\n
	jmp trap_common
	.endm

	.globl trap_stubs
	.balign 16
trap_stubs:
	.set i, 0
	.rept 256
	stub %i
	.set i, i + 1
	.endr

trap_common:
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, %rdi
	movq %rsp, %rbx
	andq $-16, %rsp
	call rt_trap
	movq %rbx, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	addq $16, %rsp
	iretq

/* uint64_t user_call(fn, arg): callee-saved registers and rsp kept in user_saved. */
	.globl user_call, user_return_rip
user_call:
	pushq %rbx
	pushq %rbp
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, user_saved_rsp(%rip)
	pushq $0x3b			/* SS */
	leaq user_stack_top(%rip), %rax
	pushq %rax			/* RSP */
	pushq user_rflags(%rip)		/* RFLAGS: IF unless a test changed it */
	pushq $0x43			/* CS */
	leaq user_tramp(%rip), %rax
	pushq %rax			/* RIP */
	movq %rdi, %rax
	movq %rsi, %rdi
	iretq
user_tramp:
	call *%rax
	int $0x80			/* rt_trap sends us to user_return_rip in ring 0 */
	ud2
user_return_rip:
	movq user_saved_rsp(%rip), %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbp
	popq %rbx
	ret

/* Probes: rt_trap's fault handler jumps to probe_recover_rip with rax = -1. */
	.globl probe_read, probe_write, probe_exec
probe_read:
	leaq 1f(%rip), %rax
	movq %rax, probe_recover_rip(%rip)
	movq (%rdi), %rax
	movq %rax, (%rsi)
	xorl %eax, %eax
1:	movq $0, probe_recover_rip(%rip)
	ret
probe_write:
	leaq 1f(%rip), %rax
	movq %rax, probe_recover_rip(%rip)
	movq %rsi, (%rdi)
	xorl %eax, %eax
1:	movq $0, probe_recover_rip(%rip)
	ret
probe_exec:
	leaq 1f(%rip), %rax
	movq %rax, probe_recover_rip(%rip)
	movq %rsp, probe_saved_rsp(%rip)
	call *%rdi
	xorl %eax, %eax
	jmp 2f
1:	movq probe_saved_rsp(%rip), %rsp
2:	movq $0, probe_recover_rip(%rip)
	ret

/* int probe_rdmsr(uint32_t msr, uint64_t *val), int probe_wrmsr(uint32_t msr, uint64_t val) */
	.globl probe_rdmsr, probe_wrmsr
probe_rdmsr:
	leaq 1f(%rip), %rax
	movq %rax, probe_recover_rip(%rip)
	movl %edi, %ecx
	rdmsr
	shlq $32, %rdx
	movl %eax, %eax
	orq %rdx, %rax
	movq %rax, (%rsi)
	xorl %eax, %eax
1:	movq $0, probe_recover_rip(%rip)
	ret
probe_wrmsr:
	leaq 1f(%rip), %rax
	movq %rax, probe_recover_rip(%rip)
	movl %edi, %ecx
	movl %esi, %eax
	movq %rsi, %rdx
	shrq $32, %rdx
	wrmsr
	xorl %eax, %eax
1:	movq $0, probe_recover_rip(%rip)
	ret

	.data
	.globl probe_recover_rip, user_saved_rsp, user_rflags
probe_recover_rip:	.quad 0
user_rflags:		.quad 0x202
probe_saved_rsp:	.quad 0
user_saved_rsp:		.quad 0
	.bss
	.balign 16
user_stack:	.skip 16384
user_stack_top:
