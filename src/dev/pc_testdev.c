/*
 * pc_testdev.c: the PC test device of QEMU (hw/misc/pc-testdev.c) and bhyve (pctestdev.c) that
 * kvm-unit-tests drive: exit port 0xF4 (khyve exits with (V << 1) | 1), a 4-byte scratch port
 * at 0xE0 (a write replaces the whole value, as QEMU and bhyve), its byte-lane twin at 0xE8,
 * the 0xE4 "flush page" port (nothing to flush here: accepted and ignored), IRQ line ports
 * 0x2000 + pin (write 1/0 raises/lowers GSI pin 0-23), and 64 KiB of MMIO scratch.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dev/pc_testdev.h"
#include "vmm/io_bus.h"
#include "vmm/vm.h"

#define PCT_EXIT_PORT 0xf4
#define PCT_IOPORT 0xe0
#define PCT_FLUSH_PORT 0xe4
#define PCT_IOPORT_BYTE 0xe8
#define PCT_IRQ_BASE 0x2000
#define PCT_NIRQ 24
#define PCT_IOMEM_BASE 0xff000000ULL
#define PCT_IOMEM_SIZE 0x10000

struct pc_testdev {
	struct vm *vm;
	pthread_mutex_t lock;
	uint32_t ioport_data;
	uint8_t iomem[PCT_IOMEM_SIZE];
};

static uint64_t pct_mask(unsigned size)
{
	return size >= 8 ? ~0ULL : (1ULL << (size * 8)) - 1;
}

static void pct_exit_io(void *opaque, uint64_t offset, unsigned size, bool write, uint64_t *val)
{
	struct pc_testdev *t = opaque;

	if (write)
		vm_request_exit_status(t->vm, (int)(((uint32_t)(*val & pct_mask(size)) << 1) | 1));
}

static void pct_ioport_io(void *opaque, uint64_t offset, unsigned size, bool write,
			  uint64_t *val)
{
	struct pc_testdev *t = opaque;

	pthread_mutex_lock(&t->lock);
	if (write)
		t->ioport_data = (uint32_t)(*val & pct_mask(size));
	else
		*val = t->ioport_data & pct_mask(size);
	pthread_mutex_unlock(&t->lock);
}

static void pct_ioport_byte_io(void *opaque, uint64_t offset, unsigned size, bool write,
			       uint64_t *val)
{
	struct pc_testdev *t = opaque;
	uint64_t v = 0;

	pthread_mutex_lock(&t->lock);
	for (unsigned i = 0; i < size && offset + i < 4; i++) {
		unsigned shift = 8 * (unsigned)(offset + i);

		if (write) {
			t->ioport_data &= ~(0xffu << shift);
			t->ioport_data |= (uint32_t)((*val >> (8 * i)) & 0xff) << shift;
		} else {
			v |= (uint64_t)((t->ioport_data >> shift) & 0xff) << (8 * i);
		}
	}
	pthread_mutex_unlock(&t->lock);
	if (!write)
		*val = v;
}

static void pct_flush_io(void *opaque, uint64_t offset, unsigned size, bool write,
			 uint64_t *val)
{
	/* Reads give 0 (io_bus cleared *val); writes name a page: nothing is cached by page. */
}

static void pct_irq_io(void *opaque, uint64_t offset, unsigned size, bool write, uint64_t *val)
{
	struct pc_testdev *t = opaque;

	if (!write || offset >= PCT_NIRQ)
		return;
	if (*val & 1)
		vm_irq_assert(t->vm, (unsigned)offset);
	else
		vm_irq_deassert(t->vm, (unsigned)offset);
}

static void pct_iomem_io(void *opaque, uint64_t offset, unsigned size, bool write,
			 uint64_t *val)
{
	struct pc_testdev *t = opaque;

	if (size > 8 || offset + size > PCT_IOMEM_SIZE) {
		if (!write)
			*val = ~0ULL;
		return;
	}
	pthread_mutex_lock(&t->lock);
	if (write) {
		for (unsigned i = 0; i < size; i++)
			t->iomem[offset + i] = (uint8_t)(*val >> (8 * i));
	} else {
		uint64_t v = 0;

		for (unsigned i = 0; i < size; i++)
			v |= (uint64_t)t->iomem[offset + i] << (8 * i);
		*val = v;
	}
	pthread_mutex_unlock(&t->lock);
}

struct pct_range {
	enum io_space space;
	uint64_t base, len;
	io_handler_fn fn;
	const char *name;
};

static const struct pct_range pct_ranges[] = {
	{ IO_SPACE_PIO, PCT_EXIT_PORT, 4, pct_exit_io, "pc-testdev-exit" },
	{ IO_SPACE_PIO, PCT_IOPORT, 4, pct_ioport_io, "pc-testdev-ioport" },
	{ IO_SPACE_PIO, PCT_FLUSH_PORT, 4, pct_flush_io, "pc-testdev-flush" },
	{ IO_SPACE_PIO, PCT_IOPORT_BYTE, 4, pct_ioport_byte_io, "pc-testdev-byte" },
	{ IO_SPACE_PIO, PCT_IRQ_BASE, PCT_NIRQ, pct_irq_io, "pc-testdev-irq" },
	{ IO_SPACE_MMIO, PCT_IOMEM_BASE, PCT_IOMEM_SIZE, pct_iomem_io, "pc-testdev-iomem" },
};
#define PCT_NRANGES (sizeof pct_ranges / sizeof pct_ranges[0])

static void pct_unregister(struct pc_testdev *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		io_bus_unregister(vm_io(t->vm), pct_ranges[i].space, pct_ranges[i].base);
}

int pc_testdev_create(struct vm *vm, struct pc_testdev **out)
{
	struct pc_testdev *t = calloc(1, sizeof *t);

	*out = NULL;
	if (!t)
		return -ENOMEM;
	t->vm = vm;
	pthread_mutex_init(&t->lock, NULL);
	for (size_t i = 0; i < PCT_NRANGES; i++) {
		const struct pct_range *r = &pct_ranges[i];
		int ret = io_bus_register(vm_io(vm), r->space, r->base, r->len, r->fn, t, r->name);

		if (ret < 0) {
			pct_unregister(t, i);
			pthread_mutex_destroy(&t->lock);
			free(t);
			return ret;
		}
	}
	*out = t;
	return 0;
}

void pc_testdev_destroy(struct pc_testdev *t)
{
	if (!t)
		return;
	pct_unregister(t, PCT_NRANGES);
	pthread_mutex_destroy(&t->lock);
	free(t);
}
