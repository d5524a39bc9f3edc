/* SPDX-License-Identifier: BSD-3-Clause */
/* The HTTP API's routes (docs/api.md): a path and a method to a route, or
 * the status that refuses them. Pure string matching: no sockets, no
 * PostgreSQL, so the request fuzzer drives the same code as the server. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

enum api_method { API_GET, API_POST, API_DELETE, API_HEAD, API_OTHER };

enum api_route_id {
	ROUTE_CHANNELS,
	ROUTE_CHANNEL_JOIN,
	ROUTE_CHANNEL_LEAVE,
	ROUTE_MEMBERS,
	ROUTE_MESSAGES,
	ROUTE_THREAD,
	ROUTE_DMS,
	ROUTE_USERS,
	ROUTE_READ,
	ROUTE_MESSAGE_EDIT,
	ROUTE_MESSAGE_DELETE,
	ROUTE_REACTIONS,
	ROUTE_SEARCH,
	/* the operator's (api_admin.c): admins only */
	ROUTE_ADMIN_STATUS,
	ROUTE_ADMIN_CONNECTIONS,
	ROUTE_ADMIN_CONNECTION,
	ROUTE_ADMIN_CHANNEL,
};

/* Whether id is one of the operator's routes. */
static inline bool api_route_admin(enum api_route_id id)
{
	return id >= ROUTE_ADMIN_STATUS;
}

struct api_route {
	enum api_route_id id;
	int64_t channel; /* > 0 for routes under /channels/{id} */
	int64_t seq;	 /* > 0 for routes under /messages/{seq} or /threads/{seq};
			    the connection's id under /admin/connections/{id} */
};

/* Matches path (without the query) and method. Returns 0 and fills *r, 404
 * when no route has that path, or 405 when the path exists but not with that
 * method. Ids are decimal, 1..2^63-1, with no sign, spaces or leading junk. */
int api_route_match(enum api_method method, const char *path, struct api_route *r);

/* The method named by an HTTP request line's method token. */
enum api_method api_method_parse(const char *name);
