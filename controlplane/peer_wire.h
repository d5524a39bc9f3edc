/* SPDX-License-Identifier: BSD-3-Clause */
/* The peer link's wire format (docs/cluster.md, "The peer link"): frames
 * between fanoutd nodes over TCP.
 *
 *   u32 length (big-endian; the bytes after it) | u8 version | u8 type | payload
 *
 * Integers are big-endian; a string or byte run is a u32 length and its
 * bytes. A frame longer than PEER_FRAME_MAX, of another version, of an
 * unknown type, or whose payload does not parse exactly is refused: the
 * receiver counts it, logs it and closes the link.
 *
 * Pure: no I/O, no allocation but the output buffer's. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define PEER_VERSION   1
#define PEER_FRAME_MAX ((1u << 20) + 4096) /* a message body and its fields */
#define PEER_NAME_MAX  63
#define PEER_NONCE     16
#define PEER_MAC       32

enum peer_type {
	PEER_HELLO = 1, /* dialer -> listener: name, nonce */
	PEER_CHALLENGE, /* listener -> dialer: name, nonce, mac proving the secret */
	PEER_AUTH,	/* dialer -> listener: mac proving the secret */
	PEER_PUBLISH,	/* gateway -> owner: a publish to sequence and persist */
	PEER_ACK,	/* owner -> gateway: its outcome */
	PEER_INTEREST,	/* gateway -> owner: (un)subscribe this node to a channel */
	PEER_BROADCAST, /* owner -> gateway: a committed (or live) frame */
	PEER_RELAY,	/* gateway -> owner: an ephemeral frame for the others */
	PEER_USER,	/* any -> every node: a user's membership or read cursor moved */
	PEER_WELCOME,	/* listener -> dialer: authenticated and a member, the link is up */
	PEER_PRESENCE,	/* a user's presence: to its home, or from it (route.h) */
	PEER_TYPE_MAX = PEER_PRESENCE,
};

struct peer_msg {
	enum peer_type type;
	/* HELLO, CHALLENGE, AUTH */
	char name[PEER_NAME_MAX + 1];
	uint8_t nonce[PEER_NONCE];
	uint8_t mac[PEER_MAC];
	/* PUBLISH, ACK */
	uint64_t req;
	bool live;
	int64_t author, parent;
	char kind[17], client_msg_id[65], author_name[65];
	uint8_t outcome;
	int32_t error;
	int64_t created_at_us;
	/* PUBLISH, ACK, INTEREST, BROADCAST, RELAY */
	int64_t channel, seq;
	bool on;		/* INTEREST */
	uint8_t user_kind;	/* USER: enum route_user_kind; live: ephemeral;
				 * PRESENCE: enum route_presence_kind, outcome:
				 * the status, author_name: the user */
	int64_t user;		/* USER */
	uint8_t frame_kind;	/* BROADCAST, RELAY */
	const uint8_t *payload; /* PUBLISH: the body; BROADCAST, RELAY: the frame's */
	uint32_t payload_len;	/* (points into the decoded input) */
};

/* Appends m's frame to out. 0, -EINVAL (a field too long, an unknown type),
 * -ENOMEM. */
int peer_encode(struct buf *out, const struct peer_msg *m);

/* Decodes the first frame of data (avail bytes). 1 with *used bytes taken
 * and m filled (its payload points into data); 0 when more bytes are needed;
 * -EMSGSIZE (length past PEER_FRAME_MAX), -EPROTONOSUPPORT (another
 * version), -EPROTO (unknown type or a payload that does not parse). */
int peer_decode(const uint8_t *data, size_t avail, struct peer_msg *m, size_t *used);

/* The handshake's proof: HMAC-SHA256(secret, role | nonce_a | nonce_b |
 * name_a | name_b), role "s" for the listener's, "c" for the dialer's. */
void peer_mac(const char *secret, char role, const uint8_t *nonce_a, const uint8_t *nonce_b,
	      const char *name_a, const char *name_b, uint8_t out[PEER_MAC]);
/* Constant-time comparison of two macs. */
bool peer_mac_equal(const uint8_t *a, const uint8_t *b);
