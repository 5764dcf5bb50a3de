/*
 * seg.c: segmentation for the interpreter (SDM Vol. 3 ch. 3 and 5): segment-relative access
 * with limit, expand-down, type and canonical checks (#GP/#SS), descriptor fetch from the
 * GDT/LDT with accessed-bit updates, and segment register loads with the protected-mode
 * privilege and type checks (#GP/#SS/#NP with selector error codes). Real mode keeps the
 * hidden limit and attributes ("unreal" mode); virtual-8086 loads use 64 KiB DPL 3 segments.
 */
#include <string.h>
#include "x86/emu/emu_internal.h"

#define TYPE_CODE 0x8u
#define TYPE_CONFORMING 0x4u	/* code */
#define TYPE_EXPDOWN 0x4u	/* data */
#define TYPE_RW 0x2u		/* readable code / writable data */

static int seg_fault(struct emu_cpu *cpu, int sreg)
{
	return emu_fault(cpu, sreg == EMU_SS ? EMU_SSF : EMU_GP, 0, true);
}

int emu_seg_lin(struct emu_cpu *cpu, const struct emu_seg *seg, int sreg, uint64_t offset,
		unsigned size, unsigned acc, uint64_t *lin)
{
	uint32_t attr = seg->attr;
	uint64_t last;

	if (cpu->mode == EMU_MODE_LONG64) {
		uint64_t l = offset + (sreg >= EMU_FS ? seg->base : 0);

		if (!emu_canonical(l) || !emu_canonical(l + size - 1))
			return seg_fault(cpu, sreg);
		*lin = l;
		return 0;
	}
	if (cpu->mode != EMU_MODE_REAL) {
		unsigned type = EMU_SEG_ATTR_TYPE(attr);

		if (attr & EMU_SEG_ATTR_UNUSABLE)
			return seg_fault(cpu, sreg);
		if (type & TYPE_CODE) {
			if ((acc & EMU_ACC_WRITE) || ((acc & EMU_ACC_READ) && !(type & TYPE_RW)))
				return seg_fault(cpu, sreg);
		} else if ((acc & EMU_ACC_WRITE) && !(type & TYPE_RW)) {
			return seg_fault(cpu, sreg);
		}
	}
	last = offset + size - 1;
	if (!(EMU_SEG_ATTR_TYPE(attr) & TYPE_CODE) && (EMU_SEG_ATTR_TYPE(attr) & TYPE_EXPDOWN) &&
	    cpu->mode != EMU_MODE_REAL) {
		uint64_t upper = (attr & EMU_SEG_ATTR_DB) ? 0xffffffffull : 0xffffull;

		if (offset <= seg->limit || last > upper)
			return seg_fault(cpu, sreg);
	} else if (last > seg->limit) {
		return seg_fault(cpu, sreg);
	}
	*lin = (uint32_t)(seg->base + offset);
	return 0;
}

int emu_seg_access(struct emu_cpu *cpu, const struct emu_seg *seg, int sreg, uint64_t offset,
		   void *buf, unsigned size, unsigned acc)
{
	uint64_t lin;

	if (emu_seg_lin(cpu, seg, sreg, offset, size, acc, &lin))
		return EMU_FAULT;
	if (acc & EMU_ACC_WRITE)
		return emu_lin_write(cpu, lin, buf, size, acc & EMU_ACC_IMPLICIT);
	return emu_lin_read(cpu, lin, buf, size, acc & EMU_ACC_IMPLICIT);
}

/*
 * The software TLB entry for an access that stays in one RAM page and that the entry's
 * permissions allow as mmu.c's tlb_allows() would; NULL sends the access the long way.
 */
static inline struct emu_tlb_entry *tlb_hit(struct emu_cpu *cpu, uint64_t lin, unsigned size,
					    bool write)
{
	struct emu_tlb_entry *e = &cpu->sys.tlb[(lin >> 12) % EMU_TLB_SIZE];
	uint32_t need = cpu->cpl == 3 ? EMU_TLB_USER : 0;

	if ((lin & 0xfff) + size > 4096 || e->tag != ((lin & ~0xfffull) | 1) || !e->host)
		return NULL;
	if (write) {
		need |= EMU_TLB_DIRTY | EMU_TLB_HOSTW;
		if (cpu->cpl == 3 || (cpu->st.cr0 & (1u << 16)))
			need |= EMU_TLB_WRITE;
	}
	return (e->perm & need) == need ? e : NULL;
}

int emu_mem_read(struct emu_cpu *cpu, int sreg, uint64_t offset, void *dst, unsigned size)
{
	struct emu_tlb_entry *e;
	uint64_t lin;

	if (emu_seg_lin(cpu, &cpu->st.seg[sreg], sreg, offset, size, EMU_ACC_READ, &lin))
		return EMU_FAULT;
	if (__builtin_expect(cpu->sys.dr_data, 0))
		emu_dbg_data(cpu, lin, size, false);
	if ((e = tlb_hit(cpu, lin, size, false))) {
		memcpy(dst, e->host + (lin & 0xfff), size);
		return 0;
	}
	return emu_lin_read(cpu, lin, dst, size, 0);
}

int emu_mem_write(struct emu_cpu *cpu, int sreg, uint64_t offset, const void *src,
		  unsigned size)
{
	struct emu_tlb_entry *e;
	uint64_t lin;

	if (emu_seg_lin(cpu, &cpu->st.seg[sreg], sreg, offset, size, EMU_ACC_WRITE, &lin))
		return EMU_FAULT;
	if (__builtin_expect(cpu->sys.dr_data, 0))
		emu_dbg_data(cpu, lin, size, true);
	if ((e = tlb_hit(cpu, lin, size, true))) {
		memcpy(e->host + (lin & 0xfff), src, size);
		emu_code_written(cpu, e->gpa | (lin & 0xfff), size);
		return 0;
	}
	return emu_lin_write(cpu, lin, src, size, 0);
}

void *emu_mem_rmw_ptr(struct emu_cpu *cpu, int sreg, uint64_t offset, unsigned size)
{
	uint64_t lin;

	if (emu_seg_lin(cpu, &cpu->st.seg[sreg], sreg, offset, size,
			EMU_ACC_READ | EMU_ACC_WRITE, &lin))
		return NULL;
	if (__builtin_expect(cpu->sys.dr_data, 0))
		emu_dbg_data(cpu, lin, size, true);
	return emu_lin_rmw_ptr(cpu, lin, size);
}

int emu_desc_read(struct emu_cpu *cpu, uint16_t sel, uint64_t desc[2], bool sys16,
		  int fault_vec, uint32_t ext)
{
	uint64_t base, limit;
	unsigned len = sys16 ? 16 : 8;

	if (sel & 4) {
		if (cpu->st.ldtr.attr & EMU_SEG_ATTR_UNUSABLE || !(cpu->st.ldtr.attr & EMU_SEG_ATTR_P))
			return emu_fault(cpu, fault_vec, (sel & 0xfffc) | ext, true);
		base = cpu->st.ldtr.base;
		limit = cpu->st.ldtr.limit;
	} else {
		base = cpu->st.gdtr_base;
		limit = cpu->st.gdtr_limit;
	}
	if ((uint64_t)(sel & ~7u) + len - 1 > limit)
		return emu_fault(cpu, fault_vec, (sel & 0xfffc) | ext, true);
	desc[1] = 0;
	return emu_lin_read(cpu, base + (sel & ~7u), desc, len, EMU_ACC_IMPLICIT);
}

void emu_desc_to_seg(const uint64_t desc[2], uint16_t sel, struct emu_seg *seg)
{
	uint64_t d = desc[0];
	uint32_t limit = (d & 0xffff) | ((d >> 32) & 0xf0000);

	seg->base = ((d >> 16) & 0xffffff) | ((d >> 56) << 24);
	if (!((d >> 44) & 1))	/* system descriptor: 16 bytes in long mode */
		seg->base |= (desc[1] & 0xffffffffull) << 32;
	seg->attr = ((d >> 40) & 0xff) | (((d >> 52) & 0xf) << 12);
	seg->limit = (seg->attr & EMU_SEG_ATTR_G) ? (limit << 12) | 0xfff : limit;
	seg->sel = sel;
}

int emu_desc_set_bits(struct emu_cpu *cpu, uint16_t sel, uint64_t desc, uint64_t bits)
{
	uint64_t base = (sel & 4) ? cpu->st.ldtr.base : cpu->st.gdtr_base;
	uint8_t b;

	if ((desc & bits) == bits)
		return 0;
	b = (uint8_t)((desc | bits) >> 40);
	return emu_lin_write(cpu, base + (sel & ~7u) + 5, &b, 1, EMU_ACC_IMPLICIT);
}

/* MOV/POP Sreg, LDS/LES/LFS/LGS/LSS (SDM Vol. 2 "MOV", "POP", "LDS"). */
int emu_load_seg(struct emu_cpu *cpu, int sreg, uint16_t sel)
{
	struct emu_seg *s = &cpu->st.seg[sreg];
	uint64_t desc[2];
	struct emu_seg n;
	unsigned type, dpl, rpl = sel & 3, cpl = cpu->cpl;
	uint32_t err = sel & 0xfffc;

	if (cpu->mode == EMU_MODE_REAL) {
		s->sel = sel;
		s->base = (uint32_t)sel << 4;
		if (s->attr & EMU_SEG_ATTR_UNUSABLE) {
			s->attr = 0x93;
			s->limit = 0xffff;
		}
		if (sreg == EMU_CS)
			emu_update_mode(cpu);
		return 0;
	}
	if (cpu->mode == EMU_MODE_VM86) {
		s->sel = sel;
		s->base = (uint32_t)sel << 4;
		s->limit = 0xffff;
		s->attr = sreg == EMU_CS ? 0xfb : 0xf3;
		return 0;
	}
	if ((sel & 0xfffc) == 0) {
		if (sreg == EMU_SS && !(cpu->mode == EMU_MODE_LONG64 && cpl < 3 && rpl == cpl))
			return emu_gp0(cpu);
		s->sel = sel;
		s->base = 0;
		s->limit = 0;
		s->attr = EMU_SEG_ATTR_UNUSABLE | (sreg == EMU_SS ? (rpl << 5) : 0);
		return 0;
	}
	if (emu_desc_read(cpu, sel, desc, false, EMU_GP, 0))
		return EMU_FAULT;
	type = (desc[0] >> 40) & 0xf;
	dpl = (desc[0] >> 45) & 3;
	if (!((desc[0] >> 44) & 1))	/* system descriptor */
		return emu_fault(cpu, EMU_GP, err, true);
	if (sreg == EMU_SS) {
		if (rpl != cpl || dpl != cpl || (type & TYPE_CODE) || !(type & TYPE_RW))
			return emu_fault(cpu, EMU_GP, err, true);
		if (!((desc[0] >> 47) & 1))
			return emu_fault(cpu, EMU_SSF, err, true);
	} else {
		if ((type & TYPE_CODE) && !(type & TYPE_RW))
			return emu_fault(cpu, EMU_GP, err, true);
		if (!((type & TYPE_CODE) && (type & TYPE_CONFORMING)) && (rpl > dpl || cpl > dpl))
			return emu_fault(cpu, EMU_GP, err, true);
		if (!((desc[0] >> 47) & 1))
			return emu_fault(cpu, EMU_NP, err, true);
	}
	if (emu_desc_set_bits(cpu, sel, desc[0], 1ull << 40))
		return EMU_FAULT;
	desc[0] |= 1ull << 40;
	emu_desc_to_seg(desc, sel, &n);
	if (cpu->mode == EMU_MODE_LONG64 && sreg >= EMU_FS)
		n.base = (uint32_t)n.base;
	*s = n;
	if (sreg == EMU_SS)
		emu_update_mode(cpu);
	return 0;
}
