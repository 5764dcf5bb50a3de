/*
 * exec_table.c: picks the core handler for a decoded instruction from its Zydis mnemonic
 * and operand form, asking each instruction family in turn (exec_fast.c's specialised
 * forms first, then exec_int.c, exec_ctl.c, exec_str.c). Mnemonics without a core handler go to the system half or end as
 * "unsupported" (decode.c).
 */
#include "exec.h"

emu_exec_fn emu_core_handler(const struct emu_insn *in, unsigned mnemonic)
{
	emu_exec_fn fn = emu_fast_handler(in, mnemonic);

	if (!fn)
		fn = emu_int_handler(in, mnemonic);
	if (!fn)
		fn = emu_ctl_handler(in, mnemonic);
	if (!fn)
		fn = emu_str_handler(in, mnemonic);
	return fn;
}
