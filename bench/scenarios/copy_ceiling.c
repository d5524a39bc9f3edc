/* SPDX-License-Identifier: BSD-3-Clause */
/* The persist writer's ceiling for `fanout-bench persist`: one COPY of rows of
 * the messages' shape into a scratch table with the same columns and keys
 * (primary key, the idempotency key, the thread index, the mentions: none,
 * as the writer's COPY gives a body without an '@'), committed durably,
 * on the same PostgreSQL in the same run. What the writer reaches is read as
 * a fraction of it: a COPY pays for the rows, the indexes and the WAL, none of
 * the fence, the sequencing, the dedup or the round trips. */
#include "bench.h"

#include "clock.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool ok(PGconn *conn, PGresult *res, ExecStatusType want)
{
	bool good = PQresultStatus(res) == want;

	if (!good)
		fprintf(stderr, "fanout-bench: copy ceiling: %s", PQerrorMessage(conn));
	PQclear(res);
	return good;
}

/* Sends rows lines of the messages' shape into the COPY in progress. */
static bool copy_rows(PGconn *conn, int rows, int channels, int body_bytes, bool text)
{
	char *body = malloc((size_t)body_bytes + 1), *line = malloc((size_t)body_bytes + 160);
	int64_t *heads = calloc((size_t)channels, sizeof(*heads));
	bool good = body && line && heads;

	if (good) {
		memset(body, 'b', (size_t)body_bytes);
		body[body_bytes] = '\0';
	}
	for (int i = 0; good && i < rows; i++) {
		int ch = i % channels, n;

		if (text)
			bench_text_body(body, body_bytes, i);

		n = snprintf(line, (size_t)body_bytes + 160,
			     "%d\t%lld\t%d\tmessage\t%s\tc%d-%d\t2026-12-05 00:00:00+00\t{}\n",
			     1 + ch, (long long)++heads[ch], 1 + i % 4, body, getpid(), i);
		good = PQputCopyData(conn, line, n) == 1;
	}
	free(body);
	free(line);
	free(heads);
	return PQputCopyEnd(conn, good ? NULL : "out of memory") == 1 && good;
}

double bench_copy_ceiling(struct pg_conn *conn, int rows, int channels, int body_bytes, bool text,
			  double *backend_cores)
{
	char table[64], sql[512];
	uint64_t start;
	double seconds = -1, cpu0;

	snprintf(table, sizeof(table), "bench_copy_ceiling_%d", getpid());
	snprintf(sql, sizeof(sql), "CREATE TABLE %s (LIKE messages INCLUDING ALL)", table);
	if (!ok(conn, PQexec(conn, sql), PGRES_COMMAND_OK))
		return -1;
	cpu0 = bench_pg_backend_cpu_s(PQbackendPID(conn));
	start = time_mono_ns();
	snprintf(sql, sizeof(sql),
		 "COPY %s (channel_id, seq, author_id, kind, body, client_msg_id, created_at, "
		 "mentions) FROM STDIN",
		 table);
	if (ok(conn, PQexec(conn, "BEGIN"), PGRES_COMMAND_OK) &&
	    ok(conn, PQexec(conn, sql), PGRES_COPY_IN) &&
	    copy_rows(conn, rows, channels, body_bytes, text) &&
	    ok(conn, PQgetResult(conn), PGRES_COMMAND_OK) &&
	    ok(conn, PQexec(conn, "COMMIT"), PGRES_COMMAND_OK)) {
		seconds = (double)(time_mono_ns() - start) / 1e9;
		*backend_cores =
		    cpu0 < 0 ? -1 : (bench_pg_backend_cpu_s(PQbackendPID(conn)) - cpu0) / seconds;
	} else {
		PGresult *res;

		while ((res = PQgetResult(conn)) != NULL) /* what a failure left */
			PQclear(res);
		PQclear(PQexec(conn, "ROLLBACK"));
	}
	snprintf(sql, sizeof(sql), "DROP TABLE %s", table);
	ok(conn, PQexec(conn, sql), PGRES_COMMAND_OK);
	return seconds > 0 ? rows / seconds : -1;
}
