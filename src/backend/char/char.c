/*
 * char.c: the part every character backend shares: picking the backend from its spec string,
 * and buffered, flow-controlled reception from the backend's input fd on the event loop
 * (the fd is watched only while the buffer is empty). Contract in char.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "backend/char/char.h"
#include "util/event_loop.h"

void char_backend_init(struct char_backend *be, const struct char_backend_ops *ops,
		       struct event_loop *loop, int in_fd)
{
	memset(be, 0, sizeof *be);
	be->ops = ops;
	be->loop = loop;
	be->in_fd = in_fd;
	pthread_mutex_init(&be->lock, NULL);
}

static void char_evl_cb(void *opaque, int fd, uint32_t events)
{
	char_backend_input_ready(opaque);
}

/* Called with be->lock held. */
static void char_watch_locked(struct char_backend *be, bool on)
{
	if (!be->loop || be->in_fd < 0 || on == be->watching)
		return;
	if (on) {
		int err = evl_add_fd(be->loop, be->in_fd, EPOLLIN, char_evl_cb, be);

		if (err == 0)
			be->watching = true;
		else
			be->eof = true;	/* not pollable (a regular file, /dev/null): no input */
	} else {
		evl_del_fd(be->loop, be->in_fd);
		be->watching = false;
	}
}

void char_backend_input_ready(struct char_backend *be)
{
	char_rx_fn rx;
	void *opaque;
	bool have;

	pthread_mutex_lock(&be->lock);
	if (be->rx_len == 0 && !be->eof && be->in_fd >= 0) {
		ssize_t n = read(be->in_fd, be->rxbuf, sizeof be->rxbuf);

		if (n > 0) {
			be->rx_head = 0;
			be->rx_len = (size_t)n;
		} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			be->eof = true;
		}
	}
	have = be->rx_len > 0;
	rx = be->rx;
	opaque = be->rx_opaque;
	pthread_mutex_unlock(&be->lock);

	if (have && rx)
		rx(opaque);

	pthread_mutex_lock(&be->lock);
	if (be->rx_len > 0 || be->eof)
		char_watch_locked(be, false);
	have = be->eof && be->in_fd >= 0;
	pthread_mutex_unlock(&be->lock);
	if (have && be->ops->input_closed)
		be->ops->input_closed(be);
}

void char_backend_set_input(struct char_backend *be, int fd)
{
	pthread_mutex_lock(&be->lock);
	char_watch_locked(be, false);
	be->in_fd = fd;
	be->rx_len = 0;
	be->eof = fd < 0;
	if (fd >= 0 && be->rx)
		char_watch_locked(be, true);
	pthread_mutex_unlock(&be->lock);
}

int char_set_rx(struct char_backend *be, char_rx_fn fn, void *opaque)
{
	pthread_mutex_lock(&be->lock);
	be->rx = fn;
	be->rx_opaque = opaque;
	if (fn && be->rx_len == 0 && !be->eof)
		char_watch_locked(be, true);
	pthread_mutex_unlock(&be->lock);
	return 0;
}

size_t char_read(struct char_backend *be, void *buf, size_t len)
{
	size_t n;

	if (!be)
		return 0;
	pthread_mutex_lock(&be->lock);
	n = be->rx_len < len ? be->rx_len : len;
	memcpy(buf, be->rxbuf + be->rx_head, n);
	be->rx_head += n;
	be->rx_len -= n;
	if (be->rx_len == 0 && !be->eof && be->rx)
		char_watch_locked(be, true);
	pthread_mutex_unlock(&be->lock);
	return n;
}

void char_write(struct char_backend *be, const void *buf, size_t len)
{
	if (be && len)
		be->ops->write(be, buf, len);
}

void char_close(struct char_backend *be)
{
	if (!be)
		return;
	pthread_mutex_lock(&be->lock);
	char_watch_locked(be, false);
	pthread_mutex_unlock(&be->lock);
	pthread_mutex_destroy(&be->lock);
	be->ops->close(be);
}

int char_open(const char *spec, struct event_loop *loop, struct char_backend **out, char *err,
	      size_t errlen)
{
	*out = NULL;
	if (!spec || !*spec) {
		snprintf(err, errlen, "empty character backend");
		return -EINVAL;
	}
	if (strcmp(spec, "stdio") == 0)
		return char_stdio_open(loop, out, err, errlen);
	if (strncmp(spec, "tcp=", 4) == 0)
		return char_tcp_open(spec + 4, loop, out, err, errlen);
	if (strncmp(spec, "unix=", 5) == 0) {
		snprintf(err, errlen, "not supported yet: unix socket console backend '%s'", spec);
		return -ENOTSUP;
	}
	if (spec[0] == '/')
		return char_tty_open(spec, loop, out, err, errlen);
	snprintf(err, errlen, "unknown character backend '%s'", spec);
	return -EINVAL;
}
