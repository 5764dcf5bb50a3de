/*
 * mmu.c: linear-to-physical translation and physical access for the interpreter: 32-bit
 * paging (4 MiB pages with CR4.PSE), PAE and 4-level paging (SDM Vol. 3 ch. 4) with global
 * pages, NX, atomic accessed/dirty updates, CR0.WP, U/S, reserved-bit checks and #PF error
 * codes; a direct-mapped software TLB of host page pointers; MMIO split into aligned pieces.
 * Left out: SMEP/SMAP/PKU, PCID, 5-level paging (all hidden by the CPUID policy).
 */
#include <string.h>
#include "x86/emu/emu_internal.h"

#define CR0_WP (1ull << 16)
#define CR0_PG (1ull << 31)
#define CR4_PSE (1ull << 4)
#define CR4_PAE (1ull << 5)
#define CR4_PGE (1ull << 7)
#define EFER_LMA (1ull << 10)
#define EFER_NXE (1ull << 11)

#define PTE_P (1ull << 0)
#define PTE_RW (1ull << 1)
#define PTE_US (1ull << 2)
#define PTE_A (1ull << 5)
#define PTE_D (1ull << 6)
#define PTE_PS (1ull << 7)
#define PTE_G (1ull << 8)
#define PTE_NX (1ull << 63)

#define PF_P 0x1u
#define PF_W 0x2u
#define PF_U 0x4u
#define PF_RSVD 0x8u
#define PF_ID 0x10u

/* CPUID-derived facts the MMU and system instructions need; read once. */
void emu_sys_features(struct emu_cpu *cpu)
{
	struct emu_sys *s = &cpu->sys;
	uint32_t r[4] = { 0 };
	uint32_t max_ext;

	if (s->feat_valid)
		return;
	s->feat_valid = true;
	s->maxphyaddr = 36;
	if (!cpu->bus.cpuid)
		return;
	cpu->bus.cpuid(cpu->bus.opaque, 1, 0, r);
	s->has_fxsr = r[3] & (1u << 24);
	s->has_pge = r[3] & (1u << 13);
	s->has_pse = r[3] & (1u << 3);
	if (r[3] & (1u << 6))
		s->maxphyaddr = 36;
	cpu->bus.cpuid(cpu->bus.opaque, 0x80000000, 0, r);
	max_ext = r[0];
	if (max_ext >= 0x80000001) {
		cpu->bus.cpuid(cpu->bus.opaque, 0x80000001, 0, r);
		s->has_syscall = r[3] & (1u << 11);
		s->has_nx = r[3] & (1u << 20);
		s->has_1g = r[3] & (1u << 26);
		s->has_rdtscp = r[3] & (1u << 27);
		s->has_lm = r[3] & (1u << 29);
	}
	if (max_ext >= 0x80000008) {
		cpu->bus.cpuid(cpu->bus.opaque, 0x80000008, 0, r);
		if ((r[0] & 0xff) >= 32 && (r[0] & 0xff) <= 52)
			s->maxphyaddr = r[0] & 0xff;
	}
}

void emu_tlb_flush(struct emu_cpu *cpu)
{
	memset(cpu->sys.tlb, 0, sizeof cpu->sys.tlb);
	cpu->sys.pg_cr0 = cpu->st.cr0;
	cpu->sys.pg_cr3 = cpu->st.cr3;
	cpu->sys.pg_cr4 = cpu->st.cr4;
	cpu->sys.pg_efer = cpu->st.efer;
}

/* CR3 write: drop everything but global pages. */
void emu_tlb_flush_nonglobal(struct emu_cpu *cpu)
{
	for (unsigned i = 0; i < EMU_TLB_SIZE; i++)
		if (!(cpu->sys.tlb[i].perm & EMU_TLB_GLOBAL))
			cpu->sys.tlb[i].tag = 0;
	cpu->sys.pg_cr3 = cpu->st.cr3;
}

void emu_tlb_flush_page(struct emu_cpu *cpu, uint64_t lin)
{
	uint64_t page = lin & ~0xfffull;
	struct emu_tlb_entry *e = &cpu->sys.tlb[(page >> 12) % EMU_TLB_SIZE];

	if (e->tag == (page | 1))
		e->tag = 0;
	for (unsigned i = 0; i < EMU_TLB_SIZE; i++)
		if (cpu->sys.tlb[i].perm & EMU_TLB_LARGE)
			cpu->sys.tlb[i].tag = 0;
}

/* Read a paging-structure entry; *host is set when it lives in RAM (for A/D updates). */
static void pte_read(struct emu_cpu *cpu, uint64_t gpa, unsigned size, uint64_t *val,
		    uint8_t **host)
{
	uint8_t *page = cpu->bus.page_ptr(cpu->bus.opaque, gpa & ~0xfffull, true);

	*val = 0;
	if (page) {
		*host = page + (gpa & 0xfff);
		if (size == 8)
			*val = __atomic_load_n((uint64_t *)*host, __ATOMIC_ACQUIRE);
		else
			*val = __atomic_load_n((uint32_t *)*host, __ATOMIC_ACQUIRE);
		return;
	}
	*host = NULL;
	page = cpu->bus.page_ptr(cpu->bus.opaque, gpa & ~0xfffull, false);
	if (page) {
		memcpy(val, page + (gpa & 0xfff), size);
		return;
	}
	if (cpu->bus.mmio && cpu->bus.mmio(cpu->bus.opaque, gpa, size, false, val) < 0)
		cpu->sys.bus_stop = true;
	return;
}

static void pte_set_bits(uint8_t *host, unsigned size, uint64_t bits)
{
	if (!host)
		return;
	if (size == 8)
		__atomic_fetch_or((uint64_t *)host, bits, __ATOMIC_ACQ_REL);
	else
		__atomic_fetch_or((uint32_t *)host, (uint32_t)bits, __ATOMIC_ACQ_REL);
}

static int page_fault(struct emu_cpu *cpu, uint64_t lin, uint32_t err)
{
	cpu->st.cr2 = lin;
	return emu_fault(cpu, EMU_PF, err, true);
}

/*
 * Walk the guest page tables for `lin`. On success fills *gpa_page, *perm (EMU_TLB_* bits
 * without HOSTW) and sets A (and D for writes) bits. Returns 0 or EMU_FAULT (#PF pending).
 */
static int page_walk(struct emu_cpu *cpu, uint64_t lin, unsigned acc, bool user,
		     uint64_t *gpa_page, uint32_t *perm)
{
	struct emu_state *st = &cpu->st;
	bool pae = st->cr4 & CR4_PAE, lma = st->efer & EFER_LMA;
	bool nxe = (st->efer & EFER_NXE) && pae;
	unsigned esz = pae ? 8 : 4;
	uint64_t addr_mask = ((1ull << cpu->sys.maxphyaddr) - 1) & ~0xfffull;
	uint64_t rsvd_hi = pae ? (~((1ull << cpu->sys.maxphyaddr) - 1) & ~PTE_NX) : 0;
	uint8_t *hosts[5];
	uint64_t ents[5];
	int n = 0, levels, shift;
	uint64_t table, e = 0;
	bool u = true, w = true, x = true, large = false;
	uint32_t err = (acc & EMU_ACC_WRITE ? PF_W : 0) | (user ? PF_U : 0) |
		       ((acc & EMU_ACC_EXEC) && nxe ? PF_ID : 0);

	if (!nxe)
		rsvd_hi |= pae ? PTE_NX : 0;
	if (lma) {
		levels = 4;
		shift = 39;
		table = st->cr3 & addr_mask;
	} else if (pae) {
		uint64_t pdpte;
		uint8_t *h;
		uint64_t pdpt = (st->cr3 & 0xffffffe0ull) + ((lin >> 30) & 3) * 8;

		pte_read(cpu, pdpt, 8, &pdpte, &h);
		if (!(pdpte & PTE_P))
			return page_fault(cpu, lin, err);
		if (pdpte & (0x1e6ull | PTE_NX | ~((1ull << cpu->sys.maxphyaddr) - 1)))
			return page_fault(cpu, lin, err | PF_P | PF_RSVD);
		levels = 2;
		shift = 21;
		table = pdpte & addr_mask;
	} else {
		levels = 2;
		shift = 22;
		table = st->cr3 & 0xfffff000ull;
	}
	for (int lvl = levels; lvl >= 1; lvl--) {
		unsigned idx = (lin >> shift) & (pae ? 0x1ff : 0x3ff);
		uint64_t rsvd = rsvd_hi;

		pte_read(cpu, table + idx * esz, esz, &e, &hosts[n]);
		ents[n++] = e;
		if (!(e & PTE_P))
			return page_fault(cpu, lin, err);
		if (lma && lvl == 4)
			rsvd |= PTE_PS;
		if (e & PTE_PS) {
			if (lvl == 3 && !cpu->sys.has_1g)
				rsvd |= PTE_PS;
			else if (lvl == 3)
				rsvd |= 0x3fffe000ull;
			else if (lvl == 2 && pae)
				rsvd |= 0x1fe000ull;
			else if (lvl == 2 && (st->cr4 & CR4_PSE))
				rsvd |= 1ull << 21;
		}
		if (e & rsvd)
			return page_fault(cpu, lin, err | PF_P | PF_RSVD);
		u = u && (e & PTE_US);
		w = w && (e & PTE_RW);
		if (nxe && (e & PTE_NX))
			x = false;
		if (lvl == 1 || ((e & PTE_PS) && (lvl <= 3) &&
				 (pae || (st->cr4 & CR4_PSE)))) {
			large = lvl > 1;
			break;
		}
		table = e & (pae ? addr_mask : 0xfffff000ull);
		shift -= pae ? 9 : 10;
	}
	/* Permission checks (SDM Vol. 3 §4.6). */
	if (user && !u)
		return page_fault(cpu, lin, err | PF_P);
	if ((acc & EMU_ACC_WRITE) && !w && (user || (st->cr0 & CR0_WP)))
		return page_fault(cpu, lin, err | PF_P);
	if ((acc & EMU_ACC_EXEC) && !x)
		return page_fault(cpu, lin, err | PF_P);

	for (int i = 0; i < n; i++) {
		uint64_t bits = PTE_A;

		if (i == n - 1 && (acc & EMU_ACC_WRITE))
			bits |= PTE_D;
		if ((ents[i] & bits) != bits)
			pte_set_bits(hosts[i], esz, bits);
	}
	if (large) {
		uint64_t off_mask = (1ull << shift) - 1;
		uint64_t base;

		if (!pae) {
			base = (e & 0xffc00000ull) | (((e >> 13) & 0xff) << 32);
			base &= (1ull << cpu->sys.maxphyaddr) - 1;
		} else {
			base = e & addr_mask & ~off_mask;
		}
		*gpa_page = (base | (lin & off_mask)) & ~0xfffull;
	} else {
		*gpa_page = e & (pae ? addr_mask : 0xfffff000ull);
	}
	*perm = (u ? EMU_TLB_USER : 0) | (w ? EMU_TLB_WRITE : 0) | (x ? EMU_TLB_EXEC : 0) |
		((e & PTE_D) || (acc & EMU_ACC_WRITE) ? EMU_TLB_DIRTY : 0) |
		((e & PTE_G) && (st->cr4 & CR4_PGE) ? EMU_TLB_GLOBAL : 0) |
		(large ? EMU_TLB_LARGE : 0);
	return 0;
}

static inline bool tlb_allows(const struct emu_cpu *cpu, uint32_t perm, unsigned acc, bool user)
{
	uint32_t need = user ? EMU_TLB_USER : 0;

	if (acc & EMU_ACC_WRITE) {
		need |= EMU_TLB_DIRTY;
		if (user || (cpu->st.cr0 & CR0_WP))
			need |= EMU_TLB_WRITE;
	}
	if (acc & EMU_ACC_EXEC)
		need |= EMU_TLB_EXEC;
	return (perm & need) == need;
}

/* Translate a linear address; returns the TLB entry or NULL with a fault pending. */
static struct emu_tlb_entry *translate(struct emu_cpu *cpu, uint64_t lin, unsigned acc)
{
	uint64_t page = lin & ~0xfffull;
	struct emu_tlb_entry *e = &cpu->sys.tlb[(page >> 12) % EMU_TLB_SIZE];
	bool user = cpu->cpl == 3 && !(acc & EMU_ACC_IMPLICIT);
	uint64_t gpa = 0;
	uint32_t perm = 0;

	if (e->tag == (page | 1) && tlb_allows(cpu, e->perm, acc, user))
		return e;
	if (cpu->st.cr0 & CR0_PG) {
		emu_sys_features(cpu);
		if (page_walk(cpu, lin, acc, user, &gpa, &perm))
			return NULL;
	} else {
		gpa = page;
		perm = EMU_TLB_USER | EMU_TLB_WRITE | EMU_TLB_EXEC | EMU_TLB_DIRTY;
	}
	e->tag = page | 1;
	e->gpa = gpa;
	e->perm = perm;
	e->host = cpu->bus.page_ptr(cpu->bus.opaque, gpa, false);
	if (e->host)
		e->perm |= EMU_TLB_HOST;
	if (e->host && cpu->bus.page_ptr(cpu->bus.opaque, gpa, true) == e->host) {
		e->perm |= EMU_TLB_HOSTW;
		e->code = emu_tlb_code_page(cpu, gpa);
	}
	return e;
}

/* MMIO access split into naturally aligned pieces of at most 8 bytes. */
static int mmio_access(struct emu_cpu *cpu, uint64_t gpa, uint8_t *buf, unsigned size,
		       bool write)
{
	int stop = 0;

	while (size) {
		unsigned n = 8;
		uint64_t v = 0;

		while (n > size || (gpa & (n - 1)))
			n >>= 1;
		if (write)
			memcpy(&v, buf, n);
		if (!cpu->bus.mmio || cpu->bus.mmio(cpu->bus.opaque, gpa, n, write, &v) < 0)
			stop = cpu->bus.mmio != NULL;
		if (!write)
			memcpy(buf, &v, n);
		gpa += n;
		buf += n;
		size -= n;
	}
	if (stop)
		cpu->sys.bus_stop = true;
	return 0;
}

static void page_read(struct emu_cpu *cpu, struct emu_tlb_entry *e, uint64_t lin, void *dst,
		      unsigned size)
{
	if (e->host)
		memcpy(dst, e->host + (lin & 0xfff), size);
	else
		mmio_access(cpu, e->gpa | (lin & 0xfff), dst, size, false);
}

static void page_write(struct emu_cpu *cpu, struct emu_tlb_entry *e, uint64_t lin,
		       const void *src, unsigned size)
{
	if (e->perm & EMU_TLB_HOSTW) {
		memcpy(e->host + (lin & 0xfff), src, size);
		emu_code_written(cpu, e->gpa | (lin & 0xfff), size);
	} else {
		mmio_access(cpu, e->gpa | (lin & 0xfff), (uint8_t *)src, size, true);
	}
}

static inline uint64_t lin_mask(const struct emu_cpu *cpu, uint64_t lin)
{
	return (cpu->st.efer & EFER_LMA) ? lin : (uint32_t)lin;
}

int emu_lin_read(struct emu_cpu *cpu, uint64_t lin, void *dst, unsigned size, unsigned flags)
{
	uint8_t *d = dst;

	lin = lin_mask(cpu, lin);
	while (size) {
		unsigned n = 4096 - (lin & 0xfff);
		struct emu_tlb_entry *e = translate(cpu, lin, (flags & ~EMU_ACC_WRITE) |
						    (flags & EMU_ACC_EXEC ? 0 : EMU_ACC_READ));

		if (!e)
			return EMU_FAULT;
		if (n > size)
			n = size;
		page_read(cpu, e, lin, d, n);
		d += n;
		size -= n;
		lin = lin_mask(cpu, lin + n);
	}
	return 0;
}

int emu_lin_write(struct emu_cpu *cpu, uint64_t lin, const void *src, unsigned size,
		  unsigned flags)
{
	const uint8_t *s = src;
	unsigned acc = (flags & EMU_ACC_IMPLICIT) | EMU_ACC_WRITE;

	lin = lin_mask(cpu, lin);
	if ((lin & 0xfff) + size <= 4096) {
		struct emu_tlb_entry *e = translate(cpu, lin, acc);

		if (!e)
			return EMU_FAULT;
		page_write(cpu, e, lin, src, size);
		return 0;
	}
	/* Crossing pages: translate every page before writing any byte. */
	for (uint64_t l = lin, left = size; left;) {
		unsigned n = 4096 - (l & 0xfff);

		if (!translate(cpu, l, acc))
			return EMU_FAULT;
		if (n > left)
			n = left;
		left -= n;
		l = lin_mask(cpu, l + n);
	}
	while (size) {
		unsigned n = 4096 - (lin & 0xfff);
		struct emu_tlb_entry *e = translate(cpu, lin, acc);

		if (!e)
			return EMU_FAULT;
		if (n > size)
			n = size;
		page_write(cpu, e, lin, s, n);
		s += n;
		size -= n;
		lin = lin_mask(cpu, lin + n);
	}
	return 0;
}

int emu_lin_check(struct emu_cpu *cpu, uint64_t lin, unsigned size, unsigned flags)
{
	lin = lin_mask(cpu, lin);
	if (!translate(cpu, lin, flags))
		return EMU_FAULT;
	if ((lin & 0xfff) + size > 4096 && !translate(cpu, lin_mask(cpu, lin + size - 1), flags))
		return EMU_FAULT;
	return 0;
}

void *emu_lin_rmw_ptr(struct emu_cpu *cpu, uint64_t lin, unsigned size)
{
	struct emu_tlb_entry *e;

	lin = lin_mask(cpu, lin);
	if ((lin & 0xfff) + size > 4096) {
		/* Check both pages so a fault is raised before any byte changes. */
		if (!translate(cpu, lin, EMU_ACC_WRITE) ||
		    !translate(cpu, lin_mask(cpu, lin + size - 1), EMU_ACC_WRITE))
			return NULL;
		return NULL;
	}
	e = translate(cpu, lin, EMU_ACC_READ | EMU_ACC_WRITE);
	if (!e || !(e->perm & EMU_TLB_HOSTW))
		return NULL;
	emu_code_written(cpu, e->gpa | (lin & 0xfff), size);
	return e->host + (lin & 0xfff);
}

const uint8_t *emu_fetch_ptr(struct emu_cpu *cpu, uint64_t lin, uint64_t *gpa,
			     unsigned *avail)
{
	struct emu_seg *cs = &cpu->st.seg[EMU_CS];
	struct emu_tlb_entry *e;
	unsigned n;

	*avail = 0;
	if (cpu->mode == EMU_MODE_LONG64) {
		if (!emu_canonical(lin)) {
			emu_gp0(cpu);
			return NULL;
		}
		n = 4096 - (lin & 0xfff);
	} else {
		uint64_t off = (uint32_t)(lin - cs->base);

		if (off > cs->limit) {
			emu_gp0(cpu);
			return NULL;
		}
		n = 4096 - (lin & 0xfff);
		if ((uint64_t)cs->limit - off + 1 < n)
			n = cs->limit - off + 1;
		lin = (uint32_t)lin;
	}
	e = translate(cpu, lin, EMU_ACC_EXEC);
	if (!e)
		return NULL;
	*gpa = e->gpa | (lin & 0xfff);
	if (!e->host)
		return NULL;
	*avail = n;
	return e->host + (lin & 0xfff);
}
