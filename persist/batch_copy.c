/* SPDX-License-Identifier: BSD-3-Clause */
/* A large batch's append by COPY: the same transaction as the pipelined
 * append (batch.c) in four round trips, not one, because libpq runs no COPY
 * in a pipeline: BEGIN and the channels' heads moved and fenced by one
 * UPDATE (heads_begin, heads.c), the COPY started, the rows of the channels
 * that moved sent in binary and the COPY ended, COMMIT. A COPY computes
 * nothing: a message whose body has an '@' is inserted before it by a
 * statement that computes its mentions with fanout_mentions (a round trip
 * more, only for a batch that has one), every other row carries its
 * mentions (none for a message, NULL for an event) in the COPY. Those
 * messages go first, though the order is free: an event names a message
 * already durable before its batch (batch_check_parents).
 * PostgreSQL inserts a COPY's rows a page at a time, each partition's
 * buffered apart, where the INSERT of the pipelined append writes them one
 * by one; on rows spread over many channels that is about a quarter of the
 * backend's time per row (docs/benchmarks.md); below cfg.copy_min_rows
 * the three round trips more cost more than that, and the batch keeps the
 * pipelined append. */
#define LOG_COMPONENT "persist"
#include "writer-internal.h"

#include "log.h"

#include <endian.h>
#include <errno.h>
#include <libpq-fe.h>
#include <string.h>

/* The rows' columns, in the order each COPY row carries them. */
#define COPY_SQL                                                                                   \
	"COPY messages (channel_id, seq, author_id, client_msg_id, kind, body, parent_seq,"        \
	" created_at, owner_epoch, mentions) FROM STDIN (FORMAT binary)"
#define COPY_FIELDS 10
/* The batch's messages with an '@' in their body, their mentions computed;
 * created_at as the COPY's, in microseconds since the Unix epoch. */
#define MENTIONING_SQL                                                                             \
	"INSERT INTO messages (channel_id, seq, author_id, client_msg_id, kind, body, parent_seq," \
	" created_at, owner_epoch, mentions)"                                                      \
	" SELECT m.channel, m.seq, m.author, m.cmid, m.kind, m.body, m.parent,"                    \
	" timestamptz 'epoch' + $9::int8 * interval '1 microsecond', m.epoch, " BATCH_MENTIONS_SQL \
	" FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::text[], $5::text[], $6::text[],"     \
	" $7::int8[], $8::int8[]) AS m(channel, seq, author, cmid, kind, body, parent, epoch)"
#define MENTIONING_ARRAYS 8
/* A binary text[] with no element: no dimension, no NULL, of type text. */
static const char empty_text_array[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 25};
/* Binary COPY's signature, flags and header extension length. */
static const char copy_header[19] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";
/* Microseconds from the Unix epoch to PostgreSQL's (2000-01-01). */
#define PG_EPOCH_US 946684800000000LL
/* Rows are handed to libpq in pieces of about this size. */
#define COPY_CHUNK (256 * 1024)

static int put_int8_field(struct buf *out, int64_t v)
{
	return pg_buf_put_be32(out, 8) ?: pg_buf_put_be64(out, (uint64_t)v);
}

static int put_text_field(struct buf *out, const char *s, size_t len)
{
	return pg_buf_put_be32(out, (uint32_t)len) ?: buf_put(out, s, len);
}

/* Whether item k of order[] is a message whose body has an '@': its
 * mentions are for fanout_mentions to compute, not the COPY. */
static bool mentioning(const struct writer_lane *w, const struct batch *b, int k)
{
	const struct persist_message *m = &b->reqs[w->order[k]]->msg;

	return strcmp(m->kind, "message") == 0 && memchr(m->body, '@', m->body_len) != NULL;
}

/* Appends one COPY row: item k of order[]. */
static int put_row(struct writer_lane *w, struct batch *b, int k, int64_t created_at,
		   struct buf *out)
{
	const struct seq_item *it = &b->items[w->order[k]];
	const struct persist_message *m = &b->reqs[w->order[k]]->msg;
	uint16_t fields = htobe16(COPY_FIELDS);
	int rc = buf_put(out, &fields, 2);

	rc = rc ?: put_int8_field(out, it->channel);
	rc = rc ?: put_int8_field(out, it->seq);
	rc = rc ?: put_int8_field(out, m->author_id);
	rc = rc ?: put_text_field(out, m->client_msg_id, strlen(m->client_msg_id));
	rc = rc ?: put_text_field(out, m->kind, strlen(m->kind));
	rc = rc ?: put_text_field(out, m->body, m->body_len);
	rc = rc ?: (m->parent_seq ? put_int8_field(out, m->parent_seq) : pg_buf_put_be32(out, ~0u));
	rc = rc ?: put_int8_field(out, created_at - PG_EPOCH_US);
	rc = rc ?: put_int8_field(out, seqtab_epoch(w->seq, it->channel));
	if (strcmp(m->kind, "message") == 0)
		rc = rc ?: pg_buf_put_be32(out, sizeof(empty_text_array))
			?: buf_put(out, empty_text_array, sizeof(empty_text_array));
	else
		rc = rc ?: pg_buf_put_be32(out, ~0u);
	return rc;
}

/* Inserts the new messages with an '@' (MENTIONING_SQL), if the batch has
 * any; *error keeps a failed statement's result. */
static enum exec_result insert_mentioning(struct writer_lane *w, struct batch *b, int nnew,
					  int64_t created_at, PGresult **error)
{
	static const uint32_t elem[MENTIONING_ARRAYS] = {PG_OID_INT8, PG_OID_INT8, PG_OID_INT8,
							 PG_OID_TEXT, PG_OID_TEXT, PG_OID_TEXT,
							 PG_OID_INT8, PG_OID_INT8};
	struct pg_array a[MENTIONING_ARRAYS];
	const char *values[MENTIONING_ARRAYS + 1];
	int lengths[MENTIONING_ARRAYS + 1], formats[MENTIONING_ARRAYS + 1], rows = 0;
	int rc = pg_arrays_begin(a, w->params, elem, MENTIONING_ARRAYS);
	uint64_t ts = htobe64((uint64_t)created_at);
	PGresult *res;

	for (int k = 0; k < nnew && rc == 0; k++) {
		if (b->items[w->order[k]].state != SEQ_NEW || !mentioning(w, b, k))
			continue;
		rc = batch_add_row(w, b, k, a)
			 ?: pg_array_add_int8(&a[7],
					      seqtab_epoch(w->seq, b->items[w->order[k]].channel));
		rows++;
	}
	if (rc < 0) {
		LOG(ERR, "writer: out of memory for a batch of %d", nnew);
		return EXEC_SQL;
	}
	if (rows == 0)
		return EXEC_OK;
	pg_arrays_params(a, MENTIONING_ARRAYS, values, lengths, formats);
	values[MENTIONING_ARRAYS] = (const char *)&ts;
	lengths[MENTIONING_ARRAYS] = 8;
	formats[MENTIONING_ARRAYS] = 1;
	res = PQexecParams(w->conn, MENTIONING_SQL, MENTIONING_ARRAYS + 1, NULL, values, lengths,
			   formats, 1);
	if (PQresultStatus(res) == PGRES_COMMAND_OK) {
		PQclear(res);
		return EXEC_OK;
	}
	*error = res;
	if (conn_lost(w))
		return EXEC_CONN;
	return pg_result_is(res, PG_SQLSTATE_UNIQUE_VIOLATION) ? EXEC_UNIQUE : EXEC_SQL;
}

/* Sends every row the fence left (items still SEQ_NEW) as one COPY and
 * reads its outcome; *error keeps a failed COPY's result. */
static enum exec_result copy_rows(struct writer_lane *w, struct batch *b, int nnew,
				  int64_t created_at, PGresult **error)
{
	struct buf *out = &w->params[0];
	PGresult *res = PQexec(w->conn, COPY_SQL);
	uint16_t trailer = 0xffff;
	int rc = 0;

	if (PQresultStatus(res) != PGRES_COPY_IN) {
		*error = res;
		return conn_lost(w) ? EXEC_CONN : EXEC_SQL;
	}
	PQclear(res);
	buf_reset(out);
	rc = buf_put(out, copy_header, sizeof(copy_header));
	for (int k = 0; k < nnew && rc == 0; k++) {
		if (b->items[w->order[k]].state != SEQ_NEW || mentioning(w, b, k))
			continue; /* its channel was fenced, or it went before */
		rc = put_row(w, b, k, created_at, out);
		if (rc == 0 && out->len >= COPY_CHUNK) {
			rc = PQputCopyData(w->conn, out->data, (int)out->len) == 1 ? 0 : -EIO;
			buf_reset(out);
		}
	}
	rc = rc ?: buf_put(out, &trailer, 2);
	if (rc == 0 && PQputCopyData(w->conn, out->data, (int)out->len) != 1)
		rc = -EIO;
	if (PQputCopyEnd(w->conn, rc == -ENOMEM ? "out of memory" : NULL) != 1)
		return EXEC_CONN;
	res = PQgetResult(w->conn);
	for (PGresult *next; (next = PQgetResult(w->conn)) != NULL;)
		PQclear(next);
	if (rc == -EIO || res == NULL || conn_lost(w)) {
		PQclear(res);
		return EXEC_CONN;
	}
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		*error = res;
		return pg_result_is(res, PG_SQLSTATE_UNIQUE_VIOLATION) ? EXEC_UNIQUE : EXEC_SQL;
	}
	PQclear(res);
	return EXEC_OK;
}

enum exec_result batch_execute_copy(struct writer_lane *w, struct batch *b, int nnew, int ngroups,
				    int64_t created_at)
{
	PGresult *error = NULL, *res;
	enum exec_result result = heads_begin(w, b, nnew, ngroups);

	if (result == EXEC_OK)
		result = insert_mentioning(w, b, nnew, created_at, &error);
	if (result == EXEC_OK)
		result = copy_rows(w, b, nnew, created_at, &error);
	if (result == EXEC_OK) {
		res = PQexec(w->conn, "COMMIT");
		if (PQresultStatus(res) != PGRES_COMMAND_OK ||
		    strcmp(PQcmdStatus(res), "COMMIT") != 0) {
			/* Nothing of the batch is durable, or, connection lost,
			 * nobody knows: resolved like the pipelined append's. */
			error = res;
			result = conn_lost(w) ? EXEC_CONN : EXEC_SQL;
		} else {
			PQclear(res);
		}
	}
	if (result == EXEC_SQL && error) /* heads_begin logged its own */
		LOG(ERR, "writer: batch of %d failed: %s", nnew, PQresultErrorMessage(error));
	PQclear(error);
	if (result != EXEC_OK && result != EXEC_CONN &&
	    PQtransactionStatus(w->conn) != PQTRANS_IDLE)
		PQclear(PQexec(w->conn, "ROLLBACK"));
	return result;
}
