/* SPDX-License-Identifier: BSD-3-Clause */
/* systemd's journal, natively: the log facade (log.c) sends each record as
 * its own fields when stderr is the journal's stream. */
#pragma once

#include <stdbool.h>

/* Whether fd is the stream systemd connected to the journal for this
 * service (JOURNAL_STREAM names its device and inode). */
bool journal_is_stream(int fd);

/* A socket for journal_send(): to /run/systemd/journal/socket, or to
 * FANOUT_JOURNAL_SOCKET when set (tests). The fd, or -errno. */
int journal_open(void);

/* One record: PRIORITY (syslog's 0..7), SYSLOG_IDENTIFIER,
 * FANOUT_COMPONENT and MESSAGE. 0, or -errno (the caller falls back to its
 * stream). */
int journal_send(int fd, int priority, const char *identifier, const char *component,
		 const char *message);
