/* SPDX-License-Identifier: BSD-3-Clause */
/* libFuzzer harness: the websocket upgrade request parser, fed the input in
 * two pieces split at its first byte's value, must never read or write out
 * of bounds and must agree with itself on the outcome. */
#include "ws.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct http_req whole, pieces;
	size_t used, used1, used2 = 0, cut;
	enum http_result a, b;
	char out[1024];

	http_req_init(&whole);
	a = http_req_feed(&whole, data, size, &used);
	if (used > size)
		abort();
	cut = size ? data[0] % (size + 1) : 0;
	http_req_init(&pieces);
	b = http_req_feed(&pieces, data, cut, &used1);
	if (b == HTTP_MORE)
		b = http_req_feed(&pieces, data + cut, size - cut, &used2);
	if (a != b || (a == HTTP_ERROR && whole.status != pieces.status))
		abort();
	if (a == HTTP_DONE) {
		if (used1 + used2 != used)
			abort();
		if (ws_handshake_response(&whole, out, sizeof(out)) == 0)
			abort();
	}
	if (a == HTTP_ERROR &&
	    http_error_response(whole.status, NULL, whole.reason, out, sizeof(out)) == 0)
		abort();
	return 0;
}
