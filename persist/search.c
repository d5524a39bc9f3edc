/* SPDX-License-Identifier: BSD-3-Clause */
/* Message search (search.h): one statement. The searcher's memberships are
 * the query's first table, so a channel they are not in is never read; the
 * text goes to websearch_to_tsquery, which accepts anything a user types
 * (no syntax errors), against the index of message words that the indexer
 * (indexer.h) fills a moment after each commit. Run unprepared, with a custom plan forced for its
 * own transaction: each search is planned with its own values, so filters that are not given fold
 * away. */
#define LOG_COMPONENT "search"
#include "search.h"

#include "log.h"
#include "pg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The filters both statements share, and their order. */
#define SEARCH_FILTERS                                                                             \
	" JOIN users u ON u.id = m.author_id"                                                      \
	" WHERE cm.user_id = $1 AND m.kind = 'message' AND m.deleted_at IS NULL"                   \
	" AND ($3 = '' OR c.name = $3)"                                                            \
	" AND ($4 = '' OR lower(u.name) = lower($4))"                                              \
	" AND ($5 = '' OR m.created_at < (NULLIF($5, '')::date::timestamp AT TIME ZONE 'UTC'))"    \
	" AND ($6 = '' OR m.created_at >= (NULLIF($6, '')::date::timestamp AT TIME ZONE 'UTC'))"   \
	" ORDER BY rank DESC, m.created_at DESC, m.channel_id, m.seq LIMIT $7 OFFSET $8"

#define SEARCH_COLUMNS                                                                             \
	"SELECT m.channel_id, c.name, c.kind, m.seq, coalesce(m.parent_seq, 0), u.name,"           \
	" (extract(epoch FROM m.created_at) * 1000000)::int8,"

/* Words: the matches in the searcher's channels from the index
 * (message_search, migration 0013), then their messages. */
#define SEARCH_WORDS_SQL                                                                           \
	SEARCH_COLUMNS                                                                             \
	" ts_rank(s.search, websearch_to_tsquery('english', $2)) AS rank, m.body"                  \
	" FROM channel_members cm"                                                                 \
	" JOIN channels c ON c.id = cm.channel_id"                                                 \
	" JOIN message_search s ON s.channel_id = cm.channel_id"                                   \
	" AND s.search @@ websearch_to_tsquery('english', $2)"                                     \
	" JOIN messages m ON m.channel_id = s.channel_id AND m.seq = s.seq" SEARCH_FILTERS

/* No words, filters only: the newest messages that pass them ($2 is '',
 * said so that the statement types it). */
#define SEARCH_FILTERS_SQL                                                                         \
	SEARCH_COLUMNS                                                                             \
	" 0::float4 AS rank, m.body"                                                               \
	" FROM channel_members cm"                                                                 \
	" JOIN channels c ON c.id = cm.channel_id"                                                 \
	" JOIN messages m ON m.channel_id = cm.channel_id AND $2 = ''" SEARCH_FILTERS

static void hit_from_row(const PGresult *res, int r, struct search_hit *h)
{
	h->channel = atoll(PQgetvalue(res, r, 0));
	snprintf(h->channel_name, sizeof(h->channel_name), "%s", PQgetvalue(res, r, 1));
	snprintf(h->channel_kind, sizeof(h->channel_kind), "%s", PQgetvalue(res, r, 2));
	h->seq = atoll(PQgetvalue(res, r, 3));
	h->parent_seq = atoll(PQgetvalue(res, r, 4));
	snprintf(h->author, sizeof(h->author), "%s", PQgetvalue(res, r, 5));
	h->created_at_us = atoll(PQgetvalue(res, r, 6));
	h->rank = atof(PQgetvalue(res, r, 7));
	h->text = strdup(PQgetvalue(res, r, 8));
}

int search_messages(struct pg_conn *conn, int64_t user, const struct search_query *q,
		    struct search_hit **hits)
{
	char u[24], lim[16], off[16];
	const char *params[8] = {u, q->text, q->channel, q->author, q->before, q->after, lim, off};
	PGresult *res;
	int n;

	snprintf(u, sizeof(u), "%lld", (long long)user);
	snprintf(lim, sizeof(lim), "%d", q->limit + 1);
	snprintf(off, sizeof(off), "%d", q->offset);
	res = pg_exec_custom(conn, q->text[0] ? SEARCH_WORDS_SQL : SEARCH_FILTERS_SQL, 8, params);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		LOG(WARN, "cannot search: %s", PQresultErrorMessage(res));
		PQclear(res);
		return -EIO;
	}
	n = PQntuples(res);
	*hits = calloc((size_t)n + 1, sizeof(**hits));
	for (int r = 0; *hits && r < n; r++) {
		hit_from_row(res, r, &(*hits)[r]);
		if ((*hits)[r].text == NULL) {
			search_hits_free(*hits, r);
			*hits = NULL;
		}
	}
	PQclear(res);
	return *hits ? n : -EIO;
}

void search_hits_free(struct search_hit *hits, int n)
{
	for (int i = 0; hits && i < n; i++)
		free(hits[i].text);
	free(hits);
}
