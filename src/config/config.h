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

/* Walk children in insertion order. */
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
 * by its node (pci.B.S.F.device, lpc.*). 0, or -EINVAL with the first bad key in err.
 */
int config_validate(char *err, size_t errlen);

#endif
