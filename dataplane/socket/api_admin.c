/* SPDX-License-Identifier: BSD-3-Clause */
/* The operator's API (docs/api.md, "Operator API"): the node's figures, its
 * connections, closing one, and a channel as this node sees it. Only the
 * users named in [auth] admins may call it (403 forbidden for the others,
 * checked here, before anything runs); fanoutctl and the web client's
 * operator page read it. Answers come on the calling worker's thread. */
#define LOG_COMPONENT "api"
#include "api.h"

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "publish.h"
#include "store.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define LIST_DEFAULT 1000
#define LIST_MAX     100000

struct admin_job {
	struct fanout_event ev;
	struct api_call call; /* its body and query are not used after dispatch */
	int64_t limit;
	int subscribers; /* channel info: connections here subscribed to it */
	int status;
	char *out;
};

static void respond(struct admin_job *j, int status, char *out)
{
	struct edge_worker *w = edge_worker_of(j->call.edge, j->call.worker);

	j->call.respond(edge_worker_transport(w), j->call.id, status, out);
	free(j);
}

static char *dump(json_t *o)
{
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return text;
}

static json_t *conn_json(const struct edge_conn_info *c)
{
	char opened[40];

	encode_timestamp(c->opened_us, opened);
	return json_pack("{s:I, s:i, s:s, s:s, s:s, s:s, s:i, s:i, s:I, s:b}", "id",
			 (json_int_t)c->id, "worker", c->worker, "user", c->user, "peer", c->peer,
			 "opened", opened, "state", c->state, "subscriptions", c->subscriptions,
			 "queued_frames", (int)c->queued_frames, "queued_bytes",
			 (json_int_t)c->queued_bytes, "paused", c->paused);
}

/* GET /admin/connections: the list, gathered from every worker. */
static void connections_done(void *arg, const struct edge_conn_info *v, int n)
{
	struct admin_job *j = arg;
	json_t *list = json_array();

	for (int i = 0; i < n && i < j->limit; i++)
		json_array_append_new(list, conn_json(&v[i]));
	respond(j, 200,
		dump(json_pack("{s:s, s:i, s:b, s:o}", "node", j->call.node, "total", n,
			       "truncated", n > j->limit, "connections", list)));
}

static void connection_closed(void *arg, bool found)
{
	struct admin_job *j = arg;

	if (found)
		respond(j, 200,
			dump(json_pack("{s:I, s:i}", "closed", (json_int_t)j->call.route.seq,
				       "code", CLOSE_BY_OPERATOR)));
	else
		respond(j, 404, api_error_body("not_found", "no such connection on this node"));
}

/* GET /admin/channels/{c}: PostgreSQL's row, after the count of this
 * node's subscribers. Reader thread. */
static void channel_read(void *arg, struct pg_conn *conn)
{
	struct admin_job *j = arg;
	struct store_channel_info ci;
	int64_t epoch = 0;
	bool owned;
	int rc = conn ? store_channel_info(conn, j->call.route.channel, &ci) : -EIO;

	if (rc == -ENOENT) {
		j->status = 404;
		j->out = api_error_body("not_found", "no such channel");
	} else if (rc < 0) {
		j->status = 503;
		j->out = api_error_body("unavailable", "the database is unreachable; retry later");
	} else {
		owned = publish_owns(edge_publish(j->call.edge), ci.id, &epoch);
		j->status = 200;
		j->out = dump(
		    json_pack("{s:I, s:s, s:s, s:I, s:I, s:I, s:s, s:{s:s, s:b, s:I, s:i}}", "id",
			      (json_int_t)ci.id, "name", ci.name, "kind", ci.kind, "last_seq",
			      (json_int_t)ci.last_seq, "owner_epoch", (json_int_t)ci.owner_epoch,
			      "members", (json_int_t)ci.members, "created_at", ci.created_at,
			      "node", "name", j->call.node, "owner", owned, "epoch",
			      (json_int_t)(owned ? epoch : 0), "subscribers", j->subscribers));
	}
	fanout_post_event(edge_fanout(j->call.edge), j->call.worker, &j->ev);
}

static void channel_answer(void *worker_arg, struct fanout_event *ev)
{
	struct admin_job *j = (struct admin_job *)ev;

	(void)worker_arg;
	respond(j, j->status, j->out);
}

static void channel_counted(void *arg, const struct edge_conn_info *v, int n)
{
	struct admin_job *j = arg;

	(void)v;
	j->subscribers = n;
	j->ev.run = channel_answer;
	if (persist_reader_run(edge_reader(j->call.edge), channel_read, j) < 0)
		respond(j, 503, api_error_body("unavailable", "shutting down"));
}

static char *status_body(const struct api_call *c)
{
	json_t *metrics = metrics_snapshot();
	json_t *nodes = c->nodes ? c->nodes(c->nodes_arg) : NULL;
	char now[40];

	encode_timestamp(time_real_us(), now);
	if (metrics == NULL) {
		json_decref(nodes);
		return NULL;
	}
	/* nodes: the cluster's members; null for a node alone */
	return dump(json_pack("{s:s, s:s, s:o, s:o}", "node", c->node, "time", now, "metrics",
			      metrics, "nodes", nodes ? nodes : json_null()));
}

/* Starts the list, the close or the channel count; 0, or a status with
 * *body. */
static int start(struct admin_job *j, char **body)
{
	const struct api_call *c = &j->call;
	char user[65] = "";
	int64_t channel = 0;
	int rc;

	if (c->route.id == ROUTE_ADMIN_CHANNEL)
		return edge_list_connections(c->edge, c->worker, c->route.channel, NULL,
					     channel_counted, j);
	if (c->route.id == ROUTE_ADMIN_CONNECTION) {
		rc = edge_close_connection(c->edge, c->worker, (uint64_t)c->route.seq,
					   CLOSE_BY_OPERATOR, "closed by an operator",
					   connection_closed, j);
		if (rc == -ENOENT) {
			*body = api_error_body("not_found", "no such connection on this node");
			return 404;
		}
		return rc;
	}
	if (api_query_int(c, "channel", &channel) < 0 || api_query_int(c, "limit", &j->limit) < 0 ||
	    j->limit > LIST_MAX) {
		*body = api_error_body("bad_request", "channel and limit (<= 100000) are numbers");
		return 400;
	}
	for (int i = 0; i < c->nquery; i++)
		if (strcmp(c->query[i].name, "user") == 0)
			snprintf(user, sizeof(user), "%s", c->query[i].value);
	return edge_list_connections(c->edge, c->worker, channel, user, connections_done, j);
}

int api_admin_dispatch(const struct api_call *c, char **body)
{
	struct admin_job *j;
	int rc;

	if (c->user[0] == '\0' || !jwt_subject_valid(c->user)) {
		*body = api_error_body("bad_token", "a valid bearer token is required");
		return 401;
	}
	if (!c->admin) {
		*body = api_error_body("forbidden", "the operator's API is for [auth] admins");
		return 403;
	}
	if (c->route.id == ROUTE_ADMIN_STATUS) {
		*body = status_body(c);
		return *body ? 200 : 503;
	}
	j = calloc(1, sizeof(*j));
	if (j == NULL) {
		*body = api_error_body("overloaded", "retry later");
		return 503;
	}
	j->call = *c;
	j->call.body = NULL;
	j->limit = LIST_DEFAULT;
	rc = start(j, body);
	if (rc == 0)
		return 0;
	free(j);
	if (rc > 0)
		return rc;
	*body = api_error_body("overloaded", "retry later");
	return 503;
}
