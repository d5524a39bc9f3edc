/* SPDX-License-Identifier: BSD-3-Clause */
/* A writer lane driven by an event loop (writer.h, persist_driver_*): the
 * loop's side. The loop holds a lane only while it can commit without
 * blocking: a working connection, every channel's head known, a batch small
 * enough for the pipelined append. Then it sends the append and its sync
 * (batch_append_send), reads the answer as its socket becomes readable
 * (batch_append_collect), and on a clean commit settles and delivers the
 * batch on its own thread, as the lane's thread would. Anything else goes
 * back to the lane's thread with the batch and where it stands
 * (lane.c, resume_handed), which gives the lane to the loop again once it
 * is idle.
 *
 * Who holds the lane is w->owner, changed under w->lock: the thread sets
 * LOOP (and wakes the loop) when idle; the loop sets THREAD when it hands a
 * batch back or lets go. The one that does not hold it never touches the
 * connection or the batch scratch. The socket is watched only while the
 * loop holds the lane, and unwatched before the loop lets go of it, so the
 * thread may close it. When the lane stops, the loop lets go for good
 * (loop_gone) and forgets it; the lane's thread waits for that before the
 * lane is freed. */
#define LOG_COMPONENT "persist"
#include "writer-internal.h"

#include "log.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>

/* One lane as its loop sees it. */
struct loop_lane {
	struct writer_lane *w; /* NULL once let go for good */
	int fd;		       /* the socket watched; -1 none */
	bool out;	       /* watched for writing too */
	bool in_flight;	       /* an append sent, its answer awaited */
	int n;		       /* the batch's size */
};

struct persist_driver {
	int epfd; /* the loop's */
	int n;
	struct loop_lane lanes[];
};

static void unwatch(struct persist_driver *d, struct loop_lane *ll)
{
	if (ll->fd >= 0)
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, ll->fd, NULL);
	ll->fd = -1;
	ll->out = false;
}

/* Gives the lane back to its thread, with the batch (if any) and where it
 * stands; for good when gone. */
static void hand_back(struct persist_driver *d, struct loop_lane *ll, enum lane_resume at,
		      enum exec_result er, bool gone)
{
	struct writer_lane *w = ll->w;

	unwatch(d, ll);
	if (at != RESUME_NONE)
		metric_add(&m_loop_handbacks, 1);
	pthread_mutex_lock(&w->lock);
	w->handed = at;
	w->handed_n = ll->n;
	w->handed_er = er;
	atomic_store(&w->owner, LANE_OWN_THREAD);
	if (gone)
		w->loop_gone = true;
	pthread_cond_broadcast(&w->wake);
	pthread_mutex_unlock(&w->lock);
	ll->in_flight = false;
	if (gone)
		ll->w = NULL;
}

/* Watches the lane's socket, for writing too when out. False when the loop
 * cannot (the lane then goes back to its thread for good). */
static bool watch(struct persist_driver *d, struct loop_lane *ll, bool out)
{
	int fd = PQsocket(ll->w->conn);
	struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = ll};

	if (fd == ll->fd && out == ll->out)
		return true;
	if (ll->fd >= 0 && ll->fd != fd)
		unwatch(d, ll);
	if (fd < 0 ||
	    epoll_ctl(d->epfd, ll->fd == fd ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) < 0) {
		LOG(ERR,
		    "%s: the service loop cannot watch its connection; the lane keeps its thread",
		    ll->w->name);
		return false;
	}
	ll->fd = fd;
	ll->out = out;
	return true;
}

/* Whether the loop can commit batch b without blocking. */
static bool loop_can_commit(struct writer_lane *w, const struct batch *b)
{
	if (w->conn == NULL || PQstatus(w->conn) != CONNECTION_OK)
		return false;
	if (w->cfg.copy_min_rows > 0 && b->n >= w->cfg.copy_min_rows)
		return false;
	if (w->cfg.may_commit && !w->cfg.may_commit(w->cfg.may_commit_arg))
		return false; /* the thread fails it, counted */
	return batch_heads_known(w, b);
}

/* Sends batch b (ll->n requests just taken), or hands it back. */
static void send_batch(struct persist_driver *d, struct loop_lane *ll, struct batch *b)
{
	struct writer_lane *w = ll->w;
	int nnew;

	metric_add(&m_batches, 1);
	if (!loop_can_commit(w, b)) {
		hand_back(d, ll, RESUME_START, EXEC_OK, false);
		return;
	}
	if ((nnew = lane_plan(w, b)) < 0) {
		lane_deliver(w, b);
		return;
	}
	if (nnew == 0) {
		lane_settle_planned(b, true);
		if (lane_pending(b) > 0)
			hand_back(d, ll, RESUME_START, EXEC_OK, false);
		else
			lane_deliver(w, b);
		return;
	}
	if (batch_append_send(w, b, nnew) < 0) {
		unwatch(d, ll); /* before finish closes the connection */
		hand_back(d, ll, RESUME_ANSWERED, batch_append_finish(w, b), false);
		return;
	}
	ll->in_flight = true;
	if (!watch(d, ll, PQflush(w->conn) == 1))
		hand_back(d, ll, RESUME_IN_FLIGHT, EXEC_OK, true);
}

/* The batch in flight answered in full: committed, or back to the thread. */
static void answered(struct persist_driver *d, struct loop_lane *ll)
{
	struct writer_lane *w = ll->w;
	struct batch b = {w->reqs, w->items, w->settled, ll->n};
	enum exec_result er;

	if (batch_append_lost(w))
		unwatch(d, ll); /* before finish closes the connection */
	er = batch_append_finish(w, &b);
	ll->in_flight = false;
	if (er != EXEC_OK) {
		hand_back(d, ll, RESUME_ANSWERED, er, false);
		return;
	}
	seqtab_commit(w->seq, b.items, b.n);
	lane_settle_planned(&b, true);
	if (lane_pending(&b) > 0) {
		hand_back(d, ll, RESUME_START, EXEC_OK, false);
		return;
	}
	metric_add(&m_loop_batches, 1);
	lane_deliver(w, &b);
	if (!watch(d, ll, false))
		hand_back(d, ll, RESUME_NONE, EXEC_OK, true);
}

/* One lane's part of a turn: let go for good if it stops, else send what
 * is queued when nothing is in flight. */
static void turn_lane(struct persist_driver *d, struct loop_lane *ll)
{
	struct writer_lane *w = ll->w;
	struct batch b = {w->reqs, w->items, w->settled, 0};
	bool ours;

	if (ll->in_flight)
		return;
	pthread_mutex_lock(&w->lock);
	ours = atomic_load(&w->owner) == LANE_OWN_LOOP;
	if (w->stopping) {
		if (ours)
			unwatch(d, ll);
		ll->n = 0;
		atomic_store(&w->owner, LANE_OWN_THREAD);
		w->loop_gone = true;
		pthread_cond_broadcast(&w->wake);
		pthread_mutex_unlock(&w->lock);
		ll->w = NULL;
		return;
	}
	if (ours)
		b.n = ll->n = lane_take_locked(w);
	pthread_mutex_unlock(&w->lock);
	if (!ours)
		return;
	if (ll->fd < 0 && !watch(d, ll, false)) {
		hand_back(d, ll, b.n ? RESUME_START : RESUME_NONE, EXEC_OK, true);
		return;
	}
	if (b.n > 0)
		send_batch(d, ll, &b);
}

void persist_driver_turn(struct persist_driver *d)
{
	if (d == NULL)
		return;
	for (int i = 0; i < d->n; i++)
		if (d->lanes[i].w)
			turn_lane(d, &d->lanes[i]);
}

bool persist_driver_ready(struct persist_driver *d, void *tag, bool in, bool out)
{
	struct loop_lane *ll = tag;
	struct writer_lane *w;

	if (d == NULL || (uintptr_t)tag < (uintptr_t)d->lanes ||
	    (uintptr_t)tag >= (uintptr_t)(d->lanes + d->n))
		return false;
	if ((w = ll->w) == NULL || atomic_load(&w->owner) != LANE_OWN_LOOP)
		return true;
	if (!ll->in_flight) {
		/* Idle: a notice, or the server closing the connection. */
		if (in && (!PQconsumeInput(w->conn) || PQstatus(w->conn) != CONNECTION_OK))
			hand_back(d, ll, RESUME_NONE, EXEC_OK, false);
		return true;
	}
	if (out && PQflush(w->conn) < 0)
		w->flight.lost = true;
	if (batch_append_collect(w))
		answered(d, ll);
	else if (!watch(d, ll, PQflush(w->conn) == 1))
		hand_back(d, ll, RESUME_IN_FLIGHT, EXEC_OK, true);
	return true;
}

struct persist_driver *persist_driver_create(struct persist_writer *w, int index, int nloops,
					     const struct persist_loop *loop)
{
	struct writer_lane *const *lanes;
	struct persist_driver *d;
	int n, mine = 0;

	if (w == NULL || loop == NULL || nloops < 1)
		return NULL;
	lanes = writer_lanes(w, &n);
	for (int i = index; i < n; i += nloops)
		mine++;
	if (mine == 0 || lanes[0]->cfg.batch_window_us > 0)
		return NULL;
	d = calloc(1, sizeof(*d) + (size_t)mine * sizeof(d->lanes[0]));
	if (d == NULL)
		return NULL;
	d->epfd = loop->epfd;
	for (int i = index; i < n; i += nloops) {
		struct writer_lane *l = lanes[i];

		d->lanes[d->n++] = (struct loop_lane){.w = l, .fd = -1};
		/* The thread gives the lane over when next idle (lane.c). */
		pthread_mutex_lock(&l->lock);
		l->loop_wake = loop->wake;
		l->loop_ctx = loop->ctx;
		l->loop_thread = pthread_self();
		pthread_cond_broadcast(&l->wake);
		pthread_mutex_unlock(&l->lock);
	}
	return d;
}

void persist_driver_destroy(struct persist_driver *d)
{
	if (d == NULL)
		return;
	for (int i = 0; i < d->n; i++) {
		struct loop_lane *ll = &d->lanes[i];
		struct writer_lane *w = ll->w;

		if (w == NULL)
			continue;
		if (atomic_load(&w->owner) == LANE_OWN_LOOP) {
			hand_back(d, ll, ll->in_flight ? RESUME_IN_FLIGHT : RESUME_NONE, EXEC_OK,
				  true);
			continue;
		}
		pthread_mutex_lock(&w->lock);
		w->loop_gone = true;
		pthread_cond_broadcast(&w->wake);
		pthread_mutex_unlock(&w->lock);
	}
	free(d);
}
