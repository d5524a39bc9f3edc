/* SPDX-License-Identifier: BSD-3-Clause */
/* The worker lcore's loop: read the port until its ring is empty, hand
 * each packet to net.c and TCP, drain the worker's inbox, move frames to
 * TCP, send, and only then run the timers. */
#include "dpdk-internal.h"

/* ---- the lcore loop ---- */

static void rx_one(struct dworker *w, struct rte_mbuf *m)
{
	struct net_rx_info info;
	struct tcp_seg seg;
	uint8_t *p = rte_pktmbuf_mtod(m, uint8_t *);

	w->rx_packets++;
	if (m->nb_segs != 1) { /* jumbo frames arrive chained: not supported */
		w->rx_dropped++;
		rte_pktmbuf_free(m);
		return;
	}
	if (w->d->rx_csum) /* good by the NIC; anything else is checked here */
		w->net.rx_csum_checked =
		    (m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_GOOD &&
		    (m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_GOOD;
	switch (net_rx(&w->net, p, m->data_len, w->now_us, &info)) {
	case NET_REPLY: /* ARP or ICMP, its checksums computed */
		m->ol_flags = 0;
		m->data_len = (uint16_t)info.reply_len;
		m->pkt_len = info.reply_len;
		tx_push(w, m);
		return;
	case NET_TCP:
		if (tcp_parse(info.tcp, info.tcp_len, info.saddr, info.daddr, &seg) == 0) {
			w->src_mac = p + 6;
			tcp_input(w->tcp, &seg, w->now_us);
			w->src_mac = NULL;
		} else {
			w->rx_dropped++;
		}
		break;
	case NET_DROP:
		break;
	}
	rte_pktmbuf_free(m);
}

/* Once a second: the share of the last window spent in turns with work. */
static void lcore_load_update(struct dworker *w)
{
	uint64_t now = now_us(), span = now - w->window_start_us;

	if (span == 0)
		return;
	atomic_store_explicit(
	    &w->load_permille,
	    (uint32_t)(w->busy_window_us >= span ? 1000 : w->busy_window_us * 1000 / span),
	    memory_order_relaxed);
	__atomic_add_fetch(&w->busy_us, w->busy_window_us, __ATOMIC_RELAXED);
	w->busy_window_us = 0;
	w->window_start_us = now;
}

int lcore_main(void *arg)
{
	struct dworker *w = arg;
	struct dpdk_edge *d = w->d;
	struct rte_mbuf *pkts[BURST];

	LOG(INFO, "dpdk edge: worker %u on lcore %u, queue %u", (unsigned)w->queue, w->lcore,
	    (unsigned)w->queue);
	w->next_tick_us = now_us() + 1000000;
	w->window_start_us = now_us();
	while (!atomic_load_explicit(&d->stop, memory_order_relaxed)) {
		uint16_t n;
		uint32_t got = 0;

		/* What the port holds, before any timer: a retransmission timer
		 * must not call a segment lost while its ACK waits in the ring
		 * (one publish to 100,000 subscribers brings 100,000 ACKs at
		 * once). Reading stops after RX_TURN_US; the timers then wait
		 * for the ring to empty, but never more than TIMERS_LATE_US. */
		uint64_t start = w->now_us = now_us();
		do {
			n = rte_eth_rx_burst(d->port_id, w->queue, pkts, BURST);
			for (uint16_t i = 0; i < n; i++)
				rx_one(w, pkts[i]);
			got += n;
			if (n == BURST && (got & 1023) == 0)
				w->now_us = now_us();
		} while (n == BURST && w->now_us - start < RX_TURN_US);
		got += edge_worker_drain(w->ew); /* fan-out: frames for our sessions */
		conn_pump(w);
		/* Sending a large fan-out takes a while: stamp what goes out,
		 * and judge the timers, by the clock after it. */
		w->now_us = now_us();
		tcp_flush(w->tcp, w->now_us);
		w->now_us = now_us();
		if (n < BURST || w->now_us - w->timers_us >= TIMERS_LATE_US) {
			tcp_timers(w->tcp, w->now_us);
			w->timers_us = w->now_us;
		}
		tx_flush(w);
		if (got)
			w->busy_window_us += now_us() - start;
		if (w->now_us >= w->next_tick_us) {
			edge_worker_tick(w->ew);
			w->next_tick_us += 1000000;
			lcore_load_update(w);
		}
		if (got == 0 && d->cfg.idle_sleep_us) {
			struct timespec ts = {0, (long)d->cfg.idle_sleep_us * 1000};
			nanosleep(&ts, NULL);
		}
	}
	return 0;
}
