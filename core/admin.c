/* SPDX-License-Identifier: BSD-3-Clause */
/* The operator's view of the node's connections (docs/api.md, "Operator
 * API"): a list gathered from every worker, each filling its part on its own
 * thread, and closing one connection by its id. Answers come back on the
 * worker that asked (the HTTP call's), through its inbox. */
#include "edge-internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A connection's id names its worker: the session id in the low 40 bits. */
#define ID_SESSION_BITS 40

struct gather {
	struct edge *e;
	int reply_worker;
	int64_t channel; /* > 0: only connections subscribed to it */
	char user[65];	 /* non-empty: only this user's */
	edge_conn_list_fn done;
	void *arg;
	atomic_int remaining;
	pthread_mutex_t lock;
	struct edge_conn_info *v;
	int n, cap;
};

struct gather_event {
	struct fanout_event ev;
	struct gather *g;
};

uint64_t edge_conn_id(int worker, uint64_t session)
{
	return (uint64_t)worker << ID_SESSION_BITS | (session & ((1ull << ID_SESSION_BITS) - 1));
}

static const char *state_name(enum session_state s)
{
	return s == SESSION_READY ? "ready" : s == SESSION_STARTING ? "starting" : "closing";
}

static bool wanted(const struct gather *g, struct session *s)
{
	if (g->user[0] && strcmp(g->user, s->user_name) != 0)
		return false;
	return g->channel <= 0 || session_find_sub(s, g->channel) != NULL;
}

static void describe(struct edge_conn_info *c, struct edge_worker *w, struct session *s)
{
	*c = (struct edge_conn_info){
	    .id = edge_conn_id(w->index, s->id),
	    .worker = w->index,
	    .opened_us = s->opened_us,
	    .state = state_name(s->state),
	    .subscriptions = s->nsubs,
	    .queued_frames = session_queued(s),
	    .queued_bytes = session_queued_bytes(s),
	    .paused = s->rx_paused,
	};
	snprintf(c->user, sizeof(c->user), "%s", s->user_name);
	snprintf(c->peer, sizeof(c->peer), "%s", session_peer(s));
}

static void gather_finish(void *worker_arg, struct fanout_event *ev)
{
	struct gather *g = ((struct gather_event *)ev)->g;

	(void)worker_arg;
	g->done(g->arg, g->v, g->n);
	pthread_mutex_destroy(&g->lock);
	free(g->v);
	free(g);
	free(ev);
}

/* On each worker: its sessions into the list; the last to finish hands the
 * list to the asking worker. */
static void gather_run(void *worker_arg, struct fanout_event *ev)
{
	struct edge_worker *w = worker_arg;
	struct gather *g = ((struct gather_event *)ev)->g;

	pthread_mutex_lock(&g->lock);
	for (struct session *s = w->sessions; s; s = s->next) {
		if (!wanted(g, s))
			continue;
		if (g->n == g->cap) {
			int cap = g->cap ? 2 * g->cap : 64;
			struct edge_conn_info *v = realloc(g->v, (size_t)cap * sizeof(*v));

			if (v == NULL)
				break; /* out of memory: a shorter list */
			g->v = v;
			g->cap = cap;
		}
		describe(&g->v[g->n++], w, s);
	}
	pthread_mutex_unlock(&g->lock);
	if (atomic_fetch_sub(&g->remaining, 1) == 1) {
		ev->run = gather_finish;
		fanout_post_event(g->e->fanout, g->reply_worker, ev);
		return;
	}
	free(ev);
}

int edge_list_connections(struct edge *e, int reply_worker, int64_t channel, const char *user,
			  edge_conn_list_fn done, void *arg)
{
	struct gather *g = calloc(1, sizeof(*g));
	struct gather_event *evs[FANOUT_WORKERS_MAX];

	if (g == NULL)
		return -ENOMEM;
	for (int i = 0; i < e->nworkers; i++) {
		evs[i] = calloc(1, sizeof(*evs[i]));
		if (evs[i] == NULL) {
			while (i-- > 0)
				free(evs[i]);
			free(g);
			return -ENOMEM;
		}
		evs[i]->ev.run = gather_run;
		evs[i]->g = g;
	}
	g->e = e;
	g->reply_worker = reply_worker;
	g->channel = channel;
	g->done = done;
	g->arg = arg;
	atomic_init(&g->remaining, e->nworkers);
	snprintf(g->user, sizeof(g->user), "%s", user ? user : "");
	pthread_mutex_init(&g->lock, NULL);
	for (int i = 0; i < e->nworkers; i++)
		fanout_post_event(e->fanout, i, &evs[i]->ev);
	return 0;
}

struct kill_event {
	struct fanout_event ev;
	struct edge *e;
	int reply_worker;
	uint64_t session;
	int code;
	char reason[64];
	bool found;
	void (*done)(void *arg, bool found);
	void *arg;
};

static void kill_answer(void *worker_arg, struct fanout_event *ev)
{
	struct kill_event *k = (struct kill_event *)ev;

	(void)worker_arg;
	k->done(k->arg, k->found);
	free(k);
}

static void kill_run(void *worker_arg, struct fanout_event *ev)
{
	struct kill_event *k = (struct kill_event *)ev;
	struct session *s = worker_find(worker_arg, k->session);

	k->found = s != NULL;
	if (s)
		session_request_close(s, k->code, k->reason);
	k->ev.run = kill_answer;
	fanout_post_event(k->e->fanout, k->reply_worker, &k->ev);
}

int edge_close_connection(struct edge *e, int reply_worker, uint64_t id, int code,
			  const char *reason, void (*done)(void *arg, bool found), void *arg)
{
	int worker = (int)(id >> ID_SESSION_BITS);
	struct kill_event *k;

	if (worker >= e->nworkers)
		return -ENOENT;
	k = calloc(1, sizeof(*k));
	if (k == NULL)
		return -ENOMEM;
	*k = (struct kill_event){.ev.run = kill_run,
				 .e = e,
				 .reply_worker = reply_worker,
				 .session = id & ((1ull << ID_SESSION_BITS) - 1),
				 .code = code,
				 .done = done,
				 .arg = arg};
	snprintf(k->reason, sizeof(k->reason), "%s", reason);
	fanout_post_event(e->fanout, worker, &k->ev);
	return 0;
}
