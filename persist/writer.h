/* SPDX-License-Identifier: BSD-3-Clause */
/* The persist writer: the sequencer and durable stage of DESIGN.md §2, steps
 * 3-5. Any thread submits publishes; the thread of the channel's lane assigns
 * dense per-channel seqs, drops retried client_msg_ids, commits batches in one
 * transaction (libpq pipeline mode) fenced by a compare-and-set on each
 * channel's head, and only after COMMIT hands each message on, in seq order
 * per channel, through the commit callback. With cfg.writers above one, the
 * channels are spread over that many lanes, each its own thread, connection
 * and transactions; a channel always goes to the same lane.
 *
 * The callback runs on the thread of the channel's lane, or on the loop's
 * thread that drives the lane (persist_driver_*, below), so with several
 * lanes on several threads at once, and must not block for long: copy or
 * enqueue what it needs; the message's strings are freed after it returns.
 * Outcomes:
 *   PERSIST_COMMITTED  newly durable: ack the publisher and broadcast;
 *   PERSIST_DUPLICATE  the client_msg_id was seen: m->seq is the original
 *                      seq; ack with it, do not broadcast again;
 *   PERSIST_FAILED     nothing was written. error is -ENOENT (no such
 *                      channel), -EINVAL (parent_seq names no earlier
 *                      message), -ESTALE (the fence failed: another writer
 *                      moved the channel head or claimed it at a newer owner
 *                      epoch, or may_commit said no; this writer stepped
 *                      down for that channel and reloads it on the next
 *                      publish),
 *                      -EIO (PostgreSQL refused the message), -ECANCELED
 *                      (shut down before it could be committed). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "metrics.h"
#include "persist-types.h"

enum persist_outcome {
	PERSIST_COMMITTED,
	PERSIST_DUPLICATE,
	PERSIST_FAILED,
};

typedef void (*persist_commit_fn)(void *arg, enum persist_outcome outcome, int error,
				  const struct persist_message *m, void *cookie);

#define PERSIST_WRITERS_MAX 16

struct persist_writer_config {
	const char *dsn;
	bool allow_unsafe_commit;
	int writers;	      /* lanes: connections and threads (0: one), at most 16 */
	int batch_max;	      /* messages per transaction */
	int batch_window_us;  /* linger for a fuller batch; 0 commits what is there */
	int queue_max;	      /* queued publishes before submit says -EAGAIN (a lane
			       * takes its share) */
	int dedup_cache;      /* recent ids remembered in memory (shared out too) */
	int channel_heads;    /* channel heads held in memory, about (shared out,
			       * each lane at least 4 x batch_max); 0: no bound */
	int reconnect_max_ms; /* ceiling of the reconnect backoff */
	int drain_timeout_ms; /* at destroy: how long to keep trying to commit */
	int copy_min_rows;    /* a batch of at least this many new rows goes by
			       * COPY (batch_copy.c); 0: never */
	int search_sweep_ms;  /* how often the search indexer looks for channels
			       * left behind (indexer.h); 0: a minute */
	/* In a cluster: asked before each batch; false fails the batch with
	 * -ESTALE, uncommitted (the node's lease may have expired). NULL: always. */
	bool (*may_commit)(void *arg);
	void *may_commit_arg;
};

/* A publish request. Strings need only live for the submit call. kind NULL
 * means "message"; parent_seq 0 means top-level; author_name (optional, at
 * most 64 bytes) is carried to the callback for encoding, not stored. */
struct persist_publish {
	int64_t channel_id;
	int64_t author_id;
	int64_t parent_seq;
	const char *kind;
	const char *client_msg_id;
	const char *author_name;
	const char *body;
	size_t body_len;
	/* The owner epoch the publish was routed at. The writer claims the
	 * channel at it before the first commit (raising channels.owner_epoch)
	 * and commits only while the row still holds the epoch it claimed; a
	 * newer owner's epoch fails it with -ESTALE. 0: a node alone, which
	 * adopts the row's epoch as it is (and is fenced by any later claim). */
	int64_t epoch;
};

struct persist_writer;

/* Starts the lanes' threads, which connect (with retries) on their own. Returns
 * NULL with errno EINVAL (bad config) or ENOMEM. */
struct persist_writer *persist_writer_create(const struct persist_writer_config *cfg,
					     persist_commit_fn fn, void *arg);

/* Queues a publish; cookie comes back with its outcome. Thread-safe. Returns
 * 0; -EINVAL (client_msg_id empty or over 64 bytes, kind not [a-z_]{1,16},
 * negative ids), -EMSGSIZE (body over PERSIST_BODY_MAX), -EILSEQ (body or id
 * not UTF-8, or containing NUL), -EAGAIN (queue full: back-pressure),
 * -ESHUTDOWN (stopping). On error the callback is not called. */
int persist_writer_submit(struct persist_writer *w, const struct persist_publish *p, void *cookie);

/* The checks persist_writer_submit() makes of p before queueing it, with the
 * same answers: for a node that forwards a publish to another node's writer
 * and must refuse what that writer would. 0 or -EINVAL, -EMSGSIZE, -EILSEQ. */
int persist_publish_validate(const struct persist_publish *p);

/* Waits until every publish queued before the call has its outcome told
 * (committed, a duplicate, or failed), at most timeout_ms: 0 or
 * -ETIMEDOUT. Keeps accepting meanwhile. For a shutdown that acknowledges
 * what it holds before it closes the connections. */
int persist_writer_flush(struct persist_writer *w, int timeout_ms);

/* Waits until every message committed before the call is in the search
 * index (indexer.h: a moment after its commit), at most timeout_ms: 0 or
 * -ETIMEDOUT. */
int persist_writer_search_flush(struct persist_writer *w, int timeout_ms);

/* Stops accepting, commits what is queued (up to drain_timeout_ms while
 * PostgreSQL is unreachable; the rest fail with -ECANCELED), joins and frees. */
void persist_writer_destroy(struct persist_writer *w);

/* True while every lane holds a working connection. */
bool persist_writer_connected(struct persist_writer *w);

/* Publishes waiting in the queue. */
int persist_writer_queue_depth(struct persist_writer *w);

/* Registers the fanout_persist_* metrics (once per process; the queue gauge
 * follows this instance). */
int persist_writer_register_metrics(struct persist_writer *w);

/* The writer's stage histograms, process-wide (every writer's), copied: per
 * message the wait in the queue, submit to durable, and batch settled to its
 * callback done; per batch the transaction. For a benchmark's before and
 * after (metric_histogram_quantile_since). */
struct persist_writer_stages {
	struct metric_histogram queue, commit, durable, callback;
};
void persist_writer_stages(struct persist_writer_stages *out);

/* Lanes driven by an event loop. The socket edge's service threads read
 * the publishes and write the frames; a lane they adopt sends its batches
 * and reads their answers on such a thread too, in its loop, instead of on
 * the lane's own thread: a publish then wakes no writer thread and its
 * commit wakes no service thread, two hand-offs between threads fewer a
 * batch (docs/benchmarks.md). The lane's thread stays and takes the lane
 * back for whatever would block the loop: opening a connection, loading
 * heads, a batch by COPY, resolving a duplicate or a lost connection,
 * isolating a refused request; it hands the lane to the loop again once
 * idle. What is committed, and in which order, is the same either way.
 * Not with batch_window_us (a linger is the thread's). */
struct persist_loop {
	/* The loop's epoll set. The driver adds, changes and removes its lanes'
	 * sockets there itself, each event's data.ptr a tag for
	 * persist_driver_ready. */
	int epfd;
	/* From any thread: the loop is to call persist_driver_turn soon. */
	void (*wake)(void *ctx);
	void *ctx;
};

struct persist_driver;

/* On the loop's thread: adopts lanes i of w with i % nloops == index (the
 * lanes spread over nloops loops). NULL when there is none for it, w is
 * NULL or lingers for batches (batch_window_us), or out of memory; then
 * the lanes run on their own threads. loop is copied; its ctx must outlive
 * the writer. */
struct persist_driver *persist_driver_create(struct persist_writer *w, int index, int nloops,
					     const struct persist_loop *loop);
/* On the loop's thread, once a turn after its events: sends a batch of
 * what was queued, where no batch is in flight. */
void persist_driver_turn(struct persist_driver *d);
/* On the loop's thread: whether tag is one of d's (its socket was ready,
 * handled then). */
bool persist_driver_ready(struct persist_driver *d, void *tag, bool in, bool out);
/* On the loop's thread, before the loop ends: hands the lanes back to their
 * threads for good (a batch in flight with them) and frees d. NULL is
 * fine. */
void persist_driver_destroy(struct persist_driver *d);

/* The libpq the persist tier is linked with, as PQlibVersion() gives it
 * (150008 for 15.8). */
int persist_libpq_version(void);
