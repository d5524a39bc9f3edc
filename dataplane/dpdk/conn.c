/* SPDX-License-Identifier: BSD-3-Clause */
/* A DPDK edge connection from accept to close: the upgrade request in a
 * handshake slot (the longest-waiting connection gets the next free one),
 * the token and path checked as the socket edge does, the same session of
 * the messaging core, websocket frames in and out, and the close. The TCP
 * engine's callbacks. */
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
	if (tcp_send(dc->w->tcp, dc->tcp, payload - t->hlen, t->hlen + f->len, f) < 0) {
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
	tcp_close(dc->w->tcp, dc->tcp);
}

static void http_feed(struct dconn *dc, uint8_t *data, size_t len);

/* A handshake slot is free again: the longest-waiting connection gets it
 * and parses what it holds of its request (its window opens if it was
 * shut). */
static void hs_put(struct dworker *w, struct handshake *h)
{
	h->next = w->free_hs;
	w->free_hs = h;
	while (w->hs_wait) {
		struct dconn *dc = w->hs_wait;

		w->hs_wait = dc->hnext;
		if (w->hs_wait == NULL)
			w->hs_wait_tail = NULL;
		if (!dc->waiting || dc->state != DC_HTTP)
			continue; /* gone, or reused since */
		dc->waiting = false;
		dc->hs = w->free_hs;
		w->free_hs = dc->hs->next;
		http_req_init(&dc->hs->req);
		tcp_pause_rx(w->tcp, dc->tcp, false);
		if (dc->rx.len) { /* out of rx first: a websocket message needs it */
			struct buf held = dc->rx;

			dc->rx = (struct buf){0};
			http_feed(dc, (uint8_t *)held.data, held.len);
			buf_free(&held);
		}
		break;
	}
}

/* An HTTP answer to the upgrade request, then our FIN. */
static void refuse(struct dconn *dc, int status, const char *code, const char *reason)
{
	struct handshake *h = dc->hs;
	size_t n = http_error_response(status, code, reason, h->resp, sizeof(h->resp));

	dc->hs = NULL;
	dc->state = DC_CLOSING;
	dc->w->refused++;
	if (n == 0 ||
	    tcp_send(dc->w->tcp, dc->tcp, (const uint8_t *)h->resp, (uint32_t)n, tx_hs_ref(h)) < 0)
		hs_put(dc->w, h);
	tcp_close(dc->w->tcp, dc->tcp);
}

static void want_write(void *ctx)
{
	struct dconn *dc = ctx;
	struct dworker *w = dc->w;

	if (!dc->in_write_list) {
		dc->in_write_list = true;
		dc->wnext = w->write_list;
		w->write_list = dc;
	}
}

static void pause_rx(void *ctx, bool off)
{
	struct dconn *dc = ctx;

	if (dc->state != DC_FREE)
		tcp_pause_rx(dc->w->tcp, dc->tcp, off);
}

/* While dc is pumped, the next connection's TCP state and session (its own
 * first line is on its way) and the one after are fetched: with many
 * connections none of it is in cache. */
static void pump_prefetch(const struct dconn *dc)
{
	const struct dconn *next = dc->wnext;

	if (next == NULL)
		return;
	if (next->wnext)
		__builtin_prefetch(next->wnext, 1);
	tcp_prefetch(next->tcp);
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
		list = dc->wnext;
		dc->in_write_list = false;
		if (dc->state != DC_WS || dc->s == NULL)
			continue;
		for (;;) {
			uint32_t room = tcp_sndq_free(dc->tcp);
			const char *why;
			int n, code, k;

			if (room <= 1 || tcp_unacked(dc->tcp) >= SEND_BYTES_MAX) {
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

static void ws_on_data(void *ctx, enum ws_opcode op, const uint8_t *data, size_t len, bool last)
{
	struct dconn *dc = ctx;
	const char *msg;
	size_t msg_len;
	int rc;

	if (dc->state != DC_WS)
		return;
	rc = ws_message_piece(&dc->rx, op, data, len, last, &msg, &msg_len);
	if (rc > 1) {
		send_close(dc, rc, ws_close_reason(rc));
	} else if (rc == 1) { /* the mbuf's own bytes, or its pieces gathered */
		session_on_text(dc->s, msg, msg_len);
		ws_message_done(&dc->rx);
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
	int rc = ws_decode(&dc->dec, data, len, &ws_events, dc);

	if (rc)
		send_close(dc, rc, ws_close_reason(rc));
}

/* A complete upgrade request: the path, the token, then the 101. */
static void upgrade(struct dconn *dc)
{
	struct dworker *w = dc->w;
	struct handshake *h = dc->hs;
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
	dc->hs = NULL;
	if (n == 0 ||
	    tcp_send(w->tcp, dc->tcp, (const uint8_t *)h->resp, (uint32_t)n, tx_hs_ref(h)) < 0) {
		hs_put(w, h);
		tcp_abort(w->tcp, dc->tcp);
		return;
	}
	const struct tcp_tuple *tu = tcp_conn_tuple(dc->tcp);
	char peer[48];

	snprintf(peer, sizeof(peer), "%u.%u.%u.%u:%u", tu->raddr >> 24, (tu->raddr >> 16) & 255,
		 (tu->raddr >> 8) & 255, tu->raddr & 255, tu->rport);
	static const struct session_ops ops = {want_write, pause_rx};
	struct session_transport t = {&ops, dc, peer};
	dc->s = session_open(w->ew, user, &t);
	if (dc->s == NULL) {
		dc->state = DC_WS; /* so that the close frame goes out */
		if (errno == ENOSPC)
			send_close(dc, 1013, "server full; try again later");
		else
			send_close(dc, 1011, "cannot open a session");
		return;
	}
	dc->state = DC_WS;
	ws_decoder_init(&dc->dec, edge_config(w->d->edge)->max_message_bytes);
}

/* Upgrade request bytes, for a connection that holds a slot. */
static void http_feed(struct dconn *dc, uint8_t *data, size_t len)
{
	size_t used;

	switch (http_req_feed(&dc->hs->req, data, len, &used)) {
	case HTTP_MORE:
		return;
	case HTTP_ERROR:
		refuse(dc, dc->hs->req.status, NULL, dc->hs->req.reason);
		return;
	case HTTP_DONE:
		upgrade(dc);
		if (dc->state == DC_WS && used < len)
			ws_feed(dc, data + used, len - used);
		return;
	}
}

void *conn_on_accept(void *ctx, struct tcp_conn *c)
{
	struct dworker *w = ctx;
	struct dconn *dc = w->free_conns;

	if (dc == NULL || w->src_mac == NULL)
		return NULL;
	w->free_conns = dc->fnext;
	dc->tcp = c;
	dc->s = NULL;
	dc->hs = NULL;
	dc->state = DC_HTTP;
	dc->close_sent = false;
	dc->waiting = false;
	memcpy(dc->mac, w->src_mac, 6);
	atomic_fetch_add(&w->open, 1);
	/* Its upgrade request is parsed in a slot; with none free, the
	 * connection waits, holding what it receives of its request (up to
	 * HELD_MAX, then its window shuts: the client keeps the rest until
	 * a slot frees). */
	dc->hs = w->free_hs;
	if (dc->hs) {
		w->free_hs = dc->hs->next;
		http_req_init(&dc->hs->req);
	} else {
		dc->waiting = true;
		w->hs_waited++;
		dc->hnext = NULL;
		if (w->hs_wait_tail)
			w->hs_wait_tail->hnext = dc;
		else
			w->hs_wait = dc;
		w->hs_wait_tail = dc;
	}
	return dc;
}

void conn_on_data(void *ctx, struct tcp_conn *c, void *app, const uint8_t *data, uint32_t len)
{
	struct dconn *dc = app;

	if (dc->state == DC_HTTP) {
		if (dc->hs == NULL) { /* waiting for a slot: held until one frees */
			if (buf_put(&dc->rx, data, len) < 0)
				tcp_abort(dc->w->tcp, c); /* acknowledged, and lost: start over */
			else if (dc->rx.len >= HELD_MAX)
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

	/* A websocket client closes with a close frame; a bare FIN ends it. */
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
	dc->waiting = false;
	if (dc->hs) {
		struct handshake *h = dc->hs;

		dc->hs = NULL;
		hs_put(w, h);
	}
	buf_free(&dc->rx);
	ws_decoder_release(&dc->dec);
	dc->state = DC_FREE;
	dc->tcp = NULL;
	dc->fnext = w->free_conns;
	w->free_conns = dc;
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
