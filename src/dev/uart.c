/*
 * uart.c: a PC16550D UART (datasheet "Registers", "FIFO Interrupt Mode Operation"): RBR/THR,
 * IER, IIR/FCR with 16-byte FIFOs and trigger levels, LCR and divisor latch, MCR with loopback,
 * LSR, MSR, SCR. Transmission is instant; the character timeout shows as soon as the FIFO is
 * below its trigger. DCD, DSR and CTS are always asserted; OUT2 gates the line, as on PCs.
 * Also the `uart` PCI emulation (131F:2000, I/O BAR 0, INTx).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/char/char.h"
#include "config/config.h"
#include "dev/models.h"
#include "dev/uart.h"
#include "pci/pci.h"
#include "vmm/vm.h"

#define UART_FIFO_SIZE 16

/* Register offsets (DLAB = 0 unless noted). */
#define REG_RBR_THR 0
#define REG_IER 1
#define REG_IIR_FCR 2
#define REG_LCR 3
#define REG_MCR 4
#define REG_LSR 5
#define REG_MSR 6
#define REG_SCR 7

#define IER_ERBFI 0x01
#define IER_ETBEI 0x02
#define IER_ELSI 0x04
#define IER_EDSSI 0x08

#define IIR_NOPEND 0x01
#define IIR_MLSC 0x00
#define IIR_THRE 0x02
#define IIR_RDA 0x04
#define IIR_RLS 0x06
#define IIR_CTI 0x0c
#define IIR_FIFOS 0xc0

#define FCR_ENABLE 0x01
#define FCR_RCVR_RESET 0x02
#define FCR_XMIT_RESET 0x04
#define FCR_TRIGGER 0xc0

#define LCR_DLAB 0x80

#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10

#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_PE 0x04
#define LSR_FE 0x08
#define LSR_BI 0x10
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define LSR_ERRORS (LSR_OE | LSR_PE | LSR_FE | LSR_BI)

#define MSR_DCTS 0x01
#define MSR_DDSR 0x02
#define MSR_TERI 0x04
#define MSR_DDCD 0x08
#define MSR_DELTAS 0x0f
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80

struct uart {
	pthread_mutex_t lock;
	uart_irq_fn irq;
	void *irq_opaque;
	bool irq_level;
	struct char_backend *be;

	uint8_t rx_fifo[UART_FIFO_SIZE];
	unsigned rx_head, rx_count;
	uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
	uint8_t lsr_errors;	/* OE/PE/FE/BI until LSR is read */
	uint8_t msr;		/* lines in 7:4, deltas in 3:0 */
	bool thre_pending;
};

static const unsigned uart_trigger_levels[4] = { 1, 4, 8, 14 };

static unsigned uart_rx_capacity(const struct uart *u)
{
	return (u->fcr & FCR_ENABLE) ? UART_FIFO_SIZE : 1;
}

/* Current interrupt identification (without the FIFO bits). */
static uint8_t uart_intr_id(const struct uart *u)
{
	if ((u->ier & IER_ELSI) && (u->lsr_errors & LSR_ERRORS))
		return IIR_RLS;
	if ((u->ier & IER_ERBFI) && u->rx_count > 0) {
		if ((u->fcr & FCR_ENABLE) &&
		    u->rx_count < uart_trigger_levels[(u->fcr & FCR_TRIGGER) >> 6])
			return IIR_CTI;
		return IIR_RDA;
	}
	if ((u->ier & IER_ETBEI) && u->thre_pending)
		return IIR_THRE;
	if ((u->ier & IER_EDSSI) && (u->msr & MSR_DELTAS))
		return IIR_MLSC;
	return IIR_NOPEND;
}

static void uart_update_irq(struct uart *u)
{
	bool level = uart_intr_id(u) != IIR_NOPEND && (u->mcr & MCR_OUT2) &&
		     !(u->mcr & MCR_LOOP);

	if (level != u->irq_level) {
		u->irq_level = level;
		if (u->irq)
			u->irq(u->irq_opaque, level);
	}
}

/* The modem input lines as they are now (loopback routes the MCR outputs back). */
static uint8_t uart_modem_lines(const struct uart *u)
{
	uint8_t lines = 0;

	if (!(u->mcr & MCR_LOOP))
		return MSR_DCD | MSR_DSR | MSR_CTS;
	if (u->mcr & MCR_RTS)
		lines |= MSR_CTS;
	if (u->mcr & MCR_DTR)
		lines |= MSR_DSR;
	if (u->mcr & MCR_OUT1)
		lines |= MSR_RI;
	if (u->mcr & MCR_OUT2)
		lines |= MSR_DCD;
	return lines;
}

static void uart_update_msr(struct uart *u)
{
	uint8_t old = u->msr & 0xf0, now = uart_modem_lines(u), changed = old ^ now;
	uint8_t deltas = u->msr & MSR_DELTAS;

	if (changed & MSR_CTS)
		deltas |= MSR_DCTS;
	if (changed & MSR_DSR)
		deltas |= MSR_DDSR;
	if (changed & MSR_DCD)
		deltas |= MSR_DDCD;
	if ((old & MSR_RI) && !(now & MSR_RI))
		deltas |= MSR_TERI;
	u->msr = now | deltas;
}

static void uart_rx_push(struct uart *u, uint8_t c)
{
	if (u->rx_count >= uart_rx_capacity(u)) {
		u->lsr_errors |= LSR_OE;
		return;
	}
	u->rx_fifo[(u->rx_head + u->rx_count) % UART_FIFO_SIZE] = c;
	u->rx_count++;
}

static void uart_rx_clear(struct uart *u)
{
	u->rx_head = 0;
	u->rx_count = 0;
}

/* Move what the backend holds into the FIFO, as far as there is room. Lock held. */
static void uart_rx_pull(struct uart *u)
{
	uint8_t buf[UART_FIFO_SIZE];
	unsigned room;
	size_t n;

	if (!u->be || (u->mcr & MCR_LOOP))
		return;
	room = uart_rx_capacity(u) - u->rx_count;
	if (room == 0)
		return;
	n = char_read(u->be, buf, room);
	for (size_t i = 0; i < n; i++)
		uart_rx_push(u, buf[i]);
}

static void uart_backend_rx(void *opaque)
{
	struct uart *u = opaque;

	pthread_mutex_lock(&u->lock);
	uart_rx_pull(u);
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

static void uart_reset_locked(struct uart *u)
{
	uart_rx_clear(u);
	u->ier = 0;
	u->lcr = 0;
	u->mcr = 0;
	u->scr = 0;
	u->fcr = 0;
	u->dll = 1;	/* 115200 baud from the 1.8432 MHz clock, as bhyve */
	u->dlm = 0;
	u->lsr_errors = 0;
	u->thre_pending = false;
	u->msr = uart_modem_lines(u);
	uart_update_irq(u);
}

void uart_reset(struct uart *u)
{
	pthread_mutex_lock(&u->lock);
	uart_reset_locked(u);
	uart_rx_pull(u);
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

int uart_create(uart_irq_fn irq, void *irq_opaque, struct char_backend *be,
		struct uart **out)
{
	struct uart *u = calloc(1, sizeof *u);

	*out = NULL;
	if (!u)
		return -ENOMEM;
	pthread_mutex_init(&u->lock, NULL);
	u->irq = irq;
	u->irq_opaque = irq_opaque;
	u->be = be;
	uart_reset_locked(u);
	if (be)
		char_set_rx(be, uart_backend_rx, u);
	*out = u;
	return 0;
}

void uart_destroy(struct uart *u)
{
	if (!u)
		return;
	char_close(u->be);
	pthread_mutex_destroy(&u->lock);
	free(u);
}

static uint8_t uart_read_reg(struct uart *u, unsigned reg)
{
	uint8_t v = 0, id;

	switch (reg) {
	case REG_RBR_THR:
		if (u->lcr & LCR_DLAB)
			return u->dll;
		if (u->rx_count > 0) {
			v = u->rx_fifo[u->rx_head];
			u->rx_head = (u->rx_head + 1) % UART_FIFO_SIZE;
			u->rx_count--;
		}
		uart_rx_pull(u);
		return v;
	case REG_IER:
		if (u->lcr & LCR_DLAB)
			return u->dlm;
		return u->ier;
	case REG_IIR_FCR:
		id = uart_intr_id(u);
		if (id == IIR_THRE)
			u->thre_pending = false;
		return id | ((u->fcr & FCR_ENABLE) ? IIR_FIFOS : 0);
	case REG_LCR:
		return u->lcr;
	case REG_MCR:
		return u->mcr;
	case REG_LSR:
		v = LSR_THRE | LSR_TEMT | u->lsr_errors;
		if (u->rx_count > 0)
			v |= LSR_DR;
		u->lsr_errors = 0;
		return v;
	case REG_MSR:
		v = u->msr;
		u->msr &= (uint8_t)~MSR_DELTAS;
		return v;
	default:
		return u->scr;
	}
}

static void uart_write_reg(struct uart *u, unsigned reg, uint8_t v)
{
	switch (reg) {
	case REG_RBR_THR:
		if (u->lcr & LCR_DLAB) {
			u->dll = v;
			return;
		}
		if (u->mcr & MCR_LOOP)
			uart_rx_push(u, v);
		else
			char_write(u->be, &v, 1);
		u->thre_pending = true;	/* the byte left at once: THR is empty again */
		return;
	case REG_IER:
		if (u->lcr & LCR_DLAB) {
			u->dlm = v;
			return;
		}
		/* Enabling ETBEI while THR is empty raises the THRE interrupt. */
		if (!(u->ier & IER_ETBEI) && (v & IER_ETBEI))
			u->thre_pending = true;
		u->ier = v & 0x0f;
		return;
	case REG_IIR_FCR:
		if ((v ^ u->fcr) & FCR_ENABLE)
			uart_rx_clear(u);
		else if (v & FCR_RCVR_RESET)
			uart_rx_clear(u);
		u->fcr = v & (FCR_ENABLE | FCR_TRIGGER);
		if (!(u->fcr & FCR_ENABLE))
			u->fcr = 0;
		uart_rx_pull(u);
		return;
	case REG_LCR:
		u->lcr = v;
		return;
	case REG_MCR: {
		bool was_loop = u->mcr & MCR_LOOP;

		u->mcr = v & 0x1f;
		uart_update_msr(u);
		if (was_loop && !(u->mcr & MCR_LOOP))
			uart_rx_pull(u);
		return;
	}
	case REG_LSR:
	case REG_MSR:
		return;	/* read-only (factory test only) */
	default:
		u->scr = v;
		return;
	}
}

void uart_io(void *opaque, uint64_t offset, unsigned size, bool write, uint64_t *val)
{
	struct uart *u = opaque;

	if (offset >= UART_NREGS) {
		if (!write)
			*val = ~0ULL;
		return;
	}
	pthread_mutex_lock(&u->lock);
	if (write)
		uart_write_reg(u, (unsigned)offset, (uint8_t)*val);
	else
		*val = uart_read_reg(u, (unsigned)offset);
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

/* ---- the `uart` PCI emulation: the same UART behind an I/O BAR (bhyve's pci_uart.c) ---- */

#define PCI_UART_VENDOR 0x131f	/* Siig */
#define PCI_UART_DEVICE 0x2000

static void pci_uart_irq(void *opaque, bool level)
{
	struct pci_dev *pdev = opaque;

	if (level)
		pci_intx_assert(pdev);
	else
		pci_intx_deassert(pdev);
}

static void pci_uart_bar_read(struct pci_dev *pdev, int bar, uint64_t offset, unsigned size,
			      uint64_t *val)
{
	uart_io(pdev->priv, offset, size, false, val);
}

static void pci_uart_bar_write(struct pci_dev *pdev, int bar, uint64_t offset, unsigned size,
			       uint64_t val)
{
	uart_io(pdev->priv, offset, size, true, &val);
}

static void pci_uart_reset(struct pci_dev *pdev)
{
	uart_reset(pdev->priv);
}

static void pci_uart_destroy(struct pci_dev *pdev)
{
	uart_destroy(pdev->priv);
	pdev->priv = NULL;
}

static const struct pci_dev_ops pci_uart_ops = {
	.bar_read = pci_uart_bar_read,
	.bar_write = pci_uart_bar_write,
	.reset = pci_uart_reset,
	.destroy = pci_uart_destroy,
};

static int pci_uart_init(struct vm *vm, struct pci_dev *pdev, struct cfg_node *node)
{
	const char *path = cfg_get(node, "path");
	struct char_backend *be = NULL;
	struct uart *u;
	char err[256];
	int ret;

	if (path && *path) {
		ret = char_open(path, vm_event_loop(vm), &be, err, sizeof err);
		if (ret < 0) {
			fprintf(stderr, "khyve: pci %u:%u:%u: uart: %s\n", pdev->bus, pdev->slot,
				pdev->func, err);
			return ret;
		}
	}
	ret = uart_create(pci_uart_irq, pdev, be, &u);
	if (ret < 0) {
		char_close(be);
		return ret;
	}
	pdev->name = "uart";
	pdev->priv = u;
	pdev->ops = &pci_uart_ops;
	/* Simple communications / serial, 16550-compatible. */
	pci_set_ids(pdev, PCI_UART_VENDOR, PCI_UART_DEVICE, 0, 0x07, 0x00, 0x02);
	ret = pci_add_bar(pdev, 0, PCI_BAR_IO, UART_NREGS);
	if (ret == 0)
		ret = pci_intx_request(pdev);
	return ret;
}

static int pci_uart_legacy_parse(struct cfg_node *node, const char *opts, char *err,
				 size_t errlen)
{
	if (!opts || !*opts)
		return 0;
	if (strchr(opts, ',')) {
		snprintf(err, errlen, "uart takes one backend: '%s'", opts);
		return -EINVAL;
	}
	return cfg_set(node, "path", opts) < 0 ? -EINVAL : 0;
}

static const struct device_key pci_uart_keys[] = {
	{ "path", KEY_STRING, NULL, "backend: stdio or a host terminal path" },
	{ NULL, KEY_STRING, NULL, NULL },
};

const struct device_model pci_uart_model = {
	.name = "uart",
	.keys = pci_uart_keys,
	.legacy_parse = pci_uart_legacy_parse,
	.init = pci_uart_init,
};
