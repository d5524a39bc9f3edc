/* SPDX-License-Identifier: BSD-3-Clause */
/* Applies the embedded schema migrations; see migrate.h. */
#define LOG_COMPONENT "migrate"
#include "migrate.h"

#include "log.h"
#include "pg.h"

#include <libpq-fe.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The advisory lock key: any constant shared by every fanoutd. */
#define MIGRATE_LOCK_KEY "7305918274"

void migrate_checksum(const char *sql, char out[17])
{
	uint64_t h = 1469598103934665603ull;

	for (const unsigned char *p = (const unsigned char *)sql; *p; p++) {
		h ^= *p;
		h *= 1099511628211ull;
	}
	snprintf(out, 17, "%016" PRIx64, h);
}

static int exec_ok(PGconn *conn, const char *sql, char *err, size_t err_size)
{
	PGresult *res = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(res);
	int rc = 0;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		snprintf(err, err_size, "%s", PQresultErrorMessage(res));
		err[strcspn(err, "\n")] = '\0';
		rc = -EIO;
	}
	PQclear(res);
	return rc;
}

static int apply_one(PGconn *conn, const struct migration *m, char *err, size_t err_size)
{
	char version[16], checksum[17], reason[512];
	const char *params[3] = {version, m->name, checksum};
	PGresult *res;

	snprintf(version, sizeof(version), "%d", m->version);
	migrate_checksum(m->sql, checksum);
	if (exec_ok(conn, "BEGIN", reason, sizeof(reason)) < 0)
		goto fail;
	if (exec_ok(conn, m->sql, reason, sizeof(reason)) < 0)
		goto rollback;
	res = PQexecParams(conn,
			   "INSERT INTO schema_migrations (version, name, checksum) "
			   "VALUES ($1, $2, $3)",
			   3, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		snprintf(reason, sizeof(reason), "%s", PQresultErrorMessage(res));
		PQclear(res);
		goto rollback;
	}
	PQclear(res);
	if (exec_ok(conn, "COMMIT", reason, sizeof(reason)) < 0)
		goto fail;
	LOG(NOTICE, "applied migration %s", m->name);
	return 0;
rollback:
	PQclear(PQexec(conn, "ROLLBACK"));
fail:
	reason[strcspn(reason, "\n")] = '\0';
	snprintf(err, err_size, "migration %s failed: %s", m->name, reason);
	return -EIO;
}

int migrate_apply(PGconn *conn, char *err, size_t err_size)
{
	PGresult *res = NULL;
	int applied = 0, rc;
	bool *done = NULL;

	if (exec_ok(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", err, err_size) < 0)
		return -EIO;
	rc = exec_ok(conn,
		     "CREATE TABLE IF NOT EXISTS schema_migrations ("
		     " version int PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
		     " applied_at timestamptz NOT NULL DEFAULT now())",
		     err, err_size);
	if (rc < 0)
		goto out;
	res =
	    PQexec(conn, "SELECT version, name, checksum FROM schema_migrations ORDER BY version");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		snprintf(err, err_size, "cannot read schema_migrations: %s",
			 PQresultErrorMessage(res));
		rc = -EIO;
		goto out;
	}
	done = calloc((size_t)migrations_count + 1, sizeof(*done));
	if (done == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (int row = 0; row < PQntuples(res); row++) {
		int version = atoi(PQgetvalue(res, row, 0));
		char expected[17];

		if (version < 1 || version > migrations_count) {
			snprintf(err, err_size,
				 "database has migration %d (%s) that this fanoutd does not know; "
				 "it is older than the schema",
				 version, PQgetvalue(res, row, 1));
			rc = -EIO;
			goto out;
		}
		migrate_checksum(migrations[version - 1].sql, expected);
		if (strcmp(expected, PQgetvalue(res, row, 2)) != 0) {
			snprintf(err, err_size,
				 "migration %s was applied with different text (checksum %s, now "
				 "%s); migrations must never be edited once released",
				 migrations[version - 1].name, PQgetvalue(res, row, 2), expected);
			rc = -EIO;
			goto out;
		}
		done[version] = true;
	}
	for (int i = 0; i < migrations_count; i++) {
		if (done[migrations[i].version])
			continue;
		rc = apply_one(conn, &migrations[i], err, err_size);
		if (rc < 0)
			goto out;
		applied++;
	}
	rc = applied;
out:
	PQclear(res);
	free(done);
	PQclear(PQexec(conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")"));
	return rc;
}

int migrate_check(PGconn *conn)
{
	PGresult *res = PQexec(conn, "SELECT count(*) FROM schema_migrations");
	int rc;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = pg_result_is(res, "42P01") ? -EAGAIN : -EIO; /* undefined_table */
	else
		rc = atoi(PQgetvalue(res, 0, 0)) >= migrations_count ? 0 : -EAGAIN;
	PQclear(res);
	return rc;
}

int migrate_dsn(const char *dsn, bool allow_unsafe, char *err, size_t err_size)
{
	PGconn *conn = pg_connect(dsn, allow_unsafe, err, err_size);
	int rc;

	if (conn == NULL)
		return -EIO;
	rc = migrate_apply(conn, err, err_size);
	PQfinish(conn);
	return rc;
}
