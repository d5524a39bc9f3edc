/* SPDX-License-Identifier: BSD-3-Clause */
/* Membership (membership.h): the lease thread, the watch thread, the member
 * table they keep and the rings built from it. */
#define LOG_COMPONENT "cluster"
#include "membership.h"

#include "clock.h"
#include "etcd.h"
#include "log.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RING_GRACE_NS (2 * 1000000000ull)
#define RETIRED_MAX   64
#define ETCD_CALL_MS  500

struct retired_ring {
	struct ring *ring;
	uint64_t at_ns;
};

struct membership {
	struct config_cluster cfg;
	char prefix[MEMBERSHIP_PREFIX_MAX]; /* /fanout/<cluster>/ */
	char key[MEMBERSHIP_PREFIX_MAX + 80];
	membership_changed_fn changed;
	void *arg;

	struct etcd *lease_etcd, *watch_etcd;
	int64_t epoch_base, revision; /* the revision the members were read at */
	int64_t lease;
	int ttl_s;
	/* Monotonic ns until which the lease surely holds, less the margin. */
	uint64_t valid_until_ns;
	bool stopping;
	pthread_t lease_thread, watch_thread;

	pthread_mutex_t lock; /* the member table and the retired rings */
	struct member_info *members;
	int nmembers;
	char (*drains)[RING_ID_MAX + 1];
	int ndrains;
	struct ring *ring; /* read with __atomic_load_n */
	struct retired_ring retired[RETIRED_MAX];
	int nretired;
};

void membership_nodes_prefix(const char *cluster, char *out, size_t n)
{
	snprintf(out, n, "/fanout/%s/nodes/", cluster);
}

void membership_drain_key(const char *cluster, const char *name, char *out, size_t n)
{
	snprintf(out, n, "/fanout/%s/drain/%s", cluster, name);
}

int membership_parse(const char *value, struct member_info *out)
{
	json_t *j = json_loads(value, 0, NULL);
	const char *name = json_string_value(json_object_get(j, "name"));
	const char *peer = json_string_value(json_object_get(j, "peer"));
	const char *admin = json_string_value(json_object_get(j, "admin"));
	const char *state = json_string_value(json_object_get(j, "state"));
	int rc = -EPROTO;

	memset(out, 0, sizeof(*out));
	if (name && strlen(name) <= RING_ID_MAX && peer && admin) {
		snprintf(out->name, sizeof(out->name), "%s", name);
		snprintf(out->peer, sizeof(out->peer), "%s", peer);
		snprintf(out->admin, sizeof(out->admin), "%s", admin);
		out->draining = state && strcmp(state, "draining") == 0;
		rc = 0;
	}
	json_decref(j);
	return rc;
}

static char *member_value(const struct membership *m, bool draining)
{
	const char *peer = m->cfg.advertise[0] ? m->cfg.advertise : m->cfg.peer;
	json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "name", m->cfg.name, "peer", peer, "admin",
			      m->cfg.admin, "state", draining ? "draining" : "active");
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	return s;
}

/* ---- the ring ---- */

static bool is_drained(const struct membership *m, const char *name)
{
	for (int i = 0; i < m->ndrains; i++)
		if (strcmp(m->drains[i], name) == 0)
			return true;
	return false;
}

/* Builds the ring of the undrained members at revision and swaps it in.
 * Caller holds the lock. A cluster with every member drained keeps its last
 * ring: someone must own the channels. */
static void ring_rebuild(struct membership *m, int64_t revision)
{
	const char **ids = malloc(sizeof(*ids) * (size_t)(m->nmembers ? m->nmembers : 1));
	struct ring *next = NULL, *old;
	int n = 0;
	uint64_t now = time_mono_ns();

	for (int i = 0; ids && i < m->nmembers; i++)
		if (!is_drained(m, m->members[i].name))
			ids[n++] = m->members[i].name;
	if (n > 0)
		next = ring_build(ids, n, m->cfg.vnodes, revision);
	free(ids);
	if (next == NULL) {
		if (n > 0)
			LOG(ERR, "cannot build the ring of %d members: %s", n, strerror(errno));
		return;
	}
	old = m->ring;
	__atomic_store_n(&m->ring, next, __ATOMIC_RELEASE);
	/* Free what readers can no longer hold. */
	int keep = 0;
	for (int i = 0; i < m->nretired; i++) {
		if (now - m->retired[i].at_ns > RING_GRACE_NS)
			ring_free(m->retired[i].ring);
		else
			m->retired[keep++] = m->retired[i];
	}
	m->nretired = keep;
	if (old && m->nretired < RETIRED_MAX)
		m->retired[m->nretired++] = (struct retired_ring){old, now};
	else
		ring_free(old); /* a storm of changes: sixty-four in two seconds */
	LOG(INFO, "ring at etcd revision %lld (epoch %lld): %d members%s",
	    (long long)(revision - m->epoch_base), (long long)revision, n,
	    ring_member_index(next, m->cfg.name) < 0 ? ", this node not among them" : "");
}

/* ---- the member table ---- */

static int member_slot(const struct membership *m, const char *name)
{
	for (int i = 0; i < m->nmembers; i++)
		if (strcmp(m->members[i].name, name) == 0)
			return i;
	return -1;
}

/* Applies one key under the prefix (from a range or a watch). Caller holds
 * the lock. */
static void member_apply(struct membership *m, const struct etcd_kv *kv)
{
	const char *rest = kv->key + strlen(m->prefix);
	struct member_info info;
	int slot;

	if (strncmp(rest, "nodes/", 6) == 0) {
		slot = member_slot(m, rest + 6);
		if (kv->deleted) {
			if (slot >= 0)
				m->members[slot] = m->members[--m->nmembers];
			return;
		}
		if (membership_parse(kv->value, &info) < 0 || strcmp(info.name, rest + 6) != 0) {
			LOG(WARN, "ignoring the malformed member key %s", kv->key);
			return;
		}
		if (slot < 0 && m->nmembers < RING_MAX_MEMBERS)
			slot = m->nmembers++;
		if (slot >= 0)
			m->members[slot] = info;
	} else if (strncmp(rest, "drain/", 6) == 0 && strlen(rest + 6) <= RING_ID_MAX) {
		int i;

		for (i = 0; i < m->ndrains && strcmp(m->drains[i], rest + 6) != 0; i++)
			;
		if (kv->deleted && i < m->ndrains)
			memcpy(m->drains[i], m->drains[--m->ndrains], sizeof(m->drains[i]));
		else if (!kv->deleted && i == m->ndrains && m->ndrains < RING_MAX_MEMBERS)
			snprintf(m->drains[m->ndrains++], RING_ID_MAX + 1, "%s", rest + 6);
	}
}

static void on_range_kv(void *arg, const struct etcd_kv *kv)
{
	member_apply(arg, kv);
}

/* Reads every member afresh and builds the ring. 0 and the revision, or
 * -errno. */
static int members_read(struct membership *m, struct etcd *e, int64_t *revision)
{
	int rc;

	pthread_mutex_lock(&m->lock);
	m->nmembers = 0;
	m->ndrains = 0;
	rc = etcd_range(e, m->prefix, on_range_kv, m, revision);
	if (rc == 0)
		ring_rebuild(m, m->epoch_base + *revision);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* ---- the watch thread ---- */

static bool watch_stopping(void *arg)
{
	struct membership *m = arg;

	return __atomic_load_n(&m->stopping, __ATOMIC_ACQUIRE);
}

static void on_watch_kv(void *arg, const struct etcd_kv *kv, int64_t revision)
{
	struct membership *m = arg;
	const struct ring *ring;

	pthread_mutex_lock(&m->lock);
	member_apply(m, kv);
	ring_rebuild(m, m->epoch_base + revision);
	ring = m->ring;
	pthread_mutex_unlock(&m->lock);
	if (m->changed)
		m->changed(m->arg, ring);
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Sleeps ms in 20 ms steps, returning early when the membership stops. */
static void sleep_unless_stopping(struct membership *m, int ms)
{
	for (; ms > 0 && !__atomic_load_n(&m->stopping, __ATOMIC_ACQUIRE); ms -= 20)
		sleep_ms(ms < 20 ? ms : 20);
}

static void *watch_main(void *arg)
{
	struct membership *m = arg;
	/* membership_start read the members already. */
	int64_t revision = m->revision;
	int rc = 0;
	bool warned = false;

	pthread_setname_np(pthread_self(), "cluster-watch");
	while (!watch_stopping(m)) {
		if (rc < 0) {
			sleep_ms(200);
			rc = members_read(m, m->watch_etcd, &revision);
			if (rc == 0 && m->changed)
				m->changed(m->arg, membership_ring(m));
			if (rc == 0)
				warned = false;
		}
		if (rc == 0)
			rc = etcd_watch(m->watch_etcd, m->prefix, revision + 1, on_watch_kv,
					watch_stopping, m);
		if (rc == 0)
			rc = -ECONNRESET; /* stopped, or read again */
		if (!watch_stopping(m) && !warned)
			LOG(WARN, "the watch on etcd broke (%s); reading the members again",
			    strerror(-rc));
		/* Once per outage: a read that succeeds ends it. */
		warned = !watch_stopping(m) && (warned || rc != -ECONNRESET);
	}
	return NULL;
}

/* ---- the lease thread ---- */

/* Grants a lease and creates our key on it, at start and after the lease
 * was lost (the key went with the old lease): a live node with our name
 * refuses us (-EEXIST). 0 or -errno. */
static int lease_register(struct membership *m, struct etcd *e)
{
	uint64_t sent = time_mono_ns();
	char *value = member_value(m, false);
	int64_t id = 0;
	int ttl, rc;

	if (value == NULL)
		return -ENOMEM;
	rc = etcd_lease_grant(e, m->cfg.lease_ttl_s, &id, &ttl);
	if (rc == 0)
		rc = etcd_create(e, m->key, value, id, NULL);
	free(value);
	if (rc < 0) {
		if (id)
			etcd_lease_revoke(e, id);
		return rc;
	}
	m->lease = id;
	m->ttl_s = ttl;
	if (ttl != m->cfg.lease_ttl_s)
		LOG(WARN,
		    "etcd granted a lease of %d s, not the %d s asked (its minimum is 1.5 "
		    "election timeouts)",
		    ttl, m->cfg.lease_ttl_s);
	__atomic_store_n(&m->valid_until_ns,
			 sent + (uint64_t)ttl * 1000000000ull -
			     (uint64_t)m->cfg.lease_margin_ms * 1000000ull,
			 __ATOMIC_RELEASE);
	return 0;
}

static void *lease_main(void *arg)
{
	struct membership *m = arg;
	bool lost = false, warned = false;

	pthread_setname_np(pthread_self(), "cluster-lease");
	while (!watch_stopping(m)) {
		uint64_t sent = time_mono_ns();
		int ttl = 0, rc;

		rc = lost ? lease_register(m, m->lease_etcd)
			  : etcd_lease_keepalive(m->lease_etcd, m->lease, &ttl);
		if (rc == 0 && !lost)
			__atomic_store_n(&m->valid_until_ns,
					 sent + (uint64_t)ttl * 1000000000ull -
					     (uint64_t)m->cfg.lease_margin_ms * 1000000ull,
					 __ATOMIC_RELEASE);
		if (rc == -ENOENT && !lost) {
			LOG(ERR, "lease lost: this node stops acknowledging publishes and joins "
				 "again");
			__atomic_store_n(&m->valid_until_ns, 0, __ATOMIC_RELEASE);
			lost = true;
			continue;
		}
		if (rc == 0 && lost) {
			LOG(NOTICE, "joined again with a new lease");
			lost = false;
		}
		if (rc < 0 && rc != -ENOENT && !membership_may_ack(m) && !warned) {
			LOG(WARN, "etcd unreachable (%s) past the lease: not acknowledging",
			    strerror(-rc));
			warned = true;
		}
		if (rc == 0 && warned) {
			LOG(NOTICE, "etcd reachable again: the lease holds");
			warned = false;
		}
		/* A third of the TTL between renewals; a tenth while failing. */
		sleep_unless_stopping(m, rc == 0 ? m->ttl_s * 1000 / 3 : 100);
	}
	return NULL;
}

/* ---- the node's side ---- */

bool membership_owns(struct membership *m, int64_t channel, char owner[RING_ID_MAX + 1],
		     int64_t *epoch)
{
	return membership_owns_key(m, ring_channel_key(channel), owner, epoch);
}

bool membership_owns_key(struct membership *m, uint64_t key, char owner[RING_ID_MAX + 1],
			 int64_t *epoch)
{
	/* One load: the owner and our own place come from the same ring. */
	const struct ring *r = __atomic_load_n(&m->ring, __ATOMIC_ACQUIRE);
	int at = ring_owner(r, key);

	*epoch = ring_epoch(r);
	snprintf(owner, RING_ID_MAX + 1, "%s", ring_member_id(r, at));
	return at == ring_member_index(r, m->cfg.name);
}

static int membership_check(const struct config_cluster *cfg)
{
	if (!cfg->etcd[0] || !cfg->name[0] || strlen(cfg->name) > RING_ID_MAX ||
	    strchr(cfg->name, '/') || !cfg->cluster[0] || strchr(cfg->cluster, '/') ||
	    !cfg->peer[0]) {
		LOG(ERR,
		    "[cluster] needs etcd, a name (1..%d characters, no '/'), a cluster name "
		    "and a peer address",
		    RING_ID_MAX);
		return -EINVAL;
	}
	return 0;
}

/* Takes our lease and key, waiting out our own previous life. 0 or -errno,
 * the reason logged. */
static int membership_join(struct membership *m, const struct config_cluster *cfg)
{
	int rc;

	rc = lease_register(m, m->lease_etcd);
	/* Our name may still be held by this node's previous life (killed, or
	 * etcd restarted, which renews every lease once): that key goes within
	 * a TTL. A live twin renews it; after TTL + 1 s it is refused. */
	for (int waited = 0; rc == -EEXIST && waited < (cfg->lease_ttl_s + 1) * 1000;
	     waited += 200) {
		sleep_ms(200);
		rc = lease_register(m, m->lease_etcd);
	}
	if (rc == -EEXIST)
		LOG(ERR,
		    "node name '%s' is held by a live member of cluster '%s': refusing to join",
		    cfg->name, cfg->cluster);
	else if (rc < 0)
		LOG(ERR, "cannot join cluster '%s' at %s: %s", cfg->cluster, cfg->etcd,
		    strerror(-rc));
	return rc;
}

struct membership *membership_start(const struct config_cluster *cfg, int64_t epoch_base,
				    membership_changed_fn changed, void *arg)
{
	struct membership *m = calloc(1, sizeof(*m));
	int64_t revision;
	int rc = -ENOMEM;

	if (m == NULL)
		goto fail;
	m->cfg = *cfg;
	m->changed = changed;
	m->arg = arg;
	m->epoch_base = epoch_base;
	pthread_mutex_init(&m->lock, NULL);
	snprintf(m->prefix, sizeof(m->prefix), "/fanout/%s/", cfg->cluster);
	snprintf(m->key, sizeof(m->key), "%snodes/%s", m->prefix, cfg->name);
	m->members = calloc(RING_MAX_MEMBERS, sizeof(*m->members));
	m->drains = calloc(RING_MAX_MEMBERS, sizeof(*m->drains));
	if (m->members == NULL || m->drains == NULL)
		goto fail;
	if ((rc = membership_check(cfg)) < 0)
		goto fail;
	m->lease_etcd = etcd_open(cfg->etcd, ETCD_CALL_MS);
	m->watch_etcd = etcd_open(cfg->etcd, 2000);
	if (m->lease_etcd == NULL || m->watch_etcd == NULL) {
		rc = -EINVAL;
		goto fail;
	}
	rc = membership_join(m, cfg);
	if (rc < 0)
		goto fail;
	rc = members_read(m, m->watch_etcd, &revision);
	m->revision = revision;
	if (rc < 0 || m->ring == NULL) {
		LOG(ERR, "cannot read the members of cluster '%s': %s", cfg->cluster,
		    strerror(rc < 0 ? -rc : EPROTO));
		rc = rc < 0 ? rc : -EPROTO;
		goto fail;
	}
	if (pthread_create(&m->lease_thread, NULL, lease_main, m) != 0) {
		rc = -EAGAIN;
		goto fail;
	}
	if (pthread_create(&m->watch_thread, NULL, watch_main, m) != 0) {
		__atomic_store_n(&m->stopping, true, __ATOMIC_RELEASE);
		pthread_join(m->lease_thread, NULL);
		rc = -EAGAIN;
		goto fail;
	}
	LOG(INFO, "joined cluster '%s' as '%s' (lease %d s, %d vnodes)", cfg->cluster, cfg->name,
	    m->ttl_s, cfg->vnodes);
	return m;
fail:
	if (m && m->lease && m->lease_etcd)
		etcd_lease_revoke(m->lease_etcd, m->lease);
	if (m) {
		etcd_close(m->lease_etcd);
		etcd_close(m->watch_etcd);
		ring_free(m->ring);
		free(m->members);
		free(m->drains);
		free(m);
	}
	errno = -rc;
	return NULL;
}

void membership_leave(struct membership *m)
{
	if (m == NULL || __atomic_exchange_n(&m->stopping, true, __ATOMIC_ACQ_REL))
		return;
	__atomic_store_n(&m->valid_until_ns, 0, __ATOMIC_RELEASE);
	pthread_join(m->lease_thread, NULL);
	/* Revoking deletes our key: the others see us go at once, and the
	 * event wakes our own watch to notice it should stop. */
	if (etcd_lease_revoke(m->lease_etcd, m->lease) == 0)
		LOG(INFO, "left cluster '%s'", m->cfg.cluster);
	pthread_join(m->watch_thread, NULL);
}

void membership_stop(struct membership *m)
{
	if (m == NULL)
		return;
	membership_leave(m);
	etcd_close(m->lease_etcd);
	etcd_close(m->watch_etcd);
	for (int i = 0; i < m->nretired; i++)
		ring_free(m->retired[i].ring);
	ring_free(m->ring);
	pthread_mutex_destroy(&m->lock);
	free(m->members);
	free(m->drains);
	free(m);
}

const struct ring *membership_ring(struct membership *m)
{
	return __atomic_load_n(&m->ring, __ATOMIC_ACQUIRE);
}

const char *membership_self(struct membership *m)
{
	return m->cfg.name;
}

bool membership_may_ack(struct membership *m)
{
	return time_mono_ns() < __atomic_load_n(&m->valid_until_ns, __ATOMIC_ACQUIRE);
}

int membership_member(struct membership *m, const char *name, struct member_info *out)
{
	int slot, rc = -ENOENT;

	pthread_mutex_lock(&m->lock);
	slot = member_slot(m, name);
	if (slot >= 0) {
		*out = m->members[slot];
		out->draining = is_drained(m, name);
		rc = 0;
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

int membership_members(struct membership *m, struct member_info *out, int max)
{
	int n = 0;

	pthread_mutex_lock(&m->lock);
	for (int i = 0; i < m->nmembers && n < max; i++) {
		out[n] = m->members[i];
		out[n++].draining = is_drained(m, m->members[i].name);
	}
	pthread_mutex_unlock(&m->lock);
	return n;
}

json_t *membership_nodes_json(struct membership *m)
{
	struct member_info *v = calloc(MEMBERS_JSON_MAX, sizeof(*v));
	json_t *out = json_array();
	int n = v ? membership_members(m, v, MEMBERS_JSON_MAX) : 0;

	for (int i = 0; i < n; i++)
		json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:b, s:b}", "name", v[i].name,
						     "admin", v[i].admin, "peer", v[i].peer,
						     "draining", v[i].draining, "self",
						     strcmp(v[i].name, m->cfg.name) == 0));
	free(v);
	return out;
}
