/*
 * config.h: the configuration tree, with bhyve_config(5) names. Dotted keys
 * ("pci.0.3.0.path"); only leaves carry string values. The CLI, -o and -k write it; devices
 * read their own node only. Values may reference other keys as %(name); %% is a literal %.
 * Unlike bhyve, keys that no schema knows are an error (config_validate).
 */
#ifndef KHYVE_CONFIG_H
#define KHYVE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct cfg_node;

/* The process-wide tree (bhyve has one too). */
struct cfg_node *cfg_root(void);
/* Drop everything (tests). */
void cfg_reset(void);

/* Set `key` (dotted, relative to base) to value, creating nodes. 0 or -EINVAL (bad key). */
int cfg_set(struct cfg_node *base, const char *key, const char *value);
/* Value of a leaf with %(...) expanded, or NULL when unset. The string lives until the
 * next cfg_set/cfg_reset on the tree. */
const char *cfg_get(struct cfg_node *base, const char *key);
/* Interior node at a dotted path, or NULL. */
struct cfg_node *cfg_find(struct cfg_node *base, const char *path);
/* Remove a key or subtree; 0 or -ENOENT. */
int cfg_unset(struct cfg_node *base, const char *key);

/* Typed getters: 0 (value or default in *out), -EINVAL when set but malformed. */
int cfg_get_bool(struct cfg_node *base, const char *key, bool def, bool *out);
int cfg_get_u64(struct cfg_node *base, const char *key, uint64_t def, uint64_t *out);
/* Sizes with K/M/G/T suffixes (powers of 1024), bhyve's expand_number rules. */
int cfg_get_size(struct cfg_node *base, const char *key, uint64_t def, uint64_t *out);
int cfg_parse_bool(const char *s, bool *out);
int cfg_parse_size(const char *s, uint64_t *out);

/* Walk children in insertion order (a NULL node means the root). */
struct cfg_node *cfg_first_child(struct cfg_node *node);
struct cfg_node *cfg_next_sibling(struct cfg_node *node);
const char *cfg_node_name(const struct cfg_node *node);
const char *cfg_node_value(const struct cfg_node *node);	/* raw; NULL for interior */
/* Full dotted path of a node, written into buf. */
const char *cfg_node_path(const struct cfg_node *node, char *buf, size_t len);

/* Print every leaf as key=value (sorted as inserted), the form -k reads back. */
void cfg_dump(FILE *out);
/* Read a -k file: key=value lines, '#' comments, blank lines. 0 or -errno with err filled. */
int cfg_load_file(const char *path, char *err, size_t errlen);
/* Parse one "key=value" (-o). 0 or -EINVAL with err filled. */
int cfg_set_option(const char *kv, char *err, size_t errlen);

/*
 * Schema check: every leaf must be a known global key or a key of the device model named
 * by its node (pci.B.S.F.device, lpc.*), every value must parse as its type and every
 * %(...) reference must resolve. 0, -EINVAL with the first problem in err, or -ENODEV when
 * a pci.B.S.F.device names no model. err holds the text only ("unknown configuration key
 * 'x.y'"); callers print it as "khyve: <err>".
 */
int config_validate(char *err, size_t errlen);

/*
 * Additions (H6). cfg_get_checked is cfg_get with the expansion error reported: 0 with *out
 * (NULL when unset), or -EINVAL with err ("bad reference '%(x)' in key 'a.b'").
 * cfg_parse_memsize is bhyve's memory size rule (vm_parse_memsize): a bare number below
 * 1 MiB means MiB, anything else is expand_number. cfg_parse_u64 is strtoull(base 0) over
 * the whole string, no sign.
 */
int cfg_get_checked(struct cfg_node *base, const char *key, const char **out, char *err,
		    size_t errlen);
int cfg_parse_memsize(const char *s, uint64_t *out);
int cfg_parse_u64(const char *s, uint64_t *out);

/* The schema of global keys (schema.c), terminated by a NULL name; for validation,
 * documentation (man/khyve_config.5) and tests. "*" as a whole component matches any one
 * component; a trailing ".*" matches a subtree. */
enum cfg_type {
	CFG_STRING,	/* any text */
	CFG_PATH,	/* a host path */
	CFG_BOOL,	/* true/on/yes/1, false/off/no/0 */
	CFG_INT,	/* strtoull syntax, within [min, max] */
	CFG_SIZE,	/* expand_number: K/M/G/T/P/E suffixes, powers of 1024 */
	CFG_MEMSIZE,	/* like CFG_SIZE, but a bare number below 1 MiB means MiB */
	CFG_ENUM,	/* one of choices, "a|b|c" */
	CFG_UUID,	/* 8-4-4-4-12 hex digits */
	CFG_CPUSET,	/* list of host CPUs and ranges: 0,2,4-7 */
	CFG_PCIREG,	/* an integer or "host" */
};

struct cfg_schema_key {
	const char *name;
	enum cfg_type type;
	const char *def;	/* default as text, or NULL */
	const char *doc;	/* one line */
	const char *choices;	/* CFG_ENUM */
	uint64_t min, max;	/* CFG_INT (max 0: no limit) */
};

const struct cfg_schema_key *config_schema(void);
/* The schema entry matching a dotted global key, or NULL. */
const struct cfg_schema_key *config_schema_find(const char *key);
/* Check value against a type; 0 or -EINVAL. */
int config_check_value(enum cfg_type type, const char *choices, uint64_t min, uint64_t max,
		       const char *value);

#endif
