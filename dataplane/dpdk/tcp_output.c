/* SPDX-License-Identifier: BSD-3-Clause */
/* The TCP engine's output: segments, ACKs with SACK blocks, the SYN-ACK and
 * resets; what the windows allow; retransmission; RTT samples, NewReno and
 * spurious-timeout detection as ACKs arrive. */
#include "tcp-internal.h"

/* ---- output ---- */

static inline void put_ts(struct tcp_out *o, uint32_t tsval, uint32_t tsecr)
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

	for (uint16_t i = c->ooo; i; i = tcp_ooo_at(e, i)->next) {
		const struct ooo_seg *k = tcp_ooo_at(e, i);

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

/* The queue chunk holding the byte off bytes past snd_una, and how far
 * into it: walked from the chunk the last segment began in (or the one
 * after, when it ended with its chunk: tcp_send_seg) when the byte is not
 * before it (new data, in order), else from the head (a retransmission);
 * remembered for the next segment. */
static void seg_start(struct tcp_conn *c, uint32_t off, uint32_t *first, uint32_t *skip)
{
	uint32_t target = c->snd_una + off, i = c->q_head, seq = c->snd_una - c->q_head_off;

	if (seq_leq(c->walk_seq, target)) {
		i += c->walk_rel;
		seq = c->walk_seq;
	}
	for (; i != c->q_tail && target - seq >= c->q[i & c->q_mask].len; i++)
		seq += c->q[i & c->q_mask].len;
	if (i != c->q_tail) {
		c->walk_rel = (uint16_t)(i - c->q_head);
		c->walk_seq = seq;
	}
	*first = i;
	*skip = target - seq;
}

/* One segment of c: seq, flags, payload [off, off + len) of the queue.
 * Every field is set one by one, the options only as far as optlen: an
 * initializer would zero the whole of o first (a `rep stos` of 100-odd bytes,
 * a fifth of this function's time per segment sent). */
void tcp_send_seg(struct tcp_engine *e, struct tcp_conn *c, uint32_t seq, uint8_t flags,
		  uint32_t off, uint32_t len)
{
	struct tcp_out o;

	o.t = c->t;
	o.seq = seq;
	o.ack = c->rcv_nxt;
	o.flags = flags | TCP_ACK;
	o.wnd = adv_window(e, c);
	o.optlen = 0;
	o.conn = c;
	o.app = conn_app(e, c);
	o.first = o.skip = 0;
	o.len = len;
	o.piece = 0;
	if (len > 0) {
		const struct tcp_chunk *k;

		seg_start(c, off, &o.first, &o.skip);
		k = &c->q[o.first & c->q_mask]; /* just read by seg_start */
		o.piece_data = k->data + o.skip;
		o.piece = min_u32(k->len - o.skip, len);
		o.piece_ref = k->ref;
		if (o.skip + len == k->len) { /* it ends with its chunk: the next begins the next */
			c->walk_rel = (uint16_t)(o.first + 1 - c->q_head);
			c->walk_seq = c->snd_una + off + len; /* as seg_start counts */
		}
	}
	if (c->ts_ok)
		put_ts(&o, ts_clock(e), c->ts_recent);
	if (c->sack_ok && c->ooo && len == 0)
		put_sack(e, c, &o);
	c->last_ack_sent = c->rcv_nxt;
	c->ack_now = false;
	emit(e, &o);
}

void tcp_send_ack(struct tcp_engine *e, struct tcp_conn *c)
{
	tcp_send_seg(e, c, c->snd_nxt, 0, 0, 0);
}

/* The SYN-ACK: MSS, and window scale and timestamps when the SYN had them. */
void tcp_send_synack(struct tcp_engine *e, const struct tcp_tuple *t, uint32_t iss, uint32_t ack,
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
void tcp_send_reset(struct tcp_engine *e, const struct tcp_seg *seg)
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

/* Sends what window and congestion window allow, the FIN after the last
 * byte, and an owed ACK when nothing else carried it. */
void tcp_conn_output(struct tcp_engine *e, struct tcp_conn *c)
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
		tcp_send_seg(e, c, c->snd_nxt, len == unsent ? TCP_PSH : 0, out, len);
		if (!c->rtt_timing && c->snd_nxt == c->snd_max) {
			c->rtt_timing = true;
			c->rtt_seq = c->snd_nxt;
			c->rtt_start_us = (uint32_t)e->now_us;
		}
		c->snd_nxt += len;
		if (seq_lt(c->snd_max, c->snd_nxt))
			c->snd_max = c->snd_nxt;
		sent = true;
	}
	if (c->fin_queued && c->snd_nxt == fin_seq(c) && !fin_acked(c)) {
		tcp_send_seg(e, c, c->snd_nxt, TCP_FIN, 0, 0);
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
		tcp_send_ack(e, c);
}

/* Retransmits the first unacknowledged segment (or the FIN). */
static void retransmit_first(struct tcp_engine *e, struct tcp_conn *c)
{
	uint32_t len = min_u32(c->q_bytes, c->snd_mss);

	if (len > 0)
		tcp_send_seg(e, c, c->snd_una, len == c->q_bytes ? TCP_PSH : 0, 0, len);
	else if (c->fin_out && c->snd_una != c->snd_max)
		tcp_send_seg(e, c, c->snd_una, TCP_FIN, 0, 0);
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
	tcp_send_seg(e, c, next, 0, next - c->snd_una, len);
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
	uint32_t start = c->snd_una - c->q_head_off, n = 0; /* the head chunk's first byte */

	c->q_bytes -= bytes;
	bytes += c->q_head_off;
	while (c->q_head != c->q_tail) {
		struct tcp_chunk *k = &c->q[c->q_head & c->q_mask];

		if (bytes < k->len)
			break;
		bytes -= k->len;
		start += k->len;
		n++;
		if (e->cb.on_release)
			e->cb.on_release(e->cb.ctx, k->ref);
		c->q_head++;
	}
	c->q_head_off = bytes;
	if (c->walk_rel >= n) { /* the walk's chunk stays: it is nearer the head */
		c->walk_rel = (uint16_t)(c->walk_rel - n);
	} else {
		c->walk_rel = 0;
		c->walk_seq = start;
	}
	tcp_queue_put(e, c);
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
void tcp_new_ack(struct tcp_engine *e, struct tcp_conn *c, uint32_t ack, uint32_t tsecr)
{
	uint32_t acked = ack - c->snd_una, data = min_u32(acked, c->q_bytes);
	uint32_t mss = c->snd_mss;

	if (c->rtt_timing && seq_lt(c->rtt_seq, ack)) {
		rtt_sample(e, c, (uint32_t)e->now_us - c->rtt_start_us);
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

void tcp_dup_ack(struct tcp_engine *e, struct tcp_conn *c, const struct tcp_seg *seg)
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
