/* SPDX-License-Identifier: BSD-3-Clause */
/* The fan-out engine: channel -> workers table and worker inboxes. See
 * fanout.h for the design. Inbox items are tagged pointers: frames have the
 * low bit set, events do not (both are at least 8-byte aligned). */
#define LOG_COMPONENT "fanout"
#include "fanout.h"

#include "err.h"
#include "log.h"

#include <pthread.h>
#include <sched.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define INBOX_SIZE  (1u << 16)
#define TAG_FRAME   ((uintptr_t)1)
#define READERS_MAX 512 /* threads that ever read a channel table */

struct worker_slot {
	struct rte_ring *inbox;
	void (*wake)(void *arg);
	void *wake_arg;
	atomic_bool overrun;
	pthread_mutex_t spill_lock;
	struct fanout_event *spill_head, *spill_tail;
	atomic_bool spilled;
};

struct fanout {
	int nworkers;
	struct rte_hash *channels; /* channel id -> (void *)(uintptr_t)worker mask */
	pthread_mutex_t write_lock;
	struct worker_slot workers[FANOUT_WORKERS_MAX];
	atomic_uint_fast64_t posted, dropped;
	fanout_interest_fn interest; /* under write_lock */
	void *interest_arg;
};

/* Readers of the channel tables report to one QSBR variable for the process:
 * a thread gets an id the first time it reads, and is online only for the
 * length of a lookup, so a reader that sleeps never holds up reclaiming. */
static struct rte_rcu_qsbr *qsbr;
static pthread_mutex_t qsbr_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_uint next_reader;
static _Thread_local int reader_id = -1; /* -2: ids ran out, read under the lock */

static int qsbr_create(void)
{
	int rc = 0;

	pthread_mutex_lock(&qsbr_lock);
	if (qsbr == NULL) {
		size_t size = rte_rcu_qsbr_get_memsize(READERS_MAX);

		qsbr = rte_zmalloc("fanout_qsbr", size, RTE_CACHE_LINE_SIZE);
		if (qsbr == NULL || rte_rcu_qsbr_init(qsbr, READERS_MAX) != 0) {
			rte_free(qsbr);
			qsbr = NULL;
			rc = -ENOMEM;
		}
	}
	pthread_mutex_unlock(&qsbr_lock);
	return rc;
}

static int reader(void)
{
	if (reader_id == -1) {
		unsigned id = atomic_fetch_add(&next_reader, 1);

		reader_id =
		    id < READERS_MAX && rte_rcu_qsbr_thread_register(qsbr, id) == 0 ? (int)id : -2;
	}
	return reader_id;
}

/* The workers with subscribers of channel: a lock-free lookup, inside a
 * read-side critical section so that the key's slot is not reused under
 * it (rte_hash reclaims deleted keys' slots through the QSBR). */
static uint64_t workers_of(struct fanout *f, int64_t channel)
{
	int id = reader();
	void *data;
	uint64_t mask = 0;

	if (id < 0)
		pthread_mutex_lock(&f->write_lock);
	else
		rte_rcu_qsbr_thread_online(qsbr, (unsigned)id);
	if (rte_hash_lookup_data(f->channels, &channel, &data) >= 0)
		mask = (uint64_t)(uintptr_t)data;
	if (id < 0)
		pthread_mutex_unlock(&f->write_lock);
	else
		rte_rcu_qsbr_thread_offline(qsbr, (unsigned)id);
	return mask;
}

/* Runs rte_eal_init once per process with argv built by the callers. */
static int eal_init(int argc, char **argv)
{
	static pthread_mutex_t once = PTHREAD_MUTEX_INITIALIZER;
	static bool done;
	cpu_set_t cpus;
	int rc = 0;

	pthread_mutex_lock(&once);
	if (done)
		goto out;
	/* EAL pins the calling thread to lcore 0; the socket edge's threads
	 * are ordinary threads and must keep the whole machine. */
	pthread_getaffinity_np(pthread_self(), sizeof(cpus), &cpus);
	if (rte_eal_init(argc, argv) < 0) {
		rc = -rte_errno;
		LOG(ERR, "DPDK EAL failed to start: %s", rte_strerror(rte_errno));
		goto out;
	}
	pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);
	done = true;
out:
	pthread_mutex_unlock(&once);
	return rc;
}

/* Appends the space-separated words of extra to argv. */
static int add_words(char *buf, size_t size, const char *extra, char **argv, int argc, int max)
{
	char *save = NULL, *tok;

	snprintf(buf, size, "%s", extra ? extra : "");
	for (tok = strtok_r(buf, " ", &save); tok && argc < max; tok = strtok_r(NULL, " ", &save))
		argv[argc++] = tok;
	argv[argc] = NULL;
	return argc;
}

int fanout_eal_init(int memory_mb, const char *extra)
{
	char prefix[64], memory[16], buf[512], *argv[40];
	int argc = 0;

	snprintf(prefix, sizeof(prefix), "--file-prefix=fanout-%d", (int)getpid());
	snprintf(memory, sizeof(memory), "%d", memory_mb);
	argv[argc++] = "fanoutd";
	argv[argc++] = "--no-huge";
	argv[argc++] = "--no-pci";
	argv[argc++] = "--no-shconf";
	argv[argc++] = "--no-telemetry";
	argv[argc++] = "-m";
	argv[argc++] = memory;
	argv[argc++] = prefix;
	argv[argc++] = "-l";
	argv[argc++] = "0";
	argv[argc++] = "--log-level=error";
	argc = add_words(buf, sizeof(buf), extra, argv, argc, 39);
	return eal_init(argc, argv);
}

int fanout_eal_init_dpdk(int worker_lcores, int memory_mb, const char *extra)
{
	char prefix[64], lcores[32], memory[16], buf[512], *argv[48];
	const char *e = extra ? extra : "";
	int argc = 0;

	snprintf(prefix, sizeof(prefix), "--file-prefix=fanout-%d", (int)getpid());
	snprintf(lcores, sizeof(lcores), "0-%d", worker_lcores);
	snprintf(memory, sizeof(memory), "%d", memory_mb);
	argv[argc++] = "fanoutd";
	if (!strstr(e, "--file-prefix"))
		argv[argc++] = prefix;
	if (!strstr(e, "-l ") && !strstr(e, "--lcores")) {
		argv[argc++] = "-l";
		argv[argc++] = lcores;
	}
	if (strstr(e, "--no-huge") && !strstr(e, "-m ")) {
		argv[argc++] = "-m";
		argv[argc++] = memory;
	}
	/* DPDK's telemetry socket: its ethdev commands and fanout's own
	 * (dataplane/dpdk/telemetry.c), for dpdk-telemetry.py. */
	argv[argc++] = "--log-level=warning";
	argc = add_words(buf, sizeof(buf), extra, argv, argc, 47);
	return eal_init(argc, argv);
}

struct fanout *fanout_create(int nworkers, uint32_t channels)
{
	struct fanout *f;
	char name[RTE_HASH_NAMESIZE];
	static atomic_int instance;
	int id = atomic_fetch_add(&instance, 1);

	if (nworkers < 1 || nworkers > FANOUT_WORKERS_MAX || channels < 8)
		return err_null(-EINVAL);
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return NULL;
	f->nworkers = nworkers;
	pthread_mutex_init(&f->write_lock, NULL);
	snprintf(name, sizeof(name), "fanout_ch_%d", id);
	struct rte_hash_parameters params = {
	    .name = name,
	    .entries = channels,
	    .key_len = sizeof(int64_t),
	    .socket_id = (int)rte_socket_id(),
	    .extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF,
	};
	f->channels = rte_hash_create(&params);
	if (f->channels == NULL || qsbr_create() < 0)
		goto fail;
	/* a deleted key's slot is reused only once no reader can be in it */
	struct rte_hash_rcu_config rcu = {.v = qsbr, .mode = RTE_HASH_QSBR_MODE_DQ};
	if (rte_hash_rcu_qsbr_add(f->channels, &rcu) != 0)
		goto fail;
	for (int w = 0; w < nworkers; w++) {
		struct worker_slot *s = &f->workers[w];
		snprintf(name, sizeof(name), "fanout_in_%d_%d", id, w);
		/* Many producers (commit path, readers), one consumer. */
		s->inbox = rte_ring_create(name, INBOX_SIZE, (int)rte_socket_id(), RING_F_SC_DEQ);
		if (s->inbox == NULL)
			goto fail;
		pthread_mutex_init(&s->spill_lock, NULL);
	}
	return f;
fail:
	LOG(ERR, "cannot create the fan-out tables: %s", rte_strerror(rte_errno));
	fanout_destroy(f);
	return err_null(-ENOMEM);
}

void fanout_destroy(struct fanout *f)
{
	if (f == NULL)
		return;
	for (int w = 0; w < f->nworkers; w++) {
		struct worker_slot *s = &f->workers[w];
		void *item;

		while (s->inbox && rte_ring_dequeue(s->inbox, &item) == 0) {
			if ((uintptr_t)item & TAG_FRAME)
				frame_unref((struct frame *)((uintptr_t)item & ~TAG_FRAME));
			else
				free(item);
		}
		for (struct fanout_event *ev = s->spill_head, *next; ev; ev = next) {
			next = ev->next;
			free(ev);
		}
		rte_ring_free(s->inbox);
	}
	rte_hash_free(f->channels);
	free(f);
}

void fanout_set_wake(struct fanout *f, int w, void (*wake)(void *arg), void *arg)
{
	f->workers[w].wake = wake;
	f->workers[w].wake_arg = arg;
}

static int change_mask(struct fanout *f, int64_t channel, int w, bool set)
{
	void *data = NULL;
	uint64_t mask;
	int rc = 0;

	if (w < 0 || w >= f->nworkers)
		return -EINVAL;
	pthread_mutex_lock(&f->write_lock);
	uint64_t before;

	mask =
	    rte_hash_lookup_data(f->channels, &channel, &data) >= 0 ? (uint64_t)(uintptr_t)data : 0;
	before = mask;
	mask = set ? mask | (1ull << w) : mask & ~(1ull << w);
	if (mask) {
		rc = rte_hash_add_key_data(f->channels, &channel, (void *)(uintptr_t)mask);
		if (rc == -ENOSPC) {
			/* Deleted channels wait in the defer queue until no reader
			 * can be in them, and a lookup is short: wait for the
			 * readers online now to leave, then the add reclaims. */
			rte_rcu_qsbr_synchronize(qsbr, RTE_QSBR_THRID_INVALID);
			rc = rte_hash_add_key_data(f->channels, &channel, (void *)(uintptr_t)mask);
		}
	} else if (data != NULL)
		rc = rte_hash_del_key(f->channels, &channel) >= 0 ? 0 : -EINVAL;
	/* The node's first subscriber of the channel, or its last gone. */
	if (rc >= 0 && f->interest && (before == 0) != (mask == 0))
		f->interest(f->interest_arg, channel, mask != 0);
	pthread_mutex_unlock(&f->write_lock);
	return rc == -ENOSPC ? -ENOSPC : rc < 0 ? -EINVAL : 0;
}

void fanout_set_interest(struct fanout *f, fanout_interest_fn fn, void *arg)
{
	pthread_mutex_lock(&f->write_lock);
	f->interest = fn;
	f->interest_arg = arg;
	pthread_mutex_unlock(&f->write_lock);
}

int fanout_worker_join(struct fanout *f, int64_t channel, int w)
{
	return change_mask(f, channel, w, true);
}

int fanout_worker_leave(struct fanout *f, int64_t channel, int w)
{
	return change_mask(f, channel, w, false);
}

static void wake(struct worker_slot *s)
{
	if (s->wake)
		s->wake(s->wake_arg);
}

void fanout_post_frame(struct fanout *f, int w, struct frame *frame)
{
	struct worker_slot *s = &f->workers[w];

	if (rte_ring_enqueue(s->inbox, (void *)((uintptr_t)frame | TAG_FRAME)) != 0) {
		frame_unref(frame);
		atomic_store(&s->overrun, true);
		atomic_fetch_add_explicit(&f->dropped, 1, memory_order_relaxed);
	} else {
		atomic_fetch_add_explicit(&f->posted, 1, memory_order_relaxed);
	}
	wake(s);
}

int fanout_publish(struct fanout *f, struct frame *frame)
{
	uint64_t mask = workers_of(f, frame->channel);
	int reached = 0;

	if (mask == 0) {
		frame_unref(frame);
		return 0;
	}
	for (int w = 0; w < f->nworkers; w++) {
		struct frame *copy;

		if (!(mask & (1ull << w)))
			continue;
		/* The last worker takes the original; the others get copies,
		 * because a transport writes its header into the headroom. */
		mask &= ~(1ull << w);
		copy = mask ? frame_clone(frame) : frame;
		if (copy == NULL) {
			atomic_store(&f->workers[w].overrun, true);
			wake(&f->workers[w]);
			continue;
		}
		fanout_post_frame(f, w, copy);
		reached++;
	}
	return reached;
}

void fanout_post_event(struct fanout *f, int w, struct fanout_event *ev)
{
	struct worker_slot *s = &f->workers[w];

	if (rte_ring_enqueue(s->inbox, ev) != 0) {
		ev->next = NULL;
		pthread_mutex_lock(&s->spill_lock);
		if (s->spill_tail)
			s->spill_tail->next = ev;
		else
			s->spill_head = ev;
		s->spill_tail = ev;
		atomic_store(&s->spilled, true);
		pthread_mutex_unlock(&s->spill_lock);
	}
	wake(s);
}

unsigned fanout_drain(struct fanout *f, int w, void (*on_frame)(void *arg, struct frame *fr),
		      void (*on_overrun)(void *arg), void *arg, unsigned max)
{
	struct worker_slot *s = &f->workers[w];
	void *items[64];
	unsigned total = 0, n;

	while (total < max &&
	       (n = rte_ring_dequeue_burst(s->inbox, items, max - total < 64 ? max - total : 64,
					   NULL)) > 0) {
		for (unsigned i = 0; i < n; i++) {
			if ((uintptr_t)items[i] & TAG_FRAME) {
				on_frame(arg, (struct frame *)((uintptr_t)items[i] & ~TAG_FRAME));
			} else {
				struct fanout_event *ev = items[i];
				ev->run(arg, ev);
			}
		}
		total += n;
	}
	if (atomic_load(&s->spilled)) {
		struct fanout_event *ev, *next;

		pthread_mutex_lock(&s->spill_lock);
		ev = s->spill_head;
		s->spill_head = s->spill_tail = NULL;
		atomic_store(&s->spilled, false);
		pthread_mutex_unlock(&s->spill_lock);
		for (; ev; ev = next, total++) {
			next = ev->next;
			ev->run(arg, ev);
		}
	}
	if (atomic_exchange(&s->overrun, false))
		on_overrun(arg);
	return total;
}

uint64_t fanout_frames_posted(struct fanout *f)
{
	return atomic_load_explicit(&f->posted, memory_order_relaxed);
}

uint64_t fanout_frames_dropped(struct fanout *f)
{
	return atomic_load_explicit(&f->dropped, memory_order_relaxed);
}
