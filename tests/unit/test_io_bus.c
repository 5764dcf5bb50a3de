/* test_io_bus.c: io_bus registration (overlaps, limits), dispatch offsets, unclaimed, threads. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "unit.h"
#include "vmm/io_bus.h"

struct rec {
	uint64_t offset, val;
	unsigned size;
	bool write;
	int calls;
};

static void handler(void *opaque, uint64_t offset, unsigned size, bool write, uint64_t *val)
{
	struct rec *r = opaque;

	r->offset = offset;
	r->size = size;
	r->write = write;
	r->calls++;
	if (write)
		r->val = *val;
	else
		*val = 0x1234 + offset;
}

TEST(overlap_rejected)
{
	struct io_bus *bus;
	struct rec a = { 0 };

	CHECK(io_bus_create(&bus) == 0);
	CHECK(io_bus_register(bus, IO_SPACE_PIO, 0x3f8, 8, handler, &a, "com1") == 0);
	CHECK(io_bus_register(bus, IO_SPACE_PIO, 0x3f8, 8, handler, &a, "x") == -EEXIST);
	CHECK(io_bus_register(bus, IO_SPACE_PIO, 0x3f0, 9, handler, &a, "x") == -EEXIST);
	CHECK(io_bus_register(bus, IO_SPACE_PIO, 0x3ff, 1, handler, &a, "x") == -EEXIST);
	CHECK(io_bus_register(bus, IO_SPACE_PIO, 0x3f9, 1, handler, &a, "x") == -EEXIST);
	CHECK(io_bus_register(bus, IO_SPACE_PIO, 0x3f0, 0x20, handler, &a, "x") == -EEXIST);
	CHECK(io_bus_register(bus, IO_SPACE_PIO, 0x3f0, 8, handler, &a, "below") == 0);
	CHECK(io_bus_register(bus, IO_SPACE_PIO, 0x400, 8, handler, &a, "above") == 0);
	/* The same address in the other space is independent. */
	CHECK(io_bus_register(bus, IO_SPACE_MMIO, 0x3f8, 8, handler, &a, "mmio") == 0);
	io_bus_destroy(bus);
}

TEST(bad_ranges_rejected)
{
	struct io_bus *bus;
	struct rec a = { 0 };

	CHECK(io_bus_create(&bus) == 0);
	CHECK(io_bus_register(bus, IO_SPACE_PIO, 0x10, 0, handler, &a, "x") == -EINVAL);
	CHECK(io_bus_register(bus, IO_SPACE_PIO, 0xfff0, 0x20, handler, &a, "x") == -EINVAL);
	CHECK(io_bus_register(bus, IO_SPACE_PIO, 0xfff0, 0x10, handler, &a, "x") == 0);
	CHECK(io_bus_register(bus, IO_SPACE_MMIO, UINT64_MAX - 1, 4, handler, &a, "x") == -EINVAL);
	CHECK(io_bus_register(bus, IO_SPACE_MMIO, UINT64_MAX - 3, 4, handler, &a, "top") == 0);
	CHECK(io_bus_register(bus, IO_SPACE_MMIO, 0x1000, 4, NULL, &a, "x") == -EINVAL);
	CHECK(io_bus_register(bus, (enum io_space)7, 0x1000, 4, handler, &a, "x") == -EINVAL);
	io_bus_destroy(bus);
}

TEST(dispatch_with_offsets)
{
	struct io_bus *bus;
	struct rec a = { 0 }, b = { 0 }, top = { 0 };
	uint64_t v;

	CHECK(io_bus_create(&bus) == 0);
	CHECK(io_bus_register(bus, IO_SPACE_MMIO, 0xfec00000, 0x1000, handler, &a, "ioapic") == 0);
	CHECK(io_bus_register(bus, IO_SPACE_MMIO, 0xfee00000, 0x1000, handler, &b, "lapic") == 0);
	CHECK(io_bus_register(bus, IO_SPACE_MMIO, UINT64_MAX - 15, 16, handler, &top, "top") == 0);

	CHECK(io_bus_access(bus, IO_SPACE_MMIO, 0xfec00010, 4, false, &v));
	CHECK_EQ_U64(v, 0x1234 + 0x10);
	CHECK_EQ_U64(a.offset, 0x10);
	CHECK_EQ_U64(a.size, 4);
	CHECK(!a.write);

	v = 0xdeadbeef;
	CHECK(io_bus_access(bus, IO_SPACE_MMIO, 0xfee00fff, 1, true, &v));
	CHECK_EQ_U64(b.offset, 0xfff);
	CHECK_EQ_U64(b.val, 0xdeadbeef);
	CHECK(b.write);
	CHECK_EQ_U64(a.calls, 1);

	CHECK(io_bus_access(bus, IO_SPACE_MMIO, UINT64_MAX, 1, false, &v));
	CHECK_EQ_U64(top.offset, 15);
	io_bus_destroy(bus);
}

TEST(unclaimed_reads_all_ones)
{
	struct io_bus *bus;
	struct rec a = { 0 };
	uint64_t v;

	CHECK(io_bus_create(&bus) == 0);
	CHECK(io_bus_register(bus, IO_SPACE_PIO, 0x60, 1, handler, &a, "kbd") == 0);
	CHECK(io_bus_register(bus, IO_SPACE_PIO, 0x64, 1, handler, &a, "kbd") == 0);
	v = 0;
	CHECK(!io_bus_access(bus, IO_SPACE_PIO, 0x61, 1, false, &v));
	CHECK_EQ_U64(v, 0xff);
	CHECK(!io_bus_access(bus, IO_SPACE_PIO, 0x62, 2, false, &v));
	CHECK_EQ_U64(v, 0xffff);
	CHECK(!io_bus_access(bus, IO_SPACE_PIO, 0x80, 4, false, &v));
	CHECK_EQ_U64(v, 0xffffffff);
	CHECK(!io_bus_access(bus, IO_SPACE_MMIO, 0x60, 8, false, &v));
	CHECK_EQ_U64(v, UINT64_MAX);
	v = 7;
	CHECK(!io_bus_access(bus, IO_SPACE_PIO, 0x65, 1, true, &v));
	CHECK_EQ_U64(v, 7);
	CHECK_EQ_U64(a.calls, 0);
	io_bus_destroy(bus);
}

TEST(unregister_and_many_ranges)
{
	struct io_bus *bus;
	struct rec r[100] = { 0 };
	uint64_t v;

	CHECK(io_bus_create(&bus) == 0);
	/* Register out of order so the sorted insert is exercised. */
	for (int i = 0; i < 100; i++) {
		int k = (i * 37) % 100;

		CHECK(io_bus_register(bus, IO_SPACE_MMIO, 0x100000 + k * 0x1000, 0x1000, handler,
				      &r[k], "dev") == 0);
	}
	for (int k = 0; k < 100; k++) {
		CHECK(io_bus_access(bus, IO_SPACE_MMIO, 0x100000 + k * 0x1000 + 8, 4, false, &v));
		CHECK_EQ_U64(r[k].calls, 1);
		CHECK_EQ_U64(r[k].offset, 8);
	}
	CHECK(io_bus_unregister(bus, IO_SPACE_MMIO, 0x100000 + 50 * 0x1000) == 0);
	CHECK(io_bus_unregister(bus, IO_SPACE_MMIO, 0x100000 + 50 * 0x1000) == -ENOENT);
	CHECK(io_bus_unregister(bus, IO_SPACE_MMIO, 0x100000 + 51 * 0x1000 + 4) == -ENOENT);
	CHECK(!io_bus_access(bus, IO_SPACE_MMIO, 0x100000 + 50 * 0x1000, 4, false, &v));
	CHECK(io_bus_access(bus, IO_SPACE_MMIO, 0x100000 + 51 * 0x1000, 4, false, &v));
	/* Move: the freed slot can be claimed again, e.g. by a relocated BAR. */
	CHECK(io_bus_register(bus, IO_SPACE_MMIO, 0x100000 + 50 * 0x1000, 0x800, handler,
			      &r[0], "moved") == 0);
	CHECK(io_bus_access(bus, IO_SPACE_MMIO, 0x100000 + 50 * 0x1000 + 0x10, 4, false, &v));
	CHECK_EQ_U64(r[0].offset, 0x10);
	CHECK(!io_bus_access(bus, IO_SPACE_MMIO, 0x100000 + 50 * 0x1000 + 0x800, 4, false, &v));
	io_bus_destroy(bus);
}

/* A handler that moves its own range, as a PCI BAR write does: must not deadlock. */
static struct io_bus *move_bus;
static void mover(void *opaque, uint64_t offset, unsigned size, bool write, uint64_t *val)
{
	struct rec *r = opaque;

	r->calls++;
	if (write) {
		io_bus_unregister(move_bus, IO_SPACE_MMIO, 0x1000);
		io_bus_register(move_bus, IO_SPACE_MMIO, *val, 0x1000, mover, r, "moved");
	}
}

TEST(handler_may_move_ranges)
{
	struct rec r = { 0 };
	uint64_t v = 0x8000;

	CHECK(io_bus_create(&move_bus) == 0);
	CHECK(io_bus_register(move_bus, IO_SPACE_MMIO, 0x1000, 0x1000, mover, &r, "bar") == 0);
	CHECK(io_bus_access(move_bus, IO_SPACE_MMIO, 0x1000, 4, true, &v));
	CHECK(!io_bus_access(move_bus, IO_SPACE_MMIO, 0x1000, 4, false, &v));
	CHECK(io_bus_access(move_bus, IO_SPACE_MMIO, 0x8004, 4, false, &v));
	CHECK_EQ_U64(r.calls, 2);
	io_bus_destroy(move_bus);
}

/* Dispatch from several threads while another moves a range back and forth (a BAR). */
struct stress {
	struct io_bus *bus;
	atomic_int stop;
	atomic_long hits, misses;
};

static void counter(void *opaque, uint64_t offset, unsigned size, bool write, uint64_t *val)
{
	*val = offset;
}

static void *stress_reader(void *arg)
{
	struct stress *st = arg;

	while (!atomic_load(&st->stop)) {
		uint64_t v = 0;

		if (io_bus_access(st->bus, IO_SPACE_MMIO, 0x10008, 4, false, &v)) {
			if (v == 8)
				atomic_fetch_add(&st->hits, 1);
		} else if (v == 0xffffffff) {
			atomic_fetch_add(&st->misses, 1);
		}
		io_bus_access(st->bus, IO_SPACE_PIO, 0x3f8, 1, false, &v);
	}
	return NULL;
}

TEST(concurrent_dispatch_and_moves)
{
	struct stress st = { 0 };
	pthread_t t[3];

	CHECK(io_bus_create(&st.bus) == 0);
	CHECK(io_bus_register(st.bus, IO_SPACE_PIO, 0x3f8, 8, counter, NULL, "com1") == 0);
	for (int i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, stress_reader, &st);
	/* at least 20000 moves, and on until the readers (which a busy host may start late)
	 * have seen some of them */
	for (int i = 0; i < 20000 || (atomic_load(&st.hits) + atomic_load(&st.misses) < 1000 &&
				     i < 20000000); i++) {
		uint64_t base = (i & 1) ? 0x10000 : 0x20000;

		CHECK(io_bus_register(st.bus, IO_SPACE_MMIO, base, 0x1000, counter, NULL, "bar") == 0);
		CHECK(io_bus_unregister(st.bus, IO_SPACE_MMIO, base) == 0);
	}
	atomic_store(&st.stop, 1);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	/* Every access was either routed with the right offset or read as unclaimed. */
	CHECK(atomic_load(&st.hits) + atomic_load(&st.misses) > 0);
	io_bus_destroy(st.bus);
}
