/*
 * virtq.c: the split virtqueue (virtio 1.2 §2.7.5-2.7.14; legacy layout §2.7.2 of 0.9.5).
 * Every index, length, chain length (at most the queue size, indirect tables included),
 * indirect table (size, alignment, no nesting, only as the chain head) and buffer (in RAM,
 * clear of the rings, readable before writable) is checked before a device sees the chain.
 * Not here: packed rings, VIRTIO_F_IN_ORDER, notification data.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "virtio/virtq.h"
#include "vmm/guest_mem.h"

#define VIRTQ_DESC_SIZE 16
#define VIRTQ_LEGACY_ALIGN 4096

static inline uint16_t virtq_ld16(const volatile uint8_t *p)
{
	return __atomic_load_n((const volatile uint16_t *)p, __ATOMIC_RELAXED);
}

static inline uint16_t virtq_ld16_acquire(const volatile uint8_t *p)
{
	return __atomic_load_n((const volatile uint16_t *)p, __ATOMIC_ACQUIRE);
}

static inline void virtq_st16(volatile uint8_t *p, uint16_t v)
{
	__atomic_store_n((volatile uint16_t *)p, v, __ATOMIC_RELAXED);
}

static inline void virtq_st32(volatile uint8_t *p, uint32_t v)
{
	__atomic_store_n((volatile uint32_t *)p, v, __ATOMIC_RELAXED);
}

static uint64_t virtq_desc_bytes(uint16_t size)
{
	return (uint64_t)VIRTQ_DESC_SIZE * size;
}

static uint64_t virtq_avail_bytes(uint16_t size)
{
	return 6 + 2ULL * size;	/* flags, idx, ring[size], used_event */
}

static uint64_t virtq_used_bytes(uint16_t size)
{
	return 6 + 8ULL * size;	/* flags, idx, ring[size] of {id, len}, avail_event */
}

void virtq_set_broken(struct virtq *vq, const char *why)
{
	if (!vq->broken)
		snprintf(vq->why, sizeof vq->why, "%s", why);
	vq->broken = true;
}

void virtq_reset(struct virtq *vq)
{
	vq->ready = false;
	vq->broken = false;
	vq->event_idx = false;
	vq->indirect = false;
	vq->desc_gpa = vq->avail_gpa = vq->used_gpa = 0;
	vq->desc = vq->avail = vq->used = NULL;
	vq->last_avail = vq->used_idx = vq->signalled_used = 0;
	vq->signalled_valid = false;
	vq->why[0] = '\0';
}

void virtq_legacy_layout(struct virtq *vq, uint32_t pfn)
{
	uint64_t base = (uint64_t)pfn * VIRTQ_LEGACY_ALIGN;
	uint64_t avail_end = base + virtq_desc_bytes(vq->size) + virtq_avail_bytes(vq->size);

	vq->desc_gpa = base;
	vq->avail_gpa = base + virtq_desc_bytes(vq->size);
	vq->used_gpa = (avail_end + VIRTQ_LEGACY_ALIGN - 1) & ~(uint64_t)(VIRTQ_LEGACY_ALIGN - 1);
}

int virtq_enable(struct virtq *vq, uint64_t features)
{
	uint16_t n = vq->size;
	void *d, *a, *u;

	vq->ready = false;
	if (n == 0 || n > VIRTQ_MAX_SIZE || (n & (n - 1)))
		return -EINVAL;
	if ((vq->desc_gpa & 15) || (vq->avail_gpa & 1) || (vq->used_gpa & 3))
		return -EINVAL;
	d = gm_ptr(vq->gm, vq->desc_gpa, virtq_desc_bytes(n), false);
	a = gm_ptr(vq->gm, vq->avail_gpa, virtq_avail_bytes(n), false);
	u = gm_ptr(vq->gm, vq->used_gpa, virtq_used_bytes(n), true);
	if (!d || !a || !u)
		return -EINVAL;
	vq->desc = d;
	vq->avail = a;
	vq->used = u;
	vq->event_idx = features & (1ULL << 29);
	vq->indirect = features & (1ULL << 28);
	vq->last_avail = 0;
	vq->used_idx = 0;
	vq->signalled_valid = false;
	vq->broken = false;
	vq->why[0] = '\0';
	vq->ready = true;
	return 0;
}

static bool virtq_overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* A buffer must not cover any of the three rings (a device write there corrupts them). */
static bool virtq_hits_rings(const struct virtq *vq, uint64_t gpa, uint64_t len)
{
	return virtq_overlaps(gpa, len, vq->desc_gpa, virtq_desc_bytes(vq->size)) ||
	       virtq_overlaps(gpa, len, vq->avail_gpa, virtq_avail_bytes(vq->size)) ||
	       virtq_overlaps(gpa, len, vq->used_gpa, virtq_used_bytes(vq->size));
}

struct virtq_desc_val {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

static void virtq_load_desc(const volatile uint8_t *p, struct virtq_desc_val *d)
{
	memcpy(&d->addr, (const void *)p, 8);
	memcpy(&d->len, (const void *)(p + 8), 4);
	memcpy(&d->flags, (const void *)(p + 12), 2);
	memcpy(&d->next, (const void *)(p + 14), 2);
}

/* Add one direct descriptor's buffer to the chain; false (queue broken) on a bad one. */
static bool virtq_add_seg(struct virtq *vq, struct virtq_chain *c, const struct virtq_desc_val *d)
{
	bool write = d->flags & VIRTQ_DESC_F_WRITE;
	unsigned i = c->nout + c->nin;
	void *host;

	if (write == false && c->nin) {
		virtq_set_broken(vq, "device-readable descriptor after a writable one");
		return false;
	}
	if (d->len == 0)
		return true;
	if (d->addr + d->len < d->addr || virtq_hits_rings(vq, d->addr, d->len)) {
		virtq_set_broken(vq, "buffer overlaps the rings or wraps");
		return false;
	}
	host = gm_ptr(vq->gm, d->addr, d->len, write);
	if (!host) {
		virtq_set_broken(vq, "buffer outside guest RAM");
		return false;
	}
	if (i >= VIRTQ_MAX_SIZE || i >= vq->size) {
		virtq_set_broken(vq, "chain longer than the queue");
		return false;
	}
	if (write) {
		if ((uint64_t)c->in_len + d->len > UINT32_MAX) {
			virtq_set_broken(vq, "chain longer than 4 GiB");
			return false;
		}
		c->nin++;
		c->in_len += d->len;
	} else {
		if ((uint64_t)c->out_len + d->len > UINT32_MAX) {
			virtq_set_broken(vq, "chain longer than 4 GiB");
			return false;
		}
		c->nout++;
		c->out_len += d->len;
	}
	c->iov[i].iov_base = host;
	c->iov[i].iov_len = d->len;
	c->gpa[i] = d->addr;
	return true;
}

/* Walk an indirect table (§2.7.5.3): the chain's only descriptor pointed at it. */
static bool virtq_walk_indirect(struct virtq *vq, struct virtq_chain *c,
				const struct virtq_desc_val *ind)
{
	const uint8_t *table;
	uint32_t count, idx = 0, seen = 0;

	if (!vq->indirect) {
		virtq_set_broken(vq, "indirect descriptor without VIRTIO_RING_F_INDIRECT_DESC");
		return false;
	}
	if (ind->flags & VIRTQ_DESC_F_NEXT) {
		virtq_set_broken(vq, "indirect descriptor with NEXT set");
		return false;
	}
	if (ind->len == 0 || ind->len % VIRTQ_DESC_SIZE || (ind->addr & 15)) {
		virtq_set_broken(vq, "indirect table of bad size or alignment");
		return false;
	}
	count = ind->len / VIRTQ_DESC_SIZE;
	if (count > vq->size) {
		virtq_set_broken(vq, "indirect table longer than the queue");
		return false;
	}
	table = gm_ptr(vq->gm, ind->addr, ind->len, false);
	if (!table) {
		virtq_set_broken(vq, "indirect table outside guest RAM");
		return false;
	}
	for (;;) {
		struct virtq_desc_val d;

		if (++seen > count) {
			virtq_set_broken(vq, "indirect chain loops");
			return false;
		}
		virtq_load_desc(table + (uint64_t)idx * VIRTQ_DESC_SIZE, &d);
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			virtq_set_broken(vq, "nested indirect table");
			return false;
		}
		if (!virtq_add_seg(vq, c, &d))
			return false;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return true;
		if (d.next >= count) {
			virtq_set_broken(vq, "indirect next index out of range");
			return false;
		}
		idx = d.next;
	}
}

int virtq_pop(struct virtq *vq, struct virtq_chain *c)
{
	uint16_t avail_idx, head, idx;
	unsigned seen = 0;

	if (vq->broken)
		return -EIO;
	if (!vq->ready)
		return 0;
	avail_idx = virtq_ld16_acquire(vq->avail + 2);
	if (avail_idx == vq->last_avail) {
		/* Empty: leave notifications armed (avail_event = next index wanted), then look
		 * once more, as the driver may have published in between (§2.7.10). */
		if (!vq->event_idx)
			return 0;
		virtq_st16(vq->used + 4 + 8 * (uint64_t)vq->size, vq->last_avail);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		avail_idx = virtq_ld16_acquire(vq->avail + 2);
		if (avail_idx == vq->last_avail)
			return 0;
	}
	if ((uint16_t)(avail_idx - vq->last_avail) > vq->size) {
		virtq_set_broken(vq, "avail index moved by more than the queue size");
		return -EIO;
	}
	head = virtq_ld16(vq->avail + 4 + 2 * (vq->last_avail & (vq->size - 1)));
	if (head >= vq->size) {
		virtq_set_broken(vq, "avail ring entry out of range");
		return -EIO;
	}
	c->head = head;
	c->nout = c->nin = 0;
	c->out_len = c->in_len = 0;
	idx = head;
	for (;;) {
		struct virtq_desc_val d;

		if (++seen > vq->size) {
			virtq_set_broken(vq, "descriptor chain loops or is longer than the queue");
			return -EIO;
		}
		virtq_load_desc(vq->desc + (uint64_t)idx * VIRTQ_DESC_SIZE, &d);
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			if (seen != 1) {
				virtq_set_broken(vq, "indirect descriptor inside a chain");
				return -EIO;
			}
			if (!virtq_walk_indirect(vq, c, &d))
				return -EIO;
			break;
		}
		if (!virtq_add_seg(vq, c, &d))
			return -EIO;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		if (d.next >= vq->size) {
			virtq_set_broken(vq, "next index out of range");
			return -EIO;
		}
		idx = d.next;
	}
	vq->last_avail++;
	return 1;
}

void virtq_push(struct virtq *vq, uint16_t head, uint32_t len)
{
	volatile uint8_t *e;

	if (!vq->ready || vq->broken)
		return;
	e = vq->used + 4 + 8 * (uint64_t)(vq->used_idx & (vq->size - 1));
	virtq_st32(e, head);
	virtq_st32(e + 4, len);
	vq->used_idx++;
	/* The element is visible before the index that publishes it (§2.7.8.2). */
	__atomic_store_n((volatile uint16_t *)(vq->used + 2), vq->used_idx, __ATOMIC_RELEASE);
}

bool virtq_should_interrupt(struct virtq *vq)
{
	uint16_t old, now = vq->used_idx, event;
	bool valid;

	if (!vq->ready)
		return false;
	/* used->idx must be visible before we read the driver's suppression state. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx)
		return !(virtq_ld16(vq->avail) & VIRTQ_AVAIL_F_NO_INTERRUPT);
	old = vq->signalled_used;
	valid = vq->signalled_valid;
	vq->signalled_used = now;
	vq->signalled_valid = true;
	if (!valid)
		return true;
	event = virtq_ld16(vq->avail + 4 + 2 * (uint64_t)vq->size);	/* used_event */
	return (uint16_t)(now - event - 1) < (uint16_t)(now - old);
}

bool virtq_set_notify(struct virtq *vq, bool enable)
{
	if (!vq->ready || vq->broken)
		return false;
	if (vq->event_idx) {
		if (enable)
			virtq_st16(vq->used + 4 + 8 * (uint64_t)vq->size, vq->last_avail);
	} else {
		uint16_t flags = virtq_ld16(vq->used);

		virtq_st16(vq->used, enable ? (uint16_t)(flags & ~VIRTQ_USED_F_NO_NOTIFY)
					    : (uint16_t)(flags | VIRTQ_USED_F_NO_NOTIFY));
	}
	if (!enable)
		return false;
	/* The driver reads our suppression state after publishing avail->idx: recheck. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return virtq_ld16_acquire(vq->avail + 2) != vq->last_avail;
}
