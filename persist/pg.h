/* SPDX-License-Identifier: BSD-3-Clause */
/* PostgreSQL plumbing shared by the writer, the reader and migrations:
 * connecting with the durability check, reconnect backoff, pipeline flushing,
 * and binary encoding of parameters (int8 and arrays) so batches travel as a
 * handful of array parameters instead of thousands of text literals. */
#pragma once

#include "buf.h"

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Type OIDs from pg_type, stable across PostgreSQL versions. */
#define PG_OID_INT8	  20
#define PG_OID_TEXT	  25
#define PG_OID_INT8_ARRAY 1016
#define PG_OID_TEXT_ARRAY 1009

/* SQLSTATEs the persist tier reacts to. */
#define PG_SQLSTATE_UNIQUE_VIOLATION  "23505"
#define PG_SQLSTATE_NO_SUCH_STATEMENT "26000"

/* PQconnectdb(dsn) that names the connection in pg_stat_activity's
 * application_name, "fanout NAME" ("fanout writer lane 2", "fanout search
 * indexer"), unless the DSN names it itself. Check PQstatus as usual. */
PGconn *pg_connect_named(const char *dsn, const char *name);

/* Connects and checks that commits are durable: synchronous_commit must not be
 * off and fsync must be on, unless allow_unsafe. Returns the connection, or
 * NULL with a reason in err. pg_connect names it "fanout fanoutd", _as
 * "fanout WHO". */
PGconn *pg_connect(const char *dsn, bool allow_unsafe, char *err, size_t err_size);
PGconn *pg_connect_as(const char *dsn, const char *who, bool allow_unsafe, char *err,
		      size_t err_size);

/* Like pg_connect_as(dsn, who, ...), retrying with exponential backoff (50 ms
 * doubling up to max_ms) until it succeeds or *stop becomes true (then NULL).
 * Logs each failure once per attempt at WARN. */
PGconn *pg_connect_retry(const char *dsn, bool allow_unsafe, int max_ms, atomic_bool *stop,
			 const char *who);

/* Whether the server is a standby (in recovery, read-only); false when it
 * cannot be asked. */
bool pg_in_recovery(PGconn *conn);

/* Whether an idle connection is gone: not OK, or its server closed it (a
 * crash or a failover leaves the socket readable with EOF before anyone
 * queries it). One poll(), no round trip. */
bool pg_conn_dead(PGconn *conn);

/* Sends everything buffered in a nonblocking connection, consuming input
 * meanwhile so the server never stalls on a full socket. 0 or -EIO. */
int pg_flush(PGconn *conn);

/* Waits until conn's socket is readable, a second at most (the caller
 * reads what came and asks again). */
void pg_wait_readable(PGconn *conn);

/* Runs the statement sql as the prepared statement name on conn, preparing
 * it first when conn does not have it yet (a new connection: the first call
 * per statement costs two more round trips). Parameters as PQexecParams.
 * The connection's prepared statements get generic plans (plan_cache_mode
 * = force_generic_plan): planned once, not at every call. */
PGresult *pg_exec_prepared(PGconn *conn, const char *name, const char *sql, int n, const Oid *types,
			   const char *const *values, const int *lengths, const int *formats,
			   int result_format);

/* Runs the read-only statement sql with text parameters, planned with its
 * own values whatever the connection's plan_cache_mode (a generic plan, as
 * pg_exec_prepared() sets, keeps every "$3 = '' OR ..." and can miss an
 * index the values would choose). Its own transaction: call it outside
 * one. Three round trips. */
PGresult *pg_exec_custom(PGconn *conn, const char *sql, int n, const char *const *values);

/* In pipeline mode: reads one command's result (and the NULL that ends
 * it); returns its status and keeps the result in *keep when *keep is NULL
 * (the first error of a pipeline; the caller clears it). keep may be NULL.
 * PGRES_FATAL_ERROR when there is no result. */
ExecStatusType pg_read_one(PGconn *conn, PGresult **keep);

/* True when the result's SQLSTATE equals code. */
bool pg_result_is(const PGresult *res, const char *code);

/* Big-endian integers appended to a buffer (common/buf.h), for binary
 * parameters; 0 or -ENOMEM. */
int pg_buf_put_be32(struct buf *b, uint32_t v);
int pg_buf_put_be64(struct buf *b, uint64_t v);

/* One-dimensional binary arrays: begin, add n elements, end (which patches the
 * element count and null flag). add_null stores SQL NULL. */
struct pg_array {
	struct buf *buf;
	size_t start;
	uint32_t count;
	bool has_null;
};
int pg_array_begin(struct pg_array *a, struct buf *buf, uint32_t elem_oid);
int pg_array_add_int8(struct pg_array *a, int64_t v);
int pg_array_add_text(struct pg_array *a, const char *s, size_t len);
int pg_array_add_null(struct pg_array *a);
void pg_array_end(struct pg_array *a);
/* n arrays at once: a[i] of elem[i] begun in bufs[i] (emptied first), 0 or
 * -ENOMEM; then ended, each the binary parameter values[i], lengths[i]. */
int pg_arrays_begin(struct pg_array *a, struct buf *bufs, const uint32_t *elem, int n);
void pg_arrays_params(struct pg_array *a, int n, const char **values, int *lengths, int *formats);

/* Decodes a big-endian binary int8 field. */
int64_t pg_get_int8(const PGresult *res, int row, int col);
