/* SPDX-License-Identifier: BSD-3-Clause */
/* The HTTP API's route table: see routes.h. Each route is a path pattern
 * with the methods it allows; a pattern matches whole segments, and an id
 * segment is a positive decimal integer that fits int64. */
#include "routes.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define M(m) (1u << (m))

static const struct {
	const char *pattern; /* "{c}": channel id, "{s}": seq */
	unsigned methods;
	enum api_route_id id;
} routes[] = {
    {"/api/v1/channels", M(API_GET) | M(API_POST), ROUTE_CHANNELS},
    {"/api/v1/dms", M(API_POST), ROUTE_DMS},
    {"/api/v1/users", M(API_GET), ROUTE_USERS},
    {"/api/v1/users/me", M(API_POST), ROUTE_USERS},
    {"/api/v1/search", M(API_GET), ROUTE_SEARCH},
    {"/api/v1/channels/{c}/join", M(API_POST), ROUTE_CHANNEL_JOIN},
    {"/api/v1/channels/{c}/leave", M(API_POST), ROUTE_CHANNEL_LEAVE},
    {"/api/v1/channels/{c}/members", M(API_GET) | M(API_POST), ROUTE_MEMBERS},
    {"/api/v1/channels/{c}/messages", M(API_GET) | M(API_POST), ROUTE_MESSAGES},
    {"/api/v1/channels/{c}/threads/{s}", M(API_GET), ROUTE_THREAD},
    {"/api/v1/channels/{c}/read", M(API_POST), ROUTE_READ},
    {"/api/v1/channels/{c}/messages/{s}", M(API_DELETE), ROUTE_MESSAGE_DELETE},
    {"/api/v1/channels/{c}/messages/{s}/edit", M(API_POST), ROUTE_MESSAGE_EDIT},
    {"/api/v1/channels/{c}/messages/{s}/reactions", M(API_POST) | M(API_DELETE), ROUTE_REACTIONS},
    {"/api/v1/admin/status", M(API_GET), ROUTE_ADMIN_STATUS},
    {"/api/v1/admin/connections", M(API_GET), ROUTE_ADMIN_CONNECTIONS},
    {"/api/v1/admin/connections/{s}", M(API_DELETE), ROUTE_ADMIN_CONNECTION},
    {"/api/v1/admin/channels/{c}", M(API_GET), ROUTE_ADMIN_CHANNEL},
};

/* A positive decimal id at *p up to the next '/' or the end; advances *p. */
static bool parse_id(const char **p, int64_t *out)
{
	const char *s = *p;
	int64_t v = 0;

	if (*s < '1' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (INT64_MAX - (*s - '0')) / 10)
			return false;
		v = v * 10 + (*s - '0');
	}
	if (*s != '\0' && *s != '/')
		return false;
	*p = s;
	*out = v;
	return true;
}

static bool match(const char *pattern, const char *path, int64_t *channel, int64_t *seq)
{
	while (*pattern) {
		if (pattern[0] == '{') {
			if (!parse_id(&path, pattern[1] == 'c' ? channel : seq))
				return false;
			pattern += 3;
		} else if (*pattern++ != *path++) {
			return false;
		}
	}
	return *path == '\0';
}

int api_route_match(enum api_method method, const char *path, struct api_route *r)
{
	bool path_known = false;

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		int64_t channel = 0, seq = 0;

		if (!match(routes[i].pattern, path, &channel, &seq))
			continue;
		path_known = true;
		if (!(routes[i].methods & M(method)))
			continue;
		*r = (struct api_route){routes[i].id, channel, seq};
		return 0;
	}
	return path_known ? 405 : 404;
}

enum api_method api_method_parse(const char *name)
{
	if (strcmp(name, "GET") == 0)
		return API_GET;
	if (strcmp(name, "POST") == 0)
		return API_POST;
	if (strcmp(name, "DELETE") == 0)
		return API_DELETE;
	if (strcmp(name, "HEAD") == 0)
		return API_HEAD;
	return API_OTHER;
}
