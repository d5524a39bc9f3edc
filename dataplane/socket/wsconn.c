/* SPDX-License-Identifier: BSD-3-Clause */
/* Websockets on the socket edge: the upgrade (path, token and draining
 * checked before the 101, as the DPDK edge does), then frames through the
 * shared decoder (common/ws.c: masking, lengths, control frames, UTF-8, the
 * size limit, each violation failed with RFC 6455's close code), complete
 * text messages to the session, and the session's frames out: as many as
 * fit under the output's high-water mark, headers and payloads coalesced
 * into one write. */
#define LOG_COMPONENT "socket"
#include "server-internal.h"

#include "edge.h"
#include "jwt.h"
#include "log.h"
#include "metrics.h"
#include "ws.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PEEK_MAX 64

struct ws_conn {
	struct session *s;
	struct buf rx;	 /* the pieces of the message being received */
	bool close_sent; /* and the session ended: what follows is the close */
	bool counted;	 /* in connections_open, until the connection closes */
	struct ws_decoder dec;
};

static struct metric_counter m_connections_total, m_frames_out, m_bytes_out, m_refused;
static atomic_int connections_open;

static double connections_gauge(void *arg)
{
	return atomic_load(&connections_open);
}

void ws_metrics_register(void)
{
	metrics_register_counter("fanout_connections_accepted_total",
				 "Websocket connections accepted.", &m_connections_total);
	metrics_register_counter("fanout_frames_out_total", "Websocket frames written to clients.",
				 &m_frames_out);
	metrics_register_counter("fanout_bytes_out_total",
				 "Payload bytes of the websocket frames written to clients.",
				 &m_bytes_out);
	metrics_register_gauge("fanout_connections", "Open websocket connections.",
			       connections_gauge, NULL);
	metrics_register_counter("fanout_auth_refused_total",
				 "Upgrades and API calls refused for a missing, expired or bad "
				 "token (or one in the URL of an API call).",
				 &m_refused);
}

void ws_count_auth_refused(void)
{
	metric_add(&m_refused, 1);
}

int ws_open_count(void)
{
	return atomic_load(&connections_open);
}

/* A frame of op with payload, queued. */
static int send_frame(struct sconn *c, enum ws_opcode op, const void *payload, size_t len)
{
	uint8_t head[10];
	size_t n = ws_frame_header(head, op, len);

	if (buf_put(&c->out, head, n) < 0 || buf_put(&c->out, payload, len) < 0) {
		conn_close(c);
		return -1;
	}
	return 0;
}

/* A close frame with code and reason, then the connection ends. */
static void send_close(struct sconn *c, int code, const char *reason)
{
	uint8_t payload[125];
	size_t n;

	if (c->ws == NULL || c->ws->close_sent)
		return;
	c->ws->close_sent = true;
	n = ws_close_payload(payload, code, reason);
	if (c->ws->s) {
		session_closed(c->ws->s);
		c->ws->s = NULL;
	}
	buf_free(&c->ws->rx);
	if (send_frame(c, WS_CLOSE, payload, n) == 0)
		conn_close_after(c);
}

static void want_write(void *ctx)
{
	struct sconn *c = ctx;

	if (!c->in_writers && c->mode == CONN_WS) {
		c->in_writers = true;
		c->wnext = c->svc->writers;
		c->svc->writers = c;
	}
}

static void pause_rx(void *ctx, bool off)
{
	struct sconn *c = ctx;

	c->paused = off;
	conn_update_events(c);
}

/* Moves the session's frames to the output until it reaches the high-water
 * mark; true when that mark stopped it (frames may still be queued). */
static bool pull_some(struct sconn *c)
{
	struct ws_conn *ws = c->ws;
	struct frame *fr[PEEK_MAX];

	while (c->mode == CONN_WS && ws->s && !ws->close_sent &&
	       c->out.len - c->out_off < OUT_HIGH_WATER) {
		const char *why;
		int n = session_peek_many(ws->s, fr, PEEK_MAX), k;
		uint64_t bytes = 0;

		if (n == 0) {
			int code = session_close_code(ws->s, &why);
			if (code)
				send_close(c, code, why);
			return false;
		}
		for (k = 0; k < n; k++) {
			if (send_frame(c, WS_TEXT, frame_payload(fr[k]), fr[k]->len) < 0)
				return false; /* closed */
			bytes += fr[k]->len;
		}
		session_sent_many(ws->s, n);
		metric_add(&m_frames_out, (uint64_t)n);
		metric_add(&m_bytes_out, bytes);
	}
	return c->mode == CONN_WS && ws->s && !ws->close_sent;
}

void ws_pull(struct sconn *c)
{
	/* A flush that empties an output which had stopped the pull leaves
	 * nothing to ask for EPOLLOUT, and nothing else wakes a session
	 * whose frames wait (a close behind a backlog, a replay's last
	 * page): pull again while the flush keeps making room. */
	while (pull_some(c)) {
		conn_flush(c);
		if (c->mode == CONN_DEAD || c->out.len - c->out_off >= OUT_HIGH_WATER)
			return;
	}
	if (c->mode != CONN_DEAD)
		conn_flush(c);
}

static void on_data(void *ctx, enum ws_opcode op, const uint8_t *data, size_t len, bool last)
{
	struct sconn *c = ctx;
	struct ws_conn *ws = c->ws;
	const char *msg;
	size_t msg_len;
	int rc;

	if (c->mode != CONN_WS || ws->close_sent)
		return;
	rc = ws_message_piece(&ws->rx, op, data, len, last, &msg, &msg_len);
	if (rc > 1) {
		send_close(c, rc, ws_close_reason(rc));
	} else if (rc == 1) {
		session_on_text(ws->s, msg, msg_len);
		ws_message_done(&ws->rx);
	}
}

static void on_control(void *ctx, enum ws_opcode op, const uint8_t *data, size_t len, int code)
{
	struct sconn *c = ctx;

	if (c->mode != CONN_WS || c->ws->close_sent)
		return;
	if (op == WS_PING) {
		if (send_frame(c, WS_PONG, data, len) == 0)
			conn_flush(c);
	} else if (op == WS_CLOSE) {
		/* echo the code (RFC 6455 5.5.1); none given: a normal close */
		send_close(c, code == 1005 ? 1000 : code, "");
	}
}

static const struct ws_events events = {on_data, on_control};

static size_t ws_input(struct sconn *c, uint8_t *data, size_t len);
static void ws_closed(struct sconn *c);
static void ws_release(struct sconn *c);
static const struct conn_ops ws_conn_ops = {ws_input, ws_pull, ws_closed, ws_release};

static size_t ws_input(struct sconn *c, uint8_t *data, size_t len)
{
	int rc;

	if (c->ws == NULL || c->ws->close_sent)
		return len; /* after the close: read and dropped */
	rc = ws_decode(&c->ws->dec, data, len, &events, c);
	if (rc && c->mode == CONN_WS)
		send_close(c, rc, ws_close_reason(rc));
	return len;
}

/* An HTTP error instead of the upgrade; the connection ends. */
static void refuse(struct sconn *c, int status, const char *code, const char *reason)
{
	char out[512];
	size_t n = http_error_response(status, code, reason, out, sizeof(out));

	if (n)
		conn_send(c, out, n);
	conn_close_after(c);
}

/* The upgrade's checks; 0 with the user, or refused. */
static int admit(struct sconn *c, struct http_req *req, char user[JWT_SUBJECT_MAX + 1])
{
	struct socket_server *srv = c->svc->srv;
	const char *token;
	int64_t exp;
	int rc;

	if (strcspn(req->path, "?") != 3 || memcmp(req->path, "/ws", 3) != 0) {
		refuse(c, 404, "not_found", "websockets are served at /ws");
		return -1;
	}
	if (atomic_load(&srv->draining)) {
		refuse(c, 503, "shutting_down", "the server is shutting down");
		return -1;
	}
	token = http_req_token(req, true);
	rc = token ? jwt_verify(srv->cfg.jwt_secret, token, (int64_t)time(NULL), user, &exp)
		   : -ENOENT;
	if (rc < 0) {
		ws_count_auth_refused();
		refuse(c, 401, jwt_error_code(rc), "a valid token is required");
		return -1;
	}
	return 0;
}

void ws_upgrade(struct sconn *c, struct http_req *req)
{
	struct socket_server *srv = c->svc->srv;
	char user[JWT_SUBJECT_MAX + 1], resp[256];
	struct ws_conn *ws;
	size_t n;

	if (admit(c, req, user) < 0)
		return;
	n = ws_handshake_response(req, resp, sizeof(resp));
	ws = calloc(1, sizeof(*ws));
	if (n == 0 || ws == NULL) {
		free(ws);
		refuse(c, 503, "unavailable", "cannot open a websocket now");
		return;
	}
	ws_decoder_init(&ws->dec, edge_config(srv->edge)->max_message_bytes);
	c->ws = ws;
	conn_set_ws(c, &ws_conn_ops);
	/* The 101 is queued, not written, until the session is open: a write
	 * that fails closes the connection, which must then close the session. */
	if (buf_put(&c->out, resp, n) < 0) {
		conn_close(c);
		return;
	}
	int open = atomic_fetch_add(&connections_open, 1); /* a place, taken first */
	int cap = atomic_load_explicit(&srv->max_connections, memory_order_relaxed);
	bool full = cap && open >= cap;
	char peer[48];
	static const struct session_ops ops = {want_write, pause_rx};
	struct session_transport t = {&ops, c, conn_peer(c, peer, sizeof(peer))};

	ws->s = full ? NULL : session_open(c->svc->worker, user, &t);
	ws->counted = ws->s != NULL;
	if (ws->s == NULL) {
		atomic_fetch_sub(&connections_open, 1);
		full = full || errno == ENOSPC;
		send_close(c, full ? 1013 : 1011,
			   full ? "server full; try again later" : "cannot open a session");
		return;
	}
	metric_add(&m_connections_total, 1);
	conn_flush(c);
}

static void ws_closed(struct sconn *c)
{
	struct ws_conn *ws = c->ws;

	if (ws == NULL)
		return;
	if (ws->s)
		session_closed(ws->s);
	ws->s = NULL;
	ws->close_sent = true; /* the decoder may still be running: it stops */
	if (ws->counted)
		atomic_fetch_sub(&connections_open, 1);
	ws->counted = false;
}

static void ws_release(struct sconn *c)
{
	if (c->ws == NULL)
		return;
	buf_free(&c->ws->rx);
	ws_decoder_release(&c->ws->dec);
	free(c->ws);
	c->ws = NULL;
}
