/* SPDX-License-Identifier: BSD-3-Clause */
/* History reader threads; see reader.h. Each thread owns one connection and
 * takes queries from a shared FIFO. A page is fetched with limit+1 rows so
 * has_more is exact without a count query.
 *
 * Reading on a standby
 * --------------------
 * With [postgres] read_dsn each thread also holds a connection to a standby
 * (standby.h), and a page is read there when the standby has replayed the
 * channel as far as the asker needs: every change to a channel's history
 * (a message, an edit, a reaction) advances channels.last_seq in the same
 * transaction, so "the standby's last_seq for the channel >= the seq needed"
 * says the page is what the primary would answer, as of that seq. The check
 * and the page are one statement, so they share one snapshot; a standby
 * behind, down, or failing sends the page to the primary. The seq needed
 * is the asker's (a session's highest seen seq, query min_head), raised to
 * the page's own bound; when nobody knows it (a resume on a fresh
 * connection, the newest page over HTTP) it is the channel's last_seq on
 * the primary, one row by primary key. docs/cluster.md says why this and
 * not pg_last_wal_replay_lsn(). */
#define LOG_COMPONENT "persist"
#include "reader.h"

#include "err.h"
#include "log.h"
#include "metrics.h"
#include "pg.h"
#include "standby.h"
#include "thread.h"

#include <libpq-fe.h>
#include <endian.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rows come with their current state (edits and deletes applied by the
 * trigger of migration 0003), a reply count of real replies, and the
 * reactions aggregated per emoji with whether the viewer ($5) is among them,
 * as JSON text. Column order matters: see page_fill(). */
#define COLUMNS                                                                                    \
	"m.seq, m.author_id, coalesce(m.parent_seq, 0),"                                           \
	" (extract(epoch FROM m.created_at) * 1000000)::int8,"                                     \
	" (SELECT count(*) FROM messages r WHERE r.channel_id = m.channel_id"                      \
	"  AND r.parent_seq = m.seq AND r.kind = 'message')::int8,"                                \
	" (m.edited_at IS NOT NULL)::int::int8, (m.deleted_at IS NOT NULL)::int::int8,"            \
	" m.kind, m.client_msg_id, m.body, coalesce(u.name, ''),"                                  \
	" coalesce((SELECT json_agg(json_build_object('emoji', a.emoji, 'count', a.n,"             \
	"  'me', a.me) ORDER BY a.emoji)::text FROM (SELECT x.emoji, count(*) AS n,"               \
	"  bool_or(x.user_id = $5) AS me FROM reactions x WHERE x.channel_id = m.channel_id"       \
	"  AND x.seq = m.seq GROUP BY x.emoji) a), '')"
#define FROM " FROM messages m LEFT JOIN users u ON u.id = m.author_id WHERE m.channel_id = $1"

/* Text columns start here: kind, client_msg_id, body, author name, reactions. */
#define FIRST_TEXT 7
#define NTEXT	   5

/* Each mode's page: one statement, read on the primary as it is and on a
 * standby inside ON_STANDBY below. */
#define PAGE_AFTER  "SELECT " COLUMNS FROM " AND m.seq > $2 ORDER BY m.seq LIMIT $3"
#define PAGE_BEFORE "SELECT " COLUMNS FROM " AND m.seq < $2 ORDER BY m.seq DESC LIMIT $3"
/* A thread is its parent and its real replies, not the events on them. */
#define PAGE_THREAD                                                                                \
	"SELECT " COLUMNS FROM " AND m.seq > $2 AND (m.seq = $4 OR (m.parent_seq = $4"             \
	" AND m.kind = 'message')) ORDER BY m.seq LIMIT $3"

/* Prepared once per connection (pg_exec_prepared): a page is planned once,
 * not at every call. */
static const char *const name_by_mode[] = {
    [PERSIST_HISTORY_AFTER] = "fanout_page_after",
    [PERSIST_HISTORY_BEFORE] = "fanout_page_before",
    [PERSIST_HISTORY_THREAD] = "fanout_page_thread",
};
static const char *const standby_name_by_mode[] = {
    [PERSIST_HISTORY_AFTER] = "fanout_standby_page_after",
    [PERSIST_HISTORY_BEFORE] = "fanout_standby_page_before",
    [PERSIST_HISTORY_THREAD] = "fanout_standby_page_thread",
};

static const char *const sql_by_mode[] = {
    [PERSIST_HISTORY_AFTER] = PAGE_AFTER,
    [PERSIST_HISTORY_BEFORE] = PAGE_BEFORE,
    [PERSIST_HISTORY_THREAD] = PAGE_THREAD,
};

/* The same page on a standby, behind the freshness check ($6, the seq
 * needed): a first row always (the channel's last_seq there and whether the
 * server is in recovery), the page's columns NULL when the check fails or
 * the page is empty. No row: the channel is not there yet. */
#define ON_STANDBY(inner, order)                                                                   \
	"WITH h AS (SELECT last_seq FROM channels WHERE id = $1)"                                  \
	" SELECT h.last_seq, pg_is_in_recovery(), p.* FROM h LEFT JOIN LATERAL (" inner ") p"      \
	" ON h.last_seq >= $6 ORDER BY p.seq " order
#define STANDBY_BASE 2 /* the page's columns start here */

static const char *const standby_sql_by_mode[] = {
    [PERSIST_HISTORY_AFTER] = ON_STANDBY(PAGE_AFTER, "ASC"),
    [PERSIST_HISTORY_BEFORE] = ON_STANDBY(PAGE_BEFORE, "DESC"),
    [PERSIST_HISTORY_THREAD] = ON_STANDBY(PAGE_THREAD, "ASC"),
};

static struct metric_counter m_pages, m_standby_pages, m_standby_behind;

struct query {
	struct query *next;
	persist_job_fn job;	      /* a generic job instead of a history query */
	struct persist_history *page; /* allocated at submit: answering never fails */
	struct persist_history_query q;
	persist_history_fn fn;
	void *arg;
};

struct persist_reader {
	char *dsn, *read_dsn;
	int reconnect_max_ms;
	int nthreads;
	pthread_t *threads;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct query *head, *tail;
	bool stopping;
	atomic_bool abandon;
};

void persist_history_free(struct persist_history *page)
{
	if (page == NULL)
		return;
	free(page->messages);
	free(page);
}

/* Fills page from rows rows of res whose columns start at base: one
 * allocation for the array and its strings. Returns 0 or -ENOMEM. */
static int page_fill(struct persist_history *page, PGresult *res,
		     const struct persist_history_query *q, int base, int rows)
{
	int count = rows > q->limit ? q->limit : rows;
	size_t strings = 0;
	char *p;

	for (int i = 0; i < count; i++)
		for (int c = FIRST_TEXT; c < FIRST_TEXT + NTEXT; c++)
			strings += (size_t)PQgetlength(res, i, base + c) + 1;
	page->messages = malloc(sizeof(*page->messages) * (size_t)count + strings + 1);
	if (page->messages == NULL)
		return -ENOMEM;
	page->count = count;
	page->has_more = rows > q->limit;
	p = (char *)(page->messages + count);
	for (int i = 0; i < count; i++) {
		/* BEFORE reads newest first; the page is returned ascending. */
		int row = q->mode == PERSIST_HISTORY_BEFORE ? count - 1 - i : i;
		struct persist_message *m = &page->messages[i];
		const char **strs[NTEXT] = {&m->kind, &m->client_msg_id, &m->body, &m->author_name,
					    &m->reactions};

		m->channel_id = q->channel_id;
		m->seq = pg_get_int8(res, row, base);
		m->author_id = pg_get_int8(res, row, base + 1);
		m->parent_seq = pg_get_int8(res, row, base + 2);
		m->created_at_us = pg_get_int8(res, row, base + 3);
		m->reply_count = pg_get_int8(res, row, base + 4);
		m->edited = pg_get_int8(res, row, base + 5) != 0;
		m->deleted = pg_get_int8(res, row, base + 6) != 0;
		for (int c = 0; c < NTEXT; c++) {
			int len = PQgetlength(res, row, base + FIRST_TEXT + c);
			memcpy(p, PQgetvalue(res, row, base + FIRST_TEXT + c), (size_t)len);
			p[len] = '\0';
			*strs[c] = p;
			p += len + 1;
		}
		m->body_len = (size_t)PQgetlength(res, row, base + FIRST_TEXT + 2);
	}
	return 0;
}

/* Runs a page's query: the primary's (sql_by_mode) or, with need >= 0, the
 * standby's behind its freshness check. */
static PGresult *run_query(PGconn *conn, const struct persist_history_query *q, int64_t need)
{
	uint64_t v[6];
	const char *values[6];
	int lengths[6] = {8, 8, 8, 8, 8, 8}, formats[6] = {1, 1, 1, 1, 1, 1};
	const Oid types[6] = {PG_OID_INT8, PG_OID_INT8, PG_OID_INT8,
			      PG_OID_INT8, PG_OID_INT8, PG_OID_INT8};
	int64_t bound = q->mode == PERSIST_HISTORY_BEFORE
			    ? (q->before_seq > 0 ? q->before_seq : INT64_MAX)
			    : q->after_seq;

	v[0] = htobe64((uint64_t)q->channel_id);
	v[1] = htobe64((uint64_t)bound);
	v[2] = htobe64((uint64_t)q->limit + 1);
	v[3] = htobe64((uint64_t)q->parent_seq);
	v[4] = htobe64((uint64_t)q->viewer_id);
	v[5] = htobe64((uint64_t)need);
	for (int i = 0; i < 6; i++)
		values[i] = (const char *)&v[i];
	/* Every mode takes all five; $4 is simply unused outside threads. */
	if (need >= 0)
		return pg_exec_prepared(conn, standby_name_by_mode[q->mode],
					standby_sql_by_mode[q->mode], 6, types, values, lengths,
					formats, 1);
	return pg_exec_prepared(conn, name_by_mode[q->mode], sql_by_mode[q->mode], 5, types, values,
				lengths, formats, 1);
}

/* The channel's last_seq on conn, or -1. */
static int64_t channel_head(PGconn *conn, int64_t channel)
{
	char c[24];
	const char *params[1] = {c};
	PGresult *res;
	int64_t head = -1;

	snprintf(c, sizeof(c), "%lld", (long long)channel);
	res = PQexecParams(conn, "SELECT last_seq FROM channels WHERE id = $1", 1, NULL, params,
			   NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		head = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	return head;
}

/* An empty catch-up page says nothing of where the channel is; its head
 * does (a client asking from beyond it is told). */
static bool page_wants_head(const struct persist_history *page,
			    const struct persist_history_query *q)
{
	return q->mode == PERSIST_HISTORY_AFTER && page->count == 0 && q->after_seq > 0;
}

static void page_head(PGconn *conn, struct persist_history *page,
		      const struct persist_history_query *q)
{
	page->head = page_wants_head(page, q) ? channel_head(conn, q->channel_id) : -1;
}

/* The seq a standby must have replayed the channel to for this page (see
 * the file comment), or -1 when it cannot be known (read on the primary). */
static int64_t needed_seq(PGconn *primary, const struct persist_history_query *q)
{
	int64_t bound = q->mode == PERSIST_HISTORY_AFTER    ? q->after_seq
			: q->mode == PERSIST_HISTORY_THREAD ? q->parent_seq
			: q->before_seq > 0		    ? q->before_seq - 1
							    : 0;

	if (q->min_head > 0)
		return q->min_head > bound ? q->min_head : bound;
	if (q->mode != PERSIST_HISTORY_AFTER && bound > 0)
		return bound; /* older rows: any snapshot that has them is one the asker may see */
	return channel_head(primary, q->channel_id);
}

/* Tries the page on the thread's standby: true when it answered (page
 * filled, or page->error -ENOMEM), false to read on the primary. */
static bool read_on_standby(struct standby *sb, PGconn *primary,
			    const struct persist_history_query *q, struct persist_history *page)
{
	PGconn *conn = standby_conn(sb);
	int64_t need = conn ? needed_seq(primary, q) : -1;
	PGresult *res = need >= 0 ? run_query(conn, q, need) : NULL;
	int rows = res ? PQntuples(res) : 0;
	bool fresh =
	    PQresultStatus(res) == PGRES_TUPLES_OK && rows > 0 && pg_get_int8(res, 0, 0) >= need;

	if (res && PQresultStatus(res) != PGRES_TUPLES_OK) {
		LOG(WARN, "reader: standby query failed: %s", PQresultErrorMessage(res));
		if (PQstatus(conn) != CONNECTION_OK)
			standby_lost(sb);
	}
	if (res && !fresh)
		metric_add(&m_standby_behind, 1);
	if (fresh) {
		if (PQgetisnull(res, 0, STANDBY_BASE))
			rows = 0; /* the one row is the check's: an empty page */
		page->error = page_fill(page, res, q, STANDBY_BASE, rows);
		page->head = page_wants_head(page, q) ? pg_get_int8(res, 0, 0) : -1;
		if (PQgetvalue(res, 0, 1)[0] == 1) /* binary bool: in recovery */
			metric_add(&m_standby_pages, 1);
	}
	PQclear(res);
	return fresh;
}

/* Reads one page on primary, or on the standby when it may: page->error. */
static int history_fetch(struct standby *sb, PGconn *primary, const struct persist_history_query *q,
			 struct persist_history *page)
{
	PGresult *res;

	metric_add(&m_pages, 1);
	if (sb && read_on_standby(sb, primary, q, page))
		return page->error;
	res = run_query(primary, q, -1);
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		page->error = page_fill(page, res, q, 0, PQntuples(res));
	else
		page->error = -EIO;
	if (page->error == -EIO)
		LOG(WARN, "reader: history query failed: %s", PQresultErrorMessage(res));
	PQclear(res);
	if (page->error == 0)
		page_head(primary, page, q);
	return page->error;
}

/* The thread's connections: jobs reading history on the primary's
 * connection find the standby through it. */
struct reader_thread {
	PGconn *conn;
	struct standby sb;
};
static _Thread_local struct reader_thread *self;

/* The thread's primary connection, reconnecting (with retries) when lost,
 * so a job after a failover does not fail on the dead one; NULL when
 * shutting down. */
static PGconn *primary_conn(struct persist_reader *r, struct reader_thread *t)
{
	if (pg_conn_dead(t->conn)) {
		PQfinish(t->conn);
		t->conn = r->stopping ? NULL
				      : pg_connect_retry(r->dsn, true, r->reconnect_max_ms,
							 &r->abandon, "reader");
	}
	return t->conn;
}

static void answer_page(struct persist_reader *r, struct reader_thread *t, struct query *qu)
{
	/* One retry on a fresh connection covers a restarted server. */
	for (int attempt = 0; attempt < 2; attempt++) {
		PGconn *conn = primary_conn(r, t);

		if (conn == NULL) {
			qu->page->error = -ECANCELED;
			break;
		}
		free(qu->page->messages);
		*qu->page = (struct persist_history){0};
		if (history_fetch(&t->sb, conn, &qu->q, qu->page) != -EIO)
			break;
	}
	qu->fn(qu->arg, qu->page);
}

/* The next query, or NULL when stopping with none left. */
static struct query *next_query(struct persist_reader *r)
{
	struct query *qu;

	pthread_mutex_lock(&r->lock);
	while (r->head == NULL && !r->stopping)
		pthread_cond_wait(&r->wake, &r->lock);
	qu = r->head;
	if (qu) {
		r->head = qu->next;
		if (r->head == NULL)
			r->tail = NULL;
	}
	pthread_mutex_unlock(&r->lock);
	return qu;
}

static void *reader_main(void *arg)
{
	struct persist_reader *r = arg;
	struct reader_thread t = {.sb = {.dsn = r->read_dsn}};
	struct query *qu;

	self = &t;
	while ((qu = next_query(r)) != NULL) {
		if (qu->job) {
			qu->job(qu->arg, r->stopping ? NULL : primary_conn(r, &t));
		} else if (r->stopping) {
			qu->page->error = -ECANCELED;
			qu->fn(qu->arg, qu->page);
		} else {
			answer_page(r, &t, qu);
		}
		free(qu);
	}
	self = NULL;
	standby_close(&t.sb);
	PQfinish(t.conn);
	return NULL;
}

int persist_reader_register_metrics(void)
{
	int rc = metrics_register_counter("fanout_history_pages_total",
					  "History pages read (catch-up, scroll-back, threads).",
					  &m_pages);

	rc =
	    rc
		?: metrics_register_counter(
		       "fanout_history_standby_pages_total",
		       "History pages a standby answered ([postgres] read_dsn).", &m_standby_pages);
	return rc
		   ?: metrics_register_counter(
			  "fanout_history_standby_behind_total",
			  "History pages the standby had not replayed far enough for, or failed: "
			  "read on the primary instead.",
			  &m_standby_behind);
}

struct persist_reader *persist_reader_create(const char *dsn, const char *read_dsn, int nthreads,
					     int reconnect_max_ms)
{
	struct persist_reader *r;

	if (dsn == NULL || nthreads < 1)
		return err_null(-EINVAL);
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->dsn = strdup(dsn);
	r->read_dsn = read_dsn && read_dsn[0] ? strdup(read_dsn) : NULL;
	r->threads = calloc((size_t)nthreads, sizeof(*r->threads));
	r->reconnect_max_ms = reconnect_max_ms > 0 ? reconnect_max_ms : 5000;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->wake, NULL);
	if (r->dsn == NULL || r->threads == NULL || (read_dsn && read_dsn[0] && !r->read_dsn))
		goto fail;
	for (; r->nthreads < nthreads; r->nthreads++) {
		if (pthread_create(&r->threads[r->nthreads], NULL, reader_main, r) != 0)
			goto fail;
		name_thread(r->threads[r->nthreads], "pg-reader-%d", r->nthreads + 1);
	}
	return r;
fail:
	persist_reader_destroy(r);
	return err_null(-ENOMEM);
}

/* Appends to the shared FIFO. 0, or -ESHUTDOWN (qu not taken). */
static int enqueue(struct persist_reader *r, struct query *qu)
{
	pthread_mutex_lock(&r->lock);
	if (r->stopping) {
		pthread_mutex_unlock(&r->lock);
		return -ESHUTDOWN;
	}
	if (r->tail)
		r->tail->next = qu;
	else
		r->head = qu;
	r->tail = qu;
	pthread_cond_signal(&r->wake);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

int persist_reader_submit(struct persist_reader *r, const struct persist_history_query *q,
			  persist_history_fn fn, void *arg)
{
	struct query *qu;

	if (fn == NULL || q->channel_id <= 0 || q->limit < 1 ||
	    q->limit > PERSIST_HISTORY_LIMIT_MAX || q->after_seq < 0 || q->before_seq < 0 ||
	    q->mode > PERSIST_HISTORY_THREAD ||
	    (q->mode == PERSIST_HISTORY_THREAD && q->parent_seq <= 0))
		return -EINVAL;
	qu = malloc(sizeof(*qu));
	if (qu == NULL)
		return -ENOMEM;
	*qu = (struct query){.q = *q, .fn = fn, .arg = arg, .page = calloc(1, sizeof(*qu->page))};
	if (qu->page == NULL) {
		free(qu);
		return -ENOMEM;
	}
	if (enqueue(r, qu) < 0) {
		free(qu->page);
		free(qu);
		return -ESHUTDOWN;
	}
	return 0;
}

int persist_history_read(PGconn *conn, const struct persist_history_query *q,
			 struct persist_history *page)
{
	memset(page, 0, sizeof(*page));
	if (q->channel_id <= 0 || q->limit < 1 || q->limit > PERSIST_HISTORY_LIMIT_MAX)
		return page->error = -EINVAL;
	/* A job on a reader thread reads on that thread's standby too. */
	return history_fetch(self && self->conn == conn ? &self->sb : NULL, conn, q, page);
}

int persist_stored_find(PGconn *conn, int64_t channel, int64_t author, const char *client_msg_id,
			const char *kind, int64_t parent_seq, const char *body,
			struct persist_stored *out)
{
	char c[24], a[24], p[24];
	const char *params[6] = {c, a, client_msg_id, kind ? kind : "message", p, body};
	PGresult *res;
	int rc = -EIO;

	snprintf(c, sizeof(c), "%lld", (long long)channel);
	snprintf(a, sizeof(a), "%lld", (long long)author);
	snprintf(p, sizeof(p), "%lld", (long long)parent_seq);
	res =
	    PQexecParams(conn,
			 "SELECT seq, (extract(epoch FROM created_at) * 1000000)::int8, kind = $4 "
			 "AND coalesce(parent_seq, 0) = $5::int8 AND body = $6 FROM messages "
			 "WHERE channel_id = $1 AND author_id = $2 AND client_msg_id = $3",
			 6, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		rc = PQntuples(res) == 1;
		if (rc) {
			out->seq = atoll(PQgetvalue(res, 0, 0));
			out->created_at_us = atoll(PQgetvalue(res, 0, 1));
			out->same = PQgetvalue(res, 0, 2)[0] == 't';
		}
	}
	PQclear(res);
	return rc;
}

int persist_reader_run(struct persist_reader *r, persist_job_fn job, void *arg)
{
	struct query *qu = calloc(1, sizeof(*qu));

	if (qu == NULL)
		return -ENOMEM;
	qu->job = job;
	qu->arg = arg;
	if (enqueue(r, qu) < 0) {
		free(qu);
		return -ESHUTDOWN;
	}
	return 0;
}

void persist_reader_destroy(struct persist_reader *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->lock);
	r->stopping = true;
	pthread_cond_broadcast(&r->wake);
	pthread_mutex_unlock(&r->lock);
	atomic_store(&r->abandon, true);
	for (int i = 0; i < r->nthreads; i++)
		pthread_join(r->threads[i], NULL);
	free(r->threads);
	free(r->dsn);
	free(r->read_dsn);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->wake);
	free(r);
}
