/* SPDX-License-Identifier: BSD-3-Clause */
/* fanout-bench fanout (scenario W1): one hot channel over the socket edge.
 * One publisher sends at a constant rate (open loop); N subscribers receive
 * every message. Each message carries the time it was due, and latency runs
 * from then to its arrival at each subscriber, so a stalled server cannot
 * hide its stall (coordinated omission). Every subscriber checks seq order.
 *
 * The server must let one connection publish at the offered rate:
 * [server] publish_rate and publish_burst above --rate (docs/benchmarks.md).
 *
 * --procs N spreads the subscribers over N child processes (one descriptor
 * per connection: a process's limit caps it, and one core may not keep up).
 * The parent makes the channel and publishes; each child joins its share,
 * connects it once every child has joined, checks it, says when it is
 * ready, and at the end sends back its counts and latency histogram, which
 * the parent merges. */
#include "bench.h"
#include "clock.h"
#include "hist.h"
#include "load.h"
#include "wsclient.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
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

/* What a child sends back at the end. */
struct child_result {
	int ready, closed;
	uint64_t rx, gaps, dups, reorders, behind;
	int64_t lagged;
	struct hist latency;
};

#define CONNECT_WINDOW 1000

static int read_full(int fd, void *buf, size_t n, int timeout_ms)
{
	size_t got = 0;

	while (got < n) {
		struct pollfd p = {fd, POLLIN, 0};
		ssize_t r;

		if (poll(&p, 1, timeout_ms) <= 0)
			return -1;
		r = read(fd, (char *)buf + got, n - got);
		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			return -1;
		}
		got += (size_t)r;
	}
	return 0;
}

/* Waits for one byte, want, from every child, in whatever order they
 * come: a child that fails (or sends anything else) stops them all at
 * once rather than after the others' timeouts. -1 when one failed. */
static int await_children(const int *fds, const pid_t *kids, int n, char want, const char *what)
{
	struct pollfd p[64];
	uint64_t deadline = time_mono_ns() + 600ull * 1000000000ull;
	int left = n;

	for (int c = 0; c < n; c++)
		p[c] = (struct pollfd){fds[c], POLLIN, 0};
	while (left > 0 && time_mono_ns() < deadline) {
		if (poll(p, (nfds_t)n, 1000) < 0 && errno != EINTR)
			break;
		for (int c = 0; c < n; c++) {
			char got = 0;
			if (p[c].fd < 0 || !(p[c].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (read(fds[c], &got, 1) != 1 || got != want) {
				fprintf(stderr, "fanout-bench: child %d could not %s\n", c, what);
				left = -1;
				break;
			}
			p[c].fd = -1;
			left--;
		}
	}
	if (left == 0)
		return 0;
	if (left > 0)
		fprintf(stderr, "fanout-bench: %d children did not %s in 600 s\n", left, what);
	for (int k = 0; k < n; k++)
		kill(kids[k], SIGTERM);
	return -1;
}

static int write_full(int fd, const void *buf, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = write(fd, (const char *)buf + done, n - done);
		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			return -1;
		}
		done += (size_t)r;
	}
	return 0;
}

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
	if (++R->closed <= 3)
		fprintf(stderr, "fanout-bench: subscriber %d: %s\n", ((struct peer *)user)->index,
			ws_why(ws));
}

/* A child of --procs: its subscribers are ready; it receives until the
 * parent sends the last acked seq, lets the tail arrive, sends its counts
 * back and exits. */
static int fanout_child(struct run *run, struct ws_loop *loop, int lo, int hi, int up, int down)
{
	struct child_result *cr = calloc(1, sizeof(*cr));
	int64_t last = -1;
	uint64_t deadline;
	char ok = 'R';

	if (cr == NULL || write_full(up, &ok, 1) < 0)
		_exit(1);
	for (;;) {
		ssize_t r = read(down, &last, 8);
		if (r == 8)
			break;
		if (r == 0)
			_exit(1); /* the parent is gone */
		ws_loop_run(loop, 10);
	}
	deadline = time_mono_ns() + 10ull * 1000000000ull;
	for (;;) {
		bool done = true;
		for (int i = lo; done && i < hi; i++)
			done = run->subs[i].seq.last >= last;
		if (done || time_mono_ns() > deadline)
			break;
		ws_loop_run(loop, 10);
	}
	for (int i = lo; i < hi; i++) {
		struct seq_check *c = &run->subs[i].seq;
		cr->rx += c->received;
		cr->dups += c->dups;
		cr->gaps += c->gaps;
		cr->reorders += c->reorders;
		if (c->last < last)
			cr->behind += (uint64_t)(last - c->last);
	}
	cr->closed = run->closed;
	cr->lagged = run->lagged;
	cr->latency = run->latency;
	write_full(up, cr, sizeof(*cr));
	_exit(0);
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
	    {"procs", required_argument, NULL, 'p'},
	    {"channel", required_argument, NULL, 'c'},
	    {NULL, 0, NULL, 0},
	};
	int procs = 1;
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
		case 'p':
			procs = atoi(optarg);
			break;
		case 'c':
			run.channel = atoll(optarg);
			break;
		default:
			if (!load_option(opt, optarg, &t, &json_path))
				subscribers = -1;
		}
	}
	if (slow_percent < 0 || slow_percent > 100 || procs < 1 || procs > 64 ||
	    (procs > 1 && slow_percent))
		subscribers = -1;
	if (subscribers < 1 || rate < 1 || seconds < 1 || size < 16 || size > 32768 || t.port < 1 ||
	    t.sources < 1 || t.sources > 60000 || !t.secret) {
		fprintf(stderr,
			"usage: fanout-bench fanout [--host A] [--port N] [--subscribers N] "
			"[--rate MSGS_PER_S] [--seconds N] [--size BYTES] [--sources N] "
			"[--ephemeral] [--slow PERCENT] [--procs N (not with --slow)] "
			"[--api HOST:PORT] [--source-base A] [--channel ID] [--json FILE]\n"
			"FANOUT_JWT_SECRET must hold the server's token secret.\n");
		return 2;
	}
	R = &run;
	loop = ws_loop_create(&h);
	run.subs = calloc((size_t)subscribers, sizeof(*run.subs));
	text = malloc((size_t)size + 256);

	/* A fresh channel (or the public one --channel names: in a cluster,
	 * one another node owns), joined by every subscriber. */
	snprintf(name, sizeof(name), "bench-%d-%ld", getpid(), (long)time(NULL));
	if (run.channel == 0)
		run.channel =
		    load_create_channel(&t, "bench-pub", name, ephemeral ? "ephemeral" : "public");
	if (run.channel < 0)
		return 1;
	/* With --procs, the children take the subscribers, in equal shares;
	 * this process [lo, hi) of them (none in the parent of children). */
	int lo = 0, hi = subscribers, child = -1, nkids = procs > 1 ? procs : 0;
	int ready_fd[64], ctl_fd[64];
	pid_t kids[64];

	fflush(stdout);
	for (int c = 0; c < nkids; c++) {
		int up[2], down[2];

		if (pipe(up) < 0 || pipe(down) < 0) {
			perror("fanout-bench: pipe");
			return 1;
		}
		kids[c] = fork();
		if (kids[c] < 0) {
			perror("fanout-bench: fork");
			return 1;
		}
		if (kids[c] == 0) {
			child = c;
			close(up[0]);
			close(down[1]);
			ready_fd[0] = up[1];
			ctl_fd[0] = down[0];
			break;
		}
		close(up[1]);
		close(down[0]);
		ready_fd[c] = up[0];
		ctl_fd[c] = down[1];
	}
	if (nkids && child < 0) {
		lo = hi = 0;
	} else if (child >= 0) {
		/* An epoll instance survives fork: a child must have its own. */
		ws_loop_destroy(loop);
		loop = ws_loop_create(&h);
		lo = (int)((long)subscribers * child / procs);
		hi = (int)((long)subscribers * (child + 1) / procs);
	}
	/* Every join first: the blocking HTTP calls must not hold back the
	 * handshakes of connections already opened (the server closes a
	 * connection that stays silent past its handshake timeout). */
	for (int i = lo; i < hi; i++) {
		snprintf(user, sizeof(user), "bench-sub-%d", i);
		if (load_join(&t, user, run.channel) < 0) {
			fprintf(stderr, "fanout-bench: %s cannot join\n", user);
			return 1;
		}
	}
	/* With --procs, nobody connects until everybody has joined: 100,000
	 * handshakes (each loads its memberships) would queue ahead of the
	 * other children's joins. */
	if (child >= 0) {
		char go = 'J';
		if (write_full(ready_fd[0], &go, 1) < 0 ||
		    read_full(ctl_fd[0], &go, 1, 600000) < 0 || go != 'G')
			_exit(1);
		fcntl(ctl_fd[0], F_SETFL, O_NONBLOCK);
	}
	if (child < 0 && await_children(ready_fd, kids, nkids, 'J', "join its subscribers") < 0)
		return 1;
	for (int c = 0; child < 0 && c < nkids; c++)
		if (write_full(ctl_fd[c], "G", 1) < 0)
			return 1;
	load_raise_fd_limit();
	for (int i = lo; i < hi; i++) {
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
		/* At most CONNECT_WINDOW subscribers of this process between
		 * connect and subscribed: 100,000 SYNs at once overflow the
		 * queues in front of the server (a veth's backlog, a NIC ring)
		 * and the kernel gives up on connects after its SYN retries. */
		for (uint64_t stop = time_mono_ns() + 60ull * 1000000000ull;
		     i + 1 - lo - run.ready - run.closed >= CONNECT_WINDOW &&
		     time_mono_ns() < stop;)
			ws_loop_run(loop, 10);
	}
	if (child < 0) {
		load_token(&t, "bench-pub", token, sizeof(token));
		snprintf(path, sizeof(path), "/ws?token=%s", token);
		run.pub.index = -1;
		run.pub.ws = ws_connect(loop, t.host, t.port, path, NULL, &run.pub);
	}
	deadline = time_mono_ns() + (nkids || child >= 0 ? 300ull : 60ull) * 1000000000ull;
	while (run.ready < hi - lo && run.closed == 0 && time_mono_ns() < deadline)
		ws_loop_run(loop, 10);
	if (run.ready < hi - lo) {
		fprintf(stderr, "fanout-bench: only %d of %d subscribers ready (%d closed)\n",
			run.ready, hi - lo, run.closed);
		if (child >= 0)
			_exit(1);
		return 1;
	}
	if (child >= 0)
		return fanout_child(&run, loop, lo, hi, ready_fd[0], ctl_fd[0]);
	if (await_children(ready_fd, kids, nkids, 'R', "get its subscribers ready") < 0)
		return 1;
	for (int i = 0; i < 50; i++)
		ws_loop_run(loop, 10); /* the publisher's hello */

	printf("fanout-bench fanout: 1 %s channel, %d subscribers from %d source address(es), %d "
	       "msg/s offered for %d s, %d-byte text, %s:%d\n",
	       ephemeral ? "ephemeral" : "durable", subscribers, t.sources, rate, seconds, size,
	       t.host, t.port);
	start = time_mono_ns();
	cpu_window_start();
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
			for (int i = lo; i < hi; i++)
				rx += run.subs[i].seq.received;
			printf("  t=%2lus sent %lu acked %ld deliveries %lu p99 %.2f ms\n",
			       (unsigned long)next_report, (unsigned long)sent, (long)run.acked,
			       (unsigned long)rx, (double)hist_quantile(&run.latency, 0.99) / 1e6);
			fflush(stdout);
			next_report++;
		}
	}
	/* Let the tail arrive; the slow ones read freely now. */
	for (int i = lo; i < hi; i++)
		ws_pause(run.subs[i].ws, false);
	deadline = time_mono_ns() + 10ull * 1000000000ull;
	for (;;) {
		bool done = run.acked + run.errors >= (int64_t)sent;
		for (int i = lo; done && i < hi; i++)
			done = run.subs[i].seq.last >= run.last_acked_seq;
		if (done || time_mono_ns() > deadline)
			break;
		ws_loop_run(loop, 10);
	}
	uint64_t rx = 0, dups = 0, gaps = 0, reorders = 0, behind = 0;
	/* The children: the last acked seq down, their counts back. */
	for (int c = 0; c < nkids; c++) {
		struct child_result *cr = malloc(sizeof(*cr));

		if (cr == NULL || write_full(ctl_fd[c], &run.last_acked_seq, 8) < 0 ||
		    read_full(ready_fd[c], cr, sizeof(*cr), 60000) < 0) {
			fprintf(stderr, "fanout-bench: child %d sent no result\n", c);
			free(cr);
			return 1;
		}
		rx += cr->rx;
		dups += cr->dups;
		gaps += cr->gaps;
		reorders += cr->reorders;
		behind += cr->behind;
		run.closed += cr->closed;
		run.lagged += cr->lagged;
		hist_merge(&run.latency, &cr->latency);
		free(cr);
		waitpid(kids[c], NULL, 0);
	}
	cpu_window_stop();
	double secs = (double)(time_mono_ns() - start) / 1e9;
	for (int i = lo; i < hi; i++) {
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
	for (int i = lo; i < hi; i++)
		ws_close(run.subs[i].ws);
	ws_close(run.pub.ws);
	ws_loop_destroy(loop);
	free(run.subs);
	free(text);
	/* A gap is a broken promise; slowness is a figure, not a failure. An
	 * ephemeral channel may drop under load by design. */
	return gaps && !ephemeral ? 1 : 0;
}
