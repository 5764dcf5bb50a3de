/*
 * exec_table.c: picks the core handler for a decoded instruction from its Zydis mnemonic
 * and operand form (the exec_*.c families). Mnemonics without a core handler go to the
 * system half or end as "unsupported".
 */
#include "exec.h"

emu_exec_fn emu_core_handler(const struct emu_insn *in, unsigned mnemonic)
{
	switch (mnemonic) {
	default:
		return NULL;
	}
}
