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
#include "writer.h"

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

#define APPEND_STMT "fanout_append"
#define APPEND_SQL                                                                                 \
	"WITH head AS ("                                                                           \
	" UPDATE channels SET last_seq = $2 + cardinality($3::int8[])"                             \
	" WHERE id = $1 AND last_seq = $2 RETURNING id)"                                           \
	" INSERT INTO messages (channel_id, seq, author_id, client_msg_id, kind, body,"            \
	" parent_seq, created_at)"                                                                 \
	" SELECT head.id, $2 + m.ord, m.author, m.cmid, m.kind, m.body, m.parent,"                 \
	" timestamptz 'epoch' + $8::int8 * interval '1 microsecond'"                               \
	" FROM head, unnest($3::int8[], $4::text[], $5::text[], $6::text[], $7::int8[])"           \
	" WITH ORDINALITY AS m(author, cmid, kind, body, parent, ord)"

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
	char data[]; /* kind, client_msg_id, body, author_name; each NUL-terminated */
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

/* Metrics: process-wide, registered once. */
static struct metric_counter m_batches, m_committed, m_duplicates, m_failed, m_fence_failures,
    m_reconnects, m_resolves;
static struct metric_histogram m_commit_latency, m_publish_latency;

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
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

/* Connection */

static int writer_connect(struct persist_writer *w)
{
	static const Oid types[8] = {PG_OID_INT8,	PG_OID_INT8,	   PG_OID_INT8_ARRAY,
				     PG_OID_TEXT_ARRAY, PG_OID_TEXT_ARRAY, PG_OID_TEXT_ARRAY,
				     PG_OID_INT8_ARRAY, PG_OID_INT8};
	PGresult *res;

	while (w->conn == NULL || PQstatus(w->conn) != CONNECTION_OK) {
		if (w->conn) {
			PQfinish(w->conn);
			w->conn = NULL;
		}
		atomic_store(&w->connected, false);
		w->conn = pg_connect_retry(w->cfg.dsn, w->cfg.allow_unsafe_commit,
					   w->cfg.reconnect_max_ms, &w->abandon, "writer");
		if (w->conn == NULL)
			return -ECANCELED;
		res = PQprepare(w->conn, APPEND_STMT, APPEND_SQL, 8, types);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			LOG(ERR, "writer: cannot prepare append statement: %s",
			    PQresultErrorMessage(res));
			PQclear(res);
			PQfinish(w->conn);
			w->conn = NULL;
			/* Likely a schema not migrated yet: do not spin. */
			for (int slept = 0; slept < 1000 && !atomic_load(&w->abandon); slept += 10)
				usleep(10000);
			continue;
		}
		PQclear(res);
		if (w->ever_connected) {
			metric_add(&m_reconnects, 1);
			LOG(NOTICE, "writer: reconnected to PostgreSQL");
		}
		w->ever_connected = true;
		atomic_store(&w->connected, true);
	}
	return 0;
}

static bool conn_lost(struct persist_writer *w)
{
	return PQstatus(w->conn) != CONNECTION_OK;
}

/* Loads the heads of channels not yet known. Requests for channels that do not
 * exist are settled -ENOENT. 0, or -EPIPE when the connection failed. */
static int load_heads(struct persist_writer *w, struct batch *b)
{
	const int n = b->n;
	struct buf *buf = &w->params[0];
	struct pg_array arr;
	const char *values[1];
	int lengths[1], formats[1] = {1}, wanted = 0;
	PGresult *res;
	int64_t head;

	buf_reset(buf);
	if (pg_array_begin(&arr, buf, PG_OID_INT8) < 0)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		if (b->settled[i].done || seqtab_head(w->seq, b->items[i].channel, &head))
			continue;
		if (pg_array_add_int8(&arr, b->items[i].channel) < 0)
			return -ENOMEM;
		wanted++;
	}
	if (wanted == 0)
		return 0;
	pg_array_end(&arr);
	values[0] = buf->data;
	lengths[0] = (int)buf->len;
	res = PQexecParams(w->conn, "SELECT id, last_seq FROM channels WHERE id = ANY($1::int8[])",
			   1, NULL, values, lengths, formats, 1);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		LOG(ERR, "writer: cannot load channel heads: %s", PQresultErrorMessage(res));
		PQclear(res);
		return conn_lost(w) ? -EPIPE : -EIO;
	}
	for (int row = 0; row < PQntuples(res); row++)
		if (seqtab_set_head(w->seq, pg_get_int8(res, row, 0), pg_get_int8(res, row, 1)) <
		    0) {
			PQclear(res);
			return -ENOMEM;
		}
	PQclear(res);
	for (int i = 0; i < n; i++) {
		if (!b->settled[i].done && !seqtab_head(w->seq, b->items[i].channel, &head))
			b->settled[i] = (struct settle){PERSIST_FAILED, -ENOENT, true};
	}
	return 0;
}

/* A reply must name a message that is already durable: parent_seq at most the
 * channel head (heads only grow, so it is also below the new seq). */
static void check_parents(struct persist_writer *w, struct batch *b)
{
	const int n = b->n;
	int64_t head;

	for (int i = 0; i < n; i++) {
		struct persist_message *m = &b->reqs[i]->msg;
		if (b->settled[i].done || m->parent_seq == 0)
			continue;
		if (!seqtab_head(w->seq, m->channel_id, &head) || m->parent_seq > head)
			b->settled[i] = (struct settle){PERSIST_FAILED, -EINVAL, true};
	}
}

/* Batch execution */

enum exec_result { EXEC_OK, EXEC_UNIQUE, EXEC_CONN, EXEC_SQL };

static int order_by_channel(const void *a, const void *b, void *arg)
{
	const struct seq_item *items = arg;
	const struct seq_item *x = &items[*(const int *)a], *y = &items[*(const int *)b];

	if (x->channel != y->channel)
		return x->channel < y->channel ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int send_append(struct persist_writer *w, struct batch *b, int from, int to,
		       int64_t created_at)
{
	const struct seq_item *first = &b->items[w->order[from]];
	struct pg_array authors, ids, kinds, bodies, parents;
	const char *values[8];
	int lengths[8], formats[8] = {1, 1, 1, 1, 1, 1, 1, 1};
	char channel[8], old[8], ts[8];
	uint64_t v;

	for (int i = 0; i < 5; i++)
		buf_reset(&w->params[i]);
	if (pg_array_begin(&authors, &w->params[0], PG_OID_INT8) ||
	    pg_array_begin(&ids, &w->params[1], PG_OID_TEXT) ||
	    pg_array_begin(&kinds, &w->params[2], PG_OID_TEXT) ||
	    pg_array_begin(&bodies, &w->params[3], PG_OID_TEXT) ||
	    pg_array_begin(&parents, &w->params[4], PG_OID_INT8))
		return -ENOMEM;
	for (int k = from; k < to; k++) {
		const struct persist_message *m = &b->reqs[w->order[k]]->msg;
		int rc = pg_array_add_int8(&authors, m->author_id);

		rc = rc ?: pg_array_add_text(&ids, m->client_msg_id, strlen(m->client_msg_id));
		rc = rc ?: pg_array_add_text(&kinds, m->kind, strlen(m->kind));
		rc = rc ?: pg_array_add_text(&bodies, m->body, m->body_len);
		rc = rc
			 ?: (m->parent_seq ? pg_array_add_int8(&parents, m->parent_seq)
					   : pg_array_add_null(&parents));
		if (rc < 0)
			return rc;
	}
	pg_array_end(&authors);
	pg_array_end(&ids);
	pg_array_end(&kinds);
	pg_array_end(&bodies);
	pg_array_end(&parents);

	v = htobe64((uint64_t)first->channel);
	memcpy(channel, &v, 8);
	v = htobe64((uint64_t)(first->seq - 1)); /* the head the fence expects */
	memcpy(old, &v, 8);
	v = htobe64((uint64_t)created_at);
	memcpy(ts, &v, 8);
	values[0] = channel;
	values[1] = old;
	values[7] = ts;
	lengths[0] = lengths[1] = lengths[7] = 8;
	for (int i = 0; i < 5; i++) {
		values[2 + i] = w->params[i].data;
		lengths[2 + i] = (int)w->params[i].len;
	}
	return PQsendQueryPrepared(w->conn, APPEND_STMT, 8, values, lengths, formats, 0) ? 0 : -EIO;
}

/* Reads one command's result; returns its status and keeps the first result
 * of an error in *err (caller clears). */
static ExecStatusType read_one(PGconn *conn, PGresult **keep)
{
	PGresult *res = PQgetResult(conn), *next;
	ExecStatusType st;

	if (res == NULL)
		return PGRES_FATAL_ERROR;
	st = PQresultStatus(res);
	if (keep && *keep == NULL)
		*keep = res;
	else
		PQclear(res);
	/* Each command's results end with NULL; the sync marker has none. */
	if (st != PGRES_PIPELINE_SYNC)
		while ((next = PQgetResult(conn)) != NULL)
			PQclear(next);
	return st;
}

/* Sends the planned batch and reads its results. On EXEC_OK, fenced[] groups
 * are marked in the items (state set to SEQ_DONE with -ESTALE). */
static enum exec_result execute(struct persist_writer *w, struct batch *b, int nnew)
{
	const int n = b->n;
	int64_t created_at = time_real_us();
	enum exec_result result = EXEC_OK;
	PGresult *error = NULL;
	int *groups = w->groups, ngroups = 0, k = 0;
	uint64_t start = time_mono_ns();

	for (int i = 0; i < n; i++) {
		if (b->items[i].state != SEQ_NEW)
			continue;
		w->order[k++] = i;
		/* The row's created_at; if this attempt's COMMIT is lost and
		 * later found durable, the value still matches the row. */
		b->reqs[i]->msg.created_at_us = created_at;
	}
	qsort_r(w->order, (size_t)nnew, sizeof(int), order_by_channel, b->items);
	for (k = 0; k < nnew; k++)
		if (k == 0 || b->items[w->order[k]].channel != b->items[w->order[k - 1]].channel)
			groups[ngroups++] = k;
	groups[ngroups] = nnew;

	if (!PQenterPipelineMode(w->conn) || PQsetnonblocking(w->conn, 1) != 0)
		return EXEC_CONN;
	if (!PQsendQueryParams(w->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0))
		goto conn;
	for (int g = 0; g < ngroups; g++)
		if (send_append(w, b, groups[g], groups[g + 1], created_at) < 0)
			goto conn;
	if (!PQsendQueryParams(w->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) ||
	    !PQpipelineSync(w->conn) || pg_flush(w->conn) < 0)
		goto conn;

	if (read_one(w->conn, &error) != PGRES_COMMAND_OK)
		goto failed;
	PQclear(error);
	error = NULL;
	for (int g = 0; g < ngroups; g++) {
		PGresult *res = NULL;
		long inserted;

		if (read_one(w->conn, &res) != PGRES_COMMAND_OK) {
			error = res;
			for (g++; g < ngroups; g++)
				read_one(w->conn, NULL);
			read_one(w->conn, NULL); /* COMMIT, skipped */
			goto failed_read;
		}
		inserted = strtol(PQcmdTuples(res), NULL, 10);
		PQclear(res);
		if (inserted != groups[g + 1] - groups[g]) {
			int64_t channel = b->items[w->order[groups[g]]].channel;

			LOG(ERR,
			    "writer: fence failed on channel %ld: its head is no longer %ld, "
			    "another "
			    "writer moved it; stepping down for this channel",
			    (long)channel, (long)(b->items[w->order[groups[g]]].seq - 1));
			metric_add(&m_fence_failures, 1);
			seqtab_forget(w->seq, channel);
			for (k = groups[g]; k < groups[g + 1]; k++) {
				b->items[w->order[k]].state = SEQ_DONE;
				b->settled[w->order[k]] =
				    (struct settle){PERSIST_FAILED, -ESTALE, true};
			}
		}
	}
	if (read_one(w->conn, &error) != PGRES_COMMAND_OK ||
	    strcmp(PQcmdStatus(error), "COMMIT") != 0)
		goto failed_read; /* COMMIT failed: nothing of the batch is durable */
	PQclear(error);
	error = NULL;
	if (read_one(w->conn, NULL) != PGRES_PIPELINE_SYNC)
		goto conn;
	metric_observe_ns(&m_commit_latency, time_mono_ns() - start);
	goto out;

failed:
	/* BEGIN failed: everything after it was skipped. */
	for (int g = 0; g <= ngroups; g++)
		read_one(w->conn, NULL);
	goto failed_read;
failed_read:
	read_one(w->conn, NULL); /* the sync marker */
	if (conn_lost(w))
		goto conn;
	if (error && pg_result_is(error, PG_SQLSTATE_UNIQUE_VIOLATION)) {
		result = EXEC_UNIQUE;
	} else {
		LOG(ERR, "writer: batch of %d failed: %s", nnew,
		    error ? PQresultErrorMessage(error) : PQerrorMessage(w->conn));
		result = EXEC_SQL;
	}
	goto out;
conn:
	result = EXEC_CONN;
out:
	PQclear(error);
	if (result != EXEC_CONN) {
		PQsetnonblocking(w->conn, 0);
		if (!PQexitPipelineMode(w->conn))
			result = EXEC_CONN;
		else if (PQtransactionStatus(w->conn) == PQTRANS_INERROR)
			PQclear(PQexec(w->conn, "ROLLBACK"));
	}
	if (result == EXEC_CONN) {
		LOG(WARN, "writer: connection lost during a batch of %d: %s", nnew,
		    PQerrorMessage(w->conn));
		/* Reset forces a fresh connection; the outcome is resolved on it. */
		PQfinish(w->conn);
		w->conn = NULL;
		atomic_store(&w->connected, false);
	}
	return result;
}

/* Resolve: asks PostgreSQL what is durable for every tentatively planned
 * request; see the design note. Changes nothing until every query answered,
 * so a resolve interrupted by another failure can simply run again.
 * 0, -EPIPE (connection lost), -EIO. */
static int resolve(struct persist_writer *w, struct batch *b)
{
	const int n = b->n;
	struct settle *found = w->found;
	int64_t *found_seq = w->found_seq, *heads = w->heads;
	bool *head_set = w->head_set;
	int rc = 0;

	metric_add(&m_resolves, 1);
	memset(found, 0, sizeof(*found) * (size_t)n);
	memset(head_set, 0, sizeof(*head_set) * (size_t)n);
	for (int i = 0; i < n; i++) {
		const struct seq_item *it = &b->items[i];
		struct pg_array arr;
		const char *values[2];
		int lengths[2], formats[2] = {1, 1};
		char channel[8];
		uint64_t v;
		int64_t old;
		PGresult *res;

		if (it->state != SEQ_NEW || head_set[i])
			continue;
		/* One query per channel covers all its requests in the batch. */
		buf_reset(&w->params[0]);
		if (pg_array_begin(&arr, &w->params[0], PG_OID_TEXT) < 0)
			return -ENOMEM;
		for (int j = i; j < n; j++)
			if (b->items[j].state == SEQ_NEW && b->items[j].channel == it->channel &&
			    pg_array_add_text(&arr, b->items[j].client_msg_id,
					      strlen(b->items[j].client_msg_id)) < 0)
				return -ENOMEM;
		pg_array_end(&arr);
		v = htobe64((uint64_t)it->channel);
		memcpy(channel, &v, 8);
		values[0] = channel;
		values[1] = w->params[0].data;
		lengths[0] = 8;
		lengths[1] = (int)w->params[0].len;
		res = PQexecParams(
		    w->conn,
		    "SELECT author_id, client_msg_id, seq, "
		    " (SELECT last_seq FROM channels WHERE id = $1) "
		    "FROM messages WHERE channel_id = $1 AND client_msg_id = ANY($2) "
		    "UNION ALL SELECT NULL, NULL, NULL, last_seq FROM channels "
		    "WHERE id = $1",
		    2, (const Oid[]){PG_OID_INT8, PG_OID_TEXT_ARRAY}, values, lengths, formats, 1);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			LOG(ERR, "writer: resolve failed: %s", PQresultErrorMessage(res));
			rc = conn_lost(w) ? -EPIPE : -EIO;
			PQclear(res);
			return rc;
		}
		seqtab_head(w->seq, it->channel, &old);
		for (int j = i; j < n; j++) {
			if (b->items[j].channel != it->channel)
				continue;
			head_set[j] = true;
			heads[j] = old; /* replaced below by the durable head */
		}
		for (int row = 0; row < PQntuples(res); row++) {
			if (PQgetisnull(res, row, 0)) {
				for (int j = i; j < n; j++)
					if (b->items[j].channel == it->channel)
						heads[j] = pg_get_int8(res, row, 3);
				continue;
			}
			for (int j = i; j < n; j++) {
				const struct seq_item *x = &b->items[j];
				int64_t seq = pg_get_int8(res, row, 2);

				if (x->state != SEQ_NEW || x->channel != it->channel ||
				    x->author != pg_get_int8(res, row, 0) ||
				    strcmp(x->client_msg_id, PQgetvalue(res, row, 1)) != 0)
					continue;
				found[j] = (struct settle){
				    seq > old ? PERSIST_COMMITTED : PERSIST_DUPLICATE, 0, true};
				found_seq[j] = seq;
			}
		}
		PQclear(res);
	}

	/* Every answer is in: apply. */
	seqtab_abort(w->seq);
	for (int i = 0; i < n; i++) {
		struct seq_item *it = &b->items[i];

		if (!head_set[i])
			continue;
		if (found[i].done) {
			it->state = SEQ_DONE;
			it->seq = found_seq[i];
			b->settled[i] = found[i];
			seqtab_remember(w->seq, it->channel, it->author, it->client_msg_id,
					it->seq);
		}
	}
	for (int i = 0; i < n; i++) {
		int64_t old;
		bool ours = false;

		if (!head_set[i] || !seqtab_head(w->seq, b->items[i].channel, &old))
			continue;
		for (int j = 0; j < n; j++)
			ours |= head_set[j] && b->items[j].channel == b->items[i].channel &&
				found[j].done && found[j].outcome == PERSIST_COMMITTED;
		if (!ours && heads[i] != old) {
			LOG(ERR,
			    "writer: fence failed on channel %ld: head %ld, expected %ld; stepping "
			    "down for this channel",
			    (long)b->items[i].channel, (long)heads[i], (long)old);
			metric_add(&m_fence_failures, 1);
			for (int j = 0; j < n; j++)
				if (b->items[j].channel == b->items[i].channel &&
				    !b->settled[j].done) {
					b->items[j].state = SEQ_DONE;
					b->settled[j] =
					    (struct settle){PERSIST_FAILED, -ESTALE, true};
				}
			seqtab_forget(w->seq, b->items[i].channel);
		} else {
			seqtab_set_head(w->seq, b->items[i].channel, heads[i]);
		}
	}
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

		if (writer_connect(w) < 0) {
			fail_pending(b, -ECANCELED);
			return;
		}
		rc = load_heads(w, b);
		if (rc == -EPIPE) {
			PQfinish(w->conn);
			w->conn = NULL;
			continue;
		}
		if (rc < 0) {
			fail_pending(b, rc == -ENOMEM ? -ENOMEM : -EIO);
			return;
		}
		check_parents(w, b);
		for (int i = 0; i < n; i++)
			b->items[i].state = b->settled[i].done ? SEQ_DONE : SEQ_NEW;
		nnew = seqtab_plan(w->seq, b->items, b->n);
		if (nnew < 0) {
			fail_pending(b, -EIO);
			return;
		}
		if (nnew > 0) {
			er = execute(w, b, nnew);
			if (er == EXEC_UNIQUE || er == EXEC_CONN) {
				for (;;) {
					if (writer_connect(w) < 0) {
						seqtab_abort(w->seq);
						fail_pending(b, -ECANCELED);
						return;
					}
					rc = resolve(w, b);
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
		free(r);
	}
}

/* The thread */

/* Takes the next batch. Returns its size; 0 when a second passed with nothing
 * to do (time for a connection check); -1 when stopping with nothing left. */
static int take_batch(struct persist_writer *w)
{
	struct timespec idle = time_mono_deadline(WRITER_IDLE_CHECK_NS);
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
	while (w->head && n < w->cfg.batch_max) {
		struct request *r = w->head;
		w->head = r->next;
		if (w->head == NULL)
			w->tail = NULL;
		w->reqs[n] = r;
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
	writer_connect(w);
}

static void *writer_main(void *arg)
{
	struct persist_writer *w = arg;
	int n;

	writer_connect(w);
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
	int rc = 0;

	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]) && rc == 0; i++)
		rc = metrics_register_counter(counters[i].name, counters[i].help,
					      counters[i].counter);
	metric_histogram_init(&m_commit_latency, metric_latency_bounds_ns, metric_latency_nbounds);
	metric_histogram_init(&m_publish_latency, metric_latency_bounds_ns, metric_latency_nbounds);
	rc = rc
		 ?: metrics_register_histogram("fanout_persist_commit_seconds",
					       "Round trip of one batch transaction.",
					       &m_commit_latency);
	rc = rc
		 ?: metrics_register_histogram("fanout_persist_publish_seconds",
					       "From submit to durable, per message.",
					       &m_publish_latency);
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
