/* SPDX-License-Identifier: BSD-3-Clause */
/* fanout-bench dpdk-null: the DPDK edge's send path on one lcore into a
 * port that drops everything (docs/benchmarks.md). */
#include "dpdk-internal.h"

/* ---- the benchmark: the send path into a port that drops everything ---- */

static const uint8_t peer_mac[6] = {2, 0, 0, 0, 0, 2};

/* Connection i's handshake, as a client would make it; its slot, past the
 * upgrade (the bench has no sessions), or NULL. */
static struct dconn *handshake(struct dworker *w, uint32_t i, struct tcp_tuple *tuple)
{
	struct tcp_seg syn = {
	    .t = {w->d->cfg.address, 0x0b000000u | (i >> 15), 80, (uint16_t)(1024 + (i & 0x7fff))},
	    .seq = 1000,
	    .flags = TCP_SYN,
	    .wnd = 65535,
	    .has_mss = true,
	    .mss = 1460,
	    .has_ws = true,
	    .ws = 7,
	    .has_ts = true,
	    .tsval = 1};
	struct tcp_seg ack = syn;
	struct tcp_cc_info cc;
	struct tcp_conn *c;
	struct dconn *dc;

	*tuple = syn.t;
	w->now_us = now_us();
	w->src_mac = peer_mac;
	tcp_input(w->tcp, &syn, w->now_us);
	c = tcp_lookup(w->tcp, &syn.t);
	if (c == NULL)
		return NULL;
	tcp_conn_cc(c, &cc);
	ack.seq = 1001;
	ack.ack = cc.snd_nxt;
	ack.flags = TCP_ACK;
	ack.has_mss = ack.has_ws = false;
	tcp_input(w->tcp, &ack, w->now_us);
	w->src_mac = NULL;
	dc = &w->conns[tcp_conn_index(w->tcp, c)];
	if (dc->state == DC_HTTP) { /* as if upgraded: its slot, or its place waiting, given up */
		conn_leave_http(dc);
		dc->state = DC_WS;
	}
	return dc;
}

/* Every client acknowledges what it has. */
static void ack_all(struct dworker *w, struct dconn **conns, const struct tcp_tuple *tuples,
		    uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		struct tcp_seg ack = {.t = tuples[i],
				      .seq = 1001,
				      .flags = TCP_ACK,
				      .wnd = 65535,
				      .has_ts = true,
				      .tsval = 1};
		struct tcp_cc_info cc;

		tcp_conn_cc(dconn_tcp(conns[i]), &cc);
		ack.ack = cc.snd_nxt;
		tcp_input(w->tcp, &ack, w->now_us);
	}
	tcp_flush(w->tcp, w->now_us);
	tcp_timers(w->tcp, w->now_us);
}

/* The port and one worker on this thread. */
static struct dworker *bench_worker(struct dpdk_edge *d, const char *port,
				    const struct dpdk_null_bench *b)
{
	snprintf(d->port_name, sizeof(d->port_name), "%s", port);
	d->cfg = (struct dpdk_edge_config){.port = d->port_name,
					   .address = 0x0a000001,
					   .netmask = 0xffffff00,
					   .listen_port = 80,
					   .workers = 1,
					   .max_connections = b->connections + 16,
					   .upgrade_slots = 16,
					   .zero_copy = b->zero_copy,
					   .frame_memory_mb = 64,
					   .copy_below = b->copy_below,
					   .checksum_offload = OFFLOAD_AUTO,
					   .jwt_secret = d->secret};
	if (port_start(d) < 0 || (d->workers = calloc(1, sizeof(*d->workers))) == NULL)
		return NULL;
	d->nworkers = 1;
	if (port_worker_init(d, &d->workers[0], 0, rte_lcore_id()) < 0)
		return NULL;
	d->workers[0].lcore = 0; /* this thread: nothing to wait for at stop */
	return &d->workers[0];
}

static void report(struct dpdk_edge *d, struct dworker *w, struct dpdk_null_bench *b)
{
	b->tx_packets = w->tx_packets;
	b->tx_dropped = w->tx_dropped + w->no_mbuf;
	b->send_mode = port_send_mode_name(d);
	b->tx_by_ref = w->tx_by_ref;
	b->tx_copied = w->tx_copied;
	b->tx_csum = d->tx_csum;
	b->conn_slot_bytes =
	    tcp_conn_bytes(&(struct tcp_config){.sndq_chunks = 64}) + sizeof(struct dconn);
	b->queue_bytes = tcp_queue_bytes(&(struct tcp_config){.sndq_chunks = 64});
}

int dpdk_edge_bench_null(const char *port, struct dpdk_null_bench *b)
{
	struct dpdk_edge *d = calloc(1, sizeof(*d));
	struct tcp_tuple *tuples = calloc(b->connections, sizeof(*tuples));
	struct dconn **conns = calloc(b->connections, sizeof(*conns));
	uint8_t *payload = malloc(b->payload + 1);
	struct dworker *w;
	uint64_t t0;
	int rc = -1;

	if (d == NULL || tuples == NULL || conns == NULL || payload == NULL || b->ack_every == 0 ||
	    b->ack_every > 32 || (w = bench_worker(d, port, b)) == NULL)
		goto out;
	for (uint32_t i = 0; i < b->connections; i++) {
		if ((conns[i] = handshake(w, i, &tuples[i])) == NULL)
			goto out;
		if (i % 256 == 255) {
			tcp_flush(w->tcp, w->now_us);
			tx_flush(w);
		}
	}
	tcp_flush(w->tcp, now_us());
	tx_flush(w);
	memset(payload, 'x', b->payload);
	t0 = time_mono_ns();
	for (uint32_t m = 0; m < b->messages; m++) {
		struct frame *f = frame_new(FRAME_DURABLE, 1, m + 1, payload, b->payload);

		if (f == NULL)
			goto out;
		for (uint32_t i = 0; i < b->connections; i++) {
			/* as conn_pump fetches ahead on its list */
			if (i + 8 < b->connections)
				__builtin_prefetch(conns[i + 8], 1);
			if (i + 4 < b->connections)
				tcp_prefetch(dconn_tcp(conns[i + 4]));
			if (conn_queue_frame(conns[i], f, WS_TEXT) == 0)
				b->deliveries++;
		}
		frame_unref(f);
		w->now_us = now_us();
		tcp_flush(w->tcp, w->now_us);
		tx_flush(w);
		if ((m + 1) % b->ack_every == 0 || m + 1 == b->messages)
			ack_all(w, conns, tuples, b->connections);
	}
	b->seconds = (double)(time_mono_ns() - t0) / 1e9;
	report(d, w, b);
	rc = 0;
out:
	free(tuples);
	free(conns);
	free(payload);
	dpdk_edge_stop(d);
	return rc;
}
