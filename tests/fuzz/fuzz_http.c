/* SPDX-License-Identifier: BSD-3-Clause */
/* libFuzzer harness: the HTTP request head parser (common/httpreq.c), in
 * the DPDK edge's mode (upgrades only) or the socket edge's (any request,
 * a 16 KiB head), chosen by the last byte, fed the input whole and in two
 * pieces split at its first byte's value: it must never read or write out
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

	bool any = size && (data[size - 1] & 1);

	http_req_init(&whole);
	whole.any = any;
	whole.head_max = any ? 16384 : 0;
	a = http_req_feed(&whole, data, size, &used);
	if (used > size)
		abort();
	cut = size ? data[0] % (size + 1) : 0;
	http_req_init(&pieces);
	pieces.any = any;
	pieces.head_max = whole.head_max;
	b = http_req_feed(&pieces, data, cut, &used1);
	if (b == HTTP_MORE)
		b = http_req_feed(&pieces, data + cut, size - cut, &used2);
	if (a != b || (a == HTTP_ERROR && whole.status != pieces.status))
		abort();
	if (a == HTTP_DONE) {
		if (used1 + used2 != used || whole.upgrade_wanted != pieces.upgrade_wanted ||
		    (!any && !whole.upgrade_wanted))
			abort();
		if (whole.upgrade_wanted && ws_handshake_response(&whole, out, sizeof(out)) == 0)
			abort();
	}
	if (a == HTTP_ERROR &&
	    http_error_response(whole.status, NULL, whole.reason, out, sizeof(out)) == 0)
		abort();
	return 0;
}
