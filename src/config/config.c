/*
 * config.c: the configuration tree of bhyve_config(5): dotted names, string values on leaves
 * only, children kept in insertion order, %(name) references expanded on read (%% is a
 * literal %), bhyve's boolean and expand_number size syntax, the -o and -k parsers and the
 * key=value dump. Unlike bhyve, a reference to an unset key is an error (config_validate
 * reports it; cfg_get then returns NULL).
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "config/config.h"

#define CFG_MAX_DEPTH 16	/* nested %(...) references */

struct cfg_node {
	char *name;
	char *value;		/* leaves only */
	char *expanded;		/* value with references expanded, valid while gen == cfg_gen */
	unsigned long gen;
	struct cfg_node *parent, *first, *last, *next;
};

static struct cfg_node cfg_root_node = { .name = "" };
/* Bumped by every change to the tree; older expansions are stale (cfg_get's contract). */
static unsigned long cfg_gen = 1;
static pthread_mutex_t cfg_expand_lock = PTHREAD_MUTEX_INITIALIZER;

struct cfg_node *cfg_root(void)
{
	return &cfg_root_node;
}

static void cfg_node_free(struct cfg_node *node)
{
	struct cfg_node *child = node->first;

	while (child) {
		struct cfg_node *next = child->next;

		cfg_node_free(child);
		child = next;
	}
	free(node->name);
	free(node->value);
	free(node->expanded);
	free(node);
}

void cfg_reset(void)
{
	struct cfg_node *child = cfg_root_node.first;

	while (child) {
		struct cfg_node *next = child->next;

		cfg_node_free(child);
		child = next;
	}
	cfg_root_node.first = cfg_root_node.last = NULL;
	cfg_gen++;
}

static struct cfg_node *cfg_child(struct cfg_node *node, const char *name, size_t len)
{
	for (struct cfg_node *c = node->first; c; c = c->next)
		if (strlen(c->name) == len && memcmp(c->name, name, len) == 0)
			return c;
	return NULL;
}

static struct cfg_node *cfg_add_child(struct cfg_node *parent, const char *name, size_t len)
{
	struct cfg_node *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->name = strndup(name, len);
	if (!c->name) {
		free(c);
		return NULL;
	}
	c->parent = parent;
	if (parent->last)
		parent->last->next = c;
	else
		parent->first = c;
	parent->last = c;
	return c;
}

/* Look a dotted path up; NULL when absent or malformed. */
static struct cfg_node *cfg_lookup(struct cfg_node *base, const char *path)
{
	struct cfg_node *node = base ? base : &cfg_root_node;
	const char *p = path;

	if (!path)
		return NULL;
	if (*p == '\0')
		return node;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);

		if (len == 0 || node->value)
			return NULL;
		node = cfg_child(node, p, len);
		if (!node || !dot)
			return node;
		p = dot + 1;
	}
}

int cfg_set(struct cfg_node *base, const char *key, const char *value)
{
	struct cfg_node *node = base ? base : &cfg_root_node;
	const char *p = key;
	char *copy;

	if (!key || !value || *key == '\0' || node->value)
		return -EINVAL;
	/* Check the whole key first so a bad one leaves the tree alone. */
	for (const char *q = key;; q++) {
		if (*q == '.' && (q == key || q[-1] == '.'))
			return -EINVAL;
		if (*q == '\0') {
			if (q[-1] == '.')
				return -EINVAL;
			break;
		}
	}
	copy = strdup(value);
	if (!copy)
		return -ENOMEM;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		struct cfg_node *child = cfg_child(node, p, len);

		if (!dot) {
			if (child && !child->value) {
				free(copy);
				return -EINVAL;	/* value on an interior node */
			}
			if (!child)
				child = cfg_add_child(node, p, len);
			if (!child) {
				free(copy);
				return -ENOMEM;
			}
			free(child->value);
			child->value = copy;
			cfg_gen++;
			return 0;
		}
		if (child && child->value) {
			free(copy);
			return -EINVAL;		/* child under a leaf */
		}
		if (!child)
			child = cfg_add_child(node, p, len);
		if (!child) {
			free(copy);
			return -ENOMEM;
		}
		node = child;
		p = dot + 1;
	}
}

int cfg_unset(struct cfg_node *base, const char *key)
{
	struct cfg_node *node = cfg_lookup(base, key);
	struct cfg_node *parent, **link;

	if (!node || !node->parent || !key || *key == '\0')
		return -ENOENT;
	parent = node->parent;
	for (link = &parent->first; *link != node; link = &(*link)->next)
		;
	*link = node->next;
	if (parent->last == node) {
		parent->last = NULL;
		for (struct cfg_node *c = parent->first; c; c = c->next)
			parent->last = c;
	}
	cfg_node_free(node);
	cfg_gen++;
	return 0;
}

struct cfg_node *cfg_find(struct cfg_node *base, const char *path)
{
	struct cfg_node *node = cfg_lookup(base, path);

	return node && !node->value ? node : NULL;
}

/* Expand %(...) and %% in value into out; 0 or -EINVAL with err. */
static int cfg_expand(const char *key, const char *value, FILE *out, int depth, char *err,
		      size_t errlen)
{
	const char *v = value;

	if (depth > CFG_MAX_DEPTH) {
		snprintf(err, errlen, "references nest too deeply (a loop?) in key '%s'", key);
		return -EINVAL;
	}
	while (*v) {
		const char *close, *ref;
		struct cfg_node *target;
		char *name;
		int ret;

		if (*v != '%') {
			fputc(*v++, out);
			continue;
		}
		if (v[1] == '%') {
			fputc('%', out);
			v += 2;
			continue;
		}
		if (v[1] != '(') {
			snprintf(err, errlen, "invalid %% expansion in key '%s': '%s'", key, value);
			return -EINVAL;
		}
		close = strchr(v + 2, ')');
		if (!close) {
			snprintf(err, errlen, "unterminated %%(...) in key '%s': '%s'", key, value);
			return -EINVAL;
		}
		name = strndup(v + 2, (size_t)(close - (v + 2)));
		if (!name)
			return -ENOMEM;
		target = cfg_lookup(NULL, name);
		if (!target || !target->value) {
			snprintf(err, errlen, "key '%s' refers to unset key '%s'", key, name);
			free(name);
			return -EINVAL;
		}
		ref = target->value;
		ret = cfg_expand(name, ref, out, depth + 1, err, errlen);
		free(name);
		if (ret)
			return ret;
		v = close + 1;
	}
	return 0;
}

int cfg_get_checked(struct cfg_node *base, const char *key, const char **out, char *err,
		    size_t errlen)
{
	struct cfg_node *node = cfg_lookup(base, key);
	char *buf = NULL, path[256];
	size_t len = 0;
	FILE *f;
	int ret;

	*out = NULL;
	if (!node || !node->value)
		return 0;
	if (!strchr(node->value, '%')) {
		*out = node->value;
		return 0;
	}
	pthread_mutex_lock(&cfg_expand_lock);
	if (node->expanded && node->gen == cfg_gen) {
		*out = node->expanded;
		pthread_mutex_unlock(&cfg_expand_lock);
		return 0;
	}
	f = open_memstream(&buf, &len);
	if (!f) {
		pthread_mutex_unlock(&cfg_expand_lock);
		return -ENOMEM;
	}
	ret = cfg_expand(cfg_node_path(node, path, sizeof(path)), node->value, f, 0, err,
			 errlen);
	if (fclose(f) != 0 && ret == 0)
		ret = -ENOMEM;
	if (ret == 0) {
		free(node->expanded);
		node->expanded = buf;
		node->gen = cfg_gen;
		*out = buf;
	} else {
		free(buf);
	}
	pthread_mutex_unlock(&cfg_expand_lock);
	return ret;
}

const char *cfg_get(struct cfg_node *base, const char *key)
{
	const char *v;
	char err[256];

	return cfg_get_checked(base, key, &v, err, sizeof(err)) == 0 ? v : NULL;
}

int cfg_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "true", "on", "yes", "1" };
	static const char *const no[] = { "false", "off", "no", "0" };

	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

int cfg_parse_u64(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end != '\0')
		return -EINVAL;
	*out = v;
	return 0;
}

/* expand_number(3): a number (strtoull base 0), then an optional unit k/m/g/t/p/e in either
 * case (powers of 1024) or b for bytes; nothing after that. */
int cfg_parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	unsigned shift;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -EINVAL;
	switch (tolower((unsigned char)*end)) {
	case '\0':
		*out = v;
		return 0;
	case 'b':
		if (end[1] != '\0')
			return -EINVAL;
		*out = v;
		return 0;
	case 'k': shift = 10; break;
	case 'm': shift = 20; break;
	case 'g': shift = 30; break;
	case 't': shift = 40; break;
	case 'p': shift = 50; break;
	case 'e': shift = 60; break;
	default:
		return -EINVAL;
	}
	if (end[1] != '\0')
		return -EINVAL;
	if (((uint64_t)v << shift) >> shift != v)
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

int cfg_parse_memsize(const char *s, uint64_t *out)
{
	uint64_t v;

	if (cfg_parse_u64(s, &v) == 0) {
		if (v < (1ULL << 20))
			v <<= 20;
		*out = v;
		return 0;
	}
	return cfg_parse_size(s, out);
}

int cfg_get_bool(struct cfg_node *base, const char *key, bool def, bool *out)
{
	const char *v;
	char err[256];

	if (cfg_get_checked(base, key, &v, err, sizeof(err)))
		return -EINVAL;
	if (!v) {
		*out = def;
		return 0;
	}
	return cfg_parse_bool(v, out);
}

int cfg_get_u64(struct cfg_node *base, const char *key, uint64_t def, uint64_t *out)
{
	const char *v;
	char err[256];

	if (cfg_get_checked(base, key, &v, err, sizeof(err)))
		return -EINVAL;
	if (!v) {
		*out = def;
		return 0;
	}
	return cfg_parse_u64(v, out);
}

int cfg_get_size(struct cfg_node *base, const char *key, uint64_t def, uint64_t *out)
{
	const char *v;
	char err[256];

	if (cfg_get_checked(base, key, &v, err, sizeof(err)))
		return -EINVAL;
	if (!v) {
		*out = def;
		return 0;
	}
	return cfg_parse_size(v, out);
}

struct cfg_node *cfg_first_child(struct cfg_node *node)
{
	return (node ? node : &cfg_root_node)->first;
}

struct cfg_node *cfg_next_sibling(struct cfg_node *node)
{
	return node ? node->next : NULL;
}

const char *cfg_node_name(const struct cfg_node *node)
{
	return node->name;
}

const char *cfg_node_value(const struct cfg_node *node)
{
	return node->value;
}

const char *cfg_node_path(const struct cfg_node *node, char *buf, size_t len)
{
	size_t need = 0, pos;

	if (len == 0)
		return buf;
	for (const struct cfg_node *n = node; n && n->parent; n = n->parent)
		need += strlen(n->name) + (n->parent->parent ? 1 : 0);
	if (need >= len) {
		buf[0] = '\0';
		return buf;
	}
	buf[need] = '\0';
	pos = need;
	for (const struct cfg_node *n = node; n && n->parent; n = n->parent) {
		size_t l = strlen(n->name);

		pos -= l;
		memcpy(buf + pos, n->name, l);
		if (n->parent->parent)
			buf[--pos] = '.';
	}
	return buf;
}

static void cfg_dump_node(FILE *out, struct cfg_node *node)
{
	char path[512];

	for (struct cfg_node *c = node->first; c; c = c->next) {
		if (c->value)
			fprintf(out, "%s=%s\n", cfg_node_path(c, path, sizeof(path)), c->value);
		else
			cfg_dump_node(out, c);
	}
}

void cfg_dump(FILE *out)
{
	cfg_dump_node(out, &cfg_root_node);
}

int cfg_set_option(const char *kv, char *err, size_t errlen)
{
	const char *eq = kv ? strchr(kv, '=') : NULL;
	char *key;
	int ret;

	if (!eq || eq == kv || eq[1] == '\0') {
		snprintf(err, errlen, "invalid configuration option: '%s'", kv ? kv : "");
		return -EINVAL;
	}
	key = strndup(kv, (size_t)(eq - kv));
	if (!key)
		return -ENOMEM;
	ret = cfg_set(NULL, key, eq + 1);
	free(key);
	if (ret == -EINVAL)
		snprintf(err, errlen, "invalid configuration option: '%s'", kv);
	else if (ret)
		snprintf(err, errlen, "%s: '%s'", strerror(-ret), kv);
	return ret;
}

int cfg_load_file(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	unsigned lineno;
	int ret = 0;

	if (!f) {
		ret = -errno;
		snprintf(err, errlen, "cannot read configuration file (%s): '%s'", strerror(-ret),
			 path);
		return ret;
	}
	for (lineno = 1; (n = getline(&line, &cap, f)) > 0; lineno++) {
		char msg[64];

		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		if (cfg_set_option(line, msg, sizeof(msg))) {
			snprintf(err, errlen, "%s line %u: invalid config option: '%s'", path, lineno,
				 line);
			ret = -EINVAL;
			break;
		}
	}
	if (ret == 0 && ferror(f)) {
		ret = -EIO;
		snprintf(err, errlen, "cannot read configuration file: '%s'", path);
	}
	free(line);
	fclose(f);
	return ret;
}
