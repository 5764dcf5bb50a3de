/*
 * test_virtio_blk.c: virtio-blk through its PCI function with a test driver (virtio_drv.h)
 * on a temporary file: identity and capabilities, reads and writes at the start, middle and
 * end of the disk through the modern and the legacy interface, many requests in flight,
 * flush, GET_ID, discard (host blocks deallocated), write-zeroes, ro, out-of-range and
 * unknown requests, MSI-X vectors, a malformed chain (NEEDS_RESET) and reset with I/O in
 * flight (late completions never reach the new rings), the open errors, and the KVM
 * notifier paths with faked ioeventfd/irqfd (kicks by eventfd, messages by irqfd), and
 * completions published a batch at a time (fewer interrupts than requests).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "fake_vm.h"
#include "unit.h"
#include "virtio_drv.h"
#include "dev/virtio_blk.h"
#include "util/event_loop.h"

#define DISK_SIZE (8ULL << 20)
#define HDR 0x200000ULL		/* request headers, 16 bytes each, 64 apart */
#define DATA 0x400000ULL	/* data buffers */
#define STATUS 0x300000ULL	/* status bytes */

static char disk[128];

static const char *make_disk(void)
{
	int fd;

	snprintf(disk, sizeof disk, "/tmp/khyve-vblk-%d.img", (int)getpid());
	fd = open(disk, O_CREAT | O_RDWR | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, DISK_SIZE) < 0)
		return NULL;
	close(fd);
	return disk;
}

/* Queue one request (header, optional data, status) as request slot `slot`. */
static void req(struct drv *d, unsigned slot, uint32_t type, uint64_t sector, uint64_t data,
		uint32_t len, bool data_in)
{
	uint8_t hdr[16] = { 0 };
	struct drv_buf b[3];
	unsigned n = 0;
	uint8_t ff = 0xff;

	memcpy(hdr, &type, 4);
	memcpy(hdr + 8, &sector, 8);
	gm_write(d->vm->gm, HDR + 64ULL * slot, hdr, 16);
	gm_write(d->vm->gm, STATUS + slot, &ff, 1);
	b[n++] = (struct drv_buf){ HDR + 64ULL * slot, 16, false };
	if (len)
		b[n++] = (struct drv_buf){ data, len, data_in };
	b[n++] = (struct drv_buf){ STATUS + slot, 1, true };
	drv_add(d, 0, b, n);
}

static uint8_t status_of(struct drv *d, unsigned slot)
{
	uint8_t s = 0xee;

	gm_read(d->vm->gm, STATUS + slot, &s, 1);
	return s;
}

/* Run one request to completion; returns its status byte. */
static uint8_t run1(struct drv *d, uint32_t type, uint64_t sector, uint64_t data, uint32_t len,
		    bool data_in)
{
	uint16_t want = (uint16_t)(drv_used_idx(d, 0) + 1);

	req(d, 0, type, sector, data, len, data_in);
	drv_kick(d, 0);
	if (!drv_wait_used(d, 0, want))
		return 0xfe;
	return status_of(d, 0);
}

static void fill(struct drv *d, uint64_t gpa, uint8_t v, uint32_t len)
{
	uint8_t *p = gm_ptr(d->vm->gm, gpa, len, true);

	memset(p, v, len);
}

TEST(vblk_identity_and_config)
{
	struct drv d;
	char opts[256];

	snprintf(opts, sizeof opts, "%s,sectorsize=512/4096,ser=SERIAL-1", make_disk());
	CHECK_EQ_U64(drv_machine(&d, "virtio-blk", opts), 0);
	CHECK_EQ_U64(drv_cfg_read(&d, 0, 2), 0x1af4);
	CHECK_EQ_U64(drv_cfg_read(&d, 2, 2), 0x1001);
	CHECK_EQ_U64(drv_cfg_read(&d, 0x2c, 2), 0x1af4);
	CHECK_EQ_U64(drv_cfg_read(&d, 0x2e, 2), 2);
	CHECK_EQ_U64(drv_cfg_read(&d, 0x08, 1), 0);	/* transitional: revision 0 */
	CHECK_EQ_U64(drv_cfg_read(&d, 0x3d, 1), 1);	/* INTA */
	drv_find_caps(&d);
	CHECK(d.common && d.notify && d.isr && d.device && d.msix_cap);
	CHECK_EQ_U64(d.notify_mult, 4);
	CHECK(d.io != 0);
	CHECK_EQ_U64(drv_mmio_read(&d, d.device + 0, 8), DISK_SIZE / 512);
	CHECK_EQ_U64(drv_mmio_read(&d, d.device + 0x14, 4), 512);
	CHECK_EQ_U64(drv_mmio_read(&d, d.device + 0x18, 1), 3);	/* 4096 = 512 << 3 */
	CHECK_EQ_U64(drv_mmio_read(&d, d.device + 0x28, 4), 1);	/* max_discard_seg */
	/* Legacy I/O BAR: host features without VERSION_1, config at 0x14 while MSI-X is off. */
	CHECK(fake_in(d.vm, d.io, 4) & (1u << 9));
	CHECK_EQ_U64(fake_in(d.vm, d.io + 0x14, 4), DISK_SIZE / 512);
	CHECK_EQ_U64(fake_in(d.vm, d.io + 0x0c, 2), 256);
	/* A modern driver that refuses VERSION_1 does not get FEATURES_OK. */
	drv_mmio_write(&d, d.common + 0x14, 1, 3);
	drv_mmio_write(&d, d.common + 0x08, 4, 1);
	drv_mmio_write(&d, d.common + 0x0c, 4, 0);
	drv_mmio_write(&d, d.common + 0x14, 1, 3 | VIRTIO_STATUS_FEATURES_OK);
	CHECK_EQ_U64(drv_mmio_read(&d, d.common + 0x14, 1) & VIRTIO_STATUS_FEATURES_OK, 0);
	/* Queue count, and an absent queue reads size 0. */
	CHECK_EQ_U64(drv_mmio_read(&d, d.common + 0x12, 2), 1);
	drv_mmio_write(&d, d.common + 0x16, 2, 5);
	CHECK_EQ_U64(drv_mmio_read(&d, d.common + 0x18, 2), 0);
	drv_teardown(&d);
	unlink(disk);
}

static void rw_pattern(struct drv *d)
{
	uint64_t sectors[3] = { 0, DISK_SIZE / 512 / 2, DISK_SIZE / 512 - 8 };

	for (int i = 0; i < 3; i++) {
		fill(d, DATA, (uint8_t)(0x10 + i), 4096);
		CHECK_EQ_U64(run1(d, VIRTIO_BLK_T_OUT, sectors[i], DATA, 4096, false), 0);
	}
	for (int i = 0; i < 3; i++) {
		uint8_t *p = gm_ptr(d->vm->gm, DATA + 8192, 4096, false);

		fill(d, DATA + 8192, 0, 4096);
		CHECK_EQ_U64(run1(d, VIRTIO_BLK_T_IN, sectors[i], DATA + 8192, 4096, true), 0);
		CHECK_EQ_U64(p[0], 0x10 + i);
		CHECK_EQ_U64(p[4095], 0x10 + i);
	}
	/* The used length counts the data read and the status byte. */
	{
		uint32_t id, len;

		drv_used_elem(d, 0, (uint16_t)(drv_used_idx(d, 0) - 1), &id, &len);
		CHECK_EQ_U64(len, 4097);
	}
	CHECK_EQ_U64(run1(d, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false), 0);
	/* The host file has the data. */
	{
		int fd = open(disk, O_RDONLY);
		uint8_t b = 0;

		CHECK(pread(fd, &b, 1, (off_t)(DISK_SIZE - 4096)) == 1);
		CHECK_EQ_U64(b, 0x12);
		close(fd);
	}
	/* Beyond the end, and a length that is not whole sectors: IOERR. Unknown: UNSUPP. */
	CHECK_EQ_U64(run1(d, VIRTIO_BLK_T_IN, DISK_SIZE / 512 - 4, DATA, 4096, true), 1);
	CHECK_EQ_U64(run1(d, VIRTIO_BLK_T_IN, 0, DATA, 100, true), 1);
	CHECK_EQ_U64(run1(d, 77, 0, 0, 0, false), 2);
}

TEST(vblk_modern_rw_flush_id)
{
	struct drv d;
	char opts[256];

	snprintf(opts, sizeof opts, "%s,ser=SERIAL-1", make_disk());
	CHECK_EQ_U64(drv_machine(&d, "virtio-blk", opts), 0);
	CHECK(drv_modern_init(&d, (1ULL << 28) | (1ULL << 29) | (1ULL << 13) | (1ULL << 9), 1));
	rw_pattern(&d);
	fill(&d, DATA, 0, 20);
	CHECK_EQ_U64(run1(&d, VIRTIO_BLK_T_GET_ID, 0, DATA, 20, true), 0);
	CHECK(memcmp(gm_ptr(d.vm->gm, DATA, 20, false), "SERIAL-1\0\0\0", 11) == 0);
	/* INTx: ISR bit 0 set and the line up; reading ISR clears both. */
	CHECK(d.vm->irq_level[d.pdev->intx_gsi]);
	CHECK_EQ_U64(drv_mmio_read(&d, d.isr, 1), 1);
	CHECK(!d.vm->irq_level[d.pdev->intx_gsi]);
	CHECK_EQ_U64(drv_mmio_read(&d, d.isr, 1), 0);
	drv_teardown(&d);
	unlink(disk);
}

TEST(vblk_legacy_rw)
{
	struct drv d;

	CHECK_EQ_U64(drv_machine(&d, "virtio-blk", make_disk()), 0);
	drv_legacy_init(&d, 0xffffffff, 1);
	CHECK_EQ_U64(drv_status(&d) & VIRTIO_STATUS_DRIVER_OK, VIRTIO_STATUS_DRIVER_OK);
	rw_pattern(&d);
	CHECK_EQ_U64(fake_in(d.vm, d.io + 0x13, 1), 1);	/* ISR */
	drv_teardown(&d);
	unlink(disk);
}

TEST(vblk_discard_and_write_zeroes)
{
	struct drv d;
	struct stat before, after;
	uint8_t seg[16] = { 0 };
	uint32_t num = 2048, flags = 0;	/* 1 MiB */

	CHECK_EQ_U64(drv_machine(&d, "virtio-blk", make_disk()), 0);
	CHECK(drv_modern_init(&d, (1ULL << 13) | (1ULL << 14), 1));
	fill(&d, DATA, 0x5a, 1 << 20);
	CHECK_EQ_U64(run1(&d, VIRTIO_BLK_T_OUT, 0, DATA, 1 << 20, false), 0);
	CHECK_EQ_U64(run1(&d, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false), 0);
	stat(disk, &before);
	memcpy(seg + 8, &num, 4);
	gm_write(d.vm->gm, DATA + (2 << 20), seg, 16);
	CHECK_EQ_U64(run1(&d, VIRTIO_BLK_T_DISCARD, 0, DATA + (2 << 20), 16, false), 0);
	stat(disk, &after);
	CHECK(after.st_blocks < before.st_blocks);
	/* Discard with the unmap flag is UNSUPP (§5.2.6.2). */
	flags = 1;
	memcpy(seg + 12, &flags, 4);
	gm_write(d.vm->gm, DATA + (2 << 20), seg, 16);
	CHECK_EQ_U64(run1(&d, VIRTIO_BLK_T_DISCARD, 0, DATA + (2 << 20), 16, false), 2);
	/* Write-zeroes over written data reads back zero. */
	fill(&d, DATA, 0x77, 8192);
	CHECK_EQ_U64(run1(&d, VIRTIO_BLK_T_OUT, 4096, DATA, 8192, false), 0);
	num = 8;
	memcpy(seg, &(uint64_t){ 4096 }, 8);
	memcpy(seg + 8, &num, 4);
	gm_write(d.vm->gm, DATA + (2 << 20), seg, 16);
	CHECK_EQ_U64(run1(&d, VIRTIO_BLK_T_WRITE_ZEROES, 0, DATA + (2 << 20), 16, false), 0);
	CHECK_EQ_U64(run1(&d, VIRTIO_BLK_T_IN, 4096, DATA, 8192, true), 0);
	CHECK_EQ_U64(((uint8_t *)gm_ptr(d.vm->gm, DATA, 8192, false))[0], 0);
	CHECK_EQ_U64(((uint8_t *)gm_ptr(d.vm->gm, DATA, 8192, false))[4096], 0x77);
	drv_teardown(&d);
	unlink(disk);

	/* nodelete: neither feature offered, and the requests are UNSUPP. */
	{
		char opts[256];

		snprintf(opts, sizeof opts, "%s,nodelete", make_disk());
		CHECK_EQ_U64(drv_machine(&d, "virtio-blk", opts), 0);
		CHECK(drv_modern_init(&d, (1ULL << 13) | (1ULL << 14), 1));
		drv_mmio_write(&d, d.common + 0x00, 4, 0);
		CHECK_EQ_U64(drv_mmio_read(&d, d.common + 0x04, 4) & (3u << 13), 0);
		CHECK_EQ_U64(run1(&d, VIRTIO_BLK_T_DISCARD, 0, DATA + (2 << 20), 16, false), 2);
		drv_teardown(&d);
		unlink(disk);
	}
}

TEST(vblk_readonly)
{
	struct drv d;
	char opts[256];

	snprintf(opts, sizeof opts, "%s,ro", make_disk());
	CHECK_EQ_U64(drv_machine(&d, "virtio-blk", opts), 0);
	CHECK(drv_modern_init(&d, 1ULL << 5, 1));
	drv_mmio_write(&d, d.common + 0x00, 4, 0);
	CHECK(drv_mmio_read(&d, d.common + 0x04, 4) & (1u << 5));
	CHECK_EQ_U64(run1(&d, VIRTIO_BLK_T_OUT, 0, DATA, 512, false), 1);
	CHECK_EQ_U64(run1(&d, VIRTIO_BLK_T_IN, 0, DATA, 512, true), 0);
	drv_teardown(&d);
	unlink(disk);
}

TEST(vblk_msix_and_many_in_flight)
{
	struct drv d;
	uint16_t n = 64;	/* 3 descriptors each: 192 of the 256 */

	CHECK_EQ_U64(drv_machine(&d, "virtio-blk", make_disk()), 0);
	CHECK(drv_modern_init(&d, 1ULL << 29, 1));
	/* Enable MSI-X, unmask entry 1, route queue 0 to it. */
	drv_cfg_write(&d, d.msix_cap + 2, 2, 0x8000);
	drv_mmio_write(&d, d.pdev->bar[1].addr + 16, 4, 0xfee00000);
	drv_mmio_write(&d, d.pdev->bar[1].addr + 24, 4, 0x41);
	drv_mmio_write(&d, d.pdev->bar[1].addr + 28, 4, 0);
	drv_mmio_write(&d, d.common + 0x16, 2, 0);
	drv_mmio_write(&d, d.common + 0x1a, 2, 1);
	CHECK_EQ_U64(drv_mmio_read(&d, d.common + 0x1a, 2), 1);
	drv_mmio_write(&d, d.common + 0x10, 2, 9);	/* beyond the table: NO_VECTOR */
	CHECK_EQ_U64(drv_mmio_read(&d, d.common + 0x10, 2), 0xffff);
	for (unsigned i = 0; i < n; i++)
		req(&d, i, i % 2 ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT, 8ULL * i,
		    DATA + 4096ULL * i, 4096, i % 2);
	drv_kick(&d, 0);
	CHECK(drv_wait_used(&d, 0, n));
	for (unsigned i = 0; i < n; i++)
		CHECK_EQ_U64(status_of(&d, i), 0);
	CHECK(d.vm->msis > 0);
	CHECK_EQ_U64(d.vm->msi_data, 0x41);
	CHECK(!d.vm->irq_level[d.pdev->intx_gsi]);
	/* A masked vector leaves its pending bit set; unmasking sends the message. The driver
	 * asks for an interrupt at every completion (used_event = used idx, event index). */
	{
		uint64_t pba = d.pdev->bar[1].addr + (drv_cfg_read(&d, d.msix_cap + 8, 4) & ~7u);
		uint64_t used_event = d.q[0].avail + 4 + 2ULL * d.q[0].size;
		uint16_t ue;
		int before;

		drv_mmio_write(&d, d.pdev->bar[1].addr + 28, 4, 1);
		before = d.vm->msis;
		ue = drv_used_idx(&d, 0);
		gm_write(d.vm->gm, used_event, &ue, 2);
		CHECK_EQ_U64(run1(&d, VIRTIO_BLK_T_IN, 0, DATA, 512, true), 0);
		CHECK_EQ_U64(d.vm->msis, before);
		CHECK_EQ_U64(drv_mmio_read(&d, pba, 8), 2);
		drv_mmio_write(&d, d.pdev->bar[1].addr + 28, 4, 0);
		CHECK_EQ_U64(d.vm->msis, before + 1);
		CHECK_EQ_U64(drv_mmio_read(&d, pba, 8), 0);
		/* Function mask works the same way. */
		drv_cfg_write(&d, d.msix_cap + 2, 2, 0xc000);
		ue = drv_used_idx(&d, 0);
		gm_write(d.vm->gm, used_event, &ue, 2);
		CHECK_EQ_U64(run1(&d, VIRTIO_BLK_T_IN, 0, DATA, 512, true), 0);
		CHECK_EQ_U64(d.vm->msis, before + 1);
		drv_cfg_write(&d, d.msix_cap + 2, 2, 0x8000);
		CHECK_EQ_U64(d.vm->msis, before + 2);
	}
	drv_teardown(&d);
	unlink(disk);
}

TEST(vblk_broken_chain_and_reset_in_flight)
{
	struct drv d;
	struct drv_buf b[1] = { { HDR, 16, false } };

	CHECK_EQ_U64(drv_machine(&d, "virtio-blk", make_disk()), 0);
	CHECK(drv_modern_init(&d, 0, 1));
	/* A request with no status byte breaks the protocol: NEEDS_RESET, a config interrupt. */
	drv_add(&d, 0, b, 1);
	drv_kick(&d, 0);
	CHECK(drv_status(&d) & VIRTIO_STATUS_NEEDS_RESET);
	CHECK_EQ_U64(drv_mmio_read(&d, d.isr, 1) & 2, 2);
	/* Reset and start again: the device works. */
	CHECK(drv_modern_init(&d, 0, 1));
	CHECK(!(drv_status(&d) & VIRTIO_STATUS_NEEDS_RESET));
	CHECK_EQ_U64(run1(&d, VIRTIO_BLK_T_IN, 0, DATA, 512, true), 0);
	/* 80 large reads in flight, then reset and new rings right away. */
	for (unsigned i = 0; i < 80; i++)
		req(&d, i, VIRTIO_BLK_T_IN, 0, DATA, 64 << 10, true);
	drv_kick(&d, 0);
	CHECK(drv_modern_init(&d, 0, 1));
	usleep(300000);
	CHECK_EQ_U64(drv_used_idx(&d, 0), 0);
	CHECK_EQ_U64(run1(&d, VIRTIO_BLK_T_IN, 0, DATA, 512, true), 0);
	drv_teardown(&d);
	unlink(disk);
}

TEST(vblk_open_errors)
{
	struct drv d;
	int fd;

	CHECK(drv_machine(&d, "virtio-blk", "/nonexistent/disk.img") < 0);
	pci_bus_destroy(d.bus);
	gm_destroy(d.vm->gm);
	fake_vm_free(d.vm);
	CHECK(drv_machine(&d, "virtio-blk", "/tmp") < 0);
	pci_bus_destroy(d.bus);
	gm_destroy(d.vm->gm);
	fake_vm_free(d.vm);
	snprintf(disk, sizeof disk, "/tmp/khyve-vblk-%d.img", (int)getpid());
	fd = open(disk, O_CREAT | O_RDWR | O_TRUNC, 0600);
	close(fd);
	CHECK(drv_machine(&d, "virtio-blk", disk) < 0);	/* zero size */
	pci_bus_destroy(d.bus);
	gm_destroy(d.vm->gm);
	fake_vm_free(d.vm);
	unlink(disk);
}

/* ---- KVM's notifiers, faked: ioeventfd kicks and irqfd messages ---- */

static struct {
	int kick_fd, kick_assigned;
	uint64_t kick_addr;
	int irq_fd, irq_updates, irq_removed;
	uint64_t irq_addr;
	uint32_t irq_data;
} fk;

static int fk_ioeventfd(void *opaque, bool mmio, uint64_t addr, unsigned len, int fd,
			bool assign)
{
	if (!mmio || len != 2)
		return -22;
	if (assign && !fk.kick_assigned) {
		fk.kick_fd = fd;
		fk.kick_addr = addr;
	}
	fk.kick_assigned += assign ? 1 : -1;
	return 0;
}

static int fk_irqfd_msi(void *opaque, int fd, uint64_t addr, uint32_t data)
{
	fk.irq_fd = fd;
	fk.irq_addr = addr;
	fk.irq_data = data;
	return 7;
}

static int fk_irqfd_update(void *opaque, int handle, uint64_t addr, uint32_t data)
{
	CHECK_EQ_U64(handle, 7);
	fk.irq_addr = addr;
	fk.irq_data = data;
	fk.irq_updates++;
	return 0;
}

static int fk_irqfd_remove(void *opaque, int fd, int handle)
{
	fk.irq_removed++;
	return 0;
}

static const struct pci_notifiers fake_notifiers = {
	.ioeventfd = fk_ioeventfd, .irqfd_msi = fk_irqfd_msi, .irqfd_update = fk_irqfd_update,
	.irqfd_remove = fk_irqfd_remove,
};

static void *loop_thread(void *arg)
{
	evl_run(arg);
	return NULL;
}

static uint64_t eventfd_take(int fd)
{
	uint64_t v = 0;

	for (int i = 0; i < 2000 && read(fd, &v, 8) != 8; i++)
		usleep(1000);
	return v;
}

TEST(vblk_ioeventfd_and_irqfd)
{
	struct event_loop *loop;
	pthread_t th;
	struct drv d;
	uint64_t one = 1;
	int msis;

	memset(&fk, 0, sizeof fk);
	CHECK_EQ_U64(evl_create(&loop), 0);
	pthread_create(&th, NULL, loop_thread, loop);
	drv_loop = loop;
	drv_notifiers = &fake_notifiers;
	CHECK_EQ_U64(drv_machine(&d, "virtio-blk", make_disk()), 0);
	CHECK(drv_modern_init(&d, 0, 1));
	/* BAR placement assigned one kick eventfd at queue 0's notify address. */
	CHECK_EQ_U64(fk.kick_assigned, 1);
	CHECK_EQ_U64(fk.kick_addr, d.notify);
	drv_cfg_write(&d, d.msix_cap + 2, 2, 0x8000);
	drv_mmio_write(&d, d.pdev->bar[1].addr + 16, 4, 0xfee00000);
	drv_mmio_write(&d, d.pdev->bar[1].addr + 24, 4, 0x51);
	drv_mmio_write(&d, d.pdev->bar[1].addr + 28, 4, 0);
	drv_mmio_write(&d, d.common + 0x16, 2, 0);
	drv_mmio_write(&d, d.common + 0x1a, 2, 1);
	msis = d.vm->msis;
	/* A kick through the eventfd (what KVM does on the guest's write) runs the request. */
	req(&d, 0, VIRTIO_BLK_T_IN, 0, DATA, 512, true);
	CHECK(write(fk.kick_fd, &one, 8) == 8);
	CHECK(drv_wait_used(&d, 0, 1));
	CHECK_EQ_U64(status_of(&d, 0), 0);
	/* The completion left by irqfd with the table's message, not through vm_msi. */
	CHECK_EQ_U64(eventfd_take(fk.irq_fd), 1);
	CHECK_EQ_U64(fk.irq_addr, 0xfee00000);
	CHECK_EQ_U64(fk.irq_data, 0x51);
	CHECK_EQ_U64(d.vm->msis, msis);
	/* The guest reprograms the vector: the route follows. */
	drv_mmio_write(&d, d.pdev->bar[1].addr + 24, 4, 0x52);
	CHECK_EQ_U64(run1(&d, VIRTIO_BLK_T_IN, 0, DATA, 512, true), 0);
	CHECK_EQ_U64(fk.irq_updates, 1);
	CHECK_EQ_U64(fk.irq_data, 0x52);
	/* Moving the BAR moves the kick. */
	{
		uint64_t old = d.pdev->bar[4].addr, moved = old + 0x100000;

		drv_cfg_write(&d, 0x20, 4, (uint32_t)moved | 4);
		CHECK_EQ_U64(fk.kick_assigned, 1);
		CHECK_EQ_U64(d.pdev->bar[4].addr, moved);
	}
	drv_teardown(&d);
	CHECK_EQ_U64(fk.kick_assigned, 0);
	CHECK_EQ_U64(fk.irq_removed, 1);
	evl_stop(loop);
	pthread_join(th, NULL);
	evl_destroy(loop);
	drv_loop = NULL;
	drv_notifiers = NULL;
	unlink(disk);
}

TEST(vblk_multiqueue)
{
	struct drv d;
	uint16_t head;

	drv_ncpus = 8;	/* four queues at most */
	CHECK_EQ_U64(drv_machine(&d, "virtio-blk", make_disk()), 0);
	drv_ncpus = 1;
	CHECK(drv_modern_init(&d, 1ULL << 12, 4));
	CHECK_EQ_U64(drv_mmio_read(&d, d.common + 0x12, 2), 4);
	CHECK_EQ_U64(drv_mmio_read(&d, d.device + 0x22, 2), 4);
	drv_mmio_write(&d, d.common + 0x08, 4, 0);
	CHECK(drv_mmio_read(&d, d.common + 0x0c, 4) & (1u << 12));
	/* A request on queue 3 completes on queue 3 only. */
	{
		uint8_t hdr[16] = { 0 }, ff = 0xff;
		struct drv_buf b[3] = { { HDR, 16, false }, { DATA, 512, true },
					{ STATUS, 1, true } };

		gm_write(d.vm->gm, HDR, hdr, 16);
		gm_write(d.vm->gm, STATUS, &ff, 1);
		head = drv_add(&d, 3, b, 3);
		drv_kick(&d, 3);
		CHECK(drv_wait_used(&d, 3, 1));
		CHECK_EQ_U64(status_of(&d, 0), 0);
		CHECK_EQ_U64(drv_used_idx(&d, 0), 0);
		{
			uint32_t id, len;

			drv_used_elem(&d, 3, 0, &id, &len);
			CHECK_EQ_U64(id, head);
			CHECK_EQ_U64(len, 513);
		}
	}
	drv_teardown(&d);
	unlink(disk);
}

TEST(vblk_interrupt_per_batch)
{
	struct drv d;
	uint16_t n = 64;

	CHECK_EQ_U64(drv_machine(&d, "virtio-blk", make_disk()), 0);
	CHECK(drv_modern_init(&d, 0, 1));	/* no event index: every batch interrupts */
	drv_cfg_write(&d, d.msix_cap + 2, 2, 0x8000);
	drv_mmio_write(&d, d.pdev->bar[1].addr + 0, 4, 0xfee00000);
	drv_mmio_write(&d, d.pdev->bar[1].addr + 8, 4, 0x42);
	drv_mmio_write(&d, d.pdev->bar[1].addr + 12, 4, 0);
	drv_mmio_write(&d, d.common + 0x16, 2, 0);
	drv_mmio_write(&d, d.common + 0x1a, 2, 0);
	for (unsigned i = 0; i < n; i++)
		req(&d, i, VIRTIO_BLK_T_IN, 8ULL * i, DATA + 4096ULL * i, 4096, true);
	drv_kick(&d, 0);
	CHECK(drv_wait_used(&d, 0, n));
	/* The message follows the used index of its batch: give it a moment. */
	for (int i = 0; i < 1000 && !__atomic_load_n(&d.vm->msis, __ATOMIC_ACQUIRE); i++)
		usleep(1000);
	for (unsigned i = 0; i < n; i++)
		CHECK_EQ_U64(status_of(&d, i), 0);
	/* The reads were ready together: published in a few runs, not one message each. */
	CHECK(d.vm->msis >= 1);
	CHECK(d.vm->msis < n);
	CHECK_EQ_U64(d.vm->msi_data, 0x42);
	/* Every element is there once, with the data length plus the status byte. */
	{
		uint64_t seen = 0;

		for (uint16_t i = 0; i < n; i++) {
			uint32_t id, len;

			drv_used_elem(&d, 0, i, &id, &len);
			CHECK_EQ_U64(len, 4097);
			CHECK(id < 256 && id % 3 == 0);
			seen |= 1ULL << (id / 3);
		}
		CHECK_EQ_U64(seen, ~0ULL);
	}
	drv_teardown(&d);
	unlink(disk);
}
