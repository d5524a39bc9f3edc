/* SPDX-License-Identifier: BSD-3-Clause */
/* The fan-out engine shared by both edges: which workers have subscribers of
 * which channel, and each worker's inbox.
 *
 * The channel -> workers table is a DPDK rte_hash with lock-free read
 * concurrency: the commit path (the persist writer thread) reads it for every
 * message, and workers for ephemeral ones, without a lock; workers change it
 * rarely (first subscriber of a channel on a worker, last one gone) under a
 * mutex, since rte_hash allows one writer at a time. The value is the worker
 * bitmask itself, so an update is a single atomic store. A channel whose mask
 * drops to zero is deleted; its key's slot is reused only after every reader
 * that might be looking at it has left (rte_rcu_qsbr: readers are online for
 * the length of a lookup), so the table holds the channels with subscribers
 * now, up to `channels`, the capacity given at creation.
 *
 * Each worker has an inbox (rte_ring, many producers, one consumer) of frames
 * and events, and a wake function (the socket edge's signals the service
 * thread's eventfd).
 * An inbox that overflows loses frames; the worker is told (overrun) and must
 * send its sessions back to PostgreSQL for what they missed: a cursor, not a
 * buffer. Events (acks, job results) never drop: they spill to a locked list.
 *
 * Needs EAL initialised (fanout_eal_init) before fanout_create. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "frame.h"

#define FANOUT_WORKERS_MAX 64

struct fanout;

/* An event for a worker: run() is called on the worker's thread and owns ev. */
struct fanout_event {
	struct fanout_event *next; /* spill list */
	void (*run)(void *worker_arg, struct fanout_event *ev);
};

/* Starts DPDK's EAL for an unprivileged, NIC-less process: no hugepages, no
 * PCI, no shared config, a unique file prefix, the given memory in MiB.
 * extra (may be NULL) is appended, space-separated. 0 or -errno. Once per
 * process; later calls return 0. */
int fanout_eal_init(int memory_mb, const char *extra);

/* Starts the EAL for the DPDK edge: the operator's arguments (extra: the
 * device, hugepages or --no-huge, ...) after a unique file prefix and, unless
 * extra names lcores, "-l 0-worker_lcores" (lcore 0 is the main thread).
 * 0 or -errno. Once per process. */
int fanout_eal_init_dpdk(int worker_lcores, int memory_mb, const char *extra);

/* nworkers 1..64; channels: table capacity. NULL with errno. */
struct fanout *fanout_create(int nworkers, uint32_t channels);
void fanout_destroy(struct fanout *f);

/* Sets worker w's wake function, called after something is queued for it
 * (from any thread; must be cheap and thread-safe). */
void fanout_set_wake(struct fanout *f, int w, void (*wake)(void *arg), void *arg);

/* Told when the node gets its first subscriber of a channel (on) or loses
 * its last (off): the cluster registers the node's interest with the
 * channel's owner. Called under the table's write lock, from the thread
 * that joined or left: it must only note the change, not block. */
typedef void (*fanout_interest_fn)(void *arg, int64_t channel, bool on);
void fanout_set_interest(struct fanout *f, fanout_interest_fn fn, void *arg);

/* Marks or clears worker w as having subscribers of channel. Thread-safe
 * (serialised). 0, -ENOSPC (table full), -EINVAL. */
int fanout_worker_join(struct fanout *f, int64_t channel, int w);
int fanout_worker_leave(struct fanout *f, int64_t channel, int w);

/* Hands frame to every worker with subscribers of frame->channel: the first
 * takes the caller's reference, each other a private copy. Returns the number
 * of workers reached; 0 means nobody subscribes (the frame was released).
 * Lock-free and safe from any thread; frames of a channel published from one
 * thread reach each inbox in the order of the calls (the commit path is one
 * thread). */
int fanout_publish(struct fanout *f, struct frame *frame);

/* Queues a frame (the caller's reference) for worker w; on overflow the frame
 * is released and the worker is flagged overrun. */
void fanout_post_frame(struct fanout *f, int w, struct frame *frame);

/* Queues an event for worker w. Never fails. Thread-safe. */
void fanout_post_event(struct fanout *f, int w, struct fanout_event *ev);

/* Worker side: takes up to max items from w's inbox, calling on_frame for
 * frames (it owns the reference) and ev->run for events; then calls
 * on_overrun once if frames were lost since the last drain. Returns the count
 * taken. Called only on worker w's thread. */
unsigned fanout_drain(struct fanout *f, int w, void (*on_frame)(void *arg, struct frame *fr),
		      void (*on_overrun)(void *arg), void *arg, unsigned max);

/* Counters for metrics. */
uint64_t fanout_frames_posted(struct fanout *f);
uint64_t fanout_frames_dropped(struct fanout *f);
