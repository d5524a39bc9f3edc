/* SPDX-License-Identifier: BSD-3-Clause */
/* The cluster's state, shared by cluster.c (lifecycle, the link's events,
 * forwarded publishes) and interest.c (who subscribes where, broadcasts).
 * cluster.c calls into interest.c, never the other way. */
#pragma once

#include "chanmap.h"
#include "cluster.h"
#include "peer.h"
#include "ring.h"

#include <pthread.h>
#include <stdint.h>

/* A publish forwarded to its owner, waiting for the ack. */
struct pending {
	struct pending *next;
	uint64_t req;
	struct commit_cookie *cookie;
	bool live, sent, local;
	char owner[PEER_NAME_MAX + 1]; /* where it was sent */
	uint64_t retry_at_ns, deadline_ns;
	struct persist_publish p; /* its strings in data */
	char data[];
};

/* The channels one peer subscribes to at this node. */
struct peer_interest {
	struct peer_interest *next;
	char name[PEER_NAME_MAX + 1];
	struct chanmap *channels;
};

struct cluster {
	struct config_cluster cfg;
	char dsn[1024];
	struct route route;
	struct membership *m;
	struct peer_link *link;
	struct edge *edge;
	struct publish_state *ps;

	pthread_mutex_t lock; /* everything below */
	bool stopping;
	struct pending *pending;
	int npending;
	uint64_t next_req;
	/* Channels with subscribers here -> the owner we registered with
	 * ("" when not registered yet). */
	struct chanmap *interest;
	struct peer_interest *remote;
	/* The peers we dial, as of the last ring. */
	char (*dialled)[PEER_NAME_MAX + 1];
	int ndialled;
	/* Drained by an operator: out of the ring; once what is in flight has
	 * settled, the clients are closed with 1012 (once). */
	bool draining, drain_closed;
	uint64_t drain_close_at_ns;
};

/* interest.c */
/* Whether this node owns channel by the current ring; owner gets the owner's
 * name and epoch the ring's epoch. Any thread. */
bool cluster_owner_of(struct cluster *c, int64_t channel, char owner[PEER_NAME_MAX + 1],
		      int64_t *epoch);
void cluster_interest_hook(void *arg, int64_t channel, bool on);
void cluster_interest_ring(struct cluster *c);
void cluster_interest_up(struct cluster *c, const char *peer);
void cluster_interest_message(struct cluster *c, const char *peer, const struct peer_msg *m);
void cluster_broadcast(void *ctx, const struct frame *f);
void cluster_interest_forget_peers(struct cluster *c, const struct ring *r);
void cluster_interest_free(struct cluster *c);
