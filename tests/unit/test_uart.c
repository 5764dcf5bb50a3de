/*
 * test_uart.c: the 16550A model through its register interface, with a fake character
 * backend (a pipe for input, a buffer for output): reset values, DLAB, FIFO and trigger
 * levels, IIR priorities, THRE interrupt rules, OUT2 gating, loopback, flow control, EOF;
 * char backends: output batched on the event loop, flushed by char_flush and char_close.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/char/char.h"
#include "util/event_loop.h"
#include "dev/uart.h"
#include "unit.h"

struct fake_be {
	struct char_backend be;	/* first: the ops get &be */
	char out[4096];
	size_t out_len;
	int wfd;		/* write end of the input pipe */
	bool closed;
};

static long fake_write(struct char_backend *be, const void *buf, size_t len)
{
	struct fake_be *f = (struct fake_be *)be;

	if (f->out_len + len <= sizeof f->out) {
		memcpy(f->out + f->out_len, buf, len);
		f->out_len += len;
	}
	return (long)len;
}

static void fake_close(struct char_backend *be)
{
	((struct fake_be *)be)->closed = true;
}

static const struct char_backend_ops fake_ops = { .write = fake_write, .close = fake_close };

struct irq_rec {
	bool level;
	int raises;
};

static void rec_irq(void *opaque, bool level)
{
	struct irq_rec *r = opaque;

	if (level && !r->level)
		r->raises++;
	r->level = level;
}

struct ut {
	struct uart *u;
	struct fake_be *f;
	struct irq_rec irq;
	int rfd;
};

static void ut_setup(struct ut *t)
{
	int fds[2];

	memset(t, 0, sizeof *t);
	t->f = calloc(1, sizeof *t->f);
	if (pipe(fds) != 0)
		abort();
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	t->rfd = fds[0];
	t->f->wfd = fds[1];
	char_backend_init(&t->f->be, &fake_ops, NULL, fds[0]);
	CHECK(uart_create(rec_irq, &t->irq, &t->f->be, &t->u) == 0);
}

static void ut_teardown(struct ut *t)
{
	uart_destroy(t->u);
	CHECK(t->f->closed);
	if (t->f->wfd >= 0)
		close(t->f->wfd);
	close(t->rfd);
	free(t->f);
}

static uint8_t rd(struct ut *t, unsigned reg)
{
	uint64_t v = 0;

	uart_io(t->u, reg, 1, false, &v);
	return (uint8_t)v;
}

static void wr(struct ut *t, unsigned reg, uint8_t val)
{
	uint64_t v = val;

	uart_io(t->u, reg, 1, true, &v);
}

/* Host bytes arrive: what the event loop would do when the pipe is readable. */
static void feed(struct ut *t, const char *s)
{
	CHECK(write(t->f->wfd, s, strlen(s)) == (ssize_t)strlen(s));
	char_backend_input_ready(&t->f->be);
}

TEST(uart_reset_values)
{
	struct ut t;

	ut_setup(&t);
	CHECK_EQ_U64(rd(&t, 1), 0x00);	/* IER */
	CHECK_EQ_U64(rd(&t, 2), 0x01);	/* IIR: nothing pending, no FIFO */
	CHECK_EQ_U64(rd(&t, 3), 0x00);	/* LCR */
	CHECK_EQ_U64(rd(&t, 4), 0x00);	/* MCR */
	CHECK_EQ_U64(rd(&t, 5), 0x60);	/* LSR: THRE, TEMT */
	CHECK_EQ_U64(rd(&t, 6) & 0xb0, 0xb0);	/* DCD, DSR, CTS */
	wr(&t, 7, 0x5a);
	CHECK_EQ_U64(rd(&t, 7), 0x5a);	/* SCR */
	CHECK(!t.irq.level);
	ut_teardown(&t);
}

TEST(uart_dlab_divisor_latch)
{
	struct ut t;

	ut_setup(&t);
	wr(&t, 3, 0x80);
	CHECK_EQ_U64(rd(&t, 0), 0x01);	/* 115200 baud after reset */
	CHECK_EQ_U64(rd(&t, 1), 0x00);
	wr(&t, 0, 0x0c);
	wr(&t, 1, 0x00);
	CHECK_EQ_U64(rd(&t, 0), 0x0c);
	wr(&t, 3, 0x03);	/* 8N1, DLAB off */
	CHECK_EQ_U64(rd(&t, 3), 0x03);
	wr(&t, 1, 0x00);
	CHECK_EQ_U64(rd(&t, 1), 0x00);	/* IER again, not DLM */
	wr(&t, 0, 'A');		/* THR, not DLL */
	CHECK_EQ_U64(t.f->out_len, 1);
	CHECK(t.f->out[0] == 'A');
	wr(&t, 3, 0x83);
	CHECK_EQ_U64(rd(&t, 0), 0x0c);	/* divisor kept */
	ut_teardown(&t);
}

TEST(uart_tx_goes_to_backend)
{
	struct ut t;

	ut_setup(&t);
	for (const char *p = "hello\r\n"; *p; p++)
		wr(&t, 0, (uint8_t)*p);
	CHECK_EQ_U64(t.f->out_len, 7);
	CHECK(memcmp(t.f->out, "hello\r\n", 7) == 0);
	CHECK_EQ_U64(rd(&t, 5) & 0x60, 0x60);
	ut_teardown(&t);
}

TEST(uart_thre_interrupt_rules)
{
	struct ut t;

	ut_setup(&t);
	wr(&t, 4, 0x08);	/* OUT2 */
	CHECK(!t.irq.level);
	wr(&t, 1, 0x02);	/* enable ETBEI with THR empty: THRE interrupt at once */
	CHECK(t.irq.level);
	CHECK_EQ_U64(rd(&t, 2), 0x02);	/* reading IIR with THRE as the source clears it */
	CHECK(!t.irq.level);
	CHECK_EQ_U64(rd(&t, 2), 0x01);
	wr(&t, 0, 'x');		/* THR empties again at once */
	CHECK(t.irq.level);
	CHECK_EQ_U64(rd(&t, 2), 0x02);
	CHECK(!t.irq.level);
	/* Re-enabling ETBEI raises it again (Linux's THRE test relies on this). */
	wr(&t, 1, 0x00);
	wr(&t, 1, 0x02);
	CHECK_EQ_U64(rd(&t, 2), 0x02);
	/* Writing ETBEI while already set is not an edge. */
	wr(&t, 1, 0x02);
	CHECK_EQ_U64(rd(&t, 2), 0x01);
	/* Disabled while pending: no interrupt, but it returns when enabled again. */
	wr(&t, 0, 'y');
	wr(&t, 1, 0x00);
	CHECK(!t.irq.level);
	CHECK_EQ_U64(rd(&t, 2), 0x01);
	ut_teardown(&t);
}

TEST(uart_out2_gates_the_line)
{
	struct ut t;

	ut_setup(&t);
	wr(&t, 1, 0x02);
	CHECK(!t.irq.level);	/* pending, but OUT2 is off */
	wr(&t, 4, 0x08);
	CHECK(t.irq.level);
	wr(&t, 4, 0x00);
	CHECK(!t.irq.level);
	CHECK_EQ_U64(rd(&t, 2), 0x02);	/* still pending inside the UART */
	ut_teardown(&t);
}

TEST(uart_rx_from_backend_no_fifo)
{
	struct ut t;

	ut_setup(&t);
	wr(&t, 4, 0x08);
	wr(&t, 1, 0x01);	/* ERBFI */
	feed(&t, "ab");
	CHECK_EQ_U64(rd(&t, 5) & 0x01, 0x01);	/* DR */
	CHECK(t.irq.level);
	CHECK_EQ_U64(rd(&t, 2), 0x04);	/* RDA */
	CHECK_EQ_U64(rd(&t, 0), 'a');	/* holding register: one byte at a time */
	CHECK_EQ_U64(rd(&t, 0), 'b');	/* the next came in when there was room */
	CHECK_EQ_U64(rd(&t, 5) & 0x01, 0x00);
	CHECK(!t.irq.level);
	CHECK_EQ_U64(rd(&t, 5) & 0x02, 0x00);	/* no overrun: the backend waits */
	ut_teardown(&t);
}

TEST(uart_fifo_trigger_and_timeout)
{
	struct ut t;
	char buf[64];

	ut_setup(&t);
	wr(&t, 4, 0x08);
	wr(&t, 2, 0x81);	/* FIFO on, trigger 8 */
	CHECK_EQ_U64(rd(&t, 2), 0xc1);
	wr(&t, 1, 0x01);
	feed(&t, "abc");
	CHECK_EQ_U64(rd(&t, 2), 0xcc);	/* below the trigger: character timeout */
	CHECK(t.irq.level);
	feed(&t, "defgh");
	CHECK_EQ_U64(rd(&t, 2), 0xc4);	/* at the trigger: RDA */
	for (int i = 0; i < 8; i++)
		buf[i] = (char)rd(&t, 0);
	CHECK(memcmp(buf, "abcdefgh", 8) == 0);
	CHECK_EQ_U64(rd(&t, 2), 0xc1);
	CHECK(!t.irq.level);
	/* Receiver FIFO reset drops what is queued. */
	feed(&t, "zz");
	wr(&t, 2, 0x83);
	CHECK_EQ_U64(rd(&t, 5) & 0x01, 0x00);
	/* Turning the FIFO off goes back to a one-byte holding register. */
	wr(&t, 2, 0x00);
	CHECK_EQ_U64(rd(&t, 2), 0x01);
	ut_teardown(&t);
}

TEST(uart_flow_control_keeps_order)
{
	struct ut t;
	char in[41], got[41];

	ut_setup(&t);
	wr(&t, 2, 0x01);
	for (int i = 0; i < 40; i++)
		in[i] = (char)('A' + i % 26);
	in[40] = '\0';
	feed(&t, in);
	for (int i = 0; i < 40; i++) {
		CHECK(rd(&t, 5) & 0x01);
		got[i] = (char)rd(&t, 0);
	}
	got[40] = '\0';
	CHECK_STR(got, in);
	CHECK_EQ_U64(rd(&t, 5) & 0x03, 0x00);	/* empty, no overrun */
	ut_teardown(&t);
}

TEST(uart_iir_priorities)
{
	struct ut t;

	ut_setup(&t);
	wr(&t, 4, 0x18);	/* loopback + OUT2 */
	wr(&t, 0, 'p');		/* loops into the holding register */
	wr(&t, 0, 'q');		/* no room: overrun */
	wr(&t, 4, 0x1b);	/* DTR, RTS: DSR and CTS change in loopback */
	wr(&t, 1, 0x0f);
	CHECK_EQ_U64(rd(&t, 2), 0x06);	/* line status first */
	CHECK_EQ_U64(rd(&t, 5) & 0x03, 0x03);	/* OE and DR; reading clears OE */
	CHECK_EQ_U64(rd(&t, 2), 0x04);	/* then received data */
	CHECK_EQ_U64(rd(&t, 0), 'p');
	CHECK_EQ_U64(rd(&t, 2), 0x02);	/* then THRE (cleared by this read) */
	CHECK_EQ_U64(rd(&t, 2), 0x00);	/* then modem status */
	CHECK_EQ_U64(rd(&t, 6) & 0x0f, 0x03);	/* DDSR, DCTS; reading clears them */
	CHECK_EQ_U64(rd(&t, 2), 0x01);
	ut_teardown(&t);
}

TEST(uart_loopback)
{
	struct ut t;

	ut_setup(&t);
	wr(&t, 2, 0x01);
	wr(&t, 4, 0x10);
	CHECK_EQ_U64(rd(&t, 6) & 0xf0, 0x00);	/* outputs off: inputs off */
	wr(&t, 4, 0x1f);
	CHECK_EQ_U64(rd(&t, 6) & 0xf0, 0xf0);	/* CTS=RTS DSR=DTR RI=OUT1 DCD=OUT2 */
	wr(&t, 4, 0x1b);	/* OUT1 off: trailing edge of RI */
	CHECK_EQ_U64(rd(&t, 6) & 0x04, 0x04);
	wr(&t, 0, 0x55);
	wr(&t, 0, 0xaa);
	CHECK_EQ_U64(t.f->out_len, 0);	/* nothing left the UART */
	CHECK_EQ_U64(rd(&t, 0), 0x55);
	CHECK_EQ_U64(rd(&t, 0), 0xaa);
	/* Host input waits while in loopback and arrives after. */
	feed(&t, "h");
	CHECK_EQ_U64(rd(&t, 5) & 0x01, 0x00);
	wr(&t, 4, 0x00);
	CHECK_EQ_U64(rd(&t, 5) & 0x01, 0x01);
	CHECK_EQ_U64(rd(&t, 0), 'h');
	CHECK_EQ_U64(rd(&t, 6) & 0xb0, 0xb0);
	ut_teardown(&t);
}

TEST(uart_no_interrupt_in_loopback)
{
	struct ut t;

	ut_setup(&t);
	wr(&t, 4, 0x18);
	wr(&t, 1, 0x02);
	CHECK(!t.irq.level);	/* the PC's OUT2 pin is forced inactive in loopback */
	CHECK_EQ_U64(rd(&t, 2), 0x02);
	ut_teardown(&t);
}

TEST(uart_backend_eof_stops_input)
{
	struct ut t;

	ut_setup(&t);
	feed(&t, "e");
	close(t.f->wfd);
	t.f->wfd = -1;
	CHECK_EQ_U64(rd(&t, 0), 'e');
	char_backend_input_ready(&t.f->be);	/* EOF */
	CHECK(t.f->be.eof);
	CHECK_EQ_U64(rd(&t, 5) & 0x01, 0x00);
	wr(&t, 0, 'o');		/* output still works */
	CHECK_EQ_U64(t.f->out_len, 1);
	ut_teardown(&t);
}

TEST(uart_without_backend)
{
	struct uart *u;
	uint64_t v = 'x';

	CHECK(uart_create(NULL, NULL, NULL, &u) == 0);
	uart_io(u, 0, 1, true, &v);
	uart_io(u, 5, 1, false, &v);
	CHECK_EQ_U64(v, 0x60);
	uart_io(u, 9, 1, false, &v);
	CHECK_EQ_U64(v & 0xff, 0xff);
	uart_destroy(u);
}

TEST(char_open_specs)
{
	struct char_backend *be;
	char err[128];

	CHECK(char_open("unix=/tmp/x.sock", NULL, &be, err, sizeof err) == -ENOTSUP);
	CHECK(strstr(err, "not supported yet") != NULL);
	CHECK(char_open("tcp=localhost:1234", NULL, &be, err, sizeof err) == -EINVAL);
	CHECK(char_open("tcp=127.0.0.1", NULL, &be, err, sizeof err) == -EINVAL);
	CHECK(char_open("tcp=[::1:5", NULL, &be, err, sizeof err) == -EINVAL);
	CHECK(char_open("/dev/nmdm0A", NULL, &be, err, sizeof err) == -ENOENT);
	CHECK(char_open("/dev/null", NULL, &be, err, sizeof err) == -ENOTTY);
	CHECK(char_open("bogus", NULL, &be, err, sizeof err) == -EINVAL);
	CHECK(char_open("stdio", NULL, &be, err, sizeof err) == 0);
	{
		struct char_backend *second;

		CHECK(char_open("stdio", NULL, &second, err, sizeof err) == -EBUSY);
	}
	char_close(be);
	CHECK(char_open("stdio", NULL, &be, err, sizeof err) == 0);	/* free again */
	char_close(be);
}

static int got_rx;

static void count_rx(void *opaque)
{
	got_rx++;
}

TEST(char_tty_backend_on_a_pty)
{
	int master = posix_openpt(O_RDWR | O_NOCTTY);
	struct char_backend *be;
	char err[128], buf[16];
	const char *slave;

	CHECK(master >= 0);
	CHECK(grantpt(master) == 0 && unlockpt(master) == 0);
	slave = ptsname(master);
	CHECK(slave != NULL);
	CHECK(char_open(slave, NULL, &be, err, sizeof err) == 0);
	char_write(be, "out", 3);
	CHECK(read(master, buf, sizeof buf) == 3);
	CHECK(memcmp(buf, "out", 3) == 0);	/* raw: no CR added */
	CHECK(char_set_rx(be, count_rx, NULL) == 0);
	CHECK(write(master, "in", 2) == 2);
	usleep(20000);
	char_backend_input_ready(be);	/* what the loop does when the fd is readable */
	CHECK_EQ_U64(got_rx, 1);
	CHECK_EQ_U64(char_read(be, buf, sizeof buf), 2);
	CHECK(memcmp(buf, "in", 2) == 0);
	char_close(be);
	close(master);
}

static void *evl_thread(void *opaque)
{
	evl_run(opaque);
	return NULL;
}

static int tcp_connect(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(0x7f000001);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void wait_for(struct ut *t, unsigned lsr_bit)
{
	for (int i = 0; i < 500 && !(rd(t, 5) & lsr_bit); i++)
		usleep(2000);
}

/* A UART on a tcp= backend driven by a real event loop: one client at a time. */
TEST(uart_over_tcp_backend)
{
	struct event_loop *loop;
	struct char_backend *be = NULL;
	struct ut t;
	pthread_t th;
	char err[128], spec[64], buf[16];
	int port = 0, c1, c2;
	ssize_t n;

	memset(&t, 0, sizeof t);
	CHECK(evl_create(&loop) == 0);
	for (int i = 0; i < 20 && !be; i++) {
		port = 20000 + (getpid() * 7 + i * 131) % 40000;
		snprintf(spec, sizeof spec, "tcp=127.0.0.1:%d", port);
		if (char_open(spec, loop, &be, err, sizeof err) != 0)
			be = NULL;
	}
	CHECK(be != NULL);
	if (!be)
		return;
	CHECK(uart_create(rec_irq, &t.irq, be, &t.u) == 0);
	CHECK(pthread_create(&th, NULL, evl_thread, loop) == 0);
	wr(&t, 0, 'x');		/* no client: dropped */
	c1 = tcp_connect(port);
	CHECK(c1 >= 0);
	CHECK(write(c1, "hi", 2) == 2);
	wait_for(&t, 0x01);
	CHECK_EQ_U64(rd(&t, 0), 'h');
	wait_for(&t, 0x01);
	CHECK_EQ_U64(rd(&t, 0), 'i');
	wr(&t, 0, 'o');
	wr(&t, 0, 'k');
	n = read(c1, buf, sizeof buf);
	CHECK(n >= 1 && buf[0] == 'o');
	c2 = tcp_connect(port);	/* a second client is turned away */
	CHECK(c2 >= 0);
	n = read(c2, buf, sizeof buf);
	CHECK_EQ_U64(n, 0);
	close(c2);
	close(c1);		/* the first leaves: the next may come (once the loop saw EOF) */
	for (int i = 0; i < 20 && !(rd(&t, 5) & 0x01); i++) {
		c2 = tcp_connect(port);
		if (c2 >= 0 && write(c2, "z", 1) == 1)
			wait_for(&t, 0x01);
		if (c2 >= 0)
			close(c2);
	}
	CHECK_EQ_U64(rd(&t, 0), 'z');
	evl_stop(loop);
	pthread_join(th, NULL);
	uart_destroy(t.u);
	evl_destroy(loop);
}

/* ---- output batching (char.h "Output") ---- */

struct batch_be {
	struct char_backend be;	/* first: the ops get &be */
	pthread_mutex_t lock;
	uint8_t out[16384];
	size_t out_len;
	unsigned writes;
	bool closed;
};

static long batch_write(struct char_backend *be, const void *buf, size_t len)
{
	struct batch_be *b = (struct batch_be *)be;

	pthread_mutex_lock(&b->lock);
	if (b->out_len + len <= sizeof b->out) {
		memcpy(b->out + b->out_len, buf, len);
		b->out_len += len;
	}
	b->writes++;
	pthread_mutex_unlock(&b->lock);
	return (long)len;
}

static void batch_close(struct char_backend *be)
{
	((struct batch_be *)be)->closed = true;
}

static const struct char_backend_ops batch_ops = { .write = batch_write, .close = batch_close };

static void batch_counts(struct batch_be *b, unsigned *writes, size_t *len)
{
	pthread_mutex_lock(&b->lock);
	*writes = b->writes;
	*len = b->out_len;
	pthread_mutex_unlock(&b->lock);
}

/* Bytes written through a UART reach the host in one write, within a few ms of the first. */
TEST(char_batches_output_on_the_loop)
{
	static struct batch_be b;
	struct event_loop *loop;
	struct irq_rec irq = { 0 };
	struct uart *u;
	pthread_t th;
	unsigned writes;
	size_t len;
	uint64_t v;

	memset(&b, 0, sizeof b);
	pthread_mutex_init(&b.lock, NULL);
	CHECK(evl_create(&loop) == 0);
	char_backend_init(&b.be, &batch_ops, loop, -1);
	CHECK(char_backend_batch_output(&b.be) == 0);
	CHECK(uart_create(rec_irq, &irq, &b.be, &u) == 0);
	CHECK(pthread_create(&th, NULL, evl_thread, loop) == 0);
	for (const char *p = "line\n"; *p; p++) {
		v = (uint8_t)*p;
		uart_io(u, 0, 1, true, &v);
	}
	batch_counts(&b, &writes, &len);
	CHECK_EQ_U64(writes, 0);	/* held for CHAR_TX_DELAY_NS */
	for (int i = 0; i < 500 && len == 0; i++) {
		usleep(1000);
		batch_counts(&b, &writes, &len);
	}
	CHECK_EQ_U64(writes, 1);
	CHECK_EQ_U64(len, 5);
	CHECK(memcmp(b.out, "line\n", 5) == 0);
	/* char_flush writes at once */
	char_write(&b.be, "ab", 2);
	char_flush(&b.be);
	batch_counts(&b, &writes, &len);
	CHECK_EQ_U64(writes, 2);
	CHECK_EQ_U64(len, 7);
	char_flush(&b.be);	/* nothing left: no empty write */
	batch_counts(&b, &writes, &len);
	CHECK_EQ_U64(writes, 2);
	/* a close writes what is left */
	v = 'z';
	uart_io(u, 0, 1, true, &v);
	evl_stop(loop);
	pthread_join(th, NULL);
	uart_destroy(u);
	CHECK(b.closed);
	CHECK_EQ_U64(b.out_len, 8);
	CHECK_EQ_U64(b.out[7], 'z');
	evl_destroy(loop);
	pthread_mutex_destroy(&b.lock);
}

/* A full buffer and writes bigger than it keep the byte order; no loop: write through. */
TEST(char_batch_overflow_keeps_order)
{
	static struct batch_be b;
	static uint8_t src[9000];
	struct event_loop *loop;

	for (size_t i = 0; i < sizeof src; i++)
		src[i] = (uint8_t)(i * 7 + i / 251);
	memset(&b, 0, sizeof b);
	pthread_mutex_init(&b.lock, NULL);
	CHECK(evl_create(&loop) == 0);	/* not run: only char_flush/close write */
	char_backend_init(&b.be, &batch_ops, loop, -1);
	CHECK(char_backend_batch_output(&b.be) == 0);
	char_write(&b.be, src, 3000);
	char_write(&b.be, src + 3000, 1000);
	CHECK_EQ_U64(b.writes, 0);
	char_write(&b.be, src + 4000, 100);	/* 4100 > CHAR_TXBUF: the first 4000 go */
	CHECK_EQ_U64(b.writes, 1);
	CHECK_EQ_U64(b.out_len, 4000);
	char_write(&b.be, src + 4100, 4900);	/* bigger than the buffer: straight after */
	CHECK_EQ_U64(b.writes, 3);
	CHECK_EQ_U64(b.out_len, 9000);
	CHECK(memcmp(b.out, src, 9000) == 0);
	char_close(&b.be);
	CHECK(b.closed);
	evl_destroy(loop);
	pthread_mutex_destroy(&b.lock);

	memset(&b, 0, sizeof b);
	pthread_mutex_init(&b.lock, NULL);
	char_backend_init(&b.be, &batch_ops, NULL, -1);
	CHECK(char_backend_batch_output(&b.be) == -EINVAL);
	char_write(&b.be, "a", 1);
	char_write(&b.be, "b", 1);
	CHECK_EQ_U64(b.writes, 2);
	char_close(&b.be);
	pthread_mutex_destroy(&b.lock);
}
