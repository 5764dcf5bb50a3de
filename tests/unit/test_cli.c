/*
 * test_cli.c: bhyve command lines -> configuration keys (cli.c), including every bhyve
 * command line of the FreeBSD Handbook's bhyve chapter, error classes and exit codes, -k
 * files, later-wins ordering, %(name) expansion and config.dump. A fake device registry with
 * bhyve's emulation names and option rules stands in for dev/registry.c, so these tests
 * check the command line itself; the models' own option parsers are tested with them.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include "cli/cli.h"
#include "config/config.h"
#include "dev/device.h"
#include "unit.h"

/* ---- fake registry ---------------------------------------------------------------- */

/* bhyve's generic rule under node (prefix "" or "port.0."). */
static int fake_generic(struct cfg_node *node, const char *prefix, const char *opts)
{
	char *copy, *rest, *tok;
	int ret = 0;

	if (!opts)
		return 0;
	copy = rest = strdup(opts);
	while (ret == 0 && (tok = strsep(&rest, ",")) != NULL) {
		char key[128], *eq = strchr(tok, '=');

		if (!*tok)
			continue;
		if (eq)
			*eq = '\0';
		snprintf(key, sizeof(key), "%s%s", prefix, tok);
		ret = cfg_set(node, key, eq ? eq + 1 : "true");
	}
	free(copy);
	return ret;
}

/* First token (when it has no '=') is `first_key`, the rest is generic. */
static int fake_positional(struct cfg_node *node, const char *first_key, const char *opts)
{
	const char *comma;
	char *tok;
	int ret;

	if (!opts || !*opts)
		return 0;
	comma = strchr(opts, ',');
	tok = strndup(opts, comma ? (size_t)(comma - opts) : strlen(opts));
	if (strchr(tok, '=')) {
		free(tok);
		return fake_generic(node, "", opts);
	}
	ret = cfg_set(node, first_key, tok);
	free(tok);
	return ret ? ret : fake_generic(node, "", comma ? comma + 1 : NULL);
}

static int fake_net_parse(struct cfg_node *node, const char *opts, char *err, size_t len)
{
	return fake_positional(node, "backend", opts);
}

static int fake_blk_parse(struct cfg_node *node, const char *opts, char *err, size_t len)
{
	return fake_positional(node, "path", opts);
}

static int fake_ahci_port(struct cfg_node *node, const char *type, const char *opts)
{
	const char *comma = opts ? strchr(opts, ',') : NULL;
	char *path;
	int ret;

	if (!opts || !*opts)
		return -EINVAL;
	path = strndup(opts, comma ? (size_t)(comma - opts) : strlen(opts));
	ret = cfg_set(node, "port.0.type", type);
	if (ret == 0)
		ret = cfg_set(node, "port.0.path", path);
	free(path);
	return ret ? ret : fake_generic(node, "port.0.", comma ? comma + 1 : NULL);
}

static int fake_ahci_cd_parse(struct cfg_node *node, const char *opts, char *err, size_t len)
{
	return fake_ahci_port(node, "cd", opts);
}

static int fake_ahci_hd_parse(struct cfg_node *node, const char *opts, char *err, size_t len)
{
	return fake_ahci_port(node, "hd", opts);
}

static int fake_xhci_parse(struct cfg_node *node, const char *opts, char *err, size_t len)
{
	char *copy, *rest, *tok;
	int n = 1, ret = 0;

	if (!opts)
		return 0;
	copy = rest = strdup(opts);
	while (ret == 0 && (tok = strsep(&rest, ",")) != NULL) {
		char key[32];

		if (strcmp(tok, "tablet") != 0) {
			snprintf(err, len, "xhci: unknown USB device");
			ret = -EINVAL;
			break;
		}
		snprintf(key, sizeof(key), "slot.%d.device", n++);
		ret = cfg_set(node, key, tok);
	}
	free(copy);
	return ret;
}

static int fake_amd_hb_parse(struct cfg_node *node, const char *opts, char *err, size_t len)
{
	if (cfg_set(node, "pcireg.vendor", "0x1022") || cfg_set(node, "pcireg.device", "0x7432"))
		return -EINVAL;
	return fake_generic(node, "", opts);
}

static const struct device_key hb_keys[] = {
	{ "vendor", KEY_INT, NULL, "" }, { "devid", KEY_INT, NULL, "" },
	{ "pcireg.*", KEY_STRING, NULL, "" }, { NULL, KEY_STRING, NULL, NULL },
};
static const struct device_key lpc_keys[] = {
	{ "pcireg.*", KEY_STRING, NULL, "" }, { NULL, KEY_STRING, NULL, NULL },
};
static const struct device_key net_keys[] = {
	{ "backend", KEY_STRING, NULL, "" }, { "mac", KEY_STRING, NULL, "" },
	{ "mtu", KEY_INT, NULL, "" }, { NULL, KEY_STRING, NULL, NULL },
};
static const struct device_key blk_keys[] = {
	{ "path", KEY_PATH, NULL, "" }, { "ro", KEY_BOOL, NULL, "" },
	{ "nocache", KEY_BOOL, NULL, "" }, { "ser", KEY_STRING, NULL, "" },
	{ "bootindex", KEY_INT, NULL, "" }, { "ram", KEY_INT, NULL, "" },
	{ NULL, KEY_STRING, NULL, NULL },
};
static const struct device_key ahci_keys[] = {
	{ "port.*", KEY_STRING, NULL, "" }, { NULL, KEY_STRING, NULL, NULL },
};
static const struct device_key fbuf_keys[] = {
	{ "tcp", KEY_STRING, NULL, "" }, { "rfb", KEY_STRING, NULL, "" },
	{ "w", KEY_INT, NULL, "" }, { "h", KEY_INT, NULL, "" }, { "wait", KEY_BOOL, NULL, "" },
	{ "vga", KEY_STRING, NULL, "" }, { "password", KEY_STRING, NULL, "" },
	/* The Handbook's jail example passes "tablet" to fbuf; bhyve ignores it. */
	{ "tablet", KEY_BOOL, NULL, "" }, { NULL, KEY_STRING, NULL, NULL },
};
static const struct device_key xhci_keys[] = {
	{ "slot.*", KEY_STRING, NULL, "" }, { NULL, KEY_STRING, NULL, NULL },
};

static const struct device_model fake_models[] = {
	{ .name = "hostbridge", .keys = hb_keys },
	{ .name = "amd_hostbridge", .alias_of = "hostbridge", .keys = hb_keys,
	  .legacy_parse = fake_amd_hb_parse },
	{ .name = "lpc", .keys = lpc_keys },
	{ .name = "virtio-net", .keys = net_keys, .legacy_parse = fake_net_parse },
	{ .name = "e1000", .keys = net_keys, .legacy_parse = fake_net_parse },
	{ .name = "virtio-blk", .keys = blk_keys, .legacy_parse = fake_blk_parse },
	{ .name = "nvme", .keys = blk_keys, .legacy_parse = fake_blk_parse },
	{ .name = "ahci", .keys = ahci_keys },
	{ .name = "ahci-cd", .alias_of = "ahci", .keys = ahci_keys,
	  .legacy_parse = fake_ahci_cd_parse },
	{ .name = "ahci-hd", .alias_of = "ahci", .keys = ahci_keys,
	  .legacy_parse = fake_ahci_hd_parse },
	{ .name = "fbuf", .keys = fbuf_keys },
	{ .name = "xhci", .keys = xhci_keys, .legacy_parse = fake_xhci_parse },
};
#define NMODELS (sizeof(fake_models) / sizeof(fake_models[0]))

const struct device_model *device_find(const char *name)
{
	for (size_t i = 0; i < NMODELS; i++)
		if (strcmp(fake_models[i].name, name) == 0)
			return &fake_models[i];
	return NULL;
}

void device_list(FILE *out)
{
	for (size_t i = 0; i < NMODELS; i++)
		fprintf(out, "%s\n", fake_models[i].name);
}

void device_list_lpc(FILE *out)
{
	fprintf(out, "bootrom\ncom1\ncom2\ncom3\ncom4\npc-testdev\n");
}

/* ---- running cli_parse ------------------------------------------------------------ */

static char out_text[16384], err_text[4096];

static void slurp(FILE *f, char *buf, size_t len)
{
	size_t n;

	rewind(f);
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
}

static bool run_argv(int *code, char **argv)
{
	FILE *o = tmpfile(), *e = tmpfile();
	int argc = 0, so, se;
	bool ret;

	while (argv[argc])
		argc++;
	fflush(stdout);
	fflush(stderr);
	so = dup(1);
	se = dup(2);
	dup2(fileno(o), 1);
	dup2(fileno(e), 2);
	*code = -1;
	ret = cli_parse(argc, argv, code);
	fflush(stdout);
	fflush(stderr);
	dup2(so, 1);
	dup2(se, 2);
	close(so);
	close(se);
	slurp(o, out_text, sizeof(out_text));
	slurp(e, err_text, sizeof(err_text));
	return ret;
}

/* Split on blanks; '' is an empty argument. */
static bool run(int *code, const char *cmdline)
{
	static char buf[2048];
	char *argv[128], *p;
	int argc = 0;

	snprintf(buf, sizeof(buf), "khyve %s", cmdline);
	for (p = strtok(buf, " \t\n"); p && argc < 127; p = strtok(NULL, " \t\n"))
		argv[argc++] = strcmp(p, "''") == 0 ? p + 2 : p;
	argv[argc] = NULL;
	return run_argv(code, argv);
}

static void expect_output(const char *want)
{
	if (strcmp(out_text, want) != 0) {
		unit_fail(__FILE__, __LINE__, "output differs");
		printf("    got:\n%s    want:\n%s", out_text, want);
	}
}

static int lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

#define KEY(k, v) CHECK_STR(cfg_get(NULL, k), v)
#define NOKEY(k) CHECK(cfg_get(NULL, k) == NULL)

/* A command that must fail with `code` and one "khyve: " line naming `needle`. */
#define FAILS(cmd, want_code, needle)                                               \
	do {                                                                        \
		int c_;                                                             \
		CHECK(!run(&c_, cmd));                                              \
		CHECK_EQ_U64(c_, want_code);                                        \
		CHECK(strncmp(err_text, "khyve: ", 7) == 0);                        \
		CHECK(strstr(err_text, needle) != NULL);                            \
		if (want_code != 1)                                                 \
			CHECK(lines(err_text) == 1);                                \
	} while (0)

#define OK(cmd)                                                                     \
	do {                                                                        \
		int c_;                                                             \
		bool r_ = run(&c_, cmd);                                            \
		CHECK(r_);                                                          \
		if (!r_)                                                            \
			printf("    stderr: %s", err_text);                           \
	} while (0)

/* ---- the FreeBSD Handbook's bhyve chapter ------------------------------------------ */

static void check_linux_common(const char *tap)
{
	KEY("acpi_tables", "true");
	KEY("x86.vmexit_on_hlt", "true");
	KEY("x86.vmexit_on_pause", "true");
	KEY("pci.0.0.0.device", "hostbridge");
	KEY("pci.0.1.0.device", "lpc");
	KEY("pci.0.2.0.device", "virtio-net");
	KEY("pci.0.2.0.backend", tap);
	KEY("pci.0.3.0.device", "virtio-blk");
	KEY("cpus", "4");
	KEY("memory.size", "1024M");
}

TEST(handbook_linux_guest_after_grub_bhyve)
{
	OK("-A -H -P -s 0:0,hostbridge -s 1:0,lpc -s 2:0,virtio-net,tap0 "
	   "-s 3:0,virtio-blk,./linux.img -s 4:0,ahci-cd,./somelinux.iso "
	   "-l com1,stdio -c 4 -m 1024M linuxguest");
	check_linux_common("tap0");
	KEY("pci.0.3.0.path", "./linux.img");
	KEY("pci.0.4.0.device", "ahci");
	KEY("pci.0.4.0.port.0.type", "cd");
	KEY("pci.0.4.0.port.0.path", "./somelinux.iso");
	KEY("lpc.com1.path", "stdio");
	KEY("name", "linuxguest");
	KEY("sockets", "4");
	KEY("cores", "1");
	KEY("threads", "1");

	OK("-A -H -P -s 0:0,hostbridge -s 1:0,lpc -s 2:0,virtio-net,tap0 "
	   "-s 3:0,virtio-blk,./linux.img -l com1,stdio -c 4 -m 1024M linuxguest");
	check_linux_common("tap0");
	NOKEY("pci.0.4.0.device");
}

TEST(handbook_uefi_guests)
{
	static const char *const roms[] = {
		"/usr/local/share/uefi-firmware/BHYVE_UEFI.fd",
		"/usr/local/share/uefi-firmware/BHYVE_UEFI.fd,/path/to/vm-image/BHYVE_UEFI_VARS.fd",
		"/usr/local/share/uefi-firmware/BHYVE_UEFI_CSM.fd",
	};
	char cmd[512];

	for (int i = 0; i < 3; i++) {
		snprintf(cmd, sizeof(cmd),
			 "-AHP -s 0:0,hostbridge -s 1:0,lpc -s 2:0,virtio-net,tap1 "
			 "-s 3:0,virtio-blk,./disk.img -s 4:0,ahci-cd,./install.iso -c 4 -m 1024M "
			 "-l bootrom,%s guest", roms[i]);
		OK(cmd);
		KEY("acpi_tables", "true");
		KEY("x86.vmexit_on_hlt", "true");
		KEY("x86.vmexit_on_pause", "true");
		KEY("pci.0.2.0.backend", "tap1");
		KEY("pci.0.3.0.path", "./disk.img");
		KEY("pci.0.4.0.port.0.path", "./install.iso");
		KEY("name", "guest");
	}
	KEY("lpc.bootrom", "/usr/local/share/uefi-firmware/BHYVE_UEFI_CSM.fd");
	NOKEY("lpc.bootvars");
	OK("-AHP -s 0:0,hostbridge -s 1:0,lpc -l bootrom,/fw/BHYVE_UEFI.fd,/vm/VARS.fd guest");
	KEY("lpc.bootrom", "/fw/BHYVE_UEFI.fd");
	KEY("lpc.bootvars", "/vm/VARS.fd");
}

TEST(handbook_framebuffer_guest)
{
	OK("-AHP -s 0:0,hostbridge -s 31:0,lpc -s 2:0,virtio-net,tap1 -s 3:0,virtio-blk,./disk.img "
	   "-s 4:0,ahci-cd,./install.iso -c 4 -m 1024M "
	   "-s 29,fbuf,tcp=0.0.0.0:5900,w=800,h=600,wait -s 30,xhci,tablet "
	   "-l bootrom,/usr/local/share/uefi-firmware/BHYVE_UEFI.fd guest");
	KEY("pci.0.31.0.device", "lpc");
	KEY("pci.0.29.0.device", "fbuf");
	KEY("pci.0.29.0.tcp", "0.0.0.0:5900");
	KEY("pci.0.29.0.w", "800");
	KEY("pci.0.29.0.h", "600");
	KEY("pci.0.29.0.wait", "true");
	KEY("pci.0.30.0.device", "xhci");
	KEY("pci.0.30.0.slot.1.device", "tablet");
}

TEST(handbook_windows_guest)
{
	OK("-c 2 -s 0,hostbridge -s 3,nvme,windows2016.img -s 4,ahci-cd,install.iso "
	   "-s 10,virtio-net,tap0 -s 31,lpc -s 30,xhci,tablet "
	   "-l bootrom,/usr/local/share/uefi-firmware/BHYVE_UEFI.fd -m 8G -H -w windows2016");
	KEY("cpus", "2");
	KEY("pci.0.3.0.device", "nvme");
	KEY("pci.0.3.0.path", "windows2016.img");
	KEY("pci.0.4.0.port.0.path", "install.iso");
	KEY("pci.0.10.0.backend", "tap0");
	KEY("memory.size", "8G");
	KEY("x86.vmexit_on_hlt", "true");
	KEY("x86.strictmsr", "false");
	KEY("acpi_tables", "false");
	KEY("name", "windows2016");
}

TEST(handbook_zfs_nmdm_and_jail_guests)
{
	OK("-A -H -P -s 0:0,hostbridge -s 1:0,lpc -s 2:0,virtio-net,tap0 "
	   "-s3:0,virtio-blk,/dev/zvol/zroot/linuxdisk0 -l com1,stdio -c 4 -m 1024M linuxguest");
	check_linux_common("tap0");
	KEY("pci.0.3.0.path", "/dev/zvol/zroot/linuxdisk0");

	OK("-A -H -P -s 0:0,hostbridge -s 1:0,lpc -s 2:0,virtio-net,tap0 "
	   "-s 3:0,virtio-blk,./linux.img -l com1,/dev/nmdm0A -c 4 -m 1024M linuxguest");
	check_linux_common("tap0");
	KEY("lpc.com1.path", "/dev/nmdm0A");

	OK("-A -c 4 -D -H -m 2G -s 0,hostbridge -s 1,lpc -s 2,virtio-net,tap100 "
	   "-s 3,virtio-blk,/dev/zvol/zroot/vms/bhyvevm0 "
	   "-s 4,ahci-cd,/vms/FreeBSD-14.0-RELEASE-amd64-bootonly.iso "
	   "-s 31,fbuf,tcp=127.0.0.1:5900,w=1024,h=800,tablet "
	   "-l bootrom,/usr/local/share/uefi-firmware/BHYVE_UEFI.fd "
	   "-l com1,/dev/nmdbbhyve0A bhyvevm0");
	KEY("destroy_on_poweroff", "true");
	KEY("memory.size", "2G");
	KEY("pci.0.31.0.device", "fbuf");
	KEY("pci.0.31.0.tablet", "true");
	KEY("pci.0.2.0.backend", "tap100");
	KEY("lpc.com1.path", "/dev/nmdbbhyve0A");
	KEY("name", "bhyvevm0");
}

TEST(handbook_snapshot_restore)
{
	/* bhyve takes the name from the snapshot; khyve has no snapshots and wants a name. */
	FAILS("-r /path/to/snapshot/filename", 1, "missing VM name");
	OK("-r /path/to/snapshot/filename vm");
	KEY("restore_file", "/path/to/snapshot/filename");
}

TEST(issue_command_lines)
{
	char *argv[] = { "khyve", "-A", "-H", "-P", "-s", "0:0,hostbridge", "-s", "1:0,lpc",
			 "-l", "com1,stdio", "-c", "2", "-m", "512M", "-o",
			 "boot.kernel=/path/vmlinux", "-o", "boot.cmdline=console=ttyS0 quiet",
			 "linuxguest", NULL };
	int code;

	CHECK(run_argv(&code, argv));
	KEY("boot.kernel", "/path/vmlinux");
	KEY("boot.cmdline", "console=ttyS0 quiet");
	KEY("cpus", "2");
	KEY("memory.size", "512M");
	OK("-s 0,hostbridge -s 31,lpc -l com1,stdio -l bootrom,/path/rom.bin -m 64M romguest");
	KEY("lpc.bootrom", "/path/rom.bin");
	KEY("memory.size", "64M");
	OK("-o accel=soft -s 0,hostbridge vm");
	KEY("accel", "soft");
	FAILS("-o accel=turbo vm", 64, "accel");
}

/* ---- flags -------------------------------------------------------------------------- */

TEST(boolean_flags)
{
	OK("-a -C -D -e -H -I -P -S -u -W -w -Y vm");
	KEY("x86.x2apic", "false");
	KEY("memory.guest_in_core", "true");
	KEY("destroy_on_poweroff", "true");
	KEY("x86.strictio", "true");
	KEY("x86.vmexit_on_hlt", "true");
	KEY("x86.vmexit_on_pause", "true");
	KEY("memory.wired", "true");
	KEY("rtc.use_localtime", "false");
	KEY("virtio_msix", "false");
	KEY("x86.strictmsr", "false");
	KEY("x86.mptable", "false");
	OK("-a -x vm");
	KEY("x86.x2apic", "true");
	OK("-x -a vm");
	KEY("x86.x2apic", "false");
	OK("vm");		/* bhyve's defaults */
	KEY("memory.size", "256M");
	KEY("x86.strictmsr", "true");
	KEY("acpi_tables", "false");
	KEY("lpc.fwcfg", "bhyve");
	KEY("cpus", "1");
	NOKEY("x86.vmexit_on_hlt");
}

TEST(cpu_topology)
{
	OK("-c 4 vm");
	KEY("cpus", "4");
	KEY("sockets", "4");
	OK("-c cpus=4,sockets=2,cores=2 vm");
	KEY("sockets", "2");
	KEY("cores", "2");
	KEY("threads", "1");
	OK("-c sockets=2,cores=2,threads=2 vm");
	KEY("cpus", "8");
	OK("-c 4,sockets=1,cores=2,threads=2 vm");
	KEY("cpus", "4");
	OK("-c '' vm");
	KEY("cpus", "1");
	KEY("sockets", "1");
	OK("-c 2 -c 6 vm");
	KEY("cpus", "6");
	FAILS("-c 0 vm", 64, "invalid cpu topology: '0'");
	FAILS("-c x vm", 64, "'x'");
	FAILS("-c cpus= vm", 64, "invalid cpu topology");
	FAILS("-c maxcpus=4 vm", 64, "invalid cpu topology");
	FAILS("-c 70000 vm", 64, "invalid cpu topology");
	FAILS("-c 4,cores=2 vm", 64, "does not match");	/* sockets default to cpus: 8 != 4 */
	FAILS("-c cpus=8,sockets=2,cores=2 vm", 64, "does not match");
	FAILS("-o cpus=abc vm", 64, "'cpus'");
}

TEST(memory_size)
{
	uint64_t v = 0;

	OK("-m 512 vm");
	KEY("memory.size", "512M");
	CHECK(cfg_get_size(NULL, "memory.size", 0, &v) == 0);
	CHECK_EQ_U64(v, 512ULL << 20);
	OK("-m 2097152 vm");		/* above 1 MiB: bytes */
	CHECK(cfg_get_size(NULL, "memory.size", 0, &v) == 0);
	CHECK_EQ_U64(v, 2ULL << 20);
	OK("-m 1g vm");
	CHECK(cfg_get_size(NULL, "memory.size", 0, &v) == 0);
	CHECK_EQ_U64(v, 1ULL << 30);
	OK("-o memory.size=64 vm");	/* the rule belongs to the key, not to -m */
	KEY("memory.size", "64M");
	OK("-o bios.version=96 -o memory.size=%(bios.version) vm");	/* through a reference */
	KEY("memory.size", "96M");
	OK("-m 1G -m 2G vm");
	KEY("memory.size", "2G");
	FAILS("-m 12Q vm", 64, "invalid memory size: '12Q'");
	FAILS("-m 0 vm", 64, "invalid memory size");
	FAILS("-m '' vm", 64, "invalid memory size");
	FAILS("-m -1 vm", 64, "invalid memory size");
}

TEST(pci_slots)
{
	OK("-s 3,virtio-blk,/a -s 4:2,virtio-blk,/b -s 1:5:7,virtio-blk,/c -s 31:7,hostbridge vm");
	KEY("pci.0.3.0.path", "/a");
	KEY("pci.0.4.2.path", "/b");
	KEY("pci.1.5.7.path", "/c");
	KEY("pci.0.31.7.device", "hostbridge");
	OK("-s 255:31:7,hostbridge vm");
	KEY("pci.255.31.7.device", "hostbridge");
	OK("-s 0,amd_hostbridge vm");
	KEY("pci.0.0.0.device", "hostbridge");		/* aliases store the base name */
	KEY("pci.0.0.0.pcireg.vendor", "0x1022");
	OK("-s 3,virtio-blk,/img,ro,ser=ABC vm");
	KEY("pci.0.3.0.ro", "true");
	KEY("pci.0.3.0.ser", "ABC");
	OK("-s 3,virtio-net vm");			/* no options: no backend */
	NOKEY("pci.0.3.0.backend");
	OK("-s 3,virtio-net,tap0,mac=00:a0:98:01:02:03 vm");
	KEY("pci.0.3.0.mac", "00:a0:98:01:02:03");
	OK("-s 3,lpc,pcireg.vendor=host vm");		/* generic rule, dotted names */
	KEY("pci.0.3.0.pcireg.vendor", "host");

	FAILS("-s 32,hostbridge vm", 4, "invalid PCI slot");
	FAILS("-s 3:8,hostbridge vm", 4, "invalid PCI slot");
	FAILS("-s 256:0:0,hostbridge vm", 4, "invalid PCI slot");
	FAILS("-s 1:2:3:4,hostbridge vm", 4, "invalid PCI slot");
	FAILS("-s x,hostbridge vm", 4, "invalid PCI slot");
	FAILS("-s -1,hostbridge vm", 4, "invalid PCI slot");
	FAILS("-s :3,hostbridge vm", 4, "invalid PCI slot");
	FAILS("-s 3 vm", 4, "'3'");
	FAILS("-s 3,virtio-foo vm", 4, "pci slot 0:3:0: unknown device: 'virtio-foo'");
	FAILS("-s 3, vm", 4, "unknown device");
	FAILS("-s 3,hostbridge -s 3:0,lpc vm", 4, "pci slot 0:3:0 already occupied!");
	FAILS("-s 0:3:0,hostbridge -s 3,lpc vm", 4, "already occupied!");
	FAILS("-s 30,xhci,mouse vm", 4, "xhci: unknown USB device");
	FAILS("-s 3,hostbridge,nosuchkey=1 vm", 64, "unknown configuration key 'pci.0.3.0.nosuchkey'");
}

TEST(pci_help)
{
	int code;

	CHECK(!run(&code, "-s help"));
	CHECK_EQ_U64(code, 0);
	CHECK(strstr(out_text, "hostbridge\n") != NULL);
	CHECK(strstr(out_text, "virtio-blk\n") != NULL);
	CHECK(!run(&code, "-A -s help -s 99,bad vm"));	/* help wins, at its position */
	CHECK_EQ_U64(code, 0);
	CHECK(!run(&code, "-l help"));
	CHECK_EQ_U64(code, 0);
	CHECK(strstr(out_text, "com1") != NULL && strstr(out_text, "bootrom") != NULL);
}

TEST(lpc_devices)
{
	OK("-l com1,stdio -l COM2,/dev/nmdm0A -l com3,tcp=127.0.0.1:4444 -l com4,/dev/ttyS9 vm");
	KEY("lpc.com1.path", "stdio");
	KEY("lpc.com2.path", "/dev/nmdm0A");
	KEY("lpc.com3.path", "tcp=127.0.0.1:4444");
	KEY("lpc.com4.path", "/dev/ttyS9");
	OK("-l bootrom,/fw/code.fd,/vm/vars.fd,fwcfg=qemu vm");
	KEY("lpc.bootrom", "/fw/code.fd");
	KEY("lpc.bootvars", "/vm/vars.fd");
	KEY("lpc.fwcfg", "qemu");
	OK("-l bootrom,/fw/code.fd,fwcfg=qemu vm");
	NOKEY("lpc.bootvars");
	KEY("lpc.fwcfg", "qemu");
	OK("-l pc-testdev vm");
	KEY("lpc.pc-testdev", "true");
	OK("-l fwcfg,qemu vm");
	KEY("lpc.fwcfg", "qemu");
	OK("-l tpm,swtpm,/var/run/swtpm.sock vm");
	KEY("tpm.type", "swtpm");
	KEY("tpm.path", "/var/run/swtpm.sock");
	KEY("tpm.version", "2.0");
	OK("-l com1,stdio -l com1,/dev/nmdm1A vm");		/* later wins */
	KEY("lpc.com1.path", "/dev/nmdm1A");

	FAILS("-l com1 vm", 64, "invalid lpc device configuration: 'com1'");
	FAILS("-l com1, vm", 64, "invalid lpc device configuration");
	FAILS("-l com5,stdio vm", 64, "unknown lpc device: 'com5,stdio'");
	FAILS("-l floppy vm", 64, "unknown lpc device");
	FAILS("-l bootrom vm", 64, "invalid lpc device configuration");
	FAILS("-l bootrom, vm", 64, "invalid lpc device configuration");
	FAILS("-l bootrom,/fw,/vars,nosuch=1 vm", 64, "unknown configuration key 'lpc.nosuch'");
	FAILS("-l bootrom,/fw,fwcfg=uefi vm", 64, "lpc.fwcfg");
	FAILS("-l fwcfg,uefi vm", 64, "invalid lpc device configuration");
	FAILS("-l tpm,swtpm vm", 64, "invalid lpc device configuration");
	FAILS("-l tpm,magic,/dev/tpm0 vm", 64, "tpm.type");
	FAILS("-l pc-testdev,extra vm", 64, "invalid lpc device configuration");
}

TEST(options_and_order)
{
	OK("-o cpus=2 -c 4 vm");
	KEY("cpus", "4");
	OK("-c 4 -o cpus=2 -o sockets=2 vm");
	KEY("cpus", "2");
	OK("-o x86.vmexit_on_hlt=true -o x86.vmexit_on_hlt=false vm");
	KEY("x86.vmexit_on_hlt", "false");
	OK("-o name=fromopt");
	KEY("name", "fromopt");
	OK("-o name=fromopt positional");
	KEY("name", "positional");			/* the operand is applied last */
	OK("-o lpc.com1.path=stdio -o pci.0.3.0.device=virtio-blk -o pci.0.3.0.path=/x vm");
	KEY("pci.0.3.0.path", "/x");
	FAILS("-o pci.0.3.0.path=/x -s 3,virtio-blk,/y vm", 4, "already occupied!");
	FAILS("-o memory.size= vm", 64, "invalid configuration option: 'memory.size='");
	FAILS("-o noequals vm", 64, "invalid configuration option");
	FAILS("-o x86.no_such_thing=1 vm", 64, "unknown configuration key 'x86.no_such_thing'");
	FAILS("-o pci.0.5.0.device=warp-drive vm", 4, "unknown device");
	FAILS("-o x86.vmexit_on_hlt.sub=1 -H vm", 64, "-H");
}

TEST(name_expansion)
{
	OK("-s 3,virtio-blk,/dev/zvol/tank/%(name) -o bios.version=100%% myvm");
	KEY("pci.0.3.0.path", "/dev/zvol/tank/myvm");
	KEY("bios.version", "100%");
	FAILS("-s 3,virtio-blk,/dev/%(nosuch) vm", 64, "nosuch");
}

static char *write_temp(const char *text)
{
	static char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/khyve-test-cli-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		path[0] = '\0';
	if (fd >= 0)
		close(fd);
	return path;
}

TEST(config_files)
{
	char cmd[256], *path;

	path = write_temp("# vm1, as in bhyve_config(5)\nname=vm1\ncpus=2\nmemory.size=1G\n"
			  "x86.vmexit_on_hlt=true\n\npci.0.0.0.device=hostbridge\n"
			  "pci.0.2.0.device=virtio-blk\npci.0.2.0.path=/vm/d.img\n"
			  "# comment\npci.0.31.0.device=lpc\nlpc.com1.path=stdio\n");
	snprintf(cmd, sizeof(cmd), "-k %s", path);
	OK(cmd);
	KEY("name", "vm1");
	KEY("cpus", "2");
	KEY("pci.0.2.0.path", "/vm/d.img");
	KEY("lpc.com1.path", "stdio");
	snprintf(cmd, sizeof(cmd), "-c 4 -k %s -m 2G", path);	/* file after -c, before -m */
	OK(cmd);
	KEY("cpus", "2");
	KEY("memory.size", "2G");
	snprintf(cmd, sizeof(cmd), "-k %s -s 2,virtio-blk,/other vm", path);
	FAILS(cmd, 4, "already occupied!");
	unlink(path);

	path = write_temp("name=vm1\nbroken line\n");
	snprintf(cmd, sizeof(cmd), "-k %s", path);
	FAILS(cmd, 64, "line 2: invalid config option: 'broken line'");
	unlink(path);
	FAILS("-k /nonexistent/khyve.conf vm", 64, "/nonexistent/khyve.conf");
}

TEST(config_dump)
{
	static char saved[sizeof(out_text)];
	char cmd[256], *path;
	int code;

	CHECK(!run(&code, "-c 2 -m 1G -H -s 0,hostbridge -s 2,virtio-blk,/vm/d.img -s 31,lpc "
			  "-l com1,stdio -o config.dump=1 vm1"));
	CHECK_EQ_U64(code, 1);
	expect_output("acpi_tables=false\nacpi_tables_in_memory=true\nmemory.size=1G\n"
			    "x86.strictmsr=true\nx86.vmexit_on_hlt=true\nlpc.fwcfg=bhyve\n"
			    "lpc.com1.path=stdio\naccel=auto\ncpus=2\npci.0.0.0.device=hostbridge\n"
			    "pci.0.2.0.device=virtio-blk\npci.0.2.0.path=/vm/d.img\n"
			    "pci.0.31.0.device=lpc\nconfig.dump=1\nname=vm1\n");
	/* The dump reads back with -k (after removing config.dump) to the same tree. */
	memcpy(saved, out_text, sizeof(saved));
	*strstr(saved, "config.dump=1\n") = '\0';
	strcat(saved, "name=vm1\n");
	path = write_temp(saved);
	snprintf(cmd, sizeof(cmd), "-k %s -o config.dump=true", path);
	CHECK(!run(&code, cmd));
	CHECK_EQ_U64(code, 1);
	CHECK(strstr(out_text, "pci.0.2.0.path=/vm/d.img\n") != NULL);
	CHECK(strstr(out_text, "memory.size=1G\n") != NULL);
	unlink(path);
	OK("-o config.dump=false vm");
}

TEST(pinning_uuid_and_later_features)
{
	OK("-p 0:2 -p 0:3 -p 1:5 vm");
	KEY("vcpu.0.cpuset", "2,3");
	KEY("vcpu.1.cpuset", "5");
	FAILS("-p 0 vm", 64, "invalid vcpu pinning configuration: '0'");
	FAILS("-p a:1 vm", 64, "invalid vcpu pinning");
	FAILS("-p 0:99999 vm", 64, "invalid vcpu pinning");
	FAILS("-p -1:2 vm", 64, "invalid vcpu pinning");
	FAILS("-p 0:1: vm", 64, "invalid vcpu pinning");

	OK("-U 6ba7b810-9dad-11d1-80b4-00c04fd430c8 vm");
	KEY("uuid", "6ba7b810-9dad-11d1-80b4-00c04fd430c8");
	FAILS("-U 6ba7b810-9dad-11d1-80b4 vm", 64, "invalid uuid");
	FAILS("-U 6ba7b810x9dad-11d1-80b4-00c04fd430c8 vm", 64, "invalid uuid");

	OK("-G 1234 vm");
	KEY("gdb.port", "1234");
	NOKEY("gdb.wait");
	OK("-G w127.0.0.1:1234 vm");
	KEY("gdb.wait", "true");
	KEY("gdb.address", "127.0.0.1");
	KEY("gdb.port", "1234");
	FAILS("-G abc vm", 64, "invalid gdb port");
	FAILS("-G w vm", 64, "invalid gdb port");
	FAILS("-G :1234 vm", 64, "invalid gdb port");

	OK("-f opt/org.example/a,string=hello -f opt/b,file=/tmp/b vm");
	KEY("fw_cfg.0.name", "opt/org.example/a");
	KEY("fw_cfg.0.string", "hello");
	KEY("fw_cfg.1.name", "opt/b");
	KEY("fw_cfg.1.file", "/tmp/b");
	FAILS("-f opt/a vm", 64, "invalid fw_cfg item");
	FAILS("-f opt/a,blob=1 vm", 64, "invalid fw_cfg item");

	OK("-K fr -n id=0,size=1G,cpus=0-1 -n id=1,size=512M,cpus=2,domain_policy=prefer:1 vm");
	KEY("keyboard.layout", "fr");
	KEY("domains.0.size", "1G");
	KEY("domains.0.cpus", "0-1");
	KEY("domains.1.domain_policy", "prefer:1");
	FAILS("-n size=1G vm", 64, "invalid NUMA configuration");
	FAILS("-n id=9,size=1G vm", 64, "invalid NUMA configuration");
	FAILS("-n id=0,size=1G,color=red vm", 64, "invalid NUMA configuration");
}

TEST(usage_and_operands)
{
	int code;

	CHECK(!run(&code, "-h"));
	CHECK_EQ_U64(code, 0);
	CHECK(strstr(out_text, "Usage: khyve") != NULL);
	CHECK(err_text[0] == '\0');
	CHECK(!run(&code, "--help"));
	CHECK_EQ_U64(code, 0);
	CHECK(strstr(out_text, "Usage: khyve") != NULL);

	FAILS("-Z vm", 1, "unknown option: '-Z'");
	CHECK(strstr(err_text, "Usage: khyve") != NULL);
	FAILS("-AZ vm", 1, "unknown option: '-Z'");
	FAILS("--frobnicate vm", 1, "unknown option: '--frobnicate'");
	FAILS("vm -m", 1, "more than one VM name: '-m'");	/* options stop at the name */
	FAILS("-m", 1, "option requires an argument: '-m'");
	FAILS("vm1 vm2", 1, "more than one VM name: 'vm2'");
	FAILS("-A -H", 1, "missing VM name");
	FAILS("a/b", 64, "invalid VM name: 'a/b'");
	FAILS("..", 64, "invalid VM name");
	FAILS("-o name=bad/name", 64, "invalid VM name");
	OK("-- vm");
	KEY("name", "vm");
}

TEST(errors_happen_before_anything_else)
{
	/* The first bad argument stops parsing; nothing after it is looked at. */
	FAILS("-c 0 -s 3,virtio-foo vm", 64, "invalid cpu topology");
	FAILS("-s 3,virtio-foo -c 0 vm", 4, "unknown device");
}

/* man/khyve.8 documents every flag cli.c accepts (run from the repository root). */
TEST(man_page_lists_every_flag)
{
	static const char flags[] = "aehuwxACDHIPSWYkfopGcsmlKUrn";
	FILE *f = fopen("man/khyve.8", "r");
	char *text = NULL;
	size_t cap = 0;
	ssize_t len;

	if (!f) {
		printf("    (man/khyve.8 not found from this directory: skipped)\n");
		return;
	}
	len = getdelim(&text, &cap, '\0', f);
	fclose(f);
	CHECK(len > 0);
	for (const char *c = flags; len > 0 && *c; c++) {
		char item[16];

		snprintf(item, sizeof(item), ".It Fl %c", *c);
		if (!strstr(text, item)) {
			char msg[64];

			snprintf(msg, sizeof(msg), "flag -%c missing from man/khyve.8", *c);
			unit_fail(__FILE__, __LINE__, msg);
		}
	}
	CHECK(strstr(text, "Fl -help") != NULL);
	free(text);
}
