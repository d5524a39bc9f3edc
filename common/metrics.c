/* SPDX-License-Identifier: BSD-3-Clause */
/* Metric registry and Prometheus text rendering. */
#include "metrics.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_MAX 128

const uint64_t metric_latency_bounds_ns[] = {
    100000,   250000,	 500000,    1000000,   2500000,	   5000000,    10000000,   25000000,
    50000000, 100000000, 250000000, 500000000, 1000000000, 2500000000, 5000000000, 10000000000,
};
const int metric_latency_nbounds =
    sizeof(metric_latency_bounds_ns) / sizeof(metric_latency_bounds_ns[0]);

enum metric_kind { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM, KIND_GAUGE_VEC, KIND_INFO };

struct metric_entry {
	const char *name;
	const char *help;
	enum metric_kind kind;
	struct metric_counter *counter;
	struct metric_histogram *histogram;
	metric_gauge_fn gauge;
	void *gauge_arg;
	metric_gauge_vec_fn vec;
	const char *label;
	int n;
	char labels[256]; /* KIND_INFO: name="value",... rendered once */
	char pairs[256];  /* KIND_INFO: name\0value\0...\0, for the JSON form */
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct metric_entry registry[METRICS_MAX];
static int registry_len;

void metric_histogram_init(struct metric_histogram *h, const uint64_t *bounds_ns, int nbounds)
{
	memset(h, 0, sizeof(*h));
	if (nbounds > METRIC_HISTOGRAM_MAX_BUCKETS)
		nbounds = METRIC_HISTOGRAM_MAX_BUCKETS;
	h->bounds_ns = bounds_ns;
	h->nbounds = nbounds;
}

void metric_observe_ns(struct metric_histogram *h, uint64_t ns)
{
	int i = 0;

	while (i < h->nbounds && ns > h->bounds_ns[i])
		i++;
	atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

static int register_entry(const struct metric_entry *e)
{
	int rc = 0;

	if (strncmp(e->name, "fanout_", 7) != 0 || strchr(e->name, ' ') != NULL)
		return -EINVAL;
	pthread_mutex_lock(&registry_lock);
	for (int i = 0; i < registry_len; i++) {
		if (strcmp(registry[i].name, e->name) == 0) {
			rc = -EEXIST;
			goto out;
		}
	}
	if (registry_len == METRICS_MAX) {
		rc = -ENOSPC;
		goto out;
	}
	registry[registry_len++] = *e;
out:
	pthread_mutex_unlock(&registry_lock);
	return rc;
}

int metrics_register_counter(const char *name, const char *help, struct metric_counter *c)
{
	struct metric_entry e = {.name = name, .help = help, .kind = KIND_COUNTER, .counter = c};
	return register_entry(&e);
}

int metrics_register_gauge(const char *name, const char *help, metric_gauge_fn fn, void *arg)
{
	struct metric_entry e = {
	    .name = name, .help = help, .kind = KIND_GAUGE, .gauge = fn, .gauge_arg = arg};
	return register_entry(&e);
}

int metrics_register_histogram(const char *name, const char *help, struct metric_histogram *h)
{
	struct metric_entry e = {
	    .name = name, .help = help, .kind = KIND_HISTOGRAM, .histogram = h};
	return register_entry(&e);
}

int metrics_register_gauge_vec(const char *name, const char *help, const char *label, int n,
			       metric_gauge_vec_fn fn, void *arg)
{
	struct metric_entry e = {.name = name,
				 .help = help,
				 .kind = KIND_GAUGE_VEC,
				 .vec = fn,
				 .gauge_arg = arg,
				 .label = label,
				 .n = n};

	if (n < 1 || label == NULL || strpbrk(label, " \"{}=") != NULL)
		return -EINVAL;
	return register_entry(&e);
}

/* Appends name="value" to buf (at *n), the value escaped as the text
 * format wants (backslash, double quote, newline). 0 or -ENOSPC. */
static int append_label(char *buf, size_t size, size_t *n, const char *name, const char *value)
{
	int k = snprintf(buf + *n, size - *n, "%s%s=\"", *n ? "," : "", name);

	if (k < 0 || (size_t)k >= size - *n)
		return -ENOSPC;
	*n += (size_t)k;
	for (const char *v = value; *v; v++) {
		const char *esc = *v == '\\'   ? "\\\\"
				  : *v == '"'  ? "\\\""
				  : *v == '\n' ? "\\n"
					       : NULL;

		if (*n + 3 >= size)
			return -ENOSPC;
		if (esc) {
			memcpy(buf + *n, esc, 2);
			*n += 2;
		} else {
			buf[(*n)++] = *v;
		}
	}
	if (*n + 2 >= size)
		return -ENOSPC; /* no room for the closing quote and the NUL */
	buf[(*n)++] = '"';
	buf[*n] = '\0';
	return 0;
}

int metrics_register_info(const char *name, const char *help, const char *const *pairs)
{
	struct metric_entry e = {.name = name, .help = help, .kind = KIND_INFO};
	size_t n = 0, raw = 0;

	for (int i = 0; pairs[i] && pairs[i + 1]; i += 2) {
		size_t kl = strlen(pairs[i]) + 1, vl = strlen(pairs[i + 1]) + 1;

		if (pairs[i][0] == '\0' || strpbrk(pairs[i], " \"{}=,\\") != NULL)
			return -EINVAL;
		if (append_label(e.labels, sizeof(e.labels), &n, pairs[i], pairs[i + 1]) < 0 ||
		    raw + kl + vl >= sizeof(e.pairs))
			return -ENOSPC;
		memcpy(e.pairs + raw, pairs[i], kl);
		memcpy(e.pairs + raw + kl, pairs[i + 1], vl);
		raw += kl + vl;
	}
	return register_entry(&e);
}

void metrics_reset(void)
{
	pthread_mutex_lock(&registry_lock);
	registry_len = 0;
	pthread_mutex_unlock(&registry_lock);
}

static void render_histogram(FILE *out, const char *name, struct metric_histogram *h)
{
	uint64_t cumulative = 0;

	for (int i = 0; i < h->nbounds; i++) {
		cumulative += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
		fprintf(out, "%s_bucket{le=\"%g\"} %lu\n", name, (double)h->bounds_ns[i] / 1e9,
			(unsigned long)cumulative);
	}
	cumulative += atomic_load_explicit(&h->buckets[h->nbounds], memory_order_relaxed);
	fprintf(out, "%s_bucket{le=\"+Inf\"} %lu\n", name, (unsigned long)cumulative);
	fprintf(out, "%s_sum %.9f\n", name,
		(double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9);
	/* The count is read last and may run ahead of the buckets by a few
	 * observations in flight; Prometheus tolerates that skew. */
	fprintf(out, "%s_count %lu\n", name, (unsigned long)cumulative);
}

char *metrics_render(size_t *len)
{
	static const char *const type_names[] = {"counter", "gauge", "histogram", "gauge", "gauge"};
	char *buf = NULL;
	FILE *out = open_memstream(&buf, len);

	if (out == NULL)
		return NULL;
	pthread_mutex_lock(&registry_lock);
	for (int i = 0; i < registry_len; i++) {
		struct metric_entry *e = &registry[i];

		fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", e->name, e->help, e->name,
			type_names[e->kind]);
		switch (e->kind) {
		case KIND_COUNTER:
			fprintf(out, "%s %lu\n", e->name, (unsigned long)metric_read(e->counter));
			break;
		case KIND_GAUGE:
			fprintf(out, "%s %.17g\n", e->name, e->gauge(e->gauge_arg));
			break;
		case KIND_HISTOGRAM:
			render_histogram(out, e->name, e->histogram);
			break;
		case KIND_INFO:
			fprintf(out, "%s{%s} 1\n", e->name, e->labels);
			break;
		case KIND_GAUGE_VEC:
			for (int k = 0; k < e->n; k++)
				fprintf(out, "%s{%s=\"%d\"} %.17g\n", e->name, e->label, k,
					e->vec(e->gauge_arg, k));
			break;
		}
	}
	pthread_mutex_unlock(&registry_lock);
	if (fclose(out) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* The bound below which a fraction q of h's observations fall, in seconds:
 * the upper bound of the bucket that holds the q-th one (the largest finite
 * bound when it is in the +Inf bucket), or -1 with no observations. */
double metric_histogram_quantile(struct metric_histogram *h, double q)
{
	return metric_histogram_quantile_since(h, NULL, q);
}

void metric_histogram_copy(struct metric_histogram *dst, const struct metric_histogram *src)
{
	dst->bounds_ns = src->bounds_ns;
	dst->nbounds = src->nbounds;
	for (int i = 0; i <= src->nbounds; i++)
		atomic_store(&dst->buckets[i],
			     atomic_load_explicit(&src->buckets[i], memory_order_relaxed));
	atomic_store(&dst->sum_ns, atomic_load_explicit(&src->sum_ns, memory_order_relaxed));
	atomic_store(&dst->count, atomic_load_explicit(&src->count, memory_order_relaxed));
}

double metric_histogram_quantile_since(const struct metric_histogram *h,
				       const struct metric_histogram *before, double q)
{
	uint64_t counts[METRIC_HISTOGRAM_MAX_BUCKETS + 1], total = 0, seen = 0;

	for (int i = 0; i <= h->nbounds; i++) {
		counts[i] = atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
		if (before)
			counts[i] -=
			    atomic_load_explicit(&before->buckets[i], memory_order_relaxed);
		total += counts[i];
	}
	if (total == 0 || h->nbounds == 0)
		return -1;
	for (int i = 0; i < h->nbounds; i++) {
		seen += counts[i];
		if ((double)seen >= q * (double)total)
			return (double)h->bounds_ns[i] / 1e9;
	}
	return (double)h->bounds_ns[h->nbounds - 1] / 1e9;
}

static json_t *histogram_json(struct metric_histogram *h)
{
	uint64_t count = 0;
	double p50 = metric_histogram_quantile(h, 0.5), p99 = metric_histogram_quantile(h, 0.99);

	for (int i = 0; i <= h->nbounds; i++)
		count += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
	return json_pack("{s:I, s:f, s:o, s:o}", "count", (json_int_t)count, "sum_seconds",
			 (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9,
			 "p50_seconds", p50 < 0 ? json_null() : json_real(p50), "p99_seconds",
			 p99 < 0 ? json_null() : json_real(p99));
}

static json_t *entry_json(struct metric_entry *e)
{
	json_t *v;

	switch (e->kind) {
	case KIND_COUNTER:
		return json_integer((json_int_t)metric_read(e->counter));
	case KIND_GAUGE:
		return json_real(e->gauge(e->gauge_arg));
	case KIND_HISTOGRAM:
		return histogram_json(e->histogram);
	case KIND_GAUGE_VEC:
		v = json_array();
		for (int k = 0; k < e->n; k++)
			json_array_append_new(v, json_real(e->vec(e->gauge_arg, k)));
		return v;
	case KIND_INFO:
		v = json_object();
		for (const char *p = e->pairs; *p;) {
			const char *value = p + strlen(p) + 1;

			json_object_set_new(v, p, json_string(value));
			p = value + strlen(value) + 1;
		}
		return v;
	}
	return json_null();
}

json_t *metrics_snapshot(void)
{
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	pthread_mutex_lock(&registry_lock);
	for (int i = 0; i < registry_len; i++)
		json_object_set_new(o, registry[i].name, entry_json(&registry[i]));
	pthread_mutex_unlock(&registry_lock);
	return o;
}
