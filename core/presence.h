/* SPDX-License-Identifier: BSD-3-Clause */
/* Presence: online, away or offline per user, for the users each client is
 * looking at. Several connections of one user are one presence; a user with
 * no connection stays present for a grace period (a reconnect is not a
 * departure); changes are coalesced to at most one per interval; nothing is
 * persisted. Owned by one thread; every function here is thread-safe and
 * returns at once. Answers and changes reach sessions as worker events. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "fanout.h"
#include "route.h"

enum presence_status { PRESENCE_OFFLINE, PRESENCE_ONLINE, PRESENCE_AWAY };

struct presence;

/* How an answer or a change reaches a session: on the worker's thread, from
 * the worker's inbox (worker_arg as the inbox hands it), as JSON text. */
typedef void (*presence_deliver_fn)(void *worker_arg, uint64_t session, const char *json);

/* NULL with errno. */
struct presence *presence_create(struct fanout *f, int grace_ms, int interval_ms,
				 presence_deliver_fn deliver);
/* Stops the thread: from then on every call is ignored. Call before the
 * workers it posts to go away. */
void presence_stop(struct presence *p);
void presence_destroy(struct presence *p);

/* A connection of user became ready, or closed. */
void presence_connect(struct presence *p, const char *user);
void presence_disconnect(struct presence *p, const char *user);
/* The user says they are away (or back). */
void presence_set_away(struct presence *p, const char *user, bool away);

#define PRESENCE_WATCH_MAX 500 /* users one session watches */

/* Session (worker, session) now watches exactly these users (replacing what it
 * watched). It gets {"type":"presence_subscribed","req":..,"users":[{user,
 * status}]} and then {"type":"presence","user":..,"status":..} on changes.
 * A user with hidden[i] set (hidden may be NULL) is one the session may not
 * see: answered offline and never announced.
 * 0, -EINVAL (more than 500 users), -ENOMEM. */
int presence_watch(struct presence *p, int worker, uint64_t session, const char *req,
		   const char *const *users, const bool *hidden, int nusers);
void presence_unwatch(struct presence *p, int worker, uint64_t session);

const char *presence_status_name(enum presence_status s);

/* In a cluster: the route's presence_home and presence_send shard users
 * over the nodes (route.h). Call before the first connection. */
void presence_set_route(struct presence *p, const struct route *r);
/* A presence message from node from (the peer link's thread). */
void presence_remote(struct presence *p, const char *from, const struct route_presence *m);
/* The ring changed (ring_changed), or a link came up: every home hears
 * again what this node knows. */
void presence_resync(struct presence *p, bool ring_changed);
