/* SPDX-License-Identifier: BSD-3-Clause */
/* The node-wide messaging core: the node, its workers and their local
 * subscription tables (channel -> sessions, session id -> session). The
 * bottom of the core: it calls no session, job or request code; the worker's
 * loop is worker.c, the jobs that read PostgreSQL jobs.c. Formerly also the
 * jobs that read PostgreSQL for sessions (hello, history) on
 * reader threads, answering through the workers' inboxes. */
#define LOG_COMPONENT "edge"
#include "edge-internal.h"

#include "clock.h"
#include "err.h"
#include "log.h"
#include "mention.h"
#include "metrics.h"
#include "presence.h"
#include "publish.h"
#include "store.h"

#include <endian.h>
#include <errno.h>
#include <rte_errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct metric_counter edge_m_lagged, edge_m_deliveries;
struct metric_histogram edge_m_fanout_latency;

struct edge *edge_create(const struct edge_config *cfg, struct fanout *fanout,
			 struct persist_reader *reader, const struct route *route,
			 const struct edge_protocol *protocol, int nworkers)
{
	struct edge *e = calloc(1, sizeof(*e));
	static bool registered;

	if (e == NULL)
		return NULL;
	e->cfg = *cfg;
	edge_set_limits(e, &(struct edge_limits){cfg->publish_rate, cfg->publish_burst,
						 cfg->max_text_bytes, cfg->send_queue_bytes,
						 cfg->broad_mention_ms});
	e->mention_gate = mention_gate_create();
	e->fanout = fanout;
	e->reader = reader;
	e->nworkers = nworkers;
	e->publish = publish_create(route, fanout, e);
	e->protocol = *protocol;
	e->presence = e->publish
			  ? presence_create(fanout, cfg->presence_grace_ms,
					    cfg->presence_interval_ms, protocol->presence_deliver)
			  : NULL;
	if (e->presence == NULL || e->mention_gate == NULL) {
		presence_destroy(e->presence);
		mention_gate_destroy(e->mention_gate);
		publish_destroy(e->publish);
		free(e);
		return NULL;
	}
	presence_set_route(e->presence, route);
	if (!registered) {
		metric_histogram_init(&edge_m_fanout_latency, metric_latency_bounds_ns,
				      metric_latency_nbounds);
		metrics_register_counter("fanout_deliveries_total",
					 "Frames queued to subscriber connections.",
					 &edge_m_deliveries);
		metrics_register_counter("fanout_lagged_total",
					 "Times a slow connection dropped its queue and resumed "
					 "from PostgreSQL.",
					 &edge_m_lagged);
		metrics_register_histogram("fanout_fanout_seconds",
					   "From commit to the frame queued on a subscriber's "
					   "connection.",
					   &edge_m_fanout_latency);
		registered = true;
	}
	return e;
}

void edge_set_writer(struct edge *e, struct persist_writer *w)
{
	publish_set_writer(e->publish, w);
}

void edge_stop(struct edge *e)
{
	presence_stop(e->presence);
}

void edge_destroy(struct edge *e)
{
	if (e == NULL)
		return;
	presence_destroy(e->presence);
	mention_gate_destroy(e->mention_gate);
	publish_destroy(e->publish);
	free(e);
}

const char *edge_mention_refusal(struct edge *e, int64_t user, int64_t channel, const char *cmid,
				 const char *text, size_t len, const char **message)
{
	int interval = edge_limits(e).broad_mention_ms;
	struct mentions ms;

	if (!mention_parse(text, len, &ms) || ms.broad == MENTION_NONE)
		return NULL;
	if (interval < 0) {
		*message = "@channel and @here are turned off on this server";
		return "mention_refused";
	}
	if (!mention_gate_take(e->mention_gate, user, channel, cmid, time_mono_ns(), interval)) {
		*message = "@channel and @here are limited per channel; try again later";
		return "mention_limited";
	}
	return NULL;
}

struct presence *edge_presence(struct edge *e)
{
	return e->presence;
}

void edge_presence_message(struct edge *e, const char *from, const struct route_presence *m)
{
	presence_remote(e->presence, from, m);
}

void edge_presence_resync(struct edge *e, bool ring_changed)
{
	presence_resync(e->presence, ring_changed);
}

struct publish_state *edge_publish(struct edge *e)
{
	return e->publish;
}

struct edge_worker *edge_worker_of(struct edge *e, int index)
{
	return e->workers[index];
}

struct fanout *edge_fanout(struct edge *e)
{
	return e->fanout;
}

struct persist_reader *edge_reader(struct edge *e)
{
	return e->reader;
}

const struct edge_config *edge_config(struct edge *e)
{
	return &e->cfg;
}

struct edge_limits edge_limits(struct edge *e)
{
	return (struct edge_limits){
	    atomic_load_explicit(&e->limits.publish_rate, memory_order_relaxed),
	    atomic_load_explicit(&e->limits.publish_burst, memory_order_relaxed),
	    atomic_load_explicit(&e->limits.max_text_bytes, memory_order_relaxed),
	    atomic_load_explicit(&e->limits.send_queue_bytes, memory_order_relaxed),
	    atomic_load_explicit(&e->limits.broad_mention_ms, memory_order_relaxed)};
}

void edge_set_limits(struct edge *e, const struct edge_limits *l)
{
	atomic_store_explicit(&e->limits.publish_rate, l->publish_rate, memory_order_relaxed);
	atomic_store_explicit(&e->limits.publish_burst, l->publish_burst, memory_order_relaxed);
	atomic_store_explicit(&e->limits.max_text_bytes, l->max_text_bytes, memory_order_relaxed);
	atomic_store_explicit(&e->limits.send_queue_bytes, l->send_queue_bytes,
			      memory_order_relaxed);
	atomic_store_explicit(&e->limits.broad_mention_ms, l->broad_mention_ms,
			      memory_order_relaxed);
}

int edge_nworkers(struct edge *e)
{
	return e->nworkers;
}

/* Workers */

struct edge_worker *edge_worker_create(struct edge *e, int index, uint32_t max_sessions)
{
	struct edge_worker *w = calloc(1, sizeof(*w));
	char name[RTE_HASH_NAMESIZE];

	if (w == NULL)
		return NULL;
	w->e = e;
	w->index = index;
	snprintf(name, sizeof(name), "local_%p", (void *)w);
	struct rte_hash_parameters local = {
	    .name = name,
	    /* channels with a local subscriber: at most one per session is
	     * typical (DMs); more share the extendable buckets */
	    .entries = max_sessions > (1u << 16) ? max_sessions : 1u << 16,
	    .key_len = sizeof(int64_t),
	    .socket_id = (int)rte_socket_id(),
	    .extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE,
	};
	w->local = rte_hash_create(&local);
	snprintf(name, sizeof(name), "ids_%p", (void *)w);
	struct rte_hash_parameters ids = local;
	ids.name = name;
	ids.key_len = sizeof(uint64_t);
	ids.entries = max_sessions > 64 ? max_sessions : 64;
	w->by_id = rte_hash_create(&ids);
	if (w->local == NULL || w->by_id == NULL) {
		LOG(ERR, "cannot create worker tables: %s", rte_strerror(rte_errno));
		edge_worker_destroy(w);
		return NULL;
	}
	w->next_id = 1;
	w->transport = NULL;
	e->workers[index] = w;
	return w;
}

void edge_worker_destroy(struct edge_worker *w)
{
	if (w == NULL)
		return;
	rte_hash_free(w->local);
	rte_hash_free(w->by_id);
	free(w);
}

void edge_worker_set_transport(struct edge_worker *w, void *transport)
{
	w->transport = transport;
}

void *edge_worker_transport(struct edge_worker *w)
{
	return w->transport;
}

int edge_worker_index(struct edge_worker *w)
{
	return w->index;
}

int edge_worker_sessions(struct edge_worker *w)
{
	return w->nsessions;
}

struct session *worker_find(struct edge_worker *w, uint64_t id)
{
	void *data;

	return rte_hash_lookup_data(w->by_id, &id, &data) >= 0 ? data : NULL;
}

int worker_local_add(struct edge_worker *w, int64_t channel, struct session *s)
{
	struct chan_local *cl;
	void *data;

	if (rte_hash_lookup_data(w->local, &channel, &data) < 0) {
		cl = calloc(1, sizeof(*cl));
		if (cl == NULL || rte_hash_add_key_data(w->local, &channel, cl) < 0) {
			free(cl);
			return -ENOSPC;
		}
		if (fanout_worker_join(w->e->fanout, channel, w->index) < 0) {
			rte_hash_del_key(w->local, &channel);
			free(cl);
			return -ENOSPC;
		}
	} else {
		cl = data;
	}
	if (cl->n == cl->cap) {
		int cap = cl->cap ? cl->cap * 2 : 4;
		struct session **arr = realloc(cl->s, (size_t)cap * sizeof(*arr));
		if (arr == NULL)
			return -ENOMEM;
		cl->s = arr;
		cl->cap = cap;
	}
	cl->s[cl->n++] = s;
	return 0;
}

void worker_local_remove(struct edge_worker *w, int64_t channel, struct session *s)
{
	struct chan_local *cl;
	void *data;

	if (rte_hash_lookup_data(w->local, &channel, &data) < 0)
		return;
	cl = data;
	for (int i = 0; i < cl->n; i++) {
		if (cl->s[i] == s) {
			cl->s[i] = cl->s[--cl->n];
			break;
		}
	}
	if (cl->n == 0) {
		rte_hash_del_key(w->local, &channel);
		fanout_worker_leave(w->e->fanout, channel, w->index);
		free(cl->s);
		free(cl);
	}
}

int worker_register(struct edge_worker *w, struct session *s)
{
	s->id = w->next_id++;
	if (rte_hash_add_key_data(w->by_id, &s->id, s) < 0)
		return -ENOSPC;
	s->next = w->sessions;
	if (w->sessions)
		w->sessions->prev = s;
	w->sessions = s;
	w->nsessions++;
	return 0;
}

void worker_forget(struct edge_worker *w, struct session *s)
{
	rte_hash_del_key(w->by_id, &s->id);
	if (s->prev)
		s->prev->next = s->next;
	else
		w->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	w->nsessions--;
}
