/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of the DPDK edge's websocket server side: the upgrade request
 * parser (whole, byte by byte, and every refusal with its status), the
 * accept key (RFC 6455's own example), the frame decoder (masking,
 * fragmentation, control frames, limits, UTF-8, close codes; fed whole and
 * one byte at a time) and the header encoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ws.h"

#include <stdio.h>
#include <string.h>

/* ---- the upgrade request ---- */

static const char GOOD[] = "GET /ws?token=abc HTTP/1.1\r\n"
			   "Host: example.com\r\n"
			   "Upgrade: websocket\r\n"
			   "Connection: keep-alive, Upgrade\r\n"
			   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
			   "Sec-WebSocket-Version: 13\r\n"
			   "Authorization: Bearer tok.en.x  \r\n"
			   "X-Something-Very-Long-That-We-Do-Not-Read-At-All: 1\r\n"
			   "\r\n";

static struct http_req R;

static enum http_result feed_all(const char *s, size_t *used)
{
	http_req_init(&R);
	return http_req_feed(&R, (const uint8_t *)s, strlen(s), used);
}

static void test_upgrade_whole_and_in_pieces(void **state)
{
	char buf[512];
	size_t used, total = 0;
	char accept[29];

	/* with the client's first frame bytes behind the head */
	snprintf(buf, sizeof(buf), "%s\x81\x85", GOOD);
	assert_int_equal(feed_all(buf, &used), HTTP_DONE);
	assert_int_equal(used, strlen(GOOD));
	assert_string_equal(R.path, "/ws?token=abc");
	assert_string_equal(R.auth, "Bearer tok.en.x");
	ws_accept_key(&R, accept);
	assert_string_equal(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="); /* RFC 6455 1.3 */
	assert_true(ws_handshake_response(&R, buf, sizeof(buf)) > 0);
	assert_non_null(strstr(buf, "HTTP/1.1 101 "));
	assert_non_null(strstr(buf, "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));

	/* one byte at a time: the same result */
	http_req_init(&R);
	for (size_t i = 0; i < strlen(GOOD); i++) {
		enum http_result res = http_req_feed(&R, (const uint8_t *)GOOD + i, 1, &used);
		total += used;
		assert_int_equal(res, i + 1 == strlen(GOOD) ? HTTP_DONE : HTTP_MORE);
	}
	assert_int_equal(total, strlen(GOOD));
	assert_string_equal(R.path, "/ws?token=abc");

	/* bare LF line ends are accepted (RFC 9112 2.2) */
	assert_int_equal(feed_all("GET / HTTP/1.1\nHost: h\nUpgrade: WebSocket\nConnection: "
				  "upgrade\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\n"
				  "Sec-WebSocket-Version: 13\n\n",
				  &used),
			 HTTP_DONE);
}

static void expect_refusal(const char *req, int status)
{
	char resp[512];
	size_t used;

	assert_int_equal(feed_all(req, &used), HTTP_ERROR);
	assert_int_equal(R.status, status);
	assert_non_null(R.reason);
	assert_true(http_error_response(R.status, NULL, R.reason, resp, sizeof(resp)) > 0);
	char line[32]; /* the status line is first */
	snprintf(line, sizeof(line), "HTTP/1.1 %d ", status);
	assert_memory_equal(resp, line, strlen(line));
}

static void test_upgrade_refusals(void **state)
{
	char big[12000], resp[512];
	size_t used;
	const char *tail = "Host: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: "
			   "13\r\n\r\n";

	snprintf(big, sizeof(big), "POST /ws HTTP/1.1\r\n%s", tail);
	expect_refusal(big, 405);
	snprintf(big, sizeof(big), "GET /ws HTTP/1.0\r\n%s", tail);
	expect_refusal(big, 505);
	expect_refusal(
	    "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
	    400); /* no Host */
	expect_refusal("GET /ws HTTP/1.1\r\nHost: h\r\n\r\n", 426);
	expect_refusal("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: "
		       "keep-alive\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		       "Sec-WebSocket-Version: 13\r\n\r\n",
		       426);
	expect_refusal("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: "
		       "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		       "Sec-WebSocket-Version: 8\r\n\r\n",
		       426);
	assert_true(http_error_response(426, NULL, "x", resp, sizeof(resp)) > 0);
	assert_non_null(strstr(resp, "sec-websocket-version: 13\r\n"));
	assert_non_null(strstr(resp, "{\"error\":{\"code\":\"upgrade_required\""));
	expect_refusal("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: "
		       "Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n",
		       400);
	expect_refusal(
	    "GET /ws HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Key: "
	    "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
	    400);
	expect_refusal("GET /ws HTTP/1.1\r\nHost: h\r\n folded\r\n", 400);
	expect_refusal("get /ws HTTP/1.1\r\n", 400);
	expect_refusal("GET  HTTP/1.1\r\n", 400);
	expect_refusal("GET /ws SPDY/9\r\n", 400);
	/* a target, a header, a head too large */
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /", 5);
	big[3000] = '\0';
	expect_refusal(big, 414);
	/* an over-long token is no token: the upgrade is then refused 401 */
	snprintf(big, sizeof(big), "GET /ws HTTP/1.1\r\nAuthorization: Bearer %03000d\r\n%s", 1,
		 tail);
	assert_int_equal(feed_all(big, &used), HTTP_DONE);
	assert_true(R.auth_long);
	assert_string_equal(http_req_token(&R, true), "!");
	int n = snprintf(big, sizeof(big), "GET /ws HTTP/1.1\r\n");
	while (n < 9000)
		n += snprintf(big + n, sizeof(big) - (size_t)n, "X-Pad: %080d\r\n", 0);
	expect_refusal(big, 431);
}

/* ---- frames ---- */

static struct {
	uint8_t msg[70000];
	size_t msg_len;
	int messages, last_op;
	char controls[64];
	int ncontrols;
	int close_code;
	char close_reason[128];
	uint8_t ping[125]; /* the last ping's payload */
	size_t ping_len;
} E;

static void on_data(void *ctx, enum ws_opcode op, const uint8_t *d, size_t n, bool last)
{
	assert_true(E.msg_len + n <= sizeof(E.msg));
	memcpy(E.msg + E.msg_len, d, n);
	E.msg_len += n;
	E.last_op = op;
	if (last)
		E.messages++;
}

static void on_control(void *ctx, enum ws_opcode op, const uint8_t *d, size_t n, int code)
{
	E.controls[E.ncontrols++] = op == WS_PING ? 'i' : op == WS_PONG ? 'o' : 'c';
	if (op == WS_PING) {
		memcpy(E.ping, d, n);
		E.ping_len = n;
	}
	if (op == WS_CLOSE) {
		E.close_code = code;
		snprintf(E.close_reason, sizeof(E.close_reason), "%.*s", (int)n, d);
	}
}

static const struct ws_events EV = {on_data, on_control};

/* A client frame: b0 is FIN/RSV/opcode, masked with a fixed key. */
static size_t frame(uint8_t *out, uint8_t b0, const void *payload, size_t len, bool masked)
{
	static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
	size_t h = 2;

	out[0] = b0;
	if (len < 126) {
		out[1] = (uint8_t)len;
	} else if (len <= 0xffff) {
		out[1] = 126;
		out[2] = (uint8_t)(len >> 8);
		out[3] = (uint8_t)len;
		h = 4;
	} else {
		out[1] = 127;
		for (int i = 0; i < 8; i++)
			out[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
		h = 10;
	}
	if (masked) {
		out[1] |= 0x80;
		memcpy(out + h, key, 4);
		h += 4;
	}
	for (size_t i = 0; i < len; i++)
		out[h + i] = ((const uint8_t *)payload)[i] ^ (masked ? key[i & 3] : 0);
	return h + len;
}

static struct ws_decoder D;

static int decode(uint8_t *buf, size_t len, bool bytewise)
{
	int rc = 0;

	if (!bytewise)
		return ws_decode(&D, buf, len, &EV, NULL);
	for (size_t i = 0; i < len && rc == 0; i++)
		rc = ws_decode(&D, buf + i, 1, &EV, NULL);
	return rc;
}

static int reset(void **state)
{
	memset(&E, 0, sizeof(E));
	ws_decoder_release(&D);
	ws_decoder_init(&D, 65536);
	return 0;
}

static void test_frames_whole_and_bytewise(void **state)
{
	static uint8_t buf[200000], big[66000];
	size_t n;

	for (int bytewise = 0; bytewise < 2; bytewise++) {
		reset(NULL);
		/* text, a 16-bit length, binary, an empty text */
		n = frame(buf, 0x81, "Hello", 5, true);
		memset(big, 'x', 300);
		n += frame(buf + n, 0x82, big, 300, true);
		n += frame(buf + n, 0x81, "", 0, true);
		assert_int_equal(decode(buf, n, bytewise), 0);
		assert_int_equal(E.messages, 3);
		assert_int_equal(E.msg_len, 305);
		assert_memory_equal(E.msg, "Hello", 5);
		assert_int_equal(E.msg[5], 'x');
		/* a fragmented text with a ping between its fragments (5.4) */
		E.msg_len = 0;
		n = frame(buf, 0x01, "frag", 4, true);
		n += frame(buf + n, 0x89, "p", 1, true);
		n += frame(buf + n, 0x00, "ment", 4, true);
		n += frame(buf + n, 0x80, "ed", 2, true);
		assert_int_equal(decode(buf, n, bytewise), 0);
		assert_int_equal(E.messages, 4);
		assert_int_equal(E.last_op, WS_TEXT);
		assert_memory_equal(E.msg, "fragmented", 10);
		assert_int_equal(E.ncontrols, 1);
		assert_int_equal(E.controls[0], 'i');
		/* a 64-bit length, at the limit exactly */
		ws_decoder_release(&D);
		ws_decoder_init(&D, 65536);
		E.msg_len = 0;
		memset(big, 'y', 65536);
		n = frame(buf, 0x82, big, 65536, true);
		assert_int_equal(decode(buf, n, bytewise), 0);
		assert_int_equal(E.msg_len, 65536);
		/* a close with code and reason; nothing after it is decoded */
		n = frame(buf, 0x88,
			  "\x03\xe8"
			  "bye",
			  5, true);
		n += frame(buf + n, 0x81, "late", 4, true);
		assert_int_equal(decode(buf, n, bytewise), 0);
		assert_int_equal(E.close_code, 1000);
		assert_string_equal(E.close_reason, "bye");
		assert_true(D.closed);
		assert_int_equal(E.messages, 5);
	}
}

/* A control frame's payload whole in one input is handed over from it; split
 * between inputs it is gathered in a buffer held only until the frame is
 * whole, or until the decoder is released (LSan sees one kept). */
static void test_control_frames_split(void **state)
{
	static uint8_t buf[400];
	uint8_t payload[125];
	size_t n;

	for (int i = 0; i < 125; i++)
		payload[i] = (uint8_t)(i * 7 + 1);
	for (size_t cut = 1; cut < 125 + 6; cut += 13) {
		reset(NULL);
		n = frame(buf, 0x89, payload, 125, true);
		assert_int_equal(ws_decode(&D, buf, cut, &EV, NULL), 0);
		assert_int_equal(E.ncontrols, 0);
		assert_int_equal(ws_decode(&D, buf + cut, n - cut, &EV, NULL), 0);
		assert_int_equal(E.ncontrols, 1);
		assert_int_equal(E.ping_len, 125);
		assert_memory_equal(E.ping, payload, 125);
		assert_null(D.ctl);
	}
	/* split, then the connection ends: release frees the gathered part */
	reset(NULL);
	n = frame(buf, 0x89, payload, 100, true);
	assert_int_equal(ws_decode(&D, buf, 50, &EV, NULL), 0);
	assert_non_null(D.ctl);
	ws_decoder_release(&D);
	assert_null(D.ctl);
	/* a close split in its code: validated once whole */
	reset(NULL);
	n = frame(buf, 0x88, "\x03\xe9going", 7, true);
	assert_int_equal(ws_decode(&D, buf, 7, &EV, NULL), 0);
	assert_int_equal(ws_decode(&D, buf + 7, n - 7, &EV, NULL), 0);
	assert_int_equal(E.close_code, 1001);
	assert_string_equal(E.close_reason, "going");
	assert_null(D.ctl);
	reset(NULL);
	n = frame(buf, 0x88,
		  "\x03\xec"
		  "bad",
		  5, true); /* 1004 is reserved */
	assert_int_equal(ws_decode(&D, buf, 7, &EV, NULL), 0);
	assert_int_equal(ws_decode(&D, buf + 7, n - 7, &EV, NULL), 1002);
	assert_null(D.ctl);
}

static int violation(uint8_t *buf, size_t n)
{
	reset(NULL);
	return decode(buf, n, false);
}

static void test_frame_violations(void **state)
{
	static uint8_t buf[140000], big[70000];
	size_t n;

	n = frame(buf, 0x81, "hi", 2, false);
	assert_int_equal(violation(buf, n), 1002); /* unmasked */
	n = frame(buf, 0xc1, "hi", 2, true);
	assert_int_equal(violation(buf, n), 1002); /* RSV1 */
	n = frame(buf, 0x83, "hi", 2, true);
	assert_int_equal(violation(buf, n), 1002); /* opcode 3 */
	n = frame(buf, 0x8b, "hi", 2, true);
	assert_int_equal(violation(buf, n), 1002); /* opcode 11 */
	n = frame(buf, 0x80, "hi", 2, true);
	assert_int_equal(violation(buf, n), 1002); /* continuation of nothing */
	n = frame(buf, 0x01, "a", 1, true);
	n += frame(buf + n, 0x81, "b", 1, true);
	assert_int_equal(violation(buf, n), 1002); /* a new message inside one */
	n = frame(buf, 0x09, "p", 1, true);
	assert_int_equal(violation(buf, n), 1002); /* a fragmented ping */
	memset(big, 'p', 126);
	n = frame(buf, 0x89, big, 126, true);
	assert_int_equal(violation(buf, n), 1002); /* a ping over 125 */
	/* too big: one frame, and fragments adding up */
	memset(big, 'z', sizeof(big));
	n = frame(buf, 0x82, big, 65537, true);
	assert_int_equal(violation(buf, n), 1009);
	n = frame(buf, 0x02, big, 40000, true);
	n += frame(buf + n, 0x80, big, 30000, true);
	assert_int_equal(violation(buf, n), 1009);
	/* a 64-bit length with its top bit set */
	n = frame(buf, 0x82, "", 0, true);
	buf[1] = 0x80 | 127;
	memset(buf + 2, 0xff, 8);
	memset(buf + 10, 0, 4);
	assert_int_equal(violation(buf, 14), 1002);
	/* 2^32 + 2 bytes to a decoder that takes the most it can (2^32 - 1):
	 * too big, not read as the 2 bytes of its low 32 bits */
	buf[1] = 0x80 | 127;
	memset(buf + 2, 0, 8);
	buf[5] = 1;
	buf[9] = 2;
	memcpy(buf + 14, "ab", 2);
	reset(NULL);
	ws_decoder_init(&D, UINT64_MAX);
	assert_int_equal(decode(buf, 16, false), 1009);
	assert_int_equal(E.messages, 0);
	/* UTF-8: fail fast inside a frame; a sequence cut at the message end */
	n = frame(buf, 0x81, "ok\xff...", 6, true);
	assert_int_equal(violation(buf, n), 1007);
	assert_int_equal(E.messages, 0);
	n = frame(buf, 0x81, "\xce", 1, true);
	assert_int_equal(violation(buf, n), 1007);
	/* but a code point split across fragments is fine */
	n = frame(buf, 0x01, "\xce", 1, true);
	n += frame(buf + n, 0x80, "\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 10, true);
	assert_int_equal(violation(buf, n), 0);
	assert_int_equal(E.messages, 1);
	/* close frames (5.5.1, 7.4) */
	n = frame(buf, 0x88, "\x03", 1, true);
	assert_int_equal(violation(buf, n), 1002);
	n = frame(buf, 0x88, "\x03\xed", 2, true); /* 1005 may not be sent */
	assert_int_equal(violation(buf, n), 1002);
	n = frame(buf, 0x88, "\x03\xe7", 2, true); /* 999 */
	assert_int_equal(violation(buf, n), 1002);
	n = frame(buf, 0x88, "\x07\xd0", 2, true); /* 2000 */
	assert_int_equal(violation(buf, n), 1002);
	n = frame(buf, 0x88, "\x03\xe8\xff", 3, true);
	assert_int_equal(violation(buf, n), 1007);
	n = frame(buf, 0x88, "\x0f\xa0", 2, true); /* 4000: an application's */
	assert_int_equal(violation(buf, n), 0);
	assert_int_equal(E.close_code, 4000);
	n = frame(buf, 0x88, "", 0, true);
	assert_int_equal(violation(buf, n), 0);
	assert_int_equal(E.close_code, 1005);
	assert_true(ws_close_code_valid(1011));
	assert_false(ws_close_code_valid(1006));
	assert_false(ws_close_code_valid(5000));
}

static void test_frame_header_encoder(void **state)
{
	uint8_t h[10];

	assert_int_equal(ws_frame_header(h, WS_TEXT, 0), 2);
	assert_memory_equal(h, "\x81\x00", 2);
	assert_int_equal(ws_frame_header(h, WS_TEXT, 125), 2);
	assert_int_equal(h[1], 125);
	assert_int_equal(ws_frame_header(h, WS_TEXT, 126), 4);
	assert_memory_equal(h, "\x81\x7e\x00\x7e", 4);
	assert_int_equal(ws_frame_header(h, WS_CLOSE, 65535), 4);
	assert_memory_equal(h, "\x88\x7e\xff\xff", 4);
	assert_int_equal(ws_frame_header(h, WS_BINARY, 65536), 10);
	assert_memory_equal(h, "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
}

static void test_message_gathering(void **state)
{
	struct buf rx = {0};
	const char *msg = NULL;
	size_t len = 0;

	/* whole in one piece: read where it is, nothing copied */
	const uint8_t one[] = "hello";
	assert_int_equal(ws_message_piece(&rx, WS_TEXT, one, 5, true, &msg, &len), 1);
	assert_ptr_equal(msg, one);
	assert_int_equal(len, 5);
	assert_null(rx.data);
	/* in pieces: gathered, then let go */
	assert_int_equal(
	    ws_message_piece(&rx, WS_TEXT, (const uint8_t *)"ab", 2, false, &msg, &len), 0);
	assert_int_equal(ws_message_piece(&rx, WS_CONT, (const uint8_t *)"cd", 2, true, &msg, &len),
			 1);
	assert_int_equal(len, 4);
	assert_memory_equal(msg, "abcd", 4);
	ws_message_done(&rx);
	assert_null(rx.data);
	assert_int_equal(rx.len, 0);
	/* an empty final piece ends an empty message */
	assert_int_equal(ws_message_piece(&rx, WS_TEXT, NULL, 0, true, &msg, &len), 1);
	assert_int_equal(len, 0);
	assert_string_equal(msg, "");
	/* binary: refused with its code and reason */
	assert_int_equal(ws_message_piece(&rx, WS_BINARY, one, 5, true, &msg, &len), 1003);
	assert_string_equal(ws_close_reason(1003), "text frames only");
	assert_string_equal(ws_close_reason(1009), "message too big");
	assert_string_equal(ws_close_reason(1002), "protocol error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_upgrade_whole_and_in_pieces),
	    cmocka_unit_test(test_upgrade_refusals),
	    cmocka_unit_test_setup(test_frames_whole_and_bytewise, reset),
	    cmocka_unit_test_setup(test_frame_violations, reset),
	    cmocka_unit_test(test_control_frames_split),
	    cmocka_unit_test(test_frame_header_encoder),
	    cmocka_unit_test(test_message_gathering),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
