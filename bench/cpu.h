/* SPDX-License-Identifier: BSD-3-Clause */
/* The CPU other processes (the server, PostgreSQL) and the bench itself
 * spend during a scenario's load, from its first publish to the end of its
 * tail: `--cpu NAME=PID[,PID...]` names a group (up to 4, 64 processes in
 * all), read from /proc/PID/stat at both ends. Connecting and closing the
 * clients fall outside, so the figure is the cost of the deliveries. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define CPU_OPTION 0x100 /* getopt_long's value for --cpu */

/* User+system CPU seconds of process pid so far; 0 when it is gone. */
double cpu_pid_seconds(int pid);

/* Seconds process pid (its main thread) has so far spent runnable but
 * waiting for a CPU (/proc/PID/schedstat's run delay); -1 when not known. */
double cpu_pid_run_delay_s(int pid);

/* Takes one --cpu value; false (and a message) when it is not NAME=PID,... */
bool cpu_option(const char *arg);

/* The load begins: the groups' and the bench's CPU so far. */
void cpu_window_start(void);

/* The load and its tail are over: their CPU since the start is noted. */
void cpu_window_stop(void);

/* After a stop: prints each group's and the bench's CPU in % of one core
 * and in microseconds per delivery, and returns them as {"wall_s": s,
 * "NAME": {"cpu_s": s, "us_per_delivery": us}, ..., "bench": {...}} (the
 * bench's own leaves out --procs children). NULL when no window was taken
 * (and nothing is printed). load_write_json() calls it. */
json_t *cpu_window_report(uint64_t deliveries);
