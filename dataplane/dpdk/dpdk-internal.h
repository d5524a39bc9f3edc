/* SPDX-License-Identifier: BSD-3-Clause */
/* State shared by the DPDK edge's files: the edge, its worker lcores, their
 * connections and handshake slots, and the transmit state a frame carries in
 * its headroom. dpdk_edge.c says how the parts fit; nothing outside
 * dataplane/dpdk/ includes this. */
#pragma once

#include "dpdk_edge.h"

#include "buf.h"
#include "bytes.h"
#include "clock.h"
#include "edge.h"
#include "fanout.h"
#include "frame.h"
#include "framepool.h"
#include "handoff.h"
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

/* Per-frame transmit state, in the frame's zeroed headroom (frame.c). A
 * frame is one worker's (fanout.c gives each worker its own copy), so its
 * state is the worker's alone. */
struct frame_tx {
	struct rte_mbuf_ext_shared_info shinfo; /* counts the mbufs pointing into it */
	uint32_t csum;				/* partial sum of header and payload */
	uint32_t queued; /* send queue entries holding it: one reference on the frame */
	uint8_t hlen;	 /* websocket header length; 0: not prepared */
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

/* A connection's state beside its TCP state: w->conns[i] goes with the
 * engine's connection i (tcp_conn_index), so neither points at the other.
 * What sending touches comes first, in the line the TCP engine prefetches
 * (tcp.h, tcp_flush) and conn_pump with it. Until the upgrade a connection
 * uses u.http, after it u.ws (conn_leave_http() turns one into the other):
 * 104 bytes, which with the TCP state (192, and 8 of its table) makes the
 * 304-byte slot. */
struct dconn {
	uint8_t mac[6];
	uint8_t state;
	bool in_write_list, close_sent;
	bool waiting;	/* for a handshake slot, reading paused */
	uint32_t wnext; /* the next on the write list: its index + 1, or 0 */
	struct dworker *w;
	struct session *s;
	union {
		struct {
			struct handshake *hs; /* while the upgrade request is parsed */
			struct dconn *wait_next, *wait_prev; /* waiting for a slot */
			struct buf held;		     /* the request's bytes meanwhile */
		} http;
		struct {
			struct ws_decoder dec;
			struct buf *rx; /* a message split between reads, gathered */
		} ws;
	} u;
};

struct dworker {
	struct dpdk_edge *d;
	uint16_t queue;
	unsigned lcore;
	struct edge_worker *ew;
	struct tcp_engine *tcp;
	uint8_t *tcp_conns; /* the engine's connections, tcp_conn_size apart */
	size_t tcp_conn_size;
	struct net net;
	struct dconn *conns, *write_list;
	struct handshake *handshakes, *free_hs;
	struct dconn *hs_wait, *hs_wait_tail; /* accepted, waiting for a slot */
	struct rte_mbuf *tx[TX_MAX];
	int ntx;
	struct rte_mbuf *spare[BURST]; /* taken from the pool a burst at a time */
	int nspare;
	uint32_t mbuf_data_at;	/* a pool mbuf's data start, from the mbuf (tx_mbuf) */
	const uint8_t *src_mac; /* of the frame being input */
	uint16_t ip_id;
	uint64_t now_us, next_tick_us, timers_us;
	atomic_int open;
	/* counters, read by the metrics thread without a lock */
	uint64_t rx_packets, tx_packets, tx_dropped, rx_dropped, no_mbuf, refused, hs_waited;
	uint64_t tx_by_ref, tx_copied; /* payload bytes sent */
	/* load: time in turns that found work, over the last whole second */
	uint64_t busy_us, busy_window_us, window_start_us;
	_Atomic uint32_t load_permille;
};

struct dpdk_edge {
	struct dpdk_edge_config cfg;
	char port_name[64], secret[256], driver[32];
	struct edge *edge;
	struct handoff *handoff; /* the workers' publishes, to a control thread */
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

/* The TCP connection beside dc; the connection after dc on the write list;
 * the link to dc from the one before. */
static inline struct tcp_conn *dconn_tcp(const struct dconn *dc)
{
	const struct dworker *w = dc->w;

	return (struct tcp_conn *)(w->tcp_conns + (size_t)(dc - w->conns) * w->tcp_conn_size);
}

static inline struct dconn *dconn_wnext(const struct dconn *dc)
{
	return dc->wnext ? &dc->w->conns[dc->wnext - 1] : NULL;
}

static inline uint32_t dconn_link(const struct dconn *dc)
{
	return dc ? (uint32_t)(dc - dc->w->conns) + 1 : 0;
}

static inline uint64_t now_us(void)
{
	return time_mono_ns() / 1000;
}

/* tx.c: the transmit side */

/* A chunk's reference in the TCP send queue: a frame, or a handshake's
 * response (its pointer with the low bit set). */
static inline void *tx_hs_ref(struct handshake *h)
{
	return (void *)((uintptr_t)h | 1);
}

static inline struct handshake *tx_ref_hs(void *ref)
{
	return (uintptr_t)ref & 1 ? (struct handshake *)((uintptr_t)ref & ~(uintptr_t)1) : NULL;
}

static inline struct frame_tx *tx_frame_state(struct frame *f)
{
	return (struct frame_tx *)f->buf;
}

/* A send queue entry takes f, or gives it back. The worker's entries share
 * one reference on the frame, taken by the first and dropped by the last:
 * not an atomic operation per delivery. */
static inline void tx_frame_take(struct frame *f)
{
	if (tx_frame_state(f)->queued++ == 0)
		frame_ref(f);
}

static inline void tx_frame_give(struct frame *f)
{
	if (--tx_frame_state(f)->queued == 0)
		frame_unref(f);
}

void tx_flush(struct dworker *w);
void tx_spares_free(struct dworker *w);

/* Queues m for the next burst; a full burst goes out first. */
static inline void tx_push(struct dworker *w, struct rte_mbuf *m)
{
	if (unlikely(w->ntx == TX_MAX))
		tx_flush(w);
	w->tx[w->ntx++] = m;
}
void tx_ext_free(void *addr, void *opaque);
void tx_segment(void *ctx, const struct tcp_out *o);

/* conn.c: connections, from the upgrade to the close */
int conn_queue_frame(struct dconn *dc, struct frame *f, enum ws_opcode op);
void conn_pump(struct dworker *w);
bool conn_on_accept(void *ctx, struct tcp_conn *c);
void conn_on_data(void *ctx, struct tcp_conn *c, void *app, const uint8_t *data, uint32_t len);
void conn_on_peer_fin(void *ctx, struct tcp_conn *c, void *app);
void conn_on_closed(void *ctx, struct tcp_conn *c, void *app, enum tcp_close_reason why);
void conn_on_release(void *ctx, void *ref);
void conn_leave_http(struct dconn *dc);

/* lcore.c: the worker lcore's loop */
int lcore_main(void *arg);

/* port.c: the port and the workers' set-up */
int port_worker_init(struct dpdk_edge *d, struct dworker *w, int i, unsigned lcore);
const char *port_send_mode_name(const struct dpdk_edge *d);
int port_start(struct dpdk_edge *d);

/* stats.c: the edge's metrics */
void dpdk_stats_register(struct dpdk_edge *d);

/* telemetry.c: fanout's commands on DPDK's telemetry socket, answering for
 * d until dpdk_telemetry_stop(). */
void dpdk_telemetry_start(struct dpdk_edge *d);
void dpdk_telemetry_stop(void);
