/* SPDX-License-Identifier: BSD-3-Clause */
/* Process-wide metrics in the Prometheus text format. Modules own their metric
 * objects (usually static) and register them once at start-up; updates are
 * relaxed atomics, safe from any thread and cheap enough for hot paths.
 * Names carry the fanout_ prefix and no per-user or per-channel labels. */
#pragma once

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define METRIC_HISTOGRAM_MAX_BUCKETS 24

struct metric_counter {
	_Atomic uint64_t value;
};

/* Buckets hold durations; bounds are upper limits in nanoseconds, rendered
 * in seconds. */
struct metric_histogram {
	const uint64_t *bounds_ns;
	int nbounds;
	_Atomic uint64_t buckets[METRIC_HISTOGRAM_MAX_BUCKETS + 1]; /* last is +Inf */
	_Atomic uint64_t sum_ns;
	_Atomic uint64_t count;
};

/* 100 µs .. 10 s, roughly x2.5 per step: the default latency buckets. */
extern const uint64_t metric_latency_bounds_ns[];
extern const int metric_latency_nbounds;

static inline void metric_add(struct metric_counter *c, uint64_t n)
{
	atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

static inline uint64_t metric_read(struct metric_counter *c)
{
	return atomic_load_explicit(&c->value, memory_order_relaxed);
}

void metric_histogram_init(struct metric_histogram *h, const uint64_t *bounds_ns, int nbounds);
void metric_observe_ns(struct metric_histogram *h, uint64_t ns);

typedef double (*metric_gauge_fn)(void *arg);
typedef double (*metric_gauge_vec_fn)(void *arg, int index);

/* Registration: name must start with "fanout_"; help is one line. Returns 0,
 * -EINVAL for a bad name, -ENOSPC when the registry is full, -EEXIST for a
 * name registered twice. Thread-safe. */
int metrics_register_counter(const char *name, const char *help, struct metric_counter *c);
int metrics_register_gauge(const char *name, const char *help, metric_gauge_fn fn, void *arg);
int metrics_register_histogram(const char *name, const char *help, struct metric_histogram *h);
/* n gauges of one name told apart by one label: name{label="0"} .. n - 1,
 * each fn(arg, index) (per worker, say: never per user or channel). */
int metrics_register_gauge_vec(const char *name, const char *help, const char *label, int n,
			       metric_gauge_vec_fn fn, void *arg);

/* Forgets every registration (tests, and modules that are torn down). */
/* An info metric, rendered name{k="v",...} 1 (Prometheus' *_info
 * convention): pairs is key, value, key, value, ..., NULL. Keys are label
 * names; values are escaped. 0, -EINVAL (a bad key), -ENOSPC, -EEXIST. */
int metrics_register_info(const char *name, const char *help, const char *const *pairs);

void metrics_reset(void);

/* The same figures as JSON, for the operator's API (docs/api.md): an object
 * with one member per metric: a number for counters and gauges, an array
 * (by label index) for gauge vectors, {"count", "sum_seconds",
 * "p50_seconds", "p99_seconds"} for histograms (quantiles as bucket upper
 * bounds, null with no observations), the labels for info metrics. NULL on
 * ENOMEM. */
json_t *metrics_snapshot(void);
/* The upper bound (seconds) of the bucket holding the q-th fraction of h's
 * observations; the largest finite bound when it is past them; -1 when h is
 * empty. */
double metric_histogram_quantile(struct metric_histogram *h, double q);
/* The same over the observations made since before, a copy of h taken
 * earlier (NULL: all of them). */
double metric_histogram_quantile_since(const struct metric_histogram *h,
				       const struct metric_histogram *before, double q);
/* Copies src's figures into dst (each read atomically, not all at once). */
void metric_histogram_copy(struct metric_histogram *dst, const struct metric_histogram *src);

/* Renders every registered metric; returns a malloc'd NUL-terminated string
 * (free() it) and its length in *len, or NULL with errno set. */
char *metrics_render(size_t *len);
