/*
 * fuzz_virtio_blk.c: libFuzzer target for virtio-blk's request handling: a real device
 * (src/dev/virtio_blk.c on the virtio PCI transport and the block engine, 1 MiB memfd disk)
 * over fake guest memory. The input becomes guest memory from 64 KiB holding the avail ring,
 * the descriptor table (at +0x40, 16 entries), request headers, discard segments and buffers; the driver side (features,
 * queue set-up, DRIVER_OK, the kick) is done properly so the requests reach the parser.
 * The machine lives across inputs; each starts with a device reset, so completions still
 * in flight from the previous input exercise the dropped-after-reset path.
 */
/* FUZZ_SOURCES: src/dev/virtio_blk.c src/virtio/*.c src/pci/pci.c src/backend/block/block.c src/vmm/guest_mem.c src/vmm/io_bus.c src/config/config.c src/util/event_loop.c */
/* FUZZ_LIBS: -luring */
#include <fcntl.h>
#include <stdlib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../unit/fake_vm.h"
#include "config/config.h"
#include "dev/virtio_blk.h"
#include "pci/pci.h"
#include "virtio/virtio_pci.h"

#define FUZZ_RAM (4ULL << 20)
#define FUZZ_BASE 0x10000
#define QSZ 16		/* the driver picks a small queue: rings at the input's start */
#define AVAIL FUZZ_BASE
#define DESC (FUZZ_BASE + 0x40)
#define USED (FUZZ_BASE + 0x8000)

void vm_irq_pulse(struct vm *vm, unsigned gsi)
{
	vm_irq_assert(vm, gsi);
	vm_irq_deassert(vm, gsi);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void mmio_write(struct vm *vm, uint64_t addr, unsigned size, uint64_t v)
{
	io_bus_access(vm->io, IO_SPACE_MMIO, addr, size, true, &v);
}

/* One machine for the whole run: each input resets the device (status 0) and starts over. */
static struct vm *fuzz_vm;
static struct pci_dev *fuzz_pdev;

static int fuzz_setup(void)
{
	static char path[64];
	struct pci_bus *bus;
	int disk = memfd_create("fuzz-disk", MFD_CLOEXEC);

	if (disk < 0 || ftruncate(disk, 1 << 20) < 0)
		return -1;
	snprintf(path, sizeof path, "/proc/self/fd/%d", disk);
	cfg_reset();
	cfg_set(cfg_root(), "pci.0.3.0.device", "virtio-blk");
	cfg_set(cfg_root(), "pci.0.3.0.path", path);
	fuzz_vm = fake_vm_new();
	if (gm_create(&fuzz_vm->gm, FUZZ_RAM) < 0 || pci_bus_create(fuzz_vm, &bus) < 0 ||
	    pci_bus_add(bus, 0, 3, 0, &fuzz_pdev) < 0 ||
	    virtio_blk_model.init(fuzz_vm, fuzz_pdev, cfg_find(cfg_root(), "pci.0.3.0")) < 0 ||
	    pci_bus_finalize(bus) < 0)
		return -1;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	uint64_t common, notify, features;
	struct vm *vm;
	size_t n;

	if (size < 1)
		return 0;
	if (!ready) {
		if (fuzz_setup() < 0)
			abort();
		ready = true;
	}
	vm = fuzz_vm;
	common = fuzz_pdev->bar[4].addr;
	notify = common + 0x3000;
	mmio_write(vm, common + 0x14, 1, 0);	/* reset: late completions are dropped */
	n = size - 1 > FUZZ_RAM - FUZZ_BASE ? FUZZ_RAM - FUZZ_BASE : size - 1;
	gm_write(vm->gm, FUZZ_BASE, data + 1, n);
	features = (1ULL << 32) | ((data[0] & 1) ? 1ULL << 28 : 0) | ((data[0] & 2) ? 1ULL << 29 : 0) |
		   (1ULL << 13) | (1ULL << 14) | (1ULL << 9);
	mmio_write(vm, common + 0x14, 1, 3);
	mmio_write(vm, common + 0x08, 4, 0);
	mmio_write(vm, common + 0x0c, 4, (uint32_t)features);
	mmio_write(vm, common + 0x08, 4, 1);
	mmio_write(vm, common + 0x0c, 4, (uint32_t)(features >> 32));
	mmio_write(vm, common + 0x14, 1, 11);
	mmio_write(vm, common + 0x16, 2, 0);
	mmio_write(vm, common + 0x18, 2, QSZ);
	mmio_write(vm, common + 0x20, 8, DESC);
	mmio_write(vm, common + 0x28, 8, AVAIL);
	mmio_write(vm, common + 0x30, 8, USED);
	mmio_write(vm, common + 0x1c, 2, 1);
	mmio_write(vm, common + 0x14, 1, 15);
	mmio_write(vm, notify, 2, 0);
	return 0;
}
