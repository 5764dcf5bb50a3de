/*
 * test_config.c: the configuration tree (config.c), the global schema (schema.c) and
 * config_validate (validate.c). A small fake device registry stands in for dev/registry.c so
 * the per-device key checks are tested on known models.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include "config/config.h"
#include "dev/device.h"
#include "unit.h"

static const struct device_key fake_blk_keys[] = {
	{ "path", KEY_PATH, NULL, "image" },
	{ "ro", KEY_BOOL, "false", "read-only" },
	{ "sectorsize", KEY_STRING, NULL, "sector size" },
	{ "bootindex", KEY_INT, NULL, "boot order" },
	{ "cache", KEY_SIZE, NULL, "cache size" },
	{ NULL, KEY_STRING, NULL, NULL },
};
static const struct device_key fake_console_keys[] = {
	{ "port.*", KEY_STRING, NULL, "ports" },
	{ NULL, KEY_STRING, NULL, NULL },
};
static const struct device_model fake_models[] = {
	{ .name = "hostbridge" },
	{ .name = "virtio-blk", .keys = fake_blk_keys },
	{ .name = "virtio-console", .keys = fake_console_keys },
};

const struct device_model *device_find(const char *name)
{
	for (size_t i = 0; i < sizeof(fake_models) / sizeof(fake_models[0]); i++)
		if (strcmp(fake_models[i].name, name) == 0)
			return &fake_models[i];
	return NULL;
}

void device_list(FILE *out)
{
	for (size_t i = 0; i < sizeof(fake_models) / sizeof(fake_models[0]); i++)
		fprintf(out, "%s\n", fake_models[i].name);
}

void device_list_lpc(FILE *out)
{
	fprintf(out, "bootrom\ncom1\ncom2\ncom3\ncom4\npc-testdev\n");
}

static char *dump_tree(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cfg_dump(f);
	fclose(f);
	return buf;
}

TEST(tree_set_get_and_order)
{
	char *d;

	cfg_reset();
	CHECK(cfg_set(NULL, "b", "2") == 0);
	CHECK(cfg_set(NULL, "a.y", "1") == 0);
	CHECK(cfg_set(NULL, "a.x", "0") == 0);
	CHECK(cfg_set(NULL, "b", "3") == 0);		/* replace keeps the position */
	CHECK_STR(cfg_get(NULL, "b"), "3");
	CHECK_STR(cfg_get(NULL, "a.x"), "0");
	CHECK(cfg_get(NULL, "a") == NULL);		/* interior: no value */
	CHECK(cfg_get(NULL, "c") == NULL);
	d = dump_tree();
	CHECK_STR(d, "b=3\na.y=1\na.x=0\n");
	free(d);
	cfg_reset();
	d = dump_tree();
	CHECK_STR(d, "");
	free(d);
}

TEST(tree_rejects_bad_keys)
{
	cfg_reset();
	CHECK(cfg_set(NULL, "", "v") == -EINVAL);
	CHECK(cfg_set(NULL, ".a", "v") == -EINVAL);
	CHECK(cfg_set(NULL, "a.", "v") == -EINVAL);
	CHECK(cfg_set(NULL, "a..b", "v") == -EINVAL);
	CHECK(cfg_set(NULL, "a", NULL) == -EINVAL);
	CHECK(cfg_set(NULL, "a.b", "v") == 0);
	CHECK(cfg_set(NULL, "a", "v") == -EINVAL);	/* value on an interior node */
	CHECK(cfg_set(NULL, "a.b.c", "v") == -EINVAL);	/* child under a leaf */
	CHECK_STR(cfg_get(NULL, "a.b"), "v");
	CHECK(cfg_first_child(NULL) != NULL);
	CHECK(cfg_next_sibling(cfg_first_child(NULL)) == NULL);	/* nothing half-made */
}

TEST(tree_nodes_paths_and_unset)
{
	struct cfg_node *n;
	char buf[64];

	cfg_reset();
	CHECK(cfg_set(NULL, "pci.0.3.0.device", "virtio-blk") == 0);
	CHECK(cfg_set(NULL, "pci.0.3.0.path", "/img") == 0);
	n = cfg_find(NULL, "pci.0.3.0");
	CHECK(n != NULL);
	CHECK(cfg_find(NULL, "pci.0.3.0.path") == NULL);	/* a leaf is not a node */
	CHECK(cfg_find(NULL, "pci.0.4") == NULL);
	CHECK_STR(cfg_get(n, "path"), "/img");
	CHECK(cfg_set(n, "ro", "true") == 0);
	CHECK_STR(cfg_get(NULL, "pci.0.3.0.ro"), "true");
	CHECK_STR(cfg_node_path(n, buf, sizeof(buf)), "pci.0.3.0");
	CHECK_STR(cfg_node_name(n), "0");
	CHECK(cfg_node_value(n) == NULL);
	CHECK_STR(cfg_node_name(cfg_first_child(n)), "device");
	CHECK_STR(cfg_node_value(cfg_first_child(n)), "virtio-blk");
	CHECK_STR(cfg_node_path(cfg_first_child(n), buf, 4), "");	/* too small: empty */
	CHECK(cfg_unset(NULL, "pci.0.3.0.ro") == 0);
	CHECK(cfg_get(NULL, "pci.0.3.0.ro") == NULL);
	CHECK(cfg_set(n, "ser", "X") == 0);		/* last pointer kept right after unset */
	CHECK(cfg_unset(NULL, "pci.0.3.0.ro") == -ENOENT);
	CHECK(cfg_unset(NULL, "pci") == 0);
	CHECK(cfg_find(NULL, "pci") == NULL);
	CHECK(cfg_unset(NULL, "") == -ENOENT);
}

TEST(expansion)
{
	const char *v;
	char err[128];

	cfg_reset();
	cfg_set(NULL, "name", "vm1");
	cfg_set(NULL, "pci.0.4.0.path", "/dev/zvol/tank/%(name)");
	cfg_set(NULL, "pct", "100%%");
	cfg_set(NULL, "nested", "[%(pci.0.4.0.path)]");
	CHECK_STR(cfg_get(NULL, "pci.0.4.0.path"), "/dev/zvol/tank/vm1");
	CHECK_STR(cfg_get(NULL, "pct"), "100%");
	CHECK_STR(cfg_get(NULL, "nested"), "[/dev/zvol/tank/vm1]");
	CHECK(cfg_get(NULL, "nested") == cfg_get(NULL, "nested"));	/* cached, no growth */
	cfg_set(NULL, "name", "vm2");					/* ... until a change */
	CHECK_STR(cfg_get(NULL, "nested"), "[/dev/zvol/tank/vm2]");
	cfg_set(NULL, "name", "vm1");
	CHECK_STR(cfg_node_value(cfg_first_child(cfg_find(NULL, "pci.0.4.0"))),
		  "/dev/zvol/tank/%(name)");		/* raw value untouched */
	cfg_set(NULL, "bad1", "%(nosuch)");
	cfg_set(NULL, "bad2", "50%");
	cfg_set(NULL, "bad3", "%(name");
	cfg_set(NULL, "loop", "%(loop)");
	CHECK(cfg_get(NULL, "bad1") == NULL);
	CHECK(cfg_get_checked(NULL, "bad1", &v, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "nosuch") != NULL);
	CHECK(cfg_get_checked(NULL, "bad2", &v, err, sizeof(err)) == -EINVAL);
	CHECK(cfg_get_checked(NULL, "bad3", &v, err, sizeof(err)) == -EINVAL);
	CHECK(cfg_get_checked(NULL, "loop", &v, err, sizeof(err)) == -EINVAL);
	CHECK(cfg_get_checked(NULL, "unset", &v, err, sizeof(err)) == 0 && v == NULL);
}

TEST(bools_and_ints)
{
	bool b = false;
	uint64_t u = 0;

	const char *yes[] = { "true", "TRUE", "on", "Yes", "1" };
	const char *no[] = { "false", "Off", "no", "0" };
	for (size_t i = 0; i < 5; i++)
		CHECK(cfg_parse_bool(yes[i], &b) == 0 && b);
	for (size_t i = 0; i < 4; i++)
		CHECK(cfg_parse_bool(no[i], &b) == 0 && !b);
	CHECK(cfg_parse_bool("2", &b) == -EINVAL);
	CHECK(cfg_parse_bool("", &b) == -EINVAL);

	cfg_reset();
	cfg_set(NULL, "x86.x2apic", "on");
	cfg_set(NULL, "bad", "maybe");
	cfg_set(NULL, "n", "0x10");
	cfg_set(NULL, "neg", "-1");
	CHECK(cfg_get_bool(NULL, "x86.x2apic", false, &b) == 0 && b);
	CHECK(cfg_get_bool(NULL, "x86.mptable", true, &b) == 0 && b);
	CHECK(cfg_get_bool(NULL, "bad", false, &b) == -EINVAL);
	CHECK(cfg_get_u64(NULL, "n", 0, &u) == 0);
	CHECK_EQ_U64(u, 16);
	CHECK(cfg_get_u64(NULL, "none", 7, &u) == 0);
	CHECK_EQ_U64(u, 7);
	CHECK(cfg_get_u64(NULL, "neg", 0, &u) == -EINVAL);
	CHECK(cfg_get_u64(NULL, "bad", 0, &u) == -EINVAL);
	CHECK(cfg_parse_u64("12x", &u) == -EINVAL);
	CHECK(cfg_parse_u64("99999999999999999999999", &u) == -EINVAL);
}

TEST(sizes)
{
	uint64_t v = 0;

	CHECK(cfg_parse_size("512", &v) == 0);
	CHECK_EQ_U64(v, 512);
	CHECK(cfg_parse_size("4k", &v) == 0);
	CHECK_EQ_U64(v, 4096);
	CHECK(cfg_parse_size("1024M", &v) == 0);
	CHECK_EQ_U64(v, 1ULL << 30);
	CHECK(cfg_parse_size("8G", &v) == 0);
	CHECK_EQ_U64(v, 8ULL << 30);
	CHECK(cfg_parse_size("2t", &v) == 0);
	CHECK_EQ_U64(v, 2ULL << 40);
	CHECK(cfg_parse_size("1P", &v) == 0);
	CHECK_EQ_U64(v, 1ULL << 50);
	CHECK(cfg_parse_size("0x10m", &v) == 0);
	CHECK_EQ_U64(v, 16ULL << 20);
	CHECK(cfg_parse_size("100b", &v) == 0);
	CHECK_EQ_U64(v, 100);
	CHECK(cfg_parse_size("", &v) == -EINVAL);
	CHECK(cfg_parse_size("G", &v) == -EINVAL);
	CHECK(cfg_parse_size("1X", &v) == -EINVAL);
	CHECK(cfg_parse_size("1GB", &v) == -EINVAL);
	CHECK(cfg_parse_size("-1", &v) == -EINVAL);
	CHECK(cfg_parse_size(" 1", &v) == -EINVAL);
	CHECK(cfg_parse_size("1.5G", &v) == -EINVAL);
	CHECK(cfg_parse_size("16E", &v) == -EINVAL);		/* overflow */
	CHECK(cfg_parse_size("15E", &v) == 0);

	/* bhyve's -m rule: a bare number below 1 MiB is MiB. */
	CHECK(cfg_parse_memsize("512", &v) == 0);
	CHECK_EQ_U64(v, 512ULL << 20);
	CHECK(cfg_parse_memsize("1048575", &v) == 0);
	CHECK_EQ_U64(v, 1048575ULL << 20);
	CHECK(cfg_parse_memsize("1048576", &v) == 0);
	CHECK_EQ_U64(v, 1048576);
	CHECK(cfg_parse_memsize("2G", &v) == 0);
	CHECK_EQ_U64(v, 2ULL << 30);
	CHECK(cfg_parse_memsize("lots", &v) == -EINVAL);

	cfg_reset();
	cfg_set(NULL, "memory.size", "1G");
	CHECK(cfg_get_size(NULL, "memory.size", 0, &v) == 0);
	CHECK_EQ_U64(v, 1ULL << 30);
	CHECK(cfg_get_size(NULL, "nothing", 256ULL << 20, &v) == 0);
	CHECK_EQ_U64(v, 256ULL << 20);
}

TEST(set_option)
{
	char err[128];

	cfg_reset();
	CHECK(cfg_set_option("boot.cmdline=console=ttyS0 root=/dev/vda", err, sizeof(err)) == 0);
	CHECK_STR(cfg_get(NULL, "boot.cmdline"), "console=ttyS0 root=/dev/vda");
	CHECK(cfg_set_option("novalue=", err, sizeof(err)) == -EINVAL);
	CHECK_STR(err, "invalid configuration option: 'novalue='");
	CHECK(cfg_set_option("noequals", err, sizeof(err)) == -EINVAL);
	CHECK(cfg_set_option("=v", err, sizeof(err)) == -EINVAL);
	CHECK(cfg_set_option("a..b=v", err, sizeof(err)) == -EINVAL);
}

static char *write_temp(const char *text)
{
	static char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/khyve-test-cfg-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		return NULL;
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		path[0] = '\0';
	close(fd);
	return path;
}

TEST(load_file)
{
	char err[256], *path;

	cfg_reset();
	path = write_temp("# generated\nname=vm1\n\ncpus=2\r\nmemory.size=1G\n"
			  "pci.0.2.0.device=virtio-blk\npci.0.2.0.path=/vm/%(name).img\n"
			  "lpc.com1.path=stdio");		/* no final newline */
	CHECK(path && cfg_load_file(path, err, sizeof(err)) == 0);
	CHECK_STR(cfg_get(NULL, "name"), "vm1");
	CHECK_STR(cfg_get(NULL, "cpus"), "2");
	CHECK_STR(cfg_get(NULL, "pci.0.2.0.path"), "/vm/vm1.img");
	CHECK_STR(cfg_get(NULL, "lpc.com1.path"), "stdio");
	unlink(path);

	path = write_temp("name=vm1\n# fine\nthis line is wrong\n");
	CHECK(path && cfg_load_file(path, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, " line 3: invalid config option: 'this line is wrong'") != NULL);
	CHECK(strncmp(err, path, strlen(path)) == 0);
	unlink(path);

	path = write_temp("empty=\n");
	CHECK(path && cfg_load_file(path, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "line 1") != NULL);
	unlink(path);

	CHECK(cfg_load_file("/nonexistent/khyve.conf", err, sizeof(err)) == -ENOENT);
	CHECK(strstr(err, "/nonexistent/khyve.conf") != NULL);
}

TEST(dump_reads_back)
{
	char *d1, *d2, *path;
	char err[128];

	cfg_reset();
	cfg_set(NULL, "name", "vm1");
	cfg_set(NULL, "pci.0.4.0.path", "/z/%(name)");
	cfg_set(NULL, "pci.0.4.0.device", "virtio-blk");
	d1 = dump_tree();
	CHECK_STR(d1, "name=vm1\npci.0.4.0.path=/z/%(name)\npci.0.4.0.device=virtio-blk\n");
	path = write_temp(d1);
	cfg_reset();
	CHECK(path && cfg_load_file(path, err, sizeof(err)) == 0);
	d2 = dump_tree();
	CHECK_STR(d2, d1);
	unlink(path);
	free(d1);
	free(d2);
}

static int validate_with(const char *const *kv, char *err, size_t errlen)
{
	cfg_reset();
	for (; *kv; kv++) {
		char e[128];

		if (cfg_set_option(*kv, e, sizeof(e)))
			return -1000;
	}
	return config_validate(err, errlen);
}

#define VALID(...) (validate_with((const char *const[]){ __VA_ARGS__, NULL }, err, sizeof(err)))

TEST(validate_global_keys)
{
	char err[256];

	CHECK(VALID("name=vm", "cpus=2", "memory.size=512", "x86.vmexit_on_hlt=yes",
		    "accel=soft", "boot.kernel=/k", "boot.cmdline=console=ttyS0",
		    "lpc.com1.path=stdio", "lpc.pc-testdev=true", "lpc.fwcfg=qemu",
		    "vcpu.0.cpuset=0,2,4-7", "vcpu.12.cpuset=3", "uuid=6ba7b810-9dad-11d1-80b4-00c04fd430c8",
		    "lpc.pcireg.vendor=host", "lpc.pcireg.device=0x7000", "gdb.port=1234",
		    "config.dump=false", "system.product_name=khyve", "domains.0.size=1G") == 0);
	CHECK(VALID("name=vm", "x86.vmexit_on_hlts=true") == -EINVAL);
	CHECK_STR(err, "unknown configuration key 'x86.vmexit_on_hlts'");
	CHECK(VALID("foo.bar=1") == -EINVAL);
	CHECK_STR(err, "unknown configuration key 'foo.bar'");
	CHECK(VALID("accel=fast") == -EINVAL);
	CHECK_STR(err, "invalid value for key 'accel' (expected one of auto|kvm|soft): 'fast'");
	CHECK(VALID("x86.x2apic=maybe") == -EINVAL);
	CHECK(VALID("cpus=0") == -EINVAL);
	CHECK(VALID("cpus=65536") == -EINVAL);
	CHECK(VALID("cpus=two") == -EINVAL);
	CHECK(VALID("memory.size=12Q") == -EINVAL);
	CHECK(VALID("memory.size=0") == -EINVAL);
	CHECK(VALID("uuid=not-a-uuid") == -EINVAL);
	CHECK(VALID("vcpu.0.cpuset=3-1") == -EINVAL);
	CHECK(VALID("vcpu.0.cpuset=1,,2") == -EINVAL);
	CHECK(VALID("vcpu.x.cpuset=1") == -EINVAL);
	CHECK(VALID("vcpu.01.cpuset=1") == -EINVAL);
	CHECK(VALID("lpc.com5.path=stdio") == -EINVAL);
	CHECK(VALID("lpc.pcireg.vendor=0x10000") == -EINVAL);
	CHECK(VALID("gdb.port=70000") == -EINVAL);
	CHECK(VALID("name=vm", "path=/x/%(nosuch)") == -EINVAL);
	CHECK(strstr(err, "nosuch") != NULL);
}

TEST(validate_device_keys)
{
	char err[256];

	CHECK(VALID("pci.0.0.0.device=hostbridge", "pci.0.3.0.device=virtio-blk",
		    "pci.0.3.0.path=/img", "pci.0.3.0.ro=true", "pci.0.3.0.bootindex=1",
		    "pci.0.3.0.cache=16M", "pci.1.31.7.device=virtio-console",
		    "pci.1.31.7.port.0.name=org.qemu.guest_agent.0",
		    "pci.1.31.7.port.0.path=/tmp/s") == 0);
	CHECK(VALID("pci.0.3.0.device=virtio-blk", "pci.0.3.0.nosuch=1") == -EINVAL);
	CHECK(strstr(err, "unknown configuration key 'pci.0.3.0.nosuch'") == err);
	CHECK(VALID("pci.0.3.0.device=virtio-blk", "pci.0.3.0.ro=perhaps") == -EINVAL);
	CHECK_STR(err, "invalid value for key 'pci.0.3.0.ro' (expected true or false): 'perhaps'");
	CHECK(VALID("pci.0.3.0.device=virtio-blk", "pci.0.3.0.bootindex=x") == -EINVAL);
	CHECK(VALID("pci.0.3.0.device=virtio-blk", "pci.0.3.0.cache=1Z") == -EINVAL);
	CHECK(VALID("pci.0.3.0.device=virtio-console", "pci.0.3.0.port=1") == -EINVAL);
	CHECK(VALID("pci.0.3.0.device=no-such-model") == -ENODEV);
	CHECK_STR(err, "pci slot 0:3:0: unknown device: 'no-such-model'");
	CHECK(VALID("pci.0.3.0.path=/img") == -EINVAL);		/* no device key */
	CHECK(VALID("pci.0.32.0.device=hostbridge") == -EINVAL);	/* slot out of range */
	CHECK(VALID("pci.0.3.8.device=hostbridge") == -EINVAL);
	CHECK(VALID("pci.256.3.0.device=hostbridge") == -EINVAL);
	CHECK(VALID("pci.0.03.0.device=hostbridge") == -EINVAL);
	CHECK(VALID("pci.0.3.device=hostbridge") == -EINVAL);
	CHECK(VALID("pci.0.0.0.device=hostbridge", "pci.0.0.0.vendor=1") == -EINVAL);
}

TEST(schema_table_is_sane)
{
	const struct cfg_schema_key *k;
	int n = 0;

	for (k = config_schema(); k->name; k++, n++) {
		CHECK(k->doc && k->doc[0]);
		CHECK(config_schema_find(k->name) == k || strchr(k->name, '#'));
		if (k->def)
			CHECK(config_check_value(k->type, k->choices, k->min, k->max, k->def) == 0);
	}
	CHECK(n > 60);
	CHECK(config_schema_find("accel") != NULL);
	CHECK(config_schema_find("vcpu.3.cpuset") != NULL);
	CHECK(config_schema_find("vcpu.3") == NULL);
	CHECK(config_schema_find("fw_cfg.0.name") != NULL);
}

/* man/khyve_config.5 documents every schema key (run from the repository root). */
TEST(man_page_lists_every_key)
{
	FILE *f = fopen("man/khyve_config.5", "r");
	char *text = NULL;
	size_t cap = 0;
	ssize_t len;

	if (!f) {
		printf("    (man/khyve_config.5 not found from this directory: skipped)\n");
		return;
	}
	len = getdelim(&text, &cap, '\0', f);
	fclose(f);
	CHECK(len > 0);
	for (const struct cfg_schema_key *k = config_schema(); len > 0 && k->name; k++) {
		char name[96], *p;

		/* mdoc writes "#" as "N" in key names. */
		snprintf(name, sizeof(name), "%s", k->name);
		while ((p = strchr(name, '#')))
			*p = 'N';
		if (!strstr(text, name)) {
			char msg[160];

			snprintf(msg, sizeof(msg), "key %s missing from man/khyve_config.5", name);
			unit_fail(__FILE__, __LINE__, msg);
		}
	}
	free(text);
}
