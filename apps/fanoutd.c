/* fanoutd: the daemon. Loads the configuration, checks that PostgreSQL commits
 * are durable, applies migrations, starts the persist writer and readers and
 * the socket edge's listener, then waits for SIGINT/SIGTERM and shuts down in
 * order: stop accepting, finish in-flight commits, exit 0. */
#define LOG_COMPONENT "fanoutd"
#include "alloc.h"
#include "config.h"
#include "err.h"
#include "fanout-build.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "migrate.h"
#include "pg.h"
#include "reader.h"
#include "writer.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct daemon {
	struct config cfg;
	struct persist_writer *writer;
	struct persist_reader *reader;
	struct http_server *http;
	time_t started;
};

static void usage(FILE *out)
{
	fprintf(out, "usage: fanoutd [-c FILE] [--migrate] [--check-config] [--version]\n"
		     "  -c, --config FILE   configuration (INI); defaults apply without one\n"
		     "      --migrate       apply schema migrations and exit\n"
		     "      --check-config  load the configuration, report errors, exit\n"
		     "      --version       print version and allocator, exit\n"
		     "Environment: FANOUT_PG_DSN, FANOUT_JWT_SECRET override the file.\n");
}

/* Messages are handed on here once durable. The edges subscribe to this when
 * the messaging core lands; until then there is no publisher. */
static void on_commit(void *arg, enum persist_outcome outcome, int error,
		      const struct persist_message *m, void *cookie)
{
	if (outcome == PERSIST_FAILED)
		LOG(WARN, "publish to channel %ld failed: %s", (long)m->channel_id, err_str(error));
}

static bool is_ready(void *arg, char *why, size_t why_size)
{
	struct daemon *d = arg;

	if (!persist_writer_connected(d->writer)) {
		snprintf(why, why_size, "PostgreSQL is unreachable");
		return false;
	}
	return true;
}

static double uptime_gauge(void *arg)
{
	struct daemon *d = arg;
	return (double)(time(NULL) - d->started);
}

static double heap_allocated_gauge(void *arg)
{
	size_t allocated, resident;
	alloc_stats(&allocated, &resident);
	return (double)allocated;
}

static double heap_resident_gauge(void *arg)
{
	size_t allocated, resident;
	alloc_stats(&allocated, &resident);
	return (double)resident;
}

static int migrate_once(const struct config *cfg, bool report)
{
	char err[1024];
	PGconn *conn =
	    pg_connect(cfg->postgres.dsn, cfg->postgres.allow_unsafe_commit, err, sizeof(err));
	int rc;

	if (conn == NULL) {
		LOG(ERR, "%s", err);
		return -EIO;
	}
	rc = migrate_apply(conn, err, sizeof(err));
	PQfinish(conn);
	if (rc < 0) {
		LOG(ERR, "%s", err);
		return rc;
	}
	if (report)
		printf("schema up to date: %d migration(s) applied now, %d known\n", rc,
		       migrations_count);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
	    {"config", required_argument, NULL, 'c'}, {"migrate", no_argument, NULL, 'm'},
	    {"check-config", no_argument, NULL, 'k'}, {"version", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},	      {NULL, 0, NULL, 0},
	};
	const char *config_path = NULL;
	bool migrate_only = false, check_only = false;
	struct daemon d = {.started = time(NULL)};
	char err[1024], web_root[600];
	sigset_t signals;
	int opt, sig, rc;

	while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 'm':
			migrate_only = true;
			break;
		case 'k':
			check_only = true;
			break;
		case 'v':
			printf("fanoutd %s (%s)\n", FANOUT_VERSION, alloc_name());
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	config_defaults(&d.cfg);
	rc = config_path ? config_load(&d.cfg, config_path, err, sizeof(err))
			 : config_apply_env(&d.cfg, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "fanoutd: %s\n", err);
		return 2;
	}
	if (d.cfg.dataplane.mode == DATAPLANE_MODE_DPDK) {
		fprintf(stderr,
			"fanoutd: %s: [dataplane] mode = dpdk is not available in this "
			"build yet; use mode = socket\n",
			config_path ? config_path : "(defaults)");
		return 2;
	}
	if (check_only) {
		printf("%s: ok\n", config_path ? config_path : "(defaults)");
		return 0;
	}
	log_setup(d.cfg.log.level, d.cfg.log.format, 2);
	rc = alloc_init();
	if (rc < 0) {
		LOG(ERR, "the heap is not jemalloc as built: %s", err_str(rc));
		return 1;
	}
	if (migrate_once(&d.cfg, migrate_only) < 0)
		return 1;
	if (migrate_only)
		return 0;

	/* Every thread started from here inherits the blocked signals; only
	 * sigwait() below receives them. */
	sigemptyset(&signals);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct persist_writer_config wcfg = {
	    .dsn = d.cfg.postgres.dsn,
	    .allow_unsafe_commit = d.cfg.postgres.allow_unsafe_commit,
	    .batch_max = d.cfg.persist.batch_max,
	    .batch_window_us = d.cfg.persist.batch_window_us,
	    .queue_max = d.cfg.persist.queue_max,
	    .dedup_cache = d.cfg.persist.dedup_cache,
	    .reconnect_max_ms = d.cfg.postgres.reconnect_max_ms,
	};
	d.writer = persist_writer_create(&wcfg, on_commit, &d);
	d.reader = persist_reader_create(d.cfg.postgres.dsn, d.cfg.postgres.reader_threads,
					 d.cfg.postgres.reconnect_max_ms);
	if (d.writer == NULL || d.reader == NULL) {
		LOG(ERR, "cannot start the persist tier: %s", strerror(errno));
		return 1;
	}
	persist_writer_register_metrics(d.writer);
	metrics_register_gauge("fanout_uptime_seconds", "Seconds since fanoutd started.",
			       uptime_gauge, &d);
	metrics_register_gauge("fanout_heap_allocated_bytes", "Bytes allocated from the heap.",
			       heap_allocated_gauge, NULL);
	metrics_register_gauge("fanout_heap_resident_bytes", "Bytes resident in heap pages.",
			       heap_resident_gauge, NULL);

	if (d.cfg.server.web_root[0])
		snprintf(web_root, sizeof(web_root), "%s", d.cfg.server.web_root);
	else
		snprintf(web_root, sizeof(web_root), "%s/web", FANOUT_SOURCE_ROOT);
	struct http_server_config hcfg = {
	    .address = d.cfg.server.listen_address,
	    .port = d.cfg.server.port,
	    .web_root = web_root,
	    .tls_cert = d.cfg.server.tls_cert,
	    .tls_key = d.cfg.server.tls_key,
	};
	d.http = http_server_start(&hcfg, is_ready, &d);
	if (d.http == NULL) {
		persist_writer_destroy(d.writer);
		persist_reader_destroy(d.reader);
		return 1;
	}
	LOG(NOTICE, "fanoutd %s listening on %s://%s:%d/ (%s)", FANOUT_VERSION,
	    hcfg.tls_cert[0] ? "https" : "http", hcfg.address, hcfg.port, alloc_name());

	sigwait(&signals, &sig);
	LOG(NOTICE, "%s: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	http_server_stop(d.http);
	persist_writer_destroy(d.writer);
	persist_reader_destroy(d.reader);
	LOG(NOTICE, "stopped");
	return 0;
}
