/* SPDX-License-Identifier: BSD-3-Clause */
/* The persist writer's inside, shared by writer.c (the public face: checks a
 * publish, routes it to its channel's lane), lane.c (one lane: the queue, the
 * thread, the batches' outcomes), batch.c (one batch against PostgreSQL:
 * the connection, the channels' heads, the pipelined append, and resolving
 * an unknown outcome), batch_copy.c (a large batch's append by COPY) and
 * heads.c (the fence both appends share). Nothing outside persist/
 * includes this. */
#pragma once

#include "writer.h"

#include "indexer.h"
#include "metrics.h"
#include "pg.h"
#include "seqtab.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

/* A row's mentions, written by the statement that inserts it (migration
 * 0017): a message's names by fanout_mentions, which PostgreSQL inlines
 * once into the statement's plan; NULL for an event. The rows are m. */
#define BATCH_MENTIONS_SQL "CASE WHEN m.kind = 'message' THEN fanout_mentions(m.body) END"

/* How many times a batch is re-planned after unique violations before the
 * remaining requests fail; each round settles at least one request. */
#define RESOLVE_ROUNDS_MAX 8

/* An idle writer checks its connection this often. */
#define WRITER_IDLE_CHECK_NS 1000000000ull

struct request {
	struct request *next;
	struct persist_message msg;
	void *cookie;
	uint64_t submitted_ns;
	int64_t epoch; /* the owner epoch it was routed at */
	char data[];   /* kind, client_msg_id, body, author_name; each NUL-terminated */
};

/* How a request ended, decided before any callback runs. */
struct settle {
	enum persist_outcome outcome;
	int error;
	bool done;
};

/* A view of requests being committed together: the whole batch, or one
 * request when a bad one is being isolated. */
struct batch {
	struct request **reqs;
	struct seq_item *items;
	struct settle *settled;
	int n;
};

enum exec_result { EXEC_OK, EXEC_UNIQUE, EXEC_CONN, EXEC_SQL };

/* The pipelined append in flight (batch_append_send to _finish): what has
 * come back of it so far. */
struct append_flight {
	int nnew, ngroups;
	uint64_t start_ns;
	PGresult *rows;	 /* the append's answer: the channels whose head moved */
	PGresult *error; /* the append's error, or the commit's at the sync */
	bool synced;	 /* the sync marker came: the answer is whole */
	bool lost;	 /* the connection failed on the way */
	bool odd;	 /* a result the pipeline does not give */
};

/* Who runs a lane's batches: its own thread, or the event loop that adopted
 * it (lane_loop.c). The one that does holds the connection and the batch
 * scratch; the other waits for it to let go. */
enum lane_owner { LANE_OWN_THREAD, LANE_OWN_LOOP };

/* Where the lane's thread picks up a batch its loop handed back. */
enum lane_resume {
	RESUME_NONE,
	RESUME_START,	  /* taken from the queue, nothing sent */
	RESUME_IN_FLIGHT, /* its append sent, the answer not read */
	RESUME_ANSWERED,  /* the answer read: handed_er */
};

/* One lane: a thread and its connection, for the channels routed to it. */
struct writer_lane {
	struct persist_writer_config cfg;
	char name[24]; /* in its log lines: "writer", or "writer lane 2" of several */
	persist_commit_fn fn;
	void *fn_arg;
	struct search_indexer *indexer; /* told each channel's committed seqs */
	pthread_t thread;

	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_cond_t drained;
	struct request *head, *tail;
	int depth;
	uint64_t submitted;	   /* publishes queued, ever (under lock) */
	_Atomic uint64_t answered; /* publishes whose outcome was told */
	bool stopping;
	bool finished;

	atomic_bool abandon; /* drain gave up: stop reconnecting */
	atomic_bool connected;
	PGconn *conn;
	struct seqtab *seq;

	/* Per-batch scratch, sized batch_max. */
	struct request **reqs;
	struct seq_item *items;
	struct settle *settled;
	int *order;  /* NEW items sorted by channel */
	int *groups; /* where each channel's run starts in order[], and the end */
	/* Resolve scratch. */
	struct settle *found;
	int64_t *found_seq, *heads;
	bool *head_set;
	struct buf params[11]; /* the append's arrays (batch.c) */
	bool ever_connected;
	struct append_flight flight;

	/* Driven by an event loop (lane_loop.c). owner and the handing back
	 * under lock; loop_* set once when adopted. */
	void (*loop_wake)(void *ctx); /* persist_loop's, copied */
	void *loop_ctx;
	pthread_t loop_thread;
	_Atomic enum lane_owner owner;
	bool loop_gone;		    /* the loop let go for good */
	enum lane_resume handed;    /* a batch handed back, and where it stands */
	int handed_n;		    /* its size */
	enum exec_result handed_er; /* RESUME_ANSWERED: the answer */
};

/* Metrics: process-wide, registered once (writer.c). */
extern struct metric_counter m_batches, m_committed, m_duplicates, m_failed, m_fence_failures,
    m_reconnects, m_resolves, m_copy_batches, m_loop_batches, m_loop_handbacks, m_heads_evicted;
extern struct metric_histogram m_commit_latency, m_publish_latency, m_queue_latency,
    m_callback_latency;

/* lane.c. create starts the lane's thread (cfg already checked); enqueue
 * takes r, or returns -ESHUTDOWN or -EAGAIN (full) and leaves it to the
 * caller; stop stops taking publishes; join waits for the queue to drain
 * until the deadline (CLOCK_MONOTONIC), then fails what is left, joins and
 * frees. */
struct writer_lane *lane_create(const struct persist_writer_config *cfg, int index,
				persist_commit_fn fn, void *arg, struct search_indexer *ix);
int lane_enqueue(struct writer_lane *w, struct request *r);
void lane_stop(struct writer_lane *w);
void lane_join(struct writer_lane *w, const struct timespec *until);
bool lane_connected(struct writer_lane *w);
/* Publishes waiting now; *submitted (if given): queued ever. */
int lane_queued(struct writer_lane *w, uint64_t *submitted);
uint64_t lane_answered(struct writer_lane *w); /* publishes told their outcome, ever */
/* For the loop that drives a lane (lane_loop.c), as the lane's thread does:
 * take moves up to batch_max queued requests into the batch scratch (under
 * lock; their number); settle_planned, pending and fail_pending settle a
 * batch's requests; deliver hands each to the callback and frees it. */
int lane_take_locked(struct writer_lane *w);
/* Checks the batch's replies' parents and plans its seqs (its heads
 * loaded): the new items, or -1 with the pending failed -EIO. */
int lane_plan(struct writer_lane *w, struct batch *b);
void lane_settle_planned(struct batch *b, bool include_new);
int lane_pending(const struct batch *b);
void lane_fail_pending(struct batch *b, int error);
void lane_deliver(struct writer_lane *w, struct batch *b);
/* writer.c: the writer's lanes (lane_loop.c adopts some), *n of them. */
struct writer_lane *const *writer_lanes(const struct persist_writer *w, int *n);

/* batch.c */
int batch_connect(struct writer_lane *w);
/* Whether the lane's connection is gone (after a failed command). */
static inline bool conn_lost(struct writer_lane *w)
{
	return PQstatus(w->conn) != CONNECTION_OK;
}
int batch_load_heads(struct writer_lane *w, struct batch *b);
void batch_check_parents(struct writer_lane *w, struct batch *b);
/* Adds item k of order[] to seven row arrays a[0..6]: channel, seq,
 * author, client_msg_id, kind, body, parent_seq (both appends send them:
 * batch.c, batch_copy.c). 0 or -ENOMEM. */
static inline int batch_add_row(struct writer_lane *w, struct batch *b, int k, struct pg_array *a)
{
	const struct persist_message *m = &b->reqs[w->order[k]]->msg;
	int rc = pg_array_add_int8(&a[0], b->items[w->order[k]].channel);

	rc = rc ?: pg_array_add_int8(&a[1], b->items[w->order[k]].seq);
	rc = rc ?: pg_array_add_int8(&a[2], m->author_id);
	rc = rc ?: pg_array_add_text(&a[3], m->client_msg_id, strlen(m->client_msg_id));
	rc = rc ?: pg_array_add_text(&a[4], m->kind, strlen(m->kind));
	rc = rc ?: pg_array_add_text(&a[5], m->body, m->body_len);
	return rc
		   ?: (m->parent_seq ? pg_array_add_int8(&a[6], m->parent_seq)
				     : pg_array_add_null(&a[6]));
}

/* The pipelined append in halves, for a caller that must not block:
 * send plans the batch's nnew new items and sends the append and its sync
 * (0, or -EIO: the connection failed, for finish to tell); collect reads
 * what has arrived, 1 once the answer is whole (or the connection failed),
 * 0 while more is to come (wait for the socket to be readable); finish
 * says what it was, as batch_execute does. */
int batch_append_send(struct writer_lane *w, struct batch *b, int nnew);
int batch_append_collect(struct writer_lane *w);
enum exec_result batch_append_finish(struct writer_lane *w, struct batch *b);
/* Whether the append in flight ended without a whole answer, so that
 * batch_append_finish will drop the connection (unwatch its socket first). */
bool batch_append_lost(const struct writer_lane *w);
/* Whether every pending request's channel has its head, claimed at the
 * request's epoch or later: batch_load_heads would send nothing. */
bool batch_heads_known(struct writer_lane *w, const struct batch *b);

/* Commits the batch's nnew planned items: by the pipelined append, or, from
 * cfg.copy_min_rows rows, by COPY (batch_copy.c). On EXEC_CONN the
 * connection is gone; the outcome is for batch_resolve to find. */
enum exec_result batch_execute(struct writer_lane *w, struct batch *b, int nnew);
/* heads.c: the heads' statement prepared on a new connection (its result:
 * PGRES_COMMAND_OK or why not); group [from, to) of order[] added to the
 * four head arrays (channel, the head the fence expects, the new head,
 * the epoch), 0 or -ENOMEM; the groups whose channel the result of a heads'
 * UPDATE does not name marked fenced (their items SEQ_DONE, -ESTALE), the
 * lane stepping down for them; and, for the COPY, BEGIN and the heads'
 * UPDATE for w->groups in one round trip, the fenced groups marked
 * (EXEC_SQL leaves the transaction failed for the caller to roll back). */
PGresult *heads_prepare(PGconn *conn);
int heads_add(struct writer_lane *w, struct batch *b, int from, int to, struct pg_array *a);
void heads_fenced(struct writer_lane *w, struct batch *b, const PGresult *res, const int *groups,
		  int ngroups);
enum exec_result heads_begin(struct writer_lane *w, struct batch *b, int nnew, int ngroups);
/* batch_copy.c: batch_execute's transaction by COPY; leaves the connection
 * idle unless EXEC_CONN. */
enum exec_result batch_execute_copy(struct writer_lane *w, struct batch *b, int nnew, int ngroups,
				    int64_t created_at);
int batch_resolve(struct writer_lane *w, struct batch *b);
