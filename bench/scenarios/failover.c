/* SPDX-License-Identifier: BSD-3-Clause */
/* fanout-bench failover: one trial of an owner's death under load. A
 * publisher on one node publishes into a channel at a constant rate, open
 * loop; a subscriber on another node receives it; neither node owns the
 * channel. After a warm-up the trial sends SIGKILL to the owner (its pid is
 * given) and measures, from that instant:
 *
 *   ack       the first ack of a publish *sent after the kill*: only a new
 *             owner can have committed it;
 *   delivery  that message's arrival at the subscriber on the other node.
 *
 * bench/failover starts the cluster, runs 20 trials (restarting the killed
 * node between them) and prints p50 and p99 of both (docs/benchmarks.md).
 *
 * With --db the pids are a PostgreSQL primary's whole member (Patroni, its
 * postmaster and backends, as a host dying) and publisher and subscriber
 * may share a node: the first ack of a publish sent after the kill is then
 * the first commit on the promoted standby (bench/failover-db). */
#include "bench.h"
#include "clock.h"
#include "load.h"
#include "wsclient.h"

#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SENT 1000000 /* publishes in one trial, at most */
#define RECENT	 4096
#define MAX_PIDS 64 /* killed at the same instant */

struct trial {
	struct ws *pub, *sub;
	int64_t channel;
	bool sub_ready, pub_open;
	int64_t nsent, acked;
	uint64_t tag;	     /* in every client_msg_id: fo-<tag>-<n> */
	uint8_t *acked_bits; /* publish n was acknowledged: MAX_SENT bits */
	uint64_t killed_ns;
	int64_t first_after; /* the first publish number sent after the kill */
	int64_t ack_seq;     /* the seq of the first ack among those, 0 until then */
	uint64_t ack_ns, delivery_ns;
	int errors;
	/* The subscriber's recent deliveries: the broadcast can reach the other
	 * node before the ack reaches the publisher. */
	struct {
		int64_t seq;
		uint64_t at_ns;
	} recent[RECENT];
	unsigned nrecent;
};

static struct trial *T;
static const char *what_acks = "new-owner"; /* --db: "post-kill" */

static void on_open(struct ws *ws, void *user)
{
	if (ws == T->pub)
		T->pub_open = true;
}

static void on_pub_text(const char *data, size_t len)
{
	int64_t n, seq;

	if (!load_has(data, len, "\"type\":\"ack\"")) {
		T->errors += load_has(data, len, "\"type\":\"error\"");
		return;
	}
	T->acked++;
	n = load_field(data, len, "\"req\":\"");
	seq = load_field(data, len, "\"seq\":");
	if (n > 0 && n < MAX_SENT)
		T->acked_bits[n / 8] |= (uint8_t)(1u << (n % 8));
	if (T->killed_ns && T->ack_seq == 0 && n >= T->first_after && T->first_after > 0) {
		T->ack_seq = seq;
		T->ack_ns = time_mono_ns();
		for (unsigned i = 0; i < RECENT && i < T->nrecent; i++)
			if (T->recent[i].seq == seq)
				T->delivery_ns = T->recent[i].at_ns;
	}
}

static void on_text(struct ws *ws, void *user, const char *data, size_t len)
{
	char req[128];
	int k;

	if (ws == T->pub) {
		on_pub_text(data, len);
		return;
	}
	if (!T->sub_ready) {
		if (load_has(data, len, "\"type\":\"subscribed\"")) {
			T->sub_ready = true;
		} else if (load_has(data, len, "\"type\":\"hello\"")) {
			k = snprintf(req, sizeof(req),
				     "{\"type\":\"subscribe\",\"req\":\"s\",\"channels\":[{"
				     "\"channel\":%lld}]}",
				     (long long)T->channel);
			ws_send_text(ws, req, (size_t)k);
		}
		return;
	}
	if (!load_has(data, len, "\"type\":\"message\""))
		return;
	int64_t seq = load_field(data, len, "\"seq\":");
	uint64_t now = time_mono_ns();

	T->recent[T->nrecent % RECENT].seq = seq;
	T->recent[T->nrecent % RECENT].at_ns = now;
	T->nrecent++;
	if (T->ack_seq && !T->delivery_ns && seq == T->ack_seq)
		T->delivery_ns = now;
}

static void on_close(struct ws *ws, void *user, int code)
{
	fprintf(stderr, "fanout-bench: the %s closed: %s\n",
		ws == T->pub ? "publisher" : "subscriber", ws_why(ws));
}

static void publish_one(void)
{
	char msg[256];
	int64_t n = T->nsent + 1;
	int k = snprintf(msg, sizeof(msg),
			 "{\"type\":\"publish\",\"req\":\"%lld\",\"channel\":%lld,"
			 "\"text\":\"failover %lld\",\"client_msg_id\":\"fo-%llx-%lld\"}",
			 (long long)n, (long long)T->channel, (long long)n,
			 (unsigned long long)T->tag, (long long)n);

	if (n >= MAX_SENT || ws_send_text(T->pub, msg, (size_t)k) < 0)
		return;
	T->nsent = n;
	if (T->killed_ns && T->first_after == 0)
		T->first_after = n;
}

/* Splits "host:port". */
static int parse_target(const char *arg, char *host, size_t n, int *port)
{
	const char *colon = strrchr(arg, ':');

	if (colon == NULL || (size_t)(colon - arg) >= n)
		return -1;
	memcpy(host, arg, (size_t)(colon - arg));
	host[colon - arg] = 0;
	*port = atoi(colon + 1);
	return *port > 0 ? 0 : -1;
}

static int failover_usage(void)
{
	fprintf(stderr, "usage: fanout-bench failover --pub HOST:PORT --sub HOST:PORT --channel ID "
			"--kill PID[,PID...] [--db] [--rate PER_S] [--warmup-ms N] "
			"[--timeout-ms N] [--json FILE]\n"
			"  FANOUT_JWT_SECRET: the nodes' token secret. Prints the time from the\n"
			"  SIGKILL to the first ack by the new owner (--db: of a publish sent\n"
			"  after the kill of a PostgreSQL primary's pids) and to its delivery.\n");
	return 2;
}

/* Parses "PID[,PID...]" into pids; the count, or -1. */
static int parse_pids(const char *arg, int *pids)
{
	int n = 0;

	for (const char *p = arg; *p; p += *p == ',') {
		char *end;
		long v = strtol(p, &end, 10);

		if (end == p || v <= 1 || n == MAX_PIDS || (*end && *end != ','))
			return -1;
		pids[n++] = (int)v;
		p = end;
	}
	return n ? n : -1;
}

static int failover_run(struct ws_loop *loop, int rate, int warmup_ms, int timeout_ms,
			const int *pids, int npids)
{
	uint64_t start = time_mono_ns(), next = start, period = 1000000000ull / (uint64_t)rate;
	uint64_t deadline = start + 10ull * 1000000000ull;

	while (!(T->pub_open && T->sub_ready) && time_mono_ns() < deadline)
		ws_loop_run(loop, 10);
	if (!(T->pub_open && T->sub_ready)) {
		fprintf(stderr, "fanout-bench: could not connect and subscribe\n");
		return 1;
	}
	start = next = time_mono_ns();
	deadline = start + (uint64_t)(warmup_ms + timeout_ms) * 1000000ull;
	while (time_mono_ns() < deadline && !T->delivery_ns) {
		uint64_t now = time_mono_ns();

		if (!T->killed_ns && now - start >= (uint64_t)warmup_ms * 1000000ull) {
			if (T->acked == 0) {
				fprintf(stderr, "fanout-bench: no ack in the warm-up\n");
				return 1;
			}
			for (int i = 0; i < npids; i++)
				kill(pids[i], SIGKILL);
			T->killed_ns = time_mono_ns();
		}
		while (next <= now) {
			publish_one();
			next += period;
		}
		ws_loop_run(loop, 1);
	}
	return 0;
}

/* Prints the trial; its JSON has every acknowledged client_msg_id, so a
 * caller can check each is stored (bench/failover-db does). */
static void report(const char *json_path)
{
	double ack_ms = (double)(T->ack_ns - T->killed_ns) / 1e6;
	double del_ms = (double)(T->delivery_ns - T->killed_ns) / 1e6;
	json_t *ids;
	char id[64];

	printf("failover: kill -> first %s ack %.1f ms, -> its delivery %.1f ms (%lld sent, %lld "
	       "acked, %d errors)\n",
	       what_acks, ack_ms, del_ms, (long long)T->nsent, (long long)T->acked, T->errors);
	if (json_path == NULL)
		return;
	ids = json_array();
	for (int64_t n = 1; n <= T->nsent; n++) {
		if (!(T->acked_bits[n / 8] & (1u << (n % 8))))
			continue;
		snprintf(id, sizeof(id), "fo-%llx-%lld", (unsigned long long)T->tag, (long long)n);
		json_array_append_new(ids, json_string(id));
	}
	load_write_json(json_path, json_pack("{s:s, s:f, s:f, s:I, s:I, s:i, s:o}", "scenario",
					     what_acks[0] == 'p' ? "failover-db" : "failover",
					     "ack_ms", ack_ms, "delivery_ms", del_ms, "sent",
					     (json_int_t)T->nsent, "acked", (json_int_t)T->acked,
					     "errors", T->errors, "acked_ids", ids));
}

int bench_failover(int argc, char **argv)
{
	static const struct option options[] = {
	    {"pub", required_argument, NULL, 'p'},
	    {"sub", required_argument, NULL, 's'},
	    {"channel", required_argument, NULL, 'c'},
	    {"kill", required_argument, NULL, 'k'},
	    {"rate", required_argument, NULL, 'r'},
	    {"warmup-ms", required_argument, NULL, 'w'},
	    {"timeout-ms", required_argument, NULL, 't'},
	    {"json", required_argument, NULL, 'j'},
	    {"db", no_argument, NULL, 'd'},
	    {NULL, 0, NULL, 0},
	};
	struct load_target pt = {.secret = getenv("FANOUT_JWT_SECRET"), .sources = 1}, st = pt;
	char ph[64] = "", sh[64] = "", token[512], path[640];
	int rate = 200, warmup_ms = 1500, timeout_ms = 15000, pids[MAX_PIDS], npids = 0, opt, rc;
	const char *json_path = NULL;
	struct ws_handlers h = {on_open, on_text, on_close};
	struct trial trial = {0};
	struct ws_loop *loop;

	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (opt == 'p')
			rc = parse_target(optarg, ph, sizeof(ph), &pt.port);
		else if (opt == 's')
			rc = parse_target(optarg, sh, sizeof(sh), &st.port);
		else if (opt == 'c')
			rc = (trial.channel = atoll(optarg)) > 0 ? 0 : -1;
		else if (opt == 'k')
			rc = npids = parse_pids(optarg, pids);
		else if (opt == 'd')
			rc = (what_acks = "post-kill") ? 0 : -1;
		else if (opt == 'r')
			rc = (rate = atoi(optarg)) > 0 && rate <= 10000 ? 0 : -1;
		else if (opt == 'w')
			rc = (warmup_ms = atoi(optarg)) >= 100 ? 0 : -1;
		else if (opt == 't')
			rc = (timeout_ms = atoi(optarg)) >= 1000 ? 0 : -1;
		else if (opt == 'j')
			rc = (json_path = optarg) ? 0 : -1;
		else
			rc = -1;
		if (rc < 0)
			return failover_usage();
	}
	if (!ph[0] || !sh[0] || !trial.channel || npids < 1 || !pt.secret)
		return failover_usage();
	pt.host = ph;
	st.host = sh;
	loop = ws_loop_create(&h);
	if (loop == NULL)
		return 1;
	T = &trial;
	trial.tag = (uint64_t)time_real_us();
	trial.acked_bits = calloc(MAX_SENT / 8 + 1, 1);
	if (trial.acked_bits == NULL) {
		ws_loop_destroy(loop);
		return 1;
	}
	load_token(&pt, "bench-failover-pub", token, sizeof(token));
	snprintf(path, sizeof(path), "/ws?token=%s", token);
	trial.pub = ws_connect(loop, pt.host, pt.port, path, NULL, NULL);
	load_token(&st, "bench-failover-sub", token, sizeof(token));
	snprintf(path, sizeof(path), "/ws?token=%s", token);
	trial.sub = ws_connect(loop, st.host, st.port, path, NULL, NULL);
	rc = trial.pub && trial.sub ? failover_run(loop, rate, warmup_ms, timeout_ms, pids, npids)
				    : 1;
	if (rc == 0 && trial.delivery_ns)
		report(json_path);
	else if (rc == 0) {
		fprintf(stderr, "fanout-bench: no %s ack delivered within %d ms of the kill\n",
			what_acks, timeout_ms);
		rc = 1;
	}
	free(trial.acked_bits);
	ws_close(trial.pub);
	ws_close(trial.sub);
	ws_loop_destroy(loop);
	return rc;
}
