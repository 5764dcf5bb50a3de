/*
 * paging.c: extra 4 KiB mappings above the identity map (PML4 entries 1-255), 4-level paging
 * as in Intel SDM vol. 3 §4.5. Table pages come from a static pool; nothing is unmapped.
 */
#include "rt.h"

extern uint64_t pml4[512];
static uint64_t pool[32][512] __attribute__((aligned(4096)));
static int pool_used;

static uint64_t *next_table(uint64_t *t, int idx)
{
	if (!(t[idx] & PTE_P)) {
		if (pool_used == 32) {
			not_ok("page-table-pool", "out of page-table pages");
			finish();
		}
		uint64_t *n = pool[pool_used++];
		memset(n, 0, 4096);
		t[idx] = (uint64_t)n | PTE_P | PTE_W | PTE_U;
	}
	return (uint64_t *)(t[idx] & 0x000ffffffffff000ull);
}

uint64_t *page_pte(uint64_t va)
{
	uint64_t *t = pml4;
	for (int shift = 39; shift > 12; shift -= 9)
		t = next_table(t, (int)(va >> shift) & 511);
	return &t[(va >> 12) & 511];
}

void map_page(uint64_t va, uint64_t pa, uint64_t flags)
{
	*page_pte(va) = pa | flags;
	invlpg(va);
}
