/*
 * uart.h: the 16550A UART model (uart.c), used by lpc.c for COM1-COM4 and by the `uart` PCI
 * emulation. The owner registers uart_io on 8 ports (or a BAR) and supplies the interrupt
 * line as a callback, called with the UART's lock held whenever the level changes.
 */
#ifndef KHYVE_DEV_UART_H
#define KHYVE_DEV_UART_H

#include <stdbool.h>
#include <stdint.h>

struct uart;
struct char_backend;

#define UART_NREGS 8

typedef void (*uart_irq_fn)(void *opaque, bool level);

/* Create a UART; it owns `be` (may be NULL: output discarded, no input). 0 or -errno. */
int uart_create(uart_irq_fn irq, void *irq_opaque, struct char_backend *be,
		struct uart **out);
void uart_destroy(struct uart *u);
/* io_handler_fn for the UART's 8 registers (opaque = the uart). */
void uart_io(void *opaque, uint64_t offset, unsigned size, bool write, uint64_t *val);
/* Back to power-on state (registers, FIFOs, line low). */
void uart_reset(struct uart *u);

#endif
