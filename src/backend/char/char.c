/*
 * char.c: the part every character backend shares: picking the backend from its spec string,
 * and buffered, flow-controlled reception from the backend's input fd on the event loop
 * (the fd is watched only while the buffer is empty), and batched output flushed by a timerfd
 * on the event loop. Contract in char.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
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
	be->tx_timer = -1;
	pthread_mutex_init(&be->lock, NULL);
	pthread_mutex_init(&be->tx_lock, NULL);
}

/* tx_lock held. */
static void char_tx_flush_locked(struct char_backend *be)
{
	if (be->tx_len) {
		be->ops->write(be, be->txbuf, be->tx_len);
		be->tx_len = 0;
	}
}

/* The batch's delay is over (event-loop thread). */
static void char_tx_timer_cb(void *opaque, int fd, uint32_t events)
{
	struct char_backend *be = opaque;
	uint64_t expirations;

	if (read(fd, &expirations, sizeof expirations) < 0)
		return;	/* EAGAIN: already handled */
	pthread_mutex_lock(&be->tx_lock);
	be->tx_armed = false;
	char_tx_flush_locked(be);
	pthread_mutex_unlock(&be->tx_lock);
}

int char_backend_batch_output(struct char_backend *be)
{
	int fd, err;

	if (!be->loop)
		return -EINVAL;
	fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = evl_add_fd(be->loop, fd, EPOLLIN, char_tx_timer_cb, be);
	if (err) {
		close(fd);
		return err;
	}
	be->tx_timer = fd;
	return 0;
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
	const struct itimerspec delay = { .it_value = { .tv_nsec = CHAR_TX_DELAY_NS } };

	if (!be || !len)
		return;
	if (be->tx_timer < 0) {
		be->ops->write(be, buf, len);
		return;
	}
	pthread_mutex_lock(&be->tx_lock);
	if (be->tx_len + len > CHAR_TXBUF)
		char_tx_flush_locked(be);
	if (len >= CHAR_TXBUF) {
		be->ops->write(be, buf, len);
	} else {
		memcpy(be->txbuf + be->tx_len, buf, len);
		be->tx_len += len;
		if (!be->tx_armed) {
			if (timerfd_settime(be->tx_timer, 0, &delay, NULL) == 0)
				be->tx_armed = true;
			else
				char_tx_flush_locked(be);
		}
	}
	pthread_mutex_unlock(&be->tx_lock);
}

static void char_flush_all(struct char_backend *be)
{
	pthread_mutex_lock(&be->tx_lock);
	char_tx_flush_locked(be);
	pthread_mutex_unlock(&be->tx_lock);
}

void char_flush(struct char_backend *be)
{
	if (be && be->tx_timer >= 0)
		char_flush_all(be);
}

void char_close(struct char_backend *be)
{
	if (!be)
		return;
	pthread_mutex_lock(&be->lock);
	char_watch_locked(be, false);
	pthread_mutex_unlock(&be->lock);
	if (be->tx_timer >= 0) {
		evl_del_fd(be->loop, be->tx_timer);
		close(be->tx_timer);
		be->tx_timer = -1;
		char_flush_all(be);
	}
	pthread_mutex_destroy(&be->lock);
	pthread_mutex_destroy(&be->tx_lock);
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
