/* SPDX-License-Identifier: BSD-3-Clause */
/* JSON encoding of messages for frames and API replies (jansson). One place
 * decides how a message looks on the wire: docs/protocol.md shows it. */
#include "edge.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void encode_timestamp(int64_t us, char out[40])
{
	time_t secs = (time_t)(us / 1000000);
	struct tm tm;
	size_t n;

	gmtime_r(&secs, &tm);
	n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 40 - n, ".%06ldZ", (long)(us % 1000000));
}

static json_t *message_object(const struct persist_message *m)
{
	char ts[40], id[48];
	json_t *o;

	encode_timestamp(m->created_at_us, ts);
	snprintf(id, sizeof(id), "%ld:%ld", (long)m->channel_id, (long)m->seq);
	o = json_pack("{s:s, s:I, s:I, s:s, s:s, s:s, s:s, s:s#, s:s}", "type", "message",
		      "channel", (json_int_t)m->channel_id, "seq", (json_int_t)m->seq, "id", id,
		      "kind", m->kind, "author", m->author_name ? m->author_name : "", "ts", ts,
		      "text", m->body, (int)m->body_len, "client_msg_id", m->client_msg_id);
	if (o == NULL)
		return NULL;
	json_object_set_new(o, "parent_seq",
			    m->parent_seq ? json_integer(m->parent_seq) : json_null());
	if (m->reply_count)
		json_object_set_new(o, "reply_count", json_integer(m->reply_count));
	if (m->edited)
		json_object_set_new(o, "edited", json_true());
	if (m->deleted)
		json_object_set_new(o, "deleted", json_true());
	if (m->reactions && *m->reactions) {
		json_t *r = json_loads(m->reactions, 0, NULL);
		if (r)
			json_object_set_new(o, "reactions", r);
	}
	return o;
}

static char *dump(json_t *o, size_t *len)
{
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	if (text)
		*len = strlen(text);
	return text;
}

char *encode_message(const struct persist_message *m, size_t *len)
{
	return dump(message_object(m), len);
}

char *encode_ephemeral(const struct persist_message *m, size_t *len)
{
	json_t *o = message_object(m);

	if (o)
		json_object_set_new(o, "ephemeral", json_true());
	return dump(o, len);
}
