/* SPDX-License-Identifier: BSD-3-Clause */
/* Mentions (mention.h): the parser, the `mention` frame and its filter. */
#include "mention.h"

#include "edge.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SNIPPET_MAX 300 /* bytes of the text a mention frame carries */

static bool name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '-';
}

static void add_name(struct mentions *out, const char *name, size_t n)
{
	char low[MENTION_NAME_MAX + 1];

	for (size_t i = 0; i < n; i++)
		low[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] - 'A' + 'a' : name[i]);
	low[n] = '\0';
	if (strcmp(low, "channel") == 0 || strcmp(low, "everyone") == 0) {
		out->broad = MENTION_CHANNEL;
		return;
	}
	if (strcmp(low, "here") == 0) {
		if (out->broad == MENTION_NONE)
			out->broad = MENTION_HERE;
		return;
	}
	for (int i = 0; i < out->n; i++)
		if (strcmp(out->names[i], low) == 0)
			return;
	if (out->n < MENTION_MAX)
		memcpy(out->names[out->n++], low, n + 1);
}

bool mention_parse(const char *text, size_t len, struct mentions *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < len; i++) {
		size_t start, n = 0;

		if (text[i] != '@' || (i > 0 && name_char((unsigned char)text[i - 1])))
			continue;
		start = i + 1;
		while (start + n < len && n < MENTION_NAME_MAX &&
		       name_char((unsigned char)text[start + n]))
			n++;
		i = start + n - 1; /* the next '@' is read after the name */
		while (n > 0 && text[start + n - 1] == '.')
			n--;
		if (n > 0)
			add_name(out, text + start, n);
	}
	return out->broad != MENTION_NONE || out->n > 0;
}

/* At most max bytes of s, cut before a UTF-8 continuation byte. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	return max;
}

static const char *broad_word(enum mention_broad b)
{
	return b == MENTION_CHANNEL ? "channel" : b == MENTION_HERE ? "here" : "none";
}

char *mention_encode(const struct persist_message *m, const struct mentions *ms, size_t *len)
{
	char head[64 + 2 * MENTION_NAME_MAX + MENTION_MAX * (MENTION_NAME_MAX + 3)], ts[40];
	size_t at = (size_t)snprintf(head, sizeof(head),
				     "{\"type\":\"mention\",\"broad\":\"%s\",\"author\":\"%.64s\","
				     "\"users\":[",
				     broad_word(ms->broad), m->author_name ? m->author_name : "");
	json_t *tail;
	char *rest, *out;

	for (int i = 0; i < ms->n; i++)
		at += (size_t)snprintf(head + at, sizeof(head) - at, "%s\"%s\"", i ? "," : "",
				       ms->names[i]);
	at += (size_t)snprintf(head + at, sizeof(head) - at, "],");
	encode_timestamp(m->created_at_us, ts);
	tail = json_pack("{s:I, s:I, s:o, s:s, s:s#}", "channel", (json_int_t)m->channel_id, "seq",
			 (json_int_t)m->seq, "parent_seq",
			 m->parent_seq ? json_integer(m->parent_seq) : json_null(), "ts", ts,
			 "text", m->body, (int)utf8_cut(m->body, m->body_len, SNIPPET_MAX));
	rest = tail ? json_dumps(tail, JSON_COMPACT) : NULL;
	json_decref(tail);
	out = rest ? malloc(at + strlen(rest)) : NULL;
	if (out) {
		memcpy(out, head, at);
		strcpy(out + at, rest + 1); /* the tail's fields without its '{' */
		*len = at + strlen(rest) - 1;
	}
	free(rest);
	return out;
}

/* The value of "key":" at *p in json, up to its closing quote: its length,
 * or -1 when json does not read so. */
static int head_field(const char **p, const char *end, const char *key)
{
	size_t k = strlen(key);
	const char *q;

	if ((size_t)(end - *p) < k || memcmp(*p, key, k) != 0)
		return -1;
	*p += k;
	q = memchr(*p, '"', (size_t)(end - *p));
	return q ? (int)(q - *p) : -1;
}

bool mention_wants(const char *json, size_t len, const char *user)
{
	const char *p = json, *end = json + len, *close;
	size_t ulen = strlen(user);
	int n;
	bool broad;

	if ((n = head_field(&p, end, "{\"type\":\"mention\",\"broad\":\"")) < 0)
		return false;
	broad = !(n == 4 && memcmp(p, "none", 4) == 0);
	p += n;
	if ((n = head_field(&p, end, "\",\"author\":\"")) < 0)
		return false;
	if ((size_t)n == ulen && strncasecmp(p, user, ulen) == 0)
		return false; /* nobody is told of their own mention */
	p += n;
	if (broad)
		return true;
	if (head_field(&p, end, "\",\"users\":[") < 0 || (close = memchr(p, ']', end - p)) == NULL)
		return false;
	while (p < close) {
		const char *q = memchr(p + 1, '"', (size_t)(close - p - 1));

		if (*p != '"' || q == NULL)
			return false;
		if ((size_t)(q - p - 1) == ulen && strncasecmp(p + 1, user, ulen) == 0)
			return true;
		p = q + 1 + (q + 1 < close && q[1] == ',');
	}
	return false;
}

/* The gate: GATE_SLOTS pairs in buckets of GATE_WAYS, each pair with the
 * time its next turn comes. */
#define GATE_SLOTS 4096
#define GATE_WAYS  8

struct gate_slot {
	int64_t user, channel;
	uint64_t next_ns;
	char cmid[PERSIST_CLIENT_MSG_ID_MAX + 1]; /* the publish that took the turn */
};

struct mention_gate {
	pthread_mutex_t lock;
	struct gate_slot slots[GATE_SLOTS];
};

struct mention_gate *mention_gate_create(void)
{
	struct mention_gate *g = calloc(1, sizeof(*g));

	if (g)
		pthread_mutex_init(&g->lock, NULL);
	return g;
}

void mention_gate_destroy(struct mention_gate *g)
{
	if (g == NULL)
		return;
	pthread_mutex_destroy(&g->lock);
	free(g);
}

bool mention_gate_take(struct mention_gate *g, int64_t user, int64_t channel, const char *cmid,
		       uint64_t now_ns, int interval_ms)
{
	uint64_t h = ((uint64_t)user * 0x9E3779B97F4A7C15u) ^ (uint64_t)channel;
	struct gate_slot *bucket, *slot = NULL;
	bool yes;

	if (interval_ms == 0)
		return true;
	pthread_mutex_lock(&g->lock);
	bucket = &g->slots[(h % (GATE_SLOTS / GATE_WAYS)) * GATE_WAYS];
	for (int i = 0; i < GATE_WAYS && slot == NULL; i++)
		if (bucket[i].user == user && bucket[i].channel == channel)
			slot = &bucket[i];
	for (int i = 0; i < GATE_WAYS && slot == NULL; i++)
		if (bucket[i].next_ns <= now_ns)
			slot = &bucket[i]; /* free, or its turn has come */
	if (slot == NULL) {
		slot = &bucket[0];
		for (int i = 1; i < GATE_WAYS; i++)
			if (bucket[i].next_ns < slot->next_ns)
				slot = &bucket[i];
	}
	yes = !(slot->user == user && slot->channel == channel && slot->next_ns > now_ns);
	if (!yes && cmid && *cmid && strcmp(slot->cmid, cmid) == 0) {
		yes = true; /* a retry of the publish that has the turn */
	} else if (yes) {
		slot->user = user;
		slot->channel = channel;
		slot->next_ns = now_ns + (uint64_t)interval_ms * 1000000u;
		snprintf(slot->cmid, sizeof(slot->cmid), "%s", cmid ? cmid : "");
	}
	pthread_mutex_unlock(&g->lock);
	return yes;
}
