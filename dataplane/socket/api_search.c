/* SPDX-License-Identifier: BSD-3-Clause */
/* GET /api/v1/search (docs/api.md, "Search"): the words of q, its filters
 * (in:#channel, from:@user, before:YYYY-MM-DD, after:YYYY-MM-DD) taken out
 * of it, and the page asked for; the search itself is persist's
 * (persist/search.c), run on the reader job's connection. */
#define LOG_COMPONENT "api"
#include "api.h"

#include "edge.h"
#include "search.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LIMIT_DEFAULT 20
#define LIMIT_MAX     50
#define OFFSET_MAX    1000

/* Whether text is a real calendar day, YYYY-MM-DD. */
static bool valid_day(const char *text)
{
	struct tm tm = {0}, back;
	int y, m, d, used = 0;
	time_t t;

	if (strlen(text) != 10 || sscanf(text, "%4d-%2d-%2d%n", &y, &m, &d, &used) != 3 ||
	    used != 10 || y < 1970 || y > 9999)
		return false;
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d;
	t = timegm(&tm);
	return gmtime_r(&t, &back) && back.tm_year == y - 1900 && back.tm_mon == m - 1 &&
	       back.tm_mday == d;
}

/* A filter word: its value (after the prefix and an optional sigil) into
 * out. 1 taken, 0 not this filter, -1 bad. */
static int filter(const char *word, const char *prefix, char sigil, char *out, size_t size)
{
	size_t n = strlen(prefix);

	if (strncmp(word, prefix, n) != 0)
		return 0;
	word += n;
	if (sigil && *word == sigil)
		word++;
	if (*word == '\0' || strlen(word) >= size)
		return -1;
	snprintf(out, size, "%s", word);
	return 1;
}

/* Splits q into words and filters. NULL, or what is wrong with it. */
static const char *parse_query(const char *q, struct search_query *s)
{
	char copy[SEARCH_TEXT_MAX], *save = NULL;
	size_t len = 0;

	if (strlen(q) >= sizeof(copy) - 1) /* the query argument was cut at 255 */
		return "q is too long (at most 254 bytes)";
	snprintf(copy, sizeof(copy), "%s", q);
	for (char *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
		int rc = filter(w, "in:", '#', s->channel, sizeof(s->channel));

		rc = rc ?: filter(w, "from:", '@', s->author, sizeof(s->author));
		rc = rc ?: filter(w, "before:", 0, s->before, sizeof(s->before));
		rc = rc ?: filter(w, "after:", 0, s->after, sizeof(s->after));
		if (rc < 0)
			return "a filter without a value (in:#channel, from:@user, "
			       "before:YYYY-MM-DD, after:YYYY-MM-DD)";
		if (rc == 0)
			len += (size_t)snprintf(s->text + len, sizeof(s->text) - len, "%s%s",
						len ? " " : "", w);
	}
	if ((s->before[0] && !valid_day(s->before)) || (s->after[0] && !valid_day(s->after)))
		return "before: and after: take a day, YYYY-MM-DD";
	if (!s->text[0] && !s->channel[0] && !s->author[0] && !s->before[0] && !s->after[0])
		return "q: words to search for, or at least one filter";
	return NULL;
}

/* The page asked for: NULL, or what is wrong with it. */
static const char *parse_page(const struct api_call *c, struct search_query *s)
{
	int64_t limit = LIMIT_DEFAULT, offset = 0;

	if (api_query_int(c, "limit", &limit) < 0 || limit < 1 || limit > LIMIT_MAX)
		return "limit: 1 to 50";
	if (api_query_int(c, "offset", &offset) < 0 || offset > OFFSET_MAX)
		return "offset: 0 to 1000";
	s->limit = (int)limit;
	s->offset = (int)offset;
	return NULL;
}

static json_t *hit_json(const struct search_hit *h)
{
	char ts[40];

	encode_timestamp(h->created_at_us, ts);
	return json_pack("{s:I, s:s, s:s, s:I, s:o, s:s, s:s, s:s, s:f}", "channel",
			 (json_int_t)h->channel, "channel_name", h->channel_name, "channel_kind",
			 h->channel_kind, "seq", (json_int_t)h->seq, "parent_seq",
			 h->parent_seq ? json_integer(h->parent_seq) : json_null(), "author",
			 h->author, "text", h->text, "ts", ts, "rank", h->rank);
}

int api_search(struct pg_conn *conn, int64_t user, const struct api_call *c, char **out)
{
	struct search_query s = {0};
	const char *bad = parse_page(c, &s) ?: parse_query(api_query_text(c, "q"), &s);
	struct search_hit *hits = NULL;
	json_t *list, *o;
	int n;

	if (bad) {
		*out = api_error_body("bad_request", bad);
		return 400;
	}
	n = search_messages(conn, user, &s, &hits);
	if (n < 0) {
		*out = api_error_body("unavailable", "the search could not run; retry later");
		return 503;
	}
	list = json_array();
	for (int i = 0; i < n && i < s.limit; i++)
		json_array_append_new(list, hit_json(&hits[i]));
	o = json_pack("{s:{s:s, s:s?, s:s?, s:s?, s:s?}, s:o, s:b, s:o}", "query", "text", s.text,
		      "in", s.channel[0] ? s.channel : NULL, "from", s.author[0] ? s.author : NULL,
		      "before", s.before[0] ? s.before : NULL, "after", s.after[0] ? s.after : NULL,
		      "results", list, "has_more", n > s.limit, "next_offset",
		      n > s.limit ? json_integer(s.offset + s.limit) : json_null());
	search_hits_free(hits, n);
	*out = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return *out ? 200 : 503;
}
