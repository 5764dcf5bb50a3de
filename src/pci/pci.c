/*
 * pci.c: the conventional PCI core (PCI Local Bus Specification 3.0 ch. 6): configuration
 * mechanism #1 on 0xCF8/0xCFC-0xCFF, type-0 headers, BAR sizing and placement with guest
 * relocation (registered on the io bus while the command register enables decode),
 * capability lists, single-message MSI, and INTx as level lines shared per PIRQ link (GSI
 * 16-19, and PIC IRQs through the PIIX3 PIRQ registers). Leaves out: expansion ROM BARs
 * (read as 0), bridges to secondary buses, multi-message and maskable MSI. MSI-X tables live
 * in a BAR the core serves (pci_msix_*).
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pci/pci.h"
#include "vmm/guest_mem.h"
#include "vmm/io_bus.h"
#include "vmm/vm.h"

#define PCI_CONF1_ADDR_PORT 0xcf8
#define PCI_CONF1_DATA_PORT 0xcfc
#define PCI_CONF1_ENABLE 0x80000000u

#define PCIR_VENDOR 0x00
#define PCIR_DEVICE 0x02
#define PCIR_COMMAND 0x04
#define PCIR_STATUS 0x06
#define PCIR_REVID 0x08
#define PCIR_PROGIF 0x09
#define PCIR_SUBCLASS 0x0a
#define PCIR_CLASS 0x0b
#define PCIR_CACHELNSZ 0x0c
#define PCIR_LATTIMER 0x0d
#define PCIR_HDRTYPE 0x0e
#define PCIR_BAR0 0x10
#define PCIR_BAR_END 0x28
#define PCIR_SUBVEND 0x2c
#define PCIR_SUBDEV 0x2e
#define PCIR_CAP_PTR 0x34
#define PCIR_INTLINE 0x3c
#define PCIR_INTPIN 0x3d

#define PCIM_CMD_PORTEN 0x0001
#define PCIM_CMD_MEMEN 0x0002
#define PCIM_CMD_INTXDIS 0x0400
#define PCIM_CMD_WMASK 0x0547	/* I/O, memory, bus master, parity, SERR, INTx disable */
#define PCIM_STATUS_INTXSTATE 0x0008
#define PCIM_STATUS_CAPPRESENT 0x0010
#define PCIM_MFDEV 0x80

#define PCI_CAP_START 0x40
#define PCI_NLINKS 4
#define PCI_HIGH_MEM_MIN_BAR (256ULL << 20)	/* smaller 64-bit BARs stay below 4 GiB */

struct pci_bar_ref {
	struct pci_slot *slot;
	int idx;
};

/* A function on the bus: the device as models see it plus the core's bookkeeping. */
struct pci_slot {
	struct pci_dev dev;
	struct pci_bus *bus;
	struct pci_bar_ref bar_ref[6];
	unsigned cap_next;	/* next free config offset for a capability */
	unsigned cap_last;	/* offset of the last capability, 0 when none */
	unsigned msi_off;	/* MSI capability offset, 0 when none */
	unsigned msix_off;	/* MSI-X capability offset, 0 when none */
	int msix_bar;
	unsigned msix_nvec, msix_pba_off;
	uint8_t *msix_table;	/* msix_nvec 16-byte entries */
	uint64_t *msix_pba;
	pthread_mutex_t msix_lock;	/* table, PBA and delivery */
	struct pci_slot *next;
};

struct pci_bus {
	struct vm *vm;
	pthread_mutex_t cfg_lock;	/* config mechanism and BAR moves */
	pthread_mutex_t irq_lock;	/* INTx counts and PIRQ routing */
	uint32_t cfg_addr;
	struct pci_slot *slots;	/* in order of addition */
	uint64_t io_next, mem32_next, mem64_next;
	const struct pci_notifiers *notifiers;
	struct pci_dev *pirq_bridge;
	uint8_t pirq_route[PCI_NLINKS];
	unsigned link_count[PCI_NLINKS];	/* devices asserting each link */
};

static struct pci_slot *pci_slot_of(struct pci_dev *pdev)
{
	return (struct pci_slot *)((char *)pdev - offsetof(struct pci_slot, dev));
}

static uint32_t pci_cfg_read32(const struct pci_dev *p, unsigned off)
{
	return (uint32_t)p->cfg[off] | (uint32_t)p->cfg[off + 1] << 8 |
	       (uint32_t)p->cfg[off + 2] << 16 | (uint32_t)p->cfg[off + 3] << 24;
}

static void pci_cfg_write32(struct pci_dev *p, unsigned off, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p->cfg[off + i] = (uint8_t)(v >> (8 * i));
}

void pci_set_ids(struct pci_dev *pdev, uint16_t vendor, uint16_t device, uint8_t revision,
		 uint8_t class_code, uint8_t subclass, uint8_t prog_if)
{
	pci_cfg_write16(pdev, PCIR_VENDOR, vendor);
	pci_cfg_write16(pdev, PCIR_DEVICE, device);
	pdev->cfg[PCIR_REVID] = revision;
	pdev->cfg[PCIR_CLASS] = class_code;
	pdev->cfg[PCIR_SUBCLASS] = subclass;
	pdev->cfg[PCIR_PROGIF] = prog_if;
}

void pci_set_subsystem(struct pci_dev *pdev, uint16_t subvendor, uint16_t subdevice)
{
	pci_cfg_write16(pdev, PCIR_SUBVEND, subvendor);
	pci_cfg_write16(pdev, PCIR_SUBDEV, subdevice);
}

int pci_add_bar(struct pci_dev *pdev, int idx, enum pci_bar_type type, uint64_t size)
{
	if (idx < 0 || idx > 5 || type == PCI_BAR_NONE)
		return -EINVAL;
	if (size == 0 || (size & (size - 1)))
		return -EINVAL;
	if (type == PCI_BAR_MEM64 && (idx == 5 || pdev->bar[idx + 1].type != PCI_BAR_NONE))
		return -EINVAL;
	if (pdev->bar[idx].type != PCI_BAR_NONE ||
	    (idx > 0 && pdev->bar[idx - 1].type == PCI_BAR_MEM64))
		return -EEXIST;	/* taken, or the upper half of a 64-bit BAR */
	if (type == PCI_BAR_IO && size > 256)
		return -EINVAL;
	if (type == PCI_BAR_MEM32 && size > (1ULL << 31))
		return -EINVAL;
	if (type == PCI_BAR_IO && size < 4)
		size = 4;
	if (type != PCI_BAR_IO && size < 16)
		size = 16;
	pdev->bar[idx].type = type;
	pdev->bar[idx].size = size;
	pdev->bar[idx].addr = 0;
	pdev->bar[idx].registered = false;
	return 0;
}

int pci_add_capability(struct pci_dev *pdev, const uint8_t *cap, unsigned len)
{
	struct pci_slot *s = pci_slot_of(pdev);
	unsigned off = (s->cap_next + 3) & ~3u;

	if (len < 2 || off + len > sizeof pdev->cfg)
		return -ENOSPC;
	memcpy(&pdev->cfg[off], cap, len);
	pdev->cfg[off + 1] = 0;
	if (s->cap_last)
		pdev->cfg[s->cap_last + 1] = (uint8_t)off;
	else
		pdev->cfg[PCIR_CAP_PTR] = (uint8_t)off;
	pci_cfg_write16(pdev, PCIR_STATUS,
			pci_cfg_read16(pdev, PCIR_STATUS) | PCIM_STATUS_CAPPRESENT);
	s->cap_last = off;
	s->cap_next = off + len;
	return (int)off;
}

/* ---- MSI ---- */

#define PCIY_MSI 0x05
#define PCIM_MSICTRL_MSI_ENABLE 0x0001
#define PCIM_MSICTRL_64BIT 0x0080
#define PCI_MSI64_LEN 14	/* ID, next, control, address low/high, data */

int pci_msi_add(struct pci_dev *pdev)
{
	struct pci_slot *s = pci_slot_of(pdev);
	uint8_t cap[PCI_MSI64_LEN] = { PCIY_MSI, 0, PCIM_MSICTRL_64BIT, 0 };
	int off;

	if (s->msi_off)
		return -EEXIST;
	off = pci_add_capability(pdev, cap, sizeof cap);
	if (off < 0)
		return off;
	s->msi_off = (unsigned)off;
	pdev->cfg_wmask[off + 2] = PCIM_MSICTRL_MSI_ENABLE;	/* one message: MME stays 0 */
	pdev->cfg_wmask[off + 4] = 0xfc;	/* dword-aligned address */
	for (int i = 5; i < PCI_MSI64_LEN; i++)
		pdev->cfg_wmask[off + i] = 0xff;
	return off;
}

bool pci_msi_enabled(const struct pci_dev *pdev)
{
	const struct pci_slot *s =
		(const struct pci_slot *)((const char *)pdev - offsetof(struct pci_slot, dev));

	return s->msi_off && (pdev->cfg[s->msi_off + 2] & PCIM_MSICTRL_MSI_ENABLE);
}

bool pci_msi_notify(struct pci_dev *pdev)
{
	unsigned off = pci_slot_of(pdev)->msi_off;
	uint64_t addr;

	if (!pci_msi_enabled(pdev))
		return false;
	addr = (uint64_t)pci_cfg_read32(pdev, off + 8) << 32 | pci_cfg_read32(pdev, off + 4);
	vm_msi(pdev->vm, addr, pci_cfg_read16(pdev, off + 12));
	return true;
}

/* ---- MSI-X ---- */

#define PCIY_MSIX 0x11
#define PCIM_MSIXCTRL_ENABLE 0x8000
#define PCIM_MSIXCTRL_FMASK 0x4000
#define PCI_MSIX_ENTRY 16
#define PCI_MSIX_VCTRL_MASK 1u
#define PCI_MSIX_MAX 2048

static uint64_t pci_pow2_at_least(uint64_t v)
{
	uint64_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

int pci_msix_add(struct pci_dev *pdev, int bar, unsigned nvec)
{
	struct pci_slot *s = pci_slot_of(pdev);
	uint8_t cap[12] = { PCIY_MSIX, 0 };
	uint64_t table_bytes, pba_off, size;
	int off, ret;

	if (s->msix_off)
		return -EEXIST;
	if (nvec == 0 || nvec > PCI_MSIX_MAX || bar < 0 || bar > 5)
		return -EINVAL;
	table_bytes = (uint64_t)nvec * PCI_MSIX_ENTRY;
	pba_off = (table_bytes + 7) & ~7ULL;
	size = pci_pow2_at_least(pba_off + ((nvec + 63) / 64) * 8);
	if (size < 4096)
		size = 4096;
	ret = pci_add_bar(pdev, bar, PCI_BAR_MEM32, size);
	if (ret < 0)
		return ret;
	s->msix_table = calloc(nvec, PCI_MSIX_ENTRY);
	s->msix_pba = calloc((nvec + 63) / 64, 8);
	if (!s->msix_table || !s->msix_pba) {
		free(s->msix_table);
		free(s->msix_pba);
		s->msix_table = NULL;
		s->msix_pba = NULL;
		pdev->bar[bar].type = PCI_BAR_NONE;
		return -ENOMEM;
	}
	cap[2] = (uint8_t)(nvec - 1);
	cap[3] = (uint8_t)((nvec - 1) >> 8);
	cap[4] = (uint8_t)bar;			/* table at offset 0 */
	cap[8] = (uint8_t)(pba_off | (unsigned)bar);
	cap[9] = (uint8_t)(pba_off >> 8);
	cap[10] = (uint8_t)(pba_off >> 16);
	off = pci_add_capability(pdev, cap, sizeof cap);
	if (off < 0) {
		free(s->msix_table);
		free(s->msix_pba);
		s->msix_table = NULL;
		s->msix_pba = NULL;
		pdev->bar[bar].type = PCI_BAR_NONE;
		return off;
	}
	for (unsigned v = 0; v < nvec; v++)
		s->msix_table[v * PCI_MSIX_ENTRY + 12] = PCI_MSIX_VCTRL_MASK;
	pthread_mutex_init(&s->msix_lock, NULL);
	s->msix_off = (unsigned)off;
	s->msix_bar = bar;
	s->msix_nvec = nvec;
	s->msix_pba_off = (unsigned)pba_off;
	pdev->cfg_wmask[off + 3] = (PCIM_MSIXCTRL_ENABLE | PCIM_MSIXCTRL_FMASK) >> 8;
	return off;
}

static uint16_t pci_msix_ctrl(const struct pci_slot *s)
{
	return pci_cfg_read16(&s->dev, s->msix_off + 2);
}

bool pci_msix_enabled(const struct pci_dev *pdev)
{
	struct pci_slot *s = (struct pci_slot *)((const char *)pdev - offsetof(struct pci_slot, dev));
	bool on;

	if (!s->msix_off)
		return false;
	pthread_mutex_lock(&s->msix_lock);
	on = pci_msix_ctrl(s) & PCIM_MSIXCTRL_ENABLE;
	pthread_mutex_unlock(&s->msix_lock);
	return on;
}

unsigned pci_msix_count(const struct pci_dev *pdev)
{
	const struct pci_slot *s =
		(const struct pci_slot *)((const char *)pdev - offsetof(struct pci_slot, dev));

	return s->msix_off ? s->msix_nvec : 0;
}

/* msix_lock held: send `vec` now, or leave it pending while masked. */
static void pci_msix_fire(struct pci_slot *s, unsigned vec)
{
	const uint8_t *e = &s->msix_table[vec * PCI_MSIX_ENTRY];
	uint32_t lo, hi, data, vctrl;

	memcpy(&lo, e, 4);
	memcpy(&hi, e + 4, 4);
	memcpy(&data, e + 8, 4);
	memcpy(&vctrl, e + 12, 4);
	if ((vctrl & PCI_MSIX_VCTRL_MASK) || (pci_msix_ctrl(s) & PCIM_MSIXCTRL_FMASK)) {
		s->msix_pba[vec / 64] |= 1ULL << (vec % 64);
		return;
	}
	s->msix_pba[vec / 64] &= ~(1ULL << (vec % 64));
	vm_msi(s->dev.vm, (uint64_t)hi << 32 | lo, data);
}

int pci_msix_notify(struct pci_dev *pdev, unsigned vec)
{
	struct pci_slot *s = pci_slot_of(pdev);

	if (!s->msix_off || vec >= s->msix_nvec)
		return -EINVAL;
	pthread_mutex_lock(&s->msix_lock);
	if (!(pci_msix_ctrl(s) & PCIM_MSIXCTRL_ENABLE)) {
		pthread_mutex_unlock(&s->msix_lock);
		return -EINVAL;
	}
	pci_msix_fire(s, vec);
	pthread_mutex_unlock(&s->msix_lock);
	return 0;
}

int pci_msix_entry(struct pci_dev *pdev, unsigned vec, uint64_t *addr, uint32_t *data,
		   bool *masked)
{
	struct pci_slot *s = pci_slot_of(pdev);
	uint32_t lo, hi, vctrl;

	if (!s->msix_off || vec >= s->msix_nvec)
		return -EINVAL;
	pthread_mutex_lock(&s->msix_lock);
	memcpy(&lo, &s->msix_table[vec * PCI_MSIX_ENTRY], 4);
	memcpy(&hi, &s->msix_table[vec * PCI_MSIX_ENTRY + 4], 4);
	memcpy(data, &s->msix_table[vec * PCI_MSIX_ENTRY + 8], 4);
	memcpy(&vctrl, &s->msix_table[vec * PCI_MSIX_ENTRY + 12], 4);
	*masked = (vctrl & PCI_MSIX_VCTRL_MASK) || !(pci_msix_ctrl(s) & PCIM_MSIXCTRL_ENABLE) ||
		  (pci_msix_ctrl(s) & PCIM_MSIXCTRL_FMASK);
	pthread_mutex_unlock(&s->msix_lock);
	*addr = (uint64_t)hi << 32 | lo;
	return 0;
}

/* msix_lock held: deliver what became unmasked. */
static void pci_msix_flush(struct pci_slot *s)
{
	if (!(pci_msix_ctrl(s) & PCIM_MSIXCTRL_ENABLE))
		return;
	for (unsigned v = 0; v < s->msix_nvec; v++)
		if (s->msix_pba[v / 64] & (1ULL << (v % 64)))
			pci_msix_fire(s, v);
}

/* Table and PBA accesses (any size up to 8, within the BAR); the PBA is read-only. */
static void pci_msix_bar_io(struct pci_slot *s, uint64_t offset, unsigned size, bool write,
			    uint64_t *val)
{
	uint64_t table_bytes = (uint64_t)s->msix_nvec * PCI_MSIX_ENTRY;
	uint64_t pba_bytes = ((s->msix_nvec + 63) / 64) * 8;

	pthread_mutex_lock(&s->msix_lock);
	if (offset + size <= table_bytes) {
		if (write) {
			uint8_t *p = &s->msix_table[offset];

			for (unsigned i = 0; i < size; i++)
				p[i] = (uint8_t)(*val >> (8 * i));
			pci_msix_flush(s);
		} else {
			uint64_t v = 0;

			memcpy(&v, &s->msix_table[offset], size);
			*val = v;
		}
	} else if (offset >= s->msix_pba_off && offset + size <= s->msix_pba_off + pba_bytes) {
		if (!write) {
			uint64_t v = 0;

			memcpy(&v, (const uint8_t *)s->msix_pba + (offset - s->msix_pba_off), size);
			*val = v;
		}
	} else if (!write) {
		*val = 0;
	}
	pthread_mutex_unlock(&s->msix_lock);
}

/* ---- INTx ---- */

static int pci_intx_link(const struct pci_dev *pdev)
{
	return (pdev->slot + pdev->intx_pin + 2) % PCI_NLINKS;	/* (slot + pin - 2) mod 4 */
}

static bool pci_pirq_valid(uint8_t route)
{
	unsigned irq = route & 0x0f;

	return !(route & 0x80) && irq >= 3 && irq != 8 && irq != 13;
}

/* irq_lock held. The link's PIC IRQ follows the link's count. */
static void pci_link_pic(struct pci_bus *bus, int link, bool level)
{
	uint8_t route = bus->pirq_route[link];

	if (!bus->pirq_bridge || !pci_pirq_valid(route))
		return;
	if (level)
		vm_irq_assert(bus->vm, route & 0x0f);
	else
		vm_irq_deassert(bus->vm, route & 0x0f);
}

int pci_intx_request(struct pci_dev *pdev)
{
	pdev->intx_pin = 1;
	pdev->cfg[PCIR_INTPIN] = 1;
	pdev->intx_gsi = PCI_INTX_GSI_BASE + pci_intx_link(pdev);
	pdev->cfg[PCIR_INTLINE] = 0xff;
	return 0;
}

/* irq_lock held: drive the device's contribution to its link. */
static void pci_intx_drive(struct pci_dev *pdev, bool level)
{
	struct pci_bus *bus = pci_slot_of(pdev)->bus;
	int link = pci_intx_link(pdev);

	if (level) {
		if (bus->link_count[link]++ == 0) {
			vm_irq_assert(bus->vm, (unsigned)pdev->intx_gsi);
			pci_link_pic(bus, link, true);
		}
	} else if (bus->link_count[link] > 0) {
		if (--bus->link_count[link] == 0) {
			vm_irq_deassert(bus->vm, (unsigned)pdev->intx_gsi);
			pci_link_pic(bus, link, false);
		}
	}
}

static bool pci_intx_disabled(const struct pci_dev *pdev)
{
	return pci_cfg_read16(pdev, PCIR_COMMAND) & PCIM_CMD_INTXDIS;
}

void pci_intx_assert(struct pci_dev *pdev)
{
	struct pci_bus *bus = pci_slot_of(pdev)->bus;

	if (pdev->intx_pin == 0)
		return;
	pthread_mutex_lock(&bus->irq_lock);
	if (!pdev->intx_asserted) {
		pdev->intx_asserted = true;
		if (!pci_intx_disabled(pdev))
			pci_intx_drive(pdev, true);
	}
	pthread_mutex_unlock(&bus->irq_lock);
}

void pci_intx_deassert(struct pci_dev *pdev)
{
	struct pci_bus *bus = pci_slot_of(pdev)->bus;

	if (pdev->intx_pin == 0)
		return;
	pthread_mutex_lock(&bus->irq_lock);
	if (pdev->intx_asserted) {
		pdev->intx_asserted = false;
		if (!pci_intx_disabled(pdev))
			pci_intx_drive(pdev, false);
	}
	pthread_mutex_unlock(&bus->irq_lock);
}

int pci_pirq_attach(struct pci_dev *bridge)
{
	struct pci_bus *bus = pci_slot_of(bridge)->bus;
	int ret = 0;

	pthread_mutex_lock(&bus->irq_lock);
	if (bus->pirq_bridge)
		ret = -EBUSY;
	else
		bus->pirq_bridge = bridge;
	pthread_mutex_unlock(&bus->irq_lock);
	return ret;
}

void pci_pirq_set(struct pci_dev *bridge, int link, uint8_t route)
{
	struct pci_bus *bus = pci_slot_of(bridge)->bus;

	if (link < 0 || link >= PCI_NLINKS || bus->pirq_bridge != bridge)
		return;
	pthread_mutex_lock(&bus->irq_lock);
	if (bus->pirq_route[link] != route) {
		bool active = bus->link_count[link] > 0;

		if (active)
			pci_link_pic(bus, link, false);
		bus->pirq_route[link] = route;
		if (active)
			pci_link_pic(bus, link, true);
	}
	pthread_mutex_unlock(&bus->irq_lock);
}

int pci_bus_intx_routes(struct pci_bus *bus, void (*fn)(void *opaque, uint8_t b, uint8_t s,
							uint8_t pin, int gsi), void *opaque)
{
	int n = 0;

	for (struct pci_slot *s = bus->slots; s; s = s->next) {
		if (s->dev.intx_pin == 0)
			continue;
		fn(opaque, s->dev.bus, s->dev.slot, (uint8_t)s->dev.intx_pin, s->dev.intx_gsi);
		n++;
	}
	return n;
}

/* ---- BARs ---- */

static void pci_bar_io(void *opaque, uint64_t offset, unsigned size, bool write, uint64_t *val)
{
	struct pci_bar_ref *ref = opaque;
	struct pci_dev *pdev = &ref->slot->dev;
	const struct pci_dev_ops *ops = pdev->ops;

	if (offset + size > pdev->bar[ref->idx].size) {
		if (!write)
			*val = ~0ULL;
		return;
	}
	if (ref->slot->msix_off && ref->idx == ref->slot->msix_bar) {
		pci_msix_bar_io(ref->slot, offset, size, write, val);
		return;
	}
	if (write) {
		if (ops && ops->bar_write)
			ops->bar_write(pdev, ref->idx, offset, size, *val);
	} else if (ops && ops->bar_read) {
		ops->bar_read(pdev, ref->idx, offset, size, val);
	}
}

static bool pci_bar_decoding(const struct pci_dev *pdev, int idx)
{
	uint16_t cmd = pci_cfg_read16(pdev, PCIR_COMMAND);

	if (pdev->bar[idx].type == PCI_BAR_IO)
		return cmd & PCIM_CMD_PORTEN;
	return cmd & PCIM_CMD_MEMEN;
}

/* A placement the guest can mean: not 0, not the sizing pattern, inside its space. */
static bool pci_bar_addr_usable(const struct pci_bar *bar)
{
	uint64_t limit = bar->type == PCI_BAR_IO ? 0x10000 :
			 bar->type == PCI_BAR_MEM32 ? 1ULL << 32 : 1ULL << 52;
	uint64_t sizing = bar->type == PCI_BAR_IO ? 0x10000 - bar->size :
			  bar->type == PCI_BAR_MEM32 ? (1ULL << 32) - bar->size : -bar->size;

	if (bar->addr == 0 || bar->addr >= sizing || bar->addr + bar->size > limit)
		return false;
	return true;
}

/* cfg_lock held: make the io bus match the BAR's address and the command register. */
static void pci_bar_sync(struct pci_dev *pdev, int idx)
{
	struct pci_slot *s = pci_slot_of(pdev);
	struct pci_bar *bar = &pdev->bar[idx];
	enum io_space space = bar->type == PCI_BAR_IO ? IO_SPACE_PIO : IO_SPACE_MMIO;
	bool want = pci_bar_decoding(pdev, idx) && pci_bar_addr_usable(bar);

	if (want && !bar->registered) {
		/* An overlap with another range leaves the BAR dark: the guest's mistake. */
		if (io_bus_register(vm_io(pdev->vm), space, bar->addr, bar->size, pci_bar_io,
				    &s->bar_ref[idx], pdev->name ? pdev->name : "pci-bar") == 0) {
			bar->registered = true;
			if (pdev->ops && pdev->ops->bar_mapped)
				pdev->ops->bar_mapped(pdev, idx, bar->addr, true);
		}
	}
}

static void pci_bar_unsync(struct pci_dev *pdev, int idx)
{
	struct pci_bar *bar = &pdev->bar[idx];

	if (!bar->registered)
		return;
	if (pdev->ops && pdev->ops->bar_mapped)
		pdev->ops->bar_mapped(pdev, idx, bar->addr, false);
	io_bus_unregister(vm_io(pdev->vm), bar->type == PCI_BAR_IO ? IO_SPACE_PIO : IO_SPACE_MMIO,
			  bar->addr);
	bar->registered = false;
}

/* Write the BAR's address into its register(s) from bar->addr. */
static void pci_bar_store(struct pci_dev *pdev, int idx)
{
	struct pci_bar *bar = &pdev->bar[idx];
	unsigned off = PCIR_BAR0 + 4 * (unsigned)idx;

	switch (bar->type) {
	case PCI_BAR_IO:
		pci_cfg_write32(pdev, off, ((uint32_t)bar->addr & ~3u) | 0x1);
		break;
	case PCI_BAR_MEM32:
		pci_cfg_write32(pdev, off, (uint32_t)bar->addr & ~0xfu);
		break;
	case PCI_BAR_MEM64:
		pci_cfg_write32(pdev, off, ((uint32_t)bar->addr & ~0xfu) | 0x4);
		pci_cfg_write32(pdev, off + 4, (uint32_t)(bar->addr >> 32));
		break;
	case PCI_BAR_NONE:
		break;
	}
}

/* cfg_lock held: a guest write of `v` (already merged to a dword) to BAR register `reg`. */
static void pci_bar_reg_write(struct pci_dev *pdev, int reg, uint32_t v)
{
	int idx = reg;
	bool high = false;
	struct pci_bar *bar;
	uint64_t addr;

	if (pdev->bar[reg].type == PCI_BAR_NONE) {
		if (reg > 0 && pdev->bar[reg - 1].type == PCI_BAR_MEM64) {
			idx = reg - 1;
			high = true;
		} else {
			return;	/* unimplemented BAR: reads 0 */
		}
	}
	bar = &pdev->bar[idx];
	addr = bar->addr;
	if (high) {
		addr = (addr & 0xffffffffULL) | ((uint64_t)v << 32);
		addr &= ~(bar->size - 1);
	} else if (bar->type == PCI_BAR_IO) {
		addr = v & ~(bar->size - 1) & 0xffff;
	} else if (bar->type == PCI_BAR_MEM32) {
		addr = v & ~(bar->size - 1) & 0xffffffffULL;
	} else {
		addr = (addr & ~0xffffffffULL) | (v & 0xfffffff0u);
		addr &= ~(bar->size - 1);
	}
	if (addr != bar->addr) {
		pci_bar_unsync(pdev, idx);
		bar->addr = addr;
	}
	pci_bar_store(pdev, idx);
	if (bar->type == PCI_BAR_IO) {
		/* Upper bits of an I/O BAR read back as ones after all-ones (16-bit decode). */
		if (v & 0xffff0000u)
			pci_cfg_write32(pdev, PCIR_BAR0 + 4 * (unsigned)idx,
					pci_cfg_read32(pdev, PCIR_BAR0 + 4 * (unsigned)idx) |
						(v & 0xffff0000u));
	}
	pci_bar_sync(pdev, idx);
}

/* ---- configuration space ---- */

/* Whether a config write reaches the MSI-X message control register. */
static bool pci_msix_touched(struct pci_dev *pdev, unsigned off, unsigned size)
{
	unsigned ctrl = pci_slot_of(pdev)->msix_off + 2;

	return pci_slot_of(pdev)->msix_off && off <= ctrl + 1 && off + size > ctrl;
}

static void pci_cfg_core_write(struct pci_dev *pdev, unsigned off, unsigned size, uint32_t v)
{
	uint16_t old_cmd = pci_cfg_read16(pdev, PCIR_COMMAND);
	bool msix;

	if (off >= PCIR_BAR0 && off < PCIR_BAR_END) {
		unsigned reg_off = off & ~3u, shift = (off & 3) * 8;
		uint32_t mask = size == 4 ? 0xffffffffu : ((1u << (size * 8)) - 1) << shift;
		uint32_t cur = pci_cfg_read32(pdev, reg_off);

		pci_bar_reg_write(pdev, (int)(reg_off - PCIR_BAR0) / 4,
				  (cur & ~mask) | ((v << shift) & mask));
		return;
	}
	/* MSI-X message control is read by interrupt senders under msix_lock. */
	msix = pci_msix_touched(pdev, off, size);
	if (msix)
		pthread_mutex_lock(&pci_slot_of(pdev)->msix_lock);
	for (unsigned i = 0; i < size; i++) {
		uint8_t wm = pdev->cfg_wmask[off + i], b = (uint8_t)(v >> (8 * i));

		pdev->cfg[off + i] = (uint8_t)((pdev->cfg[off + i] & ~wm) | (b & wm));
	}
	if (msix) {
		pci_msix_flush(pci_slot_of(pdev));
		pthread_mutex_unlock(&pci_slot_of(pdev)->msix_lock);
	}
	if (off <= PCIR_COMMAND + 1 && off + size > PCIR_COMMAND) {
		uint16_t cmd = pci_cfg_read16(pdev, PCIR_COMMAND);
		struct pci_bus *bus = pci_slot_of(pdev)->bus;

		if ((cmd ^ old_cmd) & (PCIM_CMD_PORTEN | PCIM_CMD_MEMEN)) {
			for (int i = 0; i < 6; i++) {
				if (pdev->bar[i].type == PCI_BAR_NONE)
					continue;
				if (pci_bar_decoding(pdev, i))
					pci_bar_sync(pdev, i);
				else
					pci_bar_unsync(pdev, i);
			}
		}
		if ((cmd ^ old_cmd) & PCIM_CMD_INTXDIS) {
			pthread_mutex_lock(&bus->irq_lock);
			if (pdev->intx_asserted && pdev->intx_pin)
				pci_intx_drive(pdev, !(cmd & PCIM_CMD_INTXDIS));
			pthread_mutex_unlock(&bus->irq_lock);
		}
	}
}

static uint32_t pci_cfg_core_read(struct pci_dev *pdev, unsigned off, unsigned size)
{
	uint32_t v = 0;

	for (unsigned i = 0; i < size; i++) {
		uint8_t b = pdev->cfg[off + i];

		if (off + i == PCIR_STATUS && pdev->intx_asserted)
			b |= PCIM_STATUS_INTXSTATE;
		v |= (uint32_t)b << (8 * i);
	}
	return v;
}

static struct pci_slot *pci_bus_lookup(struct pci_bus *bus, unsigned b, unsigned s, unsigned f)
{
	for (struct pci_slot *p = bus->slots; p; p = p->next)
		if (p->dev.bus == b && p->dev.slot == s && p->dev.func == f)
			return p;
	return NULL;
}

/* Mechanism #1 data-port access: `port_off` 0..3 within 0xCFC. cfg_lock held. */
static void pci_cfg_access(struct pci_bus *bus, unsigned port_off, unsigned size, bool write,
			   uint64_t *val)
{
	uint32_t a = bus->cfg_addr;
	unsigned off = (a & 0xfc) + port_off;
	struct pci_slot *s = NULL;

	if ((a & PCI_CONF1_ENABLE) && port_off + size <= 4 && (size == 1 || size == 2 || size == 4))
		s = pci_bus_lookup(bus, (a >> 16) & 0xff, (a >> 11) & 0x1f, (a >> 8) & 0x7);
	if (!s) {
		if (!write)
			*val = size >= 4 ? 0xffffffffu : (1u << (size * 8)) - 1;
		return;
	}
	if (write) {
		uint32_t v = (uint32_t)*val;

		if (s->dev.ops && s->dev.ops->cfg_write &&
		    s->dev.ops->cfg_write(&s->dev, off, size, v))
			return;
		pci_cfg_core_write(&s->dev, off, size, v);
	} else {
		uint32_t v;

		if (!(s->dev.ops && s->dev.ops->cfg_read &&
		      s->dev.ops->cfg_read(&s->dev, off, size, &v)))
			v = pci_cfg_core_read(&s->dev, off, size);
		*val = v;
	}
}

static void pci_cfgaddr_io(void *opaque, uint64_t offset, unsigned size, bool write,
			   uint64_t *val)
{
	struct pci_bus *bus = opaque;

	pthread_mutex_lock(&bus->cfg_lock);
	if (size == 4) {
		if (write)
			bus->cfg_addr = (uint32_t)*val & 0x80fffffcu;
		else
			*val = bus->cfg_addr;
	} else if (!write) {
		/* Byte/word reads see the latch; only dword writes change it. */
		*val = (bus->cfg_addr >> (8 * offset)) & ((1u << (size * 8)) - 1);
	}
	pthread_mutex_unlock(&bus->cfg_lock);
}

static void pci_cfgdata_io(void *opaque, uint64_t offset, unsigned size, bool write,
			   uint64_t *val)
{
	struct pci_bus *bus = opaque;

	pthread_mutex_lock(&bus->cfg_lock);
	pci_cfg_access(bus, (unsigned)offset, size, write, val);
	pthread_mutex_unlock(&bus->cfg_lock);
}

/* ---- the bus ---- */

int pci_bus_create(struct vm *vm, struct pci_bus **out)
{
	struct pci_bus *bus = calloc(1, sizeof *bus);
	int ret;

	*out = NULL;
	if (!bus)
		return -ENOMEM;
	bus->vm = vm;
	pthread_mutex_init(&bus->cfg_lock, NULL);
	pthread_mutex_init(&bus->irq_lock, NULL);
	for (int i = 0; i < PCI_NLINKS; i++)
		bus->pirq_route[i] = 0x80;
	bus->io_next = PCI_IO_WINDOW_BASE;
	bus->mem32_next = PCI_MEM32_WINDOW_BASE;
	ret = io_bus_register(vm_io(vm), IO_SPACE_PIO, PCI_CONF1_ADDR_PORT, 1, pci_cfgaddr_io, bus,
			      "pci-cfgaddr");
	if (ret == 0) {
		ret = io_bus_register(vm_io(vm), IO_SPACE_PIO, PCI_CONF1_DATA_PORT, 4,
				      pci_cfgdata_io, bus, "pci-cfgdata");
		if (ret < 0)
			io_bus_unregister(vm_io(vm), IO_SPACE_PIO, PCI_CONF1_ADDR_PORT);
	}
	if (ret < 0) {
		pthread_mutex_destroy(&bus->cfg_lock);
		pthread_mutex_destroy(&bus->irq_lock);
		free(bus);
		return ret;
	}
	*out = bus;
	return 0;
}

int pci_bus_add(struct pci_bus *bus, uint8_t b, uint8_t s, uint8_t f, struct pci_dev **out)
{
	struct pci_slot *slot, **tail;

	*out = NULL;
	if (s > 31 || f > 7)
		return -EINVAL;
	if (pci_bus_lookup(bus, b, s, f))
		return -EEXIST;
	slot = calloc(1, sizeof *slot);
	if (!slot)
		return -ENOMEM;
	slot->bus = bus;
	slot->cap_next = PCI_CAP_START;
	slot->dev.vm = bus->vm;
	slot->dev.bus = b;
	slot->dev.slot = s;
	slot->dev.func = f;
	slot->dev.intx_gsi = -1;
	for (int i = 0; i < 6; i++) {
		slot->bar_ref[i].slot = slot;
		slot->bar_ref[i].idx = i;
	}
	pci_cfg_write16(&slot->dev, PCIR_COMMAND, 0);
	slot->dev.cfg_wmask[PCIR_COMMAND] = PCIM_CMD_WMASK & 0xff;
	slot->dev.cfg_wmask[PCIR_COMMAND + 1] = PCIM_CMD_WMASK >> 8;
	slot->dev.cfg_wmask[PCIR_CACHELNSZ] = 0xff;
	slot->dev.cfg_wmask[PCIR_LATTIMER] = 0xff;
	slot->dev.cfg_wmask[PCIR_INTLINE] = 0xff;
	for (tail = &bus->slots; *tail; tail = &(*tail)->next)
		;
	*tail = slot;
	*out = &slot->dev;
	return 0;
}

static uint64_t pci_align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* Base of the 64-bit window: above all RAM, 1 GiB aligned. */
static uint64_t pci_mem64_base(struct pci_bus *bus)
{
	uint64_t top = GUEST_MEM_HIGHMEM_BASE + gm_highmem_size(vm_mem(bus->vm));

	return pci_align_up(top, 1ULL << 30);
}

/* Pick an address for BAR idx and register it; retries past ranges someone else holds. */
static int pci_bar_place(struct pci_bus *bus, struct pci_dev *pdev, int idx)
{
	struct pci_bar *bar = &pdev->bar[idx];
	uint64_t *next, end;

	if (bar->type == PCI_BAR_IO) {
		next = &bus->io_next;
		end = PCI_IO_WINDOW_END;
	} else if (bar->type == PCI_BAR_MEM32 ||
		   (bar->type == PCI_BAR_MEM64 && bar->size < PCI_HIGH_MEM_MIN_BAR)) {
		next = &bus->mem32_next;
		end = PCI_MEM32_WINDOW_END;
	} else {
		if (bus->mem64_next == 0)
			bus->mem64_next = pci_mem64_base(bus);
		next = &bus->mem64_next;
		end = 1ULL << 46;
	}
	for (;;) {
		uint64_t addr = pci_align_up(*next, bar->size);

		if (addr + bar->size > end || addr + bar->size < addr)
			return -ENOSPC;
		*next = addr + bar->size;
		bar->addr = addr;
		pci_bar_store(pdev, idx);
		pci_bar_sync(pdev, idx);
		if (bar->registered)
			return 0;
	}
}

int pci_bus_finalize(struct pci_bus *bus)
{
	int ret = 0;

	pthread_mutex_lock(&bus->cfg_lock);
	for (struct pci_slot *s = bus->slots; s && ret == 0; s = s->next) {
		struct pci_dev *pdev = &s->dev;
		uint16_t cmd = pci_cfg_read16(pdev, PCIR_COMMAND);

		if (pdev->func != 0 && pci_bus_lookup(bus, pdev->bus, pdev->slot, 0))
			pci_bus_lookup(bus, pdev->bus, pdev->slot, 0)->dev.cfg[PCIR_HDRTYPE] |=
				PCIM_MFDEV;
		/* Decode on from the start, as bhyve: guests booted without firmware use it. */
		for (int i = 0; i < 6; i++) {
			if (pdev->bar[i].type == PCI_BAR_IO)
				cmd |= PCIM_CMD_PORTEN;
			else if (pdev->bar[i].type != PCI_BAR_NONE)
				cmd |= PCIM_CMD_MEMEN;
		}
		pci_cfg_write16(pdev, PCIR_COMMAND, cmd);
		for (int i = 0; i < 6 && ret == 0; i++) {
			if (pdev->bar[i].type == PCI_BAR_NONE || pdev->bar[i].registered)
				continue;
			ret = pci_bar_place(bus, pdev, i);
			if (ret < 0)
				fprintf(stderr, "khyve: pci %u:%u:%u: no room for BAR %d (%llu bytes)\n",
					pdev->bus, pdev->slot, pdev->func, i,
					(unsigned long long)pdev->bar[i].size);
		}
	}
	pthread_mutex_unlock(&bus->cfg_lock);
	return ret;
}

void pci_bus_reset(struct pci_bus *bus)
{
	for (struct pci_slot *s = bus->slots; s; s = s->next) {
		pci_intx_deassert(&s->dev);
		if (s->msix_off) {
			pthread_mutex_lock(&s->msix_lock);
			s->dev.cfg[s->msix_off + 3] &= (uint8_t)~((PCIM_MSIXCTRL_ENABLE |
								   PCIM_MSIXCTRL_FMASK) >> 8);
			memset(s->msix_table, 0, (size_t)s->msix_nvec * PCI_MSIX_ENTRY);
			for (unsigned v = 0; v < s->msix_nvec; v++)
				s->msix_table[v * PCI_MSIX_ENTRY + 12] = PCI_MSIX_VCTRL_MASK;
			memset(s->msix_pba, 0, ((s->msix_nvec + 63) / 64) * 8);
			pthread_mutex_unlock(&s->msix_lock);
		}
		if (s->dev.ops && s->dev.ops->reset)
			s->dev.ops->reset(&s->dev);
	}
}

void pci_bus_set_notifiers(struct pci_bus *bus, const struct pci_notifiers *n)
{
	bus->notifiers = n;
}

const struct pci_notifiers *pci_notifiers(const struct pci_dev *pdev)
{
	const struct pci_slot *s =
		(const struct pci_slot *)((const char *)pdev - offsetof(struct pci_slot, dev));

	return s->bus->notifiers;
}

void pci_bus_destroy(struct pci_bus *bus)
{
	struct pci_slot *s, *next;

	if (!bus)
		return;
	for (s = bus->slots; s; s = next) {
		next = s->next;
		for (int i = 0; i < 6; i++)
			if (s->dev.bar[i].type != PCI_BAR_NONE)
				pci_bar_unsync(&s->dev, i);
		if (s->dev.ops && s->dev.ops->destroy)
			s->dev.ops->destroy(&s->dev);
		if (s->msix_off)
			pthread_mutex_destroy(&s->msix_lock);
		free(s->msix_table);
		free(s->msix_pba);
		free(s);
	}
	io_bus_unregister(vm_io(bus->vm), IO_SPACE_PIO, PCI_CONF1_ADDR_PORT);
	io_bus_unregister(vm_io(bus->vm), IO_SPACE_PIO, PCI_CONF1_DATA_PORT);
	pthread_mutex_destroy(&bus->cfg_lock);
	pthread_mutex_destroy(&bus->irq_lock);
	free(bus);
}
