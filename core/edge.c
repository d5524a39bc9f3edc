/* The node-wide messaging core: workers and their local subscription tables,
 * and the jobs that read PostgreSQL for sessions (hello, history) on
 * reader threads, answering through the workers' inboxes. */
#define LOG_COMPONENT "edge"
#include "edge-internal.h"

#include "clock.h"
#include "err.h"
#include "log.h"
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

struct edge {
	struct edge_config cfg;
	struct publish_state *publish;
	struct fanout *fanout;
	struct persist_writer *writer;
	struct persist_reader *reader;
	int nworkers;
	struct presence *presence;
	struct edge_worker *workers[FANOUT_WORKERS_MAX];
};

static struct metric_counter m_deliveries;
struct metric_counter edge_m_lagged;
static struct metric_histogram m_fanout_latency;

struct edge *edge_create(const struct edge_config *cfg, struct fanout *fanout,
			 struct persist_reader *reader, const struct route *route, int nworkers)
{
	struct edge *e = calloc(1, sizeof(*e));
	static bool registered;

	if (e == NULL)
		return NULL;
	e->cfg = *cfg;
	e->fanout = fanout;
	e->reader = reader;
	e->nworkers = nworkers;
	e->publish = publish_create(route, fanout, e);
	e->presence =
	    e->publish ? presence_create(fanout, cfg->presence_grace_ms, cfg->presence_interval_ms)
		       : NULL;
	if (e->presence == NULL) {
		publish_destroy(e->publish);
		free(e);
		return NULL;
	}
	if (!registered) {
		metric_histogram_init(&m_fanout_latency, metric_latency_bounds_ns,
				      metric_latency_nbounds);
		metrics_register_counter("fanout_deliveries_total",
					 "Frames queued to subscriber connections.", &m_deliveries);
		metrics_register_counter("fanout_lagged_total",
					 "Times a slow connection dropped its queue and resumed "
					 "from PostgreSQL.",
					 &edge_m_lagged);
		metrics_register_histogram("fanout_fanout_seconds",
					   "From commit to the frame queued on a subscriber's "
					   "connection.",
					   &m_fanout_latency);
		registered = true;
	}
	return e;
}

void edge_set_writer(struct edge *e, struct persist_writer *w)
{
	e->writer = w;
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
	publish_destroy(e->publish);
	free(e);
}

struct presence *edge_presence(struct edge *e)
{
	return e->presence;
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

struct persist_writer *edge_writer(struct edge *e)
{
	return e->writer;
}

const struct edge_config *edge_config(struct edge *e)
{
	return &e->cfg;
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

static int worker_register(struct edge_worker *w, struct session *s)
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

static void on_frame(void *arg, struct frame *f)
{
	struct edge_worker *w = arg;
	struct chan_local *cl;
	void *data;

	if (rte_hash_lookup_data(w->local, &f->channel, &data) < 0) {
		frame_unref(f);
		return;
	}
	cl = data;
	/* Delivery never unsubscribes (a lag only rewinds), so cl is stable. */
	for (int i = 0; i < cl->n; i++)
		session_deliver(cl->s[i], frame_ref(f));
	metric_add(&m_deliveries, (uint64_t)cl->n);
	metric_observe_ns(&m_fanout_latency, time_mono_ns() - f->born_ns);
	frame_unref(f);
}

static void on_overrun(void *arg)
{
	struct edge_worker *w = arg;

	LOG(WARN, "worker %d: inbox overrun; its sessions resume from PostgreSQL", w->index);
	for (struct session *s = w->sessions; s; s = s->next)
		session_catch_up_all(s);
}

void edge_worker_drain(struct edge_worker *w)
{
	while (fanout_drain(w->e->fanout, w->index, on_frame, on_overrun, w, 4096) == 4096)
		;
}

void edge_worker_tick(struct edge_worker *w)
{
	uint64_t now = time_mono_ns(), limit = (uint64_t)w->e->cfg.heartbeat_ms * 2000000ull;

	for (struct session *s = w->sessions; s; s = s->next)
		if (now - s->last_rx_ns > limit)
			session_request_close(s, CLOSE_HEARTBEAT_TIMEOUT, "heartbeat timeout");
}

void edge_worker_close_all(struct edge_worker *w, int code, const char *reason)
{
	for (struct session *s = w->sessions; s; s = s->next)
		session_request_close(s, code, reason);
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
		if (s)
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
		json_t *c = json_pack("{s:I, s:s, s:s, s:I, s:I, s:I, s:s}", "id",
				      (json_int_t)rows[r].id, "name", rows[r].name, "kind",
				      rows[r].kind, "last_seq", (json_int_t)rows[r].last_seq,
				      "last_read_seq", (json_int_t)rows[r].last_read_seq, "unread",
				      (json_int_t)rows[r].unread, "role", rows[r].role);
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
	if (conn == NULL || (j->user_id = store_user_ensure(conn, j->user)) < 0)
		goto out;
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
	struct persist_history_query q = {
	    .mode = parent   ? PERSIST_HISTORY_THREAD
		    : before ? PERSIST_HISTORY_BEFORE
			     : PERSIST_HISTORY_AFTER,
	    .channel_id = channel,
	    .after_seq = after,
	    .before_seq = before,
	    .parent_seq = parent,
	    .limit = limit,
	    .viewer_id = s->user_id,
	};
	int rc;

	if (j == NULL)
		return -ENOMEM;
	/* A plain history request without a direction reads the newest page. */
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

void edge_membership_changed(struct edge *e, int64_t user_id, int64_t channel_id, bool added,
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
	if (!j->failed)
		j->seq = seq;
	read_broadcast(j);
}

void edge_read_changed(struct edge *e, int64_t user_id, int64_t channel, int64_t seq)
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
