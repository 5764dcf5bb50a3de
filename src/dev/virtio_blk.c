/*
 * virtio_blk.c: virtio-blk (virtio 1.2 §5.2) on the virtio PCI transport, as bhyve's
 * `-s N,virtio-blk,PATH[,ro][,nocache][,direct][,sectorsize=L[/P]][,nodelete][,ser=ID]`.
 * Requests IN, OUT, FLUSH, GET_ID, DISCARD and WRITE_ZEROES go to the block backend's I/O
 * engine, every chain a kick finds in one submission; the engine thread publishes each run
 * of completions with one used-ring update and at most one interrupt per queue. One request
 * queue per vCPU up to four (VIRTIO_BLK_F_MQ). Left out: CONFIG_WCE (always write-back with
 * FLUSH), secure erase, zoned devices.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/block/block.h"
#include "config/config.h"
#include "dev/virtio_blk.h"
#include "pci/pci.h"
#include "virtio/virtio_pci.h"
#include "vmm/guest_mem.h"
#include "vmm/vm.h"

#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_MQ 12
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_TOPOLOGY 10
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14
#define VIRTIO_BLK_T_BARRIER 0x80000000u	/* legacy flag, ignored */
#define VIRTIO_BLK_WZ_UNMAP 1u

#define VBLK_QUEUE_SIZE 256
#define VBLK_MAX_QUEUES 4
#define VBLK_HDR 16
#define VBLK_SECTOR 512
#define VBLK_MAX_DELETE_SECTORS (1u << 22)
#define VBLK_CONFIG_SIZE 0x3c

/* Device configuration layout (§5.2.4). */
#define VBC_CAPACITY 0x00
#define VBC_SEG_MAX 0x0c
#define VBC_BLK_SIZE 0x14
#define VBC_PHYS_EXP 0x18
#define VBC_MIN_IO 0x1a
#define VBC_NUM_QUEUES 0x22
#define VBC_MAX_DISCARD_SECTORS 0x24
#define VBC_MAX_DISCARD_SEG 0x28
#define VBC_DISCARD_ALIGN 0x2c
#define VBC_MAX_WZ_SECTORS 0x30
#define VBC_MAX_WZ_SEG 0x34
#define VBC_WZ_MAY_UNMAP 0x38

struct vblk;

struct vblk_req {
	struct blk_req io;
	struct vblk *dev;
	uint32_t epoch;
	uint32_t used_len;
	uint8_t *status;
	uint8_t result;			/* status byte of a finished backend request */
	struct vblk_req *next_free;
	struct vblk_req *next_done;	/* on vblk.done, waiting for the batch hook */
	unsigned q;			/* the request queue it came from */
	struct virtq_chain chain;
};

struct vblk {
	struct virtio_dev vd;
	struct blk_backend *backend;
	uint64_t capacity;		/* 512-byte sectors */
	char ident[VIRTIO_BLK_ID_BYTES];
	unsigned nq;
	struct vblk_req *reqs;		/* VBLK_QUEUE_SIZE per queue */
	struct vblk_req *free[VBLK_MAX_QUEUES];	/* under vd.lock */
	bool starved[VBLK_MAX_QUEUES];	/* a notify found no free request (under vd.lock) */
	struct vblk_req *done;		/* finished by the engine, not yet published (atomic) */
};

/* ---- iovec helpers ---- */

/* Copy `len` bytes starting `off` bytes into the segments [first, first+n) into dst. */
static bool vblk_copy_out(const struct iovec *iov, unsigned n, uint64_t off, void *dst,
			  uint64_t len)
{
	uint8_t *d = dst;

	for (unsigned i = 0; i < n && len; i++) {
		uint64_t c;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		c = iov[i].iov_len - off < len ? iov[i].iov_len - off : len;
		memcpy(d, (uint8_t *)iov[i].iov_base + off, c);
		d += c;
		len -= c;
		off = 0;
	}
	return len == 0;
}

/*
 * Trim `skip` bytes from the front and `cut` bytes from the back of the n segments starting
 * at iov[first], in place; returns the number of segments left (their start in *start).
 */
static unsigned vblk_trim(struct iovec *iov, unsigned first, unsigned n, uint64_t skip,
			  uint64_t cut, unsigned *start)
{
	unsigned s = first, e = first + n;

	while (s < e && skip >= iov[s].iov_len)
		skip -= iov[s++].iov_len;
	if (s < e && skip) {
		iov[s].iov_base = (uint8_t *)iov[s].iov_base + skip;
		iov[s].iov_len -= skip;
	}
	while (e > s && cut >= iov[e - 1].iov_len)
		cut -= iov[--e].iov_len;
	if (e > s && cut)
		iov[e - 1].iov_len -= cut;
	*start = s;
	return e - s;
}

/* ---- completion ---- */

/*
 * vd.lock held: return the chain with its status and recycle the request. The caller sends
 * the queue's interrupt (virtio_queue_interrupt) once it has returned all it had.
 */
static void vblk_finish(struct vblk *dev, struct vblk_req *r, uint8_t status)
{
	if (r->epoch == dev->vd.epoch) {
		struct virtq_chain *c = &r->chain;

		*r->status = status;
		/* Device writes into guest RAM: let the software CPU drop cached code there. */
		if (r->used_len > 1)
			for (unsigned i = c->nout; i < (unsigned)c->nout + c->nin; i++)
				gm_ptr(vm_mem(dev->vd.pdev->vm), c->gpa[i], c->iov[i].iov_len, true);
		virtq_push(&dev->vd.queues[r->q].vq, c->head, r->used_len);
	}
	r->next_free = dev->free[r->q];
	dev->free[r->q] = r;
}

static void vblk_notify(struct virtio_dev *vd, unsigned q);

/* Engine thread, once per request: note the status and leave it for vblk_batch_done. */
static void vblk_io_done(struct blk_req *io, int64_t result)
{
	struct vblk_req *r = io->opaque;
	struct vblk *dev = r->dev;

	r->result = VIRTIO_BLK_S_OK;
	if (result == -EOPNOTSUPP)
		r->result = VIRTIO_BLK_S_UNSUPP;
	else if (result < 0)
		r->result = VIRTIO_BLK_S_IOERR;
	if (r->result != VIRTIO_BLK_S_OK || io->op != BLK_OP_READ)
		r->used_len = 1;
	r->next_done = __atomic_load_n(&dev->done, __ATOMIC_RELAXED);
	while (!__atomic_compare_exchange_n(&dev->done, &r->next_done, r, true, __ATOMIC_RELEASE,
					    __ATOMIC_RELAXED))
		;
}

/*
 * Engine thread, after a run of vblk_io_done calls: publish every finished request under one
 * lock, in completion order, then interrupt each queue that got some at most once.
 */
static void vblk_batch_done(void *opaque)
{
	struct vblk *dev = opaque;
	struct vblk_req *r = __atomic_exchange_n(&dev->done, NULL, __ATOMIC_ACQUIRE), *fifo = NULL;
	bool pushed[VBLK_MAX_QUEUES] = { false }, again[VBLK_MAX_QUEUES] = { false };

	if (!r)
		return;	/* another engine thread published ours with its own */
	while (r) {
		struct vblk_req *next = r->next_done;

		r->next_done = fifo;
		fifo = r;
		r = next;
	}
	pthread_mutex_lock(&dev->vd.lock);
	for (r = fifo; r; r = fifo) {
		fifo = r->next_done;
		pushed[r->q] |= r->epoch == dev->vd.epoch;
		vblk_finish(dev, r, r->result);
	}
	for (unsigned q = 0; q < dev->nq; q++) {
		if (pushed[q])
			virtio_queue_interrupt(&dev->vd, q);
		again[q] = dev->starved[q];
		dev->starved[q] = false;
	}
	pthread_mutex_unlock(&dev->vd.lock);
	for (unsigned q = 0; q < dev->nq; q++)
		if (again[q])
			vblk_notify(&dev->vd, q);
}

/* ---- request parsing ---- */

/*
 * vd.lock held: turn the chain in r into a backend request. Returns 1 when r->io is ready to
 * submit, 0 when r was finished here (status written), -EIO when the chain breaks the
 * protocol (no room for the header or the status byte).
 */
static int vblk_parse(struct vblk *dev, struct vblk_req *r)
{
	struct virtq_chain *c = &r->chain;
	struct iovec *last;
	uint8_t hdr[VBLK_HDR], seg[16];
	uint32_t type, num, flags;
	uint64_t sector, data_len;
	unsigned start, n;

	if (c->out_len < VBLK_HDR || c->in_len < 1)
		return -EIO;
	last = &c->iov[c->nout + c->nin - 1];
	r->status = (uint8_t *)last->iov_base + last->iov_len - 1;
	r->used_len = 1;
	vblk_copy_out(c->iov, c->nout, 0, hdr, VBLK_HDR);
	memcpy(&type, hdr, 4);
	memcpy(&sector, hdr + 8, 8);
	type &= ~VIRTIO_BLK_T_BARRIER;
	r->io = (struct blk_req){ .done = vblk_io_done, .opaque = r };

	switch (type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		if (type == VIRTIO_BLK_T_IN) {
			data_len = c->in_len - 1;
			n = vblk_trim(c->iov, c->nout, c->nin, 0, 1, &start);
			r->io.op = BLK_OP_READ;
			r->used_len = (uint32_t)data_len + 1;
		} else {
			data_len = c->out_len - VBLK_HDR;
			n = vblk_trim(c->iov, 0, c->nout, VBLK_HDR, 0, &start);
			r->io.op = BLK_OP_WRITE;
			if (blk_readonly(dev->backend))
				goto ioerr;
		}
		if (data_len % VBLK_SECTOR || sector > dev->capacity ||
		    data_len / VBLK_SECTOR > dev->capacity - sector)
			goto ioerr;
		r->io.offset = sector * VBLK_SECTOR;
		r->io.iov = &c->iov[start];
		r->io.iovcnt = (int)n;
		return 1;
	case VIRTIO_BLK_T_FLUSH:
		r->io.op = BLK_OP_FLUSH;
		return 1;
	case VIRTIO_BLK_T_GET_ID: {
		uint64_t done = 0;

		n = vblk_trim(c->iov, c->nout, c->nin, 0, 1, &start);
		for (unsigned i = start; i < start + n && done < VIRTIO_BLK_ID_BYTES; i++) {
			uint64_t k = VIRTIO_BLK_ID_BYTES - done;

			if (k > c->iov[i].iov_len)
				k = c->iov[i].iov_len;
			memcpy(c->iov[i].iov_base, dev->ident + done, k);
			done += k;
		}
		r->used_len = (uint32_t)done + 1;
		vblk_finish(dev, r, VIRTIO_BLK_S_OK);
		return 0;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (!blk_can_delete(dev->backend)) {
			vblk_finish(dev, r, VIRTIO_BLK_S_UNSUPP);
			return 0;
		}
		/* One segment of {le64 sector, le32 num_sectors, le32 flags} (max_*_seg = 1). */
		if (c->out_len != VBLK_HDR + 16 ||
		    !vblk_copy_out(c->iov, c->nout, VBLK_HDR, seg, sizeof seg))
			goto ioerr;
		memcpy(&sector, seg, 8);
		memcpy(&num, seg + 8, 4);
		memcpy(&flags, seg + 12, 4);
		if ((flags & ~VIRTIO_BLK_WZ_UNMAP) ||
		    (type == VIRTIO_BLK_T_DISCARD && (flags & VIRTIO_BLK_WZ_UNMAP))) {
			vblk_finish(dev, r, VIRTIO_BLK_S_UNSUPP);
			return 0;
		}
		if (num > VBLK_MAX_DELETE_SECTORS || sector > dev->capacity ||
		    num > dev->capacity - sector)
			goto ioerr;
		r->io.op = type == VIRTIO_BLK_T_DISCARD ? BLK_OP_DISCARD : BLK_OP_WRITE_ZEROES;
		r->io.unmap = flags & VIRTIO_BLK_WZ_UNMAP;
		r->io.offset = sector * VBLK_SECTOR;
		r->io.len = (uint64_t)num * VBLK_SECTOR;
		if (num == 0) {
			vblk_finish(dev, r, VIRTIO_BLK_S_OK);
			return 0;
		}
		return 1;
	default:
		vblk_finish(dev, r, VIRTIO_BLK_S_UNSUPP);
		return 0;
	}
ioerr:
	r->used_len = 1;
	vblk_finish(dev, r, VIRTIO_BLK_S_IOERR);
	return 0;
}

static void vblk_notify(struct virtio_dev *vd, unsigned q)
{
	struct vblk *dev = vd->priv;
	struct blk_req *batch[VBLK_QUEUE_SIZE];
	struct virtq *vq = &vd->queues[q].vq;
	bool finished = false;
	int n = 0, taken;

	pthread_mutex_lock(&vd->lock);
	for (;;) {
		struct vblk_req *r = dev->free[q];
		int ret;

		if (!virtio_running(vd))
			break;
		if (!r) {
			dev->starved[q] = true;	/* the next completion pops again */
			break;
		}
		ret = virtq_pop(vq, &r->chain);
		if (ret == 0) {
			if (virtq_set_notify(vq, true))
				continue;
			break;
		}
		if (ret < 0) {
			virtio_needs_reset(vd, vq->why);
			break;
		}
		dev->free[q] = r->next_free;
		r->epoch = vd->epoch;
		ret = vblk_parse(dev, r);
		if (ret < 0) {
			r->next_free = dev->free[q];
			dev->free[q] = r;
			virtq_set_broken(vq, "request without header or status byte");
			virtio_needs_reset(vd, vq->why);
			break;
		}
		if (ret > 0)
			batch[n++] = &r->io;
		else
			finished = true;
	}
	if (finished)
		virtio_queue_interrupt(vd, q);
	pthread_mutex_unlock(&vd->lock);
	if (n == 0)
		return;
	taken = blk_submit_batch(dev->backend, batch, n);
	if (taken < n) {
		pthread_mutex_lock(&vd->lock);
		for (int i = taken; i < n; i++) {
			struct vblk_req *r = batch[i]->opaque;

			r->used_len = 1;
			vblk_finish(dev, r, VIRTIO_BLK_S_IOERR);
		}
		if (((struct vblk_req *)batch[taken]->opaque)->epoch == vd->epoch)
			virtio_queue_interrupt(vd, q);
		pthread_mutex_unlock(&vd->lock);
	}
}

static void vblk_reset(struct virtio_dev *vd)
{
	/* Requests in flight carry the old epoch: their completions are dropped. */
	(void)vd;
}

static void vblk_destroy(struct virtio_dev *vd)
{
	struct vblk *dev = vd->priv;

	blk_close(dev->backend);
	virtio_pci_fini(vd);
	free(dev->reqs);
	free(dev);
}

static const struct virtio_ops vblk_ops = {
	.notify = vblk_notify,
	.reset = vblk_reset,
	.destroy = vblk_destroy,
};

/* ---- construction ---- */

static void vblk_put(uint8_t *cfg, unsigned off, uint64_t v, unsigned size)
{
	for (unsigned i = 0; i < size; i++)
		cfg[off + i] = (uint8_t)(v >> (8 * i));
}

static int vblk_sectorsize(const char *s, uint32_t *logical, uint32_t *physical)
{
	unsigned long l, p;
	char *end;

	*logical = *physical = 0;
	if (!s)
		return 0;
	l = strtoul(s, &end, 10);
	p = l;
	if (*end == '/')
		p = strtoul(end + 1, &end, 10);
	if (*end || end == s || l > 65536 || p > 65536)
		return -EINVAL;
	*logical = (uint32_t)l;
	*physical = (uint32_t)p;
	return 0;
}

/* bhyve's default serial comes from a hash of the path; ours too (FNV-1a). */
static void vblk_default_ident(const char *path, char *ident)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	char buf[32];

	for (const char *p = path; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
	snprintf(buf, sizeof buf, "KHYVE-%04X-%04X-%04X", (unsigned)(h >> 48) & 0xffff,
		 (unsigned)(h >> 32) & 0xffff, (unsigned)(h >> 16) & 0xffff);
	memcpy(ident, buf, VIRTIO_BLK_ID_BYTES);
}

static int vblk_fail(struct pci_dev *pdev, int ret, const char *msg)
{
	fprintf(stderr, "khyve: pci %u:%u:%u: virtio-blk: %s\n", pdev->bus, pdev->slot,
		pdev->func, msg);
	return ret;
}

static int vblk_init(struct vm *vm, struct pci_dev *pdev, struct cfg_node *node)
{
	struct blk_options opt = { .batch_done = vblk_batch_done };
	struct virtio_pci_params p = {
		.device_id = 0x1001, .device_type = 2, .class_code = 0x01, .subclass = 0x00,
		.nqueues = 1, .queue_size = VBLK_QUEUE_SIZE, .config_size = VBLK_CONFIG_SIZE,
	};
	const char *path = cfg_get(node, "path"), *ser = cfg_get(node, "ser");
	bool direct = false, msix = true;
	struct vblk *dev;
	uint8_t *cfg;
	char err[512];
	int ret;

	if (cfg_get_bool(node, "ro", false, &opt.readonly) ||
	    cfg_get_bool(node, "nocache", false, &opt.nocache) ||
	    cfg_get_bool(node, "sync", false, &opt.sync) ||
	    cfg_get_bool(node, "direct", false, &direct) ||
	    cfg_get_bool(node, "nodelete", false, &opt.nodelete) ||
	    cfg_get_bool(cfg_root(), "virtio_msix", true, &msix))
		return vblk_fail(pdev, -EINVAL, "bad boolean option");
	opt.sync |= direct;
	if (vblk_sectorsize(cfg_get(node, "sectorsize"), &opt.logical, &opt.physical))
		return vblk_fail(pdev, -EINVAL, "sectorsize must be L or L/P");
	if (!path)
		return vblk_fail(pdev, -EINVAL, "no backing file (path)");
	if (ser && strlen(ser) > VIRTIO_BLK_ID_BYTES)
		return vblk_fail(pdev, -EINVAL, "ser is longer than 20 characters");
	dev = calloc(1, sizeof *dev);
	if (!dev)
		return vblk_fail(pdev, -ENOMEM, "out of memory");
	dev->nq = vm_ncpus(vm) < 1 ? 1 : vm_ncpus(vm) > VBLK_MAX_QUEUES ? VBLK_MAX_QUEUES
									: (unsigned)vm_ncpus(vm);
	dev->reqs = calloc((size_t)VBLK_QUEUE_SIZE * dev->nq, sizeof *dev->reqs);
	if (!dev->reqs) {
		free(dev);
		return vblk_fail(pdev, -ENOMEM, "out of memory");
	}
	opt.batch_opaque = dev;
	ret = blk_open(path, &opt, &dev->backend, err, sizeof err);
	if (ret < 0) {
		free(dev->reqs);
		free(dev);
		return vblk_fail(pdev, ret, err);
	}
	for (unsigned i = 0; i < VBLK_QUEUE_SIZE * dev->nq; i++) {
		struct vblk_req *r = &dev->reqs[i];

		r->dev = dev;
		r->q = i / VBLK_QUEUE_SIZE;
		r->next_free = dev->free[r->q];
		dev->free[r->q] = r;
	}
	dev->capacity = blk_size(dev->backend) / VBLK_SECTOR;
	if (ser)
		memcpy(dev->ident, ser, strlen(ser));	/* zero-padded, no NUL when 20 long */
	else
		vblk_default_ident(path, dev->ident);
	p.msix = msix;
	p.features = (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_BLK_SIZE) |
		     (1ULL << VIRTIO_BLK_F_FLUSH) | (1ULL << VIRTIO_BLK_F_TOPOLOGY);
	if (blk_readonly(dev->backend))
		p.features |= 1ULL << VIRTIO_BLK_F_RO;
	if (dev->nq > 1)
		p.features |= 1ULL << VIRTIO_BLK_F_MQ;
	p.nqueues = dev->nq;
	if (blk_can_delete(dev->backend))
		p.features |= (1ULL << VIRTIO_BLK_F_DISCARD) | (1ULL << VIRTIO_BLK_F_WRITE_ZEROES);
	ret = virtio_pci_init(&dev->vd, pdev, &vblk_ops, &p, dev);
	if (ret < 0) {
		blk_close(dev->backend);
		free(dev->reqs);
		free(dev);
		return vblk_fail(pdev, ret, "cannot set up the PCI function");
	}
	cfg = dev->vd.config;
	vblk_put(cfg, VBC_CAPACITY, dev->capacity, 8);
	vblk_put(cfg, VBC_SEG_MAX, VBLK_QUEUE_SIZE - 2, 4);
	vblk_put(cfg, VBC_BLK_SIZE, blk_logical_size(dev->backend), 4);
	cfg[VBC_PHYS_EXP] = (uint8_t)__builtin_ctz(blk_physical_size(dev->backend) /
						   blk_logical_size(dev->backend));
	vblk_put(cfg, VBC_MIN_IO, blk_physical_size(dev->backend) / blk_logical_size(dev->backend),
		 2);
	vblk_put(cfg, VBC_NUM_QUEUES, dev->nq, 2);
	vblk_put(cfg, VBC_MAX_DISCARD_SECTORS, VBLK_MAX_DELETE_SECTORS, 4);
	vblk_put(cfg, VBC_MAX_DISCARD_SEG, 1, 4);
	vblk_put(cfg, VBC_DISCARD_ALIGN, blk_physical_size(dev->backend) / VBLK_SECTOR, 4);
	vblk_put(cfg, VBC_MAX_WZ_SECTORS, VBLK_MAX_DELETE_SECTORS, 4);
	vblk_put(cfg, VBC_MAX_WZ_SEG, 1, 4);
	cfg[VBC_WZ_MAY_UNMAP] = 1;
	return 0;
}

static const struct device_key vblk_keys[] = {
	{ "path", KEY_PATH, NULL, "backing file or device" },
	{ "nocache", KEY_BOOL, "false", "open with O_DIRECT" },
	{ "nodelete", KEY_BOOL, "false", "never pass TRIM/UNMAP to the backing store" },
	{ "sync", KEY_BOOL, "false", "open with O_SYNC" },
	{ "direct", KEY_BOOL, "false", "historical alias of sync" },
	{ "ro", KEY_BOOL, "false", "read-only" },
	{ "sectorsize", KEY_STRING, NULL, "logical[/physical] sector size" },
	{ "ser", KEY_STRING, NULL, "serial number (at most 20 characters)" },
	{ "bootindex", KEY_INT, NULL, "firmware boot order position" },
	{ NULL, KEY_STRING, NULL, NULL },
};

static int vblk_legacy_parse(struct cfg_node *node, const char *opts, char *err, size_t errlen)
{
	char *copy, *rest, *tok;
	int idx = 0, ret = 0;

	if (!opts || !*opts)
		return 0;
	copy = rest = strdup(opts);
	if (!copy)
		return -ENOMEM;
	while (ret == 0 && (tok = strsep(&rest, ",")) != NULL) {
		char *eq;

		if (*tok == '\0')
			continue;
		eq = strchr(tok, '=');
		if (idx++ == 0) {
			ret = cfg_set(node, "path", tok);
		} else if (eq) {
			*eq = '\0';
			ret = cfg_set(node, tok, eq + 1);
		} else {
			ret = cfg_set(node, tok, "true");
		}
		if (ret < 0)
			snprintf(err, errlen, "invalid option '%s'", tok);
	}
	free(copy);
	return ret < 0 ? -EINVAL : 0;
}

const struct device_model virtio_blk_model = {
	.name = "virtio-blk",
	.keys = vblk_keys,
	.legacy_parse = vblk_legacy_parse,
	.init = vblk_init,
};
