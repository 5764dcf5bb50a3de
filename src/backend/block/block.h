/*
 * block.h: raw block backends (regular files, sparse or not, and block devices such as LVM
 * volumes or zvols) with an asynchronous I/O engine: io_uring (liburing) where the kernel
 * allows it, a pool of worker threads otherwise. Used by virtio-blk (and later ahci, nvme).
 *
 * Contract:
 * - blk_open/blk_close and the getters run on the start-up (or teardown) thread.
 * - blk_submit may be called from any thread (vCPU threads, the event loop) and never waits
 *   for the disk: the request is queued and 0 returned, or -errno returned and `done` is not
 *   called. The caller keeps the request and its iovecs alive until `done`.
 * - `done` runs on an engine thread (the io_uring completion thread or a worker), once per
 *   accepted request, with the byte count (read/write) or 0 (other ops), or -errno. It must
 *   not block on I/O; it may submit further requests. The io_uring thread reaps every
 *   completion that is ready at once and calls `done` for each in turn; after every such run
 *   (a worker: after every request) it calls the options' `batch_done`, where the caller can
 *   publish the whole run at once (one used-ring update, one interrupt).
 * - blk_drain waits until every accepted request's `done` and the `batch_done` after it have
 *   returned. blk_close drains, stops the engine threads and closes the file; no `done` runs
 *   after it returns.
 */
#ifndef KHYVE_BACKEND_BLOCK_H
#define KHYVE_BACKEND_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct blk_backend;

struct blk_options {
	bool readonly;		/* ro: open O_RDONLY, writes refused */
	bool nocache;		/* O_DIRECT */
	bool sync;		/* O_SYNC (sync / direct) */
	bool nodelete;		/* no discard or write-zeroes passed to the store */
	uint32_t logical;	/* sector size override, 0: from the device (files: 512) */
	uint32_t physical;	/* 0: from the device (files: st_blksize), or = logical */
	bool no_uring;		/* use the worker pool even where io_uring works (tests) */
	/* Optional: called on the engine thread after each run of `done` calls (see above). */
	void (*batch_done)(void *opaque);
	void *batch_opaque;
};

enum blk_op {
	BLK_OP_READ,
	BLK_OP_WRITE,
	BLK_OP_FLUSH,		/* durable: fdatasync before done */
	BLK_OP_DISCARD,		/* punch hole / BLKDISCARD */
	BLK_OP_WRITE_ZEROES,	/* zero range / BLKZEROOUT; may deallocate when `unmap` */
};

struct blk_req {
	enum blk_op op;
	bool unmap;			/* write-zeroes: the range may be deallocated */
	uint64_t offset;		/* bytes */
	uint64_t len;			/* discard / write-zeroes length in bytes */
	const struct iovec *iov;	/* read / write buffers */
	int iovcnt;
	void (*done)(struct blk_req *req, int64_t result);
	void *opaque;			/* the caller's */
	/* Engine private. */
	struct blk_req *next;
	uint64_t xfer;			/* read/write: bytes done so far */
};

/*
 * Open `path` and check it: missing, a directory, unreadable, zero-sized, or locked by
 * another khyve (an OFD lock, exclusive unless read-only) -> -errno with the cause in err.
 */
int blk_open(const char *path, const struct blk_options *opt, struct blk_backend **out,
	     char *err, size_t errlen);
void blk_close(struct blk_backend *b);

uint64_t blk_size(const struct blk_backend *b);		/* bytes */
uint32_t blk_logical_size(const struct blk_backend *b);	/* bytes per logical sector */
uint32_t blk_physical_size(const struct blk_backend *b);
bool blk_readonly(const struct blk_backend *b);
bool blk_can_delete(const struct blk_backend *b);	/* discard/write-zeroes allowed */
bool blk_is_device(const struct blk_backend *b);
const char *blk_engine_name(const struct blk_backend *b);	/* "io_uring" or "threads" */

/* Queue one request (see the contract above); 0 or -errno (-EROFS, -EINVAL, -ENOMEM). */
int blk_submit(struct blk_backend *b, struct blk_req *req);
/* Queue several with one system call where the engine allows; returns how many it took. */
int blk_submit_batch(struct blk_backend *b, struct blk_req **reqs, int n);
void blk_drain(struct blk_backend *b);

#endif
