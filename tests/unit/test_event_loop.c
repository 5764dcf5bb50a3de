/* test_event_loop.c: the epoll reactor: dispatch, add/del from other threads and from
 * callbacks, stop from any thread, running again after a stop. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "unit.h"
#include "util/event_loop.h"

struct pipe_ctx {
	struct event_loop *loop;
	int fds[2];
	atomic_int hits;
	pthread_t thread;
	bool del_self, stop_after;
};

static void pipe_cb(void *opaque, int fd, uint32_t events)
{
	struct pipe_ctx *c = opaque;
	char buf[16];

	if (read(fd, buf, sizeof buf) <= 0)
		return;
	c->thread = pthread_self();
	atomic_fetch_add(&c->hits, 1);
	if (c->del_self)
		evl_del_fd(c->loop, fd);
	if (c->stop_after)
		evl_stop(c->loop);
}

static void *run_thread(void *opaque)
{
	return (void *)(long)evl_run(opaque);
}

static void wait_hits(struct pipe_ctx *c, int n)
{
	for (int i = 0; i < 2000 && atomic_load(&c->hits) < n; i++)
		usleep(1000);
}

TEST(evl_dispatches_on_loop_thread)
{
	struct event_loop *loop;
	struct pipe_ctx c = { 0 };
	pthread_t t;
	void *ret;

	CHECK(evl_create(&loop) == 0);
	c.loop = loop;
	CHECK(pipe(c.fds) == 0);
	CHECK(evl_add_fd(loop, c.fds[0], EPOLLIN, pipe_cb, &c) == 0);
	CHECK(evl_add_fd(loop, c.fds[0], EPOLLIN, pipe_cb, &c) == -EEXIST);
	CHECK(pthread_create(&t, NULL, run_thread, loop) == 0);
	CHECK(write(c.fds[1], "x", 1) == 1);
	wait_hits(&c, 1);
	CHECK_EQ_U64(atomic_load(&c.hits), 1);
	CHECK(pthread_equal(c.thread, t));
	CHECK(write(c.fds[1], "y", 1) == 1);
	wait_hits(&c, 2);
	CHECK_EQ_U64(atomic_load(&c.hits), 2);
	CHECK(evl_del_fd(loop, c.fds[0]) == 0);
	CHECK(evl_del_fd(loop, c.fds[0]) == -ENOENT);
	CHECK(write(c.fds[1], "z", 1) == 1);
	usleep(20000);
	CHECK_EQ_U64(atomic_load(&c.hits), 2);
	evl_stop(loop);
	CHECK(pthread_join(t, &ret) == 0);
	CHECK(ret == NULL);
	close(c.fds[0]);
	close(c.fds[1]);
	evl_destroy(loop);
}

TEST(evl_add_while_running_and_del_in_callback)
{
	struct event_loop *loop;
	struct pipe_ctx a = { 0 }, b = { 0 };
	pthread_t t;

	CHECK(evl_create(&loop) == 0);
	a.loop = b.loop = loop;
	CHECK(pipe(a.fds) == 0 && pipe(b.fds) == 0);
	CHECK(pthread_create(&t, NULL, run_thread, loop) == 0);
	usleep(10000);
	a.del_self = true;
	CHECK(evl_add_fd(loop, a.fds[0], EPOLLIN, pipe_cb, &a) == 0);
	CHECK(evl_add_fd(loop, b.fds[0], EPOLLIN, pipe_cb, &b) == 0);
	CHECK(write(a.fds[1], "1", 1) == 1);
	CHECK(write(b.fds[1], "1", 1) == 1);
	wait_hits(&a, 1);
	wait_hits(&b, 1);
	CHECK(write(a.fds[1], "2", 1) == 1);
	CHECK(write(b.fds[1], "2", 1) == 1);
	wait_hits(&b, 2);
	usleep(20000);
	CHECK_EQ_U64(atomic_load(&a.hits), 1);	/* removed itself */
	CHECK_EQ_U64(atomic_load(&b.hits), 2);
	/* Re-adding a removed fd works. */
	CHECK(evl_add_fd(loop, a.fds[0], EPOLLIN, pipe_cb, &a) == 0);
	wait_hits(&a, 2);
	CHECK_EQ_U64(atomic_load(&a.hits), 2);
	evl_stop(loop);
	pthread_join(t, NULL);
	evl_destroy(loop);
	close(a.fds[0]);
	close(a.fds[1]);
	close(b.fds[0]);
	close(b.fds[1]);
}

TEST(evl_stop_before_run_and_run_again)
{
	struct event_loop *loop;
	struct pipe_ctx c = { 0 };

	CHECK(evl_create(&loop) == 0);
	evl_stop(loop);
	CHECK(evl_run(loop) == 0);	/* returns at once */
	c.loop = loop;
	c.stop_after = true;
	CHECK(pipe(c.fds) == 0);
	CHECK(evl_add_fd(loop, c.fds[0], EPOLLIN, pipe_cb, &c) == 0);
	CHECK(write(c.fds[1], "q", 1) == 1);
	CHECK(evl_run(loop) == 0);	/* the callback stops it */
	CHECK_EQ_U64(atomic_load(&c.hits), 1);
	CHECK(write(c.fds[1], "r", 1) == 1);
	CHECK(evl_run(loop) == 0);
	CHECK_EQ_U64(atomic_load(&c.hits), 2);
	evl_destroy(loop);
	close(c.fds[0]);
	close(c.fds[1]);
}

TEST(evl_bad_arguments)
{
	struct event_loop *loop;

	CHECK(evl_create(&loop) == 0);
	CHECK(evl_add_fd(loop, -1, EPOLLIN, pipe_cb, NULL) == -EINVAL);
	CHECK(evl_add_fd(loop, 0, EPOLLIN, NULL, NULL) == -EINVAL);
	CHECK(evl_del_fd(loop, 12345) == -ENOENT);
	evl_destroy(loop);
}
