/*
 * test_virtio_console.c: the multiport virtio console through a test driver, with the event
 * loop running on its own thread: DEVICE_READY -> DEVICE_ADD, PORT_READY -> PORT_NAME, a
 * client connecting -> PORT_OPEN, data from the client socket into the port's receive queue,
 * guest output to the client, a second client turned away, and the client leaving.
 */
#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "fake_vm.h"
#include "unit.h"
#include "util/event_loop.h"
#include "virtio_drv.h"

#define CTRL_BUF 0x300000ULL	/* control receive buffers, 256 bytes apart */
#define RX_BUF 0x380000ULL
#define TX_BUF 0x390000ULL
#define MSG_OUT 0x3a0000ULL

static void *loop_thread(void *arg)
{
	evl_run(arg);
	return NULL;
}

static void ctrl_out(struct drv *d, unsigned slot, uint32_t id, uint16_t event, uint16_t value)
{
	uint8_t m[8];
	struct drv_buf b = { MSG_OUT + 16ULL * slot, 8, false };

	memcpy(m, &id, 4);
	memcpy(m + 4, &event, 2);
	memcpy(m + 6, &value, 2);
	gm_write(d->vm->gm, b.gpa, m, 8);
	drv_add(d, 3, &b, 1);
	drv_kick(d, 3);
}

/* The n-th control message the device sent: event, value, and the name after it. */
static void ctrl_in(struct drv *d, uint16_t n, uint32_t *id, uint16_t *event, uint16_t *value,
		    char *name, size_t namelen)
{
	uint32_t head, len;
	uint8_t m[256] = { 0 };

	drv_used_elem(d, 2, n, &head, &len);
	gm_read(d->vm->gm, CTRL_BUF + 256ULL * head, m, sizeof m);
	memcpy(id, m, 4);
	memcpy(event, m + 4, 2);
	memcpy(value, m + 6, 2);
	if (name) {
		size_t k = len > 8 ? len - 8 : 0;

		if (k >= namelen)
			k = namelen - 1;
		memcpy(name, m + 8, k);
		name[k] = '\0';
	}
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

TEST(vcon_multiport_data_both_ways)
{
	struct event_loop *loop;
	pthread_t th;
	struct drv d;
	char sock[108], opts[200], name[64];
	uint32_t id, head, len;
	uint16_t ev, val;
	int c, c2;
	char buf[16] = { 0 };

	snprintf(sock, sizeof sock, "/tmp/khyve-vcon-%d.sock", (int)getpid());
	snprintf(opts, sizeof opts, "org.test.port0=%s", sock);
	CHECK_EQ_U64(evl_create(&loop), 0);
	pthread_create(&th, NULL, loop_thread, loop);
	drv_loop = loop;
	CHECK_EQ_U64(drv_machine(&d, "virtio-console", opts), 0);
	CHECK_EQ_U64(drv_cfg_read(&d, 2, 2), 0x1003);
	CHECK_EQ_U64(drv_cfg_read(&d, 0x2e, 2), 3);
	CHECK(drv_modern_init(&d, 1u << 1, 4));
	CHECK_EQ_U64(drv_devcfg(&d, 4, 4), 1);	/* max_nr_ports */
	for (unsigned i = 0; i < 8; i++) {
		struct drv_buf b = { CTRL_BUF + 256ULL * i, 256, true };

		drv_add(&d, 2, &b, 1);
	}
	{
		struct drv_buf b = { RX_BUF, 16, true };

		drv_add(&d, 0, &b, 1);
	}
	ctrl_out(&d, 0, 0, 0 /* DEVICE_READY */, 1);
	CHECK(drv_wait_used(&d, 2, 1));
	ctrl_in(&d, 0, &id, &ev, &val, NULL, 0);
	CHECK_EQ_U64(ev, 1);	/* DEVICE_ADD */
	CHECK_EQ_U64(id, 0);
	ctrl_out(&d, 1, 0, 3 /* PORT_READY */, 1);
	CHECK(drv_wait_used(&d, 2, 2));
	ctrl_in(&d, 1, &id, &ev, &val, name, sizeof name);
	CHECK_EQ_U64(ev, 7);	/* PORT_NAME */
	CHECK_STR(name, "org.test.port0");
	/* A client connects: PORT_OPEN 1. A second client is turned away. */
	c = connect_to(sock);
	CHECK(c >= 0);
	CHECK(drv_wait_used(&d, 2, 3));
	ctrl_in(&d, 2, &id, &ev, &val, NULL, 0);
	CHECK_EQ_U64(ev, 6);
	CHECK_EQ_U64(val, 1);
	c2 = connect_to(sock);
	if (c2 >= 0) {
		CHECK(recv(c2, buf, 1, 0) == 0);	/* closed by khyve */
		close(c2);
	}
	/* Client -> guest. */
	CHECK(write(c, "hello", 5) == 5);
	CHECK(drv_wait_used(&d, 0, 1));
	drv_used_elem(&d, 0, 0, &head, &len);
	CHECK_EQ_U64(len, 5);
	CHECK(memcmp(gm_ptr(d.vm->gm, RX_BUF, 5, false), "hello", 5) == 0);
	/* Guest -> client. */
	{
		struct drv_buf b = { TX_BUF, 5, false };

		gm_write(d.vm->gm, TX_BUF, "world", 5);
		drv_add(&d, 1, &b, 1);
		drv_kick(&d, 1);
		CHECK(drv_wait_used(&d, 1, 1));
		memset(buf, 0, sizeof buf);
		CHECK(recv(c, buf, 5, MSG_WAITALL) == 5);
		CHECK_STR(buf, "world");
	}
	/* More client data waits for a buffer, then arrives when one is added. */
	CHECK(write(c, "again", 5) == 5);
	usleep(50000);
	CHECK_EQ_U64(drv_used_idx(&d, 0), 1);
	{
		struct drv_buf b = { RX_BUF + 64, 16, true };

		drv_add(&d, 0, &b, 1);
		drv_kick(&d, 0);
		CHECK(drv_wait_used(&d, 0, 2));
		CHECK(memcmp(gm_ptr(d.vm->gm, RX_BUF + 64, 5, false), "again", 5) == 0);
	}
	/* The client leaves: PORT_OPEN 0 (the port needs a receive buffer to see the EOF). */
	close(c);
	{
		struct drv_buf b = { RX_BUF + 128, 16, true };

		drv_add(&d, 0, &b, 1);
		drv_kick(&d, 0);
	}
	CHECK(drv_wait_used(&d, 2, 4));
	ctrl_in(&d, 3, &id, &ev, &val, NULL, 0);
	CHECK_EQ_U64(ev, 6);
	CHECK_EQ_U64(val, 0);
	evl_stop(loop);
	pthread_join(th, NULL);
	drv_teardown(&d);
	evl_destroy(loop);
	drv_loop = NULL;
	unlink(sock);
}

TEST(vcon_bad_options)
{
	struct drv d;

	CHECK(drv_machine(&d, "virtio-console", "noequals") < 0);
	drv_teardown(&d);
	CHECK(drv_machine(&d, "virtio-console", "a=/nonexistent/dir/sock") < 0);
	drv_teardown(&d);
}
