/*
 * stdio.c: the `stdio` character backend: guest output to stdout, stdin to the guest. When
 * stdin is a terminal it is put in raw mode (output post-processing kept, so a lone LF still
 * starts a new line) and restored at exit and on fatal signals, which are then re-raised.
 * SIGTERM is left to the machine (ACPI power button); it calls char_stdio_restore_terminal.
 * Only one stdio backend may exist in a process, as in bhyve. Output is batched (char.h).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "backend/char/char.h"

static bool stdio_in_use;
static struct termios stdio_saved_tio;
static volatile sig_atomic_t stdio_tio_saved;
static bool stdio_handlers_installed;

static const int stdio_fatal_signals[] = {
	SIGINT, SIGHUP, SIGQUIT, SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL,
};

void char_stdio_restore_terminal(void)
{
	int saved = errno;

	if (stdio_tio_saved)
		tcsetattr(STDIN_FILENO, TCSANOW, &stdio_saved_tio);
	errno = saved;
}

static void stdio_atexit(void)
{
	char_stdio_restore_terminal();
}

/* Installed with SA_RESETHAND: restore, then let the default action happen. */
static void stdio_fatal_handler(int sig)
{
	char_stdio_restore_terminal();
	raise(sig);
}

static void stdio_install_handlers(void)
{
	struct sigaction sa;

	if (stdio_handlers_installed)
		return;
	stdio_handlers_installed = true;
	atexit(stdio_atexit);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = stdio_fatal_handler;
	sa.sa_flags = SA_RESETHAND | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof stdio_fatal_signals / sizeof stdio_fatal_signals[0]; i++) {
		struct sigaction old;

		/* Leave alone a signal someone already handles or ignores. */
		if (sigaction(stdio_fatal_signals[i], NULL, &old) == 0 && old.sa_handler != SIG_DFL)
			continue;
		sigaction(stdio_fatal_signals[i], &sa, NULL);
	}
}

static int stdio_make_raw(void)
{
	struct termios tio;

	if (tcgetattr(STDIN_FILENO, &stdio_saved_tio) < 0)
		return -errno;
	stdio_tio_saved = 1;
	stdio_install_handlers();
	tio = stdio_saved_tio;
	cfmakeraw(&tio);
	tio.c_oflag |= OPOST | ONLCR;
	if (tcsetattr(STDIN_FILENO, TCSANOW, &tio) < 0)
		return -errno;
	return 0;
}

static long stdio_write(struct char_backend *be, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(STDOUT_FILENO, p + done, len - done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)n;
	}
	return (long)len;
}

static void stdio_close(struct char_backend *be)
{
	char_stdio_restore_terminal();
	stdio_in_use = false;
	free(be);
}

static const struct char_backend_ops stdio_ops = {
	.write = stdio_write,
	.close = stdio_close,
};

int char_stdio_open(struct event_loop *loop, struct char_backend **out, char *err,
		    size_t errlen)
{
	struct char_backend *be;

	*out = NULL;
	if (stdio_in_use) {
		snprintf(err, errlen, "stdio is already in use by another device");
		return -EBUSY;
	}
	be = malloc(sizeof *be);
	if (!be) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	char_backend_init(be, &stdio_ops, loop, STDIN_FILENO);
	if (isatty(STDIN_FILENO)) {
		int ret = stdio_make_raw();

		if (ret < 0) {
			snprintf(err, errlen, "cannot put the terminal in raw mode: %s",
				 strerror(-ret));
			free(be);
			return ret;
		}
	}
	/* batched output; without it (no loop, no timerfd) each write goes straight out */
	char_backend_batch_output(be);
	stdio_in_use = true;
	*out = be;
	return 0;
}
