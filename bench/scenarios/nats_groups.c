/* SPDX-License-Identifier: BSD-3-Clause */
/* fanout-bench nats-groups: W2 (many small channels) against nats-server's
 * websocket listener, for a side-by-side with `fanout-bench groups` at equal
 * offered load. The same shape: every user subscribes to its 10-member group
 * (subject g.<n>) and its DM (subject dm.<n>, with the next user); every
 * connection publishes, the offered rate spread evenly over them and
 * alternating between the group and the DM. NATS assigns no seq, so each
 * payload carries its publisher and a counter per (publisher, subject), and
 * every subscriber checks one stream per (subject, publisher): NATS keeps
 * order per publishing connection, not across them. As in nats.c: NATS core
 * neither stores nor acknowledges a message. */
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

struct nats_user {
	struct nats_conn c; /* first: the parser hands back &c */
	char subscribe[96];
	int64_t sent_group, sent_dm;	/* this user's counters per subject */
	struct seq_check group_seq[10]; /* per publisher in the group */
	struct seq_check dm_seq[2];	/* per publisher in the DM */
};

static struct {
	struct nats_user *users;
	int ready, closed;
	struct hist latency;
} NG;

static void on_open(struct ws *ws, void *user)
{
}

static void on_msg(struct nats_conn *c, const char *subject, size_t subject_len, const char *data,
		   size_t len)
{
	struct nats_user *u = (struct nats_user *)c;
	uint64_t now = time_mono_ns();
	int64_t pub = load_field(data, len, "pub="), pseq = load_field(data, len, "pseq="),
		due = load_field(data, len, "due=");
	bool group = subject_len > 2 && memcmp(subject, "g.", 2) == 0;

	if (pub < 0 || pseq < 1)
		return;
	if (group)
		seq_check(&u->group_seq[pub % 10], pseq);
	else
		seq_check(&u->dm_seq[pub % 2], pseq);
	if (due > 0 && now >= (uint64_t)due)
		hist_record(&NG.latency, now - (uint64_t)due);
}

static void on_data(struct ws *ws, void *user, const char *data, size_t len)
{
	struct nats_user *u = user;

	if (nats_feed(&u->c, data, len, on_msg))
		NG.ready++;
}

static void on_close(struct ws *ws, void *user, int code)
{
	NG.closed++;
}

/* Deliveries so far and the order counters over every stream. */
static void totals(int nusers, uint64_t *rx, uint64_t *gaps, uint64_t *dups, uint64_t *reorders)
{
	*rx = *gaps = *dups = *reorders = 0;
	for (int i = 0; i < nusers; i++) {
		for (int k = 0; k < 12; k++) {
			struct seq_check *c =
			    k < 10 ? &NG.users[i].group_seq[k] : &NG.users[i].dm_seq[k - 10];
			*rx += c->received;
			*gaps += c->gaps;
			*dups += c->dups;
			*reorders += c->reorders;
		}
	}
}

int bench_nats_groups(int argc, char **argv)
{
	static const struct option options[] = {
	    LOAD_OPTIONS,
	    {"users", required_argument, NULL, 'n'},
	    {"rate", required_argument, NULL, 'r'},
	    {"seconds", required_argument, NULL, 't'},
	    {NULL, 0, NULL, 0},
	};
	struct load_target t = {.host = "127.0.0.1", .port = 8443, .sources = 1};
	int nusers = 100, rate = 500, seconds = 10, opt;
	const char *json_path = NULL;
	struct ws_handlers h = {on_open, on_data, on_close};
	char src[20], subject[32], text[128];
	struct ws_loop *loop;
	uint64_t sent = 0, expected = 0, start, end, deadline, rx, gaps, dups, reorders, errors = 0;

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
		default:
			if (!load_option(opt, optarg, &t, &json_path))
				nusers = -1;
		}
	}
	if (nusers < 10 || nusers % 10 || rate < 1 || seconds < 1 || t.port < 1 || t.sources < 1) {
		fprintf(stderr,
			"usage: fanout-bench nats-groups [--host A] [--port N (nats-server's "
			"websocket port)] [--users N (a multiple of 10)] [--rate MSGS_PER_S] "
			"[--seconds N] [--sources N] [--json FILE]\n");
		return 2;
	}
	load_raise_fd_limit();
	loop = ws_loop_create(&h);
	NG.users = calloc((size_t)nusers, sizeof(*NG.users));
	for (int i = 0; i < nusers; i++) {
		struct nats_user *u = &NG.users[i];

		snprintf(u->subscribe, sizeof(u->subscribe), "SUB g.%d 1\r\nSUB dm.%d 2\r\n",
			 i / 10, i / 2);
		u->c.subscribe = u->subscribe;
		u->c.ws = ws_connect(loop, t.host, t.port, "/", load_source(&t, i, src), u);
		if (u->c.ws == NULL) {
			perror("fanout-bench: connect");
			return 1;
		}
		if (i % 256 == 255)
			ws_loop_run(loop, 0); /* keep the handshakes moving */
	}
	deadline = time_mono_ns() + 60ull * 1000000000ull;
	while (NG.ready < nusers && NG.closed == 0 && time_mono_ns() < deadline)
		ws_loop_run(loop, 10);
	if (NG.ready < nusers) {
		fprintf(stderr, "fanout-bench: only %d of %d NATS connections ready\n", NG.ready,
			nusers);
		return 1;
	}
	printf("fanout-bench nats-groups: %d users, %d groups of 10, %d DMs, %d msg/s offered for "
	       "%d s, nats-server websocket at %s:%d\n",
	       nusers, nusers / 10, nusers / 2, rate, seconds, t.host, t.port);
	start = time_mono_ns();
	cpu_window_start();
	end = start + (uint64_t)seconds * 1000000000ull;
	while (time_mono_ns() < end) {
		uint64_t now = time_mono_ns();
		while (start + sent * 1000000000ull / (uint64_t)rate <= now) {
			uint64_t due = start + sent * 1000000000ull / (uint64_t)rate;
			int i = (int)(sent % (uint64_t)nusers);
			struct nats_user *u = &NG.users[i];
			bool dm = (sent / (uint64_t)nusers) % 2;
			int64_t pseq = dm ? ++u->sent_dm : ++u->sent_group;
			int n = snprintf(text, sizeof(text), "pub=%d pseq=%ld due=%lu", i,
					 (long)pseq, (unsigned long)due);

			snprintf(subject, sizeof(subject), dm ? "dm.%d" : "g.%d",
				 dm ? i / 2 : i / 10);
			nats_publish(&u->c, subject, text, (size_t)n);
			expected += dm ? 2 : 10;
			sent++;
		}
		ws_loop_run(loop, 1);
	}
	deadline = time_mono_ns() + 10ull * 1000000000ull;
	do {
		ws_loop_run(loop, 10);
		totals(nusers, &rx, &gaps, &dups, &reorders);
	} while (rx < expected && time_mono_ns() < deadline);
	cpu_window_stop();
	double secs = (double)(time_mono_ns() - start) / 1e9;
	for (int i = 0; i < nusers; i++)
		errors += NG.users[i].c.errors;
	printf("published %lu, errors %lu, connections closed %d\n", (unsigned long)sent,
	       (unsigned long)errors, NG.closed);
	printf("deliveries %lu in %.1f s: %.0f deliveries/s (expected %lu)\n", (unsigned long)rx,
	       secs, rx / secs, (unsigned long)expected);
	json_t *latency = load_latency_report(&NG.latency);
	printf("order: gaps %lu, duplicates %lu, reordered %lu; not delivered when the tail ended: "
	       "%lu (NATS core drops for slow consumers: at most once)\n",
	       (unsigned long)gaps, (unsigned long)dups, (unsigned long)reorders,
	       (unsigned long)(expected - rx));
	load_write_json(json_path,
			json_pack("{s:s, s:s, s:i, s:i, s:i, s:I, s:I, s:I, s:f, s:o, s:{s:I, "
				  "s:I, s:I, s:I}}",
				  "scenario", "W2", "system", "nats", "users", nusers, "rate", rate,
				  "seconds", seconds, "published", (json_int_t)sent, "expected",
				  (json_int_t)expected, "deliveries", (json_int_t)rx,
				  "deliveries_per_s", rx / secs, "latency_ms", latency, "order",
				  "gaps", (json_int_t)gaps, "duplicates", (json_int_t)dups,
				  "reordered", (json_int_t)reorders, "undelivered",
				  (json_int_t)(expected - rx)));
	for (int i = 0; i < nusers; i++) {
		ws_close(NG.users[i].c.ws);
		nats_conn_free(&NG.users[i].c);
	}
	ws_loop_destroy(loop);
	free(NG.users);
	return 0;
}
