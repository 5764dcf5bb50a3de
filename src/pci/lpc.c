/*
 * lpc.c: bhyve's `lpc` PCI-ISA bridge, an Intel PIIX3 (82371SB, 8086:7000, class 06/01) with
 * its PIRQ route control registers PIRQRC[A:D] at 0x60-0x63 (82371SB datasheet 2.2.9), and
 * the ISA devices configured under lpc.*: COM1-COM4 (16550A at 0x3F8/IRQ4, 0x2F8/IRQ3,
 * 0x3E8/IRQ4, 0x2E8/IRQ3; all four exist, unconnected ones discard output, as bhyve) and
 * pc-testdev. bootrom/bootvars are the machine's (vm.c); fwcfg and TPM are not supported yet.
 * Bus 0 only, at most one.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/char/char.h"
#include "config/config.h"
#include "dev/models.h"
#include "dev/pc_testdev.h"
#include "dev/uart.h"
#include "pci/pci.h"
#include "vmm/io_bus.h"
#include "vmm/vm.h"

#define LPC_VENDOR 0x8086
#define LPC_DEVICE 0x7000	/* PIIX3 PCI-to-ISA bridge */
#define LPC_PIRQRC 0x60
#define LPC_NCOM 4

struct lpc_com {
	const char *name;
	uint16_t port;
	uint8_t irq;
};

static const struct lpc_com lpc_coms[LPC_NCOM] = {
	{ "com1", 0x3f8, 4 },
	{ "com2", 0x2f8, 3 },
	{ "com3", 0x3e8, 4 },
	{ "com4", 0x2e8, 3 },
};

struct lpc;

struct lpc_uart {
	struct lpc *lpc;
	const struct lpc_com *com;
	struct uart *uart;
	bool registered;
};

struct lpc {
	struct vm *vm;
	struct lpc_uart com[LPC_NCOM];
	struct pc_testdev *testdev;
	pthread_mutex_t irq_lock;
	unsigned irq_count[16];	/* COM1/COM3 and COM2/COM4 share an ISA line */
};

static void lpc_uart_irq(void *opaque, bool level)
{
	struct lpc_uart *lu = opaque;
	struct lpc *lpc = lu->lpc;
	unsigned irq = lu->com->irq;

	pthread_mutex_lock(&lpc->irq_lock);
	if (level) {
		if (lpc->irq_count[irq]++ == 0)
			vm_irq_assert(lpc->vm, irq);
	} else if (lpc->irq_count[irq] > 0 && --lpc->irq_count[irq] == 0) {
		vm_irq_deassert(lpc->vm, irq);
	}
	pthread_mutex_unlock(&lpc->irq_lock);
}

static void lpc_free(struct lpc *lpc)
{
	for (int i = 0; i < LPC_NCOM; i++) {
		if (lpc->com[i].registered)
			io_bus_unregister(vm_io(lpc->vm), IO_SPACE_PIO, lpc->com[i].com->port);
		uart_destroy(lpc->com[i].uart);
	}
	pc_testdev_destroy(lpc->testdev);
	pthread_mutex_destroy(&lpc->irq_lock);
	free(lpc);
}

static int lpc_add_com(struct lpc *lpc, int i, struct cfg_node *lpc_node)
{
	struct lpc_uart *lu = &lpc->com[i];
	struct char_backend *be = NULL;
	char key[32], err[256];
	const char *path;
	int ret;

	lu->lpc = lpc;
	lu->com = &lpc_coms[i];
	snprintf(key, sizeof key, "%s.path", lu->com->name);
	path = lpc_node ? cfg_get(lpc_node, key) : NULL;
	if (path && *path) {
		ret = char_open(path, vm_event_loop(lpc->vm), &be, err, sizeof err);
		if (ret < 0) {
			fprintf(stderr, "khyve: lpc.%s: %s\n", key, err);
			return ret;
		}
	}
	ret = uart_create(lpc_uart_irq, lu, be, &lu->uart);
	if (ret < 0) {
		char_close(be);
		return ret;
	}
	ret = io_bus_register(vm_io(lpc->vm), IO_SPACE_PIO, lu->com->port, UART_NREGS, uart_io,
			      lu->uart, lu->com->name);
	if (ret < 0) {
		fprintf(stderr, "khyve: lpc: cannot claim ports %#x for %s\n", lu->com->port,
			lu->com->name);
		return ret;
	}
	lu->registered = true;
	return 0;
}

/* PIRQRC bytes go to the PCI core's router; everything else is the core's byte array. */
static bool lpc_cfg_write(struct pci_dev *pdev, unsigned offset, unsigned size, uint32_t val)
{
	for (unsigned i = 0; i < size; i++) {
		unsigned off = offset + i;
		uint8_t b = (uint8_t)(val >> (8 * i));

		if (off >= LPC_PIRQRC && off < LPC_PIRQRC + 4) {
			/* Bits 6:4 are reserved and read as 0. */
			b &= 0x8f;
			pdev->cfg[off] = b;
			pci_pirq_set(pdev, (int)(off - LPC_PIRQRC), b);
		}
	}
	return false;
}

static void lpc_reset(struct pci_dev *pdev)
{
	struct lpc *lpc = pdev->priv;

	for (int i = 0; i < 4; i++) {
		pdev->cfg[LPC_PIRQRC + i] = 0x80;
		pci_pirq_set(pdev, i, 0x80);
	}
	for (int i = 0; i < LPC_NCOM; i++)
		uart_reset(lpc->com[i].uart);
}

static void lpc_destroy(struct pci_dev *pdev)
{
	lpc_free(pdev->priv);
	pdev->priv = NULL;
}

static const struct pci_dev_ops lpc_ops = {
	.cfg_write = lpc_cfg_write,
	.reset = lpc_reset,
	.destroy = lpc_destroy,
};

static int lpc_ids(struct cfg_node *lpc_node, struct pci_dev *pdev)
{
	uint32_t vendor = LPC_VENDOR, device = LPC_DEVICE, rev = 0, subven = 0, subdev = 0;
	int ret = 0;

	/* bhyve reads these under lpc.pcireg.*; "host" copies the host's ISA bridge 00:1f.0. */
	if (lpc_node) {
		ret = device_pcireg(lpc_node, "pcireg.vendor", 31, "vendor", 0xffff, vendor,
				    &vendor);
		if (!ret)
			ret = device_pcireg(lpc_node, "pcireg.device", 31, "device", 0xffff, device,
					    &device);
		if (!ret)
			ret = device_pcireg(lpc_node, "pcireg.revid", 31, "revision", 0xff, 0, &rev);
		if (!ret)
			ret = device_pcireg(lpc_node, "pcireg.subvendor", 31, "subsystem_vendor",
					    0xffff, 0, &subven);
		if (!ret)
			ret = device_pcireg(lpc_node, "pcireg.subdevice", 31, "subsystem_device",
					    0xffff, 0, &subdev);
	}
	if (ret)
		return ret;
	pci_set_ids(pdev, (uint16_t)vendor, (uint16_t)device, (uint8_t)rev, 0x06, 0x01, 0x00);
	pci_set_subsystem(pdev, (uint16_t)subven, (uint16_t)subdev);
	return 0;
}

static int lpc_init(struct vm *vm, struct pci_dev *pdev, struct cfg_node *node)
{
	struct cfg_node *lpc_node = cfg_find(cfg_root(), "lpc");
	struct lpc *lpc;
	bool testdev = false;
	int ret;

	if (pdev->bus != 0) {
		fprintf(stderr, "khyve: pci %u:%u:%u: lpc bridge must be on bus 0\n", pdev->bus,
			pdev->slot, pdev->func);
		return -EINVAL;
	}
	if (pci_pirq_attach(pdev) < 0) {
		fprintf(stderr, "khyve: pci %u:%u:%u: only one lpc bridge is allowed\n", pdev->bus,
			pdev->slot, pdev->func);
		return -EINVAL;
	}
	if (cfg_get(cfg_root(), "tpm.type")) {
		fprintf(stderr, "khyve: not supported yet: TPM device (-l tpm)\n");
		return -ENOTSUP;
	}
	if (lpc_node && cfg_get(lpc_node, "fwcfg") && strcmp(cfg_get(lpc_node, "fwcfg"), "bhyve")) {
		fprintf(stderr, "khyve: not supported yet: lpc.fwcfg=%s\n", cfg_get(lpc_node, "fwcfg"));
		return -ENOTSUP;
	}
	if (lpc_node && cfg_get_bool(lpc_node, "pc-testdev", false, &testdev) < 0) {
		fprintf(stderr, "khyve: lpc.pc-testdev: not a boolean: '%s'\n",
			cfg_get(lpc_node, "pc-testdev"));
		return -EINVAL;
	}
	ret = lpc_ids(lpc_node, pdev);
	if (ret)
		return ret;

	lpc = calloc(1, sizeof *lpc);
	if (!lpc)
		return -ENOMEM;
	lpc->vm = vm;
	pthread_mutex_init(&lpc->irq_lock, NULL);
	for (int i = 0; i < LPC_NCOM && ret == 0; i++)
		ret = lpc_add_com(lpc, i, lpc_node);
	if (ret == 0 && testdev) {
		ret = pc_testdev_create(vm, &lpc->testdev);
		if (ret < 0)
			fprintf(stderr, "khyve: lpc: cannot create pc-testdev: %s\n", strerror(-ret));
	}
	if (ret < 0) {
		lpc_free(lpc);
		return ret;
	}
	pdev->name = "lpc";
	pdev->priv = lpc;
	pdev->ops = &lpc_ops;
	for (int i = 0; i < 4; i++)
		pdev->cfg[LPC_PIRQRC + i] = 0x80;
	return 0;
}

static int lpc_legacy_parse(struct cfg_node *node, const char *opts, char *err, size_t errlen)
{
	if (opts && *opts) {
		snprintf(err, errlen, "lpc takes no options (use -l): '%s'", opts);
		return -EINVAL;
	}
	return 0;
}

static const struct device_key lpc_keys[] = {
	{ NULL, KEY_STRING, NULL, NULL },
};

const struct device_model pci_lpc_model = {
	.name = "lpc",
	.keys = lpc_keys,
	.legacy_parse = lpc_legacy_parse,
	.init = lpc_init,
};
