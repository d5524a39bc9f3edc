/* SPDX-License-Identifier: BSD-3-Clause */
/* The DPDK edge (see dpdk_edge.h): the port, the worker lcores and their
 * loop, and the glue from packets to sessions: net.c below TCP, tcp.c, the
 * websocket upgrade and frames (ws.c), and the messaging core's sessions.
 *
 * The send path is zero-copy where the port allows: a frame is encoded once
 * per worker; its websocket header is written once into its headroom (a
 * server frame's header depends on its length only), the partial checksum
 * of header and payload is computed once, and every recipient's TCP send
 * queue holds a reference to the same bytes. A segment is a header mbuf
 * (Ethernet, IPv4, TCP, built per recipient) chained to external-buffer
 * mbufs pointing into the frames it carries; the frame's refcount keeps it
 * alive until the last such mbuf is freed. */
#include "dpdk-internal.h"

struct dpdk_edge *dpdk_edge_start(const struct dpdk_edge_config *cfg, struct edge *edge)
{
	struct dpdk_edge *d = calloc(1, sizeof(*d));
	unsigned lcore;
	int i;

	if (d == NULL)
		return NULL;
	d->cfg = *cfg;
	snprintf(d->port_name, sizeof(d->port_name), "%s", cfg->port);
	snprintf(d->secret, sizeof(d->secret), "%s", cfg->jwt_secret);
	d->cfg.port = d->port_name;
	d->cfg.jwt_secret = d->secret;
	d->edge = edge;
	if (edge && (d->handoff = handoff_start(edge)) == NULL) {
		LOG(ERR, "dpdk edge: cannot start the publish hand-off: %s", strerror(errno));
		goto fail;
	}
	if (port_start(d) < 0)
		goto fail;
	d->workers = calloc((size_t)cfg->workers, sizeof(*d->workers));
	if (d->workers == NULL)
		goto fail;
	i = 0;
	RTE_LCORE_FOREACH_WORKER(lcore)
	{
		if (i == cfg->workers)
			break;
		if (port_worker_init(d, &d->workers[i], i, lcore) < 0) {
			LOG(ERR, "dpdk edge: cannot set worker %d up", i);
			d->nworkers = i + 1;
			goto fail;
		}
		i++;
	}
	d->nworkers = i;
	if (i < cfg->workers) {
		LOG(ERR,
		    "dpdk edge: the EAL has %d worker lcores, [dataplane] workers = %d (give "
		    "-l 0-%d in eal_args)",
		    i, cfg->workers, cfg->workers);
		goto fail;
	}
	for (i = 0; i < d->nworkers; i++)
		rte_eal_remote_launch(lcore_main, &d->workers[i], d->workers[i].lcore);
	dpdk_stats_register(d);
	dpdk_telemetry_start(d);
	LOG(NOTICE,
	    "dpdk edge: %s (%s, %02x:%02x:%02x:%02x:%02x:%02x) at %u.%u.%u.%u port %u, %d "
	    "worker(s), %s, checksums %s",
	    cfg->port, d->driver, d->mac[0], d->mac[1], d->mac[2], d->mac[3], d->mac[4], d->mac[5],
	    cfg->address >> 24, (cfg->address >> 16) & 255, (cfg->address >> 8) & 255,
	    cfg->address & 255, (unsigned)cfg->listen_port, d->nworkers, port_send_mode_name(d),
	    d->tx_csum ? (d->rx_csum ? "by the port" : "sent by the port, checked here")
		       : (d->rx_csum ? "checked by the port, sent here" : "here"));
	return d;
fail:
	dpdk_edge_stop(d);
	return NULL;
}

void dpdk_edge_close_all(struct dpdk_edge *d, int code, const char *reason, int wait_ms)
{
	uint64_t deadline = time_mono_ns() + (uint64_t)wait_ms * 1000000ull;
	int open;

	if (d == NULL)
		return;
	atomic_store(&d->draining, true);
	for (int i = 0; i < d->nworkers; i++)
		edge_post_close_all(d->edge, d->cfg.first_worker + i, code, reason);
	do {
		struct timespec ts = {0, 10000000};
		open = 0;
		for (int i = 0; i < d->nworkers; i++)
			open += atomic_load(&d->workers[i].open);
		if (open)
			nanosleep(&ts, NULL);
	} while (open && time_mono_ns() < deadline);
}

void dpdk_edge_stop(struct dpdk_edge *d)
{
	if (d == NULL)
		return;
	dpdk_telemetry_stop();
	atomic_store(&d->stop, true);
	for (int i = 0; i < d->nworkers; i++)
		if (d->workers[i].lcore)
			rte_eal_wait_lcore(d->workers[i].lcore);
	/* The writer has answered every publish: the slots are home or on
	 * their way through the workers' inboxes, drained below. */
	handoff_stop(d->handoff);
	for (int i = 0; i < d->nworkers; i++) {
		struct dworker *w = &d->workers[i];

		/* what is left is reset: its sessions end, its frames return */
		for (uint32_t k = 0; w->conns && k < d->cfg.max_connections; k++)
			if (w->conns[k].state != DC_FREE)
				tcp_abort(w->tcp, tcp_conn_at(w->tcp, k));
		if (w->tcp)
			tcp_flush(w->tcp, now_us());
		tx_flush(w);
		tx_spares_free(w);
		if (w->ew) {
			edge_worker_drain(w->ew);
			handoff_detach(w->ew);
			edge_worker_destroy(w->ew);
		}
		tcp_engine_destroy(w->tcp);
		net_fini(&w->net);
		free(w->conns);
		free(w->handshakes);
	}
	if (d->pool) {
		rte_eth_dev_stop(d->port_id);
		rte_eth_dev_close(d->port_id);
	}
	rte_mempool_free(d->ext_pool);
	rte_mempool_free(d->pool);
	handoff_destroy(d->handoff);
	free(d->workers);
	free(d);
}
