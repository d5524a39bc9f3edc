/* SPDX-License-Identifier: BSD-3-Clause */
/* One lane of the persist writer: its queue, its thread and connection,
 * sequencing, group commit and the fence for the channels it is given
 * (writer.c routes each channel to one lane, always the same).
 *
 * Design note
 * -----------
 * Submitters append to a mutex-protected FIFO; the lane's thread takes up to
 * batch_max requests at a time. While one batch commits, the next one gathers,
 * so the batch size follows the load (group commit) without a timer.
 *
 * A batch is one transaction sent as one pipeline, one round trip:
 *
 *     append(each channel's old head and new head, arrays of the messages)
 *     Sync
 *
 * one statement in the implicit transaction the extended protocol opens for
 * it, committed at the Sync before PostgreSQL answers it (no BEGIN and COMMIT
 * of its own: two statements fewer for the backend to run a batch). append
 * is the prepared statement APPEND_SQL (batch.c): a data-modifying
 * CTE that advances each channel's channels.last_seq from old to old+n only if
 * it still is old (the fence), inserts the rows of the channels whose UPDATE
 * matched, and returns those channels. A channel whose head moved under us
 * therefore inserts nothing and is missing from the result, while the other
 * channels of the batch commit: the fenced channel's requests fail with
 * -ESTALE and its head is forgotten.
 *
 * Duplicates. seqtab catches retries of recent ids and repeats within a batch.
 * An older id hits the unique key (23505) and aborts the transaction; then,
 * and after a lost connection (when the commit may or may not have happened), the
 * writer resolves: it reads each channel's head and looks the batch's ids up.
 * An id found with a seq above the head we started from was committed by this
 * very batch (COMMITTED, broadcast); one at or below it is an older duplicate
 * (DUPLICATE, not broadcast); the rest are planned again from the head read.
 * So a batch is never written twice, and nothing acked is lost.
 *
 * Callbacks run after the whole batch settles, in batch order, which is seq
 * order within each channel.
 *
 * An event loop may drive the lane instead of its thread (lane_loop.c):
 * the thread then hands the lane over whenever it is idle and waits for it
 * back, and finishes any batch the loop hands back from where it stands
 * (resume_handed). */
#define LOG_COMPONENT "persist"
#include "writer-internal.h"

#include "alloc.h"
#include "err.h"
#include "log.h"
#include "metrics.h"
#include "pg.h"
#include "seqtab.h"
#include "clock.h"
#include "thread.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int lane_enqueue(struct writer_lane *w, struct request *r)
{
	bool wake_loop = false;
	int rc = 0;

	pthread_mutex_lock(&w->lock);
	if (w->stopping)
		rc = -ESHUTDOWN;
	else if (w->depth >= w->cfg.queue_max)
		rc = -EAGAIN;
	if (rc == 0) {
		if (w->tail)
			w->tail->next = r;
		else
			w->head = r;
		w->tail = r;
		w->depth++;
		w->submitted++;
		/* The loop holding the lane takes it at the end of its turn: a
		 * publish from its own thread needs no wake-up. */
		if (atomic_load(&w->owner) == LANE_OWN_LOOP)
			wake_loop = !pthread_equal(pthread_self(), w->loop_thread);
		else
			pthread_cond_signal(&w->wake);
	}
	pthread_mutex_unlock(&w->lock);
	if (wake_loop)
		w->loop_wake(w->loop_ctx);
	return rc;
}

/* Settles requests whose fate is decided by the plan or by another request. */
void lane_settle_planned(struct batch *b, bool include_new)
{
	const int n = b->n;
	for (int i = 0; i < n; i++) {
		struct seq_item *it = &b->items[i];

		if (b->settled[i].done)
			continue;
		if (it->state == SEQ_DUPLICATE) {
			b->settled[i] = (struct settle){PERSIST_DUPLICATE, 0, true};
		} else if (it->state == SEQ_DUPLICATE_IN_BATCH) {
			struct settle *orig = &b->settled[it->dup_of];
			if (orig->done) {
				b->settled[i] = *orig;
				if (orig->outcome == PERSIST_COMMITTED)
					b->settled[i].outcome = PERSIST_DUPLICATE;
				it->seq = b->items[it->dup_of].seq;
			}
		} else if (it->state == SEQ_NEW && include_new) {
			b->settled[i] = (struct settle){PERSIST_COMMITTED, 0, true};
		}
	}
}

int lane_pending(const struct batch *b)
{
	const int n = b->n;
	int pending = 0;

	for (int i = 0; i < n; i++)
		pending += !b->settled[i].done;
	return pending;
}

void lane_fail_pending(struct batch *b, int error)
{
	const int n = b->n;
	for (int i = 0; i < n; i++)
		if (!b->settled[i].done)
			b->settled[i] = (struct settle){PERSIST_FAILED, error, true};
}

static void isolate_each(struct writer_lane *w, struct batch *b);

int lane_plan(struct writer_lane *w, struct batch *b)
{
	int nnew;

	batch_check_parents(w, b);
	for (int i = 0; i < b->n; i++)
		b->items[i].state = b->settled[i].done ? SEQ_DONE : SEQ_NEW;
	nnew = seqtab_plan(w->seq, b->items, b->n);
	if (nnew < 0)
		lane_fail_pending(b, -EIO);
	return nnew;
}

/* What the lane does with an append's answer er: resolves a duplicate or a
 * lost connection (the batch then goes round again), isolates a request
 * PostgreSQL refused, or takes the commit. False when the batch is settled
 * for good; true to go round while requests are pending. */
static bool settle_answer(struct writer_lane *w, struct batch *b, enum exec_result er, int *rounds)
{
	int rc;

	if (er == EXEC_UNIQUE || er == EXEC_CONN) {
		for (;;) {
			if (batch_connect(w) < 0) {
				seqtab_abort(w->seq);
				lane_fail_pending(b, -ECANCELED);
				return false;
			}
			rc = batch_resolve(w, b);
			if (rc != -EPIPE)
				break;
			PQfinish(w->conn);
			w->conn = NULL;
		}
		if (rc < 0 || ++*rounds > RESOLVE_ROUNDS_MAX) {
			seqtab_abort(w->seq);
			lane_fail_pending(b, -EIO);
			return false;
		}
		/* Requests whose originals were settled by the resolve are
		 * settled with them; the rest go round again. */
		lane_settle_planned(b, false);
		return true;
	}
	if (er == EXEC_SQL) {
		seqtab_abort(w->seq);
		if (lane_pending(b) > 1)
			isolate_each(w, b); /* the bad request: one transaction each */
		else
			lane_fail_pending(b, -EIO);
		return false;
	}
	seqtab_commit(w->seq, b->items, b->n);
	lane_settle_planned(b, true);
	return true;
}

/* Drives one batch (or, when isolating a bad request, a single one) until
 * every request is settled; rounds: resolves already run for it. */
static void run_batch_from(struct writer_lane *w, struct batch *b, int rounds)
{
	while (lane_pending(b) > 0) {
		int nnew, rc;

		if (batch_connect(w) < 0) {
			lane_fail_pending(b, -ECANCELED);
			return;
		}
		if (w->cfg.may_commit && !w->cfg.may_commit(w->cfg.may_commit_arg)) {
			metric_add(&m_fence_failures, 1);
			lane_fail_pending(b, -ESTALE);
			return;
		}
		rc = batch_load_heads(w, b);
		if (rc == -EPIPE) {
			PQfinish(w->conn);
			w->conn = NULL;
			continue;
		}
		if (rc < 0) {
			lane_fail_pending(b, rc == -ENOMEM ? -ENOMEM : -EIO);
			return;
		}
		if ((nnew = lane_plan(w, b)) < 0)
			return;
		if (nnew == 0)
			lane_settle_planned(b, true);
		else if (!settle_answer(w, b, batch_execute(w, b, nnew), &rounds))
			return;
	}
}

static void run_batch(struct writer_lane *w, struct batch *b)
{
	run_batch_from(w, b, 0);
}

/* Runs each pending request of b as a batch of its own, so that one request
 * PostgreSQL refuses fails alone. */
static void isolate_each(struct writer_lane *w, struct batch *b)
{
	for (int i = 0; i < b->n; i++) {
		struct batch one = {b->reqs + i, b->items + i, b->settled + i, 1};

		if (!b->settled[i].done)
			run_batch(w, &one);
	}
}

/* Tells the indexer the batch's channels and the highest seq committed in
 * each (a run of one channel's requests noted once). */
static void note_committed(struct writer_lane *w, struct batch *b)
{
	int64_t channel = 0, seq = 0;

	for (int i = 0; i < b->n; i++) {
		if (b->settled[i].outcome != PERSIST_COMMITTED)
			continue;
		if (b->items[i].channel != channel && channel != 0)
			search_indexer_note(w->indexer, channel, seq);
		if (b->items[i].channel != channel)
			seq = 0;
		channel = b->items[i].channel;
		if (b->items[i].seq > seq)
			seq = b->items[i].seq;
	}
	if (channel != 0)
		search_indexer_note(w->indexer, channel, seq);
}

/* Hands each request of the batch to the callback, in batch order, and frees
 * it; then tells the indexer what was committed. */
void lane_deliver(struct writer_lane *w, struct batch *b)
{
	uint64_t now = time_mono_ns();

	if (w->indexer)
		note_committed(w, b);

	for (int i = 0; i < b->n; i++) {
		struct request *r = b->reqs[i];
		struct settle *st = &b->settled[i];

		if (st->outcome != PERSIST_FAILED)
			r->msg.seq = b->items[i].seq;
		if (st->outcome != PERSIST_COMMITTED)
			r->msg.created_at_us = 0; /* unknown for duplicates and failures */
		if (st->outcome == PERSIST_COMMITTED) {
			metric_add(&m_committed, 1);
			metric_observe_ns(&m_publish_latency, now - r->submitted_ns);
		} else if (st->outcome == PERSIST_DUPLICATE) {
			metric_add(&m_duplicates, 1);
		} else {
			metric_add(&m_failed, 1);
		}
		w->fn(w->fn_arg, st->outcome, st->error, &r->msg, r->cookie);
		metric_observe_ns(&m_callback_latency, time_mono_ns() - now);
		atomic_fetch_add(&w->answered, 1);
		free(r);
	}
}

/* The thread */

int lane_take_locked(struct writer_lane *w)
{
	uint64_t now = time_mono_ns();
	int n = 0;

	while (w->head && n < w->cfg.batch_max) {
		struct request *r = w->head;
		w->head = r->next;
		if (w->head == NULL)
			w->tail = NULL;
		w->reqs[n] = r;
		metric_observe_ns(&m_queue_latency, now - r->submitted_ns);
		w->items[n] = (struct seq_item){
		    .channel = r->msg.channel_id,
		    .author = r->msg.author_id,
		    .client_msg_id = r->msg.client_msg_id,
		};
		w->settled[n] = (struct settle){0};
		n++;
	}
	w->depth -= n;
	if (w->depth > 0 && w->indexer)
		search_indexer_writer_behind(w->indexer);
	return n;
}

/* Whether the thread, idle and holding the lane, gives it to the loop that
 * adopted it (under lock): only with a working connection, which the loop
 * cannot open. */
static bool give_to_loop(struct writer_lane *w)
{
	return w->loop_wake && !w->loop_gone && !w->stopping && w->head == NULL && w->conn &&
	       PQstatus(w->conn) == CONNECTION_OK;
}

/* Takes the next batch. Returns its size; 0 when a second passed with nothing
 * to do (time for a connection check), or the connection is gone; -1 when
 * stopping with nothing left; -2 when the loop handed a batch back. While
 * the loop holds the lane, waits for it to hand the lane back. */
static int take_batch(struct writer_lane *w)
{
	struct timespec idle = time_mono_deadline(WRITER_IDLE_CHECK_NS);
	int n;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		if (atomic_load(&w->owner) == LANE_OWN_LOOP) {
			pthread_cond_wait(&w->wake, &w->lock);
			continue;
		}
		if (w->handed != RESUME_NONE) {
			pthread_mutex_unlock(&w->lock);
			return -2;
		}
		if (w->head || w->stopping || w->conn == NULL || PQstatus(w->conn) != CONNECTION_OK)
			break;
		if (give_to_loop(w)) {
			atomic_store(&w->owner, LANE_OWN_LOOP);
			w->loop_wake(w->loop_ctx);
			continue;
		}
		if (pthread_cond_timedwait(&w->wake, &w->lock, &idle) != 0)
			break;
	}
	if (w->head == NULL) {
		pthread_mutex_unlock(&w->lock);
		return w->stopping ? -1 : 0;
	}
	if (w->cfg.batch_window_us > 0 && !w->stopping) {
		struct timespec until = time_mono_deadline((uint64_t)w->cfg.batch_window_us * 1000);
		while (w->depth < w->cfg.batch_max && !w->stopping &&
		       pthread_cond_timedwait(&w->wake, &w->lock, &until) == 0)
			;
	}
	n = lane_take_locked(w);
	pthread_mutex_unlock(&w->lock);
	return n;
}

/* Finishes a batch the loop handed back, from where it stands. */
static void resume_handed(struct writer_lane *w)
{
	enum lane_resume at;
	enum exec_result er;
	struct batch b;

	pthread_mutex_lock(&w->lock);
	at = w->handed;
	er = w->handed_er;
	b = (struct batch){w->reqs, w->items, w->settled, w->handed_n};
	w->handed = RESUME_NONE;
	pthread_mutex_unlock(&w->lock);
	if (at == RESUME_IN_FLIGHT) {
		if (pg_flush(w->conn) < 0)
			w->flight.lost = true;
		while (!batch_append_collect(w))
			pg_wait_readable(w->conn);
		er = batch_append_finish(w, &b);
	}
	if (at == RESUME_START || settle_answer(w, &b, er, &(int){0}))
		run_batch(w, &b);
	lane_deliver(w, &b);
}

/* While idle, notices a connection the server has closed (restart, admin
 * termination) so that readiness tells the truth and the next publish does not
 * pay for the reconnect. */
static void check_idle_connection(struct writer_lane *w)
{
	if (w->conn && PQconsumeInput(w->conn) && PQstatus(w->conn) == CONNECTION_OK)
		return;
	LOG(WARN, "%s: connection to PostgreSQL lost while idle: %s", w->name,
	    w->conn ? PQerrorMessage(w->conn) : "not connected");
	if (w->conn)
		PQfinish(w->conn);
	w->conn = NULL;
	atomic_store(&w->connected, false);
	batch_connect(w);
}

/* At the end: a loop that adopted the lane must have let go of it for good
 * before the lane is freed (it is told to at stop). */
static void wait_loop_gone(struct writer_lane *w)
{
	pthread_mutex_lock(&w->lock);
	while (w->loop_wake && !w->loop_gone) {
		struct timespec soon = time_mono_deadline(100000000ull);

		w->loop_wake(w->loop_ctx);
		pthread_cond_timedwait(&w->wake, &w->lock, &soon);
	}
	w->finished = true;
	pthread_cond_broadcast(&w->drained);
	pthread_mutex_unlock(&w->lock);
}

static void *writer_main(void *arg)
{
	struct writer_lane *w = arg;
	int n;

	batch_connect(w);
	while ((n = take_batch(w)) != -1) {
		struct batch b = {w->reqs, w->items, w->settled, n};

		if (n == -2) {
			resume_handed(w);
			continue;
		}
		if (n == 0) {
			check_idle_connection(w);
			continue;
		}
		metric_add(&m_batches, 1);
		run_batch(w, &b);
		lane_deliver(w, &b);
	}
	wait_loop_gone(w);
	return NULL;
}

static void writer_free(struct writer_lane *w)
{
	seqtab_destroy(w->seq);
	for (size_t i = 0; i < sizeof(w->params) / sizeof(w->params[0]); i++)
		buf_free(&w->params[i]);
	free(w->reqs);
	free(w->items);
	free(w->settled);
	free(w->order);
	free(w->groups);
	free(w->found);
	free(w->found_seq);
	free(w->heads);
	free(w->head_set);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->wake);
	pthread_cond_destroy(&w->drained);
	free(w);
}

struct writer_lane *lane_create(const struct persist_writer_config *cfg, int index,
				persist_commit_fn fn, void *arg, struct search_indexer *ix)
{
	struct writer_lane *w = calloc(1, sizeof(*w));
	pthread_condattr_t attr;
	size_t dedup, heads;

	if (w == NULL)
		return NULL;
	w->cfg = *cfg;
	if (cfg->writers > 1)
		snprintf(w->name, sizeof(w->name), "writer lane %d", index + 1);
	else
		snprintf(w->name, sizeof(w->name), "writer");
	w->fn = fn;
	w->fn_arg = arg;
	w->indexer = ix;
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&w->wake, &attr);
	pthread_cond_init(&w->drained, &attr);
	pthread_condattr_destroy(&attr);
	/* The cache must hold a whole batch of tentative ids with room to spare. */
	dedup = (size_t)cfg->dedup_cache;
	if (dedup < 4 * (size_t)cfg->batch_max)
		dedup = 4 * (size_t)cfg->batch_max;
	/* The heads too, and a whole batch's with room to spare (seqtab.h). */
	heads = (size_t)cfg->channel_heads;
	if (heads > 0 && heads < 4 * (size_t)cfg->batch_max)
		heads = 4 * (size_t)cfg->batch_max;
	w->seq = seqtab_create(dedup, heads);
	w->reqs = alloc_array((size_t)cfg->batch_max, sizeof(*w->reqs));
	w->items = alloc_array((size_t)cfg->batch_max, sizeof(*w->items));
	w->settled = alloc_array((size_t)cfg->batch_max, sizeof(*w->settled));
	w->order = alloc_array((size_t)cfg->batch_max, sizeof(*w->order));
	w->groups = alloc_array((size_t)cfg->batch_max + 1, sizeof(*w->groups));
	w->found = alloc_array((size_t)cfg->batch_max, sizeof(*w->found));
	w->found_seq = alloc_array((size_t)cfg->batch_max, sizeof(*w->found_seq));
	w->heads = alloc_array((size_t)cfg->batch_max, sizeof(*w->heads));
	w->head_set = alloc_array((size_t)cfg->batch_max, sizeof(*w->head_set));
	if (!w->seq || !w->reqs || !w->items || !w->settled || !w->order || !w->groups ||
	    !w->found || !w->found_seq || !w->heads || !w->head_set)
		goto fail;
	if (pthread_create(&w->thread, NULL, writer_main, w) != 0)
		goto fail;
	if (cfg->writers > 1)
		name_thread(w->thread, "writer-lane-%d", index + 1);
	else
		name_thread(w->thread, "writer");
	return w;
fail:
	writer_free(w);
	return err_null(-ENOMEM);
}

void lane_stop(struct writer_lane *w)
{
	bool wake_loop;

	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	wake_loop = w->loop_wake && !w->loop_gone;
	pthread_cond_broadcast(&w->wake);
	pthread_mutex_unlock(&w->lock);
	if (wake_loop)
		w->loop_wake(w->loop_ctx);
}

void lane_join(struct writer_lane *w, const struct timespec *until)
{
	pthread_mutex_lock(&w->lock);
	while (!w->finished && pthread_cond_timedwait(&w->drained, &w->lock, until) == 0)
		;
	if (!w->finished)
		LOG(WARN, "%s: drain timed out with %d queued; failing them", w->name, w->depth);
	pthread_mutex_unlock(&w->lock);
	/* Past the deadline, reconnect attempts give up and the queue fails fast. */
	atomic_store(&w->abandon, true);
	pthread_join(w->thread, NULL);
	if (w->conn)
		PQfinish(w->conn);
	writer_free(w);
}

bool lane_connected(struct writer_lane *w)
{
	return atomic_load(&w->connected);
}

int lane_queued(struct writer_lane *w, uint64_t *submitted)
{
	int depth;

	pthread_mutex_lock(&w->lock);
	depth = w->depth;
	if (submitted)
		*submitted = w->submitted;
	pthread_mutex_unlock(&w->lock);
	return depth;
}

uint64_t lane_answered(struct writer_lane *w)
{
	return atomic_load(&w->answered);
}
