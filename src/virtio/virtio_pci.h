/*
 * virtio_pci.h: the virtio PCI transport (virtio 1.2 §4.1) that device models sit on: a
 * transitional device with the legacy 0.9.5 I/O BAR and the modern capabilities (common,
 * notify, ISR, device and PCI-config access), feature negotiation, device status and reset,
 * and interrupts by MSI-X (one vector per queue plus config), MSI (-W) or INTx. Where the
 * machine offers notifiers (KVM), modern queue kicks arrive by ioeventfd on the event loop
 * and MSI-X messages leave by irqfd; otherwise through the io bus handlers and vm_msi.
 */
#ifndef KHYVE_VIRTIO_PCI_H
#define KHYVE_VIRTIO_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "virtio/virtq.h"

struct pci_dev;
struct virtio_dev;

/* Feature bits (virtio 1.2 §6). */
#define VIRTIO_F_NOTIFY_ON_EMPTY 24
#define VIRTIO_F_ANY_LAYOUT 27
#define VIRTIO_RING_F_INDIRECT_DESC 28
#define VIRTIO_RING_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

/* Device status (§2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

#define VIRTIO_MSI_NO_VECTOR 0xffff
#define VIRTIO_PCI_VENDOR 0x1af4

/*
 * What a device model supplies. Every hook is called with vd->lock held except notify, which
 * runs on the notifying vCPU's thread (or the event loop under ioeventfd) without it, so the
 * model may take vd->lock while it pops chains. None may block on I/O.
 */
struct virtio_ops {
	/* The driver kicked queue q (q < nqueues, queue ready). */
	void (*notify)(struct virtio_dev *vd, unsigned q);
	/*
	 * Device reset (status 0 written, or platform reset): forget per-driver state. Requests
	 * still in flight must not touch the queues afterwards: compare vd->epoch at completion.
	 */
	void (*reset)(struct virtio_dev *vd);
	/* Optional: the driver set DRIVER_OK (queues are set up). */
	void (*driver_ok)(struct virtio_dev *vd);
	/* Optional: a driver write to device config space (already stored in vd->config). */
	void (*config_write)(struct virtio_dev *vd, unsigned offset, unsigned size);
	/*
	 * PCI bus teardown (no lock held, vCPUs stopped): wait for in-flight work, release the
	 * backend, call virtio_pci_fini() and free the model's state.
	 */
	void (*destroy)(struct virtio_dev *vd);
};

struct virtio_queue {
	struct virtq vq;
	uint16_t max_size;
	uint16_t vector;	/* MSI-X vector or VIRTIO_MSI_NO_VECTOR */
	uint32_t pfn;		/* legacy queue address */
};

struct virtio_dev {
	struct pci_dev *pdev;
	const struct virtio_ops *ops;
	void *priv;
	const char *name;
	pthread_mutex_t lock;	/* everything below, and the queues' rings */
	uint32_t epoch;		/* incremented by every reset */
	uint64_t device_features, driver_features;
	uint32_t device_feature_select, driver_feature_select;
	uint8_t status, isr, config_generation;
	uint16_t config_vector;
	uint16_t queue_select;
	bool use_msix, use_msi;
	bool warned;		/* DEVICE_NEEDS_RESET already logged */
	unsigned nqueues;
	struct virtio_queue *queues;
	uint8_t *config;	/* device-specific configuration, config_size bytes */
	unsigned config_size;
	unsigned pcicfg_off;	/* VIRTIO_PCI_CAP_PCI_CFG capability offset */
	/* With the machine's notifiers (KVM): a kick eventfd per queue, an irqfd per vector. */
	struct virtio_kick {
		struct virtio_dev *vd;
		unsigned q;
		int fd;
	} *kicks;
	uint64_t kick_base;	/* notify region address the ioeventfds are on, 0: none */
	struct virtio_irqfd {
		int fd, handle;
		uint64_t addr;
		uint32_t data;
		bool failed;
	} *irqfds;
	unsigned nvectors;
};

struct virtio_pci_params {
	uint16_t device_id;	/* transitional PCI device ID (0x1000-0x103f) */
	uint16_t device_type;	/* virtio device type: subsystem ID */
	uint8_t class_code, subclass;
	unsigned nqueues;
	uint16_t queue_size;	/* every queue's maximum (power of two) */
	uint64_t features;	/* device features; the transport adds its own */
	unsigned config_size;	/* bytes of device config (vd->config is allocated) */
	bool msix;		/* MSI-X (bhyve's default); false: MSI (-W) */
};

/*
 * Build the PCI function: IDs, BAR0 (legacy I/O), BAR1 (MSI-X table), BAR4 (modern
 * registers), capabilities, INTx pin. vd is the caller's (embedded in its state); 0 or -errno.
 */
int virtio_pci_init(struct virtio_dev *vd, struct pci_dev *pdev, const struct virtio_ops *ops,
		    const struct virtio_pci_params *p, void *priv);
/* Free what virtio_pci_init allocated (not vd itself). */
void virtio_pci_fini(struct virtio_dev *vd);
/* Reset as if the driver wrote status 0. Takes vd->lock. */
void virtio_pci_reset(struct virtio_dev *vd);

/* vd->lock held: whether feature `bit` was negotiated. */
static inline bool virtio_has(const struct virtio_dev *vd, unsigned bit)
{
	return (vd->driver_features >> bit) & 1;
}
/* vd->lock held: the driver is running (DRIVER_OK and not NEEDS_RESET). */
bool virtio_running(const struct virtio_dev *vd);
/*
 * vd->lock held: after virtq_push() on queue q, interrupt the driver when the queue's
 * suppression state asks for it (MSI-X vector, or ISR bit 0 with MSI or INTx).
 */
void virtio_queue_interrupt(struct virtio_dev *vd, unsigned q);
/* vd->lock held: configuration change interrupt (ISR bit 1 / config vector). */
void virtio_config_interrupt(struct virtio_dev *vd);
/*
 * vd->lock held: the driver broke the protocol on queue q (vq->why) or elsewhere (why):
 * set DEVICE_NEEDS_RESET, send a config interrupt, log once; the VM carries on.
 */
void virtio_needs_reset(struct virtio_dev *vd, const char *why);

#endif
