/* SPDX-License-Identifier: BSD-3-Clause */
/* The HTTP API (docs/api.md), transport-neutral: server.c parses the request
 * and authenticates it, api.c decides. Answers are JSON; most need
 * PostgreSQL, so they come later, on the worker thread, through the
 * call's respond function. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edge.h"
#include "httpreq.h"
#include "jwt.h"
#include "routes.h"

#define API_QUERY_MAX 8

/* Delivers a late answer (takes body), on the worker thread of an event
 * whose worker transport is `transport`. */
typedef void (*api_respond_fn)(void *transport, uint64_t id, int status, char *body);

struct api_call {
	struct edge *edge;
	api_respond_fn respond;
	int worker;
	uint64_t id;
	enum api_method method;
	struct api_route route;		/* as the gate matched it */
	char user[JWT_SUBJECT_MAX + 1]; /* as the gate admitted it; never "" */
	char idempotency_key[HTTP_IDEM_MAX];
	struct {
		char name[32];
		char value[256]; /* a longer one is cut to 255 bytes */
	} query[API_QUERY_MAX];
	int nquery;
	const char *body;
	size_t body_len;
	bool admin;	  /* the user is one of [auth] admins: the operator's API */
	const char *node; /* this node's name, for the operator's API */
	struct json_t *(*nodes)(void *arg); /* the cluster's members, or NULL */
	void *nodes_arg;
};

/* {"error":{"code":..,"message":..}}, malloc'd (NULL on ENOMEM). */
char *api_error_body(const char *code, const char *message);
/* A query argument as a non-negative integer: 1 found, 0 absent, -1 bad. */
int api_query_int(const struct api_call *c, const char *name, int64_t *out);
/* A query argument's text, "" when absent. */
const char *api_query_text(const struct api_call *c, const char *name);

/* Adds one "name=value" query argument. */
void api_query_add(struct api_call *c, const char *arg);

/* Handles a call the gate admitted (gate.h). A call with no user is refused
 * 401 here too, before anything else: no handler runs for it. Returns an HTTP status with *body
 * (malloc'd JSON) when the answer is immediate, or 0 when it will come through
 * server_api_respond(). */
int api_dispatch(const struct api_call *c, char **body);

/* The operator's API (api_admin.c, docs/api.md "Operator API"), the same
 * contract as api_dispatch(); a caller that is not an admin gets 403. */
int api_admin_dispatch(const struct api_call *c, char **body);

struct pg_conn;
/* GET /search (api_search.c, docs/api.md "Search") for user, on a reader
 * job's connection: an HTTP status and *out (malloc'd JSON). */
int api_search(struct pg_conn *conn, int64_t user, const struct api_call *c, char **out);
/* GET /users and POST /users/me (api_users.c, docs/api.md "Users") for
 * user, on a reader job's connection: an HTTP status and *out. */
int api_users(struct pg_conn *conn, int64_t user, const struct api_call *c, char **out);
