/* SPDX-License-Identifier: BSD-3-Clause */
/* The user directory (docs/api.md, "Users"): GET /api/v1/users finds users
 * by the start of their name or of a word of their display name, or looks
 * up the names listed in names=; POST /api/v1/users/me sets the caller's
 * display name. Both run on a reader job's connection. */
#define LOG_COMPONENT "api"
#include "api.h"

#include "store.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define DIRECTORY_MAX 100 /* users in one answer */

static json_t *user_json(const struct store_user *u)
{
	return json_pack("{s:s, s:s}", "name", u->name, "display_name", u->display);
}

static int list(struct pg_conn *conn, const struct api_call *c, char **out)
{
	struct store_user *v = calloc(DIRECTORY_MAX, sizeof(*v));
	const char *names = api_query_text(c, "names");
	json_t *users = json_array(), *o;
	int n = 0, rc = -ENOMEM;

	if (v && users)
		rc = *names
			 ? store_users_named(conn, names, DIRECTORY_MAX, v, &n)
			 : store_users_search(conn, api_query_text(c, "q"), DIRECTORY_MAX, v, &n);
	for (int i = 0; rc == 0 && i < n; i++)
		json_array_append_new(users, user_json(&v[i]));
	free(v);
	o = rc == 0 ? json_pack("{s:o}", "users", users) : (json_decref(users), NULL);
	*out = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (*out)
		return 200;
	*out = api_error_body("unavailable", "retry later");
	return 503;
}

static int set_me(struct pg_conn *conn, int64_t user, const struct api_call *c, char **out)
{
	json_t *body = c->body ? json_loadb(c->body, c->body_len, 0, NULL) : NULL;
	json_t *display = json_object_get(body, "display_name"), *o;
	struct store_user u;
	int rc;

	/* A NUL inside is no text PostgreSQL takes. */
	if (!json_is_string(display) ||
	    strlen(json_string_value(display)) != json_string_length(display)) {
		json_decref(body);
		*out = api_error_body("bad_request", "\"display_name\" is a string");
		return 400;
	}
	rc = store_user_set_display(conn, user, json_string_value(display), &u);
	json_decref(body);
	if (rc == -EINVAL) {
		*out =
		    api_error_body("bad_request", "a display name is at most 64 characters, with "
						  "no control or text-direction characters");
		return 400;
	}
	o = rc == 0 ? json_pack("{s:o}", "user", user_json(&u)) : NULL;
	*out = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (*out)
		return 200;
	*out = api_error_body("unavailable", "retry later");
	return 503;
}

int api_users(struct pg_conn *conn, int64_t user, const struct api_call *c, char **out)
{
	return c->method == API_POST ? set_me(conn, user, c, out) : list(conn, c, out);
}
