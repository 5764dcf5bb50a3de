/*
 * stubs32.S: the 32-bit runtime's 256 interrupt stubs (zero error code pushed where the CPU
 * pushes none), the common path that saves DS/ES and the GPRs and runs with flat kernel data
 * segments, the ring-3 call (IRET to ring 3, back through vector 0x80) and the fault probes.
 */
	.text
	.code32
	.altmacro
	.macro stub n
	.balign 16
stub_\n:
	.if (\n == 8) || ((\n >= 10) && (\n <= 14)) || (\n == 17) || (\n == 21) || (\n == 29) || (\n == 30)
	.else
	pushl $0
	.endif
	pushl $\n
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
	pushl %ds
	pushl %es
	pushal
	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %esp, %eax
	pushl %eax
	call rt_trap
	addl $4, %esp
	popal
	popl %es
	popl %ds
	addl $8, %esp
	iret

/* uint32_t user_call(fn, arg) */
	.globl user_call, user_return_eip
user_call:
	pushl %ebx
	pushl %esi
	pushl %edi
	pushl %ebp
	movl %esp, user_saved_esp
	movl 20(%esp), %eax
	movl 24(%esp), %edx
	pushl $0x33			/* SS */
	pushl $user_stack_top		/* ESP */
	pushl $0x202			/* EFLAGS: IF */
	pushl $0x2b			/* CS */
	pushl $user_tramp		/* EIP */
	iret
user_tramp:
	movl $0x33, %ecx
	movl %ecx, %ds
	movl %ecx, %es
	pushl %edx
	call *%eax
	addl $4, %esp
	int $0x80
	ud2
user_return_eip:
	movl $0x10, %ecx
	movl %ecx, %ds
	movl %ecx, %es
	movl user_saved_esp, %esp
	popl %ebp
	popl %edi
	popl %esi
	popl %ebx
	ret

/* int probe_read(va, *val), int probe_write(va, val): -1 after a recovered fault */
	.globl probe_read, probe_write
probe_read:
	movl $1f, probe_recover_rip
	movl 4(%esp), %edx
	movl (%edx), %eax
	movl 8(%esp), %ecx
	movl %eax, (%ecx)
	xorl %eax, %eax
1:	movl $0, probe_recover_rip
	ret
probe_write:
	movl $1f, probe_recover_rip
	movl 4(%esp), %edx
	movl 8(%esp), %eax
	movl %eax, (%edx)
	xorl %eax, %eax
1:	movl $0, probe_recover_rip
	ret

	.data
	.globl probe_recover_rip
probe_recover_rip:	.long 0
user_saved_esp:		.long 0
	.bss
	.balign 16
user_stack:	.skip 16384
user_stack_top:
