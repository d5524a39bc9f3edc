/* SPDX-License-Identifier: BSD-3-Clause */
/* The scenarios of fanout-bench, one per file. Each takes the arguments after
 * its name and returns the exit code. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

int bench_persist(int argc, char **argv);
int bench_fanout(int argc, char **argv);	/* W1: one hot channel */
int bench_groups(int argc, char **argv);	/* W2: many small channels */
int bench_capacity(int argc, char **argv);	/* W7: idle connections */
int bench_nats(int argc, char **argv);		/* W1 against nats-server */
int bench_nats_groups(int argc, char **argv);	/* W2 against nats-server */
int bench_dpdk_null(int argc, char **argv);	/* the DPDK edge's send path, net_null */
int bench_failover(int argc, char **argv);	/* one trial of an owner's death */
int bench_lcore_publish(int argc, char **argv); /* a publish's cost to its worker */
int bench_wake(int argc, char **argv);		/* how late a sleeping thread wakes */

struct pg_conn;
/* One durable COPY of rows of the messages' shape into a scratch table with
 * the same keys (dropped after): rows per second, or -1 (said on stderr).
 * text: the bodies bench_text_body() writes, not 'bbb...'. *backend_cores:
 * how busy its backend was over it, -1 when not known (server elsewhere). */
double bench_copy_ceiling(struct pg_conn *conn, int rows, int channels, int body_bytes, bool text,
			  double *backend_cores);

/* CPU seconds so far of PostgreSQL backend pid, or -1 when the server does
 * not run on this host. */
double bench_pg_backend_cpu_s(int pid);

/* The server's clock now, as text for bench_pg_backends_cpu(); false (and
 * nothing written) when it cannot be asked. */
bool bench_pg_since(struct pg_conn *conn, char *since, size_t size);

/* Writes into out a line of the CPU, in cores over seconds, of the backends
 * named "fanout ..." (application_name) that started since `since`, by role
 * (a writer's lanes summed), and a line of how long they waited for a CPU
 * (the kernel's run delay), read from /proc when the server runs on this
 * host; else a line saying so. Empty when pg_stat_activity cannot be read. */
void bench_pg_backends_cpu(struct pg_conn *conn, const char *since, double seconds, char *out,
			   size_t size);

/* bytes of made-up words for message i, NUL-terminated at body[bytes]. */
void bench_text_body(char *body, int bytes, int i);
