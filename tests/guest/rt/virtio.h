/*
 * virtio.h: a small freestanding virtio driver for the 64-bit test guests (virtio 1.2 §2, §4.1:
 * PCI discovery, the modern vendor capabilities and the transitional legacy I/O BAR, §2.7 split
 * virtqueues with indirect descriptors and event index, polled completion with optional MSI-X).
 * INTx routed by the MP table. One driver thread; no packed rings, no AML (_PRT) routing.
 */
#ifndef RT_VIRTIO_H
#define RT_VIRTIO_H

#include "rt.h"

/* Device types (virtio 1.2 §5). */
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4

/* Device status (§2.1). */
#define VIRTIO_S_ACK 1
#define VIRTIO_S_DRIVER 2
#define VIRTIO_S_DRIVER_OK 4
#define VIRTIO_S_FEATURES_OK 8
#define VIRTIO_S_NEEDS_RESET 64
#define VIRTIO_S_FAILED 128

/* Reserved feature bits (§6). */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

/* Descriptor flags (§2.7.5). */
#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_DESC_F_INDIRECT 4

enum vio_mode { VIO_AUTO, VIO_MODERN, VIO_LEGACY };

/* A register window: an I/O port range or a memory-mapped one. */
struct vio_win {
	bool io;
	uint64_t base;
	uint32_t len;
	uint8_t bar;			/* for capability windows: the BAR and the offset in it */
	uint32_t bar_off;
};

#define VIO_MAX_QUEUES 10

struct vio_queue {
	uint16_t size, index;
	bool ready;
	volatile uint8_t *mem;		/* desc | avail | used, physical = virtual */
	volatile uint64_t *desc;	/* 16-byte descriptors, accessed as two quadwords */
	volatile uint16_t *avail;	/* flags, idx, ring[size], used_event */
	volatile uint8_t *used;		/* flags, idx, ring[size] of (id, len), avail_event */
	uint16_t free_head, num_free, last_used, avail_idx, last_notified;
	uint64_t notify_off;		/* modern: offset in the notify window */
	int msix_vector;		/* -1: none */
};

struct vio_dev {
	int bus, slot, fn;
	uint16_t device_id, type;
	uint8_t revision;
	bool modern;			/* driving the modern interface */
	bool has_modern, has_legacy;
	struct vio_win common, notify, isr, devcfg;
	uint32_t notify_mult;
	uint16_t iobase;		/* legacy I/O BAR0 */
	uint64_t dev_features, drv_features;
	bool indirect, event_idx;
	int msix_cap;			/* config offset of the MSI-X capability, 0 if none */
	int pcicfg_cap;			/* config offset of VIRTIO_PCI_CAP_PCI_CFG, 0 if none */
	bool msix_on;
	struct vio_win msix_table;
	int mem_slot;			/* which static queue memory */
	struct vio_queue q[VIO_MAX_QUEUES];
};

/* One buffer of a request. */
struct vio_buf {
	void *addr;
	uint32_t len;
	bool write;			/* device-writable */
};

/* Memory and I/O windows (I/O when w->io). */
uint8_t vio_rd8(const struct vio_win *w, uint32_t off);
uint16_t vio_rd16(const struct vio_win *w, uint32_t off);
uint32_t vio_rd32(const struct vio_win *w, uint32_t off);
void vio_wr8(const struct vio_win *w, uint32_t off, uint8_t v);
void vio_wr16(const struct vio_win *w, uint32_t off, uint16_t v);
void vio_wr32(const struct vio_win *w, uint32_t off, uint32_t v);

/*
 * Find the n-th virtio device of `type` on bus 0 (1AF4:1000+type-ish transitional IDs and
 * 1AF4:1040+type) usable in `mode`; fills the discovery fields of d. 0 or -1 (reason printed
 * as a # line).
 */
int vio_find(struct vio_dev *d, uint16_t type, enum vio_mode mode, int n);
/* The mode named by "mode=modern|legacy" on the command line (default VIO_AUTO). */
enum vio_mode vio_cmdline_mode(void);
/* Reset, ACKNOWLEDGE|DRIVER, negotiate `want` & offered (plus VERSION_1 when modern),
 * FEATURES_OK (checked). 0 or -1 with a # line. */
int vio_init(struct vio_dev *d, uint64_t want);
/* Set up queue idx with at most max_size entries; 0 or -1. */
int vio_queue_setup(struct vio_dev *d, int idx, uint16_t max_size);
/* MSI-X: table entry e to LAPIC vector `vector` on this CPU; config/queue vectors assigned
 * afterwards with vio_msix_queue. 0 or -1 (no MSI-X). Call before vio_queue_setup. */
int vio_msix_enable(struct vio_dev *d);
int vio_msix_entry(struct vio_dev *d, int entry, int vector);
/* Queue idx signals MSI-X table entry `entry`; 0, or -1 when the device refused it. */
int vio_msix_queue(struct vio_dev *d, int idx, int entry);
/* INTx: the device's pin routed per the MP table's PCI interrupt entries (MP spec 1.4 §4.3.4)
 * to `vector` on this CPU through the first IOAPIC; fills the IOAPIC input. 0 or -1 (# line). */
int vio_intx_route(struct vio_dev *d, int vector, uint32_t *ioapic_pin);
void vio_driver_ok(struct vio_dev *d);
uint8_t vio_status(struct vio_dev *d);
void vio_set_status(struct vio_dev *d, uint8_t s);
void vio_reset(struct vio_dev *d);
/* An access of size 1, 2 or 4 to BAR `bar` at `off` through the VIRTIO_PCI_CAP_PCI_CFG window
 * (§4.1.4.9); -1 without that capability. */
int vio_pcicfg_read(struct vio_dev *d, uint8_t bar, uint32_t off, int size, uint32_t *v);
int vio_pcicfg_write(struct vio_dev *d, uint8_t bar, uint32_t off, int size, uint32_t v);
/* Whether queue idx is set up on the device side (modern queue_enable, legacy queue address). */
bool vio_queue_live(struct vio_dev *d, int idx);
/* ISR status (read clears it). */
uint8_t vio_isr(struct vio_dev *d);
/* Device configuration space. */
uint8_t vio_cfg8(struct vio_dev *d, uint32_t off);
uint16_t vio_cfg16(struct vio_dev *d, uint32_t off);
uint32_t vio_cfg32(struct vio_dev *d, uint32_t off);
uint64_t vio_cfg64(struct vio_dev *d, uint32_t off);

/* Post a chain (driver-readable buffers must come first); returns the head id or -1 when the
 * queue is full. Uses an indirect table when negotiated and `indirect` is set. Does not
 * notify. */
int vio_add(struct vio_dev *d, int idx, const struct vio_buf *b, int n, bool indirect);
/* Notify the device of new buffers (respects event index / NO_NOTIFY). */
void vio_kick(struct vio_dev *d, int idx);
/* One used element: 1 (id, len filled), 0 when none is there. Frees the chain. */
int vio_get(struct vio_dev *d, int idx, uint32_t *id, uint32_t *len);
/* Wait for one used element up to timeout_us; 0, or -1 on timeout. */
int vio_wait(struct vio_dev *d, int idx, uint32_t *id, uint32_t *len, uint64_t timeout_us);
/* vio_add + vio_kick + vio_wait for the same id; the used length or -1. */
int64_t vio_xfer(struct vio_dev *d, int idx, const struct vio_buf *b, int n, uint64_t timeout_us);
/* Whether the device has marked itself broken (NEEDS_RESET). */
bool vio_broken(struct vio_dev *d);
/* Ask for (or suppress) used-buffer notifications: used_event / NO_INTERRUPT. */
void vio_want_irq(struct vio_dev *d, int idx, bool on);

#endif
