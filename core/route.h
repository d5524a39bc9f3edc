/* The route: who owns a channel. A publish goes to its channel's owner,
 * which sequences and persists it (DESIGN.md section 2, step 2). A node
 * alone owns every channel: route_local. The cluster (controlplane/) will
 * answer from its ring and send the rest over the peer link; sessions and
 * edges never ask, only the publish door does (publish.c). */
#pragma once

#include <stdint.h>

enum route_owner {
	ROUTE_OWNER_LOCAL,  /* this node sequences and persists the channel */
	ROUTE_OWNER_REMOTE, /* another node does; forward to it */
};

struct route {
	/* Who owns channel now, and the owner epoch of that answer (the ring's,
	 * DESIGN.md section 4; 0 for a node alone): the writer claims the
	 * channel at it and commits only while no newer owner has. Any thread;
	 * must not block. */
	enum route_owner (*owner)(void *ctx, int64_t channel, int64_t *epoch);
	void *ctx;
};

/* The route of a node alone: every channel is local. */
extern const struct route route_local;
