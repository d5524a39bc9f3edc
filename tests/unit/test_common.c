/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of the small common pieces: UTF-8 validation and the metrics
 * registry's Prometheus rendering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "metrics.h"
#include "utf8.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void test_utf8(void **state)
{
	struct utf8_state st = UTF8_STATE_INIT;

	assert_true(utf8_valid("plain ascii", 11));
	assert_true(utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14));
	assert_false(utf8_valid("\xc0\xaf", 2));	 /* overlong '/' */
	assert_false(utf8_valid("\xe0\x80\xaf", 3));	 /* overlong, 3 bytes */
	assert_false(utf8_valid("\xed\xa0\x80", 3));	 /* surrogate U+D800 */
	assert_false(utf8_valid("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
	assert_false(utf8_valid("\xe2\x82", 2));	 /* truncated */
	assert_false(utf8_valid("\xff", 1));
	/* Incremental: a code point split across feeds. */
	assert_true(utf8_feed(&st, "\xe2", 1));
	assert_false(utf8_complete(&st));
	assert_true(utf8_feed(&st, "\x82\xac", 2));
	assert_true(utf8_complete(&st));
	/* A bad byte fails as soon as it is seen. */
	st = (struct utf8_state)UTF8_STATE_INIT;
	assert_false(utf8_feed(&st, "\xed\xa0", 2));
}

static double twice(void *arg, int index)
{
	return *(double *)arg * 2 * index;
}

/* An info metric: one line with its labels, values escaped. */
static void test_metrics_info(void **state)
{
	const char *const pairs[] = {"version", "1.2", "odd", "a\"b\\c\nd", NULL};
	const char *const bad[] = {"a b", "x", NULL};
	char *text, big[400];
	size_t len;

	(void)state;
	metrics_reset();
	assert_int_equal(metrics_register_info("fanout_test_info", "Build.", pairs), 0);
	assert_int_equal(metrics_register_info("fanout_test_bad_info", "Bad.", bad), -EINVAL);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(metrics_register_info("fanout_test_big_info", "Big.",
					       (const char *const[]){"v", big, NULL}),
			 -ENOSPC);
	/* a name that fills the buffer to the last byte, an empty value: no
	 * room left for the closing quote */
	memset(big, 'k', 253);
	big[253] = '\0';
	assert_int_equal(metrics_register_info("fanout_test_full_info", "Full.",
					       (const char *const[]){big, "", NULL}),
			 -ENOSPC);
	text = metrics_render(&len);
	assert_non_null(strstr(text,
			       "# TYPE fanout_test_info gauge\n"
			       "fanout_test_info{version=\"1.2\",odd=\"a\\\"b\\\\c\\nd\"} 1\n"));
	assert_null(strstr(text, "fanout_test_bad_info"));
	free(text);
	metrics_reset();
}

static void test_metrics_render(void **state)
{
	static struct metric_counter c;
	static struct metric_histogram h;
	static const uint64_t bounds[] = {1000000, 10000000};
	size_t len;
	char *text;

	metrics_reset();
	metric_histogram_init(&h, bounds, 2);
	assert_int_equal(metrics_register_counter("fanout_test_total", "A test.", &c), 0);
	assert_int_equal(metrics_register_counter("fanout_test_total", "Again.", &c), -EEXIST);
	assert_int_equal(metrics_register_counter("other_total", "No prefix.", &c), -EINVAL);
	assert_int_equal(metrics_register_histogram("fanout_test_seconds", "Latency.", &h), 0);
	static double base = 1.5;
	assert_int_equal(metrics_register_gauge_vec("fanout_test_things", "Per worker.", "worker",
						    3, twice, &base),
			 0);
	assert_int_equal(
	    metrics_register_gauge_vec("fanout_test_bad", "Bad label.", "a b", 1, twice, &base),
	    -EINVAL);
	metric_add(&c, 3);
	metric_observe_ns(&h, 500000);
	metric_observe_ns(&h, 5000000);
	metric_observe_ns(&h, 50000000);
	text = metrics_render(&len);
	assert_non_null(text);
	assert_int_equal(len, strlen(text));
	assert_non_null(strstr(text, "# TYPE fanout_test_total counter\nfanout_test_total 3\n"));
	assert_non_null(strstr(text, "fanout_test_seconds_bucket{le=\"0.001\"} 1\n"));
	assert_non_null(strstr(text, "fanout_test_seconds_bucket{le=\"0.01\"} 2\n"));
	assert_non_null(strstr(text, "fanout_test_seconds_bucket{le=\"+Inf\"} 3\n"));
	assert_non_null(strstr(text, "fanout_test_seconds_count 3\n"));
	assert_non_null(strstr(text, "fanout_test_seconds_sum 0.055500000\n"));
	assert_non_null(strstr(text,
			       "# TYPE fanout_test_things gauge\nfanout_test_things{worker=\"0\"} "
			       "0\nfanout_test_things{worker=\"1\"} 3\n"
			       "fanout_test_things{worker=\"2\"} 6\n"));
	free(text);
	metrics_reset();
}

/* The JSON form carries the same figures: counters, vectors by index,
 * histograms with their quantiles, info labels unescaped. */
static void test_metrics_snapshot(void **state)
{
	static struct metric_counter c;
	static struct metric_histogram h, empty;
	static const uint64_t bounds[] = {1000000, 10000000};
	static double base = 1.5;
	const char *const pairs[] = {"version", "1.2", "odd", "a\"b", NULL};
	json_t *o, *hist;

	(void)state;
	metrics_reset();
	metric_histogram_init(&h, bounds, 2);
	metric_histogram_init(&empty, bounds, 2);
	assert_int_equal(metrics_register_counter("fanout_test_total", "A test.", &c), 0);
	assert_int_equal(metrics_register_histogram("fanout_test_seconds", "Latency.", &h), 0);
	assert_int_equal(metrics_register_histogram("fanout_test_idle_seconds", "None.", &empty),
			 0);
	assert_int_equal(metrics_register_gauge_vec("fanout_test_things", "Per worker.", "worker",
						    3, twice, &base),
			 0);
	assert_int_equal(metrics_register_info("fanout_test_info", "Build.", pairs), 0);
	metric_add(&c, 7);
	for (int i = 0; i < 98; i++)
		metric_observe_ns(&h, 500000);
	metric_observe_ns(&h, 5000000);
	metric_observe_ns(&h, 50000000);
	o = metrics_snapshot();
	assert_non_null(o);
	assert_int_equal(json_integer_value(json_object_get(o, "fanout_test_total")), 7);
	hist = json_object_get(o, "fanout_test_seconds");
	assert_int_equal(json_integer_value(json_object_get(hist, "count")), 100);
	assert_true(json_real_value(json_object_get(hist, "p50_seconds")) == 0.001);
	assert_true(json_real_value(json_object_get(hist, "p99_seconds")) == 0.01);
	assert_true(json_is_null(
	    json_object_get(json_object_get(o, "fanout_test_idle_seconds"), "p99_seconds")));
	assert_true(json_real_value(json_array_get(json_object_get(o, "fanout_test_things"), 2)) ==
		    6.0);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(o, "fanout_test_info"), "odd")),
	    "a\"b");
	json_decref(o);
	/* past every bound: the largest finite one */
	metric_histogram_init(&h, bounds, 2);
	metric_observe_ns(&h, 50000000);
	assert_true(metric_histogram_quantile(&h, 0.5) == 0.01);
	metrics_reset();
}

/* A quantile over what was observed since a copy: the earlier
 * observations do not count. */
static void test_histogram_quantile_since(void **state)
{
	static struct metric_histogram h, before;
	static const uint64_t bounds[] = {1000000, 10000000, 100000000};

	(void)state;
	metric_histogram_init(&h, bounds, 3);
	for (int i = 0; i < 1000; i++)
		metric_observe_ns(&h, 50000000); /* a slow past: 50 ms */
	metric_histogram_copy(&before, &h);
	assert_int_equal(atomic_load(&before.count), 1000);
	for (int i = 0; i < 100; i++)
		metric_observe_ns(&h, 500000); /* since: 0.5 ms */
	assert_true(metric_histogram_quantile(&h, 0.99) == 0.1);
	assert_true(metric_histogram_quantile_since(&h, &before, 0.99) == 0.001);
	assert_true(metric_histogram_quantile_since(&before, &before, 0.5) == -1); /* none */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_histogram_quantile_since), cmocka_unit_test(test_utf8),
	    cmocka_unit_test(test_metrics_render),	     cmocka_unit_test(test_metrics_info),
	    cmocka_unit_test(test_metrics_snapshot),
	};
	return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
