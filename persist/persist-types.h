/* SPDX-License-Identifier: BSD-3-Clause */
/* Types shared by the persist tier and its callers (edges, bench, tests):
 * a durable message as handed on after COMMIT. Includes nothing heavy. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A message as stored. Strings are NUL-terminated; body_len excludes the NUL.
 * parent_seq is 0 for a top-level message. created_at_us is microseconds since
 * the Unix epoch, the commit batch's timestamp. author_name is the author's
 * user name ("" when unknown). reply_count is filled by history reads only. */
struct persist_message {
	int64_t channel_id;
	int64_t seq;
	int64_t author_id;
	int64_t parent_seq;
	int64_t created_at_us;
	int64_t reply_count;
	bool edited;	       /* history only: the text was edited */
	bool deleted;	       /* history only: a tombstone, text "" */
	const char *reactions; /* history only: JSON [{"emoji","count","me"}], or "" */
	const char *author_name;
	const char *kind;
	const char *client_msg_id;
	const char *body;
	size_t body_len;
};

#define PERSIST_BODY_MAX	  (1u << 20)
#define PERSIST_CLIENT_MSG_ID_MAX 64
#define PERSIST_KIND_MAX	  16
