/* SPDX-License-Identifier: BSD-3-Clause */
/* The history reader's standby connection; see standby.h. */
#define LOG_COMPONENT "persist"
#include "standby.h"

#include "clock.h"
#include "log.h"
#include "pg.h"

#include <string.h>

static void connect_now(struct standby *sb, uint64_t now)
{
	PGconn *conn = pg_connect_named(sb->dsn, "standby reader");

	if (PQstatus(conn) != CONNECTION_OK) {
		const char *msg = PQerrorMessage(conn);

		LOG(WARN, "reader: no standby ([postgres] read_dsn): %.*s; reading on the primary",
		    (int)strcspn(msg, "\n"), msg);
		PQfinish(conn);
		sb->retry_at_ns = now + STANDBY_RETRY_MS * 1000000ull;
		return;
	}
	sb->conn = conn;
	sb->on_primary = !pg_in_recovery(conn);
	sb->drop_at_ns = now + STANDBY_ON_PRIMARY_MS * 1000000ull;
	LOG(INFO, "reader: read_dsn reached %s:%s, %s", PQhost(conn), PQport(conn),
	    sb->on_primary ? "a primary (no standby up)" : "a standby");
}

PGconn *standby_conn(struct standby *sb)
{
	uint64_t now = time_mono_ns();

	if (sb->dsn == NULL || sb->dsn[0] == '\0')
		return NULL;
	if (sb->conn && sb->on_primary && now >= sb->drop_at_ns)
		standby_close(sb);
	if (sb->conn && pg_conn_dead(sb->conn))
		standby_lost(sb);
	if (sb->conn == NULL && now >= sb->retry_at_ns)
		connect_now(sb, now);
	return sb->conn;
}

void standby_lost(struct standby *sb)
{
	standby_close(sb);
	sb->retry_at_ns = time_mono_ns() + STANDBY_RETRY_MS * 1000000ull;
}

void standby_close(struct standby *sb)
{
	PQfinish(sb->conn);
	sb->conn = NULL;
	sb->on_primary = false;
}
