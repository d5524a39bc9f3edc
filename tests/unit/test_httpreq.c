/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of the HTTP request head parser in the socket edge's mode (any
 * request): plain requests beside upgrades, the headers the gate reads
 * (lengths, chunked, the Idempotency-Key kept or only counted, an over-long
 * token), repeats refused, keep-alive by version and Connection, the
 * target's form, the head limit, and where the token is found. The
 * upgrade-only mode is test_ws.c's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "httpreq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct http_req R;

static enum http_result parse(const char *s, size_t *used)
{
	http_req_init(&R);
	R.any = true;
	R.head_max = 16384;
	return http_req_feed(&R, (const uint8_t *)s, strlen(s), used);
}

static void test_plain_requests(void **state)
{
	const char *req = "POST /api/v1/dms?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n"
			  "Idempotency-Key: k1\r\n\r\n{}";
	size_t used;

	assert_int_equal(parse(req, &used), HTTP_DONE);
	assert_int_equal(used, strlen(req) - 2); /* the body is not the head's */
	assert_false(R.upgrade_wanted);
	assert_string_equal(R.method, "POST");
	assert_string_equal(R.path, "/api/v1/dms?x=1");
	assert_string_equal(R.length, "2");
	assert_true(http_req_has_idem(&R));
	assert_string_equal(R.idem, "k1");
	assert_int_equal(R.idem_sent, 2);
	assert_true(http_req_keep_alive(&R));
	assert_false(R.transfer_encoding);
	assert_false(http_req_expects_continue(&R));
	assert_int_equal(parse("POST /a HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\n"
			       "Content-Length: 5\r\n\r\n",
			       &used),
			 HTTP_DONE);
	assert_true(http_req_expects_continue(&R));

	assert_int_equal(parse("GET /healthz HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
			       "Connection: close\r\n\r\n",
			       &used),
			 HTTP_DONE);
	assert_true(R.transfer_encoding);
	assert_false(http_req_keep_alive(&R));
	assert_false(http_req_has_idem(&R));

	/* HTTP/1.0: no Host needed, closed unless it asks for keep-alive */
	assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n", &used), HTTP_DONE);
	assert_false(http_req_keep_alive(&R));
	assert_int_equal(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &used),
			 HTTP_DONE);
	assert_true(http_req_keep_alive(&R));

	/* an upgrade in the same mode is still validated as one */
	assert_int_equal(parse("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: "
			       "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
			       "Sec-WebSocket-Version: 13\r\n\r\n",
			       &used),
			 HTTP_DONE);
	assert_true(R.upgrade_wanted);
	assert_int_equal(parse("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n", &used),
			 HTTP_ERROR);
	assert_int_equal(R.status, 426);
	assert_int_equal(parse("POST /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: "
			       "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
			       "Sec-WebSocket-Version: 13\r\n\r\n",
			       &used),
			 HTTP_ERROR);
	assert_int_equal(R.status, 405);
}

static void test_oversized_values_are_the_gates(void **state)
{
	char req[8192], key[200], auth[3100];
	size_t used;

	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	memset(auth, 'a', sizeof(auth) - 1);
	auth[sizeof(auth) - 1] = '\0';
	snprintf(req, sizeof(req),
		 "POST /api HTTP/1.1\r\nHost: h\r\nIdempotency-Key: %s\r\nAuthorization: Bearer "
		 "%s\r\nContent-Length: 123456789012345678901234567890\r\n\r\n",
		 key, auth);
	assert_int_equal(parse(req, &used), HTTP_DONE);
	/* counted, not kept, so the gate can refuse it clearly */
	assert_true(http_req_has_idem(&R));
	assert_int_equal(R.idem_sent, sizeof(key) - 1);
	assert_true(R.length_long);
	assert_true(R.auth_long);
	/* a token that could not be kept is present but never valid */
	assert_string_equal(http_req_token(&R, true), "!");
}

static void test_refusals(void **state)
{
	static const struct {
		const char *req;
		int status;
	} cases[] = {
	    {"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 400},
	    {"GET /a HTTP/1.1\r\nHost: h\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n", 400},
	    {"POST /a HTTP/1.1\r\nHost: h\r\nIdempotency-Key: a\r\nIdempotency-Key: b\r\n\r\n",
	     400},
	    {"GET http://h/a HTTP/1.1\r\nHost: h\r\n\r\n", 400},
	    {"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", 400},
	    {"GET /a HTTP/1.1\r\n\r\n", 400}, /* no Host */
	    {"GET /a HTTP/2.0\r\nHost: h\r\n\r\n", 505},
	    {"GET /a HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", 400}, /* obsolete folding */
	    {"get /a HTTP/1.1\r\nHost: h\r\n\r\n", 400},
	};
	size_t used;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(parse(cases[i].req, &used), HTTP_ERROR);
		assert_int_equal(R.status, cases[i].status);
		assert_non_null(R.reason);
	}
}

static void test_head_limit(void **state)
{
	static char req[20100];
	size_t n = 20000, used;

	snprintf(req, sizeof(req), "GET /a HTTP/1.1\r\nHost: h\r\nX-Big: %0*d\r\n\r\n", (int)n, 0);
	assert_int_equal(parse(req, &used), HTTP_ERROR);
	assert_int_equal(R.status, 431);
	/* just under it passes */
	snprintf(req, sizeof(req), "GET /a HTTP/1.1\r\nHost: h\r\nX-Big: %0*d\r\n\r\n", 16000, 0);
	assert_int_equal(parse(req, &used), HTTP_DONE);
}

static void test_token_sources(void **state)
{
	size_t used;

	assert_int_equal(parse("GET /ws?a=1&token=abc&b=2 HTTP/1.1\r\nHost: h\r\n\r\n", &used),
			 HTTP_DONE);
	assert_null(http_req_token(&R, false)); /* the API takes no token from a URL */
	assert_string_equal(http_req_token(&R, true), "abc");
	assert_int_equal(parse("GET /ws?token=url HTTP/1.1\r\nHost: h\r\nAuthorization: bearer "
			       "hdr\r\n\r\n",
			       &used),
			 HTTP_DONE);
	assert_string_equal(http_req_token(&R, true), "hdr"); /* the header first */
	assert_int_equal(
	    parse("GET /ws HTTP/1.1\r\nHost: h\r\nAuthorization: Basic x\r\n\r\n", &used),
	    HTTP_DONE);
	assert_null(http_req_token(&R, true));
}

static void test_error_response(void **state)
{
	char out[512];
	size_t n = http_error_response(431, NULL, "request head too large", out, sizeof(out));

	assert_true(n > 0);
	assert_memory_equal(out, "HTTP/1.1 431 Request Header Fields Too Large\r\n", 46);
	assert_non_null(strstr(out, "\"code\":\"headers_too_large\""));
	assert_non_null(strstr(out, "connection: close\r\n"));
	assert_int_equal(http_error_response(404, NULL, "x", out, 20), 0); /* too small */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain_requests),
	    cmocka_unit_test(test_oversized_values_are_the_gates),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_head_limit),
	    cmocka_unit_test(test_token_sources),
	    cmocka_unit_test(test_error_response),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
