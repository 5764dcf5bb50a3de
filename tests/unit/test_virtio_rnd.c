/*
 * test_virtio_rnd.c: virtio-rnd through a test driver: entropy in the guest's buffers with
 * the used length, and the rate limit: a guest asking for far more than the burst gets the
 * burst at once and the rest only as the bucket refills (timerfd on the event loop).
 */
#include <pthread.h>

#include "fake_vm.h"
#include "unit.h"
#include "util/event_loop.h"
#include "virtio_drv.h"
#include "dev/virtio_rnd.h"

#define BUF 0x400000ULL

static void *loop_thread(void *arg)
{
	evl_run(arg);
	return NULL;
}

TEST(vrnd_entropy_and_rate_limit)
{
	struct event_loop *loop;
	pthread_t th;
	struct drv d;
	uint32_t head, len;
	uint8_t zero[64] = { 0 };

	CHECK_EQ_U64(evl_create(&loop), 0);
	pthread_create(&th, NULL, loop_thread, loop);
	drv_loop = loop;
	CHECK_EQ_U64(drv_machine(&d, "virtio-rnd", NULL), 0);
	CHECK_EQ_U64(drv_cfg_read(&d, 2, 2), 0x1005);
	CHECK_EQ_U64(drv_cfg_read(&d, 0x2e, 2), 4);
	CHECK(drv_modern_init(&d, 0, 1));
	{
		struct drv_buf b = { BUF, 64, true };

		drv_add(&d, 0, &b, 1);
		drv_kick(&d, 0);
		CHECK(drv_wait_used(&d, 0, 1));
		drv_used_elem(&d, 0, 0, &head, &len);
		CHECK_EQ_U64(len, 64);
		CHECK(memcmp(gm_ptr(d.vm->gm, BUF, 64, false), zero, 64) != 0);
	}
	/* 32 buffers of 4 KiB (128 KiB): only about the burst (16 KiB) comes at once. */
	for (unsigned i = 0; i < 32; i++) {
		struct drv_buf b = { BUF + 4096ULL * i, 4096, true };

		drv_add(&d, 0, &b, 1);
	}
	drv_kick(&d, 0);
	CHECK(virtio_rnd_delivered(d.pdev) <= VIRTIO_RND_BURST + 1024);
	/* The bucket refills at 64 KiB/s: after 0.25 s roughly 16 KiB more. */
	usleep(250000);
	{
		uint64_t got = virtio_rnd_delivered(d.pdev);

		CHECK(got > VIRTIO_RND_BURST);
		CHECK(got < VIRTIO_RND_BURST + VIRTIO_RND_RATE / 2);
	}
	evl_stop(loop);
	pthread_join(th, NULL);
	drv_teardown(&d);
	evl_destroy(loop);
	drv_loop = NULL;
}
