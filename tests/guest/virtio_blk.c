/*
 * virtio_blk: a virtio-blk disk (virtio 1.2 §5.2, §4.1) found by PCI scan, driven through
 * "mode=modern|legacy": IDs, negotiation, capacity/"size=", "bs=", patterns at the start, middle
 * and end, eight requests in flight, every request queue (F_MQ, up to 4), reads past the end,
 * flush, GET_ID against "ser=", write-zeroes, discard, used lengths, the PCI_CFG window, ISR,
 * "irq=msix|intx" completions, "ro=1" refusals, resets (idle, in flight, after a chain outside
 * RAM: refused with "hostile=1"). "need=flush,discard,wz", "indirect=0", "evidx=0"; "test=durable
 * at=N": 1 MiB of text records from sector N, flushed, then FLUSHED and spin (README.md).
 */
#include "virtio.h"

#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define T_DISCARD 11
#define T_WRITE_ZEROES 13
#define S_OK 0
#define S_IOERR 1
#define S_UNSUPP 2

#define F_SIZE_MAX 1
#define F_SEG_MAX 2
#define F_RO 5
#define F_BLK_SIZE 6
#define F_FLUSH 9
#define F_TOPOLOGY 10
#define F_MQ 12
#define F_DISCARD 13
#define F_WRITE_ZEROES 14

#define CHUNK 65536
#define MSIX_VECTOR 0x50
#define INTX_VECTOR 0x51
#define TIMEOUT_US 10000000

static struct vio_dev dev;
static uint8_t wbuf[8 * CHUNK] __attribute__((aligned(4096)));
static uint8_t rbuf[8 * CHUNK] __attribute__((aligned(4096)));
static struct {
	uint32_t type, reserved;
	uint64_t sector;
} hdr[8] __attribute__((aligned(16)));
static volatile uint8_t st[8];
static uint32_t bs = 512;
static uint64_t capacity;		/* 512-byte sectors */
static volatile int irqs;
static int len_bad;
static int cur_q, nqueues = 1;		/* the queue req() uses; request queues set up */
static char len_detail[96];
static volatile uint8_t isr_in_irq = 0xff, isr_after_irq = 0xff;
static uint32_t intx_pin;

static bool has(int bit)
{
	return dev.drv_features & (1ull << bit);
}

static bool needed(const char *what)
{
	char buf[64];
	if (!cmdline_get("need", buf, sizeof(buf)))
		return false;
	size_t n = strlen(what);
	for (const char *p = buf; *p;) {
		if (!strncmp(p, what, n) && (p[n] == ',' || !p[n]))
			return true;
		while (*p && *p != ',')
			p++;
		if (*p)
			p++;
	}
	return false;
}

/* One request: header, optional data, status. Returns the status byte or -1 (timeout). */
static int req(uint32_t type, uint64_t sector, void *data, uint32_t len, bool data_in)
{
	struct vio_buf b[3];
	int n = 0;
	hdr[0].type = type;
	hdr[0].reserved = 0;
	hdr[0].sector = sector;
	st[0] = 0xff;
	b[n++] = (struct vio_buf){ &hdr[0], sizeof(hdr[0]), false };
	if (len)
		b[n++] = (struct vio_buf){ data, len, data_in };
	b[n++] = (struct vio_buf){ (void *)&st[0], 1, true };
	int64_t used = vio_xfer(&dev, cur_q, b, n, TIMEOUT_US);
	if (used < 0)
		return -1;
	/* §2.7.8: the used length is what the device wrote: data and status for a read, the
	 * status byte alone for a write or flush. */
	int64_t want = type == T_IN || type == T_GET_ID ? (int64_t)len + 1 : 1;
	if (st[0] == S_OK && (type == T_IN || type == T_OUT || type == T_FLUSH) && used != want &&
	    !len_bad++)
		snprintf(len_detail, sizeof(len_detail), "type %u of %u bytes: used length %ld, want %ld",
			 type, len, used, want);
	return st[0];
}

static uint32_t pat(uint64_t sector, uint32_t i, uint32_t seed)
{
	uint32_t x = (uint32_t)sector * 0x9e3779b1u ^ (i + 1) * 0x85ebca6bu ^ seed;
	x ^= x >> 15;
	return x * 0x2c1b3c6du;
}

static void fill(uint8_t *buf, uint64_t sector, uint32_t len, uint32_t seed)
{
	for (uint32_t i = 0; i < len / 4; i++)
		((uint32_t *)buf)[i] = pat(sector + i / 128, i % 128, seed);
}

static void rw_at(const char *name, uint64_t sector, uint32_t len, uint32_t seed)
{
	fill(wbuf, sector, len, seed);
	memset(rbuf, 0, len);
	int sw = req(T_OUT, sector, wbuf, len, false);
	int sr = req(T_IN, sector, rbuf, len, true);
	char cname[48];
	snprintf(cname, sizeof(cname), "write-read-%s", name);
	if (sw != S_OK || sr != S_OK) {
		not_ok(cname, "sector %lu: write status %d, read status %d", sector, sw, sr);
		return;
	}
	for (uint32_t i = 0; i < len; i++)
		if (rbuf[i] != wbuf[i]) {
			not_ok(cname, "sector %lu: byte %u reads %x, wrote %x", sector, i, rbuf[i],
			       wbuf[i]);
			return;
		}
	ok(cname);
}

/* Eight reads in flight at once, completed in any order. */
static void in_flight(uint64_t sector)
{
	fill(wbuf, sector, 8 * 4096, 0x5a5a);
	if (req(T_OUT, sector, wbuf, 8 * 4096, false) != S_OK) {
		not_ok("eight-in-flight", "preparatory write failed");
		return;
	}
	memset(rbuf, 0, 8 * 4096);
	int heads[8];
	for (int i = 0; i < 8; i++) {
		hdr[i].type = T_IN;
		hdr[i].reserved = 0;
		hdr[i].sector = sector + 8u * i;
		st[i] = 0xff;
		struct vio_buf b[3] = {
			{ &hdr[i], sizeof(hdr[i]), false },
			{ rbuf + 4096 * i, 4096, true },
			{ (void *)&st[i], 1, true },
		};
		heads[i] = vio_add(&dev, 0, b, 3, i & 1);
	}
	vio_kick(&dev, 0);
	int done = 0, bad = 0;
	for (int k = 0; k < 8; k++) {
		uint32_t id, len;
		if (vio_wait(&dev, 0, &id, &len, TIMEOUT_US))
			break;
		bool known = false;
		for (int i = 0; i < 8; i++)
			if (heads[i] >= 0 && (uint32_t)heads[i] == id) {
				known = true;
				heads[i] = -1;
				bad += st[i] != S_OK;
			}
		bad += !known;
		done++;
	}
	if (done != 8 || bad) {
		not_ok("eight-in-flight", "%d of 8 completed, %d bad", done, bad);
		return;
	}
	check(!memcmp(rbuf, wbuf, 8 * 4096), "eight-in-flight", "data differs");
}

static bool all_zero(const uint8_t *p, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* A discard or write-zeroes request with one segment (§5.2.6). */
static int range_req(uint32_t type, uint64_t sector, uint32_t count, bool unmap)
{
	static struct {
		uint64_t sector;
		uint32_t num, flags;
	} seg __attribute__((aligned(16)));
	seg.sector = sector;
	seg.num = count;
	seg.flags = unmap ? 1 : 0;
	return req(type, 0, &seg, sizeof(seg), false);
}

static void msix_irq(struct trap_frame *f)
{
	irqs++;
	lapic_eoi();
}

static void intx_irq(struct trap_frame *f)
{
	uint8_t isr = vio_isr(&dev);
	isr_in_irq = isr;
	isr_after_irq = vio_isr(&dev);
	if (isr & 1)
		irqs++;
	lapic_eoi();
}

/* Negotiate again after a reset and set the queue up (§3.1.1). */
static int reinit(uint64_t want, bool msix)
{
	if (vio_init(&dev, want) || vio_queue_setup(&dev, 0, 128))
		return -1;
	if (msix && vio_msix_queue(&dev, 0, 0))
		return -1;
	vio_driver_ok(&dev);
	return vio_status(&dev) & VIRTIO_S_DRIVER_OK ? 0 : -1;
}

static void works_again(const char *name, bool ro)
{
	if (ro) {
		int r = req(T_IN, 0, rbuf, CHUNK, true);
		check(r == S_OK, name, "read status %d", r);
	} else {
		rw_at(name, capacity / 2 / (bs / 512) * (bs / 512), CHUNK, 0x9999);
	}
}

static void reset_tests(uint64_t want, bool msix, bool ro)
{
	vio_reset(&dev);
	check(vio_status(&dev) == 0 && !vio_queue_live(&dev, 0), "reset-clears-queue",
	      "status %x, queue 0 %s after reset", vio_status(&dev),
	      vio_queue_live(&dev, 0) ? "still set up" : "cleared");
	if (reinit(want, msix)) {
		not_ok("reinit", "device did not come back after a reset");
		finish();
	}
	works_again("works-after-reset", ro);

	/* Eight 64 KiB requests in flight, then a reset without waiting for them. */
	fill(wbuf, 0, CHUNK, 0xabcd);
	for (int i = 0; i < 8; i++) {
		hdr[i].type = ro ? T_IN : T_OUT;
		hdr[i].reserved = 0;
		hdr[i].sector = (uint64_t)i * (CHUNK / 512);
		struct vio_buf b[3] = {
			{ &hdr[i], sizeof(hdr[i]), false },
			{ ro ? rbuf + CHUNK * i : wbuf, CHUNK, ro },
			{ (void *)&st[i], 1, true },
		};
		vio_add(&dev, 0, b, 3, false);
	}
	vio_kick(&dev, 0);
	vio_reset(&dev);
	check(vio_status(&dev) == 0, "reset-in-flight", "status %x after reset", vio_status(&dev));
	if (reinit(want, msix)) {
		not_ok("reinit", "device did not come back after a reset with requests in flight");
		finish();
	}
	works_again("works-after-reset-in-flight", ro);

	/* A read into memory far beyond RAM: no success may come back. */
	hdr[0] = (typeof(hdr[0])){ T_IN, 0, 0 };
	st[0] = 0xff;
	struct vio_buf bad[3] = {
		{ &hdr[0], sizeof(hdr[0]), false },
		{ (void *)(1ull << 40), 4096, true },
		{ (void *)&st[0], 1, true },
	};
	vio_add(&dev, 0, bad, 3, false);
	vio_kick(&dev, 0);
	uint32_t id, len;
	bool done = !vio_wait(&dev, 0, &id, &len, 1000000);
	printf("# chain outside RAM: %s, status byte %x, device status %x\n",
	       done ? "completed" : "not completed", st[0], vio_status(&dev));
	/* QEMU 7.2 accepts it (writes to unassigned space are dropped): checked with hostile=1. */
	if (cmdline_num("hostile", 0))
		check(!done || st[0] != S_OK, "hostile-chain-refused", "completed with status OK");
	vio_reset(&dev);
	if (reinit(want, msix)) {
		not_ok("reinit", "device did not come back after a chain outside RAM");
		finish();
	}
	works_again("works-after-hostile-chain", ro);
}

/* §4.1.4.9: the PCI configuration access window agrees with the memory-mapped registers. */
static void pcicfg_window(void)
{
	if (!dev.pcicfg_cap) {
		not_ok("pci-cfg-window", "no VIRTIO_PCI_CAP_PCI_CFG capability (required, §4.1.4.9)");
		return;
	}
	const struct vio_win *c = &dev.common, *g = &dev.devcfg;
	uint32_t f0 = 0, f1 = 0, cap = 0, st8 = 0, nq = 0;
	int bad = vio_pcicfg_write(&dev, c->bar, c->bar_off + 0, 4, 1);	/* feature select 1 */
	bad |= vio_pcicfg_read(&dev, c->bar, c->bar_off + 4, 4, &f1);
	vio_wr32(c, 0, 0);
	bad |= vio_pcicfg_read(&dev, c->bar, c->bar_off + 4, 4, &f0);
	bad |= vio_pcicfg_read(&dev, g->bar, g->bar_off + 0, 4, &cap);
	bad |= vio_pcicfg_read(&dev, c->bar, c->bar_off + 20, 1, &st8);
	bad |= vio_pcicfg_read(&dev, c->bar, c->bar_off + 18, 2, &nq);
	check(!bad && f0 == (uint32_t)dev.dev_features && f1 == (uint32_t)(dev.dev_features >> 32) &&
	      cap == (uint32_t)capacity && st8 == vio_status(&dev) && nq == vio_rd16(c, 18),
	      "pci-cfg-window", "features %x:%x, capacity %x, status %x, num_queues %u through the "
	      "window", f1, f0, cap, st8, nq);
}

static void durable(void)
{
	uint64_t at = cmdline_num("at", 2048);
	/* 2048 sectors of 16 text records of 32 bytes, in 16 requests of 64 KiB, all in flight. */
	static uint8_t big[16][CHUNK] __attribute__((aligned(4096)));
	static struct {
		uint32_t type, reserved;
		uint64_t sector;
	} h[16];
	static volatile uint8_t s[16];
	char rec[40];
	for (int r = 0; r < 16; r++) {
		for (int sec = 0; sec < 128; sec++)
			for (int k = 0; k < 16; k++) {
				uint64_t n = at + 128u * r + sec;
				snprintf(rec, sizeof(rec), "s%08lu r%02d khyve-durability.\n", n, k);
				memcpy(big[r] + 512 * sec + 32 * k, rec, 32);
			}
		h[r].type = T_OUT;
		h[r].reserved = 0;
		h[r].sector = at + 128u * r;
		s[r] = 0xff;
		struct vio_buf b[3] = {
			{ &h[r], sizeof(h[r]), false },
			{ big[r], CHUNK, false },
			{ (void *)&s[r], 1, true },
		};
		if (vio_add(&dev, 0, b, 3, false) < 0) {
			not_ok("durable-write", "queue full at request %d", r);
			finish();
		}
	}
	vio_kick(&dev, 0);
	for (int r = 0; r < 16; r++) {
		uint32_t id, len;
		if (vio_wait(&dev, 0, &id, &len, TIMEOUT_US)) {
			not_ok("durable-write", "request timed out");
			finish();
		}
	}
	for (int r = 0; r < 16; r++)
		if (s[r] != S_OK) {
			not_ok("durable-write", "request %d status %u", r, s[r]);
			finish();
		}
	int f = req(T_FLUSH, 0, NULL, 0, false);
	if (f != S_OK) {
		not_ok("durable-flush", "status %d", f);
		finish();
	}
	printf("FLUSHED\n");
	for (;;)	/* running, not halted: the VMM must be killed to stop */
		cpu_relax();
}

void test_main(void)
{
	enum vio_mode mode = vio_cmdline_mode();
	char buf[64];
	bool ro = cmdline_num("ro", 0) != 0;
	bool use_msix = cmdline_get("irq", buf, sizeof(buf)) && !strncmp(buf, "msix", 5);
	bool use_intx = cmdline_get("irq", buf, sizeof(buf)) && !strncmp(buf, "intx", 5);

	if (vio_find(&dev, VIRTIO_ID_BLOCK, mode, 0)) {
		not_ok("find-device", "no virtio-blk device");
		finish();
	}
	ok("find-device");
	uint16_t subsys = pci_read16(0, dev.slot, dev.fn, 0x2e);
	if (dev.device_id == 0x1001)
		check(dev.revision == 0 && subsys == VIRTIO_ID_BLOCK, "pci-ids",
		      "transitional device: revision %u (want 0), subsystem %x (want 2)",
		      dev.revision, subsys);
	else
		check(dev.revision >= 1, "pci-ids", "non-transitional device: revision %u (want >= 1)",
		      dev.revision);
	check(pci_read8(0, dev.slot, dev.fn, 0xb) == 0x01 && pci_read8(0, dev.slot, dev.fn, 0xa) == 0x00,
	      "pci-class", "class %x/%x, want mass storage/SCSI (01/00)",
	      pci_read8(0, dev.slot, dev.fn, 0xb), pci_read8(0, dev.slot, dev.fn, 0xa));

	uint64_t want = 1ull << F_RO | 1ull << F_BLK_SIZE | 1ull << F_FLUSH | 1ull << F_SEG_MAX |
			1ull << F_SIZE_MAX | 1ull << F_TOPOLOGY | 1ull << F_DISCARD |
			1ull << F_WRITE_ZEROES | 1ull << F_MQ;
	if (cmdline_num("indirect", 1))
		want |= 1ull << VIRTIO_F_INDIRECT_DESC;
	if (cmdline_num("evidx", 1))
		want |= 1ull << VIRTIO_F_EVENT_IDX;
	if (vio_init(&dev, want)) {
		not_ok("negotiate", "feature negotiation failed");
		finish();
	}
	ok("negotiate");
	if (use_msix) {
		idt_set_handler(MSIX_VECTOR, msix_irq);
		lapic_enable();
		if (vio_msix_enable(&dev) || vio_msix_entry(&dev, 0, MSIX_VECTOR)) {
			not_ok("msix-setup", "no usable MSI-X capability");
			finish();
		}
	}
	if (vio_queue_setup(&dev, 0, 128)) {
		not_ok("queue-setup", "request queue 0 could not be set up");
		finish();
	}
	if (has(F_MQ)) {
		uint16_t n = vio_cfg16(&dev, 34);
		check(n >= 1, "num-queues", "VIRTIO_BLK_F_MQ with num_queues %u", n);
		nqueues = n > 4 ? 4 : n ? n : 1;
		for (int q = 1; q < nqueues; q++)
			if (vio_queue_setup(&dev, q, 128)) {
				not_ok("queue-setup", "request queue %d could not be set up", q);
				nqueues = q;
			}
		printf("# %u request queues, using %d\n", n, nqueues);
	}
	if (use_msix)
		check(!vio_msix_queue(&dev, 0, 0), "msix-setup", "device refused MSI-X entry 0");
	if (use_intx) {
		idt_set_handler(INTX_VECTOR, intx_irq);
		pic_disable();
		lapic_enable();
		if (vio_intx_route(&dev, INTX_VECTOR, &intx_pin)) {
			not_ok("intx-setup", "INTx not routable");
			finish();
		}
		ok("intx-setup");
	}
	vio_driver_ok(&dev);
	uint8_t s = vio_status(&dev);
	check((s & VIRTIO_S_DRIVER_OK) && !(s & (VIRTIO_S_NEEDS_RESET | VIRTIO_S_FAILED)),
	      "driver-ok", "status %x", s);
	printf("# queue 0: %u entries%s%s\n", dev.q[0].size, dev.indirect ? ", indirect" : "",
	       dev.event_idx ? ", event index" : "");

	capacity = vio_cfg64(&dev, 0);
	uint64_t want_size = cmdline_num("size", 0);
	if (want_size)
		check(capacity * 512 == want_size, "capacity", "%lu sectors, want %lu bytes",
		      capacity, want_size);
	else
		check(capacity > 0, "capacity", "capacity 0");
	if (dev.modern)
		pcicfg_window();
	if (has(F_BLK_SIZE))
		bs = vio_cfg32(&dev, 20);
	printf("# capacity %lu sectors (%lu KiB), block size %u\n", capacity, capacity / 2, bs);
	uint64_t want_bs = cmdline_num("bs", 0);
	if (want_bs)
		check(bs == want_bs, "block-size", "block size %u, want %lu", bs, want_bs);
	if (bs < 512 || bs > CHUNK || (bs & (bs - 1))) {
		not_ok("block-size", "unusable block size %u", bs);
		finish();
	}
	uint32_t bsec = bs / 512;
	if (capacity < 4096 || capacity % bsec) {
		not_ok("capacity-usable", "need at least 2 MiB in whole blocks, have %lu sectors",
		       capacity);
		finish();
	}
	if (cmdline_get("test", buf, sizeof(buf)) && !strncmp(buf, "durable", 8))
		durable();
	check(ro == has(F_RO), "read-only-feature", "VIRTIO_BLK_F_RO %s, ro=%d",
	      has(F_RO) ? "offered" : "absent", ro);

	uint64_t mid = capacity / 2 / bsec * bsec, end = capacity - CHUNK / 512;
	if (ro) {
		/* The data must survive a refused write. */
		int r0 = req(T_IN, 0, rbuf, CHUNK, true);
		check(r0 == S_OK, "read-ro", "status %d", r0);
		fill(wbuf, 0, CHUNK, 0x1234);
		int w = req(T_OUT, 0, wbuf, CHUNK, false);
		check(w == S_IOERR || w == S_UNSUPP, "write-refused-ro", "write status %d", w);
		int r1 = req(T_IN, 0, rbuf + CHUNK, CHUNK, true);
		check(r1 == S_OK && !memcmp(rbuf, rbuf + CHUNK, CHUNK), "data-unchanged-ro",
		      "read status %d or data changed", r1);
		if (has(F_WRITE_ZEROES)) {
			int z = range_req(T_WRITE_ZEROES, 0, bsec, false);
			check(z == S_IOERR || z == S_UNSUPP, "write-zeroes-refused-ro", "status %d", z);
		}
	} else {
		rw_at("start", 0, CHUNK, 0x1111);
		rw_at("middle", mid, CHUNK, 0x2222);
		rw_at("end", end, CHUNK, 0x3333);
		rw_at("last-block", capacity - bsec, bs, 0x4444);
		in_flight(mid + CHUNK / 512);
		for (cur_q = 1; cur_q < nqueues; cur_q++) {
			char qn[16];
			snprintf(qn, sizeof(qn), "queue%d", cur_q);
			rw_at(qn, mid + (uint64_t)(1 + cur_q) * (CHUNK / 512), CHUNK, 0x100u * cur_q);
		}
		cur_q = 0;
		/* Data written earlier is still there after the other writes. */
		fill(wbuf, 0, CHUNK, 0x1111);
		int r = req(T_IN, 0, rbuf, CHUNK, true);
		check(r == S_OK && !memcmp(rbuf, wbuf, CHUNK), "reread-start", "status %d or data differs",
		      r);
	}
	int past = req(T_IN, capacity, rbuf, bs, true);
	check(past == S_IOERR || past == S_UNSUPP, "read-past-end-fails", "status %d", past);
	int straddle = req(T_IN, capacity - bsec, rbuf, 2 * bs, true);
	check(straddle == S_IOERR || straddle == S_UNSUPP, "read-straddling-end-fails", "status %d",
	      straddle);

	if (has(F_FLUSH)) {
		int f = req(T_FLUSH, 0, NULL, 0, false);
		check(f == S_OK, "flush", "status %d", f);
	} else {
		check(!needed("flush"), "flush", "VIRTIO_BLK_F_FLUSH not offered");
	}

	char id[21];
	memset(id, 0, sizeof(id));
	int g = req(T_GET_ID, 0, id, 20, true);
	char ser[32];
	if (cmdline_get("ser", ser, sizeof(ser)))
		check(g == S_OK && !strncmp(id, ser, 20), "get-id", "status %d, id '%s', want '%s'", g,
		      id, ser);
	else
		check(g == S_OK, "get-id", "status %d", g);
	printf("# serial '%s'\n", id);

	if (!ro && has(F_WRITE_ZEROES)) {
		uint64_t wz = capacity * 3 / 4 / bsec * bsec;
		uint32_t max = vio_cfg32(&dev, 48);
		uint32_t n = CHUNK / 512;
		printf("# write-zeroes: max %u sectors, %u segments, may unmap %u\n", max,
		       vio_cfg32(&dev, 52), vio_cfg8(&dev, 56));
		fill(wbuf, wz, CHUNK, 0x7777);
		int w = req(T_OUT, wz, wbuf, CHUNK, false);
		int z = range_req(T_WRITE_ZEROES, wz, max && max < n ? max / bsec * bsec : n, false);
		memset(rbuf, 0xee, CHUNK);
		int r = req(T_IN, wz, rbuf, CHUNK, true);
		uint32_t zlen = (max && max < n ? max / bsec * bsec : n) * 512;
		check(w == S_OK && z == S_OK && r == S_OK && all_zero(rbuf, zlen), "write-zeroes",
		      "write %d, write-zeroes %d, read %d, %s", w, z, r,
		      all_zero(rbuf, zlen) ? "zeroes" : "not zeroes");
	} else if (!ro) {
		check(!needed("wz"), "write-zeroes", "VIRTIO_BLK_F_WRITE_ZEROES not offered");
	}

	if (!ro && has(F_DISCARD)) {
		uint32_t max = vio_cfg32(&dev, 36), align = vio_cfg32(&dev, 44);
		printf("# discard: max %u sectors, %u segments, alignment %u\n", max,
		       vio_cfg32(&dev, 40), align);
		/* 1 MiB at a quarter of the disk, in requests no larger than the device allows. */
		uint64_t at = capacity / 4 / 2048 * 2048;
		uint32_t left = 2048, step = max && max < 2048 ? max : 2048;
		if (align > 1)
			step = step / align * align;
		int bad = 0;
		for (uint64_t sct = at; left && step; sct += step, left -= step) {
			int d = range_req(T_DISCARD, sct, step < left ? step : left, false);
			if (d != S_OK) {
				bad = d;
				break;
			}
		}
		check(!bad && step, "discard", "status %d (step %u)", bad, step);
		printf("# discarded sectors %lu-%lu\n", at, at + 2047);
	} else if (!ro) {
		check(!needed("discard"), "discard", "VIRTIO_BLK_F_DISCARD not offered");
	}

	if (use_msix || use_intx) {
		/* Earlier completions left INTx asserted: the read deasserts it, and the handler
		 * counts only interrupts that find the queue bit set. */
		(void)vio_isr(&dev);
		int before = irqs;
		sti();
		int r = req(T_IN, 0, rbuf, bs, true);
		uint64_t until = tsc_deadline(1000000);
		while (irqs == before && (int64_t)(rdtsc() - until) < 0)
			cpu_relax();
		cli();
		check(r == S_OK && irqs > before, use_msix ? "msix-completion" : "intx-completion",
		      "status %d, %d interrupts", r, irqs - before);
		if (use_intx) {
			struct acpi_madt_info m;
			uint32_t io = acpi_madt(&m) || !m.ioapic_addr ? 0xfec00000u : m.ioapic_addr;
			uint32_t rte = ioapic_read(io, 0x10 + 2 * intx_pin);
			check((isr_in_irq & 1) && !(isr_after_irq & 1) && !(rte & (1u << 14)),
			      "intx-deasserted", "ISR %x in the handler, then %x; redirection entry %x",
			      isr_in_irq, isr_after_irq, rte);
		}
	} else {
		(void)vio_isr(&dev);
		int r = req(T_IN, 0, rbuf, bs, true);
		uint8_t isr = vio_isr(&dev), again = vio_isr(&dev);
		check(r == S_OK && (isr & 1) && !(again & 1), "isr-after-completion",
		      "status %d, ISR %x then %x (want bit 0 set, then clear)", r, isr, again);
	}

	check(!len_bad, "used-lengths", "%d requests, first: %s", len_bad, len_detail);
	reset_tests(want, use_msix, ro);
	check(!vio_broken(&dev), "device-healthy", "status %x", vio_status(&dev));
	vio_reset(&dev);
	check(vio_status(&dev) == 0, "reset", "status %x after reset", vio_status(&dev));
	finish();
}
