/* SPDX-License-Identifier: BSD-3-Clause */
/* Interest and broadcasts (cluster-internal.h): which channels this node has
 * subscribers of and at which owner it registered them; which channels each
 * peer registered here; and the broadcast that sends a committed frame once
 * to every interested node.
 *
 *   gateway G                       owner O
 *     first subscriber of C here
 *     INTEREST(C, on)          ->   G joins C's set
 *                                   commit C:n
 *                              <-   BROADCAST(C, n, frame)   (once per node)
 *     fan out to G's workers
 *
 * When C's owner changes (a new ring) or G's link to O comes back, G
 * registers again and sends C's local subscribers back to PostgreSQL for
 * anything broadcast while nobody was listening (edge_channel_resync): a
 * subscriber sees every message, in order, at least once. */
#define LOG_COMPONENT "cluster"
#include "cluster-internal.h"

#include "frame.h"
#include "log.h"
#include "publish.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool cluster_owner_of(struct cluster *c, int64_t channel, char owner[PEER_NAME_MAX + 1],
		      int64_t *epoch)
{
	struct membership *m = __atomic_load_n(&c->m, __ATOMIC_ACQUIRE);

	if (m == NULL) {
		*epoch = 0;
		snprintf(owner, PEER_NAME_MAX + 1, "%s", c->cfg.name);
		return true;
	}
	return membership_owns(m, channel, owner, epoch);
}

/* Registers (or drops) this node's interest in channel at its owner.
 * Caller holds the lock. Returns the owner registered with, "" if none. */
static void interest_send(struct cluster *c, int64_t channel, bool on, char *registered)
{
	struct peer_msg m = {.type = PEER_INTEREST, .channel = channel, .on = on};
	char owner[PEER_NAME_MAX + 1];
	int64_t epoch;

	if (cluster_owner_of(c, channel, owner, &epoch)) {
		snprintf(registered, CHANMAP_VALUE, "%s", c->cfg.name);
		return;
	}
	if (c->link && peer_link_send(c->link, owner, true, &m) == 0)
		snprintf(registered, CHANMAP_VALUE, "%s", owner);
	else
		registered[0] = 0; /* again when the link to the owner is up */
}

/* The fan-out engine's hook: the node's first subscriber of channel, or its
 * last gone. Under the engine's lock, on a worker thread. */
void cluster_interest_hook(void *arg, int64_t channel, bool on)
{
	struct cluster *c = arg;
	char *v, scratch[CHANMAP_VALUE];

	pthread_mutex_lock(&c->lock);
	if (on && (v = chanmap_put(c->interest, channel)) != NULL) {
		interest_send(c, channel, true, v);
	} else if (!on && chanmap_del(c->interest, channel)) {
		interest_send(c, channel, false, scratch);
	}
	pthread_mutex_unlock(&c->lock);
}

/* ---- re-registering ---- */

struct moved {
	struct cluster *c;
	const char *only; /* the peer whose link came up; NULL: owners that changed */
	int64_t *channels;
	size_t n, cap;
};

static void reregister_one(void *arg, int64_t channel, char *registered)
{
	struct moved *mv = arg;
	char owner[PEER_NAME_MAX + 1];
	int64_t epoch;

	cluster_owner_of(mv->c, channel, owner, &epoch);
	if (mv->only ? strcmp(owner, mv->only) != 0 : strcmp(owner, registered) == 0)
		return;
	interest_send(mv->c, channel, true, registered);
	if (mv->n == mv->cap) {
		size_t cap = mv->cap ? mv->cap * 2 : 64;
		int64_t *grown = realloc(mv->channels, cap * sizeof(*grown));

		if (grown == NULL)
			return;
		mv->channels = grown;
		mv->cap = cap;
	}
	mv->channels[mv->n++] = channel;
}

/* Registers again every channel matching mv, then sends their subscribers
 * back to PostgreSQL for what may have been lost. */
static void reregister(struct cluster *c, const char *only)
{
	struct moved mv = {.c = c, .only = only};

	pthread_mutex_lock(&c->lock);
	chanmap_each(c->interest, reregister_one, &mv);
	pthread_mutex_unlock(&c->lock);
	for (size_t i = 0; i < mv.n; i++)
		edge_channel_resync(c->edge, mv.channels[i]);
	if (mv.n)
		LOG(INFO, "%zu channel(s) registered again at %s%s; their subscribers catch up",
		    mv.n, only ? "" : "new owners", only ? only : "");
	free(mv.channels);
}

void cluster_interest_ring(struct cluster *c)
{
	reregister(c, NULL);
}

void cluster_interest_up(struct cluster *c, const char *peer)
{
	reregister(c, peer);
}

/* Drops the interest sets of peers that are no longer members. */
void cluster_interest_forget_peers(struct cluster *c, const struct ring *r)
{
	struct membership *m = __atomic_load_n(&c->m, __ATOMIC_ACQUIRE);
	struct member_info info;

	pthread_mutex_lock(&c->lock);
	for (struct peer_interest **pp = &c->remote; *pp;) {
		struct peer_interest *pi = *pp;

		if (m && membership_member(m, pi->name, &info) < 0) {
			*pp = pi->next;
			chanmap_destroy(pi->channels);
			free(pi);
		} else {
			pp = &pi->next;
		}
	}
	pthread_mutex_unlock(&c->lock);
}

/* ---- the owner's side ---- */

static struct peer_interest *peer_set(struct cluster *c, const char *peer, bool create)
{
	struct peer_interest *pi;

	for (pi = c->remote; pi; pi = pi->next)
		if (strcmp(pi->name, peer) == 0)
			return pi;
	if (!create || (pi = calloc(1, sizeof(*pi))) == NULL)
		return NULL;
	if ((pi->channels = chanmap_create()) == NULL) {
		free(pi);
		return NULL;
	}
	snprintf(pi->name, sizeof(pi->name), "%s", peer);
	pi->next = c->remote;
	c->remote = pi;
	return pi;
}

/* The peer frame carrying f: a BROADCAST or a RELAY. */
static struct peer_msg frame_msg(enum peer_type type, const struct frame *f)
{
	return (struct peer_msg){.type = type,
				 .channel = f->channel,
				 .seq = f->seq,
				 .frame_kind = f->kind,
				 .payload = f->buf + FRAME_HEADROOM,
				 .payload_len = f->len};
}

/* Sends f to every peer with interest in its channel but `except`. Caller
 * holds the lock. */
static void broadcast_to_peers(struct cluster *c, const struct frame *f, const char *except)
{
	struct peer_msg m = frame_msg(PEER_BROADCAST, f);

	for (struct peer_interest *pi = c->remote; pi; pi = pi->next)
		if ((!except || strcmp(pi->name, except) != 0) &&
		    chanmap_get(pi->channels, f->channel))
			peer_link_send(c->link, pi->name, false, &m);
}

void cluster_broadcast(void *ctx, const struct frame *f)
{
	struct cluster *c = ctx;
	char owner[PEER_NAME_MAX + 1];
	int64_t epoch;
	bool ours;

	if (f->kind == FRAME_CONTROL)
		return;
	ours = cluster_owner_of(c, f->channel, owner, &epoch);
	pthread_mutex_lock(&c->lock);
	if (c->link && ours) {
		broadcast_to_peers(c, f, NULL);
	} else if (c->link) {
		/* Not ours (typing on a channel owned elsewhere, or a commit
		 * that raced a new ring): the owner knows who listens. */
		struct peer_msg m = frame_msg(PEER_RELAY, f);

		peer_link_send(c->link, owner, true, &m);
	}
	pthread_mutex_unlock(&c->lock);
}

/* A frame from a peer for this node's subscribers. */
static struct frame *frame_of(const struct peer_msg *m)
{
	if (m->frame_kind != FRAME_DURABLE && m->frame_kind != FRAME_EPHEMERAL &&
	    m->frame_kind != FRAME_MENTION)
		return NULL;
	return frame_new((enum frame_kind)m->frame_kind, m->channel, m->seq, m->payload,
			 m->payload_len);
}

void cluster_interest_message(struct cluster *c, const char *peer, const struct peer_msg *m)
{
	struct peer_interest *pi;
	struct frame *f;

	switch (m->type) {
	case PEER_INTEREST:
		pthread_mutex_lock(&c->lock);
		pi = peer_set(c, peer, m->on);
		if (pi && m->on)
			chanmap_put(pi->channels, m->channel);
		else if (pi)
			chanmap_del(pi->channels, m->channel);
		pthread_mutex_unlock(&c->lock);
		break;
	case PEER_BROADCAST:
		if ((f = frame_of(m)) != NULL)
			publish_deliver(c->ps, f);
		break;
	case PEER_RELAY:
		if ((f = frame_of(m)) == NULL)
			break;
		pthread_mutex_lock(&c->lock);
		broadcast_to_peers(c, f, peer);
		pthread_mutex_unlock(&c->lock);
		publish_deliver(c->ps, f);
		break;
	default:
		LOG(WARN, "peer %s sent a frame of type %d on the wrong link; ignored", peer,
		    (int)m->type);
	}
}

void cluster_interest_free(struct cluster *c)
{
	while (c->remote) {
		struct peer_interest *pi = c->remote;

		c->remote = pi->next;
		chanmap_destroy(pi->channels);
		free(pi);
	}
}
