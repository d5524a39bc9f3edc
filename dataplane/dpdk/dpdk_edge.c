/* The DPDK edge (see dpdk_edge.h): the port, the worker lcores and their
 * loop, and the glue from packets to sessions: net.c below TCP, tcp.c, the
 * websocket upgrade and frames (ws.c), and the messaging core's sessions.
 *
 * The send path is zero-copy where the port allows: a frame is encoded once
 * per worker; its websocket header is written once into its headroom (a
 * server frame's header depends on its length only), the partial checksum
 * of header and payload is computed once, and every recipient's TCP send
 * queue holds a reference to the same bytes. A segment is a header mbuf
 * (Ethernet, IPv4, TCP, built per recipient) chained to external-buffer
 * mbufs pointing into the frames it carries; the frame's refcount keeps it
 * alive until the last such mbuf is freed. */
#include "dpdk_edge.h"

#include "buf.h"
#include "bytes.h"
#include "clock.h"
#include "edge.h"
#include "fanout.h"
#include "frame.h"
#include "framepool.h"
#include "jwt.h"
#include "log.h"
#include "metrics.h"
#include "net.h"
#include "tcp.h"
#include "ws.h"

#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#define BURST	       32
#define RX_TURN_US     10000  /* reading the port, at most, per turn */
#define TIMERS_LATE_US 100000 /* timers wait at most this for the ring to empty */
#define TX_MAX	       256
#define HELD_MAX       1024  /* request bytes held for a connection waiting for a slot */
#define PEEK_MAX       16    /* frames taken from a session at a time */
#define SEND_BYTES_MAX 65536 /* unacknowledged bytes per connection before we wait */

/* Per-frame transmit state, in the frame's zeroed headroom (frame.c). */
struct frame_tx {
	struct rte_mbuf_ext_shared_info shinfo; /* counts the mbufs pointing into it */
	uint32_t csum;				/* partial sum of header and payload */
	uint8_t hlen;				/* websocket header length; 0: not prepared */
};
static_assert(sizeof(struct frame_tx) + 10 <= FRAME_HEADROOM, "frame_tx and a ws header fit");
static_assert(offsetof(struct frame, buf) % 8 == 0, "frame headroom is 8-aligned");

/* A handshake slot: the parser's state, then the response it queued. */
struct handshake {
	struct http_req req;
	char resp[512];
	struct handshake *next;
};

enum { DC_FREE, DC_HTTP, DC_WS, DC_CLOSING };

struct dconn {
	struct dworker *w;
	struct tcp_conn *tcp;
	struct session *s;
	struct handshake *hs; /* while the upgrade request is parsed */
	struct ws_decoder dec;
	struct buf rx; /* the message being received */
	uint8_t mac[6];
	uint8_t state;
	bool in_write_list, close_sent;
	bool waiting; /* for a handshake slot, reading paused */
	struct dconn *wnext, *fnext, *hnext;
};

struct dworker {
	struct dpdk_edge *d;
	uint16_t queue;
	unsigned lcore;
	struct edge_worker *ew;
	struct tcp_engine *tcp;
	struct net net;
	struct dconn *conns, *free_conns, *write_list;
	struct handshake *handshakes, *free_hs;
	struct dconn *hs_wait, *hs_wait_tail; /* accepted, waiting for a slot */
	struct rte_mbuf *tx[TX_MAX];
	int ntx;
	const uint8_t *src_mac; /* of the frame being input */
	uint16_t ip_id;
	uint64_t now_us, next_tick_us, timers_us;
	atomic_int open;
	/* counters, read by the metrics thread without a lock */
	uint64_t rx_packets, tx_packets, tx_dropped, rx_dropped, no_mbuf, refused, hs_waited;
	uint64_t tx_by_ref, tx_copied; /* payload bytes sent */
};

struct dpdk_edge {
	struct dpdk_edge_config cfg;
	char port_name[64], secret[256], driver[32];
	struct edge *edge;
	uint16_t port_id;
	struct rte_mempool *pool, *ext_pool;
	uint8_t mac[6];
	enum zero_copy send_mode; /* ALL, POOLED or OFF: decided at port_start */
	uint16_t max_segs;	  /* mbufs per packet the port takes */
	bool tx_csum, rx_csum;	  /* the port computes, verifies IPv4 and TCP checksums */
	atomic_bool stop, draining;
	int nworkers;
	struct dworker *workers;
};

static uint64_t now_us(void)
{
	return time_mono_ns() / 1000;
}

/* ---- refs in the TCP send queue: frames, or handshake responses ---- */

static void *hs_ref(struct handshake *h)
{
	return (void *)((uintptr_t)h | 1);
}

static struct handshake *ref_hs(void *ref)
{
	return (uintptr_t)ref & 1 ? (struct handshake *)((uintptr_t)ref & ~(uintptr_t)1) : NULL;
}

static struct frame_tx *ftx(struct frame *f)
{
	return (struct frame_tx *)f->buf;
}

static void ext_free(void *addr, void *opaque)
{
	frame_unref(opaque); /* the last mbuf pointing into the frame is gone */
}

/* ---- transmit ---- */

static void tx_flush(struct dworker *w)
{
	uint16_t sent = 0;

	if (w->ntx == 0)
		return;
	for (int tries = 0; tries < 4 && sent < w->ntx; tries++)
		sent += rte_eth_tx_burst(w->d->port_id, w->queue, w->tx + sent,
					 (uint16_t)(w->ntx - sent));
	w->tx_packets += sent;
	for (int i = sent; i < w->ntx; i++) {
		rte_pktmbuf_free(w->tx[i]); /* TCP sends it again */
		w->tx_dropped++;
	}
	w->ntx = 0;
}

static void tx_push(struct dworker *w, struct rte_mbuf *m)
{
	if (w->ntx == TX_MAX)
		tx_flush(w);
	w->tx[w->ntx++] = m;
}

struct walk {
	struct dworker *w;
	struct rte_mbuf *head;
	uint32_t sum, off;
	bool failed;
};

/* Copies len bytes to the end of the segment: into the last mbuf if it
 * holds its own data and has room, else into new ones chained after it. */
static bool append_copy(struct walk *k, const uint8_t *data, uint32_t len)
{
	struct rte_mbuf *last = rte_pktmbuf_lastseg(k->head);

	while (len) {
		uint16_t n;

		if (RTE_MBUF_HAS_EXTBUF(last) || rte_pktmbuf_tailroom(last) == 0) {
			struct rte_mbuf *m = rte_pktmbuf_alloc(k->w->d->pool);

			if (m == NULL || rte_pktmbuf_chain(k->head, m) < 0) {
				rte_pktmbuf_free(m);
				return false;
			}
			last = m;
		}
		n = rte_pktmbuf_tailroom(last) < len ? rte_pktmbuf_tailroom(last) : (uint16_t)len;
		memcpy(rte_pktmbuf_mtod_offset(last, uint8_t *, last->data_len), data, n);
		last->data_len = (uint16_t)(last->data_len + n);
		k->head->pkt_len += n;
		data += n;
		len -= n;
	}
	return true;
}

/* One piece of a segment's payload: its checksum (the frame's own when the
 * piece is the whole frame), then chained by reference or copied. A frame
 * goes by reference when the port can read it where it is: any frame on a
 * port that copies from virtual addresses, a frame in DPDK memory on one that
 * reads by DMA; if the piece is not short ([dataplane] copy_below: copying
 * a short piece costs less than an mbuf and a descriptor for it); and while
 * the chain is shorter than the port allows, less one for a copied tail. */
static void add_piece(void *arg, const uint8_t *data, uint32_t len, void *ref)
{
	struct walk *k = arg;
	const struct dpdk_edge *d = k->w->d;
	struct handshake *h = ref_hs(ref);
	struct frame *f = h ? NULL : ref;
	rte_iova_t iova = RTE_BAD_IOVA;
	uint32_t sum;

	if (k->failed)
		return;
	if (!d->tx_csum) { /* else the NIC sums the payload */
		if (f && data == frame_payload(f) - ftx(f)->hlen && len == ftx(f)->hlen + f->len)
			sum = ftx(f)->csum;
		else
			sum = csum_partial(data, len, 0);
		k->sum = csum_add_at(k->sum, sum, k->off);
	}
	k->off += len;
	if (f && len >= d->cfg.copy_below && k->head->nb_segs + 1 < d->max_segs) {
		if (d->send_mode == ZERO_COPY_ALL)
			iova = (rte_iova_t)(uintptr_t)data; /* unused: the driver copies */
		else if (d->send_mode == ZERO_COPY_POOLED && f->pooled)
			iova = framepool_iova(f, data);
	}
	if (iova != RTE_BAD_IOVA) {
		struct rte_mbuf *m = rte_pktmbuf_alloc(d->ext_pool);
		struct rte_mbuf_ext_shared_info *si = &ftx(f)->shinfo;

		if (m == NULL) {
			k->failed = true;
			return;
		}
		if (rte_mbuf_ext_refcnt_read(si) == 0) {
			frame_ref(f); /* held for the mbufs; ext_free drops it */
			rte_mbuf_ext_refcnt_set(si, 1);
		} else {
			rte_mbuf_ext_refcnt_update(si, 1);
		}
		rte_pktmbuf_attach_extbuf(m, (void *)(uintptr_t)data, iova, (uint16_t)len, si);
		m->data_len = (uint16_t)len;
		m->pkt_len = len;
		if (rte_pktmbuf_chain(k->head, m) < 0) {
			rte_pktmbuf_free(m);
			k->failed = true;
		} else {
			k->w->tx_by_ref += len;
		}
		return;
	}
	/* copied: the handshake's bytes, a frame the port cannot read where it
	 * is, or one past the port's segments per packet */
	if (!append_copy(k, data, len))
		k->failed = true;
	else
		k->w->tx_copied += len;
}

/* The TCP engine's output: one segment, as mbufs. */
static void tcp_output(void *ctx, const struct tcp_out *o)
{
	struct dworker *w = ctx;
	const struct dconn *dc = o->conn ? tcp_conn_app(o->conn) : NULL;
	uint8_t mac[6], req[60];
	size_t req_len, hlen = NET_ETH_HLEN + NET_IP_HLEN + 20 + o->optlen;
	struct walk k = {w, NULL, 0, 0, false};
	uint8_t *p;

	if (dc && dc->state != DC_FREE)
		memcpy(mac, dc->mac, 6);
	else if (w->src_mac)
		memcpy(mac, w->src_mac, 6); /* answering the frame being input */
	else if (!net_resolve(&w->net, o->t.raddr, w->now_us, mac, req, &req_len)) {
		if (req_len) { /* ask; the segment is sent again by TCP */
			struct rte_mbuf *m = rte_pktmbuf_alloc(w->d->pool);
			if (m && (p = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)req_len))) {
				memcpy(p, req, req_len);
				tx_push(w, m);
			} else if (m) {
				rte_pktmbuf_free(m);
			}
		}
		return;
	}
	k.head = rte_pktmbuf_alloc(w->d->pool);
	if (k.head == NULL) {
		w->no_mbuf++;
		return;
	}
	p = (uint8_t *)rte_pktmbuf_append(k.head, (uint16_t)hlen);
	tcp_out_header(o, p + NET_ETH_HLEN + NET_IP_HLEN);
	tcp_out_walk(o, add_piece, &k);
	if (k.failed) {
		w->no_mbuf++;
		rte_pktmbuf_free(k.head);
		return;
	}
	if (w->d->tx_csum) {
		net_tcp_checksum_offload(p + NET_ETH_HLEN + NET_IP_HLEN, o->t.laddr, o->t.raddr,
					 hlen - NET_ETH_HLEN - NET_IP_HLEN + o->len);
		k.head->l2_len = NET_ETH_HLEN;
		k.head->l3_len = NET_IP_HLEN;
		k.head->l4_len = (uint8_t)(hlen - NET_ETH_HLEN - NET_IP_HLEN);
		k.head->ol_flags |=
		    RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_TCP_CKSUM;
	} else {
		net_tcp_checksum(p + NET_ETH_HLEN + NET_IP_HLEN, hlen - NET_ETH_HLEN - NET_IP_HLEN,
				 o->t.laddr, o->t.raddr, k.sum, o->len);
	}
	net_ip_headers(&w->net, p, mac, o->t.raddr,
		       (uint16_t)(hlen - NET_ETH_HLEN - NET_IP_HLEN + o->len), w->ip_id++);
	tx_push(w, k.head);
}

/* ---- sending on a connection ---- */

/* Queues f (taking a reference) as a websocket frame of opcode op. */
static int queue_frame(struct dconn *dc, struct frame *f, enum ws_opcode op)
{
	struct frame_tx *t = ftx(f);
	uint8_t *payload = frame_payload(f);

	if (t->hlen == 0) { /* once per frame on this worker */
		uint8_t h[10];

		t->hlen = (uint8_t)ws_frame_header(h, op, f->len);
		memcpy(payload - t->hlen, h, t->hlen);
		t->csum = csum_partial(payload - t->hlen, t->hlen + f->len, 0);
		t->shinfo.free_cb = ext_free;
		t->shinfo.fcb_opaque = f;
		rte_mbuf_ext_refcnt_set(&t->shinfo, 0);
	}
	frame_ref(f);
	if (tcp_send(dc->w->tcp, dc->tcp, payload - t->hlen, t->hlen + f->len, f) < 0) {
		frame_unref(f);
		return -1;
	}
	return 0;
}

/* A close frame with code and reason, then our FIN. */
static void send_close(struct dconn *dc, int code, const char *reason)
{
	uint8_t payload[125];
	size_t n = strlen(reason);
	struct frame *f;

	if (dc->close_sent || dc->state == DC_FREE)
		return;
	dc->close_sent = true;
	if (n > sizeof(payload) - 2)
		n = sizeof(payload) - 2;
	put16(payload, (uint16_t)code);
	memcpy(payload + 2, reason, n);
	f = frame_new(FRAME_CONTROL, 0, 0, payload, n + 2);
	if (f) {
		queue_frame(dc, f, WS_CLOSE);
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
	    tcp_send(dc->w->tcp, dc->tcp, (const uint8_t *)h->resp, (uint32_t)n, hs_ref(h)) < 0)
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

/* Moves frames from sessions to their TCP send queues. */
static void pump(struct dworker *w)
{
	struct dconn *list = w->write_list;

	w->write_list = NULL;
	while (list) {
		struct dconn *dc = list;
		struct frame *fr[PEEK_MAX];

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
			for (k = 0; k < n && queue_frame(dc, fr[k], WS_TEXT) == 0; k++)
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

	if (dc->state != DC_WS)
		return;
	if (op == WS_BINARY) {
		send_close(dc, 1003, "text frames only");
		return;
	}
	if (last && dc->rx.len == 0) { /* whole in one segment: read where it is */
		session_on_text(dc->s, len ? (const char *)data : "", len);
		return;
	}
	if (len && buf_put(&dc->rx, data, len) < 0) {
		send_close(dc, 1011, "out of memory");
		return;
	}
	if (last) { /* a message in pieces (several segments or frames) */
		session_on_text(dc->s, dc->rx.data ? dc->rx.data : "", dc->rx.len);
		buf_free(&dc->rx);
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
			queue_frame(dc, f, WS_PONG);
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
		send_close(dc, rc,
			   rc == 1007	? "invalid UTF-8"
			   : rc == 1009 ? "message too big"
					: "protocol error");
}

/* The token from "Authorization: Bearer" or ?token=. */
static const char *find_token(struct http_req *r)
{
	char *q;

	if (r->auth_len > 7 && strncasecmp(r->auth, "Bearer ", 7) == 0)
		return r->auth + 7;
	q = strchr(r->path, '?');
	while (q) {
		if (strncmp(q + 1, "token=", 6) == 0) {
			char *end = strchr(q + 7, '&');
			if (end)
				*end = '\0';
			return q + 7;
		}
		q = strchr(q + 1, '&');
	}
	return NULL;
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
	token = find_token(&h->req);
	rc = token ? jwt_verify(w->d->secret, token, (int64_t)time(NULL), user, &exp) : -ENOENT;
	if (rc < 0) {
		refuse(dc, 401, jwt_error_code(rc), "a valid token is required");
		return;
	}
	n = ws_handshake_response(&h->req, h->resp, sizeof(h->resp));
	dc->hs = NULL;
	if (n == 0 ||
	    tcp_send(w->tcp, dc->tcp, (const uint8_t *)h->resp, (uint32_t)n, hs_ref(h)) < 0) {
		hs_put(w, h);
		tcp_abort(w->tcp, dc->tcp);
		return;
	}
	struct session_transport t = {want_write, pause_rx, dc};
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

static void *on_accept(void *ctx, struct tcp_conn *c)
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

static void on_data(void *ctx, struct tcp_conn *c, void *app, const uint8_t *data, uint32_t len)
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

static void on_peer_fin(void *ctx, struct tcp_conn *c, void *app)
{
	struct dconn *dc = app;

	/* A websocket client closes with a close frame; a bare FIN ends it. */
	dc->state = DC_CLOSING;
	tcp_close(dc->w->tcp, c);
}

static void on_closed(void *ctx, struct tcp_conn *c, void *app, enum tcp_close_reason why)
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
	dc->state = DC_FREE;
	dc->tcp = NULL;
	dc->fnext = w->free_conns;
	w->free_conns = dc;
	atomic_fetch_sub(&w->open, 1);
}

static void on_release(void *ctx, void *ref)
{
	struct dworker *w = ctx;
	struct handshake *h = ref_hs(ref);

	if (h) {
		hs_put(w, h);
	} else {
		frame_unref(ref);
	}
}

/* ---- the lcore loop ---- */

static void rx_one(struct dworker *w, struct rte_mbuf *m)
{
	struct net_rx_info info;
	struct tcp_seg seg;
	uint8_t *p = rte_pktmbuf_mtod(m, uint8_t *);

	w->rx_packets++;
	if (m->nb_segs != 1) { /* jumbo frames arrive chained: not supported */
		w->rx_dropped++;
		rte_pktmbuf_free(m);
		return;
	}
	if (w->d->rx_csum) /* good by the NIC; anything else is checked here */
		w->net.rx_csum_checked =
		    (m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_GOOD &&
		    (m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_GOOD;
	switch (net_rx(&w->net, p, m->data_len, w->now_us, &info)) {
	case NET_REPLY: /* ARP or ICMP, its checksums computed */
		m->ol_flags = 0;
		m->data_len = (uint16_t)info.reply_len;
		m->pkt_len = info.reply_len;
		tx_push(w, m);
		return;
	case NET_TCP:
		if (tcp_parse(info.tcp, info.tcp_len, info.saddr, info.daddr, &seg) == 0) {
			w->src_mac = p + 6;
			tcp_input(w->tcp, &seg, w->now_us);
			w->src_mac = NULL;
		} else {
			w->rx_dropped++;
		}
		break;
	case NET_DROP:
		break;
	}
	rte_pktmbuf_free(m);
}

static int worker_main(void *arg)
{
	struct dworker *w = arg;
	struct dpdk_edge *d = w->d;
	struct rte_mbuf *pkts[BURST];

	LOG(INFO, "dpdk edge: worker %u on lcore %u, queue %u", (unsigned)w->queue, w->lcore,
	    (unsigned)w->queue);
	w->next_tick_us = now_us() + 1000000;
	while (!atomic_load_explicit(&d->stop, memory_order_relaxed)) {
		uint16_t n;
		uint32_t got = 0;

		/* What the port holds, before any timer: a retransmission timer
		 * must not call a segment lost while its ACK waits in the ring
		 * (one publish to 100,000 subscribers brings 100,000 ACKs at
		 * once). Reading stops after RX_TURN_US; the timers then wait
		 * for the ring to empty, but never more than TIMERS_LATE_US. */
		uint64_t start = w->now_us = now_us();
		do {
			n = rte_eth_rx_burst(d->port_id, w->queue, pkts, BURST);
			for (uint16_t i = 0; i < n; i++)
				rx_one(w, pkts[i]);
			got += n;
			if (n == BURST && (got & 1023) == 0)
				w->now_us = now_us();
		} while (n == BURST && w->now_us - start < RX_TURN_US);
		edge_worker_drain(w->ew); /* fan-out: frames for our sessions */
		pump(w);
		/* Sending a large fan-out takes a while: stamp what goes out,
		 * and judge the timers, by the clock after it. */
		w->now_us = now_us();
		tcp_flush(w->tcp, w->now_us);
		w->now_us = now_us();
		if (n < BURST || w->now_us - w->timers_us >= TIMERS_LATE_US) {
			tcp_timers(w->tcp, w->now_us);
			w->timers_us = w->now_us;
		}
		tx_flush(w);
		if (w->now_us >= w->next_tick_us) {
			edge_worker_tick(w->ew);
			w->next_tick_us += 1000000;
		}
		if (got == 0 && d->cfg.idle_sleep_us) {
			struct timespec ts = {0, (long)d->cfg.idle_sleep_us * 1000};
			nanosleep(&ts, NULL);
		}
	}
	return 0;
}

/* ---- start and stop ---- */

static void no_wake(void *arg)
{
	/* the lcore polls its inbox every turn of its loop */
}

static double gauge_sum(void *arg, size_t off)
{
	struct dpdk_edge *d = arg;
	double sum = 0;

	for (int i = 0; i < d->nworkers; i++)
		sum += (double)*(volatile uint64_t *)((char *)&d->workers[i] + off);
	return sum;
}

static double g_rx(void *arg)
{
	return gauge_sum(arg, offsetof(struct dworker, rx_packets));
}
static double g_tx(void *arg)
{
	return gauge_sum(arg, offsetof(struct dworker, tx_packets));
}
static double g_drop(void *arg)
{
	return gauge_sum(arg, offsetof(struct dworker, tx_dropped));
}
static double g_by_ref(void *arg)
{
	return gauge_sum(arg, offsetof(struct dworker, tx_by_ref));
}
static double g_copied(void *arg)
{
	return gauge_sum(arg, offsetof(struct dworker, tx_copied));
}
static double g_pool_in_use(void *arg)
{
	struct framepool_usage u;

	(void)arg;
	framepool_usage(&u);
	return (double)u.in_use;
}
static double g_pool_capacity(void *arg)
{
	struct framepool_usage u;

	(void)arg;
	framepool_usage(&u);
	return (double)u.capacity;
}
static double g_frame_misses(void *arg)
{
	(void)arg;
	return (double)frame_memory_misses();
}
static double g_ip_bad(void *arg)
{
	return gauge_sum(arg, offsetof(struct dworker, net.st.ip_bad_header)) +
	       gauge_sum(arg, offsetof(struct dworker, net.st.ip_bad_checksum)) +
	       gauge_sum(arg, offsetof(struct dworker, net.st.tcp_bad_checksum));
}
static double g_ip_fragments(void *arg)
{
	return gauge_sum(arg, offsetof(struct dworker, net.st.ip_fragments));
}
static double g_arp_answered(void *arg)
{
	return gauge_sum(arg, offsetof(struct dworker, net.st.arp_requests_answered));
}
static double g_icmp_echo(void *arg)
{
	return gauge_sum(arg, offsetof(struct dworker, net.st.icmp_echo_answered));
}

static double g_refused(void *arg)
{
	return gauge_sum(arg, offsetof(struct dworker, refused));
}
static double g_rx_dropped(void *arg)
{
	return gauge_sum(arg, offsetof(struct dworker, rx_dropped));
}
static double g_no_mbuf(void *arg)
{
	return gauge_sum(arg, offsetof(struct dworker, no_mbuf));
}

/* The port's own count of frames it had no room for: the receive ring was
 * full because the workers did not poll fast enough. */
static double g_rx_missed(void *arg)
{
	const struct dpdk_edge *d = arg;
	struct rte_eth_stats st;

	return rte_eth_stats_get(d->port_id, &st) == 0 ? (double)(st.imissed + st.rx_nombuf) : 0;
}

static double g_waited(void *arg)
{
	return gauge_sum(arg, offsetof(struct dworker, hs_waited));
}

static double g_open(void *arg)
{
	struct dpdk_edge *d = arg;
	double sum = 0;

	for (int i = 0; i < d->nworkers; i++)
		sum += atomic_load(&d->workers[i].open);
	return sum;
}

static double g_worker_open(void *arg, int i)
{
	return atomic_load(&((struct dpdk_edge *)arg)->workers[i].open);
}
static double g_worker_accepted(void *arg, int i)
{
	struct tcp_stats st;

	tcp_engine_stats(((struct dpdk_edge *)arg)->workers[i].tcp, &st);
	return (double)st.accepted;
}

/* A TCP counter summed over the workers' engines (read while they run:
 * a figure for /metrics, not an exact snapshot). */
static double tcp_sum(void *arg, size_t off)
{
	struct dpdk_edge *d = arg;
	double sum = 0;

	for (int i = 0; i < d->nworkers; i++) {
		struct tcp_stats st;

		tcp_engine_stats(d->workers[i].tcp, &st);
		sum += (double)*(uint64_t *)((char *)&st + off);
	}
	return sum;
}

static double g_retransmits(void *arg)
{
	return tcp_sum(arg, offsetof(struct tcp_stats, retransmits));
}
static double g_out_of_order(void *arg)
{
	return tcp_sum(arg, offsetof(struct tcp_stats, out_of_order));
}
static double g_ooo_held(void *arg)
{
	return tcp_sum(arg, offsetof(struct tcp_stats, ooo_held));
}
static double g_sack_retransmits(void *arg)
{
	return tcp_sum(arg, offsetof(struct tcp_stats, sack_retransmits));
}
static double g_window_drops(void *arg)
{
	return tcp_sum(arg, offsetof(struct tcp_stats, window_drops));
}
static double g_spurious(void *arg)
{
	return tcp_sum(arg, offsetof(struct tcp_stats, spurious_timeouts));
}
static double g_syn_cookies(void *arg)
{
	return tcp_sum(arg, offsetof(struct tcp_stats, syn_cookies_sent));
}

int dpdk_parse_ipv4(const char *s, uint32_t *address)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		return -1;
	*address = ntohl(a.s_addr);
	return 0;
}

int dpdk_parse_cidr(const char *s, uint32_t *address, uint32_t *netmask)
{
	char ip[32];
	const char *slash = strchr(s, '/');
	int len;

	if (slash == NULL || (size_t)(slash - s) >= sizeof(ip))
		return -1;
	memcpy(ip, s, (size_t)(slash - s));
	ip[slash - s] = '\0';
	if (dpdk_parse_ipv4(ip, address) < 0 || sscanf(slash + 1, "%d", &len) != 1 || len < 1 ||
	    len > 32)
		return -1;
	*netmask = len == 32 ? 0xffffffffu : ~(0xffffffffu >> len);
	return 0;
}

static int worker_init(struct dpdk_edge *d, struct dworker *w, int i, unsigned lcore)
{
	struct tcp_callbacks cb = {w,		tcp_output, on_accept, on_data,
				   on_peer_fin, on_closed,  on_release};
	struct tcp_config tc;
	uint16_t mtu = 1500;

	w->d = d;
	w->queue = (uint16_t)i;
	w->lcore = lcore;
	if (d->edge) { /* none in the benchmark */
		w->ew =
		    edge_worker_create(d->edge, d->cfg.first_worker + i, d->cfg.max_connections);
		if (w->ew == NULL)
			return -1;
		edge_worker_set_transport(w->ew, w);
		fanout_set_wake(edge_fanout(d->edge), d->cfg.first_worker + i, no_wake, NULL);
	}
	tcp_config_defaults(&tc);
	rte_eth_dev_get_mtu(d->port_id, &mtu);
	tc.mss = (uint16_t)(mtu - 40);
	/* a segment copied whole, or a copied tail, fits one mbuf when the
	 * port limits the mbufs per packet (jumbo frames need a chain) */
	if (d->max_segs < UINT16_MAX && tc.mss > RTE_MBUF_DEFAULT_DATAROOM - 80)
		tc.mss = RTE_MBUF_DEFAULT_DATAROOM - 80;
	tc.max_conns = d->cfg.max_connections;
	tc.max_half_open = d->cfg.max_connections / 4 + 1;
	if (getrandom(tc.cookie_key, sizeof(tc.cookie_key), 0) != sizeof(tc.cookie_key))
		return -1;
	w->tcp = tcp_engine_create(&tc, &cb);
	if (w->tcp == NULL || tcp_listen(w->tcp, d->cfg.listen_port) < 0)
		return -1;
	if (net_init(&w->net, d->mac, d->cfg.address, d->cfg.netmask, d->cfg.gateway, 1024) < 0)
		return -1;
	w->net.tx_csum_offload = d->tx_csum;
	w->conns = calloc(d->cfg.max_connections, sizeof(*w->conns));
	w->handshakes = calloc(d->cfg.upgrade_slots, sizeof(*w->handshakes));
	if (w->conns == NULL || w->handshakes == NULL)
		return -1;
	for (uint32_t k = d->cfg.max_connections; k-- > 0;) {
		w->conns[k].w = w;
		w->conns[k].fnext = w->free_conns;
		w->free_conns = &w->conns[k];
	}
	for (uint32_t k = d->cfg.upgrade_slots; k-- > 0;) {
		w->handshakes[k].next = w->free_hs;
		w->free_hs = &w->handshakes[k];
	}
	return 0;
}

static const char *send_mode_name(const struct dpdk_edge *d)
{
	switch (d->send_mode) {
	case ZERO_COPY_ALL:
		return "zero-copy send";
	case ZERO_COPY_POOLED:
		return "zero-copy send from DPDK memory";
	default:
		return "send by copy";
	}
}

/* Sets the port up from d->cfg: queues, pools, started, our MAC. 0 or -1
 * (logged). */
static int port_start(struct dpdk_edge *d)
{
	const struct dpdk_edge_config *cfg = &d->cfg;
	static const char *const copying[] = {"net_af_packet", "net_tap",   "net_null",
					      "net_ring",      "net_memif", "net_af_xdp"};
	struct rte_eth_conf conf = {0};
	struct rte_eth_dev_info info;
	struct rte_ether_addr mac;
	uint16_t nrxd = 1024, ntxd = 1024;
	char name[RTE_MEMPOOL_NAMESIZE];
	bool software = false;
	int i, rc, socket;

	if (rte_eth_dev_get_port_by_name(cfg->port, &d->port_id) != 0) {
		LOG(ERR, "dpdk edge: no port named '%s' (%u ports; is its device in eal_args?)",
		    cfg->port, (unsigned)rte_eth_dev_count_avail());
		return -1;
	}
	rc = rte_eth_dev_info_get(d->port_id, &info);
	if (rc != 0 || cfg->workers > info.max_rx_queues || cfg->workers > info.max_tx_queues) {
		LOG(ERR, "dpdk edge: port %s cannot give %d queue pairs (%u rx, %u tx)", cfg->port,
		    cfg->workers, (unsigned)info.max_rx_queues, (unsigned)info.max_tx_queues);
		return -1;
	}
	snprintf(d->driver, sizeof(d->driver), "%s", info.driver_name);
	for (size_t k = 0; k < sizeof(copying) / sizeof(copying[0]); k++)
		if (strcmp(info.driver_name, copying[k]) == 0)
			software = true; /* the driver copies from virtual addresses */
	d->send_mode = cfg->zero_copy == ZERO_COPY_AUTO
			   ? (software ? ZERO_COPY_ALL : ZERO_COPY_POOLED)
			   : cfg->zero_copy;
	if (d->send_mode == ZERO_COPY_ALL && !software) {
		LOG(ERR,
		    "dpdk edge: zero_copy = all on port %s (%s) would give the NIC heap "
		    "addresses it cannot read by DMA: use pooled (or auto)",
		    cfg->port, info.driver_name);
		return -1;
	}
	/* A chain of mbufs per packet needs the port's multi-segment send;
	 * without it every packet is one mbuf, so everything is copied. */
	d->max_segs = 1;
	if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) {
		conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
		d->max_segs =
		    info.tx_desc_lim.nb_mtu_seg_max ? info.tx_desc_lim.nb_mtu_seg_max : UINT16_MAX;
	} else if (strcmp(info.driver_name, "net_null") == 0) {
		d->max_segs = UINT16_MAX; /* frees what it is given, chained or not */
	}
	if (d->max_segs == 1)
		d->send_mode = ZERO_COPY_OFF;
	/* Checksums by the NIC when it has them: a NIC computes them as it
	 * reads the packet, where software reads every byte again (save the
	 * frames' own sums). A software port would compute them in software
	 * too, so auto leaves them here; and DPDK 22.11's tap driver sums a
	 * chain with an odd-length mbuf wrong. */
	const uint64_t tx_sums = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
	const uint64_t rx_sums = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_TCP_CKSUM;

	bool offload = cfg->checksum_offload == OFFLOAD_ON ||
		       (cfg->checksum_offload == OFFLOAD_AUTO && !software);

	d->tx_csum = offload && (info.tx_offload_capa & tx_sums) == tx_sums;
	d->rx_csum = offload && (info.rx_offload_capa & rx_sums) == rx_sums;
	if (d->tx_csum)
		conf.txmode.offloads |= tx_sums;
	if (d->rx_csum)
		conf.rxmode.offloads |= rx_sums;
	socket = rte_eth_dev_socket_id(d->port_id);
	if (socket < 0)
		socket = (int)rte_socket_id();
	if (d->send_mode == ZERO_COPY_POOLED &&
	    framepool_install((size_t)cfg->frame_memory_mb << 20, socket) < 0) {
		LOG(ERR,
		    "dpdk edge: cannot reserve [dataplane] frame_memory_mb = %u MiB of DPDK "
		    "memory for frames: %s (give the EAL more: eal_memory_mb, -m or "
		    "--socket-mem)",
		    (unsigned)cfg->frame_memory_mb, rte_strerror(rte_errno));
		return -1;
	}
	if (cfg->workers > 1) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf =
		    (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP) & info.flow_type_rss_offloads;
	}
	rc = rte_eth_dev_configure(d->port_id, (uint16_t)cfg->workers, (uint16_t)cfg->workers,
				   &conf);
	if (rc == 0)
		rc = rte_eth_dev_adjust_nb_rx_tx_desc(d->port_id, &nrxd, &ntxd);
	if (rc != 0) {
		LOG(ERR, "dpdk edge: cannot configure port %s: %s", cfg->port, rte_strerror(-rc));
		return -1;
	}
	snprintf(name, sizeof(name), "fo_pkt_%u", (unsigned)d->port_id);
	d->pool = rte_pktmbuf_pool_create(name, 8192 * (unsigned)cfg->workers - 1, 256, 0,
					  RTE_MBUF_DEFAULT_BUF_SIZE, socket);
	snprintf(name, sizeof(name), "fo_ext_%u", (unsigned)d->port_id);
	d->ext_pool =
	    rte_pktmbuf_pool_create(name, 16384 * (unsigned)cfg->workers - 1, 256, 0, 0, socket);
	if (d->pool == NULL || d->ext_pool == NULL) {
		LOG(ERR, "dpdk edge: cannot create mbuf pools: %s (eal_memory_mb or -m)",
		    rte_strerror(rte_errno));
		return -1;
	}
	for (i = 0; i < cfg->workers; i++) {
		rc = rte_eth_rx_queue_setup(d->port_id, (uint16_t)i, nrxd, (unsigned)socket, NULL,
					    d->pool);
		if (rc == 0)
			rc = rte_eth_tx_queue_setup(d->port_id, (uint16_t)i, ntxd, (unsigned)socket,
						    NULL);
		if (rc != 0) {
			LOG(ERR, "dpdk edge: queue %d of %s: %s", i, cfg->port, rte_strerror(-rc));
			return -1;
		}
	}
	rc = rte_eth_dev_start(d->port_id);
	if (rc != 0) {
		LOG(ERR, "dpdk edge: cannot start %s: %s", cfg->port, rte_strerror(-rc));
		return -1;
	}
	rte_eth_macaddr_get(d->port_id, &mac);
	memcpy(d->mac, mac.addr_bytes, 6);
	return 0;
}

struct dpdk_edge *dpdk_edge_start(const struct dpdk_edge_config *cfg, struct edge *edge)
{
	struct dpdk_edge *d = calloc(1, sizeof(*d));
	unsigned lcore;
	int i;

	if (d == NULL)
		return NULL;
	d->cfg = *cfg;
	snprintf(d->port_name, sizeof(d->port_name), "%s", cfg->port);
	snprintf(d->secret, sizeof(d->secret), "%s", cfg->jwt_secret);
	d->cfg.port = d->port_name;
	d->cfg.jwt_secret = d->secret;
	d->edge = edge;
	if (port_start(d) < 0)
		goto fail;
	d->workers = calloc((size_t)cfg->workers, sizeof(*d->workers));
	if (d->workers == NULL)
		goto fail;
	i = 0;
	RTE_LCORE_FOREACH_WORKER(lcore)
	{
		if (i == cfg->workers)
			break;
		if (worker_init(d, &d->workers[i], i, lcore) < 0) {
			LOG(ERR, "dpdk edge: cannot set worker %d up", i);
			d->nworkers = i + 1;
			goto fail;
		}
		i++;
	}
	d->nworkers = i;
	if (i < cfg->workers) {
		LOG(ERR,
		    "dpdk edge: the EAL has %d worker lcores, [dataplane] workers = %d (give "
		    "-l 0-%d in eal_args)",
		    i, cfg->workers, cfg->workers);
		goto fail;
	}
	for (i = 0; i < d->nworkers; i++)
		rte_eal_remote_launch(worker_main, &d->workers[i], d->workers[i].lcore);
	metrics_register_gauge("fanout_dpdk_connections", "Connections on the DPDK edge.", g_open,
			       d);
	metrics_register_gauge_vec("fanout_dpdk_worker_connections",
				   "Connections on each worker lcore of the DPDK edge (RSS "
				   "spreads them).",
				   "worker", d->nworkers, g_worker_open, d);
	metrics_register_gauge_vec("fanout_dpdk_worker_accepted_total",
				   "Connections each worker lcore of the DPDK edge accepted.",
				   "worker", d->nworkers, g_worker_accepted, d);
	metrics_register_gauge("fanout_dpdk_rx_packets_total", "Packets received by the DPDK edge.",
			       g_rx, d);
	metrics_register_gauge("fanout_dpdk_tx_packets_total", "Packets sent by the DPDK edge.",
			       g_tx, d);
	metrics_register_gauge("fanout_dpdk_tx_dropped_total",
			       "Packets the DPDK port did not take (TCP sends them again).", g_drop,
			       d);
	metrics_register_gauge("fanout_dpdk_tcp_retransmits_total",
			       "Segments the DPDK edge's TCP sent again (timeouts and fast "
			       "retransmits).",
			       g_retransmits, d);
	metrics_register_gauge("fanout_dpdk_tcp_out_of_order_total",
			       "Segments that arrived ahead of a hole (answered with a duplicate "
			       "ACK; held until it fills when there is room, else dropped).",
			       g_out_of_order, d);
	metrics_register_gauge("fanout_dpdk_tcp_sack_retransmits_total",
			       "Segments sent again in recovery because the peer's SACK blocks "
			       "showed them missing (a second hole in one round trip).",
			       g_sack_retransmits, d);
	metrics_register_gauge("fanout_dpdk_tcp_out_of_order_held_total",
			       "Segments held ahead of a hole and delivered once it filled.",
			       g_ooo_held, d);
	metrics_register_gauge("fanout_dpdk_tcp_spurious_timeouts_total",
			       "Retransmission timeouts that the peer's timestamps showed "
			       "needless (the ACK was late, not the data lost; RFC 3522).",
			       g_spurious, d);
	metrics_register_gauge("fanout_dpdk_tcp_window_drops_total",
			       "Segments whose data did not fit the window we advertised (a "
			       "connection not read, or waiting for an upgrade slot): cut, "
			       "and sent again by the peer.",
			       g_window_drops, d);
	metrics_register_gauge("fanout_dpdk_tx_bytes_by_reference_total",
			       "Payload bytes the port sent from the frames themselves "
			       "(zero-copy).",
			       g_by_ref, d);
	metrics_register_gauge("fanout_dpdk_tx_bytes_copied_total",
			       "Payload bytes copied into packets: upgrade responses, and "
			       "frames the port could not read where they were.",
			       g_copied, d);
	if (d->send_mode == ZERO_COPY_POOLED) {
		metrics_register_gauge("fanout_dpdk_frame_pool_in_use",
				       "Frames in DPDK memory now in use.", g_pool_in_use, d);
		metrics_register_gauge("fanout_dpdk_frame_pool_capacity",
				       "Frames DPDK memory holds ([dataplane] frame_memory_mb).",
				       g_pool_capacity, d);
		metrics_register_gauge("fanout_dpdk_frame_pool_misses_total",
				       "Frames made on the heap, and so sent by copy: the pool "
				       "for their size was empty, or they were larger than 64 KiB.",
				       g_frame_misses, d);
	}
	metrics_register_gauge(
	    "fanout_dpdk_ip_bad_total",
	    "IPv4 packets with a bad header or checksum, and TCP segments with a "
	    "bad checksum, dropped.",
	    g_ip_bad, d);
	metrics_register_gauge("fanout_dpdk_ip_fragments_total",
			       "IPv4 fragments dropped (not reassembled).", g_ip_fragments, d);
	metrics_register_gauge("fanout_dpdk_arp_answered_total",
			       "ARP requests for the edge's address answered.", g_arp_answered, d);
	metrics_register_gauge("fanout_dpdk_icmp_echo_total", "ICMP echo requests answered.",
			       g_icmp_echo, d);
	metrics_register_gauge("fanout_dpdk_upgrades_refused_total",
			       "Upgrade requests answered with an HTTP error on the DPDK edge.",
			       g_refused, d);
	metrics_register_gauge("fanout_dpdk_rx_dropped_total",
			       "Frames the DPDK edge dropped: chained (jumbo) frames, bad TCP "
			       "headers.",
			       g_rx_dropped, d);
	metrics_register_gauge("fanout_dpdk_rx_missed_total",
			       "Frames the port dropped before a worker saw them: its receive "
			       "ring was full, or it had no mbuf to receive into.",
			       g_rx_missed, d);
	metrics_register_gauge("fanout_dpdk_no_mbuf_total",
			       "Segments not sent for want of an mbuf (TCP sends them again).",
			       g_no_mbuf, d);
	metrics_register_gauge("fanout_dpdk_upgrades_waited_total",
			       "Connections that waited for an upgrade slot (a burst of "
			       "connections).",
			       g_waited, d);
	metrics_register_gauge("fanout_dpdk_tcp_syn_cookies_total",
			       "SYN cookies sent: the half-open table was full.", g_syn_cookies, d);
	LOG(NOTICE,
	    "dpdk edge: %s (%s, %02x:%02x:%02x:%02x:%02x:%02x) at %u.%u.%u.%u port %u, %d "
	    "worker(s), %s, checksums %s",
	    cfg->port, d->driver, d->mac[0], d->mac[1], d->mac[2], d->mac[3], d->mac[4], d->mac[5],
	    cfg->address >> 24, (cfg->address >> 16) & 255, (cfg->address >> 8) & 255,
	    cfg->address & 255, (unsigned)cfg->listen_port, d->nworkers, send_mode_name(d),
	    d->tx_csum ? (d->rx_csum ? "by the port" : "sent by the port, checked here")
		       : (d->rx_csum ? "checked by the port, sent here" : "here"));
	return d;
fail:
	dpdk_edge_stop(d);
	return NULL;
}

void dpdk_edge_close_all(struct dpdk_edge *d, int code, const char *reason, int wait_ms)
{
	uint64_t deadline = time_mono_ns() + (uint64_t)wait_ms * 1000000ull;
	int open;

	if (d == NULL)
		return;
	atomic_store(&d->draining, true);
	for (int i = 0; i < d->nworkers; i++)
		edge_post_close_all(d->edge, d->cfg.first_worker + i, code, reason);
	do {
		struct timespec ts = {0, 10000000};
		open = 0;
		for (int i = 0; i < d->nworkers; i++)
			open += atomic_load(&d->workers[i].open);
		if (open)
			nanosleep(&ts, NULL);
	} while (open && time_mono_ns() < deadline);
}

void dpdk_edge_stop(struct dpdk_edge *d)
{
	if (d == NULL)
		return;
	atomic_store(&d->stop, true);
	for (int i = 0; i < d->nworkers; i++)
		if (d->workers[i].lcore)
			rte_eal_wait_lcore(d->workers[i].lcore);
	for (int i = 0; i < d->nworkers; i++) {
		struct dworker *w = &d->workers[i];

		/* what is left is reset: its sessions end, its frames return */
		for (uint32_t k = 0; w->conns && k < d->cfg.max_connections; k++)
			if (w->conns[k].state != DC_FREE && w->conns[k].tcp)
				tcp_abort(w->tcp, w->conns[k].tcp);
		if (w->tcp)
			tcp_flush(w->tcp, now_us());
		tx_flush(w);
		if (w->ew) {
			edge_worker_drain(w->ew);
			edge_worker_destroy(w->ew);
		}
		tcp_engine_destroy(w->tcp);
		net_fini(&w->net);
		free(w->conns);
		free(w->handshakes);
	}
	if (d->pool) {
		rte_eth_dev_stop(d->port_id);
		rte_eth_dev_close(d->port_id);
	}
	rte_mempool_free(d->ext_pool);
	rte_mempool_free(d->pool);
	free(d->workers);
	free(d);
}

/* ---- the benchmark: the send path into a port that drops everything ---- */

int dpdk_edge_bench_null(const char *port, struct dpdk_null_bench *b)
{
	static const uint8_t peer_mac[6] = {2, 0, 0, 0, 0, 2};
	struct dpdk_edge *d = calloc(1, sizeof(*d));
	struct tcp_tuple *tuples = calloc(b->connections, sizeof(*tuples));
	struct dconn **conns = calloc(b->connections, sizeof(*conns));
	uint8_t *payload = malloc(b->payload + 1);
	struct dworker *w;
	uint64_t t0, t1;
	int rc = -1;

	if (d == NULL || tuples == NULL || conns == NULL || payload == NULL || b->ack_every == 0 ||
	    b->ack_every > 32)
		goto out;
	snprintf(d->port_name, sizeof(d->port_name), "%s", port);
	d->cfg = (struct dpdk_edge_config){.port = d->port_name,
					   .address = 0x0a000001,
					   .netmask = 0xffffff00,
					   .listen_port = 80,
					   .workers = 1,
					   .max_connections = b->connections + 16,
					   .upgrade_slots = 16,
					   .zero_copy = b->zero_copy,
					   .frame_memory_mb = 64,
					   .copy_below = b->copy_below,
					   .checksum_offload = OFFLOAD_AUTO,
					   .jwt_secret = d->secret};
	if (port_start(d) < 0)
		goto out;
	d->workers = calloc(1, sizeof(*d->workers));
	if (d->workers == NULL)
		goto out;
	d->nworkers = 1;
	w = &d->workers[0];
	if (worker_init(d, w, 0, rte_lcore_id()) < 0)
		goto out;
	w->lcore = 0; /* this thread: nothing to wait for at stop */
	/* Handshakes, as a client would make them. */
	for (uint32_t i = 0; i < b->connections; i++) {
		struct tcp_seg syn = {.t = {d->cfg.address, 0x0b000000u | (i >> 15), 80,
					    (uint16_t)(1024 + (i & 0x7fff))},
				      .seq = 1000,
				      .flags = TCP_SYN,
				      .wnd = 65535,
				      .has_mss = true,
				      .mss = 1460,
				      .has_ws = true,
				      .ws = 7,
				      .has_ts = true,
				      .tsval = 1};
		struct tcp_seg ack = syn;
		struct tcp_cc_info cc;
		struct tcp_conn *c;

		tuples[i] = syn.t;
		w->now_us = now_us();
		w->src_mac = peer_mac;
		tcp_input(w->tcp, &syn, w->now_us);
		c = tcp_lookup(w->tcp, &syn.t);
		if (c == NULL)
			goto out;
		tcp_conn_cc(c, &cc);
		ack.seq = 1001;
		ack.ack = cc.snd_nxt;
		ack.flags = TCP_ACK;
		ack.has_mss = ack.has_ws = false;
		tcp_input(w->tcp, &ack, w->now_us);
		w->src_mac = NULL;
		conns[i] = tcp_conn_app(c);
		if (conns[i] == NULL)
			goto out;
		conns[i]->state = DC_WS; /* past the upgrade: the bench has no sessions */
		if (i % 256 == 255) {
			tcp_flush(w->tcp, w->now_us);
			tx_flush(w);
		}
	}
	tcp_flush(w->tcp, now_us());
	tx_flush(w);
	memset(payload, 'x', b->payload);
	t0 = time_mono_ns();
	for (uint32_t m = 0; m < b->messages; m++) {
		struct frame *f = frame_new(FRAME_DURABLE, 1, m + 1, payload, b->payload);

		if (f == NULL)
			goto out;
		for (uint32_t i = 0; i < b->connections; i++)
			if (queue_frame(conns[i], f, WS_TEXT) == 0)
				b->deliveries++;
		frame_unref(f);
		w->now_us = now_us();
		tcp_flush(w->tcp, w->now_us);
		tx_flush(w);
		if ((m + 1) % b->ack_every == 0 || m + 1 == b->messages) {
			/* every client acknowledges what it has */
			for (uint32_t i = 0; i < b->connections; i++) {
				struct tcp_seg ack = {.t = tuples[i],
						      .seq = 1001,
						      .flags = TCP_ACK,
						      .wnd = 65535,
						      .has_ts = true,
						      .tsval = 1};
				struct tcp_cc_info cc;

				tcp_conn_cc(conns[i]->tcp, &cc);
				ack.ack = cc.snd_nxt;
				tcp_input(w->tcp, &ack, w->now_us);
			}
			tcp_flush(w->tcp, w->now_us);
			tcp_timers(w->tcp, w->now_us);
		}
	}
	t1 = time_mono_ns();
	b->seconds = (double)(t1 - t0) / 1e9;
	b->tx_packets = w->tx_packets;
	b->tx_dropped = w->tx_dropped + w->no_mbuf;
	b->send_mode = send_mode_name(d);
	b->tx_by_ref = w->tx_by_ref;
	b->tx_copied = w->tx_copied;
	b->tx_csum = d->tx_csum;
	b->conn_slot_bytes =
	    tcp_conn_bytes(&(struct tcp_config){.sndq_chunks = 64}) + sizeof(struct dconn);
	b->queue_bytes = tcp_queue_bytes(&(struct tcp_config){.sndq_chunks = 64});
	rc = 0;
out:
	free(tuples);
	free(conns);
	free(payload);
	dpdk_edge_stop(d);
	return rc;
}
