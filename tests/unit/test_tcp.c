/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of the DPDK edge's TCP engine and timer wheel: crafted segments
 * in (as bytes, through the parser), the engine's segments out (rebuilt as
 * bytes and parsed back), and a fake clock. Each case names the RFC
 * behaviour it checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bytes.h"
#include "tcp.h"
#include "wheel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LADDR  0x0a000001u /* 10.0.0.1 */
#define RADDR  0x0a000002u
#define LPORT  80
#define MAXOUT 256

/* ---- the harness ---- */

struct out {
	struct tcp_seg seg; /* parsed back from the bytes we built */
	uint8_t bytes[1600];
	uint32_t paylen;
	uint8_t payload[16384];
};

static struct harness {
	struct tcp_engine *e;
	struct out out[MAXOUT];
	int nout;
	int accepted, peer_fins, closed, released;
	enum tcp_close_reason why;
	uint8_t rx[65536];
	uint32_t rxlen;
	bool refuse;
	bool abort_on_data;
	uint64_t now;
	int nsack;	  /* SACK blocks peer() puts in its next segments */
	uint32_t sack[8]; /* left, right, ... */
} H;

static void collect(void *arg, const uint8_t *data, uint32_t len, void *ref)
{
	struct out *o = arg;

	assert_true(o->paylen + len <= sizeof(o->payload));
	memcpy(o->payload + o->paylen, data, len);
	o->paylen += len;
}

/* The one's complement sum of big-endian words, a byte at a time. */
static uint32_t byte_sum(const uint8_t *p, size_t len)
{
	uint64_t s = 0;

	for (size_t i = 0; i < len; i += 2)
		s += (uint32_t)p[i] << 8 | (i + 1 < len ? p[i + 1] : 0);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint32_t)s;
}

/* Every segment the engine emits: its header's sum from its fields checked
 * against its bytes, then parsed back. */
static void output(void *ctx, const struct tcp_out *o)
{
	struct out *x;
	uint32_t sum;
	size_t hlen;

	x = &H.out[H.nout++ % MAXOUT]; /* the last MAXOUT are kept */
	memset(x, 0, sizeof(*x));
	tcp_out_walk(o, collect, x);
	assert_int_equal(x->paylen, o->len);
	hlen = tcp_out_header(o, x->bytes, &sum);
	assert_int_equal(csum_fold16(sum), byte_sum(x->bytes, hlen));
	memcpy(x->bytes + hlen, x->payload, x->paylen);
	assert_int_equal(tcp_parse(x->bytes, hlen + x->paylen, o->t.laddr, o->t.raddr, &x->seg), 0);
}

/* The application's state per connection: the engine hands connection i
 * entry i once accepted (tcp_config.app). */
static int app_state[256]; /* the most connections a test configures */

static bool on_accept(void *ctx, struct tcp_conn *c)
{
	H.accepted++;
	return !H.refuse;
}

static void on_data(void *ctx, struct tcp_conn *c, void *app, const uint8_t *d, uint32_t n)
{
	assert_ptr_equal(app, &app_state[tcp_conn_index(H.e, c)]);
	memcpy(H.rx + H.rxlen, d, n);
	H.rxlen += n;
	if (H.abort_on_data)
		tcp_abort(H.e, c);
}

static void on_peer_fin(void *ctx, struct tcp_conn *c, void *app)
{
	assert_ptr_equal(app, &app_state[tcp_conn_index(H.e, c)]);
	H.peer_fins++;
}

static void on_closed(void *ctx, struct tcp_conn *c, void *app, enum tcp_close_reason why)
{
	assert_ptr_equal(app, &app_state[tcp_conn_index(H.e, c)]); /* only what was accepted */
	H.closed++;
	H.why = why;
}

static void on_release(void *ctx, void *ref)
{
	H.released++;
}

static struct tcp_config config(void)
{
	struct tcp_config c;

	tcp_config_defaults(&c);
	c.max_conns = 64;
	c.max_half_open = 8;
	c.app = app_state;
	c.app_size = sizeof(app_state[0]);
	c.sndq_chunks = 16;
	c.cookie_key[0] = 0x0123456789abcdefull;
	c.cookie_key[1] = 0xfedcba9876543210ull;
	return c;
}

static void setup_with(const struct tcp_config *cfg)
{
	struct tcp_callbacks cb = {NULL,	output,	   on_accept, on_data,
				   on_peer_fin, on_closed, on_release};

	memset(&H, 0, sizeof(H));
	H.now = 1000000000; /* any start */
	H.e = tcp_engine_create(cfg, &cb);
	assert_non_null(H.e);
	assert_int_equal(tcp_listen(H.e, LPORT), 0);
}

static int setup(void **state)
{
	struct tcp_config cfg = config();

	setup_with(&cfg);
	return 0;
}

static int teardown(void **state)
{
	tcp_engine_destroy(H.e);
	return 0;
}

struct opts {
	int mss, ws; /* -1: none */
	bool ts;
	uint32_t tsval, tsecr;
	bool sack_ok; /* SACK permitted (RFC 2018) */
};

static const struct opts NO_OPTS = {-1, -1, false, 0, 0, false};

/* A segment from the peer, as bytes, through the parser into the engine. */
static void peer(uint16_t rport, uint32_t seq, uint32_t ack, uint8_t flags, uint16_t wnd,
		 const struct opts *o, const void *data, uint32_t len)
{
	uint8_t p[2048];
	size_t hlen = 20;
	struct tcp_seg seg;

	memset(p, 0, sizeof(p));
	if (o->mss >= 0) {
		p[hlen] = 2;
		p[hlen + 1] = 4;
		p[hlen + 2] = (uint8_t)(o->mss >> 8);
		p[hlen + 3] = (uint8_t)o->mss;
		hlen += 4;
	}
	if (o->ws >= 0) {
		p[hlen] = 1;
		p[hlen + 1] = 3;
		p[hlen + 2] = 3;
		p[hlen + 3] = (uint8_t)o->ws;
		hlen += 4;
	}
	if (o->ts) {
		uint8_t *t = p + hlen;
		t[0] = 1;
		t[1] = 1;
		t[2] = 8;
		t[3] = 10;
		for (int i = 0; i < 4; i++) {
			t[4 + i] = (uint8_t)(o->tsval >> (24 - 8 * i));
			t[8 + i] = (uint8_t)(o->tsecr >> (24 - 8 * i));
		}
		hlen += 12;
	}
	if (o->sack_ok) {
		memcpy(p + hlen, "\x01\x01\x04\x02", 4);
		hlen += 4;
	}
	if (H.nsack) {
		memcpy(p + hlen, "\x01\x01\x05", 3);
		p[hlen + 3] = (uint8_t)(2 + 8 * H.nsack);
		for (int b = 0; b < 2 * H.nsack; b++)
			for (int i = 0; i < 4; i++)
				p[hlen + 4 + 4 * b + i] = (uint8_t)(H.sack[b] >> (24 - 8 * i));
		hlen += 4 + 8 * (size_t)H.nsack;
	}
	p[0] = (uint8_t)(rport >> 8);
	p[1] = (uint8_t)rport;
	p[2] = 0;
	p[3] = LPORT;
	for (int i = 0; i < 4; i++) {
		p[4 + i] = (uint8_t)(seq >> (24 - 8 * i));
		p[8 + i] = (uint8_t)(ack >> (24 - 8 * i));
	}
	p[12] = (uint8_t)(hlen / 4) << 4;
	p[13] = flags;
	p[14] = (uint8_t)(wnd >> 8);
	p[15] = (uint8_t)wnd;
	if (len)
		memcpy(p + hlen, data, len);
	assert_int_equal(tcp_parse(p, hlen + len, RADDR, LADDR, &seg), 0);
	tcp_input(H.e, &seg, H.now);
}

static void flush(void)
{
	tcp_flush(H.e, H.now);
}

static void advance(uint64_t us)
{
	H.now += us;
	tcp_timers(H.e, H.now);
}

static struct tcp_conn *conn(uint16_t rport)
{
	struct tcp_tuple t = {LADDR, RADDR, LPORT, rport};
	return tcp_lookup(H.e, &t);
}

static struct out *last(void)
{
	assert_true(H.nout > 0);
	return &H.out[(H.nout - 1) % MAXOUT];
}

static int sack_blocks(const struct out *x, uint32_t *left, uint32_t *right, bool *permitted);

/* The three-way handshake with timestamps and window scale 2 from the
 * peer, and SACK permitted if sack; returns our ISS, and whether our
 * SYN-ACK permitted SACK. The peer's ISN is 1000. Its MSS, 1412, leaves
 * 1400 bytes of payload per segment beside the timestamp option. */
static uint32_t handshake_with(uint16_t rport, bool sack, bool *sack_permitted)
{
	struct opts o = {1412, 2, true, 100, 0, sack};
	uint32_t iss, l[4], r[4];

	peer(rport, 1000, 0, TCP_SYN, 65535, &o, NULL, 0);
	assert_int_equal(last()->seg.flags, TCP_SYN | TCP_ACK);
	assert_int_equal(sack_blocks(last(), l, r, sack_permitted), 0);
	iss = last()->seg.seq;
	o = (struct opts){-1, -1, true, 101, last()->seg.tsval, false};
	peer(rport, 1001, iss + 1, TCP_ACK, 16384, &o, NULL, 0); /* 16384 << 2 = 64 KiB */
	assert_int_equal(tcp_conn_state(conn(rport)), TCP_S_ESTABLISHED);
	H.nout = 0;
	return iss;
}

static uint32_t handshake(uint16_t rport)
{
	bool permitted;

	return handshake_with(rport, false, &permitted);
}

static struct opts ts(uint32_t tsval)
{
	return (struct opts){-1, -1, true, tsval, 0, false};
}

/* The SACK blocks of a segment we sent (0 when it has none), and whether
 * it offered SACK (a SYN-ACK). */
static int sack_blocks(const struct out *x, uint32_t *left, uint32_t *right, bool *permitted)
{
	size_t hlen = (size_t)(x->bytes[12] >> 4) * 4;
	int n = 0;

	*permitted = false;
	for (size_t off = 20; off < hlen;) {
		uint8_t kind = x->bytes[off];

		if (kind == 0)
			break;
		if (kind == 1) {
			off++;
			continue;
		}
		if (kind == 4)
			*permitted = true;
		if (kind == 5)
			for (n = 0; n < (x->bytes[off + 1] - 2) / 8; n++) {
				left[n] = get32(x->bytes + off + 2 + 8 * n);
				right[n] = get32(x->bytes + off + 6 + 8 * n);
			}
		off += x->bytes[off + 1];
	}
	return n;
}

/* ---- the cases ---- */

/* RFC 9293 3.5, RFC 7323: SYN-ACK with our MSS, scale and an echoed
 * timestamp; a SYN without options gets none and an MSS of 536 to send. */
static void test_handshake_and_options(void **state)
{
	struct opts o = {1400, 2, true, 12345, 0, false};
	struct tcp_cc_info cc;
	struct out *s;
	uint32_t iss;

	peer(40000, 1000, 0, TCP_SYN, 65535, &o, NULL, 0);
	assert_int_equal(H.nout, 1);
	s = last();
	assert_int_equal(s->seg.flags, TCP_SYN | TCP_ACK);
	assert_int_equal(s->seg.ack, 1001);
	assert_true(s->seg.has_mss && s->seg.mss == 1460);
	assert_true(s->seg.has_ws && s->seg.ws == 7);
	assert_true(s->seg.has_ts && s->seg.tsecr == 12345);
	assert_int_equal(tcp_conn_state(conn(40000)), TCP_S_SYN_RECEIVED);
	iss = s->seg.seq;
	assert_int_equal(H.accepted, 0);
	o = ts(12346);
	o.tsecr = s->seg.tsval;
	peer(40000, 1001, s->seg.seq + 1, TCP_ACK, 1000, &o, NULL, 0);
	assert_int_equal(H.accepted, 1);
	assert_int_equal(tcp_conn_state(conn(40000)), TCP_S_ESTABLISHED);
	tcp_conn_cc(conn(40000), &cc);
	assert_int_equal(cc.snd_wnd, 1000 << 2);     /* the peer's scale applies after the SYN */
	assert_int_equal(cc.cwnd, 10 * (1400 - 12)); /* RFC 6928; the MSS less the timestamps */

	/* A bare SYN: no scale, no timestamps offered back. */
	peer(40001, 5000, 0, TCP_SYN, 8192, &NO_OPTS, NULL, 0);
	s = last();
	assert_true(s->seg.has_mss);
	assert_false(s->seg.has_ws);
	assert_false(s->seg.has_ts);
	assert_int_equal(s->seg.wnd, 65535); /* unscaled, capped */
	peer(40001, 5001, s->seg.seq + 1, TCP_ACK, 8192, &NO_OPTS, NULL, 0);
	tcp_conn_cc(conn(40001), &cc);
	assert_int_equal(cc.cwnd, 10 * 536);
	/* Each connection has its own place in the table, for the
	 * application's state beside it (tcp_conn_index). */
	uint32_t i0 = tcp_conn_index(H.e, conn(40000)), i1 = tcp_conn_index(H.e, conn(40001));
	assert_true(i0 != i1 && i0 < 64 && i1 < 64);
	assert_ptr_equal(tcp_conn_at(H.e, i0), conn(40000));
	assert_ptr_equal(tcp_conn_at(H.e, i1), conn(40001));
	assert_ptr_equal((char *)tcp_conn_at(H.e, 0) + i1 * tcp_conn_size(), conn(40001));

	/* Our window in later segments is scaled by our shift (7). */
	H.nout = 0;
	peer(40000, 1001, iss + 1, TCP_ACK, 1000, &o, "x", 1);
	flush();
	assert_int_equal(last()->seg.wnd, (256 * 1024) >> 7);
	/* A full segment is the peer's MSS less our timestamp option: 1400
	 * bytes of MSS carry 1388 of payload (RFC 9293 3.7.1). */
	static const uint8_t big[2000];
	H.nout = 0;
	assert_int_equal(tcp_send(H.e, conn(40000), big, sizeof(big), NULL), 0);
	flush();
	assert_int_equal(H.out[0].seg.len, 1388);

	/* A refused connection is reset. */
	H.refuse = true;
	peer(40002, 7000, 0, TCP_SYN, 8192, &NO_OPTS, NULL, 0);
	s = last();
	peer(40002, 7001, s->seg.seq + 1, TCP_ACK, 8192, &NO_OPTS, NULL, 0);
	assert_true(last()->seg.flags & TCP_RST);
	assert_null(conn(40002));
}

/* In-order data reaches the application; one ACK per burst at flush. */
static void test_data_and_ack(void **state)
{
	uint32_t iss = handshake(40000);
	struct opts o = ts(200);
	static const uint8_t chunk[3][500] = {{1}, {2}, {3}};

	peer(40000, 1001, iss + 1, TCP_ACK, 16384, &o, "hello ", 6);
	peer(40000, 1007, iss + 1, TCP_ACK | TCP_PSH, 16384, &o, "world", 5);
	assert_int_equal(H.rxlen, 11);
	assert_memory_equal(H.rx, "hello world", 11);
	assert_int_equal(H.nout, 0); /* held until the flush */
	flush();
	assert_int_equal(H.nout, 1);
	assert_int_equal(last()->seg.flags, TCP_ACK);
	assert_int_equal(last()->seg.ack, 1012);
	assert_int_equal(last()->seg.tsecr, 200);

	/* Three 500-byte chunks coalesce into segments up to the MSS (1400). */
	H.nout = 0;
	for (int i = 0; i < 3; i++)
		assert_int_equal(tcp_send(H.e, conn(40000), chunk[i], 500, (void *)chunk[i]), 0);
	flush();
	assert_int_equal(H.nout, 2);
	assert_int_equal(H.out[0].seg.seq, iss + 1);
	assert_int_equal(H.out[0].seg.len, 1400);
	assert_int_equal(H.out[0].payload[0], 1);
	assert_int_equal(H.out[0].payload[500], 2);
	assert_int_equal(H.out[0].payload[1000], 3);
	assert_int_equal(H.out[1].seg.seq, iss + 1 + 1400);
	assert_int_equal(H.out[1].seg.len, 100);
	assert_true(H.out[1].seg.flags & TCP_PSH);
	assert_int_equal(tcp_unacked(conn(40000)), 1500);
	struct tcp_stats qs;
	tcp_engine_stats(H.e, &qs);
	assert_int_equal(qs.send_queues, 64); /* the first slab of queues */
	/* A partial ACK releases the chunks it covers whole, no more. */
	peer(40000, 1012, iss + 1 + 1000, TCP_ACK, 16384, &o, NULL, 0);
	assert_int_equal(H.released, 2);
	peer(40000, 1012, iss + 1 + 1500, TCP_ACK, 16384, &o, NULL, 0);
	assert_int_equal(H.released, 3);
	assert_int_equal(tcp_unacked(conn(40000)), 0);
	/* A full queue refuses more, leaving the reference with the caller. */
	for (int i = 0; i < 16; i++)
		assert_int_equal(tcp_send(H.e, conn(40000), chunk[0], 10, NULL), 0);
	assert_int_equal(tcp_send(H.e, conn(40000), chunk[0], 10, NULL), -1);
	assert_int_equal(tcp_sndq_free(conn(40000)), 0);
}

/* Send queues come in slabs of 64 while connections have data in flight;
 * a second after the burst is acknowledged, the slabs go back but one. */
static void test_send_queues_shrink_after_burst(void **state)
{
	struct tcp_config cfg = config();
	struct opts o = ts(200);
	struct tcp_stats st;
	static const uint8_t data[10] = {1};
	uint32_t iss[150];

	tcp_engine_destroy(H.e);
	cfg.max_conns = 200;
	setup_with(&cfg);
	for (int i = 0; i < 150; i++) {
		iss[i] = handshake((uint16_t)(41000 + i));
		assert_int_equal(tcp_send(H.e, conn((uint16_t)(41000 + i)), data, 10, NULL), 0);
	}
	flush();
	tcp_engine_stats(H.e, &st);
	assert_int_equal(st.send_queues, 192); /* 150 in use: three slabs */
	/* Half acknowledged: the queues go back, but each slab still has some
	 * in use (they were handed out in order), so none can be freed. */
	for (int i = 0; i < 150; i += 2)
		peer((uint16_t)(41000 + i), 1001, iss[i] + 11, TCP_ACK, 16384, &o, NULL, 0);
	advance(1000000);
	tcp_engine_stats(H.e, &st);
	assert_int_equal(st.send_queues, 192);
	for (int i = 1; i < 150; i += 2)
		peer((uint16_t)(41000 + i), 1001, iss[i] + 11, TCP_ACK, 16384, &o, NULL, 0);
	/* All back, but the last second needed 75 at once: two slabs stay. */
	advance(1000000);
	tcp_engine_stats(H.e, &st);
	assert_int_equal(st.send_queues, 128);
	/* A quiet second later: one slab kept for the next burst. */
	advance(1000000);
	tcp_engine_stats(H.e, &st);
	assert_int_equal(st.send_queues, 64);
	/* The kept slab serves again, and a queue still works after the churn. */
	assert_int_equal(tcp_send(H.e, conn(41007), data, 10, NULL), 0);
	flush();
	assert_int_equal(last()->seg.seq, iss[7] + 11);
	assert_int_equal(last()->seg.len, 10);
	tcp_engine_stats(H.e, &st);
	assert_int_equal(st.send_queues, 64);
	peer(41007, 1001, iss[7] + 21, TCP_ACK, 16384, &o, NULL, 0);
	assert_int_equal(tcp_unacked(conn(41007)), 0);
}

/* Every segment sent since the last H.nout = 0 carries the stream's bytes
 * at its sequence number. */
static void check_segments(const uint8_t *stream, uint32_t iss)
{
	for (int i = 0; i < H.nout; i++) {
		const struct out *x = &H.out[i];

		if (x->seg.len > 0)
			assert_memory_equal(x->payload, stream + (x->seg.seq - iss - 1),
					    x->seg.len);
	}
	H.nout = 0;
}

/* A segment's payload is found from where the last one began (not walked
 * from the head of the queue): chunks of many sizes, ACKs that end inside
 * chunks, a retransmission from the head and new data after it, segments
 * that begin inside a chunk and span several; each carries the right bytes. */
static void test_segments_carry_the_stream_bytes(void **state)
{
	static uint8_t stream[40000];
	uint32_t iss = handshake(40000), queued = 0, acked = 0, nchunk = 0;
	struct opts o = ts(200);

	for (uint32_t i = 0; i < sizeof(stream); i++)
		stream[i] = (uint8_t)(i * 7 + i / 251);
	for (int round = 0; round < 40; round++) {
		/* fill the queue (16 chunks) with chunks of 1 to 600 bytes */
		for (;;) {
			uint32_t len = 1 + (nchunk * 263 + (uint32_t)round * 31) % 600;

			if (queued + len > sizeof(stream) ||
			    tcp_send(H.e, conn(40000), stream + queued, len, NULL) < 0)
				break;
			queued += len;
			nchunk++;
		}
		flush();
		check_segments(stream, iss);
		if (round % 5 == 4) { /* a timeout: the first unacknowledged bytes again */
			advance(3000000);
			check_segments(stream, iss);
		}
		/* acknowledge some of what was sent, often inside a chunk */
		acked += (tcp_unacked(conn(40000)) * (uint32_t)(1 + round % 3)) / 4 + 1;
		if (acked > queued)
			acked = queued;
		peer(40000, 1001, iss + 1 + acked, TCP_ACK, 16384, &o, NULL, 0);
		flush();
		check_segments(stream, iss);
	}
	assert_true(queued > 20000); /* the queue refilled many times over */
}

/* RFC 6298: retransmission after the RTO, exponential backoff, Karn's
 * rule, an RTO from a sample, and giving up after max_retries. */
static void test_retransmit_after_rto(void **state)
{
	uint32_t iss = handshake(40000);
	struct opts o = ts(200);
	struct tcp_cc_info cc;
	static const uint8_t data[100] = {7};

	assert_int_equal(tcp_send(H.e, conn(40000), data, 100, NULL), 0);
	flush();
	assert_int_equal(H.nout, 1);
	advance(999000);
	assert_int_equal(H.nout, 1); /* not yet: the initial RTO is 1 s */
	advance(2000);
	assert_int_equal(H.nout, 2);
	assert_int_equal(last()->seg.seq, iss + 1);
	assert_int_equal(last()->seg.len, 100);
	tcp_conn_cc(conn(40000), &cc);
	assert_int_equal(cc.rto_us, 2000000); /* backed off */
	assert_int_equal(cc.cwnd, 1400);      /* one segment after a timeout */
	advance(1990000);
	assert_int_equal(H.nout, 2);
	advance(20000);
	assert_int_equal(H.nout, 3);
	/* The ACK of a retransmitted segment gives no RTT sample (Karn). */
	peer(40000, 1001, iss + 101, TCP_ACK, 16384, &o, NULL, 0);
	tcp_conn_cc(conn(40000), &cc);
	assert_int_equal(cc.srtt_us, 0);
	assert_int_equal(cc.flight, 0);
	/* A fresh segment acknowledged after 50 ms: srtt 50 ms, RTO at the floor. */
	assert_int_equal(tcp_send(H.e, conn(40000), data, 100, NULL), 0);
	flush();
	H.now += 50000;
	peer(40000, 1001, iss + 201, TCP_ACK, 16384, &o, NULL, 0);
	tcp_conn_cc(conn(40000), &cc);
	assert_int_equal(cc.srtt_us, 50000);
	assert_int_equal(cc.rto_us, 200000); /* 50 + 4 x 25 ms, under the 200 ms floor */
	/* A peer that never answers: RST and TIMEOUT after max_retries. */
	assert_int_equal(tcp_send(H.e, conn(40000), data, 100, NULL), 0);
	flush();
	for (int i = 0; i < 20 && H.closed == 0; i++)
		advance(61000000);
	assert_int_equal(H.closed, 1);
	assert_int_equal(H.why, TCP_CLOSED_TIMEOUT);
	assert_true(last()->seg.flags & TCP_RST);
	assert_int_equal(H.released, 3);
	assert_null(conn(40000));
}

/* RFC 3522 and 4015: an ACK after a timeout that echoes the original
 * transmission's timestamp shows the timeout was spurious: the RTO grows to
 * cover how late that ACK was, and the congestion window comes back. An
 * ACK echoing the retransmission is a real loss and changes nothing. */
static void test_spurious_timeout_teaches_the_rto(void **state)
{
	uint32_t iss = handshake(40000), orig_ts, retx_ts;
	struct tcp_cc_info before, cc;
	struct tcp_stats st;
	struct opts o;
	static const uint8_t data[100] = {7};

	assert_int_equal(tcp_send(H.e, conn(40000), data, 100, NULL), 0);
	flush();
	orig_ts = last()->seg.tsval;
	tcp_conn_cc(conn(40000), &before);
	advance(1001000); /* the initial RTO, 1 s */
	assert_int_equal(H.nout, 2);
	assert_int_equal(last()->seg.tsval, orig_ts + 1001);
	advance(500000); /* the ACK of the original, 1.501 s after it left */
	o = (struct opts){-1, -1, true, 300, orig_ts, false};
	peer(40000, 1001, iss + 101, TCP_ACK, 16384, &o, NULL, 0);
	tcp_conn_cc(conn(40000), &cc);
	assert_int_equal(cc.flight, 0);
	assert_int_equal(cc.srtt_us, 1501000);
	assert_int_equal(cc.rto_us, 1501000 + 4 * 750500);
	assert_true(cc.cwnd >= before.cwnd);
	assert_int_equal(cc.ssthresh, before.ssthresh);
	tcp_engine_stats(H.e, &st);
	assert_int_equal(st.spurious_timeouts, 1);

	/* Now a real loss: the ACK echoes the retransmission. */
	assert_int_equal(tcp_send(H.e, conn(40000), data, 100, NULL), 0);
	flush();
	advance(cc.rto_us + 1000);
	assert_int_equal(last()->seg.seq, iss + 101);
	retx_ts = last()->seg.tsval;
	tcp_conn_cc(conn(40000), &before);
	o = (struct opts){-1, -1, true, 301, retx_ts, false};
	peer(40000, 1001, iss + 201, TCP_ACK, 16384, &o, NULL, 0);
	tcp_conn_cc(conn(40000), &cc);
	assert_int_equal(cc.rto_us, before.rto_us); /* still backed off */
	assert_int_equal(cc.srtt_us, 1501000);
	tcp_engine_stats(H.e, &st);
	assert_int_equal(st.spurious_timeouts, 1);
}

/* The SACK blocks peer() sends from now on (n 0: none). */
static void sacks(int n, uint32_t l0, uint32_t r0, uint32_t l1, uint32_t r1)
{
	H.nsack = n;
	H.sack[0] = l0;
	H.sack[1] = r0;
	H.sack[2] = l1;
	H.sack[3] = r1;
}

/* With SACK (RFC 2018, RFC 6675's NextSeg): segments 2 and 5 of 10 are
 * lost; the third duplicate ACK sends 2 again, and the next one, whose
 * blocks show 5 missing below data received, sends 5 again in the same
 * round trip; the partial ACK that follows does not send it a third time. */
static void test_sack_recovery(void **state)
{
	bool permitted;
	uint32_t iss = handshake_with(40000, true, &permitted), s = iss + 1;
	struct opts o = ts(200);
	static uint8_t data[10 * 1400];
	struct tcp_stats st;
	struct tcp_cc_info cc;

	assert_true(permitted);
	for (int i = 0; i < 10; i++)
		assert_int_equal(tcp_send(H.e, conn(40000), data + i * 1400, 1400, NULL), 0);
	flush();
	assert_int_equal(H.nout, 10);
	peer(40000, 1001, s + 1400, TCP_ACK, 16384, &o, NULL, 0); /* the first */
	flush();
	H.nout = 0;
	sacks(1, s + 2 * 1400, s + 3 * 1400, 0, 0);
	peer(40000, 1001, s + 1400, TCP_ACK, 16384, &o, NULL, 0);
	sacks(1, s + 2 * 1400, s + 4 * 1400, 0, 0);
	peer(40000, 1001, s + 1400, TCP_ACK, 16384, &o, NULL, 0);
	assert_int_equal(H.nout, 0);
	sacks(2, s + 5 * 1400, s + 6 * 1400, s + 2 * 1400, s + 4 * 1400);
	peer(40000, 1001, s + 1400, TCP_ACK, 16384, &o, NULL, 0);
	assert_int_equal(H.nout, 1); /* fast retransmit of the first hole */
	assert_int_equal(last()->seg.seq, s + 1400);
	sacks(2, s + 5 * 1400, s + 7 * 1400, s + 2 * 1400, s + 4 * 1400);
	peer(40000, 1001, s + 1400, TCP_ACK, 16384, &o, NULL, 0);
	assert_int_equal(H.nout, 2); /* the second hole, at once */
	assert_int_equal(last()->seg.seq, s + 4 * 1400);
	assert_int_equal(last()->seg.len, 1400);
	/* nothing left below what was reported: the next one's room goes to
	 * new data (none here) */
	sacks(2, s + 5 * 1400, s + 8 * 1400, s + 2 * 1400, s + 4 * 1400);
	peer(40000, 1001, s + 1400, TCP_ACK, 16384, &o, NULL, 0);
	flush();
	assert_int_equal(H.nout, 2);
	/* the partial ACK up to the second hole: sent again already */
	sacks(1, s + 5 * 1400, s + 8 * 1400, 0, 0);
	peer(40000, 1001, s + 4 * 1400, TCP_ACK, 16384, &o, NULL, 0);
	flush();
	assert_int_equal(H.nout, 2);
	tcp_conn_cc(conn(40000), &cc);
	assert_true(cc.in_recovery);
	sacks(0, 0, 0, 0, 0);
	peer(40000, 1001, s + 10 * 1400, TCP_ACK, 16384, &o, NULL, 0);
	tcp_conn_cc(conn(40000), &cc);
	assert_false(cc.in_recovery);
	assert_int_equal(cc.flight, 0);
	tcp_engine_stats(H.e, &st);
	assert_int_equal(st.fast_retransmits, 1);
	assert_int_equal(st.sack_retransmits, 1);
	assert_int_equal(st.retransmits, 2);
}

/* RFC 4015 step 5: after a timeout found spurious, the segments the timeout
 * would have sent again are in flight; transmission resumes with new data
 * instead of resending the window. */
static void test_spurious_timeout_resumes_with_new_data(void **state)
{
	uint32_t iss = handshake(40000), s = iss + 1, orig_ts;
	static uint8_t data[4 * 1400];
	struct tcp_stats st;
	struct opts o;

	assert_int_equal(tcp_send(H.e, conn(40000), data, sizeof(data), NULL), 0);
	flush();
	assert_int_equal(H.nout, 4); /* four full segments */
	orig_ts = last()->seg.tsval;
	advance(1001000); /* the RTO: the first segment again */
	assert_int_equal(H.nout, 5);
	assert_int_equal(last()->seg.seq, s);
	/* new data queued, then the first original segment's ACK, late */
	assert_int_equal(tcp_send(H.e, conn(40000), data, 500, NULL), 0);
	advance(200000);
	o = (struct opts){-1, -1, true, 300, orig_ts, false};
	peer(40000, 1001, s + 1400, TCP_ACK, 16384, &o, NULL, 0);
	flush();
	tcp_engine_stats(H.e, &st);
	assert_int_equal(st.spurious_timeouts, 1);
	assert_int_equal(st.retransmits, 1);
	/* the next segment out is the new data, not the second segment again */
	assert_int_equal(H.nout, 6);
	assert_int_equal(last()->seg.seq, s + 4 * 1400);
	assert_int_equal(last()->seg.len, 500);
	/* and the rest of the window is acknowledged as it arrives */
	o.tsval = 301;
	peer(40000, 1001, s + 4 * 1400 + 500, TCP_ACK, 16384, &o, NULL, 0);
	flush();
	assert_int_equal(H.nout, 6);
	tcp_engine_stats(H.e, &st);
	assert_int_equal(st.retransmits, 1);
}

/* RFC 5681 3.2 and RFC 6582: three duplicate ACKs retransmit the first
 * hole; a partial ACK retransmits the next; a full ACK ends recovery. */
static void test_fast_retransmit_newreno(void **state)
{
	uint32_t iss = handshake(40000), s = iss + 1;
	struct opts o = ts(200);
	static uint8_t data[10 * 1400];
	struct tcp_cc_info cc;
	int before;

	for (int i = 0; i < 10; i++)
		assert_int_equal(tcp_send(H.e, conn(40000), data + i * 1400, 1400, NULL), 0);
	flush();
	assert_int_equal(H.nout, 10); /* the initial window: 10 segments */
	/* Segments 2 and 5 are lost: the ACK of 1, then duplicates. */
	peer(40000, 1001, s + 1400, TCP_ACK, 16384, &o, NULL, 0);
	flush();
	H.nout = 0;
	peer(40000, 1001, s + 1400, TCP_ACK, 16384, &o, NULL, 0);
	peer(40000, 1001, s + 1400, TCP_ACK, 16384, &o, NULL, 0);
	assert_int_equal(H.nout, 0);
	peer(40000, 1001, s + 1400, TCP_ACK, 16384, &o, NULL, 0);
	assert_int_equal(H.nout, 1);
	assert_int_equal(last()->seg.seq, s + 1400);
	assert_int_equal(last()->seg.len, 1400);
	tcp_conn_cc(conn(40000), &cc);
	assert_true(cc.in_recovery);
	assert_int_equal(cc.ssthresh, 9 * 1400 / 2);
	assert_int_equal(cc.cwnd, cc.ssthresh + 3 * 1400);
	/* More duplicates in recovery do not retransmit again. */
	flush();
	before = H.nout;
	peer(40000, 1001, s + 1400, TCP_ACK, 16384, &o, NULL, 0);
	assert_int_equal(H.nout, before);
	/* A partial ACK (up to the second hole) retransmits it at once. */
	peer(40000, 1001, s + 4 * 1400, TCP_ACK, 16384, &o, NULL, 0);
	assert_int_equal(last()->seg.seq, s + 4 * 1400);
	tcp_conn_cc(conn(40000), &cc);
	assert_true(cc.in_recovery);
	/* The full ACK ends recovery with cwnd at most ssthresh. */
	peer(40000, 1001, s + 10 * 1400, TCP_ACK, 16384, &o, NULL, 0);
	tcp_conn_cc(conn(40000), &cc);
	assert_false(cc.in_recovery);
	assert_true(cc.cwnd <= cc.ssthresh);
	assert_int_equal(cc.flight, 0);
	struct tcp_stats st;
	tcp_engine_stats(H.e, &st);
	assert_int_equal(st.fast_retransmits, 1);
}

/* RFC 9293 3.8.6.1: a zero window stops sending; probes until it opens. */
static void test_zero_window_and_probe(void **state)
{
	uint32_t iss = handshake(40000);
	struct opts o = ts(200);
	static const uint8_t data[3000];
	struct tcp_stats st;

	peer(40000, 1001, iss + 1, TCP_ACK, 0, &o, NULL, 0); /* the peer's window closes */
	assert_int_equal(tcp_send(H.e, conn(40000), data, 3000, NULL), 0);
	flush();
	assert_int_equal(H.nout, 0);
	advance(1001000);
	assert_int_equal(H.nout, 1);
	assert_int_equal(last()->seg.len, 0);
	assert_int_equal(last()->seg.seq, iss); /* one below snd_una: must be answered */
	advance(2001000);			/* backed off */
	assert_int_equal(H.nout, 2);
	tcp_engine_stats(H.e, &st);
	assert_int_equal(st.zero_window_probes, 2);
	/* A peer that answers its probes with a shut window is probed for as
	 * long as it answers: no timeout (RFC 9293 3.8.6.1). */
	for (int i = 0; i < 20; i++) {
		advance(61000000);
		peer(40000, 1001, iss + 1, TCP_ACK, 0, &o, NULL, 0);
	}
	assert_non_null(conn(40000));
	assert_int_equal(H.closed, 0);
	H.nout = 2;
	/* The answer opens the window to 2000 bytes (500 << 2): one full
	 * segment goes; 600 would be a silly window (3.8.6.2.1) and waits. */
	peer(40000, 1001, iss + 1, TCP_ACK, 500, &o, NULL, 0);
	flush();
	assert_int_equal(H.nout, 3);
	assert_int_equal(H.out[2].seg.len, 1400);
	peer(40000, 1001, iss + 1401, TCP_ACK, 500, &o, NULL, 0);
	flush();
	assert_int_equal(H.nout, 5);
	assert_int_equal(H.out[3].seg.len, 1400);
	assert_int_equal(H.out[4].seg.len, 200);
	assert_true(H.out[4].seg.flags & TCP_PSH);
}

/* The peer closes first: CLOSE_WAIT, our FIN after our data, LAST_ACK. */
static void test_peer_fin(void **state)
{
	uint32_t iss = handshake(40000);
	struct opts o = ts(200);

	peer(40000, 1001, iss + 1, TCP_ACK | TCP_FIN, 16384, &o, "bye", 3);
	assert_int_equal(H.rxlen, 3);
	assert_int_equal(H.peer_fins, 1);
	assert_int_equal(tcp_conn_state(conn(40000)), TCP_S_CLOSE_WAIT);
	flush();
	assert_int_equal(last()->seg.ack, 1005); /* 3 bytes and the FIN */
	assert_int_equal(tcp_send(H.e, conn(40000), (const uint8_t *)"ok", 2, NULL), 0);
	tcp_close(H.e, conn(40000));
	assert_int_equal(tcp_conn_state(conn(40000)), TCP_S_LAST_ACK);
	H.nout = 0;
	flush();
	assert_int_equal(H.nout, 2);
	assert_int_equal(H.out[0].seg.len, 2);
	assert_true(H.out[1].seg.flags & TCP_FIN);
	assert_int_equal(H.out[1].seg.seq, iss + 3);
	/* Data and FIN go again when their ACK is lost. */
	advance(1001000);
	assert_int_equal(H.nout, 4);
	assert_int_equal(H.out[2].seg.seq, iss + 1);
	assert_int_equal(H.out[2].seg.len, 2);
	assert_true(H.out[3].seg.flags & TCP_FIN);
	peer(40000, 1005, iss + 4, TCP_ACK, 16384, &o, NULL, 0);
	assert_int_equal(H.closed, 1);
	assert_int_equal(H.why, TCP_CLOSED_NORMAL);
	assert_null(conn(40000));
}

/* We close first: FIN_WAIT_1, FIN_WAIT_2, TIME_WAIT, gone. */
static void test_active_close(void **state)
{
	uint32_t iss = handshake(40000);
	struct opts o = ts(200);
	struct tcp_config cfg = config();

	tcp_close(H.e, conn(40000));
	flush();
	assert_int_equal(last()->seg.flags, TCP_FIN | TCP_ACK);
	assert_int_equal(tcp_conn_state(conn(40000)), TCP_S_FIN_WAIT_1);
	assert_int_equal(tcp_send(H.e, conn(40000), (const uint8_t *)"x", 1, NULL), -1);
	peer(40000, 1001, iss + 2, TCP_ACK, 16384, &o, NULL, 0);
	assert_int_equal(tcp_conn_state(conn(40000)), TCP_S_FIN_WAIT_2);
	peer(40000, 1001, iss + 2, TCP_ACK, 16384, &o, "late", 4); /* still received */
	assert_int_equal(H.rxlen, 4);
	peer(40000, 1005, iss + 2, TCP_ACK | TCP_FIN, 16384, &o, NULL, 0);
	assert_int_equal(tcp_conn_state(conn(40000)), TCP_S_TIME_WAIT);
	assert_int_equal(last()->seg.ack, 1006);
	assert_int_equal(H.closed, 1);
	advance(cfg.time_wait_us + 2000);
	assert_null(conn(40000));
	/* Simultaneous close: FIN crossing ours goes through CLOSING. */
	iss = handshake(40001);
	tcp_close(H.e, conn(40001));
	flush();
	peer(40001, 1001, iss + 1, TCP_ACK | TCP_FIN, 16384, &o, NULL, 0);
	assert_int_equal(tcp_conn_state(conn(40001)), TCP_S_CLOSING);
	peer(40001, 1002, iss + 2, TCP_ACK, 16384, &o, NULL, 0);
	assert_int_equal(tcp_conn_state(conn(40001)), TCP_S_TIME_WAIT);
}

/* RFC 5961 3: an exact RST closes, an in-window one is challenged, one
 * outside the window is dropped. A SYN on an established connection is
 * challenged too. */
static void test_peer_rst(void **state)
{
	uint32_t iss = handshake(40000);
	struct opts o = ts(200);
	struct tcp_stats st;

	peer(40000, 1500, 0, TCP_RST, 0, &NO_OPTS, NULL, 0);
	assert_int_equal(H.nout, 1);
	assert_int_equal(last()->seg.flags, TCP_ACK);
	assert_int_equal(last()->seg.ack, 1001);
	assert_non_null(conn(40000));
	peer(40000, 1001 + 10000000, 0, TCP_RST, 0, &NO_OPTS, NULL, 0);
	assert_int_equal(H.nout, 1);
	assert_non_null(conn(40000));
	peer(40000, 1101, 0, TCP_SYN, 1000, &o, NULL, 0); /* in the window */
	assert_int_equal(H.nout, 2);
	assert_int_equal(last()->seg.flags, TCP_ACK);
	tcp_engine_stats(H.e, &st);
	assert_int_equal(st.challenge_acks, 2);
	peer(40000, 1001, 0, TCP_RST, 0, &NO_OPTS, NULL, 0);
	assert_int_equal(H.closed, 1);
	assert_int_equal(H.why, TCP_CLOSED_RESET);
	assert_null(conn(40000));
	(void)iss;
}

/* Out-of-order data is dropped with a duplicate ACK; overlapping data
 * delivers only its new bytes; PAWS drops an old timestamp. */
/* Reordered and overlapping segments are held (sorted, at most 8 per
 * connection) and delivered once, in order, as the holes fill; a FIN ahead
 * of a hole is not held; a connection that goes gives its segments back. */
static void test_out_of_order_reassembly(void **state)
{
	uint32_t iss = handshake(40000), iss2, iss3;
	struct opts o = ts(200);
	const char *text = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ";
	struct tcp_stats st;

	/* 10 segments of 3 bytes, 1 to 9 first: 1 to 8 are held, the 9th
	 * finds the connection's 8 taken and is dropped */
	for (int i = 1; i <= 9; i++)
		peer(40000, 1001 + 3 * i, iss + 1, TCP_ACK, 16384, &o, text + 3 * i, 3);
	assert_int_equal(H.rxlen, 0);
	tcp_engine_stats(H.e, &st);
	assert_int_equal(st.out_of_order, 9);
	assert_int_equal(st.ooo_held, 8);
	/* a FIN ahead of the hole is not held */
	peer(40000, 1001 + 30, iss + 1, TCP_ACK | TCP_FIN, 16384, &o, NULL, 0);
	peer(40000, 1001, iss + 1, TCP_ACK, 16384, &o, text, 3);
	/* 0 to 8 delivered; the 9th is the next hole */
	assert_int_equal(H.rxlen, 27);
	assert_memory_equal(H.rx, text, 27);
	flush();
	assert_int_equal(last()->seg.ack, 1001 + 27);
	assert_int_equal(tcp_conn_state(conn(40000)), TCP_S_ESTABLISHED);
	peer(40000, 1001 + 27, iss + 1, TCP_ACK | TCP_FIN, 16384, &o, text + 27, 3);
	assert_int_equal(H.rxlen, 30);
	assert_memory_equal(H.rx, text, 30);
	assert_int_equal(tcp_conn_state(conn(40000)), TCP_S_CLOSE_WAIT);

	/* Overlapping and duplicate segments: each byte delivered once. */
	iss2 = handshake(40001);
	H.rxlen = 0;
	peer(40001, 1011, iss2 + 1, TCP_ACK, 16384, &o, text + 10, 10);
	peer(40001, 1016, iss2 + 1, TCP_ACK, 16384, &o, text + 15, 10);
	peer(40001, 1011, iss2 + 1, TCP_ACK, 16384, &o, text + 10, 10);
	peer(40001, 1031, iss2 + 1, TCP_ACK, 16384, &o, text + 30, 5); /* beyond a 2nd hole */
	peer(40001, 1001, iss2 + 1, TCP_ACK, 16384, &o, text, 12);
	assert_int_equal(H.rxlen, 25);
	assert_memory_equal(H.rx, text, 25);
	peer(40001, 1026, iss2 + 1, TCP_ACK, 16384, &o, text + 25, 5);
	assert_int_equal(H.rxlen, 35);
	assert_memory_equal(H.rx, text, 35);

	/* A connection reset gives its held segments back to the engine. */
	iss3 = handshake(40002);
	for (int i = 1; i <= 8; i++)
		peer(40002, 1001 + 10 * i, iss3 + 1, TCP_ACK, 16384, &o, "0123456789", 10);
	tcp_engine_stats(H.e, &st);
	assert_int_equal(st.ooo_held, 8 + 3 + 8);
	peer(40002, 1001, iss3 + 1, TCP_RST, 0, &NO_OPTS, NULL, 0);
	assert_null(conn(40002));
}

/* An ACK that empties the flight rides on a segment ahead of a hole (or
 * one trimmed to the window): what the ACK opened is still sent at the
 * next flush, and the data left unsent times out if nobody answers. */
static void test_ack_on_held_segment_sends_more(void **state)
{
	uint32_t iss = handshake(40000);
	struct opts o = ts(200);
	static const uint8_t data[20000];
	struct tcp_stats st;

	assert_int_equal(tcp_send(H.e, conn(40000), data, sizeof(data), (void *)data), 0);
	flush();
	assert_int_equal(H.nout, 10); /* the initial window: 10 segments (RFC 6928) */
	H.nout = 0;
	/* all ten acknowledged by a segment beyond rcv_nxt */
	peer(40000, 1101, iss + 1 + 14000, TCP_ACK, 16384, &o, "x", 1);
	assert_int_equal(H.nout, 1); /* the duplicate ACK for the hole */
	flush();
	assert_true(H.nout > 1);
	assert_int_equal(H.out[1].seg.seq, iss + 1 + 14000);
	assert_int_equal(H.out[1].seg.len, 1400);
	/* nobody answers again: the connection times out, the chunk released */
	for (int i = 0; i < 20 && conn(40000); i++)
		advance(61000000);
	assert_null(conn(40000));
	assert_int_equal(H.released, 1);
	tcp_engine_stats(H.e, &st);
	assert_int_equal(st.timeouts, 1);
}

/* The engine's pool of held segments is shared, and bounded: past it a
 * segment ahead of a hole is dropped as before, and an abort from inside
 * on_data while held segments are being delivered is safe. */
static void test_out_of_order_pool_and_abort(void **state)
{
	struct opts o = ts(200);
	struct tcp_stats st;
	uint32_t iss[3];

	struct tcp_config cfg = config();

	teardown(state);
	cfg.ooo_segs = 10;
	setup_with(&cfg);
	for (int k = 0; k < 3; k++)
		iss[k] = handshake((uint16_t)(41000 + k));
	for (int k = 0; k < 3; k++)
		for (int i = 1; i <= 4; i++)
			peer((uint16_t)(41000 + k), 1001 + 5 * i, iss[k] + 1, TCP_ACK, 16384, &o,
			     "abcde", 5);
	tcp_engine_stats(H.e, &st);
	assert_int_equal(st.out_of_order, 12);
	assert_int_equal(st.ooo_held, 10);
	/* the first connection aborts from inside the first delivery */
	H.abort_on_data = true;
	peer(41000, 1001, iss[0] + 1, TCP_ACK, 16384, &o, "abcde", 5);
	assert_null(conn(41000));
	H.abort_on_data = false;
	H.rxlen = 0;
	/* its four slots are free again: the third connection's two dropped
	 * segments can be held now */
	peer(41002, 1001 + 15, iss[2] + 1, TCP_ACK, 16384, &o, "abcde", 5);
	peer(41002, 1001 + 20, iss[2] + 1, TCP_ACK, 16384, &o, "abcde", 5);
	peer(41002, 1001, iss[2] + 1, TCP_ACK, 16384, &o, "abcde", 5);
	assert_int_equal(H.rxlen, 25);
}

/* RFC 2018: SACK permitted in the SYN-ACK when the SYN had it (also with
 * a SYN cookie, carried in the timestamp); then every pure ACK sent while
 * segments are held lists them, the block of the segment just held first. */
static void test_sack_blocks(void **state)
{
	struct opts o = ts(200);
	uint32_t l[4], r[4], iss, cookie;
	bool permitted;

	iss = handshake_with(40000, true, &permitted);
	assert_true(permitted);
	peer(40000, 1011, iss + 1, TCP_ACK, 16384, &o, "0123456789", 10);
	assert_int_equal(sack_blocks(last(), l, r, &permitted), 1);
	assert_int_equal(last()->seg.ack, 1001);
	assert_int_equal(l[0], 1011);
	assert_int_equal(r[0], 1021);
	peer(40000, 1031, iss + 1, TCP_ACK, 16384, &o, "01234", 5);
	assert_int_equal(sack_blocks(last(), l, r, &permitted), 2);
	assert_int_equal(l[0], 1031); /* the one just held, first */
	assert_int_equal(r[0], 1036);
	assert_int_equal(l[1], 1011);
	assert_int_equal(r[1], 1021);
	peer(40000, 1041, iss + 1, TCP_ACK, 16384, &o, "01234", 5);
	peer(40000, 1051, iss + 1, TCP_ACK, 16384, &o, "01234", 5);
	/* four blocks held, three fit beside the timestamps */
	assert_int_equal(sack_blocks(last(), l, r, &permitted), 3);
	assert_int_equal(l[0], 1051);
	assert_int_equal(l[1], 1011);
	assert_int_equal(l[2], 1031);
	/* the gap between the first two fills: they merge */
	peer(40000, 1021, iss + 1, TCP_ACK, 16384, &o, "0123456789", 10);
	assert_int_equal(sack_blocks(last(), l, r, &permitted), 3);
	assert_int_equal(l[0], 1011);
	assert_int_equal(r[0], 1036);
	/* the hole at the front fills: delivered up to the next hole, and the
	 * blocks beyond it still reported */
	peer(40000, 1001, iss + 1, TCP_ACK, 16384, &o, "0123456789", 10);
	flush();
	assert_int_equal(last()->seg.ack, 1036);
	assert_int_equal(sack_blocks(last(), l, r, &permitted), 2);
	assert_int_equal(l[0], 1041);
	assert_int_equal(l[1], 1051);

	/* A peer that did not offer SACK gets none. */
	iss = handshake_with(40001, false, &permitted);
	assert_false(permitted);
	peer(40001, 1011, iss + 1, TCP_ACK, 16384, &o, "0123456789", 10);
	assert_int_equal(sack_blocks(last(), l, r, &permitted), 0);

	/* Under a SYN flood the cookie's timestamp carries it. */
	o = (struct opts){1460, 5, true, 77, 0, true};
	for (int i = 0; i < 20; i++)
		peer((uint16_t)(20000 + i), 1000u * (uint32_t)i, 0, TCP_SYN, 65535, &o, NULL, 0);
	assert_int_equal(sack_blocks(last(), l, r, &permitted), 0);
	assert_true(permitted);
	cookie = last()->seg.seq;
	o = (struct opts){-1, -1, true, 78, last()->seg.tsval, false};
	peer(20019, 19001, cookie + 1, TCP_ACK, 100, &o, NULL, 0);
	assert_int_equal(tcp_conn_state(conn(20019)), TCP_S_ESTABLISHED);
	o = ts(79);
	peer(20019, 19011, cookie + 1, TCP_ACK, 100, &o, "0123456789", 10);
	assert_int_equal(sack_blocks(last(), l, r, &permitted), 1);
	assert_int_equal(l[0], 19011);
}

static void test_out_of_order_and_paws(void **state)
{
	uint32_t iss = handshake(40000);
	struct opts o = ts(200);
	struct tcp_stats st;

	/* Ahead of a hole: held, and a duplicate ACK at once. */
	peer(40000, 1006, iss + 1, TCP_ACK, 16384, &o, " world", 6);
	assert_int_equal(H.rxlen, 0);
	assert_int_equal(H.nout, 1); /* at once, not at the flush */
	assert_int_equal(last()->seg.ack, 1001);
	/* The hole fills: both, in order, and an ACK of both. */
	peer(40000, 1001, iss + 1, TCP_ACK, 16384, &o, "hello", 5);
	assert_int_equal(H.rxlen, 11);
	assert_memory_equal(H.rx, "hello world", 11);
	flush();
	assert_int_equal(last()->seg.ack, 1012);
	/* The sender's retransmission of both: old, not delivered again. */
	peer(40000, 1001, iss + 1, TCP_ACK, 16384, &o, "hello world", 11);
	assert_int_equal(H.rxlen, 11);
	tcp_engine_stats(H.e, &st);
	assert_int_equal(st.out_of_order, 1);
	assert_int_equal(st.ooo_held, 1);
	/* A wholly old segment: not delivered, ACKed. */
	H.nout = 0;
	peer(40000, 1001, iss + 1, TCP_ACK, 16384, &o, "hello", 5);
	assert_int_equal(H.rxlen, 11);
	assert_int_equal(last()->seg.ack, 1012);
	/* Paused: window 0, data dropped and acknowledged; resumed: an update. */
	tcp_pause_rx(H.e, conn(40000), true);
	peer(40000, 1012, iss + 1, TCP_ACK, 16384, &o, "zzz", 3);
	assert_int_equal(H.rxlen, 11);
	assert_int_equal(last()->seg.wnd, 0);
	assert_int_equal(last()->seg.ack, 1012);
	H.nout = 0;
	tcp_pause_rx(H.e, conn(40000), false);
	flush();
	assert_int_equal(H.nout, 1);
	assert_int_equal(last()->seg.wnd, (256 * 1024) >> 7);
	peer(40000, 1012, iss + 1, TCP_ACK, 16384, &o, "zzz", 3);
	assert_int_equal(H.rxlen, 14);
	/* PAWS (RFC 7323 5): a timestamp older than the last is dropped. */
	o = ts(150);
	peer(40000, 1015, iss + 1, TCP_ACK, 16384, &o, "old", 3);
	assert_int_equal(H.rxlen, 14);
	tcp_engine_stats(H.e, &st);
	assert_int_equal(st.paws_dropped, 1);
}

/* RFC 4987: beyond max_half_open, SYNs get cookies and no state; a valid
 * cookie ACK establishes (with the scale carried in the timestamp), a
 * forged one is reset; half-open entries expire. */
static void test_syn_flood_within_bounds(void **state)
{
	struct opts o = {1460, 5, true, 77, 0, false};
	struct tcp_stats st;
	struct tcp_cc_info cc;
	uint32_t cookie, tsval;

	for (int i = 0; i < 1000; i++)
		peer((uint16_t)(20000 + i), 1000u * (uint32_t)i, 0, TCP_SYN, 65535, &o, NULL, 0);
	tcp_engine_stats(H.e, &st);
	assert_int_equal(st.half_open, 8);
	assert_int_equal(st.conns, 8);
	assert_int_equal(st.syn_cookies_sent, 992);
	assert_int_equal(H.nout, 1000); /* every SYN answered */
	/* Port 20999 tries again: a cookie, the same state-free answer. */
	peer(20999, 999000, 0, TCP_SYN, 65535, &o, NULL, 0);
	cookie = last()->seg.seq;
	tsval = last()->seg.tsval;
	assert_int_equal(tsval & 0xf, 5);
	o = (struct opts){-1, -1, true, 78, tsval, false};
	peer(20999, 999001, cookie + 1, TCP_ACK, 100, &o, "GET", 3);
	assert_non_null(conn(20999));
	assert_int_equal(tcp_conn_state(conn(20999)), TCP_S_ESTABLISHED);
	assert_int_equal(H.rxlen, 3); /* the ACK's data is kept */
	tcp_conn_cc(conn(20999), &cc);
	assert_int_equal(cc.snd_wnd, 100 << 5);
	/* A forged ACK: reset, no state. */
	peer(30000, 5, 0x12345678, TCP_ACK, 100, &o, NULL, 0);
	assert_true(last()->seg.flags & TCP_RST);
	assert_int_equal(last()->seg.seq, 0x12345678);
	assert_null(conn(30000));
	tcp_engine_stats(H.e, &st);
	assert_int_equal(st.syn_cookies_ok, 1);
	assert_int_equal(st.syn_cookies_bad, 1);
	/* A cookie from more than two periods ago no longer validates. */
	peer(21000, 5000, 0, TCP_SYN, 65535, &(struct opts){1460, -1, false, 0, 0, false}, NULL, 0);
	cookie = last()->seg.seq;
	H.now += 200ull * 1000000;
	peer(21000, 5001, cookie + 1, TCP_ACK, 100, &NO_OPTS, NULL, 0);
	assert_null(conn(21000));
	/* The half-open entries give up after their SYN-ACK retries. */
	for (int i = 0; i < 40; i++)
		advance(1000000);
	tcp_engine_stats(H.e, &st);
	assert_int_equal(st.half_open, 0);
	assert_int_equal(st.half_open_dropped, 8);
	assert_int_equal(st.send_queues, 0); /* nobody sent: no queue was made */
	assert_int_equal(st.conns, 1);	     /* the cookie connection only */
}

/* Segments for no listener, or stray, get RSTs per 3.10.7.1; a closed
 * port's SYN gets RST|ACK. Malformed headers are refused by the parser. */
static void test_resets_and_bad_headers(void **state)
{
	uint8_t bad[40] = {0};
	struct tcp_seg seg;
	struct tcp_stats st;

	tcp_listen(H.e, 443);
	peer(40000, 1000, 0, TCP_SYN, 1000, &NO_OPTS, NULL, 0); /* to port 80: listening */
	H.nout = 0;
	/* an ACK to a port nobody listens on (443 is, 80 is: craft port 81) */
	bad[0] = 0x9c;
	bad[1] = 0x40;
	bad[3] = 81;
	bad[12] = 5 << 4;
	bad[13] = TCP_SYN;
	assert_int_equal(tcp_parse(bad, 20, RADDR, LADDR, &seg), 0);
	tcp_input(H.e, &seg, H.now);
	assert_int_equal(last()->seg.flags, TCP_RST | TCP_ACK);
	assert_int_equal(last()->seg.ack, 1);
	/* data offset below 5, past the segment, an option overrunning */
	bad[12] = 4 << 4;
	assert_int_equal(tcp_parse(bad, 20, RADDR, LADDR, &seg), -1);
	bad[12] = 10 << 4;
	assert_int_equal(tcp_parse(bad, 20, RADDR, LADDR, &seg), -1);
	bad[12] = 6 << 4;
	bad[20] = 2;
	bad[21] = 8;
	assert_int_equal(tcp_parse(bad, 24, RADDR, LADDR, &seg), -1);
	bad[21] = 1;
	assert_int_equal(tcp_parse(bad, 24, RADDR, LADDR, &seg), -1);
	assert_int_equal(tcp_parse(bad, 12, RADDR, LADDR, &seg), -1);
	/* an unknown option is skipped */
	bad[20] = 30;
	bad[21] = 4;
	assert_int_equal(tcp_parse(bad, 24, RADDR, LADDR, &seg), 0);
	tcp_engine_stats(H.e, &st);
	assert_int_equal(st.no_conn, 1);
}

/* The application may abort from inside on_data: the engine does not touch
 * the connection afterwards (ASan would see it). */
static void test_abort_inside_callback(void **state)
{
	uint32_t iss = handshake(40000);
	struct opts o = ts(200);

	H.abort_on_data = true;
	peer(40000, 1001, iss + 1, TCP_ACK | TCP_FIN, 16384, &o, "x", 1);
	assert_int_equal(H.closed, 1);
	assert_int_equal(H.why, TCP_CLOSED_ABORTED);
	assert_true(last()->seg.flags & TCP_RST);
	flush();
	assert_null(conn(40000));
	/* the slot is reused cleanly */
	H.abort_on_data = false;
	handshake(40001);
	assert_non_null(conn(40001));
}

/* ---- the wheel ---- */

static int fired[8];

static void fire(void *arg, struct wheel_node *n)
{
	struct wheel_node *nodes = arg;
	fired[n - nodes]++;
}

static void test_wheel(void **state)
{
	struct wheel_node slots[16], nodes[4] = {0};
	struct wheel w;

	wheel_init(&w, slots, 16, 1000, 5000);
	wheel_arm(&w, &nodes[0], 7000);
	wheel_arm(&w, &nodes[1], 5000 + 40 * 1000); /* beyond one turn */
	wheel_arm(&w, &nodes[2], 1000);		    /* already past: the next tick */
	wheel_arm(&w, &nodes[3], 9000);
	wheel_cancel(&nodes[3]);
	assert_false(wheel_armed(&nodes[3]));
	wheel_advance(&w, 6000, fire, nodes);
	assert_int_equal(fired[2], 1);
	assert_int_equal(fired[0], 0);
	wheel_advance(&w, 7000, fire, nodes);
	assert_int_equal(fired[0], 1);
	wheel_advance(&w, 30000, fire, nodes);
	assert_int_equal(fired[1], 0);		 /* its slot came round early: not yet */
	wheel_advance(&w, 1000000, fire, nodes); /* a long gap */
	assert_int_equal(fired[1], 1);
	assert_int_equal(fired[3], 0);
	assert_false(wheel_armed(&nodes[1]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_handshake_and_options, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_data_and_ack, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_send_queues_shrink_after_burst, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_retransmit_after_rto, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_spurious_timeout_teaches_the_rto, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_spurious_timeout_resumes_with_new_data, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_fast_retransmit_newreno, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sack_recovery, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_zero_window_and_probe, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_peer_fin, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_active_close, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_peer_rst, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_out_of_order_and_paws, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_out_of_order_reassembly, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sack_blocks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_out_of_order_pool_and_abort, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ack_on_held_segment_sends_more, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_syn_flood_within_bounds, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resets_and_bad_headers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_abort_inside_callback, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_segments_carry_the_stream_bytes, setup, teardown),
	    cmocka_unit_test(test_wheel),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
