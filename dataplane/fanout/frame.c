/* SPDX-License-Identifier: BSD-3-Clause */
/* Refcounted encoded frames; see frame.h. */
#include "frame.h"

#include "clock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static _Atomic(const struct frame_memory *) memory;
static atomic_uint_fast64_t misses;

int frame_memory_install(const struct frame_memory *m)
{
	const struct frame_memory *none = NULL;

	return atomic_compare_exchange_strong(&memory, &none, m) ? 0 : -EBUSY;
}

uint64_t frame_memory_misses(void)
{
	return atomic_load_explicit(&misses, memory_order_relaxed);
}

struct frame *frame_new(enum frame_kind kind, int64_t channel, int64_t seq, const void *payload,
			size_t len)
{
	const struct frame_memory *m = atomic_load_explicit(&memory, memory_order_acquire);
	size_t size = sizeof(struct frame) + FRAME_HEADROOM + len + 1;
	struct frame *f = m ? m->get(m->arg, size) : NULL;
	bool pooled = f != NULL;

	if (f == NULL) {
		if (m)
			atomic_fetch_add_explicit(&misses, 1, memory_order_relaxed);
		f = malloc(size);
	}
	if (f == NULL)
		return NULL;
	f->pooled = pooled;
	atomic_init(&f->refs, 1);
	f->kind = (uint8_t)kind;
	f->len = (uint32_t)len;
	f->channel = channel;
	f->seq = seq;
	f->born_ns = time_mono_ns();
	/* Zeroed: a transport may keep per-frame state here (the DPDK edge does). */
	memset(f->buf, 0, FRAME_HEADROOM);
	memcpy(f->buf + FRAME_HEADROOM, payload, len);
	f->buf[FRAME_HEADROOM + len] = '\0';
	return f;
}

struct frame *frame_clone(const struct frame *f)
{
	struct frame *copy = frame_new((enum frame_kind)f->kind, f->channel, f->seq,
				       f->buf + FRAME_HEADROOM, f->len);

	if (copy)
		copy->born_ns = f->born_ns;
	return copy;
}

void frame_unref(struct frame *f)
{
	if (f && atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1) {
		if (f->pooled) {
			const struct frame_memory *m =
			    atomic_load_explicit(&memory, memory_order_acquire);
			m->put(m->arg, f);
		} else {
			free(f);
		}
	}
}
