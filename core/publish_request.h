/* SPDX-License-Identifier: BSD-3-Clause */
/* A publish request's words, shared by the two places that read one: the
 * worker's request handlers (requests.c) and the publish hand-off's control
 * thread (handoff.c). Parsing and validating the request, and the texts of
 * its answers: the ack after COMMIT and each refusal's code and message. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "writer.h"

#define REQ_MAX 64

/* A request's "req", a string of at most REQ_MAX bytes or an integer, in buf;
 * NULL when absent or of another shape. */
const char *request_req(json_t *msg, char buf[REQ_MAX + 1]);
/* True when msg carries a "req" that request_req() refuses. */
bool request_req_invalid(json_t *msg);
/* A channel id: a positive integer. */
bool request_channel(json_t *v, int64_t *out);

struct publish_request {
	int64_t channel, parent_seq;
	const char *text, *client_msg_id; /* inside the parsed message */
	size_t text_len;
};

/* Validates a publish (docs/protocol.md) into r. NULL, or the error code
 * ("bad_request", "too_large") with *message set. */
const char *publish_request_parse(json_t *msg, size_t max_text_bytes, struct publish_request *r,
				  const char **message);
/* The code and message for a publish that publish_submit() refused (rc). */
const char *publish_submit_error(int rc, const char **message);
/* The code and message for a publish whose commit failed (error). */
const char *publish_failure(int error, const char **message);
/* The ack of a committed (or deduplicated, or live-only) publish. */
json_t *publish_ack(const char *req, int64_t channel, int64_t seq, int64_t ts_us,
		    const char *client_msg_id, bool duplicate, bool live);
/* An error answer; req may be NULL. */
json_t *request_error(const char *req, const char *code, const char *message);
