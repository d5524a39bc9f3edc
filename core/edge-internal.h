/* SPDX-License-Identifier: BSD-3-Clause */
/* Structures shared by the files of the core: edge.c (the node and its
 * workers' tables), session.c (one connection), jobs.c, worker.c and
 * requests.c. Not for the transports. */
#pragma once

#include "edge.h"

#include <jansson.h>
#include <rte_hash.h>
#include <string.h>

#include "metrics.h"

struct sub {
	int64_t channel;
	int64_t last_seq; /* highest seq queued to the client */
	bool anchored;	  /* last_seq is a cursor the client holds (since given,
			   * or a frame queued): a gap above it is fetched */
	int64_t seen_seq; /* highest seq this connection has seen, live or read */
	bool catching_up; /* replaying from PostgreSQL; live frames are held */
	bool fetching;	  /* a history page is in flight */
	bool held_dropped;
	uint64_t typing_ns; /* when this connection last announced typing here */
	struct frame **held;
	int nheld, capheld;
	size_t held_bytes;
};

enum session_state { SESSION_STARTING, SESSION_READY, SESSION_CLOSING };

/* A sorted set of channel ids, with its count and room in the same
 * allocation (NULL: empty). */
struct chanset {
	int n, cap;
	int64_t id[];
};

/* A session's send queue: a ring of frames, allocated when a frame comes
 * and given back at the worker's tick once it is empty (session_trim): an
 * idle session holds none. */
struct sendq {
	size_t bytes; /* of the frames queued */
	unsigned head, len, cap;
	struct frame *f[];
};

/* Pointers first, then the counts, then the flags, without holes: an idle
 * connection's session is one allocation, with its names at the end, within
 * jemalloc's 192-byte class for names up to 34 bytes (test_core checks it).
 * What only some sessions use is allocated apart: the send queue while
 * frames wait, the requests sent before hello, the close reason. */
struct session {
	struct edge_worker *w;
	uint64_t id;
	const struct session_ops *ops;
	void *ctx;
	struct session *prev, *next; /* the worker's list */
	int64_t user_id;
	int64_t opened_us;	   /* wall clock, for the operator */
	struct chanset *member;	   /* channels the user belongs to */
	struct chanset *ephemeral; /* those of them that are live-only */
	struct sub *subs;
	struct sendq *q;
	char **pending;	       /* requests before hello (allocated for the first) */
	uint64_t presence_gen; /* the latest presence_subscribe */
	double tokens;
	uint64_t refill_ns, last_rx_ns;
	char *close_reason; /* once closing */
	int nsubs, capsubs;
	uint16_t close_code;
	uint8_t npending;
	uint8_t state;	  /* enum session_state */
	bool sending;	  /* q's head was peeked and not yet sent */
	bool rx_paused;	  /* replies back up: the client is not read */
	char user_name[]; /* then the peer's address (both NUL-terminated) */
};

/* The client's address, kept after the user's name. */
static inline const char *session_peer(const struct session *s)
{
	return s->user_name + strlen(s->user_name) + 1;
}

void session_trim(struct session *s);

static inline unsigned session_queued(const struct session *s)
{
	return s->q ? s->q->len : 0;
}

static inline size_t session_queued_bytes(const struct session *s)
{
	return s->q ? s->q->bytes : 0;
}

/* The node. */
struct edge {
	struct edge_config cfg;
	struct {
		_Atomic double publish_rate, publish_burst;
		_Atomic size_t max_text_bytes, send_queue_bytes;
		_Atomic int broad_mention_ms;
	} limits; /* edge_limits(): what a reload may change */
	struct edge_protocol protocol;
	struct publish_state *publish;
	struct fanout *fanout;
	struct persist_reader *reader;
	int nworkers;
	struct presence *presence;
	struct handoff *handoff; /* once a worker hands its publishes off */
	struct mention_gate *mention_gate;
	struct edge_worker *workers[FANOUT_WORKERS_MAX];
};

struct chan_local {
	int n, cap;
	struct session **s;
};

struct edge_worker {
	struct edge *e;
	int index;
	struct rte_hash *local; /* channel -> struct chan_local * */
	struct rte_hash *by_id; /* session id -> struct session * */
	struct session *sessions;
	int nsessions;
	uint64_t next_id;
	void *transport;
	struct handoff_worker *handoff; /* NULL: the worker publishes itself */
};

extern struct metric_counter edge_m_lagged, edge_m_deliveries;
extern struct metric_histogram edge_m_fanout_latency;

/* Worker-side helpers used by session.c (edge.c). */
struct session *worker_find(struct edge_worker *w, uint64_t id);
int worker_local_add(struct edge_worker *w, int64_t channel, struct session *s);
void worker_local_remove(struct edge_worker *w, int64_t channel, struct session *s);
int worker_register(struct edge_worker *w, struct session *s);
void worker_forget(struct edge_worker *w, struct session *s);
int edge_hello_start(struct session *s);
int edge_history_start(struct session *s, int64_t channel, int64_t after, int64_t before,
		       int64_t parent, int limit, const char *req, bool catch_up);

/* Jobs that check PostgreSQL first (edge.c): an edit or delete is submitted
 * only when the user wrote the message or administers the channel; a read
 * cursor moves forward only and every session of the user hears of it. */
int edge_authorized_event_start(struct session *s, const struct persist_publish *p,
				struct commit_cookie *cookie, const char *req);
int edge_mark_read_start(struct session *s, int64_t channel, int64_t seq, const char *req);
/* Watches the presence of names (n, checked); those the user may not see
 * (store_hidden_users) are answered offline and never announced. */
int edge_presence_watch_start(struct session *s, const char *req, const char *const *names, int n);

struct presence *edge_presence(struct edge *e);

/* Between requests.c and session.c. */
void session_handle(struct session *s, const char *data, size_t len);
bool session_is_member(const struct session *s, int64_t channel);
bool session_is_ephemeral(const struct session *s, int64_t channel);
bool session_take_token(struct session *s);
struct sub *session_find_sub(struct session *s, int64_t channel);
void session_remove_sub(struct session *s, struct sub *sub);
void session_fetch_more(struct session *s);

/* Session helpers used by edge.c (session.c). */
void session_ready(struct session *s, int64_t user_id, json_t *channels, const int64_t *member,
		   int nmember);
void session_deliver(struct session *s, struct frame *f);
void session_send_json(struct session *s, json_t *o);
/* Queues a control frame made elsewhere (its reference taken). */
void session_send_frame(struct session *s, struct frame *f);
void session_error(struct session *s, const char *req, const char *code, const char *message);
void session_history_page(struct session *s, struct persist_history *page, int64_t channel,
			  const char *req, bool catch_up);
void session_member_change(struct session *s, int64_t channel, bool added, bool ephemeral);
void session_catch_up_all(struct session *s);
/* The same for one channel's subscription, if the session has one. */
void session_catch_up(struct session *s, int64_t channel);
void session_request_close(struct session *s, int code, const char *reason);
/* Presence's way to a session (struct edge_protocol's presence_deliver). */
void session_presence_deliver(void *worker_arg, uint64_t session, const char *json);
