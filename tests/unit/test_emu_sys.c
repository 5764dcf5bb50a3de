/*
 * test_emu_sys.c: the interpreter's system half on hand-assembled sequences over a fake bus:
 * the real -> protected -> long mode ladder, 4-level paging with #PF error codes, CR2 and
 * accessed/dirty bits, IDT delivery from ring 3 with the TSS RSP0 and IST stack switches,
 * #DF and triple fault, SYSCALL/SYSRET, a segment-limit #GP in 32-bit protected mode, and
 * the MSR rules (#GP for unknown indexes and non-canonical bases).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "unit.h"
#include "x86/emu/emu.h"

#include "emu_fixture.h"

static void gate32(int vec, bool present)
{
	uint64_t h = HANDLERS + vec * 16;

	put64(IDT + vec * 8, (h & 0xffff) | (0x40ull << 16) | (0xeull << 40) |
				     ((uint64_t)present << 47) | ((h >> 16) << 48));
}

TEST(emu_sys_real_to_long_mode)
{
	/* as: real mode -> lgdt, CR0.PE, far jmp to 32-bit; CR4.PAE, CR3, EFER.LME, CR0.PG,
	 * far jmp to 64-bit; movabs rax; hlt (see the commit for the source). */
	static const uint8_t code[] = {
		0xfa, 0x66, 0x0f, 0x01, 0x16, 0x00, 0x0f, 0x0f, 0x20, 0xc0, 0x0c, 0x01,
		0x0f, 0x22, 0xc0, 0x66, 0xea, 0x17, 0x80, 0x00, 0x00, 0x40, 0x00, 0x66,
		0xb8, 0x10, 0x00, 0x8e, 0xd8, 0x8e, 0xd0, 0x8e, 0xc0, 0x0f, 0x20, 0xe0,
		0x83, 0xc8, 0x20, 0x0f, 0x22, 0xe0, 0xb8, 0x00, 0x00, 0x01, 0x00, 0x0f,
		0x22, 0xd8, 0xb9, 0x80, 0x00, 0x00, 0xc0, 0x0f, 0x32, 0x0d, 0x00, 0x01,
		0x00, 0x00, 0x0f, 0x30, 0x0f, 0x20, 0xc0, 0x0d, 0x00, 0x00, 0x00, 0x80,
		0x0f, 0x22, 0xc0, 0xea, 0x52, 0x80, 0x00, 0x00, 0x08, 0x00, 0x48, 0xb8,
		0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0xf4,
	};
	struct vm vm;
	uint16_t lim = 0x4f;
	uint32_t base = GDT;

	vm_start(&vm);
	put_bytes(0x8000, code, sizeof code);
	memcpy(ram + 0xf00, &lim, 2);
	memcpy(ram + 0xf02, &base, 4);
	emu_reset_state(&vm.st);
	vm.st.seg[EMU_CS].sel = 0;
	vm.st.seg[EMU_CS].base = 0;
	vm.st.rip = 0x8000;
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(vm.st.gpr[EMU_RAX], 0x1122334455667788ull);
	CHECK(vm.st.efer & (1u << 10));	/* LMA */
	CHECK_EQ_U64(vm.st.seg[EMU_CS].sel, 0x08);
	CHECK(vm.st.seg[EMU_CS].attr & (1u << 13));	/* L */
	CHECK_EQ_U64(vm.st.seg[EMU_DS].sel, 0x10);
	CHECK(ram[GDT + 0x10 + 5] & 1);	/* accessed bit set by the DS load */
	CHECK_EQ_U64(vm.st.rip, 0x8000 + sizeof code);
	vm_end(&vm);
}

TEST(emu_sys_page_fault_and_ad_bits)
{
	/* mov al,[0x301000]; mov byte [0x302000],1; mov al,[0x300000] (not present) */
	static const uint8_t code[] = {
		0x8a, 0x04, 0x25, 0x00, 0x10, 0x30, 0x00,
		0xc6, 0x04, 0x25, 0x00, 0x20, 0x30, 0x00, 0x01,
		0x8a, 0x04, 0x25, 0x00, 0x00, 0x30, 0x00,
	};
	struct vm vm;

	vm_start(&vm);
	put_bytes(CODE, code, sizeof code);
	put64(PT + 0x100 * 8, 0);	/* 0x300000 not present */
	long_state(&vm.st, 0);
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), 14);
	CHECK_EQ_U64(vm.st.cr2, 0x300000);
	CHECK_EQ_U64(get64(vm.st.gpr[EMU_RSP]), 0);	/* error code: not present, read, S */
	CHECK_EQ_U64(get64(vm.st.gpr[EMU_RSP] + 8), CODE + 15);	/* faulting RIP */
	CHECK((get64(PT + 0x101 * 8) & 0x60) == 0x20);	/* read: A, not D */
	CHECK((get64(PT + 0x102 * 8) & 0x60) == 0x60);	/* write: A and D */
	CHECK(get64(PD + 8) & 0x20);	/* A in the directory entry */
	CHECK_EQ_U64(ram[0x302000], 1);
	vm_end(&vm);

	/* Ring 3 write to a read-only supervisor page: P|W|U = 7; CR0.WP for ring 0. */
	static const uint8_t wr[] = { 0xc6, 0x04, 0x25, 0x00, 0x30, 0x30, 0x00, 0x01, 0xf4 };

	vm_start(&vm);
	put_bytes(CODE, wr, sizeof wr);
	put64(PT + 0x103 * 8, 0x303000 | 1);	/* present, read-only, supervisor */
	long_state(&vm.st, 3);
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), 14);
	CHECK_EQ_U64(get64(vm.st.gpr[EMU_RSP]), 7);
	CHECK_EQ_U64(vm.st.cr2, 0x303000);
	vm_end(&vm);

	vm_start(&vm);
	put_bytes(CODE, wr, sizeof wr);
	put64(PT + 0x103 * 8, 0x303000 | 1);
	long_state(&vm.st, 0);
	vm.st.cr0 &= ~(1ull << 16);	/* WP=0: ring 0 may write */
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), -1);
	CHECK_EQ_U64(ram[0x303000], 1);
	vm_end(&vm);

	vm_start(&vm);
	put_bytes(CODE, wr, sizeof wr);
	put64(PT + 0x103 * 8, 0x303000 | 1);
	long_state(&vm.st, 0);	/* WP=1 */
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), 14);
	CHECK_EQ_U64(get64(vm.st.gpr[EMU_RSP]), 3);
	vm_end(&vm);

	/* NX and a reserved bit on an instruction fetch. */
	static const uint8_t jmp2[] = { 0x48, 0xc7, 0xc0, 0x00, 0x40, 0x30, 0x00, 0xff, 0xe0 };

	vm_start(&vm);
	put_bytes(CODE, jmp2, sizeof jmp2);	/* mov rax,0x304000; jmp rax */
	put64(PT + 0x104 * 8, 0x304000 | 7 | (1ull << 63));
	long_state(&vm.st, 0);
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), 14);
	CHECK_EQ_U64(get64(vm.st.gpr[EMU_RSP]), 0x11);	/* P | I/D */
	CHECK_EQ_U64(vm.st.cr2, 0x304000);
	vm_end(&vm);

	vm_start(&vm);
	put_bytes(CODE, jmp2, sizeof jmp2);
	put64(PT + 0x104 * 8, 0x304000 | 7 | (1ull << 51));	/* reserved above MAXPHYADDR */
	long_state(&vm.st, 0);
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), 14);
	CHECK_EQ_U64(get64(vm.st.gpr[EMU_RSP]), 0x19);	/* P | RSVD | I/D */
	vm_end(&vm);
}

TEST(emu_sys_ring3_to_ring0_tss_and_ist)
{
	static const uint8_t code[] = { 0xcd, 0x80 };	/* int 0x80 */
	struct vm vm;

	vm_start(&vm);
	put_bytes(CODE, code, sizeof code);
	long_state(&vm.st, 3);
	gate64(0x80, 3, 0, true);
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), 0x80);
	CHECK_EQ_U64(vm.st.gpr[EMU_RSP], STACK0 - 40);
	CHECK_EQ_U64(vm.st.seg[EMU_CS].sel, 0x08);
	CHECK_EQ_U64(vm.st.seg[EMU_SS].sel, 0);
	CHECK_EQ_U64(get64(STACK0 - 40), CODE + 2);	/* RIP after INT */
	CHECK_EQ_U64(get64(STACK0 - 32), 0x2b);	/* CS */
	CHECK_EQ_U64(get64(STACK0 - 24) & 0x200, 0x200);	/* RFLAGS.IF */
	CHECK_EQ_U64(get64(STACK0 - 16), STACK3);	/* RSP */
	CHECK_EQ_U64(get64(STACK0 - 8), 0x23);	/* SS */
	CHECK_EQ_U64(vm.st.rflags & 0x200, 0);	/* interrupt gate cleared IF */
	vm_end(&vm);

	/* Gate DPL 0: INT 0x80 from ring 3 is #GP(0x80*8+2). */
	vm_start(&vm);
	put_bytes(CODE, code, sizeof code);
	long_state(&vm.st, 3);
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), 13);
	CHECK_EQ_U64(get64(STACK0 - 48), 0x80 * 8 + 2);
	CHECK_EQ_U64(get64(STACK0 - 40), CODE);	/* faulting RIP: the INT itself */
	vm_end(&vm);

	/* #UD through an IST gate: the IST stack is used, 16-byte aligned. */
	static const uint8_t ud[] = { 0x0f, 0x0b };

	vm_start(&vm);
	put_bytes(CODE, ud, sizeof ud);
	long_state(&vm.st, 3);
	gate64(6, 0, 1, true);
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), 6);
	CHECK_EQ_U64(vm.st.gpr[EMU_RSP], STACK_IST - 40);
	CHECK_EQ_U64(get64(STACK_IST - 40), CODE);
	vm_end(&vm);

	/* IRETQ back to ring 3 restores CS/SS/RSP and nulls nothing it should keep. */
	static const uint8_t iret[] = { 0x48, 0xcf };

	vm_start(&vm);
	put_bytes(CODE, iret, sizeof iret);
	ram[0x105000] = 0xf4;
	long_state(&vm.st, 0);
	vm.st.gpr[EMU_RSP] = STACK0 - 40;
	put64(STACK0 - 40, 0x105000);
	put64(STACK0 - 32, 0x2b);
	put64(STACK0 - 24, 0x202);
	put64(STACK0 - 16, STACK3 - 8);
	put64(STACK0 - 8, 0x23);
	vm.st.nmi_blocked = true;
	ram[0x105000] = 0xf4;
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), 13);	/* HLT at CPL 3 is #GP */
	CHECK_EQ_U64(get64(STACK0 - 40), 0x105000);
	CHECK_EQ_U64(get64(STACK0 - 32), 0x2b);
	CHECK_EQ_U64(get64(STACK0 - 16), STACK3 - 8);
	CHECK(!vm.st.nmi_blocked);
	vm_end(&vm);
}

TEST(emu_sys_double_and_triple_fault)
{
	static const uint8_t ud[] = { 0x0f, 0x0b };
	struct vm vm;

	/* #UD gate not present -> #NP (contributory after benign: serial) -> handler 11. */
	vm_start(&vm);
	put_bytes(CODE, ud, sizeof ud);
	long_state(&vm.st, 0);
	gate64(6, 0, 0, false);
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), 11);
	CHECK_EQ_U64(get64(vm.st.gpr[EMU_RSP]), 6 * 8 + 2 + 1);	/* IDT | EXT */
	vm_end(&vm);

	/* #GP with its gate not present -> #NP while delivering #GP -> #DF. */
	static const uint8_t gp[] = { 0x0f, 0x22, 0xc0 };	/* mov cr0,rax with rax=0 (PG w/o PE) */

	vm_start(&vm);
	put_bytes(CODE, gp, sizeof gp);
	long_state(&vm.st, 3);
	gate64(13, 0, 0, false);
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), 8);
	CHECK_EQ_U64(get64(vm.st.gpr[EMU_RSP]), 0);	/* #DF error code */
	vm_end(&vm);

	/* ... and with #DF not present either: triple fault. */
	vm_start(&vm);
	put_bytes(CODE, gp, sizeof gp);
	long_state(&vm.st, 3);
	gate64(13, 0, 0, false);
	gate64(8, 0, 0, false);
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_TRIPLE_FAULT);
	vm_end(&vm);

	/* #PF while delivering #PF (the ring-0 stack is not mapped) -> #DF on IST. */
	vm_start(&vm);
	put_bytes(CODE, ud, sizeof ud);
	long_state(&vm.st, 3);
	put64(TSS + 4, 0x300000 + 0x1000);	/* RSP0 in the unmapped page */
	put64(PT + 0x100 * 8, 0);
	gate64(6, 0, 0, true);
	gate64(8, 0, 1, true);
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	/* #UD (benign) faults on the stack: #PF, which faults again: #DF on its IST stack. */
	CHECK_EQ_U64(handler_taken(&vm.st), 8);
	CHECK_EQ_U64(vm.st.gpr[EMU_RSP], STACK_IST - 48);
	CHECK_EQ_U64(vm.st.cr2, 0x300000 + 0x1000 - 8);
	vm_end(&vm);
}

TEST(emu_sys_syscall_sysret)
{
	/* ring 3: syscall; ring 0 at LSTAR: sysretq; back in ring 3: hlt (#GP at CPL 3). */
	static const uint8_t user[] = { 0x0f, 0x05, 0xf4 };
	static const uint8_t kern[] = { 0x48, 0x0f, 0x07 };
	struct vm vm;

	vm_start(&vm);
	put_bytes(CODE, user, sizeof user);
	put_bytes(0x106000, kern, sizeof kern);
	long_state(&vm.st, 3);
	vm.st.star = (0x18ull << 48) | (0x08ull << 32);
	vm.st.lstar = 0x106000;
	vm.st.sfmask = 0x200;
	emu_set_state(vm.cpu, &vm.st);
	CHECK_EQ_U64(emu_step(vm.cpu), EMU_EXIT_BUDGET);	/* syscall */
	emu_get_state(vm.cpu, &vm.st);
	CHECK_EQ_U64(vm.st.rip, 0x106000);
	CHECK_EQ_U64(vm.st.seg[EMU_CS].sel, 0x08);
	CHECK_EQ_U64(vm.st.seg[EMU_SS].sel, 0x10);
	CHECK_EQ_U64(vm.st.gpr[EMU_RCX], CODE + 2);
	CHECK_EQ_U64(vm.st.gpr[EMU_R11] & 0x200, 0x200);
	CHECK_EQ_U64(vm.st.rflags & 0x200, 0);	/* SFMASK cleared IF */
	CHECK_EQ_U64(emu_step(vm.cpu), EMU_EXIT_BUDGET);	/* sysretq */
	emu_get_state(vm.cpu, &vm.st);
	CHECK_EQ_U64(vm.st.rip, CODE + 2);
	CHECK_EQ_U64(vm.st.seg[EMU_CS].sel, 0x2b);
	CHECK_EQ_U64(vm.st.seg[EMU_SS].sel, 0x23);
	CHECK_EQ_U64(vm.st.rflags & 0x200, 0x200);
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), 13);	/* hlt in ring 3 */
	vm_end(&vm);

	/* SYSCALL with EFER.SCE clear is #UD. */
	vm_start(&vm);
	put_bytes(CODE, user, sizeof user);
	long_state(&vm.st, 3);
	vm.st.efer &= ~1ull;
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), 6);
	vm_end(&vm);
}

TEST(emu_sys_segment_limit_gp)
{
	/* 32-bit protected mode: mov eax,[0x1000] through DS (limit 0xfff) -> #GP(0). */
	static const uint8_t code[] = { 0xa1, 0x00, 0x10, 0x00, 0x00, 0xa1, 0xfc, 0x0f, 0x00, 0x00,
					0xf4 };
	struct vm vm;

	vm_start(&vm);
	put_bytes(CODE, code, sizeof code);
	emu_reset_state(&vm.st);
	vm.st.cr0 = 0x11;
	vm.st.gdtr_base = GDT;
	vm.st.gdtr_limit = 0x4f;
	vm.st.idtr_base = IDT;
	vm.st.idtr_limit = 0x7ff;
	seg(&vm.st.seg[EMU_CS], 0x40, 0xc09b);
	seg(&vm.st.seg[EMU_SS], 0x10, 0xc093);
	seg(&vm.st.seg[EMU_ES], 0x10, 0xc093);
	vm.st.seg[EMU_DS] = (struct emu_seg){ .sel = 0x48, .limit = 0xfff, .attr = 0x4093 };
	vm.st.gpr[EMU_RSP] = 0x8000;
	vm.st.rip = CODE;
	for (int v = 0; v < 256; v++)
		gate32(v, true);
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), 13);
	CHECK_EQ_U64(vm.st.gpr[EMU_RSP], 0x8000 - 16);
	CHECK_EQ_U64(get64(0x8000 - 16) & 0xffffffff, 0);	/* error code */
	CHECK_EQ_U64(get64(0x8000 - 12) & 0xffffffff, CODE);	/* EIP of the MOV */
	vm_end(&vm);

	/* Loading a selector beyond the GDT limit: #GP(selector). */
	static const uint8_t lds[] = { 0x66, 0xb8, 0x80, 0x00, 0x8e, 0xd8 };	/* mov ax,0x80; mov ds,ax */

	vm_start(&vm);
	put_bytes(CODE, lds, sizeof lds);
	emu_reset_state(&vm.st);
	vm.st.cr0 = 0x11;
	vm.st.gdtr_base = GDT;
	vm.st.gdtr_limit = 0x4f;
	vm.st.idtr_base = IDT;
	vm.st.idtr_limit = 0x7ff;
	seg(&vm.st.seg[EMU_CS], 0x40, 0xc09b);
	seg(&vm.st.seg[EMU_SS], 0x10, 0xc093);
	seg(&vm.st.seg[EMU_DS], 0x10, 0xc093);
	vm.st.gpr[EMU_RSP] = 0x8000;
	vm.st.rip = CODE;
	for (int v = 0; v < 256; v++)
		gate32(v, true);
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), 13);
	CHECK_EQ_U64(get64(0x8000 - 16) & 0xffffffff, 0x80);
	vm_end(&vm);
}

TEST(emu_sys_msrs)
{
	/* wrmsr FS_BASE with a non-canonical value -> #GP; unknown MSR read -> #GP. */
	static const uint8_t code[] = {
		0xb9, 0x00, 0x01, 0x00, 0xc0,	/* mov ecx,0xc0000100 */
		0xba, 0x00, 0x80, 0x00, 0x00,	/* mov edx,0x8000 */
		0x31, 0xc0,			/* xor eax,eax */
		0x0f, 0x30,			/* wrmsr */
	};
	static const uint8_t code2[] = {
		0xb9, 0x34, 0x12, 0x00, 0x00,	/* mov ecx,0x1234 */
		0x0f, 0x32,			/* rdmsr */
	};
	static const uint8_t code3[] = {
		0xb9, 0x77, 0x02, 0x00, 0x00,	/* mov ecx,0x277 (PAT) */
		0x0f, 0x32,			/* rdmsr */
		0xf4,
	};
	struct vm vm;

	vm_start(&vm);
	put_bytes(CODE, code, sizeof code);
	long_state(&vm.st, 0);
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), 13);
	CHECK_EQ_U64(get64(vm.st.gpr[EMU_RSP] + 8), CODE + 12);
	vm_end(&vm);

	vm_start(&vm);
	put_bytes(CODE, code2, sizeof code2);
	long_state(&vm.st, 0);
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), 13);
	vm_end(&vm);

	vm_start(&vm);
	put_bytes(CODE, code3, sizeof code3);
	long_state(&vm.st, 0);
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), -1);
	CHECK_EQ_U64(vm.st.gpr[EMU_RAX], 0x00070406);
	CHECK_EQ_U64(vm.st.gpr[EMU_RDX], 0x00070406);
	vm_end(&vm);
}

/* 32-bit protected mode at CPL 0 with the 32-bit IDT, flat segments, no paging. */
static void prot32_state(struct emu_state *st)
{
	emu_reset_state(st);
	st->cr0 = 0x11;
	st->gdtr_base = GDT;
	st->gdtr_limit = 0x5f;
	st->idtr_base = IDT;
	st->idtr_limit = 0x7ff;
	st->ldtr = (struct emu_seg){ .attr = 1u << 16 };
	seg(&st->seg[EMU_CS], 0x40, 0xc09b);
	for (int i = 0; i < EMU_NSREGS; i++)
		if (i != EMU_CS)
			seg(&st->seg[i], 0x10, 0xc093);
	st->gpr[EMU_RSP] = 0x8000;
	st->rip = CODE;
	for (int v = 0; v < 256; v++)
		gate32(v, true);
}

#define TSS32 0x4000

/* A 32-bit TSS at 0x50 with ESP0/SS0 and an I/O bitmap allowing port 0x71 only. */
static void tss32(void)
{
	uint32_t esp0 = STACK0, ss0 = 0x10;
	uint16_t iomap = 0x68;

	put64(GDT + 0x50, 0x0000890000000000ull | ((uint64_t)TSS32 << 16) | (0x68 + 8192 + 1));
	memcpy(ram + TSS32 + 4, &esp0, 4);
	memcpy(ram + TSS32 + 8, &ss0, 4);
	memcpy(ram + TSS32 + 0x66, &iomap, 2);
	memset(ram + TSS32 + 0x68, 0xff, 8193);
	ram[TSS32 + 0x68 + 0x71 / 8] &= ~(1u << (0x71 % 8));
}

TEST(emu_sys_prot32_far_call_ltr_lar_lsl)
{
	static const uint8_t code[] = {
		0x9a, 0x00, 0x01, 0x10, 0x00, 0x40, 0x00,	/* call far 0x40:0x100100 */
		0x66, 0xb8, 0x50, 0x00, 0x0f, 0x00, 0xd8,	/* mov ax,0x50; ltr ax */
		0x66, 0x0f, 0x00, 0xc9,				/* str cx */
		0x66, 0xb8, 0x23, 0x00,				/* mov ax,0x23 */
		0x0f, 0x02, 0xd8, 0x0f, 0x03, 0xd0, 0xf4,	/* lar ebx,eax; lsl edx,eax; hlt */
	};
	struct vm vm;

	vm_start(&vm);
	put_bytes(CODE, code, sizeof code);
	ram[0x100100] = 0xcb;	/* retf */
	tss32();
	prot32_state(&vm.st);
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), -1);
	CHECK_EQ_U64(vm.st.rip, CODE + sizeof code);
	CHECK_EQ_U64(vm.st.gpr[EMU_RSP], 0x8000);
	CHECK_EQ_U64(get64(0x8000 - 8) & 0xffffffff, CODE + 7);	/* pushed EIP */
	CHECK_EQ_U64(ram[GDT + 0x50 + 5], 0x8b);	/* TSS busy */
	CHECK_EQ_U64(vm.st.tr.sel, 0x50);
	CHECK_EQ_U64(vm.st.gpr[EMU_RCX] & 0xffff, 0x50);
	CHECK_EQ_U64(vm.st.gpr[EMU_RBX], 0x00c0f300);
	CHECK_EQ_U64(vm.st.gpr[EMU_RDX], 0xffffffff);
	CHECK(vm.st.rflags & 0x40);	/* ZF */
	vm_end(&vm);
}

TEST(emu_sys_prot32_ring3_io_bitmap_and_4m_page)
{
	static const uint8_t code[] = { 0xe4, 0x71, 0xe4, 0x70 };	/* in al,0x71; in al,0x70 */
	struct vm vm;

	vm_start(&vm);
	put_bytes(CODE, code, sizeof code);
	tss32();
	put64(0x20000, 0x87);	/* PDE 0: 4 MiB page, U, RW, P */
	prot32_state(&vm.st);
	vm.st.cr0 |= 0x80000000;
	vm.st.cr4 = 0x10;	/* PSE */
	vm.st.cr3 = 0x20000;
	vm.st.tr = (struct emu_seg){ .sel = 0x50, .base = TSS32, .limit = 0x68 + 8192,
				     .attr = 0x8b };
	seg(&vm.st.seg[EMU_CS], 0x1b, 0xc0fb);
	for (int i = 0; i < EMU_NSREGS; i++)
		if (i != EMU_CS)
			seg(&vm.st.seg[i], 0x23, 0xc0f3);
	vm.st.gpr[EMU_RSP] = STACK3;
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), 13);
	CHECK_EQ_U64(vm.st.gpr[EMU_RAX] & 0xff, 0xff);	/* the allowed IN ran */
	CHECK_EQ_U64(vm.st.gpr[EMU_RSP], STACK0 - 24);
	CHECK_EQ_U64(get64(STACK0 - 24) & 0xffffffff, 0);	/* error code */
	CHECK_EQ_U64(get64(STACK0 - 20) & 0xffffffff, CODE + 2);	/* EIP */
	CHECK_EQ_U64(get64(STACK0 - 16) & 0xffff, 0x1b);	/* CS */
	CHECK_EQ_U64(get64(STACK0 - 8) & 0xffffffff, STACK3);	/* ESP */
	CHECK_EQ_U64(get64(STACK0 - 4) & 0xffff, 0x23);	/* SS */
	CHECK_EQ_U64(vm.st.seg[EMU_SS].sel, 0x10);
	CHECK(get64(0x20000) & 0x20);	/* accessed */
	vm_end(&vm);
}

TEST(emu_sys_fpu_sse_state)
{
	static const uint8_t code[] = {
		0xdb, 0xe3,					/* fninit */
		0xd9, 0x3c, 0x25, 0x00, 0x50, 0x00, 0x00,	/* fnstcw [0x5000] */
		0x0f, 0xae, 0x14, 0x25, 0x04, 0x50, 0x00, 0x00,	/* ldmxcsr [0x5004] */
		0x0f, 0xae, 0x04, 0x25, 0x00, 0x60, 0x00, 0x00,	/* fxsave [0x6000] */
		0x0f, 0xae, 0x1c, 0x25, 0x08, 0x50, 0x00, 0x00,	/* stmxcsr [0x5008] */
		0xdf, 0xe0, 0xf4,				/* fnstsw ax; hlt */
		0x0f, 0xae, 0x14, 0x25, 0x0c, 0x50, 0x00, 0x00,	/* ldmxcsr [0x500c] */
	};
	uint32_t mx = 0x9fc0, bad = 0x10000;
	struct vm vm;

	vm_start(&vm);
	put_bytes(CODE, code, sizeof code);
	memcpy(ram + 0x5004, &mx, 4);
	memcpy(ram + 0x500c, &bad, 4);
	long_state(&vm.st, 0);
	vm.st.cr4 |= 0x600;	/* OSFXSR OSXMMEXCPT */
	vm.st.gpr[EMU_RAX] = 0x1234;
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), -1);
	CHECK_EQ_U64(ram[0x5000] | ram[0x5001] << 8, 0x37f);
	CHECK_EQ_U64(ram[0x6000] | ram[0x6001] << 8, 0x37f);	/* FXSAVE FCW */
	CHECK_EQ_U64(get64(0x6000 + 24) & 0xffffffff, 0x9fc0);	/* MXCSR */
	CHECK_EQ_U64(get64(0x6000 + 24) >> 32, 0xffff);	/* MXCSR_MASK */
	CHECK_EQ_U64(get64(0x5008) & 0xffffffff, 0x9fc0);
	CHECK_EQ_U64(vm.st.gpr[EMU_RAX] & 0xffff, 0);	/* FSW */
	/* Reserved MXCSR bit: #GP(0). */
	vm.st.rip = CODE + sizeof code - 8;
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), 13);
	vm_end(&vm);

	/* CR0.TS: x87 and SSE state instructions raise #NM; without OSFXSR LDMXCSR is #UD. */
	vm_start(&vm);
	put_bytes(CODE, code, sizeof code);
	long_state(&vm.st, 0);
	vm.st.cr0 |= 8;
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), 7);
	vm_end(&vm);

	vm_start(&vm);
	put_bytes(CODE, code, sizeof code);
	long_state(&vm.st, 0);
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), 6);
	CHECK_EQ_U64(get64(vm.st.gpr[EMU_RSP]), CODE + 9);	/* the LDMXCSR */
	vm_end(&vm);

	/* x87 arithmetic runs (sse_native.c): fld1; fld1; faddp; hlt leaves 2.0 in ST0. */
	static const uint8_t fadd[] = { 0xd9, 0xe8, 0xd9, 0xe8, 0xde, 0xc1, 0xf4 };

	vm_start(&vm);
	put_bytes(CODE, fadd, sizeof fadd);
	long_state(&vm.st, 0);
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), -1);
	uint64_t mant;

	memcpy(&mant, vm.st.fxsave + 32, 8);
	CHECK_EQ_U64(mant, 0x8000000000000000ull);
	CHECK_EQ_U64(vm.st.fxsave[40] | vm.st.fxsave[41] << 8, 0x4000);
	vm_end(&vm);
}

TEST(emu_sys_unreal_mode_and_real_mode_int)
{
	/* Real mode: PE on, FS <- 0x48 (limit 4 KiB), GS <- 0x10 (4 GiB), PE off, reload both
	 * selectors with 0; GS:[0x200000] works (unreal), INT 0x21 -> ISR sets DL, IRET;
	 * FS:[0x200000] is beyond the kept 4 KiB limit: #GP through the IVT. */
	static const uint8_t code[] = {
		0xfa, 0x66, 0x0f, 0x01, 0x16, 0x00, 0x0f, 0x0f, 0x20, 0xc0, 0x0c, 0x01,
		0x0f, 0x22, 0xc0, 0xbb, 0x48, 0x00, 0x8e, 0xe3, 0xbb, 0x10, 0x00, 0x8e,
		0xeb, 0x24, 0xfe, 0x0f, 0x22, 0xc0, 0x31, 0xdb, 0x8e, 0xe3, 0x8e, 0xeb,
		0x66, 0xbb, 0x00, 0x00, 0x20, 0x00, 0x65, 0x67, 0x66, 0xc7, 0x03, 0x78,
		0x56, 0x34, 0x12, 0x65, 0x67, 0x66, 0x8b, 0x0b, 0xcd, 0x21, 0x64, 0x67,
		0x66, 0x8b, 0x03, 0xf4, 0xb2, 0x55, 0xcf,
	};
	struct vm vm;
	uint16_t lim = 0x5f;
	uint32_t base = GDT;
	uint16_t ivt21[2] = { 0x8040, 0 }, ivt13[2] = { 0x8100, 0 };

	vm_start(&vm);
	put_bytes(0x8000, code, sizeof code);
	ram[0x8100] = 0xf4;
	memcpy(ram + 0xf00, &lim, 2);
	memcpy(ram + 0xf02, &base, 4);
	memcpy(ram + 0x21 * 4, ivt21, 4);
	memcpy(ram + 13 * 4, ivt13, 4);
	emu_reset_state(&vm.st);
	vm.st.seg[EMU_CS].sel = 0;
	vm.st.seg[EMU_CS].base = 0;
	vm.st.rip = 0x8000;
	vm.st.gpr[EMU_RSP] = 0x7000;
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(get64(0x200000) & 0xffffffff, 0x12345678);
	CHECK_EQ_U64(vm.st.gpr[EMU_RCX] & 0xffffffff, 0x12345678);
	CHECK_EQ_U64(vm.st.gpr[EMU_RDX] & 0xff, 0x55);	/* the ISR ran and returned */
	CHECK_EQ_U64(vm.st.rip, 0x8101);	/* #GP handler */
	CHECK_EQ_U64(vm.st.gpr[EMU_RSP], 0x7000 - 6);
	CHECK_EQ_U64(ram[0x7000 - 6] | ram[0x7000 - 5] << 8, 0x803a);	/* faulting IP */
	CHECK_EQ_U64(vm.st.seg[EMU_GS].limit, 0xffffffff);
	CHECK_EQ_U64(vm.st.seg[EMU_FS].limit, 0xfff);
	vm_end(&vm);
}

TEST(emu_sys_nmi_delivery_and_blocking)
{
	static const uint8_t code[] = { 0x90, 0x90, 0x90, 0xf4 };
	struct vm vm;

	vm_start(&vm);
	put_bytes(CODE, code, sizeof code);
	long_state(&vm.st, 0);
	emu_set_state(vm.cpu, &vm.st);
	emu_raise_events(vm.cpu, EMU_EV_NMI);
	CHECK_EQ_U64(emu_run(vm.cpu, 100), EMU_EXIT_HLT);
	emu_get_state(vm.cpu, &vm.st);
	CHECK_EQ_U64(handler_taken(&vm.st), 2);
	CHECK(vm.st.nmi_blocked);
	CHECK_EQ_U64(get64(vm.st.gpr[EMU_RSP]), CODE);
	/* While blocked, a second NMI waits; IRETQ unblocks it. */
	static const uint8_t iret[] = { 0x48, 0xcf };
	put_bytes(0x107000, iret, sizeof iret);
	vm.st.rip = 0x107000;
	emu_set_state(vm.cpu, &vm.st);
	emu_raise_events(vm.cpu, EMU_EV_NMI);
	CHECK_EQ_U64(emu_step(vm.cpu), EMU_EXIT_BUDGET);	/* the IRETQ, NMI held */
	emu_get_state(vm.cpu, &vm.st);
	CHECK_EQ_U64(vm.st.rip, CODE);
	CHECK(!vm.st.nmi_blocked);
	CHECK_EQ_U64(emu_run(vm.cpu, 100), EMU_EXIT_HLT);
	emu_get_state(vm.cpu, &vm.st);
	CHECK_EQ_U64(handler_taken(&vm.st), 2);
	vm_end(&vm);
}

TEST(emu_sys_mmio_split_across_pages)
{
	/* mov dword [0x3feffe],0xaabbccdd where page 0x3fe000 is MMIO and 0x3ff000 is RAM:
	 * one 2-byte MMIO write, two bytes of RAM. */
	static const uint8_t code[] = { 0xc7, 0x04, 0x25, 0xfe, 0xef, 0x3f, 0x00,
					0xdd, 0xcc, 0xbb, 0xaa, 0xf4 };
	struct vm vm;

	vm_start(&vm);
	put_bytes(CODE, code, sizeof code);
	mmio_page = 0x3fe000;
	mmio_n = 0;
	long_state(&vm.st, 0);
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), -1);
	CHECK_EQ_U64(mmio_n, 1);
	CHECK_EQ_U64(mmio_log[0].gpa, 0x3feffe);
	CHECK_EQ_U64(mmio_log[0].size, 2);
	CHECK(mmio_log[0].write);
	CHECK_EQ_U64(mmio_log[0].val, 0xccdd);
	CHECK_EQ_U64(ram[0x3ff000], 0xbb);
	CHECK_EQ_U64(ram[0x3ff001], 0xaa);
	mmio_page = 0;
	vm_end(&vm);
}

/* 32-bit PAE paging: 2 MiB page for the low memory, 4 KiB pages above, NX, PDPTE rules. */
static void pae_state(struct emu_state *st)
{
	prot32_state(st);
	put64(0x30000, 0x31000 | 1);	/* PDPTE 0 */
	put64(0x30008, 0x31000 | 1 | 2);	/* PDPTE 1: bit 1 is reserved */
	put64(0x31000, 0x83);	/* 2 MiB at 0, supervisor */
	put64(0x31008, 0x32000 | 3);
	for (int i = 0; i < 512; i++)
		put64(0x32000 + i * 8, (0x200000ull + i * 4096) | 3);
	put64(0x32000 + 0x100 * 8, 0x300000 | 3 | (1ull << 63));	/* NX page */
	st->cr4 = 0x20;
	st->efer = 0x800;	/* NXE */
	st->cr3 = 0x30000;
	st->cr0 |= 0x80000000;
}

TEST(emu_sys_pae_nx_and_pdpte_reserved)
{
	static const uint8_t rd[] = { 0xa0, 0x00, 0x00, 0x30, 0x00,	/* mov al,[0x300000] */
				      0xa1, 0x00, 0x00, 0x00, 0x40 };	/* mov eax,[0x40000000] */
	static const uint8_t ex[] = { 0xb8, 0x00, 0x00, 0x30, 0x00, 0xff, 0xe0 };
	struct vm vm;

	vm_start(&vm);
	put_bytes(CODE, rd, sizeof rd);
	ram[0x300000] = 0x5a;
	pae_state(&vm.st);
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(vm.st.gpr[EMU_RAX] & 0xff, 0x5a);	/* NX pages are readable */
	CHECK_EQ_U64(handler_taken(&vm.st), 14);
	CHECK_EQ_U64(get64(0x8000 - 16) & 0xffffffff, 0x9);	/* P | RSVD */
	CHECK_EQ_U64(vm.st.cr2, 0x40000000);
	vm_end(&vm);

	vm_start(&vm);
	put_bytes(CODE, ex, sizeof ex);
	pae_state(&vm.st);
	CHECK_EQ_U64(vm_run(&vm), EMU_EXIT_HLT);
	CHECK_EQ_U64(handler_taken(&vm.st), 14);
	CHECK_EQ_U64(get64(0x8000 - 16) & 0xffffffff, 0x11);	/* P | I/D */
	CHECK_EQ_U64(vm.st.cr2, 0x300000);
	vm_end(&vm);
}
