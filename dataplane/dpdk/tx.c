/* SPDX-License-Identifier: BSD-3-Clause */
/* The DPDK edge's transmit side: segments as mbufs (a header mbuf per
 * recipient chained to external-buffer mbufs pointing into shared frames,
 * or copies where a piece is short or the port cannot read it in place),
 * and bursts to the port. The TCP engine's output callback. */
#include "dpdk-internal.h"

/* ---- frames in the TCP send queue ---- */

void tx_ext_free(void *addr, void *opaque)
{
	frame_unref(opaque); /* the last mbuf pointing into the frame is gone */
}

/* ---- transmit ---- */

void tx_flush(struct dworker *w)
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

/* Fetches a spare mbuf's first line and the line its headers will be
 * written to, ahead of its turn: both are stored to at once, and a store
 * that misses stalls the segment. The data's place is the pool's layout
 * (the buffer follows the mbuf and its private area, rte_pktmbuf_init):
 * computed, not read from the mbuf, whose line is not here yet. */
static inline void prefetch_spare(const struct dworker *w, int i)
{
	if (i >= 0) {
		rte_prefetch0(w->spare[i]);
		rte_prefetch0((uint8_t *)w->spare[i] + w->mbuf_data_at);
	}
}

/* The spares, empty, refilled with a burst from the pool; false when the
 * pool cannot give one. Out of line: once in BURST packets. */
static __attribute__((noinline)) bool spares_refill(struct dworker *w)
{
	if (rte_mempool_get_bulk(w->d->pool, (void **)w->spare, BURST) != 0)
		return false;
	w->nspare = BURST;
	prefetch_spare(w, BURST - 2);
	return true;
}

/* A packet mbuf from the pool: BURST at a time into the worker's spares
 * (one trip to the mempool's cache instead of one per packet), one at a
 * time when the pool cannot give a burst. The spare two ahead is fetched
 * as one is taken. Inline: every segment sent takes one. */
static inline struct rte_mbuf *tx_mbuf(struct dworker *w)
{
	struct rte_mbuf *m;

	if (unlikely(w->nspare == 0) && !spares_refill(w))
		return rte_pktmbuf_alloc(w->d->pool);
	prefetch_spare(w, w->nspare - 3);
	/* A free mbuf of this (direct) pool already has one segment, no next
	 * and one reference (rte_mbuf_raw_free's contract): only the fields of
	 * its first line are set, as rte_pktmbuf_reset would. */
	m = w->spare[--w->nspare];
	m->data_off = (uint16_t)RTE_MIN((uint16_t)RTE_PKTMBUF_HEADROOM, m->buf_len);
	m->pkt_len = 0;
	m->data_len = 0;
	m->ol_flags = 0;
	m->packet_type = 0;
	m->vlan_tci = 0;
	m->vlan_tci_outer = 0;
	m->port = RTE_MBUF_PORT_INVALID;
	return m;
}

void tx_spares_free(struct dworker *w)
{
	if (w->nspare)
		rte_pktmbuf_free_bulk(w->spare, (unsigned)w->nspare);
	w->nspare = 0;
}

struct walk {
	struct dworker *w;
	struct rte_mbuf *head;
	uint64_t sum; /* the payload's, folded with the headers' at the end */
	uint32_t off;
	bool failed;
};

/* Copies len bytes to the end of the segment: into the last mbuf if it
 * holds its own data and has room, else into new ones chained after it. */
static bool append_copy(struct walk *k, const uint8_t *data, uint32_t len)
{
	/* one mbuf, the usual case: no walk to its end through next */
	struct rte_mbuf *last = k->head->nb_segs == 1 ? k->head : rte_pktmbuf_lastseg(k->head);

	while (len) {
		uint16_t n;

		if (RTE_MBUF_HAS_EXTBUF(last) || rte_pktmbuf_tailroom(last) == 0) {
			struct rte_mbuf *m = tx_mbuf(k->w);

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

/* Whether [data, data + len) is all of f as prepared (its header and
 * payload), whose sum was computed once at prepare. */
static inline bool whole_frame(struct frame *f, const uint8_t *data, uint32_t len)
{
	return data == frame_payload(f) - tx_frame_state(f)->hlen &&
	       len == tx_frame_state(f)->hlen + f->len;
}

/* Whether the port could read len bytes of f where they are, and they are
 * not short enough to copy anyway (add_piece's rule, below). */
static inline bool ref_possible(const struct dpdk_edge *d, const struct frame *f, uint32_t len)
{
	return len >= d->cfg.copy_below &&
	       (d->send_mode == ZERO_COPY_ALL || (d->send_mode == ZERO_COPY_POOLED && f->pooled));
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
	struct handshake *h = tx_ref_hs(ref);
	struct frame *f = h ? NULL : ref;
	rte_iova_t iova = RTE_BAD_IOVA;
	uint32_t sum;

	if (k->failed)
		return;
	if (!d->tx_csum) { /* else the NIC sums the payload */
		if (f && whole_frame(f, data, len))
			sum = tx_frame_state(f)->csum;
		else
			sum = csum_partial(data, len, 0);
		k->sum = csum_add_wide(k->sum, sum, k->off);
	}
	k->off += len;
	if (f && k->head->nb_segs + 1 < d->max_segs && ref_possible(d, f, len))
		iova = d->send_mode == ZERO_COPY_ALL
			   ? (rte_iova_t)(uintptr_t)data /* unused: the driver copies */
			   : framepool_iova(f, data);
	if (iova != RTE_BAD_IOVA) {
		struct rte_mbuf *m = rte_pktmbuf_alloc(d->ext_pool);
		struct rte_mbuf_ext_shared_info *si = &tx_frame_state(f)->shinfo;

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

/* The usual payload, on add_piece's copy path without its tests: one
 * whole frame (its sum computed once, at prepare), copied because it is
 * short or the port cannot read it in place, into the header mbuf's room.
 * False, having done nothing, for any other. */
static inline bool copy_whole_frame(struct walk *k, const struct tcp_out *o)
{
	const struct dpdk_edge *d = k->w->d;
	struct rte_mbuf *m = k->head;
	struct frame *f = o->piece_ref;

	if (f == NULL || tx_ref_hs(f) || rte_pktmbuf_tailroom(m) < o->len ||
	    ref_possible(d, f, o->len) || !whole_frame(f, o->piece_data, o->len))
		return false;
	if (!d->tx_csum)
		k->sum += tx_frame_state(f)->csum; /* at offset 0 */
	memcpy(rte_pktmbuf_mtod_offset(m, uint8_t *, m->data_len), o->piece_data, o->len);
	m->data_len = (uint16_t)(m->data_len + o->len);
	m->pkt_len += o->len;
	k->off += o->len;
	k->w->tx_copied += o->len;
	return true;
}

/* The TCP engine's output: one segment, as mbufs. */
void tx_segment(void *ctx, const struct tcp_out *o)
{
	struct dworker *w = ctx;
	const struct dconn *dc = o->app;
	uint8_t mac[6], req[60];
	uint32_t hsum;
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
	k.head = tx_mbuf(w);
	if (k.head == NULL) {
		w->no_mbuf++;
		return;
	}
	p = rte_pktmbuf_mtod(k.head, uint8_t *); /* a fresh mbuf: room for the headers */
	k.head->data_len = (uint16_t)hlen;
	k.head->pkt_len = (uint32_t)hlen;
	tcp_out_header(o, p + NET_ETH_HLEN + NET_IP_HLEN, &hsum);
	if (o->piece == o->len) { /* one piece or none: no walk */
		if (o->len && !copy_whole_frame(&k, o))
			add_piece(&k, o->piece_data, o->len, o->piece_ref);
	} else {
		tcp_out_walk(o, add_piece, &k);
	}
	if (k.failed) {
		w->no_mbuf++;
		rte_pktmbuf_free(k.head);
		return;
	}
	if (w->d->tx_csum) {
		net_tcp_checksum_offload(p + NET_ETH_HLEN + NET_IP_HLEN, o->t.laddr, o->t.raddr,
					 hlen - NET_ETH_HLEN - NET_IP_HLEN + o->len);
		k.head->tx_offload = 0; /* not set by tx_mbuf */
		k.head->l2_len = NET_ETH_HLEN;
		k.head->l3_len = NET_IP_HLEN;
		k.head->l4_len = (uint8_t)(hlen - NET_ETH_HLEN - NET_IP_HLEN);
		k.head->ol_flags |=
		    RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_TCP_CKSUM;
	} else {
		net_tcp_checksum_sums(p + NET_ETH_HLEN + NET_IP_HLEN,
				      hlen - NET_ETH_HLEN - NET_IP_HLEN, hsum, o->t.laddr,
				      o->t.raddr, k.sum, o->len);
	}
	net_ip_headers(&w->net, p, mac, o->t.raddr,
		       (uint16_t)(hlen - NET_ETH_HLEN - NET_IP_HLEN + o->len), w->ip_id++);
	tx_push(w, k.head);
}
