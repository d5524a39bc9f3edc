/* SPDX-License-Identifier: BSD-3-Clause */
/* The persist writer's state, shared by writer.c (the queue, the thread, the
 * batches' outcomes) and batch.c (one batch against PostgreSQL: the
 * connection, the channels' heads, the pipelined append and the fence, and
 * resolving an unknown outcome). Nothing outside persist/ includes this. */
#pragma once

#include "writer.h"

#include "metrics.h"
#include "pg.h"
#include "seqtab.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>

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

struct persist_writer {
	struct persist_writer_config cfg;
	persist_commit_fn fn;
	void *fn_arg;
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
	struct buf params[5];
	bool ever_connected;
};

enum exec_result { EXEC_OK, EXEC_UNIQUE, EXEC_CONN, EXEC_SQL };

/* Metrics: process-wide, registered once (writer.c). */
extern struct metric_counter m_batches, m_committed, m_duplicates, m_failed, m_fence_failures,
    m_reconnects, m_resolves;
extern struct metric_histogram m_commit_latency, m_publish_latency;

/* batch.c */
int batch_connect(struct persist_writer *w);
bool conn_lost(struct persist_writer *w);
int batch_load_heads(struct persist_writer *w, struct batch *b);
void batch_check_parents(struct persist_writer *w, struct batch *b);
enum exec_result batch_execute(struct persist_writer *w, struct batch *b, int nnew);
int batch_resolve(struct persist_writer *w, struct batch *b);
