/*
 * device.h: the device-model interface and the registry (dev/registry.c). A model is named
 * after its emulation name, declares the config keys it accepts, turns bhyve's legacy option
 * tail into keys, and builds itself from its own config node only.
 */
#ifndef KHYVE_DEVICE_H
#define KHYVE_DEVICE_H

#include <stdbool.h>
#include <stdio.h>

struct cfg_node;
struct pci_dev;
struct vm;

enum device_key_type { KEY_STRING, KEY_BOOL, KEY_INT, KEY_SIZE, KEY_PATH };

struct device_key {
	const char *name;	/* relative to the device node; "*" suffix matches a subtree */
	enum device_key_type type;
	const char *def;	/* default as text, or NULL */
	const char *doc;	/* one line */
};

struct device_model {
	const char *name;		/* emulation name, e.g. "hostbridge" */
	const char *alias_of;		/* for aliases: the base name stored in config */
	const struct device_key *keys;	/* NULL-terminated */
	/* bhyve's -s option tail (after "slot,emul,") into keys under node. 0 or -EINVAL. */
	int (*legacy_parse)(struct cfg_node *node, const char *opts, char *err, size_t errlen);
	/* Build the device on its PCI function from its node. 0 or -errno (message printed). */
	int (*init)(struct vm *vm, struct pci_dev *pdev, struct cfg_node *node);
	/* Not yet implemented: parse works, init reports "not supported yet". */
	bool not_yet;
};

/* PCI emulations (for -s). */
const struct device_model *device_find(const char *name);
void device_list(FILE *out);	/* -s help */
/* LPC devices (for -l help) */
void device_list_lpc(FILE *out);

#endif
