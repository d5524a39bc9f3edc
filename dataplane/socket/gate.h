/* SPDX-License-Identifier: BSD-3-Clause */
/* The HTTP API's gate: everything decided about a request before any
 * handler may run. The body's framing, where the token is, the token itself,
 * the route and the Idempotency-Key are checked here, in that order, and a
 * request is either admitted with an identity or refused with a status; a
 * refused request has no user. Pure (no libwebsockets, no PostgreSQL): the
 * server and the request fuzzer both parse the request with httpreq.c and
 * run this same code. docs/security.md lists the
 * checks. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "httpreq.h"
#include "jwt.h"
#include "routes.h"

#define GATE_BODY_MAX	     (1u << 20) /* an API body's bytes */
#define GATE_IDEMPOTENCY_MAX 64		/* an Idempotency-Key's characters */
#define GATE_HEAD_MAX	     16384	/* a request head's bytes; past them 431 */

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

/* What the gate reads from a parsed request head: in's strings point into
 * r and path (the target without its query, path_size bytes); the
 * Idempotency-Key is copied to key when it fits (else key is ""). */
void http_gate_input(const struct http_req *r, char *path, size_t path_size,
		     char key[HTTP_IDEM_MAX], struct http_gate_in *in);

/* A query argument (len bytes at s) with %XX and '+' decoded into out. */
void http_query_decode(const char *s, size_t len, char *out, size_t size);

/* Decides on one API request at time now (seconds since the epoch). Always
 * fills *out; returns out->status. Never reads beyond the strings given. */
int http_gate(const struct http_gate_in *in, const char *secret, int64_t now,
	      struct http_gate_out *out);

/* A Content-Length value: digits only (RFC 9110 8.6), no sign, no list, at
 * most UINT64_MAX. True with *out set, or false. */
bool http_gate_length(const char *value, uint64_t *out);
