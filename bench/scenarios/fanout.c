/* fanout-bench fanout (scenario W1): one hot channel over the socket edge.
 * One publisher sends at a constant rate (open loop); N subscribers receive
 * every message. Each message carries the time it was due, and latency runs
 * from then to its arrival at each subscriber, so a stalled server cannot
 * hide its stall (coordinated omission). Every subscriber checks seq order.
 *
 * The server must let one connection publish at the offered rate:
 * [server] publish_rate and publish_burst above --rate (docs/benchmarks.md). */
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

struct peer {
	struct ws *ws;
	int index;
	bool ready; /* subscribed */
	bool slow;  /* W5: alternates between reading and not */
	struct seq_check seq;
};

struct run {
	struct peer *subs;
	struct peer pub;
	int64_t channel;
	int ready;
	int64_t acked, errors, rate_limited, last_acked_seq;
	int closed;
	int64_t lagged;
	struct hist latency, slow_latency;
};

static struct run *R;

static void on_open(struct ws *ws, void *user)
{
}

static void on_text(struct ws *ws, void *user, const char *data, size_t len)
{
	struct peer *p = user;
	uint64_t now = time_mono_ns();
	int64_t seq, due;

	if (p == &R->pub) {
		if (load_has(data, len, "\"type\":\"ack\"")) {
			R->acked++;
			seq = load_field(data, len, "\"seq\":");
			if (seq > R->last_acked_seq)
				R->last_acked_seq = seq;
		} else if (load_has(data, len, "\"type\":\"error\"")) {
			R->errors++;
			if (load_has(data, len, "rate_limited"))
				R->rate_limited++;
		}
		return;
	}
	if (!p->ready) {
		if (load_has(data, len, "\"type\":\"subscribed\"")) {
			p->ready = true;
			R->ready++;
		} else if (load_has(data, len, "\"type\":\"hello\"")) {
			char req[128];
			int n = snprintf(req, sizeof(req),
					 "{\"type\":\"subscribe\",\"req\":\"s\",\"channels\":[{"
					 "\"channel\":%ld}]}",
					 (long)R->channel);
			ws_send_text(ws, req, (size_t)n);
		}
		return;
	}
	if (load_has(data, len, "\"type\":\"lagged\""))
		R->lagged++;
	if (!load_has(data, len, "\"type\":\"message\""))
		return;
	seq = load_field(data, len, "\"seq\":");
	due = load_field(data, len, "due=");
	seq_check(&p->seq, seq);
	if (due > 0 && now >= (uint64_t)due)
		hist_record(p->slow ? &R->slow_latency : &R->latency, now - (uint64_t)due);
}

static void on_close(struct ws *ws, void *user, int code)
{
	R->closed++;
}

int bench_fanout(int argc, char **argv)
{
	static const struct option options[] = {
	    LOAD_OPTIONS,
	    {"subscribers", required_argument, NULL, 'n'},
	    {"rate", required_argument, NULL, 'r'},
	    {"seconds", required_argument, NULL, 't'},
	    {"size", required_argument, NULL, 's'},
	    {"ephemeral", no_argument, NULL, 'e'},
	    {"slow", required_argument, NULL, 'w'},
	    {NULL, 0, NULL, 0},
	};
	struct load_target t = {
	    .host = "127.0.0.1", .port = 8080, .secret = getenv("FANOUT_JWT_SECRET"), .sources = 1};
	int subscribers = 100, rate = 1000, seconds = 10, size = 64, opt;
	const char *json_path = NULL;
	bool ephemeral = false;
	int slow_percent = 0;
	struct ws_handlers h = {on_open, on_text, on_close};
	struct run run = {0};
	char token[512], name[96], path[640], user[64], src[20], *text;
	struct ws_loop *loop;
	uint64_t sent = 0, deadline, start, end, next_report = 1;

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
		case 'e':
			ephemeral = true;
			break;
		case 'w':
			slow_percent = atoi(optarg);
			break;
		default:
			if (!load_option(opt, optarg, &t, &json_path))
				subscribers = -1;
		}
	}
	if (slow_percent < 0 || slow_percent > 100)
		subscribers = -1;
	if (subscribers < 1 || rate < 1 || seconds < 1 || size < 16 || size > 32768 || t.port < 1 ||
	    t.sources < 1 || t.sources > 60000 || !t.secret) {
		fprintf(stderr,
			"usage: fanout-bench fanout [--host A] [--port N] [--subscribers N] "
			"[--rate MSGS_PER_S] [--seconds N] [--size BYTES] [--sources N] "
			"[--ephemeral] [--slow PERCENT] [--api HOST:PORT] [--json FILE]\n"
			"FANOUT_JWT_SECRET must hold the server's token secret.\n");
		return 2;
	}
	R = &run;
	loop = ws_loop_create(&h);
	run.subs = calloc((size_t)subscribers, sizeof(*run.subs));
	text = malloc((size_t)size + 256);

	/* A fresh channel, joined by every subscriber. */
	snprintf(name, sizeof(name), "bench-%d-%ld", getpid(), (long)time(NULL));
	run.channel =
	    load_create_channel(&t, "bench-pub", name, ephemeral ? "ephemeral" : "public");
	if (run.channel < 0)
		return 1;
	/* Every join first: the blocking HTTP calls must not hold back the
	 * handshakes of connections already opened (the server closes a
	 * connection that stays silent past its handshake timeout). */
	for (int i = 0; i < subscribers; i++) {
		snprintf(user, sizeof(user), "bench-sub-%d", i);
		if (load_join(&t, user, run.channel) < 0) {
			fprintf(stderr, "fanout-bench: %s cannot join\n", user);
			return 1;
		}
	}
	load_raise_fd_limit();
	for (int i = 0; i < subscribers; i++) {
		snprintf(user, sizeof(user), "bench-sub-%d", i);
		load_token(&t, user, token, sizeof(token));
		snprintf(path, sizeof(path), "/ws?token=%s", token);
		run.subs[i].index = i;
		/* W5: slow_percent of the subscribers, spread over the list. */
		run.subs[i].slow = (i * slow_percent) / 100 != ((i + 1) * slow_percent) / 100;
		run.subs[i].ws =
		    ws_connect(loop, t.host, t.port, path, load_source(&t, i, src), &run.subs[i]);
		if (run.subs[i].ws == NULL) {
			perror("fanout-bench: connect");
			return 1;
		}
		if (i % 256 == 255)
			ws_loop_run(loop, 0); /* keep the handshakes moving */
	}
	load_token(&t, "bench-pub", token, sizeof(token));
	snprintf(path, sizeof(path), "/ws?token=%s", token);
	run.pub.index = -1;
	run.pub.ws = ws_connect(loop, t.host, t.port, path, NULL, &run.pub);
	deadline = time_mono_ns() + 60ull * 1000000000ull;
	while (run.ready < subscribers && run.closed == 0 && time_mono_ns() < deadline)
		ws_loop_run(loop, 10);
	if (run.ready < subscribers) {
		fprintf(stderr, "fanout-bench: only %d of %d subscribers ready (%d closed)\n",
			run.ready, subscribers, run.closed);
		return 1;
	}
	for (int i = 0; i < 50; i++)
		ws_loop_run(loop, 10); /* the publisher's hello */

	printf("fanout-bench fanout: 1 %s channel, %d subscribers from %d source address(es), %d "
	       "msg/s offered for %d s, %d-byte text, %s:%d\n",
	       ephemeral ? "ephemeral" : "durable", subscribers, t.sources, rate, seconds, size,
	       t.host, t.port);
	start = time_mono_ns();
	end = start + (uint64_t)seconds * 1000000000ull;
	while (time_mono_ns() < end) {
		uint64_t now = time_mono_ns();
		/* Everything due by now goes out now, stamped with when it was due. */
		while (start + sent * 1000000000ull / (uint64_t)rate <= now) {
			uint64_t due = start + sent * 1000000000ull / (uint64_t)rate;
			int n =
			    snprintf(text, (size_t)size + 256,
				     "{\"type\":\"publish\",\"channel\":%ld,\"client_msg_id\":"
				     "\"b%lu\",\"text\":\"due=%lu ",
				     (long)run.channel, (unsigned long)sent, (unsigned long)due);
			int pad = size - 24 > 0 ? size - 24 : 0;
			memset(text + n, 'x', (size_t)pad);
			n += pad;
			n += snprintf(text + n, 8, "\"}");
			ws_send_text(run.pub.ws, text, (size_t)n);
			sent++;
		}
		ws_loop_run(loop, 1);
		/* Slow subscribers read for 200 ms of every second. */
		if (slow_percent) {
			bool reading = (now - start) / 1000000ull % 1000 < 200;
			for (int i = 0; i < subscribers; i++)
				if (run.subs[i].slow)
					ws_pause(run.subs[i].ws, !reading);
		}
		if ((now - start) / 1000000000ull >= next_report) {
			uint64_t rx = 0;
			for (int i = 0; i < subscribers; i++)
				rx += run.subs[i].seq.received;
			printf("  t=%2lus sent %lu acked %ld deliveries %lu p99 %.2f ms\n",
			       (unsigned long)next_report, (unsigned long)sent, (long)run.acked,
			       (unsigned long)rx, (double)hist_quantile(&run.latency, 0.99) / 1e6);
			fflush(stdout);
			next_report++;
		}
	}
	/* Let the tail arrive; the slow ones read freely now. */
	for (int i = 0; i < subscribers; i++)
		ws_pause(run.subs[i].ws, false);
	deadline = time_mono_ns() + 10ull * 1000000000ull;
	for (;;) {
		bool done = run.acked + run.errors >= (int64_t)sent;
		for (int i = 0; done && i < subscribers; i++)
			done = run.subs[i].seq.last >= run.last_acked_seq;
		if (done || time_mono_ns() > deadline)
			break;
		ws_loop_run(loop, 10);
	}
	double secs = (double)(time_mono_ns() - start) / 1e9;
	uint64_t rx = 0, dups = 0, gaps = 0, reorders = 0, behind = 0;
	for (int i = 0; i < subscribers; i++) {
		struct seq_check *c = &run.subs[i].seq;
		rx += c->received;
		dups += c->dups;
		gaps += c->gaps;
		reorders += c->reorders;
		if (c->last < run.last_acked_seq)
			behind += (uint64_t)(run.last_acked_seq - c->last);
	}
	printf("published %lu, acked %ld, errors %ld (rate limited %ld), connections closed %d\n",
	       (unsigned long)sent, (long)run.acked, (long)run.errors, (long)run.rate_limited,
	       run.closed);
	printf("deliveries %lu in %.1f s: %.0f deliveries/s (offered %lu/s)\n", (unsigned long)rx,
	       secs, rx / secs, (unsigned long)rate * (unsigned long)subscribers);
	json_t *latency = load_latency_report(&run.latency);
	printf("order: gaps %lu, duplicates %lu, reordered %lu; acked but not yet delivered when "
	       "the 10 s tail ended: %lu\n",
	       (unsigned long)gaps, (unsigned long)dups, (unsigned long)reorders,
	       (unsigned long)behind);
	if (slow_percent)
		printf(
		    "slow subscribers (%d%%, reading 200 ms a second): p50 %.2f ms  p99 %.2f ms  "
		    "max %.2f ms; lagged notices %ld\n",
		    slow_percent, hist_quantile(&run.slow_latency, 0.5) / 1e6,
		    hist_quantile(&run.slow_latency, 0.99) / 1e6,
		    (double)run.slow_latency.max / 1e6, (long)run.lagged);
	if (behind)
		printf("note: undelivered deliveries mean the server is past saturation (they are "
		       "durable and still on their way), not lost\n");
	if (run.rate_limited)
		printf(
		    "warning: the server rate-limited the publisher; raise [server] publish_rate "
		    "and publish_burst above --rate\n");
	load_write_json(
	    json_path,
	    json_pack(
		"{s:s, s:s, s:i, s:i, s:i, s:i, s:I, s:I, s:f, s:f, s:o, s:{s:I, s:I, s:I, s:I}}",
		"scenario", slow_percent ? "W5" : "W1", "channel_kind",
		ephemeral ? "ephemeral" : "durable", "subscribers", subscribers, "rate", rate,
		"seconds", seconds, "size", size, "published", (json_int_t)sent, "deliveries",
		(json_int_t)rx, "deliveries_per_s", rx / secs, "offered_deliveries_per_s",
		(double)rate * subscribers, "latency_ms", latency, "order", "gaps",
		(json_int_t)gaps, "duplicates", (json_int_t)dups, "reordered", (json_int_t)reorders,
		"undelivered", (json_int_t)behind));
	for (int i = 0; i < subscribers; i++)
		ws_close(run.subs[i].ws);
	ws_close(run.pub.ws);
	ws_loop_destroy(loop);
	free(run.subs);
	free(text);
	/* A gap is a broken promise; slowness is a figure, not a failure. An
	 * ephemeral channel may drop under load by design. */
	return gaps && !ephemeral ? 1 : 0;
}
