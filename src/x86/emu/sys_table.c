/*
 * sys_table.c: which system-half handler runs a decoded instruction: by Zydis mnemonic for
 * the mnemonics the system half owns, and by form for the system forms of core mnemonics
 * (MOV to/from segment, control and debug registers, PUSH/POP Sreg, far JMP/CALL/RET).
 */
#include "x86/emu/emu_internal.h"

emu_exec_fn emu_sys_handler(unsigned zydis_mnemonic)
{
	emu_exec_fn (*const lookups[])(unsigned) = {
		emu_except_handler, emu_segins_handler, emu_sysctl_handler,
		emu_msr_handler,    emu_io_handler,	emu_fpu_handler,
	};

	for (unsigned i = 0; i < sizeof lookups / sizeof lookups[0]; i++) {
		emu_exec_fn fn = lookups[i](zydis_mnemonic);

		if (fn)
			return fn;
	}
	return NULL;
}

emu_exec_fn emu_sys_handler_insn(const struct emu_insn *in)
{
	emu_exec_fn fn = emu_segins_form(in);

	return fn ? fn : emu_sysctl_form(in);
}
