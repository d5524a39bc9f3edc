/* SPDX-License-Identifier: BSD-3-Clause */
/* Log-linear histogram; see hist.h. A value's bucket is its power of two and
 * the next HIST_SUB_BITS bits below the leading one. */
#include "hist.h"

static unsigned bucket_of(uint64_t v)
{
	unsigned msb;

	if (v < (1u << HIST_SUB_BITS))
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	return ((msb - HIST_SUB_BITS + 1) << HIST_SUB_BITS) |
	       (unsigned)((v >> (msb - HIST_SUB_BITS)) & ((1u << HIST_SUB_BITS) - 1));
}

/* The upper bound of a bucket, the value reported for it. */
static uint64_t bucket_top(unsigned b)
{
	unsigned shift = b >> HIST_SUB_BITS, sub = b & ((1u << HIST_SUB_BITS) - 1);

	if (shift == 0)
		return sub;
	return ((uint64_t)((1u << HIST_SUB_BITS) | sub) << (shift - 1)) +
	       (((uint64_t)1 << (shift - 1)) - 1);
}

void hist_record(struct hist *h, uint64_t v)
{
	h->counts[bucket_of(v)]++;
	h->total++;
	if (v > h->max)
		h->max = v;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
	uint64_t want = (uint64_t)(q * (double)h->total + 0.5), seen = 0;

	if (h->total == 0)
		return 0;
	if (want == 0)
		want = 1;
	for (unsigned b = 0; b < HIST_BUCKETS; b++) {
		seen += h->counts[b];
		if (seen >= want) {
			uint64_t top = bucket_top(b);
			return top > h->max ? h->max : top;
		}
	}
	return h->max;
}

void hist_merge(struct hist *into, const struct hist *from)
{
	for (unsigned b = 0; b < HIST_BUCKETS; b++)
		into->counts[b] += from->counts[b];
	into->total += from->total;
	if (from->max > into->max)
		into->max = from->max;
}
