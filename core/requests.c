/* SPDX-License-Identifier: BSD-3-Clause */
/* The requests a client sends over its session (docs/protocol.md): parsing,
 * validation, membership checks, and handing each to the part that does it
 * (subscriptions to session.c, publishes and events to the persist writer,
 * reads and membership to reader-thread jobs in edge.c). Worker thread only.
 * Every request may carry a "req" that its answer echoes. */
#define LOG_COMPONENT "session"
#include "edge-internal.h"
#include "handoff.h"
#include "publish.h"
#include "publish_request.h"

#include "clock.h"
#include "jwt.h"
#include "log.h"
#include "presence.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define HISTORY_MAX	   PERSIST_HISTORY_LIMIT_MAX
#define TYPING_INTERVAL_NS 2000000000ull /* one typing notice per 2 s per channel */
#define TYPING_EXPIRES_MS  5000

static void on_subscribe(struct session *s, json_t *msg, const char *req, const char *type)
{
	json_t *list = json_object_get(msg, "channels"), *item, *done = json_array();
	size_t i;

	if (!json_is_array(list) || json_array_size(list) == 0) {
		json_decref(done);
		session_error(s, req, "bad_request", "channels: a non-empty array is required");
		return;
	}
	/* Check everything first: a refused subscribe changes nothing. */
	json_array_foreach(list, i, item)
	{
		int64_t channel;
		json_t *since = json_object_get(item, "since");

		if (!request_channel(json_object_get(item, "channel"), &channel) ||
		    (since && !json_is_null(since) &&
		     (!json_is_integer(since) || json_integer_value(since) < 0))) {
			json_decref(done);
			session_error(s, req, "bad_request",
				      "each entry needs \"channel\" (id) and an optional "
				      "\"since\" (seq >= 0)");
			return;
		}
		if (!session_is_member(s, channel)) {
			json_decref(done);
			session_error(s, req, "not_member", "not a member of that channel");
			return;
		}
	}
	json_array_foreach(list, i, item)
	{
		int64_t channel = json_integer_value(json_object_get(item, "channel"));
		json_t *since = json_object_get(item, "since");
		struct sub *sub = session_find_sub(s, channel);

		if (sub == NULL) {
			if (s->nsubs == s->capsubs) {
				int cap = s->capsubs ? s->capsubs * 2 : 8;
				struct sub *subs = realloc(s->subs, (size_t)cap * sizeof(*subs));
				if (subs == NULL)
					break;
				s->subs = subs;
				s->capsubs = cap;
			}
			if (worker_local_add(s->w, channel, s) < 0) {
				session_error(s, req, "unavailable", "subscription table full");
				break;
			}
			sub = &s->subs[s->nsubs++];
			memset(sub, 0, sizeof(*sub));
			sub->channel = channel;
		}
		/* Registered for live frames before history is read: nothing
		 * committed meanwhile can fall between the two. */
		/* A live-only channel has no history: since is ignored. */
		if (since && json_is_integer(since) && !session_is_ephemeral(s, channel)) {
			sub->last_seq = json_integer_value(since);
			sub->anchored = true;
			sub->catching_up = true;
		}
		json_array_append_new(done, json_integer(channel));
	}
	session_send_json(
	    s, json_pack("{s:s, s:s?, s:o}", "type", "subscribed", "req", req, "channels", done));
	session_fetch_more(s);
}

static void on_unsubscribe(struct session *s, json_t *msg, const char *req, const char *type)
{
	json_t *list = json_object_get(msg, "channels"), *item, *done = json_array();
	size_t i;

	if (!json_is_array(list)) {
		json_decref(done);
		session_error(s, req, "bad_request",
			      "channels: an array of channel ids is required");
		return;
	}
	json_array_foreach(list, i, item)
	{
		int64_t channel;
		struct sub *sub;

		if (!request_channel(item, &channel))
			continue;
		sub = session_find_sub(s, channel);
		if (sub)
			session_remove_sub(s, sub);
		json_array_append_new(done, json_integer(channel));
	}
	session_send_json(
	    s, json_pack("{s:s, s:s?, s:o}", "type", "unsubscribed", "req", req, "channels", done));
}

struct publish_cookie {
	struct commit_cookie base;
	struct fanout_event ev;
	int worker;
	uint64_t session;
	enum persist_outcome outcome;
	int error;
	int64_t channel, seq, ts;
	bool live; /* a live-only channel's: acked with "ephemeral": true */
	char req[REQ_MAX + 1];
	char client_msg_id[PERSIST_CLIENT_MSG_ID_MAX + 1];
};

static void publish_answer(void *worker_arg, struct fanout_event *ev)
{
	struct publish_cookie *c = (void *)((char *)ev - offsetof(struct publish_cookie, ev));
	struct session *s = worker_find(worker_arg, c->session);
	const char *code, *message;

	if (s == NULL)
		goto out;
	if (c->outcome == PERSIST_FAILED) {
		code = publish_failure(c->error, &message);
		session_error(s, c->req, code, message);
		goto out;
	}
	session_send_json(s, publish_ack(c->req, c->channel, c->seq, c->ts, c->client_msg_id,
					 c->outcome == PERSIST_DUPLICATE, c->live));
out:
	free(c);
}

static void publish_done(struct edge *e, struct commit_cookie *base, enum persist_outcome outcome,
			 int error, const struct persist_message *m)
{
	struct publish_cookie *c = (struct publish_cookie *)base;

	c->outcome = outcome;
	c->error = error;
	c->seq = m->seq;
	c->ts = m->created_at_us;
	c->ev.run = publish_answer;
	fanout_post_event(edge_fanout(e), c->worker, &c->ev);
}

static struct publish_cookie *publish_cookie(struct session *s, const char *req, const char *id,
					     int64_t channel)
{
	struct publish_cookie *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		session_error(s, req, "overloaded", "retry later");
		return NULL;
	}
	c->base.done = publish_done;
	c->base.received_ns = s->last_rx_ns;
	c->worker = s->w->index;
	c->session = s->id;
	c->channel = channel;
	snprintf(c->req, sizeof(c->req), "%s", req ? req : "");
	snprintf(c->client_msg_id, sizeof(c->client_msg_id), "%s", id);
	return c;
}

/* After handing a cookie to the writer (or a job): on failure the cookie is
 * freed and the client told why. */
static void submitted(struct session *s, struct publish_cookie *c, int rc, const char *req)
{
	const char *code, *message;

	if (rc == 0)
		return;
	free(c);
	code = publish_submit_error(rc, &message);
	session_error(s, req, code, message);
}

/* An emoji (or a short name such as ":tada:"): 1 to 32 bytes, no whitespace
 * or control characters. */
static bool emoji_valid(const char *e)
{
	size_t n = strlen(e);

	if (n == 0 || n > 32)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)e[i] <= ' ' || e[i] == 0x7f)
			return false;
	return true;
}

/* A message sent ends its typing: the next "typing" on that channel is
 * announced at once, not coalesced with the one before the message (the
 * others' clients drop the typing line when the message arrives). */
static void typing_done(struct session *s, int64_t channel)
{
	struct sub *sub = session_find_sub(s, channel);

	if (sub)
		sub->typing_ns = 0;
}

static void on_publish(struct session *s, json_t *msg, const char *req, const char *type)
{
	const char *code, *message;
	struct publish_request r;
	struct publish_cookie *c;
	int rc;

	code = publish_request_parse(msg, edge_limits(s->w->e).max_text_bytes, &r, &message);
	if (code) {
		session_error(s, req, code, message);
		return;
	}
	typing_done(s, r.channel);
	if (!session_is_member(s, r.channel)) {
		session_error(s, req, "not_member", "not a member of that channel");
		return;
	}
	if (!session_take_token(s)) {
		session_error(s, req, "rate_limited", "too many publishes; slow down and retry");
		return;
	}
	code = edge_mention_refusal(s->w->e, s->user_id, r.channel, r.client_msg_id, r.text,
				    r.text_len, &message);
	if (code) {
		session_error(s, req, code, message);
		return;
	}
	c = publish_cookie(s, req, r.client_msg_id, r.channel);
	if (c == NULL)
		return;
	/* A live-only channel: not stored, not deduplicated, acked at once. */
	c->live = session_is_ephemeral(s, r.channel);
	struct persist_publish p = {
	    .channel_id = r.channel,
	    .author_id = s->user_id,
	    .parent_seq = r.parent_seq,
	    .client_msg_id = c->client_msg_id,
	    .author_name = s->user_name,
	    .body = r.text,
	    .body_len = r.text_len,
	};
	rc = publish_submit(edge_publish(s->w->e), &p, c->live, &c->base);
	submitted(s, c, rc, req);
}

static void on_history(struct session *s, json_t *msg, const char *req, const char *type)
{
	json_t *after = json_object_get(msg, "after"), *before = json_object_get(msg, "before");
	json_t *thread = json_object_get(msg, "thread"), *limit = json_object_get(msg, "limit");
	int64_t channel;
	int n = 50;

	if (!request_channel(json_object_get(msg, "channel"), &channel) ||
	    (after && (!json_is_integer(after) || json_integer_value(after) < 0)) ||
	    (before && (!json_is_integer(before) || json_integer_value(before) < 0)) ||
	    (thread && !json_is_integer(thread)) ||
	    (limit && (!json_is_integer(limit) || json_integer_value(limit) < 1 ||
		       json_integer_value(limit) > HISTORY_MAX)) ||
	    (after && before)) {
		session_error(s, req, "bad_request",
			      "history needs \"channel\", at most one of \"after\" or \"before\" "
			      "(seqs, 0 or more) or \"thread\", and \"limit\" 1..1000");
		return;
	}
	if (!session_is_member(s, channel)) {
		session_error(s, req, "not_member", "not a member of that channel");
		return;
	}
	if (limit)
		n = (int)json_integer_value(limit);
	/* Neither after nor before: the newest page (docs/protocol.md). */
	if (edge_history_start(s, channel, after ? json_integer_value(after) : -1,
			       before ? json_integer_value(before) : 0,
			       thread ? json_integer_value(thread) : 0, n, req ? req : "",
			       false) < 0)
		session_error(s, req, "overloaded", "retry later");
}

/* An event on a message: edit, delete (author or channel admin only, checked
 * against PostgreSQL first), react, unreact. Persisted with its own seq;
 * parent_seq names the message it acts on. */
static void on_event(struct session *s, json_t *msg, const char *req, const char *kind)
{
	size_t max_text = edge_limits(s->w->e).max_text_bytes;
	bool is_edit = strcmp(kind, "edit") == 0, is_delete = strcmp(kind, "delete") == 0;
	bool is_reaction = !is_edit && !is_delete;
	json_t *target = json_object_get(msg, "seq"), *id = json_object_get(msg, "client_msg_id");
	json_t *arg = json_object_get(msg, is_reaction ? "emoji" : "text");
	struct publish_cookie *c;
	char random_id[48];
	int64_t channel;
	int rc;

	if (!request_channel(json_object_get(msg, "channel"), &channel) ||
	    !json_is_integer(target) || json_integer_value(target) <= 0 ||
	    (!is_delete && !json_is_string(arg)) ||
	    (id && (!json_is_string(id) || json_string_length(id) == 0 ||
		    json_string_length(id) > PERSIST_CLIENT_MSG_ID_MAX))) {
		session_error(s, req, "bad_request",
			      is_reaction ? "needs \"channel\", \"seq\" and \"emoji\""
			      : is_edit	  ? "needs \"channel\", \"seq\" and \"text\""
					  : "needs \"channel\" and \"seq\"");
		return;
	}
	if (is_reaction && !emoji_valid(json_string_value(arg))) {
		session_error(s, req, "bad_request", "emoji: 1 to 32 bytes, no spaces");
		return;
	}
	if (is_edit && (json_string_length(arg) == 0 || json_string_length(arg) > max_text)) {
		session_error(s, req, "too_large", "text must be 1 byte up to the server's limit");
		return;
	}
	if (!session_is_member(s, channel)) {
		session_error(s, req, "not_member", "not a member of that channel");
		return;
	}
	if (!session_take_token(s)) {
		session_error(s, req, "rate_limited", "too many requests; slow down and retry");
		return;
	}
	if (id == NULL) {
		/* No id: a random one, so the event is simply not deduplicated. */
		uint64_t r[2];
		if (getrandom(r, sizeof(r), 0) != sizeof(r)) {
			session_error(s, req, "overloaded", "retry later");
			return;
		}
		snprintf(random_id, sizeof(random_id), "%s-%016lx%016lx", kind, (unsigned long)r[0],
			 (unsigned long)r[1]);
	}
	c = publish_cookie(s, req, id ? json_string_value(id) : random_id, channel);
	if (c == NULL)
		return;
	struct persist_publish p = {
	    .channel_id = channel,
	    .author_id = s->user_id,
	    .parent_seq = json_integer_value(target),
	    .kind = kind,
	    .client_msg_id = c->client_msg_id,
	    .author_name = s->user_name,
	    .body = is_delete ? "" : json_string_value(arg),
	    .body_len = is_delete ? 0 : json_string_length(arg),
	};
	if (is_reaction)
		rc = publish_submit(edge_publish(s->w->e), &p, false, &c->base);
	else
		rc = edge_authorized_event_start(s, &p, &c->base, req);
	submitted(s, c, rc, req);
}

static void on_mark_read(struct session *s, json_t *msg, const char *req, const char *type)
{
	json_t *seq = json_object_get(msg, "seq");
	int64_t channel;

	if (!request_channel(json_object_get(msg, "channel"), &channel) || !json_is_integer(seq) ||
	    json_integer_value(seq) < 0) {
		session_error(s, req, "bad_request", "mark_read needs \"channel\" and \"seq\"");
		return;
	}
	if (!session_is_member(s, channel)) {
		session_error(s, req, "not_member", "not a member of that channel");
		return;
	}
	if (edge_mark_read_start(s, channel, json_integer_value(seq), req) < 0)
		session_error(s, req, "overloaded", "retry later");
}

/* Typing is ephemeral: never stored, dropped first under back-pressure, and
 * coalesced to one notice per TYPING_INTERVAL_NS per channel and connection;
 * the extra ones are dropped without an error (a client may send one per
 * keystroke). Receivers show it for expires_ms unless renewed. */
static void on_typing(struct session *s, json_t *msg, const char *req, const char *type)
{
	uint64_t now = time_mono_ns();
	json_t *o;
	char *text;
	struct frame *f;
	struct sub *sub;
	int64_t channel;

	if (!request_channel(json_object_get(msg, "channel"), &channel)) {
		session_error(s, req, "bad_request", "typing needs \"channel\"");
		return;
	}
	if (!session_is_member(s, channel)) {
		session_error(s, req, "not_member", "not a member of that channel");
		return;
	}
	sub = session_find_sub(s, channel);
	if (sub == NULL) {
		session_error(s, req, "not_subscribed", "subscribe to the channel first");
		return;
	}
	if (sub->typing_ns && now - sub->typing_ns < TYPING_INTERVAL_NS)
		return;
	sub->typing_ns = now;
	o = json_pack("{s:s, s:I, s:s, s:i}", "type", "typing", "channel", (json_int_t)channel,
		      "user", s->user_name, "expires_ms", TYPING_EXPIRES_MS);
	text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	f = text ? frame_new(FRAME_EPHEMERAL, channel, 0, text, strlen(text)) : NULL;
	free(text);
	if (f)
		publish_broadcast(edge_publish(s->w->e), f);
}

/* Presence of the users on the client's screen (replacing the last set). */
static void on_presence_subscribe(struct session *s, json_t *msg, const char *req, const char *type)
{
	json_t *users = json_object_get(msg, "users"), *u;
	const char *names[500];
	size_t i;

	if (!json_is_array(users) || json_array_size(users) > 500) {
		session_error(s, req, "bad_request", "users: an array of up to 500 user names");
		return;
	}
	json_array_foreach(users, i, u)
	{
		if (!json_is_string(u) || !jwt_subject_valid(json_string_value(u))) {
			session_error(s, req, "bad_request", "users: user names only");
			return;
		}
		names[i] = json_string_value(u);
	}
	if (edge_presence_watch_start(s, req, names, (int)json_array_size(users)) < 0)
		session_error(s, req, "overloaded", "retry later");
}

static void on_presence_set(struct session *s, json_t *msg, const char *req, const char *type)
{
	json_t *status = json_object_get(msg, "status");
	const char *v = json_is_string(status) ? json_string_value(status) : "";

	if (strcmp(v, "away") != 0 && strcmp(v, "online") != 0) {
		session_error(s, req, "bad_request", "status: \"online\" or \"away\"");
		return;
	}
	presence_set_away(edge_presence(s->w->e), s->user_name, strcmp(v, "away") == 0);
	session_send_json(
	    s, json_pack("{s:s, s:s?, s:s}", "type", "presence_set", "req", req, "status", v));
}

static void on_ping(struct session *s, json_t *msg, const char *req, const char *type)
{
	session_send_json(s, json_pack("{s:s, s:s?}", "type", "pong", "req", req));
}

/* The requests of protocol v1 (docs/protocol.md), by "type". Each handler
 * validates its own fields and answers (or errs) with req. */
static const struct {
	const char *type;
	void (*run)(struct session *s, json_t *msg, const char *req, const char *type);
} handlers[] = {
    {"ping", on_ping},
    {"subscribe", on_subscribe},
    {"unsubscribe", on_unsubscribe},
    {"publish", on_publish},
    {"history", on_history},
    {"mark_read", on_mark_read},
    {"typing", on_typing},
    {"presence_subscribe", on_presence_subscribe},
    {"presence_set", on_presence_set},
    {"edit", on_event},
    {"delete", on_event},
    {"react", on_event},
    {"unreact", on_event},
};

void session_handle(struct session *s, const char *data, size_t len)
{
	json_error_t jerr;
	json_t *msg, *type;
	char reqbuf[REQ_MAX + 1];
	const char *req, *t;
	int64_t channel;
	size_t i;

	/* A worker that hands its publishes off (a DPDK lcore) reads a publish
	 * without jansson; what the scanner is unsure of is parsed here. */
	if (s->w->handoff && handoff_take(s, data, len))
		return;
	msg = json_loadb(data, len, 0, &jerr);
	if (msg == NULL || !json_is_object(msg)) {
		json_decref(msg);
		session_error(s, NULL, "bad_json", "not a JSON object");
		return;
	}
	req = request_req(msg, reqbuf);
	if (request_req_invalid(msg)) {
		json_decref(msg);
		session_error(s, NULL, "bad_request",
			      "\"req\" is a string of at most 64 bytes or an integer");
		return;
	}
	type = json_object_get(msg, "type");
	t = json_is_string(type) ? json_string_value(type) : "";
	if (s->w->handoff && strcmp(t, "publish") == 0 &&
	    request_channel(json_object_get(msg, "channel"), &channel)) {
		/* Still handed off, so that a client's publishes keep their order. */
		typing_done(s, channel);
		handoff_offer(s, channel, data, len);
		json_decref(msg);
		return;
	}
	for (i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
		if (strcmp(t, handlers[i].type) == 0)
			break;
	if (i < sizeof(handlers) / sizeof(handlers[0]))
		handlers[i].run(s, msg, req, handlers[i].type);
	else
		session_error(s, req, "unknown_type", "unknown message type");
	json_decref(msg);
}

const struct edge_protocol protocol_v1 = {
    .handle = session_handle,
    .hello_start = edge_hello_start,
    .history_start = edge_history_start,
    .presence_deliver = session_presence_deliver,
};
