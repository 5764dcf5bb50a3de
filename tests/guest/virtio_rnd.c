/*
 * virtio_rnd: the virtio entropy device (virtio 1.2 §5.4) through the interface chosen by
 * "mode=modern|legacy": PCI IDs and revision, negotiation, one request queue, device-writable
 * buffers filled with used lengths within bounds, bytes that are not constant, two reads that
 * differ, a two-buffer chain and four requests in flight. Nothing about randomness quality.
 */
#include "virtio.h"

#define TIMEOUT_US 10000000

static struct vio_dev dev;
static uint8_t buf[4][256] __attribute__((aligned(64)));

static bool varied(const uint8_t *p, uint32_t n)
{
	for (uint32_t i = 1; i < n; i++)
		if (p[i] != p[0])
			return true;
	return false;
}

static int64_t fetch(uint8_t *p, uint32_t len)
{
	memset(p, 0, len);
	struct vio_buf b = { p, len, true };
	return vio_xfer(&dev, 0, &b, 1, TIMEOUT_US);
}

void test_main(void)
{
	if (vio_find(&dev, VIRTIO_ID_RNG, vio_cmdline_mode(), 0)) {
		not_ok("find-device", "no virtio-rnd device");
		finish();
	}
	ok("find-device");
	uint16_t subsys = pci_read16(0, dev.slot, dev.fn, 0x2e);
	if (dev.device_id == 0x1005)
		check(dev.revision == 0 && subsys == VIRTIO_ID_RNG, "pci-ids",
		      "transitional device: revision %u (want 0), subsystem %x (want 4)",
		      dev.revision, subsys);
	else
		check(dev.revision >= 1, "pci-ids", "non-transitional device: revision %u", dev.revision);
	uint64_t want = 0;
	if (cmdline_num("indirect", 1))
		want |= 1ull << VIRTIO_F_INDIRECT_DESC;
	if (cmdline_num("evidx", 1))
		want |= 1ull << VIRTIO_F_EVENT_IDX;
	if (vio_init(&dev, want) || vio_queue_setup(&dev, 0, 64)) {
		not_ok("setup", "negotiation or queue set-up failed");
		finish();
	}
	vio_driver_ok(&dev);
	ok("setup");

	int64_t n1 = fetch(buf[0], 64), n2 = fetch(buf[1], 64);
	check(n1 > 0 && n1 <= 64 && n2 > 0 && n2 <= 64, "read-lengths", "used lengths %ld, %ld",
	      n1, n2);
	if (n1 > 0 && n2 > 0) {
		uint32_t m = (uint32_t)(n1 < n2 ? n1 : n2);
		printf("# %02x %02x %02x %02x %02x %02x %02x %02x ...\n", buf[0][0], buf[0][1],
		       buf[0][2], buf[0][3], buf[0][4], buf[0][5], buf[0][6], buf[0][7]);
		check(m < 4 || varied(buf[0], (uint32_t)n1), "bytes-vary", "all %ld bytes are %02x", n1,
		      buf[0][0]);
		check(m < 4 || memcmp(buf[0], buf[1], m), "reads-differ", "two reads returned the same bytes");
	}

	/* Two buffers in one chain; the device may fill any prefix of the total. */
	struct vio_buf b2[2] = { { buf[2], 16, true }, { buf[2] + 16, 112, true } };
	memset(buf[2], 0, 128);
	int64_t n3 = vio_xfer(&dev, 0, b2, 2, TIMEOUT_US);
	check(n3 > 0 && n3 <= 128, "two-buffer-chain", "used length %ld", n3);

	/* Four requests in flight; collect until at least 256 bytes have come back. */
	int heads[4];
	for (int i = 0; i < 4; i++) {
		struct vio_buf b = { buf[i], 256, true };
		heads[i] = vio_add(&dev, 0, &b, 1, false);
	}
	vio_kick(&dev, 0);
	int done = 0, bad = 0;
	for (int i = 0; i < 4; i++) {
		uint32_t id, len;
		if (vio_wait(&dev, 0, &id, &len, TIMEOUT_US))
			break;
		done++;
		bool known = false;
		for (int k = 0; k < 4; k++)
			if (heads[k] >= 0 && (uint32_t)heads[k] == id) {
				heads[k] = -1;
				known = true;
			}
		bad += !known || len == 0 || len > 256;
	}
	check(done == 4 && !bad, "four-in-flight", "%d of 4 completed, %d bad", done, bad);

	check(!vio_broken(&dev), "device-healthy", "status %x", vio_status(&dev));
	vio_reset(&dev);
	check(vio_status(&dev) == 0, "reset", "status %x after reset", vio_status(&dev));
	finish();
}
