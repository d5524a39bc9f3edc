/* SPDX-License-Identifier: BSD-3-Clause */
/* The socket edge's plain HTTP: the API (/api/v1/...), /healthz, /readyz and
 * /metrics. Static files and websocket upgrades are server.c's.
 *
 * One request at a time per connection, and each in exactly one state:
 *
 *   IDLE --(headers)--> gate (gate.c) --admitted, no body---------> RUNNING
 *                        |  |                                         |
 *                        |  +--admitted, body--> BODY --(end)------> RUNNING
 *                        |                                            |
 *                        +--refused, body--> DEFERRED --(end)--+      | answer
 *                        +--refused, no body (or unreadable) --+------+
 *                                                              v
 *                                       ANSWERING --(written)--> IDLE
 *
 * Only BODY may start a call, and only with the identity the gate gave it:
 * a refused request cannot reach a handler whatever callbacks follow. No
 * answer goes out while a body is still arriving (on a kept-alive connection
 * the unread bytes would be read as the next request); a body that cannot be
 * read as such (chunked, an unparseable or too large length) is answered at
 * once and the connection closed after the answer. */
#define LOG_COMPONENT "http"
#include "server-internal.h"

#include "api.h"
#include "clock.h"
#include "gate.h"
#include "log.h"
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum http_state {
	HTTP_IDLE,	/* between requests */
	HTTP_BODY,	/* admitted; its body is arriving */
	HTTP_DEFERRED,	/* answered, but the answer waits for the end of the body */
	HTTP_RUNNING,	/* with api.c; answered by api_answer() or the deadline */
	HTTP_ANSWERING, /* headers written; the body goes out when writable */
};

/* Per connection, reused by each request of a kept-alive one. */
struct http_session {
	struct service *svc;
	enum http_state state;
	bool head;  /* a HEAD request: headers only */
	bool close; /* close the connection after the answer */
	unsigned status;
	const char *content_type;
	char *buf; /* LWS_PRE + the answer's body */
	size_t len;
	/* an admitted API call */
	struct api_call call;
	char *body;
	size_t body_len, body_expected;
	struct http_session *next_pending;
	uint64_t deadline_ns; /* when a running call is answered 503 timeout */
	struct lws *wsi;
};

static struct metric_counter m_requests, m_refused, m_api_timeouts, m_answers_dropped;

size_t http_session_size(void)
{
	return sizeof(struct http_session);
}

void http_metrics_register(void)
{
	metrics_register_counter("fanout_http_requests_total",
				 "HTTP requests answered by the socket edge.", &m_requests);
	metrics_register_counter("fanout_auth_refused_total",
				 "Upgrades and API calls refused for a missing, expired or bad "
				 "token (or one in the URL of an API call).",
				 &m_refused);
	metrics_register_counter("fanout_api_timeouts_total",
				 "API calls answered 503 timeout: no answer within "
				 "api_timeout_ms.",
				 &m_api_timeouts);
	metrics_register_counter("fanout_http_answers_dropped_total",
				 "API answers that found no request waiting for them (the "
				 "connection closed, or the deadline answered first).",
				 &m_answers_dropped);
}

void http_count_auth_refused(void)
{
	metric_add(&m_refused, 1);
}

/* Answers */

/* Writes the answer's headers now; its body follows on WRITEABLE. */
static int answer_send(struct lws *wsi, struct http_session *pss)
{
	unsigned char headers[LWS_PRE + 512], *start = headers + LWS_PRE, *p = start,
					      *end = headers + sizeof(headers) - 1;

	pss->state = HTTP_ANSWERING;
	if (lws_add_http_common_headers(wsi, pss->status, pss->content_type,
					(lws_filepos_t)pss->len, &p, end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
					(const unsigned char *)"no-store", 8, &p, end) ||
	    (pss->close &&
	     lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close",
					  5, &p, end)) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	if (pss->head) {
		free(pss->buf);
		pss->buf = NULL;
		pss->state = HTTP_IDLE;
		return pss->close || lws_http_transaction_completed(wsi) ? -1 : 0;
	}
	lws_callback_on_writable(wsi);
	return 0;
}

/* Sets the answer, and sends it unless a body is still arriving. */
static int respond(struct lws *wsi, struct http_session *pss, unsigned status,
		   const char *content_type, const char *body, size_t len)
{
	free(pss->buf);
	pss->buf = malloc(LWS_PRE + len + 1);
	if (pss->buf == NULL)
		return -1;
	memcpy(pss->buf + LWS_PRE, body, len);
	pss->len = len;
	pss->status = status;
	pss->content_type = content_type;
	metric_add(&m_requests, 1);
	if (pss->body_expected && !pss->close) {
		pss->state = HTTP_DEFERRED;
		return 0;
	}
	return answer_send(wsi, pss);
}

static int respond_json(struct lws *wsi, struct http_session *pss, unsigned status,
			const char *json)
{
	return respond(wsi, pss, status, "application/json", json, strlen(json));
}

static int respond_error(struct lws *wsi, struct http_session *pss, unsigned status,
			 const char *code, const char *message)
{
	char body[384];

	snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code,
		 message);
	return respond_json(wsi, pss, status, body);
}

static void pending_remove(struct http_session *pss)
{
	for (struct http_session **pp = &pss->svc->pending; *pp; pp = &(*pp)->next_pending) {
		if (*pp == pss) {
			*pp = pss->next_pending;
			break;
		}
	}
	pss->next_pending = NULL;
}

/* api.c's late answer (takes body). The service thread, from an event. */
static void api_answer(void *transport, uint64_t id, int status, char *body)
{
	struct service *svc = transport;
	struct http_session *pss = svc->pending;

	while (pss && pss->call.id != id)
		pss = pss->next_pending;
	if (pss == NULL || pss->state != HTTP_RUNNING) {
		metric_add(&m_answers_dropped, 1);
		free(body);
		return;
	}
	pending_remove(pss);
	if (respond_json(pss->wsi, pss, (unsigned)status, body ? body : "{}") < 0)
		lws_set_timeout(pss->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
	free(body);
}

void http_expire_pending(struct service *svc)
{
	uint64_t now = time_mono_ns();
	struct http_session *pss = svc->pending, *next;

	for (; pss; pss = next) {
		next = pss->next_pending;
		if (pss->deadline_ns > now)
			continue;
		pending_remove(pss);
		metric_add(&m_api_timeouts, 1);
		/* The call may still be applied; its late answer finds nobody
		 * and is dropped, and a retry is safe (joins are idempotent,
		 * posts carry a key). */
		if (respond_error(pss->wsi, pss, HTTP_STATUS_SERVICE_UNAVAILABLE, "timeout",
				  "no answer in time; the call may still be applied: retry "
				  "(with the same Idempotency-Key when posting)") < 0)
			lws_set_timeout(pss->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
	}
}

/* API calls */

/* Starts an admitted call: answered now, or later through api_answer(). */
static int api_start(struct lws *wsi, struct http_session *pss)
{
	char *out = NULL;
	int status;

	if (pss->call.user[0] == '\0') /* unreachable by the gate; kept as a wall */
		return respond_error(wsi, pss, HTTP_STATUS_UNAUTHORIZED, "bad_token",
				     "a valid bearer token is required");
	pss->state = HTTP_RUNNING;
	pss->body_expected = 0;
	pss->call.body = pss->body;
	pss->call.body_len = pss->body_len;
	pss->call.id = ++pss->svc->next_api_id;
	pss->call.respond = api_answer;
	status = api_dispatch(&pss->call, &out);
	/* api_dispatch copied what it needs. */
	free(pss->body);
	pss->body = NULL;
	pss->body_len = 0;
	pss->call.body = NULL;
	if (status > 0) {
		int rc = respond_json(wsi, pss, (unsigned)status, out ? out : "{}");
		free(out);
		return rc;
	}
	pss->wsi = wsi;
	pss->deadline_ns =
	    time_mono_ns() + (uint64_t)pss->svc->srv->cfg.api_timeout_ms * 1000000ull;
	pss->next_pending = pss->svc->pending;
	pss->svc->pending = pss;
	/* libwebsockets still runs the timer it set while the body came in
	 * (5 s, then a silent close): the deadline above is the only one. */
	lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
	return 0;
}

/* Reads what the gate needs from lws's headers into in (buffers in the
 * caller's frame) and the query into the call. */
static void gate_input(struct lws *wsi, struct http_session *pss, struct http_gate_in *in,
		       char *auth, size_t auth_size, char *length, size_t length_size)
{
	int n;

	n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
	if (n >= (int)auth_size)
		in->authorization_too_big = true;
	else if (n > 0 && lws_hdr_copy(wsi, auth, (int)auth_size, WSI_TOKEN_HTTP_AUTHORIZATION) > 0)
		in->authorization = auth;
	n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
	if (n > 0) {
		in->content_length = "x"; /* too long to be a length we accept */
		if (n < (int)length_size &&
		    lws_hdr_copy(wsi, length, (int)length_size, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0)
			in->content_length = length;
	}
	in->transfer_encoding = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0;
	n = lws_hdr_custom_length(wsi, "idempotency-key:", 16);
	if (n >= 0) {
		in->idempotency_key = pss->call.idempotency_key;
		in->idempotency_key_len = (size_t)n;
		if (n >= (int)sizeof(pss->call.idempotency_key) ||
		    lws_hdr_custom_copy(wsi, pss->call.idempotency_key,
					sizeof(pss->call.idempotency_key),
					"idempotency-key:", 16) < 0)
			pss->call.idempotency_key[0] = '\0';
	}
	for (int i = 0; i < 32; i++) {
		char arg[256];
		if (lws_hdr_copy_fragment(wsi, arg, sizeof(arg), WSI_TOKEN_HTTP_URI_ARGS, i) <= 0)
			break;
		if (strncmp(arg, "token=", 6) == 0)
			in->query_token = true;
		api_query_add(&pss->call, arg);
	}
}

static enum api_method method_of(int lws_method)
{
	switch (lws_method) {
	case LWSHUMETH_GET:
		return API_GET;
	case LWSHUMETH_POST:
		return API_POST;
	case LWSHUMETH_DELETE:
		return API_DELETE;
	case LWSHUMETH_HEAD:
		return API_HEAD;
	default:
		return API_OTHER;
	}
}

/* An API request's headers are in: the gate decides. */
static int api_begin(struct lws *wsi, struct http_session *pss, enum api_method method,
		     const char *path)
{
	struct socket_server *srv = pss->svc->srv;
	struct http_gate_in in = {.method = method, .path = path};
	struct http_gate_out out;
	char auth[2048], length[24];

	memset(&pss->call, 0, sizeof(pss->call));
	pss->call.edge = srv->edge;
	pss->call.worker = pss->svc->index;
	pss->call.method = method;
	in.draining = atomic_load(&srv->draining);
	gate_input(wsi, pss, &in, auth, sizeof(auth), length, sizeof(length));
	http_gate(&in, srv->cfg.jwt_secret, (int64_t)time(NULL), &out);
	pss->body_expected = out.body_len;
	pss->close = out.close;
	if (out.status) {
		if (out.status == HTTP_STATUS_UNAUTHORIZED)
			metric_add(&m_refused, 1);
		return respond_error(wsi, pss, (unsigned)out.status, out.code, out.message);
	}
	pss->call.route = out.route;
	memcpy(pss->call.user, out.user, sizeof(out.user));
	if (pss->body_expected) {
		pss->state = HTTP_BODY;
		return 0;
	}
	return api_start(wsi, pss);
}

/* Health, readiness, metrics */

static int serve_status(struct lws *wsi, struct http_session *pss, const char *path)
{
	struct socket_server *srv = pss->svc->srv;
	char why[256] = "", body[320];
	int n;

	if (strcmp(path, "/healthz") == 0)
		return respond(wsi, pss, HTTP_STATUS_OK, "text/plain", "ok\n", 3);
	if (strcmp(path, "/readyz") == 0) {
		if (atomic_load(&srv->draining))
			snprintf(why, sizeof(why), "shutting down");
		else if (srv->ready(srv->ready_arg, why, sizeof(why)))
			return respond(wsi, pss, HTTP_STATUS_OK, "text/plain", "ready\n", 6);
		n = snprintf(body, sizeof(body), "not ready: %s\n", why);
		return respond(wsi, pss, HTTP_STATUS_SERVICE_UNAVAILABLE, "text/plain", body,
			       (size_t)n);
	}
	if (strcmp(path, "/metrics") == 0) {
		size_t mlen;
		char *text = metrics_render(&mlen);
		int rc;
		if (text == NULL)
			return -1;
		rc = respond(wsi, pss, HTTP_STATUS_OK, "text/plain; version=0.0.4", text, mlen);
		free(text);
		return rc;
	}
	return respond(wsi, pss, HTTP_STATUS_NOT_FOUND, "text/plain", "not found\n", 10);
}

/* A new request's headers: start it clean, then route it. */
static int on_request(struct lws *wsi, struct http_session *pss, struct service *svc)
{
	char *uri = NULL, path[256];
	int uri_len = 0, method = lws_http_get_uri_and_method(wsi, &uri, &uri_len), n;

	if (pss->state == HTTP_RUNNING)
		pending_remove(pss);
	free(pss->body);
	free(pss->buf);
	memset(pss, 0, sizeof(*pss));
	pss->svc = svc;
	pss->head = method == LWSHUMETH_HEAD;
	/* Until the gate has read it, an announced body holds back the
	 * answer; one whose length cannot be read is answered and closed. */
	n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
	if (n > 0) {
		char length[24] = "x";
		uint64_t v = 0;
		if (n < (int)sizeof(length))
			lws_hdr_copy(wsi, length, sizeof(length), WSI_TOKEN_HTTP_CONTENT_LENGTH);
		pss->close = !http_gate_length(length, &v);
		pss->body_expected = v;
	}
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0)
		pss->close = true;
	if (uri == NULL || uri_len <= 0 || uri_len >= (int)sizeof(path))
		snprintf(path, sizeof(path), "/");
	else
		snprintf(path, sizeof(path), "%.*s", uri_len, uri);
	if (strncmp(path, "/api/", 5) == 0 || strcmp(path, "/api") == 0)
		return api_begin(wsi, pss, method_of(method), path);
	if (method != LWSHUMETH_GET && method != LWSHUMETH_HEAD)
		return respond(wsi, pss, HTTP_STATUS_METHOD_NOT_ALLOWED, "text/plain",
			       "method not allowed\n", 19);
	return serve_status(wsi, pss, path);
}

int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		  size_t len)
{
	struct http_session *pss = user;
	struct service *svc = lws_context_user(lws_get_context(wsi));

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		return on_request(wsi, pss, svc) < 0 ? -1 : 0;
	case LWS_CALLBACK_HTTP_BODY:
		/* Kept only for an admitted call, and never past the length
		 * the gate accepted; any other body is read and dropped. */
		if (pss->state != HTTP_BODY || len == 0)
			return 0;
		if (pss->body_len + len > pss->body_expected)
			return -1;
		char *b = realloc(pss->body, pss->body_len + len + 1);
		if (b == NULL)
			return -1;
		memcpy(b + pss->body_len, in, len);
		pss->body = b;
		pss->body_len += len;
		b[pss->body_len] = '\0';
		return 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (pss->state == HTTP_BODY)
			return api_start(wsi, pss) < 0 ? -1 : 0;
		if (pss->state == HTTP_DEFERRED) {
			pss->body_expected = 0;
			return answer_send(wsi, pss) < 0 ? -1 : 0;
		}
		return 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (pss->state != HTTP_ANSWERING || pss->buf == NULL)
			break;
		if (lws_write(wsi, (unsigned char *)pss->buf + LWS_PRE, pss->len,
			      LWS_WRITE_HTTP_FINAL) != (int)pss->len)
			return -1;
		free(pss->buf);
		pss->buf = NULL;
		pss->state = HTTP_IDLE;
		if (pss->close || lws_http_transaction_completed(wsi))
			return -1;
		return 0;
	case LWS_CALLBACK_CLOSED_HTTP:
		if (pss->svc && pss->state == HTTP_RUNNING)
			pending_remove(pss);
		free(pss->buf);
		free(pss->body);
		pss->buf = pss->body = NULL;
		pss->state = HTTP_IDLE;
		break;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}
