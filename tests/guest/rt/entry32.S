/*
 * entry32.S: the 32-bit runtime's PVH entry (XEN_ELFNOTE_PHYS32_ENTRY: flat protected mode,
 * paging off, EBX = hvm_start_info), its GDT (flat ring 0/3 segments, 16-bit segments, a
 * TSS slot and scratch slots for tests) and boot stack. Paging stays off until a test turns
 * it on. Intel SDM vol. 3 §3.4-3.5.
 */
	.section .note.Xen, "a", @note
	.balign 4
	.long 4, 4, 18
	.asciz "Xen"
	.balign 4
	.long _start32

	.section .text.entry, "ax"
	.code32
	.globl _start32
_start32:
	cli
	cld
	lgdt gdt_ptr
	ljmp $0x08, $1f
1:	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movl $(boot_stack + 0x10000), %esp
	pushl %ebx
	call rt_start
2:	cli
	hlt
	jmp 2b

	.data
	.balign 16
	.globl gdt
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff	/* 0x08 code32 */
	.quad 0x00cf92000000ffff	/* 0x10 data */
	.quad 0x00009a000000ffff	/* 0x18 code16, 64 KiB */
	.quad 0x000092000000ffff	/* 0x20 data16, 64 KiB */
	.quad 0x00cffa000000ffff	/* 0x28 user code32 */
	.quad 0x00cff2000000ffff	/* 0x30 user data */
	.quad 0				/* 0x38 TSS, filled by tss_init */
	.fill 8, 8, 0			/* 0x40-0x78 scratch */
gdt_end:
gdt_ptr:
	.word gdt_end - gdt - 1
	.long gdt

	.bss
	.balign 16
boot_stack:
	.skip 0x10000
