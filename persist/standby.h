/* SPDX-License-Identifier: BSD-3-Clause */
/* A history reader thread's second connection, to a standby named by
 * [postgres] read_dsn, kept apart from the primary's: it is optional, it
 * must never hold a page up, and it may land on a primary. Connecting is
 * tried at most once per STANDBY_RETRY_MS; while there is no connection
 * the reader simply reads on the primary. */
#pragma once

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#define STANDBY_RETRY_MS 5000
/* With no standby up, read_dsn may reach a primary (prefer-standby): that
 * connection is dropped after this long, so a standby that came back is
 * found again. */
#define STANDBY_ON_PRIMARY_MS 30000

struct standby {
	const char *dsn; /* NULL or "": no standby reads */
	PGconn *conn;
	bool on_primary;      /* the connection reached a server not in recovery */
	uint64_t retry_at_ns; /* no connection attempt before this */
	uint64_t drop_at_ns;  /* on_primary: look for a standby again after this */
};

/* The connection to read on, connecting when due; NULL when there is none
 * now (no read_dsn, or the last attempt failed less than
 * STANDBY_RETRY_MS ago). */
PGconn *standby_conn(struct standby *sb);

/* Drops the connection after a failed query; the next attempt waits. */
void standby_lost(struct standby *sb);

void standby_close(struct standby *sb);
