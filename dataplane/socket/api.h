/* The HTTP API (docs/api.md), transport-neutral: server.c parses the request
 * and authenticates it, api.c decides. Answers are JSON; most need
 * PostgreSQL, so they come later, on the worker thread, through
 * server_api_respond(). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "edge.h"
#include "jwt.h"

enum api_method { API_GET, API_POST, API_DELETE, API_OTHER };

#define API_QUERY_MAX 8

struct api_call {
	struct edge *edge;
	int worker;
	uint64_t id;
	enum api_method method;
	char path[256];
	char user[JWT_SUBJECT_MAX + 1];
	char idempotency_key[80];
	struct {
		char name[32];
		char value[96];
	} query[API_QUERY_MAX];
	int nquery;
	const char *body;
	size_t body_len;
};

/* Adds one "name=value" query argument. */
void api_query_add(struct api_call *c, const char *arg);

/* Handles a call. Returns an HTTP status with *body (malloc'd JSON) when the
 * answer is immediate, or 0 when it will come through server_api_respond(). */
int api_dispatch(const struct api_call *c, char **body);

/* Implemented by the transport: delivers a late answer (takes body). Worker
 * thread, from an event whose worker transport is `transport`. */
void server_api_respond(void *transport, uint64_t id, int status, char *body);
