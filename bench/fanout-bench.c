/* SPDX-License-Identifier: BSD-3-Clause */
/* fanout-bench: load generator and benchmarks. Scenarios print figures; they
 * are never timed tests.
 *
 *   fanout-bench persist   W6: durable messages/s and publish-to-durable
 *                          latency of the batched writer against a naive
 *                          writer (one transaction per message, same fenced
 *                          statement), in one run on the same PostgreSQL;
 *                          --sweep over batch size and window.
 *   fanout-bench fanout    W1/W5: one hot channel over the socket edge
 *                          (bench/scenarios/fanout.c).
 *   fanout-bench groups    W2: DMs and 10-member groups (scenarios/groups.c).
 *   fanout-bench capacity  W7: idle connections (scenarios/capacity.c).
 *   fanout-bench nats      W1 against nats-server (scenarios/nats.c).
 *   fanout-bench nats-groups  W2 against nats-server (scenarios/nats_groups.c).
 *   fanout-bench dpdk-null the DPDK edge's send path per lcore, into net_null
 *                          (scenarios/dpdk_null.c).
 *   fanout-bench failover  one trial of a channel owner's death in a cluster
 *                          (scenarios/failover.c; bench/failover runs 20).
 *   fanout-bench lcore-publish  a publish's cost to the worker that got it,
 *                          with and without the hand-off
 *                          (scenarios/lcore_publish.c).
 *   fanout-bench wake      how late this host wakes a thread that sleeps
 *                          (scenarios/wake.c).
 *
 * The persist scenario, here, links the persist library directly: it
 * measures the writer itself; the others go through the daemon's network
 * path with the client in load.c and wsclient.c. */
#define LOG_COMPONENT "bench"
#include "fanout-build.h"
#include "alloc.h"
#include "bench.h"
#include "load.h"
#include "clock.h"
#include "log.h"
#include "migrate.h"
#include "pg.h"
#include "writer.h"

#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct persist_opts {
	const char *dsn;
	int messages;
	int naive_messages;
	int channels;
	int producers;
	int batch_max;
	int body_bytes;
	int rate; /* open-loop run: messages per second offered; 0 skips it */
	int batch_window_us;
	int writers;	   /* the writer's lanes */
	int copy_min_rows; /* batches from this many rows go by COPY; 0: never */
	bool sweep;	   /* W6: saturated runs over batch sizes and windows */
	bool text;	   /* bodies of made-up words, each message its own, not 'bbb...' */
	const char *json;
};

struct run {
	const struct persist_opts *o;
	struct persist_writer *w;
	int64_t *channel_ids;
	uint64_t *latency_ns; /* per message, indexed by cookie */
	uint64_t *submit_ns;
	atomic_int done;
	atomic_int failed;
	int next_producer;
	int messages; /* in this run */
	int rate;     /* 0: as fast as the writer takes them */
	uint64_t start_ns;
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double percentile_ms(uint64_t *sorted, int n, double p)
{
	int i = (int)(p * (n - 1) + 0.5);
	return (double)sorted[i] / 1e6;
}

static void on_commit(void *arg, enum persist_outcome outcome, int error,
		      const struct persist_message *m, void *cookie)
{
	struct run *r = arg;
	uintptr_t i = (uintptr_t)cookie;

	r->latency_ns[i] = time_mono_ns() - r->submit_ns[i];
	if (outcome != PERSIST_COMMITTED)
		atomic_fetch_add(&r->failed, 1);
	atomic_fetch_add(&r->done, 1);
}

/* body_bytes of made-up words for message i (--text): two to four
 * syllables each of 70, so some 24 million words, about 14 in 100 bytes:
 * each message gives the search index a dozen lexemes of its own, as real
 * text does, where 'bbb...' gives one shared by all. */
void bench_text_body(char *body, int bytes, int i)
{
	static const char consonants[] = "bdfgklmnprstvz", vowels[] = "aeiou";
	uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
	int n = 0;

	while (n < bytes) {
		int syllables = 2;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		syllables += (int)(x % 3);
		for (int k = 0; k < syllables && n + 2 <= bytes; k++) {
			body[n++] = consonants[(x >> (8 + 8 * k)) % 14];
			body[n++] = vowels[(x >> (12 + 8 * k)) % 5];
		}
		if (n < bytes)
			body[n++] = ' ';
	}
	body[bytes] = '\0';
}

static void *producer_main(void *arg)
{
	struct run *r = arg;
	const struct persist_opts *o = r->o;
	int me = __atomic_fetch_add(&r->next_producer, 1, __ATOMIC_SEQ_CST);
	char id[32], *body = malloc((size_t)o->body_bytes + 1);

	memset(body, 'b', (size_t)o->body_bytes);
	body[o->body_bytes] = '\0';
	for (int i = me; i < r->messages; i += o->producers) {
		struct persist_publish p = {
		    .channel_id = r->channel_ids[i % o->channels],
		    .author_id = 1 + me,
		    .client_msg_id = id,
		    .body = body,
		    .body_len = (size_t)o->body_bytes,
		};
		snprintf(id, sizeof(id), "b%d-%d-%d", getpid(), r->rate, i);
		if (o->text)
			bench_text_body(body, o->body_bytes, i);
		if (r->rate > 0) {
			/* Open loop: latency counts from when the message was due,
			 * so a stalled writer cannot hide its stall (coordinated
			 * omission). */
			uint64_t due =
			    r->start_ns + (uint64_t)i * 1000000000ull / (uint64_t)r->rate;
			while (time_mono_ns() < due)
				usleep(50);
			r->submit_ns[i] = due;
		} else {
			r->submit_ns[i] = time_mono_ns();
		}
		while (persist_writer_submit(r->w, &p, (void *)(uintptr_t)i) == -EAGAIN)
			usleep(100);
	}
	free(body);
	return NULL;
}

static int64_t *make_channels(PGconn *conn, int n, const char *tag)
{
	int64_t *ids = calloc((size_t)n, sizeof(*ids));
	char sql[256];

	for (int i = 0; i < n; i++) {
		snprintf(
		    sql, sizeof(sql),
		    "INSERT INTO channels (name, kind) VALUES ('bench-%s-%d-%ld-%d', 'public') "
		    "RETURNING id",
		    tag, getpid(), (long)time_real_us(), i);
		PGresult *res = PQexec(conn, sql);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			fprintf(stderr, "fanout-bench: %s", PQresultErrorMessage(res));
			exit(1);
		}
		ids[i] = atol(PQgetvalue(res, 0, 0));
		PQclear(res);
	}
	return ids;
}

static void report(const char *name, int n, double seconds, uint64_t *lat, int failed)
{
	qsort(lat, (size_t)n, sizeof(*lat), cmp_u64);
	printf("%-26s %10d %12.0f %9.2f %9.2f %9.2f %7d\n", name, n, n / seconds,
	       percentile_ms(lat, n, 0.50), percentile_ms(lat, n, 0.99),
	       percentile_ms(lat, n, 0.999), failed);
}

/* A batched run. label names it (NULL: saturated or offered-load); rows,
 * when given, receives its figures for the JSON result. */
static double run_batched(const struct persist_opts *o, PGconn *conn, int messages, int rate,
			  const char *label, json_t *rows)
{
	struct run r = {.o = o, .messages = messages, .rate = rate};
	char name[64];
	struct persist_writer_config cfg = {
	    .dsn = o->dsn,
	    .batch_max = o->batch_max,
	    .batch_window_us = o->batch_window_us,
	    .writers = o->writers,
	    .copy_min_rows = o->copy_min_rows,
	    .queue_max = 200000,
	    .dedup_cache = 262144,
	};
	pthread_t threads[o->producers];
	uint64_t start;
	double seconds, index_ms;
	char since[64] = "", backends[1024] = "";

	r.channel_ids = make_channels(conn, o->channels, "batched");
	r.latency_ns = calloc((size_t)messages, sizeof(uint64_t));
	r.submit_ns = calloc((size_t)messages, sizeof(uint64_t));
	bench_pg_since(conn, since, sizeof(since));
	r.w = persist_writer_create(&cfg, on_commit, &r);
	if (r.w == NULL) {
		perror("fanout-bench: writer");
		exit(1);
	}
	while (!persist_writer_connected(r.w))
		usleep(1000);
	start = r.start_ns = time_mono_ns();
	for (int i = 0; i < o->producers; i++)
		pthread_create(&threads[i], NULL, producer_main, &r);
	for (int i = 0; i < o->producers; i++)
		pthread_join(threads[i], NULL);
	while (atomic_load(&r.done) < messages)
		usleep(500);
	seconds = (double)(time_mono_ns() - start) / 1e9;
	if (since[0])
		bench_pg_backends_cpu(conn, since, seconds, backends, sizeof(backends));
	/* The search index follows the commits (persist/indexer.c): how far
	 * behind the last one it was. */
	start = time_mono_ns();
	index_ms = persist_writer_search_flush(r.w, 300000) == 0
		       ? (double)(time_mono_ns() - start) / 1e6
		       : -1;
	persist_writer_destroy(r.w);
	if (label)
		snprintf(name, sizeof(name), "%s", label);
	else if (rate > 0)
		snprintf(name, sizeof(name), "batched, %d/s offered", rate);
	else
		snprintf(name, sizeof(name), "batched, saturated");
	report(name, messages, seconds, r.latency_ns, atomic_load(&r.failed));
	printf("  search index: caught up %.0f ms after the last commit%s\n", index_ms,
	       index_ms < 0 ? " (not within 300 s)" : "");
	fputs(backends, stdout);
	if (rows)
		json_array_append_new(
		    rows, json_pack("{s:s, s:i, s:i, s:f, s:f, s:f, s:f, s:i, s:f}", "run", name,
				    "batch_max", o->batch_max, "batch_window_us",
				    o->batch_window_us, "durable_per_s", messages / seconds,
				    "p50_ms", percentile_ms(r.latency_ns, messages, 0.5), "p99_ms",
				    percentile_ms(r.latency_ns, messages, 0.99), "p999_ms",
				    percentile_ms(r.latency_ns, messages, 0.999), "failed",
				    atomic_load(&r.failed), "index_catchup_ms", index_ms));
	free(r.channel_ids);
	free(r.latency_ns);
	free(r.submit_ns);
	return messages / seconds;
}

/* The naive writer: what a first implementation does. One transaction per
 * message, the same fenced append statement, strictly sequential. */
static double run_naive(const struct persist_opts *o, PGconn *conn)
{
	int64_t *channels = make_channels(conn, o->channels, "naive");
	int64_t *heads = calloc((size_t)o->channels, sizeof(*heads));
	uint64_t *lat = calloc((size_t)o->naive_messages, sizeof(*lat));
	char *body = malloc((size_t)o->body_bytes + 1), id[32], c[24], old[24], author[8];
	uint64_t start = time_mono_ns();
	int failed = 0;
	double seconds;

	memset(body, 'b', (size_t)o->body_bytes);
	body[o->body_bytes] = '\0';
	snprintf(author, sizeof(author), "1");
	for (int i = 0; i < o->naive_messages; i++) {
		int ch = i % o->channels;
		uint64_t t0 = time_mono_ns();
		const char *params[6] = {c, old, author, id, body, NULL};
		PGresult *res;

		snprintf(c, sizeof(c), "%ld", (long)channels[ch]);
		snprintf(old, sizeof(old), "%ld", (long)heads[ch]);
		snprintf(id, sizeof(id), "n%d-%d", getpid(), i);
		PQclear(PQexec(conn, "BEGIN"));
		res = PQexecParams(
		    conn,
		    "WITH head AS (UPDATE channels SET last_seq = $2::int8 + 1 "
		    "WHERE id = $1::int8 AND last_seq = $2::int8 RETURNING id) "
		    "INSERT INTO messages (channel_id, seq, author_id, client_msg_id, "
		    "kind, body, created_at, mentions) SELECT head.id, $2::int8 + 1, $3::int8, "
		    "$4, 'message', $5, now(), fanout_mentions($5) FROM head",
		    5, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK || strcmp(PQcmdTuples(res), "1") != 0)
			failed++;
		PQclear(res);
		PQclear(PQexec(conn, "COMMIT"));
		heads[ch]++;
		lat[i] = time_mono_ns() - t0;
	}
	seconds = (double)(time_mono_ns() - start) / 1e9;
	report("naive (1 tx per message)", o->naive_messages, seconds, lat, failed);
	free(channels);
	free(heads);
	free(lat);
	free(body);
	return o->naive_messages / seconds;
}

/* pg_stat_wal's counters now: WAL records, bytes, syncs, and the time the
 * syncs took in ms (0 unless track_wal_io_timing is on). */
static void wal_counters(PGconn *conn, double out[4])
{
	PGresult *res = PQexec(conn, "SELECT wal_records, wal_bytes, wal_sync, wal_sync_time "
				     "FROM pg_stat_wal");

	for (int i = 0; i < 4; i++)
		out[i] = PQresultStatus(res) == PGRES_TUPLES_OK ? atof(PQgetvalue(res, 0, i)) : 0;
	PQclear(res);
}

/* Where the offered-load run's time went inside the writer (its stage
 * histograms over that run: bucket upper bounds, so "<= x ms"), and what
 * PostgreSQL's WAL did meanwhile. */
static void report_stages(const struct persist_writer_stages *before, const double wal0[4],
			  PGconn *conn)
{
	struct persist_writer_stages after;
	const struct {
		const char *name;
		const struct metric_histogram *now, *then;
	} rows[] = {
	    {"queue (submit to batch)", &after.queue, &before->queue},
	    {"batch transaction", &after.commit, &before->commit},
	    {"submit to durable", &after.durable, &before->durable},
	    {"settled to callback done", &after.callback, &before->callback},
	};
	double wal[4];

	persist_writer_stages(&after);
	wal_counters(conn, wal);
	printf("  stages of the offered-load run   p50 ms    p99 ms  (bucket bounds)\n");
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		printf("  %-30s %8.2f  %8.2f\n", rows[i].name,
		       metric_histogram_quantile_since(rows[i].now, rows[i].then, 0.5) * 1e3,
		       metric_histogram_quantile_since(rows[i].now, rows[i].then, 0.99) * 1e3);
	printf(
	    "  batches %llu; WAL: %.0f records, %.1f MB, %.0f syncs (%.2f ms each on average%s)\n",
	    (unsigned long long)(atomic_load(&after.commit.count) -
				 atomic_load(&before->commit.count)),
	    wal[0] - wal0[0], (wal[1] - wal0[1]) / 1e6, wal[2] - wal0[2],
	    wal[2] > wal0[2] ? (wal[3] - wal0[3]) / (wal[2] - wal0[2]) : 0,
	    wal[3] > wal0[3] ? "" : "; track_wal_io_timing is off");
}

/* The persist run's figures as JSON (--json): the batched runs as printed
 * (rows), the naive writer's rate, the COPY ceiling and the writer's
 * fraction of it (null where not measured). 0, or -EIO (said on stderr). */
static int write_persist_json(const struct persist_opts *o, json_t *rows, double batched,
			      double naive, double ceiling, double copy_cores)
{
	json_t *r;

	if (o->json == NULL)
		return 0;
	r = json_pack("{s:s, s:o, s:f}", "scenario", "persist", "runs", rows, "naive_per_s", naive);
	json_object_set_new(r, "ceiling_rows_per_s",
			    ceiling > 0 ? json_real(ceiling) : json_null());
	json_object_set_new(r, "writer_of_ceiling",
			    ceiling > 0 ? json_real(batched / ceiling) : json_null());
	json_object_set_new(r, "copy_backend_cores",
			    copy_cores >= 0 ? json_real(copy_cores) : json_null());
	return load_write_json(o->json, r);
}

int bench_persist(int argc, char **argv)
{
	static const struct option options[] = {
	    {"dsn", required_argument, NULL, 'd'},
	    {"messages", required_argument, NULL, 'n'},
	    {"naive-messages", required_argument, NULL, 'N'},
	    {"channels", required_argument, NULL, 'c'},
	    {"producers", required_argument, NULL, 'p'},
	    {"batch-max", required_argument, NULL, 'b'},
	    {"body-bytes", required_argument, NULL, 's'},
	    {"rate", required_argument, NULL, 'r'},
	    {"writers", required_argument, NULL, 'w'},
	    {"copy-min", required_argument, NULL, 'C'},
	    {"sweep", no_argument, NULL, 'W'},
	    {"text", no_argument, NULL, 't'},
	    {"json", required_argument, NULL, 'j'},
	    {NULL, 0, NULL, 0},
	};
	struct persist_opts o = {
	    .dsn = getenv("FANOUT_PG_DSN") ? getenv("FANOUT_PG_DSN")
					   : "host=127.0.0.1 port=55432 dbname=fanout user=fanout",
	    .messages = 200000,
	    .naive_messages = 5000,
	    .channels = 64,
	    .producers = 4,
	    .batch_max = 1024,
	    .body_bytes = 100,
	    .rate = 20000,
	    .writers = 1,
	    .copy_min_rows = 256, /* fanoutd's default */
	};
	char err[512];
	double batched, naive, ceiling, copy_cores = -1;
	json_t *rows;
	int rc;
	PGconn *conn;
	int opt;

	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 'd':
			o.dsn = optarg;
			break;
		case 'n':
			o.messages = atoi(optarg);
			break;
		case 'N':
			o.naive_messages = atoi(optarg);
			break;
		case 'c':
			o.channels = atoi(optarg);
			break;
		case 'p':
			o.producers = atoi(optarg);
			break;
		case 'b':
			o.batch_max = atoi(optarg);
			break;
		case 's':
			o.body_bytes = atoi(optarg);
			break;
		case 'r':
			o.rate = atoi(optarg);
			break;
		case 'w':
			o.writers = atoi(optarg);
			break;
		case 'C':
			o.copy_min_rows = atoi(optarg);
			break;
		case 'W':
			o.sweep = true;
			break;
		case 't':
			o.text = true;
			break;
		case 'j':
			o.json = optarg;
			break;
		default:
			fprintf(stderr, "usage: fanout-bench persist [--dsn DSN] [--messages N] "
					"[--naive-messages N] [--channels N] [--producers N] "
					"[--batch-max N] [--body-bytes N] [--rate N] [--writers N] "
					"[--copy-min N] [--sweep] [--text] [--json FILE]\n");
			return 2;
		}
	}
	if (o.messages < 1 || o.naive_messages < 1 || o.channels < 1 || o.producers < 1 ||
	    o.producers > 64 || o.batch_max < 1 || o.body_bytes < 0 || o.body_bytes > 65536 ||
	    o.rate < 0 || o.writers < 1 || o.writers > PERSIST_WRITERS_MAX || o.copy_min_rows < 0) {
		fprintf(stderr,
			"fanout-bench persist: counts must be positive (producers at most "
			"64, writers at most %d, body at most 65536 bytes)\n",
			PERSIST_WRITERS_MAX);
		return 2;
	}
	conn = pg_connect_as(o.dsn, "bench", false, err, sizeof(err));
	if (conn == NULL) {
		fprintf(stderr, "fanout-bench: %s\n", err);
		return 1;
	}
	if (migrate_apply(conn, err, sizeof(err)) < 0) {
		fprintf(stderr, "fanout-bench: %s\n", err);
		return 1;
	}
	printf("fanout-bench persist: %d channels, %d producer threads, %d writer lane%s, "
	       "batch_max %d, copy_min_rows %d, %d-byte bodies, synchronous_commit on, %s\n",
	       o.channels, o.producers, o.writers, o.writers == 1 ? "" : "s", o.batch_max,
	       o.copy_min_rows, o.body_bytes, alloc_name());
	printf("%-26s %10s %12s %9s %9s %9s %7s\n", "writer", "messages", "durable/s", "p50 ms",
	       "p99 ms", "p99.9 ms", "failed");
	if (o.sweep) {
		/* W6: how batch size and the linger window trade durable
		 * messages per second against latency. */
		static const int sizes[] = {1, 16, 64, 256, 1024, 4096};
		static const int windows[] = {0, 2000};

		rows = json_array();
		for (size_t w = 0; w < sizeof(windows) / sizeof(windows[0]); w++) {
			for (size_t b = 0; b < sizeof(sizes) / sizeof(sizes[0]); b++) {
				struct persist_opts one = o;
				char name[64];

				one.batch_max = sizes[b];
				one.batch_window_us = windows[w];
				snprintf(name, sizeof(name), "batch %d, window %d us", sizes[b],
					 windows[w]);
				run_batched(&one, conn, o.messages, 0, name, rows);
			}
		}
		rc = load_write_json(o.json,
				     json_pack("{s:s, s:o}", "scenario", "W6", "runs", rows));
		PQfinish(conn);
		return rc < 0 ? 1 : 0;
	}
	rows = o.json ? json_array() : NULL;
	batched = run_batched(&o, conn, o.messages, 0, NULL, rows);
	if (o.rate > 0) {
		/* Five seconds of offered load, at least one message per producer. */
		long n = (long)o.rate * 5;
		struct persist_writer_stages before;
		double wal0[4];

		persist_writer_stages(&before);
		wal_counters(conn, wal0);
		run_batched(&o, conn, (int)(n < o.producers ? o.producers : n), o.rate, NULL, rows);
		report_stages(&before, wal0, conn);
	}
	naive = run_naive(&o, conn);
	ceiling =
	    bench_copy_ceiling(conn, o.messages, o.channels, o.body_bytes, o.text, &copy_cores);
	printf("throughput, batched saturated / naive: %.1fx\n", batched / naive);
	if (ceiling > 0)
		printf("ceiling: one COPY of %d such rows into a table with the same keys: %.0f "
		       "rows/s durable; the writer (batched, saturated) at %.2f of it\n",
		       o.messages, ceiling, batched / ceiling);
	if (ceiling > 0 && copy_cores >= 0)
		printf("  the COPY's backend was busy %.2f of a core over it\n", copy_cores);
	printf("latency: per message, from submit (saturated, naive) or from its due time "
	       "(offered load) to the durable callback\n");
	PQfinish(conn);
	rc = write_persist_json(&o, rows, batched, naive, ceiling, copy_cores);
	return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("fanout-bench %s\n", FANOUT_VERSION);
		return 0;
	}
	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		fprintf(argc < 2 ? stderr : stdout,
			"usage: fanout-bench SCENARIO [options]\n"
			"scenarios:\n"
			"  persist   batched vs naive durable writer\n"
			"  fanout    W1: one hot channel over the socket edge\n"
			"  groups    W2: many small channels (DMs and groups of 10)\n"
			"  capacity  W7: idle connections, server heap per connection\n"
			"  nats      W1 against nats-server's websocket listener\n"
			"  nats-groups  W2 against nats-server's websocket listener\n"
			"  dpdk-null deliveries/s of one DPDK lcore into net_null\n"
			"  failover  one trial: kill a channel's owner, time the new owner's ack\n"
			"  lcore-publish  a publish's cost to its worker, with and without the "
			"hand-off\n"
			"  wake      how late this host wakes a sleeping thread\n");
		return argc < 2 ? 2 : 0;
	}
	log_setup(LOG_LEVEL_WARN, LOG_FORMAT_TEXT, 2);
	alloc_init();
	if (strcmp(argv[1], "persist") == 0)
		return bench_persist(argc - 1, argv + 1);
	if (strcmp(argv[1], "fanout") == 0)
		return bench_fanout(argc - 1, argv + 1);
	if (strcmp(argv[1], "groups") == 0)
		return bench_groups(argc - 1, argv + 1);
	if (strcmp(argv[1], "capacity") == 0)
		return bench_capacity(argc - 1, argv + 1);
	if (strcmp(argv[1], "dpdk-null") == 0)
		return bench_dpdk_null(argc - 1, argv + 1);
	if (strcmp(argv[1], "nats-groups") == 0)
		return bench_nats_groups(argc - 1, argv + 1);
	if (strcmp(argv[1], "nats") == 0)
		return bench_nats(argc - 1, argv + 1);
	if (strcmp(argv[1], "failover") == 0)
		return bench_failover(argc - 1, argv + 1);
	if (strcmp(argv[1], "lcore-publish") == 0)
		return bench_lcore_publish(argc - 1, argv + 1);
	if (strcmp(argv[1], "wake") == 0)
		return bench_wake(argc - 1, argv + 1);
	fprintf(stderr, "fanout-bench: unknown scenario '%s'\n", argv[1]);
	return 2;
}
