/* SPDX-License-Identifier: BSD-3-Clause */
/* The TCP engine's state and the functions its files share: tcp.c (the
 * engine's memory: connections, send queues, held segments), tcp_wire.c
 * (parsing, headers, SipHash), tcp_output.c (segments out, ACKs, RTT and
 * congestion control), tcp_input.c (segment arrival) and tcp_timers.c (the
 * timers and the application's calls). Only the engine's files include it. */
#pragma once

#include "tcp.h"

#include "bytes.h"
#include "wheel.h"

#include <stdlib.h>
#include <string.h>

#define WHEEL_SLOTS	 4096
#define WHEEL_TICK_US	 1000
#define COOKIE_PERIOD_US (64ull * 1000000ull)
#define SYNACK_RETRIES	 3
#define DUPACK_THRESHOLD 3

/* Sequence-space comparisons (modulo 2^32). */
static inline bool seq_lt(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}
static inline bool seq_leq(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) <= 0;
}
static inline uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}
static inline uint32_t max_u32(uint32_t a, uint32_t b)
{
	return a > b ? a : b;
}

struct tcp_chunk {
	const uint8_t *data;
	uint32_t len;
	void *ref;
};

/* Ordered for the send path: what queueing data (tcp_send) touches is in
 * the first 64 bytes, what sending a segment reads and writes in the first
 * 128 (tcp_flush prefetches them ahead); the rest after. */
struct tcp_conn {
	/* first line: which connection, its queue, its flags */
	struct tcp_tuple t;
	uint8_t state;
	bool pending; /* on the flush list */
	bool ack_now; /* an ACK is owed */
	bool ts_ok;
	struct tcp_conn *pnext; /* flush list, or free list */
	/* the send queue, taken from the engine's pool while there is
	 * something to send (NULL when idle): chunks [q_head, q_tail) of a
	 * ring; q_bytes from
	 * snd_una (the head chunk's first q_head_off bytes are acknowledged) */
	struct tcp_chunk *q;
	uint16_t q_mask;
	/* where the last segment's payload began: chunk q_head + walk_rel,
	 * whose first byte is walk_seq (the head chunk's start when nothing
	 * better is known); the chunk after, when that segment ended with its
	 * chunk (then it may be q_tail: the next chunk queued). A segment of
	 * new data starts its walk there, not at the head: the chunks between
	 * were sent and wait for their ACK, and their lines have left the
	 * cache. */
	uint16_t walk_rel;
	uint32_t q_head, q_tail, q_head_off, q_bytes;
	bool fin_queued;
	bool sack_ok;	/* the peer may be told of held segments (RFC 2018) */
	bool rx_closed; /* the application paused reading: window 0 */
	bool accepted;	/* on_accept took it: its app entry is in use (each segment asks) */
	/* second line: the sequence spaces as sending uses them (3.3.1) */
	uint32_t snd_una, snd_nxt, snd_max, snd_wnd, cwnd;
	uint32_t rcv_nxt, ts_recent, last_ack_sent;
	uint16_t ooo; /* segments held ahead of a hole: a list, 1-based; 0 none */
	uint8_t rcv_ws, snd_ws;
	uint16_t snd_mss;
	bool rtt_timing;
	bool fin_out; /* ours went out (at least once) */
	struct wheel_node timer;
	uint32_t walk_seq;
	uint32_t rtt_start_us; /* the low 32 bits of now_us: intervals under 71 minutes */
	/* the rest: input, recovery, RTT */
	struct tcp_conn *hnext; /* hash chain */
	uint8_t n_ooo;		/* how many */
	bool ws_ok;
	bool recover_set; /* recover holds a value (RFC 6582) */
	bool in_recovery;
	bool eifel; /* a timeout's retransmission awaits its first ACK */
	uint8_t dupacks;
	uint8_t retries;
	bool fin_rcvd; /* input's alone */
	uint32_t snd_wl1, snd_wl2;
	uint32_t ssthresh, recover;
	uint32_t eifel_ts, prior_cwnd, prior_ssthresh; /* at the timeout (RFC 3522) */
	uint32_t srtt_us, rttvar_us, rto_us, rtt_seq;
	uint32_t rexmit_hi; /* in recovery: sent again up to here (SACK) */
};

/* Send queues are allocated 64 at a time (a slab) as the number of
 * connections with something to send at once grows, and go back to their
 * slab when empty: an idle connection holds none. Once a second the slabs
 * with no queue in use are freed down to the most queues used at once in
 * the second before, plus a slab: a burst (every connection's hello at
 * once) does not leave its peak allocated, and a steady load does not make
 * and free slabs each time its queues drain. New queues come from the slab
 * that last had one back. */
#define QSLAB 64
struct qslab {
	struct tcp_chunk *free;		       /* its free queues, linked through [0].ref */
	uint32_t used;			       /* its queues in use */
	struct qslab *avail_next, *avail_prev; /* on the list of slabs with room */
	struct tcp_chunk chunks[];
};

/* Segments that arrive ahead of a hole are copied into a slot of the
 * engine's pool (allocated at create, so nothing is allocated per packet)
 * and delivered once the hole fills: a reordered segment then costs its
 * sender nothing, and a lost one only itself. A connection holds at most
 * OOO_PER_CONN, the engine cfg.ooo_segs; beyond them, or for a segment
 * larger than a slot or carrying a FIN, the segment is dropped (the sender
 * sends it again). Held segments are kept sorted by sequence number. */
#define OOO_DATA     2036
#define OOO_PER_CONN 8
struct ooo_seg {
	uint32_t seq;
	uint16_t len;
	uint16_t next; /* 1-based; 0 ends the list */
	uint8_t data[OOO_DATA];
};

struct tcp_engine {
	struct tcp_config cfg;
	struct ooo_seg *ooo;		  /* cfg.ooo_segs slots */
	uint16_t ooo_free;		  /* slots given back, linked through next; 1-based */
	uint16_t ooo_fresh;		  /* slots ever used: the rest are untouched */
	const struct tcp_conn *held_conn; /* the segment being answered was held: */
	uint32_t held_seq;		  /* it leads the SACK blocks */
	struct tcp_callbacks cb;
	struct tcp_conn *conns, *free_list, *pending, *dead;
	struct qslab **slabs; /* every slab, sorted by address */
	uint32_t nslabs, capslabs;
	struct qslab *avail;   /* slabs with a free queue */
	uint32_t qused, qpeak; /* queues in use; the most since the last trim */
	uint64_t trim_us;
	struct tcp_conn **buckets;
	uint32_t bucket_mask;
	struct wheel wheel;
	struct wheel_node slots[WHEEL_SLOTS];
	uint16_t ports[8];
	int nports;
	uint64_t now_us;
	struct tcp_stats st;
};

static inline uint16_t adv_window(const struct tcp_engine *e, const struct tcp_conn *c)
{
	return c->rx_closed ? 0 : (uint16_t)min_u32(e->cfg.rcv_wnd >> c->rcv_ws, 65535);
}

static inline uint32_t ts_clock(const struct tcp_engine *e)
{
	return (uint32_t)(e->now_us / 1000);
}

/* The application's entry for c, once accepted (tcp_config.app). */
static inline void *conn_app(const struct tcp_engine *e, const struct tcp_conn *c)
{
	if (!c->accepted || e->cfg.app == NULL)
		return NULL;
	return (char *)e->cfg.app + (size_t)(c - e->conns) * e->cfg.app_size;
}

static inline uint32_t flight(const struct tcp_conn *c)
{
	return c->snd_nxt - c->snd_una;
}

/* The sequence number of our FIN (valid once fin_queued). */
static inline uint32_t fin_seq(const struct tcp_conn *c)
{
	return c->snd_una + c->q_bytes;
}

/* Our FIN is acknowledged: nothing of ours is outstanding after it. */
static inline bool fin_acked(const struct tcp_conn *c)
{
	return c->fin_out && c->snd_una == c->snd_max;
}

static inline void arm(struct tcp_engine *e, struct tcp_conn *c, uint64_t after_us)
{
	wheel_arm(&e->wheel, &c->timer, e->now_us + after_us);
}

/* tcp_wire.c */
uint64_t tcp_siphash3(const uint64_t k[2], uint64_t a, uint64_t b, uint64_t c);
uint64_t tcp_tuple_word(const struct tcp_tuple *t);

/* tcp.c */
struct tcp_conn *tcp_conn_new(struct tcp_engine *e, const struct tcp_tuple *t);
void tcp_conn_kill(struct tcp_engine *e, struct tcp_conn *c, enum tcp_close_reason why,
		   bool notify);
bool tcp_listening(const struct tcp_engine *e, uint16_t lport);
void tcp_ooo_deliver(struct tcp_engine *e, struct tcp_conn *c);
void tcp_reap(struct tcp_engine *e);
bool tcp_ooo_hold(struct tcp_engine *e, struct tcp_conn *c, uint32_t seq, const uint8_t *data,
		  uint32_t len);
void tcp_mark_pending(struct tcp_engine *e, struct tcp_conn *c);
struct ooo_seg *tcp_ooo_at(struct tcp_engine *e, uint16_t i);
void tcp_queue_put(struct tcp_engine *e, struct tcp_conn *c);
int tcp_queue_get(struct tcp_engine *e, struct tcp_conn *c);
void tcp_slabs_trim(struct tcp_engine *e);

/* tcp_output.c */
void tcp_send_synack(struct tcp_engine *e, const struct tcp_tuple *t, uint32_t iss, uint32_t ack,
		     bool ws, bool ts, bool sack, uint32_t tsval, uint32_t tsecr);
void tcp_send_seg(struct tcp_engine *e, struct tcp_conn *c, uint32_t seq, uint8_t flags,
		  uint32_t off, uint32_t len);
void tcp_send_reset(struct tcp_engine *e, const struct tcp_seg *seg);
void tcp_dup_ack(struct tcp_engine *e, struct tcp_conn *c, const struct tcp_seg *seg);
void tcp_new_ack(struct tcp_engine *e, struct tcp_conn *c, uint32_t ack, uint32_t tsecr);
void tcp_send_ack(struct tcp_engine *e, struct tcp_conn *c);
void tcp_conn_output(struct tcp_engine *e, struct tcp_conn *c);
