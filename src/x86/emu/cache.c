/*
 * cache.c: the decoded-instruction cache. Traces of up to EMU_TRACE_MAX instructions, keyed
 * by the guest-physical address of their first instruction and the CPU mode, end at an
 * unconditional branch, a system instruction or the page end. Self- and cross-modifying
 * code: struct emu_machine keeps, per guest-physical page, a bitmap of 128-byte lines that
 * hold cached code and a generation that writes to those lines bump, clearing the bitmap
 * (lock-free, shared by all vCPUs); a trace is valid while its page's generation is
 * unchanged. Instructions that
 * cross a page boundary and code in MMIO are decoded every time they run. Each trace's
 * instructions are followed by emu_trace_end_insn for the chained dispatch (exec.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "exec.h"

/* Generation 0 forever: the page of uncached traces. */
static struct emu_page emu_nocache_page;

struct emu_machine *emu_machine_create(void)
{
	return calloc(1, sizeof(struct emu_machine));
}

void emu_machine_destroy(struct emu_machine *m)
{
	if (!m)
		return;
	for (uint32_t i = 0, n = atomic_load(&m->nused); i < n; i++)
		free(atomic_load(&m->chunk[m->used[i]]));
	free(m);
}

struct emu_page *emu_page_get(struct emu_machine *m, uint64_t gpa, bool create)
{
	struct emu_page *c, *n = NULL;
	uint64_t ci = gpa >> EMU_CHUNK_SHIFT;

	if (ci >= EMU_NCHUNKS)
		return NULL;
	c = atomic_load_explicit(&m->chunk[ci], memory_order_acquire);
	if (!c) {
		if (!create)
			return NULL;
		n = calloc(EMU_CHUNK_PAGES, sizeof(*n));
		if (!n)
			return NULL;
		if (atomic_compare_exchange_strong(&m->chunk[ci], &c, n)) {
			c = n;
			m->used[atomic_fetch_add(&m->nused, 1)] = (uint16_t)ci;
		} else
			free(n);
	}
	return &c[(gpa >> 12) & (EMU_CHUNK_PAGES - 1)];
}

static uint32_t line_mask(uint64_t off, uint64_t len)
{
	unsigned first = off >> 7, last = (off + len - 1) >> 7;
	uint32_t hi = last >= 31 ? ~0u : (2u << last) - 1;

	return hi & ~((1u << first) - 1);
}

/* Lines `mask` of page `p` were written: when any holds cached code, a new generation
 * with no line marked (struct emu_page). */
static void page_written(struct emu_page *p, uint32_t mask)
{
	uint64_t old = atomic_load_explicit(&p->state, memory_order_relaxed);

	while ((uint32_t)old & mask)
		if (atomic_compare_exchange_weak(&p->state, &old, ((old >> 32) + 1) << 32))
			break;
}

void emu_machine_invalidate(struct emu_machine *m, uint64_t gpa, uint64_t len)
{
	while (len) {
		uint64_t off = gpa & 0xfff, n = 4096 - off;
		struct emu_page *p;

		if (gpa >> EMU_PHYS_BITS)
			return;
		if (!atomic_load_explicit(&m->chunk[gpa >> EMU_CHUNK_SHIFT], memory_order_acquire)) {
			/* no code cached anywhere in this chunk: skip to the next one */
			n = (1ull << EMU_CHUNK_SHIFT) - (gpa & ((1ull << EMU_CHUNK_SHIFT) - 1));
			if (n >= len)
				return;
			gpa += n;
			len -= n;
			continue;
		}
		if (n > len)
			n = len;
		p = emu_page_get(m, gpa, false);
		if (p)
			page_written(p, line_mask(off, n));
		gpa += n;
		len -= n;
	}
}

/* Pages that can never hold cached code (above EMU_PHYS_BITS) share this one. */
static struct emu_page emu_nocode_page;

struct emu_page *emu_tlb_code_page(struct emu_cpu *cpu, uint64_t gpa)
{
	struct emu_page *p = emu_page_get(cpu->machine, gpa, true);

	return p ? p : &emu_nocode_page;
}

void emu_smc_hit(struct emu_machine *m, uint64_t gpa, unsigned len)
{
	emu_machine_invalidate(m, gpa, len);
}

void emu_code_written(struct emu_cpu *cpu, uint64_t gpa, unsigned len)
{
	if (len && (gpa & 0xfff) + len <= 4096)
		emu_smc_check(cpu, gpa, len);
	else if (len)
		emu_machine_invalidate(cpu->machine, gpa, len);
}

void emu_cache_flush(struct emu_cpu *cpu)
{
	struct emu_core *core = emu_core(cpu);

	memset(core->traces, 0, sizeof(*core->traces) * EMU_TRACE_SLOTS);
	core->pool_used = 0;
	core->fetch_valid = false;
}

/* Decode one instruction that is not cached (MMIO code or crossing a page) into scratch. */
static const struct emu_trace *build_scratch(struct emu_cpu *cpu, const uint8_t *bytes,
					     unsigned n, int *res)
{
	struct emu_core *core = emu_core(cpu);
	int rc = emu_decode(cpu, bytes, n, &core->scratch_insn[0]);

	if (rc == -EAGAIN) {
		/* Not enough bytes before a limit: the fetch beyond it faults. */
		*res = emu_gp0(cpu);
		return NULL;
	}
	core->scratch_insn[1] = emu_trace_end_insn;
	core->scratch.insn = core->scratch_insn;
	core->scratch.page = &emu_nocache_page;
	core->scratch.gen = 0;
	core->scratch.n = 1;
	core->scratch.tag = 0;
	return &core->scratch;
}

/* Code that emu_fetch_ptr says is not RAM: read it byte by byte through the MMU. */
static const struct emu_trace *build_mmio(struct emu_cpu *cpu, uint64_t lin, unsigned limit,
					  int *res)
{
	uint8_t buf[15];
	unsigned n = 0;

	while (n < limit && n < sizeof(buf)) {
		if (emu_lin_read(cpu, lin + n, &buf[n], 1, EMU_ACC_EXEC)) {
			if (n == 0) {
				*res = EMU_FAULT;
				return NULL;
			}
			cpu->fault.pending = false;
			break;
		}
		n++;
	}
	if (n < sizeof(buf) && emu_decode(cpu, buf, n, &emu_core(cpu)->scratch_insn[0]) == -EAGAIN &&
	    n < limit) {
		/* The instruction needs the byte that faulted: raise that fault again. */
		*res = emu_lin_read(cpu, lin + n, &buf[n], 1, EMU_ACC_EXEC);
		if (*res)
			return NULL;
	}
	return build_scratch(cpu, buf, n, res);
}

/* An instruction that starts at the end of one page and continues on the next. */
static const struct emu_trace *build_crossing(struct emu_cpu *cpu, uint64_t lin,
					      const uint8_t *p, unsigned avail, unsigned limit,
					      int *res)
{
	uint8_t buf[15];
	uint64_t gpa2;
	unsigned avail2, n = limit < sizeof(buf) ? limit : sizeof(buf);
	const uint8_t *p2;

	memcpy(buf, p, avail);
	p2 = emu_fetch_ptr(cpu, lin + avail, &gpa2, &avail2);
	if (!p2) {
		if (cpu->fault.pending) {
			*res = EMU_FAULT;
			return NULL;
		}
		for (unsigned i = avail; i < n; i++) {
			if (emu_lin_read(cpu, lin + i, &buf[i], 1, EMU_ACC_EXEC)) {
				cpu->fault.pending = false;
				n = i;
				break;
			}
		}
	} else {
		if (avail + avail2 < n)
			n = avail + avail2;
		memcpy(buf + avail, p2, n - avail);
	}
	return build_scratch(cpu, buf, n, res);
}

/* Set insn->link of the relative branches whose target starts an instruction of the same
 * trace (64-bit code, 64-bit operand size: the target is next RIP + displacement). */
static void link_branches(struct emu_insn *insn, unsigned n)
{
	uint16_t off[EMU_TRACE_MAX + 1];

	off[0] = 0;
	for (unsigned k = 0; k < n; k++)
		off[k + 1] = off[k] + insn[k].len;
	for (unsigned k = 0; k < n; k++) {
		int64_t target;

		if (!(insn[k].flags & EMU_IF_REL_BRANCH) || insn[k].opsize != 8)
			continue;
		target = (int64_t)off[k + 1] + (int64_t)insn[k].op[0].imm;
		for (unsigned j = 0; j < n; j++)
			if (off[j] == target && j != k)
				insn[k].link = (int8_t)((int)j - (int)k);
	}
}

const struct emu_trace *emu_trace_get(struct emu_cpu *cpu, int *res)
{
	struct emu_core *core = emu_core(cpu);
	unsigned mode = cpu->mode, avail, span, limit = 4096, pos, n, tries;
	uint64_t rip = cpu->st.rip, lin, gpa;
	uint8_t buf[EMU_TRACE_BYTES];
	const uint8_t *p;
	struct emu_trace *t;
	struct emu_page *page;
	uint32_t gen;
	int rc;

	if (mode == EMU_MODE_LONG64) {
		lin = rip;
	} else {
		const struct emu_seg *cs = &cpu->st.seg[EMU_CS];

		if (rip > cs->limit) {
			*res = emu_gp0(cpu);
			return NULL;
		}
		if ((uint64_t)cs->limit - rip + 1 < limit)
			limit = cs->limit - rip + 1;
		lin = (cs->base + rip) & 0xffffffffull;
	}
	if (core->fetch_valid && core->fetch_mode == mode &&
	    (lin & ~0xfffull) == core->fetch_lin_page) {
		gpa = core->fetch_gpa_page | (lin & 0xfff);
		t = &core->traces[emu_trace_slot(gpa, mode)];
		if (t->tag == emu_trace_tag(gpa, mode) &&
		    t->gen == emu_page_gen(t->page))
			return t;
	}
	p = emu_fetch_ptr(cpu, lin, &gpa, &avail);
	if (!p) {
		if (cpu->fault.pending) {
			*res = EMU_FAULT;
			return NULL;
		}
		return build_mmio(cpu, lin, limit, res);
	}
	core->fetch_valid = true;
	core->fetch_mode = mode;
	core->fetch_lin_page = lin & ~0xfffull;
	core->fetch_gpa_page = gpa & ~0xfffull;
	t = &core->traces[emu_trace_slot(gpa, mode)];
	if (t->tag == emu_trace_tag(gpa, mode) &&
	    t->gen == emu_page_gen(t->page))
		return t;

	if (avail > limit)
		avail = limit;
	page = emu_page_get(cpu->machine, gpa, true);
	if (!page) {
		if (avail < 15)
			return build_crossing(cpu, lin, p, avail, limit, res);
		return build_scratch(cpu, p, 15, res);
	}
	if (core->pool_used + EMU_TRACE_MAX + 1 > EMU_POOL_INSNS)
		emu_cache_flush(cpu);
	/* the bytes a trace can span: an instruction cut off here only ends the trace early */
	span = avail < sizeof(buf) ? avail : sizeof(buf);
	for (tries = 0;; tries++) {
		memcpy(buf, p, span);
		pos = 0;
		n = 0;
		while (n < EMU_TRACE_MAX && pos < span) {
			struct emu_insn *in = &core->pool[core->pool_used + n];

			rc = emu_decode(cpu, buf + pos, span - pos, in);
			if (rc == -EAGAIN)
				break;
			n++;
			pos += in->len;
			if (rc < 0 || (in->flags & EMU_IF_END_TRACE))
				break;
		}
		if (n == 0) {
			if (avail < limit)
				return build_crossing(cpu, lin, p, avail, limit, res);
			return build_scratch(cpu, buf, span, res);
		}
		gen = atomic_fetch_or(&page->state, line_mask(gpa & 0xfff, pos)) >> 32;
		if (memcmp(buf, p, pos) == 0 || tries >= 2)
			break;
	}
	t->tag = emu_trace_tag(gpa, mode);
	t->page = page;
	t->gen = gen;
	t->n = n;
	t->insn = &core->pool[core->pool_used];
	if (mode == EMU_MODE_LONG64) {
		link_branches(t->insn, n);
		emu_fuse(t->insn, n);
	}
	t->insn[n] = emu_trace_end_insn;
	core->pool_used += n + 1;
	return t;
}
