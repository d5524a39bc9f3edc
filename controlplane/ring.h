/* SPDX-License-Identifier: BSD-3-Clause */
/* The ring: consistent hashing with virtual nodes over the live members of a
 * cluster (DESIGN.md section 4). Every node builds the same ring from the same
 * member set, so every node agrees on who owns a channel (and on whose node a
 * user's presence lives) without asking anyone. Its epoch is the etcd
 * revision of the membership it was built from.
 *
 * A ring is immutable once built: readers on any thread may use it while the
 * control thread builds the next one and swaps a pointer. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The vnodes per member a node uses unless [cluster] vnodes says otherwise,
 * chosen by `fanoutctl ring simulate` (docs/cluster.md). */
#define RING_DEFAULT_VNODES 8192
#define RING_MAX_VNODES	    65536
#define RING_MAX_MEMBERS    4096
#define RING_ID_MAX	    63

struct ring;

/* Builds the ring of n members named ids (each 1..RING_ID_MAX bytes,
 * distinct; their order does not matter) with vnodes points each, at epoch.
 * NULL with errno: EINVAL (no member, too many, a bad or repeated id, vnodes
 * out of 1..RING_MAX_VNODES), ENOMEM. */
struct ring *ring_build(const char *const *ids, int n, int vnodes, int64_t epoch);
void ring_free(struct ring *r);

/* The member owning key: an index in 0..ring_members()-1, members sorted by
 * id. Lock-free, any thread. */
int ring_owner(const struct ring *r, uint64_t key);
/* The owner's id. */
const char *ring_owner_id(const struct ring *r, uint64_t key);

/* Where a channel and a user's presence fall on the ring. Two salts, so a
 * node that owns channel 7 does not also hold user 7's presence. */
uint64_t ring_channel_key(int64_t channel);
uint64_t ring_user_key(int64_t user);
/* A user's key by name: where the user's presence lives. */
uint64_t ring_name_key(const char *name);

int ring_members(const struct ring *r);
/* Member index i's id (sorted order), or NULL past the end. */
const char *ring_member_id(const struct ring *r, int i);
/* The member index of id, or -1. */
int ring_member_index(const struct ring *r, const char *id);
int ring_vnodes(const struct ring *r);
int64_t ring_epoch(const struct ring *r);
/* The heap the ring holds, in bytes. */
size_t ring_bytes(const struct ring *r);

/* The share of the key space each member owns, summed over its arcs:
 * share[i] for member i, summing to 1. share has ring_members() slots. */
void ring_shares(const struct ring *r, double *share);

/* Owners of many keys at once, keys sorted ascending: one merge walk of the
 * ring instead of a search per key (the simulation's 10 M channels). */
void ring_owners_sorted(const struct ring *r, const uint64_t *keys, size_t n, uint16_t *owner);
