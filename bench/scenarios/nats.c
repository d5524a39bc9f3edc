/* SPDX-License-Identifier: BSD-3-Clause */
/* fanout-bench nats: W1 (one hot channel) against nats-server's websocket
 * listener, for a side-by-side with fanout at equal offered load. The same
 * client, pacing, due-time latency and seq checks as bench/scenarios/fanout.c; the
 * NATS protocol (INFO, CONNECT, SUB, PUB, MSG, PING/PONG) spoken over the
 * websocket by a small streaming parser. The seq is a counter in the payload.
 *
 * What differs, and must be said beside any ratio: NATS core neither stores a
 * message nor acknowledges it; fanout's durable channel commits every
 * message to PostgreSQL before broadcasting it. Compare with fanout's
 * ephemeral channels for like against like. */
#include "bench.h"
#include "clock.h"
#include "hist.h"
#include "load.h"
#include "natsproto.h"
#include "wsclient.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUBJECT "bench.hot"

struct nats_peer {
	struct nats_conn c; /* first: the parser hands back &c */
	struct seq_check seq;
};

static struct {
	int ready, closed;
	struct hist latency;
} N;

static void on_open(struct ws *ws, void *user)
{
}

/* Handles one MSG payload. */
static void on_msg(struct nats_conn *c, const char *subject, size_t subject_len, const char *data,
		   size_t len)
{
	struct nats_peer *p = (struct nats_peer *)c;
	uint64_t now = time_mono_ns();
	int64_t seq = load_field(data, len, "seq="), due = load_field(data, len, "due=");

	if (seq > 0)
		seq_check(&p->seq, seq);
	if (due > 0 && now >= (uint64_t)due)
		hist_record(&N.latency, now - (uint64_t)due);
}

static void on_data(struct ws *ws, void *user, const char *data, size_t len)
{
	struct nats_peer *p = user;

	if (nats_feed(&p->c, data, len, on_msg))
		N.ready++;
}

static void on_close(struct ws *ws, void *user, int code)
{
	N.closed++;
}

int bench_nats(int argc, char **argv)
{
	static const struct option options[] = {
	    LOAD_OPTIONS,
	    {"subscribers", required_argument, NULL, 'n'},
	    {"rate", required_argument, NULL, 'r'},
	    {"seconds", required_argument, NULL, 't'},
	    {"size", required_argument, NULL, 's'},
	    {NULL, 0, NULL, 0},
	};
	struct load_target t = {.host = "127.0.0.1", .port = 8443, .sources = 1};
	int subscribers = 100, rate = 1000, seconds = 10, size = 64, opt;
	const char *json_path = NULL;
	struct ws_handlers h = {on_open, on_data, on_close};
	struct nats_peer *subs, pub = {0};
	char src[20], *payload;
	struct ws_loop *loop;
	uint64_t sent = 0, start, end, deadline;

	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 'n':
			subscribers = atoi(optarg);
			break;
		case 'r':
			rate = atoi(optarg);
			break;
		case 't':
			seconds = atoi(optarg);
			break;
		case 's':
			size = atoi(optarg);
			break;
		default:
			if (!load_option(opt, optarg, &t, &json_path))
				subscribers = -1;
		}
	}
	if (subscribers < 1 || rate < 1 || seconds < 1 || size < 32 || size > 32768 || t.port < 1 ||
	    t.sources < 1) {
		fprintf(stderr,
			"usage: fanout-bench nats [--host A] [--port N (nats-server's "
			"websocket port)] [--subscribers N] [--rate MSGS_PER_S] [--seconds N] "
			"[--size BYTES] [--sources N] [--json FILE]\n");
		return 2;
	}
	load_raise_fd_limit();
	loop = ws_loop_create(&h);
	subs = calloc((size_t)subscribers, sizeof(*subs));
	payload = malloc((size_t)size + 64);
	for (int i = 0; i < subscribers; i++) {
		subs[i].c.subscribe = "SUB " SUBJECT " 1\r\n";
		subs[i].c.ws =
		    ws_connect(loop, t.host, t.port, "/", load_source(&t, i, src), &subs[i]);
		if (subs[i].c.ws == NULL) {
			perror("fanout-bench: connect");
			return 1;
		}
		if (i % 256 == 255)
			ws_loop_run(loop, 0); /* keep the handshakes moving */
	}
	pub.c.ws = ws_connect(loop, t.host, t.port, "/", NULL, &pub);
	deadline = time_mono_ns() + 60ull * 1000000000ull;
	/* Any connection refused or closed while setting up is an error now,
	 * not a wait for the deadline. */
	while (N.ready < subscribers + 1 && N.closed == 0 && time_mono_ns() < deadline)
		ws_loop_run(loop, 10);
	if (N.ready < subscribers + 1) {
		fprintf(stderr, "fanout-bench: only %d of %d NATS connections ready\n", N.ready,
			subscribers + 1);
		return 1;
	}
	printf("fanout-bench nats: subject %s, %d subscribers, %d msg/s offered for %d s, %d-byte "
	       "payload, nats-server websocket at %s:%d\n",
	       SUBJECT, subscribers, rate, seconds, size, t.host, t.port);
	start = time_mono_ns();
	cpu_window_start();
	end = start + (uint64_t)seconds * 1000000000ull;
	while (time_mono_ns() < end) {
		uint64_t now = time_mono_ns();
		while (start + sent * 1000000000ull / (uint64_t)rate <= now) {
			uint64_t due = start + sent * 1000000000ull / (uint64_t)rate;
			int n = snprintf(payload, (size_t)size + 64, "seq=%lu due=%lu ",
					 (unsigned long)sent + 1, (unsigned long)due);

			if (n < size) {
				memset(payload + n, 'x', (size_t)(size - n));
				n = size;
			}
			nats_publish(&pub.c, SUBJECT, payload, (size_t)n);
			sent++;
		}
		ws_loop_run(loop, 1);
	}
	deadline = time_mono_ns() + 10ull * 1000000000ull;
	for (;;) {
		bool done = true;
		for (int i = 0; done && i < subscribers; i++)
			done = subs[i].seq.last >= (int64_t)sent;
		if (done || time_mono_ns() > deadline)
			break;
		ws_loop_run(loop, 10);
	}
	cpu_window_stop();
	double secs = (double)(time_mono_ns() - start) / 1e9;
	uint64_t rx = 0, gaps = 0, dups = 0, reorders = 0, behind = 0, errors = pub.c.errors;
	for (int i = 0; i < subscribers; i++) {
		struct seq_check *c = &subs[i].seq;
		errors += subs[i].c.errors;
		rx += c->received;
		gaps += c->gaps;
		dups += c->dups;
		reorders += c->reorders;
		if (c->last < (int64_t)sent)
			behind += sent - (uint64_t)c->last;
	}
	printf("published %lu, errors %lu, connections closed %d\n", (unsigned long)sent,
	       (unsigned long)errors, N.closed);
	printf("deliveries %lu in %.1f s: %.0f deliveries/s (offered %lu/s)\n", (unsigned long)rx,
	       secs, rx / secs, (unsigned long)rate * (unsigned long)subscribers);
	json_t *latency = load_latency_report(&N.latency);
	printf("order: gaps %lu, duplicates %lu, reordered %lu; not delivered when the tail ended: "
	       "%lu (NATS core drops for slow consumers: at most once)\n",
	       (unsigned long)gaps, (unsigned long)dups, (unsigned long)reorders,
	       (unsigned long)behind);
	load_write_json(
	    json_path,
	    json_pack(
		"{s:s, s:s, s:i, s:i, s:i, s:i, s:I, s:I, s:f, s:f, s:o, s:{s:I, s:I, s:I, s:I}}",
		"scenario", "W1", "system", "nats", "subscribers", subscribers, "rate", rate,
		"seconds", seconds, "size", size, "published", (json_int_t)sent, "deliveries",
		(json_int_t)rx, "deliveries_per_s", rx / secs, "offered_deliveries_per_s",
		(double)rate * subscribers, "latency_ms", latency, "order", "gaps",
		(json_int_t)gaps, "duplicates", (json_int_t)dups, "reordered", (json_int_t)reorders,
		"undelivered", (json_int_t)behind));
	for (int i = 0; i < subscribers; i++) {
		ws_close(subs[i].c.ws);
		nats_conn_free(&subs[i].c);
	}
	ws_close(pub.c.ws);
	nats_conn_free(&pub.c);
	ws_loop_destroy(loop);
	free(subs);
	free(payload);
	return 0;
}
