/* SPDX-License-Identifier: BSD-3-Clause */
/* The messaging core shared by both edges, transport-neutral: workers, their
 * sessions, the client protocol (docs/protocol.md), membership, catch-up, and
 * the path from a durable commit to every subscriber.
 *
 * Threads: each worker's functions run on that worker's thread only; the
 * commit callback runs on the persist writer thread; jobs run on reader
 * threads. They meet only through the fan-out engine's inboxes.
 *
 * A transport (a connection of either edge) drives a session:
 *   session_open()      after authenticating the user;
 *   session_on_text()   for each complete inbound text message;
 *   session_peek()/session_sent()  when the connection can write;
 *   session_close_code() to learn that the session wants to close;
 *   session_closed()    when the connection is gone (frees the session). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fanout.h"
#include "frame.h"
#include "reader.h"
#include "writer.h"

#define PROTOCOL_VERSION 1

/* Close codes beyond RFC 6455's. */
#define CLOSE_HEARTBEAT_TIMEOUT 4000
#define CLOSE_NOT_READING	4001

struct edge_config {
	int heartbeat_ms;	  /* clients ping at least this often */
	size_t max_message_bytes; /* inbound message limit (close 1009) */
	size_t send_queue_bytes;  /* per connection; past it: lagged */
	double publish_rate;	  /* publishes per second per connection */
	double publish_burst;
	size_t max_text_bytes; /* a message's text */
	int broad_mention_ms;  /* @channel/@here interval (edge_mention_refusal) */
	int presence_grace_ms;
	int presence_interval_ms;
};

struct edge;
struct edge_worker;
struct session;

/* What a session asks of its transport: one table per kind of transport,
 * shared by all its sessions (a session keeps a pointer to it, not two). */
struct session_ops {
	void (*want_write)(void *ctx);	       /* call session_peek() soon */
	void (*pause_rx)(void *ctx, bool off); /* stop (or resume) reading */
};

struct session_transport {
	const struct session_ops *ops;
	void *ctx;	  /* passed to ops */
	const char *peer; /* the client's address, "a.b.c.d:port" (copied; may be NULL) */
};

struct route;

/* The client protocol, as the session machinery below it needs it: the
 * sessions (session.c) call up into the protocol (requests.c, jobs.c) only
 * through this table, so no file of the core calls a file that calls it
 * back. requests.c provides protocol_v1. */
struct edge_protocol {
	/* A complete text message from the client, once the session is ready. */
	void (*handle)(struct session *s, const char *data, size_t len);
	/* Loads the user and their channels; session_ready() or a close follows.
	 * 0 or -errno. */
	int (*hello_start)(struct session *s);
	/* Reads history for a catch-up (catch_up: after `after`) or a request:
	 * a thread when parent, else after `after` when it is >= 0, else the
	 * page below `before` (0: the newest page). The page comes to
	 * session_history_page(). 0 or -errno. */
	int (*history_start)(struct session *s, int64_t channel, int64_t after, int64_t before,
			     int64_t parent, int limit, const char *req, bool catch_up);
	/* Delivers presence's JSON text to session `session` of the worker
	 * whose inbox ran the event (worker_arg). */
	void (*presence_deliver)(void *worker_arg, uint64_t session, const char *json);
};

/* Protocol v1 (docs/protocol.md), in requests.c. */
extern const struct edge_protocol protocol_v1;

/* The node-wide part; route says who owns each channel (NULL: this node
 * owns them all, route_local); protocol is the client protocol
 * (&protocol_v1). NULL with errno. */
struct edge *edge_create(const struct edge_config *cfg, struct fanout *fanout,
			 struct persist_reader *reader, const struct route *route,
			 const struct edge_protocol *protocol, int nworkers);
void edge_set_writer(struct edge *e, struct persist_writer *w);
/* The node's publish door (publish.h). */
struct publish_state *edge_publish(struct edge *e);
/* Stops the edge's own threads (presence), which post to the workers: call
 * before the workers stop. */
void edge_stop(struct edge *e);
void edge_destroy(struct edge *e);

/* max_sessions: the most sessions the worker will hold (its tables are
 * sized for them; session_open() fails with ENOSPC past it). */
struct edge_worker *edge_worker_create(struct edge *e, int index, uint32_t max_sessions);
void edge_worker_destroy(struct edge_worker *w);
/* Handles everything queued for the worker; returns how many items (frames
 * and events) it took. Worker thread. */
unsigned edge_worker_drain(struct edge_worker *w);
/* Once a second: heartbeats. Worker thread. */
void edge_worker_tick(struct edge_worker *w);
/* Asks every session of the worker to close with code (1001 at shutdown). */
void edge_worker_close_all(struct edge_worker *w, int code, const char *reason);
/* The same from any thread: posts it to worker index's inbox. 0 or -ENOMEM. */
int edge_post_close_all(struct edge *e, int index, int code, const char *reason);
int edge_worker_sessions(struct edge_worker *w);

/* NULL with errno: ENOSPC when the worker holds max_sessions already (tell
 * the client 1013, try again later), ENOMEM, ESHUTDOWN. */
struct session *session_open(struct edge_worker *w, const char *user_name,
			     const struct session_transport *t);
void session_on_text(struct session *s, const char *data, size_t len);
/* The next frame to send, or NULL. The session keeps its reference. */
struct frame *session_peek(struct session *s);
/* The frame from session_peek() was handed to the connection. */
void session_sent(struct session *s);
/* Up to max queued frames from the head, without taking them (the session
 * keeps its references); then session_sent_many() with how many were handed
 * to the connection. For transports that coalesce frames into one write. */
int session_peek_many(struct session *s, struct frame **out, int max);
void session_sent_many(struct session *s, int n);
/* Non-zero when the session should close now (all queued frames sent). */
int session_close_code(struct session *s, const char **reason);
void session_closed(struct session *s);

/* The operator's view of connections (admin.c). A connection's id is its
 * worker and session in one number, unique on the node while it lives. */
#define CLOSE_BY_OPERATOR 4002

struct edge_conn_info {
	uint64_t id;
	int worker;
	char user[65];
	char peer[48];
	int64_t opened_us; /* wall clock */
	const char *state; /* "starting", "ready", "closing" */
	int subscriptions;
	unsigned queued_frames;
	size_t queued_bytes;
	bool paused; /* not read: its replies back up */
};

typedef void (*edge_conn_list_fn)(void *arg, const struct edge_conn_info *v, int n);

uint64_t edge_conn_id(int worker, uint64_t session);
/* Gathers the connections of every worker (only those subscribed to channel
 * when > 0, only user's when user is non-empty) and calls done with them on
 * worker reply_worker's thread; the list is freed when done returns. 0 or
 * -ENOMEM. Any thread. */
int edge_list_connections(struct edge *e, int reply_worker, int64_t channel, const char *user,
			  edge_conn_list_fn done, void *arg);
/* Closes connection id with code and reason (its queued frames are sent
 * first, as for any close), then calls done(arg, found) on reply_worker's
 * thread. 0, -ENOENT (the id names no worker), -ENOMEM. Any thread. */
int edge_close_connection(struct edge *e, int reply_worker, uint64_t id, int code,
			  const char *reason, void (*done)(void *arg, bool found), void *arg);

/* The limits a reload may change while serving (SIGHUP): read them here,
 * never from struct edge_config, which holds their values at start. */
struct edge_limits {
	double publish_rate, publish_burst; /* per connection */
	size_t max_text_bytes;		    /* a message's text */
	size_t send_queue_bytes;	    /* per connection, before it lags */
	int broad_mention_ms;		    /* config_server.broad_mention_interval_ms */
};

/* The limits now. Any thread. */
struct edge_limits edge_limits(struct edge *e);
/* Sets them; sessions see them at their next publish or frame (a bucket
 * already fuller than a new burst is cut to it at its next refill). Any
 * thread. */
void edge_set_limits(struct edge *e, const struct edge_limits *l);

/* Why a publish of text by user to channel is refused for its @channel or
 * @here (core/mention.h): an error code with *message, or NULL to go on.
 * A NULL answer for a broad mention takes its turn of the interval; a retry
 * with the same client_msg_id cmid (NULL: none) is let through again. Any
 * thread. */
const char *edge_mention_refusal(struct edge *e, int64_t user, int64_t channel, const char *cmid,
				 const char *text, size_t len, const char **message);

/* Shared with the HTTP API (dataplane/socket/api.c). */
struct edge_worker *edge_worker_of(struct edge *e, int index);
struct fanout *edge_fanout(struct edge *e);
struct persist_reader *edge_reader(struct edge *e);
const struct edge_config *edge_config(struct edge *e);
int edge_nworkers(struct edge *e);

/* The transport's per-worker state, for its own events. */
void edge_worker_set_transport(struct edge_worker *w, void *transport);
void *edge_worker_transport(struct edge_worker *w);
int edge_worker_index(struct edge_worker *w);

/* The user's channels as hello lists them (docs/protocol.md), sorted by id;
 * NULL on error. Reader jobs (persist/reader.h), on their connection. */
#include <jansson.h>
struct pg_conn;
json_t *edge_user_channels(struct pg_conn *conn, int64_t user_id);

/* Checks that user may edit or delete message seq of channel
 * (store_event_authorize) and names the refusal for the client: 0, or
 * -EPERM ("forbidden"), -ENOENT ("not_found"), -EIO ("unavailable") with the
 * code and message. Reader jobs. */
int edge_authorize_event(struct pg_conn *conn, int64_t channel, int64_t seq, int64_t user,
			 const char **code, const char **message);

/* Sends every session subscribed to channel back to PostgreSQL for what it
 * may have missed (the cursor of DESIGN.md section 2): the cluster calls it
 * when the channel's owner changed, since broadcasts in flight from the old
 * owner may be lost. Any thread. 0 or -ENOMEM. */
int edge_channel_resync(struct edge *e, int64_t channel);

struct route_user_event;
/* Applies a user event another node told us of, to this node's sessions
 * only (not told onward). Any thread. */
void edge_user_event(struct edge *e, const struct route_user_event *ev);
struct route_presence;
/* Presence across nodes (route.h): a message from node from, and a resync
 * after a ring change (ring_changed) or a link coming up. Any thread. */
void edge_presence_message(struct edge *e, const char *from, const struct route_presence *m);
void edge_presence_resync(struct edge *e, bool ring_changed);

/* Tells every live session of user_id that its read cursor on channel is now
 * seq (a "read" frame), here and on the other nodes. Any thread. */
void edge_read_changed(struct edge *e, int64_t user_id, int64_t channel, int64_t seq);

/* Tells every worker that user_id joined (added) or left channel_id, so live
 * sessions follow, here and on the other nodes. Any thread. */
void edge_membership_changed(struct edge *e, int64_t user_id, int64_t channel_id, bool added,
			     bool ephemeral);

/* What a publish's commit outcome is handed to (the writer's cookie). done
 * runs on a writer lane's thread (several at once) and must post, not block. received_ns: when the
 * request arrived (monotonic; 0 unknown), for the publish's stage metrics
 * (fanout_publish_accept_seconds, fanout_publish_seconds). */
struct commit_cookie {
	void (*done)(struct edge *e, struct commit_cookie *c, enum persist_outcome outcome,
		     int error, const struct persist_message *m);
	uint64_t received_ns;
};

/* JSON encoders (dataplane/encode.c). Each returns a malloc'd string and its
 * length, or NULL. */
char *encode_message(const struct persist_message *m, size_t *len);
/* The same, marked "ephemeral": true (a live-only channel's message). */
char *encode_ephemeral(const struct persist_message *m, size_t *len);
void encode_timestamp(int64_t us, char out[40]);
