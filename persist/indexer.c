/* SPDX-License-Identifier: BSD-3-Clause */
/* The search indexer (indexer.h): a thread, a connection, and the channels
 * noted since its last round. A round takes every noted channel at once
 * (deduplicated, the highest seq kept) and indexes them from their heads in
 * statements of up to INDEX_CHANNELS_MAX channels, at most INDEX_ROWS_MAX
 * messages of a channel per statement; a channel left short is noted again
 * for the next round. A failed round is noted again whole, after a pause. */
#define LOG_COMPONENT "search"
#include "indexer.h"

#include "alloc.h"
#include "buf.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "metrics.h"
#include "pg.h"
#include "thread.h"

#include <libpq-fe.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define INDEX_CHANNELS_MAX 1000
#define INDEX_ROWS_MAX	   5000
#define SWEEP_ROWS_MAX	   1000
#define RETRY_PAUSE_US	   200000
/* How long a note waits for others before its round: a round costs about
 * as much for one message as for dozens, and on many small channels the
 * rounds were a message or two each (docs/benchmarks.md). Search sees a
 * message this much later. */
#define INDEX_LINGER_NS 20000000ull
/* While a writer lane has more queued than one batch takes (it is behind,
 * and PostgreSQL's CPU is what it lacks on a small host), a round waits for
 * the lanes to catch up, up to INDEX_YIELD_MAX_NS from its first note: a
 * burst of writes is acknowledged first and indexed after, in larger
 * rounds (docs/benchmarks.md, "The indexer yields to a writer behind").
 * A lane's backlog counts for INDEX_BACKLOG_NS after it was seen (a lane
 * descheduled for a moment, as on a busy virtual machine, does not end the
 * yield early); a yielding round looks again every INDEX_YIELD_SLICE_NS. */
#define INDEX_YIELD_MAX_NS   2000000000ull
#define INDEX_BACKLOG_NS     250000000ull
#define INDEX_YIELD_SLICE_NS 50000000ull

/* One statement: the channels' spans from their heads, their messages'
 * words, the heads moved (never back: another node may index the same
 * channel). Returns each moved head and the rows written. The words of a
 * body's first 100,000 characters: a tsvector holds at most 1 MB, and a
 * body of up to 1 MiB of distinct words would exceed it and fail the
 * round again and again.
 *
 * The statement's plan is generic (kept for the connection, made again
 * when the tables' statistics change), and such a plan takes unnest() of a
 * parameter for ten rows; the statement is written so that the plan finds
 * its rows by key, but for tables of a few pages. The heads by
 * "channel_id = ANY($1)" (as the writer's append; batch.c), or it reads all
 * of search_heads at every round while that holds from about a thousand to
 * a few thousand channels. The messages by a LATERAL subquery that
 * PostgreSQL may not merge into the join (the OFFSET 0), so that each
 * channel's span is an index range of its own: as a plain join, on a
 * messages table of a few thousand rows not analyzed yet, every partition
 * was read and sorted at every round. */
#define INDEX_SQL                                                                                  \
	"WITH want AS (SELECT * FROM unnest($1::int8[], $2::int8[]) AS u(channel_id, upto)),"      \
	" span AS (SELECT w.channel_id, coalesce(h.indexed_seq, 0) AS from_seq,"                   \
	"  least(w.upto, coalesce(h.indexed_seq, 0) + $3::int8) AS to_seq"                         \
	"  FROM want w LEFT JOIN search_heads h"                                                   \
	"  ON h.channel_id = ANY($1::int8[]) AND h.channel_id = w.channel_id),"                    \
	" words AS (INSERT INTO message_search (channel_id, seq, search)"                          \
	"  SELECT m.channel_id, m.seq, to_tsvector('english'::regconfig, left(m.body, 100000))"    \
	"  FROM span s CROSS JOIN LATERAL (SELECT m.channel_id, m.seq, m.body FROM messages m"     \
	"  WHERE m.channel_id = s.channel_id AND m.seq > s.from_seq AND m.seq <= s.to_seq"         \
	"  AND m.kind = 'message' AND m.deleted_at IS NULL OFFSET 0) m"                            \
	"  WHERE s.to_seq > s.from_seq ORDER BY m.channel_id, m.seq"                               \
	"  ON CONFLICT (channel_id, seq) DO NOTHING RETURNING 1),"                                 \
	" heads AS (INSERT INTO search_heads (channel_id, indexed_seq)"                            \
	"  SELECT channel_id, to_seq FROM span WHERE to_seq > from_seq"                            \
	"  ON CONFLICT (channel_id) DO UPDATE"                                                     \
	"  SET indexed_seq = greatest(search_heads.indexed_seq, excluded.indexed_seq)"             \
	"  RETURNING channel_id, indexed_seq)"                                                     \
	" SELECT channel_id, indexed_seq, (SELECT count(*) FROM words) FROM heads"

/* Channels whose messages are committed past their index head. */
#define SWEEP_SQL                                                                                  \
	"SELECT c.id, c.last_seq FROM channels c"                                                  \
	" LEFT JOIN search_heads h ON h.channel_id = c.id"                                         \
	" WHERE c.kind <> 'ephemeral' AND c.last_seq > coalesce(h.indexed_seq, 0)"                 \
	" LIMIT " STRINGIFY(SWEEP_ROWS_MAX)

#define STRINGIFY_(x) #x
#define STRINGIFY(x)  STRINGIFY_(x)

struct note {
	int64_t channel, seq;
};

struct notes {
	struct note *v;
	size_t n, cap;
};

struct search_indexer {
	char *dsn;
	bool allow_unsafe;
	int reconnect_max_ms;
	uint64_t sweep_ns;
	pthread_t thread;

	pthread_mutex_t lock;
	pthread_cond_t wake, progress;
	struct notes pending;
	uint64_t oldest_ns; /* when the first pending note came */
	uint64_t noted;	    /* notes ever */
	uint64_t indexed;   /* every note up to this count is in the index */
	bool stopping, finished;
	int hurry;			  /* flushes waiting: no yielding */
	atomic_uint_least64_t backlog_ns; /* a writer lane behind until then */
	atomic_bool abandon;

	/* The thread's own. */
	PGconn *conn;
	struct notes work;
	struct buf params[2]; /* the channels and seqs of a statement */
	uint64_t next_sweep_ns;
};

static struct metric_counter m_indexed, m_rounds, m_errors, m_yields;
static struct metric_histogram m_lag;
static pthread_once_t lag_once = PTHREAD_ONCE_INIT;

static void lag_init(void)
{
	metric_histogram_init(&m_lag, metric_latency_bounds_ns, metric_latency_nbounds);
}

/* Notes */

static int note_cmp(const void *a, const void *b)
{
	const struct note *x = a, *y = b;

	return (x->channel > y->channel) - (x->channel < y->channel);
}

/* Sorts by channel and keeps each channel once, at its highest seq. */
static size_t notes_compact(struct note *v, size_t n)
{
	size_t out = 0;

	if (n > 1)
		qsort(v, n, sizeof(*v), note_cmp);
	for (size_t i = 0; i < n; i++) {
		if (out > 0 && v[out - 1].channel == v[i].channel) {
			if (v[i].seq > v[out - 1].seq)
				v[out - 1].seq = v[i].seq;
		} else {
			v[out++] = v[i];
		}
	}
	return out;
}

/* Doubles p's room. 0 or -ENOMEM. */
static int notes_grow(struct notes *p)
{
	size_t cap = p->cap ? p->cap * 2 : 256;
	struct note *v = realloc(p->v, cap * sizeof(*v));

	if (v == NULL)
		return -ENOMEM;
	p->v = v;
	p->cap = cap;
	return 0;
}

/* Appends under the lock; when full, compacts first and grows only if that
 * did not free half. A note that finds no memory is dropped: the sweep
 * finds its channel behind. */
static void notes_add_locked(struct search_indexer *ix, int64_t channel, int64_t seq)
{
	struct notes *p = &ix->pending;

	if (p->n == p->cap) {
		p->n = notes_compact(p->v, p->n);
		if (p->n * 2 >= p->cap && notes_grow(p) < 0)
			return;
	}
	if (p->n == 0)
		ix->oldest_ns = time_mono_ns();
	p->v[p->n++] = (struct note){channel, seq};
	ix->noted++;
}

void search_indexer_note(struct search_indexer *ix, int64_t channel, int64_t seq)
{
	pthread_mutex_lock(&ix->lock);
	notes_add_locked(ix, channel, seq);
	if (ix->pending.n == 1)
		pthread_cond_signal(&ix->wake);
	pthread_mutex_unlock(&ix->lock);
}

/* Against PostgreSQL */

static int ix_connect(struct search_indexer *ix)
{
	PGresult *res;

	if (ix->conn && PQstatus(ix->conn) == CONNECTION_OK)
		return 0;
	if (ix->conn)
		PQfinish(ix->conn);
	ix->conn = pg_connect_retry(ix->dsn, ix->allow_unsafe, ix->reconnect_max_ms, &ix->abandon,
				    "search indexer");
	if (ix->conn == NULL)
		return -ECANCELED;
	/* What a crash loses here, the next sweep writes again. */
	res = PQexec(ix->conn, "SET synchronous_commit = off");
	PQclear(res);
	return 0;
}

/* v[0..n)'s channels and seqs as two binary int8[] parameters. 0, or
 * -ENOMEM. */
static int note_arrays(struct search_indexer *ix, const struct note *v, size_t n)
{
	struct pg_array ids, upto;

	buf_reset(&ix->params[0]);
	buf_reset(&ix->params[1]);
	if (pg_array_begin(&ids, &ix->params[0], PG_OID_INT8) < 0 ||
	    pg_array_begin(&upto, &ix->params[1], PG_OID_INT8) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (pg_array_add_int8(&ids, v[i].channel) < 0 ||
		    pg_array_add_int8(&upto, v[i].seq) < 0)
			return -ENOMEM;
	pg_array_end(&ids);
	pg_array_end(&upto);
	return 0;
}

/* Indexes v[0..n) (sorted, one note per channel) in one statement; notes
 * again a channel whose head stopped short. 0, or -EIO. */
static int index_some(struct search_indexer *ix, const struct note *v, size_t n, int *again)
{
	static const Oid types[3] = {PG_OID_INT8_ARRAY, PG_OID_INT8_ARRAY, 0};
	const char *params[3] = {NULL, NULL, STRINGIFY(INDEX_ROWS_MAX)};
	int lengths[3] = {0, 0, 0}, formats[3] = {1, 1, 0};
	PGresult *res = NULL;
	int rc = -EIO;

	if (note_arrays(ix, v, n) == 0) {
		for (int i = 0; i < 2; i++) {
			params[i] = ix->params[i].data;
			lengths[i] = (int)ix->params[i].len;
		}
		/* Prepared, its plan made once: parsing and planning this
		 * statement (a CTE over eight partitions) was 60 % of the
		 * indexer's CPU at a message a round (docs/benchmarks.md). */
		res = pg_exec_prepared(ix->conn, "fanout_index", INDEX_SQL, 3, types, params,
				       lengths, formats, 1);
	}
	if (res && PQresultStatus(res) == PGRES_TUPLES_OK) {
		rc = 0;
		if (PQntuples(res) > 0)
			metric_add(&m_indexed, (uint64_t)pg_get_int8(res, 0, 2));
		for (int r = 0; r < PQntuples(res); r++) {
			int64_t channel = pg_get_int8(res, r, 0), head = pg_get_int8(res, r, 1);
			const struct note key = {channel, 0};
			const struct note *want = bsearch(&key, v, n, sizeof(*v), note_cmp);

			if (want && head < want->seq) {
				search_indexer_note(ix, channel, want->seq);
				(*again)++;
			}
		}
	} else if (res) {
		LOG(WARN, "cannot index messages for search: %s", PQresultErrorMessage(res));
	}
	PQclear(res);
	return rc;
}

/* Adds the channels found behind to work. 0, or -EIO. */
static int sweep(struct search_indexer *ix, struct notes *work)
{
	PGresult *res = PQexecParams(ix->conn, SWEEP_SQL, 0, NULL, NULL, NULL, NULL, 1);
	int n, rc = -EIO;

	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		n = PQntuples(res);
		for (int r = 0; r < n; r++) {
			if (work->n == work->cap && notes_grow(work) < 0)
				break;
			work->v[work->n++] =
			    (struct note){pg_get_int8(res, r, 0), pg_get_int8(res, r, 1)};
		}
		/* More left: look again at the next round. */
		ix->next_sweep_ns = time_mono_ns() + (n >= SWEEP_ROWS_MAX ? 0 : ix->sweep_ns);
		if (n > 0)
			LOG(INFO, "search index behind in %d channels: catching up", n);
		rc = 0;
	} else {
		LOG(WARN, "cannot look for channels left out of the search index: %s",
		    PQresultErrorMessage(res));
	}
	PQclear(res);
	return rc;
}

/* One round over work: 0 when all of it is in the index, 1 when some
 * channels were noted again, -EIO. */
static int index_round(struct search_indexer *ix, struct notes *work)
{
	int again = 0;

	if (time_mono_ns() >= ix->next_sweep_ns && sweep(ix, work) < 0)
		return -EIO;
	work->n = notes_compact(work->v, work->n);
	for (size_t i = 0; i < work->n; i += INDEX_CHANNELS_MAX) {
		size_t k = work->n - i < INDEX_CHANNELS_MAX ? work->n - i : INDEX_CHANNELS_MAX;

		if (index_some(ix, work->v + i, k, &again) < 0)
			return -EIO;
	}
	metric_add(&m_rounds, 1);
	return again > 0;
}

/* The thread */

/* When the round of the pending notes is due, or 0 when it is now: after
 * INDEX_LINGER_NS from the first note (at once with INDEX_CHANNELS_MAX
 * channels noted), a slice later while a writer lane is behind (up to
 * INDEX_YIELD_MAX_NS from the first note). Under the lock. */
static uint64_t round_due(struct search_indexer *ix, uint64_t now, bool *yielded)
{
	uint64_t yield_end = ix->oldest_ns + INDEX_YIELD_MAX_NS;

	if (ix->pending.n == 0 || ix->stopping)
		return 0;
	if (ix->hurry == 0 && now < yield_end && now < atomic_load(&ix->backlog_ns)) {
		*yielded = true;
		return now + INDEX_YIELD_SLICE_NS < yield_end ? now + INDEX_YIELD_SLICE_NS
							      : yield_end;
	}
	if (ix->pending.n >= INDEX_CHANNELS_MAX || now >= ix->oldest_ns + INDEX_LINGER_NS)
		return 0;
	return ix->oldest_ns + INDEX_LINGER_NS;
}

/* Waits for notes or the sweep, then until round_due() for more; swaps the
 * pending notes into work. False when stopping with nothing left. */
static bool take(struct search_indexer *ix, uint64_t *gen, uint64_t *since)
{
	bool yielded = false;
	uint64_t due;
	struct notes t;

	pthread_mutex_lock(&ix->lock);
	for (uint64_t now = time_mono_ns();
	     ix->pending.n == 0 && !ix->stopping && now < ix->next_sweep_ns; now = time_mono_ns()) {
		struct timespec until = time_mono_deadline(ix->next_sweep_ns - now);

		if (pthread_cond_timedwait(&ix->wake, &ix->lock, &until) != 0)
			break;
	}
	if (ix->pending.n == 0 && ix->stopping) {
		pthread_mutex_unlock(&ix->lock);
		return false;
	}
	for (uint64_t now = time_mono_ns(); (due = round_due(ix, now, &yielded)) > now;
	     now = time_mono_ns()) {
		struct timespec until = time_mono_deadline(due - now);

		pthread_cond_timedwait(&ix->wake, &ix->lock, &until);
	}
	if (yielded)
		metric_add(&m_yields, 1);
	t = ix->pending;
	ix->pending = ix->work;
	ix->pending.n = 0;
	ix->work = t;
	*gen = ix->noted;
	*since = ix->oldest_ns;
	pthread_mutex_unlock(&ix->lock);
	return true;
}

/* A failed round's channels, noted again. */
static void give_back(struct search_indexer *ix)
{
	pthread_mutex_lock(&ix->lock);
	for (size_t i = 0; i < ix->work.n; i++)
		notes_add_locked(ix, ix->work.v[i].channel, ix->work.v[i].seq);
	pthread_mutex_unlock(&ix->lock);
}

static void *indexer_main(void *arg)
{
	struct search_indexer *ix = arg;
	uint64_t gen, since;
	int rc;

	while (take(ix, &gen, &since)) {
		if (ix_connect(ix) < 0)
			break;
		rc = index_round(ix, &ix->work);
		if (rc < 0) {
			metric_add(&m_errors, 1);
			give_back(ix);
			if (pg_conn_dead(ix->conn)) {
				PQfinish(ix->conn);
				ix->conn = NULL;
			}
			if (atomic_load(&ix->abandon))
				break;
			usleep(RETRY_PAUSE_US);
			continue;
		}
		pthread_mutex_lock(&ix->lock);
		if (rc == 0 && gen > ix->indexed)
			ix->indexed = gen;
		pthread_cond_broadcast(&ix->progress);
		pthread_mutex_unlock(&ix->lock);
		if (since && ix->work.n)
			metric_observe_ns(&m_lag, time_mono_ns() - since);
	}
	pthread_mutex_lock(&ix->lock);
	ix->finished = true;
	pthread_cond_broadcast(&ix->progress);
	pthread_mutex_unlock(&ix->lock);
	return NULL;
}

/* Life */

static void indexer_free(struct search_indexer *ix)
{
	if (ix->conn)
		PQfinish(ix->conn);
	free(ix->pending.v);
	free(ix->work.v);
	buf_free(&ix->params[0]);
	buf_free(&ix->params[1]);
	free(ix->dsn);
	pthread_mutex_destroy(&ix->lock);
	pthread_cond_destroy(&ix->wake);
	pthread_cond_destroy(&ix->progress);
	free(ix);
}

struct search_indexer *search_indexer_create(const char *dsn, bool allow_unsafe,
					     int reconnect_max_ms, int sweep_ms)
{
	struct search_indexer *ix = calloc(1, sizeof(*ix));
	pthread_condattr_t attr;

	if (ix == NULL)
		return NULL;
	pthread_once(&lag_once, lag_init);
	ix->dsn = strdup(dsn);
	ix->allow_unsafe = allow_unsafe;
	ix->reconnect_max_ms = reconnect_max_ms > 0 ? reconnect_max_ms : 5000;
	ix->sweep_ns = (uint64_t)(sweep_ms > 0 ? sweep_ms : 60000) * 1000000ull;
	ix->next_sweep_ns = 0; /* the first round sweeps */
	pthread_mutex_init(&ix->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&ix->wake, &attr);
	pthread_cond_init(&ix->progress, &attr);
	pthread_condattr_destroy(&attr);
	if (ix->dsn == NULL || pthread_create(&ix->thread, NULL, indexer_main, ix) != 0) {
		indexer_free(ix);
		return err_null(-ENOMEM);
	}
	name_thread(ix->thread, "search-indexer");
	return ix;
}

void search_indexer_writer_behind(struct search_indexer *ix)
{
	atomic_store(&ix->backlog_ns, time_mono_ns() + INDEX_BACKLOG_NS);
}

int search_indexer_flush(struct search_indexer *ix, int timeout_ms)
{
	struct timespec until = time_mono_deadline((uint64_t)timeout_ms * 1000000ull);
	int rc = 0;

	pthread_mutex_lock(&ix->lock);
	ix->hurry++;
	pthread_cond_signal(&ix->wake);
	for (uint64_t target = ix->noted; ix->indexed < target && !ix->finished;)
		if (pthread_cond_timedwait(&ix->progress, &ix->lock, &until) != 0) {
			rc = -ETIMEDOUT;
			break;
		}
	if (ix->indexed < ix->noted && ix->finished)
		rc = -ETIMEDOUT;
	ix->hurry--;
	pthread_mutex_unlock(&ix->lock);
	return rc;
}

void search_indexer_destroy(struct search_indexer *ix, int drain_ms)
{
	struct timespec until = time_mono_deadline((uint64_t)drain_ms * 1000000ull);

	if (ix == NULL)
		return;
	pthread_mutex_lock(&ix->lock);
	ix->stopping = true;
	pthread_cond_signal(&ix->wake);
	while (!ix->finished && pthread_cond_timedwait(&ix->progress, &ix->lock, &until) == 0)
		;
	if (!ix->finished && ix->pending.n)
		LOG(NOTICE, "search indexer: %zu channels left for the next sweep", ix->pending.n);
	pthread_mutex_unlock(&ix->lock);
	atomic_store(&ix->abandon, true);
	pthread_join(ix->thread, NULL);
	indexer_free(ix);
}

static double pending_gauge(void *arg)
{
	struct search_indexer *ix = arg;
	size_t n;

	pthread_mutex_lock(&ix->lock);
	n = ix->pending.n;
	pthread_mutex_unlock(&ix->lock);
	return (double)n;
}

int search_indexer_register_metrics(struct search_indexer *ix)
{
	int rc;

	pthread_once(&lag_once, lag_init);
	rc = metrics_register_counter("fanout_search_indexed_total",
				      "Messages written into the search index after their commit.",
				      &m_indexed);
	rc = rc
		 ?: metrics_register_counter("fanout_search_index_rounds_total",
					     "Rounds of the search indexer that completed.",
					     &m_rounds);
	rc = rc
		 ?: metrics_register_counter("fanout_search_index_errors_total",
					     "Rounds of the search indexer that failed (retried).",
					     &m_errors);
	rc = rc
		 ?: metrics_register_counter("fanout_search_index_yields_total",
					     "Rounds of the search indexer that waited for a "
					     "writer lane behind its queue.",
					     &m_yields);
	rc = rc
		 ?: metrics_register_histogram(
			"fanout_search_index_lag_seconds",
			"From a commit noted to its round of the search indexer done.", &m_lag);
	rc = rc
		 ?: metrics_register_gauge("fanout_search_index_pending",
					   "Notes of committed channels waiting for the indexer.",
					   pending_gauge, ix);
	return rc;
}
