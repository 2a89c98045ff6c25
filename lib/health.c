/* health.c — health checks and statuses on top of the fan-out loop, and their write-back. */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "targets.h"

struct dbreg_health_report {
	struct target_rows **batches;    /* the targets, one table per batch; strings point into them */
	size_t nbatches;
	struct dbreg_health_result *results;
	json_t *strings;                 /* the texts of results, once each (keep) */
	size_t n;
	char *checker;
	char checked_at[32];
	double checked_epoch;
	char *writeback_error;
	size_t jobs_wanted, jobs_used;
	long fd_limit;
	bool claimed;                    /* only the rows this run claimed were checked */
};

static const char *const status_names[] = { "HEALTHY", "DEGRADED", "UNHEALTHY", "UNKNOWN" };

_public_ const char *dbreg_health_status_name(enum dbreg_health_status s)
{
	return (unsigned)s < ELEMENTSOF(status_names) ? status_names[s] : "UNKNOWN";
}

/* s for as long as the report lives (NULL when s is, or out of memory): one copy of each
 * text, however many results say it (a fleet refusing logins says the same thing a
 * hundred thousand times).  The set is a JSON object, whose keys stay put. */
static const char *keep(struct dbreg_health_report *r, const char *s)
{
	void *it;

	if (!s || (!r->strings && !(r->strings = json_object())))
		return NULL;
	it = json_object_iter_at(r->strings, s);
	if (!it && json_object_set_new_nocheck(r->strings, s, json_null()) == 0)
		it = json_object_iter_at(r->strings, s);
	return it ? json_object_iter_key(it) : NULL;
}

/* What the registry says row is: "primary" or "replica" (in any case), else the text of
 * metadata.expected_role as it is (judged at the deep level), or NULL. */
static const char *expected_role(const struct target_run *run, int row)
{
	const char *role = target_expected_role(run, row);

	if (role && strcasecmp(role, "primary") == 0)
		return "primary";
	if (role && strcasecmp(role, "replica") == 0)
		return "replica";
	return role;
}

/* A worse status with its reason; an equal one keeps the first reason. */
static void worsen(struct dbreg_health_report *r, struct dbreg_health_result *h, enum dbreg_health_status s,
                   const char *why)
{
	if (s > h->status || !h->error) {
		if (s > h->status)
			h->status = s;
		h->error = keep(r, why);
	}
}

/* An epoch time as RFC 3339 UTC. */
static void rfc3339(double epoch, char *buf, size_t size)
{
	time_t t = (time_t)epoch;
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, size, "%.0f", epoch);
}

/* The extended check's answer into h; false with why set when it is malformed. */
static bool read_extended(struct dbreg_health_report *r, struct dbreg_health_result *h, const PGresult *x,
                          char *why, size_t size)
{
	const char *version = target_answer(x, "server_version", NULL, why, size);
	const char *recovery = version ? target_answer(x, "in_recovery", NULL, why, size) : NULL;
	char shown[128];

	if (!version || !recovery)
		return false;
	if (strcmp(recovery, "t") != 0 && strcmp(recovery, "f") != 0) {
		snprintf(why, size, "the server answered \"%s\" for in_recovery", dbreg_printable(recovery, shown, sizeof(shown)));
		return false;
	}
	if (strlen(version) > 64) {
		snprintf(why, size, "the server's version is %zu bytes long", strlen(version));
		return false;
	}
	h->server_version = keep(r, version);
	h->in_recovery = recovery[0] == 't';
	return true;
}

static bool read_deep(struct dbreg_health_result *h, const PGresult *d, char *why, size_t size)
{
	bool lag_null = true, bytes_null = true;
	const char *backends = target_answer(d, "backends", NULL, why, size);
	const char *max = backends ? target_answer(d, "max_connections", NULL, why, size) : NULL;
	const char *lag = max ? target_answer(d, "replay_lag_seconds", &lag_null, why, size) : NULL;
	const char *bytes = lag ? target_answer(d, "replay_lag_bytes", &bytes_null, why, size) : NULL;
	char s1[64], s2[64], *end;
	double seconds = -1;
	long long b64 = -1;
	long b, m;

	if (!backends || !max || !lag || !bytes)
		return false;
	if (!target_count(backends, &b) || !target_count(max, &m)) {
		snprintf(why, size, "the server answered \"%s\" backends of \"%s\"", dbreg_printable(backends, s1, sizeof(s1)),
		         dbreg_printable(max, s2, sizeof(s2)));
		return false;
	}
	if (!lag_null) {
		errno = 0;
		seconds = strtod(lag, &end);
		/* At most a century behind: anything else is not a delay. */
		if (errno || end == lag || *end || !isfinite(seconds) || seconds < 0 || seconds > 3.2e9) {
			snprintf(why, size, "the server answered \"%s\" for replay_lag_seconds", dbreg_printable(lag, s1, sizeof(s1)));
			return false;
		}
	}
	if (!bytes_null) {
		errno = 0;
		b64 = strtoll(bytes, &end, 10);
		if (errno || end == bytes || *end || b64 < 0) {
			snprintf(why, size, "the server answered \"%s\" for replay_lag_bytes", dbreg_printable(bytes, s1, sizeof(s1)));
			return false;
		}
	}
	h->backends = b;
	h->max_connections = m;
	h->replay_lag_seconds = seconds;
	h->replay_lag_bytes = b64;
	return true;
}

/* TLS as negotiated on the check's connection (captured at login), and the server
 * certificate's expiry: DEGRADED within --cert-warn-days, UNHEALTHY once past. */
static void judge_tls(struct dbreg_health_report *r, struct dbreg_health_result *h, const struct fanout_job *j,
                      const struct dbreg_health_opts *o)
{
	int days = o->cert_warn_days > 0 ? o->cert_warn_days : 30;
	double now = (double)time(NULL), left;
	char when[40], msg[200];

	if (!j->tls_captured)
		return;
	h->tls_in_use = j->tls_in_use;
	h->tls_protocol = j->tls_protocol[0] ? keep(r, j->tls_protocol) : NULL;
	h->tls_cipher = j->tls_cipher[0] ? keep(r, j->tls_cipher) : NULL;
	h->cert_not_after = j->cert_not_after;
	if (h->cert_not_after < 0)
		return;
	rfc3339(h->cert_not_after, when, sizeof(when));
	left = h->cert_not_after - now;
	if (left <= 0) {
		snprintf(msg, sizeof(msg), "the server certificate expired on %s", when);
		worsen(r, h, DBREG_UNHEALTHY, msg);
	} else if (left < (double)days * 86400) {
		snprintf(msg, sizeof(msg), "the server certificate expires on %s, in %.0f days (--cert-warn-days %d)", when,
		         ceil(left / 86400), days);
		worsen(r, h, DBREG_DEGRADED, msg);
	}
}

/* The server's role against the registry's (its type, or metadata.expected_role), and a
 * replica's replay delay against --lag-warn. */
static void judge_role(struct dbreg_health_report *r, struct dbreg_health_result *h, const struct dbreg_health_opts *o)
{
	long lag_warn = o->lag_warn_s > 0 ? o->lag_warn_s : 300;
	char msg[300], shown[64];

	if (h->expected_role && h->in_recovery >= 0) {
		if (strcmp(h->expected_role, "primary") == 0 && h->in_recovery)
			worsen(r, h, DBREG_DEGRADED, "registered as primary but the server is in recovery (a standby)");
		else if (strcmp(h->expected_role, "replica") == 0 && !h->in_recovery)
			worsen(r, h, DBREG_DEGRADED, "registered as replica but the server is not in recovery (promoted?)");
		else if (strcmp(h->expected_role, "primary") != 0 && strcmp(h->expected_role, "replica") != 0) {
			snprintf(msg, sizeof(msg), "metadata.expected_role is \"%s\", neither primary nor replica: the role is not checked",
			         dbreg_printable(h->expected_role, shown, sizeof(shown)));
			worsen(r, h, DBREG_DEGRADED, msg);
		}
	}
	if (h->in_recovery == 1 && h->replay_lag_seconds > (double)lag_warn) {
		if (h->replay_lag_bytes >= 0)
			snprintf(msg, sizeof(msg), "replaying %.1f s behind (%lld bytes received but not replayed), more than"
			         " --lag-warn %ld s", h->replay_lag_seconds, h->replay_lag_bytes, lag_warn);
		else
			snprintf(msg, sizeof(msg), "replaying %.1f s behind, more than --lag-warn %ld s", h->replay_lag_seconds,
			         lag_warn);
		worsen(r, h, DBREG_DEGRADED, msg);
	}
}

/* Turns a job's outcome into a status (SPEC §5).  Whatever the target sent,
 * only this target's result is affected. */
static void judge(struct dbreg_health_report *r, struct dbreg_health_result *h, struct fanout_job *j,
                  const struct dbreg_health_opts *o, int warn_ms)
{
	/* Both thresholds are judged on the same latency: past --crit-ms even a
	 * target that answered everything is UNHEALTHY. */
	const char *ok;
	char msg[700], why[300];

	h->latency_ms = -1;
	switch (j->outcome) {
	case FANOUT_SKIPPED:
	case FANOUT_CANCELLED:
	case FANOUT_LOCAL:
		/* Not a word about the target: not checked, and not written back. */
		h->status = DBREG_UNKNOWN;
		h->error = keep(r, j->error);
		return;
	case FANOUT_NO_RESOLVE:
	case FANOUT_CONNECT:
	case FANOUT_TIMEOUT:
		h->latency_ms = j->elapsed_ms;
		if (j->answered > 0)
			break;  /* the check query was answered; a later one failed */
		h->status = DBREG_UNHEALTHY;
		if (j->logged_in)
			snprintf(msg, sizeof(msg), "the check query failed: %s", j->error);
		h->error = keep(r, j->logged_in ? msg : j->error);
		return;
	case FANOUT_OK:
		break;
	}
	h->latency_ms = j->elapsed_ms;
	ok = target_answer(j->results[0], NULL, NULL, why, sizeof(why));
	if (!ok) {
		h->status = DBREG_UNHEALTHY;
		snprintf(msg, sizeof(msg), "the check query failed: %s", why);
		h->error = keep(r, msg);
		return;
	}
	h->status = DBREG_HEALTHY;
	if (o->level >= DBREG_LEVEL_EXTENDED) {
		bool good = j->answered >= 2 && read_extended(r, h, j->results[1], why, sizeof(why));

		if (!good) {
			h->status = DBREG_DEGRADED;
			snprintf(msg, sizeof(msg), "the extended check failed: %s", j->answered >= 2 ? why : j->error);
			h->error = keep(r, msg);
		}
	}
	if (o->level >= DBREG_LEVEL_DEEP) {
		bool good = j->answered >= 3 && read_deep(h, j->results[2], why, sizeof(why));

		if (!good) {
			h->status = DBREG_DEGRADED;
			if (!h->error) {
				snprintf(msg, sizeof(msg), "the deep check failed: %s", j->answered >= 3 ? why : j->error);
				h->error = keep(r, msg);
			}
		}
		judge_tls(r, h, j, o);
		judge_role(r, h, o);
	}
	if (o->crit_ms > 0 && h->latency_ms > o->crit_ms) {
		h->status = DBREG_UNHEALTHY;
		snprintf(msg, sizeof(msg), "answered in %.0f ms, slower than %d ms", h->latency_ms, o->crit_ms);
		h->error = keep(r, msg);
	} else if (h->status == DBREG_HEALTHY && h->latency_ms > warn_ms) {
		h->status = DBREG_DEGRADED;
		snprintf(msg, sizeof(msg), "answered in %.0f ms, slower than %d ms", h->latency_ms, warn_ms);
		h->error = keep(r, msg);
	}
}

/* A double for the JSON of the write-back, or null when unmeasured (negative). */
static json_t *measured(double v)
{
	return v < 0 ? json_null() : json_real(v);
}

static json_t *text_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *flag_or_null(int v)
{
	return v < 0 ? json_null() : json_boolean(v);
}

/* Rows a write-back statement carries: a large run writes several, in one transaction. */
#define WRITEBACK_ROWS 5000

/* The results [from, to) of the report as the write-back's JSON array (NULL: no memory). */
static char *writeback_json(const struct dbreg_health_report *r, size_t first, size_t from, size_t to,
                            const struct target_run *run)
{
	json_t *a = json_array();
	char *text;

	for (size_t i = from; a && i < to; i++) {
		const struct dbreg_health_result *h = &r->results[i];
		json_t *o = json_object();

		if (!o || json_array_append_new(a, o) < 0) {
			json_decref(a);
			return NULL;
		}
		json_object_set_new(o, "id", json_string(target_value(run, (int)(i - first), run->c_id)));
		json_object_set_new(o, "status", json_string(dbreg_health_status_name(h->status)));
		json_object_set_new(o, "latency_ms", measured(h->latency_ms));
		json_object_set_new(o, "error", text_or_null(h->error));
		json_object_set_new(o, "server_version", text_or_null(h->server_version));
		json_object_set_new(o, "in_recovery", flag_or_null(h->in_recovery));
		json_object_set_new(o, "expected_role", text_or_null(h->expected_role));
		json_object_set_new(o, "replay_lag_seconds", measured(h->replay_lag_seconds));
		json_object_set_new(o, "replay_lag_bytes",
		                    h->replay_lag_bytes < 0 ? json_null() : json_integer((json_int_t)h->replay_lag_bytes));
		json_object_set_new(o, "tls_in_use", flag_or_null(h->tls_in_use));
		json_object_set_new(o, "tls_protocol", text_or_null(h->tls_protocol));
		json_object_set_new(o, "tls_cipher", text_or_null(h->tls_cipher));
		json_object_set_new(o, "cert_not_after", measured(h->cert_not_after));
	}
	text = a ? json_dumps(a, JSON_COMPACT) : NULL;
	json_decref(a);
	return text;
}

/* The results from first on: the registry's health columns, the history (UNKNOWN results
 * too) and the release of this checker's claims, WRITEBACK_ROWS to a statement; several
 * statements are one transaction (its own, when none is open), so a run's write-back
 * lands whole or not at all. */
static int write_back(struct dbreg_ctx *ctx, struct dbreg_health_report *r, size_t first,
                      const struct target_run *run, const char *run_started)
{
	struct dbreg_error err;
	bool own;
	int rc = 0;

	if (r->n <= first)
		return 0;
	dbreg_error_clear(&err);
	own = r->n - first > WRITEBACK_ROWS && PQtransactionStatus(dbreg_ctx_conn(ctx)) == PQTRANS_IDLE;
	if (own && dbreg_registry_begin(ctx, &err) < 0)
		rc = -1;
	for (size_t from = first; rc == 0 && from < r->n; from += WRITEBACK_ROWS) {
		size_t to = r->n - from > WRITEBACK_ROWS ? from + WRITEBACK_ROWS : r->n;
		char *text = writeback_json(r, first, from, to, run);

		if (!text) {
			snprintf(err.message, sizeof(err.message), "out of memory");
			rc = -1;
		} else if (dbreg_registry_health_writeback(ctx, text, run_started, r->checker, &err) < 0) {
			rc = -1;
		}
		free(text);
	}
	if (own)
		rc = dbreg_registry_end(ctx, rc == 0, rc == 0 ? &err : NULL) < 0 ? -1 : rc;
	if (rc < 0 && !r->writeback_error)
		r->writeback_error = strdup(err.message[0] ? err.message : "the write-back failed");
	return rc;
}

static const char extended_sql[] =
	"SELECT current_timestamp AS now, current_setting('server_version') AS server_version,"
	" pg_is_in_recovery() AS in_recovery, version() AS version";
/* One query for primaries and standbys alike (the replay figures are NULL on a primary).
 * The delay is NULL when the standby has replayed all it received (idle and caught up). */
static const char deep_sql[] =
	"SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS backends,"
	" current_setting('max_connections')::int AS max_connections,"
	" CASE WHEN pg_is_in_recovery() AND (pg_last_wal_receive_lsn() IS NULL"
	"           OR pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn())"
	"      THEN round(GREATEST(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp()))::numeric, 3)"
	" END AS replay_lag_seconds,"
	" CASE WHEN pg_is_in_recovery()"
	"      THEN GREATEST(0, pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()))::bigint"
	" END AS replay_lag_bytes";

/* The job that checks one row at this level. */
static void check_job(struct fanout_job *j, struct target_run *run, int row, enum dbreg_health_level level)
{
	target_job_init(j, run, row, "dbreg-health");
	j->queries[j->nqueries++] = "SELECT 1";
	if (level >= DBREG_LEVEL_EXTENDED)
		j->queries[j->nqueries++] = extended_sql;
	if (level >= DBREG_LEVEL_DEEP) {
		j->queries[j->nqueries++] = deep_sql;
		j->want_tls = true;
	}
}

/* A result before its check: what the row says. */
static void result_init(struct dbreg_health_result *h, const struct dbreg_health_report *r,
                        const struct target_run *run, int row)
{
	*h = (struct dbreg_health_result){
		.connection_name = target_value(run, row, run->c_name),
		.connection_type = target_value(run, row, run->c_type),
		.region_id = target_isnull(run, row, run->c_region) ? NULL : target_value(run, row, run->c_region),
		.in_recovery = -1,
		.backends = -1,
		.max_connections = -1,
		.tls_in_use = -1,
		.cert_not_after = -1,
		.replay_lag_seconds = -1,
		.replay_lag_bytes = -1,
		.checker = r->checker,
		.expected_role = expected_role(run, row),
	};
}

/* The rows of one check_rows as the fan-out's source: a row's job is made as a slot
 * frees up and judged as it ends, so a run holds as many jobs as it has slots (the
 * loop calls both under its lock). */
struct check_source {
	struct dbreg_health_report *r;
	struct target_run *run;
	const struct dbreg_health_opts *o;
	struct dbreg_health_result *results;   /* this batch's, a row each */
	int warn_ms;
	size_t n, next;                        /* rows, the next to start */
	struct fanout_job **spare;             /* ended jobs, for the next rows; all of them at the end */
	size_t nspare, njobs;                  /* jobs in spare, and made */
	size_t *pending;                       /* rows to try again with their pending password */
	size_t npending;
	bool oom;
};

/* A login the server refused, on a row with a pending rotate-password: worth a second
 * try with the pending password (the run may have stopped between ALTER ROLE and storing
 * it, so the server may have that one already). */
static bool wants_pending(const struct target_run *run, const struct fanout_job *j, size_t row)
{
	return run->c_pending >= 0 && j->outcome == FANOUT_CONNECT && !j->logged_in &&
	       !target_isnull(run, (int)row, run->c_pending);
}

static struct fanout_job *check_next(void *userdata)
{
	struct check_source *s = userdata;
	struct fanout_job *j;
	int row;

	if (s->next >= s->n || s->oom)
		return NULL;
	if (s->nspare == 0) {
		/* Room in spare for every job made, so that check_done never allocates. */
		struct fanout_job **grown = realloc(s->spare, (s->njobs + 1) * sizeof(*grown));

		j = grown ? malloc(sizeof(*j)) : NULL;
		if (grown)
			s->spare = grown;
		if (!j) {
			s->oom = true;
			return NULL;
		}
		s->njobs++;
	} else {
		j = s->spare[--s->nspare];
	}
	memset(j, 0, sizeof(*j));
	row = (int)s->next++;
	check_job(j, s->run, row, s->o->level);
	result_init(&s->results[row], s->r, s->run, row);
	if (target_value(s->run, row, s->run->c_active)[0] != 't') {
		j->outcome = FANOUT_SKIPPED;
		snprintf(j->error, sizeof(j->error), "inactive: not checked");
	}
	return j;
}

static void check_done(struct fanout_job *j, void *userdata)
{
	struct check_source *s = userdata;
	size_t row = (size_t)(intptr_t)j->userdata;

	judge(s->r, &s->results[row], j, s->o, s->warn_ms);
	if (s->pending && wants_pending(s->run, j, row))
		s->pending[s->npending++] = row;
	fanout_job_clear(j);
	s->spare[s->nspare++] = j;
}

/* The rows check_done put aside, checked again with their pending password; where that
 * logs in, its check stands, and the result says so. */
static int retry_pending(struct check_source *s, int timeout_ms, struct dbreg_error *err)
{
	struct fanout_job *again;
	size_t m = s->npending;
	int rc;

	if (m == 0)
		return 0;
	again = calloc(m, sizeof(*again));
	if (!again)
		return dbreg_fail_oom(err);
	for (size_t k = 0; k < m; k++)
		check_job(&again[k], s->run, (int)s->pending[k], s->o->level);
	s->run->pending_round = true;
	rc = target_fanout(s->run, again, m, s->o->jobs, timeout_ms, NULL, NULL, err);
	s->run->pending_round = false;
	for (size_t k = 0; k < m; k++) {
		struct dbreg_health_result *h = &s->results[s->pending[k]];

		if (rc == 0 && again[k].logged_in) {
			result_init(h, s->r, s->run, (int)s->pending[k]);
			judge(s->r, h, &again[k], s->o, s->warn_ms);
			h->note = "logged in with the pending password of an unfinished rotate-password"
			          " (run 'dbreg rotate-password' on it to finish)";
		}
		fanout_job_clear(&again[k]);
	}
	free(again);
	return rc;
}

/* How many event loops: --threads, else one per online CPU this process may run on (its
 * affinity mask, as nproc(1) counts them; the fan-out caps it by --jobs). */
static int loops_for(const struct dbreg_health_opts *o)
{
	cpu_set_t set;
	long cpus;

	if (o->threads > 0)
		return o->threads;
	cpus = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : sysconf(_SC_NPROCESSORS_ONLN);
	return cpus > 0 ? (int)(cpus < FANOUT_MAX_THREADS ? cpus : FANOUT_MAX_THREADS) : 1;
}

/* Takes rows into the report (freed with it) and checks them: their results are appended
 * and, unless --no-update or a cancelled run, written back. */
static int check_rows(struct dbreg_ctx *ctx, const struct dbreg_health_opts *o, struct dbreg_health_report *r,
                      struct target_rows *rows, const char *run_started, struct dbreg_error *err)
{
	int timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 5000;
	size_t n = target_rows_count(rows), base = r->n, npending = 0;
	struct dbreg_health_result *results;
	struct check_source s;
	struct fanout_source src;
	struct target_rows **batches;
	struct target_run run;
	int rc;

	batches = realloc(r->batches, (r->nbatches + 1) * sizeof(*batches));
	if (!batches) {
		target_rows_free(rows);
		return dbreg_fail_oom(err);
	}
	r->batches = batches;
	r->batches[r->nbatches++] = rows;
	results = realloc(r->results, (base + n + 1) * sizeof(*results));
	if (!results)
		return dbreg_fail_oom(err);
	r->results = results;
	if (target_run_init(&run, ctx, rows, timeout_ms, err) < 0)
		return -1;
	run.threads = loops_for(o);
	s = (struct check_source){
		.r = r, .run = &run, .o = o, .results = results + base, .n = n,
		.warn_ms = o->warn_ms > 0 ? o->warn_ms : 1000,
	};
	for (size_t i = 0; run.c_pending >= 0 && i < n; i++)
		npending += !target_isnull(&run, (int)i, run.c_pending);
	if (npending > 0 && !(s.pending = calloc(npending, sizeof(*s.pending))))
		return dbreg_fail_oom(err);
	src = (struct fanout_source){ .next = check_next, .done = check_done, .userdata = &s, .total = n };
	rc = target_fanout_source(&run, &src, o->jobs, timeout_ms, o->progress, o->userdata, err);
	/* The run's own figures, not the retry's; of its widest batch. */
	if (run.jobs_wanted > r->jobs_wanted)
		r->jobs_wanted = run.jobs_wanted;
	if (run.jobs_used > r->jobs_used)
		r->jobs_used = run.jobs_used;
	r->fd_limit = run.fd_limit;
	if (rc == 0 && s.oom)
		rc = dbreg_fail_oom(err);
	if (rc == 0)
		rc = retry_pending(&s, timeout_ms, err);
	for (size_t i = 0; i < s.nspare; i++)
		free(s.spare[i]);
	free(s.spare);
	free(s.pending);
	if (rc < 0)
		return -1;
	r->n += n;
	if (!o->no_update && !dbreg_ctx_was_cancelled(ctx))
		write_back(ctx, r, base, &run, run_started);
	return 0;
}

/* The claimed ids of a claim's answer, as a JSON array (NULL: no memory). */
static char *claimed_ids(const PGresult *claim)
{
	int c = PQfnumber(claim, "id");
	json_t *a = json_array();
	char *text;

	for (int i = 0; a && c >= 0 && i < PQntuples(claim); i++)
		if (!PQgetisnull(claim, i, c))
			json_array_append_new(a, json_string(PQgetvalue(claim, i, c)));
	text = a ? json_dumps(a, JSON_COMPACT) : NULL;
	json_decref(a);
	return text;
}

/* --claim: batch after batch of due rows, until none is left (or the run is cancelled, or a
 * write-back failed: the claims then expire on their own). */
static int check_claimed(struct dbreg_ctx *ctx, const struct dbreg_health_opts *o, struct dbreg_health_report *r,
                         const char *run_started, struct dbreg_error *err)
{
	int batch = o->batch > 0 ? o->batch : 100, jobs = o->jobs > 0 ? o->jobs : 64;
	long timeout_s = (o->timeout_ms > 0 ? o->timeout_ms : 5000) / 1000 + 1;
	/* A claim outlives the longest its batch can take (its rounds of checks, each of which
	 * may be tried twice, and the write-back), so no other checker takes a row still being
	 * checked; a checker that died leaves them for as long, or for --every when longer. */
	long lease = 2 * timeout_s * ((batch + jobs - 1) / jobs) + 30, due;
	int empty = 0;             /* claims in a row that took nothing while rows were due */

	if (lease < o->every_s)
		lease = o->every_s;
	r->claimed = true;
	while (!dbreg_ctx_was_cancelled(ctx) && !r->writeback_error) {
		PGresult *claim = dbreg_registry_health_claim(ctx, o->filter, r->checker, o->every_s, lease, batch,
		                                              run_started, err);
		struct target_rows *rows;
		char *ids;

		if (!claim)
			return -1;
		if (PQntuples(claim) == 0) {
			/* Nothing claimed is not yet nothing due: a claim that met rows another
			 * checker was claiming at that moment takes none of them, though rows
			 * behind them may be due.  Done only when a fresh count finds none. */
			PQclear(claim);
			if (dbreg_registry_health_due(ctx, o->filter, o->every_s, run_started, &due, err) < 0)
				return -1;
			if (due == 0 || ++empty > 20)
				return 0;
			nanosleep(&(struct timespec){ .tv_nsec = 10000000L * empty }, NULL);
			continue;
		}
		empty = 0;
		ids = claimed_ids(claim);
		PQclear(claim);
		if (!ids)
			return dbreg_fail_oom(err);
		if (target_rows_load(ctx, o->filter, ids, &rows, err) < 0 ||
		    check_rows(ctx, o, r, rows, run_started, err) < 0) {
			free(ids);
			return -1;
		}
		if (dbreg_ctx_was_cancelled(ctx)) {
			struct dbreg_error ignored;

			/* Not written back: another checker may take them now. */
			dbreg_registry_health_release(ctx, ids, r->checker, &ignored);
		}
		free(ids);
	}
	return 0;
}

/* History older than --keep goes, a bounded batch at a time and a bounded number of
 * batches per run, so that a run never stalls on a long-neglected table. */
static void prune(struct dbreg_ctx *ctx, const struct dbreg_health_opts *o, struct dbreg_health_report *r)
{
	enum { BATCH = 5000, BATCHES = 20 };
	long keep_s = o->keep_s > 0 ? o->keep_s : 14L * 86400, pruned = BATCH;
	struct dbreg_error err;

	for (int i = 0; i < BATCHES && pruned == BATCH && !dbreg_ctx_was_cancelled(ctx); i++)
		if (dbreg_registry_health_prune(ctx, keep_s, BATCH, &pruned, &err) < 0) {
			if (!r->writeback_error && asprintf(&r->writeback_error, "cannot prune the history: %s", err.message) < 0)
				r->writeback_error = NULL;
			return;
		}
}

_public_ int dbreg_health_run(struct dbreg_ctx *ctx, const struct dbreg_health_opts *o,
                              struct dbreg_health_report **ret, struct dbreg_error *err)
{
	struct dbreg_health_report *r;
	char run_started[64] = "", host[256];
	time_t now = time(NULL);
	struct timespec ts;
	struct target_rows *rows;
	int rc;

	if (o->every_s > 0 && o->no_update)
		return dbreg_fail(err, DBREG_ERR_USAGE, "--claim writes its claims and results to the registry;"
		                                        " it cannot go with --no-update");
	/* A registry dbreg may not write: say so before checking anything. */
	if (!o->no_update && dbreg_ctx_check_writable(ctx, err) < 0) {
		dbreg_error_prefix(err, "the results cannot be written back (use --no-update): ");
		return -1;
	}
	if (!o->no_update && dbreg_registry_now(ctx, run_started, sizeof(run_started), err) < 0)
		return -1;
	r = calloc(1, sizeof(*r));
	if (!r)
		return dbreg_fail_oom(err);
	if (o->checker)
		r->checker = strdup(o->checker);
	else if (gethostname(host, sizeof(host)) == 0 && (host[sizeof(host) - 1] = '\0', host[0]))
		r->checker = strdup(host);
	else
		r->checker = strdup("unknown");
	if (!r->checker) {
		free(r);
		return dbreg_fail_oom(err);
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	r->checked_epoch = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	rfc3339((double)now, r->checked_at, sizeof(r->checked_at));

	if (o->every_s > 0) {
		rc = check_claimed(ctx, o, r, run_started, err);
	} else {
		rc = target_rows_load(ctx, o->filter, NULL, &rows, err) < 0 ? -1
		     : check_rows(ctx, o, r, rows, run_started, err);
	}
	if (rc < 0) {
		dbreg_health_report_free(r);
		return -1;
	}
	if (!o->no_update && !dbreg_ctx_was_cancelled(ctx))
		prune(ctx, o, r);
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

_public_ size_t dbreg_health_report_jobs(const struct dbreg_health_report *r, size_t *ret_wanted, long *ret_fd_limit)
{
	if (ret_wanted)
		*ret_wanted = r->jobs_wanted;
	if (ret_fd_limit)
		*ret_fd_limit = r->fd_limit;
	return r->jobs_used;
}

_public_ int dbreg_health_report_claimed(const struct dbreg_health_report *r)
{
	return r && r->claimed;
}

_public_ void dbreg_health_report_free(struct dbreg_health_report *r)
{
	if (!r)
		return;
	json_decref(r->strings);
	free(r->results);
	free(r->writeback_error);
	free(r->checker);
	for (size_t i = 0; i < r->nbatches; i++)
		target_rows_free(r->batches[i]);
	free(r->batches);
	free(r);
}
