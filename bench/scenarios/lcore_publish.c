/* SPDX-License-Identifier: BSD-3-Clause */
/* fanout-bench lcore-publish: what one publish costs the worker that
 * received it, and how many a single worker thread pushes through, with the
 * worker publishing itself (jansson, the publish door, malloc: the socket
 * edge's way, and the DPDK lcore's before the hand-off) and with the
 * publish hand-off (core/handoff.h: scan, copy into a slot, ring; the DPDK
 * lcore's way), side by side in one run. The core runs for real on the EAL
 * (no hugepages): its session, request handlers, publish door and a
 * live-only channel; the transport and the user's hello are stood in for,
 * and no PostgreSQL is involved, so the figure is the worker's side of a
 * publish, not a commit. Printed: publishes/s through one worker with up
 * to --window unanswered, worker-thread CPU per publish (the lcore's
 * ceiling is 1e9 over it), all threads' CPU per publish, and jansson
 * allocations on the worker per publish. */
#include "bench.h"
#include "edge-internal.h"
#include "handoff.h"

#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pthread_t worker_thread;
static atomic_long worker_json_allocs;

static void *counting_malloc(size_t n)
{
	if (pthread_equal(pthread_self(), worker_thread))
		atomic_fetch_add_explicit(&worker_json_allocs, 1, memory_order_relaxed);
	return malloc(n);
}

static void no_write(void *ctx)
{
}

static void no_pause(void *ctx, bool off)
{
}

/* The user belongs to one live-only channel, 1. */
static int hello(struct session *s)
{
	static const int64_t member[] = {1};
	json_t *channels = json_pack("[{s:i, s:s, s:s, s:i}]", "id", 1, "name", "live", "kind",
				     "ephemeral", "last_seq", 0);

	if (worker_register(s->w, s) < 0)
		return -ENOMEM;
	session_ready(s, 1, channels, member, 1);
	return 0;
}

static int no_history(struct session *s, int64_t channel, int64_t after, int64_t before,
		      int64_t parent, int limit, const char *req, bool catch_up)
{
	return 0;
}

static double cpu_s(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Takes what the session would send; returns how many were acks. */
static long take_out(struct edge_worker *w, struct session *s)
{
	struct frame *f;
	long acks = 0;

	edge_worker_drain(w);
	while ((f = session_peek(s)) != NULL) {
		acks += memmem(frame_payload(f), f->len, "\"type\":\"ack\"", 12) != NULL;
		session_sent(s);
	}
	return acks;
}

struct result {
	double rate, worker_ns, all_ns, json_per;
	long acked;
};

static void run(struct edge *e, bool handoff, long n, long window, struct result *r)
{
	static const struct session_ops ops = {no_write, no_pause};
	struct session_transport t = {&ops, NULL, NULL};
	struct edge_worker *w = edge_worker_create(e, 0, 16);
	struct handoff *h = handoff ? handoff_start(e) : NULL;
	struct session *s = w ? session_open(w, "bench", &t) : NULL;
	char text[256];
	long sent = 0;

	memset(r, 0, sizeof(*r));
	if (s == NULL || (handoff && (h == NULL || handoff_attach(h, w) < 0))) {
		fprintf(stderr, "lcore-publish: cannot set the worker up\n");
		return;
	}
	take_out(w, s); /* hello */
	atomic_store(&worker_json_allocs, 0);
	/* An idle turn sleeps 20 us, as an lcore with idle_sleep_us does: the
	 * worker's CPU is then its work, not its polling of an empty inbox. */
	double t0 = cpu_s(CLOCK_MONOTONIC), p0 = cpu_s(CLOCK_PROCESS_CPUTIME_ID),
	       w0 = cpu_s(CLOCK_THREAD_CPUTIME_ID);
	while (r->acked < n && cpu_s(CLOCK_MONOTONIC) - t0 < 120) {
		long got;
		bool worked = false;

		while (sent < n && sent - r->acked < window) {
			int len =
			    snprintf(text, sizeof(text),
				     "{\"type\":\"publish\",\"req\":\"r%ld\",\"channel\":1,"
				     "\"client_msg_id\":\"c%ld\",\"text\":\"%s\"}",
				     sent, sent,
				     "a message of sixty-four bytes, as chat messages often are!");
			session_on_text(s, text, (size_t)len);
			sent++;
			worked = true;
		}
		got = take_out(w, s);
		r->acked += got;
		if (!worked && got == 0) {
			struct timespec ts = {0, 20000};
			nanosleep(&ts, NULL);
		}
	}
	r->worker_ns = (cpu_s(CLOCK_THREAD_CPUTIME_ID) - w0) * 1e9 / (double)n;
	double wall = cpu_s(CLOCK_MONOTONIC) - t0;
	if (r->acked != n)
		fprintf(stderr, "lcore-publish: %ld of %ld answered\n", r->acked, n);
	r->all_ns = (cpu_s(CLOCK_PROCESS_CPUTIME_ID) - p0) * 1e9 / (double)n;
	r->rate = (double)r->acked / wall;
	r->json_per = (double)atomic_load(&worker_json_allocs) / (double)n;
	session_closed(s);
	handoff_stop(h);
	edge_worker_drain(w);
	handoff_detach(w);
	handoff_destroy(h);
	edge_worker_destroy(w);
}

int bench_lcore_publish(int argc, char **argv)
{
	static const struct option options[] = {{"messages", required_argument, NULL, 'n'},
						{"window", required_argument, NULL, 'w'},
						{"only", required_argument, NULL, 'o'},
						{NULL, 0, NULL, 0}};
	long n = 1000000, window = 256;
	const char *only = "";
	int c;

	while ((c = getopt_long(argc, argv, "n:w:o:", options, NULL)) != -1) {
		if (c == 'o') /* self or handoff: one of the two, for a profiler */
			only = optarg;
		else if (c == 'n')
			n = atol(optarg);
		else if (c == 'w')
			window = atol(optarg);
		else
			return 2;
	}
	struct edge_config cfg = {.heartbeat_ms = 30000,
				  .max_message_bytes = 65536,
				  .send_queue_bytes = 64 << 20,
				  .publish_rate = 1e12,
				  .publish_burst = 1e12,
				  .max_text_bytes = 40000,
				  .presence_grace_ms = 1000,
				  .presence_interval_ms = 1000};
	struct edge_protocol protocol = {session_handle, hello, no_history,
					 session_presence_deliver};
	struct fanout *f = fanout_eal_init(256, NULL) == 0 ? fanout_create(1, 1024) : NULL;
	struct edge *e = f ? edge_create(&cfg, f, NULL, NULL, &protocol, 1) : NULL;
	struct result r[2];

	if (e == NULL) {
		fprintf(stderr, "lcore-publish: cannot start the core\n");
		return 1;
	}
	worker_thread = pthread_self();
	json_set_alloc_funcs(counting_malloc, free);
	memset(r, 0, sizeof(r));
	if (strcmp(only, "handoff") != 0)
		run(e, false, n, window, &r[0]);
	if (strcmp(only, "self") != 0)
		run(e, true, n, window, &r[1]);
	json_set_alloc_funcs(malloc, free);
	printf("lcore-publish: %ld publishes of a 64-byte text to a live-only channel, up to %ld "
	       "unanswered, one worker thread\n",
	       n, window);
	printf("%-22s %14s %16s %16s %14s\n", "worker", "publishes/s", "worker ns/pub",
	       "all CPU ns/pub", "json/pub on w");
	for (int i = 0; i < 2; i++)
		printf("%-22s %14.0f %16.0f %16.0f %14.2f%s\n",
		       i ? "hands off (DPDK)" : "publishes itself", r[i].rate, r[i].worker_ns,
		       r[i].all_ns, r[i].json_per, r[i].acked == n ? "" : "  (not all answered)");
	printf("worker ceiling (1e9 / worker ns): %.0f/s publishing itself, %.0f/s handing off\n",
	       1e9 / r[0].worker_ns, 1e9 / r[1].worker_ns);
	edge_stop(e);
	edge_destroy(e);
	fanout_destroy(f);
	return r[0].acked == n && r[1].acked == n ? 0 : 1;
}
