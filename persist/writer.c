/* SPDX-License-Identifier: BSD-3-Clause */
/* The persist writer: sequencing, group commit and the fence.
 *
 * Design note
 * -----------
 * Submitters append to a mutex-protected FIFO; the writer thread takes up to
 * batch_max requests at a time. While one batch commits, the next one gathers,
 * so the batch size follows the load (group commit) without a timer.
 *
 * A batch is one transaction sent as one pipeline, one round trip:
 *
 *     BEGIN
 *     append(channel A, old head, arrays of A's messages)   -- one per channel
 *     append(channel B, ...)
 *     COMMIT
 *
 * where append is the prepared statement APPEND_SQL below: a data-modifying
 * CTE that advances channels.last_seq from old to old+n only if it still is
 * old (the fence), and inserts the n rows only if that UPDATE matched. A
 * channel whose head moved under us therefore inserts nothing ("INSERT 0 0")
 * while the other channels of the batch commit: the fenced channel's requests
 * fail with -ESTALE and its head is forgotten.
 *
 * Duplicates. seqtab catches retries of recent ids and repeats within a batch.
 * An older id hits the unique key (23505) and aborts the transaction; then,
 * and after a lost connection (when COMMIT may or may not have happened), the
 * writer resolves: it reads each channel's head and looks the batch's ids up.
 * An id found with a seq above the head we started from was committed by this
 * very batch (COMMITTED, broadcast); one at or below it is an older duplicate
 * (DUPLICATE, not broadcast); the rest are planned again from the head read.
 * So a batch is never written twice, and nothing acked is lost.
 *
 * Callbacks run after the whole batch settles, in batch order, which is seq
 * order within each channel. */
#define LOG_COMPONENT "persist"
#include "writer-internal.h"

#include "alloc.h"
#include "err.h"
#include "log.h"
#include "metrics.h"
#include "pg.h"
#include "seqtab.h"
#include "clock.h"
#include "utf8.h"

#include <libpq-fe.h>
#include <endian.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Metrics: process-wide, registered once. */
struct metric_counter m_batches, m_committed, m_duplicates, m_failed, m_fence_failures,
    m_reconnects, m_resolves;
struct metric_histogram m_commit_latency, m_publish_latency, m_queue_latency, m_callback_latency;
static pthread_once_t histograms_once = PTHREAD_ONCE_INIT;

/* Once per process, before the first writer observes anything. */
static void histograms_init(void)
{
	struct metric_histogram *all[] = {&m_commit_latency, &m_publish_latency, &m_queue_latency,
					  &m_callback_latency};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		metric_histogram_init(all[i], metric_latency_bounds_ns, metric_latency_nbounds);
}

/* Submission */

static bool kind_valid(const char *kind)
{
	size_t n = strlen(kind);

	if (n == 0 || n > PERSIST_KIND_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((kind[i] >= 'a' && kind[i] <= 'z') || kind[i] == '_'))
			return false;
	return true;
}

static int publish_check(const struct persist_publish *p, const char *kind)
{
	size_t idlen;

	if (p->channel_id <= 0 || p->author_id <= 0 || p->parent_seq < 0 || !kind_valid(kind) ||
	    p->client_msg_id == NULL || (p->body == NULL && p->body_len != 0))
		return -EINVAL;
	idlen = strlen(p->client_msg_id);
	if (idlen == 0 || idlen > PERSIST_CLIENT_MSG_ID_MAX)
		return -EINVAL;
	if (p->body_len > PERSIST_BODY_MAX)
		return -EMSGSIZE;
	/* PostgreSQL text holds neither NUL nor invalid UTF-8. */
	if (!utf8_valid(p->client_msg_id, idlen) ||
	    (p->body_len &&
	     (memchr(p->body, '\0', p->body_len) || !utf8_valid(p->body, p->body_len))))
		return -EILSEQ;
	return 0;
}

int persist_publish_validate(const struct persist_publish *p)
{
	int rc = publish_check(p, p->kind ? p->kind : "message");

	if (rc == 0 && p->author_name && strnlen(p->author_name, 65) > 64)
		rc = -EINVAL;
	return rc;
}

int persist_writer_submit(struct persist_writer *w, const struct persist_publish *p, void *cookie)
{
	const char *kind = p->kind ? p->kind : "message";
	const char *author = p->author_name ? p->author_name : "";
	size_t kind_len, id_len, author_len = strnlen(author, 65);
	struct request *r;
	int rc = publish_check(p, kind);

	if (rc < 0)
		return rc;
	if (author_len > 64)
		return -EINVAL;
	kind_len = strlen(kind);
	id_len = strlen(p->client_msg_id);
	r = malloc(sizeof(*r) + kind_len + id_len + author_len + p->body_len + 4);
	if (r == NULL)
		return -ENOMEM;
	r->next = NULL;
	r->cookie = cookie;
	r->submitted_ns = time_mono_ns();
	r->epoch = p->epoch > 0 ? p->epoch : 0;
	r->msg = (struct persist_message){
	    .channel_id = p->channel_id,
	    .author_id = p->author_id,
	    .parent_seq = p->parent_seq,
	    .body_len = p->body_len,
	};
	memcpy(r->data, kind, kind_len + 1);
	memcpy(r->data + kind_len + 1, p->client_msg_id, id_len + 1);
	if (p->body_len)
		memcpy(r->data + kind_len + id_len + 2, p->body, p->body_len);
	r->data[kind_len + id_len + 2 + p->body_len] = '\0';
	r->msg.kind = r->data;
	r->msg.client_msg_id = r->data + kind_len + 1;
	r->msg.body = r->data + kind_len + id_len + 2;
	memcpy(r->data + kind_len + id_len + p->body_len + 3, author, author_len + 1);
	r->msg.author_name = r->data + kind_len + id_len + p->body_len + 3;

	pthread_mutex_lock(&w->lock);
	if (w->stopping)
		rc = -ESHUTDOWN;
	else if (w->depth >= w->cfg.queue_max)
		rc = -EAGAIN;
	if (rc < 0) {
		pthread_mutex_unlock(&w->lock);
		free(r);
		return rc;
	}
	if (w->tail)
		w->tail->next = r;
	else
		w->head = r;
	w->tail = r;
	w->depth++;
	w->submitted++;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

/* Settles requests whose fate is decided by the plan or by another request. */
static void settle_planned(struct batch *b, bool include_new)
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

static int pending_count(const struct batch *b)
{
	const int n = b->n;
	int pending = 0;

	for (int i = 0; i < n; i++)
		pending += !b->settled[i].done;
	return pending;
}

static void fail_pending(struct batch *b, int error)
{
	const int n = b->n;
	for (int i = 0; i < n; i++)
		if (!b->settled[i].done)
			b->settled[i] = (struct settle){PERSIST_FAILED, error, true};
}

static void isolate_each(struct persist_writer *w, struct batch *b);

/* Drives one batch (or, when isolating a bad request, a single one) until
 * every request is settled. */
static void run_batch(struct persist_writer *w, struct batch *b)
{
	const int n = b->n;
	int rounds = 0;

	while (pending_count(b) > 0) {
		enum exec_result er;
		int nnew, rc;

		if (batch_connect(w) < 0) {
			fail_pending(b, -ECANCELED);
			return;
		}
		if (w->cfg.may_commit && !w->cfg.may_commit(w->cfg.may_commit_arg)) {
			metric_add(&m_fence_failures, 1);
			fail_pending(b, -ESTALE);
			return;
		}
		rc = batch_load_heads(w, b);
		if (rc == -EPIPE) {
			PQfinish(w->conn);
			w->conn = NULL;
			continue;
		}
		if (rc < 0) {
			fail_pending(b, rc == -ENOMEM ? -ENOMEM : -EIO);
			return;
		}
		batch_check_parents(w, b);
		for (int i = 0; i < n; i++)
			b->items[i].state = b->settled[i].done ? SEQ_DONE : SEQ_NEW;
		nnew = seqtab_plan(w->seq, b->items, b->n);
		if (nnew < 0) {
			fail_pending(b, -EIO);
			return;
		}
		if (nnew > 0) {
			er = batch_execute(w, b, nnew);
			if (er == EXEC_UNIQUE || er == EXEC_CONN) {
				for (;;) {
					if (batch_connect(w) < 0) {
						seqtab_abort(w->seq);
						fail_pending(b, -ECANCELED);
						return;
					}
					rc = batch_resolve(w, b);
					if (rc != -EPIPE)
						break;
					PQfinish(w->conn);
					w->conn = NULL;
				}
				if (rc < 0 || ++rounds > RESOLVE_ROUNDS_MAX) {
					seqtab_abort(w->seq);
					fail_pending(b, -EIO);
					return;
				}
				/* Requests whose originals were settled by the resolve are
				 * settled with them; the rest go round again. */
				settle_planned(b, false);
				continue;
			}
			if (er == EXEC_SQL) {
				seqtab_abort(w->seq);
				if (pending_count(b) > 1) {
					/* Isolate the bad request: one transaction each. */
					isolate_each(w, b);
					return;
				}
				fail_pending(b, -EIO);
				return;
			}
			seqtab_commit(w->seq, b->items, b->n);
		}
		settle_planned(b, true);
	}
}

/* Runs each pending request of b as a batch of its own, so that one request
 * PostgreSQL refuses fails alone. */
static void isolate_each(struct persist_writer *w, struct batch *b)
{
	for (int i = 0; i < b->n; i++) {
		struct batch one = {b->reqs + i, b->items + i, b->settled + i, 1};

		if (!b->settled[i].done)
			run_batch(w, &one);
	}
}

/* Hands each request of the batch to the callback, in batch order, and frees
 * it. */
static void deliver(struct persist_writer *w, struct batch *b)
{
	uint64_t now = time_mono_ns();

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

/* Takes the next batch. Returns its size; 0 when a second passed with nothing
 * to do (time for a connection check); -1 when stopping with nothing left. */
static int take_batch(struct persist_writer *w)
{
	struct timespec idle = time_mono_deadline(WRITER_IDLE_CHECK_NS);
	uint64_t now;
	int n = 0;

	pthread_mutex_lock(&w->lock);
	while (w->head == NULL && !w->stopping)
		if (pthread_cond_timedwait(&w->wake, &w->lock, &idle) != 0)
			break;
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
	now = time_mono_ns();
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
	pthread_mutex_unlock(&w->lock);
	return n;
}

/* While idle, notices a connection the server has closed (restart, admin
 * termination) so that readiness tells the truth and the next publish does not
 * pay for the reconnect. */
static void check_idle_connection(struct persist_writer *w)
{
	if (w->conn && PQconsumeInput(w->conn) && PQstatus(w->conn) == CONNECTION_OK)
		return;
	LOG(WARN, "writer: connection to PostgreSQL lost while idle: %s",
	    w->conn ? PQerrorMessage(w->conn) : "not connected");
	if (w->conn)
		PQfinish(w->conn);
	w->conn = NULL;
	atomic_store(&w->connected, false);
	batch_connect(w);
}

static void *writer_main(void *arg)
{
	struct persist_writer *w = arg;
	int n;

	batch_connect(w);
	while ((n = take_batch(w)) >= 0) {
		struct batch b = {w->reqs, w->items, w->settled, n};

		if (n == 0) {
			check_idle_connection(w);
			continue;
		}
		metric_add(&m_batches, 1);
		run_batch(w, &b);
		deliver(w, &b);
	}
	pthread_mutex_lock(&w->lock);
	w->finished = true;
	pthread_cond_broadcast(&w->drained);
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static void writer_free(struct persist_writer *w)
{
	seqtab_destroy(w->seq);
	for (int i = 0; i < 5; i++)
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

struct persist_writer *persist_writer_create(const struct persist_writer_config *cfg,
					     persist_commit_fn fn, void *arg)
{
	struct persist_writer *w;
	pthread_condattr_t attr;
	size_t dedup;

	if (cfg->dsn == NULL || cfg->batch_max < 1 || cfg->queue_max < 1 || fn == NULL)
		return err_null(-EINVAL);
	pthread_once(&histograms_once, histograms_init);
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return NULL;
	w->cfg = *cfg;
	if (w->cfg.reconnect_max_ms <= 0)
		w->cfg.reconnect_max_ms = 5000;
	if (w->cfg.drain_timeout_ms <= 0)
		w->cfg.drain_timeout_ms = 5000;
	w->fn = fn;
	w->fn_arg = arg;
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
	w->seq = seqtab_create(dedup);
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
	return w;
fail:
	writer_free(w);
	return err_null(-ENOMEM);
}

void persist_writer_destroy(struct persist_writer *w)
{
	struct timespec until;

	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_broadcast(&w->wake);
	until = time_mono_deadline((uint64_t)w->cfg.drain_timeout_ms * 1000000);
	while (!w->finished && pthread_cond_timedwait(&w->drained, &w->lock, &until) == 0)
		;
	if (!w->finished)
		LOG(WARN, "writer: drain timed out with %d queued; failing them", w->depth);
	pthread_mutex_unlock(&w->lock);
	/* Past the deadline, reconnect attempts give up and the queue fails fast. */
	atomic_store(&w->abandon, true);
	pthread_join(w->thread, NULL);
	if (w->conn)
		PQfinish(w->conn);
	writer_free(w);
}

bool persist_writer_connected(struct persist_writer *w)
{
	return atomic_load(&w->connected);
}

int persist_writer_flush(struct persist_writer *w, int timeout_ms)
{
	uint64_t target, deadline = time_mono_ns() + (uint64_t)timeout_ms * 1000000ull;

	pthread_mutex_lock(&w->lock);
	target = w->submitted;
	pthread_mutex_unlock(&w->lock);
	while (atomic_load(&w->answered) < target) {
		struct timespec ts = {0, 2000000};

		if (time_mono_ns() >= deadline)
			return -ETIMEDOUT;
		nanosleep(&ts, NULL);
	}
	return 0;
}

int persist_writer_queue_depth(struct persist_writer *w)
{
	int depth;

	pthread_mutex_lock(&w->lock);
	depth = w->depth;
	pthread_mutex_unlock(&w->lock);
	return depth;
}

static double queue_depth_gauge(void *arg)
{
	return persist_writer_queue_depth(arg);
}

static double connected_gauge(void *arg)
{
	return persist_writer_connected(arg) ? 1 : 0;
}

void persist_writer_stages(struct persist_writer_stages *out)
{
	pthread_once(&histograms_once, histograms_init);
	metric_histogram_copy(&out->queue, &m_queue_latency);
	metric_histogram_copy(&out->commit, &m_commit_latency);
	metric_histogram_copy(&out->durable, &m_publish_latency);
	metric_histogram_copy(&out->callback, &m_callback_latency);
}

int persist_writer_register_metrics(struct persist_writer *w)
{
	static const struct {
		const char *name, *help;
		struct metric_counter *counter;
	} counters[] = {
	    {"fanout_persist_batches_total", "Transactions committed or attempted by the writer.",
	     &m_batches},
	    {"fanout_persist_messages_committed_total", "Messages made durable.", &m_committed},
	    {"fanout_persist_duplicates_total",
	     "Publishes answered with the seq of an earlier one.", &m_duplicates},
	    {"fanout_persist_failed_total", "Publishes that failed; nothing was written for them.",
	     &m_failed},
	    {"fanout_persist_fence_failures_total", "Channel heads found moved by another writer.",
	     &m_fence_failures},
	    {"fanout_persist_reconnects_total", "Writer reconnections to PostgreSQL.",
	     &m_reconnects},
	    {"fanout_persist_resolves_total", "Batches whose outcome was re-read from PostgreSQL.",
	     &m_resolves},
	};
	static const struct {
		const char *name, *help;
		struct metric_histogram *histogram;
	} histograms[] = {
	    {"fanout_persist_commit_seconds", "Round trip of one batch transaction.",
	     &m_commit_latency},
	    {"fanout_persist_publish_seconds", "From submit to durable, per message.",
	     &m_publish_latency},
	    {"fanout_persist_queue_seconds", "From submit to taken into a batch, per message.",
	     &m_queue_latency},
	    {"fanout_persist_callback_seconds",
	     "From the batch settled to this message's callback done (callbacks run in batch "
	     "order), per message.",
	     &m_callback_latency},
	};
	int rc = 0;

	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]) && rc == 0; i++)
		rc = metrics_register_counter(counters[i].name, counters[i].help,
					      counters[i].counter);
	pthread_once(&histograms_once, histograms_init);
	for (size_t i = 0; i < sizeof(histograms) / sizeof(histograms[0]) && rc == 0; i++)
		rc = metrics_register_histogram(histograms[i].name, histograms[i].help,
						histograms[i].histogram);
	rc = rc
		 ?: metrics_register_gauge("fanout_persist_queue_depth",
					   "Publishes waiting for the writer.", queue_depth_gauge,
					   w);
	rc = rc
		 ?: metrics_register_gauge("fanout_persist_connected",
					   "1 while the writer holds a PostgreSQL connection.",
					   connected_gauge, w);
	return rc;
}

int persist_libpq_version(void)
{
	return PQlibVersion();
}
