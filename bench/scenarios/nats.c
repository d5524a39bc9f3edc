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
#include "buf.h"
#include "clock.h"
#include "hist.h"
#include "load.h"
#include "wsclient.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUBJECT "bench.hot"

struct nats_peer {
	struct ws *ws;
	bool subscriber;
	bool ready;    /* our PING was answered: CONNECT and SUB are in effect */
	struct buf in; /* protocol bytes not yet parsed */
	struct seq_check seq;
};

static struct {
	int ready, closed;
	uint64_t errors;
	struct hist latency;
} N;

static void send_proto(struct nats_peer *p, const char *text, size_t len)
{
	ws_send_binary(p->ws, text, len);
}

static void on_open(struct ws *ws, void *user)
{
}

/* Handles one MSG payload. */
static void on_payload(struct nats_peer *p, const char *data, size_t len, uint64_t now)
{
	int64_t seq = load_field(data, len, "seq="), due = load_field(data, len, "due=");

	if (seq > 0)
		seq_check(&p->seq, seq);
	if (due > 0 && now >= (uint64_t)due)
		hist_record(&N.latency, now - (uint64_t)due);
}

/* Parses whatever complete protocol lines and messages p->in holds. */
static void parse(struct nats_peer *p, uint64_t now)
{
	size_t off = 0;

	for (;;) {
		char *line = p->in.data + off, *eol = memmem(line, p->in.len - off, "\r\n", 2);
		size_t line_len;

		if (eol == NULL)
			break;
		line_len = (size_t)(eol - line);
		if (line_len >= 4 && memcmp(line, "MSG ", 4) == 0) {
			/* MSG <subject> <sid> [reply-to] <#bytes> */
			const char *last = memrchr(line, ' ', line_len);
			size_t bytes = last ? strtoul(last + 1, NULL, 10) : 0;
			size_t need = line_len + 2 + bytes + 2;

			if (p->in.len - off < need)
				break; /* the payload is still coming */
			on_payload(p, eol + 2, bytes, now);
			off += need;
			continue;
		}
		if (line_len >= 4 && memcmp(line, "PING", 4) == 0) {
			send_proto(p, "PONG\r\n", 6);
		} else if (line_len >= 4 && memcmp(line, "PONG", 4) == 0) {
			if (!p->ready) {
				p->ready = true;
				N.ready++;
			}
		} else if (line_len >= 4 && memcmp(line, "INFO", 4) == 0) {
			char proto[256];
			int n = snprintf(proto, sizeof(proto),
					 "CONNECT {\"verbose\":false,\"pedantic\":false,"
					 "\"protocol\":1}\r\n%sPING\r\n",
					 p->subscriber ? "SUB " SUBJECT " 1\r\n" : "");
			send_proto(p, proto, (size_t)n);
		} else if (line_len >= 4 && memcmp(line, "-ERR", 4) == 0) {
			N.errors++;
		}
		off += line_len + 2;
	}
	memmove(p->in.data, p->in.data + off, p->in.len - off);
	p->in.len -= off;
}

static void on_data(struct ws *ws, void *user, const char *data, size_t len)
{
	struct nats_peer *p = user;

	if (buf_put(&p->in, data, len) < 0) {
		fprintf(stderr, "fanout-bench: out of memory\n");
		exit(1);
	}
	parse(p, time_mono_ns());
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
	char src[20], *payload, head[64];
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
		subs[i].subscriber = true;
		subs[i].ws =
		    ws_connect(loop, t.host, t.port, "/", load_source(&t, i, src), &subs[i]);
		if (subs[i].ws == NULL) {
			perror("fanout-bench: connect");
			return 1;
		}
		if (i % 256 == 255)
			ws_loop_run(loop, 0); /* keep the handshakes moving */
	}
	pub.ws = ws_connect(loop, t.host, t.port, "/", NULL, &pub);
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
	end = start + (uint64_t)seconds * 1000000000ull;
	while (time_mono_ns() < end) {
		uint64_t now = time_mono_ns();
		while (start + sent * 1000000000ull / (uint64_t)rate <= now) {
			uint64_t due = start + sent * 1000000000ull / (uint64_t)rate;
			int n = snprintf(payload, (size_t)size + 64, "seq=%lu due=%lu ",
					 (unsigned long)sent + 1, (unsigned long)due);
			int hn;

			if (n < size) {
				memset(payload + n, 'x', (size_t)(size - n));
				n = size;
			}
			memcpy(payload + n, "\r\n", 2);
			hn = snprintf(head, sizeof(head), "PUB " SUBJECT " %d\r\n", n);
			/* One frame per PUB: header, payload and terminator. */
			char frame[32768 + 128];
			memcpy(frame, head, (size_t)hn);
			memcpy(frame + hn, payload, (size_t)n + 2);
			send_proto(&pub, frame, (size_t)(hn + n + 2));
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
	double secs = (double)(time_mono_ns() - start) / 1e9;
	uint64_t rx = 0, gaps = 0, dups = 0, reorders = 0, behind = 0;
	for (int i = 0; i < subscribers; i++) {
		struct seq_check *c = &subs[i].seq;
		rx += c->received;
		gaps += c->gaps;
		dups += c->dups;
		reorders += c->reorders;
		if (c->last < (int64_t)sent)
			behind += sent - (uint64_t)c->last;
	}
	printf("published %lu, errors %lu, connections closed %d\n", (unsigned long)sent,
	       (unsigned long)N.errors, N.closed);
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
		ws_close(subs[i].ws);
		buf_free(&subs[i].in);
	}
	ws_close(pub.ws);
	buf_free(&pub.in);
	ws_loop_destroy(loop);
	free(subs);
	free(payload);
	return 0;
}
