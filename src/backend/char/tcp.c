/*
 * tcp.c: the `tcp=ADDR:PORT` character backend (bhyve 14's uart tcp backend): listens on a
 * numeric IPv4 or [IPv6] address, serves one client at a time and closes any other that
 * connects meanwhile; with no client, output is dropped. Output the client does not read in
 * time is dropped too rather than stalling the guest.
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/char/char.h"
#include "util/event_loop.h"

struct char_tcp {
	struct char_backend be;	/* first: the ops get &be */
	int listen_fd;
	pthread_mutex_t client_lock;
	int client_fd;
};

static long tcp_write(struct char_backend *be, const void *buf, size_t len)
{
	struct char_tcp *t = (struct char_tcp *)be;
	long ret = (long)len;

	pthread_mutex_lock(&t->client_lock);
	if (t->client_fd >= 0 && send(t->client_fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		ret = -errno;
	pthread_mutex_unlock(&t->client_lock);
	return ret;
}

static void tcp_drop_client(struct char_tcp *t)
{
	char_backend_set_input(&t->be, -1);
	pthread_mutex_lock(&t->client_lock);
	if (t->client_fd >= 0)
		close(t->client_fd);
	t->client_fd = -1;
	pthread_mutex_unlock(&t->client_lock);
}

static void tcp_input_closed(struct char_backend *be)
{
	tcp_drop_client((struct char_tcp *)be);
}

static void tcp_accept_cb(void *opaque, int fd, uint32_t events)
{
	struct char_tcp *t = opaque;
	int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	bool busy;

	if (c < 0)
		return;
	pthread_mutex_lock(&t->client_lock);
	busy = t->client_fd >= 0;
	if (!busy)
		t->client_fd = c;
	pthread_mutex_unlock(&t->client_lock);
	if (busy)
		close(c);	/* one client at a time */
	else
		char_backend_set_input(&t->be, c);
}

static void tcp_close(struct char_backend *be)
{
	struct char_tcp *t = (struct char_tcp *)be;

	if (be->loop)
		evl_del_fd(be->loop, t->listen_fd);
	close(t->listen_fd);
	if (t->client_fd >= 0)
		close(t->client_fd);
	pthread_mutex_destroy(&t->client_lock);
	free(t);
}

static const struct char_backend_ops tcp_ops = {
	.write = tcp_write,
	.close = tcp_close,
	.input_closed = tcp_input_closed,
};

/* "1.2.3.4:5" or "[::1]:5" into host and port strings. */
static int tcp_split(const char *addr, char *host, size_t hostlen, const char **port)
{
	const char *colon;
	size_t n;

	if (addr[0] == '[') {
		const char *end = strchr(addr, ']');

		if (!end || end[1] != ':')
			return -EINVAL;
		n = (size_t)(end - addr - 1);
		addr++;
		colon = end + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon)
			return -EINVAL;
		n = (size_t)(colon - addr);
	}
	if (n == 0 || n >= hostlen || colon[1] == '\0')
		return -EINVAL;
	memcpy(host, addr, n);
	host[n] = '\0';
	*port = colon + 1;
	return 0;
}

int char_tcp_open(const char *addr, struct event_loop *loop, struct char_backend **out,
		  char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE };
	struct addrinfo *ai = NULL;
	struct char_tcp *t;
	char host[64];
	const char *port;
	int fd = -1, one = 1, ret;

	*out = NULL;
	if (tcp_split(addr, host, sizeof host, &port) < 0 ||
	    getaddrinfo(host, port, &hints, &ai) != 0) {
		snprintf(err, errlen, "bad tcp address '%s' (want IPv4:port or [IPv6]:port)", addr);
		return -EINVAL;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1) < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot listen on '%s': %s", addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return ret;
	}
	freeaddrinfo(ai);
	t = calloc(1, sizeof *t);
	if (!t) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	t->listen_fd = fd;
	t->client_fd = -1;
	pthread_mutex_init(&t->client_lock, NULL);
	char_backend_init(&t->be, &tcp_ops, loop, -1);
	t->be.eof = true;	/* no client yet */
	if (loop) {
		ret = evl_add_fd(loop, fd, EPOLLIN, tcp_accept_cb, t);
		if (ret < 0) {
			snprintf(err, errlen, "cannot watch '%s': %s", addr, strerror(-ret));
			pthread_mutex_destroy(&t->client_lock);
			close(fd);
			free(t);
			return ret;
		}
	}
	*out = &t->be;
	return 0;
}
