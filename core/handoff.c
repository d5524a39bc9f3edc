/* SPDX-License-Identifier: BSD-3-Clause */
/* The publish hand-off (handoff.h): the worker's side (scan, check, copy into
 * a slot, put it on the ring), the control thread's (parse, validate,
 * submit; encode the answer after COMMIT) and the slot's way back through
 * the worker's inbox. */
#define LOG_COMPONENT "handoff"
#include "handoff.h"

#include "edge-internal.h"
#include "jscan.h"
#include "log.h"
#include "metrics.h"
#include "publish.h"
#include "publish_request.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <rte_errno.h>
#include <rte_ring.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define CLASSES 4
#define BURST	64

/* Per worker, slots by the size of the request they hold: many small ones
 * (most chat messages), fewer large ones; the last class holds up to
 * max_message_bytes. About 7 MiB a worker with the default 64 KiB. */
static const struct {
	size_t bytes, count;
} classes[CLASSES] = {{512, 2048}, {2048, 1024}, {8192, 256}, {65536, 32}};
#define SLOTS_MAX (2048 + 1024 + 256 + 32)

struct handoff_slot {
	struct fanout_event ev;	   /* the way back, through the worker's inbox */
	struct commit_cookie base; /* the publish door's cookie */
	struct handoff_slot *next; /* on the worker's free list */
	struct handoff_worker *home;
	uint64_t session;
	int64_t channel, user_id;
	bool live, done;
	const char *refusal, *refusal_message; /* the worker's verdict, or NULL */
	enum persist_outcome outcome;
	int error;
	int64_t seq, ts;
	struct frame *answer;
	char user_name[65];
	char req[REQ_MAX + 1];
	char client_msg_id[PERSIST_CLIENT_MSG_ID_MAX + 1];
	size_t len;
	int cls; /* its size class */
	char data[];
};

struct handoff_worker {
	struct handoff *h;
	struct edge_worker *w;
	struct handoff_slot *free[CLASSES];
	size_t cap[CLASSES]; /* a slot's bytes, class by class */
	char *mem[CLASSES];  /* each class's slots, one allocation */
};

struct handoff {
	struct edge *e;
	struct rte_ring *ring;
	pthread_t thread;
	bool running;
	int efd;
	atomic_bool sleeping, stop;
};

static struct metric_counter m_spilled;

/* ---- the ring ---- */

static void push(struct handoff *h, struct handoff_slot *slot)
{
	uint64_t one = 1;

	/* Never full: it holds every slot of every worker. */
	if (rte_ring_mp_enqueue(h->ring, slot) != 0)
		LOG(ERR, "hand-off ring full; a publish is lost unanswered");
	/* Pairs with the control thread's fence between announcing that it
	 * sleeps and looking at the ring one last time. */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&h->sleeping, memory_order_relaxed) &&
	    atomic_exchange(&h->sleeping, false))
		(void)!write(h->efd, &one, sizeof(one));
}

/* ---- the worker's side ---- */

/* The smallest free slot that holds len bytes. */
static struct handoff_slot *slot_get(struct handoff_worker *hw, size_t len)
{
	for (int c = 0; c < CLASSES; c++) {
		struct handoff_slot *slot = hw->free[c];

		if (len <= hw->cap[c] && slot) {
			hw->free[c] = slot->next;
			return slot;
		}
	}
	/* Every slot of that size is out (a burst of large publishes): one from
	 * the heap, freed when it is back; counted, as the lcore should not. */
	struct handoff_slot *slot = rte_ring_free_count(hw->h->ring) > SLOTS_MAX
					? malloc(sizeof(*slot) + len)
					: NULL; /* room on the ring for every worker's own */
	if (slot) {
		slot->home = hw;
		slot->cls = -1;
		metric_add(&m_spilled, 1);
	}
	return slot;
}

static void slot_put(struct handoff_slot *slot)
{
	struct handoff_worker *hw = slot->home;
	int c = slot->cls;

	if (c < 0) {
		free(slot);
		return;
	}
	slot->next = hw->free[c];
	hw->free[c] = slot;
}

/* No slot, not even from the heap. A rare path, where jansson may run to
 * find the request's "req". */
static void refuse_overloaded(struct session *s, const char *data, size_t len)
{
	json_t *msg = json_loadb(data, len, 0, NULL);
	char buf[REQ_MAX + 1];

	session_error(s, msg ? request_req(msg, buf) : NULL, "overloaded",
		      "too many publishes in flight; retry with the same client_msg_id");
	json_decref(msg);
}

void handoff_offer(struct session *s, int64_t channel, const char *data, size_t len)
{
	struct handoff_worker *hw = s->w->handoff;
	struct handoff_slot *slot = slot_get(hw, len);

	if (slot == NULL) {
		refuse_overloaded(s, data, len);
		return;
	}
	slot->session = s->id;
	slot->base.received_ns = s->last_rx_ns;
	slot->channel = channel;
	slot->user_id = s->user_id;
	snprintf(slot->user_name, sizeof(slot->user_name), "%s", s->user_name);
	slot->done = false;
	slot->answer = NULL;
	slot->refusal = NULL;
	if (!session_is_member(s, channel)) {
		slot->refusal = "not_member";
		slot->refusal_message = "not a member of that channel";
	} else if (!session_take_token(s)) {
		slot->refusal = "rate_limited";
		slot->refusal_message = "too many publishes; slow down and retry";
	}
	slot->live = session_is_ephemeral(s, channel);
	memcpy(slot->data, data, len);
	slot->len = len;
	push(hw->h, slot);
}

bool handoff_take(struct session *s, const char *data, size_t len)
{
	static const char *const keys[] = {"type", "channel"};
	struct jscan_value v[2];

	if (jscan_object(data, len, keys, v, 2) != 0 || v[0].kind != JSCAN_STRING || v[0].escaped ||
	    v[0].len != 7 || memcmp(v[0].p, "publish", 7) != 0 || v[1].kind != JSCAN_INT ||
	    v[1].i <= 0)
		return false;
	handoff_offer(s, v[1].i, data, len);
	return true;
}

/* The slot is back in the worker's inbox: its answer to the session. */
static void back(void *worker_arg, struct fanout_event *ev)
{
	struct handoff_slot *slot = (void *)((char *)ev - offsetof(struct handoff_slot, ev));
	struct session *s = worker_find(worker_arg, slot->session);

	if (slot->answer && s)
		session_send_frame(s, slot->answer);
	else if (slot->answer)
		frame_unref(slot->answer);
	slot_put(slot);
}

/* ---- the control thread's side ---- */

/* Encodes o as the slot's answer and sends the slot home. */
static void answer(struct handoff *h, struct handoff_slot *slot, json_t *o)
{
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	slot->answer = text ? frame_new(FRAME_CONTROL, 0, 0, text, strlen(text)) : NULL;
	free(text);
	slot->ev.run = back;
	fanout_post_event(edge_fanout(h->e), edge_worker_index(slot->home->w), &slot->ev);
}

/* Any thread: the publish's outcome; the control thread answers it. */
static void done(struct edge *e, struct commit_cookie *base, enum persist_outcome outcome,
		 int error, const struct persist_message *m)
{
	struct handoff_slot *slot = (void *)((char *)base - offsetof(struct handoff_slot, base));

	slot->outcome = outcome;
	slot->error = error;
	slot->seq = m->seq;
	slot->ts = m->created_at_us;
	slot->done = true;
	push(slot->home->h, slot);
}

/* Parses and validates the request; NULL, or the code of the refusal. */
static const char *check(struct handoff *h, struct handoff_slot *slot, json_t *msg,
			 struct publish_request *r, const char **message)
{
	json_t *type = json_object_get(msg, "type");
	const char *code;

	if (request_req_invalid(msg)) {
		*message = "\"req\" is a string of at most 64 bytes or an integer";
		return "bad_request";
	}
	if (!json_is_string(type) || strcmp(json_string_value(type), "publish") != 0) {
		*message = "a publish was expected";
		return "bad_request";
	}
	code = publish_request_parse(msg, edge_limits(h->e).max_text_bytes, r, message);
	if (code == NULL && slot->refusal) {
		*message = slot->refusal_message;
		return slot->refusal;
	}
	/* @channel and @here, as on_publish checks them (requests.c) */
	return code ? code
		    : edge_mention_refusal(h->e, slot->user_id, r->channel, r->client_msg_id,
					   r->text, r->text_len, message);
}

static void submit(struct handoff *h, struct handoff_slot *slot)
{
	json_t *msg = json_loadb(slot->data, slot->len, 0, NULL);
	const char *code, *message, *req;
	struct publish_request r;
	char buf[REQ_MAX + 1];
	int rc;

	if (msg == NULL || !json_is_object(msg)) {
		json_decref(msg);
		answer(h, slot, request_error(NULL, "bad_json", "not a JSON object"));
		return;
	}
	req = request_req(msg, buf);
	code = check(h, slot, msg, &r, &message);
	if (code == NULL) {
		struct persist_publish p = {
		    .channel_id = r.channel,
		    .author_id = slot->user_id,
		    .parent_seq = r.parent_seq,
		    .client_msg_id = r.client_msg_id,
		    .author_name = slot->user_name,
		    .body = r.text,
		    .body_len = r.text_len,
		};

		snprintf(slot->req, sizeof(slot->req), "%s", req ? req : "");
		snprintf(slot->client_msg_id, sizeof(slot->client_msg_id), "%s", r.client_msg_id);
		slot->base.done = done;
		rc = publish_submit(edge_publish(h->e), &p, slot->live, &slot->base);
		code = rc ? publish_submit_error(rc, &message) : NULL;
	}
	if (code)
		answer(h, slot, request_error(req, code, message));
	json_decref(msg);
}

static void settle(struct handoff *h, struct handoff_slot *slot)
{
	const char *code, *message;

	if (slot->outcome == PERSIST_FAILED) {
		code = publish_failure(slot->error, &message);
		answer(h, slot, request_error(slot->req[0] ? slot->req : NULL, code, message));
		return;
	}
	answer(h, slot,
	       publish_ack(slot->req, slot->channel, slot->seq, slot->ts, slot->client_msg_id,
			   slot->outcome == PERSIST_DUPLICATE, slot->live));
}

/* Sleeps until a worker or a commit pushes a slot (or 100 ms pass). */
static void nap(struct handoff *h)
{
	struct pollfd p = {.fd = h->efd, .events = POLLIN};
	uint64_t n;

	atomic_store(&h->sleeping, true);
	atomic_thread_fence(memory_order_seq_cst);
	if (rte_ring_count(h->ring) == 0 && !atomic_load(&h->stop) && poll(&p, 1, 100) > 0)
		(void)!read(h->efd, &n, sizeof(n));
	atomic_store(&h->sleeping, false);
}

static void *control_main(void *arg)
{
	struct handoff *h = arg;
	void *items[BURST];

	while (!atomic_load(&h->stop)) {
		unsigned n = rte_ring_sc_dequeue_burst(h->ring, items, BURST, NULL);

		if (n == 0)
			nap(h);
		for (unsigned i = 0; i < n; i++) {
			struct handoff_slot *slot = items[i];

			if (slot->done)
				settle(h, slot);
			else
				submit(h, slot);
		}
	}
	return NULL;
}

/* ---- life ---- */

struct handoff *handoff_start(struct edge *e)
{
	struct handoff *h = calloc(1, sizeof(*h));
	char name[RTE_RING_NAMESIZE];
	static atomic_int made;
	int rc;

	if (h == NULL)
		return NULL;
	if (atomic_load(&made) == 0)
		metrics_register_counter("fanout_handoff_heap_slots_total",
					 "Publishes a worker handed off in a slot from the heap, "
					 "its own slots of that size all in flight.",
					 &m_spilled);
	h->e = e;
	snprintf(name, sizeof(name), "handoff-%d", atomic_fetch_add(&made, 1));
	h->ring = rte_ring_create(name, FANOUT_WORKERS_MAX * SLOTS_MAX, SOCKET_ID_ANY,
				  RING_F_SC_DEQ | RING_F_EXACT_SZ);
	h->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (h->ring == NULL || h->efd < 0) {
		rc = h->ring == NULL ? rte_errno : errno;
		handoff_destroy(h);
		errno = rc;
		return NULL;
	}
	rc = pthread_create(&h->thread, NULL, control_main, h);
	if (rc != 0) {
		handoff_destroy(h);
		errno = rc;
		return NULL;
	}
	pthread_setname_np(h->thread, "fanout-handoff");
	h->running = true;
	return h;
}

int handoff_attach(struct handoff *h, struct edge_worker *w)
{
	struct handoff_worker *hw = calloc(1, sizeof(*hw));
	size_t max = edge_config(h->e)->max_message_bytes;

	if (hw == NULL)
		return -ENOMEM;
	hw->h = h;
	hw->w = w;
	for (int c = 0; c < CLASSES; c++) {
		size_t cap = c == CLASSES - 1 && max > classes[c].bytes ? max : classes[c].bytes;
		size_t stride = (sizeof(struct handoff_slot) + cap + 63) & ~(size_t)63;
		size_t count = classes[c].count;

		if (cap > classes[c].bytes) /* a larger last class: about as many bytes */
			count =
			    count * classes[c].bytes / cap > 2 ? count * classes[c].bytes / cap : 2;
		hw->cap[c] = cap;
		hw->mem[c] = calloc(count, stride);
		if (hw->mem[c] == NULL) {
			w->handoff = hw;
			handoff_detach(w);
			return -ENOMEM;
		}
		for (size_t i = count; i-- > 0;) {
			struct handoff_slot *slot = (void *)(hw->mem[c] + stride * i);

			slot->home = hw;
			slot->cls = c;
			slot->next = hw->free[c];
			hw->free[c] = slot;
		}
	}
	w->handoff = hw;
	return 0;
}

void handoff_stop(struct handoff *h)
{
	void *item;

	if (h == NULL || !h->running)
		return;
	atomic_store(&h->stop, true);
	pthread_join(h->thread, NULL);
	h->running = false;
	while (rte_ring_sc_dequeue(h->ring, &item) == 0) {
		struct handoff_slot *slot = item;

		if (slot->answer)
			frame_unref(slot->answer);
	}
}

void handoff_detach(struct edge_worker *w)
{
	struct handoff_worker *hw = w->handoff;

	if (hw == NULL)
		return;
	for (int c = 0; c < CLASSES; c++)
		free(hw->mem[c]);
	free(hw);
	w->handoff = NULL;
}

void handoff_destroy(struct handoff *h)
{
	if (h == NULL)
		return;
	handoff_stop(h);
	rte_ring_free(h->ring);
	if (h->efd >= 0)
		close(h->efd);
	free(h);
}
