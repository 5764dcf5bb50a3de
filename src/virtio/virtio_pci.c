/*
 * virtio_pci.c: virtio over PCI (virtio 1.2 §4.1) as a transitional device, the way QEMU
 * and bhyve present one: BAR0 is the legacy 0.9.5 register block (§4.1.4.8), BAR4 holds the
 * modern common configuration, ISR, device configuration and notification regions described
 * by vendor capabilities (§4.1.4), BAR1 the MSI-X table. Also the PCI-config access
 * capability (§4.1.4.9). With the machine's notifiers (KVM), modern kicks come by
 * ioeventfd and MSI-X messages leave by irqfd. Left out: notification data, queue reset,
 * packed rings, SR-IOV, ioeventfd on the legacy notify register (one port for all queues).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "pci/pci.h"
#include "util/event_loop.h"
#include "virtio/virtio_pci.h"
#include "vmm/vm.h"

#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG 3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define VIRTIO_PCI_CAP_PCI_CFG 5
#define PCIY_VENDOR 0x09

#define VIRTIO_BAR_LEGACY 0
#define VIRTIO_BAR_MSIX 1
#define VIRTIO_BAR_MODERN 4
#define VIRTIO_MODERN_COMMON 0x0000
#define VIRTIO_MODERN_ISR 0x1000
#define VIRTIO_MODERN_DEVICE 0x2000
#define VIRTIO_MODERN_NOTIFY 0x3000
#define VIRTIO_MODERN_SIZE 0x4000
#define VIRTIO_NOTIFY_MULT 4
#define VIRTIO_COMMON_SIZE 0x38

/* Common configuration (§4.1.4.3). */
#define VCC_DFSELECT 0x00
#define VCC_DF 0x04
#define VCC_GFSELECT 0x08
#define VCC_GF 0x0c
#define VCC_MSIX 0x10
#define VCC_NUMQ 0x12
#define VCC_STATUS 0x14
#define VCC_CFGGEN 0x15
#define VCC_Q_SELECT 0x16
#define VCC_Q_SIZE 0x18
#define VCC_Q_MSIX 0x1a
#define VCC_Q_ENABLE 0x1c
#define VCC_Q_NOFF 0x1e
#define VCC_Q_DESC 0x20
#define VCC_Q_AVAIL 0x28
#define VCC_Q_USED 0x30

/* Legacy registers (§4.1.4.8). */
#define VL_HOST_FEATURES 0x00
#define VL_GUEST_FEATURES 0x04
#define VL_QUEUE_PFN 0x08
#define VL_QUEUE_NUM 0x0c
#define VL_QUEUE_SEL 0x0e
#define VL_QUEUE_NOTIFY 0x10
#define VL_STATUS 0x12
#define VL_ISR 0x13
#define VL_MSIX_CONFIG 0x14
#define VL_MSIX_QUEUE 0x16
#define VL_CONFIG_NOMSIX 0x14
#define VL_CONFIG_MSIX 0x18

#define VIRTIO_TRANSPORT_FEATURES                                                            \
	((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_RING_F_INDIRECT_DESC) |              \
	 (1ULL << VIRTIO_RING_F_EVENT_IDX) | (1ULL << VIRTIO_F_NOTIFY_ON_EMPTY) |            \
	 (1ULL << VIRTIO_F_ANY_LAYOUT))

static void vp_put(uint8_t *buf, unsigned off, uint64_t v, unsigned size)
{
	for (unsigned i = 0; i < size; i++)
		buf[off + i] = (uint8_t)(v >> (8 * i));
}

static uint64_t vp_get(const uint8_t *buf, unsigned off, unsigned size)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)buf[off + i] << (8 * i);
	return v;
}

bool virtio_running(const struct virtio_dev *vd)
{
	return (vd->status & VIRTIO_STATUS_DRIVER_OK) && !(vd->status & VIRTIO_STATUS_NEEDS_RESET);
}

static bool vp_msix_on(const struct virtio_dev *vd)
{
	return vd->use_msix && pci_msix_enabled(vd->pdev);
}

/* Legacy and INTx/MSI path: ISR bit and a line or message. */
static void vp_isr_raise(struct virtio_dev *vd, uint8_t bit)
{
	vd->isr |= bit;
	if (vd->use_msi && pci_msi_enabled(vd->pdev))
		pci_msi_notify(vd->pdev);
	else
		pci_intx_assert(vd->pdev);
}

/*
 * vd->lock held: send MSI-X vector `vec`, by irqfd where the machine offers one and the
 * vector is unmasked (its route follows the table lazily), else through the PCI core (which
 * also keeps masked vectors pending).
 */
static void vp_msix_send(struct virtio_dev *vd, unsigned vec)
{
	const struct pci_notifiers *n = pci_notifiers(vd->pdev);
	struct virtio_irqfd *irq;
	uint64_t addr, one = 1;
	uint32_t data;
	bool masked;

	if (!n || !n->irqfd_msi || !vd->irqfds || vec >= vd->nvectors ||
	    pci_msix_entry(vd->pdev, vec, &addr, &data, &masked) < 0 || masked ||
	    vd->irqfds[vec].failed) {
		pci_msix_notify(vd->pdev, vec);
		return;
	}
	irq = &vd->irqfds[vec];
	if (irq->fd < 0) {
		irq->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		irq->handle = irq->fd < 0 ? -1 : n->irqfd_msi(n->opaque, irq->fd, addr, data);
		if (irq->handle < 0) {
			if (irq->fd >= 0)
				close(irq->fd);
			irq->fd = -1;
			irq->failed = true;
			pci_msix_notify(vd->pdev, vec);
			return;
		}
		irq->addr = addr;
		irq->data = data;
	} else if ((irq->addr != addr || irq->data != data) && n->irqfd_update &&
		   n->irqfd_update(n->opaque, irq->handle, addr, data) == 0) {
		irq->addr = addr;
		irq->data = data;
	}
	if (irq->addr != addr || irq->data != data || write(irq->fd, &one, sizeof one) != 8)
		pci_msix_notify(vd->pdev, vec);
}

void virtio_queue_interrupt(struct virtio_dev *vd, unsigned q)
{
	struct virtio_queue *vq = &vd->queues[q];

	if (!virtq_should_interrupt(&vq->vq))
		return;
	if (vp_msix_on(vd)) {
		if (vq->vector != VIRTIO_MSI_NO_VECTOR)
			vp_msix_send(vd, vq->vector);
		return;
	}
	vp_isr_raise(vd, 1);
}

void virtio_config_interrupt(struct virtio_dev *vd)
{
	vd->config_generation++;
	if (vp_msix_on(vd)) {
		if (vd->config_vector != VIRTIO_MSI_NO_VECTOR)
			vp_msix_send(vd, vd->config_vector);
		return;
	}
	vp_isr_raise(vd, 2);
}

void virtio_needs_reset(struct virtio_dev *vd, const char *why)
{
	if (!vd->warned) {
		fprintf(stderr, "khyve: %s at pci %u:%u:%u: driver error (%s); device needs reset\n",
			vd->name, vd->pdev->bus, vd->pdev->slot, vd->pdev->func, why);
		vd->warned = true;
	}
	if (vd->status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	vd->status |= VIRTIO_STATUS_NEEDS_RESET;
	if (vd->status & VIRTIO_STATUS_DRIVER_OK)
		virtio_config_interrupt(vd);
}

/* vd->lock held: the transport's half of a reset. */
static void vp_reset_transport(struct virtio_dev *vd)
{
	vd->driver_features = 0;
	vd->device_feature_select = vd->driver_feature_select = 0;
	vd->status = 0;
	vd->isr = 0;
	vd->config_vector = VIRTIO_MSI_NO_VECTOR;
	vd->queue_select = 0;
	vd->warned = false;
	for (unsigned i = 0; i < vd->nqueues; i++) {
		struct virtio_queue *q = &vd->queues[i];

		virtq_reset(&q->vq);
		q->vq.size = q->max_size;
		q->vector = VIRTIO_MSI_NO_VECTOR;
		q->pfn = 0;
	}
	pci_intx_deassert(vd->pdev);
}

/* vd->lock held. */
static void vp_reset_locked(struct virtio_dev *vd)
{
	vd->epoch++;
	if (vd->ops->reset)
		vd->ops->reset(vd);
	vp_reset_transport(vd);
}

void virtio_pci_reset(struct virtio_dev *vd)
{
	pthread_mutex_lock(&vd->lock);
	vp_reset_locked(vd);
	pthread_mutex_unlock(&vd->lock);
}

static struct virtio_queue *vp_selected(struct virtio_dev *vd)
{
	return vd->queue_select < vd->nqueues ? &vd->queues[vd->queue_select] : NULL;
}

/* A vector the table has, else NO_VECTOR (§4.1.5.1.2: the read-back tells the driver). */
static uint16_t vp_vector(struct virtio_dev *vd, uint16_t v)
{
	if (!vd->use_msix || v >= pci_msix_count(vd->pdev))
		return VIRTIO_MSI_NO_VECTOR;
	return v;
}

static void vp_enable_queue(struct virtio_dev *vd, struct virtio_queue *q)
{
	if (virtq_enable(&q->vq, vd->driver_features) < 0)
		virtio_needs_reset(vd, "queue rings outside guest RAM or misaligned");
}

/* A driver status write; `modern` tells through which interface. */
static void vp_set_status(struct virtio_dev *vd, uint8_t v, bool modern)
{
	uint8_t old = vd->status;

	if (v == 0) {
		vp_reset_locked(vd);
		return;
	}
	if (modern && (v & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
		/* Only features we offer, and a modern driver must take VERSION_1 (§6.1). */
		if ((vd->driver_features & ~vd->device_features) ||
		    !virtio_has(vd, VIRTIO_F_VERSION_1))
			v &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
	}
	if (old & VIRTIO_STATUS_FEATURES_OK)
		v |= VIRTIO_STATUS_FEATURES_OK;	/* cannot be taken back but by a reset */
	vd->status = (uint8_t)(v | (old & VIRTIO_STATUS_NEEDS_RESET));
	if ((v & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK) &&
	    vd->ops->driver_ok)
		vd->ops->driver_ok(vd);
}

/* ---- modern common configuration ---- */

static void vp_common_snapshot(struct virtio_dev *vd, uint8_t *b)
{
	struct virtio_queue *q = vp_selected(vd);
	uint64_t df = vd->device_feature_select < 2 ?
			      vd->device_features >> (32 * vd->device_feature_select) : 0;
	uint64_t gf = vd->driver_feature_select < 2 ?
			      vd->driver_features >> (32 * vd->driver_feature_select) : 0;

	memset(b, 0, VIRTIO_COMMON_SIZE);
	vp_put(b, VCC_DFSELECT, vd->device_feature_select, 4);
	vp_put(b, VCC_DF, (uint32_t)df, 4);
	vp_put(b, VCC_GFSELECT, vd->driver_feature_select, 4);
	vp_put(b, VCC_GF, (uint32_t)gf, 4);
	vp_put(b, VCC_MSIX, vd->config_vector, 2);
	vp_put(b, VCC_NUMQ, vd->nqueues, 2);
	vp_put(b, VCC_STATUS, vd->status, 1);
	vp_put(b, VCC_CFGGEN, vd->config_generation, 1);
	vp_put(b, VCC_Q_SELECT, vd->queue_select, 2);
	if (!q) {
		vp_put(b, VCC_Q_MSIX, VIRTIO_MSI_NO_VECTOR, 2);
		return;	/* a queue that does not exist reads size 0 */
	}
	vp_put(b, VCC_Q_SIZE, q->vq.size, 2);
	vp_put(b, VCC_Q_MSIX, q->vector, 2);
	vp_put(b, VCC_Q_ENABLE, q->vq.ready, 2);
	vp_put(b, VCC_Q_NOFF, vd->queue_select, 2);
	vp_put(b, VCC_Q_DESC, q->vq.desc_gpa, 8);
	vp_put(b, VCC_Q_AVAIL, q->vq.avail_gpa, 8);
	vp_put(b, VCC_Q_USED, q->vq.used_gpa, 8);
}

/* Apply one written field whose new value is in b. */
static void vp_common_apply(struct virtio_dev *vd, unsigned field, const uint8_t *b)
{
	struct virtio_queue *q = vp_selected(vd);
	uint32_t v32;

	switch (field) {
	case VCC_DFSELECT:
		vd->device_feature_select = (uint32_t)vp_get(b, field, 4);
		break;
	case VCC_GFSELECT:
		vd->driver_feature_select = (uint32_t)vp_get(b, field, 4);
		break;
	case VCC_GF:
		if (vd->driver_feature_select >= 2 || (vd->status & VIRTIO_STATUS_FEATURES_OK))
			break;
		v32 = (uint32_t)vp_get(b, field, 4);
		if (vd->driver_feature_select == 0)
			vd->driver_features = (vd->driver_features & ~0xffffffffULL) | v32;
		else
			vd->driver_features = (vd->driver_features & 0xffffffffULL) |
					      (uint64_t)v32 << 32;
		break;
	case VCC_MSIX:
		vd->config_vector = vp_vector(vd, (uint16_t)vp_get(b, field, 2));
		break;
	case VCC_STATUS:
		vp_set_status(vd, (uint8_t)vp_get(b, field, 1), true);
		break;
	case VCC_Q_SELECT:
		vd->queue_select = (uint16_t)vp_get(b, field, 2);
		break;
	case VCC_Q_SIZE:
		if (q && !q->vq.ready) {
			uint16_t n = (uint16_t)vp_get(b, field, 2);

			/* Any power of two up to the maximum (§4.1.4.3.2 allows smaller). */
			q->vq.size = (n && !(n & (n - 1)) && n <= q->max_size) ? n : q->max_size;
		}
		break;
	case VCC_Q_MSIX:
		if (q)
			q->vector = vp_vector(vd, (uint16_t)vp_get(b, field, 2));
		break;
	case VCC_Q_ENABLE:
		if (q && !q->vq.ready && vp_get(b, field, 2) == 1)
			vp_enable_queue(vd, q);
		break;
	case VCC_Q_DESC:
		if (q && !q->vq.ready)
			q->vq.desc_gpa = vp_get(b, field, 8);
		break;
	case VCC_Q_AVAIL:
		if (q && !q->vq.ready)
			q->vq.avail_gpa = vp_get(b, field, 8);
		break;
	case VCC_Q_USED:
		if (q && !q->vq.ready)
			q->vq.used_gpa = vp_get(b, field, 8);
		break;
	default:
		break;
	}
}

static const struct { uint8_t off, size; } vp_common_fields[] = {
	{ VCC_DFSELECT, 4 }, { VCC_GFSELECT, 4 }, { VCC_GF, 4 }, { VCC_MSIX, 2 },
	{ VCC_STATUS, 1 }, { VCC_Q_SELECT, 2 }, { VCC_Q_SIZE, 2 }, { VCC_Q_MSIX, 2 },
	{ VCC_Q_ENABLE, 2 }, { VCC_Q_DESC, 8 }, { VCC_Q_AVAIL, 8 }, { VCC_Q_USED, 8 },
};

static void vp_common_access(struct virtio_dev *vd, unsigned off, unsigned size, bool write,
			     uint64_t *val)
{
	uint8_t b[VIRTIO_COMMON_SIZE];

	if (off + size > VIRTIO_COMMON_SIZE) {
		if (!write)
			*val = 0;
		return;
	}
	vp_common_snapshot(vd, b);
	if (!write) {
		*val = vp_get(b, off, size);
		return;
	}
	vp_put(b, off, *val, size);
	for (size_t i = 0; i < sizeof vp_common_fields / sizeof vp_common_fields[0]; i++) {
		unsigned f = vp_common_fields[i].off, fs = vp_common_fields[i].size;

		if (off < f + fs && f < off + size)
			vp_common_apply(vd, f, b);
	}
}

/* ---- ISR and device configuration (both interfaces) ---- */

static uint8_t vp_isr_read(struct virtio_dev *vd)
{
	uint8_t v = vd->isr;

	vd->isr = 0;
	pci_intx_deassert(vd->pdev);
	return v;
}

static void vp_config_access(struct virtio_dev *vd, unsigned off, unsigned size, bool write,
			     uint64_t *val)
{
	if (off >= vd->config_size || size > vd->config_size - off) {
		if (!write)
			*val = 0;
		return;
	}
	if (!write) {
		*val = vp_get(vd->config, off, size);
		return;
	}
	if (vd->ops->config_write) {
		vp_put(vd->config, off, *val, size);
		vd->ops->config_write(vd, off, size);
	}
}

/* ---- legacy I/O BAR ---- */

/* Returns the queue to notify, or -1. */
static int vp_legacy_access(struct virtio_dev *vd, unsigned off, unsigned size, bool write,
			    uint64_t *val)
{
	unsigned cfg = vp_msix_on(vd) ? VL_CONFIG_MSIX : VL_CONFIG_NOMSIX;
	struct virtio_queue *q = vp_selected(vd);
	uint8_t b[VL_CONFIG_MSIX];

	if (off >= cfg) {
		vp_config_access(vd, off - cfg, size, write, val);
		return -1;
	}
	if (!write) {
		memset(b, 0, sizeof b);
		vp_put(b, VL_HOST_FEATURES, (uint32_t)vd->device_features, 4);
		vp_put(b, VL_GUEST_FEATURES, (uint32_t)vd->driver_features, 4);
		vp_put(b, VL_QUEUE_PFN, q ? q->pfn : 0, 4);
		vp_put(b, VL_QUEUE_NUM, q ? q->max_size : 0, 2);
		vp_put(b, VL_QUEUE_SEL, vd->queue_select, 2);
		vp_put(b, VL_STATUS, vd->status, 1);
		vp_put(b, VL_MSIX_CONFIG, vd->config_vector, 2);
		vp_put(b, VL_MSIX_QUEUE, q ? q->vector : VIRTIO_MSI_NO_VECTOR, 2);
		if (off + size > sizeof b) {
			*val = 0;
			return -1;
		}
		*val = vp_get(b, off, size);
		if (off <= VL_ISR && off + size > VL_ISR)
			*val |= (uint64_t)vp_isr_read(vd) << (8 * (VL_ISR - off));
		return -1;
	}
	switch (off) {
	case VL_GUEST_FEATURES:
		if (size == 4)
			vd->driver_features = (uint32_t)*val & vd->device_features;
		break;
	case VL_QUEUE_PFN:
		if (size != 4 || !q)
			break;
		q->pfn = (uint32_t)*val;
		if (q->pfn == 0) {
			virtq_reset(&q->vq);
			q->vq.size = q->max_size;
		} else {
			q->vq.size = q->max_size;
			virtq_legacy_layout(&q->vq, q->pfn);
			vp_enable_queue(vd, q);
		}
		break;
	case VL_QUEUE_SEL:
		if (size == 2)
			vd->queue_select = (uint16_t)*val;
		break;
	case VL_QUEUE_NOTIFY:
		if (size == 2)
			return (int)(uint16_t)*val;
		break;
	case VL_STATUS:
		if (size == 1)
			vp_set_status(vd, (uint8_t)*val, false);
		break;
	case VL_MSIX_CONFIG:
		if (size == 2 && cfg == VL_CONFIG_MSIX)
			vd->config_vector = vp_vector(vd, (uint16_t)*val);
		break;
	case VL_MSIX_QUEUE:
		if (size == 2 && cfg == VL_CONFIG_MSIX && q)
			q->vector = vp_vector(vd, (uint16_t)*val);
		break;
	default:
		break;
	}
	return -1;
}

/* ---- BAR dispatch ---- */

static void vp_notify(struct virtio_dev *vd, int q)
{
	bool ready;

	if (q < 0 || (unsigned)q >= vd->nqueues)
		return;
	pthread_mutex_lock(&vd->lock);
	ready = vd->queues[q].vq.ready && !vd->queues[q].vq.broken;
	pthread_mutex_unlock(&vd->lock);
	if (ready)
		vd->ops->notify(vd, (unsigned)q);
}

static void vp_bar_access(struct virtio_dev *vd, int bar, uint64_t offset, unsigned size,
			  bool write, uint64_t *val)
{
	int kick = -1;

	pthread_mutex_lock(&vd->lock);
	if (bar == VIRTIO_BAR_LEGACY) {
		kick = vp_legacy_access(vd, (unsigned)offset, size, write, val);
	} else if (bar == VIRTIO_BAR_MODERN) {
		if (offset < VIRTIO_MODERN_ISR) {
			vp_common_access(vd, (unsigned)offset, size, write, val);
		} else if (offset < VIRTIO_MODERN_DEVICE) {
			if (!write)
				*val = offset == VIRTIO_MODERN_ISR ? vp_isr_read(vd) : 0;
		} else if (offset < VIRTIO_MODERN_NOTIFY) {
			vp_config_access(vd, (unsigned)(offset - VIRTIO_MODERN_DEVICE), size, write,
					 val);
		} else if (write) {
			uint64_t n = (offset - VIRTIO_MODERN_NOTIFY) / VIRTIO_NOTIFY_MULT;

			if (n < vd->nqueues)
				kick = (int)n;
		} else {
			*val = 0;
		}
	} else if (!write) {
		*val = 0;
	}
	pthread_mutex_unlock(&vd->lock);
	vp_notify(vd, kick);
}

static void vp_bar_read(struct pci_dev *pdev, int bar, uint64_t offset, unsigned size,
			uint64_t *val)
{
	vp_bar_access(pdev->priv, bar, offset, size, false, val);
}

static void vp_bar_write(struct pci_dev *pdev, int bar, uint64_t offset, unsigned size,
			 uint64_t val)
{
	vp_bar_access(pdev->priv, bar, offset, size, true, &val);
}

/* ---- VIRTIO_PCI_CAP_PCI_CFG window (§4.1.4.9) ---- */

#define VP_CAP_BAR 4
#define VP_CAP_OFFSET 8
#define VP_CAP_LENGTH 12
#define VP_CAP_DATA 16

/* Whether [off, off+size) is the window's data field; the access then goes to the BAR. */
static bool vp_pcicfg_window(struct pci_dev *pdev, unsigned off, unsigned size, bool write,
			     uint32_t *val)
{
	struct virtio_dev *vd = pdev->priv;
	unsigned data = vd->pcicfg_off + VP_CAP_DATA;
	uint32_t boff, blen;
	uint8_t bar;
	uint64_t v;

	if (!vd->pcicfg_off || off < data || off >= data + 4)
		return false;
	bar = pdev->cfg[vd->pcicfg_off + VP_CAP_BAR];
	boff = (uint32_t)vp_get(pdev->cfg, vd->pcicfg_off + VP_CAP_OFFSET, 4);
	blen = (uint32_t)vp_get(pdev->cfg, vd->pcicfg_off + VP_CAP_LENGTH, 4);
	if (off != data || size < blen || (blen != 1 && blen != 2 && blen != 4) ||
	    bar > 5 || pdev->bar[bar].type == PCI_BAR_NONE || boff % blen ||
	    (uint64_t)boff + blen > pdev->bar[bar].size) {
		if (!write)
			*val = 0;
		return true;
	}
	v = *val;
	if (write) {
		vp_bar_access(vd, bar, boff, blen, true, &v);
	} else {
		v = 0;
		vp_bar_access(vd, bar, boff, blen, false, &v);
		*val = (uint32_t)v;
	}
	return true;
}

static bool vp_cfg_read(struct pci_dev *pdev, unsigned off, unsigned size, uint32_t *val)
{
	return vp_pcicfg_window(pdev, off, size, false, val);
}

static bool vp_cfg_write(struct pci_dev *pdev, unsigned off, unsigned size, uint32_t val)
{
	return vp_pcicfg_window(pdev, off, size, true, &val);
}

static void vp_pci_reset(struct pci_dev *pdev)
{
	virtio_pci_reset(pdev->priv);
}

/* ---- ioeventfd kicks ---- */

static void vp_notify(struct virtio_dev *vd, int q);

static void vp_kick_event(void *opaque, int fd, uint32_t events)
{
	struct virtio_kick *k = opaque;
	uint64_t v;

	if (read(fd, &v, sizeof v) == sizeof v)
		vp_notify(k->vd, (int)k->q);
}

/*
 * Assign (or remove) the queues' ioeventfds on the notify region at `base`. One that fails
 * leaves that queue's kicks on the io bus: nothing is lost.
 */
static void vp_kicks_assign(struct virtio_dev *vd, const struct pci_notifiers *n, uint64_t base,
			    bool assign)
{
	for (unsigned q = 0; q < vd->nqueues; q++)
		if (vd->kicks[q].fd >= 0)
			n->ioeventfd(n->opaque, true, base + VIRTIO_MODERN_NOTIFY +
				     (uint64_t)q * VIRTIO_NOTIFY_MULT, 2, vd->kicks[q].fd, assign);
}

static void vp_bar_mapped(struct pci_dev *pdev, int bar, uint64_t addr, bool mapped)
{
	struct virtio_dev *vd = pdev->priv;
	const struct pci_notifiers *n = pci_notifiers(pdev);
	struct event_loop *loop = vm_event_loop(pdev->vm);

	if (bar != VIRTIO_BAR_MODERN || !n || !n->ioeventfd || !loop || !vd->kicks)
		return;
	if (!mapped) {
		if (vd->kick_base)
			vp_kicks_assign(vd, n, vd->kick_base, false);
		vd->kick_base = 0;
		return;
	}
	for (unsigned q = 0; q < vd->nqueues; q++) {
		struct virtio_kick *k = &vd->kicks[q];

		if (k->fd >= 0)
			continue;
		k->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (k->fd >= 0 && evl_add_fd(loop, k->fd, EPOLLIN, vp_kick_event, k) < 0) {
			close(k->fd);
			k->fd = -1;
		}
	}
	vp_kicks_assign(vd, n, addr, true);
	vd->kick_base = addr;
}

static void vp_pci_destroy(struct pci_dev *pdev)
{
	struct virtio_dev *vd = pdev->priv;

	if (vd && vd->ops->destroy)
		vd->ops->destroy(vd);
}

static const struct pci_dev_ops vp_pci_ops = {
	.destroy = vp_pci_destroy,
	.bar_mapped = vp_bar_mapped,
	.bar_read = vp_bar_read,
	.bar_write = vp_bar_write,
	.cfg_read = vp_cfg_read,
	.cfg_write = vp_cfg_write,
	.reset = vp_pci_reset,
};

/* ---- construction ---- */

static int vp_add_cap(struct pci_dev *pdev, uint8_t type, uint32_t offset, uint32_t length,
		      bool notify)
{
	uint8_t cap[20] = { PCIY_VENDOR, 0, notify || type == VIRTIO_PCI_CAP_PCI_CFG ? 20 : 16,
			    type, type == VIRTIO_PCI_CAP_PCI_CFG ? 0 : VIRTIO_BAR_MODERN };

	vp_put(cap, 8, offset, 4);
	vp_put(cap, 12, length, 4);
	if (notify)
		vp_put(cap, 16, VIRTIO_NOTIFY_MULT, 4);
	return pci_add_capability(pdev, cap, cap[2]);
}

static uint64_t vp_pow2(uint64_t v)
{
	uint64_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

int virtio_pci_init(struct virtio_dev *vd, struct pci_dev *pdev, const struct virtio_ops *ops,
		    const struct virtio_pci_params *p, void *priv)
{
	int ret, off;

	if (p->nqueues == 0 || p->queue_size == 0 || p->queue_size > VIRTQ_MAX_SIZE ||
	    (p->queue_size & (p->queue_size - 1)) || VL_CONFIG_MSIX + p->config_size > 256 ||
	    p->config_size > VIRTIO_MODERN_NOTIFY - VIRTIO_MODERN_DEVICE ||
	    p->nqueues * VIRTIO_NOTIFY_MULT > VIRTIO_MODERN_SIZE - VIRTIO_MODERN_NOTIFY)
		return -EINVAL;
	memset(vd, 0, sizeof *vd);
	vd->pdev = pdev;
	vd->ops = ops;
	vd->priv = priv;
	vd->name = pdev->name ? pdev->name : "virtio";
	vd->device_features = p->features | VIRTIO_TRANSPORT_FEATURES;
	vd->nqueues = p->nqueues;
	vd->config_size = p->config_size;
	vd->use_msix = p->msix;
	vd->use_msi = !p->msix;
	vd->queues = calloc(p->nqueues, sizeof *vd->queues);
	vd->config = calloc(1, p->config_size ? p->config_size : 1);
	vd->nvectors = p->msix ? p->nqueues + 1 : 0;
	vd->kicks = calloc(p->nqueues, sizeof *vd->kicks);
	vd->irqfds = calloc(vd->nvectors ? vd->nvectors : 1, sizeof *vd->irqfds);
	if (!vd->queues || !vd->config || !vd->kicks || !vd->irqfds) {
		ret = -ENOMEM;
		goto fail;
	}
	pthread_mutex_init(&vd->lock, NULL);
	for (unsigned i = 0; i < p->nqueues; i++) {
		vd->queues[i].vq.gm = vm_mem(pdev->vm);
		vd->queues[i].max_size = p->queue_size;
		vd->kicks[i] = (struct virtio_kick){ .vd = vd, .q = i, .fd = -1 };
	}
	for (unsigned i = 0; i < vd->nvectors; i++)
		vd->irqfds[i] = (struct virtio_irqfd){ .fd = -1, .handle = -1 };
	pdev->priv = vd;
	pdev->ops = &vp_pci_ops;
	pci_set_ids(pdev, VIRTIO_PCI_VENDOR, p->device_id, 0, p->class_code, p->subclass, 0);
	pci_set_subsystem(pdev, VIRTIO_PCI_VENDOR, p->device_type);
	ret = pci_add_bar(pdev, VIRTIO_BAR_LEGACY, PCI_BAR_IO,
			  vp_pow2(VL_CONFIG_MSIX + p->config_size));
	if (ret == 0)
		ret = pci_add_bar(pdev, VIRTIO_BAR_MODERN, PCI_BAR_MEM64, VIRTIO_MODERN_SIZE);
	if (ret < 0)
		goto fail_lock;
	if ((ret = vp_add_cap(pdev, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_MODERN_COMMON,
			      VIRTIO_COMMON_SIZE, false)) < 0 ||
	    (ret = vp_add_cap(pdev, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_MODERN_ISR, 1, false)) < 0 ||
	    (p->config_size && (ret = vp_add_cap(pdev, VIRTIO_PCI_CAP_DEVICE_CFG,
						 VIRTIO_MODERN_DEVICE, p->config_size,
						 false)) < 0) ||
	    (ret = vp_add_cap(pdev, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_MODERN_NOTIFY,
			      p->nqueues * VIRTIO_NOTIFY_MULT, true)) < 0 ||
	    (off = ret = vp_add_cap(pdev, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, false)) < 0)
		goto fail_lock;
	vd->pcicfg_off = (unsigned)off;
	pdev->cfg_wmask[off + VP_CAP_BAR] = 0xff;
	for (int i = 0; i < 8; i++)
		pdev->cfg_wmask[off + VP_CAP_OFFSET + i] = 0xff;
	if (p->msix)
		ret = pci_msix_add(pdev, VIRTIO_BAR_MSIX, p->nqueues + 1);
	else
		ret = pci_msi_add(pdev);
	if (ret < 0)
		goto fail_lock;
	ret = pci_intx_request(pdev);
	if (ret < 0)
		goto fail_lock;
	vp_reset_transport(vd);
	return 0;
fail_lock:
	pthread_mutex_destroy(&vd->lock);
fail:
	free(vd->queues);
	free(vd->config);
	free(vd->kicks);
	free(vd->irqfds);
	vd->queues = NULL;
	vd->config = NULL;
	vd->kicks = NULL;
	vd->irqfds = NULL;
	pdev->ops = NULL;
	pdev->priv = NULL;
	return ret;
}

void virtio_pci_fini(struct virtio_dev *vd)
{
	const struct pci_notifiers *n = pci_notifiers(vd->pdev);
	struct event_loop *loop = vm_event_loop(vd->pdev->vm);

	if (!vd->queues)
		return;
	for (unsigned q = 0; q < vd->nqueues; q++) {
		if (vd->kicks[q].fd < 0)
			continue;
		if (loop)
			evl_del_fd(loop, vd->kicks[q].fd);
		close(vd->kicks[q].fd);
	}
	for (unsigned v = 0; v < vd->nvectors; v++) {
		if (vd->irqfds[v].fd < 0)
			continue;
		if (n && n->irqfd_remove)
			n->irqfd_remove(n->opaque, vd->irqfds[v].fd, vd->irqfds[v].handle);
		close(vd->irqfds[v].fd);
	}
	pthread_mutex_destroy(&vd->lock);
	free(vd->queues);
	free(vd->config);
	free(vd->kicks);
	free(vd->irqfds);
	vd->queues = NULL;
	vd->config = NULL;
	vd->kicks = NULL;
	vd->irqfds = NULL;
}
