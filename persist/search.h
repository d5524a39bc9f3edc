/* SPDX-License-Identifier: BSD-3-Clause */
/* Message search (docs/api.md, "Search"): PostgreSQL full-text search over
 * the messages of the channels the searcher is a member of, membership
 * checked in the query itself, never after. Runs on a reader job's
 * connection, like the store (store.h). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

#define SEARCH_TEXT_MAX 256

/* What to look for. text in websearch_to_tsquery's syntax ("quoted
 * phrases", -not, or); "" with at least one filter lists the newest
 * messages that pass the filters. channel and author: "" for any (author
 * compared without case); before and after: "" or YYYY-MM-DD (UTC,
 * before that day, from that day on). */
struct search_query {
	char text[SEARCH_TEXT_MAX];
	char channel[STORE_NAME_MAX];
	char author[STORE_NAME_MAX];
	char before[11], after[11];
	int limit, offset;
};

/* One message found. text is malloc'd. */
struct search_hit {
	int64_t channel;
	char channel_name[STORE_NAME_MAX];
	char channel_kind[STORE_KIND_MAX];
	int64_t seq;
	int64_t parent_seq; /* 0: not a reply */
	char author[STORE_NAME_MAX];
	int64_t created_at_us;
	double rank; /* 0 when the query had no text */
	char *text;
};

/* Up to q->limit + 1 hits (the one more says there are more) for user, best
 * first (rank, then newest), from q->offset on, into a malloc'd *hits.
 * Returns how many, or -EIO (logged). */
int search_messages(struct pg_conn *conn, int64_t user, const struct search_query *q,
		    struct search_hit **hits);
void search_hits_free(struct search_hit *hits, int n);
