/* SPDX-License-Identifier: BSD-3-Clause */
/* The HTTP API's gate: everything decided about a request before any
 * handler may run. The body's framing, where the token is, the token itself,
 * the route and the Idempotency-Key are checked here, in that order, and a
 * request is either admitted with an identity or refused with a status; a
 * refused request has no user. Pure (no libwebsockets, no PostgreSQL): the
 * server fills a struct http_gate_in from lws's headers, the request fuzzer
 * from its input, and both run this same code. docs/security.md lists the
 * checks. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jwt.h"
#include "routes.h"

#define GATE_BODY_MAX	     (1u << 20) /* an API body's bytes */
#define GATE_IDEMPOTENCY_MAX 64		/* an Idempotency-Key's characters */

struct http_gate_in {
	enum api_method method;
	const char *path;	     /* without the query */
	const char *authorization;   /* the header's value; NULL when absent */
	bool authorization_too_big;  /* present but too long to read */
	bool query_token;	     /* a "token" query argument is present */
	const char *content_length;  /* the header's value; NULL when absent */
	bool transfer_encoding;	     /* a Transfer-Encoding header is present */
	const char *idempotency_key; /* NULL when absent */
	size_t idempotency_key_len;  /* its length as sent, even when not copied */
	bool draining;		     /* the server is shutting down */
};

struct http_gate_out {
	int status;	     /* 0: admitted; else the HTTP status of the refusal */
	const char *code;    /* the refusal's stable error code */
	const char *message; /* and its human sentence */
	bool close;	     /* close the connection after the answer (unread body) */
	uint64_t body_len;   /* bytes of body that follow the headers */
	struct api_route route;
	char user[JWT_SUBJECT_MAX + 1]; /* "" unless admitted */
};

/* Decides on one API request at time now (seconds since the epoch). Always
 * fills *out; returns out->status. Never reads beyond the strings given. */
int http_gate(const struct http_gate_in *in, const char *secret, int64_t now,
	      struct http_gate_out *out);

/* A Content-Length value: digits only (RFC 9110 8.6), no sign, no list, at
 * most UINT64_MAX. True with *out set, or false. */
bool http_gate_length(const char *value, uint64_t *out);
