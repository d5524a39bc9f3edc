/* SPDX-License-Identifier: BSD-3-Clause */
/* The publish door and the broadcast door: see publish.h. Live-only
 * channels get their seqs here, per channel under one lock, which also
 * keeps their frames in seq order into every inbox; durable ones get theirs
 * from the writer. */
#define LOG_COMPONENT "publish"
#include "publish.h"

#include "clock.h"
#include "log.h"
#include "mention.h"
#include "metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define LIVE_BUCKETS 256

/* A live-only channel's next seq, kept by this node. */
struct live_seq {
	struct live_seq *next;
	int64_t channel;
	int64_t seq;
};

struct publish_state {
	struct route route;
	struct fanout *fanout;
	struct persist_writer *writer;
	struct edge *owner;
	pthread_mutex_t lock;
	struct live_seq *live[LIVE_BUCKETS];
};

static struct metric_counter m_publishes, m_frames_encoded;
/* The publish's stages on this node (docs/operations.md, "The durable
 * path's stages"): arrival to the door, and arrival to its frame handed to
 * the fan-out. */
static struct metric_histogram m_accept, m_publish;

static void observe_since(struct metric_histogram *h, const struct commit_cookie *c)
{
	if (c && c->received_ns)
		metric_observe_ns(h, time_mono_ns() - c->received_ns);
}

static enum route_owner local_owner(void *ctx, int64_t channel, int64_t *epoch)
{
	*epoch = 0;
	return ROUTE_OWNER_LOCAL;
}

const struct route route_local = {.owner = local_owner};

struct publish_state *publish_create(const struct route *route, struct fanout *fanout,
				     struct edge *owner)
{
	struct publish_state *ps = calloc(1, sizeof(*ps));
	static bool registered;

	if (ps == NULL)
		return NULL;
	if (!registered) {
		metrics_register_counter("fanout_publishes_total",
					 "Publishes accepted (websocket and HTTP API).",
					 &m_publishes);
		metrics_register_counter("fanout_frames_encoded_total",
					 "Messages encoded into a frame for the fan-out (once "
					 "each).",
					 &m_frames_encoded);
		metric_histogram_init(&m_accept, metric_latency_bounds_ns, metric_latency_nbounds);
		metric_histogram_init(&m_publish, metric_latency_bounds_ns, metric_latency_nbounds);
		metrics_register_histogram("fanout_publish_accept_seconds",
					   "From a publish's arrival to the publish door (parse, "
					   "checks, hand-off).",
					   &m_accept);
		metrics_register_histogram("fanout_publish_seconds",
					   "From a publish's arrival to its frame handed to the "
					   "fan-out (after COMMIT when durable).",
					   &m_publish);
		registered = true;
	}
	ps->route = route ? *route : route_local;
	ps->fanout = fanout;
	ps->owner = owner;
	pthread_mutex_init(&ps->lock, NULL);
	return ps;
}

void publish_set_writer(struct publish_state *ps, struct persist_writer *writer)
{
	ps->writer = writer;
}

void publish_destroy(struct publish_state *ps)
{
	if (ps == NULL)
		return;
	for (int b = 0; b < LIVE_BUCKETS; b++)
		for (struct live_seq *q = ps->live[b], *next; q; q = next) {
			next = q->next;
			free(q);
		}
	pthread_mutex_destroy(&ps->lock);
	free(ps);
}

void publish_deliver(struct publish_state *ps, struct frame *f)
{
	fanout_publish(ps->fanout, f);
}

void publish_broadcast(struct publish_state *ps, struct frame *f)
{
	if (ps->route.broadcast)
		ps->route.broadcast(ps->route.ctx, f);
	publish_deliver(ps, f);
}

void publish_user_event(struct publish_state *ps, const struct route_user_event *ev)
{
	if (ps->route.user_event)
		ps->route.user_event(ps->route.ctx, ev);
}

void publish_complete(struct publish_state *ps, struct commit_cookie *cookie,
		      enum persist_outcome outcome, int error, const struct persist_message *m)
{
	cookie->done(ps->owner, cookie, outcome, error, m);
}

static struct live_seq *live_seq_of(struct publish_state *ps, int64_t channel)
{
	struct live_seq **bucket = &ps->live[(uint64_t)channel % LIVE_BUCKETS], *q;

	for (q = *bucket; q && q->channel != channel; q = q->next)
		;
	if (q == NULL && (q = calloc(1, sizeof(*q))) != NULL) {
		q->channel = channel;
		q->next = *bucket;
		*bucket = q;
	}
	return q;
}

/* A live-only publish: the node's next seq, the frame out, the ack now. */
static int publish_live(struct publish_state *ps, const struct persist_publish *p,
			struct commit_cookie *cookie)
{
	struct live_seq *q;
	struct frame *f = NULL;
	char *json;
	size_t n;
	struct persist_message m = {
	    .channel_id = p->channel_id,
	    .author_id = p->author_id,
	    .author_name = p->author_name,
	    .created_at_us = time_real_us(),
	    .kind = "message",
	    .client_msg_id = p->client_msg_id,
	    .body = p->body,
	    .body_len = p->body_len,
	};

	/* Under the lock, the seq and the hand-off to the fan-out: so frames
	 * of one channel enter every inbox in seq order. */
	pthread_mutex_lock(&ps->lock);
	q = live_seq_of(ps, p->channel_id);
	if (q) {
		m.seq = ++q->seq;
		json = encode_ephemeral(&m, &n);
		f = json ? frame_new(FRAME_EPHEMERAL, m.channel_id, m.seq, json, n) : NULL;
		free(json);
		if (f)
			publish_broadcast(ps, f);
	}
	pthread_mutex_unlock(&ps->lock);
	if (f == NULL)
		return -ENOMEM;
	metric_add(&m_frames_encoded, 1);
	observe_since(&m_publish, cookie);
	cookie->done(ps->owner, cookie, PERSIST_COMMITTED, 0, &m);
	return 0;
}

bool publish_owns(struct publish_state *ps, int64_t channel, int64_t *epoch)
{
	return ps->route.owner(ps->route.ctx, channel, epoch) == ROUTE_OWNER_LOCAL;
}

int publish_submit(struct publish_state *ps, const struct persist_publish *p, bool live,
		   struct commit_cookie *cookie)
{
	struct persist_publish routed = *p;
	int rc;

	observe_since(&m_accept, cookie);
	if (ps->route.owner(ps->route.ctx, p->channel_id, &routed.epoch) != ROUTE_OWNER_LOCAL)
		rc = ps->route.forward ? ps->route.forward(ps->route.ctx, p, live, cookie) : -EXDEV;
	else if (live)
		rc = publish_live(ps, p, cookie);
	else
		rc = persist_writer_submit(ps->writer, &routed, cookie);
	if (rc == 0)
		metric_add(&m_publishes, 1);
	return rc;
}

/* After a committed message's frame: one `mention` frame, if it mentions
 * anyone, for the subscribers it names (mention.h). Edits and reactions
 * notify nobody. */
static void publish_mentions(struct publish_state *ps, const struct persist_message *m)
{
	struct mentions ms;
	struct frame *f = NULL;
	size_t len;
	char *json;

	if (strcmp(m->kind, "message") != 0 || !mention_parse(m->body, m->body_len, &ms))
		return;
	json = mention_encode(m, &ms, &len);
	f = json ? frame_new(FRAME_MENTION, m->channel_id, m->seq, json, len) : NULL;
	free(json);
	if (f)
		publish_broadcast(ps, f);
	else
		LOG(ERR, "cannot encode the mentions of %lld:%lld", (long long)m->channel_id,
		    (long long)m->seq);
}

void publish_on_commit(void *arg, enum persist_outcome outcome, int error,
		       const struct persist_message *m, void *cookie)
{
	struct publish_state *ps = arg;
	struct commit_cookie *c = cookie;

	if (outcome == PERSIST_COMMITTED) {
		size_t len;
		char *text = encode_message(m, &len);
		struct frame *f =
		    text ? frame_new(FRAME_DURABLE, m->channel_id, m->seq, text, len) : NULL;

		free(text);
		if (f) {
			metric_add(&m_frames_encoded, 1);
			publish_broadcast(ps, f);
			publish_mentions(ps, m);
			observe_since(&m_publish, c);
		} else {
			LOG(ERR, "cannot encode message %lld:%lld; subscribers will catch up",
			    (long long)m->channel_id, (long long)m->seq);
		}
	}
	if (c && c->done)
		c->done(ps->owner, c, outcome, error, m);
}
