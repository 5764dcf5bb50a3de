/*
 * ioapic.c: 82093AA I/O APIC (datasheet §3.2: IOREGSEL/IOWIN, ID, version, arbitration,
 * redirection table). 24 pins, edge (on the rising edge) and level (remote IRR until the
 * local APIC's EOI, redelivered while the line stays asserted), masking, physical and
 * logical destinations, fixed/lowest priority/NMI/INIT/ExtINT messages. Version 0x11 (no
 * EOI register in the datasheet; the 0x40 EOI register of later versions is accepted too).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include "dev/ioapic.h"

#define REG_ID 0x00
#define REG_VERSION 0x01
#define REG_ARB 0x02
#define REG_RTE0 0x10

#define RTE_DELIVS (1ull << 12)
#define RTE_POLARITY (1ull << 13)
#define RTE_REMOTE_IRR (1ull << 14)
#define RTE_LEVEL (1ull << 15)
#define RTE_MASKED (1ull << 16)
#define RTE_WRITABLE (0xff000000000000ffull | 0x700 | 0x800 | RTE_POLARITY | RTE_LEVEL | RTE_MASKED)

struct ioapic {
	pthread_mutex_t lock;
	struct ioapic_ops ops;
	uint32_t id, regsel;
	uint64_t rte[IOAPIC_PINS];
	uint32_t lines;		/* input pin levels */
};

static void send_locked(struct ioapic *io, unsigned pin)
{
	uint64_t r = io->rte[pin];
	struct lapic_msg msg = {
		.vector = r & 0xff,
		.mode = (r >> 8) & 7,
		.logical = (r >> 11) & 1,
		.level = (r & RTE_LEVEL) != 0,
		.dest = (uint32_t)(r >> 56),
	};

	if (r & RTE_MASKED)
		return;
	if (msg.level) {
		if (r & RTE_REMOTE_IRR)
			return;
		/* Only fixed and lowest-priority messages are EOI'd. */
		if (msg.mode == LAPIC_DM_FIXED || msg.mode == LAPIC_DM_LOWPRI)
			io->rte[pin] |= RTE_REMOTE_IRR;
	}
	if (io->ops.deliver)
		io->ops.deliver(io->ops.opaque, &msg);
}

struct ioapic *ioapic_create(const struct ioapic_ops *ops)
{
	struct ioapic *io = calloc(1, sizeof *io);

	if (!io)
		return NULL;
	pthread_mutex_init(&io->lock, NULL);
	if (ops)
		io->ops = *ops;
	ioapic_reset(io);
	return io;
}

void ioapic_destroy(struct ioapic *io)
{
	if (!io)
		return;
	pthread_mutex_destroy(&io->lock);
	free(io);
}

void ioapic_reset(struct ioapic *io)
{
	pthread_mutex_lock(&io->lock);
	io->id = 0;
	io->regsel = 0;
	for (unsigned i = 0; i < IOAPIC_PINS; i++)
		io->rte[i] = RTE_MASKED;
	pthread_mutex_unlock(&io->lock);
}

static uint32_t reg_read(struct ioapic *io, uint32_t reg)
{
	unsigned pin;

	switch (reg) {
	case REG_ID:
		return io->id << 24;
	case REG_VERSION:
		return ((IOAPIC_PINS - 1) << 16) | 0x11;
	case REG_ARB:
		return io->id << 24;
	default:
		break;
	}
	if (reg >= REG_RTE0 && reg < REG_RTE0 + 2 * IOAPIC_PINS) {
		pin = (reg - REG_RTE0) / 2;
		return (reg & 1) ? (uint32_t)(io->rte[pin] >> 32) : (uint32_t)io->rte[pin];
	}
	return 0;
}

static void reg_write(struct ioapic *io, uint32_t reg, uint32_t val)
{
	unsigned pin;
	uint64_t r;

	if (reg == REG_ID) {
		io->id = (val >> 24) & 0xf;
		return;
	}
	if (reg < REG_RTE0 || reg >= REG_RTE0 + 2 * IOAPIC_PINS)
		return;
	pin = (reg - REG_RTE0) / 2;
	r = io->rte[pin];
	if (reg & 1)
		r = (r & 0xffffffffull) | ((uint64_t)val << 32);
	else
		r = (r & ~0xffffffffull) | val;
	io->rte[pin] = (r & RTE_WRITABLE) | (io->rte[pin] & (RTE_REMOTE_IRR | RTE_DELIVS));
	if (!(io->rte[pin] & RTE_LEVEL))
		io->rte[pin] &= ~RTE_REMOTE_IRR;
	/* A level line that is still asserted fires once it is unmasked. */
	if ((io->rte[pin] & RTE_LEVEL) && (io->lines >> pin & 1))
		send_locked(io, pin);
}

int ioapic_mmio(struct ioapic *io, uint64_t off, unsigned size, bool write, uint64_t *val)
{
	pthread_mutex_lock(&io->lock);
	switch (off & 0xff) {
	case 0x00:
		if (write)
			io->regsel = (uint32_t)*val & 0xff;
		else
			*val = io->regsel;
		break;
	case 0x10:
		if (write)
			reg_write(io, io->regsel, (uint32_t)*val);
		else
			*val = reg_read(io, io->regsel);
		break;
	case 0x40:
		if (write) {
			uint8_t vec = (uint8_t)*val;

			pthread_mutex_unlock(&io->lock);
			ioapic_eoi(io, vec);
			return 0;
		}
		*val = 0;
		break;
	default:
		if (!write)
			*val = 0;
		break;
	}
	pthread_mutex_unlock(&io->lock);
	return 0;
}

int ioapic_set_irq(struct ioapic *io, unsigned pin, bool level)
{
	bool old;

	if (pin >= IOAPIC_PINS)
		return -EINVAL;
	pthread_mutex_lock(&io->lock);
	old = (io->lines >> pin) & 1;
	if (level)
		io->lines |= 1u << pin;
	else
		io->lines &= ~(1u << pin);
	if (level && ((io->rte[pin] & RTE_LEVEL) || !old))
		send_locked(io, pin);
	pthread_mutex_unlock(&io->lock);
	return 0;
}

void ioapic_eoi(struct ioapic *io, uint8_t vector)
{
	pthread_mutex_lock(&io->lock);
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
		uint64_t r = io->rte[pin];

		if (!(r & RTE_LEVEL) || !(r & RTE_REMOTE_IRR) || (r & 0xff) != vector)
			continue;
		io->rte[pin] &= ~RTE_REMOTE_IRR;
		if ((io->lines >> pin) & 1)
			send_locked(io, pin);
	}
	pthread_mutex_unlock(&io->lock);
}

uint64_t ioapic_get_rte(struct ioapic *io, unsigned pin)
{
	uint64_t r;

	if (pin >= IOAPIC_PINS)
		return 0;
	pthread_mutex_lock(&io->lock);
	r = io->rte[pin];
	pthread_mutex_unlock(&io->lock);
	return r;
}
