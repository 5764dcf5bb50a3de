/*
 * test_pci.c: the PCI core through configuration mechanism #1 on the io bus: the address
 * latch, byte/word/dword data accesses, absent functions, hostbridge/amd_hostbridge/lpc
 * identities and capabilities, BAR sizing, placement and relocation, decode enables, INTx
 * routing and sharing, PIIX3 PIRQ routing, multi-function headers, the lpc's COM ports and
 * pc-testdev, and the registry's legacy option parsing.
 */
#include <errno.h>
#include <string.h>

#include "config/config.h"
#include "dev/device.h"
#include "fake_vm.h"
#include "pci/pci.h"
#include "unit.h"

static uint32_t cfg_addr(unsigned b, unsigned s, unsigned f, unsigned reg)
{
	return 0x80000000u | b << 16 | s << 11 | f << 8 | (reg & 0xfc);
}

static uint32_t cfgrd(struct vm *vm, unsigned b, unsigned s, unsigned f, unsigned reg,
		      unsigned size)
{
	fake_out(vm, 0xcf8, 4, cfg_addr(b, s, f, reg));
	return (uint32_t)fake_in(vm, 0xcfc + (reg & 3), size);
}

static void cfgwr(struct vm *vm, unsigned b, unsigned s, unsigned f, unsigned reg,
		  unsigned size, uint32_t v)
{
	fake_out(vm, 0xcf8, 4, cfg_addr(b, s, f, reg));
	fake_out(vm, 0xcfc + (reg & 3), size, v);
}

/* A test device: I/O BAR 0 (32 bytes), MEM32 BAR 1 (4 KiB), MEM64 BAR 2 (1 MiB). */
struct testdev {
	uint64_t last_off, last_val;
	int last_bar, writes;
};

static void td_bar_read(struct pci_dev *pdev, int bar, uint64_t off, unsigned size,
			uint64_t *val)
{
	*val = 0xab000000 | (uint64_t)bar << 16 | off;
}

static void td_bar_write(struct pci_dev *pdev, int bar, uint64_t off, unsigned size,
			 uint64_t val)
{
	struct testdev *td = pdev->priv;

	td->last_bar = bar;
	td->last_off = off;
	td->last_val = val;
	td->writes++;
}

static const struct pci_dev_ops td_ops = { .bar_read = td_bar_read, .bar_write = td_bar_write };

static struct pci_dev *add_testdev(struct pci_bus *bus, unsigned s, unsigned f,
				   struct testdev *td, uint64_t mem64_size)
{
	struct pci_dev *pdev;

	CHECK(pci_bus_add(bus, 0, (uint8_t)s, (uint8_t)f, &pdev) == 0);
	pdev->ops = &td_ops;
	pdev->priv = td;
	pdev->name = "testdev";
	pci_set_ids(pdev, 0x1234, 0x5678, 1, 0xff, 0x00, 0x00);
	CHECK(pci_add_bar(pdev, 0, PCI_BAR_IO, 32) == 0);
	CHECK(pci_add_bar(pdev, 1, PCI_BAR_MEM32, 4096) == 0);
	CHECK(pci_add_bar(pdev, 2, PCI_BAR_MEM64, mem64_size) == 0);
	CHECK(pci_add_bar(pdev, 3, PCI_BAR_IO, 16) == -EEXIST);	/* upper half of BAR 2 */
	CHECK(pci_intx_request(pdev) == 0);
	return pdev;
}

static int add_model(struct vm *vm, struct pci_bus *bus, unsigned b, unsigned s, const char *name,
		     struct pci_dev **out)
{
	const struct device_model *m = device_find(name);
	char key[64];
	struct pci_dev *pdev;
	int ret;

	snprintf(key, sizeof key, "pci.%u.%u.0.device", b, s);
	cfg_set(cfg_root(), key, m->alias_of ? m->alias_of : m->name);
	key[strlen(key) - strlen(".device")] = '\0';
	if (m->legacy_parse) {
		char err[128];

		CHECK(m->legacy_parse(cfg_find(cfg_root(), key), NULL, err, sizeof err) == 0);
	}
	CHECK(pci_bus_add(bus, (uint8_t)b, (uint8_t)s, 0, &pdev) == 0);
	ret = m->init(vm, pdev, cfg_find(cfg_root(), key));
	if (out)
		*out = pdev;
	return ret;
}

struct machine {
	struct vm *vm;
	struct pci_bus *bus;
	struct testdev td, td2;
	struct pci_dev *dev3, *dev7, *lpc;
};

static void machine_up(struct machine *m, bool testdev)
{
	memset(m, 0, sizeof *m);
	cfg_reset();
	if (testdev)
		cfg_set(cfg_root(), "lpc.pc-testdev", "true");
	m->vm = fake_vm_new();
	CHECK(pci_bus_create(m->vm, &m->bus) == 0);
	CHECK(add_model(m->vm, m->bus, 0, 0, "hostbridge", NULL) == 0);
	CHECK(add_model(m->vm, m->bus, 0, 31, "lpc", &m->lpc) == 0);
	m->dev3 = add_testdev(m->bus, 3, 0, &m->td, 1 << 20);
	m->dev7 = add_testdev(m->bus, 7, 0, &m->td2, 1 << 20);
	CHECK(pci_bus_finalize(m->bus) == 0);
}

static void machine_down(struct machine *m)
{
	pci_bus_destroy(m->bus);
	fake_vm_free(m->vm);
	cfg_reset();
}

TEST(pci_config_mechanism_1)
{
	struct machine m;

	machine_up(&m, false);
	fake_out(m.vm, 0xcf8, 4, 0x80001234);
	CHECK_EQ_U64(fake_in(m.vm, 0xcf8, 4), 0x80001234);	/* SeaBIOS checks this */
	fake_out(m.vm, 0xcf8, 4, 0x81000001);	/* reserved bits 30:24 and 1:0 read 0 */
	CHECK_EQ_U64(fake_in(m.vm, 0xcf8, 4), 0x80000000);
	CHECK_EQ_U64(cfgrd(m.vm, 0, 0, 0, 0, 4), 0x12751275);
	CHECK_EQ_U64(cfgrd(m.vm, 0, 0, 0, 0, 2), 0x1275);
	CHECK_EQ_U64(cfgrd(m.vm, 0, 0, 0, 2, 2), 0x1275);
	CHECK_EQ_U64(cfgrd(m.vm, 0, 0, 0, 3, 1), 0x12);
	CHECK_EQ_U64(cfgrd(m.vm, 0, 0, 0, 8, 4) >> 8, 0x060000);	/* host bridge */
	/* Enable bit clear: the data port reads all ones. */
	fake_out(m.vm, 0xcf8, 4, 0x00000000);
	CHECK_EQ_U64(fake_in(m.vm, 0xcfc, 4), 0xffffffff);
	/* Absent functions and buses read all ones; writes vanish. */
	CHECK_EQ_U64(cfgrd(m.vm, 0, 5, 0, 0, 4), 0xffffffff);
	CHECK_EQ_U64(cfgrd(m.vm, 0, 0, 1, 0, 2), 0xffff);
	CHECK_EQ_U64(cfgrd(m.vm, 1, 0, 0, 0, 1), 0xff);
	cfgwr(m.vm, 0, 5, 0, 4, 2, 0x7);
	CHECK_EQ_U64(cfgrd(m.vm, 0, 5, 0, 4, 2), 0xffff);
	/* IDs are read-only. */
	cfgwr(m.vm, 0, 0, 0, 0, 4, 0);
	CHECK_EQ_U64(cfgrd(m.vm, 0, 0, 0, 0, 4), 0x12751275);
	/* Interrupt line is writable. */
	cfgwr(m.vm, 0, 3, 0, 0x3c, 1, 0x0b);
	CHECK_EQ_U64(cfgrd(m.vm, 0, 3, 0, 0x3c, 1), 0x0b);
	CHECK_EQ_U64(cfgrd(m.vm, 0, 3, 0, 0x3d, 1), 0x01);	/* INTA */
	machine_down(&m);
}

TEST(pci_hostbridge_lpc_ids_and_caps)
{
	struct machine m;
	unsigned cap;

	machine_up(&m, false);
	CHECK_EQ_U64(cfgrd(m.vm, 0, 31, 0, 0, 4), 0x70008086);
	CHECK_EQ_U64(cfgrd(m.vm, 0, 31, 0, 8, 4) >> 8, 0x060100);	/* PCI-ISA bridge */
	CHECK_EQ_U64(cfgrd(m.vm, 0, 31, 0, 0x60, 4), 0x80808080);	/* PIRQs disabled */
	/* hostbridge: capability list with the PCIe root-port capability */
	CHECK(cfgrd(m.vm, 0, 0, 0, 6, 2) & 0x10);
	cap = cfgrd(m.vm, 0, 0, 0, 0x34, 1);
	CHECK_EQ_U64(cap, 0x40);
	CHECK_EQ_U64(cfgrd(m.vm, 0, 0, 0, cap, 1), 0x10);
	CHECK_EQ_U64(cfgrd(m.vm, 0, 0, 0, cap + 1, 1), 0x00);	/* last */
	CHECK_EQ_U64(cfgrd(m.vm, 0, 0, 0, cap + 2, 2) & 0xf0, 0x40);	/* root port */
	machine_down(&m);
}

TEST(pci_hostbridge_overrides)
{
	struct vm *vm = fake_vm_new();
	struct pci_bus *bus;
	struct pci_dev *pdev;

	cfg_reset();
	CHECK(pci_bus_create(vm, &bus) == 0);
	CHECK(add_model(vm, bus, 0, 0, "amd_hostbridge", &pdev) == 0);
	CHECK_EQ_U64(pci_cfg_read16(pdev, 0), 0x1022);
	CHECK_EQ_U64(pci_cfg_read16(pdev, 2), 0x7432);
	CHECK_STR(cfg_get(cfg_root(), "pci.0.0.0.device"), "hostbridge");
	cfg_set(cfg_root(), "pci.0.1.0.device", "hostbridge");
	cfg_set(cfg_root(), "pci.0.1.0.vendor", "0x8086");
	cfg_set(cfg_root(), "pci.0.1.0.devid", "0x1237");
	cfg_set(cfg_root(), "pci.0.1.0.pcireg.subvendor", "0x1af4");
	CHECK(pci_bus_add(bus, 0, 1, 0, &pdev) == 0);
	CHECK(device_find("hostbridge")->init(vm, pdev, cfg_find(cfg_root(), "pci.0.1.0")) == 0);
	CHECK_EQ_U64(pci_cfg_read16(pdev, 0), 0x8086);
	CHECK_EQ_U64(pci_cfg_read16(pdev, 2), 0x1237);
	CHECK_EQ_U64(pci_cfg_read16(pdev, 0x2c), 0x1af4);
	cfg_set(cfg_root(), "pci.0.2.0.pcireg.device", "0x12345");	/* too wide */
	CHECK(pci_bus_add(bus, 0, 2, 0, &pdev) == 0);
	CHECK(device_find("hostbridge")->init(vm, pdev, cfg_find(cfg_root(), "pci.0.2.0")) ==
	      -EINVAL);
	pci_bus_destroy(bus);
	fake_vm_free(vm);
	cfg_reset();
}

TEST(pci_bar_sizing)
{
	struct machine m;
	uint32_t old;

	machine_up(&m, false);
	old = cfgrd(m.vm, 0, 3, 0, 0x10, 4);
	CHECK_EQ_U64(old & 1, 1);	/* I/O BAR */
	cfgwr(m.vm, 0, 3, 0, 0x10, 4, 0xffffffff);
	CHECK_EQ_U64(cfgrd(m.vm, 0, 3, 0, 0x10, 4), 0xffffffe1);
	cfgwr(m.vm, 0, 3, 0, 0x10, 4, old);
	CHECK_EQ_U64(cfgrd(m.vm, 0, 3, 0, 0x10, 4), old);

	old = cfgrd(m.vm, 0, 3, 0, 0x14, 4);
	cfgwr(m.vm, 0, 3, 0, 0x14, 4, 0xffffffff);
	CHECK_EQ_U64(cfgrd(m.vm, 0, 3, 0, 0x14, 4), 0xfffff000);
	cfgwr(m.vm, 0, 3, 0, 0x14, 4, old);

	CHECK_EQ_U64(cfgrd(m.vm, 0, 3, 0, 0x18, 4) & 0x7, 0x4);	/* 64-bit */
	cfgwr(m.vm, 0, 3, 0, 0x18, 4, 0xffffffff);
	cfgwr(m.vm, 0, 3, 0, 0x1c, 4, 0xffffffff);
	CHECK_EQ_U64(cfgrd(m.vm, 0, 3, 0, 0x18, 4), 0xfff00004);
	CHECK_EQ_U64(cfgrd(m.vm, 0, 3, 0, 0x1c, 4), 0xffffffff);
	/* Unimplemented BARs and the ROM BAR read 0 whatever is written. */
	cfgwr(m.vm, 0, 3, 0, 0x20, 4, 0xffffffff);
	CHECK_EQ_U64(cfgrd(m.vm, 0, 3, 0, 0x20, 4), 0);
	cfgwr(m.vm, 0, 3, 0, 0x30, 4, 0xffffffff);
	CHECK_EQ_U64(cfgrd(m.vm, 0, 3, 0, 0x30, 4), 0);
	/* Byte-wise sizing of the I/O BAR's low byte. */
	old = cfgrd(m.vm, 0, 3, 0, 0x10, 4);
	cfgwr(m.vm, 0, 3, 0, 0x10, 1, 0xff);
	CHECK_EQ_U64(cfgrd(m.vm, 0, 3, 0, 0x10, 1), 0xe1);
	cfgwr(m.vm, 0, 3, 0, 0x10, 4, old);
	machine_down(&m);
}

TEST(pci_bar_placement_and_access)
{
	struct machine m;
	uint32_t io, mem;
	uint64_t v = 0;

	machine_up(&m, true);	/* pc-testdev claims 0x2000-0x2017 first */
	CHECK_EQ_U64(cfgrd(m.vm, 0, 3, 0, 4, 2) & 3, 3);	/* decode on from the start */
	io = cfgrd(m.vm, 0, 3, 0, 0x10, 4) & ~3u;
	mem = cfgrd(m.vm, 0, 3, 0, 0x14, 4) & ~0xfu;
	CHECK(io >= 0x2018 && io < 0x10000 && (io & 31) == 0);
	CHECK(mem >= 0xc0000000u && mem < 0xfec00000u && (mem & 0xfff) == 0);
	CHECK_EQ_U64(cfgrd(m.vm, 0, 3, 0, 0x1c, 4), 0);	/* small 64-bit BAR below 4 GiB */
	CHECK_EQ_U64(fake_in(m.vm, io + 5, 1), 0xab000005);
	CHECK(io_bus_access(m.vm->io, IO_SPACE_MMIO, mem + 8, 4, false, &v));
	CHECK_EQ_U64(v, 0xab010008);
	fake_out(m.vm, io + 2, 2, 0xbeef);
	CHECK_EQ_U64(m.td.last_bar, 0);
	CHECK_EQ_U64(m.td.last_off, 2);
	CHECK_EQ_U64(m.td.last_val, 0xbeef);
	/* The second device got different addresses. */
	CHECK(cfgrd(m.vm, 0, 7, 0, 0x10, 4) != cfgrd(m.vm, 0, 3, 0, 0x10, 4));
	CHECK(cfgrd(m.vm, 0, 7, 0, 0x14, 4) != cfgrd(m.vm, 0, 3, 0, 0x14, 4));
	machine_down(&m);
}

TEST(pci_bar_move_and_decode)
{
	struct machine m;
	uint32_t io;
	uint64_t v = 0;

	machine_up(&m, false);
	io = cfgrd(m.vm, 0, 3, 0, 0x10, 4) & ~3u;
	cfgwr(m.vm, 0, 3, 0, 0x10, 4, 0xc000);
	CHECK_EQ_U64(cfgrd(m.vm, 0, 3, 0, 0x10, 4), 0xc001);
	CHECK_EQ_U64(fake_in(m.vm, 0xc001, 1), 0xab000001);
	CHECK(!io_bus_access(m.vm->io, IO_SPACE_PIO, io, 1, false, &v));	/* old place gone */
	/* I/O decode off: the BAR disappears; on again: it comes back. */
	cfgwr(m.vm, 0, 3, 0, 4, 2, 0x0002);
	CHECK(!io_bus_access(m.vm->io, IO_SPACE_PIO, 0xc000, 1, false, &v));
	CHECK(io_bus_access(m.vm->io, IO_SPACE_MMIO, cfgrd(m.vm, 0, 3, 0, 0x14, 4) & ~0xfu, 4,
			    false, &v));
	cfgwr(m.vm, 0, 3, 0, 4, 2, 0x0000);
	CHECK(!io_bus_access(m.vm->io, IO_SPACE_MMIO, cfgrd(m.vm, 0, 3, 0, 0x14, 4) & ~0xfu, 4,
			     false, &v));
	/* Firmware style: decode off, size, program, decode on. */
	cfgwr(m.vm, 0, 3, 0, 0x14, 4, 0xffffffff);
	cfgwr(m.vm, 0, 3, 0, 0x14, 4, 0xfe000000);
	cfgwr(m.vm, 0, 3, 0, 0x18, 4, 0x00000000);
	cfgwr(m.vm, 0, 3, 0, 0x1c, 4, 0x00000008);	/* 64-bit BAR at 32 GiB */
	cfgwr(m.vm, 0, 3, 0, 4, 2, 0x0007);
	CHECK(io_bus_access(m.vm->io, IO_SPACE_MMIO, 0xfe000010, 4, false, &v));
	CHECK_EQ_U64(v, 0xab010010);	/* BAR 1, offset 0x10 */
	CHECK(io_bus_access(m.vm->io, IO_SPACE_MMIO, 0x800000004ULL, 4, false, &v));
	CHECK_EQ_U64(v, 0xab020004);
	CHECK_EQ_U64(fake_in(m.vm, 0xc000, 1), 0xab000000);
	/* Sizing with decode on leaves no stray mapping at the all-ones address. */
	cfgwr(m.vm, 0, 3, 0, 0x14, 4, 0xffffffff);
	CHECK(!io_bus_access(m.vm->io, IO_SPACE_MMIO, 0xfffff000, 4, false, &v));
	CHECK(!io_bus_access(m.vm->io, IO_SPACE_MMIO, 0xfe000000, 4, false, &v));
	cfgwr(m.vm, 0, 3, 0, 0x14, 4, 0xfe000000);
	CHECK(io_bus_access(m.vm->io, IO_SPACE_MMIO, 0xfe000000, 4, false, &v));
	machine_down(&m);
}

TEST(pci_big_64bit_bar_above_ram)
{
	struct vm *vm = fake_vm_new();
	struct pci_bus *bus;
	struct testdev td = { 0 };
	struct pci_dev *pdev;

	cfg_reset();
	CHECK(gm_create(&vm->gm, 5ULL << 30) == 0);	/* 3 GiB low, 2 GiB high */
	CHECK(pci_bus_create(vm, &bus) == 0);
	pdev = add_testdev(bus, 4, 0, &td, 1ULL << 30);
	CHECK(pci_bus_finalize(bus) == 0);
	CHECK_EQ_U64(pdev->bar[2].addr, 6ULL << 30);
	CHECK(pdev->bar[2].registered);
	pci_bus_destroy(bus);
	gm_destroy(vm->gm);
	fake_vm_free(vm);
}

TEST(pci_intx_routing_and_sharing)
{
	struct machine m;
	int gsi3, gsi7;

	machine_up(&m, false);
	gsi3 = m.dev3->intx_gsi;
	gsi7 = m.dev7->intx_gsi;
	CHECK_EQ_U64(gsi3, 16 + (3 + 1 - 2) % 4);	/* firmware rule: LNK[(slot + pin - 2) % 4] */
	CHECK_EQ_U64(gsi7, gsi3);			/* slots 3 and 7 share link C */
	pci_intx_assert(m.dev3);
	CHECK_EQ_U64(m.vm->irq_level[gsi3], 1);
	CHECK(cfgrd(m.vm, 0, 3, 0, 6, 2) & 0x08);	/* interrupt status */
	pci_intx_assert(m.dev7);
	pci_intx_deassert(m.dev3);
	CHECK_EQ_U64(m.vm->irq_level[gsi3], 1);	/* the other still holds the line */
	pci_intx_deassert(m.dev7);
	CHECK_EQ_U64(m.vm->irq_level[gsi3], 0);
	CHECK_EQ_U64(cfgrd(m.vm, 0, 3, 0, 6, 2) & 0x08, 0);
	/* Interrupt Disable in the command register masks the line. */
	pci_intx_assert(m.dev3);
	cfgwr(m.vm, 0, 3, 0, 4, 2, 0x0403);
	CHECK_EQ_U64(m.vm->irq_level[gsi3], 0);
	cfgwr(m.vm, 0, 3, 0, 4, 2, 0x0003);
	CHECK_EQ_U64(m.vm->irq_level[gsi3], 1);
	pci_intx_deassert(m.dev3);
	machine_down(&m);
}

struct route_rec {
	int n;
	uint8_t slot[8], pin[8];
	int gsi[8];
};

static void collect(void *opaque, uint8_t b, uint8_t s, uint8_t pin, int gsi)
{
	struct route_rec *r = opaque;

	if (r->n < 8) {
		r->slot[r->n] = s;
		r->pin[r->n] = pin;
		r->gsi[r->n] = gsi;
	}
	r->n++;
}

TEST(pci_intx_routes_for_tables)
{
	struct machine m;
	struct route_rec r = { 0 };

	machine_up(&m, false);
	CHECK_EQ_U64(pci_bus_intx_routes(m.bus, collect, &r), 2);
	CHECK_EQ_U64(r.n, 2);
	CHECK_EQ_U64(r.slot[0], 3);
	CHECK_EQ_U64(r.pin[0], 1);
	CHECK_EQ_U64(r.gsi[0], 18);
	CHECK_EQ_U64(r.slot[1], 7);
	machine_down(&m);
}

TEST(pci_pirq_routing_to_pic)
{
	struct machine m;
	int link = (3 + 1 - 2) % 4;

	machine_up(&m, false);
	cfgwr(m.vm, 0, 31, 0, 0x60 + link, 1, 0x0b);	/* PIRQC -> IRQ 11 */
	CHECK_EQ_U64(cfgrd(m.vm, 0, 31, 0, 0x60 + link, 1), 0x0b);
	pci_intx_assert(m.dev3);
	CHECK_EQ_U64(m.vm->irq_level[11], 1);
	CHECK_EQ_U64(m.vm->irq_level[16 + link], 1);
	cfgwr(m.vm, 0, 31, 0, 0x60 + link, 1, 0x0a);	/* re-route while asserted */
	CHECK_EQ_U64(m.vm->irq_level[11], 0);
	CHECK_EQ_U64(m.vm->irq_level[10], 1);
	cfgwr(m.vm, 0, 31, 0, 0x60, 4, 0x80808080);	/* all disabled */
	CHECK_EQ_U64(m.vm->irq_level[10], 0);
	pci_intx_deassert(m.dev3);
	CHECK_EQ_U64(m.vm->irq_level[16 + link], 0);
	/* Reserved bits 6:4 read 0; the rest of the bridge's config space is the core's. */
	cfgwr(m.vm, 0, 31, 0, 0x61, 1, 0xff);
	CHECK_EQ_U64(cfgrd(m.vm, 0, 31, 0, 0x61, 1), 0x8f);
	machine_down(&m);
}

TEST(pci_multifunction_header)
{
	struct vm *vm = fake_vm_new();
	struct pci_bus *bus;
	struct testdev a = { 0 }, b = { 0 };
	struct pci_dev *pdev;

	cfg_reset();
	CHECK(pci_bus_create(vm, &bus) == 0);
	add_testdev(bus, 4, 0, &a, 1 << 20);
	add_testdev(bus, 4, 2, &b, 1 << 20);
	CHECK(pci_bus_add(bus, 0, 4, 2, &pdev) == -EEXIST);
	CHECK(pci_bus_add(bus, 0, 32, 0, &pdev) == -EINVAL);
	CHECK(pci_bus_add(bus, 0, 4, 8, &pdev) == -EINVAL);
	CHECK(pci_bus_finalize(bus) == 0);
	CHECK_EQ_U64(cfgrd(vm, 0, 4, 0, 0x0e, 1), 0x80);
	CHECK_EQ_U64(cfgrd(vm, 0, 4, 2, 0, 4), 0x56781234);
	CHECK_EQ_U64(cfgrd(vm, 0, 4, 1, 0, 4), 0xffffffff);
	pci_bus_destroy(bus);
	fake_vm_free(vm);
}

TEST(lpc_only_one_and_bus_0)
{
	struct machine m;
	struct pci_dev *pdev;

	machine_up(&m, false);
	CHECK(add_model(m.vm, m.bus, 0, 30, "lpc", NULL) == -EINVAL);
	CHECK(add_model(m.vm, m.bus, 1, 1, "lpc", &pdev) == -EINVAL);
	machine_down(&m);
}

TEST(lpc_com_ports_and_testdev)
{
	struct machine m;

	machine_up(&m, true);
	CHECK_EQ_U64(fake_in(m.vm, 0x3fd, 1), 0x60);	/* COM1 LSR */
	CHECK_EQ_U64(fake_in(m.vm, 0x2fd, 1), 0x60);
	CHECK_EQ_U64(fake_in(m.vm, 0x3ed, 1), 0x60);
	CHECK_EQ_U64(fake_in(m.vm, 0x2ed, 1), 0x60);
	fake_out(m.vm, 0x3ff, 1, 0x42);	/* scratch */
	CHECK_EQ_U64(fake_in(m.vm, 0x3ff, 1), 0x42);
	/* COM1 THRE interrupt on ISA IRQ 4 */
	fake_out(m.vm, 0x3fc, 1, 0x08);
	fake_out(m.vm, 0x3f9, 1, 0x02);
	CHECK_EQ_U64(m.vm->irq_level[4], 1);
	fake_in(m.vm, 0x3fa, 1);
	CHECK_EQ_U64(m.vm->irq_level[4], 0);
	/* pc-testdev */
	fake_out(m.vm, 0xe0, 4, 0x12345678);
	CHECK_EQ_U64(fake_in(m.vm, 0xe0, 4), 0x12345678);
	fake_out(m.vm, 0xe0, 1, 0x9a);	/* a write replaces the whole value */
	CHECK_EQ_U64(fake_in(m.vm, 0xe0, 4), 0x9a);
	fake_out(m.vm, 0xe9, 1, 0x77);	/* byte lanes at 0xE8 */
	CHECK_EQ_U64(fake_in(m.vm, 0xe8, 4), 0x779a);
	fake_out(m.vm, 0x2000 + 10, 1, 1);
	CHECK_EQ_U64(m.vm->irq_level[10], 1);
	fake_out(m.vm, 0x2000 + 10, 1, 0);
	CHECK_EQ_U64(m.vm->irq_level[10], 0);
	{
		uint64_t v = 0x1122334455667788ULL;

		CHECK(io_bus_access(m.vm->io, IO_SPACE_MMIO, 0xff000100, 8, true, &v));
		v = 0;
		CHECK(io_bus_access(m.vm->io, IO_SPACE_MMIO, 0xff000102, 2, false, &v));
		CHECK_EQ_U64(v, 0x5566);
	}
	fake_out(m.vm, 0xe4, 4, 0x1000);	/* flush page: accepted */
	CHECK_EQ_U64(m.vm->exit_status, -1);
	fake_out(m.vm, 0xf4, 4, 4);
	CHECK_EQ_U64(m.vm->exit_status, 9);	/* (4 << 1) | 1 */
	machine_down(&m);
}

TEST(lpc_bad_backend_fails)
{
	struct vm *vm = fake_vm_new();
	struct pci_bus *bus;

	cfg_reset();
	cfg_set(cfg_root(), "lpc.com2.path", "unix=/tmp/khyve-test.sock");
	CHECK(pci_bus_create(vm, &bus) == 0);
	CHECK(add_model(vm, bus, 0, 31, "lpc", NULL) == -ENOTSUP);
	/* the partly built bridge left no ports behind */
	CHECK_EQ_U64(fake_in(vm, 0x3fd, 1), 0xff);
	pci_bus_destroy(bus);
	fake_vm_free(vm);
	cfg_reset();
}

TEST(pci_uart_emulation)
{
	struct vm *vm = fake_vm_new();
	struct pci_bus *bus;
	struct pci_dev *pdev;
	uint32_t io;

	cfg_reset();
	CHECK(pci_bus_create(vm, &bus) == 0);
	CHECK(add_model(vm, bus, 0, 5, "uart", &pdev) == 0);
	CHECK(pci_bus_finalize(bus) == 0);
	CHECK_EQ_U64(cfgrd(vm, 0, 5, 0, 0, 4), 0x2000131f);
	CHECK_EQ_U64(cfgrd(vm, 0, 5, 0, 8, 4) >> 8, 0x070002);
	io = cfgrd(vm, 0, 5, 0, 0x10, 4) & ~3u;
	CHECK_EQ_U64(fake_in(vm, io + 5, 1), 0x60);
	fake_out(vm, io + 4, 1, 0x08);
	fake_out(vm, io + 1, 1, 0x02);
	CHECK_EQ_U64(vm->irq_level[pdev->intx_gsi], 1);
	pci_bus_destroy(bus);
	fake_vm_free(vm);
	cfg_reset();
}

static struct cfg_node *fresh_node(void)
{
	cfg_reset();
	cfg_set(cfg_root(), "pci.0.3.0.device", "x");
	return cfg_find(cfg_root(), "pci.0.3.0");
}

TEST(registry_table_and_legacy_options)
{
	char err[128];
	const struct device_model *m;
	struct cfg_node *n;

	CHECK(device_find("hostbridge") && !device_find("hostbridge")->not_yet);
	CHECK(device_find("lpc") && device_find("uart"));
	CHECK(device_find("nosuch") == NULL);
	m = device_find("virtio-blk");
	CHECK(m && !m->not_yet);	/* virtio-blk is implemented (H12) */
	n = fresh_node();
	CHECK(m->legacy_parse(n, "/img/disk.raw,ro,sectorsize=4096", err, sizeof err) == 0);
	CHECK_STR(cfg_get(n, "path"), "/img/disk.raw");
	CHECK_STR(cfg_get(n, "ro"), "true");
	CHECK_STR(cfg_get(n, "sectorsize"), "4096");
	n = fresh_node();
	CHECK(device_find("virtio-net")->legacy_parse(n, "tap0,mac=00:a0:98:00:00:01", err,
						       sizeof err) == 0);
	CHECK_STR(cfg_get(n, "backend"), "tap0");
	CHECK_STR(cfg_get(n, "mac"), "00:a0:98:00:00:01");
	n = fresh_node();
	CHECK(device_find("ahci")->legacy_parse(n, "hd:/a.img,ro,cd:/b.iso,nmrr=1", err,
						 sizeof err) == 0);
	CHECK_STR(cfg_get(n, "port.0.type"), "hd");
	CHECK_STR(cfg_get(n, "port.0.path"), "/a.img");
	CHECK_STR(cfg_get(n, "port.0.ro"), "true");
	CHECK_STR(cfg_get(n, "port.1.type"), "cd");
	CHECK_STR(cfg_get(n, "port.1.nmrr"), "1");
	m = device_find("ahci-cd");
	CHECK_STR(m->alias_of, "ahci");
	n = fresh_node();
	CHECK(m->legacy_parse(n, "/c.iso", err, sizeof err) == 0);
	CHECK_STR(cfg_get(n, "port.0.type"), "cd");
	CHECK_STR(cfg_get(n, "port.0.path"), "/c.iso");
	n = fresh_node();
	CHECK(device_find("virtio-console")->legacy_parse(n, "org.qemu.guest_agent.0=/tmp/qga",
							   err, sizeof err) == 0);
	CHECK_STR(cfg_get(n, "port.0.name"), "org.qemu.guest_agent.0");
	CHECK_STR(cfg_get(n, "port.0.path"), "/tmp/qga");
	n = fresh_node();
	CHECK(device_find("nvme")->legacy_parse(n, "ram=1024,maxq=4", err, sizeof err) == 0);
	CHECK_STR(cfg_get(n, "ram"), "1024");
	CHECK(cfg_get(n, "path") == NULL);
	n = fresh_node();
	CHECK(device_find("passthru")->legacy_parse(n, "2/0/1", err, sizeof err) == 0);
	CHECK_STR(cfg_get(n, "bus"), "2");
	CHECK_STR(cfg_get(n, "func"), "1");
	n = fresh_node();
	CHECK(device_find("xhci")->legacy_parse(n, "tablet", err, sizeof err) == 0);
	CHECK_STR(cfg_get(n, "slot.1.device"), "tablet");
	n = fresh_node();
	CHECK(device_find("virtio-9p")->legacy_parse(n, "share=/srv,ro", err, sizeof err) == 0);
	CHECK_STR(cfg_get(n, "sharename"), "share");
	CHECK_STR(cfg_get(n, "path"), "/srv");
	n = fresh_node();
	CHECK(device_find("lpc")->legacy_parse(n, "x", err, sizeof err) == -EINVAL);
	CHECK(device_find("ahci")->legacy_parse(n, "ro", err, sizeof err) == -EINVAL);
	cfg_reset();
}

TEST(registry_not_yet_init_refuses)
{
	struct vm *vm = fake_vm_new();
	struct pci_bus *bus;
	struct pci_dev *pdev;
	struct cfg_node *n = fresh_node();

	CHECK(pci_bus_create(vm, &bus) == 0);
	CHECK(pci_bus_add(bus, 0, 3, 0, &pdev) == 0);
	CHECK(device_find("virtio-net")->init(vm, pdev, n) == -ENOTSUP);
	pci_bus_destroy(bus);
	fake_vm_free(vm);
	cfg_reset();
}

TEST(registry_help_lists)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	device_list(f);
	device_list_lpc(f);
	fclose(f);
	CHECK(strstr(buf, "hostbridge\n") != NULL);
	CHECK(strstr(buf, "virtio-blk") != NULL);
	CHECK(strstr(buf, "com4\n") != NULL);
	CHECK(strstr(buf, "pc-testdev\n") != NULL);
	CHECK(strstr(buf, "bootrom\n") != NULL);
	free(buf);
}

TEST(pci_msi_capability)
{
	struct vm *vm = fake_vm_new();
	struct pci_bus *bus;
	struct testdev td = { 0 };
	struct pci_dev *pdev;
	int off;

	cfg_reset();
	CHECK(pci_bus_create(vm, &bus) == 0);
	pdev = add_testdev(bus, 4, 0, &td, 1 << 20);
	off = pci_msi_add(pdev);
	CHECK_EQ_U64(off, 0x40);
	CHECK(pci_msi_add(pdev) == -EEXIST);
	CHECK(pci_bus_finalize(bus) == 0);
	CHECK_EQ_U64(cfgrd(vm, 0, 4, 0, 0x34, 1), 0x40);
	CHECK_EQ_U64(cfgrd(vm, 0, 4, 0, 0x40, 4), 0x00800005);	/* 64-bit, one message */
	CHECK(!pci_msi_enabled(pdev));
	CHECK(!pci_msi_notify(pdev));
	CHECK_EQ_U64(vm->msis, 0);
	cfgwr(vm, 0, 4, 0, 0x44, 4, 0xfee01003);	/* low 2 bits read 0 */
	cfgwr(vm, 0, 4, 0, 0x48, 4, 0);
	cfgwr(vm, 0, 4, 0, 0x4c, 2, 0x4041);
	cfgwr(vm, 0, 4, 0, 0x42, 2, 0x0071);	/* enable; MME stays 0 */
	CHECK_EQ_U64(cfgrd(vm, 0, 4, 0, 0x42, 2), 0x0081);
	CHECK_EQ_U64(cfgrd(vm, 0, 4, 0, 0x44, 4), 0xfee01000);
	CHECK(pci_msi_enabled(pdev));
	CHECK(pci_msi_notify(pdev));
	CHECK_EQ_U64(vm->msis, 1);
	CHECK_EQ_U64(vm->msi_addr, 0xfee01000);
	CHECK_EQ_U64(vm->msi_data, 0x4041);
	pci_bus_destroy(bus);
	fake_vm_free(vm);
}
