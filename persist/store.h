/* SPDX-License-Identifier: BSD-3-Clause */
/* The store: typed reads and writes of users, channels, members, DMs and
 * read cursors, for the control queries that run as reader jobs (hello, the
 * HTTP API, edits and reactions). Messages are written by the writer
 * (writer.h) and read by the history reader (reader.h); everything else that
 * touches PostgreSQL is here, so no SQL lives outside persist/.
 *
 * Each function runs one statement on conn, the connection a reader job was
 * handed (reader.h: persist_job_fn); none may be called on an edge worker.
 * libpq stays out of this header: struct pg_conn is libpq's PGconn. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pg_conn;

#define STORE_KIND_MAX 16 /* "public", "private", "dm", "ephemeral" */
#define STORE_NAME_MAX 96 /* channel names (80), "dm:<id>:<id>", user names (64) */

/* A channel as a member sees it. */
struct store_channel {
	int64_t id;
	char name[STORE_NAME_MAX];
	char kind[STORE_KIND_MAX];
	int64_t last_seq;
	int64_t last_read_seq;
	int64_t unread;		   /* others' top-level messages after the cursor, up to 1000 */
	int64_t mentions;	   /* of those after the cursor (the newest 5000), others' naming
				      the user or @channel */
	char role[16];		   /* "member" or "admin" */
	char peer[STORE_NAME_MAX]; /* a DM: the other user's name; else "" */
};

struct store_member {
	char name[STORE_NAME_MAX];
	char role[16];
};

/* The id of the user named name, creating the user and their membership of
 * "general" on first sight. -EEXIST when a user of that name but for case
 * exists (names ignore case: migration 0009), -1 on error (logged). */
int64_t store_user_ensure(struct pg_conn *conn, const char *name);

/* The user's channels, sorted by id, into *out (malloc'd, *n of them; free
 * it). 0 or -EIO, -ENOMEM. */
int store_user_channels(struct pg_conn *conn, int64_t user, struct store_channel **out, int *n);

/* Whether user may see channel: 0 with its kind and *member, -ENOENT when it
 * does not exist for them (private and DM channels of others look missing),
 * -EIO. Public and ephemeral channels are visible to everyone. */
int store_channel_access(struct pg_conn *conn, int64_t channel, int64_t user,
			 char kind[STORE_KIND_MAX], bool *member);

/* Creates a channel with creator as its admin: 1 with *out filled, 0 when
 * the name is taken, -EIO. */
int store_channel_create(struct pg_conn *conn, const char *name, const char *kind, int64_t creator,
			 struct store_channel *out);

/* Adds user to channel: 1 added, 0 already a member, -EIO. */
int store_member_add(struct pg_conn *conn, int64_t channel, int64_t user);

/* Removes user from channel: 1 removed, 0 was not a member, -EIO. */
int store_member_remove(struct pg_conn *conn, int64_t channel, int64_t user);

/* The members of channel by name, at most 10,000, into *out (malloc'd, *n;
 * free it). 0 or -EIO, -ENOMEM. */
/* Whether user administers channel: 1, 0, or -EIO. */
int store_channel_admin(struct pg_conn *conn, int64_t channel, int64_t user);

/* A user's id by name, case ignored (the exact name first), without
 * creating one: the id, -ENOENT, -EIO; the name as stored into found
 * unless NULL. */
int64_t store_user_find(struct pg_conn *conn, const char *name, char found[STORE_NAME_MAX]);

#define STORE_DISPLAY_MAX 257 /* 64 characters of UTF-8, and the NUL */

/* A user as the directory shows one. */
struct store_user {
	char name[STORE_NAME_MAX];
	char display[STORE_DISPLAY_MAX]; /* "" when none is set */
};

/* Up to limit users whose name, or a word of whose display name, starts
 * with prefix, case ignored, sorted by name: the directory (docs/api.md).
 * 0 or -EIO; out has limit slots. */
int store_users_search(struct pg_conn *conn, const char *prefix, int limit, struct store_user *out,
		       int *n);
/* The users among names (comma-separated, case ignored), up to limit. */
int store_users_named(struct pg_conn *conn, const char *names, int limit, struct store_user *out,
		      int *n);
/* Sets user's display name to display in NFKC (PostgreSQL's normalize()),
 * trimmed; over 64 characters, or with a control or a bidirectional
 * formatting character, it is refused. The stored value into out. 0,
 * -EINVAL (refused), -EIO. */
int store_user_set_display(struct pg_conn *conn, int64_t user, const char *display,
			   struct store_user *out);

/* Public channels whose name contains text (case ignored), sorted by name,
 * with their member counts and whether user is one: the channel browser. */
struct store_public_channel {
	int64_t id;
	char name[STORE_NAME_MAX];
	int64_t members;
	bool joined;
};
int store_public_channels(struct pg_conn *conn, int64_t user, const char *text, int limit,
			  struct store_public_channel *out, int *n);

/* A channel as the operator sees it (any kind, no access check: the caller
 * is an operator). */
struct store_channel_info {
	int64_t id;
	char name[STORE_NAME_MAX];
	char kind[STORE_KIND_MAX];
	int64_t last_seq;
	int64_t owner_epoch;
	int64_t members;
	char created_at[32]; /* RFC 3339, UTC */
};

/* 0, -ENOENT (no such channel), -EIO. */
int store_channel_info(struct pg_conn *conn, int64_t channel, struct store_channel_info *out);

int store_members_list(struct pg_conn *conn, int64_t channel, struct store_member **out, int *n);

/* The DM of users a and b (a < b), created with both as members on first
 * use: 0 with *channel and *added (members added now), or -EIO. */
int store_dm_open(struct pg_conn *conn, int64_t a, int64_t b, int64_t *channel, int *added);
/* Which of names (n of them, each [A-Za-z0-9_.-]{1,64}) are users that
 * user may not see: existing users, not themself, who share no channel (a
 * DM included) with them; the answers in hidden[]. A name of no user is
 * not hidden: there is nothing to see. 0, -EIO, -ENOMEM. */
int store_hidden_users(struct pg_conn *conn, int64_t user, const char *const *names, int n,
		       bool *hidden);

/* Whether user may edit or delete message seq of channel: it exists, is a
 * message not deleted, and user is its author or a channel admin. 0, or
 * -ENOENT, -EPERM, -EIO. */
int store_event_authorize(struct pg_conn *conn, int64_t channel, int64_t seq, int64_t user);

/* The generation of the etcd cluster named cluster_id (its header's
 * cluster_id), now at revision: the one it was given when first met, or
 * the next one when met for the first time or when its revision has gone
 * back below an owner epoch already stored (it was reset: migration 0006).
 * Connects to dsn for the call. > 0, or -errno with the reason in err. */
int64_t store_etcd_generation(const char *dsn, const char *cluster_id, int64_t revision, char *err,
			      size_t err_size);

/* Moves user's read cursor on channel forward to seq, never past the head;
 * the cursor as it now is, or -1. */
int64_t store_read_update(struct pg_conn *conn, int64_t channel, int64_t user, int64_t seq);
