/* SPDX-License-Identifier: BSD-3-Clause */
/* An encoded server->client frame: the JSON text of one message (or other
 * event), with headroom in front for a transport to write its header into.
 * Refcounted: every session of a worker that sends it holds one reference.
 * Frames are never re-encoded per recipient. */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room for the transport's header and send state (the DPDK edge puts its
 * TX state and the websocket header there). */
#define FRAME_HEADROOM 64

enum frame_kind {
	FRAME_DURABLE,	 /* a persisted message: resumable by seq */
	FRAME_EPHEMERAL, /* typing, presence: dropped first, never replayed */
	FRAME_CONTROL,	 /* a reply to one session (ack, history, error) */
	FRAME_MENTION,	 /* a channel's notice for some members (core/mention.h):
			    dropped like ephemeral, never replayed */
};

struct frame {
	atomic_uint refs;
	uint8_t kind;
	uint8_t pooled; /* from the installed frame memory, not the heap */
	uint32_t len;
	int64_t channel;
	int64_t seq;
	uint64_t born_ns;    /* monotonic time of encoding, for fan-out latency */
	unsigned char buf[]; /* FRAME_HEADROOM bytes, then len bytes of payload */
};

/* Where frames live other than the heap: the DPDK edge installs pools of
 * DMA-able memory (dpdk/framepool.c) so that a NIC can send a frame's bytes
 * without a copy. get returns at least size bytes, or NULL and the frame
 * comes from the heap; put takes back what get gave, from any thread.
 * Installed once, never removed (frames may outlive whoever installed it). */
struct frame_memory {
	void *(*get)(void *arg, size_t size);
	void (*put)(void *arg, void *mem);
	void *arg;
};

/* Installs m (which must stay valid for the life of the process). -EBUSY if
 * a frame memory is installed already. */
int frame_memory_install(const struct frame_memory *m);

/* Frames made on the heap since a frame memory was installed: it was full,
 * or the frame fit none of its sizes. */
uint64_t frame_memory_misses(void);

/* A frame holding a copy of payload, with one reference. NULL/ENOMEM. */
struct frame *frame_new(enum frame_kind kind, int64_t channel, int64_t seq, const void *payload,
			size_t len);

/* A private copy (for another worker), with one reference. */
struct frame *frame_clone(const struct frame *f);

static inline unsigned char *frame_payload(struct frame *f)
{
	return f->buf + FRAME_HEADROOM;
}

static inline struct frame *frame_ref(struct frame *f)
{
	atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
	return f;
}

/* n more references in one atomic add: a worker handing a frame to n
 * sessions. */
static inline void frame_ref_n(struct frame *f, unsigned n)
{
	atomic_fetch_add_explicit(&f->refs, n, memory_order_relaxed);
}

void frame_unref(struct frame *f);
