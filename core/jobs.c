/* SPDX-License-Identifier: BSD-3-Clause */
/* The jobs a session's requests need from PostgreSQL, run on reader threads
 * and answered through the worker's inbox: hello (the user and their
 * channels), history pages (for a request or a catch-up), edits and deletes
 * authorised before they enter the publish door, read cursors, and telling
 * sessions that a membership changed. Above sessions in the core: jobs
 * answer sessions; sessions start jobs only through the protocol table
 * (edge.h, struct edge_protocol). */
#define LOG_COMPONENT "edge"
#include "edge-internal.h"

#include "log.h"
#include "presence.h"
#include "publish.h"
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Jobs: hello */

struct hello_job {
	struct fanout_event ev;
	struct edge *e;
	int worker;
	uint64_t session;
	char user[65];
	int64_t user_id;
	json_t *channels;
	int64_t *member;
	int nmember;
	int error;
};

static void hello_answer(void *worker_arg, struct fanout_event *ev)
{
	struct hello_job *j = (struct hello_job *)ev;
	struct session *s = worker_find(worker_arg, j->session);

	if (s && j->error == 0)
		session_ready(s, j->user_id, j->channels, j->member, j->nmember);
	else {
		if (s && j->error == -EEXIST)
			session_request_close(s, 1008, "another user has this name in other case");
		else if (s)
			session_request_close(s, 1011, "cannot load the user; retry");
		json_decref(j->channels);
	}
	free(j->member);
	free(j);
}

json_t *edge_user_channels(struct pg_conn *conn, int64_t user_id)
{
	struct store_channel *rows;
	json_t *list;
	int n;

	if (store_user_channels(conn, user_id, &rows, &n) < 0)
		return NULL;
	list = json_array();
	for (int r = 0; list && r < n; r++) {
		json_t *c = json_pack("{s:I, s:s, s:s, s:I, s:I, s:I, s:I, s:s}", "id",
				      (json_int_t)rows[r].id, "name", rows[r].name, "kind",
				      rows[r].kind, "last_seq", (json_int_t)rows[r].last_seq,
				      "last_read_seq", (json_int_t)rows[r].last_read_seq, "unread",
				      (json_int_t)rows[r].unread, "mentions",
				      (json_int_t)rows[r].mentions, "role", rows[r].role);
		if (rows[r].peer[0])
			json_object_set_new(c, "peer", json_string(rows[r].peer));
		json_array_append_new(list, c);
	}
	free(rows);
	return list;
}

static void hello_run(void *arg, struct pg_conn *conn)
{
	struct hello_job *j = arg;
	size_t i;
	json_t *c;

	j->error = -EIO;
	if (conn == NULL || (j->user_id = store_user_ensure(conn, j->user)) < 0) {
		if (conn && j->user_id == -EEXIST)
			j->error = -EEXIST;
		goto out;
	}
	j->channels = edge_user_channels(conn, j->user_id);
	if (j->channels == NULL)
		goto out;
	j->member = malloc(sizeof(*j->member) * (json_array_size(j->channels) + 1));
	if (j->member == NULL)
		goto out;
	/* Sorted by id already (ORDER BY c.id): the session's membership set. */
	json_array_foreach(j->channels, i, c)
	{
		j->member[j->nmember++] = json_integer_value(json_object_get(c, "id"));
	}
	j->error = 0;
out:
	j->ev.run = hello_answer;
	fanout_post_event(j->e->fanout, j->worker, &j->ev);
}

int edge_hello_start(struct session *s)
{
	struct hello_job *j = calloc(1, sizeof(*j));
	int rc = j ? worker_register(s->w, s) : -ENOMEM;

	if (rc < 0) {
		free(j);
		return rc;
	}
	j->e = s->w->e;
	j->worker = s->w->index;
	j->session = s->id;
	snprintf(j->user, sizeof(j->user), "%s", s->user_name);
	if (persist_reader_run(s->w->e->reader, hello_run, j) < 0) {
		worker_forget(s->w, s);
		free(j);
		return -ESHUTDOWN;
	}
	return 0;
}

/* Jobs: history */

struct history_job {
	struct fanout_event ev;
	struct edge *e;
	int worker;
	uint64_t session;
	int64_t channel;
	bool catch_up;
	char req[65];
	struct persist_history *page;
};

static void history_answer(void *worker_arg, struct fanout_event *ev)
{
	struct history_job *j = (struct history_job *)ev;
	struct session *s = worker_find(worker_arg, j->session);

	if (s)
		session_history_page(s, j->page, j->channel, j->req, j->catch_up);
	persist_history_free(j->page);
	free(j);
}

static void history_done(void *arg, struct persist_history *page)
{
	struct history_job *j = arg;

	j->page = page;
	j->ev.run = history_answer;
	fanout_post_event(j->e->fanout, j->worker, &j->ev);
}

int edge_history_start(struct session *s, int64_t channel, int64_t after, int64_t before,
		       int64_t parent, int limit, const char *req, bool catch_up)
{
	struct history_job *j = calloc(1, sizeof(*j));
	struct sub *sub = session_find_sub(s, channel);
	struct persist_history_query q = {
	    .mode = parent	 ? PERSIST_HISTORY_THREAD
		    : after >= 0 ? PERSIST_HISTORY_AFTER
				 : PERSIST_HISTORY_BEFORE,
	    .channel_id = channel,
	    .after_seq = after > 0 ? after : 0,
	    .before_seq = before,
	    .parent_seq = parent,
	    .limit = limit,
	    .viewer_id = s->user_id,
	    /* what this connection has seen: a standby may answer from there */
	    .min_head = sub ? sub->seen_seq : 0,
	};
	int rc;

	if (j == NULL)
		return -ENOMEM;
	j->e = s->w->e;
	j->worker = s->w->index;
	j->session = s->id;
	j->channel = channel;
	j->catch_up = catch_up;
	snprintf(j->req, sizeof(j->req), "%s", req ? req : "");
	rc = persist_reader_submit(s->w->e->reader, &q, history_done, j);
	if (rc < 0)
		free(j);
	return rc;
}

/* Membership changes */

struct member_event {
	struct fanout_event ev;
	int64_t user_id, channel_id;
	bool added, ephemeral;
};

static void member_answer(void *worker_arg, struct fanout_event *ev)
{
	struct member_event *m = (struct member_event *)ev;
	struct edge_worker *w = worker_arg;

	for (struct session *s = w->sessions; s; s = s->next)
		if (s->user_id == m->user_id)
			session_member_change(s, m->channel_id, m->added, m->ephemeral);
	free(m);
}

/* Posts a membership change to this node's workers. */
static void member_post(struct edge *e, int64_t user_id, int64_t channel_id, bool added,
			bool ephemeral)
{
	for (int w = 0; w < e->nworkers; w++) {
		struct member_event *m = calloc(1, sizeof(*m));
		if (m == NULL)
			continue;
		m->ev.run = member_answer;
		m->user_id = user_id;
		m->channel_id = channel_id;
		m->added = added;
		m->ephemeral = ephemeral;
		fanout_post_event(e->fanout, w, &m->ev);
	}
}

void edge_membership_changed(struct edge *e, int64_t user_id, int64_t channel_id, bool added,
			     bool ephemeral)
{
	struct route_user_event ev = {added ? ROUTE_USER_JOINED : ROUTE_USER_LEFT, user_id,
				      channel_id, 0, ephemeral};

	member_post(e, user_id, channel_id, added, ephemeral);
	publish_user_event(edge_publish(e), &ev);
}

/* Jobs: edits and deletes */

struct event_job {
	struct fanout_event ev;
	struct edge *e;
	int worker;
	uint64_t session;
	struct commit_cookie *cookie;
	struct persist_publish p;
	const char *code, *message; /* set when refused */
	char kind[PERSIST_KIND_MAX + 1];
	char client_msg_id[PERSIST_CLIENT_MSG_ID_MAX + 1];
	char author[65];
	char req[65];
	char body[]; /* p.body_len bytes */
};

static void event_refused(void *worker_arg, struct fanout_event *ev)
{
	struct event_job *j = (struct event_job *)ev;
	struct session *s = worker_find(worker_arg, j->session);

	if (s)
		session_error(s, j->req[0] ? j->req : NULL, j->code, j->message);
	free(j->cookie);
	free(j);
}

int edge_authorize_event(struct pg_conn *conn, int64_t channel, int64_t seq, int64_t user,
			 const char **code, const char **message)
{
	int rc = store_event_authorize(conn, channel, seq, user);

	if (rc == -ENOENT) {
		*code = "not_found";
		*message = "no such message (or it was deleted)";
	} else if (rc == -EPERM) {
		*code = "forbidden";
		*message = "only the author or a channel admin may do that";
	} else if (rc < 0) {
		*code = "unavailable";
		*message = "retry later";
	}
	return rc;
}

static void event_run(void *arg, struct pg_conn *conn)
{
	struct event_job *j = arg;

	if (edge_authorize_event(conn, j->p.channel_id, j->p.parent_seq, j->p.author_id, &j->code,
				 &j->message) == 0) {
		/* Authorised: through the publish door; the cookie answers. */
		int rc = publish_submit(j->e->publish, &j->p, false, j->cookie);
		if (rc == 0) {
			free(j);
			return;
		}
		j->code = rc == -EAGAIN ? "overloaded" : "bad_request";
		j->message = rc == -EAGAIN ? "the server is busy; retry" : "invalid request";
	}
	j->ev.run = event_refused;
	fanout_post_event(j->e->fanout, j->worker, &j->ev);
}

int edge_authorized_event_start(struct session *s, const struct persist_publish *p,
				struct commit_cookie *cookie, const char *req)
{
	struct event_job *j = calloc(1, sizeof(*j) + p->body_len + 1);

	if (j == NULL)
		return -ENOMEM;
	j->e = s->w->e;
	j->worker = s->w->index;
	j->session = s->id;
	j->cookie = cookie;
	j->p = *p;
	snprintf(j->req, sizeof(j->req), "%s", req ? req : "");
	snprintf(j->kind, sizeof(j->kind), "%s", p->kind);
	snprintf(j->client_msg_id, sizeof(j->client_msg_id), "%s", p->client_msg_id);
	snprintf(j->author, sizeof(j->author), "%s", p->author_name ? p->author_name : "");
	memcpy(j->body, p->body, p->body_len);
	j->p.kind = j->kind;
	j->p.client_msg_id = j->client_msg_id;
	j->p.author_name = j->author;
	j->p.body = j->body;
	if (persist_reader_run(s->w->e->reader, event_run, j) < 0) {
		free(j);
		return -EAGAIN;
	}
	return 0;
}

/* Jobs: read cursors */

struct read_job {
	struct fanout_event ev;
	struct edge *e;
	int worker;
	uint64_t session;
	int64_t user_id, channel, seq;
	bool failed;
	char req[65];
};

static void read_answer(void *worker_arg, struct fanout_event *ev)
{
	struct read_job *j = (struct read_job *)ev;
	struct edge_worker *w = worker_arg;

	/* Every session of the user hears the cursor; the asking one with its
	 * req. So two devices agree. */
	for (struct session *s = w->sessions; s; s = s->next) {
		bool asker = w->index == j->worker && s->id == j->session;
		json_t *o;

		if (s->user_id != j->user_id || s->state != SESSION_READY)
			continue;
		if (j->failed) {
			if (asker)
				session_error(s, j->req, "unavailable", "retry later");
			continue;
		}
		o = json_pack("{s:s, s:I, s:I}", "type", "read", "channel", (json_int_t)j->channel,
			      "seq", (json_int_t)j->seq);
		if (o && asker && j->req[0])
			json_object_set_new(o, "req", json_string(j->req));
		session_send_json(s, o);
	}
	free(j);
}

/* Posts j (already filled) to every worker: copies first, the original last,
 * since once posted the original may be run and freed at any moment. */
static void read_broadcast(struct read_job *j)
{
	j->ev.run = read_answer;
	for (int w = 0; w < j->e->nworkers; w++) {
		struct read_job *copy;

		if (w == j->worker || (copy = malloc(sizeof(*copy))) == NULL)
			continue;
		*copy = *j;
		fanout_post_event(j->e->fanout, w, &copy->ev);
	}
	fanout_post_event(j->e->fanout, j->worker, &j->ev);
}

static void read_run(void *arg, struct pg_conn *conn)
{
	struct read_job *j = arg;
	int64_t seq = store_read_update(conn, j->channel, j->user_id, j->seq);

	j->failed = seq < 0;
	if (!j->failed) {
		struct route_user_event ev = {ROUTE_USER_READ, j->user_id, j->channel, seq, false};

		j->seq = seq;
		publish_user_event(edge_publish(j->e), &ev);
	}
	read_broadcast(j);
}

/* Tells this node's sessions of user_id that its cursor moved. */
static void read_post(struct edge *e, int64_t user_id, int64_t channel, int64_t seq)
{
	struct read_job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return;
	j->e = e;
	j->worker = 0;
	j->session = 0; /* nobody asked over the websocket: no req to echo */
	j->user_id = user_id;
	j->channel = channel;
	j->seq = seq;
	read_broadcast(j);
}

void edge_read_changed(struct edge *e, int64_t user_id, int64_t channel, int64_t seq)
{
	struct route_user_event ev = {ROUTE_USER_READ, user_id, channel, seq, false};

	read_post(e, user_id, channel, seq);
	publish_user_event(edge_publish(e), &ev);
}

void edge_user_event(struct edge *e, const struct route_user_event *ev)
{
	if (ev->kind == ROUTE_USER_READ)
		read_post(e, ev->user, ev->channel, ev->seq);
	else
		member_post(e, ev->user, ev->channel, ev->kind == ROUTE_USER_JOINED, ev->ephemeral);
}

int edge_mark_read_start(struct session *s, int64_t channel, int64_t seq, const char *req)
{
	struct read_job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return -ENOMEM;
	j->e = s->w->e;
	j->worker = s->w->index;
	j->session = s->id;
	j->user_id = s->user_id;
	j->channel = channel;
	j->seq = seq;
	snprintf(j->req, sizeof(j->req), "%s", req ? req : "");
	if (persist_reader_run(s->w->e->reader, read_run, j) < 0) {
		free(j);
		return -ESHUTDOWN;
	}
	return 0;
}

/* Jobs: whom a session may watch the presence of (a user who shares no
 * channel with the watcher is answered offline and never announced) */

struct watch_job {
	struct fanout_event ev;
	struct edge *e;
	int worker;
	uint64_t session;
	int64_t user_id;
	uint64_t gen;
	int n;
	bool failed;
	char req[65];
	bool hidden[PRESENCE_WATCH_MAX];
	char names[PRESENCE_WATCH_MAX][65];
};

static void watch_answer(void *worker_arg, struct fanout_event *ev)
{
	struct watch_job *j = (struct watch_job *)ev;
	struct session *s = worker_find(worker_arg, j->session);
	const char *names[PRESENCE_WATCH_MAX];

	/* Only the session's latest request counts (jobs may finish out of
	 * order). */
	if (s == NULL || s->presence_gen != j->gen)
		goto out;
	if (j->failed) {
		session_error(s, j->req, "unavailable", "retry later");
		goto out;
	}
	for (int i = 0; i < j->n; i++)
		names[i] = j->names[i];
	if (presence_watch(edge_presence(j->e), j->worker, j->session, j->req, names, j->hidden,
			   j->n) < 0)
		session_error(s, j->req, "overloaded", "retry later");
out:
	free(j);
}

static void watch_run(void *arg, struct pg_conn *conn)
{
	struct watch_job *j = arg;
	const char *names[PRESENCE_WATCH_MAX];

	for (int i = 0; i < j->n; i++)
		names[i] = j->names[i];
	j->failed = j->n > 0 && store_hidden_users(conn, j->user_id, names, j->n, j->hidden) < 0;
	j->ev.run = watch_answer;
	fanout_post_event(j->e->fanout, j->worker, &j->ev);
}

int edge_presence_watch_start(struct session *s, const char *req, const char *const *names, int n)
{
	struct watch_job *j;

	if (n < 0 || n > PRESENCE_WATCH_MAX)
		return -EINVAL;
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return -ENOMEM;
	j->e = s->w->e;
	j->worker = s->w->index;
	j->session = s->id;
	j->user_id = s->user_id;
	j->gen = ++s->presence_gen;
	j->n = n;
	snprintf(j->req, sizeof(j->req), "%s", req ? req : "");
	for (int i = 0; i < n; i++)
		snprintf(j->names[i], sizeof(j->names[i]), "%s", names[i]);
	if (persist_reader_run(s->w->e->reader, watch_run, j) < 0) {
		free(j);
		return -ESHUTDOWN;
	}
	return 0;
}
