/* SPDX-License-Identifier: BSD-3-Clause */
/* The scenarios of fanout-bench, one per file. Each takes the arguments after
 * its name and returns the exit code. */
#pragma once

#include <stdbool.h>

int bench_persist(int argc, char **argv);
int bench_fanout(int argc, char **argv);	/* W1: one hot channel */
int bench_groups(int argc, char **argv);	/* W2: many small channels */
int bench_capacity(int argc, char **argv);	/* W7: idle connections */
int bench_nats(int argc, char **argv);		/* W1 against nats-server */
int bench_nats_groups(int argc, char **argv);	/* W2 against nats-server */
int bench_dpdk_null(int argc, char **argv);	/* the DPDK edge's send path, net_null */
int bench_failover(int argc, char **argv);	/* one trial of an owner's death */
int bench_lcore_publish(int argc, char **argv); /* a publish's cost to its worker */

struct pg_conn;
/* One durable COPY of rows of the messages' shape into a scratch table with
 * the same keys (dropped after): rows per second, or -1 (said on stderr).
 * text: the bodies bench_text_body() writes, not 'bbb...'. */
double bench_copy_ceiling(struct pg_conn *conn, int rows, int channels, int body_bytes, bool text);

/* bytes of made-up words for message i, NUL-terminated at body[bytes]. */
void bench_text_body(char *body, int bytes, int i);
