/* SPDX-License-Identifier: BSD-3-Clause */
/* A small etcd v3 client over its JSON gateway (HTTP/1.1 + JSON, libcurl and
 * jansson): leases, puts, a create-if-absent, ranges over a prefix and a
 * watch stream. No C etcd v3 client is packaged for Debian; the gateway is
 * part of every etcd 3.4 server (docs/cluster.md, "Membership").
 *
 * Keys and values are plain strings here; the base64 the gateway wants is
 * this file's business. A handle is one thread's: it holds a curl handle.
 * Every call tries each endpoint in turn until one answers.
 *
 * Errors: -ECONNREFUSED (no endpoint answered), -ETIMEDOUT, -EPROTO (an
 * answer that is not what etcd sends), -ENOENT (the lease is gone),
 * -EEXIST (create: the key exists), -ENOMEM, -EINVAL (arguments). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct etcd;

/* endpoints: comma-separated base addresses, "http://127.0.0.1:2379,...".
 * timeout_ms bounds every call but the watch. NULL with errno. */
struct etcd *etcd_open(const char *endpoints, int timeout_ms);
void etcd_close(struct etcd *e);

/* The etcd cluster's id (decimal, as its headers carry it) into out, and
 * its current revision. */
int etcd_status(struct etcd *e, char *id, size_t n, int64_t *revision);

/* A lease of ttl_s seconds; *granted is what etcd granted (it raises a TTL
 * below its minimum: 1.5 election timeouts, rounded up to a second). */
int etcd_lease_grant(struct etcd *e, int ttl_s, int64_t *id, int *granted);
/* Renews lease id; *ttl is the seconds it now has. -ENOENT when it expired. */
int etcd_lease_keepalive(struct etcd *e, int64_t id, int *ttl);
int etcd_lease_revoke(struct etcd *e, int64_t id);

/* Puts key = value, attached to lease (0: none). *revision (may be NULL)
 * is the store's revision after the put. */
int etcd_put(struct etcd *e, const char *key, const char *value, int64_t lease, int64_t *revision);
/* The same only if key does not exist: -EEXIST otherwise. */
int etcd_create(struct etcd *e, const char *key, const char *value, int64_t lease,
		int64_t *revision);
int etcd_delete(struct etcd *e, const char *key);

struct etcd_kv {
	const char *key, *value;
	int64_t mod_revision, lease;
	bool deleted; /* in a watch: the key was deleted (value is "") */
};

/* Calls each(arg, kv) for every key under prefix, in key order; *revision
 * is the store's revision the range was read at. */
int etcd_range(struct etcd *e, const char *prefix,
	       void (*each)(void *arg, const struct etcd_kv *kv), void *arg, int64_t *revision);

/* Streams the changes under prefix from revision `from` on: each(arg, kv,
 * revision) for every event. Returns when stop() answers true (checked at
 * least every 200 ms) with 0, or when the stream breaks with -errno; the
 * caller re-reads with etcd_range and watches again. */
int etcd_watch(struct etcd *e, const char *prefix, int64_t from,
	       void (*each)(void *arg, const struct etcd_kv *kv, int64_t revision),
	       bool (*stop)(void *arg), void *arg);
