/* SPDX-License-Identifier: BSD-3-Clause */
/* An API call's words (api.h): its query arguments as the request line gave
 * them, and the JSON error body every handler answers with. Shared by the
 * handlers (api.c, api_search.c, api_admin.c), so none calls another. */
#include "api.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *api_error_body(const char *code, const char *message)
{
	json_t *o = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message);
	char *text = json_dumps(o, JSON_COMPACT);

	json_decref(o);
	return text;
}

void api_query_add(struct api_call *c, const char *arg)
{
	const char *eq = strchr(arg, '=');

	if (c->nquery == API_QUERY_MAX || eq == NULL)
		return;
	snprintf(c->query[c->nquery].name, sizeof(c->query[0].name), "%.*s", (int)(eq - arg), arg);
	snprintf(c->query[c->nquery].value, sizeof(c->query[0].value), "%s", eq + 1);
	c->nquery++;
}

/* A query argument as a non-negative integer: 1 found, 0 absent, -1 bad. */
int api_query_int(const struct api_call *c, const char *name, int64_t *out)
{
	for (int i = 0; i < c->nquery; i++) {
		char *end;
		if (strcmp(c->query[i].name, name) != 0)
			continue;
		*out = strtoll(c->query[i].value, &end, 10);
		return (*end || end == c->query[i].value || *out < 0) ? -1 : 1;
	}
	return 0;
}

/* A query argument's text, "" when absent. */
const char *api_query_text(const struct api_call *c, const char *name)
{
	for (int i = 0; i < c->nquery; i++)
		if (strcmp(c->query[i].name, name) == 0)
			return c->query[i].value;
	return "";
}
