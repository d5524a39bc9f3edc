/* SPDX-License-Identifier: BSD-3-Clause */
/* Tests of the allocation-free JSON member scanner (common/jscan.c): the
 * members it finds, what it declines, and a differential check against
 * jansson over mutations of real requests: whenever the scanner accepts a
 * text, jansson parses it too and agrees on every member it reported. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "jscan.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const keys[] = {"type", "channel", "req"};

static int scan(const char *text, struct jscan_value v[3])
{
	return jscan_object(text, strlen(text), keys, v, 3);
}

static void test_finds_top_level_members(void **state)
{
	struct jscan_value v[3];
	const char *t = " {\"req\": 7, \"x\": {\"type\": \"no\", \"channel\": [1, {\"a\": []}]},"
			"\"type\":\"publish\", \"channel\" : -42 , \"text\": \"a\\\"b\"}\n";

	assert_int_equal(scan(t, v), 0);
	assert_int_equal(v[0].kind, JSCAN_STRING);
	assert_int_equal(v[0].len, 7);
	assert_memory_equal(v[0].p, "publish", 7);
	assert_false(v[0].escaped);
	assert_int_equal(v[1].kind, JSCAN_INT);
	assert_int_equal(v[1].i, -42);
	assert_int_equal(v[2].kind, JSCAN_INT);
	assert_int_equal(v[2].i, 7);
}

static void test_kinds_and_absence(void **state)
{
	struct jscan_value v[3];

	assert_int_equal(scan("{\"channel\": 1.5, \"req\": \"a\\nb\"}", v), 0);
	assert_int_equal(v[0].kind, JSCAN_ABSENT);
	assert_int_equal(v[1].kind, JSCAN_OTHER);
	assert_int_equal(v[2].kind, JSCAN_STRING);
	assert_true(v[2].escaped);
	assert_int_equal(scan("{\"type\": null, \"channel\": [], \"req\": {}}", v), 0);
	assert_int_equal(v[0].kind, JSCAN_OTHER);
	assert_int_equal(v[1].kind, JSCAN_OTHER);
	assert_int_equal(v[2].kind, JSCAN_OTHER);
	assert_int_equal(scan("{\"channel\": 9223372036854775807}", v), 0);
	assert_int_equal(v[1].i, INT64_MAX);
	assert_int_equal(scan("{\"channel\": -9223372036854775808}", v), 0);
	assert_int_equal(v[1].i, INT64_MIN);
	assert_int_equal(scan("{}", v), 0);
}

static void test_declines_what_it_is_not_sure_of(void **state)
{
	static const char *const bad[] = {
	    "",
	    "[]",
	    "{",
	    "{\"type\":\"publish\"",
	    "{\"type\":\"publish\",}",
	    "{,}",
	    "{\"a\" 1}",
	    "{\"a\":}",
	    "{\"a\":1 \"b\":2}",
	    "{\"a\":[1,]}",
	    "{\"a\":[1 2]}",
	    "{\"a\":{]}",
	    "{\"a\":01}",
	    "{\"a\":1.}",
	    "{\"a\":-}",
	    "{\"a\":1e}",
	    "{\"a\":tru}",
	    "{\"a\":\"\\x\"}",
	    "{\"a\":\"\\u12g4\"}",
	    "{\"a\":\"\\u0000\"}",
	    "{\"a\":\"tab\there\"}",
	    "{\"typ\\u0065\":\"publish\"}",
	    "{\"type\":\"publish\",\"type\":\"ping\"}",
	    "{\"channel\": 9223372036854775808}",
	    "{} {}",
	    "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct jscan_value v[3];

		if (scan(bad[i], v) != -1)
			fail_msg("accepted: %s", bad[i]);
	}
}

/* The scanner, where it answers, says what jansson says. */
static void check_agrees(const char *text, size_t len, int *accepted)
{
	struct jscan_value v[3];
	json_error_t err;
	json_t *o;

	if (jscan_object(text, len, keys, v, 3) != 0)
		return;
	++*accepted;
	o = json_loadb(text, len, 0, &err);
	if (o == NULL || !json_is_object(o))
		fail_msg("jansson refused what the scanner took: %.*s (%s)", (int)len, text,
			 err.text);
	for (int k = 0; k < 3; k++) {
		json_t *m = json_object_get(o, keys[k]);

		switch (v[k].kind) {
		case JSCAN_ABSENT:
			assert_null(m);
			break;
		case JSCAN_INT:
			assert_true(json_is_integer(m));
			assert_int_equal(json_integer_value(m), v[k].i);
			break;
		case JSCAN_STRING:
			assert_true(json_is_string(m));
			if (!v[k].escaped) {
				assert_int_equal(json_string_length(m), v[k].len);
				assert_memory_equal(json_string_value(m), v[k].p, v[k].len);
			}
			break;
		case JSCAN_OTHER:
			assert_true(m && !json_is_string(m) && !json_is_integer(m));
			break;
		}
	}
	json_decref(o);
}

static void test_agrees_with_jansson_on_mutations(void **state)
{
	static const char *const seeds[] = {
	    "{\"type\":\"publish\",\"req\":\"r1\",\"channel\":12,\"text\":\"hi \\\"you\\\"\","
	    "\"client_msg_id\":\"c-1\",\"parent_seq\":null}",
	    "{\"type\": \"subscribe\", \"channels\": [{\"channel\": 3, \"since\": 0}], \"req\": 4}",
	    "{\"type\":\"react\",\"channel\":-1,\"seq\":2.5e3,\"emoji\":\"\\u00e9\",\"x\":[true,"
	    "false,{}]}",
	};
	static const char alphabet[] = "{}[]\",:\\ 0123456789-.eEtrufalsn\tx";
	unsigned seed = 20261205;
	int accepted = 0, tried = 0;

	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		size_t n = strlen(seeds[i]);
		char buf[512];

		check_agrees(seeds[i], n, &accepted);
		for (int round = 0; round < 20000; round++) {
			size_t len = n;

			memcpy(buf, seeds[i], n);
			for (int m = 0; m < 1 + round % 3; m++) {
				size_t at = (size_t)rand_r(&seed) % len;
				int op = rand_r(&seed) % 3;
				char c = alphabet[rand_r(&seed) % (sizeof(alphabet) - 1)];

				if (op == 0) /* replace */
					buf[at] = c;
				else if (op == 1 && len > 1) /* delete */
					memmove(buf + at, buf + at + 1, --len - at);
				else if (len < sizeof(buf) - 1) { /* insert */
					memmove(buf + at + 1, buf + at, len++ - at);
					buf[at] = c;
				}
			}
			tried++;
			check_agrees(buf, len, &accepted);
		}
	}
	printf("jscan: %d of %d mutated texts accepted, all as jansson reads them\n", accepted,
	       tried);
	assert_true(accepted > 1000); /* the check saw real agreement, not just refusals */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_finds_top_level_members),
	    cmocka_unit_test(test_kinds_and_absence),
	    cmocka_unit_test(test_declines_what_it_is_not_sure_of),
	    cmocka_unit_test(test_agrees_with_jansson_on_mutations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
