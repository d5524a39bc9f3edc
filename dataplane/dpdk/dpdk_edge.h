/* SPDX-License-Identifier: BSD-3-Clause */
/* The DPDK edge: websocket clients over a userspace TCP on a DPDK port, one
 * worker lcore per RX/TX queue pair, each owning its connections outright
 * and serving them through the same sessions as the socket edge
 * (dataplane/edge.h). docs/dataplane.md tells the packet path. */
#pragma once

#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct edge;

struct dpdk_edge_config {
	const char *port;	  /* the DPDK device name (PCI address or vdev name) */
	uint32_t address;	  /* ours, host order */
	uint32_t netmask;	  /* host order */
	uint32_t gateway;	  /* host order, 0: none */
	uint16_t listen_port;	  /* websocket upgrades */
	int workers;		  /* worker lcores, one queue pair each */
	int first_worker;	  /* their edge worker indexes start here */
	uint32_t idle_sleep_us;	  /* 0: busy poll */
	uint32_t max_connections; /* per worker */
	uint32_t upgrade_slots;	  /* upgrade requests parsed at once, per worker (~5 KB each) */
	enum zero_copy zero_copy; /* how frames reach the port */
	uint32_t frame_memory_mb; /* DPDK memory for pooled frames */
	uint32_t copy_below;	  /* a piece of a frame shorter than this is copied */
	enum offload checksum_offload; /* let the port compute and check checksums */
	const char *jwt_secret;
};

struct dpdk_edge;

/* Configures and starts the port and launches the worker lcores (the EAL is
 * up with at least workers + 1 lcores). NULL on error (logged). */
struct dpdk_edge *dpdk_edge_start(const struct dpdk_edge_config *cfg, struct edge *edge);

/* Refuses new upgrades (503) and asks every session to close with code;
 * waits up to wait_ms for the connections to go. */
void dpdk_edge_close_all(struct dpdk_edge *d, int code, const char *reason, int wait_ms);

/* Stops the lcores and the port; frees everything. */
void dpdk_edge_stop(struct dpdk_edge *d);

/* Parses "a.b.c.d/len" into address and netmask (host order): 0 or -1. */
int dpdk_parse_cidr(const char *s, uint32_t *address, uint32_t *netmask);
int dpdk_parse_ipv4(const char *s, uint32_t *address);

/* The send path alone, on this thread, into port (a net_null vdev): the
 * edge's worker with connections made by synthetic handshakes, then
 * messages frames, each queued on every connection, flushed as segments and
 * sent; every ack_every messages each connection is acknowledged. For
 * fanout-bench; not used by fanoutd. */
struct dpdk_null_bench {
	uint32_t connections, payload, messages, ack_every; /* in */
	enum zero_copy zero_copy;			    /* in */
	uint32_t copy_below;				    /* in */
	double seconds;					    /* out */
	uint64_t deliveries, tx_packets, tx_dropped;
	size_t conn_slot_bytes;	       /* per connection: TCP state and the edge's slot */
	size_t queue_bytes;	       /* a send queue, held only while sending */
	const char *send_mode;	       /* as fanoutd logs it */
	uint64_t tx_by_ref, tx_copied; /* payload bytes chained by reference, copied */
	bool tx_csum;		       /* the port computed checksums */
};
int dpdk_edge_bench_null(const char *port, struct dpdk_null_bench *b);
