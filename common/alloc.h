/* SPDX-License-Identifier: BSD-3-Clause */
/* The heap of every binary is jemalloc (linked in, replacing malloc); this is
 * the thin layer that names the allocator in use and reads its statistics for
 * metrics. Under ASan builds the libc/ASan allocator stands in and the
 * statistics read as zero. */
#pragma once

#include <stddef.h>

/* Confirms which allocator is active. Returns 0, or -ENOTSUP when the build
 * asked for jemalloc but malloc is not served by it. Call once from main(). */
int alloc_init(void);

/* "jemalloc 5.3.0-..." or "libc". Static storage. */
const char *alloc_name(void);

/* Bytes allocated by the application and bytes resident in the allocator's
 * pages. Both 0 when the allocator has no such statistics. Thread-safe. */
void alloc_stats(size_t *allocated, size_t *resident);

/* calloc() of n elements that fails with NULL/ENOMEM on overflow. */
void *alloc_array(size_t n, size_t size);
