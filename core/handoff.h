/* SPDX-License-Identifier: BSD-3-Clause */
/* The publish hand-off: how a worker that must not allocate, lock or parse
 * JSON per message (a DPDK worker lcore, docs/dataplane.md) publishes.
 *
 * The worker reads a publish's type and channel with an allocation-free
 * scanner (common/jscan.h), checks membership and the rate limit from its
 * session's own state, copies the request into a slot it owns (fixed slots,
 * made once per worker) and puts the slot on the node's hand-off ring (an
 * rte_ring, many producers, one consumer). A control thread parses it with
 * jansson, validates it and calls the publish door; after COMMIT the
 * commit callback puts the slot back on the ring, the control thread
 * encodes the ack (or the error) as a frame, and the worker receives the
 * slot through its inbox, queues the frame and frees the slot. The worker
 * wakes the control thread only when it sleeps, so a busy worker makes no
 * system call per publish. All of a worker's publishes take this road, in
 * order, including those the scanner leaves to jansson.
 *
 * The transport owns the hand-off's life: handoff_start() with the edge,
 * handoff_attach() for each worker before its sessions open; at shutdown,
 * after the writer (and the cluster) have answered every publish,
 * handoff_stop(), then each worker's last edge_worker_drain() and
 * handoff_detach(), then handoff_destroy(). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edge.h"

struct handoff;

/* The node's ring and control thread. NULL with errno. */
struct handoff *handoff_start(struct edge *e);
/* Makes w hand its publishes off (its slots are made here). 0 or -errno. */
int handoff_attach(struct handoff *h, struct edge_worker *w);
/* Stops the control thread; what is still on the ring is dropped. */
void handoff_stop(struct handoff *h);
/* Frees w's slots; after the worker's last drain. */
void handoff_detach(struct edge_worker *w);
void handoff_destroy(struct handoff *h);

/* For the worker's request handlers (requests.c), worker thread: */
/* True when data was a publish, now handed off or refused; false: not a
 * publish, or not one the scanner is sure of (parse it in full). */
bool handoff_take(struct session *s, const char *data, size_t len);
/* Hands the publish data (to channel) off. */
void handoff_offer(struct session *s, int64_t channel, const char *data, size_t len);
