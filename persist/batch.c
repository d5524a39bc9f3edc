/* SPDX-License-Identifier: BSD-3-Clause */
/* One batch of the persist writer against PostgreSQL (see writer.c's header
 * for the design): the connection, the heads of the batch's channels, its
 * replies' parents, the pipelined append fenced by the channel head, and,
 * after a unique violation or a lost connection, resolving what is durable. */
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

#define APPEND_STMT "fanout_append"
/* Every channel of a batch in one statement: each channel's head moved
 * from what the writer expects to its last new seq, fenced by that head and
 * the owner epoch the writer holds; the rows of the channels whose head
 * moved are inserted, the others' left out. Returns the channels that
 * moved: a channel missing is one another writer moved (the fence). One
 * statement, not one per channel: on many small channels a batch is a
 * thousand channels of a row or two, and a statement's own cost is then
 * most of the batch (docs/benchmarks.md). The heads are also named by
 * "id = ANY($1)": the plan is generic (batch_connect), and a generic plan
 * takes unnest() of a parameter for ten rows, for which, on a table of a
 * few thousand channels, reading every row and hashing them looks cheaper
 * than ten index lookups; every batch then read the whole table. With the
 * ANY the heads are found by key from about a thousand channels up (below,
 * the table is a few pages, and reading it is still the plan). */
#define APPEND_SQL                                                                                 \
	"WITH head AS ("                                                                           \
	" UPDATE channels c SET last_seq = g.upto"                                                 \
	" FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::int8[]) AS g(id, old, upto, epoch)"  \
	" WHERE c.id = ANY($1::int8[]) AND c.id = g.id AND c.last_seq = g.old"                     \
	" AND c.owner_epoch = g.epoch RETURNING c.id, c.owner_epoch),"                             \
	" rows AS (INSERT INTO messages (channel_id, seq, author_id, client_msg_id, kind, body,"   \
	" parent_seq, created_at, owner_epoch, mentions)"                                          \
	" SELECT m.channel, m.seq, m.author, m.cmid, m.kind, m.body, m.parent,"                    \
	" timestamptz 'epoch' + $12::int8 * interval '1 microsecond', "                            \
	"head.owner_epoch, " BATCH_MENTIONS_SQL                                                    \
	" FROM unnest($5::int8[], $6::int8[], $7::int8[], $8::text[], $9::text[], $10::text[],"    \
	" $11::int8[]) AS m(channel, seq, author, cmid, kind, body, parent)"                       \
	" JOIN head ON head.id = m.channel RETURNING 1)"                                           \
	" SELECT id FROM head"
#define APPEND_PARAMS 12
#define APPEND_ARRAYS 11

/* Connection */

int batch_connect(struct writer_lane *w)
{
	static const Oid types[APPEND_PARAMS] = {
	    PG_OID_INT8_ARRAY, PG_OID_INT8_ARRAY, PG_OID_INT8_ARRAY, PG_OID_INT8_ARRAY,
	    PG_OID_INT8_ARRAY, PG_OID_INT8_ARRAY, PG_OID_INT8_ARRAY, PG_OID_TEXT_ARRAY,
	    PG_OID_TEXT_ARRAY, PG_OID_TEXT_ARRAY, PG_OID_INT8_ARRAY, PG_OID_INT8};
	PGresult *res;

	while (w->conn == NULL || PQstatus(w->conn) != CONNECTION_OK) {
		if (w->conn) {
			PQfinish(w->conn);
			w->conn = NULL;
		}
		atomic_store(&w->connected, false);
		w->conn = pg_connect_retry(w->cfg.dsn, w->cfg.allow_unsafe_commit,
					   w->cfg.reconnect_max_ms, &w->abandon, w->name);
		if (w->conn == NULL)
			return -ECANCELED;
		res = PQprepare(w->conn, APPEND_STMT, APPEND_SQL, APPEND_PARAMS, types);
		if (PQresultStatus(res) == PGRES_COMMAND_OK) {
			PQclear(res);
			res = heads_prepare(w->conn);
		}
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			LOG(ERR, "%s: cannot prepare append statement: %s", w->name,
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
		/* The append's plan is the same for a batch of one row or of
		 * thousands (an index scan per head, a hash join of the rows), but
		 * PostgreSQL, finding its custom plans cheaper, plans it again for
		 * every batch: 0.14-0.25 ms for one row, half again what executing
		 * it takes, and 0.8 ms for 1,024 rows (docs/benchmarks.md). The
		 * setting holds for the session's unnamed statements too (the
		 * claim, the resolve): each names its rows by key, so that a plan
		 * made without the parameters' values still finds them by index. */
		res = PQexec(w->conn, "SET plan_cache_mode = force_generic_plan");
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			LOG(WARN, "%s: batches are planned one by one: %s", w->name,
			    PQresultErrorMessage(res));
		PQclear(res);
		if (w->ever_connected) {
			metric_add(&m_reconnects, 1);
			LOG(NOTICE, "%s: reconnected to PostgreSQL", w->name);
		}
		w->ever_connected = true;
		atomic_store(&w->connected, true);
	}
	return 0;
}

/* Claims channels at their publishes' owner epoch and loads their heads, in
 * one statement: a row whose owner_epoch is below the epoch wanted is raised
 * to it (this node now owns it; an older owner's commits fail from here on);
 * a row already at it is ours; a row above it belongs to a newer owner. A
 * node alone wants epoch 0: it writes nothing and adopts the row's epoch,
 * whatever a cluster left there, so a cluster node claiming later still
 * fences it. Two claims racing on one row
 * can leave it out of both halves; it is then reported missing (-ENOENT),
 * and nothing is committed either way. The rows by key (the ANY), as the
 * append's: this statement's plan is generic too (batch_connect). */
#define CLAIM_SQL                                                                                  \
	"WITH want AS (SELECT id, max(epoch) AS epoch"                                             \
	" FROM unnest($1::int8[], $2::int8[]) AS u(id, epoch) GROUP BY id),"                       \
	" claimed AS (UPDATE channels c SET owner_epoch = want.epoch FROM want"                    \
	" WHERE c.id = ANY($1::int8[]) AND c.id = want.id AND c.owner_epoch < want.epoch"          \
	" RETURNING c.id, c.last_seq, c.owner_epoch, want.epoch AS wanted)"                        \
	" SELECT id, last_seq, owner_epoch, wanted FROM claimed"                                   \
	" UNION ALL SELECT c.id, c.last_seq, c.owner_epoch, want.epoch"                            \
	" FROM channels c JOIN want ON c.id = want.id"                                             \
	" WHERE c.id = ANY($1::int8[]) AND c.owner_epoch >= want.epoch"

/* Settles every pending request of channel with -ESTALE: a newer owner has
 * it. */
static void batch_fence_channel(struct batch *b, int64_t channel, int64_t ours, int64_t theirs)
{
	LOG(ERR,
	    "writer: channel %lld belongs to owner epoch %lld, this node routed at %lld: "
	    "stepping down for it",
	    (long long)channel, (long long)theirs, (long long)ours);
	metric_add(&m_fence_failures, 1);
	for (int i = 0; i < b->n; i++)
		if (!b->settled[i].done && b->items[i].channel == channel)
			b->settled[i] = (struct settle){PERSIST_FAILED, -ESTALE, true};
}

/* The channels to claim: every pending one whose head is unknown, or was
 * claimed at an older epoch than a publish now routed to it. */
static int batch_claims(struct writer_lane *w, struct batch *b, struct pg_array *ids,
			struct pg_array *epochs)
{
	int64_t head;
	int wanted = 0;

	for (int i = 0; i < b->n; i++) {
		int64_t channel = b->items[i].channel, epoch = b->reqs[i]->epoch;

		if (b->settled[i].done)
			continue;
		if (seqtab_head(w->seq, channel, &head) && seqtab_epoch(w->seq, channel) < epoch)
			seqtab_forget(w->seq, channel);
		if (seqtab_head(w->seq, channel, &head))
			continue;
		if (pg_array_add_int8(ids, channel) < 0 || pg_array_add_int8(epochs, epoch) < 0)
			return -ENOMEM;
		wanted++;
	}
	return wanted;
}

bool batch_heads_known(struct writer_lane *w, const struct batch *b)
{
	int64_t head;

	for (int i = 0; i < b->n; i++)
		if (!b->settled[i].done &&
		    (!seqtab_head(w->seq, b->items[i].channel, &head) ||
		     seqtab_epoch(w->seq, b->items[i].channel) < b->reqs[i]->epoch))
			return false;
	return true;
}

/* Claims and loads the heads of the batch's channels (CLAIM_SQL). Requests
 * for channels that do not exist are settled -ENOENT, for channels a newer
 * owner holds -ESTALE. 0, or -EPIPE when the connection failed. */
int batch_load_heads(struct writer_lane *w, struct batch *b)
{
	struct pg_array ids, epochs;
	const char *values[2];
	int lengths[2], formats[2] = {1, 1}, wanted, rc;
	PGresult *res;
	int64_t head;

	buf_reset(&w->params[0]);
	buf_reset(&w->params[1]);
	if (pg_array_begin(&ids, &w->params[0], PG_OID_INT8) < 0 ||
	    pg_array_begin(&epochs, &w->params[1], PG_OID_INT8) < 0)
		return -ENOMEM;
	wanted = batch_claims(w, b, &ids, &epochs);
	if (wanted <= 0)
		return wanted;
	pg_array_end(&ids);
	pg_array_end(&epochs);
	for (int i = 0; i < 2; i++) {
		values[i] = w->params[i].data;
		lengths[i] = (int)w->params[i].len;
	}
	res = PQexecParams(w->conn, CLAIM_SQL, 2, NULL, values, lengths, formats, 1);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		LOG(ERR, "writer: cannot claim channel heads: %s", PQresultErrorMessage(res));
		PQclear(res);
		return conn_lost(w) ? -EPIPE : -EIO;
	}
	for (int row = 0; row < PQntuples(res); row++) {
		int64_t channel = pg_get_int8(res, row, 0), owner = pg_get_int8(res, row, 2);
		int64_t ours = pg_get_int8(res, row, 3);

		if (owner > ours && ours > 0) {
			batch_fence_channel(b, channel, ours, owner);
			continue;
		}
		if ((rc = seqtab_set_head(w->seq, channel, pg_get_int8(res, row, 1))) < 0) {
			PQclear(res);
			return -ENOMEM;
		}
		if (rc > 0)
			metric_add(&m_heads_evicted, (uint64_t)rc);
		seqtab_set_epoch(w->seq, channel, owner);
	}
	PQclear(res);
	for (int i = 0; i < b->n; i++) {
		if (!b->settled[i].done && !seqtab_head(w->seq, b->items[i].channel, &head))
			b->settled[i] = (struct settle){PERSIST_FAILED, -ENOENT, true};
	}
	return 0;
}

/* A reply must name a message that is already durable: parent_seq at most the
 * channel head (heads only grow, so it is also below the new seq). */
void batch_check_parents(struct writer_lane *w, struct batch *b)
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

static int order_by_channel(const void *a, const void *b, void *arg)
{
	const struct seq_item *items = arg;
	const struct seq_item *x = &items[*(const int *)a], *y = &items[*(const int *)b];

	if (x->channel != y->channel)
		return x->channel < y->channel ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Adds group [from, to) of order[] to the append's arrays: its head, then
 * its rows. 0 or -ENOMEM. */
static int add_group(struct writer_lane *w, struct batch *b, int from, int to, struct pg_array *a)
{
	int rc = heads_add(w, b, from, to, a);

	for (int k = from; k < to && rc == 0; k++)
		rc = batch_add_row(w, b, k, &a[4]);
	return rc;
}

/* Sends the batch's one append statement (APPEND_SQL) for its ngroups
 * channel groups. 0, -ENOMEM or -EIO. */
static int send_append(struct writer_lane *w, struct batch *b, const int *groups, int ngroups,
		       int64_t created_at)
{
	static const uint32_t elem[APPEND_ARRAYS] = {
	    PG_OID_INT8, PG_OID_INT8, PG_OID_INT8, PG_OID_INT8, PG_OID_INT8, PG_OID_INT8,
	    PG_OID_INT8, PG_OID_TEXT, PG_OID_TEXT, PG_OID_TEXT, PG_OID_INT8};
	struct pg_array a[APPEND_ARRAYS];
	const char *values[APPEND_PARAMS];
	int lengths[APPEND_PARAMS], formats[APPEND_PARAMS];
	uint64_t ts = htobe64((uint64_t)created_at);

	if (pg_arrays_begin(a, w->params, elem, APPEND_ARRAYS) < 0)
		return -ENOMEM;
	for (int g = 0; g < ngroups; g++)
		if (add_group(w, b, groups[g], groups[g + 1], a) < 0)
			return -ENOMEM;
	pg_arrays_params(a, APPEND_ARRAYS, values, lengths, formats);
	values[APPEND_ARRAYS] = (const char *)&ts;
	lengths[APPEND_ARRAYS] = 8;
	formats[APPEND_ARRAYS] = 1;
	return PQsendQueryPrepared(w->conn, APPEND_STMT, APPEND_PARAMS, values, lengths, formats, 1)
		   ? 0
		   : -EIO;
}

/* Sorts the batch's new items by channel into order[], marks where each
 * channel's run starts in groups[] (and its end), and stamps each request
 * with the row's created_at: if this attempt's COMMIT is lost and later
 * found durable, the value still matches the row. Returns the groups. */
static int plan_groups(struct writer_lane *w, struct batch *b, int nnew, int64_t created_at)
{
	int ngroups = 0, k = 0;

	for (int i = 0; i < b->n; i++) {
		if (b->items[i].state != SEQ_NEW)
			continue;
		w->order[k++] = i;
		b->reqs[i]->msg.created_at_us = created_at;
	}
	qsort_r(w->order, (size_t)nnew, sizeof(int), order_by_channel, b->items);
	for (k = 0; k < nnew; k++)
		if (k == 0 || b->items[w->order[k]].channel != b->items[w->order[k - 1]].channel)
			w->groups[ngroups++] = k;
	w->groups[ngroups] = nnew;
	return ngroups;
}

/* Why an append PostgreSQL answered with an error failed, its sync marker
 * read: a lost connection (EXEC_CONN), a duplicate id (EXEC_UNIQUE) or the
 * statement refused (EXEC_SQL). Takes error. */
static enum exec_result append_failed(struct writer_lane *w, PGresult *error, int nnew)
{
	enum exec_result result = EXEC_SQL;

	if (conn_lost(w))
		result = EXEC_CONN;
	else if (error && pg_result_is(error, PG_SQLSTATE_UNIQUE_VIOLATION))
		result = EXEC_UNIQUE;
	else
		LOG(ERR, "writer: batch of %d failed: %s", nnew,
		    error ? PQresultErrorMessage(error) : PQerrorMessage(w->conn));
	PQclear(error);
	return result;
}

/* Sends the planned batch as one pipeline, the append and a sync, without
 * waiting: one round trip with batch_append_collect. The append is one
 * statement, so it needs no BEGIN and COMMIT of its own: the sync ends the
 * implicit transaction the extended protocol opens for it, committing it
 * (and, synchronous_commit on, flushing it) before PostgreSQL answers the
 * sync, or rolling it back after an error. An error in place of the sync is
 * the commit refused and rolled back, as an error of the append's own is; a
 * lost connection leaves the commit's fate unknown (batch_append_finish:
 * EXEC_CONN, the connection dropped, the caller resolves). */
int batch_append_send(struct writer_lane *w, struct batch *b, int nnew)
{
	struct append_flight *f = &w->flight;
	int64_t created_at = time_real_us();

	*f = (struct append_flight){.nnew = nnew, .start_ns = time_mono_ns()};
	f->ngroups = plan_groups(w, b, nnew, created_at);
	if (!PQenterPipelineMode(w->conn) || PQsetnonblocking(w->conn, 1) != 0 ||
	    send_append(w, b, w->groups, f->ngroups, created_at) < 0 || !PQpipelineSync(w->conn) ||
	    PQflush(w->conn) < 0) {
		f->lost = true;
		return -EIO;
	}
	return 0;
}

/* Keeps one result of the append's pipeline: the append's rows or its
 * error, the commit's error at the sync, the sync marker. */
static void keep_result(struct append_flight *f, PGresult *r)
{
	switch (PQresultStatus(r)) {
	case PGRES_TUPLES_OK:
		if (f->rows == NULL && f->error == NULL) {
			f->rows = r;
			return;
		}
		break;
	case PGRES_FATAL_ERROR:
		if (f->error == NULL) {
			f->error = r;
			return;
		}
		break;
	case PGRES_PIPELINE_SYNC:
		f->synced = true;
		break;
	default:
		f->odd = true;
	}
	PQclear(r);
}

int batch_append_collect(struct writer_lane *w)
{
	struct append_flight *f = &w->flight;
	int nulls = 0;

	if (f->lost || PQconsumeInput(w->conn) == 0) {
		f->lost = true;
		return 1;
	}
	while (!f->synced && !PQisBusy(w->conn)) {
		PGresult *r = PQgetResult(w->conn);

		/* A command's results end with NULL; two in a row: nothing more
		 * will come (the connection failed). */
		if (r == NULL) {
			if (++nulls > 1) {
				f->lost = true;
				return 1;
			}
			continue;
		}
		nulls = 0;
		keep_result(f, r);
	}
	return f->synced;
}

/* An append lost with its connection: its outcome is for batch_resolve to
 * find on a fresh one. */
static void drop_connection(struct writer_lane *w, int nnew)
{
	LOG(WARN, "%s: connection lost during a batch of %d: %s", w->name, nnew,
	    PQerrorMessage(w->conn));
	PQfinish(w->conn);
	w->conn = NULL;
	atomic_store(&w->connected, false);
}

bool batch_append_lost(const struct writer_lane *w)
{
	const struct append_flight *f = &w->flight;

	return f->lost || f->odd || !f->synced || (f->rows == NULL && f->error == NULL);
}

enum exec_result batch_append_finish(struct writer_lane *w, struct batch *b)
{
	struct append_flight *f = &w->flight;
	enum exec_result result;

	if (batch_append_lost(w)) {
		result = EXEC_CONN;
		PQclear(f->error);
	} else {
		if (f->rows)
			heads_fenced(w, b, f->rows, w->groups, f->ngroups);
		/* An error after the rows: the commit refused at the sync. */
		result = f->error ? append_failed(w, f->error, f->nnew) : EXEC_OK;
	}
	PQclear(f->rows);
	f->rows = f->error = NULL;
	if (result != EXEC_CONN &&
	    (PQsetnonblocking(w->conn, 0) != 0 || !PQexitPipelineMode(w->conn)))
		result = EXEC_CONN;
	if (result == EXEC_OK)
		metric_observe_ns(&m_commit_latency, time_mono_ns() - f->start_ns);
	if (result == EXEC_CONN)
		drop_connection(w, f->nnew);
	return result;
}

enum exec_result batch_execute(struct writer_lane *w, struct batch *b, int nnew)
{
	int64_t created_at = time_real_us();
	uint64_t start = time_mono_ns();
	enum exec_result result;
	int ngroups;

	if (w->cfg.copy_min_rows == 0 || nnew < w->cfg.copy_min_rows) {
		if (batch_append_send(w, b, nnew) == 0 && pg_flush(w->conn) == 0)
			while (!batch_append_collect(w))
				pg_wait_readable(w->conn);
		return batch_append_finish(w, b);
	}
	ngroups = plan_groups(w, b, nnew, created_at);
	metric_add(&m_copy_batches, 1);
	result = batch_execute_copy(w, b, nnew, ngroups, created_at);
	if (result == EXEC_OK)
		metric_observe_ns(&m_commit_latency, time_mono_ns() - start);
	if (result == EXEC_CONN)
		drop_connection(w, nnew);
	return result;
}

/* Resolve: asks PostgreSQL what is durable for every tentatively planned
 * request; see the design note. Changes nothing until every query answered,
 * so a resolve interrupted by another failure can simply run again.
 * 0, -EPIPE (connection lost), -EIO. Over 80 lines on purpose: its queries
 * and their answers in one order, as the design note tells them. */
int batch_resolve(struct writer_lane *w, struct batch *b)
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
