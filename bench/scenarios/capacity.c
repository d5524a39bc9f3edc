/* SPDX-License-Identifier: BSD-3-Clause */
/* fanout-bench capacity (scenario W7): opens idle websocket connections until
 * the target count (or until the server or this process refuses more), holds
 * them, and reports how much the server's heap grew per connection (from its
 * /metrics). Idle means subscribed to nothing and silent: --hold must stay
 * under twice the server's heartbeat (60 s by default). */
#include "bench.h"
#include "clock.h"
#include "load.h"
#include "wsclient.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct conn {
	struct ws *ws;
	bool ready, closed;
};

static int ready, closed;

static void on_open(struct ws *ws, void *user)
{
}

static void on_text(struct ws *ws, void *user, const char *data, size_t len)
{
	struct conn *c = user;

	if (!c->ready && load_has(data, len, "\"type\":\"hello\"")) {
		c->ready = true;
		ready++;
	}
}

static void on_close(struct ws *ws, void *user, int code)
{
	struct conn *c = user;

	if (!c->closed) {
		c->closed = true;
		closed++;
	}
}

/* A gauge from the server's /metrics, or -1. */
static double server_metric(const struct load_target *t, const char *name)
{
	static char out[1 << 20];
	char *p;

	if (load_api(t, "GET", "/metrics", "bench-capacity", NULL, out, sizeof(out)) != 200)
		return -1;
	for (p = out; (p = strstr(p, name)) != NULL; p++)
		if ((p == out || p[-1] == '\n') && p[strlen(name)] == ' ')
			return strtod(p + strlen(name) + 1, NULL);
	return -1;
}

int bench_capacity(int argc, char **argv)
{
	static const struct option options[] = {
	    LOAD_OPTIONS,
	    {"connections", required_argument, NULL, 'n'},
	    {"hold", required_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct load_target t = {
	    .host = "127.0.0.1", .port = 8080, .secret = getenv("FANOUT_JWT_SECRET"), .sources = 1};
	int target = 1000, hold = 5, opt, opened = 0;
	const char *json_path = NULL;
	struct ws_handlers h = {on_open, on_text, on_close};
	char token[512], path[640], src[20];
	struct ws_loop *loop;
	struct conn *conns;
	uint64_t deadline;

	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 'n':
			target = atoi(optarg);
			break;
		case 'h':
			hold = atoi(optarg);
			break;
		default:
			if (!load_option(opt, optarg, &t, &json_path))
				target = -1;
		}
	}
	if (target < 1 || hold < 0 || t.port < 1 || t.sources < 1 || !t.secret) {
		fprintf(stderr,
			"usage: fanout-bench capacity [--host A] [--port N] [--connections N] "
			"[--sources N] [--hold SECONDS] [--json FILE]\n"
			"FANOUT_JWT_SECRET must hold the server's token secret.\n");
		return 2;
	}
	/* As many descriptors as this process may have. */
	unsigned long files = load_raise_fd_limit();

	double heap_before = server_metric(&t, "fanout_heap_allocated_bytes");
	double resident_before = server_metric(&t, "fanout_heap_resident_bytes");
	loop = ws_loop_create(&h);
	conns = calloc((size_t)target, sizeof(*conns));
	load_token(&t, "bench-idle", token, sizeof(token));
	snprintf(path, sizeof(path), "/ws?token=%s", token);
	printf("fanout-bench capacity: up to %d idle connections from %d source address(es), %s:%d "
	       "(this process may open %lu descriptors)\n",
	       target, t.sources, t.host, t.port, files);
	for (; opened < target; opened++) {
		conns[opened].ws = ws_connect(loop, t.host, t.port, path,
					      load_source(&t, opened, src), &conns[opened]);
		if (conns[opened].ws == NULL) {
			perror("fanout-bench: connect");
			break;
		}
		if (opened % 256 == 255)
			ws_loop_run(loop, 0); /* keep the handshakes moving */
	}
	deadline = time_mono_ns() + 120ull * 1000000000ull;
	while (ready + closed < opened && time_mono_ns() < deadline)
		ws_loop_run(loop, 10);
	/* Held idle, then measured. */
	uint64_t until = time_mono_ns() + (uint64_t)hold * 1000000000ull;
	while (time_mono_ns() < until)
		ws_loop_run(loop, 100);
	double heap_after = server_metric(&t, "fanout_heap_allocated_bytes");
	double resident_after = server_metric(&t, "fanout_heap_resident_bytes");
	/* Both edges' connections: the socket edge's, and the DPDK edge's
	 * when it runs (its metric is absent otherwise). */
	double open_now = server_metric(&t, "fanout_connections");
	double open_dpdk = server_metric(&t, "fanout_dpdk_connections");
	if (open_dpdk > 0)
		open_now += open_dpdk;
	int live = ready - closed;
	double per_conn = live > 0 && heap_before >= 0 ? (heap_after - heap_before) / live : -1;
	double per_conn_resident =
	    live > 0 && resident_before >= 0 ? (resident_after - resident_before) / live : -1;

	printf(
	    "connections: opened %d, ready %d, closed by the server %d, open at the server %.0f\n",
	    opened, ready, closed, open_now);
	if (per_conn >= 0)
		printf("server heap per idle connection: %.0f bytes allocated, %.0f bytes resident "
		       "(jemalloc statistics; the kernel's socket buffers are not included)\n",
		       per_conn, per_conn_resident);
	else
		printf("server heap per connection: not reported (a build without jemalloc "
		       "statistics)\n");
	load_write_json(json_path,
			json_pack("{s:s, s:i, s:i, s:i, s:i, s:f, s:f, s:f}", "scenario", "W7",
				  "target", target, "opened", opened, "ready", ready, "closed",
				  closed, "server_open", open_now, "heap_bytes_per_connection",
				  per_conn, "resident_bytes_per_connection", per_conn_resident));
	for (int i = 0; i < opened; i++)
		ws_close(conns[i].ws);
	ws_loop_destroy(loop);
	free(conns);
	return ready == opened && closed == 0 ? 0 : 1;
}
