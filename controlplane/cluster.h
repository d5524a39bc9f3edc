/* SPDX-License-Identifier: BSD-3-Clause */
/* The cluster on one node (docs/cluster.md): membership in etcd, the peer
 * link to every other member, and the route the publish door asks.
 *
 * As a gateway it forwards publishes of channels other nodes own and keeps
 * each until the owner acknowledges it, sending it again (same
 * client_msg_id: one row) to whoever owns the channel after a failover; it
 * registers the node's interest in each channel with its subscribers at the
 * channel's owner, and delivers the frames the owners broadcast to its own
 * workers. As an owner it serves the publishes peers forward through the
 * same door as its own clients, and broadcasts each committed frame once to
 * every node with subscribers of the channel.
 *
 * Start order: cluster_create() gives the route for the messaging core;
 * once the core and its writer run, cluster_start() opens the peer link and
 * only then joins, so the node takes channels when it can serve them. */
#pragma once

#include <stdbool.h>

#include "config.h"
#include "edge.h"
#include "membership.h"
#include "route.h"

struct cluster;

/* Checks cfg (a name, a peer address, a secret); dsn is the PostgreSQL the
 * node writes to (where etcd generations are numbered). NULL with errno
 * EINVAL (the reason logged) or ENOMEM. */
struct cluster *cluster_create(const struct config_cluster *cfg, const char *dsn);
/* The route to hand edge_create(). */
const struct route *cluster_route(struct cluster *c);
/* Opens the peer link and joins through etcd; e is the node's messaging
 * core, its publish door the one forwarded publishes enter. 0 or -errno:
 * -EEXIST (a live node has our name), -ECONNREFUSED (no etcd), -EADDRINUSE,
 * -EIO (PostgreSQL could not number the etcd cluster). */
int cluster_start(struct cluster *c, struct edge *e);
/* The writer's gate (persist_writer_config.may_commit): the lease holds. */
bool cluster_may_commit(void *cluster);
/* Leaves the cluster (revoking the lease), fails what is still forwarded
 * (-ECANCELED) and closes the links. Call before the core stops. */
void cluster_stop(struct cluster *c);
void cluster_destroy(struct cluster *c);

/* For the admin API and fanoutctl. NULL before cluster_start(). */
struct membership *cluster_membership(struct cluster *c);
/* True while an operator has the node drained (fanoutctl node drain): it
 * owns nothing and reports not ready. */
bool cluster_draining(struct cluster *c);
/* Publishes waiting for a remote owner's ack. */
int cluster_pending(struct cluster *c);
