/*
 * virtio_drv.h: a small virtio PCI driver for the device unit tests (test_virtio_*.c), over
 * fake_vm.h's io bus and a fake guest memory: config space through 0xCF8/0xCFC, the modern
 * capabilities or the legacy I/O BAR, split rings laid out by the test, and waiting for
 * completions that arrive on other threads. Include after fake_vm.h, in one file per program.
 */
#ifndef KHYVE_TEST_VIRTIO_DRV_H
#define KHYVE_TEST_VIRTIO_DRV_H

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "dev/device.h"
#include "pci/pci.h"
#include "virtio/virtio_pci.h"

#define DRV_RAM (64ULL << 20)
#define DRV_QMAX 8

/* The event loop the next drv_machine() hands its VM (NULL: none), and the notifiers its
 * PCI bus offers (NULL: none, the software CPU's case). */
static struct event_loop *drv_loop;
static const struct pci_notifiers *drv_notifiers;
static int drv_ncpus = 1;	/* vCPUs the next machine reports */

struct drv {
	struct vm *vm;
	struct pci_bus *bus;
	struct pci_dev *pdev;
	bool legacy;
	uint64_t common, isr, device, notify;	/* modern register addresses (MMIO) */
	uint32_t notify_mult;
	uint16_t io;				/* legacy I/O BAR */
	unsigned msix_cap;
	struct drv_q {
		uint16_t size;
		uint64_t desc, avail, used;
		uint16_t avail_idx, used_seen, next_desc;
	} q[DRV_QMAX];
};

static inline uint32_t drv_cfg_read(struct drv *d, unsigned reg, unsigned size)
{
	fake_out(d->vm, 0xcf8, 4, 0x80000000u | (unsigned)d->pdev->slot << 11 | (reg & 0xfc));
	return (uint32_t)fake_in(d->vm, 0xcfc + (reg & 3), size);
}

static inline void drv_cfg_write(struct drv *d, unsigned reg, unsigned size, uint32_t v)
{
	fake_out(d->vm, 0xcf8, 4, 0x80000000u | (unsigned)d->pdev->slot << 11 | (reg & 0xfc));
	fake_out(d->vm, 0xcfc + (reg & 3), size, v);
}

static inline uint64_t drv_mmio_read(struct drv *d, uint64_t addr, unsigned size)
{
	uint64_t v = 0;

	io_bus_access(d->vm->io, IO_SPACE_MMIO, addr, size, false, &v);
	return v;
}

static inline void drv_mmio_write(struct drv *d, uint64_t addr, unsigned size, uint64_t v)
{
	io_bus_access(d->vm->io, IO_SPACE_MMIO, addr, size, true, &v);
}

/* Build the machine with one device at slot 3 from `device` and its -s option tail. */
static inline int drv_machine(struct drv *d, const char *device, const char *opts)
{
	const struct device_model *m = device_find(device);
	struct cfg_node *node;
	char err[256];
	int ret;

	memset(d, 0, sizeof *d);
	cfg_reset();
	d->vm = fake_vm_new();
	d->vm->loop = drv_loop;
	d->vm->ncpus = drv_ncpus;
	gm_create(&d->vm->gm, DRV_RAM);
	pci_bus_create(d->vm, &d->bus);
	if (drv_notifiers)
		pci_bus_set_notifiers(d->bus, drv_notifiers);
	cfg_set(cfg_root(), "pci.0.3.0.device", device);
	node = cfg_find(cfg_root(), "pci.0.3.0");
	if (m->legacy_parse && m->legacy_parse(node, opts, err, sizeof err) < 0)
		return -EINVAL;
	pci_bus_add(d->bus, 0, 3, 0, &d->pdev);
	d->pdev->name = m->name;
	ret = m->init(d->vm, d->pdev, node);
	if (ret < 0)
		return ret;
	return pci_bus_finalize(d->bus);
}

static inline void drv_teardown(struct drv *d)
{
	pci_bus_destroy(d->bus);
	gm_destroy(d->vm->gm);
	fake_vm_free(d->vm);
}

/* Find the modern regions from the vendor capabilities and the MSI-X capability. */
static inline void drv_find_caps(struct drv *d)
{
	for (unsigned p = drv_cfg_read(d, 0x34, 1); p; p = drv_cfg_read(d, p + 1, 1)) {
		unsigned id = drv_cfg_read(d, p, 1);

		if (id == 0x11)
			d->msix_cap = p;
		if (id != 0x09)
			continue;
		unsigned type = drv_cfg_read(d, p + 3, 1), bar = drv_cfg_read(d, p + 4, 1);
		uint64_t base = d->pdev->bar[bar].addr + drv_cfg_read(d, p + 8, 4);

		if (type == 1)
			d->common = base;
		else if (type == 2) {
			d->notify = base;
			d->notify_mult = drv_cfg_read(d, p + 16, 4);
		} else if (type == 3)
			d->isr = base;
		else if (type == 4)
			d->device = base;
	}
	d->io = (uint16_t)d->pdev->bar[0].addr;
}

/* Ring layout for queue q in guest memory: 64 KiB per queue from 1 MiB. */
static inline void drv_layout(struct drv *d, unsigned q, uint16_t size)
{
	struct drv_q *dq = &d->q[q];
	static const uint8_t zero[0x10000];

	dq->size = size;
	dq->desc = 0x100000 + 0x10000ULL * q;
	dq->avail = dq->desc + 16ULL * size;
	dq->used = (dq->avail + 6 + 2ULL * size + 4095) & ~4095ULL;
	dq->avail_idx = dq->used_seen = dq->next_desc = 0;
	gm_write(d->vm->gm, dq->desc, zero, sizeof zero);
}

/* Modern bring-up: features (VERSION_1 plus `want` & offered), nq queues, DRIVER_OK. */
static inline bool drv_modern_init(struct drv *d, uint64_t want, unsigned nq)
{
	uint64_t feat;

	drv_find_caps(d);
	drv_mmio_write(d, d->common + 0x14, 1, 0);
	drv_mmio_write(d, d->common + 0x14, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	drv_mmio_write(d, d->common + 0x00, 4, 0);
	feat = drv_mmio_read(d, d->common + 0x04, 4);
	drv_mmio_write(d, d->common + 0x00, 4, 1);
	feat |= drv_mmio_read(d, d->common + 0x04, 4) << 32;
	want = (want | 1ULL << VIRTIO_F_VERSION_1) & feat;
	drv_mmio_write(d, d->common + 0x08, 4, 0);
	drv_mmio_write(d, d->common + 0x0c, 4, (uint32_t)want);
	drv_mmio_write(d, d->common + 0x08, 4, 1);
	drv_mmio_write(d, d->common + 0x0c, 4, (uint32_t)(want >> 32));
	drv_mmio_write(d, d->common + 0x14, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				 VIRTIO_STATUS_FEATURES_OK);
	if (!(drv_mmio_read(d, d->common + 0x14, 1) & VIRTIO_STATUS_FEATURES_OK))
		return false;
	for (unsigned q = 0; q < nq; q++) {
		drv_mmio_write(d, d->common + 0x16, 2, q);
		drv_layout(d, q, (uint16_t)drv_mmio_read(d, d->common + 0x18, 2));
		drv_mmio_write(d, d->common + 0x20, 8, d->q[q].desc);
		drv_mmio_write(d, d->common + 0x28, 4, (uint32_t)d->q[q].avail);
		drv_mmio_write(d, d->common + 0x2c, 4, 0);
		drv_mmio_write(d, d->common + 0x30, 8, d->q[q].used);
		drv_mmio_write(d, d->common + 0x1c, 2, 1);
	}
	drv_mmio_write(d, d->common + 0x14, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				 VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	return true;
}

/* Legacy bring-up through the I/O BAR (queues at 4 KiB-aligned PFNs). */
static inline void drv_legacy_init(struct drv *d, uint32_t want, unsigned nq)
{
	drv_find_caps(d);
	d->legacy = true;
	fake_out(d->vm, d->io + 0x12, 1, 0);
	fake_out(d->vm, d->io + 0x12, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	fake_out(d->vm, d->io + 0x04, 4, (uint32_t)fake_in(d->vm, d->io, 4) & want);
	for (unsigned q = 0; q < nq; q++) {
		fake_out(d->vm, d->io + 0x0e, 2, q);
		drv_layout(d, q, (uint16_t)fake_in(d->vm, d->io + 0x0c, 2));
		fake_out(d->vm, d->io + 0x08, 4, (uint32_t)(d->q[q].desc >> 12));
	}
	fake_out(d->vm, d->io + 0x12, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				 VIRTIO_STATUS_DRIVER_OK);
}

static inline uint8_t drv_status(struct drv *d)
{
	return d->legacy ? (uint8_t)fake_in(d->vm, d->io + 0x12, 1)
			 : (uint8_t)drv_mmio_read(d, d->common + 0x14, 1);
}

/* Device config byte access (either interface). */
static inline uint64_t drv_devcfg(struct drv *d, unsigned off, unsigned size)
{
	if (d->legacy)
		return fake_in(d->vm, d->io + 0x14 + off, size);
	return drv_mmio_read(d, d->device + off, size);
}

/* Add a chain of n buffers (gpa, len, writable) to queue q and return its head. */
struct drv_buf {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

static inline uint16_t drv_add(struct drv *d, unsigned q, const struct drv_buf *b, unsigned n)
{
	struct drv_q *dq = &d->q[q];
	uint16_t head = dq->next_desc;

	for (unsigned i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)((head + i) % dq->size), next = (uint16_t)((idx + 1) % dq->size);
		uint16_t flags = (uint16_t)((i + 1 < n ? 1 : 0) | (b[i].write ? 2 : 0));
		uint8_t desc[16];

		memcpy(desc, &b[i].gpa, 8);
		memcpy(desc + 8, &b[i].len, 4);
		memcpy(desc + 12, &flags, 2);
		memcpy(desc + 14, &next, 2);
		gm_write(d->vm->gm, dq->desc + 16ULL * idx, desc, 16);
	}
	dq->next_desc = (uint16_t)((head + n) % dq->size);
	gm_write(d->vm->gm, dq->avail + 4 + 2ULL * (dq->avail_idx % dq->size), &head, 2);
	dq->avail_idx++;
	/* Publish the index as a driver does: a release store the device reads with acquire. */
	__atomic_store_n((uint16_t *)gm_ptr(d->vm->gm, dq->avail + 2, 2, true), dq->avail_idx,
			 __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return head;
}

static inline void drv_kick(struct drv *d, unsigned q)
{
	if (d->legacy)
		fake_out(d->vm, d->io + 0x10, 2, q);
	else
		drv_mmio_write(d, d->notify + (uint64_t)q * d->notify_mult, 2, q);
}

static inline uint16_t drv_used_idx(struct drv *d, unsigned q)
{
	volatile uint16_t *p = gm_ptr(d->vm->gm, d->q[q].used + 2, 2, false);

	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* Wait (up to 5 s) until queue q's used index reaches `want`. */
static inline bool drv_wait_used(struct drv *d, unsigned q, uint16_t want)
{
	for (int i = 0; i < 5000; i++) {
		if (drv_used_idx(d, q) == want)
			return true;
		usleep(1000);
	}
	return false;
}

/* The used element `n` of queue q: id and len. */
static inline void drv_used_elem(struct drv *d, unsigned q, uint16_t n, uint32_t *id, uint32_t *len)
{
	uint64_t e = d->q[q].used + 4 + 8ULL * (n % d->q[q].size);

	gm_read(d->vm->gm, e, id, 4);
	gm_read(d->vm->gm, e + 4, len, 4);
}

#endif
