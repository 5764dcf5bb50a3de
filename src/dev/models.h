/*
 * models.h: the device models registry.c lists, declared by the files that define them.
 * Also the small helpers models share: reading pcireg.* identity overrides.
 */
#ifndef KHYVE_DEV_MODELS_H
#define KHYVE_DEV_MODELS_H

#include <stdint.h>

#include "dev/device.h"

extern const struct device_model pci_hostbridge_model;
extern const struct device_model pci_amd_hostbridge_model;
extern const struct device_model pci_lpc_model;
extern const struct device_model pci_uart_model;

/* The pcireg.* keys every model that honours identity overrides accepts. */
#define DEVICE_PCIREG_KEYS                                                                   \
	{ "pcireg.vendor", KEY_STRING, NULL, "PCI vendor ID override (number or 'host')" },   \
	{ "pcireg.device", KEY_STRING, NULL, "PCI device ID override (number or 'host')" },   \
	{ "pcireg.revid", KEY_STRING, NULL, "PCI revision ID override (number or 'host')" },  \
	{ "pcireg.subvendor", KEY_STRING, NULL, "PCI subsystem vendor ID override" },         \
	{ "pcireg.subdevice", KEY_STRING, NULL, "PCI subsystem device ID override" }

/*
 * Read an identity register override: `key` under node (e.g. "pcireg.vendor"), a number, or
 * "host" for the host's own value of `sysfs_attr` ("vendor", "device", "revision",
 * "subsystem_vendor", "subsystem_device") of host device 0000:00:host_slot.0. Unset -> def.
 * 0, or -EINVAL with a message printed.
 */
int device_pcireg(struct cfg_node *node, const char *key, unsigned host_slot,
		  const char *sysfs_attr, uint32_t max, uint32_t def, uint32_t *out);

#endif
