/* SPDX-License-Identifier: BSD-3-Clause */
/* The DPDK edge's port and workers set up: the port's queues, pools and
 * offloads (zero-copy and checksums decided from what its driver offers),
 * and each worker's TCP engine, network state and connection slots. */
#include "dpdk-internal.h"

static void no_wake(void *arg)
{
	/* the lcore polls its inbox every turn of its loop */
}

int dpdk_parse_ipv4(const char *s, uint32_t *address)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		return -1;
	*address = ntohl(a.s_addr);
	return 0;
}

int dpdk_parse_cidr(const char *s, uint32_t *address, uint32_t *netmask)
{
	char ip[32];
	const char *slash = strchr(s, '/');
	int len;

	if (slash == NULL || (size_t)(slash - s) >= sizeof(ip))
		return -1;
	memcpy(ip, s, (size_t)(slash - s));
	ip[slash - s] = '\0';
	if (dpdk_parse_ipv4(ip, address) < 0 || sscanf(slash + 1, "%d", &len) != 1 || len < 1 ||
	    len > 32)
		return -1;
	*netmask = len == 32 ? 0xffffffffu : ~(0xffffffffu >> len);
	return 0;
}

int port_worker_init(struct dpdk_edge *d, struct dworker *w, int i, unsigned lcore)
{
	struct tcp_callbacks cb = {w,
				   tx_segment,
				   conn_on_accept,
				   conn_on_data,
				   conn_on_peer_fin,
				   conn_on_closed,
				   conn_on_release};
	struct tcp_config tc;
	uint16_t mtu = 1500;

	w->d = d;
	w->queue = (uint16_t)i;
	w->lcore = lcore;
	w->mbuf_data_at = (uint32_t)(sizeof(struct rte_mbuf) + rte_pktmbuf_priv_size(d->pool) +
				     RTE_PKTMBUF_HEADROOM);
	if (d->edge) { /* none in the benchmark */
		w->ew =
		    edge_worker_create(d->edge, d->cfg.first_worker + i, d->cfg.max_connections);
		if (w->ew == NULL)
			return -1;
		edge_worker_set_transport(w->ew, w);
		if (handoff_attach(d->handoff, w->ew) < 0)
			return -1;
		fanout_set_wake(edge_fanout(d->edge), d->cfg.first_worker + i, no_wake, NULL);
	}
	tcp_config_defaults(&tc);
	rte_eth_dev_get_mtu(d->port_id, &mtu);
	tc.mss = (uint16_t)(mtu - 40);
	/* a segment copied whole, or a copied tail, fits one mbuf when the
	 * port limits the mbufs per packet (jumbo frames need a chain) */
	if (d->max_segs < UINT16_MAX && tc.mss > RTE_MBUF_DEFAULT_DATAROOM - 80)
		tc.mss = RTE_MBUF_DEFAULT_DATAROOM - 80;
	tc.max_conns = d->cfg.max_connections;
	tc.max_half_open = d->cfg.max_connections / 4 + 1;
	w->conns = calloc(d->cfg.max_connections, sizeof(*w->conns));
	if (w->conns == NULL)
		return -1;
	for (uint32_t k = 0; k < d->cfg.max_connections; k++)
		w->conns[k].w = w;
	tc.app = w->conns; /* the engine's connection i goes with w->conns[i] */
	tc.app_size = sizeof(*w->conns);
	if (getrandom(tc.cookie_key, sizeof(tc.cookie_key), 0) != sizeof(tc.cookie_key))
		return -1;
	w->tcp = tcp_engine_create(&tc, &cb);
	if (w->tcp == NULL || tcp_listen(w->tcp, d->cfg.listen_port) < 0)
		return -1;
	w->tcp_conns = (uint8_t *)tcp_conn_at(w->tcp, 0);
	w->tcp_conn_size = tcp_conn_size();
	if (net_init(&w->net, d->mac, d->cfg.address, d->cfg.netmask, d->cfg.gateway, 1024) < 0)
		return -1;
	w->net.tx_csum_offload = d->tx_csum;
	w->handshakes = calloc(d->cfg.upgrade_slots, sizeof(*w->handshakes));
	if (w->handshakes == NULL)
		return -1;
	for (uint32_t k = d->cfg.upgrade_slots; k-- > 0;) {
		w->handshakes[k].next = w->free_hs;
		w->free_hs = &w->handshakes[k];
	}
	return 0;
}

const char *port_send_mode_name(const struct dpdk_edge *d)
{
	switch (d->send_mode) {
	case ZERO_COPY_ALL:
		return "zero-copy send";
	case ZERO_COPY_POOLED:
		return "zero-copy send from DPDK memory";
	default:
		return "send by copy";
	}
}

/* Sets the port up from d->cfg: queues, pools, started, our MAC. 0 or -1
 * (logged). */
/* How frames go to the port: by reference from the heap (a software port
 * that copies from virtual addresses), from DPDK pools (a NIC's DMA), or
 * copied; and how many mbufs a packet may chain. -1 on a setting the port
 * cannot honour. */
static int choose_send_mode(struct dpdk_edge *d, const struct rte_eth_dev_info *info,
			    struct rte_eth_conf *conf, bool *software)
{
	static const char *const copying[] = {"net_af_packet", "net_tap",   "net_null",
					      "net_ring",      "net_memif", "net_af_xdp"};
	const struct dpdk_edge_config *cfg = &d->cfg;

	*software = false;
	for (size_t k = 0; k < sizeof(copying) / sizeof(copying[0]); k++)
		if (strcmp(info->driver_name, copying[k]) == 0)
			*software = true; /* the driver copies from virtual addresses */
	d->send_mode = cfg->zero_copy == ZERO_COPY_AUTO
			   ? (*software ? ZERO_COPY_ALL : ZERO_COPY_POOLED)
			   : cfg->zero_copy;
	if (d->send_mode == ZERO_COPY_ALL && !*software) {
		LOG(ERR,
		    "dpdk edge: zero_copy = all on port %s (%s) would give the NIC heap "
		    "addresses it cannot read by DMA: use pooled (or auto)",
		    cfg->port, info->driver_name);
		return -1;
	}
	/* A chain of mbufs per packet needs the port's multi-segment send;
	 * without it every packet is one mbuf, so everything is copied. */
	d->max_segs = 1;
	if (info->tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) {
		conf->txmode.offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
		d->max_segs = info->tx_desc_lim.nb_mtu_seg_max ? info->tx_desc_lim.nb_mtu_seg_max
							       : UINT16_MAX;
	} else if (strcmp(info->driver_name, "net_null") == 0) {
		d->max_segs = UINT16_MAX; /* frees what it is given, chained or not */
	}
	if (d->max_segs == 1)
		d->send_mode = ZERO_COPY_OFF;
	return 0;
}

/* Checksums by the NIC when it has them: a NIC computes them as it reads
 * the packet, where software reads every byte again (save the frames' own
 * sums). A software port would compute them in software too, so auto
 * leaves them here; and DPDK 22.11's tap driver sums a chain with an
 * odd-length mbuf wrong. */
static void choose_checksums(struct dpdk_edge *d, const struct rte_eth_dev_info *info,
			     struct rte_eth_conf *conf, bool software)
{
	const uint64_t tx_sums = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
	const uint64_t rx_sums = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
	bool offload = d->cfg.checksum_offload == OFFLOAD_ON ||
		       (d->cfg.checksum_offload == OFFLOAD_AUTO && !software);

	d->tx_csum = offload && (info->tx_offload_capa & tx_sums) == tx_sums;
	d->rx_csum = offload && (info->rx_offload_capa & rx_sums) == rx_sums;
	if (d->tx_csum)
		conf->txmode.offloads |= tx_sums;
	if (d->rx_csum)
		conf->rxmode.offloads |= rx_sums;
}

/* The mbuf pools and one queue pair per worker, on the port's socket. */
static int setup_queues(struct dpdk_edge *d, uint16_t nrxd, uint16_t ntxd, int socket)
{
	const struct dpdk_edge_config *cfg = &d->cfg;
	char name[RTE_MEMPOOL_NAMESIZE];
	int rc;

	snprintf(name, sizeof(name), "fo_pkt_%u", (unsigned)d->port_id);
	d->pool = rte_pktmbuf_pool_create(name, 8192 * (unsigned)cfg->workers - 1, 256, 0,
					  RTE_MBUF_DEFAULT_BUF_SIZE, socket);
	snprintf(name, sizeof(name), "fo_ext_%u", (unsigned)d->port_id);
	d->ext_pool =
	    rte_pktmbuf_pool_create(name, 16384 * (unsigned)cfg->workers - 1, 256, 0, 0, socket);
	if (d->pool == NULL || d->ext_pool == NULL) {
		LOG(ERR, "dpdk edge: cannot create mbuf pools: %s (eal_memory_mb or -m)",
		    rte_strerror(rte_errno));
		return -1;
	}
	for (int i = 0; i < cfg->workers; i++) {
		rc = rte_eth_rx_queue_setup(d->port_id, (uint16_t)i, nrxd, (unsigned)socket, NULL,
					    d->pool);
		if (rc == 0)
			rc = rte_eth_tx_queue_setup(d->port_id, (uint16_t)i, ntxd, (unsigned)socket,
						    NULL);
		if (rc != 0) {
			LOG(ERR, "dpdk edge: queue %d of %s: %s", i, cfg->port, rte_strerror(-rc));
			return -1;
		}
	}
	return 0;
}

int port_start(struct dpdk_edge *d)
{
	const struct dpdk_edge_config *cfg = &d->cfg;
	struct rte_eth_conf conf = {0};
	struct rte_eth_dev_info info;
	struct rte_ether_addr mac;
	uint16_t nrxd = 1024, ntxd = 1024;
	bool software;
	int rc, socket;

	if (rte_eth_dev_get_port_by_name(cfg->port, &d->port_id) != 0) {
		LOG(ERR, "dpdk edge: no port named '%s' (%u ports; is its device in eal_args?)",
		    cfg->port, (unsigned)rte_eth_dev_count_avail());
		return -1;
	}
	rc = rte_eth_dev_info_get(d->port_id, &info);
	if (rc != 0 || cfg->workers > info.max_rx_queues || cfg->workers > info.max_tx_queues) {
		LOG(ERR, "dpdk edge: port %s cannot give %d queue pairs (%u rx, %u tx)", cfg->port,
		    cfg->workers, (unsigned)info.max_rx_queues, (unsigned)info.max_tx_queues);
		return -1;
	}
	snprintf(d->driver, sizeof(d->driver), "%s", info.driver_name);
	if (choose_send_mode(d, &info, &conf, &software) < 0)
		return -1;
	choose_checksums(d, &info, &conf, software);
	socket = rte_eth_dev_socket_id(d->port_id);
	if (socket < 0)
		socket = (int)rte_socket_id();
	if (d->send_mode == ZERO_COPY_POOLED &&
	    framepool_install((size_t)cfg->frame_memory_mb << 20, socket) < 0) {
		LOG(ERR,
		    "dpdk edge: cannot reserve [dataplane] frame_memory_mb = %u MiB of DPDK "
		    "memory for frames: %s (give the EAL more: eal_memory_mb, -m or "
		    "--socket-mem)",
		    (unsigned)cfg->frame_memory_mb, rte_strerror(rte_errno));
		return -1;
	}
	if (cfg->workers > 1) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf =
		    (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP) & info.flow_type_rss_offloads;
	}
	rc = rte_eth_dev_configure(d->port_id, (uint16_t)cfg->workers, (uint16_t)cfg->workers,
				   &conf);
	if (rc == 0)
		rc = rte_eth_dev_adjust_nb_rx_tx_desc(d->port_id, &nrxd, &ntxd);
	if (rc != 0) {
		LOG(ERR, "dpdk edge: cannot configure port %s: %s", cfg->port, rte_strerror(-rc));
		return -1;
	}
	if (setup_queues(d, nrxd, ntxd, socket) < 0)
		return -1;
	rc = rte_eth_dev_start(d->port_id);
	if (rc != 0) {
		LOG(ERR, "dpdk edge: cannot start %s: %s", cfg->port, rte_strerror(-rc));
		return -1;
	}
	rte_eth_macaddr_get(d->port_id, &mac);
	memcpy(d->mac, mac.addr_bytes, 6);
	return 0;
}
