/*
 * pci: bus 0 through configuration mechanism #1 (PCI Local Bus 3.0 §3.2.2.3.2): a host bridge
 * at 0:0.0 (class 06/00), the PIIX3-compatible ISA bridge 8086:7000 (class 06/01) in the slot
 * named by "lpc=N" (default 31), every slot not named in "lpc=" or "devs=a,b,..." absent
 * (vendor reads 0xFFFF, dword 0xFFFFFFFF), byte/word/dword reads agreeing, 0xCF8 read-back.
 */
#include "rt.h"

static bool listed(const char *list, int slot)
{
	const char *p = list;
	while (*p) {
		const char *e;
		if ((int)parse_num(p, &e) == slot && e != p)
			return true;
		p = *e ? e + 1 : e;
	}
	return false;
}

void test_main(void)
{
	int lpc = (int)cmdline_num("lpc", 31);
	char devs[128];
	if (!cmdline_get("devs", devs, sizeof(devs)))
		devs[0] = 0;

	outl(0xcf8, 0x80001234 & ~3u);
	uint32_t back = inl(0xcf8);
	check(back == (0x80001234 & ~3u), "cf8-readback", "0xCF8 reads %x", back);

	for (int s = 0; s < 32; s++) {
		uint32_t id = pci_read32(0, s, 0, 0);
		if ((id & 0xffff) == 0xffff)
			continue;
		uint32_t cls = pci_read32(0, s, 0, 8);
		printf("# 00:%02x.0 %04x:%04x class %02x/%02x/%02x header %02x\n", s, id & 0xffff,
		       id >> 16, cls >> 24, (cls >> 16) & 0xff, (cls >> 8) & 0xff,
		       pci_read8(0, s, 0, 0xe));
	}

	uint32_t hb = pci_read32(0, 0, 0, 0), hbc = pci_read32(0, 0, 0, 8);
	check((hb & 0xffff) != 0xffff && (hb & 0xffff) != 0, "hostbridge-present", "0:0.0 reads %x", hb);
	check((hbc >> 16) == 0x0600, "hostbridge-class", "class %x", hbc >> 16);
	check((pci_read8(0, 0, 0, 0xe) & 0x7f) == 0, "hostbridge-header-type", "header %x",
	      pci_read8(0, 0, 0, 0xe));

	uint32_t isa = pci_read32(0, lpc, 0, 0), isac = pci_read32(0, lpc, 0, 8);
	check(isa == 0x70008086, "lpc-id", "0:%d.0 reads %x, want 8086:7000", lpc, isa);
	check((isac >> 16) == 0x0601, "lpc-class", "class %x", isac >> 16);
	check(pci_read16(0, lpc, 0, 0) == 0x8086 && pci_read16(0, lpc, 0, 2) == 0x7000 &&
	      pci_read8(0, lpc, 0, 0) == 0x86 && pci_read8(0, lpc, 0, 3) == 0x70,
	      "sub-dword-reads", "byte/word reads disagree with %x", isa);
	uint16_t status = pci_read16(0, 0, 0, 6);
	check(status != 0xffff, "hostbridge-status", "status %x", status);

	int bad = 0, badslot = -1;
	uint32_t badval = 0;
	for (int s = 1; s < 32; s++) {
		if (s == lpc || listed(devs, s))
			continue;
		uint32_t v = pci_read32(0, s, 0, 0);
		uint16_t w = pci_read16(0, s, 0, 0);
		if (v != 0xffffffff || w != 0xffff) {
			bad++;
			badslot = s;
			badval = v;
		}
	}
	check(!bad, "absent-slots", "%d slots answer, e.g. 0:%d.0 reads %x", bad, badslot, badval);
	check(pci_read32(1, 0, 0, 0) == 0xffffffff, "absent-bus1", "bus 1 slot 0 reads %x",
	      pci_read32(1, 0, 0, 0));
}
