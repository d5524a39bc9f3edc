/* SPDX-License-Identifier: BSD-3-Clause */
/* The peer link: TCP between the nodes of a cluster, frames of peer_wire.h,
 * mutually authenticated with the cluster's secret (docs/cluster.md, "The
 * peer link").
 *
 * Each node dials every other member (an *outbound* link, which carries its
 * own requests: publishes, interest, relays, and brings back their answers:
 * acks and broadcasts) and accepts the others' dials (*inbound* links, on
 * which it answers). So every pair of nodes has two connections, each with
 * one direction of requests.
 *
 * One thread does all the I/O (epoll). Any thread may send: the frame is
 * appended to the link's queue under a lock and the thread is woken. Queues
 * are bounded: a request past the bound is refused (-EAGAIN, the caller
 * pushes back); a broadcast past it closes the link instead, and the
 * gateway behind it resynchronises from PostgreSQL when it reconnects (a
 * cursor, not a buffer). Lost outbound links are redialled with backoff
 * (100 ms doubling to 2 s). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "peer_wire.h"

#define PEER_QUEUE_MAX (16u << 20) /* bytes queued on one link */

struct peer_link;

struct peer_link_ops {
	/* A frame from an authenticated peer (never a handshake frame), on the
	 * link thread. outbound: it came on our dial (an answer), else on
	 * theirs (a request). */
	void (*on_message)(void *arg, const char *peer, bool outbound, const struct peer_msg *m);
	/* Our outbound link to peer is up (authenticated) or lost. */
	void (*on_up)(void *arg, const char *peer);
	void (*on_down)(void *arg, const char *peer);
	/* Every 50 ms on the link thread: timers. */
	void (*on_tick)(void *arg);
	/* Whether name is a member now: a dial from anyone else is refused. */
	bool (*is_member)(void *arg, const char *name);
};

/* Listens on listen ("host:port"). The secret must be non-empty. NULL with
 * errno (EINVAL, EADDRINUSE, ...), the reason logged. */
struct peer_link *peer_link_start(const char *self, const char *listen, const char *secret,
				  const struct peer_link_ops *ops, void *arg);
/* Closes every link and joins the thread. */
void peer_link_stop(struct peer_link *l);

/* Keeps an outbound link to name at addr ("host:port"), or drops it
 * (addr NULL). Any thread. */
void peer_link_want(struct peer_link *l, const char *name, const char *addr);

/* Queues m to peer: on our outbound link (outbound) or on its inbound link.
 * Any thread. 0; -ENOTCONN (no such link up), -EAGAIN (queue full; for a
 * broadcast the link is closed), -EINVAL, -ENOMEM. */
int peer_link_send(struct peer_link *l, const char *peer, bool outbound, const struct peer_msg *m);

/* Bytes sent and received over every link since start. */
uint64_t peer_link_bytes_sent(struct peer_link *l);
uint64_t peer_link_bytes_received(struct peer_link *l);
/* Frames refused (bad version, length, type, a failed handshake). */
uint64_t peer_link_refused(struct peer_link *l);
