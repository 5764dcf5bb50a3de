/*
 * run.c: the interpreter's dispatch loop and its public entry points: vCPU creation, state
 * exchange, asynchronous events (NMI, external interrupts, exit requests) taken at
 * instruction boundaries with the STI/MOV SS interrupt shadow (SDM Vol. 3 §6.8.3), the
 * single-step trap (TF, §18.3.1.4), operand access and the stack. Traces of decoded
 * instructions come from cache.c; RIP convention in emu_internal.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "exec.h"

#define EMU_TRACES_BYTES (sizeof(struct emu_trace) * EMU_TRACE_SLOTS)
#define EMU_POOL_BYTES (sizeof(struct emu_insn) * EMU_POOL_INSNS)
/*
 * Instructions a chain may run through jumps before it returns to the loop. Handlers whose
 * compiler could not make their chaining call a tail call (locals whose address is taken;
 * any handler in a -O1 sanitizer build) nest one stack frame per instruction, so this
 * bounds the stack a chain uses; it also bounds how long a loop runs code that another
 * vCPU has since rewritten.
 */
#define EMU_LINK_ROOM 256

struct emu_cpu *emu_cpu_create(struct emu_machine *m, const struct emu_bus *bus)
{
	struct emu_cpu *cpu = calloc(1, sizeof(*cpu));
	struct emu_core *core = calloc(1, sizeof(*core));

	if (!cpu || !core)
		goto fail;
	/* anonymous mappings: zeroed, and only the pages in use cost memory */
	core->traces = mmap(NULL, EMU_TRACES_BYTES, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	core->pool = mmap(NULL, EMU_POOL_BYTES, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (core->traces == MAP_FAILED || core->pool == MAP_FAILED ||
	    emu_decoder_init(core) < 0)
		goto fail;
	cpu->core_private = core;
	cpu->machine = m;
	cpu->bus = *bus;
	emu_reset_state(&cpu->st);
	emu_sys_state_changed(cpu);
	return cpu;
fail:
	if (core) {
		if (core->traces && core->traces != MAP_FAILED)
			munmap(core->traces, EMU_TRACES_BYTES);
		if (core->pool && core->pool != MAP_FAILED)
			munmap(core->pool, EMU_POOL_BYTES);
	}
	free(core);
	free(cpu);
	return NULL;
}

void emu_cpu_destroy(struct emu_cpu *cpu)
{
	struct emu_core *core;

	if (!cpu)
		return;
	core = emu_core(cpu);
	munmap(core->traces, EMU_TRACES_BYTES);
	munmap(core->pool, EMU_POOL_BYTES);
	free(core);
	free(cpu);
}

void emu_get_state(struct emu_cpu *cpu, struct emu_state *st)
{
	emu_flags_materialise(cpu);
	*st = cpu->st;
}

void emu_set_state(struct emu_cpu *cpu, const struct emu_state *st)
{
	cpu->st = *st;
	emu_set_rflags(cpu, st->rflags);
	emu_core(cpu)->fetch_valid = false;
	emu_sys_state_changed(cpu);
}

void emu_raise_events(struct emu_cpu *cpu, uint32_t events)
{
	atomic_fetch_or(&cpu->events, events);
}

uint32_t emu_pending_events(const struct emu_cpu *cpu)
{
	return atomic_load(&cpu->events);
}

void emu_clear_events(struct emu_cpu *cpu, uint32_t events)
{
	atomic_fetch_and(&cpu->events, ~events);
}

const char *emu_last_error(const struct emu_cpu *cpu)
{
	return cpu->error;
}

uint64_t emu_insn_count(const struct emu_cpu *cpu)
{
	return cpu->insn_count;
}

/* ---- operands and stack ---- */

void emu_op_ea(struct emu_cpu *cpu, const struct emu_insn *in, int idx, int *sreg,
	       uint64_t *offset)
{
	*sreg = in->op[idx].seg;
	*offset = emu_ea_off(cpu, in, &in->op[idx]);
}

int emu_op_read(struct emu_cpu *cpu, const struct emu_insn *in, int idx, uint64_t *val)
{
	const struct emu_operand *op = &in->op[idx];

	*val = 0;
	switch (op->kind) {
	case EMU_OPK_REG:
		if (op->reg >= EMU_REG_SREG && op->reg < EMU_REG_SREG + EMU_NSREGS)
			*val = cpu->st.seg[op->reg - EMU_REG_SREG].sel;
		else if (op->reg < EMU_REG_SREG)
			*val = emu_reg_get(cpu, op->reg, op->size);
		else
			return emu_unsupported(cpu, "operand register %u not readable here",
					       op->reg);
		return EMU_OK;
	case EMU_OPK_MEM:
		return emu_mread(cpu, op->seg, emu_ea_off(cpu, in, op), val, op->size);
	case EMU_OPK_IMM:
		*val = op->imm;
		return EMU_OK;
	case EMU_OPK_PTR:
		*val = (uint64_t)op->disp;
		return EMU_OK;
	default:
		return emu_unsupported(cpu, "operand %d has no value", idx);
	}
}

int emu_op_write(struct emu_cpu *cpu, const struct emu_insn *in, int idx, uint64_t val)
{
	const struct emu_operand *op = &in->op[idx];

	switch (op->kind) {
	case EMU_OPK_REG:
		if (op->reg >= EMU_REG_SREG)
			return emu_unsupported(cpu, "operand register %u not writable here",
					       op->reg);
		emu_reg_set(cpu, op->reg, op->size, val);
		return EMU_OK;
	case EMU_OPK_MEM:
		return emu_mwrite(cpu, op->seg, emu_ea_off(cpu, in, op), &val, op->size);
	default:
		return emu_unsupported(cpu, "operand %d is not writable", idx);
	}
}

int emu_rd_slow(struct emu_cpu *cpu, int sreg, uint64_t off, uint64_t *v, unsigned size)
{
	*v = 0;
	return emu_mread(cpu, sreg, off, v, size);
}

int emu_wr_slow(struct emu_cpu *cpu, int sreg, uint64_t off, uint64_t v, unsigned size)
{
	return emu_mwrite(cpu, sreg, off, &v, size);
}

int emu_push(struct emu_cpu *cpu, uint64_t val, unsigned size)
{
	uint64_t m = emu_size_mask(cpu->stack_size);
	uint64_t sp = (cpu->st.gpr[EMU_RSP] - size) & m;
	int r = emu_wr(cpu, EMU_SS, sp, val, size);

	if (r)
		return r;
	cpu->st.gpr[EMU_RSP] = (cpu->st.gpr[EMU_RSP] & ~m) | sp;
	return EMU_OK;
}

int emu_pop(struct emu_cpu *cpu, uint64_t *val, unsigned size)
{
	uint64_t m = emu_size_mask(cpu->stack_size);
	uint64_t sp = cpu->st.gpr[EMU_RSP] & m;
	int r;

	r = emu_rd(cpu, EMU_SS, sp, val, size);
	if (r)
		return r;
	cpu->st.gpr[EMU_RSP] = (cpu->st.gpr[EMU_RSP] & ~m) | ((sp + size) & m);
	return EMU_OK;
}

int emu_branch(struct emu_cpu *cpu, uint64_t target)
{
	if (cpu->mode == EMU_MODE_LONG64) {
		if (!emu_canonical(target))
			return emu_gp0(cpu);
	} else if (target > cpu->st.seg[EMU_CS].limit) {
		return emu_gp0(cpu);
	}
	cpu->st.rip = target;
	return EMU_OK;
}

/* ---- the loop ---- */

/* Finish a handler/delivery result: deliver faults until none is pending. 0 or EMU_STOP. */
static int settle(struct emu_cpu *cpu, int r)
{
	int guard = 0;

	while (r == EMU_FAULT && guard++ < 4) {
		emu_core(cpu)->fetch_valid = false;
		r = emu_deliver_pending_fault(cpu);
	}
	if (r == EMU_FAULT)
		return emu_unsupported(cpu, "exception delivery did not settle");
	return r == EMU_STOP ? EMU_STOP : 0;
}

/* Take a pending event if one is deliverable. 1 when one was taken, 0 if none, or EMU_STOP
 * (as -EMU_STOP) when delivery stopped the CPU. */
static int take_event(struct emu_cpu *cpu, uint32_t ev)
{
	int r, v;

	if (cpu->st.interrupt_shadow)
		return 0;
	if ((ev & EMU_EV_NMI) && !cpu->st.nmi_blocked) {
		atomic_fetch_and(&cpu->events, ~EMU_EV_NMI);
		emu_core(cpu)->fetch_valid = false;
		r = emu_deliver(cpu, EMU_NMI, EMU_EVT_NMI, 0, false, cpu->st.rip);
		return settle(cpu, r) ? -EMU_STOP : 1;
	}
	if ((ev & EMU_EV_INTR) && (cpu->st.rflags & EMU_IF)) {
		atomic_fetch_and(&cpu->events, ~EMU_EV_INTR);
		v = cpu->bus.intr_ack ? cpu->bus.intr_ack(cpu->bus.opaque) : -1;
		if (v < 0)
			return 0;
		emu_core(cpu)->fetch_valid = false;
		r = emu_deliver(cpu, v & 0xff, EMU_EVT_EXTERNAL, 0, false, cpu->st.rip);
		return settle(cpu, r) ? -EMU_STOP : 1;
	}
	return 0;
}

/* Whether pending events `ev` stop trace chaining: EMU_EV_EXIT always, NMI and INTR only
 * when deliverable now (an INTR request kept raised while IF=0 must not cost a return to
 * the outer loop after every trace). */
static inline bool event_due(const struct emu_cpu *cpu, uint32_t ev)
{
	return (ev & EMU_EV_EXIT) || ((ev & EMU_EV_NMI) && !cpu->st.nmi_blocked) ||
	       ((ev & EMU_EV_INTR) && (cpu->st.rflags & EMU_IF));
}

/* The entry after each trace's last instruction: it ends the chain (exec.h). */
int emu_exec_trace_end(struct emu_cpu *cpu, const struct emu_insn *in)
{
	return EMU_OK;
}

const struct emu_insn emu_trace_end_insn = { .exec = emu_exec_trace_end };

/*
 * Execute trace `t` and, while branches lead to traces found on the fast path and no event
 * is pending, the traces after it, up to instruction count `limit`. Returns 0 to go on,
 * -1 to go on after a fault was delivered, EMU_STOP when the loop must return
 * cpu->stop_reason. Each trace runs as chains (exec.h): the loop restarts the chain after
 * a handler that returned without chaining, and leaves the trace at a taken branch.
 */
static int run_trace(struct emu_cpu *cpu, const struct emu_trace *t, uint64_t limit)
{
	uint64_t count = cpu->insn_count, t_rip;
	const struct emu_insn *in, *start;
	struct emu_core *core = emu_core(cpu);
	struct emu_insn part[EMU_TRACE_MAX + 1];
	uint32_t ev;
	int r;

	for (;;) {
		t_rip = cpu->st.rip;
		start = t->insn;
		cpu->chain_extra = 0;
		if (__builtin_expect(t->n > limit - count, 0)) {
			/* the budget ends inside this trace: run a copy of the part it allows */
			unsigned k = limit - count;

			memcpy(part, start, k * sizeof(*start));
			if (part[k - 1].flags & EMU_IF_FUSED)	/* its partner is not copied */
				part[k - 1].exec = emu_core_handler(&part[k - 1], part[k - 1].mnemonic);
			part[k] = emu_trace_end_insn;
			start = part;
			cpu->chain_room = INT64_MIN;	/* no links: their targets are not copied */
		} else {
			/* a link may restart at most a whole trace: keep room for it */
			cpu->chain_room = (int64_t)(limit - count) - EMU_TRACE_MAX;
			if (cpu->chain_room > EMU_LINK_ROOM)
				cpu->chain_room = EMU_LINK_ROOM;
		}
		in = start;
		cpu->chain_base = start;
		for (;;) {
			r = emu_chain_start(cpu, in);
			in = cpu->chain_at;
			if (__builtin_expect(r | cpu->brk, 0))
				goto slow;
			if (in->exec == emu_exec_trace_end)
				break;
			/* a handler that did not chain: fall through, or leave at a taken branch */
			if (cpu->st.rip != ((cpu->insn_rip + in->len) & cpu->ip_mask)) {
				in++;
				break;
			}
			in++;
		}
		count += (in - cpu->chain_base) + cpu->chain_extra;
		ev = atomic_load_explicit(&cpu->events, memory_order_relaxed);
		if (count >= limit || (ev && event_due(cpu, ev)) ||
		    (cpu->st.rflags & EMU_TF) || cpu->st.interrupt_shadow)
			break;
		/*
		 * A loop back to this trace's start runs it again without the lookup: nothing
		 * changed the code mapping (a system instruction or event clears fetch_valid)
		 * and the code is unchanged (same generation).
		 */
		if (cpu->st.rip == t_rip && core->fetch_valid &&
		    t->gen == emu_page_gen(t->page))
			continue;
		t = emu_trace_fast(cpu);
		if (!t)
			break;
	}
	cpu->insn_count = count;
	return 0;
slow:
	/* fault, stop, MMIO stop or a write to cached code */
	cpu->brk = false;
	if (r == EMU_FAULT) {
		cpu->st.rip = cpu->insn_rip;
		emu_core(cpu)->fetch_valid = false;
	}
	/* A faulting instruction uses budget too: a guest looping on faults still returns. */
	in++;
	cpu->insn_count = count + (in - cpu->chain_base) + cpu->chain_extra;
	if (cpu->sys.bus_stop) {
		cpu->sys.bus_stop = false;
		cpu->fault.pending = false;
		if (r != EMU_STOP)
			cpu->stop_reason = EMU_EXIT_BUS_STOP;
		emu_core(cpu)->fetch_valid = false;
		return EMU_STOP;
	}
	if (r == EMU_OK && !cpu->sys.db_step)
		return 0;
	if (r == EMU_OK)
		r = emu_dbg_step_trap(cpu);	/* SYSRET loaded TF=1 (debug.c) */
	return settle(cpu, r) ? EMU_STOP : -1;
}

/* One instruction with the debug traps and faults (debug.c) and the interrupt shadow.
 * 0 or EMU_STOP. */
static int run_one(struct emu_cpu *cpu, const struct emu_trace *t)
{
	struct emu_dbg_insn d;
	bool halted;
	int r;

	r = emu_dbg_before(cpu, &d);
	if (r == EMU_DBG_NONE) {
		cpu->st.interrupt_shadow = false;
		r = run_trace(cpu, t, cpu->insn_count + 1);
		halted = r == EMU_STOP && cpu->stop_reason == EMU_EXIT_HLT;
		if (r == -1 || (r == EMU_STOP && !halted))
			return r == EMU_STOP ? r : 0;
		r = emu_dbg_after(cpu, t->insn, &d, halted);
		if (r == EMU_DBG_NONE || r == EMU_STOP)
			return r == EMU_STOP ? r : 0;
	}
	emu_core(cpu)->fetch_valid = false;
	return settle(cpu, r);
}

static enum emu_exit run_loop(struct emu_cpu *cpu, uint64_t max_insns, bool step)
{
	uint64_t end = cpu->insn_count + max_insns;
	const struct emu_trace *t;
	uint32_t ev;
	int r;

	for (;;) {
		ev = atomic_load_explicit(&cpu->events, memory_order_relaxed);
		if (__builtin_expect(ev != 0, 0)) {
			if (ev & EMU_EV_EXIT)
				return EMU_EXIT_EVENT;
			r = take_event(cpu, ev);
			if (r < 0)
				return cpu->stop_reason;
			if (r > 0 && step)
				return EMU_EXIT_BUDGET;
		}
		if (cpu->insn_count >= end)
			return EMU_EXIT_BUDGET;
		t = emu_trace_fast(cpu);
		if (!t) {
			t = emu_trace_get(cpu, &r);
			if (cpu->sys.bus_stop)	/* code fetched from MMIO */
				cpu->brk = true;
		}
		if (!t) {
			cpu->insn_count++;	/* a fetch fault uses budget, as above */
			if (settle(cpu, r))
				return cpu->stop_reason;
			if (step)
				return EMU_EXIT_BUDGET;
			continue;
		}
		emu_fast_refresh(cpu);
		if (__builtin_expect(step || cpu->st.interrupt_shadow ||
				     (cpu->st.rflags & EMU_TF) || cpu->sys.dr_active, 0))
			r = run_one(cpu, t);
		else
			r = run_trace(cpu, t, end);
		if (r == EMU_STOP)
			return cpu->stop_reason;
		if (step)
			return EMU_EXIT_BUDGET;
	}
}

enum emu_exit emu_run(struct emu_cpu *cpu, uint64_t max_insns)
{
	return run_loop(cpu, max_insns, false);
}

enum emu_exit emu_step(struct emu_cpu *cpu)
{
	return run_loop(cpu, 1, true);
}
