/* SPDX-License-Identifier: BSD-3-Clause */
/* One client connection's protocol, transport-neutral (docs/protocol.md).
 *
 * Design note
 * -----------
 * Every subscription keeps last_seq, the highest seq queued to the client. A
 * live frame with seq last_seq + 1 is queued; one at or below is a duplicate
 * and dropped; one beyond is a gap, and the subscription goes back to
 * PostgreSQL (catching_up) for the missing range while live frames are held.
 * Catch-up reads pages of history after last_seq and queues them; when the
 * last page is in, held frames above last_seq follow (those the queue takes;
 * the rest wait for the next page) and the subscription is live again. The
 * same mechanism serves a resume (subscribe with since), a
 * lost inbox frame, and a slow consumer:
 *
 * The send queue is capped in bytes. A durable frame that does not fit drops
 * every queued durable frame, rewinds each affected subscription to the seq
 * before its first dropped frame, tells the client `lagged` with those seqs,
 * and catches up from PostgreSQL once the queue has drained. So memory is
 * bounded by the cap and nothing durable is lost: a cursor, not a buffer.
 * Ephemeral frames that do not fit are simply dropped. Replies (acks,
 * history) are never dropped: when they back up past the cap the connection
 * stops being read (TCP back-pressure on a client that sends faster than it
 * reads) until the queue is half empty; only a queue four times the cap
 * closes the connection (4001). */
#define LOG_COMPONENT "session"
#include "edge-internal.h"

#include "clock.h"
#include "log.h"
#include "mention.h"
#include "presence.h"
#include "utf8.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PENDING_MAX   16
#define CATCH_UP_PAGE 128
#define HISTORY_MAX   PERSIST_HISTORY_LIMIT_MAX
#define REQ_MAX	      64

/* Membership */

/* Sorted sets of channel ids: the user's channels, and the ephemeral ones. */
static int set_index(const struct chanset *set, int64_t channel)
{
	int lo = 0, hi = set ? set->n - 1 : -1;

	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		if (set->id[mid] == channel)
			return mid;
		if (set->id[mid] < channel)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -(lo + 1);
}

/* A set with room for cap ids, holding the n of ids; NULL without memory. */
static struct chanset *set_make(const int64_t *ids, int n, int cap)
{
	struct chanset *set = malloc(sizeof(*set) + (size_t)cap * sizeof(set->id[0]));

	if (set == NULL)
		return NULL;
	set->n = n;
	set->cap = cap;
	if (n > 0)
		memcpy(set->id, ids, (size_t)n * sizeof(ids[0]));
	return set;
}

/* Adds or removes channel; 0 or -ENOMEM. */
static int set_change(struct chanset **pset, int64_t channel, bool add)
{
	struct chanset *set = *pset;
	int i = set_index(set, channel);

	if (add && i < 0) {
		int at = -i - 1, n = set ? set->n : 0;
		if (set == NULL || set->n == set->cap) {
			struct chanset *m = set_make(set ? set->id : NULL, n, n ? n * 2 : 4);
			if (m == NULL)
				return -ENOMEM;
			free(set);
			*pset = set = m;
		}
		memmove(set->id + at + 1, set->id + at, (size_t)(n - at) * sizeof(set->id[0]));
		set->id[at] = channel;
		set->n++;
	} else if (!add && i >= 0) {
		memmove(set->id + i, set->id + i + 1,
			(size_t)(set->n - i - 1) * sizeof(set->id[0]));
		set->n--;
	}
	return 0;
}

bool session_is_member(const struct session *s, int64_t channel)
{
	return set_index(s->member, channel) >= 0;
}

bool session_is_ephemeral(const struct session *s, int64_t channel)
{
	return set_index(s->ephemeral, channel) >= 0;
}

/* The publish rate limit's token bucket: true when a publish may go now. */
bool session_take_token(struct session *s)
{
	struct edge_limits lim = edge_limits(s->w->e);
	uint64_t now = time_mono_ns();

	s->tokens += (double)(now - s->refill_ns) / 1e9 * lim.publish_rate;
	if (s->tokens > lim.publish_burst)
		s->tokens = lim.publish_burst;
	s->refill_ns = now;
	if (s->tokens < 1)
		return false;
	s->tokens -= 1;
	return true;
}

struct sub *session_find_sub(struct session *s, int64_t channel)
{
	for (int i = 0; i < s->nsubs; i++)
		if (s->subs[i].channel == channel)
			return &s->subs[i];
	return NULL;
}

/* Sending */

static void kick(struct session *s)
{
	if (session_queued(s) > 0 || s->close_code)
		s->ops->want_write(s->ctx);
}

static int queue_push(struct session *s, struct frame *f)
{
	struct sendq *q = s->q;

	if (q == NULL || q->len == q->cap) {
		unsigned cap = q ? q->cap * 2 : 16;
		struct sendq *n = malloc(sizeof(*n) + cap * sizeof(n->f[0]));

		if (n == NULL)
			return -ENOMEM;
		*n = (struct sendq){q ? q->bytes : 0, 0, q ? q->len : 0, cap};
		for (unsigned i = 0; i < n->len; i++)
			n->f[i] = q->f[(q->head + i) % q->cap];
		free(q);
		s->q = q = n;
	}
	q->f[(q->head + q->len) % q->cap] = f;
	q->len++;
	q->bytes += f->len;
	return 0;
}

/* Takes the frame at the head (the caller's reference now). */
static struct frame *queue_pop(struct session *s)
{
	struct sendq *q = s->q;
	struct frame *f = q->f[q->head];

	q->head = (q->head + 1) % q->cap;
	q->len--;
	q->bytes -= f->len;
	return f;
}

/* Most sessions are idle most of the time: one whose queue is empty at the
 * worker's tick gives it back (16 entries, 128 bytes, at least), so an
 * idle one holds none, and a busy one does not free and take its queue
 * again at every burst (a few per cent of the CPU per delivery). */
void session_trim(struct session *s)
{
	if (s->q && s->q->len == 0 && !s->sending) {
		free(s->q);
		s->q = NULL;
	}
}

/* Drops every queued durable and ephemeral frame, rewinding subscriptions;
 * extra (not yet queued, may be NULL) counts as dropped too. */
static void lag(struct session *s, struct frame *extra)
{
	struct sendq *q = s->q;
	unsigned nkeep = 0, first = s->sending ? 1 : 0;
	json_t *list = json_array();

	metric_add(&edge_m_lagged, 1);
	if (list == NULL) {
		session_request_close(s, CLOSE_NOT_READING, "out of memory");
		return;
	}
	/* A frame already handed to the transport stays: it is on its way. The
	 * kept ones move up in place (a kept frame never overtakes one unread). */
	for (unsigned i = 0; q && i < q->len; i++) {
		struct frame *f = q->f[(q->head + i) % q->cap];
		struct sub *sub;

		if (i < first || f->kind == FRAME_CONTROL) {
			q->f[(q->head + nkeep++) % q->cap] = f;
			continue;
		}
		sub = f->kind == FRAME_DURABLE ? session_find_sub(s, f->channel) : NULL;
		if (sub && f->seq - 1 < sub->last_seq)
			sub->last_seq = f->seq - 1;
		if (sub)
			sub->catching_up = sub->anchored = true;
		q->bytes -= f->len;
		frame_unref(f);
	}
	if (q)
		q->len = nkeep; /* an empty ring is refilled at once, below */
	if (extra && extra->kind == FRAME_DURABLE) {
		struct sub *sub = session_find_sub(s, extra->channel);
		if (sub && extra->seq - 1 < sub->last_seq)
			sub->last_seq = extra->seq - 1;
		if (sub)
			sub->catching_up = sub->anchored = true;
	}
	for (int i = 0; i < s->nsubs; i++)
		if (s->subs[i].catching_up)
			json_array_append_new(
			    list, json_pack("{s:I, s:I}", "channel", (json_int_t)s->subs[i].channel,
					    "resume_from", (json_int_t)s->subs[i].last_seq));
	session_send_json(s, json_pack("{s:s, s:o}", "type", "lagged", "channels", list));
}

/* Whether f fits the send queue: within its cap, or alone. A frame larger
 * than the whole cap (a small send_queue_bytes) goes out by itself, rather
 * than lagging the queue, or being read again from PostgreSQL, for ever. */
static bool fits(const struct session *s, const struct frame *f)
{
	size_t queued = session_queued_bytes(s);

	return queued == 0 || queued + f->len <= edge_limits(s->w->e).send_queue_bytes;
}

/* Queues a frame (takes the reference). */
static void enqueue(struct session *s, struct frame *f)
{
	size_t cap = edge_limits(s->w->e).send_queue_bytes;

	if (s->state == SESSION_CLOSING) {
		frame_unref(f);
		return;
	}
	if (f->kind != FRAME_CONTROL && !fits(s, f)) {
		if (f->kind == FRAME_EPHEMERAL || f->kind == FRAME_MENTION) {
			frame_unref(f);
			return;
		}
		lag(s, f);
		frame_unref(f);
		kick(s);
		return;
	}
	if (f->kind == FRAME_CONTROL && session_queued_bytes(s) > 4 * cap) {
		frame_unref(f);
		session_request_close(s, CLOSE_NOT_READING, "not reading");
		return;
	}
	if (queue_push(s, f) < 0) {
		frame_unref(f);
		session_request_close(s, CLOSE_NOT_READING, "out of memory");
		return;
	}
	kick(s);
}

void session_send_json(struct session *s, json_t *o)
{
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	struct frame *f = text ? frame_new(FRAME_CONTROL, 0, 0, text, strlen(text)) : NULL;

	json_decref(o);
	free(text);
	if (f)
		enqueue(s, f);
}

void session_send_frame(struct session *s, struct frame *f)
{
	enqueue(s, f);
}

void session_error(struct session *s, const char *req, const char *code, const char *message)
{
	json_t *o = json_pack("{s:s, s:s, s:s}", "type", "error", "code", code, "message", message);

	if (o && req)
		json_object_set_new(o, "req", json_string(req));
	session_send_json(s, o);
}

struct frame *session_peek(struct session *s)
{
	if (session_queued(s) == 0)
		return NULL;
	s->sending = true;
	return s->q->f[s->q->head];
}

int session_peek_many(struct session *s, struct frame **out, int max)
{
	int n = 0;

	for (; n < max && (unsigned)n < session_queued(s); n++)
		out[n] = s->q->f[(s->q->head + (unsigned)n) % s->q->cap];
	s->sending = n > 0;
	return n;
}

void session_sent_many(struct session *s, int n)
{
	/* Each but the last released quietly; the last through session_sent(),
	 * which also resumes reading and catch-up and asks to write more. */
	for (; n > 1 && session_queued(s) > 0; n--)
		frame_unref(queue_pop(s));
	if (n == 1) {
		s->sending = true;
		session_sent(s);
	}
	s->sending = false;
}

void session_sent(struct session *s)
{
	if (!s->sending || session_queued(s) == 0)
		return;
	s->sending = false;
	frame_unref(queue_pop(s));
	if (session_queued_bytes(s) < edge_limits(s->w->e).send_queue_bytes / 2) {
		if (s->rx_paused) {
			s->rx_paused = false;
			s->ops->pause_rx(s->ctx, false);
		}
		session_fetch_more(s);
	}
	kick(s);
}

void session_request_close(struct session *s, int code, const char *reason)
{
	if (s->close_code)
		return;
	s->close_code = code;
	s->close_reason = strndup(reason, 63); /* NULL without memory: no reason */
	/* Routine closes (a client leaving, a restart) get no line each. */
	if (code != 1000 && code != 1001 && code != 1012)
		LOG(INFO, "closing a session of %s: %d %s", s->user_name, code, reason);
	s->state = SESSION_CLOSING;
	s->ops->want_write(s->ctx);
}

int session_close_code(struct session *s, const char **reason)
{
	/* Replies queued before the close decision go out first. */
	if (!s->close_code || (session_queued(s) > 0 && s->close_code != CLOSE_NOT_READING))
		return 0;
	*reason = s->close_reason ? s->close_reason : "";
	return s->close_code;
}

/* Live delivery and catch-up */

static void hold(struct sub *sub, struct session *s, struct frame *f)
{
	size_t cap = edge_limits(s->w->e).send_queue_bytes / 2;

	if (sub->held_bytes + f->len > cap || sub->nheld == sub->capheld) {
		int capheld = sub->capheld ? sub->capheld * 2 : 16;
		struct frame **held = sub->held_bytes + f->len > cap
					  ? NULL
					  : realloc(sub->held, (size_t)capheld * sizeof(*held));

		if (held == NULL) {
			/* Over budget: forget what is held; PostgreSQL has it. */
			for (int i = 0; i < sub->nheld; i++)
				frame_unref(sub->held[i]);
			sub->nheld = 0;
			sub->held_bytes = 0;
			sub->held_dropped = true;
			frame_unref(f);
			return;
		}
		sub->held = held;
		sub->capheld = capheld;
	}
	sub->held[sub->nheld++] = f;
	sub->held_bytes += f->len;
}

void session_deliver(struct session *s, struct frame *f)
{
	struct sub *sub = session_find_sub(s, f->channel);

	if (sub == NULL || s->state != SESSION_READY) {
		frame_unref(f);
		return;
	}
	if (f->kind == FRAME_MENTION &&
	    !(session_is_member(s, f->channel) &&
	      mention_wants((const char *)frame_payload(f), f->len, s->user_name))) {
		frame_unref(f); /* for other members */
		return;
	}
	if (f->kind != FRAME_DURABLE) {
		enqueue(s, f);
		return;
	}
	if (f->seq > sub->seen_seq)
		sub->seen_seq = f->seq;
	if (sub->catching_up) {
		hold(sub, s, f);
		return;
	}
	if (f->seq <= sub->last_seq) {
		frame_unref(f); /* already sent: from history, or a duplicate */
		return;
	}
	if (sub->anchored && f->seq != sub->last_seq + 1) {
		/* A gap (a lost inbox frame; seq 1 itself after a subscribe
		 * from since 0): fetch it, hold this one. */
		sub->catching_up = true;
		hold(sub, s, f);
		session_fetch_more(s);
		return;
	}
	sub->last_seq = f->seq;
	sub->anchored = true;
	enqueue(s, f);
}

/* Starts a page fetch for every subscription that needs one, while the queue
 * has room. */
void session_fetch_more(struct session *s)
{
	if (s->state != SESSION_READY ||
	    session_queued_bytes(s) >= edge_limits(s->w->e).send_queue_bytes / 2)
		return;
	for (int i = 0; i < s->nsubs; i++) {
		struct sub *sub = &s->subs[i];

		if (!sub->catching_up || sub->fetching)
			continue;
		if (s->w->e->protocol.history_start(s, sub->channel, sub->last_seq, 0, 0,
						    CATCH_UP_PAGE, NULL, true) == 0)
			sub->fetching = true;
	}
}

void session_catch_up(struct session *s, int64_t channel)
{
	struct sub *sub = session_find_sub(s, channel);

	if (sub && sub->anchored) {
		sub->catching_up = true;
		session_fetch_more(s);
	}
}

void session_catch_up_all(struct session *s)
{
	for (int i = 0; i < s->nsubs; i++)
		if (s->subs[i].anchored)
			s->subs[i].catching_up = true;
	session_fetch_more(s);
}

/* Keeps held frames from index i on (those before it are gone). */
static void keep_held_from(struct sub *sub, int i)
{
	memmove(sub->held, sub->held + i, (size_t)(sub->nheld - i) * sizeof(*sub->held));
	sub->nheld -= i;
}

static void release_held(struct session *s, struct sub *sub)
{
	int i = 0;

	/* Held frames are in seq order; those already replayed are dropped. */
	for (; i < sub->nheld && sub->held[i]->seq <= sub->last_seq; i++) {
		sub->held_bytes -= sub->held[i]->len;
		frame_unref(sub->held[i]);
	}
	if (i < sub->nheld && sub->held[i]->seq != sub->last_seq + 1) {
		/* Still a gap: more was committed than the held frames cover. */
		keep_held_from(sub, i);
		return;
	}
	/* Queued while they fit, as a page is: one that would overfill the
	 * queue would lag it and drop what was just replayed. The rest stay
	 * held, still catching up, until the queue drains. */
	for (; i < sub->nheld && fits(s, sub->held[i]); i++) {
		sub->last_seq = sub->held[i]->seq;
		sub->held_bytes -= sub->held[i]->len;
		enqueue(s, sub->held[i]);
	}
	if (i < sub->nheld) {
		keep_held_from(sub, i);
		return;
	}
	sub->nheld = 0;
	sub->held_bytes = 0;
	sub->catching_up = false;
}

static json_t *message_json(const struct persist_message *m)
{
	size_t len;
	char *text = encode_message(m, &len);
	json_t *o = text ? json_loadb(text, len, 0, NULL) : NULL;

	free(text);
	return o;
}

/* A resume from beyond the channel's head would wait for seqs that exist
 * nowhere, and drop the real ones as duplicates: the subscription goes on
 * from the head instead, and the client is told (docs/protocol.md). */
static void since_ahead(struct session *s, struct sub *sub, int64_t head)
{
	session_send_json(s, json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "type", "error", "code",
				       "since_ahead", "message",
				       "since is beyond the channel's last seq; subscribed from "
				       "its last seq instead",
				       "channel", (json_int_t)sub->channel, "since",
				       (json_int_t)sub->last_seq, "last_seq", (json_int_t)head));
	sub->last_seq = head;
}

void session_history_page(struct session *s, struct persist_history *page, int64_t channel,
			  const char *req, bool catch_up)
{
	struct sub *sub = catch_up ? session_find_sub(s, channel) : NULL;

	if (!catch_up) {
		json_t *list = json_array();

		if (page->error) {
			session_error(s, req, "unavailable", "history could not be read; retry");
			return;
		}
		for (int i = 0; i < page->count; i++)
			json_array_append_new(list, message_json(&page->messages[i]));
		session_send_json(s, json_pack("{s:s, s:s, s:I, s:o, s:b}", "type", "history",
					       "req", req, "channel", (json_int_t)channel,
					       "messages", list, "has_more", page->has_more));
		return;
	}
	if (sub == NULL || !sub->catching_up)
		return; /* unsubscribed meanwhile */
	sub->fetching = false;
	if (page->error) {
		session_fetch_more(s); /* the reader already retried; try again */
		return;
	}
	if (page->count == 0 && page->head >= 0 && page->head < sub->last_seq)
		since_ahead(s, sub, page->head);
	for (int i = 0; i < page->count; i++) {
		const struct persist_message *m = &page->messages[i];
		size_t len;
		char *text;
		struct frame *f;

		if (m->seq > sub->seen_seq)
			sub->seen_seq = m->seq;
		if (m->seq <= sub->last_seq)
			continue;
		text = encode_message(m, &len);
		f = text ? frame_new(FRAME_DURABLE, channel, m->seq, text, len) : NULL;
		free(text);
		if (f == NULL)
			return;
		if (!fits(s, f)) {
			/* Replay never overfills the queue (that would lag it again):
			 * the rest of the page is read again once it drains. */
			frame_unref(f);
			session_fetch_more(s);
			return;
		}
		sub->last_seq = m->seq;
		enqueue(s, f);
	}
	if (page->has_more || sub->held_dropped) {
		sub->held_dropped = false;
		session_fetch_more(s);
		return;
	}
	release_held(s, sub);
	if (sub->catching_up)
		session_fetch_more(s);
}

void session_on_text(struct session *s, const char *data, size_t len)
{
	s->last_rx_ns = time_mono_ns();
	if (s->state == SESSION_CLOSING)
		return;
	if (s->state == SESSION_STARTING) {
		/* Kept until hello: clients may speak first. */
		char *copy;

		if (s->pending == NULL)
			s->pending = calloc(PENDING_MAX, sizeof(*s->pending));
		if (s->pending == NULL || s->npending == PENDING_MAX ||
		    (copy = strndup(data, len)) == NULL) {
			session_error(s, NULL, "not_ready", "wait for hello before sending more");
			return;
		}
		s->pending[s->npending++] = copy;
		return;
	}
	s->w->e->protocol.handle(s, data, len);
	if (!s->rx_paused && session_queued_bytes(s) > edge_limits(s->w->e).send_queue_bytes) {
		s->rx_paused = true;
		s->ops->pause_rx(s->ctx, true);
	}
}

void session_remove_sub(struct session *s, struct sub *sub)
{
	for (int i = 0; i < sub->nheld; i++)
		frame_unref(sub->held[i]);
	free(sub->held);
	worker_local_remove(s->w, sub->channel, s);
	*sub = s->subs[--s->nsubs];
}

/* Lifecycle */

struct session *session_open(struct edge_worker *w, const char *user_name,
			     const struct session_transport *t)
{
	const char *peer = t->peer ? t->peer : "";
	size_t ulen = strnlen(user_name, 64), plen = strnlen(peer, 47);
	struct session *s = calloc(1, offsetof(struct session, user_name) + ulen + 1 + plen + 1);

	if (s == NULL)
		return NULL;
	s->w = w;
	s->ops = t->ops;
	s->ctx = t->ctx;
	s->state = SESSION_STARTING;
	memcpy(s->user_name, user_name, ulen);
	memcpy(s->user_name + ulen + 1, peer, plen); /* session_peer() */
	s->opened_us = time_real_us();
	s->tokens = edge_limits(w->e).publish_burst;
	s->refill_ns = s->last_rx_ns = time_mono_ns();
	int rc = s->w->e->protocol.hello_start(s);
	if (rc < 0) {
		free(s->pending);
		free(s);
		errno = -rc;
		return NULL;
	}
	return s;
}

/* The live-only channels among those hello lists. */
static void mark_ephemeral(struct session *s, json_t *channels)
{
	size_t i;
	json_t *c;

	json_array_foreach(channels, i, c)
	{
		json_t *kind = json_object_get(c, "kind");
		if (json_is_string(kind) && strcmp(json_string_value(kind), "ephemeral") == 0)
			set_change(&s->ephemeral, json_integer_value(json_object_get(c, "id")),
				   true);
	}
}

void session_ready(struct session *s, int64_t user_id, json_t *channels, const int64_t *member,
		   int nmember)
{
	const struct edge_config *cfg = edge_config(s->w->e);
	char id[40];

	s->user_id = user_id;
	s->member = nmember > 0 ? set_make(member, nmember, nmember) : NULL;
	if (nmember > 0 && s->member == NULL) {
		json_decref(channels);
		session_request_close(s, 1011, "out of memory");
		return;
	}
	mark_ephemeral(s, channels);
	s->state = SESSION_READY;
	presence_connect(edge_presence(s->w->e), s->user_name);
	snprintf(id, sizeof(id), "%d-%lu", s->w->index, (unsigned long)s->id);
	session_send_json(s, json_pack("{s:s, s:i, s:s, s:{s:I, s:s}, s:i, s:o}", "type", "hello",
				       "protocol", PROTOCOL_VERSION, "session", id, "user", "id",
				       (json_int_t)user_id, "name", s->user_name, "heartbeat_ms",
				       cfg->heartbeat_ms, "channels", channels));
	for (int i = 0; i < s->npending; i++) {
		s->w->e->protocol.handle(s, s->pending[i], strlen(s->pending[i]));
		free(s->pending[i]);
	}
	s->npending = 0;
	free(s->pending); /* only a client that spoke before hello had them */
	s->pending = NULL;
}

void session_member_change(struct session *s, int64_t channel, bool added, bool ephemeral)
{
	struct sub *sub;

	if (s->state != SESSION_READY)
		return;
	set_change(&s->member, channel, added);
	set_change(&s->ephemeral, channel, added && ephemeral);
	if (!added && (sub = session_find_sub(s, channel)) != NULL)
		session_remove_sub(s, sub);
	session_send_json(s, json_pack("{s:s, s:I}", "type", added ? "joined" : "left", "channel",
				       (json_int_t)channel));
}

void session_closed(struct session *s)
{
	if (s->user_id) {
		presence_disconnect(edge_presence(s->w->e), s->user_name);
		presence_unwatch(edge_presence(s->w->e), s->w->index, s->id);
	}
	while (s->nsubs > 0)
		session_remove_sub(s, &s->subs[s->nsubs - 1]);
	while (session_queued(s) > 0)
		frame_unref(queue_pop(s));
	for (int i = 0; i < s->npending; i++)
		free(s->pending[i]);
	worker_forget(s->w, s);
	free(s->pending);
	free(s->subs);
	free(s->member);
	free(s->ephemeral);
	free(s->q);
	free(s->close_reason);
	free(s);
}

void session_presence_deliver(void *worker_arg, uint64_t session, const char *json)
{
	struct session *s = worker_find(worker_arg, session);

	if (s)
		session_send_json(s, json_loads(json, 0, NULL));
}
