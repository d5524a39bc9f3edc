/* SPDX-License-Identifier: BSD-3-Clause */
/* The HTTP API (docs/api.md): channels, membership, DMs and messages. Each
 * call runs as a job on a reader thread (it needs PostgreSQL) and answers
 * through the worker's inbox; posting a message goes through the persist
 * writer like a websocket publish, so it is acked only after COMMIT and
 * broadcast to subscribers like any other message.
 *
 * Visibility: a private channel, a DM, and a channel that does not exist all
 * answer 404 to a non-member; a public channel answers 403 not_member. */
#define LOG_COMPONENT "api"
#include "api.h"

#include "clock.h"
#include "err.h"
#include "log.h"
#include "publish.h"
#include "store.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define DIRECTORY_MAX 100 /* public channels in one answer */

struct api_job {
	struct fanout_event ev;
	struct commit_cookie cookie;
	struct api_call call;
	char *body;
	enum api_route_id route;
	int64_t channel, seq, user_id;
	int status;
	char *out;
	/* what was submitted under the key, to compare with a stored duplicate */
	const char *sent_kind;
	int64_t sent_parent;
	char *sent_text;
	bool live; /* a live-only channel: answered with "ephemeral": true */
};

static void set_error(struct api_job *j, int status, const char *code, const char *message)
{
	j->status = status;
	j->out = api_error_body(code, message);
}

static void set_json(struct api_job *j, int status, json_t *o)
{
	j->status = status;
	j->out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
}

/* Answering */

static void answer(void *worker_arg, struct fanout_event *ev)
{
	struct api_job *j = (struct api_job *)ev;

	j->call.respond(edge_worker_transport(worker_arg), j->call.id, j->status, j->out);
	free(j->body);
	free(j->sent_text);
	free(j);
}

static void post_answer(struct api_job *j)
{
	j->ev.run = answer;
	fanout_post_event(edge_fanout(j->call.edge), j->call.worker, &j->ev);
}

/* Answers a failed access check; true when it failed. need_member: seeing the
 * channel is not enough (reading, posting). */
static bool deny(struct api_job *j, int rc, bool member, bool need_member)
{
	if (rc == -EIO)
		set_error(j, 503, "unavailable", "retry later");
	else if (rc < 0)
		set_error(j, 404, "not_found", "no such channel");
	else if (need_member && !member)
		set_error(j, 403, "not_member", "not a member of that channel");
	else
		return false;
	return true;
}

static bool name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 80 ||
	    !((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= '0' && name[0] <= '9')))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
		      name[i] == '-' || name[i] == '_'))
			return false;
	return true;
}

static json_t *body_json(struct api_job *j)
{
	json_t *o = j->body ? json_loadb(j->body, j->call.body_len, 0, NULL) : NULL;

	if (!json_is_object(o)) {
		json_decref(o);
		set_error(j, 400, "bad_json", "the body must be a JSON object");
		return NULL;
	}
	return o;
}

/* Routes */

static void create_channel(struct api_job *j, struct pg_conn *conn)
{
	json_t *o = body_json(j), *name, *kind;
	struct store_channel c;
	bool ephemeral;
	int rc;

	if (o == NULL)
		return;
	name = json_object_get(o, "name");
	kind = json_object_get(o, "kind");
	if (!json_is_string(name) || !name_valid(json_string_value(name)) ||
	    (kind && (!json_is_string(kind) || (strcmp(json_string_value(kind), "public") &&
						strcmp(json_string_value(kind), "private") &&
						strcmp(json_string_value(kind), "ephemeral"))))) {
		json_decref(o);
		set_error(j, 400, "bad_request",
			  "a channel name is 1 to 80 lowercase letters, digits, - and _, starting "
			  "with a letter or a digit; its kind is public, private or ephemeral");
		return;
	}
	rc = store_channel_create(conn, json_string_value(name),
				  kind ? json_string_value(kind) : "public", j->user_id, &c);
	json_decref(o);
	if (rc < 0) {
		set_error(j, 503, "unavailable", "retry later");
		return;
	}
	if (rc == 0) {
		set_error(j, 409, "name_taken", "a channel with that name exists");
		return;
	}
	j->channel = c.id;
	ephemeral = strcmp(c.kind, "ephemeral") == 0;
	set_json(j, 201,
		 json_pack("{s:{s:I, s:s, s:s, s:I, s:s}}", "channel", "id", (json_int_t)c.id,
			   "name", c.name, "kind", c.kind, "last_seq", (json_int_t)0, "role",
			   "admin"));
	edge_membership_changed(j->call.edge, j->user_id, j->channel, true, ephemeral);
}

static void join_or_leave(struct api_job *j, struct pg_conn *conn, bool join)
{
	char kind[STORE_KIND_MAX];
	bool member = false;
	int rc = store_channel_access(conn, j->channel, j->user_id, kind, &member);

	if (deny(j, rc, member, false))
		return;
	if (strcmp(kind, "dm") == 0) {
		set_error(j, 403, "forbidden", "direct messages cannot be joined or left");
		return;
	}
	if (!join && !member) {
		set_error(j, 403, "not_member", "not a member of that channel");
		return;
	}
	rc = join ? store_member_add(conn, j->channel, j->user_id)
		  : store_member_remove(conn, j->channel, j->user_id);
	if (rc < 0) {
		set_error(j, 503, "unavailable", "retry later");
		return;
	}
	set_json(j, 200,
		 json_pack("{s:I, s:b}", "channel", (json_int_t)j->channel, "member", join));
	if (join != member)
		edge_membership_changed(j->call.edge, j->user_id, j->channel, join,
					strcmp(kind, "ephemeral") == 0);
}

static void list_members(struct api_job *j, struct pg_conn *conn)
{
	char kind[STORE_KIND_MAX];
	bool member = false;
	struct store_member *rows;
	json_t *list;
	int rc = store_channel_access(conn, j->channel, j->user_id, kind, &member), n;

	if (deny(j, rc, member, false))
		return;
	if (store_members_list(conn, j->channel, &rows, &n) < 0) {
		set_error(j, 503, "unavailable", "retry later");
		return;
	}
	list = json_array();
	for (int r = 0; r < n; r++)
		json_array_append_new(
		    list, json_pack("{s:s, s:s}", "name", rows[r].name, "role", rows[r].role));
	free(rows);
	set_json(j, 200,
		 json_pack("{s:I, s:o}", "channel", (json_int_t)j->channel, "members", list));
}

static void add_member(struct api_job *j, struct pg_conn *conn)
{
	json_t *o = body_json(j), *user;
	char kind[STORE_KIND_MAX];
	bool member = false;
	int64_t target;
	int rc;

	if (o == NULL)
		return;
	user = json_object_get(o, "user");
	if (!json_is_string(user) || !jwt_subject_valid(json_string_value(user))) {
		json_decref(o);
		set_error(j, 400, "bad_request", "\"user\": a user name is required");
		return;
	}
	rc = store_channel_access(conn, j->channel, j->user_id, kind, &member);
	if (!deny(j, rc, member, true) && strcmp(kind, "dm") == 0)
		set_error(j, 403, "forbidden", "a DM has exactly its two members");
	else if (!j->out && strcmp(kind, "private") == 0 &&
		 (rc = store_channel_admin(conn, j->channel, j->user_id)) <= 0)
		set_error(j, rc < 0 ? 503 : 403, rc < 0 ? "unavailable" : "forbidden",
			  rc < 0 ? "retry later" : "only the channel's admins add members to it");
	if (j->out) {
		json_decref(o);
		return;
	}
	target = store_user_find(conn, json_string_value(user), NULL);
	json_decref(o);
	if (target == -ENOENT) {
		set_error(j, 404, "not_found", "no such user");
		return;
	}
	rc = target < 0 ? -EIO : store_member_add(conn, j->channel, target);
	if (rc < 0) {
		set_error(j, 503, "unavailable", "retry later");
		return;
	}
	set_json(j, rc ? 201 : 200,
		 json_pack("{s:I, s:b}", "channel", (json_int_t)j->channel, "added", rc > 0));
	if (rc)
		edge_membership_changed(j->call.edge, target, j->channel, true,
					strcmp(kind, "ephemeral") == 0);
}

static void open_dm(struct api_job *j, struct pg_conn *conn)
{
	json_t *o = body_json(j), *user;
	char name[64], peer_name[STORE_NAME_MAX];
	int64_t peer, lo, hi;
	int added;

	if (o == NULL)
		return;
	user = json_object_get(o, "user");
	if (!json_is_string(user) || !jwt_subject_valid(json_string_value(user)) ||
	    strcmp(json_string_value(user), j->call.user) == 0) {
		json_decref(o);
		set_error(j, 400, "bad_request", "\"user\": the name of another user is required");
		return;
	}
	peer = store_user_find(conn, json_string_value(user), peer_name);
	if (peer == -ENOENT) {
		json_decref(o);
		set_error(j, 404, "not_found", "no such user");
		return;
	}
	if (peer == j->user_id) { /* oneself, in other case */
		json_decref(o);
		set_error(j, 400, "bad_request", "\"user\": the name of another user is required");
		return;
	}
	lo = peer < j->user_id ? peer : j->user_id;
	hi = peer < j->user_id ? j->user_id : peer;
	if (peer < 0 || store_dm_open(conn, lo, hi, &j->channel, &added) < 0) {
		json_decref(o);
		set_error(j, 503, "unavailable", "retry later");
		return;
	}
	snprintf(name, sizeof(name), "dm:%lld:%lld", (long long)lo, (long long)hi);
	set_json(j, added ? 201 : 200,
		 json_pack("{s:{s:I, s:s, s:s, s:s}}", "channel", "id", (json_int_t)j->channel,
			   "name", name, "kind", "dm", "peer", peer_name));
	json_decref(o);
	if (added) {
		edge_membership_changed(j->call.edge, lo, j->channel, true, false);
		edge_membership_changed(j->call.edge, hi, j->channel, true, false);
	}
}

/* GET /channels?scope=public&q=: the channel browser. */
static void list_public(struct api_job *j, struct pg_conn *conn)
{
	struct store_public_channel *v = calloc(DIRECTORY_MAX, sizeof(*v));
	json_t *list = json_array();
	int n = 0;

	if (v == NULL || store_public_channels(conn, j->user_id, api_query_text(&j->call, "q"),
					       DIRECTORY_MAX, v, &n) < 0) {
		set_error(j, 503, "unavailable", "retry later");
		n = -1;
	}
	for (int i = 0; i < n; i++)
		json_array_append_new(
		    list, json_pack("{s:I, s:s, s:s, s:I, s:b}", "id", (json_int_t)v[i].id, "name",
				    v[i].name, "kind", "public", "members",
				    (json_int_t)v[i].members, "joined", v[i].joined));
	if (n >= 0)
		set_json(j, 200, json_pack("{s:O}", "channels", list));
	json_decref(list);
	free(v);
}

static json_t *message_json(const struct persist_message *m)
{
	size_t len;
	char *text = encode_message(m, &len);
	json_t *o = text ? json_loadb(text, len, 0, NULL) : NULL;

	free(text);
	if (o)
		json_object_del(o, "type");
	return o;
}

static void read_messages(struct api_job *j, struct pg_conn *conn)
{
	struct persist_history_query q = {
	    .channel_id = j->channel, .limit = 50, .viewer_id = j->user_id};
	struct persist_history page;
	int64_t v;
	char kind[16];
	bool member = false;
	json_t *list;
	int rc = store_channel_access(conn, j->channel, j->user_id, kind, &member);

	if (deny(j, rc, member, true))
		return;
	if (api_query_int(&j->call, "limit", &v) < 0 ||
	    api_query_int(&j->call, "after_seq", &v) < 0 ||
	    api_query_int(&j->call, "before_seq", &v) < 0) {
		set_error(j, 400, "bad_request", "after_seq, before_seq and limit are numbers");
		return;
	}
	if (api_query_int(&j->call, "limit", &v) == 1)
		q.limit = (int)(v > 0 && v <= PERSIST_HISTORY_LIMIT_MAX ? v : -1);
	if (q.limit < 0) {
		set_error(j, 400, "bad_request", "limit is 1..1000");
		return;
	}
	q.mode = PERSIST_HISTORY_BEFORE;
	if (api_query_int(&j->call, "after_seq", &v) == 1) {
		q.mode = PERSIST_HISTORY_AFTER;
		q.after_seq = v;
	} else if (api_query_int(&j->call, "before_seq", &v) == 1) {
		q.before_seq = v;
	}
	if (j->route == ROUTE_THREAD) {
		q.mode = PERSIST_HISTORY_THREAD;
		q.parent_seq = j->seq;
		q.after_seq = api_query_int(&j->call, "after_seq", &v) == 1 ? v : 0;
	}
	if (persist_history_read(conn, &q, &page) < 0) {
		free(page.messages);
		set_error(j, 503, "unavailable", "retry later");
		return;
	}
	list = json_array();
	for (int i = 0; i < page.count; i++)
		json_array_append_new(list, message_json(&page.messages[i]));
	free(page.messages);
	set_json(j, 200,
		 json_pack("{s:I, s:o, s:b}", "channel", (json_int_t)j->channel, "messages", list,
			   "has_more", page.has_more));
}

static void answer_stored(struct api_job *j, int64_t seq, int64_t created_at_us, bool duplicate,
			  const char *client_msg_id)
{
	char ts[40];

	json_t *o;

	encode_timestamp(created_at_us, ts);
	o = json_pack("{s:I, s:I, s:s, s:s, s:b}", "channel", (json_int_t)j->channel, "seq",
		      (json_int_t)seq, "ts", ts, "client_msg_id", client_msg_id, "duplicate",
		      duplicate);
	if (o && j->live)
		json_object_set_new(o, "ephemeral", json_true());
	set_json(j, duplicate ? 200 : 201, o);
}

/* A retry's key was seen: its answer is the stored message's, provided it
 * asks for the same thing; the same key with another request is refused
 * 422 (the IETF Idempotency-Key draft), not silently answered with the
 * first. A reader job. */
static void answer_duplicate(void *arg, struct pg_conn *conn)
{
	struct api_job *j = arg;
	struct persist_stored st;
	int rc = conn ? persist_stored_find(conn, j->channel, j->user_id, j->call.idempotency_key,
					    j->sent_kind, j->sent_parent, j->sent_text, &st)
		      : -EIO;

	if (rc <= 0)
		set_error(j, 503, "unavailable", "retry with the same key");
	else if (!st.same)
		set_error(j, 422, "idempotency_key_reused",
			  "this Idempotency-Key was used for a different request");
	else
		answer_stored(j, st.seq, st.created_at_us, true, j->call.idempotency_key);
	post_answer(j);
}

static void message_committed(struct edge *e, struct commit_cookie *c, enum persist_outcome outcome,
			      int error, const struct persist_message *m)
{
	struct api_job *j = (struct api_job *)((char *)c - offsetof(struct api_job, cookie));

	if (outcome == PERSIST_DUPLICATE && j->call.idempotency_key[0] &&
	    persist_reader_run(edge_reader(j->call.edge), answer_duplicate, j) == 0)
		return;
	if (outcome == PERSIST_FAILED) {
		if (error == -EINVAL)
			set_error(j, 400, "bad_parent",
				  "parent_seq names no message of this channel");
		else if (error == -ENOENT)
			set_error(j, 404, "not_found", "no such channel");
		else
			set_error(j, 503, "unavailable", "not stored; retry with the same key");
	} else if (outcome == PERSIST_DUPLICATE) {
		set_error(j, 503, "unavailable", "retry with the same key");
	} else {
		answer_stored(j, m->seq, m->created_at_us, false, m->client_msg_id);
	}
	post_answer(j);
}

/* Submits a message or an event to the writer under the call's
 * Idempotency-Key (or a random key: never deduplicated). True when the commit
 * callback will answer; otherwise the error is set. */
static bool submit(struct api_job *j, const char *kind, int64_t parent, const char *body,
		   size_t len)
{
	char key[80];
	int rc;

	if (j->call.idempotency_key[0]) {
		snprintf(key, sizeof(key), "%s", j->call.idempotency_key);
	} else {
		/* A predictable key could collide with an older post and be
		 * answered as its duplicate. */
		uint64_t r[2];
		if (getrandom(r, sizeof(r), 0) != sizeof(r)) {
			set_error(j, 503, "unavailable", "retry later");
			return false;
		}
		snprintf(key, sizeof(key), "http-%016lx%016lx", (unsigned long)r[0],
			 (unsigned long)r[1]);
	}
	struct persist_publish p = {
	    .channel_id = j->channel,
	    .author_id = j->user_id,
	    .parent_seq = parent,
	    .kind = kind,
	    .client_msg_id = key,
	    .author_name = j->call.user,
	    .body = body,
	    .body_len = len,
	};
	j->cookie.done = message_committed;
	j->sent_kind = kind;
	j->sent_parent = parent;
	j->sent_text = strndup(body, len);
	if (j->sent_text == NULL) {
		set_error(j, 503, "overloaded", "retry later");
		return false;
	}
	rc = publish_submit(edge_publish(j->call.edge), &p, j->live, &j->cookie);
	if (rc == 0)
		return true;
	if (rc == -EAGAIN || rc == -ENOMEM || rc == -EXDEV)
		set_error(j, 503, "overloaded", "the server is busy; retry with the same key");
	else if (rc == -EILSEQ)
		set_error(j, 400, "bad_request", "text must be valid UTF-8 without NUL");
	else
		set_error(j, 400, "bad_request",
			  "Idempotency-Key is 1-64 characters; text at most 1 MiB");
	return false;
}

/* POST .../read: the user's read cursor forward to "seq" (arg). */
static void move_read_cursor(struct api_job *j, struct pg_conn *conn, json_t *arg)
{
	int64_t seq;

	if (!json_is_integer(arg) || json_integer_value(arg) < 0) {
		set_error(j, 400, "bad_request", "\"seq\": the seq read up to");
		return;
	}
	seq = store_read_update(conn, j->channel, j->user_id, json_integer_value(arg));
	if (seq < 0) {
		set_error(j, 503, "unavailable", "retry later");
		return;
	}
	set_json(j, 200,
		 json_pack("{s:I, s:I}", "channel", (json_int_t)j->channel, "last_read_seq",
			   (json_int_t)seq));
	edge_read_changed(j->call.edge, j->user_id, j->channel, seq);
}

/* A reaction's emoji, from the body's "emoji" (arg) or the query's: 1 to 32
 * bytes with no whitespace. False when there is none such. */
static bool reaction_emoji(const struct api_job *j, json_t *arg, char *emoji, size_t size)
{
	emoji[0] = '\0';
	if (arg && json_is_string(arg))
		snprintf(emoji, size, "%s", json_string_value(arg));
	else
		for (int i = 0; i < j->call.nquery; i++)
			if (strcmp(j->call.query[i].name, "emoji") == 0)
				snprintf(emoji, size, "%s", j->call.query[i].value);
	return emoji[0] != '\0' && strlen(emoji) <= 32 && !strpbrk(emoji, " \t\r\n");
}

/* Read cursor, edit, delete, react, unreact: each checks membership; edits
 * and deletes also authorship. True when the commit callback will answer. */
static bool message_event(struct api_job *j, struct pg_conn *conn)
{
	json_t *o = NULL, *arg = NULL;
	const char *code = NULL, *message = NULL, *kind, *value = "";
	char kind_buf[16], emoji[96] = "";
	bool member = false, later;
	int rc;

	rc = store_channel_access(conn, j->channel, j->user_id, kind_buf, &member);
	if (deny(j, rc, member, true))
		return false;
	if (j->route == ROUTE_READ || j->route == ROUTE_MESSAGE_EDIT ||
	    (j->route == ROUTE_REACTIONS && j->call.method == API_POST)) {
		o = body_json(j);
		if (o == NULL)
			return false;
		arg = json_object_get(o, j->route == ROUTE_READ		  ? "seq"
					 : j->route == ROUTE_MESSAGE_EDIT ? "text"
									  : "emoji");
	}
	if (j->route == ROUTE_READ) {
		move_read_cursor(j, conn, arg);
		json_decref(o);
		return false;
	}
	if (j->route == ROUTE_REACTIONS) {
		kind = j->call.method == API_POST ? "react" : "unreact";
		if (!reaction_emoji(j, arg, emoji, sizeof(emoji))) {
			json_decref(o);
			set_error(j, 400, "bad_request", "emoji: 1 to 32 bytes, no spaces");
			return false;
		}
		value = emoji;
	} else {
		kind = j->route == ROUTE_MESSAGE_EDIT ? "edit" : "delete";
		if (j->route == ROUTE_MESSAGE_EDIT &&
		    (!json_is_string(arg) || json_string_length(arg) == 0)) {
			json_decref(o);
			set_error(j, 400, "bad_request", "\"text\": the new text");
			return false;
		}
		if (j->route == ROUTE_MESSAGE_EDIT &&
		    json_string_length(arg) > edge_limits(j->call.edge).max_text_bytes) {
			json_decref(o);
			set_error(j, 413, "too_large", "text is longer than the server accepts");
			return false;
		}
		if (edge_authorize_event(conn, j->channel, j->seq, j->user_id, &code, &message) <
		    0) {
			json_decref(o);
			set_error(j,
				  !strcmp(code, "forbidden")   ? 403
				  : !strcmp(code, "not_found") ? 404
							       : 503,
				  code, message);
			return false;
		}
		if (arg)
			value = json_string_value(arg);
	}
	later = submit(j, kind, j->seq, value, strlen(value));
	json_decref(o);
	return later;
}

/* Returns true when the job will be answered by the commit callback. */
static bool post_message(struct api_job *j, struct pg_conn *conn)
{
	json_t *o = body_json(j), *text, *parent;
	const char *code, *message;
	char kind[16];
	bool member = false, later;
	int rc;

	if (o == NULL)
		return false;
	text = json_object_get(o, "text");
	parent = json_object_get(o, "parent_seq");
	if (!json_is_string(text) ||
	    (parent && !json_is_null(parent) &&
	     (!json_is_integer(parent) || json_integer_value(parent) <= 0))) {
		json_decref(o);
		set_error(j, 400, "bad_request", "\"text\" is required; \"parent_seq\" is a seq");
		return false;
	}
	if (json_string_length(text) > edge_limits(j->call.edge).max_text_bytes) {
		json_decref(o);
		set_error(j, 413, "too_large", "text is longer than the server accepts");
		return false;
	}
	rc = store_channel_access(conn, j->channel, j->user_id, kind, &member);
	if (deny(j, rc, member, true)) {
		json_decref(o);
		return false;
	}
	code = edge_mention_refusal(j->call.edge, j->user_id, j->channel, j->call.idempotency_key,
				    json_string_value(text), json_string_length(text), &message);
	if (code) {
		json_decref(o);
		set_error(j, strcmp(code, "mention_limited") == 0 ? 429 : 403, code, message);
		return false;
	}
	/* A live-only channel: not stored, no duplicate detection, answered
	 * as soon as it is out. */
	j->live = strcmp(kind, "ephemeral") == 0;
	later = submit(j, NULL, json_is_integer(parent) ? json_integer_value(parent) : 0,
		       json_string_value(text), json_string_length(text));
	json_decref(o);
	return later;
}

static void run(void *arg, struct pg_conn *conn)
{
	struct api_job *j = arg;
	bool later = false;

	if (conn && (j->user_id = store_user_ensure(conn, j->call.user)) == -EEXIST) {
		set_error(j, 403, "name_taken",
			  "another user has this name in other letter case (names ignore case)");
		post_answer(j);
		return;
	}
	if (conn == NULL || j->user_id < 0) {
		set_error(j, 503, "unavailable", "the database is unreachable; retry later");
		post_answer(j);
		return;
	}
	switch (j->route) {
	case ROUTE_CHANNELS:
		if (j->call.method == API_POST) {
			create_channel(j, conn);
		} else if (strcmp(api_query_text(&j->call, "scope"), "public") == 0) {
			list_public(j, conn);
		} else {
			json_t *list = edge_user_channels(conn, j->user_id);
			if (list)
				set_json(j, 200, json_pack("{s:o}", "channels", list));
			else
				set_error(j, 503, "unavailable", "retry later");
		}
		break;
	case ROUTE_CHANNEL_JOIN:
	case ROUTE_CHANNEL_LEAVE:
		join_or_leave(j, conn, j->route == ROUTE_CHANNEL_JOIN);
		break;
	case ROUTE_MEMBERS:
		if (j->call.method == API_POST)
			add_member(j, conn);
		else
			list_members(j, conn);
		break;
	case ROUTE_MESSAGES:
		if (j->call.method == API_POST)
			later = post_message(j, conn);
		else
			read_messages(j, conn);
		break;
	case ROUTE_THREAD:
		read_messages(j, conn);
		break;
	case ROUTE_USERS:
		j->status = api_users(conn, j->user_id, &j->call, &j->out);
		break;
	case ROUTE_SEARCH:
		j->status = api_search(conn, j->user_id, &j->call, &j->out);
		break;
	case ROUTE_DMS:
		open_dm(j, conn);
		break;
	case ROUTE_READ:
	case ROUTE_MESSAGE_EDIT:
	case ROUTE_MESSAGE_DELETE:
	case ROUTE_REACTIONS:
		later = message_event(j, conn);
		break;
	default: /* the operator's routes go to api_admin.c */
		set_error(j, 404, "not_found", "no such route");
		break;
	}
	if (!later)
		post_answer(j);
}

int api_dispatch(const struct api_call *c, char **body)
{
	struct api_job *j = calloc(1, sizeof(*j));

	if (j == NULL) {
		*body = api_error_body("overloaded", "retry later");
		return 503;
	}
	if (c->user[0] == '\0' || !jwt_subject_valid(c->user)) {
		free(j);
		*body = api_error_body("bad_token", "a valid bearer token is required");
		return 401;
	}
	j->call = *c;
	j->cookie.received_ns = time_mono_ns();
	j->route = c->route.id;
	j->channel = c->route.channel;
	j->seq = c->route.seq;
	if (c->body_len) {
		j->body = malloc(c->body_len + 1);
		if (j->body == NULL) {
			free(j);
			*body = api_error_body("overloaded", "retry later");
			return 503;
		}
		memcpy(j->body, c->body, c->body_len);
		j->body[c->body_len] = '\0';
	}
	j->call.body = j->body; /* the job's own copy, or NULL */
	if (persist_reader_run(edge_reader(c->edge), run, j) < 0) {
		free(j->body);
		free(j);
		*body = api_error_body("unavailable", "shutting down");
		return 503;
	}
	return 0;
}
