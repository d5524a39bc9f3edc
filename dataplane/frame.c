/* Refcounted encoded frames; see frame.h. */
#include "frame.h"

#include "clock.h"

#include <stdlib.h>
#include <string.h>

struct frame *frame_new(enum frame_kind kind, int64_t channel, int64_t seq, const void *payload,
			size_t len)
{
	struct frame *f = malloc(sizeof(*f) + FRAME_HEADROOM + len + 1);

	if (f == NULL)
		return NULL;
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
	if (f && atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
		free(f);
}
