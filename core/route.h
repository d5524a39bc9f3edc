/* The route: who owns a channel, and the way to the others. A publish goes
 * to its channel's owner, which sequences and persists it (DESIGN.md
 * section 2, step 2), and what a node broadcasts reaches the other nodes
 * with subscribers. A node alone owns every channel: route_local. The
 * cluster (controlplane/cluster.c) answers from its ring and sends the rest
 * over the peer link; sessions and edges never ask, only the publish door
 * does (publish.c). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct persist_publish;
struct commit_cookie;
struct frame;

enum route_owner {
	ROUTE_OWNER_LOCAL,  /* this node sequences and persists the channel */
	ROUTE_OWNER_REMOTE, /* another node does; forward to it */
};

/* What the other nodes must hear about a user: their sessions there follow
 * a membership change or a moved read cursor (docs/cluster.md). */
enum route_user_kind { ROUTE_USER_JOINED, ROUTE_USER_LEFT, ROUTE_USER_READ };

struct route_user_event {
	enum route_user_kind kind;
	int64_t user, channel;
	int64_t seq;	/* ROUTE_USER_READ: the read cursor */
	bool ephemeral; /* JOINED: the channel is live-only */
};

struct route {
	/* Who owns channel now, and the owner epoch of that answer (the ring's,
	 * DESIGN.md section 4; 0 for a node alone): the writer claims the
	 * channel at it and commits only while no newer owner has. Any thread;
	 * must not block. */
	enum route_owner (*owner)(void *ctx, int64_t channel, int64_t *epoch);
	/* Sends a publish of a channel another node owns to that node. The
	 * contract of publish_submit(): 0, and cookie->done exactly once later
	 * (from any thread) with the owner's outcome; else -errno and never.
	 * NULL: such publishes are refused (-EXDEV). */
	int (*forward)(void *ctx, const struct persist_publish *p, bool live,
		       struct commit_cookie *cookie);
	/* Hands a frame this node broadcasts (committed here, or an ephemeral
	 * event of a session here) to the other nodes with subscribers. Reads
	 * f and takes no reference. Any thread; frames of a channel come in
	 * order. NULL: there are no other nodes. */
	void (*broadcast)(void *ctx, const struct frame *f);
	/* Tells the other nodes of a user event applied here. Any thread.
	 * NULL: there are no other nodes. */
	void (*user_event)(void *ctx, const struct route_user_event *ev);
	void *ctx;
};

/* The route of a node alone: every channel is local. */
extern const struct route route_local;
