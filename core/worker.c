/* SPDX-License-Identifier: BSD-3-Clause */
/* A worker's loop: what the transport calls on the worker's own thread to
 * hand queued frames to the sessions that subscribe (edge_worker_drain), to
 * check heartbeats and give back idle sessions' queues once a second
 * (edge_worker_tick), and to close every session (at shutdown). Above
 * sessions in the core: it calls them, they never call it. */
#define LOG_COMPONENT "edge"
#include "edge-internal.h"

#include "clock.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>

static void on_frame(void *arg, struct frame *f)
{
	struct edge_worker *w = arg;
	struct chan_local *cl;
	uint64_t born = f->born_ns;
	void *data;
	int n;

	if (rte_hash_lookup_data(w->local, &f->channel, &data) < 0 ||
	    (n = ((struct chan_local *)data)->n) == 0) {
		frame_unref(f);
		return;
	}
	cl = data;
	/* One reference per session taken at once, the worker's own going to
	 * the last: an atomic add per frame, not per delivery. Delivery never
	 * unsubscribes (a lag only rewinds), so cl is stable. */
	frame_ref_n(f, (unsigned)n - 1);
	for (int i = 0; i < n; i++)
		session_deliver(cl->s[i], f);
	metric_add(&edge_m_deliveries, (uint64_t)n);
	metric_observe_ns(&edge_m_fanout_latency, time_mono_ns() - born);
}

static void on_overrun(void *arg)
{
	struct edge_worker *w = arg;

	LOG(WARN, "worker %d: inbox overrun; its sessions resume from PostgreSQL", w->index);
	for (struct session *s = w->sessions; s; s = s->next)
		session_catch_up_all(s);
}

unsigned edge_worker_drain(struct edge_worker *w)
{
	unsigned n, total = 0;

	do {
		n = fanout_drain(w->e->fanout, w->index, on_frame, on_overrun, w, 4096);
		total += n;
	} while (n == 4096);
	return total;
}

void edge_worker_tick(struct edge_worker *w)
{
	uint64_t now = time_mono_ns(), limit = (uint64_t)w->e->cfg.heartbeat_ms * 2000000ull;

	for (struct session *s = w->sessions; s; s = s->next) {
		if (now - s->last_rx_ns > limit)
			session_request_close(s, CLOSE_HEARTBEAT_TIMEOUT, "heartbeat timeout");
		session_trim(s);
	}
}

void edge_worker_close_all(struct edge_worker *w, int code, const char *reason)
{
	for (struct session *s = w->sessions; s; s = s->next)
		session_request_close(s, code, reason);
}

struct resync_event {
	struct fanout_event ev;
	int64_t channel;
};

static void resync_run(void *worker_arg, struct fanout_event *ev)
{
	struct edge_worker *w = worker_arg;
	struct resync_event *r = (struct resync_event *)ev;
	void *data;

	if (rte_hash_lookup_data(w->local, &r->channel, &data) >= 0) {
		struct chan_local *cl = data;

		for (int i = 0; i < cl->n; i++)
			session_catch_up(cl->s[i], r->channel);
	}
	free(r);
}

int edge_channel_resync(struct edge *e, int64_t channel)
{
	for (int i = 0; i < e->nworkers; i++) {
		struct resync_event *r = calloc(1, sizeof(*r));

		if (r == NULL)
			return -ENOMEM;
		r->ev.run = resync_run;
		r->channel = channel;
		fanout_post_event(e->fanout, i, &r->ev);
	}
	return 0;
}

struct close_event {
	struct fanout_event ev;
	int code;
	char reason[64];
};

static void close_run(void *worker_arg, struct fanout_event *ev)
{
	struct close_event *c = (struct close_event *)ev;

	edge_worker_close_all(worker_arg, c->code, c->reason);
	free(c);
}

int edge_post_close_all(struct edge *e, int index, int code, const char *reason)
{
	struct close_event *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return -ENOMEM;
	c->ev.run = close_run;
	c->code = code;
	snprintf(c->reason, sizeof(c->reason), "%s", reason);
	fanout_post_event(e->fanout, index, &c->ev);
	return 0;
}
