/* SPDX-License-Identifier: BSD-3-Clause */
/* fanoutd: the daemon. Loads the configuration, checks that PostgreSQL commits
 * are durable, applies migrations, starts DPDK's EAL (no hugepages, no NIC:
 * for the fan-out tables), the persist writer and readers, the messaging core
 * and the socket edge, then waits for SIGINT/SIGTERM (SIGHUP reloads what it
 * can of the configuration) and shuts down in order:
 * stop accepting, close connections with 1012, finish in-flight commits,
 * exit 0. */
#define LOG_COMPONENT "fanoutd"
#include "alloc.h"
#include "config.h"
#include "dpdk_edge.h"
#include "err.h"
#include "fanout-build.h"
#include "fanout-commit.h"
#include "edge.h"
#include "fanout.h"
#include "server.h"
#include "log.h"
#include "notify.h"
#include "cluster.h"
#include "membership.h"
#include "metrics.h"
#include "migrate.h"
#include "publish.h"
#include "reader.h"
#include "writer.h"

#include <getopt.h>
#include <pthread.h>
#include <rte_eal.h>
#include <rte_version.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

struct daemon {
	struct config cfg;
	const char *config_path;
	struct dpdk_edge_config dcfg; /* mode = dpdk */
	char web_root[600];
	char node_name[64]; /* [cluster] name, or the host's name */
	struct persist_writer *writer;
	struct persist_reader *reader;
	struct fanout *fanout;
	struct edge *edge;
	struct socket_server *server;
	struct dpdk_edge *dpdk;	 /* mode = dpdk */
	struct cluster *cluster; /* with [cluster]: this node's place in it */
	bool dpdk_mode;
	atomic_bool dpdk_up; /* its port and lcores started */
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

static bool is_ready(void *arg, char *why, size_t why_size)
{
	struct daemon *d = arg;

	if (!persist_writer_connected(d->writer)) {
		snprintf(why, why_size, "PostgreSQL is unreachable");
		return false;
	}
	if (d->cluster && cluster_draining(d->cluster)) {
		snprintf(why, why_size, "draining (fanoutctl node undrain brings it back)");
		return false;
	}
	if (d->dpdk_mode && !atomic_load(&d->dpdk_up)) {
		snprintf(why, why_size, "the DPDK edge is starting");
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
	int rc =
	    migrate_dsn(cfg->postgres.dsn, cfg->postgres.allow_unsafe_commit, err, sizeof(err));

	if (rc < 0) {
		LOG(ERR, "%s", err);
		return rc;
	}
	if (report)
		printf("schema up to date: %d migration(s) applied now, %d known\n", rc,
		       migrations_count);
	return 0;
}

/* The command line: 0 to go on, or the exit code (after --version, --help
 * or a usage error). */
static int parse_args(int argc, char **argv, struct daemon *d, bool *migrate_only, bool *check_only)
{
	static const struct option options[] = {
	    {"config", required_argument, NULL, 'c'}, {"migrate", no_argument, NULL, 'm'},
	    {"check-config", no_argument, NULL, 'k'}, {"version", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},	      {NULL, 0, NULL, 0},
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			d->config_path = optarg;
			break;
		case 'm':
			*migrate_only = true;
			break;
		case 'k':
			*check_only = true;
			break;
		case 'v':
			printf("fanoutd %s (commit %s, %s, %s)\n", FANOUT_VERSION, FANOUT_COMMIT,
			       rte_version(), alloc_name());
			return 3; /* done, exit 0 */
		case 'h':
			usage(stdout);
			return 3;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	return 0;
}

/* mode = dpdk: the edge's settings, checked. 0, or 2 (said why). */
static int dpdk_config(struct daemon *d, const char *where)
{
	struct dpdk_edge_config *c = &d->dcfg;

	*c = (struct dpdk_edge_config){
	    .port = d->cfg.dataplane.port,
	    .listen_port = (uint16_t)d->cfg.dataplane.listen_port,
	    .workers = d->cfg.dataplane.workers,
	    .first_worker = d->cfg.server.service_threads,
	    .idle_sleep_us = (uint32_t)d->cfg.dataplane.idle_sleep_us,
	    .max_connections = (uint32_t)d->cfg.dataplane.max_connections,
	    .upgrade_slots = (uint32_t)d->cfg.dataplane.upgrade_slots,
	    .zero_copy = d->cfg.dataplane.zero_copy,
	    .frame_memory_mb = (uint32_t)d->cfg.dataplane.frame_memory_mb,
	    .copy_below = (uint32_t)d->cfg.dataplane.copy_below,
	    .checksum_offload = d->cfg.dataplane.checksum_offload,
	    .jwt_secret = d->cfg.auth.jwt_secret,
	};
	if (!d->cfg.dataplane.port[0] ||
	    dpdk_parse_cidr(d->cfg.dataplane.address, &c->address, &c->netmask) < 0) {
		fprintf(stderr,
			"fanoutd: %s: mode = dpdk needs [dataplane] port (a DPDK device "
			"name) and address (a.b.c.d/len)\n",
			where);
		return 2;
	}
	if (d->cfg.dataplane.gateway[0] &&
	    dpdk_parse_ipv4(d->cfg.dataplane.gateway, &c->gateway) < 0) {
		fprintf(stderr, "fanoutd: %s: [dataplane] gateway is not an IPv4 address\n", where);
		return 2;
	}
	if (d->cfg.server.service_threads + d->cfg.dataplane.workers > FANOUT_WORKERS_MAX) {
		fprintf(stderr, "fanoutd: %s: service_threads + [dataplane] workers is over %d\n",
			where, FANOUT_WORKERS_MAX);
		return 2;
	}
	return 0;
}

/* The configuration, loaded and checked. 0, or 2 (said why). */
static int load_config(struct daemon *d)
{
	const char *where = d->config_path ? d->config_path : "(defaults)";
	char err[1024];
	int rc;

	config_defaults(&d->cfg);
	rc = d->config_path ? config_load(&d->cfg, d->config_path, err, sizeof(err))
			    : config_apply_env(&d->cfg, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "fanoutd: %s\n", err);
		return 2;
	}
	d->dpdk_mode = d->cfg.dataplane.mode == DATAPLANE_MODE_DPDK;
	if (d->dpdk_mode && dpdk_config(d, where) != 0)
		return 2;
	if (!d->cfg.auth.jwt_secret[0]) {
		fprintf(stderr,
			"fanoutd: %s: no token secret: set [auth] jwt_secret or "
			"FANOUT_JWT_SECRET\n",
			where);
		return 2;
	}
	return 0;
}

/* fanout_build_info: what is running, for dashboards and alerts that
 * compare nodes (a node left on an old build). */
static void register_build_info(void)
{
	char libpq[16];
	int v = persist_libpq_version();
	const char *pairs[] = {"version", FANOUT_VERSION, "commit", FANOUT_COMMIT,
			       "dpdk",	  rte_version(),  "libpq",  libpq,
			       "alloc",	  alloc_name(),	  NULL};

	snprintf(libpq, sizeof(libpq), "%d.%d", v / 10000, v % 10000);
	metrics_register_info("fanout_build_info",
			      "The running build: version, commit, DPDK, libpq, allocator.", pairs);
}

/* The EAL, the fan-out engine, the readers, the messaging core and the
 * writer that commits for it, and the process-wide metrics. 0 or -1. */
static int start_core(struct daemon *d)
{
	/* The socket edge's workers first, then the DPDK edge's. */
	int nworkers =
	    d->cfg.server.service_threads + (d->dpdk_mode ? d->cfg.dataplane.workers : 0);
	int rc =
	    d->dpdk_mode
		? fanout_eal_init_dpdk(d->cfg.dataplane.workers, d->cfg.dataplane.eal_memory_mb,
				       d->cfg.dataplane.eal_args)
		: fanout_eal_init(d->cfg.dataplane.eal_memory_mb, d->cfg.dataplane.eal_args);
	struct edge_config ecfg = {
	    .heartbeat_ms = d->cfg.server.heartbeat_ms,
	    .max_message_bytes = (size_t)d->cfg.server.max_message_bytes,
	    .send_queue_bytes = (size_t)d->cfg.server.send_queue_bytes,
	    .publish_rate = d->cfg.server.publish_rate,
	    .publish_burst = d->cfg.server.publish_burst,
	    .max_text_bytes = (size_t)d->cfg.server.max_text_bytes,
	    .broad_mention_ms = d->cfg.server.broad_mention_interval_ms,
	    .presence_grace_ms = d->cfg.server.presence_grace_ms,
	    .presence_interval_ms = d->cfg.server.presence_interval_ms,
	};
	struct persist_writer_config wcfg = {
	    .dsn = d->cfg.postgres.dsn,
	    .allow_unsafe_commit = d->cfg.postgres.allow_unsafe_commit,
	    .writers = d->cfg.persist.writers,
	    .batch_max = d->cfg.persist.batch_max,
	    .batch_window_us = d->cfg.persist.batch_window_us,
	    .queue_max = d->cfg.persist.queue_max,
	    .dedup_cache = d->cfg.persist.dedup_cache,
	    .channel_heads = d->cfg.persist.channel_heads,
	    .copy_min_rows = d->cfg.persist.copy_min_rows,
	    .reconnect_max_ms = d->cfg.postgres.reconnect_max_ms,
	};

	if (rc < 0)
		return -1;
	if (d->cfg.cluster.etcd[0]) {
		/* fanoutctl finds a node's API where it listens unless told. */
		if (!d->cfg.cluster.admin[0])
			snprintf(d->cfg.cluster.admin, sizeof(d->cfg.cluster.admin), "%s:%d",
				 d->cfg.server.listen_address, d->cfg.server.port);
		d->cluster = cluster_create(&d->cfg.cluster, d->cfg.postgres.dsn);
		if (d->cluster == NULL)
			return -1;
		wcfg.may_commit = cluster_may_commit;
		wcfg.may_commit_arg = d->cluster;
	}
	d->fanout = fanout_create(nworkers, (uint32_t)d->cfg.dataplane.channels);
	d->reader =
	    persist_reader_create(d->cfg.postgres.dsn, d->cfg.postgres.read_dsn,
				  d->cfg.postgres.reader_threads, d->cfg.postgres.reconnect_max_ms);
	d->edge =
	    d->fanout && d->reader
		? edge_create(&ecfg, d->fanout, d->reader,
			      d->cluster ? cluster_route(d->cluster) : NULL, &protocol_v1, nworkers)
		: NULL;
	d->writer =
	    d->edge ? persist_writer_create(&wcfg, publish_on_commit, edge_publish(d->edge)) : NULL;
	if (d->writer == NULL) {
		LOG(ERR, "cannot start the messaging core: %s", strerror(errno));
		return -1;
	}
	edge_set_writer(d->edge, d->writer);
	/* Join only now: peers may forward publishes the moment we own
	 * channels. */
	if (d->cluster && cluster_start(d->cluster, d->edge) < 0)
		return -1;
	persist_writer_register_metrics(d->writer);
	persist_reader_register_metrics();
	register_build_info();
	metrics_register_gauge("fanout_uptime_seconds", "Seconds since fanoutd started.",
			       uptime_gauge, d);
	metrics_register_gauge("fanout_heap_allocated_bytes", "Bytes allocated from the heap.",
			       heap_allocated_gauge, NULL);
	metrics_register_gauge("fanout_heap_resident_bytes", "Bytes resident in heap pages.",
			       heap_resident_gauge, NULL);
	return 0;
}

/* The operator's list of the cluster's members (the socket edge asks). */
static json_t *cluster_nodes(void *arg)
{
	struct daemon *d = arg;
	struct membership *m = cluster_membership(d->cluster);

	return m ? membership_nodes_json(m) : NULL;
}

/* The socket edge, and with mode = dpdk the DPDK edge. 0, or -1 with what
 * started stopped again. */
static int start_edges(struct daemon *d)
{
	struct socket_server_config scfg = {
	    .address = d->cfg.server.listen_address,
	    .port = d->cfg.server.port,
	    .threads = d->cfg.server.service_threads,
	    .web_root = d->web_root,
	    .tls_cert = d->cfg.server.tls_cert,
	    .tls_key = d->cfg.server.tls_key,
	    .jwt_secret = d->cfg.auth.jwt_secret,
	    .api_timeout_ms = d->cfg.server.api_timeout_ms,
	    .http_idle_ms = d->cfg.server.http_idle_ms,
	    .max_connections = d->cfg.server.max_connections,
	    .admins = d->cfg.auth.admins,
	    .node = d->node_name,
	    .nodes = d->cluster ? cluster_nodes : NULL,
	    .nodes_arg = d,
	    .writer = d->cfg.persist.on_service_threads ? d->writer : NULL,
	};
	struct rlimit files;

	if (d->cfg.cluster.name[0])
		snprintf(d->node_name, sizeof(d->node_name), "%s", d->cfg.cluster.name);
	else if (gethostname(d->node_name, sizeof(d->node_name)) != 0)
		snprintf(d->node_name, sizeof(d->node_name), "fanoutd");
	d->node_name[sizeof(d->node_name) - 1] = '\0';
	if (d->cfg.server.web_root[0])
		snprintf(d->web_root, sizeof(d->web_root), "%s", d->cfg.server.web_root);
	else if (access(FANOUT_WEB_ROOT "/index.html", R_OK) == 0) /* installed */
		snprintf(d->web_root, sizeof(d->web_root), "%s", FANOUT_WEB_ROOT);
	else /* run from the build tree */
		snprintf(d->web_root, sizeof(d->web_root), "%s/web", FANOUT_SOURCE_ROOT);
	d->server = socket_server_start(&scfg, d->edge, is_ready, d);
	if (d->server == NULL) {
		persist_writer_destroy(d->writer);
		persist_reader_destroy(d->reader);
		return -1;
	}
	if (d->dpdk_mode) {
		d->dpdk = dpdk_edge_start(&d->dcfg, d->edge);
		if (d->dpdk == NULL) {
			socket_server_close_all(d->server, 1012, "server restarting", 0);
			persist_writer_destroy(d->writer);
			persist_reader_destroy(d->reader);
			edge_stop(d->edge);
			socket_server_stop(d->server);
			return -1;
		}
		atomic_store(&d->dpdk_up, true);
	}
	getrlimit(RLIMIT_NOFILE, &files);
	LOG(NOTICE,
	    "fanoutd %s listening on %s://%s:%d/ with %d thread(s), up to %lu descriptors (%s)",
	    FANOUT_VERSION, scfg.tls_cert[0] ? "https" : "http", scfg.address, scfg.port,
	    scfg.threads, (unsigned long)files.rlim_cur, alloc_name());
	return 0;
}

/* Order matters: stop accepting; commit what the writer holds and let its
 * acks reach the sessions' queues (the callbacks post to the workers, which
 * stay up), then close every connection with 1012 after what is queued for
 * it; the writer commits what came meanwhile. */
static void shut_down(struct daemon *d)
{
	socket_server_drain(d->server);
	if (persist_writer_flush(d->writer, 5000) < 0)
		LOG(WARN, "shutdown: the writer did not commit what it held within 5 s; "
			  "clients may retry those publishes");
	dpdk_edge_close_all(d->dpdk, 1012, "server restarting", 0);
	socket_server_close_all(d->server, 1012, "server restarting", 2000);
	dpdk_edge_close_all(d->dpdk, 1012, "server restarting", 1000);
	persist_writer_destroy(d->writer);
	/* After the writer has committed, acked and broadcast what it held:
	 * then leave, so the new owners start from a settled head. */
	cluster_stop(d->cluster);
	persist_reader_destroy(d->reader);
	edge_stop(d->edge);
	socket_server_stop(d->server);
	dpdk_edge_stop(d->dpdk);
	edge_destroy(d->edge);
	fanout_destroy(d->fanout);
	cluster_destroy(d->cluster);
	rte_eal_cleanup();
}

#define RESTART_LIST 1024

/* The [server] limits a reload applies while serving. */
/* clang-format off */
#define LIMIT(key) {#key, offsetof(struct config_server, key)}
static const struct {
	const char *key;
	size_t offset;
} reloadable[] = {
	LIMIT(publish_rate), LIMIT(publish_burst), LIMIT(max_text_bytes),
	LIMIT(send_queue_bytes), LIMIT(max_connections), LIMIT(api_timeout_ms),
	LIMIT(http_idle_ms), LIMIT(broad_mention_interval_ms),
};
/* clang-format on */

static int server_int(const struct config *c, size_t offset)
{
	return *(const int *)((const char *)&c->server + offset);
}

/* Applies next's limits, naming each change. */
static void reload_limits(struct daemon *d, const struct config *next)
{
	const struct config_server *s = &next->server;

	for (size_t i = 0; i < sizeof(reloadable) / sizeof(reloadable[0]); i++) {
		int was = server_int(&d->cfg, reloadable[i].offset);
		int now = server_int(next, reloadable[i].offset);

		if (was != now)
			LOG(NOTICE, "reload: [server] %s %d -> %d", reloadable[i].key, was, now);
	}
	edge_set_limits(d->edge, &(struct edge_limits){
				     s->publish_rate, s->publish_burst, (size_t)s->max_text_bytes,
				     (size_t)s->send_queue_bytes, s->broad_mention_interval_ms});
	socket_server_set_limits(d->server, s->max_connections, s->api_timeout_ms, s->http_idle_ms);
	for (size_t i = 0; i < sizeof(reloadable) / sizeof(reloadable[0]); i++)
		*(int *)((char *)&d->cfg.server + reloadable[i].offset) =
		    server_int(next, reloadable[i].offset);
}

/* Collects the changed keys a reload cannot apply. */
static void needs_restart(void *arg, const char *section, const char *key)
{
	char *list = arg;
	size_t n = strlen(list);

	if (strcmp(section, "log") == 0 && strcmp(key, "level") == 0)
		return; /* applied (the limits are in d->cfg already) */
	snprintf(list + n, RESTART_LIST - n, "%s[%s] %s", n ? ", " : "", section, key);
}

/* SIGHUP (systemctl reload): reads the configuration again and applies what
 * can change while serving, the log level and the [server] limits; names
 * every other key that changed, which takes a restart. A file that does not
 * load changes nothing. Connections are not closed; they follow the limits
 * from their next publish or frame. */
static void reload(struct daemon *d)
{
	struct config *next = malloc(sizeof(*next));
	char err[1024], restart[RESTART_LIST] = "";
	int rc;

	notify_send("RELOADING=1\nSTATUS=reloading the configuration");
	if (next == NULL) {
		LOG(ERR, "reload: out of memory; the running configuration stays");
		goto out;
	}
	config_defaults(next);
	rc = d->config_path ? config_load(next, d->config_path, err, sizeof(err))
			    : config_apply_env(next, err, sizeof(err));
	if (rc < 0) {
		LOG(ERR, "reload: %s; the running configuration stays", err);
		goto out;
	}
	if (next->log.level != d->cfg.log.level) {
		LOG(NOTICE, "reload: [log] level %s -> %s", log_level_name(d->cfg.log.level),
		    log_level_name(next->log.level));
		log_set_level(next->log.level);
		d->cfg.log.level = next->log.level;
	}
	reload_limits(d, next);
	if (config_diff(&d->cfg, next, needs_restart, restart) > 0)
		LOG(WARN, "reload: changed but applied only by a restart: %s", restart);
	LOG(NOTICE, "reload: done (%s)", d->config_path ? d->config_path : "environment");
out:
	free(next);
	notify_send("READY=1\nSTATUS=serving");
}

/* Serving: tells systemd (when it started us, Type=notify) that we are
 * ready, feeds its watchdog from this loop, reloads on SIGHUP, and returns
 * the signal that ends the service. */
static int wait_for_signal(struct daemon *d, const sigset_t *signals)
{
	uint64_t watchdog = notify_watchdog_usec();
	int sig;

	notify_send("READY=1\nSTATUS=serving");
	for (;;) {
		struct timespec half = {(time_t)(watchdog / 2000000),
					(long)(watchdog / 2 % 1000000) * 1000};

		if (watchdog) {
			sig = sigtimedwait(signals, NULL, &half);
			if (sig < 0) {
				notify_send("WATCHDOG=1");
				continue;
			}
		} else if (sigwait(signals, &sig) != 0) {
			continue;
		}
		if (sig != SIGHUP)
			return sig;
		reload(d);
	}
}

int main(int argc, char **argv)
{
	bool migrate_only = false, check_only = false;
	struct daemon d = {.started = time(NULL)};
	struct rlimit files;
	sigset_t signals;
	int rc, sig;

	rc = parse_args(argc, argv, &d, &migrate_only, &check_only);
	if (rc == 0)
		rc = load_config(&d);
	if (rc != 0)
		return rc == 3 ? 0 : rc;
	if (check_only) {
		printf("%s: ok\n", d.config_path ? d.config_path : "(defaults)");
		return 0;
	}
	log_setup(d.cfg.log.level, d.cfg.log.format, 2);
	rc = alloc_init();
	if (rc < 0) {
		LOG(ERR, "the heap is not jemalloc as built: %s", err_str(rc));
		return 1;
	}
	/* Every connection is a descriptor: take all the kernel allows us
	 * (raise the hard limit with systemd's LimitNOFILE or ulimit -Hn). */
	if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
		files.rlim_cur = files.rlim_max;
		setrlimit(RLIMIT_NOFILE, &files);
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
	sigaddset(&signals, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (start_core(&d) < 0 || start_edges(&d) < 0) {
		/* The reader's and writer's threads may be inside libpq (its
		 * Kerberos mutexes, say): exit()'s destructors would pull the
		 * libraries from under them and abort. Nothing is acknowledged
		 * yet, so leave without them. */
		fflush(NULL);
		_exit(1);
	}
	sig = wait_for_signal(&d, &signals);
	LOG(NOTICE, "%s: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	notify_send("STOPPING=1\nSTATUS=shutting down");
	shut_down(&d);
	LOG(NOTICE, "stopped");
	return 0;
}
