/* SPDX-License-Identifier: BSD-3-Clause */
/* fanout-bench groups (scenario W2): many small channels. Every user is in
 * one DM (with the next user) and one 10-member group; every connection
 * publishes, the offered rate spread evenly over them and alternating
 * between the group and the DM. Latency is from each message's due time;
 * every (subscriber, channel) stream checks seq order. With --ephemeral the
 * groups are ephemeral channels and each pair an ephemeral channel of two
 * members instead of a DM (a DM is durable by definition): the same
 * deliveries, nothing stored, for the durable run's counterpart. */
#include "bench.h"
#include "clock.h"
#include "hist.h"
#include "load.h"
#include "wsclient.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct user {
	struct ws *ws;
	int64_t group, dm;
	bool ready;
	struct seq_check group_seq, dm_seq;
};

static struct {
	struct user *users;
	int ready, closed;
	int64_t acked, errors;
	struct hist latency;
} G;

static void on_open(struct ws *ws, void *arg)
{
}

static void on_text(struct ws *ws, void *arg, const char *data, size_t len)
{
	struct user *u = arg;
	uint64_t now = time_mono_ns();
	int64_t channel, seq, due;

	if (!u->ready) {
		if (load_has(data, len, "\"type\":\"subscribed\"")) {
			u->ready = true;
			G.ready++;
		} else if (load_has(data, len, "\"type\":\"hello\"")) {
			char req[192];
			int n = snprintf(req, sizeof(req),
					 "{\"type\":\"subscribe\",\"req\":\"s\",\"channels\":[{"
					 "\"channel\":%ld},{\"channel\":%ld}]}",
					 (long)u->group, (long)u->dm);
			ws_send_text(ws, req, (size_t)n);
		}
		return;
	}
	if (load_has(data, len, "\"type\":\"ack\"")) {
		G.acked++;
		return;
	}
	if (load_has(data, len, "\"type\":\"error\"")) {
		G.errors++;
		return;
	}
	if (!load_has(data, len, "\"type\":\"message\""))
		return;
	channel = load_field(data, len, "\"channel\":");
	seq = load_field(data, len, "\"seq\":");
	due = load_field(data, len, "due=");
	seq_check(channel == u->group ? &u->group_seq : &u->dm_seq, seq);
	if (due > 0 && now >= (uint64_t)due)
		hist_record(&G.latency, now - (uint64_t)due);
}

static void on_close(struct ws *ws, void *arg, int code)
{
	G.closed++;
}

/* Deliveries so far and the order counters over every stream. */
static void totals(int nusers, uint64_t *rx, uint64_t *gaps, uint64_t *dups, uint64_t *reorders)
{
	*rx = *gaps = *dups = *reorders = 0;
	for (int i = 0; i < nusers; i++) {
		struct seq_check *c[2] = {&G.users[i].group_seq, &G.users[i].dm_seq};
		for (int k = 0; k < 2; k++) {
			*rx += c[k]->received;
			*gaps += c[k]->gaps;
			*dups += c[k]->dups;
			*reorders += c[k]->reorders;
		}
	}
}

/* A pair's channel: their DM, or with ephemeral an ephemeral channel of the
 * two. Its id, or -1. */
static int64_t pair_channel(const struct load_target *t, const char *a, const char *b,
			    bool ephemeral, long tag, int i)
{
	char name[96];
	int64_t id;

	if (!ephemeral)
		return load_dm(t, a, b);
	snprintf(name, sizeof(name), "bench-p-%ld-%d", tag, i / 2);
	id = load_create_channel(t, a, name, "ephemeral");
	return id < 0 || load_join(t, b, id) < 0 ? -1 : id;
}

int bench_groups(int argc, char **argv)
{
	static const struct option options[] = {
	    LOAD_OPTIONS,
	    {"users", required_argument, NULL, 'n'},
	    {"rate", required_argument, NULL, 'r'},
	    {"seconds", required_argument, NULL, 't'},
	    {"ephemeral", no_argument, NULL, 'e'},
	    {NULL, 0, NULL, 0},
	};
	struct load_target t = {
	    .host = "127.0.0.1", .port = 8080, .secret = getenv("FANOUT_JWT_SECRET"), .sources = 1};
	int nusers = 100, rate = 500, seconds = 10, opt;
	bool ephemeral = false;
	const char *json_path = NULL;
	struct ws_handlers h = {on_open, on_text, on_close};
	char token[512], path[640], name[96], a[64], b[64], src[20], text[256];
	struct ws_loop *loop;
	uint64_t sent = 0, expected = 0, start, end, deadline;
	long tag = (long)getpid();

	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 'n':
			nusers = atoi(optarg);
			break;
		case 'r':
			rate = atoi(optarg);
			break;
		case 't':
			seconds = atoi(optarg);
			break;
		case 'e':
			ephemeral = true;
			break;
		default:
			if (!load_option(opt, optarg, &t, &json_path))
				nusers = -1;
		}
	}
	if (nusers < 10 || nusers % 10 || rate < 1 || seconds < 1 || t.port < 1 || t.sources < 1 ||
	    !t.secret) {
		fprintf(stderr, "usage: fanout-bench groups [--host A] [--port N] [--users N (a "
				"multiple of 10)] [--rate MSGS_PER_S] [--seconds N] [--ephemeral] "
				"[--sources N] "
				"[--json FILE]\n"
				"FANOUT_JWT_SECRET must hold the server's token secret.\n");
		return 2;
	}
	G.users = calloc((size_t)nusers, sizeof(*G.users));
	/* Groups of ten and DMs of pairs, made through the HTTP API. */
	for (int g = 0; g < nusers / 10; g++) {
		int64_t id;
		snprintf(name, sizeof(name), "bench-g-%ld-%d", tag, g);
		snprintf(a, sizeof(a), "bench-u-%ld-%d", tag, g * 10);
		id = load_create_channel(&t, a, name, ephemeral ? "ephemeral" : "public");
		if (id < 0)
			return 1;
		for (int i = g * 10; i < g * 10 + 10; i++) {
			snprintf(b, sizeof(b), "bench-u-%ld-%d", tag, i);
			if (i != g * 10 && load_join(&t, b, id) < 0)
				return 1;
			G.users[i].group = id;
		}
	}
	for (int i = 0; i < nusers; i += 2) {
		snprintf(a, sizeof(a), "bench-u-%ld-%d", tag, i);
		snprintf(b, sizeof(b), "bench-u-%ld-%d", tag, i + 1);
		G.users[i].dm = G.users[i + 1].dm = pair_channel(&t, a, b, ephemeral, tag, i);
		if (G.users[i].dm < 0)
			return 1;
	}
	loop = ws_loop_create(&h);
	load_raise_fd_limit();
	for (int i = 0; i < nusers; i++) {
		snprintf(a, sizeof(a), "bench-u-%ld-%d", tag, i);
		load_token(&t, a, token, sizeof(token));
		snprintf(path, sizeof(path), "/ws?token=%s", token);
		G.users[i].ws =
		    ws_connect(loop, t.host, t.port, path, load_source(&t, i, src), &G.users[i]);
		if (G.users[i].ws == NULL) {
			perror("fanout-bench: connect");
			return 1;
		}
		if (i % 256 == 255)
			ws_loop_run(loop, 0); /* keep the handshakes moving */
	}
	deadline = time_mono_ns() + 60ull * 1000000000ull;
	while (G.ready < nusers && time_mono_ns() < deadline)
		ws_loop_run(loop, 10);
	if (G.ready < nusers) {
		fprintf(stderr, "fanout-bench: only %d of %d users ready\n", G.ready, nusers);
		return 1;
	}
	printf(
	    "fanout-bench groups: %d users, %d %s groups of 10, %d %s, %d msg/s offered for %d s, "
	    "%s:%d\n",
	    nusers, nusers / 10, ephemeral ? "ephemeral" : "durable", nusers / 2,
	    ephemeral ? "ephemeral pairs" : "DMs", rate, seconds, t.host, t.port);
	start = time_mono_ns();
	cpu_window_start();
	end = start + (uint64_t)seconds * 1000000000ull;
	while (time_mono_ns() < end) {
		uint64_t now = time_mono_ns();
		while (start + sent * 1000000000ull / (uint64_t)rate <= now) {
			uint64_t due = start + sent * 1000000000ull / (uint64_t)rate;
			struct user *u = &G.users[sent % (uint64_t)nusers];
			int64_t channel = (sent / (uint64_t)nusers) % 2 ? u->dm : u->group;
			int n = snprintf(text, sizeof(text),
					 "{\"type\":\"publish\",\"channel\":%ld,\"client_msg_id\":"
					 "\"g%lu\",\"text\":\"due=%lu\"}",
					 (long)channel, (unsigned long)sent, (unsigned long)due);
			ws_send_text(u->ws, text, (size_t)n);
			expected += channel == u->dm ? 2 : 10;
			sent++;
		}
		ws_loop_run(loop, 1);
	}
	/* The tail: until every member has every message (or 10 s), so that
	 * deliveries/s is measured like nats-groups measures it. */
	deadline = time_mono_ns() + 10ull * 1000000000ull;
	uint64_t rx, gaps, dups, reorders;
	do {
		ws_loop_run(loop, 10);
		totals(nusers, &rx, &gaps, &dups, &reorders);
	} while ((G.acked + G.errors < (int64_t)sent || rx < expected) &&
		 time_mono_ns() < deadline);
	cpu_window_stop();
	double secs = (double)(time_mono_ns() - start) / 1e9;
	printf("published %lu, acked %ld, errors %ld\n", (unsigned long)sent, (long)G.acked,
	       (long)G.errors);
	printf("deliveries %lu in %.1f s: %.0f deliveries/s (expected %lu)\n", (unsigned long)rx,
	       secs, rx / secs, (unsigned long)expected);
	json_t *latency = load_latency_report(&G.latency);
	printf("order: gaps %lu, duplicates %lu, reordered %lu\n", (unsigned long)gaps,
	       (unsigned long)dups, (unsigned long)reorders);
	load_write_json(json_path,
			json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:I, s:I, s:I, s:f, s:o, "
				  "s:{s:I, s:I, s:I}}",
				  "scenario", "W2", "system", "fanout", "channel_kind",
				  ephemeral ? "ephemeral" : "durable", "users", nusers, "rate",
				  rate, "seconds", seconds, "published", (json_int_t)sent,
				  "expected", (json_int_t)expected, "deliveries", (json_int_t)rx,
				  "deliveries_per_s", rx / secs, "latency_ms", latency, "order",
				  "gaps", (json_int_t)gaps, "duplicates", (json_int_t)dups,
				  "reordered", (json_int_t)reorders));
	for (int i = 0; i < nusers; i++)
		ws_close(G.users[i].ws);
	ws_loop_destroy(loop);
	free(G.users);
	/* An ephemeral channel may drop under load by design. */
	return gaps && !ephemeral ? 1 : 0;
}
