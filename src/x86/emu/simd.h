/*
 * simd.h: the interpreter's x87, MMX and SSE..SSSE3 instructions (sse_native.c) and
 * CMPXCHG16B. The decoder asks emu_simd_handler() first for every instruction; it claims the
 * forms it executes and returns NULL for everything else (the state instructions FNINIT,
 * FXSAVE, LDMXCSR, ... stay with fpu_state.c).
 */
#ifndef KHYVE_EMU_SIMD_H
#define KHYVE_EMU_SIMD_H

#include <Zydis/Zydis.h>
#include "x86/emu/emu_internal.h"

/*
 * Handler for the decoded instruction (`bytes` are its bytes), or NULL when it is not an
 * x87/MMX/SSE..SSSE3 form sse_native.c executes. May fill in->aux (the native form's index).
 * Handlers follow the core convention (st.rip already past the instruction).
 */
emu_exec_fn emu_simd_handler(struct emu_cpu *cpu, struct emu_insn *in, const uint8_t *bytes,
			     const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *zo);

/*
 * What a waiting x87 or MMX instruction does about an unmasked exception pending in FSW:
 * 0 to go on (none pending, or IGNNE#), EMU_FAULT for #MF (CR0.NE=1), or EMU_STOP with
 * EMU_EXIT_HLT and RIP at the instruction while FERR#'s interrupt is awaited (CR0.NE=0,
 * emu_bus.ferr). Also negates FERR# once the exception was cleared.
 */
int emu_x87_wait(struct emu_cpu *cpu);

#endif
