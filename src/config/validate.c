/*
 * validate.c: config_validate, khyve's departure from bhyve_config(5): every leaf must be a
 * global key of the schema (schema.c) or, under pci.B.S.F, a key that the model named by
 * that node's `device` declares (dev/registry.c); values must parse as their type and
 * %(...) references must resolve. bhyve silently ignores unknown keys; khyve refuses them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "config/config.h"
#include "dev/device.h"

static const char *type_name(enum cfg_type type)
{
	switch (type) {
	case CFG_STRING: return "text";
	case CFG_PATH: return "a path";
	case CFG_BOOL: return "true or false";
	case CFG_INT: return "a number";
	case CFG_SIZE: return "a size";
	case CFG_MEMSIZE: return "a memory size";
	case CFG_ENUM: return "one of";
	case CFG_UUID: return "a UUID";
	case CFG_CPUSET: return "a CPU list";
	case CFG_PCIREG: return "a 16-bit number or host";
	}
	return "?";
}

/* A decimal number within [0, max] that is a whole key component. */
static bool pci_component(const char *s, size_t len, unsigned max, unsigned *out)
{
	unsigned v = 0;

	if (len == 0 || len > 3)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = v;
	return v <= max;
}

static int check_device_value(const struct device_key *k, const char *path, const char *v,
			      char *err, size_t errlen)
{
	enum cfg_type t = CFG_STRING;
	const char *num = v;

	switch (k->type) {
	case KEY_STRING: return 0;
	case KEY_PATH: t = CFG_PATH; break;
	case KEY_BOOL: t = CFG_BOOL; break;
	case KEY_SIZE: t = CFG_SIZE; break;
	case KEY_INT:
		t = CFG_INT;
		if (*num == '-')
			num++;
		break;
	}
	if (config_check_value(t, NULL, 0, 0, num) == 0)
		return 0;
	snprintf(err, errlen, "invalid value for key '%s' (expected %s): '%s'", path,
		 type_name(t), v);
	return -EINVAL;
}

/* path = "pci.B.S.F.rest". */
static int validate_pci(const char *path, const char *value, char *err, size_t errlen)
{
	const char *p = path + 4, *rest;
	unsigned bsf[3], max[3] = { 255, 31, 7 };
	char node_path[32];
	struct cfg_node *node;
	const struct device_model *model;
	const char *device;

	for (int i = 0; i < 3; i++) {
		const char *dot = strchr(p, '.');

		if (!dot || !pci_component(p, (size_t)(dot - p), max[i], &bsf[i]))
			goto unknown;
		p = dot + 1;
	}
	rest = p;
	snprintf(node_path, sizeof(node_path), "pci.%u.%u.%u", bsf[0], bsf[1], bsf[2]);
	node = cfg_find(NULL, node_path);
	if (!node)
		goto unknown;	/* "pci.00.3.0": not the canonical spelling */
	device = cfg_get(node, "device");
	if (!device) {
		snprintf(err, errlen, "pci slot %u:%u:%u has keys but no device: '%s'", bsf[0],
			 bsf[1], bsf[2], path);
		return -EINVAL;
	}
	model = device_find(device);
	if (!model) {
		snprintf(err, errlen, "pci slot %u:%u:%u: unknown device: '%s'", bsf[0], bsf[1],
			 bsf[2], device);
		return -ENODEV;
	}
	if (strcmp(rest, "device") == 0)
		return 0;
	for (const struct device_key *k = model->keys; k && k->name; k++) {
		size_t len = strlen(k->name);

		if (len && k->name[len - 1] == '*') {
			if (strncmp(rest, k->name, len - 1) == 0 && rest[len - 1] != '\0')
				return check_device_value(k, path, value, err, errlen);
		} else if (strcmp(rest, k->name) == 0) {
			return check_device_value(k, path, value, err, errlen);
		}
	}
	snprintf(err, errlen, "unknown configuration key '%s' (device %s has no key '%s')", path,
		 device, rest);
	return -EINVAL;
unknown:
	snprintf(err, errlen, "unknown configuration key '%s'", path);
	return -EINVAL;
}

static int validate_leaf(struct cfg_node *leaf, char *err, size_t errlen)
{
	const struct cfg_schema_key *k;
	const char *value;
	char path[512];
	int ret;

	cfg_node_path(leaf, path, sizeof(path));
	ret = cfg_get_checked(NULL, path, &value, err, errlen);
	if (ret)
		return ret;
	if (!value) {
		snprintf(err, errlen, "unknown configuration key '%s'", path);
		return -EINVAL;
	}
	if (strncmp(path, "pci.", 4) == 0)
		return validate_pci(path, value, err, errlen);
	k = config_schema_find(path);
	if (!k) {
		snprintf(err, errlen, "unknown configuration key '%s'", path);
		return -EINVAL;
	}
	if (config_check_value(k->type, k->choices, k->min, k->max, value) == 0)
		return 0;
	if (k->type == CFG_ENUM)
		snprintf(err, errlen, "invalid value for key '%s' (expected one of %s): '%s'",
			 path, k->choices, value);
	else
		snprintf(err, errlen, "invalid value for key '%s' (expected %s): '%s'", path,
			 type_name(k->type), value);
	return -EINVAL;
}

static int validate_node(struct cfg_node *node, char *err, size_t errlen)
{
	for (struct cfg_node *c = cfg_first_child(node); c; c = cfg_next_sibling(c)) {
		int ret = cfg_node_value(c) ? validate_leaf(c, err, errlen)
					    : validate_node(c, err, errlen);

		if (ret)
			return ret;
	}
	return 0;
}

int config_validate(char *err, size_t errlen)
{
	return validate_node(cfg_root(), err, errlen);
}
