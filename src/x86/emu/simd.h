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

/* The x87 exception that is pending at a waiting instruction: #MF (CR0.NE=1) or FERR#. */
int emu_x87_pending(struct emu_cpu *cpu);

#endif
