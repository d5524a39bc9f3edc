/* SPDX-License-Identifier: BSD-3-Clause */
/* Membership: this node's lease and key in etcd, the live member set, and
 * the ring built from it (docs/cluster.md, "Membership").
 *
 *   /fanout/<cluster>/nodes/<name>  {"name","peer","admin","state"}  on our lease
 *   /fanout/<cluster>/drain/<name>  present while an operator drains the node
 *
 * Two threads: the lease thread renews the lease every third of its TTL and
 * knows until when it surely holds (fail closed: membership_may_ack() turns
 * false lease_margin_ms before the lease could have expired, whether or not
 * etcd answers); the watch thread follows the members and swaps in a new
 * ring, its epoch the etcd revision it was built from. Readers get the ring
 * lock-free; an old ring is freed a grace period after it was replaced. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "ring.h"

#define MEMBERSHIP_PREFIX_MAX 160

struct membership;

/* A member as its key says. */
struct member_info {
	char name[RING_ID_MAX + 1];
	char peer[64], admin[96];
	bool draining;
};

/* Called on the watch thread after each new ring is in place. */
typedef void (*membership_changed_fn)(void *arg, const struct ring *ring);

/* Joins: grants the lease, creates this node's key (-EEXIST when a live
 * node has the name already), reads the members and builds the first ring,
 * then starts both threads. Each ring's epoch is epoch_base plus the etcd
 * revision it was built from (the cluster adds the etcd generation, so a
 * replaced etcd still yields higher epochs). NULL with errno (the reason is
 * logged): EEXIST, ECONNREFUSED (no etcd), EINVAL (config), ENOMEM. */
struct membership *membership_start(const struct config_cluster *cfg, int64_t epoch_base,
				    membership_changed_fn changed, void *arg);
/* Leaves: stops both threads and revokes the lease (the members see us go
 * at once); may_ack is false from then on, and the last ring stays
 * readable for threads still routing. Once. */
void membership_leave(struct membership *m);
/* Leaves if it has not, and frees: no thread may route any more. */
void membership_stop(struct membership *m);

/* The current ring (never NULL after a start). Valid for the grace period
 * (two seconds) after a newer one replaced it: look up, do not keep. */
const struct ring *membership_ring(struct membership *m);
const char *membership_self(struct membership *m);
/* True while the lease surely holds: publishes may be acknowledged. */
bool membership_may_ack(struct membership *m);
/* The member's addresses from the last read of the members; 0 or -ENOENT. */
int membership_member(struct membership *m, const char *name, struct member_info *out);
/* Copies up to max members (drained ones too) into out; returns how many. */
int membership_members(struct membership *m, struct member_info *out, int max);
/* The members as JSON for the operator's API: [{"name", "admin", "peer",
 * "draining", "self"}], up to MEMBERS_JSON_MAX. */
#define MEMBERS_JSON_MAX 1024
#include <jansson.h>
json_t *membership_nodes_json(struct membership *m);
/* Whether this node owns channel by the current ring (false while drained:
 * not in it); owner gets the owner's id and epoch the ring's epoch. Any
 * thread, lock-free. */
bool membership_owns(struct membership *m, int64_t channel, char owner[RING_ID_MAX + 1],
		     int64_t *epoch);
/* The same for any ring key (ring_name_key: a user's presence home). */
bool membership_owns_key(struct membership *m, uint64_t key, char owner[RING_ID_MAX + 1],
			 int64_t *epoch);

/* Key names, shared with fanoutctl. */
void membership_nodes_prefix(const char *cluster, char *out, size_t n);
void membership_drain_key(const char *cluster, const char *name, char *out, size_t n);
/* Parses a node key's value; 0 or -EPROTO. */
int membership_parse(const char *value, struct member_info *out);
