/*
 * cli.c: bhyve(8)'s command line (bhyve-reference.md §1-§3) turned into configuration keys,
 * applied left to right so that later settings win, then the VM name, config.dump, the
 * schema check and the topology/memory-size rules bhyve applies after parsing. Writes keys
 * only; features that arrive later (-G, -f, -K, -n, -r, tpm) are parsed into their keys and
 * refused by the VM build. Errors are one line "khyve: <what>: '<argument>'" on stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "cli/cli.h"
#include "config/config.h"
#include "dev/device.h"

#define EX_USAGE 64		/* sysexits.h: bad option value */
#define EXIT_DEVICE 4		/* bhyve: bad -s, unknown device */
#define CLI_MAX_NAME 128

/* bhyve 14's amd64 getopt string, plus r: (snapshot restore) and n: (NUMA, bhyve 15).
 * "+": stop at the first operand, as BSD getopt does; ":": report missing arguments. */
static const char cli_optstring[] = "+:aehuwxACDHIPSWYk:f:o:p:G:c:s:m:l:K:U:r:n:";

static const struct option cli_longopts[] = {
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

void cli_usage(FILE *out)
{
	fprintf(out,
		"Usage: khyve [-aACDeHhIPSuWwxY] [-c [[cpus=]n][,sockets=n][,cores=n][,threads=n]]\n"
		"             [-f name,{string|file}=data] [-G [w][address:]port] [-k config_file]\n"
		"             [-K layout] [-l lpcdev[,conf]] [-m memsize[K|M|G|T]] [-n numa-spec]\n"
		"             [-o key=value] [-p vcpu:hostcpu] [-r file]\n"
		"             [-s [[bus:]slot[:func]],emulation[,conf]] [-U uuid] vmname\n"
		"       khyve -l help\n"
		"       khyve -s help\n"
		"  -a: local APIC in xAPIC mode (default)\n"
		"  -A: build ACPI tables\n"
		"  -c: number of vCPUs and topology\n"
		"  -C: include guest memory in core dumps\n"
		"  -D: destroy the VM on guest power-off\n"
		"  -e: exit on unemulated I/O port accesses\n"
		"  -f: add a fw_cfg item\n"
		"  -G: start a GDB server on a TCP port (w: wait for it)\n"
		"  -h, --help: print this help\n"
		"  -H: vmexit on HLT (idle vCPUs yield)\n"
		"  -I: accepted and ignored (the I/O APIC is always present)\n"
		"  -k: read key=value configuration lines from a file\n"
		"  -K: PS/2 keyboard layout for VNC\n"
		"  -l: LPC device: com1..com4,BACKEND  bootrom,ROM[,VARS]  pc-testdev\n"
		"      fwcfg,{bhyve|qemu}  tpm,TYPE,PATH  help\n"
		"  -m: guest memory size (default 256M)\n"
		"  -n: NUMA domain id=N,size=S[,cpus=LIST][,domain_policy=P]\n"
		"  -o: set a configuration key (e.g. accel=kvm|soft|auto, boot.kernel=PATH)\n"
		"  -p: pin a vCPU to a host CPU\n"
		"  -P: vmexit on PAUSE\n"
		"  -r: restore from a snapshot\n"
		"  -s: PCI device (help lists the emulations)\n"
		"  -S: wire (lock) guest memory\n"
		"  -u: RTC keeps UTC\n"
		"  -U: SMBIOS system UUID\n"
		"  -w: ignore unimplemented MSRs\n"
		"  -W: virtio devices use MSI instead of MSI-X\n"
		"  -x: local APIC in x2APIC mode\n"
		"  -Y: no MP table\n");
}

static bool cli_fail(int *exit_code, int code, const char *what, const char *arg)
{
	fprintf(stderr, "khyve: %s: '%s'\n", what, arg);
	*exit_code = code;
	return false;
}

static bool cli_usage_fail(int *exit_code, const char *what, const char *arg)
{
	fprintf(stderr, "khyve: %s: '%s'\n", what, arg);
	cli_usage(stderr);
	*exit_code = 1;
	return false;
}

/* Strict decimal in [0, max], the whole of s[0..len). */
static bool cli_number(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 20)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > max)
			return false;
	}
	*out = v;
	return true;
}

static bool cli_set(const char *key, const char *value)
{
	return cfg_set(NULL, key, value) == 0;
}

/* bhyve's generic option rule: comma list of name=value or bare name (= true). */
static int cli_generic_options(struct cfg_node *node, const char *opts)
{
	char *copy, *rest, *tok;
	int ret = 0;

	if (!opts)
		return 0;
	copy = rest = strdup(opts);
	if (!copy)
		return -ENOMEM;
	while (ret == 0 && (tok = strsep(&rest, ",")) != NULL) {
		char *eq = strchr(tok, '=');

		if (*tok == '\0')
			continue;
		if (eq) {
			*eq = '\0';
			ret = cfg_set(node, tok, eq + 1);
		} else {
			ret = cfg_set(node, tok, "true");
		}
	}
	free(copy);
	return ret;
}

/* -c [[cpus=]n][,sockets=n][,cores=n][,threads=n]; "" means one vCPU. */
static bool cli_topology(const char *arg)
{
	static const char *const keys[] = { "cpus", "sockets", "cores", "threads" };
	char *copy, *rest, *tok;
	bool ok = true;

	if (*arg == '\0') {
		for (size_t i = 0; i < 4; i++)
			if (!cli_set(keys[i], "1"))
				return false;
		return true;
	}
	copy = rest = strdup(arg);
	if (!copy)
		return false;
	while (ok && (tok = strsep(&rest, ",")) != NULL) {
		const char *key = "cpus", *val = tok, *eq = strchr(tok, '=');
		uint64_t n;

		if (eq) {
			key = NULL;
			for (size_t i = 0; i < 4; i++)
				if (strlen(keys[i]) == (size_t)(eq - tok) &&
				    strncmp(tok, keys[i], (size_t)(eq - tok)) == 0)
					key = keys[i];
			val = eq + 1;
		}
		ok = key && cli_number(val, strlen(val), UINT16_MAX, &n) && n >= 1 &&
		     cli_set(key, val);
	}
	free(copy);
	return ok;
}

/* "[[bus:]slot[:func]]" -> b, s, f with bhyve's limits. */
static bool cli_slot(const char *s, size_t len, unsigned *b, unsigned *sl, unsigned *f)
{
	uint64_t v[3];
	int n = 0;
	size_t start = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != ':')
			continue;
		if (n == 3 || !cli_number(s + start, i - start, 255, &v[n]))
			return false;
		n++;
		start = i + 1;
	}
	*b = 0;
	*f = 0;
	if (n == 1) {
		*sl = (unsigned)v[0];
	} else if (n == 2) {
		*sl = (unsigned)v[0];
		*f = (unsigned)v[1];
	} else {
		*b = (unsigned)v[0];
		*sl = (unsigned)v[1];
		*f = (unsigned)v[2];
	}
	return *sl < 32 && *f < 8;
}

/* -s [[bus:]slot[:func]],emulation[,conf] */
static bool cli_pci(const char *arg, int *exit_code)
{
	const char *comma = strchr(arg, ','), *conf;
	const struct device_model *model;
	unsigned b, s, f;
	char emul[64], path[40], err[256] = "";
	struct cfg_node *node;
	size_t elen;
	int ret;

	if (!comma || !cli_slot(arg, (size_t)(comma - arg), &b, &s, &f))
		return cli_fail(exit_code, EXIT_DEVICE,
				"invalid PCI slot (expected [[bus:]slot[:func]],emulation[,conf])",
				arg);
	conf = strchr(comma + 1, ',');
	elen = conf ? (size_t)(conf - comma - 1) : strlen(comma + 1);
	if (conf)
		conf++;
	if (elen >= sizeof(emul))
		return cli_fail(exit_code, EXIT_DEVICE, "unknown device", comma + 1);
	memcpy(emul, comma + 1, elen);
	emul[elen] = '\0';
	model = device_find(emul);
	if (!model) {
		snprintf(err, sizeof(err), "pci slot %u:%u:%u: unknown device", b, s, f);
		return cli_fail(exit_code, EXIT_DEVICE, err, emul);
	}
	snprintf(path, sizeof(path), "pci.%u.%u.%u", b, s, f);
	if (cfg_find(NULL, path)) {
		snprintf(err, sizeof(err), "pci slot %u:%u:%u already occupied!", b, s, f);
		return cli_fail(exit_code, EXIT_DEVICE, err, arg);
	}
	snprintf(path, sizeof(path), "pci.%u.%u.%u.device", b, s, f);
	if (!cli_set(path, model->alias_of ? model->alias_of : model->name))
		return cli_fail(exit_code, EXIT_DEVICE, "invalid PCI slot", arg);
	path[strlen(path) - strlen(".device")] = '\0';
	node = cfg_find(NULL, path);
	if (model->legacy_parse)
		ret = model->legacy_parse(node, conf, err, sizeof(err));
	else
		ret = cli_generic_options(node, conf);
	if (ret == 0)
		return true;
	if (err[0] == '\0')
		snprintf(err, sizeof(err), "invalid options for %s", emul);
	return cli_fail(exit_code, EXIT_DEVICE, err, arg);
}

/* -l lpcdev[,conf] (bhyve's lpc_device_parse). */
static bool cli_lpc(const char *arg, int *exit_code)
{
	static const char *const coms[] = { "com1", "com2", "com3", "com4" };
	char *copy, *rest, *dev, *tok;
	bool ok = false;

	copy = rest = strdup(arg);
	if (!copy)
		return cli_fail(exit_code, EX_USAGE, "out of memory", arg);
	dev = strsep(&rest, ",");
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(dev, coms[i]) == 0) {
			char key[16];

			snprintf(key, sizeof(key), "lpc.%s.path", coms[i]);
			ok = rest && *rest && cli_set(key, rest);
			goto out;
		}
	}
	if (strcasecmp(dev, "bootrom") == 0) {
		tok = strsep(&rest, ",");
		if (!tok || !*tok || !cli_set("lpc.bootrom", tok))
			goto out;
		tok = strsep(&rest, ",");
		if (tok && *tok && !strchr(tok, '=')) {
			if (!cli_set("lpc.bootvars", tok))
				goto out;
		} else if (tok && cli_generic_options(cfg_find(NULL, "lpc"), tok)) {
			goto out;
		}
		ok = cli_generic_options(cfg_find(NULL, "lpc"), rest) == 0;
	} else if (strcasecmp(dev, "pc-testdev") == 0) {
		ok = !rest && cli_set("lpc.pc-testdev", "true");
	} else if (strcasecmp(dev, "fwcfg") == 0) {
		ok = rest && (strcmp(rest, "bhyve") == 0 || strcmp(rest, "qemu") == 0) &&
		     cli_set("lpc.fwcfg", rest);
	} else if (strcasecmp(dev, "tpm") == 0) {
		char *type = strsep(&rest, ","), *path = strsep(&rest, ",");

		ok = type && *type && path && *path && cli_set("tpm.type", type) &&
		     cli_set("tpm.path", path) &&
		     cli_generic_options(cfg_find(NULL, "tpm"), rest) == 0 &&
		     (cfg_get(NULL, "tpm.version") || cli_set("tpm.version", "2.0"));
	} else {
		free(copy);
		return cli_fail(exit_code, EX_USAGE, "unknown lpc device", arg);
	}
out:
	free(copy);
	if (!ok)
		return cli_fail(exit_code, EX_USAGE, "invalid lpc device configuration", arg);
	return true;
}

/* -p vcpu:hostcpu, accumulating into vcpu.N.cpuset. */
static bool cli_pin(const char *arg)
{
	const char *colon = strchr(arg, ':'), *old;
	uint64_t vcpu, host;
	char key[32], *val;
	bool ok;

	if (!colon || !cli_number(arg, (size_t)(colon - arg), UINT16_MAX - 1, &vcpu) ||
	    !cli_number(colon + 1, strlen(colon + 1), CPU_SETSIZE - 1, &host))
		return false;
	snprintf(key, sizeof(key), "vcpu.%u.cpuset", (unsigned)vcpu);
	old = cfg_get(NULL, key);
	if (asprintf(&val, "%s%s%u", old ? old : "", old ? "," : "", (unsigned)host) < 0)
		return false;
	ok = cli_set(key, val);
	free(val);
	return ok;
}

/* -G [w][address:]port */
static bool cli_gdb(const char *arg)
{
	const char *colon, *port;
	uint64_t n;
	bool ok = true;

	if (*arg == 'w') {
		ok = cli_set("gdb.wait", "true");
		arg++;
	}
	colon = strrchr(arg, ':');
	port = colon ? colon + 1 : arg;
	if (!cli_number(port, strlen(port), 65535, &n))
		return false;
	if (colon) {
		char *addr = strndup(arg, (size_t)(colon - arg));

		ok = ok && addr && *addr && cli_set("gdb.address", addr);
		free(addr);
	}
	return ok && cli_set("gdb.port", port);
}

static unsigned cli_count_children(const char *path)
{
	struct cfg_node *node = cfg_find(NULL, path);
	unsigned n = 0;

	for (struct cfg_node *c = node ? cfg_first_child(node) : NULL; c; c = cfg_next_sibling(c))
		n++;
	return n;
}

/* -f name,string=TEXT or name,file=PATH */
static bool cli_fwcfg(const char *arg)
{
	const char *comma = strchr(arg, ','), *kind;
	unsigned n = cli_count_children("fw_cfg");
	char key[48], *name;
	bool ok;

	if (!comma || comma == arg)
		return false;
	kind = comma + 1;
	if (strncmp(kind, "string=", 7) != 0 &&
	    (strncmp(kind, "file=", 5) != 0 || kind[5] == '\0'))
		return false;
	name = strndup(arg, (size_t)(comma - arg));
	snprintf(key, sizeof(key), "fw_cfg.%u.name", n);
	ok = name && cli_set(key, name);
	free(name);
	if (kind[0] == 's')
		snprintf(key, sizeof(key), "fw_cfg.%u.string", n);
	else
		snprintf(key, sizeof(key), "fw_cfg.%u.file", n);
	return ok && cli_set(key, strchr(kind, '=') + 1);
}

/* -n id=N,size=S[,cpus=LIST][,domain_policy=P] (bhyve 15). */
static bool cli_numa(const char *arg)
{
	char *copy = strdup(arg), *rest = copy, *tok;
	const char *size = NULL, *cpus = NULL, *policy = NULL;
	uint64_t id = 0, n;
	bool have_id = false, ok = copy != NULL;
	char key[48];

	while (ok && (tok = strsep(&rest, ",")) != NULL) {
		char *eq = strchr(tok, '=');

		if (!eq) {
			ok = false;
			break;
		}
		*eq++ = '\0';
		if (strcmp(tok, "id") == 0)
			ok = have_id = cli_number(eq, strlen(eq), 7, &id);
		else if (strcmp(tok, "size") == 0)
			ok = cfg_parse_size((size = eq), &n) == 0 && n > 0;
		else if (strcmp(tok, "cpus") == 0)
			ok = config_check_value(CFG_CPUSET, NULL, 0, UINT16_MAX - 1, (cpus = eq)) == 0;
		else if (strcmp(tok, "domain_policy") == 0)
			ok = *(policy = eq) != '\0';
		else
			ok = false;
	}
	ok = ok && have_id && size;
	if (ok) {
		snprintf(key, sizeof(key), "domains.%u.size", (unsigned)id);
		ok = cli_set(key, size);
	}
	if (ok && cpus) {
		snprintf(key, sizeof(key), "domains.%u.cpus", (unsigned)id);
		ok = cli_set(key, cpus);
	}
	if (ok && policy) {
		snprintf(key, sizeof(key), "domains.%u.domain_policy", (unsigned)id);
		ok = cli_set(key, policy);
	}
	free(copy);
	return ok;
}

static bool cli_name_ok(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > CLI_MAX_NAME || name[0] == '.' || name[0] == '-')
		return false;
	for (size_t i = 0; i < len; i++)
		if (name[i] == '/' || (unsigned char)name[i] <= ' ' || name[i] == 0x7f)
			return false;
	return true;
}

/*
 * What bhyve does after parsing: sockets default to cpus, cpus to sockets x cores x
 * threads, and both must agree; memory.size keeps bhyve's bare-number-is-MiB rule, written
 * back with an M suffix so cfg_get_size reads it right. Writes all four topology keys.
 */
static bool cli_finish(int *exit_code)
{
	const char *mem;
	uint64_t cpus, sockets, cores, threads, total, n;
	bool explicit_cpus = cfg_get(NULL, "cpus") != NULL;
	char buf[32];

	if (cfg_get_u64(NULL, "cpus", 1, &cpus) || cfg_get_u64(NULL, "cores", 1, &cores) ||
	    cfg_get_u64(NULL, "threads", 1, &threads) ||
	    cfg_get_u64(NULL, "sockets", cpus, &sockets))
		return cli_fail(exit_code, EX_USAGE, "invalid cpu topology", "");
	total = sockets * cores * threads;
	if (total > UINT16_MAX) {
		snprintf(buf, sizeof(buf), "%llu", (unsigned long long)total);
		return cli_fail(exit_code, EX_USAGE, "computed number of vCPUs too high", buf);
	}
	if (explicit_cpus && total != cpus) {
		char what[128];

		snprintf(what, sizeof(what),
			 "cpu topology (%llu sockets, %llu cores, %llu threads) does not match vCPUs",
			 (unsigned long long)sockets, (unsigned long long)cores,
			 (unsigned long long)threads);
		snprintf(buf, sizeof(buf), "%llu", (unsigned long long)cpus);
		return cli_fail(exit_code, EX_USAGE, what, buf);
	}
	cpus = total;
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)cpus);
	cli_set("cpus", buf);
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)sockets);
	cli_set("sockets", buf);
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)cores);
	cli_set("cores", buf);
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)threads);
	cli_set("threads", buf);
	mem = cfg_get(NULL, "memory.size");	/* after the sets: they free expansions */
	if (mem && cfg_parse_u64(mem, &n) == 0 && n < (1ULL << 20)) {
		snprintf(buf, sizeof(buf), "%lluM", (unsigned long long)n);
		cli_set("memory.size", buf);
	}
	return true;
}

/* bhyve's defaults, set before the options so that config.dump shows them. */
static void cli_defaults(void)
{
	cli_set("acpi_tables", "false");
	cli_set("acpi_tables_in_memory", "true");
	cli_set("memory.size", "256M");
	cli_set("x86.strictmsr", "true");
	cli_set("lpc.fwcfg", "bhyve");
	cli_set("accel", "auto");
}

bool cli_parse(int argc, char **argv, int *exit_code)
{
	char err[512];
	bool dump = false;
	const char *name;
	uint64_t mem;
	int c, ret;

	*exit_code = 0;
	cfg_reset();
	cli_defaults();
	optind = 0;	/* glibc: start afresh (cli_parse may run more than once) */
	opterr = 0;
	while ((c = getopt_long(argc, argv, cli_optstring, cli_longopts, NULL)) != -1) {
		const char *a = optarg;
		bool ok = true;

		switch (c) {
		case 'a': ok = cli_set("x86.x2apic", "false"); break;
		case 'A': ok = cli_set("acpi_tables", "true"); break;
		case 'C': ok = cli_set("memory.guest_in_core", "true"); break;
		case 'D': ok = cli_set("destroy_on_poweroff", "true"); break;
		case 'e': ok = cli_set("x86.strictio", "true"); break;
		case 'H': ok = cli_set("x86.vmexit_on_hlt", "true"); break;
		case 'I': break;
		case 'P': ok = cli_set("x86.vmexit_on_pause", "true"); break;
		case 'S': ok = cli_set("memory.wired", "true"); break;
		case 'u': ok = cli_set("rtc.use_localtime", "false"); break;
		case 'w': ok = cli_set("x86.strictmsr", "false"); break;
		case 'W': ok = cli_set("virtio_msix", "false"); break;
		case 'x': ok = cli_set("x86.x2apic", "true"); break;
		case 'Y': ok = cli_set("x86.mptable", "false"); break;
		case 'h':
			cli_usage(stdout);
			return false;
		case 'c':
			if (!cli_topology(a))
				return cli_fail(exit_code, EX_USAGE, "invalid cpu topology", a);
			break;
		case 'm':
			if (cfg_parse_memsize(a, &mem) || mem == 0)
				return cli_fail(exit_code, EX_USAGE, "invalid memory size", a);
			ok = cli_set("memory.size", a);
			break;
		case 's':
			if (strcmp(a, "help") == 0) {
				device_list(stdout);
				return false;
			}
			if (!cli_pci(a, exit_code))
				return false;
			break;
		case 'l':
			if (strcmp(a, "help") == 0) {
				device_list_lpc(stdout);
				return false;
			}
			if (!cli_lpc(a, exit_code))
				return false;
			break;
		case 'o':
			if (cfg_set_option(a, err, sizeof(err)))
				return cli_fail(exit_code, EX_USAGE, "invalid configuration option", a);
			break;
		case 'k':
			if (cfg_load_file(a, err, sizeof(err))) {
				fprintf(stderr, "khyve: %s\n", err);
				*exit_code = EX_USAGE;
				return false;
			}
			break;
		case 'p':
			if (!cli_pin(a))
				return cli_fail(exit_code, EX_USAGE, "invalid vcpu pinning configuration",
						a);
			break;
		case 'U':
			if (config_check_value(CFG_UUID, NULL, 0, 0, a))
				return cli_fail(exit_code, EX_USAGE, "invalid uuid", a);
			ok = cli_set("uuid", a);
			break;
		case 'G':
			if (!cli_gdb(a))
				return cli_fail(exit_code, EX_USAGE, "invalid gdb port", a);
			break;
		case 'K':
			ok = cli_set("keyboard.layout", a);
			break;
		case 'f':
			if (!cli_fwcfg(a))
				return cli_fail(exit_code, EX_USAGE, "invalid fw_cfg item", a);
			break;
		case 'r':
			ok = cli_set("restore_file", a);
			break;
		case 'n':
			if (!cli_numa(a))
				return cli_fail(exit_code, EX_USAGE, "invalid NUMA configuration", a);
			break;
		case ':':
			snprintf(err, sizeof(err), "-%c", optopt);
			return cli_usage_fail(exit_code, "option requires an argument", err);
		default:
			if (optopt)
				snprintf(err, sizeof(err), "-%c", optopt);
			else
				snprintf(err, sizeof(err), "%s", argv[optind - 1]);
			return cli_usage_fail(exit_code, "unknown option", err);
		}
		if (!ok) {
			snprintf(err, sizeof(err), "-%c%s%s", c, a ? " " : "", a ? a : "");
			return cli_fail(exit_code, EX_USAGE, "cannot set the key of this option "
					"(a -o or -k key is in the way)", err);
		}
	}
	if (argc - optind > 1)
		return cli_usage_fail(exit_code, "more than one VM name", argv[optind + 1]);
	if (argc - optind == 1 && !cli_set("name", argv[optind]))
		return cli_fail(exit_code, EX_USAGE, "invalid VM name", argv[optind]);
	name = cfg_get(NULL, "name");
	if (!name) {
		fprintf(stderr, "khyve: missing VM name (give it as the last argument, or -o "
			"name=NAME)\n");
		cli_usage(stderr);
		*exit_code = 1;
		return false;
	}
	if (!cli_name_ok(name))
		return cli_fail(exit_code, EX_USAGE, "invalid VM name", name);
	if (cfg_get_bool(NULL, "config.dump", false, &dump) == 0 && dump) {
		cfg_dump(stdout);
		*exit_code = 1;
		return false;
	}
	ret = config_validate(err, sizeof(err));
	if (ret) {
		fprintf(stderr, "khyve: %s\n", err);
		*exit_code = ret == -ENODEV ? EXIT_DEVICE : EX_USAGE;
		return false;
	}
	return cli_finish(exit_code);
}
