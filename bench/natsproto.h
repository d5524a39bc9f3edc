/* SPDX-License-Identifier: BSD-3-Clause */
/* The NATS client protocol as fanout-bench speaks it over a websocket: a
 * streaming parser of INFO, MSG, PING, PONG and -ERR that answers the
 * server's INFO with CONNECT, the connection's SUB lines and a PING, and
 * counts the connection ready when that PING is answered. */
#pragma once

#include "buf.h"
#include "wsclient.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nats_conn {
	struct ws *ws;
	struct buf in;	       /* protocol bytes not yet parsed */
	const char *subscribe; /* SUB lines sent with CONNECT, or NULL */
	bool ready;	       /* our PING was answered: CONNECT and SUB are in effect */
	uint64_t errors;       /* -ERR lines */
};

/* Called once per MSG with its subject and payload. */
typedef void nats_msg_fn(struct nats_conn *c, const char *subject, size_t subject_len,
			 const char *payload, size_t len);

/* Feeds bytes received on c's websocket; calls on_msg per complete MSG.
 * Returns true when this call made c ready. Exits on out of memory. */
bool nats_feed(struct nats_conn *c, const char *data, size_t len, nats_msg_fn *on_msg);

/* Sends PUB subject with payload as one websocket frame. */
void nats_publish(struct nats_conn *c, const char *subject, const char *payload, size_t len);

void nats_conn_free(struct nats_conn *c);
