/* SPDX-License-Identifier: BSD-3-Clause */
/* Presence: who is online, away or offline, for the users a client is
 * looking at. One thread owns all the state; workers report through a locked
 * queue and hear back through their inboxes. See presence.h.
 *
 * Per user: the number of live connections (several devices are one
 * presence), whether the user said "away", the status last announced, when it
 * was announced, and since when the user has had no connection. The wanted
 * status is online or away while a connection lives, and stays so for the
 * grace period after the last one closes (a reconnect is not a departure),
 * then offline. A change is announced only when the wanted status differs
 * from the announced one and the last announcement is at least an interval
 * old; a flapping connection therefore yields at most one change per
 * interval. Users nobody watches and nobody is connected as are forgotten.
 *
 * In a cluster the route names each user's home node (route.h): every node
 * reports to the home the status its own connections give the user (its
 * grace included); the home takes the strongest of its own and the
 * reports, announces it to its watchers and to each node registered as
 * watching, and those announce it to theirs. On a ring change the homes
 * forget what others told them and every node tells its new homes again;
 * meanwhile no node announces an "offline" for a grace period, so that a
 * report or a home's word on its way is not taken for a departure. */
#define LOG_COMPONENT "presence"
#include "presence.h"

#include "clock.h"
#include "log.h"
#include "thread.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define TICK_NS 250000000ull

enum op_kind { OP_CONNECT, OP_DISCONNECT, OP_AWAY, OP_WATCH, OP_UNWATCH, OP_REMOTE, OP_RESYNC };

struct op {
	struct op *next;
	enum op_kind kind;
	int worker;
	uint64_t session;
	bool away;
	int nusers;
	char req[65];
	char user[65];
	char from[65];		  /* OP_REMOTE: the node it came from */
	struct route_presence rp; /* OP_REMOTE */
	bool ring_changed;	  /* OP_RESYNC */
	bool *hidden;		  /* OP_WATCH: nusers flags, after users */
	char *users[];		  /* OP_WATCH: nusers names */
};

/* Another node, at a user's home: its report, or its watching. */
struct node_entry {
	char node[65];
	enum presence_status status;
};

struct watcher {
	int worker;
	uint64_t session;
};

struct user {
	struct user *next; /* hash chain */
	char name[65];
	int conns;
	bool away;
	enum presence_status announced;
	uint64_t announced_ns, gone_ns;
	struct watcher *watchers;
	int nwatchers, capwatchers;
	/* A node in a cluster. At the user's home: other nodes' reports and
	 * the nodes that watch. Elsewhere: what this node last reported, the
	 * home's word, and the home it registered its watchers with. */
	struct node_entry *reports, *wnodes;
	int nreports, nwnodes;
	enum presence_status sent, remote;
	bool resend, has_remote;
	char watch_home[65];
};

/* Which users a session watches, to undo it. */
struct watching {
	struct watching *next;
	int worker;
	uint64_t session;
	char **users;
	int nusers;
};

struct presence {
	struct fanout *fanout;
	struct route route; /* presence_home NULL: every user is at home here */
	uint64_t resync_ns; /* the last ring change */
	presence_deliver_fn deliver;
	uint64_t grace_ns, interval_ns;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct op *head, *tail;
	bool stopping;
	/* Owned by the thread. */
	struct user *users[1024];
	struct watching *watchings;
};

static const char *const status_names[] = {"offline", "online", "away"};

const char *presence_status_name(enum presence_status s)
{
	return status_names[s];
}

static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % 1024;
}

static struct user *user_get(struct presence *p, const char *name, bool create)
{
	uint32_t b = name_hash(name);
	struct user *u = p->users[b];

	while (u && strcmp(u->name, name) != 0)
		u = u->next;
	if (u || !create)
		return u;
	u = calloc(1, sizeof(*u));
	if (u == NULL)
		return NULL;
	snprintf(u->name, sizeof(u->name), "%s", name);
	u->next = p->users[b];
	p->users[b] = u;
	return u;
}

static void user_free(struct user *u)
{
	free(u->watchers);
	free(u->reports);
	free(u->wnodes);
	free(u);
}

static enum presence_status wanted(struct presence *p, struct user *u, uint64_t now)
{
	if (u->conns > 0 || (u->gone_ns && now - u->gone_ns < p->grace_ns))
		return u->away ? PRESENCE_AWAY : PRESENCE_ONLINE;
	return PRESENCE_OFFLINE;
}

/* ---- the cluster's part: homes, reports, watching nodes ---- */

static bool home_here(struct presence *p, const char *user, char home[65])
{
	home[0] = 0;
	return p->route.presence_home == NULL || p->route.presence_home(p->route.ctx, user, home);
}

static void send_to(struct presence *p, const char *node, enum route_presence_kind kind,
		    const char *user, enum presence_status status)
{
	struct route_presence m = {.kind = kind, .status = (uint8_t)status};

	snprintf(m.user, sizeof(m.user), "%s", user);
	p->route.presence_send(p->route.ctx, node, &m);
}

static int rank(enum presence_status s)
{
	return s == PRESENCE_ONLINE ? 2 : s == PRESENCE_AWAY ? 1 : 0;
}

static enum presence_status strongest(enum presence_status a, enum presence_status b)
{
	return rank(a) >= rank(b) ? a : b;
}

static struct node_entry *entry_find(struct node_entry *v, int n, const char *node)
{
	for (int i = 0; i < n; i++)
		if (strcmp(v[i].node, node) == 0)
			return &v[i];
	return NULL;
}

/* Sets node's entry (status), or removes it (remove). */
static void entry_set(struct node_entry **v, int *n, const char *node, enum presence_status status,
		      bool remove)
{
	struct node_entry *e = entry_find(*v, *n, node);

	if (remove) {
		if (e)
			*e = (*v)[--*n];
		return;
	}
	if (e == NULL) {
		struct node_entry *grown = realloc(*v, (size_t)(*n + 1) * sizeof(**v));
		if (grown == NULL)
			return;
		*v = grown;
		e = &grown[(*n)++];
		snprintf(e->node, sizeof(e->node), "%s", node);
	}
	e->status = status;
}

/* The status to announce: at the home, the strongest of this node's and
 * every report; elsewhere, the strongest of this node's and the home's. */
static enum presence_status effective(struct presence *p, struct user *u, bool here, uint64_t now)
{
	enum presence_status w = wanted(p, u, now);

	if (here)
		for (int i = 0; i < u->nreports; i++)
			w = strongest(w, u->reports[i].status);
	else if (u->has_remote)
		w = strongest(w, u->remote);
	/* After a ring change, reports and the homes' words are on their way. */
	if (w == PRESENCE_OFFLINE && u->announced != PRESENCE_OFFLINE &&
	    now - p->resync_ns < p->grace_ns)
		w = u->announced;
	return w;
}

/* Tells a remote home what this node's connections say, when it changed. */
static void report(struct presence *p, struct user *u, bool here, const char *home, uint64_t now)
{
	enum presence_status mine = wanted(p, u, now);

	if (here) {
		u->sent = PRESENCE_OFFLINE; /* our own word counts directly */
	} else if (mine != u->sent || (u->resend && mine != PRESENCE_OFFLINE)) {
		send_to(p, home, ROUTE_PRESENCE_REPORT, u->name, mine);
		u->sent = mine;
	}
	u->resend = false;
}

/* Registers this node's watchers of u with u's home, if it is elsewhere
 * and not registered there yet (force: again). */
static void watch_home(struct presence *p, struct user *u, bool force)
{
	char home[65];

	if (u->nwatchers == 0 || home_here(p, u->name, home)) {
		u->watch_home[0] = 0;
		return;
	}
	if (!force && strcmp(u->watch_home, home) == 0)
		return;
	send_to(p, home, ROUTE_PRESENCE_WATCH, u->name, PRESENCE_OFFLINE);
	snprintf(u->watch_home, sizeof(u->watch_home), "%s", home);
}

static void unwatch_home(struct presence *p, struct user *u)
{
	if (u->nwatchers > 0 || !u->watch_home[0])
		return;
	send_to(p, u->watch_home, ROUTE_PRESENCE_UNWATCH, u->name, PRESENCE_OFFLINE);
	u->watch_home[0] = 0;
	u->has_remote = false;
}

/* Delivery to sessions: one event per watcher, run on its worker. */
struct notice {
	struct fanout_event ev;
	struct presence *p;
	uint64_t session;
	char text[]; /* the frame's JSON */
};

static void notice_run(void *worker_arg, struct fanout_event *ev)
{
	struct notice *n = (struct notice *)ev;

	n->p->deliver(worker_arg, n->session, n->text);
	free(n);
}

static void notify(struct presence *p, int worker, uint64_t session, json_t *o)
{
	char *text = json_dumps(o, JSON_COMPACT);
	struct notice *n = text ? malloc(sizeof(*n) + strlen(text) + 1) : NULL;

	json_decref(o);
	if (n == NULL) {
		LOG(WARN, "out of memory: a presence notice was not sent");
		free(text);
		return;
	}
	strcpy(n->text, text);
	free(text);
	n->session = session;
	n->p = p;
	n->ev.run = notice_run;
	fanout_post_event(p->fanout, worker, &n->ev);
}

/* Reports this node's word to a remote home, then announces a user's change
 * to every watcher (and, at the home, to every watching node), if one is
 * due. */
static void settle(struct presence *p, struct user *u, uint64_t now)
{
	char home[65];
	bool here = home_here(p, u->name, home);
	enum presence_status w;

	report(p, u, here, home, now);
	w = effective(p, u, here, now);
	if (w == u->announced || now - u->announced_ns < p->interval_ns)
		return;
	u->announced = w;
	u->announced_ns = now;
	for (int i = 0; i < u->nwatchers; i++)
		notify(p, u->watchers[i].worker, u->watchers[i].session,
		       json_pack("{s:s, s:s, s:s}", "type", "presence", "user", u->name, "status",
				 status_names[w]));
	for (int i = 0; here && i < u->nwnodes; i++)
		send_to(p, u->wnodes[i].node, ROUTE_PRESENCE_STATE, u->name, w);
}

static void watcher_add(struct user *u, int worker, uint64_t session)
{
	if (u->nwatchers == u->capwatchers) {
		int cap = u->capwatchers ? u->capwatchers * 2 : 4;
		struct watcher *w = realloc(u->watchers, (size_t)cap * sizeof(*w));
		if (w == NULL)
			return;
		u->watchers = w;
		u->capwatchers = cap;
	}
	u->watchers[u->nwatchers++] = (struct watcher){worker, session};
}

static void watcher_remove(struct user *u, int worker, uint64_t session)
{
	for (int i = 0; i < u->nwatchers; i++) {
		if (u->watchers[i].worker == worker && u->watchers[i].session == session) {
			u->watchers[i] = u->watchers[--u->nwatchers];
			return;
		}
	}
}

static void unwatch(struct presence *p, int worker, uint64_t session)
{
	for (struct watching **pp = &p->watchings; *pp; pp = &(*pp)->next) {
		struct watching *w = *pp;
		if (w->worker != worker || w->session != session)
			continue;
		for (int i = 0; i < w->nusers; i++) {
			struct user *u = user_get(p, w->users[i], false);
			if (u) {
				watcher_remove(u, worker, session);
				unwatch_home(p, u);
			}
			free(w->users[i]);
		}
		*pp = w->next;
		free(w->users);
		free(w);
		return;
	}
}

static void watch(struct presence *p, struct op *op, uint64_t now)
{
	struct watching *w = calloc(1, sizeof(*w));
	json_t *list = json_array();

	unwatch(p, op->worker, op->session);
	if (w == NULL || (w->users = calloc((size_t)op->nusers + 1, sizeof(char *))) == NULL) {
		free(w);
		json_decref(list);
		return;
	}
	w->worker = op->worker;
	w->session = op->session;
	for (int i = 0; i < op->nusers; i++) {
		struct user *u;

		if (op->hidden[i]) { /* one the watcher may not see: as if offline */
			json_array_append_new(list, json_pack("{s:s, s:s}", "user", op->users[i],
							      "status", "offline"));
			continue;
		}
		u = user_get(p, op->users[i], true);
		if (u == NULL)
			continue;
		watcher_add(u, op->worker, op->session);
		watch_home(p, u, false);
		w->users[w->nusers++] = strdup(op->users[i]);
		/* The current state: what watchers were last told, or better,
		 * what is true now for a user nobody has been told about (for
		 * a user homed elsewhere, the home's word follows as a change). */
		if (u->announced_ns == 0)
			u->announced = wanted(p, u, now);
		json_array_append_new(list, json_pack("{s:s, s:s}", "user", u->name, "status",
						      status_names[u->announced]));
	}
	w->next = p->watchings;
	p->watchings = w;
	notify(p, op->worker, op->session,
	       json_pack("{s:s, s:s, s:o}", "type", "presence_subscribed", "req", op->req, "users",
			 list));
}

/* A message from another node (route.h). */
static void remote(struct presence *p, struct op *op, uint64_t now)
{
	const struct route_presence *m = &op->rp;
	struct user *u = user_get(p, m->user, m->kind != ROUTE_PRESENCE_STATE);
	enum presence_status status = m->status <= PRESENCE_AWAY ? m->status : PRESENCE_OFFLINE;

	if (u == NULL)
		return;
	switch (m->kind) {
	case ROUTE_PRESENCE_REPORT:
		entry_set(&u->reports, &u->nreports, op->from, status, status == PRESENCE_OFFLINE);
		break;
	case ROUTE_PRESENCE_WATCH:
		entry_set(&u->wnodes, &u->nwnodes, op->from, PRESENCE_OFFLINE, false);
		if (u->announced_ns == 0)
			u->announced = effective(p, u, true, now);
		send_to(p, op->from, ROUTE_PRESENCE_STATE, u->name, u->announced);
		return;
	case ROUTE_PRESENCE_UNWATCH:
		entry_set(&u->wnodes, &u->nwnodes, op->from, PRESENCE_OFFLINE, true);
		return;
	case ROUTE_PRESENCE_STATE:
		u->remote = status;
		u->has_remote = true;
		break;
	}
	settle(p, u, now);
}

/* The ring changed (the homes moved: what others told us is forgotten), or
 * a link came up: tell every home again what this node knows. */
static void resync(struct presence *p, bool ring_changed, uint64_t now)
{
	if (ring_changed)
		p->resync_ns = now;
	for (int b = 0; b < 1024; b++) {
		for (struct user *u = p->users[b]; u; u = u->next) {
			if (ring_changed) {
				u->nreports = u->nwnodes = 0;
				u->has_remote = false;
			}
			u->resend = true;
			watch_home(p, u, true);
			settle(p, u, now);
		}
	}
}

static void apply(struct presence *p, struct op *op, uint64_t now)
{
	struct user *u = NULL;

	switch (op->kind) {
	case OP_CONNECT:
		u = user_get(p, op->user, true);
		if (u && u->conns++ == 0)
			u->away = false; /* a fresh connection is present */
		break;
	case OP_DISCONNECT:
		u = user_get(p, op->user, false);
		if (u && u->conns > 0 && --u->conns == 0)
			u->gone_ns = now;
		break;
	case OP_AWAY:
		u = user_get(p, op->user, false);
		if (u)
			u->away = op->away;
		break;
	case OP_WATCH:
		watch(p, op, now);
		return;
	case OP_UNWATCH:
		unwatch(p, op->worker, op->session);
		return;
	case OP_REMOTE:
		remote(p, op, now);
		return;
	case OP_RESYNC:
		resync(p, op->ring_changed, now);
		return;
	}
	if (u)
		settle(p, u, now);
}

/* The tick: announce what waited for its interval, and forget idle users. */
static void sweep(struct presence *p, uint64_t now)
{
	for (int b = 0; b < 1024; b++) {
		for (struct user **pp = &p->users[b]; *pp;) {
			struct user *u = *pp;
			settle(p, u, now);
			if (u->conns == 0 && u->nwatchers == 0 && u->nreports == 0 &&
			    u->nwnodes == 0 && u->sent == PRESENCE_OFFLINE &&
			    wanted(p, u, now) == PRESENCE_OFFLINE) {
				*pp = u->next;
				user_free(u);
				continue;
			}
			pp = &u->next;
		}
	}
}

static void free_op(struct op *op)
{
	for (int i = 0; i < op->nusers; i++)
		free(op->users[i]);
	free(op);
}

static void *presence_main(void *arg)
{
	struct presence *p = arg;

	for (;;) {
		struct timespec until = time_mono_deadline(TICK_NS);
		struct op *ops;

		pthread_mutex_lock(&p->lock);
		if (p->head == NULL && !p->stopping)
			pthread_cond_timedwait(&p->wake, &p->lock, &until);
		ops = p->head;
		p->head = p->tail = NULL;
		if (p->stopping && ops == NULL) {
			pthread_mutex_unlock(&p->lock);
			break;
		}
		pthread_mutex_unlock(&p->lock);
		uint64_t now = time_mono_ns();
		while (ops) {
			struct op *next = ops->next;
			apply(p, ops, now);
			free_op(ops);
			ops = next;
		}
		sweep(p, now);
	}
	return NULL;
}

static void post(struct presence *p, struct op *op)
{
	pthread_mutex_lock(&p->lock);
	if (p->stopping) {
		pthread_mutex_unlock(&p->lock);
		free_op(op);
		return;
	}
	if (p->tail)
		p->tail->next = op;
	else
		p->head = op;
	p->tail = op;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
}

static struct op *op_new(enum op_kind kind, const char *user, int nusers)
{
	struct op *op = calloc(1, sizeof(*op) + (size_t)nusers * (sizeof(char *) + sizeof(bool)));

	if (op == NULL)
		return NULL;
	op->kind = kind;
	op->hidden = (bool *)&op->users[nusers];
	if (user)
		snprintf(op->user, sizeof(op->user), "%s", user);
	return op;
}

void presence_connect(struct presence *p, const char *user)
{
	struct op *op = op_new(OP_CONNECT, user, 0);
	if (op)
		post(p, op);
}

void presence_disconnect(struct presence *p, const char *user)
{
	struct op *op = op_new(OP_DISCONNECT, user, 0);
	if (op)
		post(p, op);
}

void presence_set_away(struct presence *p, const char *user, bool away)
{
	struct op *op = op_new(OP_AWAY, user, 0);
	if (op) {
		op->away = away;
		post(p, op);
	}
}

int presence_watch(struct presence *p, int worker, uint64_t session, const char *req,
		   const char *const *users, const bool *hidden, int nusers)
{
	struct op *op;

	if (nusers < 0 || nusers > PRESENCE_WATCH_MAX)
		return -EINVAL;
	op = op_new(OP_WATCH, NULL, nusers);
	if (op == NULL)
		return -ENOMEM;
	op->worker = worker;
	op->session = session;
	snprintf(op->req, sizeof(op->req), "%s", req ? req : "");
	for (int i = 0; i < nusers; i++) {
		op->hidden[i] = hidden && hidden[i];
		op->users[i] = strdup(users[i]);
		if (op->users[i] == NULL) {
			op->nusers = i;
			free_op(op);
			return -ENOMEM;
		}
		op->nusers = i + 1;
	}
	post(p, op);
	return 0;
}

void presence_set_route(struct presence *p, const struct route *r)
{
	if (r && r->presence_home && r->presence_send)
		p->route = *r;
}

void presence_remote(struct presence *p, const char *from, const struct route_presence *m)
{
	struct op *op = op_new(OP_REMOTE, NULL, 0);

	if (op) {
		snprintf(op->from, sizeof(op->from), "%s", from);
		op->rp = *m;
		post(p, op);
	}
}

void presence_resync(struct presence *p, bool ring_changed)
{
	struct op *op = op_new(OP_RESYNC, NULL, 0);

	if (op) {
		op->ring_changed = ring_changed;
		post(p, op);
	}
}

void presence_unwatch(struct presence *p, int worker, uint64_t session)
{
	struct op *op = op_new(OP_UNWATCH, NULL, 0);
	if (op) {
		op->worker = worker;
		op->session = session;
		post(p, op);
	}
}

struct presence *presence_create(struct fanout *f, int grace_ms, int interval_ms,
				 presence_deliver_fn deliver)
{
	struct presence *p = calloc(1, sizeof(*p));
	pthread_condattr_t attr;

	if (p == NULL)
		return NULL;
	p->fanout = f;
	p->deliver = deliver;
	p->grace_ns = (uint64_t)grace_ms * 1000000ull;
	p->interval_ns = (uint64_t)interval_ms * 1000000ull;
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&p->wake, &attr);
	pthread_condattr_destroy(&attr);
	if (pthread_create(&p->thread, NULL, presence_main, p) != 0) {
		free(p);
		return NULL;
	}
	name_thread(p->thread, "presence");
	return p;
}

void presence_stop(struct presence *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	if (p->stopping) {
		pthread_mutex_unlock(&p->lock);
		return;
	}
	p->stopping = true;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
}

void presence_destroy(struct presence *p)
{
	if (p == NULL)
		return;
	presence_stop(p);
	for (int b = 0; b < 1024; b++)
		for (struct user *u = p->users[b], *next; u; u = next) {
			next = u->next;
			user_free(u);
		}
	while (p->watchings) {
		struct watching *w = p->watchings;
		p->watchings = w->next;
		for (int i = 0; i < w->nusers; i++)
			free(w->users[i]);
		free(w->users);
		free(w);
	}
	for (struct op *op = p->head, *next; op; op = next) {
		next = op->next;
		free_op(op);
	}
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->wake);
	free(p);
}
