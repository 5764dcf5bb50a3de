/*
 * entry.S: 32-bit PVH entry (Xen ELF note XEN_ELFNOTE_PHYS32_ENTRY = 18: flat protected mode,
 * paging off, EBX = hvm_start_info), identity page tables for 0-4 GiB in 2 MiB pages (user
 * accessible, so ring-3 tests can run the image's code), long mode, GDT, and the AP trampoline
 * that takes a CPU from the SIPI's real mode to rt's 64-bit AP entry. Intel SDM vol. 3 §9.8.
 */
#define SEL_CODE32 0x08
#define SEL_CODE64 0x10
#define SEL_DATA 0x18
#define TRAMP_BASE 0x8000
#define STACK_SIZE 0x10000

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
	movl %ebx, boot_start_info
	lgdt gdt_ptr
	ljmp $SEL_CODE32, $1f
1:	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movl $(boot_stack + STACK_SIZE), %esp

	/* PML4[0] -> pdpt, pdpt[0..3] -> pd[0..3], pd: 2048 2 MiB pages (P|W|U|PS). */
	movl $(pdpt + 7), pml4
	movl $(pd + 7), pdpt
	movl $(pd + 0x1000 + 7), pdpt + 8
	movl $(pd + 0x2000 + 7), pdpt + 16
	movl $(pd + 0x3000 + 7), pdpt + 24
	xorl %ecx, %ecx
2:	movl %ecx, %eax
	shll $21, %eax
	orl $0x87, %eax
	movl %eax, pd(, %ecx, 8)
	movl %ecx, %eax
	shrl $11, %eax
	movl %eax, pd + 4(, %ecx, 8)
	incl %ecx
	cmpl $2048, %ecx
	jb 2b

	/* EFER: LME, plus NXE and SCE when the CPU has them. */
	movl $0x80000001, %eax
	cpuid
	movl $0x100, %esi
	testl $(1 << 20), %edx
	jz 3f
	orl $0x800, %esi
3:	testl $(1 << 11), %edx
	jz 4f
	orl $0x1, %esi
4:	movl %esi, boot_efer
	call enter_long_mode
	ljmp $SEL_CODE64, $long_entry

/* CR4.PAE, CR3, EFER from boot_efer, CR0.PG|WP|PE. Clobbers eax, ecx, edx. */
enter_long_mode:
	movl %cr4, %eax
	orl $0x20, %eax
	movl %eax, %cr4
	movl $pml4, %eax
	movl %eax, %cr3
	movl $0xc0000080, %ecx
	movl boot_efer, %eax
	xorl %edx, %edx
	wrmsr
	movl %cr0, %eax
	orl $0x80010001, %eax
	movl %eax, %cr0
	ret

	.code64
long_entry:
	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movq $(boot_stack + STACK_SIZE), %rsp
	movl boot_start_info, %edi
	call rt_start
5:	cli
	hlt
	jmp 5b

/* 64-bit AP entry (after the trampoline): rsp from ap_stack_top, then rt_ap_main. */
	.globl ap_entry64
ap_entry64:
	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movq ap_stack_top, %rsp
	call rt_ap_main
6:	cli
	hlt
	jmp 6b

/* The AP trampoline, copied to TRAMP_BASE (SIPI vector 8). */
	.globl tramp_start, tramp_end
	.code16
tramp_start:
	cli
	cld
	xorw %ax, %ax
	movw %ax, %ds
	lgdtl TRAMP_BASE + (tramp_gdt_ptr - tramp_start)
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	ljmpl $SEL_CODE32, $(TRAMP_BASE + (tramp32 - tramp_start))
	.code32
tramp32:
	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl $(TRAMP_BASE + 0x1000), %esp	/* scratch for the call below */
	movl $enter_long_mode, %eax
	call *%eax
	ljmp $SEL_CODE64, $(TRAMP_BASE + (tramp64 - tramp_start))
	.code64
tramp64:
	movabsq $ap_entry64, %rax
	jmp *%rax
	.balign 8
tramp_gdt_ptr:
	.word gdt_end - gdt - 1
	.long gdt
tramp_end:

	.data
	.balign 16
	.globl gdt
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff	/* 0x08 code32 */
	.quad 0x00af9a000000ffff	/* 0x10 code64 */
	.quad 0x00cf92000000ffff	/* 0x18 data */
	.quad 0x008f9a000000ffff	/* 0x20 code16 */
	.quad 0x008f92000000ffff	/* 0x28 data16 */
	.quad 0x00cffa000000ffff	/* 0x30 user code32 (SYSRET base) */
	.quad 0x00cff2000000ffff	/* 0x38 user data */
	.quad 0x00affa000000ffff	/* 0x40 user code64 */
	.globl gdt_tss
gdt_tss:
	.quad 0, 0			/* 0x48 TSS, filled by tss_init */
gdt_end:
	.globl gdt_ptr
gdt_ptr:
	.word gdt_end - gdt - 1
	.quad gdt
	.globl boot_start_info, boot_efer, ap_stack_top
boot_start_info:
	.long 0
boot_efer:
	.long 0
ap_stack_top:
	.quad 0

	.bss
	.balign 4096
	.globl pml4
pml4:	.skip 4096
pdpt:	.skip 4096
pd:	.skip 4 * 4096
	.balign 16
boot_stack:
	.skip STACK_SIZE
