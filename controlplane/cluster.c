/* SPDX-License-Identifier: BSD-3-Clause */
/* The cluster on one node (cluster.h): its lifecycle, the link's events,
 * the route, and the gateway's forwarded publishes. Interest and broadcasts
 * are in interest.c; both share cluster-internal.h.
 *
 * A forwarded publish lives in the pending list from forward() until its
 * ack: sent to the channel's owner by the ring; sent again (same
 * client_msg_id, so the owner's dedup gives one row) when that link drops,
 * when the ring names another owner, or when the owner answers that it is
 * not the owner (-EXDEV) or was fenced (-ESTALE); failed -ESTALE
 * ("unavailable") after FORWARD_TIMEOUT_NS. If the ring makes this node the
 * owner, the publish goes down the local path. */
#define LOG_COMPONENT "cluster"
#include "cluster-internal.h"

#include "clock.h"
#include "etcd.h"
#include "fanout.h"
#include "log.h"
#include "notify.h"
#include "metrics.h"
#include "publish.h"
#include "store.h"
#include "writer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FORWARD_TIMEOUT_NS    (10 * 1000000000ull)
#define RETRY_NS	      (100 * 1000000ull)
#define PENDING_MAX	      65536
#define DRAIN_SETTLE_NS	      (500 * 1000000ull)
#define CLOSE_SERVICE_RESTART 1012

/* ---- the route ---- */

static enum route_owner route_owner(void *ctx, int64_t channel, int64_t *epoch)
{
	struct cluster *c = ctx;
	char owner[PEER_NAME_MAX + 1];

	/* Stopping, or not started: nothing is ours (forward refuses). */
	if (__atomic_load_n(&c->stopping, __ATOMIC_ACQUIRE) ||
	    __atomic_load_n(&c->m, __ATOMIC_ACQUIRE) == NULL)
		return ROUTE_OWNER_REMOTE;
	return cluster_owner_of(c, channel, owner, epoch) ? ROUTE_OWNER_LOCAL : ROUTE_OWNER_REMOTE;
}

/* ---- the gateway: forwarded publishes ---- */

static struct pending *pending_new(const struct persist_publish *p, bool live,
				   struct commit_cookie *cookie)
{
	const char *kind = p->kind ? p->kind : "message";
	const char *author = p->author_name ? p->author_name : "";
	size_t lk = strlen(kind), li = strlen(p->client_msg_id), la = strlen(author);
	struct pending *pd = calloc(1, sizeof(*pd) + lk + li + la + p->body_len + 4);
	char *at;

	if (pd == NULL)
		return NULL;
	pd->cookie = cookie;
	pd->live = live;
	pd->p = *p;
	at = pd->data;
	pd->p.kind = memcpy(at, kind, lk + 1);
	at += lk + 1;
	pd->p.client_msg_id = memcpy(at, p->client_msg_id, li + 1);
	at += li + 1;
	pd->p.author_name = memcpy(at, author, la + 1);
	at += la + 1;
	memcpy(at, p->body, p->body_len);
	at[p->body_len] = 0;
	pd->p.body = at;
	pd->deadline_ns = time_mono_ns() + FORWARD_TIMEOUT_NS;
	return pd;
}

/* Sends pd to the channel's owner now. Caller holds the lock. true when it
 * went (or the channel turned out to be ours: pd->local). */
static bool pending_send(struct cluster *c, struct pending *pd)
{
	struct peer_msg m = {.type = PEER_PUBLISH};
	int64_t epoch;

	if (cluster_owner_of(c, pd->p.channel_id, pd->owner, &epoch)) {
		pd->local = true;
		return true;
	}
	m.req = pd->req;
	m.live = pd->live;
	m.channel = pd->p.channel_id;
	m.author = pd->p.author_id;
	m.parent = pd->p.parent_seq;
	snprintf(m.kind, sizeof(m.kind), "%s", pd->p.kind);
	snprintf(m.client_msg_id, sizeof(m.client_msg_id), "%s", pd->p.client_msg_id);
	snprintf(m.author_name, sizeof(m.author_name), "%s", pd->p.author_name);
	m.payload = (const uint8_t *)pd->p.body;
	m.payload_len = (uint32_t)pd->p.body_len;
	pd->sent = c->link && peer_link_send(c->link, pd->owner, true, &m) == 0;
	if (!pd->sent)
		pd->retry_at_ns = time_mono_ns() + RETRY_NS;
	return pd->sent;
}

static int route_forward(void *ctx, const struct persist_publish *p, bool live,
			 struct commit_cookie *cookie)
{
	struct cluster *c = ctx;
	int bad = persist_publish_validate(p);
	struct pending *pd = bad ? NULL : pending_new(p, live, cookie);

	/* Refused here as the owner's writer would refuse it, and at once,
	 * like a local publish. */
	if (bad)
		return bad;
	if (pd == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&c->lock);
	if (c->npending >= PENDING_MAX || c->stopping || c->m == NULL) {
		int rc = c->npending >= PENDING_MAX ? -EAGAIN : -EXDEV; /* unavailable */

		pthread_mutex_unlock(&c->lock);
		free(pd);
		return rc;
	}
	pd->req = ++c->next_req;
	pd->next = c->pending;
	c->pending = pd;
	c->npending++;
	pending_send(c, pd); /* or on the next tick */
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* Unlinks the pending publish req. Caller holds the lock. */
static struct pending *pending_take(struct cluster *c, uint64_t req)
{
	for (struct pending **pp = &c->pending; *pp; pp = &(*pp)->next)
		if ((*pp)->req == req) {
			struct pending *pd = *pp;

			*pp = pd->next;
			c->npending--;
			return pd;
		}
	return NULL;
}

static void pending_finish(struct cluster *c, struct pending *pd, enum persist_outcome outcome,
			   int error, int64_t seq, int64_t created_at_us)
{
	struct persist_message m = {
	    .channel_id = pd->p.channel_id,
	    .seq = seq,
	    .author_id = pd->p.author_id,
	    .parent_seq = pd->p.parent_seq,
	    .created_at_us = created_at_us,
	    .author_name = pd->p.author_name,
	    .kind = pd->p.kind,
	    .client_msg_id = pd->p.client_msg_id,
	    .body = pd->p.body,
	    .body_len = pd->p.body_len,
	    .reactions = "",
	};

	publish_complete(c->ps, pd->cookie, outcome, error, &m);
	free(pd);
}

/* An owner's answer to one of our publishes. Link thread. */
static void cluster_on_ack(struct cluster *c, const struct peer_msg *m)
{
	struct pending *pd;
	bool again = m->outcome == PERSIST_FAILED && (m->error == -EXDEV || m->error == -ESTALE);

	pthread_mutex_lock(&c->lock);
	pd = pending_take(c, m->req);
	if (pd && again) {
		/* Not the owner (any more), or fenced: ownership is moving.
		 * Ask again shortly, of whoever the ring names then. */
		pd->sent = false;
		pd->retry_at_ns = time_mono_ns() + RETRY_NS;
		pd->next = c->pending;
		c->pending = pd;
		c->npending++;
		pd = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	if (pd)
		pending_finish(c, pd, (enum persist_outcome)m->outcome, m->error, m->seq,
			       m->created_at_us);
}

/* Every 50 ms on the link thread: sends what waits, fails what expired, and
 * hands to the local path what this node now owns. */
static void cluster_tick(void *arg)
{
	struct cluster *c = arg;
	struct pending *done = NULL, **pp;
	uint64_t now = time_mono_ns();

	pthread_mutex_lock(&c->lock);
	for (pp = &c->pending; *pp;) {
		struct pending *pd = *pp;

		if (!pd->sent && now >= pd->retry_at_ns)
			pending_send(c, pd);
		if (now < pd->deadline_ns && !pd->local) {
			pp = &pd->next;
			continue;
		}
		*pp = pd->next;
		c->npending--;
		pd->next = done;
		done = pd;
	}
	if (c->draining && !c->drain_closed && now >= c->drain_close_at_ns && c->npending == 0) {
		c->drain_closed = true;
		for (int w = 0; w < edge_nworkers(c->edge); w++)
			edge_post_close_all(c->edge, w, CLOSE_SERVICE_RESTART,
					    "node draining; reconnect elsewhere");
		LOG(NOTICE, "drained: channels handed over, clients closed with %d",
		    CLOSE_SERVICE_RESTART);
	}
	pthread_mutex_unlock(&c->lock);
	while (done) {
		struct pending *pd = done;
		int rc = -ESTALE;

		done = pd->next;
		if (pd->local)
			rc = publish_submit(c->ps, &pd->p, pd->live, pd->cookie);
		if (rc == 0) {
			free(pd);
			continue;
		}
		if (!pd->local)
			LOG(WARN, "publish to channel %lld: no ack from its owner in %llu s",
			    (long long)pd->p.channel_id,
			    (unsigned long long)(FORWARD_TIMEOUT_NS / 1000000000ull));
		pending_finish(c, pd, PERSIST_FAILED, rc, 0, 0);
	}
}

/* Sends again what went to peer (its link dropped) or to a node the ring no
 * longer names (name NULL). */
static void cluster_resend(struct cluster *c, const char *peer)
{
	char owner[PEER_NAME_MAX + 1];
	int64_t epoch;

	pthread_mutex_lock(&c->lock);
	for (struct pending *pd = c->pending; pd; pd = pd->next) {
		if (!pd->sent)
			continue;
		if (peer ? strcmp(pd->owner, peer) == 0
			 : (cluster_owner_of(c, pd->p.channel_id, owner, &epoch) ||
			    strcmp(owner, pd->owner) != 0)) {
			pd->sent = false;
			pd->retry_at_ns = 0;
		}
	}
	pthread_mutex_unlock(&c->lock);
}

int cluster_pending(struct cluster *c)
{
	int n;

	pthread_mutex_lock(&c->lock);
	n = c->npending;
	pthread_mutex_unlock(&c->lock);
	return n;
}

/* ---- user events: to every other node ---- */

static void route_user_event(void *ctx, const struct route_user_event *ev)
{
	struct cluster *c = ctx;
	struct peer_msg m = {.type = PEER_USER,
			     .user_kind = (uint8_t)ev->kind,
			     .user = ev->user,
			     .channel = ev->channel,
			     .seq = ev->seq,
			     .live = ev->ephemeral};

	pthread_mutex_lock(&c->lock);
	for (int i = 0; c->link && i < c->ndialled; i++)
		peer_link_send(c->link, c->dialled[i], true, &m);
	pthread_mutex_unlock(&c->lock);
}

/* ---- presence, sharded by user ---- */

static bool route_presence_home(void *ctx, const char *user, char home[65])
{
	struct cluster *c = ctx;
	struct membership *m = __atomic_load_n(&c->m, __ATOMIC_ACQUIRE);
	int64_t epoch;

	if (m == NULL || __atomic_load_n(&c->stopping, __ATOMIC_ACQUIRE))
		return true;
	return membership_owns_key(m, ring_name_key(user), home, &epoch);
}

static void route_presence_send(void *ctx, const char *node, const struct route_presence *p)
{
	struct cluster *c = ctx;
	struct peer_msg m = {
	    .type = PEER_PRESENCE, .user_kind = (uint8_t)p->kind, .outcome = p->status};

	snprintf(m.author_name, sizeof(m.author_name), "%s", p->user);
	pthread_mutex_lock(&c->lock);
	if (c->link)
		peer_link_send(c->link, node, true, &m);
	pthread_mutex_unlock(&c->lock);
}

static void cluster_on_presence(struct cluster *c, const char *peer, const struct peer_msg *m)
{
	struct route_presence p = {.kind = (enum route_presence_kind)m->user_kind,
				   .status = m->outcome};

	if (m->user_kind > ROUTE_PRESENCE_STATE || !m->author_name[0])
		return;
	snprintf(p.user, sizeof(p.user), "%s", m->author_name);
	edge_presence_message(c->edge, peer, &p);
}

static void cluster_on_user(struct cluster *c, const struct peer_msg *m)
{
	struct route_user_event ev = {(enum route_user_kind)m->user_kind, m->user, m->channel,
				      m->seq, m->live};

	if (m->user_kind <= ROUTE_USER_READ)
		edge_user_event(c->edge, &ev);
}

/* ---- the owner: publishes from peers ---- */

struct remote_cookie {
	struct commit_cookie cookie;
	struct cluster *c;
	uint64_t req;
	char peer[PEER_NAME_MAX + 1];
};

static void remote_ack(struct cluster *c, const char *peer, uint64_t req,
		       enum persist_outcome outcome, int error, int64_t seq, int64_t created)
{
	struct peer_msg m = {.type = PEER_ACK,
			     .req = req,
			     .outcome = (uint8_t)outcome,
			     .error = error,
			     .seq = seq,
			     .created_at_us = created};

	/* A lost ack is sent again by the gateway's retry: dedup answers. */
	pthread_mutex_lock(&c->lock);
	if (c->link)
		peer_link_send(c->link, peer, false, &m);
	pthread_mutex_unlock(&c->lock);
}

static void remote_done(struct edge *e, struct commit_cookie *cookie, enum persist_outcome outcome,
			int error, const struct persist_message *m)
{
	struct remote_cookie *rc = (struct remote_cookie *)cookie;

	remote_ack(rc->c, rc->peer, rc->req, outcome, error, m ? m->seq : 0,
		   m ? m->created_at_us : 0);
	free(rc);
}

/* A peer's publish. Link thread. */
static void cluster_on_publish(struct cluster *c, const char *peer, const struct peer_msg *m)
{
	struct persist_publish p = {
	    .channel_id = m->channel,
	    .author_id = m->author,
	    .parent_seq = m->parent,
	    .kind = m->kind,
	    .client_msg_id = m->client_msg_id,
	    .author_name = m->author_name,
	    .body = (const char *)m->payload,
	    .body_len = m->payload_len,
	};
	char owner[PEER_NAME_MAX + 1];
	struct remote_cookie *rc;
	int64_t epoch;
	int err;

	/* Never forward a forwarded publish: the gateway asks the owner. */
	if (!cluster_owner_of(c, m->channel, owner, &epoch)) {
		remote_ack(c, peer, m->req, PERSIST_FAILED, -EXDEV, 0, 0);
		return;
	}
	rc = calloc(1, sizeof(*rc));
	if (rc == NULL) {
		remote_ack(c, peer, m->req, PERSIST_FAILED, -ENOMEM, 0, 0);
		return;
	}
	rc->cookie.done = remote_done;
	rc->cookie.received_ns = time_mono_ns();
	rc->c = c;
	rc->req = m->req;
	snprintf(rc->peer, sizeof(rc->peer), "%s", peer);
	err = publish_submit(c->ps, &p, m->live, &rc->cookie);
	if (err < 0) {
		free(rc);
		remote_ack(c, peer, m->req, PERSIST_FAILED, err, 0, 0);
	}
}

/* ---- the link's events ---- */

static void cluster_on_message(void *arg, const char *peer, bool outbound, const struct peer_msg *m)
{
	struct cluster *c = arg;

	if (m->type == PEER_ACK && outbound)
		cluster_on_ack(c, m);
	else if (m->type == PEER_PUBLISH && !outbound)
		cluster_on_publish(c, peer, m);
	else if (m->type == PEER_USER && !outbound)
		cluster_on_user(c, m);
	else if (m->type == PEER_PRESENCE && !outbound)
		cluster_on_presence(c, peer, m);
	else
		cluster_interest_message(c, peer, m);
}

static void cluster_on_up(void *arg, const char *peer)
{
	struct cluster *c = arg;

	cluster_interest_up(c, peer);
	edge_presence_resync(c->edge, false);
}

static void cluster_on_down(void *arg, const char *peer)
{
	cluster_resend(arg, peer);
}

/* Dials every member but us (drained ones too: they own nothing, but their
 * clients hear of user events), and stops dialling those gone. Caller
 * holds the lock. */
static void cluster_dial_members(struct cluster *c)
{
	struct member_info *info = calloc(RING_MAX_MEMBERS, sizeof(*info));
	char(*next)[PEER_NAME_MAX + 1] = calloc(RING_MAX_MEMBERS, sizeof(*next));
	int n = info && next ? membership_members(c->m, info, RING_MAX_MEMBERS) : 0, k = 0;

	if (info == NULL || next == NULL || c->link == NULL) {
		free(info);
		free(next);
		return;
	}
	for (int i = 0; i < n; i++) {
		if (strcmp(info[i].name, c->cfg.name) == 0)
			continue;
		peer_link_want(c->link, info[i].name, info[i].peer);
		snprintf(next[k++], PEER_NAME_MAX + 1, "%s", info[i].name);
	}
	for (int i = 0; i < c->ndialled; i++) {
		bool kept = false;

		for (int j = 0; j < k && !kept; j++)
			kept = strcmp(c->dialled[i], next[j]) == 0;
		if (!kept)
			peer_link_want(c->link, c->dialled[i], NULL);
	}
	free(c->dialled);
	free(info);
	c->dialled = next;
	c->ndialled = k;
}

/* Notes whether an operator drained this node. Caller holds the lock. */
static void cluster_note_drain(struct cluster *c)
{
	struct member_info self;
	bool draining = membership_member(c->m, c->cfg.name, &self) == 0 && self.draining;

	if (draining && !c->draining) {
		LOG(NOTICE, "draining: this node's channels move to the others; its clients are "
			    "closed with 1012 once what is in flight has settled");
		c->drain_close_at_ns = time_mono_ns() + DRAIN_SETTLE_NS;
		c->drain_closed = false;
		/* A status, not STOPPING=1: a drained node keeps running and may
		 * be undrained. */
		notify_send("STATUS=draining");
	} else if (!draining && c->draining) {
		LOG(NOTICE, "undrained: this node takes channels again");
		notify_send("STATUS=serving");
	}
	c->draining = draining;
}

bool cluster_draining(struct cluster *c)
{
	bool draining;

	pthread_mutex_lock(&c->lock);
	draining = c->draining;
	pthread_mutex_unlock(&c->lock);
	return draining;
}

/* A new ring (watch thread): dial its members, move interest to the new
 * owners, send forwarded publishes again where the owner changed. */
static void cluster_on_ring(void *arg, const struct ring *r)
{
	struct cluster *c = arg;

	/* A change seen before membership_start() returned: cluster_start()
	 * applies the ring itself once it has the membership. */
	if (__atomic_load_n(&c->m, __ATOMIC_ACQUIRE) == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	cluster_dial_members(c);
	cluster_note_drain(c);
	pthread_mutex_unlock(&c->lock);
	cluster_interest_forget_peers(c, r);
	cluster_interest_ring(c);
	cluster_resend(c, NULL);
	edge_presence_resync(c->edge, true);
}

/* ---- lifecycle ---- */

struct cluster *cluster_create(const struct config_cluster *cfg, const char *dsn)
{
	struct cluster *c;

	if (!cfg->name[0] || !cfg->peer[0] || !cfg->secret[0]) {
		LOG(ERR, "[cluster] needs name, peer and a secret (FANOUT_CLUSTER_SECRET)");
		errno = EINVAL;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->cfg = *cfg;
	snprintf(c->dsn, sizeof(c->dsn), "%s", dsn);
	c->route = (struct route){route_owner,
				  route_forward,
				  cluster_broadcast,
				  route_user_event,
				  route_presence_home,
				  route_presence_send,
				  c};
	c->interest = chanmap_create();
	pthread_mutex_init(&c->lock, NULL);
	if (c->interest == NULL) {
		cluster_destroy(c);
		errno = ENOMEM;
		return NULL;
	}
	return c;
}

const struct route *cluster_route(struct cluster *c)
{
	return &c->route;
}

static bool link_is_member(void *arg, const char *name)
{
	struct cluster *c = arg;
	struct member_info info;

	return c->m && membership_member(c->m, name, &info) == 0;
}

/* Epochs are generation << 40 | revision: the etcd cluster's generation,
 * numbered in PostgreSQL when a node first meets it or finds its revision
 * gone back (a reset), keeps epochs rising when an etcd is replaced and
 * its revisions start again at 1. */
static int cluster_epoch_base(struct cluster *c, int64_t *base)
{
	struct etcd *e = etcd_open(c->cfg.etcd, 2000);
	char id[64], err[512];
	int64_t generation, revision = 0;
	int rc = e ? etcd_status(e, id, sizeof(id), &revision) : -EINVAL;

	etcd_close(e);
	if (rc < 0) {
		LOG(ERR, "cannot reach etcd at %s: %s", c->cfg.etcd, strerror(-rc));
		return rc;
	}
	generation = store_etcd_generation(c->dsn, id, revision, err, sizeof(err));
	if (generation <= 0) {
		LOG(ERR, "%s", err);
		return -EIO;
	}
	*base = generation << 40;
	LOG(INFO, "etcd cluster %s is generation %lld", id, (long long)generation);
	return 0;
}

static double gauge_pending(void *arg)
{
	return cluster_pending(arg);
}

static double gauge_members(void *arg)
{
	struct cluster *c = arg;
	struct membership *m = __atomic_load_n(&c->m, __ATOMIC_ACQUIRE);

	return m ? ring_members(membership_ring(m)) : 0;
}

/* The share of the channel key space this node owns (0 when it is not on
 * the ring: drained, or not yet a member). */
static double gauge_share(void *arg)
{
	struct cluster *c = arg;
	struct membership *m = __atomic_load_n(&c->m, __ATOMIC_ACQUIRE);
	const struct ring *r = m ? membership_ring(m) : NULL;
	int me = r ? ring_member_index(r, c->cfg.name) : -1;
	double *share, out;

	if (me < 0)
		return 0;
	share = malloc((size_t)ring_members(r) * sizeof(*share));
	if (share == NULL)
		return 0;
	ring_shares(r, share);
	out = share[me];
	free(share);
	return out;
}

static double gauge_lease(void *arg)
{
	return cluster_may_commit(arg);
}

static double gauge_draining(void *arg)
{
	return cluster_draining(arg);
}

static void cluster_register_metrics(struct cluster *c)
{
	metrics_register_gauge("fanout_cluster_pending_publishes",
			       "Publishes forwarded to another node, waiting for its ack.",
			       gauge_pending, c);
	metrics_register_gauge(
	    "fanout_cluster_ring_members",
	    "Members of the ring this node routes by (drained ones not counted).", gauge_members,
	    c);
	metrics_register_gauge("fanout_cluster_ring_share",
			       "The share (0..1) of the channel key space this node owns.",
			       gauge_share, c);
	metrics_register_gauge("fanout_cluster_lease_held",
			       "1 while this node's lease surely holds and it may commit, else 0.",
			       gauge_lease, c);
	metrics_register_gauge("fanout_cluster_draining", "1 while an operator drains this node.",
			       gauge_draining, c);
}

int cluster_start(struct cluster *c, struct edge *e)
{
	static const struct peer_link_ops ops = {cluster_on_message, cluster_on_up, cluster_on_down,
						 cluster_tick, link_is_member};

	int64_t base;
	int rc = cluster_epoch_base(c, &base);

	if (rc < 0)
		return rc;
	c->edge = e;
	c->ps = edge_publish(e);
	fanout_set_interest(edge_fanout(e), cluster_interest_hook, c);
	c->link = peer_link_start(c->cfg.name, c->cfg.peer, c->cfg.secret, &ops, c);
	if (c->link == NULL)
		return -errno;
	__atomic_store_n(&c->m, membership_start(&c->cfg, base, cluster_on_ring, c),
			 __ATOMIC_RELEASE);
	if (c->m == NULL) {
		rc = -errno;

		peer_link_stop(c->link);
		c->link = NULL;
		return rc;
	}
	cluster_on_ring(c, membership_ring(c->m));
	cluster_register_metrics(c);
	return 0;
}

bool cluster_may_commit(void *cluster)
{
	struct cluster *c = cluster;

	return c->m && membership_may_ack(c->m);
}

void cluster_stop(struct cluster *c)
{
	struct pending *pd;

	if (c == NULL)
		return;
	struct peer_link *link;

	pthread_mutex_lock(&c->lock);
	__atomic_store_n(&c->stopping, true, __ATOMIC_RELEASE);
	link = c->link;
	c->link = NULL; /* every user of the link checks it under the lock */
	pthread_mutex_unlock(&c->lock);
	if (c->edge)
		fanout_set_interest(edge_fanout(c->edge), NULL, NULL);
	/* The ring stays readable until cluster_destroy(): workers may still
	 * ask the route, and are told the channel is not theirs. */
	membership_leave(c->m);
	peer_link_stop(link);
	while ((pd = c->pending) != NULL) {
		c->pending = pd->next;
		c->npending--;
		pending_finish(c, pd, PERSIST_FAILED, -ECANCELED, 0, 0);
	}
}

void cluster_destroy(struct cluster *c)
{
	if (c == NULL)
		return;
	membership_stop(c->m);
	cluster_interest_free(c);
	chanmap_destroy(c->interest);
	free(c->dialled);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

struct membership *cluster_membership(struct cluster *c)
{
	return c->m;
}
