/* SPDX-License-Identifier: BSD-3-Clause */
/* The socket edge's plain HTTP: requests read with common/httpreq.c, then
 * the API (/api/v1/...), /healthz, /readyz, /metrics, the web client's files
 * (files.c), or a websocket upgrade (wsconn.c).
 *
 * One request at a time per connection, and each in exactly one state:
 *
 *   HEAD --(head)--> gate (gate.c) --admitted, no body---------> RUNNING
 *                     |  |                                         |
 *                     |  +--admitted, body--> BODY --(end)------> RUNNING
 *                     |                                            | answer
 *                     +--refused: answered--> DISCARD --(end)--+   |
 *                                                              v   v
 *                                                               HEAD
 *
 * Only BODY may start a call, and only with the identity the gate gave it:
 * a refused request cannot reach a handler whatever bytes follow. A refused
 * request's body is read and dropped, so that on a kept-alive connection it
 * is not read as the next request; a body that cannot be framed (chunked,
 * an unreadable or too large length) is answered and the connection closed.
 * While a call runs, the connection reads nothing (what came already waits
 * in order), so answers go out in the order of the requests. */
#define LOG_COMPONENT "http"
#include "server-internal.h"

#include "api.h"
#include "clock.h"
#include "config.h"
#include "gate.h"
#include "log.h"
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum http_state {
	HTTP_HEAD,    /* reading a request head */
	HTTP_BODY,    /* admitted; its body is arriving */
	HTTP_DISCARD, /* answered; its body is read and dropped */
	HTTP_RUNNING, /* with api.c; answered by api_answer() or the deadline */
};

/* Per connection in CONN_HTTP, reused by each request of a kept-alive one. */
struct http_conn {
	struct sconn *c;
	enum http_state state;
	bool head;  /* a HEAD request: headers only */
	bool close; /* close the connection after the answer */
	uint64_t body_expected, body_len;
	char *body;
	struct http_conn *next_pending;
	uint64_t deadline_ns; /* when a running call is answered 503 timeout */
	struct api_call call;
	struct http_req req;
};

static struct metric_counter m_requests, m_api_timeouts, m_answers_dropped;

void http_metrics_register(void)
{
	metrics_register_counter("fanout_http_requests_total",
				 "HTTP requests answered by the socket edge.", &m_requests);
	metrics_register_counter("fanout_api_timeouts_total",
				 "API calls answered 503 timeout: no answer within "
				 "api_timeout_ms.",
				 &m_api_timeouts);
	metrics_register_counter("fanout_http_answers_dropped_total",
				 "API answers that found no request waiting for them (the "
				 "connection closed, or the deadline answered first).",
				 &m_answers_dropped);
}

/* The next request starts clean. */
static void request_reset(struct http_conn *h)
{
	free(h->body);
	h->body = NULL;
	h->body_len = h->body_expected = 0;
	h->state = HTTP_HEAD;
	http_req_init(&h->req);
	h->req.any = true;
	h->req.head_max = GATE_HEAD_MAX;
	h->c->held = false;
	h->c->deadline_ns = conn_idle_deadline(h->c);
}

/* Answers */

static int http_respond(struct sconn *c, int status, const char *content_type, const char *extra,
			const void *body, size_t len, bool head_only)
{
	bool close = c->http == NULL || c->http->close;
	char head[1024];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n"
			 "x-content-type-options: nosniff\r\n%s%s\r\n",
			 status, http_status_text(status), content_type, len, extra ? extra : "",
			 close ? "connection: close\r\n" : "");

	metric_add(&m_requests, 1);
	if (n < 0 || (size_t)n >= sizeof(head) || buf_put(&c->out, head, (size_t)n) < 0 ||
	    (!head_only && len && buf_put(&c->out, body, len) < 0)) {
		conn_close(c);
		return -1;
	}
	return 0;
}

/* The answer is queued: the request is over (its body still read if any). */
static void finish(struct sconn *c, struct http_conn *h)
{
	if (h->close) {
		conn_close_after(c);
		return;
	}
	if (h->body_expected > h->body_len) {
		h->state = HTTP_DISCARD;
		free(h->body);
		h->body = NULL;
		c->held = false;
	} else {
		request_reset(h);
	}
	conn_flush(c);
}

static void answer(struct sconn *c, int status, const char *content_type, const char *body,
		   size_t len)
{
	struct http_conn *h = c->http;

	if (http_respond(c, status, content_type, "cache-control: no-store\r\n", body, len,
			 h->head) == 0)
		finish(c, h);
}

static void answer_json(struct sconn *c, int status, const char *json)
{
	answer(c, status, "application/json", json, strlen(json));
}

static void answer_error(struct sconn *c, int status, const char *code, const char *message)
{
	char body[384];

	snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code,
		 message);
	answer_json(c, status, body);
}

static void pending_remove(struct http_conn *h)
{
	for (struct http_conn **pp = &h->c->svc->pending; *pp; pp = &(*pp)->next_pending) {
		if (*pp == h) {
			*pp = h->next_pending;
			break;
		}
	}
	h->next_pending = NULL;
}

/* api.c's late answer (takes body). The service thread, from an event. */
static void api_answer(void *transport, uint64_t id, int status, char *body)
{
	struct service *svc = transport;
	struct http_conn *h = svc->pending;

	while (h && h->call.id != id)
		h = h->next_pending;
	if (h == NULL || h->state != HTTP_RUNNING) {
		metric_add(&m_answers_dropped, 1);
		free(body);
		return;
	}
	pending_remove(h);
	answer_json(h->c, status, body ? body : "{}");
	free(body);
}

void http_expire_pending(struct service *svc)
{
	uint64_t now = time_mono_ns();
	struct http_conn *h = svc->pending, *next;

	for (; h; h = next) {
		next = h->next_pending;
		if (h->deadline_ns > now)
			continue;
		pending_remove(h);
		metric_add(&m_api_timeouts, 1);
		/* The call may still be applied; its late answer finds nobody
		 * and is dropped, and a retry is safe (joins are idempotent,
		 * posts carry a key). */
		answer_error(h->c, 503, "timeout",
			     "no answer in time; the call may still be applied: retry "
			     "(with the same Idempotency-Key when posting)");
	}
}

static void http_conn_free(struct sconn *c);

/* API calls */

/* Starts an admitted call: answered now, or later through api_answer(). */
static void api_start(struct sconn *c, struct http_conn *h)
{
	char *out = NULL;
	int status;

	if (h->call.user[0] == '\0') { /* unreachable by the gate; kept as a wall */
		answer_error(c, 401, "bad_token", "a valid bearer token is required");
		return;
	}
	h->state = HTTP_RUNNING;
	c->held = true;
	c->deadline_ns = UINT64_MAX; /* the call's own deadline answers it */
	h->call.body = h->body;
	h->call.body_len = h->body_len;
	h->call.id = ++c->svc->next_api_id;
	h->call.respond = api_answer;
	status = api_route_admin(h->call.route.id) ? api_admin_dispatch(&h->call, &out)
						   : api_dispatch(&h->call, &out);
	/* api_dispatch copied what it needs. */
	h->call.body = NULL;
	if (status > 0) {
		answer_json(c, status, out ? out : "{}");
		free(out);
		return;
	}
	h->deadline_ns = time_mono_ns() + (uint64_t)atomic_load_explicit(
					      &c->svc->srv->api_timeout_ms, memory_order_relaxed) *
					      1000000ull;
	h->next_pending = c->svc->pending;
	c->svc->pending = h;
}

/* The query's arguments into the call. */
static void read_query(struct http_conn *h)
{
	const char *q = strchr(h->req.path, '?');

	for (int i = 0; q && i < 32; i++) {
		const char *arg = q + 1, *end = strchr(arg, '&');
		size_t len = end ? (size_t)(end - arg) : strlen(arg);
		char decoded[320];

		http_query_decode(arg, len, decoded, sizeof(decoded));
		if (decoded[0])
			api_query_add(&h->call, decoded);
		q = end;
	}
}

/* An API request's head is in: the gate decides. */
static void api_begin(struct sconn *c, struct http_conn *h)
{
	struct socket_server *srv = c->svc->srv;
	struct http_gate_in in;
	struct http_gate_out out;
	char path[HTTP_PATH_MAX];

	memset(&h->call, 0, sizeof(h->call));
	http_gate_input(&h->req, path, sizeof(path), h->call.idempotency_key, &in);
	in.draining = atomic_load(&srv->draining);
	h->call.edge = srv->edge;
	h->call.worker = c->svc->index;
	h->call.method = in.method;
	read_query(h);
	http_gate(&in, srv->cfg.jwt_secret, (int64_t)time(NULL), &out);
	h->body_expected = out.body_len;
	h->close = h->close || out.close;
	/* A client waiting for "100 Continue" that gets a refusal may or may
	 * not send its body: the connection cannot stay in step. */
	if (out.status && h->body_expected && http_req_expects_continue(&h->req))
		h->close = true;
	if (out.status) {
		if (out.status == 401)
			ws_count_auth_refused();
		answer_error(c, out.status, out.code, out.message);
		return;
	}
	h->call.route = out.route;
	memcpy(h->call.user, out.user, sizeof(out.user));
	h->call.admin = config_name_listed(srv->cfg.admins, h->call.user);
	h->call.node = srv->cfg.node;
	h->call.nodes = srv->cfg.nodes;
	h->call.nodes_arg = srv->cfg.nodes_arg;
	if (h->body_expected == 0) {
		api_start(c, h);
		return;
	}
	h->body = malloc(h->body_expected + 1);
	if (h->body == NULL) {
		conn_close(c);
		return;
	}
	h->state = HTTP_BODY;
	if (http_req_expects_continue(&h->req)) {
		static const char go_on[] = "HTTP/1.1 100 Continue\r\n\r\n";
		conn_send(c, go_on, sizeof(go_on) - 1);
	}
}

/* Health, readiness, metrics, files */

static void serve_status(struct sconn *c, const char *path)
{
	struct socket_server *srv = c->svc->srv;
	char why[256] = "", body[320];
	int n;

	if (strcmp(path, "/healthz") == 0) {
		answer(c, 200, "text/plain", "ok\n", 3);
	} else if (strcmp(path, "/readyz") == 0) {
		if (atomic_load(&srv->draining))
			snprintf(why, sizeof(why), "shutting down");
		else if (srv->ready(srv->ready_arg, why, sizeof(why))) {
			answer(c, 200, "text/plain", "ready\n", 6);
			return;
		}
		n = snprintf(body, sizeof(body), "not ready: %s\n", why);
		answer(c, 503, "text/plain", body, (size_t)n);
	} else {
		size_t mlen;
		char *text = metrics_render(&mlen);

		if (text == NULL) {
			conn_close(c);
			return;
		}
		answer(c, 200, "text/plain; version=0.0.4", text, mlen);
		free(text);
	}
}

static void serve_file(struct sconn *c, struct http_conn *h, const char *path)
{
	struct file_answer f;

	files_read(c->svc->srv->cfg.web_root, path, &f);
	if (http_respond(c, f.status, f.content_type, files_headers, f.data, f.len, h->head) == 0)
		finish(c, h);
	free(f.data);
}

/* A request's head is complete (not an upgrade): frame its body, route it. */
static void on_request(struct sconn *c, struct http_conn *h)
{
	struct http_req *r = &h->req;
	enum api_method method = api_method_parse(r->method);
	char path[HTTP_PATH_MAX];
	uint64_t length = 0;

	snprintf(path, sizeof(path), "%.*s", (int)strcspn(r->path, "?"), r->path);
	h->head = method == API_HEAD;
	h->close = !http_req_keep_alive(r);
	/* A body whose length cannot be read is answered and closed. */
	if (r->transfer_encoding || r->length_long ||
	    (r->length_len && !http_gate_length(r->length, &length)))
		h->close = true;
	h->body_expected = length;
	if (strncmp(path, "/api/", 5) == 0 || strcmp(path, "/api") == 0) {
		api_begin(c, h);
	} else if (method != API_GET && method != API_HEAD) {
		answer_error(c, 405, "method_not_allowed", "only GET and HEAD here");
	} else if (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 ||
		   strcmp(path, "/metrics") == 0) {
		serve_status(c, path);
	} else {
		serve_file(c, h, path);
	}
}

/* Bytes of a request head. */
static size_t head_input(struct sconn *c, struct http_conn *h, uint8_t *data, size_t len)
{
	size_t used;

	switch (http_req_feed(&h->req, data, len, &used)) {
	case HTTP_MORE:
		break;
	case HTTP_ERROR:
		h->close = true;
		answer_error(c, h->req.status,
			     h->req.status == 431   ? "headers_too_large"
			     : h->req.status == 414 ? "uri_too_long"
						    : "bad_request",
			     h->req.reason);
		break;
	case HTTP_DONE:
		if (!h->req.upgrade_wanted) {
			on_request(c, h);
			break;
		}
		ws_upgrade(c, &h->req);
		if (c->mode != CONN_HTTP) /* a websocket now (or closed) */
			http_conn_free(c);
		break;
	}
	return used;
}

/* Bytes of a request body: kept for an admitted call, else dropped. */
static size_t body_input(struct sconn *c, struct http_conn *h, uint8_t *data, size_t len)
{
	uint64_t left = h->body_expected - h->body_len;
	size_t take = len < left ? len : (size_t)left;

	if (h->state == HTTP_BODY)
		memcpy(h->body + h->body_len, data, take);
	h->body_len += take;
	if (h->body_len < h->body_expected)
		return take;
	if (h->state == HTTP_BODY) {
		h->body[h->body_len] = '\0';
		api_start(c, h);
	} else {
		request_reset(h);
	}
	return take;
}

static size_t http_input(struct sconn *c, uint8_t *data, size_t len)
{
	size_t used = 0;

	if (c->http == NULL) {
		c->http = calloc(1, sizeof(*c->http));
		if (c->http == NULL) {
			conn_close(c);
			return len;
		}
		c->http->c = c;
		request_reset(c->http);
	}
	while (used < len && c->mode == CONN_HTTP && !c->closing && !c->held) {
		struct http_conn *h = c->http;

		if (h->state == HTTP_HEAD)
			used += head_input(c, h, data + used, len - used);
		else if (h->state == HTTP_BODY || h->state == HTTP_DISCARD)
			used += body_input(c, h, data + used, len - used);
		else
			break;
	}
	return used;
}

/* The connection closes: a running call's answer will find nobody. */
static void http_closed(struct sconn *c)
{
	struct http_conn *h = c->http;

	if (h && h->state == HTTP_RUNNING) {
		pending_remove(h);
		h->state = HTTP_HEAD;
	}
}

static void http_release(struct sconn *c)
{
	struct http_conn *h = c->http;

	if (h == NULL)
		return;
	free(h->body);
	free(h);
	c->http = NULL;
}

static void http_conn_free(struct sconn *c)
{
	http_closed(c);
	http_release(c);
}

const struct conn_ops http_conn_ops = {http_input, NULL, http_closed, http_release};
