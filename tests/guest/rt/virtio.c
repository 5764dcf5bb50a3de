/*
 * virtio.c: the test guests' virtio driver (virtio 1.2 §4.1 "Virtio Over PCI Bus": device IDs,
 * §4.1.4 vendor capabilities, §4.1.4.3 common configuration, §4.1.4.4 notifications, §4.1.5.1.3
 * virtqueue set-up, §4.1.4.10 legacy I/O BAR layout; §2.7 split virtqueues, §2.7.10 event index,
 * §2.7.5.3 indirect descriptors; PCI 3.0 §6.8.2 MSI-X; MP spec 1.4 §4 for INTx routing).
 * Completion is polled on the used ring; MSI-X vectors or the INTx pin can be wired to the local
 * APIC. No packed rings, no AML (_PRT) interrupt routing.
 */
#include "virtio.h"

#define PCI_CAP_VNDR 0x09
#define PCI_CAP_MSIX 0x11
#define VIRTIO_PCI_CAP_COMMON 1
#define VIRTIO_PCI_CAP_NOTIFY 2
#define VIRTIO_PCI_CAP_ISR 3
#define VIRTIO_PCI_CAP_DEVICE 4
#define VIRTIO_PCI_CAP_PCI_CFG 5

/* Common configuration (§4.1.4.3). */
#define CC_DFSELECT 0
#define CC_DF 4
#define CC_GFSELECT 8
#define CC_GF 12
#define CC_MSIX 16
#define CC_NUMQ 18
#define CC_STATUS 20
#define CC_GEN 21
#define CC_QSELECT 22
#define CC_QSIZE 24
#define CC_QMSIX 26
#define CC_QENABLE 28
#define CC_QNOFF 30
#define CC_QDESC 32
#define CC_QAVAIL 40
#define CC_QUSED 48

/* Legacy I/O BAR (§4.1.4.10). */
#define LEG_HF 0
#define LEG_GF 4
#define LEG_QPFN 8
#define LEG_QSIZE 12
#define LEG_QSEL 14
#define LEG_QNOTIFY 16
#define LEG_STATUS 18
#define LEG_ISR 19
#define LEG_MSIX_CFG 20
#define LEG_MSIX_Q 22
#define VIRTIO_MSI_NO_VECTOR 0xffff

#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY 1

/* Each queue gets 32 KiB: up to 1024 entries in the legacy layout (used ring 4 KiB aligned). */
#define QMEM 32768
#define QMAX_ENTRIES 1024
static uint8_t qmem[4][VIO_MAX_QUEUES][QMEM] __attribute__((aligned(4096)));
static int qmem_dev;
/* Indirect tables: one for each of the first 64 descriptor heads, 16 entries each. */
#define IND_MAX 16
static uint64_t indtab[4][VIO_MAX_QUEUES][64][IND_MAX * 2] __attribute__((aligned(16)));

uint8_t vio_rd8(const struct vio_win *w, uint32_t off)
{
	if (w->io)
		return inb((uint16_t)(w->base + off));
	return *(volatile uint8_t *)PHYS(w->base + off);
}

uint16_t vio_rd16(const struct vio_win *w, uint32_t off)
{
	if (w->io)
		return inw((uint16_t)(w->base + off));
	return *(volatile uint16_t *)PHYS(w->base + off);
}

uint32_t vio_rd32(const struct vio_win *w, uint32_t off)
{
	if (w->io)
		return inl((uint16_t)(w->base + off));
	return *(volatile uint32_t *)PHYS(w->base + off);
}

void vio_wr8(const struct vio_win *w, uint32_t off, uint8_t v)
{
	if (w->io)
		outb((uint16_t)(w->base + off), v);
	else
		*(volatile uint8_t *)PHYS(w->base + off) = v;
}

void vio_wr16(const struct vio_win *w, uint32_t off, uint16_t v)
{
	if (w->io)
		outw((uint16_t)(w->base + off), v);
	else
		*(volatile uint16_t *)PHYS(w->base + off) = v;
}

void vio_wr32(const struct vio_win *w, uint32_t off, uint32_t v)
{
	if (w->io)
		outl((uint16_t)(w->base + off), v);
	else
		*(volatile uint32_t *)PHYS(w->base + off) = v;
}

static void vio_wr64(const struct vio_win *w, uint32_t off, uint64_t v)
{
	vio_wr32(w, off, (uint32_t)v);
	vio_wr32(w, off + 4, (uint32_t)(v >> 32));
}

/* BAR bar's address (I/O or memory, 64-bit aware) and size; -1 if unassigned or absent. */
static int bar_window(struct vio_dev *d, int bar, struct vio_win *w)
{
	if (bar < 0 || bar > 5)
		return -1;
	int off = 0x10 + 4 * bar;
	uint32_t lo = pci_read32(d->bus, d->slot, d->fn, off), hi = 0;
	bool io = lo & 1, is64 = !io && ((lo >> 1) & 3) == 2;
	if (is64 && bar == 5)
		return -1;
	uint16_t cmd = pci_read16(d->bus, d->slot, d->fn, 4);
	pci_write32(d->bus, d->slot, d->fn, 4, cmd & ~3u);	/* decode off while sizing */
	pci_write32(d->bus, d->slot, d->fn, off, 0xffffffff);
	uint32_t mlo = pci_read32(d->bus, d->slot, d->fn, off), mhi = 0xffffffff;
	pci_write32(d->bus, d->slot, d->fn, off, lo);
	if (is64) {
		hi = pci_read32(d->bus, d->slot, d->fn, off + 4);
		pci_write32(d->bus, d->slot, d->fn, off + 4, 0xffffffff);
		mhi = pci_read32(d->bus, d->slot, d->fn, off + 4);
		pci_write32(d->bus, d->slot, d->fn, off + 4, hi);
	}
	pci_write32(d->bus, d->slot, d->fn, 4, cmd | (io ? 1 : 2) | 4);	/* decode + bus master */
	uint64_t mask = (uint64_t)mhi << 32 | (mlo & (io ? ~3u : ~0xfu));
	if (io)
		mask |= 0xffffffffffff0000ull;
	uint64_t size = ~mask + 1;
	w->io = io;
	w->base = (io ? (lo & ~3u) : (lo & ~0xfu)) | (uint64_t)hi << 32;
	w->len = size > 0xffffffffu ? 0xffffffffu : (uint32_t)size;
	if (!w->base || !size)
		return -1;
	if (!io && w->base + size > (1ull << 32)) {
		if (w->base + size > (512ull << 30) || size > (16u << 20))
			return -1;
		for (uint64_t a = w->base & ~0xfffull; a < w->base + size; a += 4096)
			map_page(a, a, PTE_P | PTE_W | 0x10 /* PCD */);
	}
	return 0;
}

static int sub_window(struct vio_dev *d, const uint8_t *cap, struct vio_win *w, const char *what)
{
	struct vio_win bar;
	uint32_t off = *(const uint32_t *)(cap + 8), len = *(const uint32_t *)(cap + 12);
	if (bar_window(d, cap[4], &bar)) {
		printf("# virtio %s capability: BAR %u unusable\n", what, cap[4]);
		return -1;
	}
	if ((uint64_t)off + len > bar.len) {
		printf("# virtio %s capability: offset %x length %x beyond BAR %u of size %x\n",
		       what, off, len, cap[4], bar.len);
		return -1;
	}
	w->io = bar.io;
	w->base = bar.base + off;
	w->len = len;
	w->bar = cap[4];
	w->bar_off = off;
	return 0;
}

static void read_caps(struct vio_dev *d, bool *common, bool *notify, bool *isr, bool *dev)
{
	*common = *notify = *isr = *dev = false;
	if (!(pci_read16(d->bus, d->slot, d->fn, 6) & 0x10))
		return;
	uint8_t cap[20];
	int ptr = pci_read8(d->bus, d->slot, d->fn, 0x34) & 0xfc;
	for (int guard = 0; ptr >= 0x40 && guard < 48; guard++) {
		for (int i = 0; i < 20; i++)
			cap[i] = pci_read8(d->bus, d->slot, d->fn, ptr + i);
		if (cap[0] == PCI_CAP_MSIX && !d->msix_cap)
			d->msix_cap = ptr;
		/* The first capability of each type that this driver can use wins (§4.1.4). */
		if (cap[0] == PCI_CAP_VNDR && cap[2] >= 16) {
			switch (cap[3]) {
			case VIRTIO_PCI_CAP_COMMON:
				if (!*common && !sub_window(d, cap, &d->common, "common"))
					*common = d->common.len >= 56;
				break;
			case VIRTIO_PCI_CAP_NOTIFY:
				if (!*notify && cap[2] >= 20 && !sub_window(d, cap, &d->notify, "notify")) {
					d->notify_mult = *(const uint32_t *)(cap + 16);
					*notify = true;
				}
				break;
			case VIRTIO_PCI_CAP_ISR:
				if (!*isr && !sub_window(d, cap, &d->isr, "isr"))
					*isr = d->isr.len >= 1;
				break;
			case VIRTIO_PCI_CAP_DEVICE:
				if (!*dev && !sub_window(d, cap, &d->devcfg, "device"))
					*dev = true;
				break;
			case VIRTIO_PCI_CAP_PCI_CFG:
				if (!d->pcicfg_cap && cap[2] >= 20)
					d->pcicfg_cap = ptr;
				break;
			default:
				break;
			}
		}
		ptr = cap[1] & 0xfc;
	}
}

enum vio_mode vio_cmdline_mode(void)
{
	char buf[16];
	if (!cmdline_get("mode", buf, sizeof(buf)))
		return VIO_AUTO;
	if (!strncmp(buf, "modern", 7))
		return VIO_MODERN;
	if (!strncmp(buf, "legacy", 7))
		return VIO_LEGACY;
	return VIO_AUTO;
}

int vio_find(struct vio_dev *d, uint16_t type, enum vio_mode mode, int n)
{
	/* Transitional device IDs (§4.1.2.3): net 1000, blk 1001, console 1003, rng 1005. */
	static const uint16_t trans[] = { 0, 0x1000, 0x1001, 0x1003, 0x1005 };
	uint16_t tid = type == 1 ? trans[1] : type == 2 ? trans[2] : type == 3 ? trans[3] :
		       type == 4 ? trans[4] : 0;
	for (int slot = 0; slot < 32; slot++) {
		for (int fn = 0; fn < 8; fn++) {
			uint32_t id = pci_read32(0, slot, fn, 0);
			if ((id & 0xffff) == 0xffff) {
				if (fn == 0)
					break;
				continue;
			}
			uint16_t did = (uint16_t)(id >> 16);
			bool multi = fn == 0 && (pci_read8(0, slot, 0, 0xe) & 0x80);
			if ((id & 0xffff) != 0x1af4 || (did != tid && did != 0x1040 + type)) {
				if (!multi && fn == 0)
					break;
				continue;
			}
			if (n-- > 0)
				continue;
			memset(d, 0, sizeof(*d));
			d->slot = slot;
			d->fn = fn;
			d->device_id = did;
			d->type = type;
			d->revision = pci_read8(0, slot, fn, 8);
			bool common, notify, isr, dev;
			read_caps(d, &common, &notify, &isr, &dev);
			d->has_modern = common && notify && isr;
			d->has_legacy = did == tid;
			if (d->has_legacy) {
				struct vio_win w;
				if (bar_window(d, 0, &w) || !w.io || w.len < 20) {
					printf("# %02x.%x: transitional device without a legacy I/O BAR0\n",
					       slot, fn);
					d->has_legacy = false;
				} else {
					d->iobase = (uint16_t)w.base;
				}
			}
			if (mode == VIO_MODERN || (mode == VIO_AUTO && d->has_modern)) {
				if (!d->has_modern) {
					printf("# %02x.%x: no usable modern capabilities\n", slot, fn);
					return -1;
				}
				if (!dev && type != VIRTIO_ID_RNG) {
					printf("# %02x.%x: no device configuration capability\n", slot, fn);
					return -1;
				}
				d->modern = true;
			} else if (!d->has_legacy) {
				printf("# %02x.%x: no legacy interface\n", slot, fn);
				return -1;
			}
			printf("# virtio type %u at 00:%02x.%x, %04x:%04x rev %u, %s interface%s\n",
			       type, slot, fn, 0x1af4, did, d->revision, d->modern ? "modern" : "legacy",
			       d->has_modern && d->has_legacy ? " (transitional)" : "");
			if (qmem_dev >= 4) {
				printf("# too many virtio devices for the queue memory\n");
				return -1;
			}
			d->mem_slot = qmem_dev++;
			return 0;
		}
	}
	printf("# no virtio device of type %u (%s)\n", type,
	       mode == VIO_MODERN ? "modern" : mode == VIO_LEGACY ? "legacy" : "any interface");
	return -1;
}

uint8_t vio_status(struct vio_dev *d)
{
	return d->modern ? vio_rd8(&d->common, CC_STATUS) : inb(d->iobase + LEG_STATUS);
}

void vio_set_status(struct vio_dev *d, uint8_t s)
{
	if (d->modern)
		vio_wr8(&d->common, CC_STATUS, s);
	else
		outb(d->iobase + LEG_STATUS, s);
}

void vio_reset(struct vio_dev *d)
{
	vio_set_status(d, 0);
	/* §4.1.4.3.2: wait for the reset to complete (device_status reads 0). */
	for (int i = 0; i < 1000000 && vio_status(d); i++)
		cpu_relax();
	for (int i = 0; i < VIO_MAX_QUEUES; i++)
		d->q[i].ready = false;
}

/* §4.1.4.9.1: bar, offset and length first, then the data register. */
static int pcicfg_setup(struct vio_dev *d, uint8_t bar, uint32_t off, int size)
{
	if (!d->pcicfg_cap || (size != 1 && size != 2 && size != 4))
		return -1;
	int c = d->pcicfg_cap;
	uint32_t dw = pci_read32(d->bus, d->slot, d->fn, c + 4);
	pci_write32(d->bus, d->slot, d->fn, c + 4, (dw & ~0xffu) | bar);
	pci_write32(d->bus, d->slot, d->fn, c + 8, off);
	pci_write32(d->bus, d->slot, d->fn, c + 12, (uint32_t)size);
	return 0;
}

int vio_pcicfg_read(struct vio_dev *d, uint8_t bar, uint32_t off, int size, uint32_t *v)
{
	if (pcicfg_setup(d, bar, off, size))
		return -1;
	uint32_t x = pci_read32(d->bus, d->slot, d->fn, d->pcicfg_cap + 16);
	*v = size == 4 ? x : size == 2 ? (x & 0xffff) : (x & 0xff);
	return 0;
}

int vio_pcicfg_write(struct vio_dev *d, uint8_t bar, uint32_t off, int size, uint32_t v)
{
	if (pcicfg_setup(d, bar, off, size))
		return -1;
	int at = d->pcicfg_cap + 16;
	outl(0xcf8, 0x80000000u | (uint32_t)d->bus << 16 | (uint32_t)d->slot << 11 |
		    (uint32_t)d->fn << 8 | (uint32_t)at);
	if (size == 4)
		outl(0xcfc, v);
	else if (size == 2)
		outw(0xcfc, (uint16_t)v);
	else
		outb(0xcfc, (uint8_t)v);
	return 0;
}

bool vio_queue_live(struct vio_dev *d, int idx)
{
	if (d->modern) {
		vio_wr16(&d->common, CC_QSELECT, (uint16_t)idx);
		return vio_rd16(&d->common, CC_QENABLE) != 0;
	}
	outw(d->iobase + LEG_QSEL, (uint16_t)idx);
	return inl(d->iobase + LEG_QPFN) != 0;
}

uint8_t vio_isr(struct vio_dev *d)
{
	return d->modern ? vio_rd8(&d->isr, 0) : inb(d->iobase + LEG_ISR);
}

bool vio_broken(struct vio_dev *d)
{
	return vio_status(d) & VIRTIO_S_NEEDS_RESET;
}

static uint32_t legacy_cfg_base(struct vio_dev *d)
{
	return d->msix_on ? 24 : 20;
}

uint8_t vio_cfg8(struct vio_dev *d, uint32_t off)
{
	if (d->modern)
		return vio_rd8(&d->devcfg, off);
	return inb((uint16_t)(d->iobase + legacy_cfg_base(d) + off));
}

uint16_t vio_cfg16(struct vio_dev *d, uint32_t off)
{
	if (d->modern)
		return vio_rd16(&d->devcfg, off);
	return inw((uint16_t)(d->iobase + legacy_cfg_base(d) + off));
}

uint32_t vio_cfg32(struct vio_dev *d, uint32_t off)
{
	if (d->modern)
		return vio_rd32(&d->devcfg, off);
	return inl((uint16_t)(d->iobase + legacy_cfg_base(d) + off));
}

uint64_t vio_cfg64(struct vio_dev *d, uint32_t off)
{
	/* §2.5.1: 64-bit fields are read as two 32-bit halves under the generation counter. */
	for (int tries = 0; tries < 100; tries++) {
		uint8_t g0 = d->modern ? vio_rd8(&d->common, CC_GEN) : 0;
		uint64_t v = vio_cfg32(d, off) | (uint64_t)vio_cfg32(d, off + 4) << 32;
		uint8_t g1 = d->modern ? vio_rd8(&d->common, CC_GEN) : 0;
		if (g0 == g1)
			return v;
	}
	return 0;
}

int vio_init(struct vio_dev *d, uint64_t want)
{
	vio_reset(d);
	if (vio_status(d)) {
		printf("# device status %x after reset\n", vio_status(d));
		return -1;
	}
	vio_set_status(d, VIRTIO_S_ACK);
	vio_set_status(d, VIRTIO_S_ACK | VIRTIO_S_DRIVER);
	if (d->modern) {
		vio_wr32(&d->common, CC_DFSELECT, 0);
		uint64_t f = vio_rd32(&d->common, CC_DF);
		vio_wr32(&d->common, CC_DFSELECT, 1);
		f |= (uint64_t)vio_rd32(&d->common, CC_DF) << 32;
		d->dev_features = f;
		if (!(f & (1ull << VIRTIO_F_VERSION_1))) {
			printf("# modern interface without VERSION_1 (features %lx)\n", f);
			vio_set_status(d, VIRTIO_S_FAILED);
			return -1;
		}
		want |= 1ull << VIRTIO_F_VERSION_1;
	} else {
		d->dev_features = inl(d->iobase + LEG_HF);
		want &= 0xffffffffull;
	}
	d->drv_features = want & d->dev_features;
	d->indirect = d->drv_features & (1ull << VIRTIO_F_INDIRECT_DESC);
	d->event_idx = d->drv_features & (1ull << VIRTIO_F_EVENT_IDX);
	printf("# device features %lx, driver features %lx\n", d->dev_features, d->drv_features);
	if (d->modern) {
		vio_wr32(&d->common, CC_GFSELECT, 0);
		vio_wr32(&d->common, CC_GF, (uint32_t)d->drv_features);
		vio_wr32(&d->common, CC_GFSELECT, 1);
		vio_wr32(&d->common, CC_GF, (uint32_t)(d->drv_features >> 32));
		vio_set_status(d, VIRTIO_S_ACK | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK);
		if (!(vio_status(d) & VIRTIO_S_FEATURES_OK)) {
			printf("# device refused features %lx\n", d->drv_features);
			vio_set_status(d, VIRTIO_S_FAILED);
			return -1;
		}
	} else {
		outl(d->iobase + LEG_GF, (uint32_t)d->drv_features);
	}
	return 0;
}

int vio_msix_enable(struct vio_dev *d)
{
	if (!d->msix_cap)
		return -1;
	uint16_t ctl = pci_read16(d->bus, d->slot, d->fn, d->msix_cap + 2);
	uint32_t tab = pci_read32(d->bus, d->slot, d->fn, d->msix_cap + 4);
	struct vio_win bar;
	if (bar_window(d, tab & 7, &bar) || bar.io)
		return -1;
	uint32_t nent = (ctl & 0x7ff) + 1u;
	if ((tab & ~7u) + 16ull * nent > bar.len)
		return -1;
	d->msix_table = (struct vio_win){ .base = bar.base + (tab & ~7u), .len = 16 * nent };
	for (uint32_t i = 0; i < nent; i++)
		vio_wr32(&d->msix_table, 16 * i + 12, 1);	/* masked */
	uint32_t dw = pci_read32(d->bus, d->slot, d->fn, d->msix_cap);
	pci_write32(d->bus, d->slot, d->fn, d->msix_cap, (dw & ~(1u << 30)) | 1u << 31);
	d->msix_on = true;
	return 0;
}

int vio_msix_entry(struct vio_dev *d, int entry, int vector)
{
	if (!d->msix_on || (uint32_t)entry * 16 >= d->msix_table.len)
		return -1;
	uint32_t o = 16 * (uint32_t)entry;
	vio_wr32(&d->msix_table, o, 0xfee00000u | lapic_id() << 12);
	vio_wr32(&d->msix_table, o + 4, 0);
	vio_wr32(&d->msix_table, o + 8, (uint32_t)vector);
	vio_wr32(&d->msix_table, o + 12, 0);
	return 0;
}

int vio_msix_queue(struct vio_dev *d, int idx, int entry)
{
	uint16_t got;
	if (d->modern) {
		vio_wr16(&d->common, CC_QSELECT, (uint16_t)idx);
		vio_wr16(&d->common, CC_QMSIX, (uint16_t)entry);
		got = vio_rd16(&d->common, CC_QMSIX);
	} else {
		outw(d->iobase + LEG_QSEL, (uint16_t)idx);
		outw(d->iobase + LEG_MSIX_Q, (uint16_t)entry);
		got = inw(d->iobase + LEG_MSIX_Q);
	}
	if (got != entry)
		return -1;
	d->q[idx].msix_vector = entry;
	return 0;
}

static uint64_t mp_scan(uint64_t from, uint64_t to)
{
	for (uint64_t a = from; a + 16 <= to; a += 16) {
		const uint8_t *p = PHYS(a);
		if (!memcmp(p, "_MP_", 4) && p[8] == 1 && acpi_checksum_ok(p, 16))
			return a;
	}
	return 0;
}

int vio_intx_route(struct vio_dev *d, int vector, uint32_t *ioapic_pin)
{
	uint8_t pin = pci_read8(d->bus, d->slot, d->fn, 0x3d);
	if (pin < 1 || pin > 4) {
		printf("# interrupt pin %u\n", pin);
		return -1;
	}
	uint64_t ebda = (uint64_t)*(volatile uint16_t *)PHYS(0x40e) << 4, fp = 0;
	if (ebda >= 0x80000 && ebda < 0xa0000)
		fp = mp_scan(ebda, ebda + 1024);
	if (!fp)
		fp = mp_scan(0x9fc00, 0xa0000);
	if (!fp)
		fp = mp_scan(0xf0000, 0x100000);
	uint32_t cfg = fp ? *(const uint32_t *)PHYS(fp + 4) : 0;
	if (!cfg) {
		printf("# no MP configuration table\n");
		return -1;
	}
	const uint8_t *t = PHYS(cfg);
	uint16_t len = *(const uint16_t *)(t + 4), count = *(const uint16_t *)(t + 34);
	if (memcmp(t, "PCMP", 4) || len < 44 || !acpi_checksum_ok(t, len)) {
		printf("# bad MP configuration table at %x\n", cfg);
		return -1;
	}
	bool pci_bus[256] = { false };
	uint8_t ioapic_id = 0xff;
	const uint8_t *e = t + 44, *end = t + len;
	int found = 0;
	uint8_t intin = 0;
	uint16_t flags = 0;
	for (int pass = 0; pass < 2; pass++) {
		e = t + 44;
		for (int i = 0; i < count && e < end; i++) {
			int elen = e[0] == 0 ? 20 : 8;
			if (e + elen > end)
				break;
			if (pass == 0 && e[0] == 1 && !memcmp(e + 2, "PCI", 3))
				pci_bus[e[1]] = true;
			if (pass == 0 && e[0] == 2 && ioapic_id == 0xff && (e[3] & 1))
				ioapic_id = e[1];
			if (pass == 1 && e[0] == 3 && e[1] == 0 && pci_bus[e[4]] && e[4] == d->bus &&
			    e[5] == (d->slot << 2 | (pin - 1))) {
				flags = (uint16_t)(e[2] | e[3] << 8);
				intin = e[7];
				found = e[6] == ioapic_id || e[6] == 0xff ? 1 : -1;
			}
			e += elen;
		}
	}
	if (found <= 0) {
		printf("# no MP interrupt entry for %02x.%x INT%c on the first IOAPIC\n", d->slot,
		       d->fn, 'A' + pin - 1);
		return -1;
	}
	struct acpi_madt_info m;
	uint32_t ioapic = acpi_madt(&m) || !m.ioapic_addr ? 0xfec00000u : m.ioapic_addr;
	/* PCI defaults (flags 00): level-triggered, active low. */
	bool low = (flags & 3) != 1, level = ((flags >> 2) & 3) != 1;
	printf("# %02x.%x INT%c -> IOAPIC input %u, %s, active %s\n", d->slot, d->fn, 'A' + pin - 1,
	       intin, level ? "level" : "edge", low ? "low" : "high");
	uint16_t cmd = pci_read16(d->bus, d->slot, d->fn, 4);
	pci_write32(d->bus, d->slot, d->fn, 4, cmd & ~(1u << 10));	/* INTx enabled */
	ioapic_write(ioapic, 0x11 + 2u * intin, lapic_id() << 24);
	ioapic_write(ioapic, 0x10 + 2u * intin,
		     (uint32_t)vector | (low ? 1u << 13 : 0) | (level ? 1u << 15 : 0));
	*ioapic_pin = intin;
	return 0;
}

static inline void desc_set(struct vio_queue *q, uint16_t i, uint64_t addr, uint32_t len,
			    uint16_t flags, uint16_t next)
{
	q->desc[2 * i] = addr;
	q->desc[2 * i + 1] = len | (uint64_t)flags << 32 | (uint64_t)next << 48;
}

static inline uint16_t desc_next(struct vio_queue *q, uint16_t i)
{
	return (uint16_t)(q->desc[2 * i + 1] >> 48);
}

static inline uint16_t desc_flags(struct vio_queue *q, uint16_t i)
{
	return (uint16_t)(q->desc[2 * i + 1] >> 32);
}

int vio_queue_setup(struct vio_dev *d, int idx, uint16_t max_size)
{
	if (idx < 0 || idx >= VIO_MAX_QUEUES)
		return -1;
	struct vio_queue *q = &d->q[idx];
	uint16_t size;
	if (d->modern) {
		if (idx >= vio_rd16(&d->common, CC_NUMQ))
			return -1;
		vio_wr16(&d->common, CC_QSELECT, (uint16_t)idx);
		size = vio_rd16(&d->common, CC_QSIZE);
		if (!size || (size & (size - 1))) {
			printf("# queue %d: size %u\n", idx, size);
			return -1;
		}
		while (size > max_size || size > QMAX_ENTRIES)
			size /= 2;
		if (vio_rd16(&d->common, CC_QENABLE)) {
			printf("# queue %d enabled before set-up\n", idx);
			return -1;
		}
	} else {
		outw(d->iobase + LEG_QSEL, (uint16_t)idx);
		size = inw(d->iobase + LEG_QSIZE);
		if (!size || size > QMAX_ENTRIES || (size & (size - 1))) {
			printf("# legacy queue %d: size %u\n", idx, size);
			return -1;
		}
		if (inl(d->iobase + LEG_QPFN)) {
			printf("# legacy queue %d has an address before set-up\n", idx);
			return -1;
		}
	}
	uint8_t *mem = qmem[d->mem_slot][idx];
	memset(mem, 0, QMEM);
	q->size = size;
	q->index = (uint16_t)idx;
	q->mem = mem;
	q->desc = (volatile uint64_t *)mem;
	q->avail = (volatile uint16_t *)(mem + 16u * size);
	/* Legacy layout (§2.7 "Legacy Interfaces"): used ring on the next 4096-byte boundary. */
	uint32_t used_off = (16u * size + 6 + 2u * size + 4095) & ~4095u;
	q->used = mem + used_off;
	for (uint16_t i = 0; i < size; i++)
		desc_set(q, i, 0, 0, 0, (uint16_t)(i + 1));
	q->free_head = 0;
	q->num_free = size;
	q->last_used = q->avail_idx = q->last_notified = 0;
	q->msix_vector = -1;
	if (d->modern) {
		vio_wr16(&d->common, CC_QSIZE, size);
		vio_wr64(&d->common, CC_QDESC, (uintptr_t)q->desc);
		vio_wr64(&d->common, CC_QAVAIL, (uintptr_t)q->avail);
		vio_wr64(&d->common, CC_QUSED, (uintptr_t)q->used);
		q->notify_off = (uint64_t)vio_rd16(&d->common, CC_QNOFF) * d->notify_mult;
		if (q->notify_off + 2 > d->notify.len) {
			printf("# queue %d: notify offset %lx beyond the notify window (%x)\n", idx,
			       q->notify_off, d->notify.len);
			return -1;
		}
		vio_wr16(&d->common, CC_QENABLE, 1);
	} else {
		outl(d->iobase + LEG_QPFN, (uint32_t)((uintptr_t)mem >> 12));
	}
	q->ready = true;
	return 0;
}

void vio_driver_ok(struct vio_dev *d)
{
	uint8_t s = VIRTIO_S_ACK | VIRTIO_S_DRIVER | VIRTIO_S_DRIVER_OK;
	vio_set_status(d, d->modern ? s | VIRTIO_S_FEATURES_OK : s);
}

int vio_add(struct vio_dev *d, int idx, const struct vio_buf *b, int n, bool indirect)
{
	struct vio_queue *q = &d->q[idx];
	if (!q->ready || n <= 0)
		return -1;
	uint16_t head = q->free_head;
	if (indirect && d->indirect && n > 1 && n <= IND_MAX && head < 64 && q->num_free) {
		uint64_t *t = indtab[d->mem_slot][idx][head];
		for (int i = 0; i < n; i++) {
			uint16_t fl = (uint16_t)((b[i].write ? VRING_DESC_F_WRITE : 0) |
						 (i + 1 < n ? VRING_DESC_F_NEXT : 0));
			t[2 * i] = (uintptr_t)b[i].addr;
			t[2 * i + 1] = b[i].len | (uint64_t)fl << 32 | (uint64_t)(i + 1) << 48;
		}
		q->free_head = desc_next(q, head);
		q->num_free--;
		desc_set(q, head, (uintptr_t)t, 16u * (uint32_t)n, VRING_DESC_F_INDIRECT, 0);
	} else {
		if (q->num_free < n)
			return -1;
		uint16_t i = head;
		for (int k = 0; k < n; k++) {
			uint16_t nx = desc_next(q, i);
			uint16_t fl = (uint16_t)((b[k].write ? VRING_DESC_F_WRITE : 0) |
						 (k + 1 < n ? VRING_DESC_F_NEXT : 0));
			desc_set(q, i, (uintptr_t)b[k].addr, b[k].len, fl, k + 1 < n ? nx : 0);
			i = nx;
		}
		q->free_head = i;
		q->num_free = (uint16_t)(q->num_free - n);
	}
	q->avail[2 + q->avail_idx % q->size] = head;
	__atomic_thread_fence(__ATOMIC_RELEASE);	/* ring entry before idx (§2.7.13) */
	q->avail_idx++;
	q->avail[1] = q->avail_idx;
	return head;
}

void vio_kick(struct vio_dev *d, int idx)
{
	struct vio_queue *q = &d->q[idx];
	__atomic_thread_fence(__ATOMIC_SEQ_CST);	/* idx visible before reading the suppression */
	uint16_t new = q->avail_idx, old = q->last_notified;
	bool need;
	if (d->event_idx) {
		uint16_t ev = *(volatile uint16_t *)(q->used + 4 + 8u * q->size);
		need = (uint16_t)(new - ev - 1) < (uint16_t)(new - old);
	} else {
		need = !(*(volatile uint16_t *)q->used & VRING_USED_F_NO_NOTIFY);
	}
	q->last_notified = new;
	if (!need)
		return;
	if (d->modern)
		vio_wr16(&d->notify, (uint32_t)q->notify_off, (uint16_t)idx);
	else
		outw(d->iobase + LEG_QNOTIFY, (uint16_t)idx);
}

void vio_want_irq(struct vio_dev *d, int idx, bool on)
{
	struct vio_queue *q = &d->q[idx];
	if (d->event_idx)
		q->avail[2 + q->size] = on ? q->last_used : (uint16_t)(q->last_used - 1);
	else
		q->avail[0] = on ? 0 : VRING_AVAIL_F_NO_INTERRUPT;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

int vio_get(struct vio_dev *d, int idx, uint32_t *id, uint32_t *len)
{
	struct vio_queue *q = &d->q[idx];
	uint16_t used_idx = *(volatile uint16_t *)(q->used + 2);
	if (used_idx == q->last_used)
		return 0;
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	volatile uint32_t *e = (volatile uint32_t *)(q->used + 4 + 8u * (q->last_used % q->size));
	uint32_t uid = e[0], ulen = e[1];
	q->last_used++;
	if (d->event_idx)
		q->avail[2 + q->size] = q->last_used;
	if (uid >= q->size) {
		printf("# queue %d: used id %u out of range\n", idx, uid);
		*id = uid;
		*len = ulen;
		return 1;
	}
	/* Free the chain: walk NEXT links (an indirect head is a single descriptor). */
	uint16_t i = (uint16_t)uid, n = 1;
	while ((desc_flags(q, i) & VRING_DESC_F_NEXT) && n < q->size) {
		i = desc_next(q, i);
		n++;
	}
	q->desc[2 * i + 1] = (q->desc[2 * i + 1] & 0x0000ffffffffffffull) |
			     (uint64_t)q->free_head << 48;
	q->free_head = (uint16_t)uid;
	q->num_free = (uint16_t)(q->num_free + n);
	*id = uid;
	*len = ulen;
	return 1;
}

int vio_wait(struct vio_dev *d, int idx, uint32_t *id, uint32_t *len, uint64_t timeout_us)
{
	uint64_t end = tsc_deadline(timeout_us);
	for (;;) {
		if (vio_get(d, idx, id, len))
			return 0;
		if ((int64_t)(rdtsc() - end) > 0)
			return -1;
		cpu_relax();
	}
}

int64_t vio_xfer(struct vio_dev *d, int idx, const struct vio_buf *b, int n, uint64_t timeout_us)
{
	int head = vio_add(d, idx, b, n, d->indirect);
	if (head < 0)
		return -1;
	vio_kick(d, idx);
	uint32_t id, len;
	if (vio_wait(d, idx, &id, &len, timeout_us))
		return -1;
	if (id != (uint32_t)head) {
		printf("# queue %d: used id %u, expected %d\n", idx, id, head);
		return -1;
	}
	return len;
}
