/* targets.c — the one way to reach a registered database: parameters, the password just in time, the login. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"
#include "targets.h"

static const char *or_default(const char *v, const char *dflt)
{
	return v && *v ? v : dflt;
}

struct target_spec target_spec_of(const struct dbreg_conn *c)
{
	return (struct target_spec){
		.name = dbreg_conn_get(c, DBREG_F_CONNECTION_NAME),
		.host = dbreg_conn_get(c, DBREG_F_HOST),
		.port = dbreg_conn_get(c, DBREG_F_PORT),
		.dbname = dbreg_conn_get(c, DBREG_F_DATABASE_NAME),
		.user = dbreg_conn_get(c, DBREG_F_USERNAME),
		.sslmode = dbreg_conn_get(c, DBREG_F_SSL_MODE),
	};
}

void target_params(struct fanout_job *j, const struct target_spec *s, const char *appname, const char *options)
{
	fanout_job_add(j, "host", s->host);
	fanout_job_add(j, "port", or_default(s->port, "5432"));
	fanout_job_add(j, "dbname", s->dbname);
	fanout_job_add(j, "user", s->user);
	fanout_job_add(j, "sslmode", or_default(s->sslmode, "prefer"));
	fanout_job_add(j, "gssencmode", "disable");
	fanout_job_add(j, "fallback_application_name", appname);
	if (options)
		fanout_job_add(j, "options", options);
}

int target_keys(struct dbreg_ctx *ctx, bool *ret_have_keys, char *key_error, size_t size, struct dbreg_error *err)
{
	struct dbreg_error kerr;
	const unsigned char *fkey;

	dbreg_error_clear(&kerr);
	*ret_have_keys = dbreg_ctx_load_keys(ctx, &kerr) == 0;
	key_error[0] = '\0';
	if (!*ret_have_keys && dbreg_keys_configured()) {
		if (err)
			*err = kerr;
		return -1;
	}
	if (!*ret_have_keys) {
		const char *why = kerr.message;

		if (strncmp(why, "no encryption key: ", 19) == 0)
			why += 19;
		snprintf(key_error, size, "%s", why);
	}
	return dbreg_ctx_fernet_key(ctx, &fkey, err) < 0 ? -1 : 0;
}

int target_password(struct fanout_job *j, struct dbreg_ctx *ctx, const char *name, const char *stored,
                    const struct dbreg_binding *b, bool have_keys, const char *key_error,
                    struct dbreg_error *ret_err)
{
	const unsigned char *fkey = NULL;
	struct dbreg_error err;
	char shown[128];
	char *pw = NULL;
	size_t len;

	/* An empty stored value is no password, as the platform writes it. */
	if (!stored || !*stored)
		return 0;
	if (!have_keys && strncmp(stored, "dbreg:", 6) == 0) {
		snprintf(j->error, sizeof(j->error), "no key: %s", key_error);
		if (ret_err)
			dbreg_fail(ret_err, DBREG_ERR_CONFIG, "connection '%s': no encryption key: %s",
			           dbreg_printable(name, shown, sizeof(shown)), key_error);
		return -1;
	}
	dbreg_error_clear(&err);
	if (dbreg_ctx_fernet_key(ctx, &fkey, &err) < 0 ||
	    dbreg_stored_decrypt(have_keys ? dbreg_ctx_keyring(ctx) : NULL, fkey, b, stored, &pw, &err) < 0) {
		snprintf(j->error, sizeof(j->error), "connection '%s': %s", dbreg_printable(name, shown, sizeof(shown)),
		         err.message);
		if (ret_err)
			dbreg_fail(ret_err, err.kind, "%s", j->error);
		return -1;
	}
	len = strlen(pw);
	if (len >= sizeof(j->secret)) {
		dbreg_secret_free(pw);
		snprintf(j->error, sizeof(j->error), "connection '%s': the stored password is longer than any dbreg stores",
		         dbreg_printable(name, shown, sizeof(shown)));
		if (ret_err)
			dbreg_fail(ret_err, DBREG_ERR_FAILED, "%s", j->error);
		return -1;
	}
	memcpy(j->secret, pw, len + 1);
	dbreg_secret_free(pw);
	fanout_job_add(j, "password", j->secret);
	return 0;
}

int target_password_one(struct fanout_job *j, struct dbreg_ctx *ctx, const char *name, const char *stored,
                        const struct dbreg_binding *b, struct dbreg_error *err)
{
	char key_error[256];
	bool have_keys;

	if (target_keys(ctx, &have_keys, key_error, sizeof(key_error), err) < 0)
		return -1;
	return target_password(j, ctx, name, stored, b, have_keys, key_error, err);
}

/* ---- a target's answers ---- */

const char *target_answer(const PGresult *res, const char *column, bool *ret_null, char *why, size_t size)
{
	const char *m;
	int col;

	if (ret_null)
		*ret_null = false;
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		m = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
		snprintf(why, size, "%s", m ? m : res && *PQresultErrorMessage(res) ? PQresultErrorMessage(res) : "no result");
		return NULL;
	}
	if (PQntuples(res) != 1) {
		snprintf(why, size, "the server answered %d rows, not one", PQntuples(res));
		return NULL;
	}
	col = column ? PQfnumber(res, column) : 0;
	if (col < 0 || col >= PQnfields(res)) {
		snprintf(why, size, "the server's answer has no column %s", column ? column : "at all");
		return NULL;
	}
	if (PQgetisnull(res, 0, col)) {
		if (ret_null) {
			*ret_null = true;
			return "";
		}
		snprintf(why, size, "the server answered NULL for %s", column ? column : "the check");
		return NULL;
	}
	return PQgetvalue(res, 0, col);
}

bool target_count(const char *text, long *ret)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || end == text || *end || v < 0)
		return false;
	*ret = v;
	return true;
}

/* ---- registry rows, packed ---- */

struct target_rows {
	char *arena;                          /* the rows, one after another */
	size_t used, size;
	size_t *at;                           /* where each row starts in arena (4-aligned) */
	size_t n, cap;
	int ncols;                            /* 0 until the first result said */
	bool bad_shape;                       /* more than TARGET_MAX_COLUMNS, or a result of others */
	char *names[TARGET_MAX_COLUMNS];
};

/* A row: ncols offsets from its start (UINT32_MAX: NULL), then its values, each with its
 * NUL.  A PGresult spends 16 bytes of pointer and length on each value besides; this is
 * what makes 100,000 registry rows a few megabytes. */
static int rows_add(const PGresult *res, void *userdata)
{
	struct target_rows *r = userdata;

	if (r->ncols == 0 && PQnfields(res) > 0) {
		if (PQnfields(res) > TARGET_MAX_COLUMNS) {
			r->bad_shape = true;
			return 0;
		}
		for (int c = 0; c < PQnfields(res); c++)
			if (!(r->names[r->ncols++] = strdup(PQfname(res, c))))
				return -1;
	}
	if (r->bad_shape || PQnfields(res) != r->ncols) {
		r->bad_shape = true;
		return 0;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		size_t start = (r->used + 3) & ~(size_t)3, o = (size_t)r->ncols * sizeof(uint32_t), need = o;
		char *row;

		for (int c = 0; c < r->ncols; c++)
			need += PQgetisnull(res, i, c) ? 0 : (size_t)PQgetlength(res, i, c) + 1;
		if (need > UINT32_MAX)
			return -1;
		if (start + need > r->size) {
			size_t size = r->size ? r->size : 64 * 1024;
			char *grown;

			while (size < start + need)
				size *= 2;
			if (!(grown = realloc(r->arena, size)))
				return -1;
			r->arena = grown;
			r->size = size;
		}
		if (r->n == r->cap) {
			size_t cap = r->cap ? 2 * r->cap : 1024, *grown = realloc(r->at, cap * sizeof(*grown));

			if (!grown)
				return -1;
			r->at = grown;
			r->cap = cap;
		}
		row = r->arena + start;
		for (int c = 0; c < r->ncols; c++) {
			uint32_t off = UINT32_MAX;

			if (!PQgetisnull(res, i, c)) {
				size_t len = (size_t)PQgetlength(res, i, c);

				off = (uint32_t)o;
				memcpy(row + o, PQgetvalue(res, i, c), len);
				row[o + len] = '\0';
				o += len + 1;
			}
			memcpy(row + (size_t)c * sizeof(off), &off, sizeof(off));
		}
		r->at[r->n++] = start;
		r->used = start + o;
	}
	return 0;
}

void target_rows_free(struct target_rows *r)
{
	if (!r)
		return;
	for (int c = 0; c < r->ncols; c++)
		free(r->names[c]);
	free(r->arena);
	free(r->at);
	free(r);
}

int target_rows_load(struct dbreg_ctx *ctx, const struct dbreg_filter *filter, const char *ids_json,
                     struct target_rows **ret, struct dbreg_error *err)
{
	struct target_rows *r = calloc(1, sizeof(*r));

	if (!r)
		return dbreg_fail_oom(err);
	if (dbreg_registry_targets_each(ctx, filter, ids_json, rows_add, r, err) < 0) {
		target_rows_free(r);
		return -1;
	}
	if (r->bad_shape) {
		target_rows_free(r);
		return dbreg_fail(err, DBREG_ERR_INTERNAL, "the target rows came in an unexpected shape (more than %d"
		                  " columns, or not the same in every row)", TARGET_MAX_COLUMNS);
	}
	*ret = r;
	return 0;
}

size_t target_rows_count(const struct target_rows *r)
{
	return r ? r->n : 0;
}

static int rows_column(const struct target_rows *r, const char *name)
{
	for (int c = 0; c < r->ncols; c++)
		if (strcmp(r->names[c], name) == 0)
			return c;
	return -1;
}

/* The value of row's column col, or NULL for SQL NULL. */
static const char *rows_value(const struct target_rows *r, int row, int col)
{
	const char *base;
	uint32_t off;

	if (row < 0 || (size_t)row >= r->n || col < 0 || col >= r->ncols)
		return NULL;
	base = r->arena + r->at[row];
	memcpy(&off, base + (size_t)col * sizeof(off), sizeof(off));
	return off == UINT32_MAX ? NULL : base + off;
}

/* ---- registry rows as jobs ---- */

int target_run_init(struct target_run *t, struct dbreg_ctx *ctx, const struct target_rows *rows, int timeout_ms,
                    struct dbreg_error *err)
{
	struct {
		int *col;
		const char *name;
	} cols[] = {
		{ &t->c_id, "id" }, { &t->c_name, "connection_name" }, { &t->c_type, "connection_type" },
		{ &t->c_region, "region_id" }, { &t->c_host, "host" }, { &t->c_port, "port" },
		{ &t->c_database, "database_name" }, { &t->c_user, "username" }, { &t->c_ssl_mode, "ssl_mode" },
		{ &t->c_password, "encrypted_password" }, { &t->c_active, "is_active" },
		{ &t->c_pool_min, "pool_min_size" }, { &t->c_pool_max, "pool_max_size" },
		{ &t->c_pool_timeout, "pool_timeout_seconds" }, { &t->c_pool_recycle, "pool_recycle_seconds" },
	};
	bool have_keys;

	memset(t, 0, sizeof(*t));
	t->ctx = ctx;
	t->rows = rows;
	for (size_t i = 0; i < ELEMENTSOF(cols); i++) {
		*cols[i].col = rows_column(rows, cols[i].name);
		if (*cols[i].col < 0)
			return dbreg_fail(err, DBREG_ERR_INTERNAL, "the target rows have no column %s", cols[i].name);
	}
	t->c_pending = rows_column(rows, "pending_password");
	t->c_pooler = rows_column(rows, "pooler");
	t->c_pooler_db = rows_column(rows, "pooler_db");
	t->c_expected_role = rows_column(rows, "expected_role");
	if (target_keys(ctx, &have_keys, t->key_error, sizeof(t->key_error), err) < 0)
		return -1;
	t->have_keys = have_keys;
	/* The server ends a query that outlives the check; the loop ends everything else. */
	snprintf(t->options, sizeof(t->options), "-c statement_timeout=%d", timeout_ms);
	return 0;
}

const char *target_value(const struct target_run *t, int row, int col)
{
	const char *v = rows_value(t->rows, row, col);

	return v ? v : "";
}

bool target_isnull(const struct target_run *t, int row, int col)
{
	return rows_value(t->rows, row, col) == NULL;
}

const char *target_pooler(const struct target_run *t, int row)
{
	if (t->c_pooler < 0 || target_isnull(t, row, t->c_pooler) || !*target_value(t, row, t->c_pooler))
		return NULL;
	return target_value(t, row, t->c_pooler);
}

const char *target_pooler_db(const struct target_run *t, int row)
{
	if (t->c_pooler_db < 0 || target_isnull(t, row, t->c_pooler_db) || !*target_value(t, row, t->c_pooler_db))
		return "pgbouncer";
	return target_value(t, row, t->c_pooler_db);
}

const char *target_expected_role(const struct target_run *t, int row)
{
	if (t->c_expected_role < 0 || target_isnull(t, row, t->c_expected_role))
		return NULL;
	return target_value(t, row, t->c_expected_role);
}

void target_job_init_db(struct fanout_job *j, struct target_run *t, int row, const char *appname, const char *dbname)
{
	struct target_spec s = {
		.name = target_value(t, row, t->c_name),
		.host = target_value(t, row, t->c_host),
		.port = target_value(t, row, t->c_port),
		.dbname = dbname ? dbname : target_value(t, row, t->c_database),
		.user = target_value(t, row, t->c_user),
		.sslmode = target_value(t, row, t->c_ssl_mode),
	};

	j->userdata = (void *)(intptr_t)row;
	/* PgBouncer refuses the options startup parameter (1.18 and before, unless told to
	 * ignore it): a pooler's checks are bounded by the loop's deadline alone. */
	target_params(j, &s, appname, target_pooler(t, row) ? NULL : t->options);
}

void target_job_init(struct fanout_job *j, struct target_run *t, int row, const char *appname)
{
	target_job_init_db(j, t, row, appname, NULL);
}

/* fanout_opts.prepare: the password just before its connection; fanout wipes it after. */
static int target_prepare(struct fanout_job *j, void *userdata)
{
	struct target_run *t = userdata;
	int row = (int)(intptr_t)j->userdata;
	struct dbreg_binding b = {
		target_value(t, row, t->c_id), target_value(t, row, t->c_host), target_value(t, row, t->c_port),
		target_value(t, row, t->c_database), target_value(t, row, t->c_user), target_value(t, row, t->c_ssl_mode),
	};

	int col = t->pending_round ? t->c_pending : t->c_password;

	return target_password(j, t->ctx, target_value(t, row, t->c_name),
	                       col < 0 || target_isnull(t, row, col) ? NULL : target_value(t, row, col),
	                       &b, t->have_keys, t->key_error, NULL);
}

int target_fanout_source(struct target_run *t, const struct fanout_source *src, int max_jobs, int timeout_ms,
                         void (*progress)(size_t, size_t, double, void *), void *progress_userdata,
                         struct dbreg_error *err)
{
	struct fanout_opts fo = {
		.jobs = max_jobs > 0 ? max_jobs : 64,
		.threads = t->threads,
		.timeout_ms = timeout_ms,
		.cancel = dbreg_ctx_cancel_flag(t->ctx),
		.progress = progress,
		.progress_userdata = progress_userdata,
		.prepare = target_prepare,
		.userdata = t,
		.ret_wanted = &t->jobs_wanted,
		.ret_used = &t->jobs_used,
		.ret_fd_limit = &t->fd_limit,
	};
	char why[256] = "";

	if (fanout_run_source(src, &fo, why, sizeof(why)) < 0)
		return dbreg_fail(err, DBREG_ERR_INTERNAL, "the fan-out loop failed: %s", why);
	return 0;
}

int target_fanout(struct target_run *t, struct fanout_job *jobs, size_t n, int max_jobs, int timeout_ms,
                  void (*progress)(size_t, size_t, double, void *), void *progress_userdata, struct dbreg_error *err)
{
	struct fanout_array a;
	struct fanout_source src = fanout_array_source(&a, jobs, n);

	return target_fanout_source(t, &src, max_jobs, timeout_ms, progress, progress_userdata, err);
}

/* Logs in to the job's target within timeout_ms, through the fan-out loop (so a name that
 * does not resolve or a host that never answers is bounded like any check), and keeps the
 * connection. */
int target_connect(struct fanout_job *j, const char *name, int timeout_ms, PGconn **ret, struct dbreg_error *err)
{
	struct fanout_opts fo = { .jobs = 1, .timeout_ms = timeout_ms > 0 ? timeout_ms : 10000 };
	char why[256] = "", shown[128];

	j->keep_conn = true;
	if (fanout_run(j, 1, &fo, why, sizeof(why)) < 0) {
		sodium_memzero(j->secret, sizeof(j->secret));
		fanout_job_clear(j);
		return dbreg_fail(err, DBREG_ERR_INTERNAL, "the fan-out loop failed: %s", why);
	}
	if (j->outcome != FANOUT_OK || !j->conn) {
		dbreg_fail(err, DBREG_ERR_FAILED, "cannot log in to connection '%s': %s",
		           dbreg_printable(name, shown, sizeof(shown)), j->error);
		fanout_job_clear(j);
		return -1;
	}
	PQsetnonblocking(j->conn, 0);
	*ret = j->conn;
	j->conn = NULL;
	fanout_job_clear(j);
	return 0;
}

/* ---- one target, one query ---- */

static int set_password(struct fanout_job *j, void *userdata)
{
	const char *pw = userdata;

	if (!pw)
		return 0;
	if (strlen(pw) >= sizeof(j->secret)) {
		snprintf(j->error, sizeof(j->error), "the password is longer than any dbreg stores");
		return -1;
	}
	memcpy(j->secret, pw, strlen(pw) + 1);
	fanout_job_add(j, "password", j->secret);
	return 0;
}

int target_query_one(const struct target_spec *s, const char *password, int timeout_ms, const char *sql,
                     const char *param, PGresult **ret, struct dbreg_error *err)
{
	struct fanout_job j = { .nqueries = 1 };
	struct fanout_opts fo = {
		.jobs = 1,
		.timeout_ms = timeout_ms > 0 ? timeout_ms : 10000,
		.prepare = set_password,
		.userdata = (void *)password,
	};
	char where[600], h[200], d[100], u[100], why[256] = "";
	PGresult *res;
	int r = 0;

	snprintf(where, sizeof(where), "%s:%s/%s as %s", dbreg_printable(s->host, h, sizeof(h)),
	         or_default(s->port, "5432"), dbreg_printable(s->dbname, d, sizeof(d)),
	         dbreg_printable(s->user, u, sizeof(u)));
	target_params(&j, s, "dbreg", NULL);
	j.queries[0] = sql;
	j.query_params[0] = param;
	if (fanout_run(&j, 1, &fo, why, sizeof(why)) < 0) {
		fanout_job_clear(&j);
		return dbreg_fail(err, DBREG_ERR_INTERNAL, "the fan-out loop failed: %s", why);
	}
	res = j.results[0];
	if (j.outcome != FANOUT_OK && !j.logged_in) {
		r = dbreg_fail(err, DBREG_ERR_FAILED, "cannot log in to %s: %s", where, j.error);
	} else if (j.outcome != FANOUT_OK) {
		r = dbreg_fail(err, DBREG_ERR_FAILED, "the query on %s failed: %s", where, j.error);
	} else if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		r = dbreg_fail_result(err, res, "the query on the target failed");
		if (err)
			err->kind = DBREG_ERR_FAILED;
	} else if (PQntuples(res) < 1 || PQnfields(res) < 1) {
		r = dbreg_fail(err, DBREG_ERR_FAILED, "the query on %s returned no row", where);
	} else {
		j.results[0] = NULL;
		*ret = res;
	}
	fanout_job_clear(&j);
	return r;
}

/* ---- --test: register's options, or update's row with the new values ---- */

static int test_login(const struct target_spec *s, const char *password, int timeout_s, struct dbreg_error *err)
{
	PGresult *res = NULL;

	if (target_query_one(s, password, timeout_s * 1000, "SELECT 1", NULL, &res, err) < 0)
		return -1;
	PQclear(res);
	return 0;
}

_public_ int dbreg_spec_test_login(struct dbreg_spec *s, struct dbreg_ctx *ctx, int timeout_s, struct dbreg_error *err)
{
	struct target_spec t = {
		.host = dbreg_spec_value(s, DBREG_F_HOST),
		.port = dbreg_spec_value(s, DBREG_F_PORT),
		.dbname = dbreg_spec_value(s, DBREG_F_DATABASE_NAME),
		.user = dbreg_spec_value(s, DBREG_F_USERNAME),
		.sslmode = dbreg_spec_value(s, DBREG_F_SSL_MODE),
	};

	(void)ctx;
	return test_login(&t, dbreg_spec_password(s), timeout_s, err);
}

_public_ int dbreg_update_test_login(struct dbreg_ctx *ctx, const char *name, struct dbreg_spec *s, int timeout_s,
                                     struct dbreg_error *err)
{
	static const struct {
		enum dbreg_field f;
		const char *col;
	} cols[] = {
		{ DBREG_F_HOST, "host" }, { DBREG_F_PORT, "port" }, { DBREG_F_DATABASE_NAME, "database_name" },
		{ DBREG_F_USERNAME, "username" }, { DBREG_F_SSL_MODE, "ssl_mode" },
	};
	const char *v[ELEMENTSOF(cols)];
	const char *password = dbreg_spec_password(s);
	struct fanout_job j = { .nparams = 0 };
	struct target_spec t;
	PGresult *res;
	int pwcol, r;

	res = dbreg_registry_login_row(ctx, name, err);
	if (!res)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return dbreg_fail_unknown_connection(ctx, name, err);
	}
	pwcol = PQfnumber(res, "encrypted_password");
	for (size_t i = 0; i < ELEMENTSOF(cols); i++) {
		int c = PQfnumber(res, cols[i].col);

		v[i] = dbreg_spec_is_set(s, cols[i].f) ? dbreg_spec_value(s, cols[i].f)
		     : c >= 0 && !PQgetisnull(res, 0, c) ? PQgetvalue(res, 0, c) : NULL;
	}
	t = (struct target_spec){ .name = name, .host = v[0], .port = v[1], .dbname = v[2], .user = v[3], .sslmode = v[4] };
	if (!dbreg_spec_is_set(s, DBREG_F_HAS_PASSWORD) && pwcol >= 0 && !PQgetisnull(res, 0, pwcol) &&
	    *PQgetvalue(res, 0, pwcol)) {
		struct dbreg_binding b;

		if (dbreg_binding_of_row(res, 0, &b) < 0 || target_password_one(&j, ctx, name, PQgetvalue(res, 0, pwcol), &b, err) < 0) {
			PQclear(res);
			sodium_memzero(j.secret, sizeof(j.secret));
			return -1;
		}
		password = j.secret;
	}
	r = test_login(&t, password, timeout_s, err);
	sodium_memzero(j.secret, sizeof(j.secret));
	PQclear(res);
	return r;
}
