/* SPDX-License-Identifier: BSD-3-Clause */
/* The DPDK edge's metrics: counters the workers keep without a lock, summed
 * when /metrics is read, and the port's own statistics. */
#include "dpdk-internal.h"

/* ---- start and stop ---- */

static double gauge_sum(void *arg, size_t off)
{
	struct dpdk_edge *d = arg;
	double sum = 0;

	for (int i = 0; i < d->nworkers; i++)
		sum += (double)*(volatile uint64_t *)((char *)&d->workers[i] + off);
	return sum;
}

static double g_rx(void *arg)
{
	return gauge_sum(arg, offsetof(struct dworker, rx_packets));
}
static double g_tx(void *arg)
{
	return gauge_sum(arg, offsetof(struct dworker, tx_packets));
}
static double g_drop(void *arg)
{
	return gauge_sum(arg, offsetof(struct dworker, tx_dropped));
}
static double g_by_ref(void *arg)
{
	return gauge_sum(arg, offsetof(struct dworker, tx_by_ref));
}
static double g_copied(void *arg)
{
	return gauge_sum(arg, offsetof(struct dworker, tx_copied));
}
static double g_pool_in_use(void *arg)
{
	struct framepool_usage u;

	(void)arg;
	framepool_usage(&u);
	return (double)u.in_use;
}
static double g_pool_capacity(void *arg)
{
	struct framepool_usage u;

	(void)arg;
	framepool_usage(&u);
	return (double)u.capacity;
}
static double g_frame_misses(void *arg)
{
	(void)arg;
	return (double)frame_memory_misses();
}
static double g_ip_bad(void *arg)
{
	return gauge_sum(arg, offsetof(struct dworker, net.st.ip_bad_header)) +
	       gauge_sum(arg, offsetof(struct dworker, net.st.ip_bad_checksum)) +
	       gauge_sum(arg, offsetof(struct dworker, net.st.tcp_bad_checksum));
}
static double g_ip_fragments(void *arg)
{
	return gauge_sum(arg, offsetof(struct dworker, net.st.ip_fragments));
}
static double g_arp_answered(void *arg)
{
	return gauge_sum(arg, offsetof(struct dworker, net.st.arp_requests_answered));
}
static double g_icmp_echo(void *arg)
{
	return gauge_sum(arg, offsetof(struct dworker, net.st.icmp_echo_answered));
}

static double g_refused(void *arg)
{
	return gauge_sum(arg, offsetof(struct dworker, refused));
}
static double g_rx_dropped(void *arg)
{
	return gauge_sum(arg, offsetof(struct dworker, rx_dropped));
}
static double g_no_mbuf(void *arg)
{
	return gauge_sum(arg, offsetof(struct dworker, no_mbuf));
}

/* The port's own count of frames it had no room for: the receive ring was
 * full because the workers did not poll fast enough. */
static double g_rx_missed(void *arg)
{
	const struct dpdk_edge *d = arg;
	struct rte_eth_stats st;

	return rte_eth_stats_get(d->port_id, &st) == 0 ? (double)(st.imissed + st.rx_nombuf) : 0;
}

static double g_waited(void *arg)
{
	return gauge_sum(arg, offsetof(struct dworker, hs_waited));
}

static double g_open(void *arg)
{
	struct dpdk_edge *d = arg;
	double sum = 0;

	for (int i = 0; i < d->nworkers; i++)
		sum += atomic_load(&d->workers[i].open);
	return sum;
}

static double g_worker_open(void *arg, int i)
{
	return atomic_load(&((struct dpdk_edge *)arg)->workers[i].open);
}
static double g_worker_load(void *arg, int i)
{
	return atomic_load_explicit(&((struct dpdk_edge *)arg)->workers[i].load_permille,
				    memory_order_relaxed) /
	       1000.0;
}
static double g_worker_busy(void *arg, int i)
{
	return (double)__atomic_load_n(&((struct dpdk_edge *)arg)->workers[i].busy_us,
				       __ATOMIC_RELAXED) /
	       1e6;
}
static double g_worker_accepted(void *arg, int i)
{
	struct tcp_stats st;

	tcp_engine_stats(((struct dpdk_edge *)arg)->workers[i].tcp, &st);
	return (double)st.accepted;
}

/* A TCP counter summed over the workers' engines (read while they run:
 * a figure for /metrics, not an exact snapshot). */
static double tcp_sum(void *arg, size_t off)
{
	struct dpdk_edge *d = arg;
	double sum = 0;

	for (int i = 0; i < d->nworkers; i++) {
		struct tcp_stats st;

		tcp_engine_stats(d->workers[i].tcp, &st);
		sum += (double)*(uint64_t *)((char *)&st + off);
	}
	return sum;
}

static double g_retransmits(void *arg)
{
	return tcp_sum(arg, offsetof(struct tcp_stats, retransmits));
}
static double g_out_of_order(void *arg)
{
	return tcp_sum(arg, offsetof(struct tcp_stats, out_of_order));
}
static double g_ooo_held(void *arg)
{
	return tcp_sum(arg, offsetof(struct tcp_stats, ooo_held));
}
static double g_sack_retransmits(void *arg)
{
	return tcp_sum(arg, offsetof(struct tcp_stats, sack_retransmits));
}
static double g_window_drops(void *arg)
{
	return tcp_sum(arg, offsetof(struct tcp_stats, window_drops));
}
static double g_spurious(void *arg)
{
	return tcp_sum(arg, offsetof(struct tcp_stats, spurious_timeouts));
}
static double g_syn_cookies(void *arg)
{
	return tcp_sum(arg, offsetof(struct tcp_stats, syn_cookies_sent));
}

/* The edge's gauges, each a name, its help and its getter (arg: the edge). */
struct gauge {
	const char *name, *help;
	double (*get)(void *arg);
};

static const struct gauge gauges[] = {
    {"fanout_dpdk_connections", "Connections on the DPDK edge.", g_open},
    {"fanout_dpdk_rx_packets_total", "Packets received by the DPDK edge.", g_rx},
    {"fanout_dpdk_tx_packets_total", "Packets sent by the DPDK edge.", g_tx},
    {"fanout_dpdk_tx_dropped_total", "Packets the DPDK port did not take (TCP sends them again).",
     g_drop},
    {"fanout_dpdk_tcp_retransmits_total",
     "Segments the DPDK edge's TCP sent again (timeouts and fast "
     "retransmits).",
     g_retransmits},
    {"fanout_dpdk_tcp_out_of_order_total",
     "Segments that arrived ahead of a hole (answered with a duplicate "
     "ACK; held until it fills when there is room, else dropped).",
     g_out_of_order},
    {"fanout_dpdk_tcp_sack_retransmits_total",
     "Segments sent again in recovery because the peer's SACK blocks "
     "showed them missing (a second hole in one round trip).",
     g_sack_retransmits},
    {"fanout_dpdk_tcp_out_of_order_held_total",
     "Segments held ahead of a hole and delivered once it filled.", g_ooo_held},
    {"fanout_dpdk_tcp_spurious_timeouts_total",
     "Retransmission timeouts that the peer's timestamps showed "
     "needless (the ACK was late, not the data lost; RFC 3522).",
     g_spurious},
    {"fanout_dpdk_tcp_window_drops_total",
     "Segments whose data did not fit the window we advertised (a "
     "connection not read, or waiting for an upgrade slot): cut, "
     "and sent again by the peer.",
     g_window_drops},
    {"fanout_dpdk_tx_bytes_by_reference_total",
     "Payload bytes the port sent from the frames themselves "
     "(zero-copy).",
     g_by_ref},
    {"fanout_dpdk_tx_bytes_copied_total",
     "Payload bytes copied into packets: upgrade responses, and "
     "frames the port could not read where they were.",
     g_copied},
    {"fanout_dpdk_ip_bad_total",
     "IPv4 packets with a bad header or checksum, and TCP segments with a "
     "bad checksum, dropped.",
     g_ip_bad},
    {"fanout_dpdk_ip_fragments_total", "IPv4 fragments dropped (not reassembled).", g_ip_fragments},
    {"fanout_dpdk_arp_answered_total", "ARP requests for the edge's address answered.",
     g_arp_answered},
    {"fanout_dpdk_icmp_echo_total", "ICMP echo requests answered.", g_icmp_echo},
    {"fanout_dpdk_upgrades_refused_total",
     "Upgrade requests answered with an HTTP error on the DPDK edge.", g_refused},
    {"fanout_dpdk_rx_dropped_total",
     "Frames the DPDK edge dropped: chained (jumbo) frames, bad TCP "
     "headers.",
     g_rx_dropped},
    {"fanout_dpdk_rx_missed_total",
     "Frames the port dropped before a worker saw them: its receive "
     "ring was full, or it had no mbuf to receive into.",
     g_rx_missed},
    {"fanout_dpdk_no_mbuf_total", "Segments not sent for want of an mbuf (TCP sends them again).",
     g_no_mbuf},
    {"fanout_dpdk_upgrades_waited_total",
     "Connections that waited for an upgrade slot (a burst of "
     "connections).",
     g_waited},
    {"fanout_dpdk_tcp_syn_cookies_total", "SYN cookies sent: the half-open table was full.",
     g_syn_cookies},
};

static const struct gauge pool_gauges[] = {
    {"fanout_dpdk_frame_pool_in_use", "Frames in DPDK memory now in use.", g_pool_in_use},
    {"fanout_dpdk_frame_pool_capacity", "Frames DPDK memory holds ([dataplane] frame_memory_mb).",
     g_pool_capacity},
    {"fanout_dpdk_frame_pool_misses_total",
     "Frames made on the heap, and so sent by copy: the pool "
     "for their size was empty, or they were larger than 64 KiB.",
     g_frame_misses},
};

void dpdk_stats_register(struct dpdk_edge *d)
{
	metrics_register_gauge_vec("fanout_dpdk_worker_connections",
				   "Connections on each worker lcore of the DPDK edge (RSS "
				   "spreads them).",
				   "worker", d->nworkers, g_worker_open, d);
	metrics_register_gauge_vec("fanout_dpdk_worker_load",
				   "Share (0..1) of the last second each worker lcore spent in "
				   "turns that found work (the rest it polled an empty port).",
				   "worker", d->nworkers, g_worker_load, d);
	metrics_register_gauge_vec("fanout_dpdk_worker_busy_seconds_total",
				   "Seconds each worker lcore spent in turns that found work.",
				   "worker", d->nworkers, g_worker_busy, d);
	metrics_register_gauge_vec("fanout_dpdk_worker_accepted_total",
				   "Connections each worker lcore of the DPDK edge accepted.",
				   "worker", d->nworkers, g_worker_accepted, d);
	for (size_t i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++)
		metrics_register_gauge(gauges[i].name, gauges[i].help, gauges[i].get, d);
	if (d->send_mode != ZERO_COPY_POOLED)
		return;
	for (size_t i = 0; i < sizeof(pool_gauges) / sizeof(pool_gauges[0]); i++)
		metrics_register_gauge(pool_gauges[i].name, pool_gauges[i].help, pool_gauges[i].get,
				       d);
}
