/* SPDX-License-Identifier: BSD-3-Clause */
/* PostgreSQL connection helpers and binary parameter encoding. */
#define LOG_COMPONENT "persist"
#include "pg.h"

#include "log.h"

#include <libpq-fe.h>
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int check_setting(PGconn *conn, const char *name, char *value, size_t size)
{
	const char *params[1] = {name};
	PGresult *res =
	    PQexecParams(conn, "SELECT current_setting($1)", 1, NULL, params, NULL, NULL, 0);
	int rc = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		rc = -EIO;
	else
		snprintf(value, size, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return rc;
}

/* Server notices ("relation already exists, skipping") go to our log, not
 * raw to stderr where they would break JSON lines. */
static void on_notice(void *arg, const char *message)
{
	int n = (int)strcspn(message, "\n");
	LOG(DEBUG, "postgres: %.*s", n, message);
}

bool pg_in_recovery(PGconn *conn)
{
	PGresult *r = PQexec(conn, "SELECT pg_is_in_recovery()");
	bool yes = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
		   strcmp(PQgetvalue(r, 0, 0), "t") == 0;

	PQclear(r);
	return yes;
}

bool pg_conn_dead(PGconn *conn)
{
	struct pollfd p = {.fd = PQsocket(conn), .events = POLLIN};

	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
		return true;
	/* An idle connection has nothing to read but what the server says on
	 * its own: a FATAL as it shuts down, then EOF, which a later read
	 * finds (or a parameter report, which leaves it alive). */
	for (int i = 0; i < 4 && poll(&p, 1, 0) > 0; i++)
		if (!PQconsumeInput(conn) || PQstatus(conn) != CONNECTION_OK)
			return true;
	return false;
}

PGconn *pg_connect_named(const char *dsn, const char *name)
{
	char app[64];
	const char *keys[] = {"dbname", "fallback_application_name", NULL};
	const char *values[] = {dsn, app, NULL};

	snprintf(app, sizeof(app), "fanout %s", name);
	return PQconnectdbParams(keys, values, 1);
}

PGconn *pg_connect(const char *dsn, bool allow_unsafe, char *err, size_t err_size)
{
	return pg_connect_as(dsn, "fanoutd", allow_unsafe, err, err_size);
}

PGconn *pg_connect_as(const char *dsn, const char *who, bool allow_unsafe, char *err,
		      size_t err_size)
{
	char sync_commit[32], fsync[32];
	PGconn *conn = pg_connect_named(dsn, who);

	PQsetNoticeProcessor(conn, on_notice, NULL);
	if (PQstatus(conn) != CONNECTION_OK) {
		const char *msg = PQerrorMessage(conn);

		/* libpq's messages end with a newline; logs want one line. */
		snprintf(err, err_size, "cannot connect to PostgreSQL ([postgres] dsn): %.*s%s",
			 (int)strcspn(msg, "\n"), msg,
			 strstr(msg, "read-only") ? " (no host of the DSN accepts writes: standbys "
						    "only? name the primary too)"
						  : "");
		goto fail;
	}
	if (pg_in_recovery(conn)) {
		snprintf(err, err_size,
			 "PostgreSQL at %s:%s is a standby (read-only): fanoutd writes; name the "
			 "primary in [postgres] dsn, or every member with "
			 "target_session_attrs=read-write",
			 PQhost(conn), PQport(conn));
		goto fail;
	}
	if (check_setting(conn, "synchronous_commit", sync_commit, sizeof(sync_commit)) < 0 ||
	    check_setting(conn, "fsync", fsync, sizeof(fsync)) < 0) {
		snprintf(err, err_size, "cannot read durability settings: %s",
			 PQerrorMessage(conn));
		goto fail;
	}
	/* Every value but "off" flushes the commit record to local disk before
	 * COMMIT returns, which is what "durable before ack" needs. */
	if (strcmp(sync_commit, "off") == 0 || strcmp(fsync, "on") != 0) {
		if (!allow_unsafe) {
			snprintf(err, err_size,
				 "PostgreSQL commits are not durable (synchronous_commit=%s, "
				 "fsync=%s); set synchronous_commit=on and fsync=on, or set "
				 "[postgres] allow_unsafe_commit = true to accept losing acked "
				 "messages on a crash",
				 sync_commit, fsync);
			goto fail;
		}
		LOG(WARN, "running with non-durable commits (synchronous_commit=%s, fsync=%s)",
		    sync_commit, fsync);
	}
	return conn;
fail:
	PQfinish(conn);
	return NULL;
}

PGconn *pg_connect_retry(const char *dsn, bool allow_unsafe, int max_ms, atomic_bool *stop,
			 const char *who)
{
	int delay_ms = 50;
	char err[512];

	while (!atomic_load(stop)) {
		PGconn *conn = pg_connect_as(dsn, who, allow_unsafe, err, sizeof(err));
		if (conn != NULL)
			return conn;
		LOG(WARN, "%s: %s; retrying in %d ms", who, err, delay_ms);
		for (int slept = 0; slept < delay_ms && !atomic_load(stop); slept += 10) {
			struct timespec ts = {0, 10 * 1000000L};
			nanosleep(&ts, NULL);
		}
		delay_ms = delay_ms * 2 > max_ms ? max_ms : delay_ms * 2;
	}
	return NULL;
}

int pg_flush(PGconn *conn)
{
	int rc;

	while ((rc = PQflush(conn)) == 1) {
		struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN | POLLOUT};

		if (poll(&pfd, 1, 1000) < 0 && errno != EINTR)
			return -EIO;
		if ((pfd.revents & POLLIN) && PQconsumeInput(conn) == 0)
			return -EIO;
	}
	return rc == 0 ? 0 : -EIO;
}

void pg_wait_readable(PGconn *conn)
{
	struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};

	if (pfd.fd >= 0 && poll(&pfd, 1, 1000) < 0 && errno != EINTR)
		LOG(WARN, "poll on a PostgreSQL connection: %s", strerror(errno));
}

ExecStatusType pg_read_one(PGconn *conn, PGresult **keep)
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

bool pg_result_is(const PGresult *res, const char *code)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	return state != NULL && strcmp(state, code) == 0;
}

PGresult *pg_exec_prepared(PGconn *conn, const char *name, const char *sql, int n, const Oid *types,
			   const char *const *values, const int *lengths, const int *formats,
			   int result_format)
{
	PGresult *res = PQexecPrepared(conn, name, n, values, lengths, formats, result_format);

	if (!pg_result_is(res, PG_SQLSTATE_NO_SUCH_STATEMENT))
		return res;
	PQclear(res);
	/* Generic plans for this connection's prepared statements: planned
	 * once, partitions pruned at run time. PostgreSQL's own choice ("auto")
	 * keeps planning a partitioned page each time (docs/benchmarks.md). */
	PQclear(PQexec(conn, "SET plan_cache_mode = force_generic_plan"));
	res = PQprepare(conn, name, sql, n, types);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		return res;
	PQclear(res);
	return PQexecPrepared(conn, name, n, values, lengths, formats, result_format);
}

PGresult *pg_exec_custom(PGconn *conn, const char *sql, int n, const char *const *values)
{
	/* pg_exec_prepared() set force_generic_plan on the connection, and
	 * PostgreSQL applies it to unnamed statements too: SET LOCAL undoes it
	 * for this statement's own transaction only. */
	PGresult *res =
	    PQexec(conn, "BEGIN READ ONLY; SET LOCAL plan_cache_mode = force_custom_plan");

	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		return res;
	PQclear(res);
	res = PQexecParams(conn, sql, n, NULL, values, NULL, NULL, 0);
	PQclear(PQexec(conn, "COMMIT")); /* after a failure, a rollback */
	return res;
}

int pg_buf_put_be32(struct buf *b, uint32_t v)
{
	v = htobe32(v);
	return buf_put(b, &v, sizeof(v));
}

int pg_buf_put_be64(struct buf *b, uint64_t v)
{
	v = htobe64(v);
	return buf_put(b, &v, sizeof(v));
}

/* Binary array layout: ndim, has-null flag, element OID, then per dimension
 * its length and lower bound, then each element as length + bytes (-1: NULL). */
int pg_array_begin(struct pg_array *a, struct buf *buf, uint32_t elem_oid)
{
	a->buf = buf;
	a->start = buf->len;
	a->count = 0;
	a->has_null = false;
	if (pg_buf_put_be32(buf, 1) || pg_buf_put_be32(buf, 0) || pg_buf_put_be32(buf, elem_oid) ||
	    pg_buf_put_be32(buf, 0) || pg_buf_put_be32(buf, 1))
		return -ENOMEM;
	return 0;
}

int pg_array_add_int8(struct pg_array *a, int64_t v)
{
	a->count++;
	if (pg_buf_put_be32(a->buf, 8) || pg_buf_put_be64(a->buf, (uint64_t)v))
		return -ENOMEM;
	return 0;
}

int pg_array_add_text(struct pg_array *a, const char *s, size_t len)
{
	a->count++;
	if (pg_buf_put_be32(a->buf, (uint32_t)len) || buf_put(a->buf, s, len))
		return -ENOMEM;
	return 0;
}

int pg_array_add_null(struct pg_array *a)
{
	a->count++;
	a->has_null = true;
	return pg_buf_put_be32(a->buf, UINT32_MAX);
}

void pg_array_end(struct pg_array *a)
{
	uint32_t flag = htobe32(a->has_null ? 1 : 0), count = htobe32(a->count);

	memcpy(a->buf->data + a->start + 4, &flag, 4);
	memcpy(a->buf->data + a->start + 12, &count, 4);
}

int pg_arrays_begin(struct pg_array *a, struct buf *bufs, const uint32_t *elem, int n)
{
	for (int i = 0; i < n; i++) {
		buf_reset(&bufs[i]);
		if (pg_array_begin(&a[i], &bufs[i], elem[i]) < 0)
			return -ENOMEM;
	}
	return 0;
}

void pg_arrays_params(struct pg_array *a, int n, const char **values, int *lengths, int *formats)
{
	for (int i = 0; i < n; i++) {
		pg_array_end(&a[i]);
		values[i] = a[i].buf->data;
		lengths[i] = (int)a[i].buf->len;
		formats[i] = 1;
	}
}

int64_t pg_get_int8(const PGresult *res, int row, int col)
{
	uint64_t v;

	memcpy(&v, PQgetvalue(res, row, col), sizeof(v));
	return (int64_t)be64toh(v);
}
