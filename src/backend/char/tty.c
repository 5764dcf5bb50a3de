/*
 * tty.c: the host-tty character backend (bhyve-reference.md §2.5: a path such as a pty the
 * user made with socat, or an nmdm-like device). The path must be a terminal; it is opened
 * non-blocking, put in raw mode and restored on close. Output that the other side does not
 * drain in time is dropped rather than stalling the guest (as bhyve's uart does).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "backend/char/char.h"

struct char_tty {
	struct char_backend be;	/* first: the ops get &be */
	int fd;
	struct termios saved;
};

static long tty_write(struct char_backend *be, const void *buf, size_t len)
{
	struct char_tty *t = (struct char_tty *)be;
	const uint8_t *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(t->fd, p + done, len - done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;	/* EAGAIN: nobody reads the other side; drop */
		}
		done += (size_t)n;
	}
	return (long)len;
}

static void tty_close(struct char_backend *be)
{
	struct char_tty *t = (struct char_tty *)be;

	tcsetattr(t->fd, TCSANOW, &t->saved);
	close(t->fd);
	free(t);
}

static const struct char_backend_ops tty_ops = { .write = tty_write, .close = tty_close };

int char_tty_open(const char *path, struct event_loop *loop, struct char_backend **out,
		  char *err, size_t errlen)
{
	struct char_tty *t;
	struct termios tio;
	int fd, ret;

	*out = NULL;
	fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
		return ret;
	}
	if (!isatty(fd)) {
		snprintf(err, errlen, "'%s' is not a terminal", path);
		close(fd);
		return -ENOTTY;
	}
	t = calloc(1, sizeof *t);
	if (!t || tcgetattr(fd, &t->saved) < 0) {
		ret = t ? -errno : -ENOMEM;
		snprintf(err, errlen, "cannot set up '%s': %s", path, strerror(-ret));
		free(t);
		close(fd);
		return ret;
	}
	tio = t->saved;
	cfmakeraw(&tio);
	tcsetattr(fd, TCSANOW, &tio);
	t->fd = fd;
	char_backend_init(&t->be, &tty_ops, loop, fd);
	char_backend_batch_output(&t->be);	/* else output goes straight out */
	*out = &t->be;
	return 0;
}
