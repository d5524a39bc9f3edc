/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of mentions (core/mention.c): what the parser reads as a
 * mention and what it does not (addresses, code-like runs, case, trailing
 * dots, repeats, the limit), the frame's encoding, and the filter that
 * picks the sessions a frame is for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mention.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct mentions parse(const char *text)
{
	struct mentions ms;

	mention_parse(text, strlen(text), &ms);
	return ms;
}

static void test_names_are_read_where_a_name_may_start(void **state)
{
	struct mentions ms = parse("@Bob, can you and @carol.smith. look? cc @bob");

	assert_int_equal(ms.broad, MENTION_NONE);
	assert_int_equal(ms.n, 2);
	assert_string_equal(ms.names[0], "bob");
	assert_string_equal(ms.names[1], "carol.smith");
	ms = parse("(@dave) @@erin");
	assert_int_equal(ms.n, 2);
	assert_string_equal(ms.names[0], "dave");
	assert_string_equal(ms.names[1], "erin");
}

static void test_addresses_and_bare_signs_are_not_mentions(void **state)
{
	struct mentions ms;

	assert_false(mention_parse("mail bob@example.com", 20, &ms));
	assert_false(mention_parse("@ alone, @., a@b@c", 18, &ms));
	assert_int_equal(ms.n, 0);
	assert_false(mention_parse("", 0, &ms));
	/* Only len bytes are read. */
	assert_false(mention_parse("@bob", 1, &ms));
}

static void test_channel_here_and_everyone_are_broad(void **state)
{
	assert_int_equal(parse("@here quick one").broad, MENTION_HERE);
	assert_int_equal(parse("@Channel deploy at 5").broad, MENTION_CHANNEL);
	assert_int_equal(parse("@everyone").broad, MENTION_CHANNEL);
	/* The wider wins; a broad word is not a user. */
	assert_int_equal(parse("@channel and @here").broad, MENTION_CHANNEL);
	assert_int_equal(parse("@here @channel").n, 0);
}

static void test_long_runs_and_many_names_are_bounded(void **state)
{
	char text[4096];
	struct mentions ms;
	size_t at = 0;

	memset(text, 'a', 100);
	text[0] = '@';
	text[100] = '\0';
	ms = parse(text);
	assert_int_equal(ms.n, 1);
	assert_int_equal(strlen(ms.names[0]), MENTION_NAME_MAX);
	for (int i = 0; i < 40; i++)
		at += (size_t)snprintf(text + at, sizeof(text) - at, "@user%d ", i);
	ms = parse(text);
	assert_int_equal(ms.n, MENTION_MAX);
	assert_string_equal(ms.names[MENTION_MAX - 1], "user15");
}

static struct persist_message message(const char *text)
{
	return (struct persist_message){.channel_id = 4,
					.seq = 17,
					.author_name = "alice",
					.created_at_us = 1800000000000000,
					.kind = "message",
					.body = text,
					.body_len = strlen(text)};
}

static void test_the_frame_is_json_with_a_short_text(void **state)
{
	char text[1000];
	struct persist_message m;
	struct mentions ms;
	json_t *o;
	size_t len;
	char *json;

	memset(text, 'x', sizeof(text) - 1);
	memcpy(text, "@bob \"quoted\" \xc3\xa9", 16);
	text[sizeof(text) - 1] = '\0';
	m = message(text);
	mention_parse(m.body, m.body_len, &ms);
	json = mention_encode(&m, &ms, &len);
	assert_non_null(json);
	assert_int_equal(strlen(json), len);
	o = json_loads(json, 0, NULL);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "type")), "mention");
	assert_string_equal(json_string_value(json_object_get(o, "broad")), "none");
	assert_string_equal(json_string_value(json_object_get(o, "author")), "alice");
	assert_string_equal(json_string_value(json_array_get(json_object_get(o, "users"), 0)),
			    "bob");
	assert_int_equal(json_integer_value(json_object_get(o, "channel")), 4);
	assert_int_equal(json_integer_value(json_object_get(o, "seq")), 17);
	assert_true(json_is_null(json_object_get(o, "parent_seq")));
	assert_true(strlen(json_string_value(json_object_get(o, "text"))) <= 300);
	assert_memory_equal(json_string_value(json_object_get(o, "text")), "@bob \"quoted\"", 13);
	json_decref(o);
	free(json);
}

static bool wants(const char *text, const char *user)
{
	struct persist_message m = message(text);
	struct mentions ms;
	size_t len;
	char *json;
	bool yes;

	mention_parse(m.body, m.body_len, &ms);
	json = mention_encode(&m, &ms, &len);
	assert_non_null(json);
	yes = mention_wants(json, len, user);
	free(json);
	return yes;
}

static void test_the_frame_is_for_the_named_and_not_the_author(void **state)
{
	assert_true(wants("hi @bob and @carol", "bob"));
	assert_true(wants("hi @bob and @carol", "Carol"));
	assert_false(wants("hi @bob and @carol", "bo"));
	assert_false(wants("hi @bob and @carol", "bobby"));
	assert_false(wants("hi @bob and @carol", "alice"));
	assert_true(wants("@here standup", "dave"));
	assert_true(wants("@channel release", "dave"));
	assert_false(wants("@channel release", "Alice"));
	assert_false(wants("note to self @alice", "alice"));
	/* Not a frame of ours: for nobody. */
	assert_false(mention_wants("{\"type\":\"message\"}", 18, "bob"));
	assert_false(
	    mention_wants("{\"type\":\"mention\",\"broad\":\"none\",\"author\":\"a\"", 44, "a"));
}

static void test_the_gate_gives_one_turn_per_interval_and_lets_retries_by(void **state)
{
	struct mention_gate *g = mention_gate_create();
	const uint64_t s = 1000000000u;

	assert_non_null(g);
	assert_true(mention_gate_take(g, 3, 4, "m1", 10 * s, 30000));
	assert_false(mention_gate_take(g, 3, 4, "m2", 11 * s, 30000));
	assert_true(mention_gate_take(g, 3, 4, "m1", 12 * s, 30000)); /* its retry */
	assert_false(mention_gate_take(g, 3, 4, NULL, 12 * s, 30000));
	assert_true(mention_gate_take(g, 3, 5, "m2", 12 * s, 30000)); /* another channel */
	assert_true(mention_gate_take(g, 6, 4, "m2", 12 * s, 30000)); /* another user */
	assert_true(mention_gate_take(g, 3, 4, "m3", 40 * s, 30000)); /* the next turn */
	assert_true(mention_gate_take(g, 3, 4, "m4", 40 * s, 0));     /* unlimited */
	/* Many others pushing a pair out only loosen the limit. */
	for (int u = 100; u < 100 + 8 * 4096; u++)
		assert_true(mention_gate_take(g, u, 4, "x", 41 * s, 30000));
	mention_gate_destroy(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names_are_read_where_a_name_may_start),
	    cmocka_unit_test(test_addresses_and_bare_signs_are_not_mentions),
	    cmocka_unit_test(test_channel_here_and_everyone_are_broad),
	    cmocka_unit_test(test_long_runs_and_many_names_are_bounded),
	    cmocka_unit_test(test_the_frame_is_json_with_a_short_text),
	    cmocka_unit_test(test_the_frame_is_for_the_named_and_not_the_author),
	    cmocka_unit_test(test_the_gate_gives_one_turn_per_interval_and_lets_retries_by),
	};
	return cmocka_run_group_tests_name("mention", tests, NULL, NULL);
}
