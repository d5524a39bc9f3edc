/* SPDX-License-Identifier: BSD-3-Clause */
/* The ring (ring.h): members sorted by id, each with `vnodes` points placed
 * by hashing its id and the point's number; a key belongs to the member of
 * the first point at or after it, wrapping at the top.
 *
 *   points[]: | h0 | h1 | h2 | ... |   sorted uint64 hashes
 *   owner[]:  | m  | m' | m  | ... |   member index of each point
 *
 * Ten bytes a point: 100 members at 4,096 vnodes is 409,600 points, 4 MB,
 * built in tens of milliseconds (docs/cluster.md has the figures). The hash
 * is FNV-1a over the id, then a 64-bit finalizer (a bijection with full
 * avalanche) per point: the same on every node and every build. */
#include "ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct ring_point {
	uint64_t hash;
	uint32_t member;
};

struct ring {
	int nmembers;
	int vnodes;
	int64_t epoch;
	size_t npoints;
	char (*ids)[RING_ID_MAX + 1];
	uint64_t *points;
	uint16_t *owner;
};

#define GOLDEN 0x9E3779B97F4A7C15ull

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

uint64_t ring_channel_key(int64_t channel)
{
	return mix64((uint64_t)channel * GOLDEN + 0x63680000ull);
}

uint64_t ring_user_key(int64_t user)
{
	return mix64((uint64_t)user * GOLDEN + 0x75730000ull);
}

uint64_t ring_name_key(const char *name)
{
	uint64_t h = 14695981039346656037ull; /* FNV-1a, then mixed */

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 1099511628211ull;
	return mix64(h + 0x6e6d0000ull);
}

static int compare_ids(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int compare_points(const void *a, const void *b)
{
	const struct ring_point *x = a, *y = b;

	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	return x->member < y->member ? -1 : x->member > y->member;
}

static int valid_id(const char *id)
{
	size_t len = id ? strlen(id) : 0;

	return len >= 1 && len <= RING_ID_MAX;
}

/* Copies the ids sorted, refusing bad and repeated ones. 0 or -EINVAL. */
static int ring_take_ids(struct ring *r, const char *const *ids, int n)
{
	const char **sorted = malloc(sizeof(*sorted) * (size_t)n);
	int i, rc = 0;

	if (sorted == NULL)
		return -ENOMEM;
	memcpy(sorted, ids, sizeof(*sorted) * (size_t)n);
	for (i = 0; i < n; i++)
		if (!valid_id(sorted[i]))
			rc = -EINVAL;
	if (rc == 0)
		qsort(sorted, (size_t)n, sizeof(*sorted), compare_ids);
	for (i = 1; rc == 0 && i < n; i++)
		if (strcmp(sorted[i - 1], sorted[i]) == 0)
			rc = -EINVAL;
	for (i = 0; rc == 0 && i < n; i++)
		strcpy(r->ids[i], sorted[i]);
	free(sorted);
	return rc;
}

static int ring_place_points(struct ring *r)
{
	struct ring_point *tmp = malloc(sizeof(*tmp) * r->npoints);
	size_t k = 0;

	if (tmp == NULL)
		return -ENOMEM;
	for (int m = 0; m < r->nmembers; m++) {
		uint64_t base = fnv1a(r->ids[m]);

		for (int v = 0; v < r->vnodes; v++, k++) {
			tmp[k].hash = mix64(base + (uint64_t)(v + 1) * GOLDEN);
			tmp[k].member = (uint32_t)m;
		}
	}
	qsort(tmp, r->npoints, sizeof(*tmp), compare_points);
	for (k = 0; k < r->npoints; k++) {
		r->points[k] = tmp[k].hash;
		r->owner[k] = (uint16_t)tmp[k].member;
	}
	free(tmp);
	return 0;
}

struct ring *ring_build(const char *const *ids, int n, int vnodes, int64_t epoch)
{
	struct ring *r;
	int rc;

	if (n < 1 || n > RING_MAX_MEMBERS || vnodes < 1 || vnodes > RING_MAX_VNODES) {
		errno = EINVAL;
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->nmembers = n;
	r->vnodes = vnodes;
	r->epoch = epoch;
	r->npoints = (size_t)n * (size_t)vnodes;
	r->ids = calloc((size_t)n, sizeof(*r->ids));
	r->points = malloc(sizeof(*r->points) * r->npoints);
	r->owner = malloc(sizeof(*r->owner) * r->npoints);
	if (r->ids == NULL || r->points == NULL || r->owner == NULL)
		rc = -ENOMEM;
	else
		rc = ring_take_ids(r, ids, n);
	if (rc == 0)
		rc = ring_place_points(r);
	if (rc < 0) {
		ring_free(r);
		errno = -rc;
		return NULL;
	}
	return r;
}

void ring_free(struct ring *r)
{
	if (r == NULL)
		return;
	free(r->ids);
	free(r->points);
	free(r->owner);
	free(r);
}

/* The index of the first point at or after key, wrapping to 0. */
static size_t ring_successor(const struct ring *r, uint64_t key)
{
	size_t lo = 0, hi = r->npoints;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->points[mid] < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo == r->npoints ? 0 : lo;
}

int ring_owner(const struct ring *r, uint64_t key)
{
	return r->owner[ring_successor(r, key)];
}

const char *ring_owner_id(const struct ring *r, uint64_t key)
{
	return r->ids[ring_owner(r, key)];
}

int ring_members(const struct ring *r)
{
	return r->nmembers;
}

const char *ring_member_id(const struct ring *r, int i)
{
	return i >= 0 && i < r->nmembers ? r->ids[i] : NULL;
}

int ring_member_index(const struct ring *r, const char *id)
{
	int lo = 0, hi = r->nmembers - 1;

	while (id && lo <= hi) {
		int mid = (lo + hi) / 2, c = strcmp(r->ids[mid], id);

		if (c == 0)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

int ring_vnodes(const struct ring *r)
{
	return r->vnodes;
}

int64_t ring_epoch(const struct ring *r)
{
	return r->epoch;
}

size_t ring_bytes(const struct ring *r)
{
	return sizeof(*r) + (size_t)r->nmembers * sizeof(*r->ids) +
	       r->npoints * (sizeof(*r->points) + sizeof(*r->owner));
}

void ring_shares(const struct ring *r, double *share)
{
	const double span = 18446744073709551616.0; /* 2^64 */
	uint64_t prev = r->points[r->npoints - 1];

	for (int i = 0; i < r->nmembers; i++)
		share[i] = 0;
	/* Point k owns the arc (points[k-1], points[k]]; the first point's arc
	 * wraps around from the last (unsigned subtraction does the wrap). */
	for (size_t k = 0; k < r->npoints; k++) {
		share[r->owner[k]] += (double)(r->points[k] - prev) / span;
		prev = r->points[k];
	}
	if (r->npoints == 1)
		share[r->owner[0]] = 1;
}

void ring_owners_sorted(const struct ring *r, const uint64_t *keys, size_t n, uint16_t *owner)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		while (k < r->npoints && r->points[k] < keys[i])
			k++;
		owner[i] = r->owner[k == r->npoints ? 0 : k];
	}
}
