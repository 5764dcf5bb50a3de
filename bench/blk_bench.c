/*
 * blk_bench.c: virtio-blk's device path against the host's own direct I/O on the same
 * file, in one run. The device side is the real model (src/dev/virtio_blk.c, `nocache`, the
 * io_uring engine) behind a small driver that keeps requests in flight through the virtio
 * rings in fake guest memory, kicking through the notify register (no guest, no vCPU). The
 * host side is io_uring with O_DIRECT at the same queue depth. Workloads: 4 KiB random reads
 * at QD32 (IOPS) and 1 MiB sequential reads at QD8 (MB/s), the same offsets for both, each
 * run twice alternating (the better run counts). Prints a markdown table.
 * Usage: blk_bench FILE [size_mb [seconds]]  (FILE is created and filled, then removed)
 */
#include <fcntl.h>
#include <liburing.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include "../tests/unit/fake_vm.h"
#include "../tests/unit/virtio_drv.h"
#include "dev/virtio_blk.h"

#define HDR 0x200000ULL
#define STATUS 0x300000ULL
#define DATA 0x400000ULL
#define MAXQD 32

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

struct workload {
	const char *name;
	uint32_t bs;
	unsigned qd;
	bool random;
};

/* Offset of the n-th request of a workload over `size` bytes. */
static uint64_t offset_of(const struct workload *w, uint64_t n, uint64_t size)
{
	uint64_t blocks = size / w->bs;

	return (w->random ? next_rand() % blocks : n % blocks) * w->bs;
}

/* ---- host: io_uring + O_DIRECT ---- */

static double host_run(const char *path, uint64_t size, const struct workload *w, double secs)
{
	struct io_uring ring;
	struct iovec iov[MAXQD];
	uint64_t n = 0, done = 0;
	double t0, t;
	int fd = open(path, O_RDONLY | O_DIRECT);

	if (fd < 0 || io_uring_queue_init(64, &ring, 0) < 0)
		return -1;
	for (unsigned i = 0; i < w->qd; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

		if (posix_memalign(&iov[i].iov_base, 4096, w->bs))
			return -1;
		iov[i].iov_len = w->bs;
		io_uring_prep_readv(sqe, fd, &iov[i], 1, offset_of(w, n++, size));
		io_uring_sqe_set_data(sqe, &iov[i]);
	}
	t0 = now();
	io_uring_submit(&ring);
	for (;;) {
		struct io_uring_cqe *cqe;
		struct iovec *v;

		if (io_uring_wait_cqe(&ring, &cqe) < 0)
			break;
		v = io_uring_cqe_get_data(cqe);
		if (cqe->res != (int)w->bs) {
			fprintf(stderr, "blk_bench: host read failed: %d\n", cqe->res);
			return -1;
		}
		io_uring_cqe_seen(&ring, cqe);
		done++;
		t = now();
		if (t - t0 >= secs)
			break;
		{
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

			io_uring_prep_readv(sqe, fd, v, 1, offset_of(w, n++, size));
			io_uring_sqe_set_data(sqe, v);
			io_uring_submit(&ring);
		}
	}
	t = now();
	/* Wait for the reads still in flight before their buffers go. */
	for (unsigned left = w->qd - 1; left; left--) {
		struct io_uring_cqe *cqe;

		if (io_uring_wait_cqe(&ring, &cqe) < 0)
			break;
		io_uring_cqe_seen(&ring, cqe);
	}
	io_uring_queue_exit(&ring);
	close(fd);
	for (unsigned i = 0; i < w->qd; i++)
		free(iov[i].iov_base);
	return (double)done / (t - t0);
}

/* ---- khyve: the virtio-blk model through its rings ---- */

static void post(struct drv *d, unsigned slot, const struct workload *w, uint64_t off,
		 uint16_t *head_slot)
{
	uint8_t hdr[16] = { 0 };
	uint64_t sector = off / 512;
	struct drv_buf b[3] = {
		{ HDR + 64ULL * slot, 16, false },
		{ DATA + (1ULL << 20) * slot, w->bs, true },
		{ STATUS + slot, 1, true },
	};
	uint16_t head;

	memcpy(hdr + 8, &sector, 8);
	gm_write(d->vm->gm, HDR + 64ULL * slot, hdr, 16);
	head = drv_add(d, 0, b, 3);
	head_slot[head] = (uint16_t)slot;
}

static double khyve_run(const char *path, uint64_t size, const struct workload *w, double secs)
{
	uint16_t head_slot[256];
	uint64_t n = 0, done = 0;
	uint16_t seen = 0;
	char opts[300];
	struct drv d;
	double t0, t;

	snprintf(opts, sizeof opts, "%s,nocache", path);
	if (drv_machine(&d, "virtio-blk", opts) < 0 || !drv_modern_init(&d, 0, 1))
		return -1;
	for (unsigned i = 0; i < w->qd; i++)
		post(&d, i, w, offset_of(w, n++, size), head_slot);
	t0 = now();
	drv_kick(&d, 0);
	for (;;) {
		uint16_t used = drv_used_idx(&d, 0);
		bool posted = false;

		if (used == seen) {
			sched_yield();
			continue;
		}
		t = now();
		for (; seen != used; seen++) {
			uint32_t id, len;
			uint8_t st;

			drv_used_elem(&d, 0, seen, &id, &len);
			gm_read(d.vm->gm, STATUS + head_slot[id], &st, 1);
			if (st != 0 || len != w->bs + 1) {
				fprintf(stderr, "blk_bench: device read failed: status %u\n", st);
				return -1;
			}
			done++;
			if (t - t0 < secs) {
				post(&d, head_slot[id], w, offset_of(w, n++, size), head_slot);
				posted = true;
			}
		}
		if (posted)
			drv_kick(&d, 0);
		if (t - t0 >= secs)
			break;
	}
	t = now();
	drv_teardown(&d);	/* drains what is still in flight */
	return (double)done / (t - t0);
}

static int make_file(const char *path, uint64_t size)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	static uint8_t buf[1 << 20];

	if (fd < 0)
		return -1;
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)(i * 131 + 7);
	for (uint64_t off = 0; off < size; off += sizeof buf)
		if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) {
			close(fd);
			return -1;
		}
	fsync(fd);
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
	/* One direct pass over the file, so neither side meets it first. */
	fd = open(path, O_RDONLY | O_DIRECT);
	if (fd < 0)
		return -1;
	{
		void *p;

		if (posix_memalign(&p, 4096, 1 << 20) == 0) {
			while (read(fd, p, 1 << 20) > 0)
				;
			free(p);
		}
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct workload loads[] = {
		{ "4 KiB random read, QD32 (IOPS)", 4096, 32, true },
		{ "1 MiB sequential read, QD8 (MB/s)", 1 << 20, 8, false },
	};
	uint64_t size_mb = argc > 2 ? strtoull(argv[2], NULL, 0) : 512;
	double secs = argc > 3 ? atof(argv[3]) : 3;
	uint64_t size = size_mb << 20;

	if (argc < 2) {
		fprintf(stderr, "usage: blk_bench FILE [size_mb [seconds]]\n");
		return 2;
	}
	if (make_file(argv[1], size) < 0) {
		perror(argv[1]);
		return 1;
	}
	printf("| workload (%llu MiB file, %.0f s each) | host io_uring O_DIRECT | khyve virtio-blk "
	       "(nocache, %s) | ratio |\n|---|---:|---:|---:|\n", (unsigned long long)size_mb, secs,
	       "io_uring");
	for (size_t i = 0; i < sizeof loads / sizeof loads[0]; i++) {
		const struct workload *w = &loads[i];
		double scale = w->random ? 1 : (double)w->bs / 1e6;
		double h, k, h2, k2;

		/* Same offsets for both, each run twice, alternating: the better of two counts. */
		rng = 0x9e3779b97f4a7c15ULL;
		h = host_run(argv[1], size, w, secs);
		rng = 0x9e3779b97f4a7c15ULL;
		k = khyve_run(argv[1], size, w, secs);
		rng = 0x9e3779b97f4a7c15ULL;
		h2 = host_run(argv[1], size, w, secs);
		rng = 0x9e3779b97f4a7c15ULL;
		k2 = khyve_run(argv[1], size, w, secs);
		h = h2 > h ? h2 : h;
		k = k2 > k ? k2 : k;

		if (h <= 0 || k <= 0) {
			printf("| %s | %s | %s | - |\n", w->name, h > 0 ? "ok" : "failed",
			       k > 0 ? "ok" : "failed");
			continue;
		}
		printf("| %s | %.0f | %.0f | %.2f |\n", w->name, h * scale, k * scale, k / h);
	}
	unlink(argv[1]);
	return 0;
}
