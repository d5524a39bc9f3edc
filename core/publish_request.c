/* SPDX-License-Identifier: BSD-3-Clause */
/* A publish request's words (publish_request.h): parsing, validation and the
 * texts of its answers, the same from either place that reads one. */
#include "publish_request.h"

#include "edge.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const char *request_req(json_t *msg, char buf[REQ_MAX + 1])
{
	json_t *v = json_object_get(msg, "req");

	if (json_is_string(v) && strlen(json_string_value(v)) <= REQ_MAX)
		snprintf(buf, REQ_MAX + 1, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(buf, REQ_MAX + 1, "%lld", (long long)json_integer_value(v));
	else
		return NULL;
	return buf;
}

bool request_req_invalid(json_t *msg)
{
	char buf[REQ_MAX + 1];
	json_t *v = json_object_get(msg, "req");

	return v && !json_is_null(v) && request_req(msg, buf) == NULL;
}

bool request_channel(json_t *v, int64_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) <= 0)
		return false;
	*out = json_integer_value(v);
	return true;
}

const char *publish_request_parse(json_t *msg, size_t max_text_bytes, struct publish_request *r,
				  const char **message)
{
	json_t *text = json_object_get(msg, "text"), *id = json_object_get(msg, "client_msg_id");
	json_t *parent = json_object_get(msg, "parent_seq");

	if (!request_channel(json_object_get(msg, "channel"), &r->channel) ||
	    !json_is_string(text) || !json_is_string(id) || json_string_length(id) == 0 ||
	    json_string_length(id) > PERSIST_CLIENT_MSG_ID_MAX ||
	    (parent && !json_is_null(parent) &&
	     (!json_is_integer(parent) || json_integer_value(parent) <= 0))) {
		*message = "publish needs \"channel\", \"text\", \"client_msg_id\" (1-64 "
			   "characters) and an optional \"parent_seq\"";
		return "bad_request";
	}
	if (json_string_length(text) > max_text_bytes) {
		*message = "text is longer than the server accepts";
		return "too_large";
	}
	r->parent_seq = json_is_integer(parent) ? json_integer_value(parent) : 0;
	r->text = json_string_value(text);
	r->text_len = json_string_length(text);
	r->client_msg_id = json_string_value(id);
	return NULL;
}

const char *publish_submit_error(int rc, const char **message)
{
	if (rc == -EAGAIN || rc == -ENOMEM || rc == -EXDEV) {
		*message = "the server is busy; retry shortly";
		return rc == -EXDEV ? "unavailable" : "overloaded";
	}
	*message = rc == -EILSEQ ? "text must be valid UTF-8 without NUL" : "invalid request";
	return "bad_request";
}

const char *publish_failure(int error, const char **message)
{
	*message = error == -EINVAL ? "parent_seq names no message of this channel"
				    : "not stored; retry with the same client_msg_id";
	return error == -ENOENT	  ? "not_member"
	       : error == -EINVAL ? "bad_parent"
	       : error == -EAGAIN ? "overloaded"
				  : "unavailable";
}

json_t *publish_ack(const char *req, int64_t channel, int64_t seq, int64_t ts_us,
		    const char *client_msg_id, bool duplicate, bool live)
{
	char ts[40];
	json_t *ack;

	encode_timestamp(ts_us, ts);
	ack = json_pack("{s:s, s:s*, s:I, s:I, s:s, s:s, s:b}", "type", "ack", "req",
			req && req[0] ? req : NULL, "channel", (json_int_t)channel, "seq",
			(json_int_t)seq, "ts", ts, "client_msg_id", client_msg_id, "duplicate",
			duplicate);
	if (ack && live)
		json_object_set_new(ack, "ephemeral", json_true());
	return ack;
}

json_t *request_error(const char *req, const char *code, const char *message)
{
	return json_pack("{s:s, s:s, s:s, s:s*}", "type", "error", "code", code, "message", message,
			 "req", req);
}
