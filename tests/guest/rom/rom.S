/*
 * rom: the trivial boot ROM for `-l bootrom` and the start-up benchmark: from the reset vector
 * it prints one line on COM1 and powers off (khyve: PM1a_CNT S5, exit 1; QEMU -bios: the
 * isa-debug-exit port, exit 1). Runs under `-M pc -bios` and `-M microvm -bios` too.
 */
#include "romlib.inc"

	.globl rom_start
rom_start:
	cli
	cld
	xor %bp, %bp
	call serial_init
	mov $msg, %si
	call puts
	jmp finish

msg:	.asciz "khyve bootrom: hello\n"

	.org 0xfff0
reset_vector:
	ljmp $0xf000, $rom_start
	.org 0x10000
