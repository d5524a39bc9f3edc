/* SPDX-License-Identifier: BSD-3-Clause */
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

/* Presence is sharded by user (docs/cluster.md): each user's status lives on
 * one node, its home on the ring. Every node reports the status its own
 * connections give a user to the user's home; a node whose sessions watch
 * a user registers at the home, which sends it the user's status and each
 * change. */
enum route_presence_kind {
	ROUTE_PRESENCE_REPORT,	/* node -> home: this node's status of the user */
	ROUTE_PRESENCE_WATCH,	/* node -> home: sessions here watch the user */
	ROUTE_PRESENCE_UNWATCH, /* node -> home: no longer */
	ROUTE_PRESENCE_STATE,	/* home -> watching node: the user's status */
};

struct route_presence {
	enum route_presence_kind kind;
	uint8_t status; /* REPORT, STATE: enum presence_status */
	char user[65];
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
	/* True when this node is user's presence home; else home gets the
	 * home's name. Any thread; must not block. NULL: a node alone is the
	 * home of every user. */
	bool (*presence_home)(void *ctx, const char *user, char home[65]);
	/* Sends m to node (a home, or a node that watches). Must not block. */
	void (*presence_send)(void *ctx, const char *node, const struct route_presence *m);
	void *ctx;
};

/* The route of a node alone: every channel is local. */
extern const struct route route_local;
