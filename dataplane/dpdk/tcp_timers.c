/* SPDX-License-Identifier: BSD-3-Clause */
/* The TCP engine's timers (retransmission, SYN-ACK, TIME-WAIT, keeping the
 * slabs trimmed) and the calls of the application that drives it. */
#include "tcp-internal.h"

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
		    (uint32_t)e->now_us - c->rtt_start_us >= e->cfg.syn_timeout_us) {
			e->st.half_open_dropped++;
			tcp_conn_kill(e, c, TCP_CLOSED_TIMEOUT, false);
			return;
		}
		c->retries++;
		c->rto_us = min_u32(c->rto_us * 2, e->cfg.rto_max_us);
		tcp_send_synack(e, &c->t, c->snd_una, c->rcv_nxt, c->ws_ok, c->ts_ok, c->sack_ok,
				ts_clock(e), c->ts_recent);
		arm(e, c, c->rto_us);
		return;
	case TCP_S_TIME_WAIT:
		tcp_conn_kill(e, c, TCP_CLOSED_NORMAL, false);
		return;
	case TCP_S_FIN_WAIT_2:
		if (flight(c) == 0) { /* the peer never sent its FIN */
			tcp_conn_kill(e, c, TCP_CLOSED_TIMEOUT, true);
			return;
		}
		break;
	default:
		break;
	}
	if (++c->retries > e->cfg.max_retries) {
		e->st.timeouts++;
		tcp_send_seg(e, c, c->snd_nxt, TCP_RST, 0, 0);
		tcp_conn_kill(e, c, TCP_CLOSED_TIMEOUT, true);
		return;
	}
	c->rto_us = min_u32(c->rto_us * 2, e->cfg.rto_max_us); /* 6298 5.5 */
	if (flight(c) == 0) {
		/* The persist timer: probe a zero window with a segment the
		 * peer must answer (one already acknowledged byte's seq). */
		e->st.zero_window_probes++;
		tcp_send_seg(e, c, c->snd_una - 1, 0, 0, 0);
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
	tcp_conn_output(e, c);
	if (!wheel_armed(&c->timer))
		arm(e, c, c->rto_us);
}

void tcp_timers(struct tcp_engine *e, uint64_t now_us)
{
	e->now_us = now_us;
	wheel_advance(&e->wheel, now_us, on_timer, e);
	tcp_reap(e);
	if (now_us - e->trim_us >= 1000000) {
		tcp_slabs_trim(e);
		e->trim_us = now_us;
	}
}

/* ---- the application's calls ---- */

void tcp_prefetch(const struct tcp_conn *c)
{
	__builtin_prefetch(c, 1);
	__builtin_prefetch((const char *)c + 63, 1);
}

int tcp_send(struct tcp_engine *e, struct tcp_conn *c, const uint8_t *data, uint32_t len, void *ref)
{
	struct tcp_chunk *k;

	if ((c->state != TCP_S_ESTABLISHED && c->state != TCP_S_CLOSE_WAIT) || c->fin_queued ||
	    c->q_tail - c->q_head > c->q_mask || len == 0 || tcp_queue_get(e, c) < 0)
		return -1;
	k = &c->q[c->q_tail++ & c->q_mask];
	k->data = data;
	k->len = len;
	k->ref = ref;
	c->q_bytes += len;
	tcp_mark_pending(e, c);
	return 0;
}

void tcp_pause_rx(struct tcp_engine *e, struct tcp_conn *c, bool paused)
{
	if (c->rx_closed == paused || c->state == TCP_S_CLOSED)
		return;
	c->rx_closed = paused;
	if (!paused) { /* tell the peer at once: it is waiting on a zero window */
		c->ack_now = true;
		tcp_mark_pending(e, c);
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
	tcp_mark_pending(e, c);
}

void tcp_abort(struct tcp_engine *e, struct tcp_conn *c)
{
	if (c->state == TCP_S_CLOSED)
		return;
	tcp_send_seg(e, c, c->snd_nxt, TCP_RST, 0, 0);
	tcp_conn_kill(e, c, TCP_CLOSED_ABORTED, true);
}

const struct tcp_tuple *tcp_conn_tuple(const struct tcp_conn *c)
{
	return &c->t;
}

uint32_t tcp_conn_index(const struct tcp_engine *e, const struct tcp_conn *c)
{
	return (uint32_t)(c - e->conns);
}

struct tcp_conn *tcp_conn_at(struct tcp_engine *e, uint32_t i)
{
	return &e->conns[i];
}

size_t tcp_conn_size(void)
{
	return sizeof(struct tcp_conn);
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
