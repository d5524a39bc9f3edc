/* SPDX-License-Identifier: BSD-3-Clause */
/* A log-linear latency histogram in the manner of HdrHistogram: values (ns)
 * land in buckets of about 1.5% width from 1 ns to hours, in fixed memory, so
 * recording is O(1) and percentiles are read at the end. */
#pragma once

#include <stdint.h>

#define HIST_SUB_BITS 6 /* 64 sub-buckets per power of two */
#define HIST_BUCKETS  (64 << HIST_SUB_BITS)

struct hist {
	uint64_t counts[HIST_BUCKETS];
	uint64_t total;
	uint64_t max;
};

void hist_record(struct hist *h, uint64_t value);
/* The value at quantile q (0..1); 0 when empty. */
uint64_t hist_quantile(const struct hist *h, double q);
void hist_merge(struct hist *into, const struct hist *from);
