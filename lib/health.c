/* health.c — health checks and statuses on top of the fan-out loop, and their write-back. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "targets.h"

struct dbreg_health_report {
	PGresult *rows;                  /* the targets; strings point into it */
	struct dbreg_health_result *results;
	char **owned;                    /* strings the report allocated */
	size_t n, nowned;
	char checked_at[32];
	double checked_epoch;
	char *writeback_error;
};

static const char *const status_names[] = { "HEALTHY", "DEGRADED", "UNHEALTHY", "UNKNOWN" };

_public_ const char *dbreg_health_status_name(enum dbreg_health_status s)
{
	return (unsigned)s < ELEMENTSOF(status_names) ? status_names[s] : "UNKNOWN";
}

static char *keep(struct dbreg_health_report *r, const char *s)
{
	char *copy = s ? strdup(s) : NULL;

	if (copy)
		r->owned[r->nowned++] = copy;
	return copy;
}

static int result_failed(const PGresult *res)
{
	return !res || PQresultStatus(res) != PGRES_TUPLES_OK;
}

static const char *result_error(const PGresult *res)
{
	const char *m = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	return m ? m : "no result";
}

/* Turns a job's outcome into a status (SPEC §5). */
static void judge(struct dbreg_health_report *r, struct dbreg_health_result *h, struct fanout_job *j,
                  const struct dbreg_health_opts *o, int warn_ms)
{
	char msg[600];

	h->latency_ms = -1;
	switch (j->outcome) {
	case FANOUT_SKIPPED:
	case FANOUT_CANCELLED:
		h->status = DBREG_UNKNOWN;
		h->error = keep(r, j->error);
		return;
	case FANOUT_NO_RESOLVE:
	case FANOUT_CONNECT:
	case FANOUT_TIMEOUT:
		h->status = DBREG_UNHEALTHY;
		h->latency_ms = j->elapsed_ms;
		h->error = keep(r, j->error);
		return;
	case FANOUT_OK:
		break;
	}
	h->latency_ms = j->elapsed_ms;
	if (result_failed(j->results[0])) {
		h->status = DBREG_UNHEALTHY;
		snprintf(msg, sizeof(msg), "the check query failed: %s", result_error(j->results[0]));
		h->error = keep(r, msg);
		return;
	}
	h->status = DBREG_HEALTHY;
	if (o->level >= DBREG_LEVEL_EXTENDED) {
		const PGresult *x = j->results[1];

		if (result_failed(x)) {
			h->status = DBREG_DEGRADED;
			snprintf(msg, sizeof(msg), "the extended check failed: %s", result_error(x));
			h->error = keep(r, msg);
		} else {
			h->server_version = keep(r, PQgetvalue(x, 0, 1));
			h->in_recovery = PQgetvalue(x, 0, 2)[0] == 't';
		}
	}
	if (o->level >= DBREG_LEVEL_DEEP) {
		const PGresult *d = j->results[2];

		if (result_failed(d)) {
			h->status = DBREG_DEGRADED;
			if (!h->error) {
				snprintf(msg, sizeof(msg), "the deep check failed: %s", result_error(d));
				h->error = keep(r, msg);
			}
		} else {
			h->backends = atol(PQgetvalue(d, 0, 0));
			h->max_connections = atol(PQgetvalue(d, 0, 1));
		}
	}
	if (h->status == DBREG_HEALTHY && h->latency_ms > warn_ms) {
		h->status = DBREG_DEGRADED;
		snprintf(msg, sizeof(msg), "answered in %.0f ms, slower than %d ms", h->latency_ms, warn_ms);
		h->error = keep(r, msg);
	}
}

static int write_back(struct dbreg_ctx *ctx, struct dbreg_health_report *r)
{
	json_t *a = json_array();
	struct dbreg_error err;
	char *text;
	int rc = 0;

	for (size_t i = 0; i < r->n; i++) {
		enum dbreg_health_status s = r->results[i].status;

		if (s == DBREG_UNKNOWN)
			continue;
		json_array_append_new(a, json_pack("{s:s, s:b}", "id", PQgetvalue(r->rows, (int)i, TC_ID), "ok",
		                                   s == DBREG_HEALTHY || s == DBREG_DEGRADED));
	}
	if (json_array_size(a) > 0) {
		text = json_dumps(a, JSON_COMPACT);
		if (!text || dbreg_registry_health_writeback(ctx, text, &err) < 0) {
			r->writeback_error = strdup(text ? err.message : "out of memory");
			rc = -1;
		}
		free(text);
	}
	json_decref(a);
	return rc;
}

_public_ int dbreg_health_run(struct dbreg_ctx *ctx, const struct dbreg_health_opts *o,
                              struct dbreg_health_report **ret, struct dbreg_error *err)
{
	static const char extended_sql[] =
		"SELECT current_timestamp, current_setting('server_version'), pg_is_in_recovery(), version()";
	static const char deep_sql[] =
		"SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),"
		" current_setting('max_connections')::int";
	struct dbreg_filter filter = { .type = o->type, .region = o->region, .active = -1, .names = o->names };
	int timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 5000;
	int warn_ms = o->warn_ms > 0 ? o->warn_ms : 1000;
	struct dbreg_health_report *r;
	struct fanout_job *jobs;
	struct target_run run;
	PGresult *rows;
	time_t now = time(NULL);
	struct timespec ts;
	size_t n;

	rows = dbreg_registry_targets(ctx, &filter, err);
	if (!rows)
		return -1;
	n = (size_t)PQntuples(rows);
	r = calloc(1, sizeof(*r));
	jobs = calloc(n ? n : 1, sizeof(*jobs));
	if (r)
		r->results = calloc(n ? n : 1, sizeof(*r->results));
	if (r)
		r->owned = calloc(3 * n + 1, sizeof(char *));
	if (!r || !jobs || !r->results || !r->owned) {
		if (r) {
			free(r->results);
			free(r->owned);
		}
		free(r);
		free(jobs);
		PQclear(rows);
		return dbreg_fail_oom(err);
	}
	r->rows = rows;
	r->n = n;
	clock_gettime(CLOCK_REALTIME, &ts);
	r->checked_epoch = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	strftime(r->checked_at, sizeof(r->checked_at), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));

	if (target_run_init(&run, ctx, rows, timeout_ms, err) < 0) {
		free(jobs);
		dbreg_health_report_free(r);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		struct fanout_job *j = &jobs[i];
		int row = (int)i;

		target_job_init(j, &run, row, "dbreg-health");
		j->queries[j->nqueries++] = "SELECT 1";
		if (o->level >= DBREG_LEVEL_EXTENDED)
			j->queries[j->nqueries++] = extended_sql;
		if (o->level >= DBREG_LEVEL_DEEP)
			j->queries[j->nqueries++] = deep_sql;
		r->results[i] = (struct dbreg_health_result){
			.connection_name = PQgetvalue(rows, row, TC_NAME),
			.connection_type = PQgetvalue(rows, row, TC_TYPE),
			.region_id = PQgetisnull(rows, row, TC_REGION) ? NULL : PQgetvalue(rows, row, TC_REGION),
			.in_recovery = -1,
			.backends = -1,
			.max_connections = -1,
		};
		if (PQgetvalue(rows, row, TC_ACTIVE)[0] != 't') {
			j->outcome = FANOUT_SKIPPED;
			snprintf(j->error, sizeof(j->error), "inactive: not checked");
		}
	}
	if (target_fanout(&run, jobs, n, o->jobs, timeout_ms, o->progress, o->userdata, err) < 0) {
		for (size_t i = 0; i < n; i++)
			fanout_job_clear(&jobs[i]);
		free(jobs);
		dbreg_health_report_free(r);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		judge(r, &r->results[i], &jobs[i], o, warn_ms);
		fanout_job_clear(&jobs[i]);
	}
	free(jobs);
	if (!o->no_update && !dbreg_ctx_was_cancelled(ctx))
		write_back(ctx, r);
	*ret = r;
	return 0;
}

_public_ size_t dbreg_health_report_count(const struct dbreg_health_report *r)
{
	return r ? r->n : 0;
}

_public_ const struct dbreg_health_result *dbreg_health_report_at(const struct dbreg_health_report *r, size_t i)
{
	return r && i < r->n ? &r->results[i] : NULL;
}

_public_ const char *dbreg_health_report_checked_at(const struct dbreg_health_report *r)
{
	return r->checked_at;
}

_public_ double dbreg_health_report_checked_epoch(const struct dbreg_health_report *r)
{
	return r->checked_epoch;
}

_public_ const char *dbreg_health_report_writeback_error(const struct dbreg_health_report *r)
{
	return r->writeback_error;
}

_public_ void dbreg_health_report_free(struct dbreg_health_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nowned; i++)
		free(r->owned[i]);
	free(r->owned);
	free(r->results);
	free(r->writeback_error);
	PQclear(r->rows);
	free(r);
}
