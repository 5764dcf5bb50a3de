/*
 * test_block.c: the raw block backend on temporary files through both engines (io_uring and
 * the worker pool): open errors (missing, directory, zero size, locked by another opener,
 * bad sector sizes), reads and writes with many requests in flight, flush, discard (the
 * file's blocks are deallocated), write-zeroes, read-only refusal, geometry overrides, and
 * the completion batch hook with more requests in one batch than the ring holds.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/block/block.h"
#include "unit.h"

#define FILE_SIZE (4 << 20)

static char tmpdir[64];

/* Remove the temporary directory and what the tests left in it. */
__attribute__((destructor)) static void tmp_cleanup(void)
{
	static const char *const names[] = { "zero.img", "locked.img", "rw-threads.img",
					     "rw-uring.img", "discard.img", "ro.img", "batch.img" };
	char path[128];

	if (!tmpdir[0])
		return;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", tmpdir, names[i]);
		unlink(path);
	}
	rmdir(tmpdir);
}

static const char *tmp_file(const char *name, uint64_t size)
{
	static char path[128];
	int fd;

	if (!tmpdir[0]) {
		strcpy(tmpdir, "/tmp/khyve-blk-XXXXXX");
		if (!mkdtemp(tmpdir))
			return NULL;
	}
	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	unlink(path);
	fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
	if (fd < 0)
		return NULL;
	if (ftruncate(fd, (off_t)size) < 0) {
		close(fd);
		return NULL;
	}
	close(fd);
	return path;
}

struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int pending;
	int64_t last;
	int errors;
};

static struct waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0 };

static void done(struct blk_req *req, int64_t result)
{
	pthread_mutex_lock(&w.lock);
	w.last = result;
	if (result < 0)
		w.errors++;
	w.pending--;
	pthread_cond_signal(&w.cond);
	pthread_mutex_unlock(&w.lock);
}

static int64_t run(struct blk_backend *b, struct blk_req *req)
{
	int ret;

	req->done = done;
	pthread_mutex_lock(&w.lock);
	w.pending++;
	pthread_mutex_unlock(&w.lock);
	ret = blk_submit(b, req);
	if (ret < 0) {
		pthread_mutex_lock(&w.lock);
		w.pending--;
		pthread_mutex_unlock(&w.lock);
		return ret;
	}
	pthread_mutex_lock(&w.lock);
	while (w.pending)
		pthread_cond_wait(&w.cond, &w.lock);
	pthread_mutex_unlock(&w.lock);
	return w.last;
}

TEST(block_open_errors)
{
	struct blk_options o = { 0 };
	struct blk_backend *b, *b2;
	char err[256];
	const char *p;

	CHECK_EQ_U64(blk_open("/nonexistent/khyve.img", &o, &b, err, sizeof err), -ENOENT);
	CHECK(strstr(err, "/nonexistent/khyve.img") != NULL);
	CHECK_EQ_U64(blk_open("/tmp", &o, &b, err, sizeof err), -EISDIR);
	p = tmp_file("zero.img", 0);
	CHECK_EQ_U64(blk_open(p, &o, &b, err, sizeof err), -EINVAL);
	CHECK(strstr(err, "zero") != NULL);
	p = tmp_file("locked.img", FILE_SIZE);
	CHECK_EQ_U64(blk_open(p, &o, &b, err, sizeof err), 0);
	CHECK(blk_open(p, &o, &b2, err, sizeof err) < 0);
	CHECK(strstr(err, "in use") != NULL);
	o.readonly = true;
	CHECK(blk_open(p, &o, &b2, err, sizeof err) < 0);
	blk_close(b);
	CHECK_EQ_U64(blk_open(p, &o, &b, err, sizeof err), 0);
	CHECK_EQ_U64(blk_open(p, &o, &b2, err, sizeof err), 0);	/* two readers are fine */
	blk_close(b2);
	blk_close(b);
	o = (struct blk_options){ .logical = 1000 };
	CHECK_EQ_U64(blk_open(p, &o, &b, err, sizeof err), -EINVAL);
	o = (struct blk_options){ .logical = 4096, .physical = 512 };
	CHECK_EQ_U64(blk_open(p, &o, &b, err, sizeof err), -EINVAL);
	o = (struct blk_options){ .logical = 4096 };
	CHECK_EQ_U64(blk_open(p, &o, &b, err, sizeof err), 0);
	CHECK_EQ_U64(blk_logical_size(b), 4096);
	CHECK_EQ_U64(blk_physical_size(b), 4096);
	CHECK_EQ_U64(blk_size(b), FILE_SIZE);
	CHECK(!blk_is_device(b));
	blk_close(b);
}

static void rw_suite(bool no_uring, bool nocache)
{
	struct blk_options o = { .no_uring = no_uring, .nocache = nocache };
	static uint8_t wbuf[64][4096] __attribute__((aligned(4096)));
	static uint8_t rbuf[64][4096] __attribute__((aligned(4096)));
	static uint8_t odd[4096 + 1];
	struct blk_req reqs[64], *rp[64];
	struct iovec iov[64];
	struct blk_backend *b;
	char err[256];
	const char *p = tmp_file(no_uring ? "rw-threads.img" : "rw-uring.img", FILE_SIZE);
	struct iovec oi;

	if (blk_open(p, &o, &b, err, sizeof err) < 0) {
		/* O_DIRECT is not available on every file system (tmpfs): nothing to test there. */
		CHECK(nocache);
		return;
	}
	CHECK_STR(blk_engine_name(b), no_uring ? "threads" : "io_uring");
	/* 64 writes in flight at once, then 64 reads. */
	for (int i = 0; i < 64; i++) {
		memset(wbuf[i], i + 1, sizeof wbuf[i]);
		iov[i] = (struct iovec){ wbuf[i], sizeof wbuf[i] };
		reqs[i] = (struct blk_req){ .op = BLK_OP_WRITE, .offset = (uint64_t)i * 8192,
					    .iov = &iov[i], .iovcnt = 1, .done = done };
		rp[i] = &reqs[i];
	}
	pthread_mutex_lock(&w.lock);
	w.pending += 64;
	w.errors = 0;
	pthread_mutex_unlock(&w.lock);
	CHECK_EQ_U64(blk_submit_batch(b, rp, 64), 64);
	blk_drain(b);
	CHECK_EQ_U64(w.pending, 0);
	CHECK_EQ_U64(w.errors, 0);
	for (int i = 0; i < 64; i++) {
		iov[i] = (struct iovec){ rbuf[i], sizeof rbuf[i] };
		reqs[i].op = BLK_OP_READ;
	}
	pthread_mutex_lock(&w.lock);
	w.pending += 64;
	pthread_mutex_unlock(&w.lock);
	CHECK_EQ_U64(blk_submit_batch(b, rp, 64), 64);
	blk_drain(b);
	CHECK_EQ_U64(w.errors, 0);
	CHECK(memcmp(wbuf, rbuf, sizeof wbuf) == 0);
	/* A buffer O_DIRECT cannot take goes through a bounce buffer. */
	oi = (struct iovec){ odd + 1, 4096 };
	reqs[0] = (struct blk_req){ .op = BLK_OP_READ, .offset = 8192, .iov = &oi, .iovcnt = 1 };
	CHECK_EQ_U64(run(b, &reqs[0]), 4096);
	CHECK_EQ_U64(odd[1], 2);
	CHECK_EQ_U64(odd[4096], 2);
	reqs[0] = (struct blk_req){ .op = BLK_OP_FLUSH };
	CHECK_EQ_U64(run(b, &reqs[0]), 0);
	/* Out of range is refused at submit. */
	reqs[0] = (struct blk_req){ .op = BLK_OP_READ, .offset = FILE_SIZE - 512, .iov = &iov[0],
				    .iovcnt = 1 };
	CHECK_EQ_U64(run(b, &reqs[0]), -EINVAL);
	blk_close(b);
}

TEST(block_rw_uring)
{
	rw_suite(false, false);
}

TEST(block_rw_threads)
{
	rw_suite(true, false);
}

TEST(block_rw_nocache)
{
	rw_suite(false, true);
	rw_suite(true, true);
}

TEST(block_discard_deallocates)
{
	struct blk_options o = { 0 };
	static uint8_t buf[1 << 20];
	struct iovec iov = { buf, sizeof buf };
	struct blk_req req = { .op = BLK_OP_WRITE, .iov = &iov, .iovcnt = 1 };
	struct blk_backend *b;
	char err[256];
	const char *p = tmp_file("discard.img", FILE_SIZE);
	struct stat before, after;

	CHECK_EQ_U64(blk_open(p, &o, &b, err, sizeof err), 0);
	CHECK(blk_can_delete(b));
	memset(buf, 0xa5, sizeof buf);
	CHECK_EQ_U64(run(b, &req), sizeof buf);
	req = (struct blk_req){ .op = BLK_OP_FLUSH };
	CHECK_EQ_U64(run(b, &req), 0);
	stat(p, &before);
	req = (struct blk_req){ .op = BLK_OP_DISCARD, .offset = 0, .len = 1 << 20 };
	CHECK_EQ_U64(run(b, &req), 0);
	stat(p, &after);
	CHECK(after.st_blocks < before.st_blocks);
	/* Write-zeroes reads back as zeroes. */
	req = (struct blk_req){ .op = BLK_OP_WRITE, .iov = &iov, .iovcnt = 1, .offset = 1 << 20 };
	CHECK_EQ_U64(run(b, &req), sizeof buf);
	req = (struct blk_req){ .op = BLK_OP_WRITE_ZEROES, .offset = (1 << 20) + 4096,
				.len = 8192 };
	CHECK_EQ_U64(run(b, &req), 0);
	req = (struct blk_req){ .op = BLK_OP_READ, .iov = &iov, .iovcnt = 1, .offset = 1 << 20 };
	CHECK_EQ_U64(run(b, &req), sizeof buf);
	CHECK_EQ_U64(buf[4095], 0xa5);
	CHECK_EQ_U64(buf[4096], 0);
	CHECK_EQ_U64(buf[4096 + 8191], 0);
	CHECK_EQ_U64(buf[4096 + 8192], 0xa5);
	blk_close(b);
	o.nodelete = true;
	CHECK_EQ_U64(blk_open(p, &o, &b, err, sizeof err), 0);
	CHECK(!blk_can_delete(b));
	req = (struct blk_req){ .op = BLK_OP_DISCARD, .offset = 0, .len = 4096 };
	CHECK_EQ_U64(run(b, &req), -EOPNOTSUPP);
	blk_close(b);
}

TEST(block_readonly)
{
	struct blk_options o = { .readonly = true };
	uint8_t buf[512];
	struct iovec iov = { buf, sizeof buf };
	struct blk_req req = { .op = BLK_OP_WRITE, .iov = &iov, .iovcnt = 1 };
	struct blk_backend *b;
	char err[256];
	const char *p = tmp_file("ro.img", FILE_SIZE);

	CHECK_EQ_U64(blk_open(p, &o, &b, err, sizeof err), 0);
	CHECK(blk_readonly(b));
	CHECK(!blk_can_delete(b));
	CHECK_EQ_U64(run(b, &req), -EROFS);
	req = (struct blk_req){ .op = BLK_OP_DISCARD, .len = 512 };
	CHECK_EQ_U64(run(b, &req), -EROFS);
	req = (struct blk_req){ .op = BLK_OP_READ, .iov = &iov, .iovcnt = 1 };
	CHECK_EQ_U64(run(b, &req), 512);
	blk_close(b);
}

/* ---- the batch hook ---- */

#define BATCH_N 600	/* more than the io_uring engine's 256 submission entries */

static struct {
	unsigned done, published, hooks, errors;
} bh;

static void batch_one_done(struct blk_req *req, int64_t result)
{
	if (result != 4096)
		__atomic_add_fetch(&bh.errors, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&bh.done, 1, __ATOMIC_RELEASE);
}

static void batch_hook(void *opaque)
{
	unsigned *tag = opaque;

	CHECK_EQ_U64(*tag, 0x5eed);
	__atomic_store_n(&bh.published, __atomic_load_n(&bh.done, __ATOMIC_ACQUIRE),
			 __ATOMIC_RELAXED);
	__atomic_add_fetch(&bh.hooks, 1, __ATOMIC_RELAXED);
}

/* Every done is followed by a hook before blk_drain returns; one and two-buffer reads. */
static void batch_suite(bool no_uring)
{
	static unsigned tag = 0x5eed;
	struct blk_options o = { .no_uring = no_uring, .batch_done = batch_hook,
				 .batch_opaque = &tag };
	static uint8_t buf[BATCH_N][4096];
	static struct blk_req reqs[BATCH_N];
	static struct iovec iov[BATCH_N][2];
	struct blk_req *rp[BATCH_N];
	struct blk_backend *b;
	char err[256];
	const char *p = tmp_file("batch.img", FILE_SIZE);

	memset(&bh, 0, sizeof bh);
	CHECK_EQ_U64(blk_open(p, &o, &b, err, sizeof err), 0);
	for (int i = 0; i < BATCH_N; i++) {
		int n = i % 3 == 0 ? 2 : 1;

		iov[i][0] = (struct iovec){ buf[i], n == 2 ? 1024 : 4096 };
		iov[i][1] = (struct iovec){ buf[i] + 1024, 3072 };
		reqs[i] = (struct blk_req){ .op = BLK_OP_READ, .offset = (uint64_t)i * 4096 % FILE_SIZE,
					    .iov = iov[i], .iovcnt = n, .done = batch_one_done };
		rp[i] = &reqs[i];
	}
	CHECK_EQ_U64(blk_submit_batch(b, rp, BATCH_N), BATCH_N);
	blk_drain(b);
	CHECK_EQ_U64(bh.done, BATCH_N);
	CHECK_EQ_U64(bh.published, BATCH_N);
	CHECK_EQ_U64(bh.errors, 0);
	CHECK(bh.hooks >= 1 && bh.hooks <= BATCH_N);
	if (no_uring)
		CHECK_EQ_U64(bh.hooks, BATCH_N);	/* a worker publishes each request */
	blk_close(b);
}

TEST(block_batch_hook_uring)
{
	batch_suite(false);
}

TEST(block_batch_hook_threads)
{
	batch_suite(true);
}
