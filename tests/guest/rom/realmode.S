/*
 * realmode: real-mode, BIOS-style code from the reset vector (Intel SDM vol. 3 §20.1): segment
 * arithmetic (seg*16+off aliases), 16-bit effective-address wrap, an IVT handler that returns
 * CF in the stacked FLAGS as BIOS services do, far calls into RAM through two CS aliases, code
 * rewritten in RAM, string instructions (both directions), LDS, segment overrides, 66h/67h
 * prefixes, BCD and 16-bit MUL/DIV, fast A20 (port 0x92), FFFF:0010 reaching 1 MiB, and
 * "unreal" mode (a 4 GiB FS limit kept after leaving protected mode). Needs -m 8M or more.
 */
#include "romlib.inc"

	.globl rom_start
rom_start:
	cli
	cld
	xor %ax, %ax
	mov %ax, %ss
	mov $0x7c00, %sp
	xor %bp, %bp
	call serial_init
	mov $hello, %si
	call puts

	/* 1000:0010 and 1001:0000 are the same byte. */
	mov $0x1000, %ax
	mov %ax, %es
	movb $0xa5, %es:0x10
	mov $0x1001, %ax
	mov %ax, %ds
	cmpb $0xa5, 0
	CHECK seg-arith-alias
	/* word at 2000:0000 read back through 1fff:0010 */
	mov $0x2000, %ax
	mov %ax, %es
	movw $0xbeef, %es:0
	mov $0x1fff, %ax
	mov %ax, %ds
	cmpw $0xbeef, 0x10
	CHECK seg-arith-word

	/* [bx+si] wraps at 64 KiB: 0xfff0 + 0x20 = 0x0010 */
	mov $0x3000, %ax
	mov %ax, %ds
	movw $0, 0x10
	mov $0xfff0, %bx
	mov $0x0020, %si
	movw $0x5a5a, (%bx, %si)
	cmpw $0x5a5a, 0x10
	CHECK ea-wrap-64k

	/* IVT entry 0x60 -> int60 in this ROM; the handler sets AX and CF (in stacked FLAGS). */
	xor %ax, %ax
	mov %ax, %ds
	movw $int60, 0x60 * 4
	movw $0xf000, 0x60 * 4 + 2
	clc
	xor %ax, %ax
	int $0x60
	jnc 1f
	cmp $0x1234, %ax
	jmp 2f
1:	or $1, %ax		/* clears ZF */
2:	CHECK ivt-int-carry-return
	pushf
	pop %ax
	mov %sp, %bx
	cmp $0x7c00, %bx
	CHECK int-iret-stack

	/* far calls into RAM through two aliases of 0x9000: 0900:0000 and 0800:1000 */
	mov $0x0900, %ax
	mov %ax, %es
	movw $0xc88c, %es:0	/* mov %cs, %ax */
	movb $0xcb, %es:2	/* lret */
	lcall $0x0900, $0
	cmp $0x0900, %ax
	CHECK far-call-ram
	lcall $0x0800, $0x1000
	cmp $0x0800, %ax
	CHECK far-call-alias-cs
	/* rewrite the routine: mov $0x4242, %ax; lret */
	movb $0xb8, %es:0
	movw $0x4242, %es:1
	movb $0xcb, %es:3
	lcall $0x0900, $0
	cmp $0x4242, %ax
	CHECK smc-in-ram

	/* rep movsw forwards, repe cmpsw, rep movsb backwards */
	mov $0x4000, %ax
	mov %ax, %ds
	mov $0x5000, %ax
	mov %ax, %es
	xor %si, %si
	mov $8, %cx
	mov $0x1111, %ax
1:	mov %ax, (%si)
	add $0x1111, %ax
	add $2, %si
	loop 1b
	xor %si, %si
	xor %di, %di
	mov $8, %cx
	rep movsw
	cmp $16, %di
	CHECK rep-movsw-di
	xor %si, %si
	xor %di, %di
	mov $8, %cx
	repe cmpsw
	jne 1f
	test %cx, %cx
1:	CHECK repe-cmpsw
	std
	mov $15, %si
	mov $0x20 + 15, %di
	mov $16, %cx
	rep movsb
	cld
	cmp $0x1f, %di
	jne 1f
	mov %es:0x20 + 14, %ax
	cmp $0x8888, %ax
1:	CHECK rep-movsb-backwards
	/* rep stosb */
	movb $0, %es:0x100 + 100
	mov $0x100, %di
	mov $0x77, %al
	mov $100, %cx
	rep stosb
	cmp $0x100 + 100, %di
	jne 1f
	cmpb $0x77, %es:0x100 + 99
	jne 1f
	cmpb $0, %es:0x100 + 100
1:	CHECK rep-stosb

	/* LDS and a segment override: far pointer 5000:0002 stored at 4000:0040 */
	movw $2, 0x40
	movw $0x5000, 0x42
	lds 0x40, %si
	mov %ds, %ax
	cmp $0x5000, %ax
	jne 1f
	cmp $2, %si
	jne 1f
	mov $0x4000, %ax
	mov %ax, %ds
	mov %es:2, %ax		/* 5000:0002 = 0x2222 */
	cmp 2, %ax		/* 4000:0002 = 0x2222 too */
1:	CHECK lds-seg-override
	push %ds
	pop %es
	mov %es, %ax
	cmp $0x4000, %ax
	CHECK push-pop-seg

	/* 66h and 67h prefixes */
	mov $0x12345678, %eax
	shr $16, %eax
	cmp $0x1234, %ax
	CHECK opsize-32
	mov $0x50, %ebx
	movl $0xcafef00d, (%ebx)
	cmpl $0xcafef00d, 0x50
	CHECK addrsize-32

	/* BCD and 16-bit multiply/divide */
	mov $0x19, %al
	add $0x28, %al
	daa
	cmp $0x47, %al
	jne 1f
	mov $47, %al
	aam
	cmp $0x0407, %ax
	jne 1f
	aad
	cmp $47, %ax
1:	CHECK bcd-daa-aam-aad
	mov $1234, %ax
	mov $567, %bx
	mul %bx
	cmp $0x000a, %dx
	jne 1f
	cmp $0xad1e, %ax
	jne 1f
	div %bx
	cmp $1234, %ax
	jne 1f
	test %dx, %dx
1:	CHECK mul-div-16

	/* fast A20, then unreal mode: FS keeps a 4 GiB limit back in real mode */
	in $0x92, %al
	and $0xfe, %al
	or $2, %al
	out %al, $0x92
	lgdtl %cs:gdt_desc
	mov %cr0, %eax
	or $1, %al
	mov %eax, %cr0
	jmp 1f
1:	mov $8, %bx
	mov %bx, %fs
	and $0xfe, %al
	mov %eax, %cr0
	jmp 2f
2:	xor %ax, %ax
	mov %ax, %fs
	mov $0x200000, %ebx
	movl $0x11111111, %fs:(%ebx)
	movl $0x33333333, %fs:0x100000(%ebx)
	cmpl $0x11111111, %fs:(%ebx)
	jne 1f
	cmpl $0x33333333, %fs:0x100000(%ebx)
1:	CHECK unreal-4g-limit-a20
	/* FFFF:0010 is linear 0x100000 with A20 on */
	mov $0x100000, %ebx
	movl $0, %fs:(%ebx)
	mov $0xffff, %ax
	mov %ax, %es
	movw $0x6b6b, %es:0x10
	cmpw $0x6b6b, %fs:(%ebx)
	CHECK ffff-0010-is-1m

	jmp finish

/* BIOS-style service: AX = 0x1234, CF set in the caller's FLAGS. */
int60:
	push %bp
	mov %sp, %bp
	orw $1, 6(%bp)
	pop %bp
	mov $0x1234, %ax
	iret

	.balign 8
gdt:
	.quad 0
	.quad 0x00cf92000000ffff	/* 0x08: flat 4 GiB data */
gdt_desc:
	.word 15
	.long 0xf0000 + gdt

hello:	.asciz "khyve realmode test\n"

	.org 0xfff0
reset_vector:
	ljmp $0xf000, $rom_start
	.org 0x10000
