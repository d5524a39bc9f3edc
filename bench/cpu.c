/* SPDX-License-Identifier: BSD-3-Clause */
/* The CPU of named processes during a scenario's load; see cpu.h. */
#include "cpu.h"

#include "clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define GROUPS_MAX 4
#define PIDS_MAX   64

static struct group {
	char name[32];
	int first, count; /* its pids in pids[] */
	double start_s, cpu_s;
} groups[GROUPS_MAX];
static int ngroups, npids, pids[PIDS_MAX];
static uint64_t start_ns;
static double self_start_s, self_cpu, wall_s;
static bool stopped;

bool cpu_option(const char *arg)
{
	const char *eq = strchr(arg, '=');
	struct group *g = &groups[ngroups];
	int n = npids;

	if (eq == NULL || eq == arg || (size_t)(eq - arg) >= sizeof(g->name) ||
	    ngroups == GROUPS_MAX || eq[1] == '\0') {
		fprintf(stderr, "fanout-bench: --cpu %s: NAME=PID[,PID...], at most %d groups\n",
			arg, GROUPS_MAX);
		return false;
	}
	for (const char *p = eq + 1; *p;) {
		char *end;
		long pid = strtol(p, &end, 10);

		if (end == p || pid <= 0 || pid > INT32_MAX || n == PIDS_MAX ||
		    (*end && (*end != ',' || end[1] == '\0'))) {
			fprintf(stderr, "fanout-bench: --cpu %s: bad or too many pids\n", arg);
			return false;
		}
		pids[n++] = (int)pid;
		p = *end ? end + 1 : end;
	}
	memcpy(g->name, arg, (size_t)(eq - arg));
	g->name[eq - arg] = '\0';
	g->first = npids;
	g->count = n - npids;
	npids = n;
	ngroups++;
	return true;
}

/* The fields are read after the command name, which may hold spaces. */
double cpu_pid_seconds(int pid)
{
	char path[64], buf[1024];
	unsigned long utime = 0, stime = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
				&utime, &stime) != 2)
		return 0;
	return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

double cpu_pid_run_delay_s(int pid)
{
	char path[64];
	unsigned long long on_cpu, delay;
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "/proc/%d/schedstat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fscanf(f, "%llu %llu", &on_cpu, &delay);
	fclose(f);
	return n == 2 ? (double)delay / 1e9 : -1;
}

static double group_cpu_s(const struct group *g)
{
	double s = 0;

	for (int i = g->first; i < g->first + g->count; i++)
		s += cpu_pid_seconds(pids[i]);
	return s;
}

static double self_cpu_s(void)
{
	struct rusage u;

	getrusage(RUSAGE_SELF, &u);
	return (double)u.ru_utime.tv_sec + (double)u.ru_stime.tv_sec +
	       ((double)u.ru_utime.tv_usec + (double)u.ru_stime.tv_usec) / 1e6;
}

void cpu_window_start(void)
{
	for (int i = 0; i < ngroups; i++)
		groups[i].start_s = group_cpu_s(&groups[i]);
	self_start_s = self_cpu_s();
	start_ns = time_mono_ns();
}

void cpu_window_stop(void)
{
	wall_s = (double)(time_mono_ns() - start_ns) / 1e9;
	for (int i = 0; i < ngroups; i++)
		groups[i].cpu_s = group_cpu_s(&groups[i]) - groups[i].start_s;
	self_cpu = self_cpu_s() - self_start_s;
	stopped = true;
}

static json_t *report(const char *name, double cpu_s, uint64_t deliveries)
{
	double us = deliveries ? cpu_s * 1e6 / (double)deliveries : 0;

	printf(" %s %.0f%% (%.2f us/delivery)", name, wall_s > 0 ? 100 * cpu_s / wall_s : 0, us);
	return json_pack("{s:f, s:f}", "cpu_s", cpu_s, "us_per_delivery", us);
}

json_t *cpu_window_report(uint64_t deliveries)
{
	json_t *out;

	if (!stopped)
		return NULL;
	out = json_pack("{s:f}", "wall_s", wall_s);
	printf("cpu during the load, %% of one core:");
	for (int i = 0; i < ngroups; i++)
		json_object_set_new(out, groups[i].name,
				    report(groups[i].name, groups[i].cpu_s, deliveries));
	json_object_set_new(out, "bench", report("bench", self_cpu, deliveries));
	printf("\n");
	return out;
}
