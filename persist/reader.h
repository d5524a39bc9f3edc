/* SPDX-License-Identifier: BSD-3-Clause */
/* The history reader: catch-up after a seq, scroll-back before a seq, and
 * threads, paged, on its own threads and connections so an edge worker never
 * waits on PostgreSQL. Requests go in from any thread; each answer comes back
 * through the request's callback on a reader thread. */
#pragma once

/* libpq's PGconn, without its header: callers outside persist/ never see libpq. */
struct pg_conn;

#include <stdbool.h>
#include <stdint.h>

#include "persist-types.h"

#define PERSIST_HISTORY_LIMIT_MAX 1000

enum persist_history_mode {
	PERSIST_HISTORY_AFTER,	/* seq > after_seq, ascending: catch-up */
	PERSIST_HISTORY_BEFORE, /* seq < before_seq, the newest first taken, returned ascending */
	PERSIST_HISTORY_THREAD, /* the parent (first page only) and its replies > after_seq */
};

struct persist_history_query {
	enum persist_history_mode mode;
	int64_t channel_id;
	int64_t after_seq;  /* AFTER, THREAD */
	int64_t before_seq; /* BEFORE; 0 means from the newest */
	int64_t parent_seq; /* THREAD */
	int limit;	    /* 1..PERSIST_HISTORY_LIMIT_MAX */
	int64_t viewer_id;  /* whose "me" the reactions report; 0: nobody's */
	/* The highest seq of the channel the asker has seen (0: unknown). A
	 * standby may answer only once it has replayed the channel that far
	 * (reader.c, "Reading on a standby"). */
	int64_t min_head;
};

/* One page, ascending by seq. has_more says another page exists in the
 * direction of travel. error is 0, -EIO (PostgreSQL failed twice), -ENOMEM
 * (no memory for the rows), -ECANCELED (shutting down); on error count is 0. Free with
 * persist_history_free(). */
struct persist_history {
	int error;
	int count;
	bool has_more;
	int64_t head; /* an empty AFTER page past 0: the channel's last_seq; else -1 */
	struct persist_message *messages;
};

typedef void (*persist_history_fn)(void *arg, struct persist_history *page);

struct persist_reader;

/* Starts nthreads reader threads, each connecting on its own (with retries).
 * read_dsn (NULL or "": none) names standbys that history pages may be read
 * on when they have replayed far enough. NULL with errno EINVAL or ENOMEM. */
struct persist_reader *persist_reader_create(const char *dsn, const char *read_dsn, int nthreads,
					     int reconnect_max_ms);

/* Registers the reader's counters on /metrics (once per process). */
int persist_reader_register_metrics(void);

/* Queues a query. 0, -EINVAL (bad query, callback not called), -ENOMEM,
 * -ESHUTDOWN. */
int persist_reader_submit(struct persist_reader *r, const struct persist_history_query *q,
			  persist_history_fn fn, void *arg);

/* A generic job: runs on a reader thread with its connection, or with NULL
 * when no connection can be had (shutting down); it must answer its caller
 * either way. For control queries (membership, channels) that must not run
 * on an edge worker. */
typedef void (*persist_job_fn)(void *arg, struct pg_conn *conn);

/* Reads one page synchronously on conn (inside a job; on the job's thread's
 * standby first when it has one and it has replayed far enough). Returns
 * page->error; free page->messages afterwards. */
int persist_history_read(struct pg_conn *conn, const struct persist_history_query *q,
			 struct persist_history *page);

/* What a client stored under one idempotency key. */
struct persist_stored {
	int64_t seq;
	int64_t created_at_us;
	bool same; /* same kind, parent and body as the request compared */
};

/* Looks up the row stored under (channel, author, client_msg_id) on conn
 * (inside a job) and compares it with a request: kind (NULL: "message"),
 * parent_seq (0: none) and body. 1 with *out filled, 0 when there is no
 * such row, -EIO. */
int persist_stored_find(struct pg_conn *conn, int64_t channel, int64_t author,
			const char *client_msg_id, const char *kind, int64_t parent_seq,
			const char *body, struct persist_stored *out);

/* Queues a job. 0, -ENOMEM, -ESHUTDOWN (job not called). */
int persist_reader_run(struct persist_reader *r, persist_job_fn job, void *arg);

/* Fails queued queries with -ECANCELED (jobs run with NULL), joins, frees. */
void persist_reader_destroy(struct persist_reader *r);

void persist_history_free(struct persist_history *page);
