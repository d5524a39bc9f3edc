/* The TCP engine of the DPDK edge (see tcp.h): passive open, in-order
 * delivery with out-of-order segments held and reported (SACK), zero-copy
 * send with retransmission, NewReno and SACK-assisted recovery, SYN cookies,
 * one timer per connection on the lcore's wheel. Section numbers are RFC 9293's
 * unless another RFC is named. */
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

struct tcp_conn {
	struct tcp_tuple t;
	uint16_t ooo;		/* segments held ahead of a hole: a list, 1-based; 0 none */
	uint8_t n_ooo;		/* how many */
	bool sack_ok;		/* the peer may be told of them (RFC 2018) */
	struct tcp_conn *hnext; /* hash chain */
	struct tcp_conn *pnext; /* flush list, or free list */
	struct wheel_node timer;
	void *app;
	uint8_t state;
	bool pending; /* on the flush list */
	bool ack_now; /* an ACK is owed */
	bool fin_queued, fin_rcvd;
	bool ts_ok, ws_ok;
	bool rx_closed;	  /* the application paused reading: window 0 */
	bool fin_out;	  /* our FIN went out (at least once) */
	bool recover_set; /* recover holds a value (RFC 6582) */
	bool rtt_timing;
	bool in_recovery;
	bool eifel; /* a timeout's retransmission awaits its first ACK */
	uint8_t snd_ws, rcv_ws;
	uint8_t dupacks;
	uint8_t retries;
	uint16_t snd_mss;
	/* send sequence space (3.3.1) */
	uint32_t iss, snd_una, snd_nxt, snd_max, snd_wnd, snd_wl1, snd_wl2;
	uint32_t cwnd, ssthresh, recover;
	uint32_t eifel_ts, prior_cwnd, prior_ssthresh; /* at the timeout (RFC 3522) */
	uint32_t srtt_us, rttvar_us, rto_us, rtt_seq;
	uint64_t rtt_start_us;
	/* receive sequence space */
	uint32_t irs, rcv_nxt, ts_recent, last_ack_sent;
	/* the send queue, taken from the engine's pool while there is
	 * something to send (NULL when idle): chunks [q_head, q_tail) of a
	 * ring; q_bytes from
	 * snd_una (the head chunk's first q_head_off bytes are acknowledged) */
	struct tcp_chunk *q;
	uint32_t q_mask, q_head, q_tail, q_head_off, q_bytes;
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

/* ---- SipHash-2-4 (Aumasson and Bernstein), for ISNs and SYN cookies ---- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
	do {                                                                                       \
		v0 += v1;                                                                          \
		v1 = ROTL(v1, 13);                                                                 \
		v1 ^= v0;                                                                          \
		v0 = ROTL(v0, 32);                                                                 \
		v2 += v3;                                                                          \
		v3 = ROTL(v3, 16);                                                                 \
		v3 ^= v2;                                                                          \
		v0 += v3;                                                                          \
		v3 = ROTL(v3, 21);                                                                 \
		v3 ^= v0;                                                                          \
		v2 += v1;                                                                          \
		v1 = ROTL(v1, 17);                                                                 \
		v1 ^= v2;                                                                          \
		v2 = ROTL(v2, 32);                                                                 \
	} while (0)

/* SipHash-2-4 of three 64-bit words (24 bytes, little-endian message). */
static uint64_t siphash3(const uint64_t k[2], uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t v0 = 0x736f6d6570736575ull ^ k[0], v1 = 0x646f72616e646f6dull ^ k[1];
	uint64_t v2 = 0x6c7967656e657261ull ^ k[0], v3 = 0x7465646279746573ull ^ k[1];
	uint64_t m[4] = {a, b, c, (uint64_t)24 << 56};

	for (int i = 0; i < 4; i++) {
		v3 ^= m[i];
		SIPROUND;
		SIPROUND;
		v0 ^= m[i];
	}
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

static uint64_t tuple_word(const struct tcp_tuple *t)
{
	return (uint64_t)t->raddr << 32 | (uint64_t)t->rport << 16 | t->lport;
}

/* ---- parsing and header building ---- */

int tcp_parse(const uint8_t *p, size_t len, uint32_t saddr, uint32_t daddr, struct tcp_seg *seg)
{
	size_t hlen, off;

	if (len < 20)
		return -1;
	hlen = (size_t)(p[12] >> 4) * 4;
	if (hlen < 20 || hlen > len)
		return -1;
	memset(seg, 0, sizeof(*seg));
	seg->t.raddr = saddr;
	seg->t.laddr = daddr;
	seg->t.rport = get16(p);
	seg->t.lport = get16(p + 2);
	seg->seq = get32(p + 4);
	seg->ack = get32(p + 8);
	seg->flags = p[13] & 0x3f;
	seg->wnd = get16(p + 14);
	seg->data = p + hlen;
	seg->len = (uint32_t)(len - hlen);
	for (off = 20; off < hlen;) {
		uint8_t kind = p[off], olen;

		if (kind == 0) /* end of options */
			break;
		if (kind == 1) { /* NOP */
			off++;
			continue;
		}
		if (off + 2 > hlen)
			return -1;
		olen = p[off + 1];
		if (olen < 2 || off + olen > hlen)
			return -1;
		switch (kind) {
		case 2:
			if (olen != 4)
				return -1;
			seg->has_mss = true;
			seg->mss = get16(p + off + 2);
			break;
		case 3:
			if (olen != 3)
				return -1;
			seg->has_ws = true;
			seg->ws = p[off + 2] > 14 ? 14 : p[off + 2]; /* RFC 7323 2.3 */
			break;
		case 4:
			seg->sack_ok = olen == 2;
			break;
		case 5: /* SACK blocks; ill-formed ones are ignored */
			if (olen >= 10 && (olen - 2) % 8 == 0 && olen <= 34) {
				seg->nsack = (uint8_t)((olen - 2) / 8);
				for (int b = 0; b < seg->nsack; b++) {
					seg->sack_l[b] = get32(p + off + 2 + 8 * b);
					seg->sack_r[b] = get32(p + off + 6 + 8 * b);
				}
			}
			break;
		case 8:
			if (olen != 10)
				return -1;
			seg->has_ts = true;
			seg->tsval = get32(p + off + 2);
			seg->tsecr = get32(p + off + 6);
			break;
		default: /* ignored, as RFC 9293 3.1 asks */
			break;
		}
		off += olen;
	}
	return 0;
}

size_t tcp_out_header(const struct tcp_out *o, uint8_t *p)
{
	size_t hlen = 20 + o->optlen;

	put16(p, o->t.lport);
	put16(p + 2, o->t.rport);
	put32(p + 4, o->seq);
	put32(p + 8, o->ack);
	p[12] = (uint8_t)(hlen / 4) << 4;
	p[13] = o->flags;
	put16(p + 14, o->wnd);
	put16(p + 16, 0); /* checksum: the glue's (or the NIC's) */
	put16(p + 18, 0);
	memcpy(p + 20, o->opts, o->optlen);
	return hlen;
}

void tcp_out_walk(const struct tcp_out *o,
		  void (*fn)(void *arg, const uint8_t *data, uint32_t len, void *ref), void *arg)
{
	const struct tcp_conn *c = o->conn;
	uint32_t skip, left = o->len;

	if (c == NULL)
		return;
	skip = o->off + c->q_head_off;
	for (uint32_t i = c->q_head; left > 0 && i != c->q_tail; i++) {
		const struct tcp_chunk *k = &c->q[i & c->q_mask];
		uint32_t take;

		if (skip >= k->len) {
			skip -= k->len;
			continue;
		}
		take = min_u32(k->len - skip, left);
		fn(arg, k->data + skip, take, k->ref);
		left -= take;
		skip = 0;
	}
}

/* ---- the engine ---- */

size_t tcp_conn_bytes(const struct tcp_config *cfg)
{
	/* the connection, its send queue, and its share of the hash table
	 * (two bucket pointers per connection) */
	return sizeof(struct tcp_conn) + 2 * sizeof(struct tcp_conn *);
}

size_t tcp_queue_bytes(const struct tcp_config *cfg)
{
	return cfg->sndq_chunks * sizeof(struct tcp_chunk);
}

void tcp_config_defaults(struct tcp_config *c)
{
	memset(c, 0, sizeof(*c));
	c->max_conns = 1024;
	c->max_half_open = 256;
	c->sndq_chunks = 64;
	c->mss = 1460;
	c->wscale = 7;
	c->rcv_wnd = 256 * 1024;
	c->rto_initial_us = 1000000;
	c->rto_min_us = 200000;
	c->rto_max_us = 60000000;
	c->max_retries = 12;
	c->time_wait_us = 30000000;
	c->syn_timeout_us = 8000000;
	c->ooo_segs = 1024;
}

struct tcp_engine *tcp_engine_create(const struct tcp_config *cfg, const struct tcp_callbacks *cb)
{
	struct tcp_engine *e;
	uint32_t buckets = 1;

	if (cfg->max_conns == 0 || cfg->sndq_chunks == 0 ||
	    (cfg->sndq_chunks & (cfg->sndq_chunks - 1)) || cfg->sndq_chunks > 65536 ||
	    cfg->mss < 64 || cfg->wscale > 14 || cfg->rcv_wnd == 0 ||
	    cfg->rcv_wnd >> cfg->wscale > 65535 || cfg->rto_min_us == 0 || cb->output == NULL ||
	    cfg->ooo_segs > 65535)
		return NULL;
	while (buckets < cfg->max_conns * 2)
		buckets <<= 1;
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return NULL;
	e->cfg = *cfg;
	e->cb = *cb;
	e->conns = calloc(cfg->max_conns, sizeof(*e->conns));
	e->buckets = calloc(buckets, sizeof(*e->buckets));
	if (cfg->ooo_segs) { /* untouched pages until reordering needs them */
		e->ooo = calloc(cfg->ooo_segs, sizeof(*e->ooo));
		if (e->ooo == NULL) {
			tcp_engine_destroy(e);
			return NULL;
		}
	}
	if (e->conns == NULL || e->buckets == NULL) {
		tcp_engine_destroy(e);
		return NULL;
	}
	e->bucket_mask = buckets - 1;
	for (uint32_t i = cfg->max_conns; i-- > 0;) {
		e->conns[i].pnext = e->free_list;
		e->free_list = &e->conns[i];
	}
	wheel_init(&e->wheel, e->slots, WHEEL_SLOTS, WHEEL_TICK_US, 0);
	return e;
}

void tcp_engine_destroy(struct tcp_engine *e)
{
	if (e == NULL)
		return;
	free(e->conns);
	free(e->ooo);
	for (uint32_t i = 0; i < e->nslabs; i++)
		free(e->slabs[i]);
	free(e->slabs);
	free(e->buckets);
	free(e);
}

int tcp_listen(struct tcp_engine *e, uint16_t lport)
{
	if (e->nports == 8)
		return -1;
	e->ports[e->nports++] = lport;
	return 0;
}

static bool listening(const struct tcp_engine *e, uint16_t lport)
{
	for (int i = 0; i < e->nports; i++)
		if (e->ports[i] == lport)
			return true;
	return false;
}

static uint32_t tuple_hash(const struct tcp_engine *e, const struct tcp_tuple *t)
{
	uint64_t h = tuple_word(t) ^ ((uint64_t)t->laddr << 17) ^ e->cfg.cookie_key[1];

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return (uint32_t)h & e->bucket_mask;
}

static bool tuple_eq(const struct tcp_tuple *a, const struct tcp_tuple *b)
{
	return a->laddr == b->laddr && a->raddr == b->raddr && a->lport == b->lport &&
	       a->rport == b->rport;
}

struct tcp_conn *tcp_lookup(struct tcp_engine *e, const struct tcp_tuple *t)
{
	for (struct tcp_conn *c = e->buckets[tuple_hash(e, t)]; c; c = c->hnext)
		if (tuple_eq(&c->t, t))
			return c;
	return NULL;
}

static struct tcp_conn *conn_new(struct tcp_engine *e, const struct tcp_tuple *t)
{
	struct tcp_conn *c = e->free_list;
	uint32_t b;

	if (c == NULL)
		return NULL;
	e->free_list = c->pnext;
	memset(c, 0, sizeof(*c));
	c->q_mask = e->cfg.sndq_chunks - 1;
	c->t = *t;
	b = tuple_hash(e, t);
	c->hnext = e->buckets[b];
	e->buckets[b] = c;
	c->rto_us = e->cfg.rto_initial_us;
	e->st.conns++;
	return c;
}

static void avail_add(struct tcp_engine *e, struct qslab *s)
{
	s->avail_prev = NULL;
	s->avail_next = e->avail;
	if (e->avail)
		e->avail->avail_prev = s;
	e->avail = s;
}

static void avail_remove(struct tcp_engine *e, struct qslab *s)
{
	if (s->avail_prev)
		s->avail_prev->avail_next = s->avail_next;
	else
		e->avail = s->avail_next;
	if (s->avail_next)
		s->avail_next->avail_prev = s->avail_prev;
}

/* The slab holding queue q: the last slab at or below its address. */
static uint32_t slab_index(const struct tcp_engine *e, const struct tcp_chunk *q)
{
	uint32_t lo = 0, hi = e->nslabs;

	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if ((uintptr_t)e->slabs[mid] <= (uintptr_t)q)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static struct qslab *slab_new(struct tcp_engine *e)
{
	size_t n = e->cfg.sndq_chunks;
	struct qslab *s;
	uint32_t at;

	if (e->nslabs == e->capslabs) {
		uint32_t cap = e->capslabs ? 2 * e->capslabs : 16;
		struct qslab **v = realloc(e->slabs, cap * sizeof(*v));
		if (v == NULL)
			return NULL;
		e->slabs = v;
		e->capslabs = cap;
	}
	s = malloc(sizeof(*s) + QSLAB * n * sizeof(struct tcp_chunk));
	if (s == NULL)
		return NULL;
	s->free = NULL;
	s->used = 0;
	for (size_t i = QSLAB; i-- > 0;) {
		struct tcp_chunk *q = &s->chunks[i * n];
		q[0].ref = s->free;
		s->free = q;
	}
	at = e->nslabs && (uintptr_t)e->slabs[0] < (uintptr_t)s ? slab_index(e, (void *)s) + 1 : 0;
	memmove(&e->slabs[at + 1], &e->slabs[at], (e->nslabs - at) * sizeof(*e->slabs));
	e->slabs[at] = s;
	e->nslabs++;
	avail_add(e, s);
	e->st.send_queues += QSLAB;
	return s;
}

static void slab_free(struct tcp_engine *e, uint32_t at)
{
	struct qslab *s = e->slabs[at];

	avail_remove(e, s);
	memmove(&e->slabs[at], &e->slabs[at + 1], (e->nslabs - at - 1) * sizeof(*e->slabs));
	e->nslabs--;
	e->st.send_queues -= QSLAB;
	free(s);
}

/* Gives c a send queue: 0, or -1 without memory. */
static int queue_get(struct tcp_engine *e, struct tcp_conn *c)
{
	struct qslab *s = e->avail;

	if (c->q)
		return 0;
	if (s == NULL && (s = slab_new(e)) == NULL)
		return -1;
	c->q = s->free;
	s->free = c->q[0].ref;
	s->used++;
	if (++e->qused > e->qpeak)
		e->qpeak = e->qused;
	if (s->free == NULL)
		avail_remove(e, s);
	c->q_head = c->q_tail = c->q_head_off = 0;
	return 0;
}

/* An empty send queue goes back to its slab (slabs_trim frees slabs). */
static void queue_put(struct tcp_engine *e, struct tcp_conn *c)
{
	struct qslab *s;

	if (c->q == NULL || c->q_head != c->q_tail)
		return;
	s = e->slabs[slab_index(e, c->q)];
	if (s->free == NULL)
		avail_add(e, s);
	c->q[0].ref = s->free;
	s->free = c->q;
	s->used--;
	e->qused--;
	c->q = NULL;
	c->q_head = c->q_tail = c->q_head_off = 0;
}

/* Frees the slabs with nothing in use beyond what the last second needed. */
static void slabs_trim(struct tcp_engine *e)
{
	uint64_t keep = (uint64_t)e->qpeak + QSLAB;

	for (uint32_t i = e->nslabs; i-- > 0 && (uint64_t)e->nslabs * QSLAB > keep;)
		if (e->slabs[i]->used == 0)
			slab_free(e, i);
	e->qpeak = e->qused;
}

static struct ooo_seg *ooo_at(struct tcp_engine *e, uint16_t i)
{
	return &e->ooo[i - 1];
}

static void ooo_put(struct tcp_engine *e, uint16_t i)
{
	ooo_at(e, i)->next = e->ooo_free;
	e->ooo_free = i;
}

/* Gives back every segment c holds. */
static void ooo_clear(struct tcp_engine *e, struct tcp_conn *c)
{
	while (c->ooo) {
		uint16_t i = c->ooo;

		c->ooo = ooo_at(e, i)->next;
		ooo_put(e, i);
	}
	c->n_ooo = 0;
}

/* Holds a segment that arrived ahead of a hole (seq beyond rcv_nxt, within
 * the window). False when it cannot be held: it is dropped. */
static bool ooo_hold(struct tcp_engine *e, struct tcp_conn *c, uint32_t seq, const uint8_t *data,
		     uint32_t len)
{
	uint16_t i, *pp = &c->ooo;
	struct ooo_seg *k;

	if (len == 0 || len > OOO_DATA || c->n_ooo == OOO_PER_CONN || e->ooo == NULL)
		return false;
	while (*pp && seq_lt(ooo_at(e, *pp)->seq, seq))
		pp = &ooo_at(e, *pp)->next;
	if (*pp && ooo_at(e, *pp)->seq == seq && ooo_at(e, *pp)->len >= len)
		return true; /* a duplicate of one held */
	if (e->ooo_free) {
		i = e->ooo_free;
		e->ooo_free = ooo_at(e, i)->next;
	} else if (e->ooo_fresh < e->cfg.ooo_segs) {
		i = ++e->ooo_fresh;
	} else {
		return false;
	}
	k = ooo_at(e, i);
	k->seq = seq;
	k->len = (uint16_t)len;
	memcpy(k->data, data, len);
	k->next = *pp;
	*pp = i;
	c->n_ooo++;
	e->st.ooo_held++;
	return true;
}

/* After in-order data: delivers the held segments the hole's filling made
 * contiguous (the part of each beyond rcv_nxt), in order, and drops those
 * now wholly old. Stops when the application paused reading (the rest is
 * dropped: the peer sends it again) or closed the connection. */
static void ooo_deliver(struct tcp_engine *e, struct tcp_conn *c)
{
	while (c->ooo && seq_leq(ooo_at(e, c->ooo)->seq, c->rcv_nxt)) {
		uint16_t i = c->ooo;
		struct ooo_seg *k = ooo_at(e, i);
		uint32_t end = k->seq + k->len;

		c->ooo = k->next;
		c->n_ooo--;
		if (c->rx_closed) {
			ooo_put(e, i);
			ooo_clear(e, c);
			return;
		}
		if (seq_lt(c->rcv_nxt, end)) {
			uint32_t skip = c->rcv_nxt - k->seq, n = end - c->rcv_nxt;

			c->rcv_nxt += n;
			if (e->cb.on_data)
				e->cb.on_data(e->cb.ctx, c, c->app, k->data + skip, n);
		}
		ooo_put(e, i);
		if (c->state == TCP_S_CLOSED)
			return;
	}
}

/* Unhashes c, releases its chunks and puts it on the dead list: it is freed
 * when the current call into the engine returns, so that callers up the
 * stack may still look at it (its state is CLOSED). */
static void conn_kill(struct tcp_engine *e, struct tcp_conn *c, enum tcp_close_reason why,
		      bool notify)
{
	struct tcp_conn **pp = &e->buckets[tuple_hash(e, &c->t)];

	if (c->state == TCP_S_CLOSED)
		return;
	while (*pp != c)
		pp = &(*pp)->hnext;
	*pp = c->hnext;
	if (c->state == TCP_S_SYN_RECEIVED)
		e->st.half_open--;
	c->state = TCP_S_CLOSED;
	wheel_cancel(&c->timer);
	ooo_clear(e, c);
	for (; c->q_head != c->q_tail; c->q_head++)
		if (e->cb.on_release)
			e->cb.on_release(e->cb.ctx, c->q[c->q_head & c->q_mask].ref);
	c->q_bytes = 0;
	queue_put(e, c);
	if (notify && e->cb.on_closed)
		e->cb.on_closed(e->cb.ctx, c, c->app, why);
	c->app = NULL;
	if (!c->pending) {
		c->pnext = e->dead;
		e->dead = c;
	}
	/* A pending connection is freed by the flush that skips it. */
}

static void reap(struct tcp_engine *e)
{
	while (e->dead) {
		struct tcp_conn *c = e->dead;

		e->dead = c->pnext;
		c->pnext = e->free_list;
		e->free_list = c;
		e->st.conns--;
	}
}

static void mark_pending(struct tcp_engine *e, struct tcp_conn *c)
{
	if (!c->pending && c->state != TCP_S_CLOSED) {
		c->pending = true;
		c->pnext = e->pending;
		e->pending = c;
	}
}

/* ---- output ---- */

static uint16_t adv_window(const struct tcp_engine *e, const struct tcp_conn *c)
{
	return c->rx_closed ? 0 : (uint16_t)min_u32(e->cfg.rcv_wnd >> c->rcv_ws, 65535);
}

static uint32_t ts_clock(const struct tcp_engine *e)
{
	return (uint32_t)(e->now_us / 1000);
}

static void put_ts(struct tcp_out *o, uint32_t tsval, uint32_t tsecr)
{
	uint8_t *p = o->opts + o->optlen;

	p[0] = 1;
	p[1] = 1;
	p[2] = 8;
	p[3] = 10;
	put32(p + 4, tsval);
	put32(p + 8, tsecr);
	o->optlen += 12;
}

static void emit(struct tcp_engine *e, const struct tcp_out *o)
{
	e->st.segs_out++;
	e->st.bytes_out += o->len;
	if (o->flags & TCP_RST)
		e->st.resets_out++;
	e->cb.output(e->cb.ctx, o);
}

/* RFC 2018: the blocks of held data, in a pure ACK (a segment with data
 * has no room: its MSS counts only the timestamps). The first block holds
 * the segment held last, when this ACK answers it; then the others, in
 * order, as many as fit (3 beside timestamps, 4 without). */
static void put_sack(struct tcp_engine *e, const struct tcp_conn *c, struct tcp_out *o)
{
	uint32_t left[OOO_PER_CONN], right[OOO_PER_CONN];
	int n = 0, max = (40 - o->optlen - 4) / 8, put = 0, lead = -1;
	uint8_t *p = o->opts + o->optlen;

	for (uint16_t i = c->ooo; i; i = ooo_at(e, i)->next) {
		const struct ooo_seg *k = ooo_at(e, i);

		if (n && seq_leq(k->seq, right[n - 1])) { /* touches the block before */
			if (seq_lt(right[n - 1], k->seq + k->len))
				right[n - 1] = k->seq + k->len;
			continue;
		}
		left[n] = k->seq;
		right[n++] = k->seq + k->len;
	}
	if (e->held_conn == c)
		for (int b = 0; b < n; b++)
			if (seq_leq(left[b], e->held_seq) && seq_lt(e->held_seq, right[b]))
				lead = b;
	if (max > 4)
		max = 4;
	p[0] = 1;
	p[1] = 1;
	p[2] = 5;
	for (int b = -1; b < n && put < max; b++) {
		int k = b < 0 ? lead : b;

		if (k < 0 || (b >= 0 && b == lead))
			continue;
		put32(p + 4 + 8 * put, left[k]);
		put32(p + 8 + 8 * put, right[k]);
		put++;
	}
	p[3] = (uint8_t)(2 + 8 * put);
	o->optlen = (uint8_t)(o->optlen + 4 + 8 * put);
}

/* One segment of c: seq, flags, payload [off, off + len) of the queue. */
static void send_seg(struct tcp_engine *e, struct tcp_conn *c, uint32_t seq, uint8_t flags,
		     uint32_t off, uint32_t len)
{
	struct tcp_out o = {.t = c->t,
			    .seq = seq,
			    .ack = c->rcv_nxt,
			    .flags = flags | TCP_ACK,
			    .wnd = adv_window(e, c),
			    .conn = c,
			    .off = off,
			    .len = len};

	if (c->ts_ok)
		put_ts(&o, ts_clock(e), c->ts_recent);
	if (c->sack_ok && c->ooo && len == 0)
		put_sack(e, c, &o);
	c->last_ack_sent = c->rcv_nxt;
	c->ack_now = false;
	emit(e, &o);
}

static void send_ack(struct tcp_engine *e, struct tcp_conn *c)
{
	send_seg(e, c, c->snd_nxt, 0, 0, 0);
}

/* The SYN-ACK: MSS, and window scale and timestamps when the SYN had them. */
static void send_synack(struct tcp_engine *e, const struct tcp_tuple *t, uint32_t iss, uint32_t ack,
			bool ws, bool ts, bool sack, uint32_t tsval, uint32_t tsecr)
{
	struct tcp_out o = {.t = *t,
			    .seq = iss,
			    .ack = ack,
			    .flags = TCP_SYN | TCP_ACK,
			    .wnd = (uint16_t)min_u32(e->cfg.rcv_wnd, 65535)};
	uint8_t *p = o.opts;

	p[0] = 2;
	p[1] = 4;
	put16(p + 2, e->cfg.mss);
	o.optlen = 4;
	if (ws) {
		p = o.opts + o.optlen;
		p[0] = 1;
		p[1] = 3;
		p[2] = 3;
		p[3] = e->cfg.wscale;
		o.optlen += 4;
	}
	if (ts)
		put_ts(&o, tsval, tsecr);
	if (sack) {
		p = o.opts + o.optlen;
		p[0] = 1;
		p[1] = 1;
		p[2] = 4; /* SACK permitted */
		p[3] = 2;
		o.optlen += 4;
	}
	emit(e, &o);
}

/* A RST answering seg, which belongs to no connection (3.10.7.1). */
static void send_reset(struct tcp_engine *e, const struct tcp_seg *seg)
{
	struct tcp_out o = {.t = seg->t};

	if (seg->flags & TCP_RST)
		return;
	if (seg->flags & TCP_ACK) {
		o.seq = seg->ack;
		o.flags = TCP_RST;
	} else {
		o.seq = 0;
		o.ack = seg->seq + seg->len + !!(seg->flags & TCP_SYN) + !!(seg->flags & TCP_FIN);
		o.flags = TCP_RST | TCP_ACK;
	}
	emit(e, &o);
}

static void arm(struct tcp_engine *e, struct tcp_conn *c, uint64_t after_us)
{
	wheel_arm(&e->wheel, &c->timer, e->now_us + after_us);
}

static uint32_t flight(const struct tcp_conn *c)
{
	return c->snd_nxt - c->snd_una;
}

/* The sequence number of our FIN (valid once fin_queued). */
static uint32_t fin_seq(const struct tcp_conn *c)
{
	return c->snd_una + c->q_bytes;
}

/* Our FIN is acknowledged: nothing of ours is outstanding after it. */
static bool fin_acked(const struct tcp_conn *c)
{
	return c->fin_out && c->snd_una == c->snd_max;
}

/* Sends what window and congestion window allow, the FIN after the last
 * byte, and an owed ACK when nothing else carried it. */
static void conn_output(struct tcp_engine *e, struct tcp_conn *c)
{
	bool sent = false;

	if (c->state == TCP_S_CLOSED || c->state == TCP_S_SYN_RECEIVED)
		return;
	for (;;) {
		uint32_t wnd = min_u32(c->snd_wnd, c->cwnd), out = flight(c);
		uint32_t unsent = c->q_bytes > out ? c->q_bytes - out : 0, len;

		if (unsent == 0 || out >= wnd)
			break;
		len = min_u32(min_u32(unsent, c->snd_mss), wnd - out);
		if (len < c->snd_mss && len < unsent && out > 0)
			break; /* sender-side silly window avoidance (3.8.6.2.1) */
		send_seg(e, c, c->snd_nxt, len == unsent ? TCP_PSH : 0, out, len);
		if (!c->rtt_timing && c->snd_nxt == c->snd_max) {
			c->rtt_timing = true;
			c->rtt_seq = c->snd_nxt;
			c->rtt_start_us = e->now_us;
		}
		c->snd_nxt += len;
		if (seq_lt(c->snd_max, c->snd_nxt))
			c->snd_max = c->snd_nxt;
		sent = true;
	}
	if (c->fin_queued && c->snd_nxt == fin_seq(c) && !fin_acked(c)) {
		send_seg(e, c, c->snd_nxt, TCP_FIN, 0, 0);
		c->fin_out = true;
		c->snd_nxt++;
		if (seq_lt(c->snd_max, c->snd_nxt))
			c->snd_max = c->snd_nxt;
		sent = true;
	}
	if (flight(c) > 0) {
		if (sent && !wheel_armed(&c->timer))
			arm(e, c, c->rto_us);
	} else if (c->q_bytes > 0 && c->snd_wnd == 0 && !wheel_armed(&c->timer)) {
		arm(e, c, c->rto_us); /* the persist timer: a zero-window probe */
	}
	if (!sent && c->ack_now)
		send_ack(e, c);
}

/* Retransmits the first unacknowledged segment (or the FIN). */
static void retransmit_first(struct tcp_engine *e, struct tcp_conn *c)
{
	uint32_t len = min_u32(c->q_bytes, c->snd_mss);

	if (len > 0)
		send_seg(e, c, c->snd_una, len == c->q_bytes ? TCP_PSH : 0, 0, len);
	else if (c->fin_out && c->snd_una != c->snd_max)
		send_seg(e, c, c->snd_una, TCP_FIN, 0, 0);
	c->rexmit_hi = c->snd_una + len;
	c->rtt_timing = false; /* Karn: no sample from a retransmitted segment */
	e->st.retransmits++;
}

/* In recovery, with the peer's SACK blocks (RFC 6675's NextSeg, from the
 * blocks this ACK reports rather than a full scoreboard): the first byte
 * not sent again yet and not reported received, below the highest byte
 * reported received, starts a hole; up to an MSS of it is sent again.
 * False when there is no such hole (the ACK's room goes to new data). */
static bool sack_retransmit(struct tcp_engine *e, struct tcp_conn *c, const struct tcp_seg *seg)
{
	uint32_t next = seq_lt(c->snd_una, c->rexmit_hi) ? c->rexmit_hi : c->snd_una;
	uint32_t hi = c->snd_una, end, len;
	int b, moved = 1;

	for (b = 0; b < seg->nsack; b++) /* reports of what we never sent are ignored */
		if (seq_lt(c->snd_una, seg->sack_l[b]) && seq_lt(seg->sack_l[b], seg->sack_r[b]) &&
		    seq_leq(seg->sack_r[b], c->snd_max) && seq_lt(hi, seg->sack_r[b]))
			hi = seg->sack_r[b];
	while (moved) { /* past the blocks reported received */
		moved = 0;
		for (b = 0; b < seg->nsack; b++)
			if (seq_leq(seg->sack_l[b], next) && seq_lt(next, seg->sack_r[b])) {
				next = seg->sack_r[b];
				moved = 1;
			}
	}
	if (!seq_lt(next, hi) || next - c->snd_una >= c->q_bytes)
		return false;
	end = hi;
	for (b = 0; b < seg->nsack; b++)
		if (seq_lt(next, seg->sack_l[b]) && seq_lt(seg->sack_l[b], end))
			end = seg->sack_l[b];
	len = min_u32(min_u32(end - next, c->snd_mss), c->q_bytes - (next - c->snd_una));
	send_seg(e, c, next, 0, next - c->snd_una, len);
	c->rexmit_hi = next + len;
	c->rtt_timing = false;
	e->st.retransmits++;
	e->st.sack_retransmits++;
	return true;
}

/* ---- acknowledgements, RTT and congestion control ---- */

static void rtt_sample(struct tcp_engine *e, struct tcp_conn *c, uint32_t r)
{
	uint32_t rto;

	if (c->srtt_us == 0) { /* RFC 6298 2.2 */
		c->srtt_us = max_u32(r, 1);
		c->rttvar_us = r / 2;
	} else { /* 2.3 */
		uint32_t delta = c->srtt_us > r ? c->srtt_us - r : r - c->srtt_us;

		c->rttvar_us = (3 * c->rttvar_us + delta) / 4;
		c->srtt_us = (7 * c->srtt_us + r) / 8;
	}
	rto = c->srtt_us + max_u32(WHEEL_TICK_US, 4 * c->rttvar_us);
	c->rto_us = min_u32(max_u32(rto, e->cfg.rto_min_us), e->cfg.rto_max_us);
}

/* Drops acked bytes from the head of the queue, releasing whole chunks. */
static void sndq_drop(struct tcp_engine *e, struct tcp_conn *c, uint32_t bytes)
{
	c->q_bytes -= bytes;
	bytes += c->q_head_off;
	while (c->q_head != c->q_tail) {
		struct tcp_chunk *k = &c->q[c->q_head & c->q_mask];

		if (bytes < k->len)
			break;
		bytes -= k->len;
		if (e->cb.on_release)
			e->cb.on_release(e->cb.ctx, k->ref);
		c->q_head++;
	}
	c->q_head_off = bytes;
	queue_put(e, c);
}

/* RFC 3522 and 4015: the first ACK after a timeout echoes the timestamp of
 * the transmission it answers. Older than the retransmission: the original
 * arrived, the timeout was spurious (the ACK was late, not the data lost).
 * Then the RTO learns how late ACKs come (SRTT and RTTVAR at least the
 * sample and half of it), so the next flight does not time out as well, and
 * the congestion state goes back to what it was. */
static void eifel(struct tcp_engine *e, struct tcp_conn *c, uint32_t tsecr)
{
	uint32_t late_ms = ts_clock(e) - tsecr, rto;

	c->eifel = false;
	if (tsecr == 0 || (int32_t)(tsecr - c->eifel_ts) >= 0 || late_ms > 60000)
		return;
	e->st.spurious_timeouts++;
	c->srtt_us = max_u32(c->srtt_us, late_ms * 1000);
	c->rttvar_us = max_u32(c->rttvar_us, late_ms * 500);
	rto = c->srtt_us + max_u32(WHEEL_TICK_US, 4 * c->rttvar_us);
	c->rto_us = min_u32(max_u32(rto, e->cfg.rto_min_us), e->cfg.rto_max_us);
	c->cwnd = max_u32(c->cwnd, c->prior_cwnd);
	c->ssthresh = max_u32(c->ssthresh, c->prior_ssthresh);
	/* RFC 4015 step 5: resume with data not sent yet. What the timeout
	 * went back to send again is in flight, not lost. */
	if (seq_lt(c->snd_nxt, c->snd_max))
		c->snd_nxt = c->snd_max;
}

/* A segment acknowledging new data: snd_una < ack <= snd_max; tsecr its
 * echoed timestamp (0: none). */
static void new_ack(struct tcp_engine *e, struct tcp_conn *c, uint32_t ack, uint32_t tsecr)
{
	uint32_t acked = ack - c->snd_una, data = min_u32(acked, c->q_bytes);
	uint32_t mss = c->snd_mss;

	if (c->rtt_timing && seq_lt(c->rtt_seq, ack)) {
		rtt_sample(e, c, (uint32_t)(e->now_us - c->rtt_start_us));
		c->rtt_timing = false;
	}
	if (c->eifel)
		eifel(e, c, tsecr);
	sndq_drop(e, c, data);
	c->snd_una = ack;
	if (seq_lt(c->snd_nxt, ack))
		c->snd_nxt = ack;
	c->retries = 0;
	if (c->in_recovery) {
		if (seq_leq(c->recover, ack)) { /* RFC 6582 3.2 step 3: a full ACK */
			c->cwnd = min_u32(c->ssthresh, max_u32(flight(c), mss) + mss);
			c->in_recovery = false;
			c->dupacks = 0;
		} else { /* a partial ACK: the next hole (unless SACK recovery sent
			  * it again already), deflate by what was acked */
			if (!(c->sack_ok && seq_lt(c->snd_una, c->rexmit_hi)))
				retransmit_first(e, c);
			c->cwnd = c->cwnd > acked ? c->cwnd - acked + mss : mss;
			arm(e, c, c->rto_us);
		}
	} else {
		c->dupacks = 0;
		if (c->cwnd < c->ssthresh) /* slow start, RFC 5681 3.1 (ABC, L=2) */
			c->cwnd += min_u32(acked, 2 * mss);
		else /* congestion avoidance */
			c->cwnd += max_u32(1, mss * mss / c->cwnd);
	}
	if (flight(c) == 0)
		wheel_cancel(&c->timer);
	else if (!c->in_recovery)
		arm(e, c, c->rto_us); /* 6298 5.3 */
}

static void dup_ack(struct tcp_engine *e, struct tcp_conn *c, const struct tcp_seg *seg)
{
	uint32_t mss = c->snd_mss;

	if (c->in_recovery) {
		/* a segment left the network: its room goes to the next hole
		 * the peer's SACK blocks show, else to new data */
		if (!(c->sack_ok && sack_retransmit(e, c, seg)))
			c->cwnd += mss;
		return;
	}
	if (++c->dupacks != DUPACK_THRESHOLD)
		return;
	/* RFC 6582 3.2 step 2: not again for losses of the window that was
	 * out when recovery (or a timeout) began */
	if (c->recover_set && !seq_lt(c->recover, c->snd_una))
		return;
	c->ssthresh = max_u32(flight(c) / 2, 2 * mss);
	c->recover = c->snd_max;
	c->recover_set = true;
	c->in_recovery = true;
	retransmit_first(e, c);
	e->st.fast_retransmits++;
	c->cwnd = c->ssthresh + DUPACK_THRESHOLD * mss;
}

/* ---- input ---- */

static void established(struct tcp_engine *e, struct tcp_conn *c)
{
	if (c->state == TCP_S_SYN_RECEIVED)
		e->st.half_open--;
	c->state = TCP_S_ESTABLISHED;
	c->cwnd = min_u32(10 * c->snd_mss, max_u32(2 * c->snd_mss, 14600)); /* RFC 6928 */
	c->ssthresh = UINT32_MAX;
	c->retries = 0;
	wheel_cancel(&c->timer);
	e->st.accepted++;
	c->app = e->cb.on_accept ? e->cb.on_accept(e->cb.ctx, c) : NULL;
	if (c->app == NULL && e->cb.on_accept) {
		e->st.refused++;
		send_seg(e, c, c->snd_nxt, TCP_RST, 0, 0);
		conn_kill(e, c, TCP_CLOSED_ABORTED, false);
	}
}

static uint16_t peer_mss(const struct tcp_engine *e, const struct tcp_seg *seg)
{
	uint16_t mss = seg->has_mss ? seg->mss : 536; /* RFC 9293 3.7.1 */

	if (mss < 64)
		mss = 64;
	return mss < e->cfg.mss ? mss : e->cfg.mss;
}

static const uint16_t cookie_mss[8] = {536, 1200, 1360, 1440, 1460, 4312, 8960, 9000};

static uint32_t cookie_hash(const struct tcp_engine *e, const struct tcp_tuple *t,
			    uint32_t peer_isn, uint64_t period)
{
	return (uint32_t)siphash3(e->cfg.cookie_key, tuple_word(t),
				  (uint64_t)t->laddr << 32 | peer_isn, period);
}

/* A SYN when the half-open table is full: the state goes into our ISN
 * (hash 24 bits | period 5 bits | MSS index 3 bits) and the window scale
 * into the low 4 bits of our timestamp (RFC 4987 3.6). */
static void send_cookie(struct tcp_engine *e, const struct tcp_seg *seg)
{
	uint64_t period = e->now_us / COOKIE_PERIOD_US;
	uint16_t mss = peer_mss(e, seg);
	uint32_t idx = 0, iss, tsval;

	for (uint32_t i = 0; i < 8; i++)
		if (cookie_mss[i] <= mss)
			idx = i;
	iss = (cookie_hash(e, &seg->t, seg->seq, period) & 0xffffff00u) |
	      (uint32_t)(period & 31) << 3 | idx;
	tsval = (ts_clock(e) & ~0x1fu) | (seg->sack_ok ? 0x10u : 0) | (seg->has_ws ? seg->ws : 0xf);
	e->st.syn_cookies_sent++;
	/* without timestamps the scale cannot come back: offer none */
	send_synack(e, &seg->t, iss, seg->seq + 1, seg->has_ws && seg->has_ts, seg->has_ts,
		    seg->sack_ok && seg->has_ts, tsval, seg->tsval);
}

/* An ACK for no connection: a valid cookie makes it an established one. */
static struct tcp_conn *accept_cookie(struct tcp_engine *e, const struct tcp_seg *seg)
{
	uint32_t cookie = seg->ack - 1, peer_isn = seg->seq - 1;
	uint64_t now = e->now_us / COOKIE_PERIOD_US, period;
	struct tcp_conn *c;

	period = now - ((now - ((cookie >> 3) & 31)) & 31);
	if (now - period > 1 || period > now ||
	    ((cookie_hash(e, &seg->t, peer_isn, period) ^ cookie) & 0xffffff00u)) {
		e->st.syn_cookies_bad++;
		return NULL;
	}
	c = conn_new(e, &seg->t);
	if (c == NULL)
		return NULL;
	e->st.syn_cookies_ok++;
	c->iss = cookie;
	c->snd_una = c->snd_nxt = c->snd_max = cookie + 1;
	c->irs = peer_isn;
	c->rcv_nxt = seg->seq;
	c->snd_mss =
	    (uint16_t)(min_u32(cookie_mss[cookie & 7], e->cfg.mss) - (seg->has_ts ? 12 : 0));
	if (seg->has_ts && (seg->tsecr & 0xf) != 0xf) {
		c->snd_ws = (uint8_t)(seg->tsecr & 0xf);
		c->rcv_ws = e->cfg.wscale;
		c->ws_ok = true;
	}
	c->ts_ok = seg->has_ts;
	c->sack_ok = seg->has_ts && (seg->tsecr & 0x10);
	c->ts_recent = seg->tsval;
	c->snd_wnd = (uint32_t)seg->wnd << c->snd_ws;
	c->snd_wl1 = seg->seq;
	c->snd_wl2 = seg->ack;
	c->state = TCP_S_SYN_RECEIVED; /* established() counts it out */
	e->st.half_open++;
	established(e, c);
	return c->state == TCP_S_CLOSED ? NULL : c;
}

/* A SYN for no connection (LISTEN, 3.10.7.2). */
static void listen_syn(struct tcp_engine *e, const struct tcp_seg *seg)
{
	struct tcp_conn *c;

	if (e->st.half_open >= e->cfg.max_half_open || e->free_list == NULL) {
		send_cookie(e, seg);
		return;
	}
	c = conn_new(e, &seg->t);
	c->state = TCP_S_SYN_RECEIVED;
	e->st.half_open++;
	c->irs = seg->seq;
	c->rcv_nxt = seg->seq + 1;
	/* RFC 6528: a keyed hash of the tuple plus a 4 us clock */
	c->iss = (uint32_t)siphash3(e->cfg.cookie_key, tuple_word(&seg->t), seg->t.laddr, 0x15) +
		 (uint32_t)(e->now_us / 4);
	c->snd_una = c->iss;
	c->snd_nxt = c->snd_max = c->iss + 1;
	/* the MSS counts no options: timestamps take 12 bytes of every segment */
	c->snd_mss = (uint16_t)(peer_mss(e, seg) - (seg->has_ts ? 12 : 0));
	if (seg->has_ws) {
		c->snd_ws = seg->ws;
		c->rcv_ws = e->cfg.wscale;
		c->ws_ok = true;
	}
	c->ts_ok = seg->has_ts;
	c->sack_ok = seg->sack_ok;
	c->ts_recent = seg->tsval;
	c->rtt_start_us = e->now_us; /* the half-open entry's birth */
	c->snd_wnd = seg->wnd;	     /* a SYN's window is never scaled */
	c->snd_wl1 = seg->seq;
	send_synack(e, &c->t, c->iss, c->rcv_nxt, seg->has_ws, seg->has_ts, seg->sack_ok,
		    ts_clock(e), seg->tsval);
	c->last_ack_sent = c->rcv_nxt;
	arm(e, c, c->rto_us);
}

/* A segment for no connection. Returns the connection a valid SYN cookie
 * made, whose ACK the caller goes on to process (it may carry data). */
static struct tcp_conn *no_conn(struct tcp_engine *e, const struct tcp_seg *seg)
{
	struct tcp_conn *c;

	if (seg->flags & TCP_RST)
		return NULL;
	if (!listening(e, seg->t.lport)) {
		e->st.no_conn++;
		send_reset(e, seg);
		return NULL;
	}
	if ((seg->flags & (TCP_SYN | TCP_ACK)) == TCP_SYN) {
		listen_syn(e, seg);
		return NULL;
	}
	if ((seg->flags & (TCP_SYN | TCP_ACK)) == TCP_ACK) {
		c = accept_cookie(e, seg);
		if (c == NULL) {
			e->st.no_conn++;
			send_reset(e, seg);
		}
		return c;
	}
	return NULL; /* neither SYN nor ACK: dropped */
}

/* 3.10.7.4, first check: is the segment in the receive window? */
static bool acceptable(const struct tcp_engine *e, const struct tcp_conn *c,
		       const struct tcp_seg *seg)
{
	uint32_t wnd = (uint32_t)adv_window(e, c) << c->rcv_ws;
	uint32_t seglen = seg->len + !!(seg->flags & TCP_SYN) + !!(seg->flags & TCP_FIN);

	if (seglen == 0)
		return wnd == 0
			   ? seg->seq == c->rcv_nxt
			   : seq_leq(c->rcv_nxt, seg->seq) && seq_lt(seg->seq, c->rcv_nxt + wnd);
	if (wnd == 0)
		return false;
	return (seq_leq(c->rcv_nxt, seg->seq) && seq_lt(seg->seq, c->rcv_nxt + wnd)) ||
	       (seq_leq(c->rcv_nxt, seg->seq + seglen - 1) &&
		seq_lt(seg->seq + seglen - 1, c->rcv_nxt + wnd));
}

static void enter_time_wait(struct tcp_engine *e, struct tcp_conn *c)
{
	c->state = TCP_S_TIME_WAIT;
	if (e->cb.on_closed)
		e->cb.on_closed(e->cb.ctx, c, c->app, TCP_CLOSED_NORMAL);
	c->app = NULL;
	arm(e, c, e->cfg.time_wait_us);
}

void tcp_input(struct tcp_engine *e, const struct tcp_seg *seg, uint64_t now_us)
{
	struct tcp_conn *c;
	uint32_t seq = seg->seq, len = seg->len;
	const uint8_t *data = seg->data;

	e->now_us = now_us;
	e->st.segs_in++;
	e->st.bytes_in += seg->len;
	if (seg->flags & TCP_RST)
		e->st.resets_in++;
	c = tcp_lookup(e, &seg->t);
	if (c != NULL && c->state == TCP_S_TIME_WAIT && (seg->flags & TCP_SYN) &&
	    !(seg->flags & TCP_ACK) && seq_lt(c->rcv_nxt, seg->seq)) {
		conn_kill(e, c, TCP_CLOSED_NORMAL, false); /* a new incarnation */
		reap(e);
		c = NULL;
	}
	if (c == NULL && (c = no_conn(e, seg)) == NULL) {
		reap(e);
		return;
	}
	if (c->state == TCP_S_SYN_RECEIVED && (seg->flags & TCP_SYN) && !(seg->flags & TCP_ACK) &&
	    seg->seq == c->irs) {
		/* the peer retransmitted its SYN: our SYN-ACK was lost */
		send_synack(e, &c->t, c->iss, c->rcv_nxt, c->ws_ok, c->ts_ok, c->sack_ok,
			    ts_clock(e), c->ts_recent);
		return;
	}
	/* RFC 7323 5.3: PAWS */
	if (c->ts_ok && seg->has_ts && !(seg->flags & TCP_RST) &&
	    (int32_t)(seg->tsval - c->ts_recent) < 0) {
		e->st.paws_dropped++;
		send_ack(e, c);
		return;
	}
	if (!acceptable(e, c, seg)) {
		if (!(seg->flags & TCP_RST)) {
			if (len > 0 && seq_lt(c->rcv_nxt, seq))
				e->st.out_of_order++;
			send_ack(e, c);
		}
		return;
	}
	/* RFC 5961 3: a RST must match exactly; one merely in the window
	 * gets a challenge ACK */
	if (seg->flags & TCP_RST) {
		if (seq != c->rcv_nxt) {
			e->st.challenge_acks++;
			send_ack(e, c);
			return;
		}
		conn_kill(e, c, TCP_CLOSED_RESET, c->state != TCP_S_SYN_RECEIVED);
		reap(e);
		return;
	}
	/* RFC 5961 4: a SYN in a synchronized state gets a challenge ACK */
	if (seg->flags & TCP_SYN) {
		e->st.challenge_acks++;
		send_ack(e, c);
		return;
	}
	if (!(seg->flags & TCP_ACK))
		return;
	/* RFC 7323 4.3: remember the peer's timestamp */
	if (c->ts_ok && seg->has_ts && seq_leq(seq, c->last_ack_sent))
		c->ts_recent = seg->tsval;

	if (c->state == TCP_S_SYN_RECEIVED) {
		if (!(seq_lt(c->snd_una, seg->ack) && seq_leq(seg->ack, c->snd_max))) {
			send_reset(e, seg);
			return;
		}
		c->snd_una = seg->ack;
		c->snd_wnd = (uint32_t)seg->wnd << c->snd_ws;
		c->snd_wl1 = seq;
		c->snd_wl2 = seg->ack;
		established(e, c);
		if (c->state == TCP_S_CLOSED) {
			reap(e);
			return;
		}
	} else if (seq_lt(c->snd_max, seg->ack)) {
		send_ack(e, c); /* acknowledges something not yet sent */
		return;
	} else {
		uint32_t wnd = (uint32_t)seg->wnd << c->snd_ws;
		bool window_update = false;

		if (seq_lt(c->snd_una, seg->ack)) {
			new_ack(e, c, seg->ack, seg->has_ts ? seg->tsecr : 0);
		} else if (seg->ack == c->snd_una && len == 0 && !(seg->flags & TCP_FIN) &&
			   wnd == c->snd_wnd && flight(c) > 0) {
			dup_ack(e, c, seg);
		}
		/* 3.10.7.4: the send window, from the newest segment */
		if (seq_lt(c->snd_wl1, seq) ||
		    (c->snd_wl1 == seq && seq_leq(c->snd_wl2, seg->ack))) {
			window_update = wnd != c->snd_wnd;
			c->snd_wnd = wnd;
			c->snd_wl1 = seq;
			c->snd_wl2 = seg->ack;
		}
		if (flight(c) == 0)
			c->retries = 0; /* the peer answers: a shut window is probed forever */
		if (window_update && wnd > 0 && flight(c) == 0)
			wheel_cancel(&c->timer); /* the persist timer is no longer needed */
		if (fin_acked(c)) {
			if (c->state == TCP_S_FIN_WAIT_1) {
				c->state = TCP_S_FIN_WAIT_2;
				arm(e, c, e->cfg.time_wait_us); /* no orphan lives forever */
			} else if (c->state == TCP_S_CLOSING) {
				enter_time_wait(e, c);
			} else if (c->state == TCP_S_LAST_ACK) {
				conn_kill(e, c, TCP_CLOSED_NORMAL, true);
				reap(e);
				return;
			}
		}
		if (c->state == TCP_S_TIME_WAIT) {
			if (seg->flags & TCP_FIN) { /* the peer lost our ACK of its FIN */
				send_ack(e, c);
				arm(e, c, e->cfg.time_wait_us);
			}
			return;
		}
	}

	/* The data, in order; a segment beyond rcv_nxt is held (ooo_hold) or
	 * dropped, and answered at once with a duplicate ACK. */
	if (len > 0 || (seg->flags & TCP_FIN)) {
		if (seq_lt(c->rcv_nxt, seq)) {
			uint32_t wnd = (uint32_t)adv_window(e, c) << c->rcv_ws;
			bool takes = c->state == TCP_S_ESTABLISHED ||
				     c->state == TCP_S_FIN_WAIT_1 || c->state == TCP_S_FIN_WAIT_2;

			e->st.out_of_order++;
			if (takes && !(seg->flags & TCP_FIN) &&
			    ooo_hold(e, c, seq, data, min_u32(len, c->rcv_nxt + wnd - seq))) {
				e->held_conn = c;
				e->held_seq = seq;
			}
			send_ack(e, c);
			e->held_conn = NULL;
			return;
		}
		if (seq_lt(seq, c->rcv_nxt)) { /* the front was received already */
			uint32_t skip = min_u32(c->rcv_nxt - seq, len);
			data += skip;
			len -= skip;
			seq += skip;
		}
		if (len > 0) {
			uint32_t wnd = (uint32_t)adv_window(e, c) << c->rcv_ws;
			bool takes = c->state == TCP_S_ESTABLISHED ||
				     c->state == TCP_S_FIN_WAIT_1 || c->state == TCP_S_FIN_WAIT_2;

			if (len > wnd) {
				e->st.window_drops++;
				len = wnd;
			}
			if (takes) {
				c->rcv_nxt += len;
				c->ack_now = true; /* at once, also when a hole filled */
				mark_pending(e, c);
				if (e->cb.on_data)
					e->cb.on_data(e->cb.ctx, c, c->app, data, len);
				if (c->state != TCP_S_CLOSED && c->ooo)
					ooo_deliver(e, c);
				if (c->state == TCP_S_CLOSED) {
					reap(e);
					return;
				}
			}
			if (len < seg->len - (uint32_t)(data - seg->data))
				return; /* trimmed to the window: the FIN did not fit */
		}
		if ((seg->flags & TCP_FIN) && seq + len == c->rcv_nxt && !c->fin_rcvd) {
			c->fin_rcvd = true;
			c->rcv_nxt++;
			c->ack_now = true;
			mark_pending(e, c);
			switch (c->state) {
			case TCP_S_ESTABLISHED:
				c->state = TCP_S_CLOSE_WAIT;
				if (e->cb.on_peer_fin)
					e->cb.on_peer_fin(e->cb.ctx, c, c->app);
				break;
			case TCP_S_FIN_WAIT_1:
				if (fin_acked(c)) {
					send_ack(e, c);
					enter_time_wait(e, c);
				} else {
					c->state = TCP_S_CLOSING;
				}
				break;
			case TCP_S_FIN_WAIT_2:
				send_ack(e, c);
				enter_time_wait(e, c);
				break;
			default:
				break;
			}
		} else if ((seg->flags & TCP_FIN) && c->fin_rcvd) {
			c->ack_now = true; /* a retransmitted FIN */
			mark_pending(e, c);
		}
	}
	if (c->state != TCP_S_CLOSED && (c->dupacks || c->in_recovery || c->q_bytes))
		mark_pending(e, c); /* the window may have opened */
	reap(e);
}

void tcp_flush(struct tcp_engine *e, uint64_t now_us)
{
	e->now_us = now_us;
	while (e->pending) {
		struct tcp_conn *c = e->pending;

		e->pending = c->pnext;
		c->pending = false;
		if (c->state == TCP_S_CLOSED) {
			c->pnext = e->dead;
			e->dead = c;
			continue;
		}
		conn_output(e, c);
	}
	reap(e);
}

/* ---- timers ---- */

static void on_timer(void *arg, struct wheel_node *n)
{
	struct tcp_engine *e = arg;
	struct tcp_conn *c = (struct tcp_conn *)((char *)n - offsetof(struct tcp_conn, timer));

	switch (c->state) {
	case TCP_S_CLOSED:
		return;
	case TCP_S_SYN_RECEIVED:
		if (c->retries >= SYNACK_RETRIES ||
		    e->now_us - c->rtt_start_us >= e->cfg.syn_timeout_us) {
			e->st.half_open_dropped++;
			conn_kill(e, c, TCP_CLOSED_TIMEOUT, false);
			return;
		}
		c->retries++;
		c->rto_us = min_u32(c->rto_us * 2, e->cfg.rto_max_us);
		send_synack(e, &c->t, c->iss, c->rcv_nxt, c->ws_ok, c->ts_ok, c->sack_ok,
			    ts_clock(e), c->ts_recent);
		arm(e, c, c->rto_us);
		return;
	case TCP_S_TIME_WAIT:
		conn_kill(e, c, TCP_CLOSED_NORMAL, false);
		return;
	case TCP_S_FIN_WAIT_2:
		if (flight(c) == 0) { /* the peer never sent its FIN */
			conn_kill(e, c, TCP_CLOSED_TIMEOUT, true);
			return;
		}
		break;
	default:
		break;
	}
	if (++c->retries > e->cfg.max_retries) {
		e->st.timeouts++;
		send_seg(e, c, c->snd_nxt, TCP_RST, 0, 0);
		conn_kill(e, c, TCP_CLOSED_TIMEOUT, true);
		return;
	}
	c->rto_us = min_u32(c->rto_us * 2, e->cfg.rto_max_us); /* 6298 5.5 */
	if (flight(c) == 0) {
		/* The persist timer: probe a zero window with a segment the
		 * peer must answer (one already acknowledged byte's seq). */
		e->st.zero_window_probes++;
		send_seg(e, c, c->snd_una - 1, 0, 0, 0);
		if (c->snd_wnd == 0 && c->q_bytes > 0)
			arm(e, c, c->rto_us);
		return;
	}
	/* The retransmission timer (6298 5.4-5.7, RFC 5681 3.1 eq. 4) */
	if (c->retries == 1) {
		c->eifel = c->ts_ok;
		c->eifel_ts = ts_clock(e); /* the retransmission's TSval */
		c->prior_cwnd = c->cwnd;
		c->prior_ssthresh = c->ssthresh;
		c->ssthresh = max_u32(flight(c) / 2, 2 * c->snd_mss);
	}
	c->cwnd = c->snd_mss;
	c->in_recovery = false;
	c->dupacks = 0;
	c->recover = c->snd_max;
	c->recover_set = true;
	c->snd_nxt = c->snd_una; /* go back: send again from the first hole */
	c->rtt_timing = false;
	e->st.retransmits++;
	conn_output(e, c);
	if (!wheel_armed(&c->timer))
		arm(e, c, c->rto_us);
}

void tcp_timers(struct tcp_engine *e, uint64_t now_us)
{
	e->now_us = now_us;
	wheel_advance(&e->wheel, now_us, on_timer, e);
	reap(e);
	if (now_us - e->trim_us >= 1000000) {
		slabs_trim(e);
		e->trim_us = now_us;
	}
}

/* ---- the application's calls ---- */

int tcp_send(struct tcp_engine *e, struct tcp_conn *c, const uint8_t *data, uint32_t len, void *ref)
{
	struct tcp_chunk *k;

	if ((c->state != TCP_S_ESTABLISHED && c->state != TCP_S_CLOSE_WAIT) || c->fin_queued ||
	    c->q_tail - c->q_head > c->q_mask || len == 0 || queue_get(e, c) < 0)
		return -1;
	k = &c->q[c->q_tail++ & c->q_mask];
	k->data = data;
	k->len = len;
	k->ref = ref;
	c->q_bytes += len;
	mark_pending(e, c);
	return 0;
}

void tcp_pause_rx(struct tcp_engine *e, struct tcp_conn *c, bool paused)
{
	if (c->rx_closed == paused || c->state == TCP_S_CLOSED)
		return;
	c->rx_closed = paused;
	if (!paused) { /* tell the peer at once: it is waiting on a zero window */
		c->ack_now = true;
		mark_pending(e, c);
	}
}

uint32_t tcp_unacked(const struct tcp_conn *c)
{
	return c->q_bytes;
}

uint32_t tcp_sndq_free(const struct tcp_conn *c)
{
	return c->q_mask + 1 - (c->q_tail - c->q_head);
}

void tcp_close(struct tcp_engine *e, struct tcp_conn *c)
{
	if (c->fin_queued || c->state == TCP_S_CLOSED)
		return;
	if (c->state == TCP_S_ESTABLISHED)
		c->state = TCP_S_FIN_WAIT_1;
	else if (c->state == TCP_S_CLOSE_WAIT)
		c->state = TCP_S_LAST_ACK;
	else
		return;
	c->fin_queued = true;
	mark_pending(e, c);
}

void tcp_abort(struct tcp_engine *e, struct tcp_conn *c)
{
	if (c->state == TCP_S_CLOSED)
		return;
	send_seg(e, c, c->snd_nxt, TCP_RST, 0, 0);
	conn_kill(e, c, TCP_CLOSED_ABORTED, true);
}

const struct tcp_tuple *tcp_conn_tuple(const struct tcp_conn *c)
{
	return &c->t;
}

void *tcp_conn_app(const struct tcp_conn *c)
{
	return c->app;
}

enum tcp_state tcp_conn_state(const struct tcp_conn *c)
{
	return (enum tcp_state)c->state;
}

void tcp_conn_cc(const struct tcp_conn *c, struct tcp_cc_info *i)
{
	i->cwnd = c->cwnd;
	i->ssthresh = c->ssthresh;
	i->snd_wnd = c->snd_wnd;
	i->rto_us = c->rto_us;
	i->srtt_us = c->srtt_us;
	i->flight = flight(c);
	i->snd_nxt = c->snd_nxt;
	i->in_recovery = c->in_recovery;
}

void tcp_engine_stats(const struct tcp_engine *e, struct tcp_stats *s)
{
	*s = e->st;
}
