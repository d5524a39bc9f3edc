/* SPDX-License-Identifier: BSD-3-Clause */
/* systemd's service notification protocol (sd_notify(3), the "notify"
 * service type), without libsystemd: one datagram to the socket named by
 * $NOTIFY_SOCKET. Outside systemd (no $NOTIFY_SOCKET) every call is a
 * no-op. */
#pragma once

#include <stdint.h>

/* Sends state ("READY=1", "WATCHDOG=1", "STOPPING=1", "STATUS=...", several
 * separated by newlines). 0 sent, 1 not under systemd, or -errno. */
int notify_send(const char *state);

/* The watchdog interval systemd asks for ($WATCHDOG_USEC, when
 * $WATCHDOG_PID is unset or ours), in microseconds; 0 when none. Feed it
 * (WATCHDOG=1) at least twice per interval. */
uint64_t notify_watchdog_usec(void);
