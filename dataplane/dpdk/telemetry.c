/* SPDX-License-Identifier: BSD-3-Clause */
/* fanout's commands on DPDK's telemetry socket, next to DPDK's own (/ethdev/
 * stats, ...), for dpdk-telemetry.py (docs/dataplane.md, "Telemetry"):
 *
 *   /fanout/lcores       each worker lcore: load, busy time, connections,
 *                        packets in and out
 *   /fanout/connections  the edge's connections: open, accepted, refused,
 *                        waiting for an upgrade slot, the cap
 *   /fanout/tcp          the TCP engines summed: retransmits, drops, window
 *                        stalls, out of order, SYN cookies
 *
 * They read the counters /metrics reads (stats.c), on DPDK's telemetry
 * thread, without a lock: figures, not an exact snapshot. */
#include "dpdk-internal.h"

#include <pthread.h>
#include <rte_telemetry.h>

/* The running edge; the commands answer an error once it stopped. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct dpdk_edge *running;
static bool registered;

/* The engines' counters summed: struct tcp_stats opens with its uint64_t
 * counters, up to the gauges from conns on. */
static void tcp_totals(struct dpdk_edge *d, struct tcp_stats *sum)
{
	memset(sum, 0, sizeof(*sum));
	for (int i = 0; i < d->nworkers; i++) {
		struct tcp_stats st;
		const uint64_t *from = (const uint64_t *)&st;
		uint64_t *to = (uint64_t *)sum;

		tcp_engine_stats(d->workers[i].tcp, &st);
		for (size_t k = 0; k < offsetof(struct tcp_stats, conns) / sizeof(uint64_t); k++)
			to[k] += from[k];
		sum->conns += st.conns;
		sum->half_open += st.half_open;
	}
}

static void lcore_dict(struct rte_tel_data *c, struct dworker *w)
{
	rte_tel_data_start_dict(c);
	rte_tel_data_add_dict_u64(c, "lcore", w->lcore);
	rte_tel_data_add_dict_u64(c, "queue", w->queue);
	rte_tel_data_add_dict_u64(c, "load_permille",
				  atomic_load_explicit(&w->load_permille, memory_order_relaxed));
	rte_tel_data_add_dict_u64(c, "busy_us", __atomic_load_n(&w->busy_us, __ATOMIC_RELAXED));
	rte_tel_data_add_dict_u64(c, "connections", (uint64_t)atomic_load(&w->open));
	rte_tel_data_add_dict_u64(c, "rx_packets", *(volatile uint64_t *)&w->rx_packets);
	rte_tel_data_add_dict_u64(c, "tx_packets", *(volatile uint64_t *)&w->tx_packets);
	rte_tel_data_add_dict_u64(c, "rx_dropped", *(volatile uint64_t *)&w->rx_dropped);
	rte_tel_data_add_dict_u64(c, "tx_dropped", *(volatile uint64_t *)&w->tx_dropped);
}

static void lcores(struct dpdk_edge *d, struct rte_tel_data *out)
{
	rte_tel_data_start_dict(out);
	for (int i = 0; i < d->nworkers; i++) {
		struct rte_tel_data *c = rte_tel_data_alloc();
		char name[16];

		if (c == NULL)
			return;
		lcore_dict(c, &d->workers[i]);
		snprintf(name, sizeof(name), "%d", i);
		rte_tel_data_add_dict_container(out, name, c, 0);
	}
}

static void connections(struct dpdk_edge *d, struct rte_tel_data *out)
{
	uint64_t open = 0, refused = 0, waited = 0;
	struct tcp_stats t;

	tcp_totals(d, &t);
	for (int i = 0; i < d->nworkers; i++) {
		open += (uint64_t)atomic_load(&d->workers[i].open);
		refused += *(volatile uint64_t *)&d->workers[i].refused;
		waited += *(volatile uint64_t *)&d->workers[i].hs_waited;
	}
	rte_tel_data_start_dict(out);
	rte_tel_data_add_dict_u64(out, "open", open);
	rte_tel_data_add_dict_u64(out, "max_per_lcore", d->cfg.max_connections);
	rte_tel_data_add_dict_u64(out, "tcp_established", t.conns);
	rte_tel_data_add_dict_u64(out, "tcp_half_open", t.half_open);
	rte_tel_data_add_dict_u64(out, "accepted", t.accepted);
	rte_tel_data_add_dict_u64(out, "upgrades_refused", refused);
	rte_tel_data_add_dict_u64(out, "upgrades_waited", waited);
}

static void tcp(struct dpdk_edge *d, struct rte_tel_data *out)
{
	struct tcp_stats t;

	tcp_totals(d, &t);
	rte_tel_data_start_dict(out);
	rte_tel_data_add_dict_u64(out, "segs_in", t.segs_in);
	rte_tel_data_add_dict_u64(out, "segs_out", t.segs_out);
	rte_tel_data_add_dict_u64(out, "retransmits", t.retransmits);
	rte_tel_data_add_dict_u64(out, "fast_retransmits", t.fast_retransmits);
	rte_tel_data_add_dict_u64(out, "sack_retransmits", t.sack_retransmits);
	rte_tel_data_add_dict_u64(out, "timeouts", t.timeouts);
	rte_tel_data_add_dict_u64(out, "spurious_timeouts", t.spurious_timeouts);
	rte_tel_data_add_dict_u64(out, "out_of_order", t.out_of_order);
	rte_tel_data_add_dict_u64(out, "out_of_order_held", t.ooo_held);
	rte_tel_data_add_dict_u64(out, "window_drops", t.window_drops);
	rte_tel_data_add_dict_u64(out, "zero_window_probes", t.zero_window_probes);
	rte_tel_data_add_dict_u64(out, "resets_in", t.resets_in);
	rte_tel_data_add_dict_u64(out, "resets_out", t.resets_out);
	rte_tel_data_add_dict_u64(out, "syn_cookies_sent", t.syn_cookies_sent);
	rte_tel_data_add_dict_u64(out, "half_open_dropped", t.half_open_dropped);
}

static int answer(const char *cmd, const char *params, struct rte_tel_data *out)
{
	int rc = 0;

	(void)params;
	pthread_mutex_lock(&lock);
	if (running == NULL)
		rc = -1;
	else if (strcmp(cmd, "/fanout/lcores") == 0)
		lcores(running, out);
	else if (strcmp(cmd, "/fanout/connections") == 0)
		connections(running, out);
	else
		tcp(running, out);
	pthread_mutex_unlock(&lock);
	return rc;
}

void dpdk_telemetry_start(struct dpdk_edge *d)
{
	pthread_mutex_lock(&lock);
	running = d;
	if (!registered) {
		registered = true;
		rte_telemetry_register_cmd("/fanout/lcores", answer,
					   "fanout's worker lcores: load, busy time, connections, "
					   "packets. No parameters.");
		rte_telemetry_register_cmd("/fanout/connections", answer,
					   "fanout's DPDK edge connections. No parameters.");
		rte_telemetry_register_cmd("/fanout/tcp", answer,
					   "fanout's TCP: retransmits, drops, window stalls. No "
					   "parameters.");
	}
	pthread_mutex_unlock(&lock);
}

void dpdk_telemetry_stop(void)
{
	pthread_mutex_lock(&lock);
	running = NULL;
	pthread_mutex_unlock(&lock);
}
