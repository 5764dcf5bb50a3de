/*
 * virtq.h: the split virtqueue (virtio 1.2 §2.7) as devices see it: a bounds-checked walker
 * that hands out validated descriptor chains, the used ring with its barriers, and event-index
 * suppression in both directions. A malformed ring never crashes the VMM: the queue is marked
 * broken, the owner learns it from -EIO and sets DEVICE_NEEDS_RESET. Packed rings are left out.
 */
#ifndef KHYVE_VIRTQ_H
#define KHYVE_VIRTQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

struct guest_mem;

#define VIRTQ_MAX_SIZE 256	/* largest queue a khyve device offers */

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_USED_F_NO_NOTIFY 1
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

/*
 * One validated chain: segments 0..nout-1 are device-readable, nout..nout+nin-1 device-
 * writable, each a host pointer to guest RAM that lies wholly in one RAM region and does not
 * overlap the rings. gpa[] keeps the guest addresses (for code-cache notification).
 */
struct virtq_chain {
	uint16_t head;		/* what virtq_push() takes back */
	uint16_t nout, nin;
	uint32_t out_len, in_len;	/* byte totals of each direction */
	struct iovec iov[VIRTQ_MAX_SIZE];
	uint64_t gpa[VIRTQ_MAX_SIZE];
};

struct virtq {
	struct guest_mem *gm;
	uint16_t size;		/* queue size (power of two for legacy rings) */
	bool ready;		/* set up and enabled */
	bool broken;		/* a malformed ring was seen: nothing more is done until reset */
	bool event_idx;		/* VIRTIO_F_EVENT_IDX negotiated */
	bool indirect;		/* VIRTIO_RING_F_INDIRECT_DESC negotiated */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	/* Host views of the rings, validated at virtq_enable(). */
	volatile uint8_t *desc, *avail, *used;
	uint16_t last_avail;	/* next avail entry to take */
	uint16_t used_idx;	/* device's copy of used->idx */
	uint16_t signalled_used;	/* used->idx at the last interrupt decision */
	bool signalled_valid;
	char why[96];		/* first reason the queue broke */
};

/* Forget everything (queue reset): not ready, not broken, indices 0. Keeps gm and size. */
void virtq_reset(struct virtq *vq);
/*
 * Validate and map the three rings for queue size vq->size at vq->desc_gpa/avail_gpa/
 * used_gpa (alignments 16/2/4, all in RAM, size a power of two up to VIRTQ_MAX_SIZE).
 * features: the negotiated feature bits (EVENT_IDX, INDIRECT_DESC). 0, or -EINVAL with the
 * queue left not ready (the caller reports the driver error).
 */
int virtq_enable(struct virtq *vq, uint64_t features);
/*
 * Take the next available chain into *chain. 1 when one was taken, 0 when the ring is empty
 * (with event index, avail_event is then set so the driver's next buffer notifies),
 * -EIO when the ring is (or now is) broken; vq->why says why, first time only logged by owner.
 */
int virtq_pop(struct virtq *vq, struct virtq_chain *chain);
/*
 * Return a chain: writes the used element and publishes used->idx with release ordering.
 * `len` is the number of bytes the device wrote into the chain's writable part.
 */
void virtq_push(struct virtq *vq, uint16_t head, uint32_t len);
/*
 * After one or more pushes: whether the driver wants an interrupt now (event index or the
 * NO_INTERRUPT flag), with the full barrier that decision needs.
 */
bool virtq_should_interrupt(struct virtq *vq);
/*
 * Ask for (enable=true) or suppress driver notifications. With event index, enabling writes
 * avail_event = last_avail. Returns true when, after enabling, more buffers were already
 * available (the caller should pop again instead of sleeping).
 */
bool virtq_set_notify(struct virtq *vq, bool enable);
/* Legacy (0.9.5) layout from a page frame number: desc, avail, used at 4096 alignment. */
void virtq_legacy_layout(struct virtq *vq, uint32_t pfn);
/* Mark broken with a reason (devices use it for malformed requests inside a valid chain). */
void virtq_set_broken(struct virtq *vq, const char *why);

#endif
