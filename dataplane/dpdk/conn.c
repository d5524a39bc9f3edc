/* SPDX-License-Identifier: BSD-3-Clause */
/* A DPDK edge connection from accept to close: the upgrade request in a
 * handshake slot (the longest-waiting connection gets the next free one),
 * the token and path checked as the socket edge does, the same session of
 * the messaging core, websocket frames in and out, and the close. The TCP
 * engine's callbacks. A connection's struct dconn is w->conns[i] for the
 * engine's connection i: taken and freed with it. */
#include "dpdk-internal.h"

/* ---- sending on a connection ---- */

/* Queues f (taking a reference) as a websocket frame of opcode op. */
int conn_queue_frame(struct dconn *dc, struct frame *f, enum ws_opcode op)
{
	struct frame_tx *t = tx_frame_state(f);
	uint8_t *payload = frame_payload(f);

	if (t->hlen == 0) { /* once per frame on this worker */
		uint8_t h[10];

		t->hlen = (uint8_t)ws_frame_header(h, op, f->len);
		memcpy(payload - t->hlen, h, t->hlen);
		t->csum = csum_partial(payload - t->hlen, t->hlen + f->len, 0);
		t->shinfo.free_cb = tx_ext_free;
		t->shinfo.fcb_opaque = f;
		rte_mbuf_ext_refcnt_set(&t->shinfo, 0);
	}
	tx_frame_take(f);
	if (tcp_send(dc->w->tcp, dconn_tcp(dc), payload - t->hlen, t->hlen + f->len, f) < 0) {
		tx_frame_give(f);
		return -1;
	}
	return 0;
}

/* A close frame with code and reason, then our FIN. */
static void send_close(struct dconn *dc, int code, const char *reason)
{
	uint8_t payload[125];
	size_t n;
	struct frame *f;

	if (dc->close_sent || dc->state == DC_FREE)
		return;
	dc->close_sent = true;
	n = ws_close_payload(payload, code, reason);
	f = frame_new(FRAME_CONTROL, 0, 0, payload, n);
	if (f) {
		conn_queue_frame(dc, f, WS_CLOSE);
		frame_unref(f);
	}
	dc->state = DC_CLOSING;
	tcp_close(dc->w->tcp, dconn_tcp(dc));
}

static void http_feed(struct dconn *dc, uint8_t *data, size_t len);

/* The connections waiting for a handshake slot: a list in arrival order,
 * each taken off it when it gets a slot or closes. */
static void wait_add(struct dworker *w, struct dconn *dc)
{
	dc->waiting = true;
	dc->u.http.wait_next = NULL;
	dc->u.http.wait_prev = w->hs_wait_tail;
	if (w->hs_wait_tail)
		w->hs_wait_tail->u.http.wait_next = dc;
	else
		w->hs_wait = dc;
	w->hs_wait_tail = dc;
}

static void wait_remove(struct dworker *w, struct dconn *dc)
{
	struct dconn *next = dc->u.http.wait_next, *prev = dc->u.http.wait_prev;

	if (prev)
		prev->u.http.wait_next = next;
	else
		w->hs_wait = next;
	if (next)
		next->u.http.wait_prev = prev;
	else
		w->hs_wait_tail = prev;
	dc->waiting = false;
}

/* A handshake slot is free again: the longest-waiting connection gets it
 * and parses what it holds of its request (its window opens if it was
 * shut). */
static void hs_put(struct dworker *w, struct handshake *h)
{
	struct dconn *dc = w->hs_wait;
	struct buf held;

	h->next = w->free_hs;
	w->free_hs = h;
	if (dc == NULL)
		return;
	wait_remove(w, dc);
	dc->u.http.hs = w->free_hs;
	w->free_hs = h->next;
	http_req_init(&h->req);
	tcp_pause_rx(w->tcp, dconn_tcp(dc), false);
	held = dc->u.http.held;
	dc->u.http.held = (struct buf){0};
	if (held.len)
		http_feed(dc, (uint8_t *)held.data, held.len);
	buf_free(&held);
}

/* dc is done with its upgrade request (upgraded, refused or closed): it
 * gives back its handshake slot unless its answer still holds it (the
 * caller then took it), leaves the wait list, drops what it held, and its
 * union becomes the websocket's, empty (the decoder is set up on upgrade). */
void conn_leave_http(struct dconn *dc)
{
	struct handshake *h = dc->u.http.hs;

	if (dc->waiting)
		wait_remove(dc->w, dc);
	buf_free(&dc->u.http.held);
	memset(&dc->u, 0, sizeof(dc->u));
	if (h)
		hs_put(dc->w, h);
}

/* An HTTP answer to the upgrade request, then our FIN. */
static void refuse(struct dconn *dc, int status, const char *code, const char *reason)
{
	struct handshake *h = dc->u.http.hs;
	size_t n = http_error_response(status, code, reason, h->resp, sizeof(h->resp));

	dc->u.http.hs = NULL;
	conn_leave_http(dc);
	dc->state = DC_CLOSING;
	dc->w->refused++;
	if (n == 0 || tcp_send(dc->w->tcp, dconn_tcp(dc), (const uint8_t *)h->resp, (uint32_t)n,
			       tx_hs_ref(h)) < 0)
		hs_put(dc->w, h);
	tcp_close(dc->w->tcp, dconn_tcp(dc));
}

static void want_write(void *ctx)
{
	struct dconn *dc = ctx;
	struct dworker *w = dc->w;

	if (!dc->in_write_list) {
		dc->in_write_list = true;
		dc->wnext = dconn_link(w->write_list);
		w->write_list = dc;
	}
}

static void pause_rx(void *ctx, bool off)
{
	struct dconn *dc = ctx;

	if (dc->state != DC_FREE)
		tcp_pause_rx(dc->w->tcp, dconn_tcp(dc), off);
}

/* While dc is pumped, the next connection's TCP state and session (its own
 * first line is on its way) and the one after are fetched: with many
 * connections none of it is in cache. */
static void pump_prefetch(const struct dconn *dc)
{
	const struct dconn *next = dconn_wnext(dc);

	if (next == NULL)
		return;
	if (next->wnext)
		__builtin_prefetch(dconn_wnext(next), 1);
	tcp_prefetch(dconn_tcp(next));
	__builtin_prefetch(next->s, 1);
}

/* Moves frames from sessions to their TCP send queues. */
void conn_pump(struct dworker *w)
{
	struct dconn *list = w->write_list;

	w->write_list = NULL;
	while (list) {
		struct dconn *dc = list;
		struct frame *fr[PEEK_MAX];

		pump_prefetch(dc);
		list = dconn_wnext(dc);
		dc->wnext = 0;
		dc->in_write_list = false;
		if (dc->state != DC_WS || dc->s == NULL)
			continue;
		struct tcp_conn *c = dconn_tcp(dc);

		for (;;) {
			uint32_t room = tcp_sndq_free(c);
			const char *why;
			int n, code, k;

			if (room <= 1 || tcp_unacked(c) >= SEND_BYTES_MAX) {
				want_write(dc); /* again when acknowledgements make room */
				break;
			}
			n = session_peek_many(dc->s, fr,
					      (int)(room - 1 < PEEK_MAX ? room - 1 : PEEK_MAX));
			if (n == 0) {
				code = session_close_code(dc->s, &why);
				if (code)
					send_close(dc, code, why);
				break;
			}
			for (k = 0; k < n && conn_queue_frame(dc, fr[k], WS_TEXT) == 0; k++)
				;
			session_sent_many(dc->s, k);
			if (k < n) {
				want_write(dc);
				break;
			}
		}
	}
}

/* ---- receiving on a connection ---- */

static void rx_free(struct dconn *dc)
{
	if (dc->u.ws.rx) {
		buf_free(dc->u.ws.rx);
		free(dc->u.ws.rx);
		dc->u.ws.rx = NULL;
	}
}

static void ws_on_data(void *ctx, enum ws_opcode op, const uint8_t *data, size_t len, bool last)
{
	struct dconn *dc = ctx;
	struct buf whole = {0}, *rx = dc->u.ws.rx;
	const char *msg;
	size_t msg_len;
	int rc;

	if (dc->state != DC_WS)
		return;
	/* A message split between reads is gathered in a buffer taken for it
	 * and given back after it: an idle connection holds none. */
	if (rx == NULL && !last && (rx = dc->u.ws.rx = calloc(1, sizeof(*rx))) == NULL) {
		send_close(dc, 1011, "out of memory");
		return;
	}
	rc = ws_message_piece(rx ? rx : &whole, op, data, len, last, &msg, &msg_len);
	if (rc > 1) {
		send_close(dc, rc, ws_close_reason(rc));
	} else if (rc == 1) { /* the mbuf's own bytes, or its pieces gathered */
		session_on_text(dc->s, msg, msg_len);
		rx_free(dc);
	}
}

static void ws_on_control(void *ctx, enum ws_opcode op, const uint8_t *data, size_t len, int code)
{
	struct dconn *dc = ctx;

	if (dc->state != DC_WS)
		return;
	if (op == WS_PING) {
		struct frame *f = frame_new(FRAME_CONTROL, 0, 0, data, len);
		if (f) {
			conn_queue_frame(dc, f, WS_PONG);
			frame_unref(f);
		}
	} else if (op == WS_CLOSE) {
		/* echo the code (RFC 6455 5.5.1); none given: a normal close */
		send_close(dc, code == 1005 ? 1000 : code, "");
	}
}

static const struct ws_events ws_events = {ws_on_data, ws_on_control};

static void ws_feed(struct dconn *dc, uint8_t *data, size_t len)
{
	int rc = ws_decode(&dc->u.ws.dec, data, len, &ws_events, dc);

	if (rc)
		send_close(dc, rc, ws_close_reason(rc));
}

/* A complete upgrade request: the path, the token, then the 101. */
static void upgrade(struct dconn *dc)
{
	struct dworker *w = dc->w;
	struct handshake *h = dc->u.http.hs;
	char user[JWT_SUBJECT_MAX + 1];
	const char *token;
	int64_t exp;
	size_t n, plen = strcspn(h->req.path, "?");
	int rc;

	if (plen != 3 || memcmp(h->req.path, "/ws", 3) != 0) {
		refuse(dc, 404, "not_found", "websockets are served at /ws");
		return;
	}
	if (atomic_load(&w->d->draining)) {
		refuse(dc, 503, "shutting_down", "the server is shutting down");
		return;
	}
	token = http_req_token(&h->req, true);
	rc = token ? jwt_verify(w->d->secret, token, (int64_t)time(NULL), user, &exp) : -ENOENT;
	if (rc < 0) {
		refuse(dc, 401, jwt_error_code(rc), "a valid token is required");
		return;
	}
	n = ws_handshake_response(&h->req, h->resp, sizeof(h->resp));
	dc->u.http.hs = NULL;
	conn_leave_http(dc);
	dc->state = DC_WS; /* a session's, once it opens; else its close frame goes out */
	ws_decoder_init(&dc->u.ws.dec, edge_config(w->d->edge)->max_message_bytes);
	if (n == 0 || tcp_send(w->tcp, dconn_tcp(dc), (const uint8_t *)h->resp, (uint32_t)n,
			       tx_hs_ref(h)) < 0) {
		hs_put(w, h);
		tcp_abort(w->tcp, dconn_tcp(dc));
		return;
	}
	const struct tcp_tuple *tu = tcp_conn_tuple(dconn_tcp(dc));
	char peer[48];

	snprintf(peer, sizeof(peer), "%u.%u.%u.%u:%u", tu->raddr >> 24, (tu->raddr >> 16) & 255,
		 (tu->raddr >> 8) & 255, tu->raddr & 255, tu->rport);
	static const struct session_ops ops = {want_write, pause_rx};
	struct session_transport t = {&ops, dc, peer};
	dc->s = session_open(w->ew, user, &t);
	if (dc->s == NULL) {
		if (errno == ENOSPC)
			send_close(dc, 1013, "server full; try again later");
		else
			send_close(dc, 1011, "cannot open a session");
	}
}

/* Upgrade request bytes, for a connection that holds a slot. */
static void http_feed(struct dconn *dc, uint8_t *data, size_t len)
{
	size_t used;

	switch (http_req_feed(&dc->u.http.hs->req, data, len, &used)) {
	case HTTP_MORE:
		return;
	case HTTP_ERROR:
		refuse(dc, dc->u.http.hs->req.status, NULL, dc->u.http.hs->req.reason);
		return;
	case HTTP_DONE:
		upgrade(dc);
		if (dc->state == DC_WS && used < len)
			ws_feed(dc, data + used, len - used);
		return;
	}
}

bool conn_on_accept(void *ctx, struct tcp_conn *c)
{
	struct dworker *w = ctx;
	struct dconn *dc = &w->conns[tcp_conn_index(w->tcp, c)];

	if (w->src_mac == NULL)
		return false;
	dc->s = NULL;
	dc->state = DC_HTTP;
	dc->close_sent = false;
	dc->waiting = false; /* (a write list it may still be on passes it by) */
	memset(&dc->u, 0, sizeof(dc->u));
	memcpy(dc->mac, w->src_mac, 6);
	atomic_fetch_add(&w->open, 1);
	/* Its upgrade request is parsed in a slot; with none free, the
	 * connection waits, holding what it receives of its request (up to
	 * HELD_MAX, then its window shuts: the client keeps the rest until
	 * a slot frees). */
	dc->u.http.hs = w->free_hs;
	if (dc->u.http.hs) {
		w->free_hs = dc->u.http.hs->next;
		http_req_init(&dc->u.http.hs->req);
	} else {
		w->hs_waited++;
		wait_add(w, dc);
	}
	return true;
}

void conn_on_data(void *ctx, struct tcp_conn *c, void *app, const uint8_t *data, uint32_t len)
{
	struct dconn *dc = app;

	if (dc->state == DC_HTTP) {
		if (dc->waiting) { /* held until a slot frees */
			if (buf_put(&dc->u.http.held, data, len) < 0)
				tcp_abort(dc->w->tcp, c); /* acknowledged, and lost: start over */
			else if (dc->u.http.held.len >= HELD_MAX)
				tcp_pause_rx(dc->w->tcp, c, true);
			return;
		}
		http_feed(dc, (uint8_t *)(uintptr_t)data, len);
		return;
	}
	if (dc->state == DC_WS) /* the mbuf is ours: unmasked in place */
		ws_feed(dc, (uint8_t *)(uintptr_t)data, len);
}

void conn_on_peer_fin(void *ctx, struct tcp_conn *c, void *app)
{
	struct dconn *dc = app;

	/* A websocket client closes with a close frame; a bare FIN ends it
	 * (before the upgrade too: its request is dropped, its slot freed). */
	if (dc->state == DC_HTTP)
		conn_leave_http(dc);
	dc->state = DC_CLOSING;
	tcp_close(dc->w->tcp, c);
}

void conn_on_closed(void *ctx, struct tcp_conn *c, void *app, enum tcp_close_reason why)
{
	struct dworker *w = ctx;
	struct dconn *dc = app;

	if (dc == NULL || dc->state == DC_FREE)
		return;
	if (dc->s) {
		session_closed(dc->s);
		dc->s = NULL;
	}
	if (dc->state == DC_HTTP) {
		conn_leave_http(dc);
	} else {
		rx_free(dc);
		ws_decoder_release(&dc->u.ws.dec);
	}
	dc->state = DC_FREE;
	atomic_fetch_sub(&w->open, 1);
}

void conn_on_release(void *ctx, void *ref)
{
	struct dworker *w = ctx;
	struct handshake *h = tx_ref_hs(ref);

	if (h)
		hs_put(w, h);
	else
		tx_frame_give(ref);
}
