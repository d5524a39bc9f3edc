/* SPDX-License-Identifier: BSD-3-Clause */
/* The TCP engine's input: a segment's arrival (RFC 9293 3.10.7), the
 * listening side with SYN cookies, and established data in order. */
#include "tcp-internal.h"

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
	c->accepted = e->cb.on_accept == NULL || e->cb.on_accept(e->cb.ctx, c);
	if (!c->accepted) {
		e->st.refused++;
		tcp_send_seg(e, c, c->snd_nxt, TCP_RST, 0, 0);
		tcp_conn_kill(e, c, TCP_CLOSED_ABORTED, false);
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
	return (uint32_t)tcp_siphash3(e->cfg.cookie_key, tcp_tuple_word(t),
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
	tcp_send_synack(e, &seg->t, iss, seg->seq + 1, seg->has_ws && seg->has_ts, seg->has_ts,
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
	c = tcp_conn_new(e, &seg->t);
	if (c == NULL)
		return NULL;
	e->st.syn_cookies_ok++;
	c->snd_una = c->snd_nxt = c->snd_max = cookie + 1;
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
	c = tcp_conn_new(e, &seg->t);
	c->state = TCP_S_SYN_RECEIVED;
	e->st.half_open++;
	c->rcv_nxt = seg->seq + 1;
	/* the ISS (RFC 6528: a keyed hash of the tuple plus a 4 us clock);
	 * snd_una holds it in SYN-RECEIVED, the SYN-ACK's sequence number */
	c->snd_una =
	    (uint32_t)tcp_siphash3(e->cfg.cookie_key, tcp_tuple_word(&seg->t), seg->t.laddr, 0x15) +
	    (uint32_t)(e->now_us / 4);
	c->snd_nxt = c->snd_max = c->snd_una + 1;
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
	c->rtt_start_us = (uint32_t)e->now_us; /* the half-open entry's birth */
	c->snd_wnd = seg->wnd;		       /* a SYN's window is never scaled */
	c->snd_wl1 = seg->seq;
	tcp_send_synack(e, &c->t, c->snd_una, c->rcv_nxt, seg->has_ws, seg->has_ts, seg->sack_ok,
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
	if (!tcp_listening(e, seg->t.lport)) {
		e->st.no_conn++;
		tcp_send_reset(e, seg);
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
			tcp_send_reset(e, seg);
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
		e->cb.on_closed(e->cb.ctx, c, conn_app(e, c), TCP_CLOSED_NORMAL);
	c->accepted = false;
	arm(e, c, e->cfg.time_wait_us);
}

/* Over 80 lines on purpose: RFC 9293 3.10.7's segment arrival steps, in
 * the RFC's order, so each can be checked against the text. */
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
		tcp_conn_kill(e, c, TCP_CLOSED_NORMAL, false); /* a new incarnation */
		tcp_reap(e);
		c = NULL;
	}
	if (c == NULL && (c = no_conn(e, seg)) == NULL) {
		tcp_reap(e);
		return;
	}
	if (c->state == TCP_S_SYN_RECEIVED && (seg->flags & TCP_SYN) && !(seg->flags & TCP_ACK) &&
	    seg->seq == c->rcv_nxt - 1) { /* its ISN: nothing is received before ESTABLISHED */
		/* the peer retransmitted its SYN: our SYN-ACK was lost */
		tcp_send_synack(e, &c->t, c->snd_una, c->rcv_nxt, c->ws_ok, c->ts_ok, c->sack_ok,
				ts_clock(e), c->ts_recent);
		return;
	}
	/* RFC 7323 5.3: PAWS */
	if (c->ts_ok && seg->has_ts && !(seg->flags & TCP_RST) &&
	    (int32_t)(seg->tsval - c->ts_recent) < 0) {
		e->st.paws_dropped++;
		tcp_send_ack(e, c);
		return;
	}
	if (!acceptable(e, c, seg)) {
		if (!(seg->flags & TCP_RST)) {
			if (len > 0 && seq_lt(c->rcv_nxt, seq))
				e->st.out_of_order++;
			tcp_send_ack(e, c);
		}
		return;
	}
	/* RFC 5961 3: a RST must match exactly; one merely in the window
	 * gets a challenge ACK */
	if (seg->flags & TCP_RST) {
		if (seq != c->rcv_nxt) {
			e->st.challenge_acks++;
			tcp_send_ack(e, c);
			return;
		}
		tcp_conn_kill(e, c, TCP_CLOSED_RESET, c->state != TCP_S_SYN_RECEIVED);
		tcp_reap(e);
		return;
	}
	/* RFC 5961 4: a SYN in a synchronized state gets a challenge ACK */
	if (seg->flags & TCP_SYN) {
		e->st.challenge_acks++;
		tcp_send_ack(e, c);
		return;
	}
	if (!(seg->flags & TCP_ACK))
		return;
	/* RFC 7323 4.3: remember the peer's timestamp */
	if (c->ts_ok && seg->has_ts && seq_leq(seq, c->last_ack_sent))
		c->ts_recent = seg->tsval;

	if (c->state == TCP_S_SYN_RECEIVED) {
		if (!(seq_lt(c->snd_una, seg->ack) && seq_leq(seg->ack, c->snd_max))) {
			tcp_send_reset(e, seg);
			return;
		}
		c->snd_una = seg->ack;
		c->snd_wnd = (uint32_t)seg->wnd << c->snd_ws;
		c->snd_wl1 = seq;
		c->snd_wl2 = seg->ack;
		established(e, c);
		if (c->state == TCP_S_CLOSED) {
			tcp_reap(e);
			return;
		}
	} else if (seq_lt(c->snd_max, seg->ack)) {
		tcp_send_ack(e, c); /* acknowledges something not yet sent */
		return;
	} else {
		uint32_t wnd = (uint32_t)seg->wnd << c->snd_ws;
		bool window_update = false;

		if (seq_lt(c->snd_una, seg->ack)) {
			tcp_new_ack(e, c, seg->ack, seg->has_ts ? seg->tsecr : 0);
		} else if (seg->ack == c->snd_una && len == 0 && !(seg->flags & TCP_FIN) &&
			   wnd == c->snd_wnd && flight(c) > 0) {
			tcp_dup_ack(e, c, seg);
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
				tcp_conn_kill(e, c, TCP_CLOSED_NORMAL, true);
				tcp_reap(e);
				return;
			}
		}
		if (c->state == TCP_S_TIME_WAIT) {
			if (seg->flags & TCP_FIN) { /* the peer lost our ACK of its FIN */
				tcp_send_ack(e, c);
				arm(e, c, e->cfg.time_wait_us);
			}
			return;
		}
	}

	/* What the ACK opened is sent at the flush, whatever the data below
	 * does (a held segment or a trimmed FIN returns early). */
	if (c->dupacks || c->in_recovery || c->q_bytes)
		tcp_mark_pending(e, c);

	/* The data, in order; a segment beyond rcv_nxt is held (ooo_hold) or
	 * dropped, and answered at once with a duplicate ACK. */
	if (len > 0 || (seg->flags & TCP_FIN)) {
		if (seq_lt(c->rcv_nxt, seq)) {
			uint32_t wnd = (uint32_t)adv_window(e, c) << c->rcv_ws;
			bool takes = c->state == TCP_S_ESTABLISHED ||
				     c->state == TCP_S_FIN_WAIT_1 || c->state == TCP_S_FIN_WAIT_2;

			e->st.out_of_order++;
			if (takes && !(seg->flags & TCP_FIN) &&
			    tcp_ooo_hold(e, c, seq, data, min_u32(len, c->rcv_nxt + wnd - seq))) {
				e->held_conn = c;
				e->held_seq = seq;
			}
			tcp_send_ack(e, c);
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
				tcp_mark_pending(e, c);
				if (e->cb.on_data)
					e->cb.on_data(e->cb.ctx, c, conn_app(e, c), data, len);
				if (c->state != TCP_S_CLOSED && c->ooo)
					tcp_ooo_deliver(e, c);
				if (c->state == TCP_S_CLOSED) {
					tcp_reap(e);
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
			tcp_mark_pending(e, c);
			switch (c->state) {
			case TCP_S_ESTABLISHED:
				c->state = TCP_S_CLOSE_WAIT;
				if (e->cb.on_peer_fin)
					e->cb.on_peer_fin(e->cb.ctx, c, conn_app(e, c));
				break;
			case TCP_S_FIN_WAIT_1:
				if (fin_acked(c)) {
					tcp_send_ack(e, c);
					enter_time_wait(e, c);
				} else {
					c->state = TCP_S_CLOSING;
				}
				break;
			case TCP_S_FIN_WAIT_2:
				tcp_send_ack(e, c);
				enter_time_wait(e, c);
				break;
			default:
				break;
			}
		} else if ((seg->flags & TCP_FIN) && c->fin_rcvd) {
			c->ack_now = true; /* a retransmitted FIN */
			tcp_mark_pending(e, c);
		}
	}
	tcp_reap(e);
}

/* The send path's part of c (its first 128 bytes, at most three lines). */
static void prefetch_conn(const struct tcp_conn *c)
{
	__builtin_prefetch(c, 1);
	__builtin_prefetch((const char *)c + 64, 1);
	__builtin_prefetch((const char *)c + 127, 1);
}

/* While c is sent, the next connection's queue entries and application state
 * (its state is already on its way) and the one after's state are fetched:
 * with many connections they are not in cache, and each would stall the
 * segment that needs it (docs/benchmarks.md). */
static void prefetch_ahead(const struct tcp_engine *e, const struct tcp_conn *c)
{
	const struct tcp_conn *next = c->pnext;
	const void *app;

	if (next == NULL)
		return;
	if (next->pnext)
		prefetch_conn(next->pnext);
	if (next->q) { /* its segment's walk: from where the last one began to the newest chunk */
		__builtin_prefetch(&next->q[(next->q_head + next->walk_rel) & next->q_mask]);
		__builtin_prefetch(&next->q[(next->q_tail - 1) & next->q_mask]);
	}
	if ((app = conn_app(e, next)) != NULL)
		__builtin_prefetch(app);
}

void tcp_flush(struct tcp_engine *e, uint64_t now_us)
{
	e->now_us = now_us;
	if (e->pending)
		prefetch_conn(e->pending);
	while (e->pending) {
		struct tcp_conn *c = e->pending;

		prefetch_ahead(e, c);
		e->pending = c->pnext;
		c->pending = false;
		if (c->state == TCP_S_CLOSED) {
			c->pnext = e->dead;
			e->dead = c;
			continue;
		}
		tcp_conn_output(e, c);
	}
	tcp_reap(e);
}
