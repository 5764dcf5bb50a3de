/*
 * test_emu_debug.c: the interpreter's debug facilities on hand-assembled 64-bit code over a
 * fake bus: DR0-DR3 instruction and data breakpoints (DR7 enables, R/W and LEN, DR6 B0-B3,
 * RF in the pushed flags), DR7.GD on MOV DR, the single-step trap after MOV SS, and the
 * TF rule of SYSCALL/SYSRET (the trap follows TF as the instruction leaves it).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "unit.h"
#include "x86/emu/emu.h"

#include "emu_fixture.h"

/* RIP, CS and RFLAGS of the frame a 64-bit delivery pushed at `top` (no error code). */
static uint64_t frame(uint64_t top, int i)
{
	return get64((top & ~0xfull) - 40 + i * 8);
}

TEST(emu_debug_instruction_breakpoint)
{
	static const uint8_t code[] = { 0x90, 0x90, 0xf4 };
	struct vm vm;

	vm_start(&vm);
	put_bytes(CODE, code, sizeof code);
	long_state(&vm.st, 0);
	vm.st.dr[0] = CODE + 1;
	vm.st.dr[7] = 0x402;	/* G0, R/W0=00 (execute), LEN0=00 */
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), 1);
	CHECK_EQ_U64(frame(STACK0 - 0x1000, 0), CODE + 1);	/* a fault: at the nop */
	CHECK_EQ_U64(frame(STACK0 - 0x1000, 2) & (1u << 16), 1u << 16);	/* RF */
	CHECK_EQ_U64(vm.st.dr[6], 0xffff0ff1);
	vm_end(&vm);

	/* Disabled in DR7 (only the L1/G1 pair set): no #DB. */
	vm_start(&vm);
	put_bytes(CODE, code, sizeof code);
	long_state(&vm.st, 0);
	vm.st.dr[0] = CODE + 1;
	vm.st.dr[7] = 0x40c;
	vm.st.dr[1] = 0x7000;
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(vm.st.rip, CODE + 3);
	vm_end(&vm);
}

TEST(emu_debug_data_breakpoint)
{
	/* mov al,[0x5000]; mov [0x5002],al; nop; hlt */
	static const uint8_t code[] = { 0x8a, 0x04, 0x25, 0x00, 0x50, 0x00, 0x00,
					0x88, 0x04, 0x25, 0x02, 0x50, 0x00, 0x00, 0x90, 0xf4 };
	struct vm vm;

	vm_start(&vm);
	put_bytes(CODE, code, sizeof code);
	long_state(&vm.st, 0);
	vm.st.dr[1] = 0x5001;	/* 4-byte breakpoints cover the aligned dword */
	vm.st.dr[7] = 0x00d00408;	/* G1, R/W1=01 (writes), LEN1=11 (4 bytes) */
	vm.st.dr[6] = 0xffff4ff0;	/* BS set by software stays */
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), 1);
	CHECK_EQ_U64(frame(STACK0 - 0x1000, 0), CODE + 14);	/* a trap: after the store */
	CHECK_EQ_U64(vm.st.dr[6], 0xffff4ff2);
	vm_end(&vm);

	/* R/W=11 also takes reads: the load traps first. */
	vm_start(&vm);
	put_bytes(CODE, code, sizeof code);
	long_state(&vm.st, 0);
	vm.st.dr[3] = 0x5000;
	vm.st.dr[7] = 0x30000440;	/* G3, R/W3=11, LEN3=00 (1 byte) */
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), 1);
	CHECK_EQ_U64(frame(STACK0 - 0x1000, 0), CODE + 7);
	CHECK_EQ_U64(vm.st.dr[6] & 0xf, 8);
	vm_end(&vm);
}

TEST(emu_debug_dr7_gd)
{
	static const uint8_t code[] = { 0x0f, 0x21, 0xf0, 0xf4 };	/* mov rax,dr6; hlt */
	struct vm vm;

	vm_start(&vm);
	put_bytes(CODE, code, sizeof code);
	long_state(&vm.st, 0);
	vm.st.dr[7] = 0x2400;	/* GD */
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), 1);
	CHECK_EQ_U64(frame(STACK0 - 0x1000, 0), CODE);	/* a fault: at the MOV */
	CHECK_EQ_U64(frame(STACK0 - 0x1000, 2) & (1u << 16), 1u << 16);
	CHECK_EQ_U64(vm.st.dr[6] & 0x2000, 0x2000);	/* BD */
	CHECK_EQ_U64(vm.st.dr[7], 0x400);		/* GD cleared for the handler */
	vm_end(&vm);
}

TEST(emu_debug_single_step_mov_ss)
{
	static const uint8_t code[] = { 0x8e, 0xd0, 0x90, 0x90, 0xf4 };	/* mov ss,ax; nop */
	struct vm vm;

	vm_start(&vm);
	put_bytes(CODE, code, sizeof code);
	long_state(&vm.st, 0);
	vm.st.gpr[EMU_RAX] = 0x10;
	vm.st.rflags |= 0x100;
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), 1);
	/* no trap after MOV SS: the first one follows the nop after it */
	CHECK_EQ_U64(frame(STACK0 - 0x1000, 0), CODE + 3);
	CHECK_EQ_U64(vm.st.dr[6], 0xffff4ff0);	/* BS */
	vm_end(&vm);
}

TEST(emu_debug_syscall_sysret_tf)
{
	static const uint8_t sysret[] = { 0x48, 0x0f, 0x07 };
	static const uint8_t user[] = { 0x0f, 0x05, 0x90, 0xf4 };	/* syscall; nop; hlt */
	static const uint8_t kern[] = { 0xf4 };
	struct vm vm;

	/* SYSRET loading TF=1: #DB right after it, at the user RIP in ring 3. */
	vm_start(&vm);
	put_bytes(CODE, sysret, sizeof sysret);
	put_bytes(0x106000, user + 2, 2);
	long_state(&vm.st, 0);
	vm.st.star = (0x18ull << 48) | (0x08ull << 32);
	vm.st.gpr[EMU_RCX] = 0x106000;
	vm.st.gpr[EMU_R11] = 0x302;	/* TF IF */
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), 1);
	CHECK_EQ_U64(frame(STACK0, 0), 0x106000);
	CHECK_EQ_U64(frame(STACK0, 1), 0x2b);
	CHECK_EQ_U64(vm.st.dr[6] & 0x4000, 0x4000);
	vm_end(&vm);

	/* SYSCALL with TF=1 whose SFMASK clears TF: no #DB, the kernel's HLT runs. */
	vm_start(&vm);
	put_bytes(CODE, user, sizeof user);
	put_bytes(0x106000, kern, sizeof kern);
	long_state(&vm.st, 3);
	vm.st.star = (0x18ull << 48) | (0x08ull << 32);
	vm.st.lstar = 0x106000;
	vm.st.sfmask = 0x300;
	vm.st.rflags |= 0x100;
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(vm.st.rip, 0x106001);
	CHECK_EQ_U64(vm.st.seg[EMU_CS].sel, 0x08);
	vm_end(&vm);

	/* ... and one that keeps TF: #DB at the kernel entry. */
	vm_start(&vm);
	put_bytes(CODE, user, sizeof user);
	put_bytes(0x106000, kern, sizeof kern);
	long_state(&vm.st, 3);
	vm.st.star = (0x18ull << 48) | (0x08ull << 32);
	vm.st.lstar = 0x106000;
	vm.st.sfmask = 0x200;
	vm.st.rflags |= 0x100;
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), 1);
	CHECK_EQ_U64(frame(STACK3, 0), 0x106000);
	CHECK_EQ_U64(frame(STACK3, 1), 0x08);
	vm_end(&vm);
}
