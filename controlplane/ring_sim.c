/* SPDX-License-Identifier: BSD-3-Clause */
/* The ring's simulation (ring_sim.h): build the ring, walk the sorted channel
 * keys once per ring to count each member's channels, then rebuild without
 * a member (leave) and with one more (join) and count who changed hands. */
#include "ring_sim.h"

#include "ring.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

uint64_t *ring_sim_keys(size_t channels)
{
	uint64_t *keys = malloc(sizeof(*keys) * (channels ? channels : 1));

	if (keys == NULL)
		return NULL;
	for (size_t i = 0; i < channels; i++)
		keys[i] = ring_channel_key((int64_t)i + 1);
	qsort(keys, channels, sizeof(*keys), compare_u64);
	return keys;
}

/* Names node-000 .. node-(n-1), skipping index skip (-1: none). */
static const char **sim_names(char (*store)[24], int n, int skip, int *count)
{
	const char **ids = malloc(sizeof(*ids) * (size_t)(n + 1));

	*count = 0;
	for (int i = 0; ids && i < n; i++) {
		snprintf(store[i], sizeof(store[i]), "node-%03d", i);
		if (i != skip)
			ids[(*count)++] = store[i];
	}
	return ids;
}

/* Channels whose owner id differs between a and b; *between counts those
 * where neither owner is `except` (a member that left or joined). */
static size_t sim_moved(const struct ring *a, const uint16_t *oa, const struct ring *b,
			const uint16_t *ob, size_t n, const char *except, size_t *between)
{
	size_t moved = 0;

	*between = 0;
	for (size_t i = 0; i < n; i++) {
		const char *x = ring_member_id(a, oa[i]), *y = ring_member_id(b, ob[i]);

		if (strcmp(x, y) == 0)
			continue;
		moved++;
		if (strcmp(x, except) != 0 && strcmp(y, except) != 0)
			(*between)++;
	}
	return moved;
}

/* Counts per member and the balance figures of ring r. */
static void sim_balance(const struct ring *r, const uint16_t *owner, size_t n, struct ring_sim *out,
			int *fullest)
{
	int members = ring_members(r);
	size_t *count = calloc((size_t)members, sizeof(*count));
	double *share = calloc((size_t)members, sizeof(*share));
	double mean = (double)n / members, arc_max = 0;
	size_t max = 0, min = (size_t)-1;

	if (count == NULL || share == NULL)
		goto out;
	for (size_t i = 0; i < n; i++)
		count[owner[i]]++;
	ring_shares(r, share);
	for (int m = 0; m < members; m++) {
		if (count[m] > max) {
			max = count[m];
			*fullest = m;
		}
		if (count[m] < min)
			min = count[m];
		if (share[m] > arc_max)
			arc_max = share[m];
	}
	out->max_over_mean = (double)max / mean;
	out->min_over_mean = (double)min / mean;
	out->arc_max_over_mean = arc_max * members;
out:
	free(count);
	free(share);
}

/* Rebuilds with member `leave` gone (or a new member when leave < 0) and
 * returns moved over ideal. */
static double sim_change(const struct ring *base, const uint16_t *owner, int nodes, int vnodes,
			 int leave, const uint64_t *keys, size_t n, size_t *between)
{
	char(*store)[24] = calloc((size_t)nodes + 1, sizeof(*store));
	int count;
	const char **ids =
	    store ? sim_names(store, leave < 0 ? nodes + 1 : nodes, leave, &count) : NULL;
	struct ring *r = ids ? ring_build(ids, count, vnodes, 2) : NULL;
	uint16_t *next = malloc(sizeof(*next) * (n ? n : 1));
	double result = -1;

	if (r && next) {
		const char *who = leave < 0 ? store[nodes] : store[leave];
		size_t moved;

		ring_owners_sorted(r, keys, n, next);
		moved = sim_moved(base, owner, r, next, n, who, between);
		result = (double)moved / ((double)n / (leave < 0 ? nodes + 1 : nodes));
	}
	free(next);
	ring_free(r);
	free(ids);
	free(store);
	return result;
}

int ring_simulate(int nodes, int vnodes, const uint64_t *keys, size_t channels,
		  struct ring_sim *out)
{
	char(*store)[24] = calloc((size_t)nodes + 1, sizeof(*store));
	int count, fullest = 0, rc = -ENOMEM;
	const char **ids = store && nodes > 1 ? sim_names(store, nodes, -1, &count) : NULL;
	uint16_t *owner = malloc(sizeof(*owner) * (channels ? channels : 1));
	struct ring *r = NULL;
	double t0 = now_ms();

	memset(out, 0, sizeof(*out));
	if (nodes < 2 || channels == 0) {
		rc = -EINVAL;
		goto out;
	}
	if (ids == NULL || owner == NULL || (r = ring_build(ids, count, vnodes, 1)) == NULL)
		goto out;
	out->build_ms = now_ms() - t0;
	out->nodes = nodes;
	out->vnodes = vnodes;
	out->channels = channels;
	out->ring_bytes = ring_bytes(r);
	ring_owners_sorted(r, keys, channels, owner);
	sim_balance(r, owner, channels, out, &fullest);
	/* Leaving: the fullest member moves the most; a middle one for company. */
	int tried[2] = {fullest, (fullest + nodes / 2) % nodes};
	for (int i = 0; i < 2; i++) {
		size_t between;
		double m = sim_change(r, owner, nodes, vnodes, tried[i], keys, channels, &between);

		if (m < 0)
			goto out;
		if (m > out->moved_over_ideal)
			out->moved_over_ideal = m;
		out->moved_between_stayers += between;
	}
	size_t between;
	out->joined_over_ideal = sim_change(r, owner, nodes, vnodes, -1, keys, channels, &between);
	out->moved_between_stayers += between;
	rc = out->joined_over_ideal < 0 ? -ENOMEM : 0;
out:
	ring_free(r);
	free(owner);
	free(ids);
	free(store);
	return rc;
}
