/* SPDX-License-Identifier: BSD-3-Clause */
/* libFuzzer harness: the peer link's frame decoder (controlplane/peer_wire.c)
 * on any bytes, as a hostile node or a stray client would send them.
 * Properties: never a read or write out of bounds; a frame it accepts uses
 * no more bytes than it was given, its strings are NUL-terminated within
 * their fields and its payload lies inside the input; and re-encoding an
 * accepted frame gives back exactly the bytes it was decoded from. */
#include "peer_wire.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t at = 0, used;
	struct peer_msg m;
	struct buf again = {0};

	while (at < size && peer_decode(data + at, size - at, &m, &used) == 1) {
		if (used > size - at || memchr(m.name, 0, sizeof(m.name)) == NULL ||
		    memchr(m.kind, 0, sizeof(m.kind)) == NULL ||
		    memchr(m.client_msg_id, 0, sizeof(m.client_msg_id)) == NULL)
			abort();
		if (m.payload &&
		    (m.payload < data + at || m.payload + m.payload_len > data + at + used))
			abort();
		buf_reset(&again);
		if (peer_encode(&again, &m) != 0 || again.len != used ||
		    memcmp(again.data, data + at, used) != 0)
			abort();
		at += used;
	}
	buf_free(&again);
	return 0;
}
