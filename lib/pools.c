/* pools.c — pool statistics: configured pool sizes beside live server usage, through the fan-out loop. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "targets.h"

struct dbreg_pool_report {
	struct target_rows *rows;
	struct dbreg_pool_conn *conns;
	struct dbreg_pool_server *servers;
	size_t n, nservers;
	char **errors;
	PGresult **pooler_answers;           /* two per connection: a pooler's SHOW POOLS, SHOW DATABASES */
	struct dbreg_pooler_pool **pools;    /* a pooler's pools, one array per connection */
};

/* PgBouncer's admin console speaks the simple query protocol only: fanout.c sends a
 * query without parameters with PQsendQuery, one statement each. */
static const char show_pools[] = "SHOW POOLS";
static const char show_databases[] = "SHOW DATABASES";
/* The console's own pseudo-database: no server behind it, not one of the pools. */
static const char console_db[] = "pgbouncer";

/* dbreg's own sessions (this probe, its siblings on the same database and
 * user, the admin session) are not part of the pool we measure. */
static const char usage_sql[] =
	"SELECT count(*) AS total, count(*) FILTER (WHERE state = 'active') AS active,"
	" count(*) FILTER (WHERE state = 'idle') AS idle,"
	" count(*) FILTER (WHERE state LIKE 'idle in transaction%') AS idle_in_transaction,"
	" count(*) FILTER (WHERE wait_event_type = 'Lock') AS waiting,"
	" extract(epoch FROM max(now() - xact_start))::float8 AS oldest_xact_seconds"
	" FROM pg_stat_activity"
	" WHERE datname = current_database() AND usename = current_user AND pid <> pg_backend_pid()"
	" AND backend_type = 'client backend' AND application_name NOT IN ('dbreg', 'dbreg-pool-stats')";

/* reserved_connections exists from PostgreSQL 16; current_setting(..., true) is NULL before. */
static const char server_sql[] =
	"SELECT current_setting('max_connections')::int AS max_connections,"
	" current_setting('superuser_reserved_connections')::int"
	"   + coalesce(current_setting('reserved_connections', true)::int, 0) AS reserved_connections,"
	" CASE WHEN pg_has_role(current_user, 'pg_monitor', 'MEMBER')"
	"   THEN (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') END AS backends";

/* A count in the named column of the one row, -1 for NULL where that may be. */
static bool count_of(const PGresult *res, const char *column, bool nullable, long *ret)
{
	char why[64];
	bool null = false;
	const char *text = target_answer(res, column, nullable ? &null : NULL, why, sizeof(why));

	if (!text)
		return false;
	if (null) {
		*ret = -1;
		return true;
	}
	return target_count(text, ret);
}

/* Seconds >= 0 in the named column, -1 for NULL. */
static bool seconds_of(const PGresult *res, const char *column, double *ret)
{
	char why[64], *end;
	bool null = false;
	const char *text = target_answer(res, column, &null, why, sizeof(why));
	double v;

	if (!text)
		return false;
	if (null) {
		*ret = -1;
		return true;
	}
	errno = 0;
	v = strtod(text, &end);
	if (errno || end == text || *end || !isfinite(v) || v < 0)
		return false;
	*ret = v;
	return true;
}

static const char *remember(struct dbreg_pool_report *r, size_t i, const char *msg)
{
	r->errors[i] = strdup(msg);
	return r->errors[i] ? r->errors[i] : "out of memory";
}

/* The columns of a pooler's answer, found by name; false when one is missing. */
static bool columns_of(const PGresult *res, const char *const *names, int *cols, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if ((cols[k] = PQfnumber(res, names[k])) < 0)
			return false;
	return true;
}

/* A count of the pooler's answer: a whole number >= 0, else false. */
static bool pooler_count(const PGresult *res, int row, int col, long *ret)
{
	return !PQgetisnull(res, row, col) && target_count(PQgetvalue(res, row, col), ret);
}

/* A PgBouncer's SHOW POOLS beside its SHOW DATABASES' pool_size: NULL, or why the answer
 * is unusable (the pooler is untrusted: every column by name, every number checked). */
static const char *read_pooler(struct dbreg_pool_report *r, size_t i, const PGresult *pools, const PGresult *dbs)
{
	static const char *const pool_cols[] = { "database", "user", "cl_active", "cl_waiting", "sv_active",
	                                         "sv_idle", "sv_used", "maxwait", "pool_mode" };
	static const char *const db_cols[] = { "name", "pool_size" };
	int pc[ELEMENTSOF(pool_cols)], dc[ELEMENTSOF(db_cols)];
	struct dbreg_pooler_pool *out;
	size_t n = 0;

	if (!pools || PQresultStatus(pools) != PGRES_TUPLES_OK || !dbs || PQresultStatus(dbs) != PGRES_TUPLES_OK) {
		const PGresult *bad = !pools || PQresultStatus(pools) != PGRES_TUPLES_OK ? pools : dbs;
		const char *why = bad ? PQresultErrorField(bad, PG_DIAG_MESSAGE_PRIMARY) : NULL;

		return why ? why : "the pooler did not answer SHOW POOLS and SHOW DATABASES";
	}
	if (!columns_of(pools, pool_cols, pc, ELEMENTSOF(pc)))
		return "the pooler's answer to SHOW POOLS lacks a column dbreg reads";
	if (!columns_of(dbs, db_cols, dc, ELEMENTSOF(dc)))
		return "the pooler's answer to SHOW DATABASES lacks a column dbreg reads";
	out = calloc((size_t)PQntuples(pools) + 1, sizeof(*out));
	if (!out)
		return "out of memory";
	r->pools[i] = out;
	for (int row = 0; row < PQntuples(pools); row++) {
		struct dbreg_pooler_pool *p = &out[n];

		if (PQgetisnull(pools, row, pc[0]) || PQgetisnull(pools, row, pc[1]))
			return "the pooler's answer to SHOW POOLS has a pool without a database or user";
		p->database = PQgetvalue(pools, row, pc[0]);
		if (strcmp(p->database, console_db) == 0)
			continue;
		p->user = PQgetvalue(pools, row, pc[1]);
		p->pool_mode = PQgetisnull(pools, row, pc[8]) ? NULL : PQgetvalue(pools, row, pc[8]);
		if (!pooler_count(pools, row, pc[2], &p->cl_active) || !pooler_count(pools, row, pc[3], &p->cl_waiting) ||
		    !pooler_count(pools, row, pc[4], &p->sv_active) || !pooler_count(pools, row, pc[5], &p->sv_idle) ||
		    !pooler_count(pools, row, pc[6], &p->sv_used) || !pooler_count(pools, row, pc[7], &p->maxwait))
			return "the pooler's answer to SHOW POOLS is malformed";
		p->pool_size = -1;
		for (int d = 0; d < PQntuples(dbs); d++)
			if (!PQgetisnull(dbs, d, dc[0]) && strcmp(PQgetvalue(dbs, d, dc[0]), p->database) == 0) {
				if (!pooler_count(dbs, d, dc[1], &p->pool_size))
					return "the pooler's answer to SHOW DATABASES is malformed";
				break;
			}
		n++;
	}
	r->conns[i].pools = out;
	r->conns[i].npools = n;
	return NULL;
}

static void read_job(struct dbreg_pool_report *r, size_t i, struct fanout_job *j, struct dbreg_pool_server *srv)
{
	struct dbreg_pool_conn *c = &r->conns[i];
	const PGresult *u = j->results[0], *s = j->results[1];

	if (j->outcome != FANOUT_OK) {
		c->error = remember(r, i, j->error);
		return;
	}
	if (c->pooler) {
		const char *why;

		/* The pools point into the answers: the report keeps them. */
		r->pooler_answers[2 * i] = j->results[0];
		r->pooler_answers[2 * i + 1] = j->results[1];
		j->results[0] = j->results[1] = NULL;
		why = read_pooler(r, i, r->pooler_answers[2 * i], r->pooler_answers[2 * i + 1]);
		if (why) {
			c->pools = NULL;
			c->npools = 0;
			c->error = remember(r, i, why);
		}
		return;
	}
	if (!u || PQresultStatus(u) != PGRES_TUPLES_OK) {
		const char *why = u ? PQresultErrorField(u, PG_DIAG_MESSAGE_PRIMARY) : NULL;

		if (!why)
			why = u && *PQresultErrorMessage(u) ? PQresultErrorMessage(u) : "no result";
		c->error = remember(r, i, why);
		return;
	}
	if (!count_of(u, "total", false, &c->total) || !count_of(u, "active", false, &c->active) ||
	    !count_of(u, "idle", false, &c->idle) || !count_of(u, "idle_in_transaction", false, &c->idle_in_transaction) ||
	    !count_of(u, "waiting", false, &c->waiting) || !seconds_of(u, "oldest_xact_seconds", &c->oldest_xact_seconds)) {
		c->total = c->active = c->idle = c->idle_in_transaction = c->waiting = -1;
		c->oldest_xact_seconds = -1;
		c->error = remember(r, i, "the server's answer to the usage query is malformed");
		return;
	}
	c->saturation = c->pool_max_size > 0 ? (double)c->total / (double)c->pool_max_size : -1;
	if (s && PQresultStatus(s) == PGRES_TUPLES_OK) {
		long max, reserved, backends;

		if (count_of(s, "max_connections", false, &max) && count_of(s, "reserved_connections", false, &reserved) &&
		    count_of(s, "backends", true, &backends)) {
			if (srv->max_connections < 0) {
				srv->max_connections = max;
				srv->reserved_connections = reserved;
			}
			if (backends >= 0)
				srv->backends = backends;
		}
	}
}

static struct dbreg_pool_server *server_of(struct dbreg_pool_report *r, const char *host, const char *port)
{
	for (size_t k = 0; k < r->nservers; k++)
		if (strcmp(r->servers[k].host, host) == 0 && strcmp(r->servers[k].port, port) == 0)
			return &r->servers[k];
	r->servers[r->nservers] = (struct dbreg_pool_server){
		.host = host, .port = port, .max_connections = -1, .reserved_connections = -1, .overcommitted = -1,
		.backends = -1,
	};
	return &r->servers[r->nservers++];
}

_public_ int dbreg_pool_stats(struct dbreg_ctx *ctx, const struct dbreg_pool_opts *o, struct dbreg_pool_report **ret,
                              struct dbreg_error *err)
{
	int timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 5000;
	struct dbreg_pool_server **server_for;
	struct dbreg_pool_report *r;
	struct fanout_job *jobs;
	struct target_run run;
	struct target_rows *rows;
	bool ran;
	size_t n;

	if (target_rows_load(ctx, o->filter, NULL, &rows, err) < 0)
		return -1;
	n = target_rows_count(rows);
	r = calloc(1, sizeof(*r));
	jobs = calloc(n + 1, sizeof(*jobs));
	server_for = calloc(n + 1, sizeof(*server_for));
	if (r) {
		r->conns = calloc(n + 1, sizeof(*r->conns));
		r->servers = calloc(n + 1, sizeof(*r->servers));
		r->errors = calloc(n + 1, sizeof(*r->errors));
		r->pooler_answers = calloc(2 * n + 1, sizeof(*r->pooler_answers));
		r->pools = calloc(n + 1, sizeof(*r->pools));
	}
	if (!r || !jobs || !server_for || !r->conns || !r->servers || !r->errors || !r->pooler_answers || !r->pools) {
		free(jobs);
		free(server_for);
		if (r) {
			r->rows = rows;
			dbreg_pool_report_free(r);
		} else {
			target_rows_free(rows);
		}
		return dbreg_fail_oom(err);
	}
	r->rows = rows;
	r->n = n;
	if (target_run_init(&run, ctx, rows, timeout_ms, err) < 0) {
		free(jobs);
		free(server_for);
		dbreg_pool_report_free(r);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		int row = (int)i;
		struct dbreg_pool_conn *c = &r->conns[i];

		*c = (struct dbreg_pool_conn){
			.connection_name = target_value(&run, row, run.c_name),
			.host = target_value(&run, row, run.c_host),
			.port = target_value(&run, row, run.c_port),
			.pool_min_size = atol(target_value(&run, row, run.c_pool_min)),
			.pool_max_size = atol(target_value(&run, row, run.c_pool_max)),
			.pool_timeout_seconds = atol(target_value(&run, row, run.c_pool_timeout)),
			.pool_recycle_seconds = atol(target_value(&run, row, run.c_pool_recycle)),
			.total = -1, .active = -1, .idle = -1, .idle_in_transaction = -1, .waiting = -1,
			.oldest_xact_seconds = -1, .saturation = -1,
			.pooler = target_pooler(&run, row),
		};
		if (c->pooler) {
			/* Its admin console, as the row's user; a pooler is no server to sum pools on. */
			target_job_init_db(&jobs[i], &run, row, "dbreg-pool-stats", target_pooler_db(&run, row));
			jobs[i].queries[jobs[i].nqueries++] = show_pools;
			jobs[i].queries[jobs[i].nqueries++] = show_databases;
			continue;
		}
		server_for[i] = server_of(r, c->host, c->port);
		server_for[i]->sum_pool_max_size += c->pool_max_size;
		target_job_init(&jobs[i], &run, row, "dbreg-pool-stats");
		jobs[i].queries[jobs[i].nqueries++] = usage_sql;
		jobs[i].queries[jobs[i].nqueries++] = server_sql;
	}
	ran = target_fanout(&run, jobs, n, o->jobs, timeout_ms, o->progress, o->userdata, err) == 0;
	for (size_t i = 0; i < n; i++) {
		if (ran)
			read_job(r, i, &jobs[i], server_for[i]);
		fanout_job_clear(&jobs[i]);
	}
	free(jobs);
	free(server_for);
	if (!ran) {
		dbreg_pool_report_free(r);
		return -1;
	}
	for (size_t k = 0; k < r->nservers; k++) {
		struct dbreg_pool_server *s = &r->servers[k];

		if (s->max_connections >= 0)
			s->overcommitted = s->sum_pool_max_size > s->max_connections - s->reserved_connections;
	}
	*ret = r;
	return 0;
}

_public_ size_t dbreg_pool_report_conn_count(const struct dbreg_pool_report *r) { return r ? r->n : 0; }
_public_ size_t dbreg_pool_report_server_count(const struct dbreg_pool_report *r) { return r ? r->nservers : 0; }

_public_ const struct dbreg_pool_conn *dbreg_pool_report_conn(const struct dbreg_pool_report *r, size_t i)
{
	return r && i < r->n ? &r->conns[i] : NULL;
}

_public_ const struct dbreg_pool_server *dbreg_pool_report_server(const struct dbreg_pool_report *r, size_t i)
{
	return r && i < r->nservers ? &r->servers[i] : NULL;
}

_public_ void dbreg_pool_report_free(struct dbreg_pool_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; r->errors && i < r->n; i++)
		free(r->errors[i]);
	for (size_t i = 0; r->pools && i < r->n; i++)
		free(r->pools[i]);
	for (size_t i = 0; r->pooler_answers && i < 2 * r->n; i++)
		PQclear(r->pooler_answers[i]);
	free(r->pools);
	free(r->pooler_answers);
	free(r->errors);
	free(r->conns);
	free(r->servers);
	target_rows_free(r->rows);
	free(r);
}
