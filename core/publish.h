/* SPDX-License-Identifier: BSD-3-Clause */
/* The one door of a publish, and the one way out for what it commits.
 *
 * Every message and event (edit, delete, react, unreact) enters through
 * publish_submit(), from a websocket request (requests.c), an authorised
 * event job (edge.c) or the HTTP API (socket/api.c), and later from the
 * peer link. The caller has validated it (auth, membership, size, rate);
 * here it is routed (route.h), then sequenced and persisted by the writer
 * (persist/writer.c), or, on a live-only channel, given the node's next seq
 * and not stored. Only after COMMIT does the cookie hear of it (the ack),
 * and the frame leave through publish_broadcast(): to every subscribed
 * worker through the fan-out engine today, to peer nodes too later. Typing
 * and presence notices leave through the same broadcast.
 *
 *   validate (caller) -> route -> sequence + persist -> COMMIT -> ack + broadcast */
#pragma once

#include <stdbool.h>

#include "edge.h"
#include "route.h"

struct publish_state;

/* The door of one node: the route it asks, the fan-out engine it broadcasts
 * through, and owner, the edge handed to each cookie's done. NULL with
 * errno. */
struct publish_state *publish_create(const struct route *route, struct fanout *fanout,
				     struct edge *owner);
/* The writer durable publishes go to (created after the door: it calls
 * publish_on_commit). */
void publish_set_writer(struct publish_state *ps, struct persist_writer *writer);
void publish_destroy(struct publish_state *ps);

/* Publishes p into its channel. live: the channel is live-only (not stored,
 * not deduplicated). Returns 0 when cookie->done will be called exactly once:
 * on a writer lane's thread after COMMIT (or the failure), or for a live-only
 * publish before this returns. Else, and then done is never called:
 * -EAGAIN (the writer is full: overloaded), -EINVAL or -EILSEQ (bad ids,
 * kind or text), -ENOMEM, -EXDEV (another node owns the channel and the
 * route has no way there), or what the route's forward answers. Any
 * thread. */
int publish_submit(struct publish_state *ps, const struct persist_publish *p, bool live,
		   struct commit_cookie *cookie);

/* Whether this node owns channel now, and at which owner epoch (the
 * operator's channel info). Any thread. */
bool publish_owns(struct publish_state *ps, int64_t channel, int64_t *epoch);

/* Hands f (its reference taken) to every worker with a subscriber of its
 * channel, and through the route to every other node with one. Any thread;
 * frames of one channel must come in seq order. */
void publish_broadcast(struct publish_state *ps, struct frame *f);
/* Hands f (its reference taken) to this node's workers only: a frame
 * another node broadcast, arriving over the peer link. */
void publish_deliver(struct publish_state *ps, struct frame *f);
/* Tells the other nodes, through the route, of a user event applied here. */
void publish_user_event(struct publish_state *ps, const struct route_user_event *ev);
/* Tells cookie the outcome of a publish the route forwarded (its ack). */
void publish_complete(struct publish_state *ps, struct commit_cookie *cookie,
		      enum persist_outcome outcome, int error, const struct persist_message *m);

/* The writer's commit callback (arg: the door): encodes a committed message
 * once, broadcasts it, then tells the cookie. Writer thread. */
void publish_on_commit(void *arg, enum persist_outcome outcome, int error,
		       const struct persist_message *m, void *cookie);
