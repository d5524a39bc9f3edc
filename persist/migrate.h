/* Schema migrations: the ordered SQL files of persist/migrations/, embedded in
 * the binary at build time, applied once each and recorded with a checksum in
 * schema_migrations. Several nodes starting together serialize on an advisory
 * lock; an applied migration whose text has since changed stops start-up. */
#pragma once

#include <libpq-fe.h>
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
int migrate_apply(PGconn *conn, char *err, size_t err_size);

/* 0 when every known migration is applied; -EAGAIN when some are missing;
 * -EIO when the database cannot be asked. For readiness checks. */
int migrate_check(PGconn *conn);

/* The checksum recorded for a migration's text (FNV-1a 64, hex). */
void migrate_checksum(const char *sql, char out[17]);
