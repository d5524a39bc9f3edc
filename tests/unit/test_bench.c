/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of the load generator's bookkeeping: per-stream seq checks
 * (gaps, duplicates, reorders) and the log-linear latency histogram. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cpu.h"
#include "hist.h"
#include "load.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_in_order(void **state)
{
	struct seq_check c = {0};
	for (int s = 1; s <= 10000; s++)
		seq_check(&c, s);
	assert_int_equal(c.received, 10000);
	assert_int_equal(c.gaps + c.dups + c.reorders, 0);
}

static void test_gap_duplicate_reorder(void **state)
{
	struct seq_check c = {0};
	seq_check(&c, 1);
	seq_check(&c, 2);
	seq_check(&c, 5); /* 3 and 4 missing */
	assert_int_equal(c.gaps, 2);
	seq_check(&c, 5); /* seen: a duplicate */
	seq_check(&c, 2);
	assert_int_equal(c.dups, 2);
	seq_check(&c, 4); /* late, not seen: a reorder filling the gap */
	assert_int_equal(c.reorders, 1);
	assert_int_equal(c.gaps, 1);
	seq_check(&c, 4);
	assert_int_equal(c.dups, 3);
	assert_int_equal(c.received, 4);
	/* The window slides by more than a word at once and keeps its bits. */
	seq_check(&c, 200);
	seq_check(&c, 5);
	assert_int_equal(c.dups, 4);
	seq_check(&c, 150);
	assert_int_equal(c.reorders, 2);
}

static void test_histogram_percentiles(void **state)
{
	struct hist *h = calloc(1, sizeof(*h));
	for (uint64_t v = 1; v <= 100000; v++)
		hist_record(h, v * 1000); /* 1 us .. 100 ms, uniform */
	uint64_t p50 = hist_quantile(h, 0.5), p99 = hist_quantile(h, 0.99);
	/* Within the buckets' ~1.6% width of the true values. */
	assert_true(p50 >= 49000000 && p50 <= 51000000);
	assert_true(p99 >= 97500000 && p99 <= 100500000);
	assert_int_equal(hist_quantile(h, 1.0), 100000000);
	assert_int_equal(h->max, 100000000);
	struct hist *g = calloc(1, sizeof(*g));
	hist_record(g, 7);
	hist_merge(h, g);
	assert_int_equal(h->total, 100001);
	assert_int_equal(hist_quantile(g, 0.5), 7);
	free(h);
	free(g);
}

static void test_field_scan(void **state)
{
	const char *f = "{\"type\":\"message\",\"channel\":12,\"seq\":345,\"text\":\"due=987 x\"}";
	assert_int_equal(load_field(f, strlen(f), "\"seq\":"), 345);
	assert_int_equal(load_field(f, strlen(f), "\"channel\":"), 12);
	assert_int_equal(load_field(f, strlen(f), "due="), 987);
	assert_int_equal(load_field(f, strlen(f), "\"nope\":"), -1);
}

/* --cpu: bad values are refused and leave nothing behind; a window over
 * this very process sees the CPU it burns, for its group and as the bench's. */
static void test_cpu_window(void **state)
{
	static const char *const bad[] = {"x",
					  "=1",
					  "a=",
					  "a=1,",
					  "a=1,,2",
					  "a=b",
					  "a=-3",
					  "a=0",
					  "a=1x",
					  "a=99999999999",
					  "a-name-far-too-long-for-its-field-here=1"};
	char arg[64];
	volatile double x = 0;
	json_t *r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(cpu_option(bad[i]));
	assert_null(cpu_window_report(10)); /* no window taken yet */
	snprintf(arg, sizeof(arg), "self=%d,%d", (int)getpid(), (int)getpid());
	assert_true(cpu_option(arg));
	cpu_window_start();
	for (long i = 0; i < 60000000; i++)
		x += (double)i * 0.5;
	cpu_window_stop();
	r = cpu_window_report(1000);
	assert_non_null(r);
	double self = json_real_value(json_object_get(json_object_get(r, "self"), "cpu_s"));
	double bench = json_real_value(json_object_get(json_object_get(r, "bench"), "cpu_s"));
	double wall = json_real_value(json_object_get(r, "wall_s"));
	/* the pid twice: counted twice */
	assert_true(self > 1.5 * bench && bench > 0.01 && bench <= wall + 0.02);
	assert_true(
	    fabs(json_real_value(json_object_get(json_object_get(r, "bench"), "us_per_delivery")) -
		 bench * 1e3) < 1e-6);
	json_decref(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_in_order),
	    cmocka_unit_test(test_gap_duplicate_reorder),
	    cmocka_unit_test(test_histogram_percentiles),
	    cmocka_unit_test(test_field_scan),
	    cmocka_unit_test(test_cpu_window),
	};
	return cmocka_run_group_tests_name("bench", tests, NULL, NULL);
}
