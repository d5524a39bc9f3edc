/* fanout-bench fanout: one hot channel over the socket edge. One publisher
 * sends at a constant rate (open loop); N subscribers receive every message.
 * Each message carries the time it was due, and latency runs from then to
 * its arrival at each subscriber, so a stalled server cannot hide its stall
 * (coordinated omission). Every subscriber checks seq order and counts lost,
 * duplicated and out-of-order messages.
 *
 * The server must let one connection publish at the offered rate:
 * [server] publish_rate and publish_burst above --rate (docs/benchmarks.md). */
#include "bench.h"
#include "clock.h"
#include "hist.h"
#include "jwt.h"
#include "wsclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct opts {
	const char *host;
	int port;
	const char *secret;
	int subscribers;
	int rate;
	int seconds;
	int size;
};

struct peer {
	struct ws *ws;
	int index;
	bool ready; /* subscribed */
	bool closed;
	int64_t last_seq;
	uint64_t received, dups, gaps, reordered;
};

struct run {
	const struct opts *o;
	struct peer *subs;
	struct peer pub;
	int64_t channel;
	int ready;
	uint64_t start_ns;
	int64_t acked, errors, rate_limited;
	int64_t last_acked_seq;
	struct hist latency;
};

static struct run *R;

/* A blocking HTTP/1.1 call to the API; returns the status, body in out. */
static int api_call(const struct opts *o, const char *method, const char *path, const char *token,
		    const char *body, char *out, size_t out_size)
{
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
	char req[4096];
	int fd = socket(AF_INET, SOCK_STREAM, 0), n, status = -1;
	size_t got = 0;

	inet_pton(AF_INET, o->host, &addr.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		goto out;
	n = snprintf(req, sizeof(req),
		     "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: "
		     "application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
		     method, path, o->host, token, body ? strlen(body) : 0, body ? body : "");
	if (write(fd, req, (size_t)n) != n)
		goto out;
	while (got + 1 < out_size) {
		ssize_t r = read(fd, out + got, out_size - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
		out[got] = '\0';
		char *end = strstr(out, "\r\n\r\n");
		/* Content-Length tells when the whole answer is in. */
		char *cl = strcasestr(out, "content-length:");
		if (end && cl && got >= (size_t)(end + 4 - out) + (size_t)atol(cl + 15))
			break;
	}
	out[got] = '\0';
	if (got > 12)
		status = atoi(out + 9);
	char *body_start = strstr(out, "\r\n\r\n");
	if (body_start)
		memmove(out, body_start + 4, strlen(body_start + 4) + 1);
out:
	if (fd >= 0)
		close(fd);
	return status;
}

static void mint(const struct opts *o, const char *user, char *token, size_t size)
{
	if (jwt_sign(o->secret, user, (int64_t)time(NULL), 3600, token, size) < 0) {
		fprintf(stderr, "fanout-bench: cannot mint a token for %s\n", user);
		exit(2);
	}
}

/* Finds an integer field ("name":123) without a full JSON parse: the hot
 * path reads a million of these per second. */
static int64_t field_int(const char *data, size_t len, const char *name)
{
	const char *p = memmem(data, len, name, strlen(name));
	return p ? strtoll(p + strlen(name), NULL, 10) : -1;
}

static void on_open(struct ws *ws, void *user)
{
}

static void on_text(struct ws *ws, void *user, const char *data, size_t len)
{
	struct peer *p = user;
	uint64_t now = time_mono_ns();

	if (p == &R->pub) {
		if (memmem(data, len, "\"type\":\"ack\"", 12)) {
			R->acked++;
			int64_t seq = field_int(data, len, "\"seq\":");
			if (seq > R->last_acked_seq)
				R->last_acked_seq = seq;
		} else if (memmem(data, len, "\"type\":\"error\"", 14)) {
			R->errors++;
			if (memmem(data, len, "rate_limited", 12))
				R->rate_limited++;
		}
		return;
	}
	if (!p->ready) {
		if (memmem(data, len, "\"type\":\"subscribed\"", 19)) {
			p->ready = true;
			R->ready++;
		} else if (memmem(data, len, "\"type\":\"hello\"", 14)) {
			char req[128];
			int n = snprintf(req, sizeof(req),
					 "{\"type\":\"subscribe\",\"req\":\"s\",\"channels\":[{"
					 "\"channel\":%ld}]}",
					 (long)R->channel);
			ws_send_text(ws, req, (size_t)n);
		}
		return;
	}
	if (!memmem(data, len, "\"type\":\"message\"", 16))
		return;
	int64_t seq = field_int(data, len, "\"seq\":");
	int64_t due = field_int(data, len, "due=");
	if (seq <= p->last_seq) {
		p->dups++;
		return;
	}
	if (p->last_seq && seq != p->last_seq + 1)
		p->gaps += (uint64_t)(seq - p->last_seq - 1);
	p->last_seq = seq;
	p->received++;
	if (due > 0 && now >= (uint64_t)due)
		hist_record(&R->latency, now - (uint64_t)due);
}

static void on_close(struct ws *ws, void *user, int code)
{
	struct peer *p = user;

	p->closed = true;
	fprintf(stderr, "fanout-bench: connection %d closed (%d)\n", p->index, code);
}

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option options[] = {
	    {"host", required_argument, NULL, 'H'},
	    {"port", required_argument, NULL, 'P'},
	    {"subscribers", required_argument, NULL, 'n'},
	    {"rate", required_argument, NULL, 'r'},
	    {"seconds", required_argument, NULL, 't'},
	    {"size", required_argument, NULL, 's'},
	    {NULL, 0, NULL, 0},
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 'H':
			o->host = optarg;
			break;
		case 'P':
			o->port = atoi(optarg);
			break;
		case 'n':
			o->subscribers = atoi(optarg);
			break;
		case 'r':
			o->rate = atoi(optarg);
			break;
		case 't':
			o->seconds = atoi(optarg);
			break;
		case 's':
			o->size = atoi(optarg);
			break;
		default:
			return -1;
		}
	}
	if (o->subscribers < 1 || o->rate < 1 || o->seconds < 1 || o->size < 16 ||
	    o->size > 32768 || o->port < 1 || !o->secret)
		return -1;
	return 0;
}

int bench_fanout(int argc, char **argv)
{
	struct opts o = {.host = "127.0.0.1",
			 .port = 8080,
			 .secret = getenv("FANOUT_JWT_SECRET"),
			 .subscribers = 100,
			 .rate = 1000,
			 .seconds = 10,
			 .size = 64};
	struct ws_handlers h = {on_open, on_text, on_close};
	char token[512], body[4096], path[640], user[64];
	struct ws_loop *loop;
	struct run run = {.o = &o};
	uint64_t sent = 0, deadline;
	char *text;
	int status;

	if (parse(argc, argv, &o) < 0) {
		fprintf(stderr,
			"usage: fanout-bench fanout [--host A] [--port N] [--subscribers N] "
			"[--rate MSGS_PER_S] [--seconds N] [--size BYTES]\n"
			"FANOUT_JWT_SECRET must hold the server's token secret.\n");
		return 2;
	}
	R = &run;
	loop = ws_loop_create(&h);
	run.subs = calloc((size_t)o.subscribers, sizeof(*run.subs));
	text = malloc((size_t)o.size + 256);

	/* A fresh public channel, joined by every subscriber. */
	mint(&o, "bench-pub", token, sizeof(token));
	snprintf(body, sizeof(body), "{\"name\":\"bench-%d-%ld\"}", getpid(), (long)time(NULL));
	status = api_call(&o, "POST", "/api/v1/channels", token, body, body, sizeof(body));
	json_t *reply = status == 201 ? json_loads(body, 0, NULL) : NULL;
	if (reply == NULL) {
		fprintf(stderr, "fanout-bench: cannot create a channel (HTTP %d): %s\n", status,
			body);
		return 1;
	}
	run.channel = json_integer_value(json_object_get(json_object_get(reply, "channel"), "id"));
	json_decref(reply);
	for (int i = 0; i < o.subscribers; i++) {
		snprintf(user, sizeof(user), "bench-sub-%d", i);
		mint(&o, user, token, sizeof(token));
		snprintf(path, sizeof(path), "/api/v1/channels/%ld/join", (long)run.channel);
		if (api_call(&o, "POST", path, token, "", body, sizeof(body)) != 200) {
			fprintf(stderr, "fanout-bench: %s cannot join: %s\n", user, body);
			return 1;
		}
		snprintf(path, sizeof(path), "/ws?token=%s", token);
		run.subs[i].index = i;
		run.subs[i].ws = ws_connect(loop, o.host, o.port, path, &run.subs[i]);
	}
	mint(&o, "bench-pub", token, sizeof(token));
	snprintf(path, sizeof(path), "/ws?token=%s", token);
	run.pub.index = -1;
	run.pub.ws = ws_connect(loop, o.host, o.port, path, &run.pub);
	deadline = time_mono_ns() + 30ull * 1000000000ull;
	while (run.ready < o.subscribers && time_mono_ns() < deadline)
		ws_loop_run(loop, 10);
	if (run.ready < o.subscribers) {
		fprintf(stderr, "fanout-bench: only %d of %d subscribers ready\n", run.ready,
			o.subscribers);
		return 1;
	}
	for (int i = 0; i < 50; i++)
		ws_loop_run(loop, 10); /* the publisher's hello */

	printf("fanout-bench fanout: 1 channel, %d subscribers, %d msg/s offered for %d s, "
	       "%d-byte text, %s:%d\n",
	       o.subscribers, o.rate, o.seconds, o.size, o.host, o.port);
	run.start_ns = time_mono_ns();
	uint64_t end = run.start_ns + (uint64_t)o.seconds * 1000000000ull, next_report = 1;
	while (time_mono_ns() < end) {
		uint64_t now = time_mono_ns();
		/* Everything due by now goes out now, stamped with when it was due. */
		while (run.start_ns + sent * 1000000000ull / (uint64_t)o.rate <= now) {
			uint64_t due = run.start_ns + sent * 1000000000ull / (uint64_t)o.rate;
			int n = snprintf(
			    text, (size_t)o.size + 256,
			    "{\"type\":\"publish\",\"channel\":%ld,\"client_msg_id\":\"b%lu\","
			    "\"text\":\"due=%lu ",
			    (long)run.channel, (unsigned long)sent, (unsigned long)due);
			int pad = o.size - 24 > 0 ? o.size - 24 : 0;
			memset(text + n, 'x', (size_t)pad);
			n += pad;
			n += snprintf(text + n, 8, "\"}");
			ws_send_text(run.pub.ws, text, (size_t)n);
			sent++;
		}
		ws_loop_run(loop, 1);
		if ((now - run.start_ns) / 1000000000ull >= next_report) {
			uint64_t rx = 0;
			for (int i = 0; i < o.subscribers; i++)
				rx += run.subs[i].received;
			printf("  t=%2lus sent %lu acked %ld deliveries %lu p99 %.2f ms\n",
			       (unsigned long)next_report, (unsigned long)sent, (long)run.acked,
			       (unsigned long)rx, (double)hist_quantile(&run.latency, 0.99) / 1e6);
			fflush(stdout);
			next_report++;
		}
	}
	/* Let the tail arrive. */
	deadline = time_mono_ns() + 10ull * 1000000000ull;
	for (;;) {
		bool done = run.acked + run.errors >= (int64_t)sent;
		for (int i = 0; done && i < o.subscribers; i++)
			done = run.subs[i].last_seq >= run.last_acked_seq;
		if (done || time_mono_ns() > deadline)
			break;
		ws_loop_run(loop, 10);
	}
	double secs = (double)(time_mono_ns() - run.start_ns) / 1e9;
	uint64_t rx = 0, dups = 0, gaps = 0, lost = 0;
	for (int i = 0; i < o.subscribers; i++) {
		rx += run.subs[i].received;
		dups += run.subs[i].dups;
		gaps += run.subs[i].gaps;
		if (run.subs[i].last_seq < run.last_acked_seq)
			lost += (uint64_t)(run.last_acked_seq - run.subs[i].last_seq);
	}
	printf("published %lu, acked %ld, errors %ld (rate limited %ld)\n", (unsigned long)sent,
	       (long)run.acked, (long)run.errors, (long)run.rate_limited);
	printf("deliveries %lu in %.1f s: %.0f deliveries/s (offered %lu/s)\n", (unsigned long)rx,
	       secs, rx / secs, (unsigned long)o.rate * (unsigned long)o.subscribers);
	printf("latency from due time: p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max "
	       "%.2f ms\n",
	       hist_quantile(&run.latency, 0.5) / 1e6, hist_quantile(&run.latency, 0.9) / 1e6,
	       hist_quantile(&run.latency, 0.99) / 1e6, hist_quantile(&run.latency, 0.999) / 1e6,
	       (double)run.latency.max / 1e6);
	printf("order: gaps %lu, duplicates %lu; acked but not yet delivered when the 10 s tail "
	       "ended: %lu\n",
	       (unsigned long)gaps, (unsigned long)dups, (unsigned long)lost);
	if (lost)
		printf("note: undelivered deliveries mean the server is past saturation (they are "
		       "durable and still on their way), not lost\n");
	if (run.rate_limited)
		printf(
		    "warning: the server rate-limited the publisher; raise [server] publish_rate "
		    "and publish_burst above --rate\n");
	for (int i = 0; i < o.subscribers; i++)
		ws_close(run.subs[i].ws);
	ws_close(run.pub.ws);
	ws_loop_destroy(loop);
	free(run.subs);
	free(text);
	/* A gap is a broken promise; slowness is a figure, not a failure. */
	return gaps ? 1 : 0;
}
