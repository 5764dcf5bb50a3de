/*
 * io_bus.c: port-I/O and MMIO dispatch. Each space is an array of non-overlapping ranges
 * sorted by base and searched by bisection. A read-write lock guards the array; the handler
 * is called after the lock is dropped, so a handler may itself move ranges (a PCI config
 * write relocating a BAR). An access is routed by its first byte; the handler gets the
 * offset and size and deals with accesses that run past its end. A vCPU that looked a
 * range up just before it moved may call that handler once more: devices outlive ranges.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/io_bus.h"

#define IO_BUS_NAME_MAX 32
#define IO_BUS_PIO_LIMIT 0x10000ULL

struct io_range {
	uint64_t base, last;	/* inclusive last byte: no overflow at the top of the space */
	io_handler_fn fn;
	void *opaque;
	char name[IO_BUS_NAME_MAX];
};

struct io_space_map {
	struct io_range *ranges;
	int n, cap;
};

struct io_bus {
	pthread_rwlock_t lock;
	struct io_space_map space[2];
};

int io_bus_create(struct io_bus **out)
{
	struct io_bus *bus = calloc(1, sizeof *bus);

	*out = NULL;
	if (!bus)
		return -ENOMEM;
	if (pthread_rwlock_init(&bus->lock, NULL) != 0) {
		free(bus);
		return -ENOMEM;
	}
	*out = bus;
	return 0;
}

void io_bus_destroy(struct io_bus *bus)
{
	if (!bus)
		return;
	free(bus->space[IO_SPACE_PIO].ranges);
	free(bus->space[IO_SPACE_MMIO].ranges);
	pthread_rwlock_destroy(&bus->lock);
	free(bus);
}

/* Index of the first range whose last byte is >= addr (n when none). */
static int io_bus_lower_bound(const struct io_space_map *m, uint64_t addr)
{
	int lo = 0, hi = m->n;

	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;

		if (m->ranges[mid].last < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct io_space_map *io_bus_map(struct io_bus *bus, enum io_space space)
{
	if (space != IO_SPACE_PIO && space != IO_SPACE_MMIO)
		return NULL;
	return &bus->space[space];
}

int io_bus_register(struct io_bus *bus, enum io_space space, uint64_t base, uint64_t len,
		    io_handler_fn fn, void *opaque, const char *name)
{
	struct io_space_map *m = io_bus_map(bus, space);
	uint64_t last = base + len - 1;
	int i, ret = 0;

	if (!m || !fn || len == 0 || last < base)
		return -EINVAL;
	if (space == IO_SPACE_PIO && last >= IO_BUS_PIO_LIMIT)
		return -EINVAL;

	pthread_rwlock_wrlock(&bus->lock);
	i = io_bus_lower_bound(m, base);
	if (i < m->n && m->ranges[i].base <= last) {
		ret = -EEXIST;
		goto out;
	}
	if (m->n == m->cap) {
		int cap = m->cap ? m->cap * 2 : 16;
		struct io_range *r = realloc(m->ranges, (size_t)cap * sizeof *r);

		if (!r) {
			ret = -ENOMEM;
			goto out;
		}
		m->ranges = r;
		m->cap = cap;
	}
	memmove(&m->ranges[i + 1], &m->ranges[i], (size_t)(m->n - i) * sizeof m->ranges[0]);
	m->ranges[i] = (struct io_range){ .base = base, .last = last, .fn = fn, .opaque = opaque };
	if (name) {
		strncpy(m->ranges[i].name, name, IO_BUS_NAME_MAX - 1);
		m->ranges[i].name[IO_BUS_NAME_MAX - 1] = '\0';
	}
	m->n++;
out:
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

int io_bus_unregister(struct io_bus *bus, enum io_space space, uint64_t base)
{
	struct io_space_map *m = io_bus_map(bus, space);
	int i, ret = -ENOENT;

	if (!m)
		return -EINVAL;
	pthread_rwlock_wrlock(&bus->lock);
	i = io_bus_lower_bound(m, base);
	if (i < m->n && m->ranges[i].base == base) {
		memmove(&m->ranges[i], &m->ranges[i + 1],
			(size_t)(m->n - i - 1) * sizeof m->ranges[0]);
		m->n--;
		ret = 0;
	}
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

bool io_bus_access(struct io_bus *bus, enum io_space space, uint64_t addr, unsigned size,
		   bool write, uint64_t *val)
{
	struct io_space_map *m = io_bus_map(bus, space);
	io_handler_fn fn = NULL;
	void *opaque = NULL;
	uint64_t offset = 0;
	int i;

	if (m) {
		pthread_rwlock_rdlock(&bus->lock);
		i = io_bus_lower_bound(m, addr);
		if (i < m->n && m->ranges[i].base <= addr) {
			fn = m->ranges[i].fn;
			opaque = m->ranges[i].opaque;
			offset = addr - m->ranges[i].base;
		}
		pthread_rwlock_unlock(&bus->lock);
	}
	if (!fn) {
		if (!write)
			*val = size >= 8 ? ~0ULL : (1ULL << (size * 8)) - 1;
		return false;
	}
	if (!write)
		*val = 0;
	fn(opaque, offset, size, write, val);
	return true;
}
