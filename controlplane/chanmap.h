/* SPDX-License-Identifier: BSD-3-Clause */
/* A map from channel id to a small fixed-size value, for the cluster's
 * interest tables: which channels this node subscribes to and at which
 * owner, which channels each peer subscribes to here. Chained buckets that
 * double as it grows. Not thread-safe: the cluster holds its lock. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHANMAP_VALUE 64

struct chanmap;

struct chanmap *chanmap_create(void);
void chanmap_destroy(struct chanmap *m);
/* The value of channel (CHANMAP_VALUE bytes, writable), or NULL. */
char *chanmap_get(struct chanmap *m, int64_t channel);
/* The value of channel, added (zeroed) if absent; NULL when out of memory. */
char *chanmap_put(struct chanmap *m, int64_t channel);
/* Removes channel; true if it was there. */
bool chanmap_del(struct chanmap *m, int64_t channel);
size_t chanmap_size(const struct chanmap *m);
/* Calls each(arg, channel, value) for every entry; each must not add or
 * remove. */
void chanmap_each(struct chanmap *m, void (*each)(void *arg, int64_t channel, char *value),
		  void *arg);
