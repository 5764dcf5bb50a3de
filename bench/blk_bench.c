/*
 * blk_bench.c: virtio-blk's device path against the host's own direct I/O on the same
 * file, in one run. The device side is the real model (src/dev/virtio_blk.c, `nocache`, the
 * io_uring engine) behind a driver that behaves as Linux's virtio_blk does: event index,
 * MSI-X delivered by irqfd (an eventfd, as under KVM) that the driver sleeps on, all used
 * entries reaped per interrupt, new requests posted and one kick (when avail_event asks).
 * The host side is io_uring with O_DIRECT (the file registered, plain reads, as the engine
 * does): sleep for a completion, reap all, resubmit in one call. Same file, offsets, queue depth, buffer alignment and duration for both; each
 * side warms up before it is timed; many short rounds alternate which side goes first (the
 * disk under a shared machine drifts by tens of percent from one second to the next), and
 * the ratio is the median of the rounds' ratios, with their spread. IOPS and MB/s are the
 * totals over all rounds. CPU time is the whole process's (user + system, every thread) per
 * I/O. Prints a markdown table.
 * Usage: blk_bench FILE [size_mb [seconds [rounds [host|khyve]]]]  (FILE is created, filled
 * and removed; naming one side runs only that one, for profiling, and prints its figures)
 */
#include <fcntl.h>
#include <liburing.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "../tests/unit/fake_vm.h"
#include "../tests/unit/virtio_drv.h"
#include "dev/virtio_blk.h"

#define HDR 0x200000ULL
#define STATUS 0x300000ULL
#define DATA 0x400000ULL
#define MAXQD 32
#define WARMUP 0.1
#define MAXROUNDS 64

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_now(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static uint64_t rng;

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

/* What one timed run measured: I/Os, wall seconds, CPU seconds. */
struct run {
	double ios, secs, cpu;
};

/* Called once per batch of completions: starts the clock after the warm-up and says
 * whether to keep posting. */
struct clock {
	double start, end, cpu0, cpu1, secs;
	uint64_t base, stop;	/* I/Os done when timing started, stopped */
	bool timing;
};

static bool clock_tick(struct clock *c, uint64_t done)
{
	double t = now();

	if (!c->timing) {
		if (t - c->start < WARMUP)
			return true;
		c->timing = true;
		c->start = t;
		c->cpu0 = cpu_now();
		c->base = done;
		return true;
	}
	if (t - c->start < c->secs)
		return true;
	c->end = t;
	c->cpu1 = cpu_now();
	c->stop = done;
	return false;
}

static void clock_result(const struct clock *c, struct run *r)
{
	r->ios = (double)(c->stop - c->base);
	r->secs = c->end - c->start;
	r->cpu = c->cpu1 - c->cpu0;
}

/* ---- host: io_uring + O_DIRECT ---- */

static int host_run(const char *path, uint64_t size, const struct workload *w, double secs,
		    struct run *res)
{
	struct clock clk = { .secs = secs };
	struct io_uring ring;
	struct iovec iov[MAXQD] = { { 0 } };
	uint64_t n = 0, done = 0;
	unsigned inflight = 0;
	int fd = open(path, O_RDONLY | O_DIRECT), ret = -1;
	bool more = true;

	if (fd < 0)
		return -1;
	if (io_uring_queue_init(64, &ring, 0) < 0) {
		close(fd);
		return -1;
	}
	/* What the engine does too: the file registered, plain reads into one buffer. */
	if (io_uring_register_files(&ring, &fd, 1) < 0)
		goto out;
	for (unsigned i = 0; i < w->qd; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

		if (posix_memalign(&iov[i].iov_base, 4096, w->bs))
			goto out;
		iov[i].iov_len = w->bs;
		io_uring_prep_read(sqe, 0, iov[i].iov_base, w->bs, offset_of(w, n++, size));
		sqe->flags |= IOSQE_FIXED_FILE;
		io_uring_sqe_set_data(sqe, &iov[i]);
		inflight++;
	}
	clk.start = now();
	while (inflight) {
		struct io_uring_cqe *cqes[MAXQD];
		unsigned got;

		/* Submit what was prepared and sleep for at least one completion: one call. */
		if (io_uring_submit_and_wait(&ring, 1) < 0)
			goto out;
		got = io_uring_peek_batch_cqe(&ring, cqes, MAXQD);
		for (unsigned i = 0; i < got; i++) {
			if (cqes[i]->res != (int)w->bs) {
				fprintf(stderr, "blk_bench: host read failed: %d\n", cqes[i]->res);
				goto out;
			}
		}
		done += got;
		inflight -= got;
		if (more)
			more = clock_tick(&clk, done);
		for (unsigned i = 0; i < got && more; i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			struct iovec *v = io_uring_cqe_get_data(cqes[i]);

			io_uring_prep_read(sqe, 0, v->iov_base, w->bs, offset_of(w, n++, size));
			sqe->flags |= IOSQE_FIXED_FILE;
			io_uring_sqe_set_data(sqe, v);
			inflight++;
		}
		io_uring_cq_advance(&ring, got);
	}
	clock_result(&clk, res);
	ret = 0;
out:
	io_uring_queue_exit(&ring);
	close(fd);
	/* After a failure reads may still land in the buffers: they are left allocated. */
	for (unsigned i = 0; i < w->qd && !inflight; i++)
		free(iov[i].iov_base);
	return ret;
}

/* ---- khyve: the virtio-blk model through its rings ---- */

static int irq_fd = -1;	/* the irqfd the device made for vector 0 */

static int bench_irqfd_msi(void *opaque, int fd, uint64_t addr, uint32_t data)
{
	(void)opaque;
	(void)addr;
	(void)data;
	/* The driver sleeps in read(), as a vCPU sleeps in the kernel until the irqfd fires:
	 * one system call per interrupt (the device only writes, which never blocks here). */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	__atomic_store_n(&irq_fd, fd, __ATOMIC_RELEASE);
	return 1;
}

static int bench_irqfd_update(void *opaque, int handle, uint64_t addr, uint32_t data)
{
	(void)opaque;
	(void)handle;
	(void)addr;
	(void)data;
	return 0;
}

static int bench_irqfd_remove(void *opaque, int fd, int handle)
{
	(void)opaque;
	(void)fd;
	(void)handle;
	return 0;
}

/* Only irqfd: kicks stay the direct call a vCPU's notify write makes. */
static const struct pci_notifiers bench_notifiers = {
	.irqfd_msi = bench_irqfd_msi, .irqfd_update = bench_irqfd_update,
	.irqfd_remove = bench_irqfd_remove,
};

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
	/* Each slot has its own three descriptors, so no head is reused while in flight. */
	d->q[0].next_desc = (uint16_t)(3 * slot);
	head = drv_add(d, 0, b, 3);
	head_slot[head] = (uint16_t)slot;
}

/* Kick when the device asked for it (avail_event crossed since `old`), as Linux does. */
static void kick_if_wanted(struct drv *d, uint16_t old)
{
	struct drv_q *q = &d->q[0];
	uint16_t event, now_idx = q->avail_idx;

	gm_read(d->vm->gm, q->used + 4 + 8ULL * q->size, &event, 2);
	if ((uint16_t)(now_idx - event - 1) < (uint16_t)(now_idx - old))
		drv_kick(d, 0);
}

/* Sleep until the device's next interrupt (the used_event set by the caller). */
static void wait_irq(void)
{
	int fd = __atomic_load_n(&irq_fd, __ATOMIC_ACQUIRE);
	uint64_t v;

	if (fd < 0) {
		/* Before the first message the device has made no irqfd yet. */
		sched_yield();
		return;
	}
	if (read(fd, &v, sizeof v) != sizeof v)
		sched_yield();	/* interrupted: the caller looks at the ring again */
}

static int khyve_run(const char *path, uint64_t size, const struct workload *w, double secs,
		     struct run *res)
{
	struct clock clk = { .secs = secs };
	uint16_t head_slot[256];
	uint64_t n = 0, done = 0;
	uint16_t seen = 0;
	unsigned inflight = 0;
	char opts[300];
	struct drv d;
	bool more = true;
	int ret = -1;

	snprintf(opts, sizeof opts, "%s,nocache", path);
	irq_fd = -1;
	drv_notifiers = &bench_notifiers;
	if (drv_machine(&d, "virtio-blk", opts) < 0 ||
	    !drv_modern_init(&d, 1ULL << VIRTIO_RING_F_EVENT_IDX, 1))
		return -1;
	/* MSI-X on, entry 0 unmasked, queue 0 on vector 0. */
	drv_cfg_write(&d, d.msix_cap + 2, 2, 0x8000);
	drv_mmio_write(&d, d.pdev->bar[1].addr + 0, 4, 0xfee00000);
	drv_mmio_write(&d, d.pdev->bar[1].addr + 8, 4, 0x41);
	drv_mmio_write(&d, d.pdev->bar[1].addr + 12, 4, 0);
	drv_mmio_write(&d, d.common + 0x16, 2, 0);
	drv_mmio_write(&d, d.common + 0x1a, 2, 0);
	{
		uint16_t ue = 0;

		gm_write(d.vm->gm, d.q[0].avail + 4 + 2ULL * d.q[0].size, &ue, 2);
	}
	for (unsigned i = 0; i < w->qd; i++) {
		post(&d, i, w, offset_of(w, n++, size), head_slot);
		inflight++;
	}
	clk.start = now();
	drv_kick(&d, 0);
	while (inflight) {
		uint16_t used = drv_used_idx(&d, 0), old = d.q[0].avail_idx;

		if (used == seen) {
			/* Ask for an interrupt at the next completion, look once more, sleep. */
			gm_write(d.vm->gm, d.q[0].avail + 4 + 2ULL * d.q[0].size, &seen, 2);
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			if (drv_used_idx(&d, 0) == seen)
				wait_irq();
			continue;
		}
		for (uint16_t i = seen; i != used; i++) {
			uint32_t id, len;
			uint8_t st;

			drv_used_elem(&d, 0, i, &id, &len);
			gm_read(d.vm->gm, STATUS + head_slot[id], &st, 1);
			if (st != 0 || len != w->bs + 1) {
				fprintf(stderr, "blk_bench: device read failed: status %u\n", st);
				goto out;
			}
		}
		done += (uint16_t)(used - seen);
		inflight -= (uint16_t)(used - seen);
		if (more)
			more = clock_tick(&clk, done);
		for (; seen != used; seen++) {
			uint32_t id, len;

			if (!more)
				continue;
			drv_used_elem(&d, 0, seen, &id, &len);
			post(&d, head_slot[id], w, offset_of(w, n++, size), head_slot);
			inflight++;
		}
		if (d.q[0].avail_idx != old)
			kick_if_wanted(&d, old);
	}
	clock_result(&clk, res);
	ret = 0;
out:
	drv_teardown(&d);	/* drains what is still in flight */
	drv_notifiers = NULL;
	return ret;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
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
	double secs = argc > 3 ? atof(argv[3]) : 0.5;
	int rounds = argc > 4 ? atoi(argv[4]) : 12;
	const char *only = argc > 5 ? argv[5] : "";
	uint64_t size = size_mb << 20;

	if (argc < 2 || secs <= 0 || rounds < 1 || rounds > MAXROUNDS ||
	    (*only && strcmp(only, "host") && strcmp(only, "khyve"))) {
		fprintf(stderr, "usage: blk_bench FILE [size_mb [seconds [rounds (1-%d) "
			"[host|khyve]]]]\n", MAXROUNDS);
		return 2;
	}
	if (make_file(argv[1], size) < 0) {
		perror(argv[1]);
		return 1;
	}
	printf("| workload (%llu MiB file, %d rounds of %.2f s a side) | host io_uring O_DIRECT | "
	       "khyve virtio-blk (nocache, io_uring) | ratio: median of rounds (quartiles) | "
	       "CPU us/IO host | CPU us/IO khyve |\n|---|---:|---:|---:|---:|---:|\n",
	       (unsigned long long)size_mb, rounds, secs);
	fflush(stdout);
	for (size_t i = 0; i < sizeof loads / sizeof loads[0]; i++) {
		const struct workload *w = &loads[i];
		double scale = w->random ? 1 : (double)w->bs / 1e6;
		struct run h = { 0 }, k = { 0 }, hr = { 1, 1, 0 }, kr = { 1, 1, 0 };
		double ratios[MAXROUNDS];
		bool failed = false;

		for (int r = 0; r < rounds && !failed; r++) {
			uint64_t seed = 0x9e3779b97f4a7c15ULL + (uint64_t)r * 0x100000001b3ULL;

			/* Same offsets for both; which side goes first alternates. */
			for (int side = 0; side < 2; side++) {
				bool host = (side ^ (r & 1)) == 0;

				rng = seed;
				if (host && strcmp(only, "khyve"))
					failed |= host_run(argv[1], size, w, secs, &hr) < 0;
				else if (!host && strcmp(only, "host"))
					failed |= khyve_run(argv[1], size, w, secs, &kr) < 0;
			}
			if (failed)
				break;
			h.ios += hr.ios, h.secs += hr.secs, h.cpu += hr.cpu;
			k.ios += kr.ios, k.secs += kr.secs, k.cpu += kr.cpu;
			ratios[r] = (kr.ios / kr.secs) / (hr.ios / hr.secs);
		}
		if (failed || h.ios <= 0 || k.ios <= 0) {
			printf("| %s | failed | failed | - | - | - |\n", w->name);
			continue;
		}
		if (*only) {
			struct run *o = strcmp(only, "host") ? &k : &h;

			printf("| %s (%s only) | %.0f | | | %.1f | |\n", w->name, only,
			       o->ios / o->secs * scale, o->cpu / o->ios * 1e6);
			continue;
		}
		qsort(ratios, (size_t)rounds, sizeof ratios[0], cmp_double);
		printf("| %s | %.0f | %.0f | %.2f (%.2f-%.2f) | %.1f | %.1f |\n", w->name,
		       h.ios / h.secs * scale, k.ios / k.secs * scale,
		       rounds % 2 ? ratios[rounds / 2]
				  : (ratios[rounds / 2 - 1] + ratios[rounds / 2]) / 2,
		       ratios[rounds / 4], ratios[rounds - 1 - rounds / 4], h.cpu / h.ios * 1e6,
		       k.cpu / k.ios * 1e6);
		fflush(stdout);
	}
	unlink(argv[1]);
	return 0;
}
