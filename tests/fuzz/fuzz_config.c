/*
 * fuzz_config.c: libFuzzer target for the configuration parsers a user feeds (config.h,
 * cli.h): the input as a -k file (cfg_load_file from a memfd), as a sequence of -o options
 * (cfg_set_option, one per line), and as a bhyve command line (cli_parse, one argument per
 * line). After each, the tree is dumped, validated, walked with every typed getter and
 * %(...) expansion, and partly unset. cfg_reset between rounds, so LeakSanitizer sees
 * every allocation the tree made.
 */
/* FUZZ_SOURCES: src/*[a-z0-9]/*.c src/*[a-z0-9]/*[a-z0-9]/*.c */
/* FUZZ_LIBS: -lZydis -luring -lz -llzma -lzstd -lm */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli/cli.h"
#include "config/config.h"

#define FUZZ_MAX_ARGS 64

static FILE *devnull;

/* Every getter on one leaf, by its full path (the way devices and vm_build read keys). */
static void fuzz_leaf(struct cfg_node *leaf)
{
	char path[512], err[256];
	const char *v;
	uint64_t u;
	bool b;

	cfg_node_path(leaf, path, sizeof path);
	(void)cfg_get(NULL, path);
	if (cfg_get_checked(NULL, path, &v, err, sizeof err) == 0 && v) {
		(void)cfg_parse_bool(v, &b);
		(void)cfg_parse_u64(v, &u);
		(void)cfg_parse_size(v, &u);
		(void)cfg_parse_memsize(v, &u);
	}
	(void)cfg_get_bool(NULL, path, false, &b);
	(void)cfg_get_u64(NULL, path, 7, &u);
	(void)cfg_get_size(NULL, path, 4096, &u);
	(void)config_schema_find(path);
	/* Relative lookups from the parent, as a device reads its own node. */
	if (cfg_first_child(NULL) && strchr(path, '.')) {
		char *dot = strrchr(path, '.');

		*dot = '\0';
		struct cfg_node *parent = cfg_find(NULL, path);
		if (parent) {
			(void)cfg_get(parent, dot + 1);
			(void)cfg_get_u64(parent, dot + 1, 0, &u);
		}
	}
}

static void fuzz_walk(struct cfg_node *node, int depth)
{
	for (struct cfg_node *c = cfg_first_child(node); c; c = cfg_next_sibling(c)) {
		(void)cfg_node_name(c);
		if (cfg_node_value(c))
			fuzz_leaf(c);
		else if (depth < 64)
			fuzz_walk(c, depth + 1);
	}
}

/* Unset every other top-level subtree and validate what remains. */
static void fuzz_unset_some(void)
{
	char name[512], err[256];
	int i = 0;

	for (struct cfg_node *c = cfg_first_child(NULL); c;) {
		struct cfg_node *next = cfg_next_sibling(c);

		if (i++ % 2 == 0) {
			snprintf(name, sizeof name, "%s", cfg_node_name(c));
			(void)cfg_unset(NULL, name);
		}
		c = next;
	}
	(void)config_validate(err, sizeof err);
}

static void fuzz_tree(void)
{
	char err[256];

	cfg_dump(devnull);
	(void)config_validate(err, sizeof err);
	fuzz_walk(NULL, 0);
	/* Expansions are cached: a second pass reads the cache. */
	fuzz_walk(NULL, 0);
	fuzz_unset_some();
	fuzz_walk(NULL, 0);
}

/* Round 1: the bytes as a -k file. */
static void fuzz_file(const uint8_t *data, size_t size)
{
	char path[64], err[512];
	int fd = memfd_create("fuzz-k", MFD_CLOEXEC);

	if (fd < 0)
		return;
	if (write(fd, data, size) == (ssize_t)size) {
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		(void)cfg_load_file(path, err, sizeof err);
		fuzz_tree();
	}
	close(fd);
	cfg_reset();
}

/* Round 2: each line (split at '\n' or NUL) as one -o option; later ones win. */
static void fuzz_options(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), err[512];
	size_t start = 0;

	if (!buf)
		return;
	memcpy(buf, data, size);
	buf[size] = '\0';
	for (size_t i = 0; i <= size; i++) {
		if (i < size && buf[i] != '\n' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		(void)cfg_set_option(buf + start, err, sizeof err);
		start = i + 1;
	}
	fuzz_tree();
	free(buf);
	cfg_reset();
}

/* An argument that would make -k read a device or a special file (and block or never end). */
static bool fuzz_special_path(const char *arg)
{
	return strstr(arg, "/dev") || strstr(arg, "/proc") || strstr(arg, "/sys") ||
	       strstr(arg, "/run");
}

/* Round 3: each line (split at '\n' or NUL) as one argument after "khyve". The parser's
 * messages go to /dev/null through the stdio streams only, so sanitizer and libFuzzer
 * reports (written to fd 2 directly) still appear. */
static void fuzz_cli(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *argv[FUZZ_MAX_ARGS + 2];
	FILE *out = stdout, *err = stderr;
	size_t start = 0;
	int argc = 0, code;

	if (!buf)
		return;
	memcpy(buf, data, size);
	buf[size] = '\0';
	argv[argc++] = "khyve";
	for (size_t i = 0; i <= size && argc <= FUZZ_MAX_ARGS; i++) {
		if (i < size && buf[i] != '\n' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (fuzz_special_path(buf + start))
			goto out;
		argv[argc++] = buf + start;
		start = i + 1;
	}
	argv[argc] = NULL;
	stdout = devnull;
	stderr = devnull;
	if (cli_parse(argc, argv, &code))
		fuzz_tree();
	stdout = out;
	stderr = err;
out:
	free(buf);
	cfg_reset();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!devnull)
		devnull = fopen("/dev/null", "w");
	if (!devnull)
		return 0;
	fuzz_file(data, size);
	fuzz_options(data, size);
	fuzz_cli(data, size);
	return 0;
}
