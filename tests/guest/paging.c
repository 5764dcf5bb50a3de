/*
 * paging: 4-level paging (Intel SDM vol. 3 §4.5, §4.7, §4.8, §4.10): 4 KiB mappings above the
 * identity map, aliases, INVLPG and CR3 reload, accessed/dirty bits in PTE and upper levels,
 * and #PF error codes with CR2 for not-present read/write, write to read-only (CR0.WP on and
 * off), ring-3 access to a supervisor page, NX fetch, and a reserved PTE bit.
 */
#include "rt.h"

#define VA(n) (0x0000008000000000ull + (uint64_t)(n) * 0x1000)

static uint8_t pages[4][4096] __attribute__((aligned(4096)));

#define PA(i) ((uint64_t)pages[i])

static uint64_t user_read(uint64_t va)
{
	uint64_t v;
	return probe_read(va, &v) ? (uint64_t)-1 : v;
}

static uint64_t user_write(uint64_t va)
{
	return probe_write(va, 0x55) ? (uint64_t)-1 : 0;
}

static void expect_fault(const char *name, int r, uint64_t err, uint64_t cr2)
{
	if (r == 0) {
		not_ok(name, "no fault");
		return;
	}
	check(last_fault.vector == 14 && last_fault.error == err && last_fault.cr2 == cr2, name,
	      "vector %d error %lx (want %lx) cr2 %lx (want %lx)", last_fault.vector, last_fault.error,
	      err, last_fault.cr2, cr2);
}

static volatile uint64_t *upper_entry(uint64_t va, int level)
{
	extern uint64_t pml4[512];
	uint64_t *t = pml4;
	for (int shift = 39; shift > 12 + 9 * (level - 1); shift -= 9)
		t = (uint64_t *)(t[(va >> shift) & 511] & 0x000ffffffffff000ull);
	return &t[(va >> (12 + 9 * (level - 1))) & 511];
}

void test_main(void)
{
	uint64_t v;
	fault_probe_init();
	memset(pages, 0, sizeof(pages));
	for (int i = 0; i < 4; i++)
		*(uint64_t *)pages[i] = 0xa0a0a0a000000000ull + i;

	map_page(VA(0), PA(0), PTE_P | PTE_W);
	*(volatile uint64_t *)VA(0) = 0x1234;
	check(*(volatile uint64_t *)PA(0) == 0x1234, "map-4k", "identity view reads %lx",
	      *(volatile uint64_t *)PA(0));

	/* accessed and dirty */
	volatile uint64_t *pte = page_pte(VA(0));
	*pte = PA(0) | PTE_P | PTE_W;
	*upper_entry(VA(0), 2) &= ~PTE_A;
	*upper_entry(VA(0), 3) &= ~PTE_A;
	*upper_entry(VA(0), 4) &= ~PTE_A;
	WRITE_CR(3, READ_CR(3));
	v = *(volatile uint64_t *)VA(0);
	check((*pte & PTE_A) && !(*pte & PTE_D), "accessed-bit", "PTE %lx after a read", *pte);
	check((*upper_entry(VA(0), 2) & PTE_A) && (*upper_entry(VA(0), 3) & PTE_A) &&
	      (*upper_entry(VA(0), 4) & PTE_A), "accessed-bit-upper", "PDE %lx PDPTE %lx PML4E %lx",
	      *upper_entry(VA(0), 2), *upper_entry(VA(0), 3), *upper_entry(VA(0), 4));
	*(volatile uint64_t *)VA(0) = v + 1;
	check(*pte & PTE_D, "dirty-bit", "PTE %lx after a write", *pte);

	/* aliases, INVLPG, CR3 reload */
	map_page(VA(1), PA(0), PTE_P | PTE_W);
	*(volatile uint64_t *)VA(0) = 0x5555;
	check(*(volatile uint64_t *)VA(1) == 0x5555, "alias", "alias reads %lx", *(volatile uint64_t *)VA(1));
	map_page(VA(1), PA(1), PTE_P | PTE_W);
	check(*(volatile uint64_t *)VA(1) == 0xa0a0a0a000000001ull, "invlpg-remap", "reads %lx",
	      *(volatile uint64_t *)VA(1));
	*page_pte(VA(1)) = PA(2) | PTE_P | PTE_W;
	WRITE_CR(3, READ_CR(3));
	check(*(volatile uint64_t *)VA(1) == 0xa0a0a0a000000002ull, "cr3-reload", "reads %lx",
	      *(volatile uint64_t *)VA(1));

	/* not present */
	map_page(VA(2), 0, 0);
	expect_fault("pf-not-present-read", probe_read(VA(2) + 8, &v), 0, VA(2) + 8);
	expect_fault("pf-not-present-write", probe_write(VA(2) + 16, 1), 2, VA(2) + 16);
	expect_fault("pf-not-present-pml4", probe_read(0x0000010000000000ull, &v), 0,
		     0x0000010000000000ull);

	/* read-only */
	map_page(VA(3), PA(2), PTE_P);
	check(probe_read(VA(3), &v) == 0 && v == 0xa0a0a0a000000002ull, "read-only-read", "value %lx", v);
	expect_fault("pf-write-read-only", probe_write(VA(3), 7), 3, VA(3));
	check(*(volatile uint64_t *)PA(2) == 0xa0a0a0a000000002ull, "read-only-unchanged", "%lx",
	      *(volatile uint64_t *)PA(2));
	uint64_t cr0 = READ_CR(0);
	WRITE_CR(0, cr0 & ~(1ull << 16));
	int r = probe_write(VA(3), 7);
	WRITE_CR(0, cr0);
	check(r == 0 && *(volatile uint64_t *)PA(2) == 7, "cr0-wp-off-write", "r %d value %lx", r,
	      *(volatile uint64_t *)PA(2));

	/* user against supervisor */
	map_page(VA(4), PA(3), PTE_P | PTE_W);
	map_page(VA(5), PA(3), PTE_P | PTE_W | PTE_U);
	check(user_call(user_read, VA(5)) == 0xa0a0a0a000000003ull, "user-page-read", "ring 3 read failed");
	check(user_call(user_read, VA(4)) == (uint64_t)-1, "user-supervisor-read-faults", "no fault");
	expect_fault("pf-user-supervisor-read", -1, 5, VA(4));
	user_call(user_write, VA(4) + 8);
	expect_fault("pf-user-supervisor-write", -1, 7, VA(4) + 8);
	map_page(VA(6), 0, 0);
	user_call(user_write, VA(6));
	expect_fault("pf-user-not-present-write", -1, 6, VA(6));

	/* NX */
	pages[1][0] = 0xc3;	/* ret */
	map_page(VA(7), PA(1), PTE_P | PTE_W);
	check(probe_exec(VA(7)) == 0, "exec", "fetch from an executable page faulted");
	if (rdmsr(0xc0000080) & (1 << 11)) {
		map_page(VA(8), PA(1), PTE_P | PTE_W | PTE_NX);
		expect_fault("pf-nx-fetch", probe_exec(VA(8)), 0x11, VA(8));
	} else {
		not_ok("pf-nx-fetch", "EFER.NXE is off (CPUID 0x80000001 EDX.NX clear)");
	}

	/* reserved bit above MAXPHYADDR */
	uint32_t c[4];
	cpuid(0x80000000, 0, c);
	if (c[0] >= 0x80000008) {
		cpuid(0x80000008, 0, c);
		int maxphy = c[0] & 0xff;
		if (maxphy < 52) {
			map_page(VA(9), PA(1) | 1ull << maxphy, PTE_P | PTE_W);
			expect_fault("pf-reserved-bit", probe_read(VA(9), &v), 9, VA(9));
		}
	}
}
