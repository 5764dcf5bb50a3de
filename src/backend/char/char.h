/*
 * char.h: character backends behind the UARTs (bhyve-reference.md §2.5): `stdio`, a host
 * terminal path (a pty; nmdm's role on Linux), and `tcp=IPv4:port` / `tcp=[IPv6]:port` (listens,
 * one client at a time). `unix=PATH` is refused as "not supported yet". No backend means
 * output is discarded and nothing arrives.
 *
 * Contract. Threads: char_open/char_close at VM build and teardown; char_write and char_read
 * from any thread (a vCPU thread, typically, holding the device's lock); the rx callback runs
 * on the event-loop thread with no backend lock held, and may call char_read. Flow control is
 * the backend's: it reads the host side only while its small buffer is empty, so a device
 * that takes fewer bytes than are buffered simply calls char_read again when it has room.
 * End of input (EOF, hang-up, an input that cannot be polled such as /dev/null) just stops
 * reception. Ownership: the device owns the backend and closes it.
 * Output: backends that opt in (stdio, host terminals) batch what char_write is given and
 * write it from the event loop CHAR_TX_DELAY_NS after the first byte of a batch, at once when
 * CHAR_TXBUF fills, and at char_flush/char_close: a console costs one host write per batch
 * instead of one per byte, and output is never held longer than the delay. TCP backends
 * write through (a byte sent with no client connected is dropped, not kept for the next).
 */
#ifndef KHYVE_BACKEND_CHAR_H
#define KHYVE_BACKEND_CHAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

struct event_loop;
struct char_backend;

/* Called on the event-loop thread when bytes are waiting: call char_read. */
typedef void (*char_rx_fn)(void *opaque);

struct char_backend_ops {
	/* Write all of buf to the host side (may block briefly); returns len or -errno. */
	long (*write)(struct char_backend *be, const void *buf, size_t len);
	void (*close)(struct char_backend *be);
	/* Optional: the input reached EOF (called on the event-loop thread, no lock held). */
	void (*input_closed)(struct char_backend *be);
};

#define CHAR_RXBUF 256
#define CHAR_TXBUF 4096
#define CHAR_TX_DELAY_NS 1000000	/* 1 ms */

struct char_backend {
	const struct char_backend_ops *ops;
	struct event_loop *loop;
	int in_fd;		/* host input, read by the generic code; -1 for none */
	pthread_mutex_t lock;	/* guards the fields below */
	uint8_t rxbuf[CHAR_RXBUF];
	size_t rx_head, rx_len;
	bool watching, eof;
	char_rx_fn rx;
	void *rx_opaque;
	/* output batching (char_backend_batch_output); tx_timer < 0: write through */
	pthread_mutex_t tx_lock;	/* guards the fields below; held across ops->write */
	int tx_timer;		/* timerfd on the event loop */
	bool tx_armed;
	size_t tx_len;
	uint8_t txbuf[CHAR_TXBUF];
};

/*
 * Open the backend named by `spec` (a lpc.comN.path / pci uart path value). 0, or -errno
 * with a one-line reason in err ("not supported yet: ...", "stdio is already in use").
 */
int char_open(const char *spec, struct event_loop *loop, struct char_backend **out, char *err,
	      size_t errlen);
void char_close(struct char_backend *be);
/* Install the receive callback and start reception (loop may be NULL: no input). */
int char_set_rx(struct char_backend *be, char_rx_fn fn, void *opaque);
/* Take up to len buffered input bytes; returns the count (0 when none). Any thread. */
size_t char_read(struct char_backend *be, void *buf, size_t len);
/* Send bytes to the host side; errors are dropped (a console never stops the guest). */
void char_write(struct char_backend *be, const void *buf, size_t len);
/* Write out what char_write batched (nothing to do for a write-through backend). */
void char_flush(struct char_backend *be);

/* For backend implementations and tests: set up the common part of `be`. */
void char_backend_init(struct char_backend *be, const struct char_backend_ops *ops,
		       struct event_loop *loop, int in_fd);
/*
 * For implementations: batch output on the backend's event loop (see Output above). 0, or
 * -errno when it cannot (no loop, no timerfd): output then goes straight through.
 */
int char_backend_batch_output(struct char_backend *be);
/* For implementations: the host input is readable (called on the event-loop thread). */
void char_backend_input_ready(struct char_backend *be);
/* For implementations: switch the input to fd (-1: none); drops buffered input. */
void char_backend_set_input(struct char_backend *be, int fd);

/* A host terminal opened by path (tty.c). */
int char_tty_open(const char *path, struct event_loop *loop, struct char_backend **out,
		  char *err, size_t errlen);

/* Listening TCP socket, "ADDR:PORT" or "[ADDR6]:PORT", numeric (tcp.c). */
int char_tcp_open(const char *addr, struct event_loop *loop, struct char_backend **out,
		  char *err, size_t errlen);

/* stdio backend (stdio.c). */
int char_stdio_open(struct event_loop *loop, struct char_backend **out, char *err,
		    size_t errlen);
/*
 * Put the terminal back as it was before raw mode. Async-signal-safe and idempotent: the
 * SIGTERM/power-button path and any other exit path may call it.
 */
void char_stdio_restore_terminal(void);

#endif
