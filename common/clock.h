/* SPDX-License-Identifier: BSD-3-Clause */
/* Clocks (named clock.h so as not to shadow <time.h>): monotonic nanoseconds for intervals and
 * deadlines, wall-clock microseconds for timestamps stored or shown to users. */
#pragma once

#include <stdint.h>
#include <time.h>

static inline uint64_t time_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline int64_t time_real_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A timespec for pthread_cond_timedwait() on CLOCK_MONOTONIC, ns from now. */
static inline struct timespec time_mono_deadline(uint64_t ns_from_now)
{
	uint64_t t = time_mono_ns() + ns_from_now;
	struct timespec ts = {.tv_sec = (time_t)(t / 1000000000ull),
			      .tv_nsec = (long)(t % 1000000000ull)};
	return ts;
}
