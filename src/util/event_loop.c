/*
 * event_loop.c: the event-loop thread's reactor (epoll, level-triggered). Each watched fd has
 * a record; a removed record is parked until the loop has finished the batch of events that
 * may name it, so the loop never calls through freed memory (a callback already running when
 * another thread removes its fd still finishes). An eventfd wakes the loop for evl_stop.
 * Limits: one callback per fd, no timers of its own (devices use timerfd through evl_add_fd).
 */
#include <errno.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/event_loop.h"

#define EVL_MAX_EVENTS 32

struct evl_watch {
	int fd;
	evl_fd_fn fn;
	void *opaque;
	bool dead;
	struct evl_watch *next;
};

struct event_loop {
	int epfd;
	int stopfd;
	pthread_mutex_t lock;
	struct evl_watch *live;
	struct evl_watch *graveyard;
	/* stop flag set by evl_stop; read and cleared by evl_run */
	atomic_int stopping;	/* set by evl_stop from any thread or a signal handler */
};

int evl_create(struct event_loop **out)
{
	struct event_loop *loop = calloc(1, sizeof *loop);
	struct epoll_event ev = { .events = EPOLLIN };
	int err;

	*out = NULL;
	if (!loop)
		return -ENOMEM;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		err = -errno;
		free(loop);
		return err;
	}
	loop->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (loop->stopfd < 0) {
		err = -errno;
		close(loop->epfd);
		free(loop);
		return err;
	}
	ev.data.ptr = NULL;	/* NULL marks the stop eventfd */
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->stopfd, &ev) < 0) {
		err = -errno;
		close(loop->stopfd);
		close(loop->epfd);
		free(loop);
		return err;
	}
	pthread_mutex_init(&loop->lock, NULL);
	*out = loop;
	return 0;
}

static void evl_free_list(struct evl_watch *w)
{
	while (w) {
		struct evl_watch *next = w->next;

		free(w);
		w = next;
	}
}

void evl_destroy(struct event_loop *loop)
{
	if (!loop)
		return;
	close(loop->stopfd);
	close(loop->epfd);
	evl_free_list(loop->live);
	evl_free_list(loop->graveyard);
	pthread_mutex_destroy(&loop->lock);
	free(loop);
}

int evl_add_fd(struct event_loop *loop, int fd, uint32_t epoll_events, evl_fd_fn fn,
	       void *opaque)
{
	struct evl_watch *w;
	struct epoll_event ev;
	int err = 0;

	if (!loop || fd < 0 || !fn)
		return -EINVAL;
	w = calloc(1, sizeof *w);
	if (!w)
		return -ENOMEM;
	w->fd = fd;
	w->fn = fn;
	w->opaque = opaque;
	ev.events = epoll_events;
	ev.data.ptr = w;
	pthread_mutex_lock(&loop->lock);
	for (struct evl_watch *p = loop->live; p; p = p->next) {
		if (p->fd == fd) {
			err = -EEXIST;
			break;
		}
	}
	if (!err && epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		err = -errno;
	if (!err) {
		w->next = loop->live;
		loop->live = w;
	}
	pthread_mutex_unlock(&loop->lock);
	if (err)
		free(w);
	return err;
}

int evl_del_fd(struct event_loop *loop, int fd)
{
	struct evl_watch **pp;
	int err = -ENOENT;

	if (!loop)
		return -EINVAL;
	pthread_mutex_lock(&loop->lock);
	for (pp = &loop->live; *pp; pp = &(*pp)->next) {
		struct evl_watch *w = *pp;

		if (w->fd != fd)
			continue;
		/* The fd may already be closed by its owner: EBADF/ENOENT are fine. */
		epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
		w->dead = true;
		*pp = w->next;
		w->next = loop->graveyard;
		loop->graveyard = w;
		err = 0;
		break;
	}
	pthread_mutex_unlock(&loop->lock);
	return err;
}

int evl_run(struct event_loop *loop)
{
	struct epoll_event events[EVL_MAX_EVENTS];

	while (!loop->stopping) {
		struct evl_watch *old;
		int n;

		pthread_mutex_lock(&loop->lock);
		old = loop->graveyard;
		loop->graveyard = NULL;
		pthread_mutex_unlock(&loop->lock);
		evl_free_list(old);
		n = epoll_wait(loop->epfd, events, EVL_MAX_EVENTS, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < n && !loop->stopping; i++) {
			struct evl_watch *w = events[i].data.ptr;
			bool dead;

			if (!w)
				continue;
			pthread_mutex_lock(&loop->lock);
			dead = w->dead;
			pthread_mutex_unlock(&loop->lock);
			if (!dead)
				w->fn(w->opaque, w->fd, events[i].events);
		}
	}
	{
		uint64_t v;

		/* Drain, so that a later evl_run on the same loop waits again. */
		if (read(loop->stopfd, &v, sizeof v) < 0 && errno != EAGAIN)
			return -errno;
	}
	loop->stopping = 0;
	return 0;
}

void evl_stop(struct event_loop *loop)
{
	uint64_t one = 1;
	int saved = errno;

	loop->stopping = 1;
	if (write(loop->stopfd, &one, sizeof one) < 0) {
		/* the counter is already non-zero: the loop will wake anyway */
	}
	errno = saved;
}
