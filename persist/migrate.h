/* SPDX-License-Identifier: BSD-3-Clause */
/* Schema migrations: the ordered SQL files of persist/migrations/, embedded in
 * the binary at build time, applied once each and recorded with a checksum in
 * schema_migrations. Several nodes starting together serialize on an advisory
 * lock; an applied migration whose text has since changed stops start-up. */
#pragma once

/* libpq's PGconn, without its header: callers outside persist/ never see libpq. */
struct pg_conn;

#include <stdbool.h>
#include <stddef.h>

struct migration {
	int version;
	const char *name;
	const char *sql;
};

extern const struct migration migrations[];
extern const int migrations_count;

/* Applies every missing migration, each in its own transaction. Returns the
 * number applied (>= 0), or -EIO with a reason in err (a failed statement, a
 * checksum mismatch, or a database newer than this binary). */
int migrate_apply(struct pg_conn *conn, char *err, size_t err_size);

/* 0 when every known migration is applied; -EAGAIN when some are missing;
 * -EIO when the database cannot be asked. For readiness checks. */
int migrate_check(struct pg_conn *conn);

/* The checksum recorded for a migration's text (FNV-1a 64, hex). */
void migrate_checksum(const char *sql, char out[17]);

/* Connects to dsn (refusing non-durable settings unless allow_unsafe),
 * applies the missing migrations and disconnects. Returns how many were
 * applied now, or -errno with the reason in err. */
int migrate_dsn(const char *dsn, bool allow_unsafe, char *err, size_t err_size);
