/*
 * test_virtq.c: the split virtqueue walker against fake guest memory: direct and indirect
 * chains, used-ring updates, event-index and flag suppression both ways, the legacy layout,
 * and malformed rings (loops, out-of-range indices, chains longer than the queue, bad
 * indirect tables, buffers beyond RAM or over the rings): each marks the queue broken.
 */
#include <string.h>

#include "unit.h"
#include "virtio/virtq.h"
#include "vmm/guest_mem.h"

#define QSZ 8
#define DESC 0x10000
#define AVAIL 0x11000
#define USED 0x12000
#define BUF 0x20000
#define RAM (1 << 20)

static struct guest_mem *gm;
static struct virtq vq;
static struct virtq_chain chain;
static uint16_t avail_idx;

static void put_desc(struct guest_mem *m, uint64_t table, unsigned i, uint64_t addr,
		     uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t d[16];

	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
	gm_write(m, table + 16ULL * i, d, 16);
}

static void offer(uint16_t head)
{
	gm_write(gm, AVAIL + 4 + 2 * (avail_idx % QSZ), &head, 2);
	avail_idx++;
	gm_write(gm, AVAIL + 2, &avail_idx, 2);
}

static uint16_t rd16(uint64_t gpa)
{
	uint16_t v = 0;

	gm_read(gm, gpa, &v, 2);
	return v;
}

static uint32_t rd32(uint64_t gpa)
{
	uint32_t v = 0;

	gm_read(gm, gpa, &v, 4);
	return v;
}

static void wr16(uint64_t gpa, uint16_t v)
{
	gm_write(gm, gpa, &v, 2);
}

static void setup(uint64_t features)
{
	static const uint8_t zero[0x3000];

	if (!gm)
		gm_create(&gm, RAM);
	gm_write(gm, DESC, zero, sizeof zero);
	memset(&vq, 0, sizeof vq);
	vq.gm = gm;
	virtq_reset(&vq);
	vq.size = QSZ;
	vq.desc_gpa = DESC;
	vq.avail_gpa = AVAIL;
	vq.used_gpa = USED;
	avail_idx = 0;
	CHECK_EQ_U64(virtq_enable(&vq, features), 0);
}

TEST(virtq_direct_chain_and_used_ring)
{
	setup(0);
	CHECK_EQ_U64(virtq_pop(&vq, &chain), 0);
	put_desc(gm, DESC, 3, BUF, 16, VIRTQ_DESC_F_NEXT, 5);
	put_desc(gm, DESC, 5, BUF + 0x100, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	put_desc(gm, DESC, 1, BUF + 0x400, 1, VIRTQ_DESC_F_WRITE, 0);
	offer(3);
	CHECK_EQ_U64(virtq_pop(&vq, &chain), 1);
	CHECK_EQ_U64(chain.head, 3);
	CHECK_EQ_U64(chain.nout, 1);
	CHECK_EQ_U64(chain.nin, 2);
	CHECK_EQ_U64(chain.out_len, 16);
	CHECK_EQ_U64(chain.in_len, 513);
	CHECK_EQ_U64(chain.gpa[1], BUF + 0x100);
	CHECK(chain.iov[2].iov_base == gm_ptr(gm, BUF + 0x400, 1, false));
	CHECK_EQ_U64(virtq_pop(&vq, &chain), 0);
	virtq_push(&vq, 3, 513);
	CHECK_EQ_U64(rd16(USED + 2), 1);
	CHECK_EQ_U64(rd32(USED + 4), 3);
	CHECK_EQ_U64(rd32(USED + 8), 513);
	CHECK(virtq_should_interrupt(&vq));
	wr16(AVAIL, VIRTQ_AVAIL_F_NO_INTERRUPT);
	virtq_push(&vq, 3, 0);
	CHECK(!virtq_should_interrupt(&vq));
	CHECK(!vq.broken);
}

TEST(virtq_indirect_table)
{
	setup(1ULL << 28);
	put_desc(gm, BUF + 0x1000, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 2);
	put_desc(gm, BUF + 0x1000, 2, BUF + 0x200, 64, VIRTQ_DESC_F_WRITE, 0);
	put_desc(gm, DESC, 0, BUF + 0x1000, 3 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	CHECK_EQ_U64(virtq_pop(&vq, &chain), 1);
	CHECK_EQ_U64(chain.nout, 1);
	CHECK_EQ_U64(chain.nin, 1);
	CHECK_EQ_U64(chain.in_len, 64);
	CHECK(!vq.broken);
}

/* One malformed ring per case; each must break the queue and keep it broken. */
static void expect_broken(const char *what)
{
	int r = virtq_pop(&vq, &chain);

	if (r != -5 || !vq.broken) {
		char msg[128];

		snprintf(msg, sizeof msg, "not broken by: %s (r=%d)", what, r);
		unit_fail(__FILE__, __LINE__, msg);
	}
	CHECK(vq.why[0] != '\0');
	CHECK_EQ_U64(virtq_pop(&vq, &chain), -5);
}

TEST(virtq_malformed_chains)
{
	setup(0);
	put_desc(gm, DESC, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 1);
	put_desc(gm, DESC, 1, BUF, 16, VIRTQ_DESC_F_NEXT, 0);
	offer(0);
	expect_broken("loop");

	setup(0);
	put_desc(gm, DESC, 0, BUF, 16, VIRTQ_DESC_F_NEXT, QSZ);
	offer(0);
	expect_broken("next out of range");

	setup(0);
	offer(QSZ + 3);
	expect_broken("head out of range");

	setup(0);
	avail_idx = QSZ + 1;
	wr16(AVAIL + 2, avail_idx);
	expect_broken("avail index jumped");

	setup(0);
	for (unsigned i = 0; i < QSZ; i++)
		put_desc(gm, DESC, i, BUF + 16 * i, 16, VIRTQ_DESC_F_NEXT, (uint16_t)(i + 1) % QSZ);
	offer(0);
	expect_broken("chain longer than the queue");

	setup(0);
	put_desc(gm, DESC, 0, RAM - 8, 16, 0, 0);
	offer(0);
	expect_broken("buffer beyond RAM");

	setup(0);
	put_desc(gm, DESC, 0, 0xffffffffffffff00ULL, 0x200, 0, 0);
	offer(0);
	expect_broken("buffer wraps");

	setup(0);
	put_desc(gm, DESC, 0, USED, 64, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	expect_broken("buffer over the used ring");

	setup(0);
	put_desc(gm, DESC, 0, BUF, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	put_desc(gm, DESC, 1, BUF + 64, 16, 0, 0);
	offer(0);
	expect_broken("readable after writable");

	setup(0);
	put_desc(gm, DESC, 0, BUF + 0x1000, 32, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_broken("indirect without the feature");

	setup(1ULL << 28);
	put_desc(gm, DESC, 0, BUF + 0x1000, 24, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_broken("indirect table size not a multiple of 16");

	setup(1ULL << 28);
	put_desc(gm, DESC, 0, BUF + 0x1000, (QSZ + 1) * 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_broken("indirect table longer than the queue");

	setup(1ULL << 28);
	put_desc(gm, BUF + 0x1000, 0, BUF + 0x2000, 32, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc(gm, DESC, 0, BUF + 0x1000, 32, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_broken("nested indirect");

	setup(1ULL << 28);
	put_desc(gm, BUF + 0x1000, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 1);
	put_desc(gm, BUF + 0x1000, 1, BUF, 16, VIRTQ_DESC_F_NEXT, 0);
	put_desc(gm, DESC, 0, BUF + 0x1000, 32, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_broken("indirect loop");

	setup(1ULL << 28);
	put_desc(gm, BUF + 0x1000, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 7);
	put_desc(gm, DESC, 0, BUF + 0x1000, 32, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_broken("indirect next out of range");

	setup(1ULL << 28);
	put_desc(gm, DESC, 0, RAM - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_broken("indirect table beyond RAM");

	setup(1ULL << 28);
	put_desc(gm, DESC, 0, BUF + 0x1000, 32, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
	offer(0);
	expect_broken("indirect with NEXT");

	/* Reset clears the broken state. */
	virtq_reset(&vq);
	CHECK(!vq.broken);
}

TEST(virtq_enable_checks)
{
	setup(0);
	vq.desc_gpa = DESC + 8;
	CHECK(virtq_enable(&vq, 0) < 0);
	CHECK(!vq.ready);
	vq.desc_gpa = RAM - 16;
	CHECK(virtq_enable(&vq, 0) < 0);
	vq.desc_gpa = DESC;
	vq.size = 6;
	CHECK(virtq_enable(&vq, 0) < 0);
	vq.size = QSZ;
	CHECK_EQ_U64(virtq_enable(&vq, 0), 0);
}

TEST(virtq_event_idx_both_ways)
{
	setup(1ULL << 29);
	/* Driver -> device: enabling notifications publishes avail_event = last_avail. */
	put_desc(gm, DESC, 0, BUF, 16, 0, 0);
	offer(0);
	CHECK_EQ_U64(virtq_pop(&vq, &chain), 1);
	CHECK(!virtq_set_notify(&vq, true));
	CHECK_EQ_U64(rd16(USED + 4 + 8 * QSZ), 1);
	offer(0);
	CHECK(virtq_set_notify(&vq, true));	/* more arrived: the caller pops again */
	CHECK_EQ_U64(virtq_pop(&vq, &chain), 1);
	/* An empty pop arms notifications by itself: avail_event = the next index wanted. */
	CHECK_EQ_U64(virtq_pop(&vq, &chain), 0);
	CHECK_EQ_U64(rd16(USED + 4 + 8 * QSZ), 2);
	/* Device -> driver: used_event = 0 asks for the interrupt after entry 0 only. */
	wr16(AVAIL + 4 + 2 * QSZ, 0);
	virtq_push(&vq, 0, 0);
	CHECK(virtq_should_interrupt(&vq));
	virtq_push(&vq, 0, 0);
	CHECK(!virtq_should_interrupt(&vq));
	wr16(AVAIL + 4 + 2 * QSZ, 2);
	virtq_push(&vq, 0, 0);
	CHECK(virtq_should_interrupt(&vq));
}

TEST(virtq_flag_suppression)
{
	setup(0);
	virtq_set_notify(&vq, false);
	CHECK_EQ_U64(rd16(USED) & VIRTQ_USED_F_NO_NOTIFY, VIRTQ_USED_F_NO_NOTIFY);
	virtq_set_notify(&vq, true);
	CHECK_EQ_U64(rd16(USED) & VIRTQ_USED_F_NO_NOTIFY, 0);
}

TEST(virtq_legacy_ring_layout)
{
	setup(0);
	vq.size = 256;
	virtq_legacy_layout(&vq, 0x10);
	CHECK_EQ_U64(vq.desc_gpa, 0x10000);
	CHECK_EQ_U64(vq.avail_gpa, 0x10000 + 16 * 256);
	CHECK_EQ_U64(vq.used_gpa, 0x12000);	/* 0x11000 + 6 + 512 rounded to 4 KiB */
	CHECK_EQ_U64(virtq_enable(&vq, 0), 0);
}
