/*
 * registry.c: the table of PCI emulations for -s (bhyve-reference.md §2.2) with their config
 * keys (§4.4) and bhyve's legacy option-tail parsers, and the LPC device list for -l help
 * (§3). Emulations whose model has not been written yet parse their options like bhyve and
 * fail at VM build with "not supported yet".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "dev/models.h"
#include "dev/virtio_blk.h"
#include "dev/virtio_console.h"
#include "dev/virtio_rnd.h"
#include "pci/pci.h"

/* ---- option-tail parsing ---- */

/* bhyve's generic rule: name=value, or a bare name meaning true. */
static int reg_set_token(struct cfg_node *node, const char *prefix, const char *tok, char *err,
			 size_t errlen)
{
	const char *eq = strchr(tok, '=');
	char key[256];
	int n;

	if (eq)
		n = snprintf(key, sizeof key, "%s%.*s", prefix, (int)(eq - tok), tok);
	else
		n = snprintf(key, sizeof key, "%s%s", prefix, tok);
	if (n < 0 || (size_t)n >= sizeof key || cfg_set(node, key, eq ? eq + 1 : "true") < 0) {
		snprintf(err, errlen, "invalid option '%s'", tok);
		return -EINVAL;
	}
	return 0;
}

/* Split a copy of opts on commas; each call of fn gets one non-empty token. */
static int reg_each_token(const char *opts, int (*fn)(void *ctx, const char *tok, int idx),
			  void *ctx)
{
	char *copy, *rest, *tok;
	int idx = 0, ret = 0;

	if (!opts || !*opts)
		return 0;
	copy = rest = strdup(opts);
	if (!copy)
		return -ENOMEM;
	while (ret == 0 && (tok = strsep(&rest, ",")) != NULL) {
		if (*tok == '\0')
			continue;
		ret = fn(ctx, tok, idx++);
	}
	free(copy);
	return ret;
}

struct reg_ctx {
	struct cfg_node *node;
	const char *first_key;	/* key for a leading positional token, or NULL */
	const char *prefix;	/* key prefix for generic tokens */
	char *err;
	size_t errlen;
	int port;		/* ahci: current port, -1 before the first */
};

static int reg_generic_tok(void *opaque, const char *tok, int idx)
{
	struct reg_ctx *c = opaque;

	if (idx == 0 && c->first_key) {
		if (cfg_set(c->node, c->first_key, tok) < 0) {
			snprintf(c->err, c->errlen, "invalid value '%s'", tok);
			return -EINVAL;
		}
		return 0;
	}
	return reg_set_token(c->node, c->prefix, tok, c->err, c->errlen);
}

static int reg_parse(struct cfg_node *node, const char *opts, const char *first_key,
		     const char *prefix, char *err, size_t errlen)
{
	struct reg_ctx c = { node, first_key, prefix, err, errlen, -1 };

	return reg_each_token(opts, reg_generic_tok, &c);
}

/* "<path>[,opts]" (virtio-blk, virtio-input, uart-like devices). */
static int reg_parse_path(struct cfg_node *node, const char *opts, char *err, size_t errlen)
{
	return reg_parse(node, opts, "path", "", err, errlen);
}

/* "<backend>[,opts]" (virtio-net, e1000). */
static int reg_parse_net(struct cfg_node *node, const char *opts, char *err, size_t errlen)
{
	return reg_parse(node, opts, "backend", "", err, errlen);
}

/* "<dev>[,iid=N]" (virtio-scsi). */
static int reg_parse_scsi(struct cfg_node *node, const char *opts, char *err, size_t errlen)
{
	return reg_parse(node, opts, "dev", "", err, errlen);
}

/* nvme: "ram=MiB,..." or "<path>,...". */
static int reg_parse_nvme(struct cfg_node *node, const char *opts, char *err, size_t errlen)
{
	if (opts && strncmp(opts, "ram=", 4) == 0)
		return reg_parse(node, opts, NULL, "", err, errlen);
	return reg_parse(node, opts, "path", "", err, errlen);
}

/* virtio-9p: "sharename=/path[,ro]". */
static int reg_9p_tok(void *opaque, const char *tok, int idx)
{
	struct reg_ctx *c = opaque;
	const char *eq = strchr(tok, '=');

	if (idx == 0) {
		char name[128];

		if (!eq || eq == tok || (size_t)(eq - tok) >= sizeof name) {
			snprintf(c->err, c->errlen, "expected sharename=/path: '%s'", tok);
			return -EINVAL;
		}
		memcpy(name, tok, (size_t)(eq - tok));
		name[eq - tok] = '\0';
		if (cfg_set(c->node, "sharename", name) < 0 || cfg_set(c->node, "path", eq + 1) < 0)
			return -EINVAL;
		return 0;
	}
	return reg_set_token(c->node, "", tok, c->err, c->errlen);
}

static int reg_parse_9p(struct cfg_node *node, const char *opts, char *err, size_t errlen)
{
	struct reg_ctx c = { node, NULL, "", err, errlen, -1 };

	if (!opts || !*opts) {
		snprintf(err, errlen, "virtio-9p needs sharename=/path");
		return -EINVAL;
	}
	return reg_each_token(opts, reg_9p_tok, &c);
}

/* ahci: "hd:/img,opts,...,cd:/iso,opts" -> port.N.type/path and port.N.<opt>. */
static int reg_ahci_tok(void *opaque, const char *tok, int idx)
{
	struct reg_ctx *c = opaque;
	char key[64], prefix[32];

	if (strncmp(tok, "hd:", 3) == 0 || strncmp(tok, "cd:", 3) == 0) {
		c->port++;
		if (c->port >= 32) {
			snprintf(c->err, c->errlen, "too many AHCI ports");
			return -EINVAL;
		}
		snprintf(key, sizeof key, "port.%d.type", c->port);
		if (cfg_set(c->node, key, tok[0] == 'h' ? "hd" : "cd") < 0)
			return -EINVAL;
		snprintf(key, sizeof key, "port.%d.path", c->port);
		return cfg_set(c->node, key, tok + 3) < 0 ? -EINVAL : 0;
	}
	if (c->port < 0) {
		snprintf(c->err, c->errlen, "expected hd:PATH or cd:PATH: '%s'", tok);
		return -EINVAL;
	}
	snprintf(prefix, sizeof prefix, "port.%d.", c->port);
	return reg_set_token(c->node, prefix, tok, c->err, c->errlen);
}

static int reg_parse_ahci(struct cfg_node *node, const char *opts, char *err, size_t errlen)
{
	struct reg_ctx c = { node, NULL, "", err, errlen, -1 };

	return reg_each_token(opts, reg_ahci_tok, &c);
}

static int reg_parse_ahci_one(struct cfg_node *node, const char *opts, const char *type,
			      char *err, size_t errlen)
{
	if (cfg_set(node, "port.0.type", type) < 0)
		return -EINVAL;
	return reg_parse(node, opts, "port.0.path", "port.0.", err, errlen);
}

static int reg_parse_ahci_hd(struct cfg_node *node, const char *opts, char *err, size_t errlen)
{
	return reg_parse_ahci_one(node, opts, "hd", err, errlen);
}

static int reg_parse_ahci_cd(struct cfg_node *node, const char *opts, char *err, size_t errlen)
{
	return reg_parse_ahci_one(node, opts, "cd", err, errlen);
}

/* xhci: "tablet[,...]" -> slot.N.device, N from 1. */
static int reg_xhci_tok(void *opaque, const char *tok, int idx)
{
	struct reg_ctx *c = opaque;
	char key[32];

	if (idx >= 8) {
		snprintf(c->err, c->errlen, "xhci: at most 8 devices");
		return -EINVAL;
	}
	snprintf(key, sizeof key, "slot.%d.device", idx + 1);
	return cfg_set(c->node, key, tok) < 0 ? -EINVAL : 0;
}

static int reg_parse_xhci(struct cfg_node *node, const char *opts, char *err, size_t errlen)
{
	struct reg_ctx c = { node, NULL, "", err, errlen, -1 };

	return reg_each_token(opts, reg_xhci_tok, &c);
}

/* passthru: "pptN" | "B/S/F" | "pciB:S:F", then generic options. */
static int reg_passthru_tok(void *opaque, const char *tok, int idx)
{
	struct reg_ctx *c = opaque;
	unsigned b, s, f;
	char v[16];
	int n = 0;

	if (idx > 0)
		return reg_set_token(c->node, "", tok, c->err, c->errlen);
	if (strncmp(tok, "ppt", 3) == 0)
		return cfg_set(c->node, "pptdev", tok) < 0 ? -EINVAL : 0;
	if (sscanf(tok, "%u/%u/%u%n", &b, &s, &f, &n) != 3 || tok[n] != '\0') {
		n = 0;
		if (sscanf(tok, "pci%u:%u:%u%n", &b, &s, &f, &n) != 3 || tok[n] != '\0') {
			snprintf(c->err, c->errlen, "invalid passthru device '%s'", tok);
			return -EINVAL;
		}
	}
	snprintf(v, sizeof v, "%u", b);
	if (cfg_set(c->node, "bus", v) < 0)
		return -EINVAL;
	snprintf(v, sizeof v, "%u", s);
	if (cfg_set(c->node, "slot", v) < 0)
		return -EINVAL;
	snprintf(v, sizeof v, "%u", f);
	return cfg_set(c->node, "func", v) < 0 ? -EINVAL : 0;
}

static int reg_parse_passthru(struct cfg_node *node, const char *opts, char *err,
			      size_t errlen)
{
	struct reg_ctx c = { node, NULL, "", err, errlen, -1 };

	if (!opts || !*opts) {
		snprintf(err, errlen, "passthru needs a device (pptN, B/S/F or pciB:S:F)");
		return -EINVAL;
	}
	return reg_each_token(opts, reg_passthru_tok, &c);
}

/* ---- emulations whose model comes later ---- */

static int reg_not_yet_init(struct vm *vm, struct pci_dev *pdev, struct cfg_node *node)
{
	const char *dev = cfg_get(node, "device");

	fprintf(stderr, "khyve: pci %u:%u:%u: not supported yet: device '%s'\n", pdev->bus,
		pdev->slot, pdev->func, dev ? dev : "?");
	return -ENOTSUP;
}

#define KEY_END { NULL, KEY_STRING, NULL, NULL }
#define BLOCK_KEYS                                                                           \
	{ "path", KEY_PATH, NULL, "backing file or device" },                                 \
	{ "nocache", KEY_BOOL, "false", "open with O_DIRECT" },                               \
	{ "nodelete", KEY_BOOL, "false", "never pass TRIM/UNMAP to the backing store" },      \
	{ "sync", KEY_BOOL, "false", "open with O_SYNC" },                                    \
	{ "direct", KEY_BOOL, "false", "historical alias of sync" },                          \
	{ "ro", KEY_BOOL, "false", "read-only" },                                             \
	{ "sectorsize", KEY_STRING, NULL, "logical[/physical] sector size" },                 \
	{ "ser", KEY_STRING, NULL, "serial number (at most 20 characters)" },                 \
	{ "bootindex", KEY_INT, NULL, "firmware boot order position" }
#define NET_KEYS                                                                             \
	{ "backend", KEY_STRING, NULL, "tapN, vmnetN, slirp, netgraph or netmap backend" },   \
	{ "type", KEY_STRING, NULL, "backend type when not implied by its name" },            \
	{ "mac", KEY_STRING, NULL, "unicast MAC address (default from slot and VM name)" },   \
	{ "path", KEY_STRING, NULL, "netgraph node path" },                                   \
	{ "peerhook", KEY_STRING, NULL, "netgraph peer hook" },                               \
	{ "socket", KEY_STRING, NULL, "netgraph socket name" },                               \
	{ "hook", KEY_STRING, NULL, "netgraph own hook" },                                    \
	{ "hostfwd", KEY_STRING, NULL, "slirp port forwarding rules" }

static const struct device_key virtio_net_keys[] = {
	NET_KEYS,
	{ "mtu", KEY_INT, "1500", "MTU advertised with VIRTIO_NET_F_MTU" },
	KEY_END,
};
static const struct device_key e1000_keys[] = { NET_KEYS, KEY_END };
static const struct device_key virtio_scsi_keys[] = {
	{ "dev", KEY_PATH, NULL, "target device" },
	{ "iid", KEY_INT, "0", "initiator id" },
	{ "bootindex", KEY_INT, NULL, "firmware boot order position" },
	KEY_END,
};
static const struct device_key virtio_9p_keys[] = {
	{ "sharename", KEY_STRING, NULL, "mount tag seen by the guest" },
	{ "path", KEY_PATH, NULL, "host directory" },
	{ "ro", KEY_BOOL, "false", "read-only share" },
	KEY_END,
};
static const struct device_key virtio_input_keys[] = {
	{ "path", KEY_PATH, NULL, "host evdev node /dev/input/eventN" },
	KEY_END,
};
static const struct device_key ahci_keys[] = {
	{ "port.*", KEY_STRING, NULL,
	  "port.N.type (hd|cd), port.N.path, port.N.nmrr/ser/rev/model and block keys" },
	KEY_END,
};
static const struct device_key nvme_keys[] = {
	BLOCK_KEYS,
	{ "ram", KEY_INT, NULL, "RAM-backed namespace of N MiB" },
	{ "maxq", KEY_INT, "16", "queue pairs" },
	{ "qsz", KEY_INT, "2058", "entries per queue" },
	{ "ioslots", KEY_INT, "8", "concurrent I/Os" },
	{ "sectsz", KEY_INT, NULL, "sector size: 512, 4096 or 8192" },
	{ "eui64", KEY_STRING, NULL, "namespace EUI-64" },
	{ "dsm", KEY_STRING, "auto", "advertise DSM/TRIM: auto, enable, disable" },
	KEY_END,
};
static const struct device_key fbuf_keys[] = {
	{ "rfb", KEY_STRING, "127.0.0.1:5900", "VNC listen address" },
	{ "tcp", KEY_STRING, NULL, "alias of rfb" },
	{ "w", KEY_INT, "1024", "width" },
	{ "h", KEY_INT, "768", "height" },
	{ "vga", KEY_STRING, "io", "legacy VGA decode: io, on, off" },
	{ "wait", KEY_BOOL, "false", "start vCPUs only once a VNC client connects" },
	{ "password", KEY_STRING, NULL, "VNC password" },
	KEY_END,
};
static const struct device_key xhci_keys[] = {
	{ "slot.*", KEY_STRING, NULL, "slot.N.device: USB device (tablet)" },
	KEY_END,
};
static const struct device_key hda_keys[] = {
	{ "play", KEY_PATH, NULL, "playback device" },
	{ "rec", KEY_PATH, NULL, "recording device" },
	KEY_END,
};
static const struct device_key passthru_keys[] = {
	{ "bus", KEY_INT, NULL, "host bus" },
	{ "slot", KEY_INT, NULL, "host slot" },
	{ "func", KEY_INT, NULL, "host function" },
	{ "pptdev", KEY_STRING, NULL, "ppt driver instance name" },
	{ "rom", KEY_PATH, NULL, "option ROM file" },
	{ "bootindex", KEY_INT, NULL, "firmware boot order position" },
	DEVICE_PCIREG_KEYS,
	KEY_END,
};

#define NOT_YET(var, n, base, k, lp)                                                         \
	static const struct device_model var = { .name = (n), .alias_of = (base), .keys = (k), \
						 .legacy_parse = (lp), .init = reg_not_yet_init, \
						 .not_yet = true }

NOT_YET(reg_virtio_net, "virtio-net", NULL, virtio_net_keys, reg_parse_net);
NOT_YET(reg_virtio_scsi, "virtio-scsi", NULL, virtio_scsi_keys, reg_parse_scsi);
NOT_YET(reg_virtio_9p, "virtio-9p", NULL, virtio_9p_keys, reg_parse_9p);
NOT_YET(reg_virtio_input, "virtio-input", NULL, virtio_input_keys, reg_parse_path);
NOT_YET(reg_ahci, "ahci", NULL, ahci_keys, reg_parse_ahci);
NOT_YET(reg_ahci_hd, "ahci-hd", "ahci", ahci_keys, reg_parse_ahci_hd);
NOT_YET(reg_ahci_cd, "ahci-cd", "ahci", ahci_keys, reg_parse_ahci_cd);
NOT_YET(reg_nvme, "nvme", NULL, nvme_keys, reg_parse_nvme);
NOT_YET(reg_e1000, "e1000", NULL, e1000_keys, reg_parse_net);
NOT_YET(reg_fbuf, "fbuf", NULL, fbuf_keys, NULL);
NOT_YET(reg_xhci, "xhci", NULL, xhci_keys, reg_parse_xhci);
NOT_YET(reg_hda, "hda", NULL, hda_keys, NULL);
NOT_YET(reg_passthru, "passthru", NULL, passthru_keys, reg_parse_passthru);

/* The -s table, in bhyve's order. */
static const struct device_model *const reg_models[] = {
	&pci_hostbridge_model, &pci_amd_hostbridge_model, &pci_lpc_model,
	&reg_virtio_net, &virtio_blk_model, &virtio_console_model, &reg_virtio_scsi,
	&virtio_rnd_model, &reg_virtio_9p, &reg_virtio_input,
	&reg_ahci, &reg_ahci_hd, &reg_ahci_cd, &reg_nvme, &reg_e1000,
	&pci_uart_model, &reg_fbuf, &reg_xhci, &reg_hda, &reg_passthru,
};
#define REG_NMODELS (sizeof reg_models / sizeof reg_models[0])

const struct device_model *device_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < REG_NMODELS; i++)
		if (strcmp(reg_models[i]->name, name) == 0)
			return reg_models[i];
	return NULL;
}

void device_list(FILE *out)
{
	for (size_t i = 0; i < REG_NMODELS; i++)
		fprintf(out, "%s%s\n", reg_models[i]->name,
			reg_models[i]->not_yet ? " (not supported yet)" : "");
}

void device_list_lpc(FILE *out)
{
	static const char *const names[] = { "bootrom", "com1", "com2", "com3", "com4",
					     "pc-testdev" };

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		fprintf(out, "%s\n", names[i]);
	fprintf(out, "fwcfg (not supported yet)\n");
	fprintf(out, "tpm (not supported yet)\n");
}

/* ---- pcireg.* ---- */

static int reg_host_pcireg(unsigned host_slot, const char *attr, uint32_t *out)
{
	char path[128];
	unsigned long v;
	FILE *f;
	int ok;

	snprintf(path, sizeof path, "/sys/bus/pci/devices/0000:00:%02x.0/%s", host_slot, attr);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	ok = fscanf(f, "%lx", &v) == 1;
	fclose(f);
	if (!ok)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

int device_pcireg(struct cfg_node *node, const char *key, unsigned host_slot,
		  const char *sysfs_attr, uint32_t max, uint32_t def, uint32_t *out)
{
	const char *v = cfg_get(node, key);
	unsigned long n;
	char *end;
	int ret;

	*out = def;
	if (!v)
		return 0;
	if (strcmp(v, "host") == 0) {
		ret = reg_host_pcireg(host_slot, sysfs_attr, out);
		if (ret < 0)
			fprintf(stderr, "khyve: %s=host: cannot read the host's %s of 00:%02x.0: %s\n",
				key, sysfs_attr, host_slot, strerror(-ret));
		return ret;
	}
	errno = 0;
	n = strtoul(v, &end, 0);
	if (errno || end == v || *end || n > max) {
		fprintf(stderr, "khyve: %s: invalid PCI register value '%s'\n", key, v);
		return -EINVAL;
	}
	*out = (uint32_t)n;
	return 0;
}
