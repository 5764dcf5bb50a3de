/*
 * block.c: the raw block backend: open and check a file or block device (size from st_size or
 * BLKGETSIZE64, sector sizes from BLKSSZGET/BLKPBSZGET unless overridden), an OFD lock
 * against a second khyve, and the I/O engine: io_uring (the file registered, one submission
 * call per batch) with one completion thread that reaps every ready completion at once, and
 * a worker pool for what io_uring does not do here (discard, write-zeroes, unaligned
 * O_DIRECT) or when io_uring_queue_init fails. Left out: image formats (raw only, as bhyve).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/block/block.h"

#define BLK_RING_ENTRIES 256
#define BLK_WORKERS 4
#define BLK_DIRECT_ALIGN 512
#define BLK_REAP_BATCH 64

struct blk_backend {
	int fd;
	bool is_dev, readonly, nocache, can_delete;
	uint64_t size;
	uint32_t logical, physical;

	pthread_mutex_t lock;		/* inflight, worker queue */
	pthread_mutex_t sq_lock;	/* the ring's submission side (never held with lock) */
	bool sq_left;			/* a submit left SQEs behind (atomic; retried by the reaper) */
	pthread_cond_t idle;		/* inflight reached 0 */
	pthread_cond_t work;		/* worker queue not empty, or stopping */
	uint64_t inflight;
	void (*batch_done)(void *opaque);
	void *batch_opaque;
	struct blk_req *wq_head, **wq_tail;
	bool stopping;
	pthread_t workers[BLK_WORKERS];
	int nworkers;

	bool uring;
	bool fixed_file;		/* b->fd is the ring's registered file 0 */
	struct io_uring ring;
	pthread_t reaper;
	bool reaper_started;
};

/* ---- open and geometry ---- */

static bool blk_pow2_sector(uint32_t v)
{
	return v >= 512 && v <= 65536 && !(v & (v - 1));
}

static int blk_fail(struct blk_backend *b, int ret, char *err, size_t errlen, const char *fmt,
		    const char *path)
{
	snprintf(err, errlen, fmt, path, strerror(-ret));
	if (b->fd >= 0)
		close(b->fd);
	free(b);
	return ret;
}

static int blk_engine_start(struct blk_backend *b, bool no_uring);

int blk_open(const char *path, const struct blk_options *opt, struct blk_backend **out,
	     char *err, size_t errlen)
{
	struct blk_backend *b = calloc(1, sizeof *b);
	struct flock fl = { .l_whence = SEEK_SET };
	int flags = O_CLOEXEC, ret;
	struct stat st;

	*out = NULL;
	if (!b) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	b->fd = -1;
	if (!path || !*path) {
		free(b);
		snprintf(err, errlen, "no backing file given");
		return -EINVAL;
	}
	if ((opt->logical && !blk_pow2_sector(opt->logical)) ||
	    (opt->physical && (!blk_pow2_sector(opt->physical) ||
			       opt->physical < (opt->logical ? opt->logical : 512)))) {
		free(b);
		snprintf(err, errlen, "%s: invalid sector size %u/%u (powers of two from 512, "
			 "physical at least logical)", path, opt->logical, opt->physical);
		return -EINVAL;
	}
	flags |= opt->readonly ? O_RDONLY : O_RDWR;
	if (opt->nocache)
		flags |= O_DIRECT;
	if (opt->sync)
		flags |= O_SYNC;
	b->fd = open(path, flags);
	if (b->fd < 0)
		return blk_fail(b, -errno, err, errlen, "cannot open %s: %s", path);
	if (fstat(b->fd, &st) < 0)
		return blk_fail(b, -errno, err, errlen, "cannot stat %s: %s", path);
	if (S_ISDIR(st.st_mode))
		return blk_fail(b, -EISDIR, err, errlen, "%s: %s", path);
	b->logical = 512;
	b->physical = 512;
	if (S_ISBLK(st.st_mode)) {
		uint64_t sz = 0;
		int ss = 0;
		unsigned int ps = 0;

		b->is_dev = true;
		if (ioctl(b->fd, BLKGETSIZE64, &sz) < 0)
			return blk_fail(b, -errno, err, errlen, "%s: BLKGETSIZE64: %s", path);
		b->size = sz;
		if (ioctl(b->fd, BLKSSZGET, &ss) == 0 && ss >= 512)
			b->logical = (uint32_t)ss;
		if (ioctl(b->fd, BLKPBSZGET, &ps) == 0 && ps >= b->logical)
			b->physical = ps;
	} else if (S_ISREG(st.st_mode)) {
		b->size = (uint64_t)st.st_size;
		if (st.st_blksize >= 512 && blk_pow2_sector((uint32_t)st.st_blksize))
			b->physical = (uint32_t)st.st_blksize;
	} else {
		return blk_fail(b, -EINVAL, err, errlen, "%s: not a regular file or block device%.0s",
				path);
	}
	if (opt->logical) {
		b->logical = opt->logical;
		b->physical = opt->physical ? opt->physical : opt->logical;
	} else if (opt->physical) {
		b->physical = opt->physical;
	}
	if (b->physical < b->logical)
		b->physical = b->logical;
	if (b->size == 0)
		return blk_fail(b, -EINVAL, err, errlen, "%s: size is zero%.0s", path);
	fl.l_type = opt->readonly ? F_RDLCK : F_WRLCK;
	if (fcntl(b->fd, F_OFD_SETLK, &fl) < 0) {
		ret = -errno;
		if (ret == -EAGAIN || ret == -EACCES)
			return blk_fail(b, ret, err, errlen,
					"%s is in use by another khyve (locked: %s)", path);
		return blk_fail(b, ret, err, errlen, "%s: cannot lock: %s", path);
	}
	b->readonly = opt->readonly;
	b->nocache = opt->nocache;
	b->can_delete = !opt->readonly && !opt->nodelete;
	b->batch_done = opt->batch_done;
	b->batch_opaque = opt->batch_opaque;
	pthread_mutex_init(&b->lock, NULL);
	pthread_mutex_init(&b->sq_lock, NULL);
	pthread_cond_init(&b->idle, NULL);
	pthread_cond_init(&b->work, NULL);
	b->wq_tail = &b->wq_head;
	ret = blk_engine_start(b, opt->no_uring);
	if (ret < 0) {
		pthread_mutex_destroy(&b->lock);
		pthread_mutex_destroy(&b->sq_lock);
		pthread_cond_destroy(&b->idle);
		pthread_cond_destroy(&b->work);
		return blk_fail(b, ret, err, errlen, "%s: cannot start the I/O engine: %s", path);
	}
	*out = b;
	return 0;
}

uint64_t blk_size(const struct blk_backend *b)
{
	return b->size;
}

uint32_t blk_logical_size(const struct blk_backend *b)
{
	return b->logical;
}

uint32_t blk_physical_size(const struct blk_backend *b)
{
	return b->physical;
}

bool blk_readonly(const struct blk_backend *b)
{
	return b->readonly;
}

bool blk_can_delete(const struct blk_backend *b)
{
	return b->can_delete;
}

bool blk_is_device(const struct blk_backend *b)
{
	return b->is_dev;
}

const char *blk_engine_name(const struct blk_backend *b)
{
	return b->uring ? "io_uring" : "threads";
}

/* ---- synchronous execution (workers) ---- */

static bool blk_iov_aligned(const struct iovec *iov, int n)
{
	for (int i = 0; i < n; i++)
		if (((uintptr_t)iov[i].iov_base | iov[i].iov_len) & (BLK_DIRECT_ALIGN - 1))
			return false;
	return true;
}

static uint64_t blk_iov_bytes(const struct iovec *iov, int n)
{
	uint64_t t = 0;

	for (int i = 0; i < n; i++)
		t += iov[i].iov_len;
	return t;
}

/* Read or write the rest of req (from req->xfer on), through a bounce buffer if O_DIRECT
 * cannot take the guest's buffers. Returns bytes or -errno. */
static int64_t blk_rw_sync(struct blk_backend *b, struct blk_req *req)
{
	uint64_t total = blk_iov_bytes(req->iov, req->iovcnt);
	bool write = req->op == BLK_OP_WRITE;

	if (b->nocache && !blk_iov_aligned(req->iov, req->iovcnt)) {
		uint8_t *bounce;
		uint64_t done = 0, pos = 0;
		ssize_t n;

		if (posix_memalign((void **)&bounce, 4096, total ? total : 1))
			return -ENOMEM;
		if (write)
			for (int i = 0; i < req->iovcnt; i++) {
				memcpy(bounce + pos, req->iov[i].iov_base, req->iov[i].iov_len);
				pos += req->iov[i].iov_len;
			}
		while (done < total) {
			n = write ? pwrite(b->fd, bounce + done, total - done,
					   (off_t)(req->offset + done))
				  : pread(b->fd, bounce + done, total - done,
					  (off_t)(req->offset + done));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			done += (uint64_t)n;
		}
		if (!write) {
			pos = 0;
			for (int i = 0; i < req->iovcnt && pos < done; i++) {
				uint64_t c = req->iov[i].iov_len < done - pos ? req->iov[i].iov_len
									      : done - pos;

				memcpy(req->iov[i].iov_base, bounce + pos, c);
				pos += c;
			}
		}
		free(bounce);
		return done == total ? (int64_t)total : -EIO;
	}
	while (req->xfer < total) {
		struct iovec iov[IOV_MAX];
		uint64_t skip = req->xfer;
		int n = 0;
		ssize_t r;

		for (int i = 0; i < req->iovcnt && n < IOV_MAX; i++) {
			if (skip >= req->iov[i].iov_len) {
				skip -= req->iov[i].iov_len;
				continue;
			}
			iov[n].iov_base = (uint8_t *)req->iov[i].iov_base + skip;
			iov[n].iov_len = req->iov[i].iov_len - skip;
			skip = 0;
			n++;
		}
		r = write ? pwritev(b->fd, iov, n, (off_t)(req->offset + req->xfer))
			  : preadv(b->fd, iov, n, (off_t)(req->offset + req->xfer));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO;	/* past the end: the device checked bounds, so the file shrank */
		req->xfer += (uint64_t)r;
	}
	return (int64_t)total;
}

static int64_t blk_delete_sync(struct blk_backend *b, struct blk_req *req)
{
	uint64_t range[2] = { req->offset, req->len };

	if (!b->can_delete)
		return -EOPNOTSUPP;
	if (b->is_dev) {
		unsigned long cmd = req->op == BLK_OP_DISCARD ? BLKDISCARD : BLKZEROOUT;

		return ioctl(b->fd, cmd, range) < 0 ? -errno : 0;
	}
	if (req->op == BLK_OP_DISCARD || req->unmap) {
		if (fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)req->offset,
			      (off_t)req->len) == 0)
			return 0;
		if (req->op == BLK_OP_DISCARD)
			return -errno;
	}
	if (fallocate(b->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)req->offset,
		      (off_t)req->len) == 0)
		return 0;
	return -errno;
}

static int64_t blk_exec_sync(struct blk_backend *b, struct blk_req *req)
{
	switch (req->op) {
	case BLK_OP_READ:
	case BLK_OP_WRITE:
		return blk_rw_sync(b, req);
	case BLK_OP_FLUSH:
		return fdatasync(b->fd) < 0 ? -errno : 0;
	case BLK_OP_DISCARD:
	case BLK_OP_WRITE_ZEROES:
		return blk_delete_sync(b, req);
	}
	return -EINVAL;
}

/* `n` requests had their `done` called: let the caller publish them, then count them out. */
static void blk_finished(struct blk_backend *b, unsigned n)
{
	if (b->batch_done)
		b->batch_done(b->batch_opaque);
	pthread_mutex_lock(&b->lock);
	b->inflight -= n;
	if (b->inflight == 0)
		pthread_cond_broadcast(&b->idle);
	pthread_mutex_unlock(&b->lock);
}

/* sq_lock held: submit what the ring holds. When the kernel cannot take it all now (it is
 * short of memory, or completions must be reaped first), the completion thread retries. */
static void blk_uring_submit(struct blk_backend *b)
{
	int r;

	do
		r = io_uring_submit(&b->ring);
	while (r == -EINTR);
	__atomic_store_n(&b->sq_left, io_uring_sq_ready(&b->ring) > 0, __ATOMIC_RELAXED);
}

static void *blk_worker(void *arg)
{
	struct blk_backend *b = arg;

	for (;;) {
		struct blk_req *req;

		pthread_mutex_lock(&b->lock);
		while (!b->wq_head && !b->stopping)
			pthread_cond_wait(&b->work, &b->lock);
		req = b->wq_head;
		if (!req) {
			pthread_mutex_unlock(&b->lock);
			return NULL;
		}
		b->wq_head = req->next;
		if (!b->wq_head)
			b->wq_tail = &b->wq_head;
		pthread_mutex_unlock(&b->lock);
		req->done(req, blk_exec_sync(b, req));
		blk_finished(b, 1);
	}
}

/* lock held. */
static void blk_queue_worker(struct blk_backend *b, struct blk_req *req)
{
	req->next = NULL;
	*b->wq_tail = req;
	b->wq_tail = &req->next;
	pthread_cond_signal(&b->work);
}

/* ---- io_uring ---- */

/*
 * The completion thread: sleep until a completion is posted, then take every one that is
 * ready in one go, call their `done`s and the batch hook once.
 */
static void *blk_reaper(void *arg)
{
	struct blk_backend *b = arg;

	for (;;) {
		struct io_uring_cqe *cqe, *cqes[BLK_REAP_BATCH];
		struct blk_req *reqs[BLK_REAP_BATCH];
		int64_t results[BLK_REAP_BATCH];
		unsigned got, n = 0;
		bool stop = false;
		int ret = io_uring_wait_cqe(&b->ring, &cqe);

		if (ret == -EINTR)
			continue;
		if (ret < 0)
			return NULL;
		got = io_uring_peek_batch_cqe(&b->ring, cqes, BLK_REAP_BATCH);
		/*
		 * The submitter filled each req under the lock before io_uring_submit; taking it
		 * here orders our reads after those writes for anyone checking (ThreadSanitizer
		 * cannot see the ordering the kernel provides).
		 */
		pthread_mutex_lock(&b->lock);
		for (unsigned i = 0; i < got; i++) {
			struct blk_req *req = io_uring_cqe_get_data(cqes[i]);
			int64_t result = cqes[i]->res;

			if (!req) {
				stop = true;	/* the marker from blk_close: nothing else is left */
				continue;
			}
			if ((req->op == BLK_OP_READ || req->op == BLK_OP_WRITE) && result >= 0) {
				uint64_t total = blk_iov_bytes(req->iov, req->iovcnt);

				req->xfer += (uint64_t)result;
				if (req->xfer < total) {
					/* Short transfer (rare): finish it on a worker. */
					blk_queue_worker(b, req);
					continue;
				}
				result = (int64_t)total;
			}
			reqs[n] = req;
			results[n++] = result;
		}
		pthread_mutex_unlock(&b->lock);
		io_uring_cq_advance(&b->ring, got);
		if (__atomic_load_n(&b->sq_left, __ATOMIC_RELAXED)) {
			pthread_mutex_lock(&b->sq_lock);
			blk_uring_submit(b);
			pthread_mutex_unlock(&b->sq_lock);
		}
		for (unsigned i = 0; i < n; i++)
			reqs[i]->done(reqs[i], results[i]);
		if (n)
			blk_finished(b, n);
		if (stop)
			return NULL;
	}
}

/* Whether io_uring can run req here (otherwise a worker does). */
static bool blk_uring_can(const struct blk_backend *b, const struct blk_req *req)
{
	if (!b->uring || req->op == BLK_OP_DISCARD || req->op == BLK_OP_WRITE_ZEROES)
		return false;
	return !((req->op == BLK_OP_READ || req->op == BLK_OP_WRITE) &&
		 ((b->nocache && !blk_iov_aligned(req->iov, req->iovcnt)) ||
		  req->iovcnt > IOV_MAX));
}

/* sq_lock held: fill an SQE for req; false when the ring is full even after a submit. */
static bool blk_uring_prep(struct blk_backend *b, struct blk_req *req)
{
	struct io_uring_sqe *sqe;
	bool one;
	int fd;

	sqe = io_uring_get_sqe(&b->ring);
	if (!sqe) {
		io_uring_submit(&b->ring);
		sqe = io_uring_get_sqe(&b->ring);
		if (!sqe)
			return false;
	}
	fd = b->fixed_file ? 0 : b->fd;
	/* One buffer needs no iovec copied in (the common case). */
	one = req->iovcnt == 1 && req->iov[0].iov_len <= UINT_MAX;
	switch (req->op) {
	case BLK_OP_READ:
		if (one)
			io_uring_prep_read(sqe, fd, req->iov[0].iov_base,
					   (unsigned)req->iov[0].iov_len, req->offset);
		else
			io_uring_prep_readv(sqe, fd, req->iov, (unsigned)req->iovcnt, req->offset);
		break;
	case BLK_OP_WRITE:
		if (one)
			io_uring_prep_write(sqe, fd, req->iov[0].iov_base,
					    (unsigned)req->iov[0].iov_len, req->offset);
		else
			io_uring_prep_writev(sqe, fd, req->iov, (unsigned)req->iovcnt, req->offset);
		break;
	default:
		io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
		break;
	}
	if (b->fixed_file)
		sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data(sqe, req);
	return true;
}

static int blk_engine_start(struct blk_backend *b, bool no_uring)
{
	/* Room in the completion ring for every request four full queues can have out. */
	struct io_uring_params p = { .flags = IORING_SETUP_CQSIZE, .cq_entries = 2048 };

	if (!no_uring && io_uring_queue_init_params(BLK_RING_ENTRIES, &b->ring, &p) == 0) {
		b->uring = true;
		/* A registered file spares the kernel a file lookup per request. */
		b->fixed_file = io_uring_register_files(&b->ring, &b->fd, 1) == 0;
		if (pthread_create(&b->reaper, NULL, blk_reaper, b) != 0) {
			io_uring_queue_exit(&b->ring);
			b->uring = false;
		} else {
			b->reaper_started = true;
		}
	}
	for (int i = 0; i < BLK_WORKERS; i++) {
		if (pthread_create(&b->workers[i], NULL, blk_worker, b) != 0)
			break;
		b->nworkers++;
	}
	if (b->nworkers == 0) {
		if (b->reaper_started) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);

			io_uring_prep_nop(sqe);
			io_uring_sqe_set_data(sqe, NULL);
			io_uring_submit(&b->ring);
			pthread_join(b->reaper, NULL);
			io_uring_queue_exit(&b->ring);
		}
		return -EAGAIN;
	}
	return 0;
}

static int blk_check(struct blk_backend *b, const struct blk_req *req)
{
	uint64_t len;

	switch (req->op) {
	case BLK_OP_READ:
	case BLK_OP_WRITE:
		if (req->op == BLK_OP_WRITE && b->readonly)
			return -EROFS;
		if (req->iovcnt < 0 || (req->iovcnt && !req->iov))
			return -EINVAL;
		len = blk_iov_bytes(req->iov, req->iovcnt);
		break;
	case BLK_OP_FLUSH:
		return 0;
	case BLK_OP_DISCARD:
	case BLK_OP_WRITE_ZEROES:
		if (b->readonly)
			return -EROFS;
		len = req->len;
		break;
	default:
		return -EINVAL;
	}
	if (req->offset > b->size || len > b->size - req->offset)
		return -EINVAL;
	return 0;
}

/*
 * Count the requests in (and hand the ones io_uring cannot run to the workers) under lock,
 * then fill the ring and submit the lot with one call under sq_lock, so the completion
 * thread never waits behind a submission.
 */
int blk_submit_batch(struct blk_backend *b, struct blk_req **reqs, int n)
{
	struct blk_req *full = NULL, **full_tail = &full;
	int taken = 0, queued = 0;

	pthread_mutex_lock(&b->lock);
	for (; taken < n; taken++) {
		struct blk_req *req = reqs[taken];

		if (blk_check(b, req) < 0 || b->stopping)
			break;
		req->xfer = 0;
		req->next = NULL;
		b->inflight++;
		if (blk_uring_can(b, req))
			queued++;
		else
			blk_queue_worker(b, req);
	}
	pthread_mutex_unlock(&b->lock);
	if (!queued)
		return taken;
	pthread_mutex_lock(&b->sq_lock);
	for (int i = 0; i < taken; i++) {
		if (!blk_uring_can(b, reqs[i]) || blk_uring_prep(b, reqs[i]))
			continue;
		*full_tail = reqs[i];	/* the ring is full: a worker takes it */
		full_tail = &reqs[i]->next;
	}
	blk_uring_submit(b);
	pthread_mutex_unlock(&b->sq_lock);
	if (full) {
		pthread_mutex_lock(&b->lock);
		while (full) {
			struct blk_req *next = full->next;

			blk_queue_worker(b, full);
			full = next;
		}
		pthread_mutex_unlock(&b->lock);
	}
	return taken;
}

int blk_submit(struct blk_backend *b, struct blk_req *req)
{
	int ret = blk_check(b, req);

	if (ret < 0)
		return ret;
	return blk_submit_batch(b, &req, 1) == 1 ? 0 : -ESHUTDOWN;
}

void blk_drain(struct blk_backend *b)
{
	pthread_mutex_lock(&b->lock);
	while (b->inflight)
		pthread_cond_wait(&b->idle, &b->lock);
	pthread_mutex_unlock(&b->lock);
}

void blk_close(struct blk_backend *b)
{
	if (!b)
		return;
	blk_drain(b);
	pthread_mutex_lock(&b->lock);
	b->stopping = true;
	pthread_cond_broadcast(&b->work);
	pthread_mutex_unlock(&b->lock);
	for (int i = 0; i < b->nworkers; i++)
		pthread_join(b->workers[i], NULL);
	if (b->reaper_started) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);

		if (sqe) {
			io_uring_prep_nop(sqe);
			io_uring_sqe_set_data(sqe, NULL);
			io_uring_submit(&b->ring);
			pthread_join(b->reaper, NULL);
		} else {
			pthread_cancel(b->reaper);
			pthread_join(b->reaper, NULL);
		}
		/* The ring is torn down asynchronously: drop its file now, so the lock goes with
		 * the close below. */
		if (b->fixed_file)
			io_uring_unregister_files(&b->ring);
		io_uring_queue_exit(&b->ring);
	}
	pthread_mutex_destroy(&b->lock);
	pthread_mutex_destroy(&b->sq_lock);
	pthread_cond_destroy(&b->idle);
	pthread_cond_destroy(&b->work);
	close(b->fd);
	free(b);
}
