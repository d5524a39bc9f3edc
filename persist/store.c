/* SPDX-License-Identifier: BSD-3-Clause */
/* The store's statements: see store.h. Parameters go as text, one
 * PQexecParams each; results are copied into the caller's structs, so no
 * PGresult leaves this file. */
#define LOG_COMPONENT "store"
#include "store.h"

#include "log.h"
#include "pg.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* res when it holds rows or a command's success; otherwise NULL, with the
 * error logged after what and res cleared. */
static PGresult *checked(PGresult *res, const char *what)
{
	ExecStatusType st = PQresultStatus(res);

	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return res;
	LOG(WARN, "%s: %s", what, res ? PQresultErrorMessage(res) : "no connection");
	PQclear(res);
	return NULL;
}

/* Runs sql with text parameters; the result, or NULL (logged) on error. */
static PGresult *run(PGconn *conn, const char *what, const char *sql, int n,
		     const char *const *params)
{
	return checked(conn ? PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0) : NULL, what);
}

/* As run(), as the prepared statement name (pg_exec_prepared) with
 * parameters of the given types. */
static PGresult *run_prepared(PGconn *conn, const char *what, const char *name, const char *sql,
			      int n, const Oid *types, const char *const *params)
{
	return checked(
	    conn ? pg_exec_prepared(conn, name, sql, n, types, params, NULL, NULL, 0) : NULL, what);
}

/* An array for res's rows (one more, so never a zero-size allocation); NULL,
 * with res cleared, when there is no memory. */
static void *rows_alloc(PGresult *res, size_t size)
{
	void *rows = calloc((size_t)PQntuples(res) + 1, size);

	if (rows == NULL)
		PQclear(res);
	return rows;
}

static void id_text(char out[24], int64_t v)
{
	snprintf(out, 24, "%lld", (long long)v);
}

int64_t store_user_ensure(PGconn *conn, const char *name)
{
	const char *params[1] = {name};
	int64_t id = -1;

	/* Two sign-ins of a new user can race: the loser's INSERT waits for the
	 * winner and does nothing, but its SELECT still sees the statement's
	 * old snapshot. A second statement (a new snapshot) sees the row. */
	for (int attempt = 0; attempt < 2 && id < 0; attempt++) {
		PGresult *res = run(
		    conn, "cannot load a user",
		    attempt == 0
			? "WITH u AS (INSERT INTO users (name) VALUES ($1) ON CONFLICT DO "
			  "NOTHING RETURNING id), g AS (INSERT INTO channel_members (channel_id, "
			  "user_id) SELECT c.id, u.id FROM channels c, u WHERE c.name = 'general' "
			  "RETURNING 1) SELECT id FROM u UNION ALL SELECT id FROM users WHERE name "
			  "= $1"
			: "SELECT id FROM users WHERE name = $1",
		    1, params);

		if (res && PQntuples(res) > 0)
			id = atoll(PQgetvalue(res, 0, 0));
		PQclear(res);
	}
	return id < 0 && store_user_find(conn, name, NULL) > 0 ? -EEXIST : id;
}

/* The user's channels for hello: DMs are named after the other user;
 * unread counts others' top-level messages after the cursor, up to 1000 (a
 * badge needs no more); mentions counts others' messages and replies after
 * the cursor that name the user or @channel (0010), among the newest 5000
 * that name anyone (0011 indexes those). Each channel is found by its key
 * (the LATERAL, kept out of the join by OFFSET 0): as a plain join, the
 * generic plan read channels whole at every hello on tables not analyzed
 * yet (a database restored a moment ago), and on analyzed ones from about
 * a thousand channels to about four thousand (docs/benchmarks.md, "The
 * hello's channels found by key"). */
#define CHANNELS_SQL                                                                               \
	"WITH me AS (SELECT ARRAY[lower(name), 'channel'] AS names FROM users WHERE id = $1)"      \
	" SELECT c.id, c.name, c.kind, c.last_seq, m.last_read_seq, m.role,"                       \
	" (SELECT count(*) FROM (SELECT 1 FROM messages x WHERE x.channel_id = c.id"               \
	"  AND x.seq > m.last_read_seq AND x.kind = 'message' AND x.parent_seq IS NULL"            \
	"  AND x.author_id <> $1 AND x.deleted_at IS NULL LIMIT 1000) n),"                         \
	" CASE WHEN c.kind = 'dm' THEN (SELECT u.name FROM channel_members o JOIN users u"         \
	"  ON u.id = o.user_id WHERE o.channel_id = c.id AND o.user_id <> $1 LIMIT 1) END,"        \
	" (SELECT count(*) FROM (SELECT x.mentions, x.author_id, x.deleted_at FROM messages x"     \
	"  WHERE x.channel_id = c.id AND x.seq > m.last_read_seq AND cardinality(x.mentions) > 0"  \
	"  ORDER BY x.seq DESC LIMIT 5000) "                                                       \
	"t"                                                                                        \
	"  WHERE t.mentions && (SELECT names FROM me) AND t.author_id <> $1"                       \
	"  AND t.deleted_at IS NULL)"                                                              \
	" FROM channel_members m CROSS JOIN LATERAL (SELECT c.id, c.name, c.kind, c.last_seq"      \
	"  FROM channels c WHERE c.id = m.channel_id OFFSET 0) c WHERE m.user_id = $1"             \
	" ORDER BY c.id"

int store_user_channels(PGconn *conn, int64_t user, struct store_channel **out, int *n)
{
	static const Oid types[1] = {PG_OID_INT8};
	char u[24];
	const char *params[1] = {u};
	PGresult *res;

	*out = NULL;
	*n = 0;
	id_text(u, user);
	/* Prepared: at every hello, planning this over the partitions cost more
	 * than running it (docs/benchmarks.md, "The hello's cost"). */
	res = run_prepared(conn, "cannot load a user's channels", "fanout_user_channels",
			   CHANNELS_SQL, 1, types, params);
	if (res == NULL)
		return -EIO;
	*out = rows_alloc(res, sizeof(**out));
	if (*out == NULL)
		return -ENOMEM;
	for (int r = 0; r < PQntuples(res); r++) {
		struct store_channel *c = &(*out)[r];

		c->id = atoll(PQgetvalue(res, r, 0));
		snprintf(c->name, sizeof(c->name), "%s", PQgetvalue(res, r, 1));
		snprintf(c->kind, sizeof(c->kind), "%s", PQgetvalue(res, r, 2));
		c->last_seq = atoll(PQgetvalue(res, r, 3));
		c->last_read_seq = atoll(PQgetvalue(res, r, 4));
		snprintf(c->role, sizeof(c->role), "%s", PQgetvalue(res, r, 5));
		c->unread = atoll(PQgetvalue(res, r, 6));
		snprintf(c->peer, sizeof(c->peer), "%s", PQgetvalue(res, r, 7));
		c->mentions = atoll(PQgetvalue(res, r, 8));
	}
	*n = PQntuples(res);
	PQclear(res);
	return 0;
}

int store_channel_access(PGconn *conn, int64_t channel, int64_t user, char kind[STORE_KIND_MAX],
			 bool *member)
{
	char c[24], u[24];
	const char *params[2] = {c, u};
	PGresult *res;
	int rc = -ENOENT;

	id_text(c, channel);
	id_text(u, user);
	res = run(conn, "cannot check a channel's access",
		  "SELECT c.kind, EXISTS (SELECT 1 FROM channel_members m WHERE m.channel_id = "
		  "c.id AND m.user_id = $2) FROM channels c WHERE c.id = $1",
		  2, params);
	if (res == NULL)
		return -EIO;
	if (PQntuples(res) == 1) {
		snprintf(kind, STORE_KIND_MAX, "%s", PQgetvalue(res, 0, 0));
		*member = PQgetvalue(res, 0, 1)[0] == 't';
		rc = (*member || strcmp(kind, "public") == 0 || strcmp(kind, "ephemeral") == 0)
			 ? 0
			 : -ENOENT;
	}
	PQclear(res);
	return rc;
}

int store_channel_create(PGconn *conn, const char *name, const char *kind, int64_t creator,
			 struct store_channel *out)
{
	char u[24];
	const char *params[3] = {name, kind, u};
	PGresult *res;
	int rc;

	id_text(u, creator);
	res = run(conn, "cannot create a channel",
		  "WITH c AS (INSERT INTO channels (name, kind, created_by) VALUES ($1, $2, $3) "
		  "ON CONFLICT (name) DO NOTHING RETURNING id, name, kind), m AS (INSERT INTO "
		  "channel_members (channel_id, user_id, role) SELECT id, $3, 'admin' FROM c) "
		  "SELECT id, name, kind FROM c",
		  3, params);
	if (res == NULL)
		return -EIO;
	rc = PQntuples(res) == 1;
	if (rc) {
		memset(out, 0, sizeof(*out));
		out->id = atoll(PQgetvalue(res, 0, 0));
		snprintf(out->name, sizeof(out->name), "%s", PQgetvalue(res, 0, 1));
		snprintf(out->kind, sizeof(out->kind), "%s", PQgetvalue(res, 0, 2));
		snprintf(out->role, sizeof(out->role), "admin");
	}
	PQclear(res);
	return rc;
}

/* sql run with $1 the channel and $2 the user. */
static PGresult *run_member(PGconn *conn, const char *what, const char *sql, int64_t channel,
			    int64_t user)
{
	char c[24], u[24];
	const char *params[2] = {c, u};

	id_text(c, channel);
	id_text(u, user);
	return run(conn, what, sql, 2, params);
}

static int member_change(PGconn *conn, int64_t channel, int64_t user, const char *sql)
{
	PGresult *res = run_member(conn, "cannot change a channel's members", sql, channel, user);
	int rc;

	if (res == NULL)
		return -EIO;
	rc = atoi(PQcmdTuples(res)) > 0;
	PQclear(res);
	return rc;
}

int store_member_add(PGconn *conn, int64_t channel, int64_t user)
{
	return member_change(conn, channel, user,
			     "INSERT INTO channel_members (channel_id, user_id) VALUES ($1, $2) ON "
			     "CONFLICT DO NOTHING");
}

int store_member_remove(PGconn *conn, int64_t channel, int64_t user)
{
	return member_change(conn, channel, user,
			     "DELETE FROM channel_members WHERE channel_id = $1 AND user_id = $2");
}

int store_members_list(PGconn *conn, int64_t channel, struct store_member **out, int *n)
{
	char c[24];
	const char *params[1] = {c};
	PGresult *res;

	*out = NULL;
	*n = 0;
	id_text(c, channel);
	res = run(conn, "cannot list a channel's members",
		  "SELECT u.name, m.role FROM channel_members m JOIN users u ON u.id = m.user_id "
		  "WHERE m.channel_id = $1 ORDER BY u.name LIMIT 10000",
		  1, params);
	if (res == NULL)
		return -EIO;
	*out = rows_alloc(res, sizeof(**out));
	if (*out == NULL)
		return -ENOMEM;
	for (int r = 0; r < PQntuples(res); r++) {
		snprintf((*out)[r].name, sizeof((*out)[r].name), "%s", PQgetvalue(res, r, 0));
		snprintf((*out)[r].role, sizeof((*out)[r].role), "%s", PQgetvalue(res, r, 1));
	}
	*n = PQntuples(res);
	PQclear(res);
	return 0;
}

int store_channel_admin(PGconn *conn, int64_t channel, int64_t user)
{
	PGresult *res = run_member(conn, "cannot read a member's role",
				   "SELECT 1 FROM channel_members WHERE channel_id = $1 AND "
				   "user_id = $2 AND role = 'admin'",
				   channel, user);
	int rc;

	if (res == NULL)
		return -EIO;
	rc = PQntuples(res) == 1;
	PQclear(res);
	return rc;
}

int64_t store_user_find(PGconn *conn, const char *name, char found[STORE_NAME_MAX])
{
	const char *params[1] = {name};
	/* The name as written, else the one that equals it but for case
	 * (unique among names held to it: migration 0009). */
	PGresult *res =
	    run(conn, "cannot find a user",
		"SELECT id, name FROM users WHERE name = $1 OR (lower(name) = lower($1) "
		"AND NOT name_fold_exempt) ORDER BY name = $1 DESC LIMIT 1",
		1, params);
	int64_t id;

	if (res == NULL)
		return -EIO;
	id = PQntuples(res) == 1 ? atoll(PQgetvalue(res, 0, 0)) : -ENOENT;
	if (found && id > 0)
		snprintf(found, STORE_NAME_MAX, "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	return id;
}

/* A LIKE pattern that matches text literally, then anything: names hold
 * '_', LIKE's any-one-character. */
static void like_prefix(char *out, size_t n, const char *text)
{
	size_t k = 0;

	for (; *text && k + 3 < n; text++) {
		if (*text == '_' || *text == '%' || *text == '\\')
			out[k++] = '\\';
		out[k++] = *text;
	}
	out[k++] = '%';
	out[k] = '\0';
}

/* The (name, display_name) rows of res into out. */
static int users_of(PGresult *res, int limit, struct store_user *out, int *n)
{
	*n = 0;
	if (res == NULL)
		return -EIO;
	for (int r = 0; r < PQntuples(res) && r < limit; r++, (*n)++) {
		snprintf(out[*n].name, sizeof(out[*n].name), "%s", PQgetvalue(res, r, 0));
		snprintf(out[*n].display, sizeof(out[*n].display), "%s", PQgetvalue(res, r, 1));
	}
	PQclear(res);
	return 0;
}

int store_users_search(PGconn *conn, const char *prefix, int limit, struct store_user *out, int *n)
{
	char pattern[2 * STORE_NAME_MAX + 2], lim[16];
	const char *params[2] = {pattern, lim};

	like_prefix(pattern, sizeof(pattern), prefix);
	snprintf(lim, sizeof(lim), "%d", limit);
	return users_of(run(conn, "cannot search users",
			    "SELECT name, display_name FROM users WHERE name ILIKE $1 OR "
			    "display_name ILIKE $1 OR display_name ILIKE '% ' || $1 "
			    "ORDER BY lower(name), name LIMIT $2",
			    2, params),
			limit, out, n);
}

int store_users_named(PGconn *conn, const char *names, int limit, struct store_user *out, int *n)
{
	char lim[16];
	const char *params[2] = {names, lim};

	snprintf(lim, sizeof(lim), "%d", limit);
	return users_of(
	    run(conn, "cannot look up users",
		"SELECT name, display_name FROM users WHERE lower(name) = "
		"ANY (string_to_array(lower($1), ',')) ORDER BY lower(name), name LIMIT $2",
		2, params),
	    limit, out, n);
}

int store_user_set_display(PGconn *conn, int64_t user, const char *display, struct store_user *out)
{
	char u[24];
	const char *params[2] = {u, display};
	PGresult *res;
	int n, rc;

	id_text(u, user);
	/* Normalised before it is measured: a look-alike folds to its letters. */
	res = run(conn, "cannot set a display name",
		  "WITH v AS (SELECT btrim(normalize($2, NFKC)) AS d) UPDATE users SET "
		  "display_name = v.d FROM v WHERE id = $1 AND char_length(v.d) <= 64 AND "
		  "v.d !~ '[[:cntrl:]\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069]' "
		  "RETURNING name, display_name",
		  2, params);
	rc = users_of(res, 1, out, &n);
	return rc < 0 ? rc : n == 1 ? 0 : -EINVAL;
}

int store_public_channels(PGconn *conn, int64_t user, const char *text, int limit,
			  struct store_public_channel *out, int *n)
{
	char u[24], pattern[2 * STORE_NAME_MAX + 3], lim[16];
	const char *params[3] = {u, pattern, lim};
	PGresult *res;

	id_text(u, user);
	pattern[0] = '%';
	like_prefix(pattern + 1, sizeof(pattern) - 1, text);
	snprintf(lim, sizeof(lim), "%d", limit);
	res = run(conn, "cannot list public channels",
		  "SELECT c.id, c.name, (SELECT count(*) FROM channel_members m WHERE "
		  "m.channel_id = c.id), EXISTS (SELECT 1 FROM channel_members m WHERE "
		  "m.channel_id = c.id AND m.user_id = $1) FROM channels c WHERE c.kind = 'public' "
		  "AND c.name ILIKE $2 ORDER BY c.name LIMIT $3",
		  3, params);
	*n = 0;
	if (res == NULL)
		return -EIO;
	for (int r = 0; r < PQntuples(res) && r < limit; r++, (*n)++) {
		out[r].id = atoll(PQgetvalue(res, r, 0));
		snprintf(out[r].name, sizeof(out[r].name), "%s", PQgetvalue(res, r, 1));
		out[r].members = atoll(PQgetvalue(res, r, 2));
		out[r].joined = PQgetvalue(res, r, 3)[0] == 't';
	}
	PQclear(res);
	return 0;
}

int store_channel_info(PGconn *conn, int64_t channel, struct store_channel_info *out)
{
	char c[24];
	const char *params[1] = {c};
	PGresult *res;

	id_text(c, channel);
	res = run(conn, "cannot read a channel",
		  "SELECT c.name, c.kind, c.last_seq, c.owner_epoch, "
		  "to_char(c.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
		  "(SELECT count(*) FROM channel_members m WHERE m.channel_id = c.id) "
		  "FROM channels c WHERE c.id = $1",
		  1, params);
	if (res == NULL)
		return -EIO;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return -ENOENT;
	}
	*out = (struct store_channel_info){.id = channel,
					   .last_seq = strtoll(PQgetvalue(res, 0, 2), NULL, 10),
					   .owner_epoch = strtoll(PQgetvalue(res, 0, 3), NULL, 10),
					   .members = strtoll(PQgetvalue(res, 0, 5), NULL, 10)};
	snprintf(out->name, sizeof(out->name), "%s", PQgetvalue(res, 0, 0));
	snprintf(out->kind, sizeof(out->kind), "%s", PQgetvalue(res, 0, 1));
	snprintf(out->created_at, sizeof(out->created_at), "%s", PQgetvalue(res, 0, 4));
	PQclear(res);
	return 0;
}

int store_hidden_users(PGconn *conn, int64_t user, const char *const *names, int n, bool *hidden)
{
	char id[24], *list = malloc((size_t)n * 68 + 3), *at = list;
	const char *params[2] = {id, list};
	PGresult *res;

	if (list == NULL)
		return -ENOMEM;
	/* A text[] literal; names are [A-Za-z0-9_.-] (the caller checked). */
	*at++ = '{';
	for (int i = 0; i < n; i++)
		at += sprintf(at, "%s\"%s\"", i ? "," : "", names[i]);
	strcpy(at, "}");
	id_text(id, user);
	res = run(conn, "cannot check whom a user can see",
		  "SELECT u.name FROM users u WHERE u.name = ANY($2::text[]) AND u.id <> $1 AND "
		  "NOT EXISTS (SELECT 1 FROM channel_members a JOIN channel_members b ON "
		  "b.channel_id = a.channel_id WHERE a.user_id = $1 AND b.user_id = u.id)",
		  2, params);
	free(list);
	if (res == NULL)
		return -EIO;
	for (int i = 0; i < n; i++) {
		hidden[i] = false;
		for (int r = 0; r < PQntuples(res) && !hidden[i]; r++)
			hidden[i] = strcmp(PQgetvalue(res, r, 0), names[i]) == 0;
	}
	PQclear(res);
	return 0;
}

int store_dm_open(PGconn *conn, int64_t a, int64_t b, int64_t *channel, int *added)
{
	char name[64], lo[24], hi[24];
	const char *params[3] = {name, lo, hi};
	PGresult *res;

	/* A stable name from the sorted pair: one DM per pair, created once. */
	snprintf(name, sizeof(name), "dm:%lld:%lld", (long long)a, (long long)b);
	id_text(lo, a);
	id_text(hi, b);
	res = run(conn, "cannot open a DM",
		  "WITH c AS (INSERT INTO channels (name, kind) VALUES ($1, 'dm') ON CONFLICT "
		  "(name) DO UPDATE SET name = EXCLUDED.name RETURNING id), m AS (INSERT INTO "
		  "channel_members (channel_id, user_id) SELECT c.id, u FROM c, (VALUES "
		  "($2::int8), ($3::int8)) AS v(u) ON CONFLICT DO NOTHING RETURNING 1) SELECT "
		  "(SELECT id FROM c), (SELECT count(*) FROM m)",
		  3, params);
	if (res == NULL)
		return -EIO;
	*channel = atoll(PQgetvalue(res, 0, 0));
	*added = atoi(PQgetvalue(res, 0, 1));
	PQclear(res);
	return 0;
}

int store_event_authorize(PGconn *conn, int64_t channel, int64_t seq, int64_t user)
{
	char c[24], q[24], u[24];
	const char *params[3] = {c, q, u};
	PGresult *res;
	int rc = 0;

	id_text(c, channel);
	id_text(q, seq);
	id_text(u, user);
	res = run(conn, "cannot check a message's author",
		  "SELECT m.author_id = $3::int8, m.kind, m.deleted_at IS NOT NULL,"
		  " coalesce((SELECT role = 'admin' FROM channel_members WHERE"
		  " channel_id = $1 AND user_id = $3), false)"
		  " FROM messages m WHERE m.channel_id = $1 AND m.seq = $2",
		  3, params);
	if (res == NULL)
		return -EIO;
	if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 1), "message") != 0 ||
	    PQgetvalue(res, 0, 2)[0] == 't')
		rc = -ENOENT;
	else if (PQgetvalue(res, 0, 0)[0] != 't' && PQgetvalue(res, 0, 3)[0] != 't')
		rc = -EPERM;
	PQclear(res);
	return rc;
}

int64_t store_read_update(PGconn *conn, int64_t channel, int64_t user, int64_t seq)
{
	char c[24], u[24], q[24];
	const char *params[3] = {c, u, q};
	PGresult *res;
	int64_t now = -1;

	id_text(c, channel);
	id_text(u, user);
	id_text(q, seq);
	/* Forward only, and never past the channel's head. */
	res = run(conn, "cannot move a read cursor",
		  "UPDATE channel_members m SET last_read_seq ="
		  " greatest(m.last_read_seq, least($3::int8, c.last_seq))"
		  " FROM channels c WHERE c.id = m.channel_id AND m.channel_id = $1"
		  " AND m.user_id = $2 RETURNING m.last_read_seq",
		  3, params);
	if (res && PQntuples(res) == 1)
		now = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	return now;
}

/* An etcd cluster met for the first time gets the next generation. */
#define GENERATION_ADD_SQL                                                                         \
	"INSERT INTO etcd_generations (cluster_id, generation)"                                    \
	" SELECT $1, coalesce(max(generation), 0) + 1 FROM etcd_generations"                       \
	" ON CONFLICT (cluster_id) DO NOTHING"
/* One whose revision has gone back below an epoch already stored (its data
 * was lost and it was bootstrapped again with the same names and token, so
 * the same id) gets a new one. Revisions of a live etcd only grow, so this
 * is proof of a reset; the row lock makes nodes starting together bump it
 * once. */
#define GENERATION_RESET_SQL                                                                       \
	"UPDATE etcd_generations SET generation ="                                                 \
	" (SELECT max(generation) + 1 FROM etcd_generations)"                                      \
	" WHERE cluster_id = $1 AND (generation << 40) + $2::int8 <"                               \
	" (SELECT coalesce(max(owner_epoch), 0) FROM channels)"
#define GENERATION_GET_SQL "SELECT generation FROM etcd_generations WHERE cluster_id = $1"

/* One attempt, in one transaction. */
static int64_t generation_once(PGconn *conn, const char *cluster_id, const char *revision,
			       char *err, size_t err_size)
{
	const char *params[2] = {cluster_id, revision};
	const char *steps[] = {"BEGIN", GENERATION_ADD_SQL, GENERATION_RESET_SQL,
			       GENERATION_GET_SQL, "COMMIT"};
	int nparams[] = {0, 1, 2, 1, 0};
	int64_t generation = -EIO;

	for (int i = 0; i < 5; i++) {
		PGresult *res =
		    PQexecParams(conn, steps[i], nparams[i], NULL, params, NULL, NULL, 0);
		ExecStatusType st = PQresultStatus(res);

		if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
			snprintf(err, err_size, "cannot number etcd cluster %s: %s", cluster_id,
				 PQresultErrorMessage(res));
			PQclear(res);
			PQclear(PQexec(conn, "ROLLBACK"));
			return -EIO;
		}
		if (i == 3 && PQntuples(res) == 1)
			generation = atoll(PQgetvalue(res, 0, 0));
		PQclear(res);
	}
	return generation;
}

int64_t store_etcd_generation(const char *dsn, const char *cluster_id, int64_t revision, char *err,
			      size_t err_size)
{
	PGconn *conn = pg_connect(dsn, true, err, err_size);
	int64_t generation = -EIO;
	char rev[24];

	snprintf(rev, sizeof(rev), "%lld", (long long)revision);
	/* Two etcd clusters met at once race for one number: the loser breaks
	 * the unique generation and tries again. */
	for (int attempt = 0; conn && attempt < 5 && generation == -EIO; attempt++)
		generation = generation_once(conn, cluster_id, rev, err, err_size);
	if (conn)
		PQfinish(conn);
	return generation;
}
