/* SPDX-License-Identifier: BSD-3-Clause */
/* The TCP engine of the DPDK edge: the server side of TCP (RFC 9293, passive
 * open only) as a library that an lcore loop drives. Segments go in parsed
 * (tcp_input), segments come out through a callback (tcp_output_fn), time is
 * the caller's (now_us on every call, tcp_timers for the timer step), and
 * nothing is allocated per segment: no malloc, locks, syscalls or logging
 * (send queues come from slabs that grow with the connections sending at
 * once; held out-of-order segments from a pool made at create). One engine per lcore; it owns its
 * connections.
 *
 * What it does: SYN/SYN-ACK with MSS, window scaling and timestamps (RFC
 * 7323, with PAWS); a bounded half-open table and SYN cookies beyond it (RFC
 * 4987); in-order delivery (a segment ahead of a hole is answered with a
 * duplicate ACK and held, within bounds, until the hole fills; SACK blocks
 * report it, RFC 2018); sending with retransmission (RTO per RFC 6298,
 * exponential backoff, spurious timeouts detected, RFC 3522/4015), fast
 * retransmit and NewReno recovery (RFC 5681, 6582) that also sends again
 * the holes a peer's SACK blocks show, the peer's window and zero-window
 * probes; FIN and RST in every state
 * (RST checked as in RFC 5961: an in-window RST that is not exact gets a
 * challenge ACK). What it leaves out is in docs/dataplane.md.
 *
 * The payload of the send side is never copied: the application queues
 * chunks (a pointer, a length and an opaque reference such as an mbuf whose
 * refcount it took); an outgoing segment names a byte range of that queue,
 * which the packet glue walks with tcp_out_walk to chain the chunks, and a
 * chunk is handed back through on_release once the peer acknowledged all of
 * it. */
#pragma once

#include "bytes.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* TCP header flags. */
enum {
	TCP_FIN = 0x01,
	TCP_SYN = 0x02,
	TCP_RST = 0x04,
	TCP_PSH = 0x08,
	TCP_ACK = 0x10,
	TCP_URG = 0x20,
};

/* Addresses and ports in host byte order, from our side. */
struct tcp_tuple {
	uint32_t laddr, raddr;
	uint16_t lport, rport;
};

/* A received segment, parsed (host byte order). */
struct tcp_seg {
	struct tcp_tuple t;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t wnd; /* the window field, unscaled */
	bool has_mss, has_ws, has_ts, sack_ok;
	uint16_t mss;
	uint8_t ws;
	uint32_t tsval, tsecr;
	uint8_t nsack;		       /* SACK blocks (RFC 2018), at most 4 */
	uint32_t sack_l[4], sack_r[4]; /* [left, right) each */
	const uint8_t *data;
	uint32_t len;
};

/* Parses a TCP header with its options and payload (the IP layer gives the
 * addresses and the segment's length). Returns 0, or -1 for a malformed
 * header (data offset out of range, an option running past the header). The
 * checksum is the caller's to verify. */
int tcp_parse(const uint8_t *p, size_t len, uint32_t saddr, uint32_t daddr, struct tcp_seg *seg);

struct tcp_conn;

/* One segment to send: the fields of its header, its options already
 * encoded, and a byte range of the connection's send queue as payload. */
struct tcp_out {
	struct tcp_tuple t;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t wnd;
	uint8_t optlen;
	uint8_t opts[40];
	const struct tcp_conn *conn; /* NULL for a RST or SYN-ACK with no connection */
	void *app;		     /* conn's application entry, once accepted (else NULL) */
	uint32_t first, skip;	     /* payload: from queue chunk first, skip bytes into it */
	uint32_t len;
	/* the payload's first piece, as tcp_out_walk would give it: when
	 * piece == len the payload is this one piece and needs no walk */
	const uint8_t *piece_data;
	uint32_t piece;
	void *piece_ref;
};

/* The TCP header of o (20 + optlen bytes, checksum zero) into p, and into
 * *sum its one's complement sum, from o's values (no bytes read back), not
 * folded (under 2^20: the caller folds it once with the rest).
 * Returns its length. Inline: every segment sent goes through it. Options
 * are whole 32-bit words (the header's length counts them so); they are
 * summed in the host's order and the folded sum swapped (RFC 1071). */
static inline size_t tcp_out_header(const struct tcp_out *o, uint8_t *p, uint32_t *sum)
{
	size_t hlen = 20 + o->optlen;
	uint32_t lenflags = (uint32_t)(hlen / 4) << 12 | o->flags;
	uint64_t s = (uint64_t)o->t.lport + o->t.rport + (o->seq >> 16) + (o->seq & 0xffff) +
		     (o->ack >> 16) + (o->ack & 0xffff) + lenflags + o->wnd;
	uint64_t opts = 0;

	put32(p, (uint32_t)o->t.lport << 16 | o->t.rport);
	put32(p + 4, o->seq);
	put32(p + 8, o->ack);
	put32(p + 12, lenflags << 16 | o->wnd);
	put32(p + 16, 0); /* checksum: the glue's (or the NIC's); no urgent data */
	for (uint32_t i = 0; i < o->optlen; i += 4) {
		uint32_t w;

		memcpy(&w, o->opts + i, 4);
		memcpy(p + 20 + i, &w, 4);
		opts += w;
	}
	*sum = (uint32_t)(s + csum_swap16(csum_fold16(opts)));
	return hlen;
}

/* Calls fn for each piece of o's payload, in order: chunk data and length,
 * and the chunk's reference. */
void tcp_out_walk(const struct tcp_out *o,
		  void (*fn)(void *arg, const uint8_t *data, uint32_t len, void *ref), void *arg);

enum tcp_close_reason {
	TCP_CLOSED_NORMAL,  /* both FINs exchanged and acknowledged */
	TCP_CLOSED_RESET,   /* the peer sent RST */
	TCP_CLOSED_TIMEOUT, /* retransmissions gave up */
	TCP_CLOSED_ABORTED, /* tcp_abort */
};

struct tcp_callbacks {
	void *ctx;
	/* Emits one segment; called from tcp_input, tcp_flush and tcp_timers. */
	void (*output)(void *ctx, const struct tcp_out *o);
	/* A connection is established; returns true to take it, false to
	 * refuse it (the engine then resets it). The app given to the calls
	 * below is the connection's entry in tcp_config's app array (NULL
	 * without one). */
	bool (*on_accept)(void *ctx, struct tcp_conn *c);
	/* In-order bytes from the peer. */
	void (*on_data)(void *ctx, struct tcp_conn *c, void *app, const uint8_t *data,
			uint32_t len);
	/* The peer sent FIN: no more data will come (the application may still
	 * send, then tcp_close). */
	void (*on_peer_fin)(void *ctx, struct tcp_conn *c, void *app);
	/* The connection is gone; its pointer is invalid after this returns.
	 * Every chunk has been released before. */
	void (*on_closed)(void *ctx, struct tcp_conn *c, void *app, enum tcp_close_reason why);
	/* A chunk is acknowledged (or discarded): its reference is the caller's
	 * to drop. */
	void (*on_release)(void *ctx, void *ref);
};

struct tcp_config {
	uint32_t max_conns;	 /* established and closing connections */
	uint32_t max_half_open;	 /* SYN_RECEIVED entries before SYN cookies */
	uint32_t sndq_chunks;	 /* send queue entries per connection, a power of two */
	uint16_t mss;		 /* the MSS we advertise and the most we send */
	uint8_t wscale;		 /* our window scale shift */
	uint32_t rcv_wnd;	 /* the window we advertise, bytes */
	uint32_t rto_initial_us; /* RFC 6298: 1 s */
	uint32_t rto_min_us;	 /* 200 ms, as Linux */
	uint32_t rto_max_us;	 /* 60 s */
	uint32_t max_retries;	 /* retransmissions of one segment before giving up */
	uint32_t time_wait_us;	 /* TIME_WAIT after our active close */
	uint32_t syn_timeout_us; /* a half-open entry's lifetime */
	uint64_t cookie_key[2];	 /* SipHash key for SYN cookies and ISNs */
	uint32_t ooo_segs;	 /* segments held out of order, for the engine (<= 65535) */
	/* The application's state per connection, max_conns entries of
	 * app_size bytes (may be NULL): connection i's is entry i, given to the
	 * callbacks once accepted. */
	void *app;
	size_t app_size;
};

/* Bytes the engine sets aside per connection under cfg (its state and its
 * share of the table), and those of a send queue, which a connection holds
 * only while it has unacknowledged data (queues come from a pool that grows
 * to the most connections sending at once). */
size_t tcp_conn_bytes(const struct tcp_config *cfg);
size_t tcp_queue_bytes(const struct tcp_config *cfg);

/* Fills c with the defaults above. */
void tcp_config_defaults(struct tcp_config *c);

struct tcp_engine;

/* Allocates everything the engine will ever use. NULL on bad config or no
 * memory. */
struct tcp_engine *tcp_engine_create(const struct tcp_config *cfg, const struct tcp_callbacks *cb);
void tcp_engine_destroy(struct tcp_engine *e);

/* Accepts connections on lport (any local address). Up to 8 ports. */
int tcp_listen(struct tcp_engine *e, uint16_t lport);

/* One received segment. Output goes through the callback; ACKs may be held
 * until tcp_flush so that one burst of input gives one ACK per connection. */
void tcp_input(struct tcp_engine *e, const struct tcp_seg *seg, uint64_t now_us);

/* Sends what each connection touched since the last flush (data the
 * application queued, held ACKs, FINs). Call after each burst. While one
 * connection is sent, the next ones' state, queue head and the first cache
 * line of their application state (tcp_config.app) are prefetched. */
void tcp_flush(struct tcp_engine *e, uint64_t now_us);

/* Runs the timers due by now_us: retransmission, zero-window probes,
 * TIME_WAIT and half-open expiry. Cheap when nothing is due. */
void tcp_timers(struct tcp_engine *e, uint64_t now_us);

/* Starts fetching what tcp_send() touches of c into the cache, for a caller
 * about to send on many connections in turn. */
void tcp_prefetch(const struct tcp_conn *c);

/* Queues a chunk for sending (sent at the next tcp_flush). Returns 0, or -1
 * when the connection's send queue is full or the connection no longer sends
 * (the reference stays the caller's). */
int tcp_send(struct tcp_engine *e, struct tcp_conn *c, const uint8_t *data, uint32_t len,
	     void *ref);

/* Stops (or resumes) taking data from the peer: the window we advertise
 * is 0 while paused, so the peer holds its data (and probes); segments that
 * arrive anyway are dropped and acknowledged, to be sent again. Resuming
 * sends a window update at the next flush. (This shrinks the window, which
 * RFC 9293 3.8.6.2.2 discourages but allows; the peer loses no data.) */
void tcp_pause_rx(struct tcp_engine *e, struct tcp_conn *c, bool paused);

/* Bytes queued and not yet acknowledged, and free queue entries. */
uint32_t tcp_unacked(const struct tcp_conn *c);
uint32_t tcp_sndq_free(const struct tcp_conn *c);

/* Closes our side after the queued data (FIN); on_closed follows later. */
void tcp_close(struct tcp_engine *e, struct tcp_conn *c);

/* Resets the connection now; on_closed is called before this returns. */
void tcp_abort(struct tcp_engine *e, struct tcp_conn *c);

const struct tcp_tuple *tcp_conn_tuple(const struct tcp_conn *c);
/* A connection's place in the engine's table, 0 .. max_conns - 1, fixed
 * for its life; and the connection at a place. An application keeps its own
 * state per connection in an array of max_conns beside the engine's, at the
 * same index (tcp_config.app), rather than pointers both ways. */
uint32_t tcp_conn_index(const struct tcp_engine *e, const struct tcp_conn *c);
struct tcp_conn *tcp_conn_at(struct tcp_engine *e, uint32_t i);
/* The connections are one array, tcp_conn_size() bytes apart from
 * tcp_conn_at(e, 0): a send path finds connection i without a call. */
size_t tcp_conn_size(void);

/* Counters, for /metrics. */
struct tcp_stats {
	uint64_t segs_in, segs_out, bytes_in, bytes_out;
	uint64_t accepted, refused, resets_in, resets_out;
	uint64_t syn_cookies_sent, syn_cookies_ok, syn_cookies_bad;
	uint64_t half_open_dropped, out_of_order, paws_dropped, challenge_acks;
	uint64_t retransmits, fast_retransmits, timeouts, zero_window_probes;
	uint64_t no_conn;
	uint64_t window_drops;	    /* segments cut or dropped for a window too small */
	uint64_t spurious_timeouts; /* retransmission timeouts an ACK showed needless */
	uint64_t ooo_held;	    /* segments ahead of a hole held until it filled */
	uint64_t sack_retransmits;  /* holes sent again in recovery from the peer's SACK blocks */
	uint32_t conns, half_open;
	uint32_t send_queues; /* allocated now (in use or pooled; slabs of 64) */
};
void tcp_engine_stats(const struct tcp_engine *e, struct tcp_stats *s);

/* Connection state, for tests and diagnostics. */
enum tcp_state {
	TCP_S_CLOSED,
	TCP_S_SYN_RECEIVED,
	TCP_S_ESTABLISHED,
	TCP_S_CLOSE_WAIT,
	TCP_S_LAST_ACK,
	TCP_S_FIN_WAIT_1,
	TCP_S_FIN_WAIT_2,
	TCP_S_CLOSING,
	TCP_S_TIME_WAIT,
};
enum tcp_state tcp_conn_state(const struct tcp_conn *c);
/* Looks a connection up by tuple (tests, diagnostics). */
struct tcp_conn *tcp_lookup(struct tcp_engine *e, const struct tcp_tuple *t);
/* The congestion state, for tests. */
struct tcp_cc_info {
	uint32_t cwnd, ssthresh, snd_wnd, rto_us, srtt_us, flight;
	uint32_t snd_nxt; /* the next sequence number we send */
	bool in_recovery;
};
void tcp_conn_cc(const struct tcp_conn *c, struct tcp_cc_info *i);
