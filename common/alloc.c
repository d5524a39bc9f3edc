/* SPDX-License-Identifier: BSD-3-Clause */
/* Allocator identity and statistics over jemalloc's mallctl interface. */
#include "alloc.h"

#include "fanout-build.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#if FANOUT_HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

int alloc_init(void)
{
#if FANOUT_HAVE_JEMALLOC
	const char *version;
	size_t len = sizeof(version);
	void *probe;

	if (mallctl("version", &version, &len, NULL, 0) != 0)
		return -ENOTSUP;
	/* malloc() itself must be jemalloc's: a block it hands out is known to
	 * jemalloc's size query. */
	probe = malloc(64);
	if (probe == NULL)
		return -ENOMEM;
	if (malloc_usable_size(probe) < 64) {
		free(probe);
		return -ENOTSUP;
	}
	free(probe);
#endif
	return 0;
}

const char *alloc_name(void)
{
#if FANOUT_HAVE_JEMALLOC
	return "jemalloc " JEMALLOC_VERSION;
#else
	return "libc";
#endif
}

void alloc_stats(size_t *allocated, size_t *resident)
{
	*allocated = 0;
	*resident = 0;
#if FANOUT_HAVE_JEMALLOC
	uint64_t epoch = 1;
	size_t len = sizeof(epoch);

	/* Statistics are cached; bumping the epoch refreshes them. */
	mallctl("epoch", &epoch, &len, &epoch, len);
	len = sizeof(*allocated);
	mallctl("stats.allocated", allocated, &len, NULL, 0);
	len = sizeof(*resident);
	mallctl("stats.resident", resident, &len, NULL, 0);
#endif
}

void *alloc_array(size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size) {
		errno = ENOMEM;
		return NULL;
	}
	return calloc(n, size);
}
