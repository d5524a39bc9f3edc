/* SPDX-License-Identifier: BSD-3-Clause */
/* The TCP engine of the DPDK edge (see tcp.h): passive open, in-order
 * delivery with out-of-order segments held and reported (SACK), zero-copy
 * send with retransmission, NewReno and SACK-assisted recovery, SYN cookies,
 * one timer per connection on the lcore's wheel. Section numbers are RFC 9293's
 * unless another RFC is named.
 *
 * This file holds the engine's memory: the connection table, send queues in
 * slabs, the held out-of-order segments, and connections' end; the rest is
 * in tcp_wire.c, tcp_output.c, tcp_input.c and tcp_timers.c. */
#include "tcp-internal.h"

/* ---- the engine ---- */

size_t tcp_conn_bytes(const struct tcp_config *cfg)
{
	/* the connection and its share of the hash table: a bucket pointer per
	 * connection (the table is max_conns rounded up to a power of two; at
	 * most one connection per bucket on average, the chains short) */
	return sizeof(struct tcp_conn) + sizeof(struct tcp_conn *);
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
	while (buckets < cfg->max_conns)
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

bool tcp_listening(const struct tcp_engine *e, uint16_t lport)
{
	for (int i = 0; i < e->nports; i++)
		if (e->ports[i] == lport)
			return true;
	return false;
}

static uint32_t tuple_hash(const struct tcp_engine *e, const struct tcp_tuple *t)
{
	uint64_t h = tcp_tuple_word(t) ^ ((uint64_t)t->laddr << 17) ^ e->cfg.cookie_key[1];

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

struct tcp_conn *tcp_conn_new(struct tcp_engine *e, const struct tcp_tuple *t)
{
	struct tcp_conn *c = e->free_list;
	uint32_t b;

	if (c == NULL)
		return NULL;
	e->free_list = c->pnext;
	memset(c, 0, sizeof(*c));
	c->q_mask = (uint16_t)(e->cfg.sndq_chunks - 1);
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
int tcp_queue_get(struct tcp_engine *e, struct tcp_conn *c)
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
	c->walk_rel = 0; /* everything sent was acknowledged: new data starts at snd_una */
	c->walk_seq = c->snd_una;
	return 0;
}

/* An empty send queue goes back to its slab (slabs_trim frees slabs). */
void tcp_queue_put(struct tcp_engine *e, struct tcp_conn *c)
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
void tcp_slabs_trim(struct tcp_engine *e)
{
	uint64_t keep = (uint64_t)e->qpeak + QSLAB;

	for (uint32_t i = e->nslabs; i-- > 0 && (uint64_t)e->nslabs * QSLAB > keep;)
		if (e->slabs[i]->used == 0)
			slab_free(e, i);
	e->qpeak = e->qused;
}

struct ooo_seg *tcp_ooo_at(struct tcp_engine *e, uint16_t i)
{
	return &e->ooo[i - 1];
}

static void ooo_put(struct tcp_engine *e, uint16_t i)
{
	tcp_ooo_at(e, i)->next = e->ooo_free;
	e->ooo_free = i;
}

/* Gives back every segment c holds. */
static void ooo_clear(struct tcp_engine *e, struct tcp_conn *c)
{
	while (c->ooo) {
		uint16_t i = c->ooo;

		c->ooo = tcp_ooo_at(e, i)->next;
		ooo_put(e, i);
	}
	c->n_ooo = 0;
}

/* Holds a segment that arrived ahead of a hole (seq beyond rcv_nxt, within
 * the window). False when it cannot be held: it is dropped. */
bool tcp_ooo_hold(struct tcp_engine *e, struct tcp_conn *c, uint32_t seq, const uint8_t *data,
		  uint32_t len)
{
	uint16_t i, *pp = &c->ooo;
	struct ooo_seg *k;

	if (len == 0 || len > OOO_DATA || c->n_ooo == OOO_PER_CONN || e->ooo == NULL)
		return false;
	while (*pp && seq_lt(tcp_ooo_at(e, *pp)->seq, seq))
		pp = &tcp_ooo_at(e, *pp)->next;
	if (*pp && tcp_ooo_at(e, *pp)->seq == seq && tcp_ooo_at(e, *pp)->len >= len)
		return true; /* a duplicate of one held */
	if (e->ooo_free) {
		i = e->ooo_free;
		e->ooo_free = tcp_ooo_at(e, i)->next;
	} else if (e->ooo_fresh < e->cfg.ooo_segs) {
		i = ++e->ooo_fresh;
	} else {
		return false;
	}
	k = tcp_ooo_at(e, i);
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
void tcp_ooo_deliver(struct tcp_engine *e, struct tcp_conn *c)
{
	while (c->ooo && seq_leq(tcp_ooo_at(e, c->ooo)->seq, c->rcv_nxt)) {
		uint16_t i = c->ooo;
		struct ooo_seg *k = tcp_ooo_at(e, i);
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
				e->cb.on_data(e->cb.ctx, c, conn_app(e, c), k->data + skip, n);
		}
		ooo_put(e, i);
		if (c->state == TCP_S_CLOSED)
			return;
	}
}

/* Unhashes c, releases its chunks and puts it on the dead list: it is freed
 * when the current call into the engine returns, so that callers up the
 * stack may still look at it (its state is CLOSED). */
void tcp_conn_kill(struct tcp_engine *e, struct tcp_conn *c, enum tcp_close_reason why, bool notify)
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
	tcp_queue_put(e, c);
	if (notify && e->cb.on_closed)
		e->cb.on_closed(e->cb.ctx, c, conn_app(e, c), why);
	c->accepted = false;
	if (!c->pending) {
		c->pnext = e->dead;
		e->dead = c;
	}
	/* A pending connection is freed by the flush that skips it. */
}

void tcp_reap(struct tcp_engine *e)
{
	while (e->dead) {
		struct tcp_conn *c = e->dead;

		e->dead = c->pnext;
		c->pnext = e->free_list;
		e->free_list = c;
		e->st.conns--;
	}
}

void tcp_mark_pending(struct tcp_engine *e, struct tcp_conn *c)
{
	if (!c->pending && c->state != TCP_S_CLOSED) {
		c->pending = true;
		c->pnext = e->pending;
		e->pending = c;
	}
}
