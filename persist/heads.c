/* SPDX-License-Identifier: BSD-3-Clause */
/* The fence of a batch's channels, shared by both ways a batch is appended
 * (batch.c's pipelined INSERT, batch_copy.c's COPY): each channel group's
 * head, the head the fence expects and the owner epoch as array elements;
 * the heads' fenced UPDATE alone, in its own round trip with BEGIN, for
 * the COPY; and the groups a result shows another writer moved. */
#define LOG_COMPONENT "persist"
#include "writer-internal.h"

#include "log.h"
#include "metrics.h"

#include <errno.h>
#include <libpq-fe.h>

/* The append's first half alone (batch.c's APPEND_SQL), for a batch whose
 * rows go by COPY: the heads moved, fenced; returns the channels that
 * moved. By key, as the append finds them (the ANY: batch.c). */
#define HEADS_STMT "fanout_heads"
#define HEADS_SQL                                                                                  \
	"UPDATE channels c SET last_seq = g.upto"                                                  \
	" FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::int8[]) AS g(id, old, upto, epoch)"  \
	" WHERE c.id = ANY($1::int8[]) AND c.id = g.id AND c.last_seq = g.old"                     \
	" AND c.owner_epoch = g.epoch RETURNING c.id"
#define HEADS_ARRAYS 4

PGresult *heads_prepare(PGconn *conn)
{
	static const Oid types[HEADS_ARRAYS] = {PG_OID_INT8_ARRAY, PG_OID_INT8_ARRAY,
						PG_OID_INT8_ARRAY, PG_OID_INT8_ARRAY};

	return PQprepare(conn, HEADS_STMT, HEADS_SQL, HEADS_ARRAYS, types);
}

/* Adds group [from, to) of order[] to the heads' arrays: the channel, the
 * head the fence expects, the new head, the epoch. 0 or -ENOMEM. */
int heads_add(struct writer_lane *w, struct batch *b, int from, int to, struct pg_array *a)
{
	const struct seq_item *first = &b->items[w->order[from]];
	int rc = pg_array_add_int8(&a[0], first->channel);

	rc = rc ?: pg_array_add_int8(&a[1], first->seq - 1);
	rc = rc ?: pg_array_add_int8(&a[2], b->items[w->order[to - 1]].seq);
	return rc ?: pg_array_add_int8(&a[3], seqtab_epoch(w->seq, first->channel));
}

/* Sends the heads' fenced UPDATE (HEADS_STMT) for groups. 0, -ENOMEM or
 * -EIO. */
static int send_heads(struct writer_lane *w, struct batch *b, const int *groups, int ngroups)
{
	static const uint32_t elem[HEADS_ARRAYS] = {PG_OID_INT8, PG_OID_INT8, PG_OID_INT8,
						    PG_OID_INT8};
	struct pg_array a[HEADS_ARRAYS];
	const char *values[HEADS_ARRAYS];
	int lengths[HEADS_ARRAYS], formats[HEADS_ARRAYS];

	if (pg_arrays_begin(a, w->params, elem, HEADS_ARRAYS) < 0)
		return -ENOMEM;
	for (int g = 0; g < ngroups; g++)
		if (heads_add(w, b, groups[g], groups[g + 1], a) < 0)
			return -ENOMEM;
	pg_arrays_params(a, HEADS_ARRAYS, values, lengths, formats);
	return PQsendQueryPrepared(w->conn, HEADS_STMT, HEADS_ARRAYS, values, lengths, formats, 1)
		   ? 0
		   : -EIO;
}

/* The groups whose channel the append's result (the channels whose head
 * moved) does not name: another writer moved the head, and this lane steps
 * down for the channel; its requests fail -ESTALE. */
void heads_fenced(struct writer_lane *w, struct batch *b, const PGresult *res, const int *groups,
		  int ngroups)
{
	int rows = PQntuples(res), r = 0;

	if (rows == ngroups)
		return;
	for (int g = 0; g < ngroups; g++) {
		int64_t channel = b->items[w->order[groups[g]]].channel;

		for (r = 0; r < rows && pg_get_int8(res, r, 0) != channel; r++)
			;
		if (r < rows)
			continue;
		LOG(ERR,
		    "writer: fence failed on channel %ld: its head is no longer %ld, another "
		    "writer moved it; stepping down for this channel",
		    (long)channel, (long)(b->items[w->order[groups[g]]].seq - 1));
		metric_add(&m_fence_failures, 1);
		seqtab_forget(w->seq, channel);
		for (int k = groups[g]; k < groups[g + 1]; k++) {
			b->items[w->order[k]].state = SEQ_DONE;
			b->settled[w->order[k]] = (struct settle){PERSIST_FAILED, -ESTALE, true};
		}
	}
}

enum exec_result heads_begin(struct writer_lane *w, struct batch *b, int nnew, int ngroups)
{
	enum exec_result result = EXEC_OK;
	PGresult *error = NULL;

	if (!PQenterPipelineMode(w->conn) || PQsetnonblocking(w->conn, 1) != 0)
		return EXEC_CONN;
	if (!PQsendQueryParams(w->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) ||
	    send_heads(w, b, w->groups, ngroups) < 0 || !PQpipelineSync(w->conn) ||
	    pg_flush(w->conn) < 0)
		return EXEC_CONN;
	if (pg_read_one(w->conn, &error) != PGRES_COMMAND_OK) {
		pg_read_one(w->conn, NULL); /* the heads, skipped */
		result = EXEC_SQL;
	} else {
		PQclear(error);
		error = NULL;
		if (pg_read_one(w->conn, &error) == PGRES_TUPLES_OK)
			heads_fenced(w, b, error, w->groups, ngroups);
		else
			result = EXEC_SQL;
	}
	if (pg_read_one(w->conn, NULL) != PGRES_PIPELINE_SYNC || conn_lost(w)) {
		PQclear(error);
		return EXEC_CONN;
	}
	if (result == EXEC_SQL)
		LOG(ERR, "writer: batch of %d failed: %s", nnew,
		    error ? PQresultErrorMessage(error) : PQerrorMessage(w->conn));
	PQclear(error);
	PQsetnonblocking(w->conn, 0);
	return PQexitPipelineMode(w->conn) ? result : EXEC_CONN;
}
