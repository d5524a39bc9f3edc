/* SPDX-License-Identifier: BSD-3-Clause */
/* INI configuration loader. A table names every key with its type, bounds and
 * place in struct config; the inih callback looks each (section, key) up in it,
 * so an unknown key is an error by construction, not by omission. */
#include "config.h"
#include "jwt.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum key_type {
	KEY_STRING,
	KEY_INT,
	KEY_BOOL,
	KEY_LOG_LEVEL,
	KEY_LOG_FORMAT,
	KEY_CHOICE,
	KEY_NAMES, /* user names, comma-separated; kept without spaces */
};

struct key {
	const char *section;
	const char *name;
	enum key_type type;
	size_t offset;
	size_t size; /* KEY_STRING: buffer size */
	long min, max;
	const char *const *choices; /* KEY_CHOICE: the names of an enum's values, in order */
};

#define OFF(field) offsetof(struct config, field)
#define STR(sec, name, field)                                                                      \
	{                                                                                          \
		sec, name, KEY_STRING, OFF(field), sizeof(((struct config *)0)->field), 0, 0, NULL \
	}
#define INT(sec, name, field, lo, hi)                                                              \
	{                                                                                          \
		sec, name, KEY_INT, OFF(field), 0, lo, hi, NULL                                    \
	}
#define BOOL(sec, name, field)                                                                     \
	{                                                                                          \
		sec, name, KEY_BOOL, OFF(field), 0, 0, 1, NULL                                     \
	}

#define CHOICE(sec, name, field, names)                                                            \
	{                                                                                          \
		sec, name, KEY_CHOICE, OFF(field), 0, 0, 0, names                                  \
	}

static const char *const mode_names[] = {"socket", "dpdk", NULL}; /* enum dataplane_mode */
static const char *const zero_copy_names[] = {"auto", "all", "pooled", "off", NULL};
static const char *const offload_names[] = {"auto", "on", "off", NULL};

static const struct key keys[] = {
    STR("server", "listen_address", server.listen_address),
    INT("server", "port", server.port, 1, 65535),
    INT("server", "service_threads", server.service_threads, 1, 64),
    STR("server", "web_root", server.web_root),
    STR("server", "tls_cert", server.tls_cert),
    STR("server", "tls_key", server.tls_key),
    INT("server", "heartbeat_ms", server.heartbeat_ms, 1000, 600000),
    INT("server", "api_timeout_ms", server.api_timeout_ms, 100, 600000),
    INT("server", "http_idle_ms", server.http_idle_ms, 100, 3600000),
    INT("server", "max_connections", server.max_connections, 0, 16777216),
    INT("server", "max_message_bytes", server.max_message_bytes, 1024, 16777216),
    INT("server", "send_queue_bytes", server.send_queue_bytes, 4096, 1073741824),
    INT("server", "publish_rate", server.publish_rate, 1, 1000000),
    INT("server", "publish_burst", server.publish_burst, 1, 1000000),
    INT("server", "max_text_bytes", server.max_text_bytes, 1, 1048576),
    INT("server", "broad_mention_interval_ms", server.broad_mention_interval_ms, -1, 86400000),
    INT("server", "presence_grace_ms", server.presence_grace_ms, 0, 3600000),
    INT("server", "presence_interval_ms", server.presence_interval_ms, 0, 600000),
    STR("postgres", "dsn", postgres.dsn),
    STR("postgres", "read_dsn", postgres.read_dsn),
    BOOL("postgres", "allow_unsafe_commit", postgres.allow_unsafe_commit),
    INT("postgres", "reader_threads", postgres.reader_threads, 1, 32),
    INT("postgres", "reconnect_max_ms", postgres.reconnect_max_ms, 10, 600000),
    INT("persist", "writers", persist.writers, 1, 16),
    INT("persist", "batch_max", persist.batch_max, 1, 65536),
    INT("persist", "batch_window_us", persist.batch_window_us, 0, 1000000),
    INT("persist", "queue_max", persist.queue_max, 1, 100000000),
    INT("persist", "dedup_cache", persist.dedup_cache, 0, 100000000),
    INT("persist", "channel_heads", persist.channel_heads, 0, 100000000),
    INT("persist", "copy_min_rows", persist.copy_min_rows, 0, 65536),
    BOOL("persist", "on_service_threads", persist.on_service_threads),
    CHOICE("dataplane", "mode", dataplane.mode, mode_names),
    INT("dataplane", "workers", dataplane.workers, 1, 128),
    INT("dataplane", "idle_sleep_us", dataplane.idle_sleep_us, 0, 1000000),
    STR("dataplane", "eal_args", dataplane.eal_args),
    INT("dataplane", "eal_memory_mb", dataplane.eal_memory_mb, 16, 1048576),
    INT("dataplane", "channels", dataplane.channels, 1024, 67108864),
    STR("dataplane", "port", dataplane.port),
    STR("dataplane", "address", dataplane.address),
    STR("dataplane", "gateway", dataplane.gateway),
    INT("dataplane", "listen_port", dataplane.listen_port, 1, 65535),
    INT("dataplane", "max_connections", dataplane.max_connections, 16, 4194304),
    INT("dataplane", "upgrade_slots", dataplane.upgrade_slots, 1, 1048576),
    CHOICE("dataplane", "zero_copy", dataplane.zero_copy, zero_copy_names),
    INT("dataplane", "frame_memory_mb", dataplane.frame_memory_mb, 1, 1048576),
    INT("dataplane", "copy_below", dataplane.copy_below, 0, 65536),
    CHOICE("dataplane", "checksum_offload", dataplane.checksum_offload, offload_names),
    STR("auth", "jwt_secret", auth.jwt_secret),
    INT("auth", "token_ttl_s", auth.token_ttl_s, 1, 315360000),
    {"auth", "admins", KEY_NAMES, OFF(auth.admins), sizeof(((struct config *)0)->auth.admins), 0, 0,
     NULL},
    STR("cluster", "etcd", cluster.etcd),
    STR("cluster", "name", cluster.name),
    STR("cluster", "cluster", cluster.cluster),
    STR("cluster", "peer", cluster.peer),
    STR("cluster", "advertise", cluster.advertise),
    STR("cluster", "admin", cluster.admin),
    STR("cluster", "secret", cluster.secret),
    INT("cluster", "lease_ttl_s", cluster.lease_ttl_s, 1, 3600),
    INT("cluster", "lease_margin_ms", cluster.lease_margin_ms, 0, 60000),
    INT("cluster", "vnodes", cluster.vnodes, 1, 65536),
    {"log", "level", KEY_LOG_LEVEL, OFF(log.level), 0, 0, 0, NULL},
    {"log", "format", KEY_LOG_FORMAT, OFF(log.format), 0, 0, 0, NULL},
};

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->server.listen_address, sizeof(cfg->server.listen_address), "127.0.0.1");
	cfg->server.port = 8080;
	cfg->server.service_threads = 1;
	cfg->server.heartbeat_ms = 30000;
	cfg->server.api_timeout_ms = 30000;
	cfg->server.http_idle_ms = 30000;
	cfg->server.max_message_bytes = 65536;
	cfg->server.send_queue_bytes = 1 << 20;
	cfg->server.publish_rate = 50;
	cfg->server.publish_burst = 100;
	cfg->server.max_text_bytes = 40000;
	cfg->server.broad_mention_interval_ms = 30000;
	cfg->server.presence_grace_ms = 10000;
	cfg->server.presence_interval_ms = 1000;
	snprintf(cfg->postgres.dsn, sizeof(cfg->postgres.dsn),
		 "host=127.0.0.1 port=55432 dbname=fanout user=fanout");
	cfg->postgres.reader_threads = 2;
	/* A failover's new primary is found within a second of its promotion;
	 * a second between attempts costs the server nothing. */
	cfg->postgres.reconnect_max_ms = 1000;
	cfg->persist.writers = 2;
	cfg->persist.batch_max = 1024;
	cfg->persist.batch_window_us = 0;
	cfg->persist.queue_max = 100000;
	cfg->persist.dedup_cache = 262144;
	cfg->persist.channel_heads = 1048576;
	/* Below about 256 rows COPY's extra round trips cost more than its
	 * page-at-a-time insert saves (docs/benchmarks.md). */
	cfg->persist.copy_min_rows = 256;
	cfg->persist.on_service_threads = true;
	cfg->dataplane.mode = DATAPLANE_MODE_SOCKET;
	cfg->dataplane.workers = 1;
	cfg->dataplane.eal_memory_mb = 128;
	cfg->dataplane.channels = 1 << 20;
	cfg->dataplane.listen_port = 80;
	cfg->dataplane.max_connections = 16384;
	cfg->dataplane.upgrade_slots = 4096;
	cfg->dataplane.zero_copy = ZERO_COPY_AUTO;
	cfg->dataplane.frame_memory_mb = 32;
	cfg->dataplane.copy_below = 512;
	cfg->dataplane.checksum_offload = OFFLOAD_AUTO;
	snprintf(cfg->cluster.cluster, sizeof(cfg->cluster.cluster), "fanout");
	cfg->cluster.lease_ttl_s = 1;
	cfg->cluster.lease_margin_ms = 300;
	cfg->cluster.vnodes = 8192;
	cfg->auth.token_ttl_s = 86400;
	cfg->log.level = LOG_LEVEL_INFO;
	cfg->log.format = LOG_FORMAT_AUTO;
}

/* Every mistake of a file is reported, each as "path:line: reason" on a
 * line of its own: inih goes on after a failing entry, and the line is
 * counted here as the reader hands lines to inih (the handler is called
 * right after its line was read). */
struct parse_state {
	struct config *cfg;
	const char *path;
	FILE *file;
	int line;
	int errors;
	char *err;
	size_t err_size;
};

static int fail(struct parse_state *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct parse_state *st, const char *fmt, ...)
{
	size_t used = strlen(st->err);
	va_list ap;
	int n;

	if (used + 1 >= st->err_size)
		return 0; /* full: the first ones are there */
	n = snprintf(st->err + used, st->err_size - used, "%s%s:%d: ", st->errors ? "\n" : "",
		     st->path, st->line);
	if (n > 0 && used + (size_t)n < st->err_size) {
		va_start(ap, fmt);
		vsnprintf(st->err + used + (size_t)n, st->err_size - used - (size_t)n, fmt, ap);
		va_end(ap);
	}
	st->errors++;
	return 0;
}

/* inih's reader: counts lines, and reports those inih would refuse as
 * syntax (it says only which came first). */
static char *read_line(char *buf, int size, void *arg)
{
	struct parse_state *st = arg;
	const char *p;

	if (fgets(buf, size, st->file) == NULL)
		return NULL;
	st->line++;
	for (p = buf; *p == ' ' || *p == '\t'; p++)
		;
	if (*p == '\0' || *p == '\n' || *p == '\r' || *p == ';' || *p == '#')
		return buf;
	if (*p == '[' ? strchr(p, ']') == NULL : strpbrk(p, "=:") == NULL)
		fail(st, "syntax error (expected [section] or key = value)");
	return buf;
}

static int parse_bool(const char *v, bool *out)
{
	if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on") ||
	    !strcmp(v, "1"))
		*out = true;
	else if (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off") ||
		 !strcmp(v, "0"))
		*out = false;
	else
		return -EINVAL;
	return 0;
}

/* A list of user names ("alice, ops"): each a token's subject, kept as
 * "alice,ops". */
static int set_names(struct parse_state *st, const struct key *k, char *field, const char *value)
{
	char list[1024], *save = NULL, out[1024] = "";
	size_t used = 0;

	if (strlen(value) >= sizeof(list))
		return fail(st, "value of '%s' is too long", k->name);
	snprintf(list, sizeof(list), "%s", value);
	for (char *name = strtok_r(list, ", \t", &save); name;
	     name = strtok_r(NULL, ", \t", &save)) {
		if (!jwt_subject_valid(name))
			return fail(st,
				    "'%s': '%s' is not a user name ([A-Za-z0-9_.-]{1,64}, not "
				    "channel, everyone or here)",
				    k->name, name);
		used +=
		    (size_t)snprintf(out + used, sizeof(out) - used, "%s%s", used ? "," : "", name);
		if (used >= k->size)
			return fail(st, "value of '%s' is too long", k->name);
	}
	memcpy(field, out, used + 1);
	return 1;
}

bool config_name_listed(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; n && *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len == n && memcmp(p, name, n) == 0)
			return true;
		p += len + (end != NULL);
	}
	return false;
}

static int set_value(struct parse_state *st, const struct key *k, const char *value)
{
	char *field = (char *)st->cfg + k->offset;
	char *end;
	long n;

	switch (k->type) {
	case KEY_STRING:
		if (strlen(value) >= k->size)
			return fail(st, "value of '%s' is too long", k->name);
		memcpy(field, value, strlen(value) + 1);
		return 1;
	case KEY_INT:
		errno = 0;
		n = strtol(value, &end, 10);
		if (errno || end == value || *end != '\0')
			return fail(st, "'%s' needs a whole number, got '%s'", k->name, value);
		if (n < k->min || n > k->max) {
			char range[64];
			snprintf(range, sizeof(range), "%ld..%ld", k->min, k->max);
			return fail(st, "'%s' must be in %s", k->name, range);
		}
		*(int *)field = (int)n;
		return 1;
	case KEY_NAMES:
		return set_names(st, k, field, value);
	case KEY_BOOL:
		if (parse_bool(value, (bool *)field) < 0)
			return fail(st, "'%s' needs true or false, got '%s'", k->name, value);
		return 1;
	case KEY_LOG_LEVEL:
		if (log_level_parse(value, (enum log_level *)field) < 0)
			return fail(st, "'%s' must be err, warn, notice, info or debug, got '%s'",
				    k->name, value);
		return 1;
	case KEY_LOG_FORMAT:
		if (log_format_parse(value, (enum log_format *)field) < 0)
			return fail(st, "'%s' must be auto, text or json, got '%s'", k->name,
				    value);
		return 1;
	case KEY_CHOICE: {
		char names[128] = "";
		int i;

		for (i = 0; k->choices[i]; i++)
			if (strcmp(value, k->choices[i]) == 0) {
				*(int *)field = i;
				return 1;
			}
		for (i = 0; k->choices[i]; i++)
			snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
				 i == 0		     ? ""
				 : k->choices[i + 1] ? ", "
						     : " or ",
				 k->choices[i]);
		return fail(st, "'%s' must be %s, got '%s'", k->name, names, value);
	}
	}
	return fail(st, "internal: bad key type for '%s'", k->name);
}

static int on_entry(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *st = user;
	bool section_known = false;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strcmp(keys[i].section, section) != 0)
			continue;
		section_known = true;
		if (strcmp(keys[i].name, name) == 0)
			return set_value(st, &keys[i], value);
	}
	if (!section_known)
		return fail(st, "unknown section [%s]", section);
	return fail(st, "unknown key '%s' in section [%s]", name, section);
}

int config_apply_env(struct config *cfg, char *err, size_t err_size)
{
	const char *dsn = getenv("FANOUT_PG_DSN");
	const char *secret = getenv("FANOUT_JWT_SECRET");
	const char *cluster_secret = getenv("FANOUT_CLUSTER_SECRET");

	if (dsn && *dsn) {
		if (strlen(dsn) >= sizeof(cfg->postgres.dsn)) {
			snprintf(err, err_size, "FANOUT_PG_DSN is too long");
			return -EINVAL;
		}
		snprintf(cfg->postgres.dsn, sizeof(cfg->postgres.dsn), "%s", dsn);
	}
	if (secret && *secret) {
		if (strlen(secret) >= sizeof(cfg->auth.jwt_secret)) {
			snprintf(err, err_size, "FANOUT_JWT_SECRET is too long");
			return -EINVAL;
		}
		snprintf(cfg->auth.jwt_secret, sizeof(cfg->auth.jwt_secret), "%s", secret);
	}
	if (cluster_secret && *cluster_secret) {
		if (strlen(cluster_secret) >= sizeof(cfg->cluster.secret)) {
			snprintf(err, err_size, "FANOUT_CLUSTER_SECRET is too long");
			return -EINVAL;
		}
		snprintf(cfg->cluster.secret, sizeof(cfg->cluster.secret), "%s", cluster_secret);
	}
	return 0;
}

int config_load(struct config *cfg, const char *path, char *err, size_t err_size)
{
	struct parse_state st = {.cfg = cfg, .path = path, .err = err, .err_size = err_size};
	int line;

	st.file = fopen(path, "r");
	if (st.file == NULL) {
		int e = errno;
		snprintf(err, err_size, "%s: cannot open: %s", path, strerror(e));
		return -e;
	}
	err[0] = '\0';
	line = ini_parse_stream(read_line, &st, on_entry, &st);
	fclose(st.file);
	if (line != 0 && st.errors == 0) {
		/* inih refused a line the reader let through. */
		st.line = line;
		fail(&st, "syntax error (expected [section] or key = value)");
	}
	if (st.errors)
		return -EINVAL;
	return config_apply_env(cfg, err, err_size);
}

/* Whether key k holds the same value in a and b. */
static bool key_equal(const struct key *k, const struct config *a, const struct config *b)
{
	const char *x = (const char *)a + k->offset, *y = (const char *)b + k->offset;

	switch (k->type) {
	case KEY_STRING:
	case KEY_NAMES:
		return strcmp(x, y) == 0;
	case KEY_BOOL:
		return *(const bool *)x == *(const bool *)y;
	case KEY_LOG_LEVEL:
		return *(const enum log_level *)x == *(const enum log_level *)y;
	case KEY_LOG_FORMAT:
		return *(const enum log_format *)x == *(const enum log_format *)y;
	case KEY_INT:
	case KEY_CHOICE:
		break;
	}
	return *(const int *)x == *(const int *)y;
}

int config_diff(const struct config *a, const struct config *b,
		void (*each)(void *arg, const char *section, const char *key), void *arg)
{
	int n = 0;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (key_equal(&keys[i], a, b))
			continue;
		n++;
		if (each)
			each(arg, keys[i].section, keys[i].name);
	}
	return n;
}
