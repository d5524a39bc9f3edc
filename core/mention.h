/* SPDX-License-Identifier: BSD-3-Clause */
/* Mentions in a message's text (docs/protocol.md, "Mentions"): reading
 * "@bob", "@channel" and "@here" out of a text, the one `mention` frame a
 * commit makes of them, and which sessions that frame is for. The grammar
 * is the one persist/migrations/0010_mentions.sql stores with each row. */
#ifndef FANOUT_MENTION_H
#define FANOUT_MENTION_H

#include "persist-types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MENTION_NAME_MAX 64
#define MENTION_MAX	 16 /* named users a frame carries; more are not notified live */

enum mention_broad {
	MENTION_NONE,
	MENTION_HERE,	 /* every member connected now */
	MENTION_CHANNEL, /* every member; counted for those away too */
};

struct mentions {
	enum mention_broad broad;
	int n;
	char names[MENTION_MAX][MENTION_NAME_MAX + 1]; /* lower case, distinct */
};

/* Reads the mentions of text: an '@' at the start or after a character
 * that cannot be in a name, then 1 to 64 name characters ([A-Za-z0-9_.-]),
 * trailing dots dropped, compared without case. "everyone" is "channel".
 * Returns true when there is at least one. */
bool mention_parse(const char *text, size_t len, struct mentions *out);

/* The `mention` frame's JSON for a committed message m, or NULL (no memory).
 * Its head carries, in a fixed order, what mention_wants() reads. */
char *mention_encode(const struct persist_message *m, const struct mentions *ms, size_t *len);

/* Whether a session of user (any case), a member of the frame's channel,
 * is one the mention frame json (from mention_encode) is for. */
bool mention_wants(const char *json, size_t len, const char *user);

/* The node's turns of @channel and @here: one per (user, channel) per
 * interval. A table of fixed size; a pair pushed out by many others early
 * gets an early turn, which only loosens the limit. */
struct mention_gate;
struct mention_gate *mention_gate_create(void);
void mention_gate_destroy(struct mention_gate *g);
/* True, and the turn taken, when user may mention channel broadly at now_ns
 * (monotonic); true again for a retry of the publish that took it (the same
 * client_msg_id cmid, or NULL for none). interval_ms 0: always. Any
 * thread. */
bool mention_gate_take(struct mention_gate *g, int64_t user, int64_t channel, const char *cmid,
		       uint64_t now_ns, int interval_ms);

#endif
