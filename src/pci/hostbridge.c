/*
 * hostbridge.c: bhyve's `hostbridge` (1275:1275, NetApp) and `amd_hostbridge` (1022:7432)
 * emulations: a host bridge (class 06/00) with a PCI Express root-port capability, as bhyve's
 * pci_hostbridge.c; no registers of its own. IDs come from pcireg.* or the legacy
 * vendor=/devid= keys. Leaves out: PAM/SMRAM registers of a real i440FX (see
 * firmware-platform.md §1.4; a later "pc" profile brings those).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "dev/models.h"
#include "pci/pci.h"

#define HOSTBRIDGE_VENDOR 0x1275
#define HOSTBRIDGE_DEVICE 0x1275
#define AMD_HOSTBRIDGE_VENDOR 0x1022
#define AMD_HOSTBRIDGE_DEVICE 0x7432

#define PCIY_EXPRESS 0x10
#define PCIE_CAP_LEN 0x3c	/* version-2 capability structure */
#define PCIEM_CAP_VER2 0x0002
#define PCIEM_TYPE_ROOT_PORT 0x0040
#define PCIE_LINK_CAP_GEN1_X1_L0S 0x00000411
#define PCIE_LINK_STA_GEN1_X1 0x0011

static int hostbridge_add_pciecap(struct pci_dev *pdev)
{
	uint8_t cap[PCIE_CAP_LEN] = { 0 };

	cap[0] = PCIY_EXPRESS;
	cap[2] = (uint8_t)(PCIEM_CAP_VER2 | PCIEM_TYPE_ROOT_PORT);
	cap[0x0c] = (uint8_t)PCIE_LINK_CAP_GEN1_X1_L0S;
	cap[0x0d] = (uint8_t)(PCIE_LINK_CAP_GEN1_X1_L0S >> 8);
	cap[0x12] = (uint8_t)PCIE_LINK_STA_GEN1_X1;
	return pci_add_capability(pdev, cap, sizeof cap) < 0 ? -ENOSPC : 0;
}

static int hostbridge_init(struct vm *vm, struct pci_dev *pdev, struct cfg_node *node)
{
	uint32_t vendor, device, rev, subven, subdev;
	int ret;

	/* The legacy vendor=/devid= keys, then pcireg.* which win. */
	ret = device_pcireg(node, "vendor", 0, "vendor", 0xffff, HOSTBRIDGE_VENDOR, &vendor);
	if (!ret)
		ret = device_pcireg(node, "devid", 0, "device", 0xffff, HOSTBRIDGE_DEVICE, &device);
	if (!ret)
		ret = device_pcireg(node, "pcireg.vendor", 0, "vendor", 0xffff, vendor, &vendor);
	if (!ret)
		ret = device_pcireg(node, "pcireg.device", 0, "device", 0xffff, device, &device);
	if (!ret)
		ret = device_pcireg(node, "pcireg.revid", 0, "revision", 0xff, 0, &rev);
	if (!ret)
		ret = device_pcireg(node, "pcireg.subvendor", 0, "subsystem_vendor", 0xffff, 0,
				    &subven);
	if (!ret)
		ret = device_pcireg(node, "pcireg.subdevice", 0, "subsystem_device", 0xffff, 0,
				    &subdev);
	if (ret)
		return ret;
	pdev->name = "hostbridge";
	pci_set_ids(pdev, (uint16_t)vendor, (uint16_t)device, (uint8_t)rev, 0x06, 0x00, 0x00);
	pci_set_subsystem(pdev, (uint16_t)subven, (uint16_t)subdev);
	return hostbridge_add_pciecap(pdev);
}

/* amd_hostbridge is an alias: the base model with AMD's IDs written as keys. */
static int amd_hostbridge_legacy_parse(struct cfg_node *node, const char *opts, char *err,
				       size_t errlen)
{
	char buf[8];

	if (opts && *opts) {
		snprintf(err, errlen, "amd_hostbridge takes no options: '%s'", opts);
		return -EINVAL;
	}
	snprintf(buf, sizeof buf, "%#x", AMD_HOSTBRIDGE_VENDOR);
	if (cfg_set(node, "pcireg.vendor", buf) < 0)
		return -EINVAL;
	snprintf(buf, sizeof buf, "%#x", AMD_HOSTBRIDGE_DEVICE);
	if (cfg_set(node, "pcireg.device", buf) < 0)
		return -EINVAL;
	return 0;
}

static const struct device_key hostbridge_keys[] = {
	{ "vendor", KEY_STRING, NULL, "PCI vendor ID (legacy; pcireg.vendor wins)" },
	{ "devid", KEY_STRING, NULL, "PCI device ID (legacy; pcireg.device wins)" },
	DEVICE_PCIREG_KEYS,
	{ NULL, KEY_STRING, NULL, NULL },
};

const struct device_model pci_hostbridge_model = {
	.name = "hostbridge",
	.keys = hostbridge_keys,
	.init = hostbridge_init,
};

const struct device_model pci_amd_hostbridge_model = {
	.name = "amd_hostbridge",
	.alias_of = "hostbridge",
	.keys = hostbridge_keys,
	.legacy_parse = amd_hostbridge_legacy_parse,
	.init = hostbridge_init,
};
