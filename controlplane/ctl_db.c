/* SPDX-License-Identifier: BSD-3-Clause */
/* fanoutctl's database view: `db status` reads the Patroni cluster that runs
 * fanout's PostgreSQL from the keys Patroni keeps in etcd (its members, the
 * leader, the synchronous standby and the leader's last WAL position), so it
 * answers from the same etcd as the other commands even when a member's REST
 * API is down:
 *
 *   fanoutctl db status [--endpoints URLS] [--scope NAME] [--namespace PATH]
 *                       [-o table|json]
 *
 * A standby's lag is the leader's WAL position less the position the standby
 * last reported, in bytes, as of Patroni's last loop (a second or so old).
 * Exit codes in ctl.h: 1 when the cluster has no leader, 4 when etcd holds
 * no such cluster. */
#include "ctl.h"
#include "etcd.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DB_MEMBERS_MAX 16

struct db_member {
	char name[64], role[32], state[32], conn_url[160];
	int64_t wal, timeline;
};

struct db_view {
	struct db_member m[DB_MEMBERS_MAX];
	int n;
	char leader[64], sync_standby[64];
	int64_t optime; /* the leader's last WAL position (/status), -1 unknown */
};

struct db_opts {
	const char *endpoints, *scope, *ns;
	enum ctl_output output;
};

static void copy_str(char *dst, size_t n, json_t *v)
{
	snprintf(dst, n, "%s", json_is_string(v) ? json_string_value(v) : "");
}

static void on_member_key(struct db_view *v, const char *name, const char *value)
{
	json_t *j = json_loads(value, 0, NULL);
	struct db_member *m;

	if (j == NULL || v->n == DB_MEMBERS_MAX) {
		json_decref(j);
		return;
	}
	m = &v->m[v->n++];
	snprintf(m->name, sizeof(m->name), "%s", name);
	copy_str(m->role, sizeof(m->role), json_object_get(j, "role"));
	copy_str(m->state, sizeof(m->state), json_object_get(j, "state"));
	copy_str(m->conn_url, sizeof(m->conn_url), json_object_get(j, "conn_url"));
	m->wal = json_is_integer(json_object_get(j, "xlog_location"))
		     ? json_integer_value(json_object_get(j, "xlog_location"))
		     : -1;
	m->timeline = json_is_integer(json_object_get(j, "timeline"))
			  ? json_integer_value(json_object_get(j, "timeline"))
			  : -1;
	json_decref(j);
}

static void on_key(void *arg, const struct etcd_kv *kv)
{
	struct db_view *v = arg;
	const char *slash = strrchr(kv->key, '/');
	json_t *j;

	if (slash == NULL)
		return;
	if (strstr(kv->key, "/members/")) {
		on_member_key(v, slash + 1, kv->value);
	} else if (strcmp(slash, "/leader") == 0) {
		snprintf(v->leader, sizeof(v->leader), "%s", kv->value);
	} else if (strcmp(slash, "/sync") == 0 && (j = json_loads(kv->value, 0, NULL))) {
		copy_str(v->sync_standby, sizeof(v->sync_standby),
			 json_object_get(j, "sync_standby"));
		json_decref(j);
	} else if (strcmp(slash, "/status") == 0 && (j = json_loads(kv->value, 0, NULL))) {
		if (json_is_integer(json_object_get(j, "optime")))
			v->optime = json_integer_value(json_object_get(j, "optime"));
		json_decref(j);
	}
}

/* What fanout calls a member: the leader is the primary. */
static const char *role_of(const struct db_view *v, const struct db_member *m)
{
	if (strcmp(m->name, v->leader) == 0)
		return "primary";
	if (strcmp(m->name, v->sync_standby) == 0)
		return "sync-standby";
	return strcmp(m->role, "master") == 0 || strcmp(m->role, "primary") == 0 ? "primary?"
										 : "standby";
}

/* The bytes a standby is behind the leader, or -1 when unknown. */
static int64_t lag_of(const struct db_view *v, const struct db_member *m)
{
	if (strcmp(m->name, v->leader) == 0)
		return 0;
	if (v->optime < 0 || m->wal < 0)
		return -1;
	return v->optime > m->wal ? v->optime - m->wal : 0;
}

static void print_view(const struct db_opts *o, const struct db_view *v)
{
	json_t *members = json_array(), *out;

	if (o->output == CTL_TABLE)
		printf("%-12s %-16s %-10s %-24s %8s %12s\n", "NAME", "ROLE", "STATE", "ADDRESS",
		       "TIMELINE", "LAG_BYTES");
	for (int i = 0; i < v->n; i++) {
		const struct db_member *m = &v->m[i];
		int64_t lag = lag_of(v, m);
		const char *url = strstr(m->conn_url, "://") ? strstr(m->conn_url, "://") + 3 : "";
		char lagtxt[24], addr[sizeof(m->conn_url)];

		snprintf(addr, sizeof(addr), "%.*s", (int)strcspn(url, "/"), url);
		snprintf(lagtxt, sizeof(lagtxt), lag < 0 ? "unknown" : "%" PRId64, lag);
		if (o->output == CTL_TABLE)
			printf("%-12s %-16s %-10s %-24s %8" PRId64 " %12s\n", m->name,
			       role_of(v, m), m->state, addr, m->timeline, lagtxt);
		json_array_append_new(
		    members, json_pack("{s:s, s:s, s:s, s:s, s:I, s:o}", "name", m->name, "role",
				       role_of(v, m), "state", m->state, "address", addr,
				       "timeline", (json_int_t)m->timeline, "lag_bytes",
				       lag < 0 ? json_null() : json_integer(lag)));
	}
	if (o->output == CTL_TABLE) {
		printf("leader: %s, synchronous standby: %s\n", v->leader[0] ? v->leader : "none",
		       v->sync_standby[0] ? v->sync_standby : "none");
	} else {
		out = json_pack("{s:s, s:o, s:o, s:o}", "scope", o->scope, "leader",
				v->leader[0] ? json_string(v->leader) : json_null(), "sync_standby",
				v->sync_standby[0] ? json_string(v->sync_standby) : json_null(),
				"members", json_incref(members));
		json_dumpf(out, stdout, JSON_INDENT(2));
		printf("\n");
		json_decref(out);
	}
	json_decref(members);
}

static int db_status(const struct db_opts *o)
{
	struct db_view *v = calloc(1, sizeof(*v));
	struct etcd *e = etcd_open(o->endpoints, 2000);
	char prefix[256];
	int64_t revision;
	size_t nslen;
	int rc;

	if (v == NULL) {
		etcd_close(e);
		return CTL_FAILED;
	}
	v->optime = -1;
	nslen = strlen(o->ns);
	while (nslen > 1 && o->ns[nslen - 1] == '/')
		nslen--; /* "/service/" names /service */
	snprintf(prefix, sizeof(prefix), "%.*s/%s/", (int)nslen, o->ns, o->scope);
	rc = e ? etcd_range(e, prefix, on_key, v, &revision) : -EINVAL;
	etcd_close(e);
	if (rc < 0) {
		fprintf(stderr, "fanoutctl: cannot read %s from etcd at %s: %s\n", prefix,
			o->endpoints, strerror(-rc));
		free(v);
		return CTL_UNREACHABLE;
	}
	if (v->n == 0) {
		fprintf(stderr,
			"fanoutctl: no Patroni cluster '%s' in etcd at %s (no keys under %s"
			"members/); --scope names it\n",
			o->scope, o->endpoints, prefix);
		free(v);
		return CTL_NOT_FOUND;
	}
	print_view(o, v);
	rc = v->leader[0] ? CTL_OK : CTL_FAILED;
	if (rc != CTL_OK)
		fprintf(stderr, "fanoutctl: cluster '%s' has no leader: no primary to write to\n",
			o->scope);
	free(v);
	return rc;
}

static void db_usage(FILE *out)
{
	fprintf(out,
		"usage: fanoutctl db status [--endpoints URLS] [--scope NAME] [--namespace PATH]\n"
		"                           [-o table|json]\n"
		"  The Patroni cluster under fanout's PostgreSQL, read from etcd: each\n"
		"  member's role, state, address, timeline and lag behind the leader in\n"
		"  bytes. --endpoints: etcd (FANOUT_ETCD_ENDPOINTS, or http://127.0.0.1:2379);\n"
		"  --scope: Patroni's scope (FANOUT_PATRONI_SCOPE, or fanout); --namespace:\n"
		"  Patroni's namespace (/service). Exit: 0 ok, 1 no leader, 2 usage,\n"
		"  3 etcd unreachable, 4 no such cluster.\n");
}

int ctl_db(int argc, char **argv)
{
	static const struct option options[] = {
	    {"endpoints", required_argument, NULL, 'e'},
	    {"scope", required_argument, NULL, 's'},
	    {"namespace", required_argument, NULL, 'n'},
	    {"output", required_argument, NULL, 'o'},
	    {NULL, 0, NULL, 0},
	};
	struct db_opts o = {
	    .endpoints = ctl_default_endpoints(),
	    .scope = getenv("FANOUT_PATRONI_SCOPE") ? getenv("FANOUT_PATRONI_SCOPE") : "fanout",
	    .ns = "/service",
	    .output = CTL_TABLE,
	};
	int opt;

	if (argc < 2 || strcmp(argv[1], "status") != 0) {
		db_usage(stderr);
		return CTL_USAGE;
	}
	optind = 1;
	while ((opt = getopt_long(argc - 1, argv + 1, "e:s:n:o:", options, NULL)) != -1) {
		if (opt == 'e')
			o.endpoints = optarg;
		else if (opt == 's')
			o.scope = optarg;
		else if (opt == 'n' && optarg[0] == '/')
			o.ns = optarg;
		else if (opt != 'o' || ctl_output_parse(optarg, &o.output) < 0) {
			db_usage(stderr);
			return CTL_USAGE;
		}
	}
	if (optind != argc - 1) {
		db_usage(stderr);
		return CTL_USAGE;
	}
	return db_status(&o);
}
