/* SPDX-License-Identifier: BSD-3-Clause */
/* What PostgreSQL's backends of a `fanout-bench persist` run spent, by role:
 * the writer's lanes, the search indexer, the COPY. Each fanout connection
 * names itself in application_name (persist/pg.c); the backends named so that
 * started during the run are found in pg_stat_activity and their CPU read
 * from /proc, which works when the server runs on this host (and says so
 * when it does not). On a machine with few cores this tells whether the
 * writer's backend was busy or waiting, what the indexer took beside it,
 * and how long each role was ready to run with no CPU free (the kernel's
 * run delay, /proc/PID/schedstat). */
#include "bench.h"

#include "cpu.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROLES_MAX 8

struct role {
	char name[64];
	int backends;
	double cpu_s, wait_s; /* wait_s < 0: some run delay not known */
};

/* Whether pid is a PostgreSQL process of this host's. */
static bool local_postgres(int pid)
{
	char path[64], comm[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	if ((f = fopen(path, "r")) == NULL)
		return false;
	if (fgets(comm, sizeof(comm), f) == NULL)
		comm[0] = '\0';
	fclose(f);
	return strncmp(comm, "postgres", 8) == 0;
}

double bench_pg_backend_cpu_s(int pid)
{
	return local_postgres(pid) ? cpu_pid_seconds(pid) : -1;
}

/* Adds one backend to its role: "fanout writer lane 2" counts as "fanout
 * writer". A role past ROLES_MAX is left out. */
static void add_backend(struct role *roles, int *nroles, const char *name, int pid, double cpu_s)
{
	double wait_s = cpu_pid_run_delay_s(pid);

	size_t len = strlen(name);
	const char *lane = strstr(name, " lane ");
	int i;

	if (lane)
		len = (size_t)(lane - name);
	for (i = 0; i < *nroles; i++)
		if (strlen(roles[i].name) == len && strncmp(roles[i].name, name, len) == 0)
			break;
	if (i == *nroles) {
		if (*nroles == ROLES_MAX)
			return;
		snprintf(roles[i].name, sizeof(roles[i].name), "%.*s", (int)len, name);
		roles[i].backends = 0;
		roles[i].cpu_s = 0;
		roles[i].wait_s = 0;
		(*nroles)++;
	}
	roles[i].backends++;
	roles[i].cpu_s += cpu_s;
	roles[i].wait_s = wait_s < 0 || roles[i].wait_s < 0 ? -1 : roles[i].wait_s + wait_s;
}

/* Appends ", waiting for a CPU" figures, when every one is known. */
static void add_waits(const struct role *roles, int nroles, double seconds, char *out, size_t size)
{
	size_t len = strlen(out);

	for (int i = 0; i < nroles; i++)
		if (roles[i].wait_s < 0)
			return;
	len += (size_t)snprintf(out + len, size - len,
				"  PostgreSQL backends, cores waiting for a CPU over the run:");
	for (int i = 0; i < nroles && len < size; i++)
		len += (size_t)snprintf(out + len, size - len, "%s %s %.2f", i ? "," : "",
					roles[i].name, roles[i].wait_s / seconds);
	if (len < size)
		snprintf(out + len, size - len, "\n");
}

void bench_pg_backends_cpu(struct pg_conn *conn, const char *since, double seconds, char *out,
			   size_t size)
{
	const char *params[1] = {since};
	size_t len;
	struct role roles[ROLES_MAX];
	int nroles = 0, remote = 0;
	PGresult *res = PQexecParams(
	    conn,
	    "SELECT pid, application_name FROM pg_stat_activity WHERE backend_start >= $1 "
	    "AND application_name LIKE 'fanout %' AND pid <> pg_backend_pid() ORDER BY 2",
	    1, NULL, params, NULL, NULL, 0);

	out[0] = '\0';
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "fanout-bench: backends: %s", PQerrorMessage(conn));
		PQclear(res);
		return;
	}
	for (int r = 0; r < PQntuples(res); r++) {
		int pid = atoi(PQgetvalue(res, r, 0));
		double cpu_s = bench_pg_backend_cpu_s(pid);

		if (cpu_s < 0)
			remote++;
		else
			add_backend(roles, &nroles, PQgetvalue(res, r, 1), pid, cpu_s);
	}
	PQclear(res);
	if (nroles == 0) {
		snprintf(out, size, "  PostgreSQL backends: %s\n",
			 remote ? "not on this host, their CPU not read" : "none found");
		return;
	}
	len = (size_t)snprintf(out, size, "  PostgreSQL backends, cores busy over the run:");
	for (int i = 0; i < nroles && len < size; i++)
		len += (size_t)snprintf(out + len, size - len, "%s %s %.2f (%d backend%s)",
					i ? "," : "", roles[i].name, roles[i].cpu_s / seconds,
					roles[i].backends, roles[i].backends > 1 ? "s" : "");
	if (len < size)
		snprintf(out + len, size - len, "\n");
	add_waits(roles, nroles, seconds, out, size);
}

bool bench_pg_since(struct pg_conn *conn, char *since, size_t size)
{
	PGresult *res = PQexec(conn, "SELECT clock_timestamp()::text");
	bool ok = PQresultStatus(res) == PGRES_TUPLES_OK;

	if (ok)
		snprintf(since, size, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return ok;
}
