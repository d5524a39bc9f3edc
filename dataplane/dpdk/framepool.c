/* SPDX-License-Identifier: BSD-3-Clause */
/* Frames in DPDK memory (see framepool.h): four rte_mempools of frame-sized
 * objects. Mempool objects never straddle a break in IO addresses, so a
 * frame's bytes are one DMA-able run; a get or put from an lcore goes
 * through its per-lcore cache, from any other thread straight to the
 * pool's lock-free ring. */
#include "framepool.h"

#include <rte_errno.h>
#include <rte_mempool.h>

#include <stdatomic.h>
#include <stdio.h>

#define CLASSES 4

/* Object sizes (struct frame, headroom and payload) and each class's share
 * of the memory: most messages are a few hundred bytes of JSON; the largest
 * class holds a 40,000-character message (the default max_text_bytes). */
static const uint32_t class_size[CLASSES] = {512, 2048, 8192, 65536};
static const unsigned class_percent[CLASSES] = {40, 20, 15, 25};

static struct rte_mempool *pools[CLASSES];
static size_t pool_bytes;
static atomic_bool installed;

static void *pool_get(void *arg, size_t size)
{
	void *obj;

	(void)arg;
	for (int c = 0; c < CLASSES; c++) {
		if (size > class_size[c])
			continue;
		/* its class, or the next one up when it is empty */
		if (rte_mempool_get(pools[c], &obj) == 0)
			return obj;
		if (c + 1 < CLASSES && rte_mempool_get(pools[c + 1], &obj) == 0)
			return obj;
		return NULL;
	}
	return NULL;
}

static void pool_put(void *arg, void *mem)
{
	(void)arg;
	rte_mempool_put(rte_mempool_from_obj(mem), mem);
}

static const struct frame_memory pooled = {pool_get, pool_put, NULL};

int framepool_install(size_t bytes, int socket)
{
	char name[RTE_MEMPOOL_NAMESIZE];

	if (atomic_load(&installed))
		return 0;
	for (int c = 0; c < CLASSES; c++) {
		unsigned n = (unsigned)(bytes / 100 * class_percent[c] / class_size[c]);
		unsigned cache = n / 16 < 256 ? n / 16 : 256;

		if (n < 16)
			n = 16;
		snprintf(name, sizeof(name), "fo_frames_%u", (unsigned)class_size[c]);
		pools[c] = rte_mempool_create(name, n, class_size[c], cache, 0, NULL, NULL, NULL,
					      NULL, socket, 0);
		if (pools[c] == NULL) {
			int err = rte_errno;

			while (c-- > 0) {
				rte_mempool_free(pools[c]);
				pools[c] = NULL;
			}
			rte_errno = err;
			return -1;
		}
		pool_bytes += (size_t)n * class_size[c];
	}
	if (frame_memory_install(&pooled) < 0) {
		rte_errno = EBUSY;
		return -1;
	}
	atomic_store(&installed, true);
	return 0;
}

rte_iova_t framepool_iova(const struct frame *f, const void *p)
{
	rte_iova_t base = rte_mempool_virt2iova(f);

	if (base == RTE_BAD_IOVA)
		return RTE_BAD_IOVA;
	return base + (rte_iova_t)((const unsigned char *)p - (const unsigned char *)f);
}

void framepool_usage(struct framepool_usage *u)
{
	*u = (struct framepool_usage){0};
	if (!atomic_load(&installed))
		return;
	for (int c = 0; c < CLASSES; c++) {
		u->in_use += rte_mempool_in_use_count(pools[c]);
		u->capacity += pools[c]->size;
	}
	u->bytes = pool_bytes;
}
