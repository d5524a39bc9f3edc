/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of the INI configuration loader: good files, every kind of bad
 * line reported with file and line, and environment overrides. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];

static void write_file(const char *text)
{
	int fd;
	snprintf(path, sizeof(path), "/tmp/fanout-config-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static int load(struct config *cfg, const char *text, char *err, size_t size)
{
	int rc;
	write_file(text);
	config_defaults(cfg);
	rc = config_load(cfg, path, err, size);
	unlink(path);
	return rc;
}

/* Every mistake is reported with its own line, not only the first. */
static void test_every_mistake_reported(void **state)
{
	struct config cfg;
	char err[1024], want[128];

	assert_int_equal(load(&cfg,
			      "[server]\n"
			      "bogus = 1\n"
			      "port = 8081\n"
			      "port = many\n"
			      "\n"
			      "this line has no equals sign\n"
			      "[nowhere]\n"
			      "x = 1\n"
			      "[log]\n"
			      "level = loud\n",
			      err, sizeof(err)),
			 -EINVAL);
	static const int lines[] = {2, 4, 6, 8, 10};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		snprintf(want, sizeof(want), "%s:%d: ", path, lines[i]);
		assert_non_null(strstr(err, want));
	}
	assert_non_null(strstr(err, "unknown key 'bogus'"));
	assert_non_null(strstr(err, "'port' needs a whole number, got 'many'"));
	assert_non_null(strstr(err, "syntax error"));
	assert_non_null(strstr(err, "unknown section [nowhere]"));
	assert_non_null(strstr(err, "'level' must be"));
	/* One report per line, five lines. */
	int newlines = 0;
	for (const char *p = err; *p; p++)
		newlines += *p == '\n';
	assert_int_equal(newlines, 4);
	/* A small buffer keeps the first reports whole and stays terminated. */
	assert_int_equal(load(&cfg, "[server]\nbogus = 1\nport = many\n", err, 40), -EINVAL);
	assert_true(strlen(err) < 40);
}

static void test_defaults(void **state)
{
	struct config cfg;
	config_defaults(&cfg);
	assert_string_equal(cfg.server.listen_address, "127.0.0.1");
	assert_int_equal(cfg.server.port, 8080);
	assert_int_equal(cfg.dataplane.mode, DATAPLANE_MODE_SOCKET);
	assert_int_equal(cfg.dataplane.zero_copy, ZERO_COPY_AUTO);
	assert_int_equal(cfg.dataplane.frame_memory_mb, 32);
	assert_int_equal(cfg.dataplane.copy_below, 512);
	assert_int_equal(cfg.dataplane.checksum_offload, OFFLOAD_AUTO);
	assert_false(cfg.postgres.allow_unsafe_commit);
	assert_int_equal(cfg.persist.writers, 2);
	assert_int_equal(cfg.persist.copy_min_rows, 256);
}

static void test_good_file(void **state)
{
	struct config cfg;
	char err[256] = "";
	int rc = load(&cfg,
		      "; comment\n[server]\nport = 9000\nlisten_address = 0.0.0.0\n"
		      "[postgres]\ndsn = host=db port=5432\nallow_unsafe_commit = yes\n"
		      "[persist]\nbatch_max = 64\nwriters = 3\ncopy_min_rows = "
		      "0\n[dataplane]\nmode = dpdk\nzero_copy = pooled\n"
		      "checksum_offload = off\n"
		      "[auth]\njwt_secret = s3cret\n[log]\nlevel = debug\nformat = json\n",
		      err, sizeof(err));
	assert_int_equal(rc, 0);
	assert_int_equal(cfg.server.port, 9000);
	assert_string_equal(cfg.server.listen_address, "0.0.0.0");
	assert_string_equal(cfg.postgres.dsn, "host=db port=5432");
	assert_true(cfg.postgres.allow_unsafe_commit);
	assert_int_equal(cfg.persist.batch_max, 64);
	assert_int_equal(cfg.persist.writers, 3);
	assert_int_equal(cfg.persist.copy_min_rows, 0);
	assert_int_equal(cfg.dataplane.mode, DATAPLANE_MODE_DPDK);
	assert_int_equal(cfg.dataplane.zero_copy, ZERO_COPY_POOLED);
	assert_int_equal(cfg.dataplane.checksum_offload, OFFLOAD_OFF);
	assert_string_equal(cfg.auth.jwt_secret, "s3cret");
	assert_int_equal(cfg.log.level, LOG_LEVEL_DEBUG);
	assert_int_equal(cfg.log.format, LOG_FORMAT_JSON);
}

struct bad_case {
	const char *text;
	const char *expect; /* substring of the message, after "path:line: " */
	int line;
};

static void test_bad_files(void **state)
{
	static const struct bad_case cases[] = {
	    {"[server]\nport = 8080\nbogus = 1\n", "unknown key 'bogus' in section [server]", 3},
	    {"[nowhere]\nx = 1\n", "unknown section [nowhere]", 2},
	    {"[server]\nport = eighty\n", "'port' needs a whole number, got 'eighty'", 2},
	    {"[server]\nport = 70000\n", "'port' must be in 1..65535", 2},
	    {"[persist]\nwriters = 0\n", "'writers' must be in 1..16", 2},
	    {"[persist]\nbatch_max = 8\nwriters = 17\n", "'writers' must be in 1..16", 3},
	    {"[persist]\ncopy_min_rows = -1\n", "'copy_min_rows' must be in 0..65536", 2},
	    {"[postgres]\nallow_unsafe_commit = maybe\n", "needs true or false", 2},
	    {"[log]\n\nlevel = loud\n", "'level' must be err, warn", 3},
	    {"[dataplane]\nmode = tcp\n", "'mode' must be socket or dpdk", 2},
	    {"[dataplane]\n\nzero_copy = yes\n", "'zero_copy' must be auto, all, pooled or off", 3},
	    {"[dataplane]\nchecksum_offload = true\n", "'checksum_offload' must be auto, on or off",
	     2},
	    {"[server]\nthis line has no equals sign\n", "syntax error", 2},
	    {"[auth]\nadmins = alice, bad name!\n", "'admins': 'name!' is not a user name", 2},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config cfg;
		char err[512] = "", prefix[96];
		int rc = load(&cfg, cases[i].text, err, sizeof(err));

		assert_int_equal(rc, -EINVAL);
		snprintf(prefix, sizeof(prefix), "%s:%d: ", path, cases[i].line);
		if (strncmp(err, prefix, strlen(prefix)) != 0)
			fail_msg("case %zu: '%s' does not start with '%s'", i, err, prefix);
		if (strstr(err, cases[i].expect) == NULL)
			fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].expect);
	}
}

/* [auth] admins: names kept without their spaces, matched exactly. */
static void test_admins(void **state)
{
	struct config cfg;
	char err[256] = "";

	(void)state;
	assert_int_equal(load(&cfg, "[auth]\nadmins = alice ,ops.team\tbob\n", err, sizeof(err)),
			 0);
	assert_string_equal(cfg.auth.admins, "alice,ops.team,bob");
	assert_true(config_name_listed(cfg.auth.admins, "alice"));
	assert_true(config_name_listed(cfg.auth.admins, "ops.team"));
	assert_true(config_name_listed(cfg.auth.admins, "bob"));
	assert_false(config_name_listed(cfg.auth.admins, "Alice"));
	assert_false(config_name_listed(cfg.auth.admins, "ops"));
	assert_false(config_name_listed(cfg.auth.admins, "alice,ops.team"));
	assert_false(config_name_listed(cfg.auth.admins, ""));
	assert_false(config_name_listed("", "alice"));
}

static void test_missing_file(void **state)
{
	struct config cfg;
	char err[256];
	config_defaults(&cfg);
	assert_int_equal(config_load(&cfg, "/nonexistent/fanout.ini", err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/fanout.ini: cannot open"));
}

static void test_environment_wins(void **state)
{
	struct config cfg;
	char err[256];
	setenv("FANOUT_PG_DSN", "host=from-env", 1);
	setenv("FANOUT_JWT_SECRET", "env-secret", 1);
	assert_int_equal(load(&cfg, "[postgres]\ndsn = host=from-file\n", err, sizeof(err)), 0);
	unsetenv("FANOUT_PG_DSN");
	unsetenv("FANOUT_JWT_SECRET");
	assert_string_equal(cfg.postgres.dsn, "host=from-env");
	assert_string_equal(cfg.auth.jwt_secret, "env-secret");
}

static void test_cluster_section(void **state)
{
	struct config cfg;
	char err[256];

	setenv("FANOUT_CLUSTER_SECRET", "peer-secret", 1);
	assert_int_equal(load(&cfg,
			      "[cluster]\netcd = http://127.0.0.1:2379\nname = n1\n"
			      "peer = 127.0.0.1:7101\nlease_ttl_s = 2\nvnodes = 1024\n"
			      "secret = from-file\n",
			      err, sizeof(err)),
			 0);
	unsetenv("FANOUT_CLUSTER_SECRET");
	assert_string_equal(cfg.cluster.etcd, "http://127.0.0.1:2379");
	assert_string_equal(cfg.cluster.name, "n1");
	assert_string_equal(cfg.cluster.cluster, "fanout");
	assert_int_equal(cfg.cluster.lease_ttl_s, 2);
	assert_int_equal(cfg.cluster.lease_margin_ms, 300);
	assert_int_equal(cfg.cluster.vnodes, 1024);
	assert_string_equal(cfg.cluster.secret, "peer-secret");
	assert_int_equal(load(&cfg, "[cluster]\nvnodes = 0\n", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":2:"));
	assert_int_equal(load(&cfg, "[cluster]\nlease = 3\n", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unknown key 'lease'"));
}

struct diff_seen {
	char keys[8][48];
	int n;
};

static void on_diff(void *arg, const char *section, const char *key)
{
	struct diff_seen *d = arg;

	if (d->n < 8)
		snprintf(d->keys[d->n++], sizeof(d->keys[0]), "[%s] %s", section, key);
}

/* What a reload reports: every key that differs, by name, in table order. */
static void test_diff_names_changed_keys(void **state)
{
	struct config a, b;
	struct diff_seen seen = {0};

	(void)state;
	config_defaults(&a);
	config_defaults(&b);
	assert_int_equal(config_diff(&a, &b, on_diff, &seen), 0);
	b.server.port = 9090;
	b.log.level = LOG_LEVEL_DEBUG;
	snprintf(b.postgres.read_dsn, sizeof(b.postgres.read_dsn), "host=standby");
	b.postgres.allow_unsafe_commit = true;
	assert_int_equal(config_diff(&a, &b, on_diff, &seen), 4);
	assert_string_equal(seen.keys[0], "[server] port");
	assert_string_equal(seen.keys[1], "[postgres] read_dsn");
	assert_string_equal(seen.keys[2], "[postgres] allow_unsafe_commit");
	assert_string_equal(seen.keys[3], "[log] level");
	assert_int_equal(config_diff(&b, &b, NULL, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_good_file),
	    cmocka_unit_test(test_bad_files),
	    cmocka_unit_test(test_admins),
	    cmocka_unit_test(test_missing_file),
	    cmocka_unit_test(test_environment_wins),
	    cmocka_unit_test(test_cluster_section),
	    cmocka_unit_test(test_every_mistake_reported),
	    cmocka_unit_test(test_diff_names_changed_keys),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
