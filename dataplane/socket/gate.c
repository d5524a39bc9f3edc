/* SPDX-License-Identifier: BSD-3-Clause */
/* The HTTP API's gate: see gate.h. The order of the checks matters: the
 * body's framing first (a refusal must know whether unread bytes follow, to
 * close rather than read them as the next request), then the token, and only
 * for a caller with an identity the route and the key, so an anonymous
 * client learns nothing but "authenticate". */
#include "gate.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int refuse(struct http_gate_out *out, int status, const char *code, const char *message)
{
	out->status = status;
	out->code = code;
	out->message = message;
	out->user[0] = '\0';
	return status;
}

bool http_gate_length(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (*s == '\0')
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return true;
}

void http_query_decode(const char *s, size_t len, char *out, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 1 < size; i++) {
		if (s[i] == '%' && i + 2 < len && http_hex_digit(s[i + 1]) >= 0 &&
		    http_hex_digit(s[i + 2]) >= 0) {
			out[o++] = (char)(http_hex_digit(s[i + 1]) << 4 | http_hex_digit(s[i + 2]));
			i += 2;
		} else {
			out[o++] = s[i] == '+' ? ' ' : s[i];
		}
	}
	out[o] = '\0';
}

/* Whether the query has a "token" argument, however it is spelled. */
static bool query_has_token(const char *q)
{
	for (; q; q = strchr(q + 1, '&')) {
		const char *arg = q + 1;
		char name[8];

		http_query_decode(arg, strcspn(arg, "=&"), name, sizeof(name));
		if (strcmp(name, "token") == 0)
			return true;
	}
	return false;
}

void http_gate_input(const struct http_req *r, char *path, size_t path_size,
		     char key[HTTP_IDEM_MAX], struct http_gate_in *in)
{
	const char *q = strchr(r->path, '?');

	snprintf(path, path_size, "%.*s", (int)strcspn(r->path, "?"), r->path);
	*in = (struct http_gate_in){.method = api_method_parse(r->method), .path = path};
	in->authorization = r->auth_len ? r->auth : NULL;
	in->authorization_too_big = r->auth_long;
	in->content_length = r->length_long ? "x" : r->length_len ? r->length : NULL;
	in->transfer_encoding = r->transfer_encoding;
	key[0] = '\0';
	if (http_req_has_idem(r)) {
		if (r->idem_sent < HTTP_IDEM_MAX)
			memcpy(key, r->idem, r->idem_len + 1u);
		in->idempotency_key = key;
		in->idempotency_key_len = r->idem_sent;
	}
	in->query_token = query_has_token(q);
}

static int check_framing(const struct http_gate_in *in, struct http_gate_out *out)
{
	if (in->transfer_encoding) {
		out->close = true;
		return refuse(out, 411, "length_required",
			      "send the body with Content-Length, not chunked");
	}
	if (in->content_length && !http_gate_length(in->content_length, &out->body_len)) {
		out->close = true;
		return refuse(out, 400, "bad_request", "Content-Length is not a number");
	}
	if (out->body_len > GATE_BODY_MAX) {
		out->close = true;
		return refuse(out, 413, "too_large", "the body is over 1 MiB");
	}
	return 0;
}

static int check_token(const struct http_gate_in *in, const char *secret, int64_t now,
		       struct http_gate_out *out)
{
	int64_t exp;
	int rc;

	if (in->query_token)
		return refuse(out, 401, "token_in_url",
			      "send the token in an Authorization: Bearer header, not the URL");
	if (in->authorization == NULL && !in->authorization_too_big)
		return refuse(out, 401, "missing_token", "a valid bearer token is required");
	if (in->authorization_too_big || strncasecmp(in->authorization, "Bearer ", 7) != 0)
		return refuse(out, 401, "bad_token", "a valid bearer token is required");
	rc = jwt_verify(secret, in->authorization + 7, now, out->user, &exp);
	if (rc == -EKEYEXPIRED)
		return refuse(out, 401, "token_expired", "the token is expired or not yet valid");
	if (rc < 0)
		return refuse(out, 401, "bad_token", "a valid bearer token is required");
	return 0;
}

int http_gate(const struct http_gate_in *in, const char *secret, int64_t now,
	      struct http_gate_out *out)
{
	int rc;

	memset(out, 0, sizeof(*out));
	if (in->draining)
		return refuse(out, 503, "shutting_down", "the server is shutting down");
	if (check_framing(in, out) || check_token(in, secret, now, out))
		return out->status;
	rc = api_route_match(in->method, in->path, &out->route);
	if (rc == 404)
		return refuse(out, 404, "not_found", "no such endpoint");
	if (rc == 405)
		return refuse(out, 405, "method_not_allowed", "method not allowed here");
	if (in->idempotency_key &&
	    (in->idempotency_key_len == 0 || in->idempotency_key_len > GATE_IDEMPOTENCY_MAX))
		return refuse(out, 400, "bad_request", "Idempotency-Key is 1-64 characters");
	return 0;
}
