/* open.c — a registered database for a program: its libpq parameters, or a ready connection, by name or
 * by tenant, through the one target builder and the one decrypt (targets.c). */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"
#include "targets.h"

#define PARAMS_MAX 16

struct dbreg_target_params {
	const char *keys[PARAMS_MAX + 1];
	const char *vals[PARAMS_MAX + 1];
	char *copies[PARAMS_MAX];  /* what vals point at; the password's in locked memory */
	int n, password_at;
};

_public_ void dbreg_target_params_free(struct dbreg_target_params *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->n; i++) {
		if (i == p->password_at)
			sodium_free(p->copies[i]);
		else
			free(p->copies[i]);
	}
	free(p);
}

/* The registry's row for a live connection, its stored password (free() it; NULL for none)
 * and the password decrypted into j (j->secret, added to j's parameters). */
static int load_target(struct dbreg_ctx *ctx, const char *name, struct fanout_job *j, struct dbreg_conn_list **ret_row,
                       struct dbreg_error *err)
{
	struct dbreg_conn_list *l = NULL;
	const struct dbreg_conn *c;
	struct target_spec t;
	char *stored = NULL;
	int r;

	if (dbreg_ctx_connect(ctx, NULL, err) < 0 || dbreg_show(ctx, name, &l, err) < 0)
		return -1;
	c = dbreg_conn_list_at(l, 0);
	t = (struct target_spec){
		.name = name,
		.host = dbreg_conn_get(c, DBREG_F_HOST),
		.port = dbreg_conn_get(c, DBREG_F_PORT),
		.dbname = dbreg_conn_get(c, DBREG_F_DATABASE_NAME),
		.user = dbreg_conn_get(c, DBREG_F_USERNAME),
		.sslmode = dbreg_conn_get(c, DBREG_F_SSL_MODE),
	};
	target_params(j, &t, "dbreg", NULL);
	r = dbreg_registry_stored_password(ctx, dbreg_conn_get(c, DBREG_F_ID), &stored, err);
	if (r == 0 && stored && *stored)
		r = target_password_one(j, ctx, name, stored, err);
	free(stored);
	if (r < 0) {
		sodium_memzero(j->secret, sizeof(j->secret));
		dbreg_conn_list_free(l);
		return -1;
	}
	*ret_row = l;
	return 0;
}

_public_ int dbreg_target_params(struct dbreg_ctx *ctx, const char *name, struct dbreg_target_params **ret,
                                 struct dbreg_error *err)
{
	struct fanout_job j = { .nparams = 0 };
	struct dbreg_conn_list *row = NULL;
	struct dbreg_target_params *p;
	int r = 0;

	if (load_target(ctx, name, &j, &row, err) < 0)
		return -1;
	dbreg_conn_list_free(row);
	p = calloc(1, sizeof(*p));
	if (!p) {
		sodium_memzero(j.secret, sizeof(j.secret));
		return dbreg_fail_oom(err);
	}
	p->password_at = -1;
	/* The job's values point into the row and j; the caller's outlive both. */
	for (int i = 0; i < j.nparams && i < PARAMS_MAX && r == 0; i++) {
		bool secret = strcmp(j.keys[i], "password") == 0;
		size_t len = strlen(j.vals[i]);
		char *copy = secret ? sodium_malloc(len + 1) : malloc(len + 1);

		if (!copy) {
			r = dbreg_fail_oom(err);
			break;
		}
		memcpy(copy, j.vals[i], len + 1);
		if (secret)
			p->password_at = p->n;
		p->keys[p->n] = j.keys[i];  /* static strings of target_params */
		p->copies[p->n] = copy;
		p->vals[p->n] = copy;
		p->n++;
	}
	sodium_memzero(j.secret, sizeof(j.secret));
	if (r < 0) {
		dbreg_target_params_free(p);
		return -1;
	}
	*ret = p;
	return 0;
}

_public_ const char *const *dbreg_target_params_keywords(const struct dbreg_target_params *p)
{
	return p->keys;
}

_public_ const char *const *dbreg_target_params_values(const struct dbreg_target_params *p)
{
	return p->vals;
}

_public_ const char *dbreg_target_params_get(const struct dbreg_target_params *p, const char *keyword)
{
	for (int i = 0; i < p->n; i++)
		if (strcmp(p->keys[i], keyword) == 0)
			return p->vals[i];
	return NULL;
}

/* Logs in to the job's target within timeout_ms, through the fan-out loop (so a name that
 * does not resolve or a host that never answers is bounded like any check), and keeps the
 * connection. */
static int connect_job(struct fanout_job *j, const char *name, int timeout_ms, PGconn **ret, struct dbreg_error *err)
{
	struct fanout_opts fo = { .jobs = 1, .timeout_ms = timeout_ms > 0 ? timeout_ms : 10000 };
	char why[256] = "", shown[128];

	j->keep_conn = true;
	if (fanout_run(j, 1, &fo, why, sizeof(why)) < 0) {
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

_public_ int dbreg_open(struct dbreg_ctx *ctx, const char *name, int timeout_ms, struct pg_conn **ret_conn,
                        struct dbreg_error *err)
{
	struct fanout_job j = { .nparams = 0 };
	struct dbreg_conn_list *row = NULL;
	int r;

	if (load_target(ctx, name, &j, &row, err) < 0)
		return -1;
	r = connect_job(&j, name, timeout_ms, ret_conn, err);
	dbreg_conn_list_free(row);
	return r;
}

_public_ int dbreg_open_tenant(struct dbreg_ctx *ctx, const char *tenant, int timeout_ms, struct pg_conn **ret_conn,
                               char **ret_schema, struct dbreg_error *err)
{
	struct dbreg_resolution *res = NULL;
	char *schema = NULL, *ident = NULL;
	PGconn *conn = NULL;
	PGresult *set;
	int r = -1;

	if (dbreg_ctx_connect(ctx, NULL, err) < 0 ||
	    dbreg_resolve_schema(ctx, DBREG_CONTEXT_TENANT, tenant, &res, err) < 0)
		return -1;
	if (dbreg_resolution_find_connection(ctx, res, NULL, err) < 0 ||
	    dbreg_resolution_sql_identifier(ctx, res, &ident, err) < 0)
		goto out;
	if (!(schema = strdup(dbreg_resolution_schema(res)))) {
		dbreg_fail_oom(err);
		goto out;
	}
	if (dbreg_open(ctx, dbreg_conn_get(dbreg_resolution_connection(res), DBREG_F_CONNECTION_NAME), timeout_ms,
	               &conn, err) < 0)
		goto out;
	{
		/* The identifier was quoted by the registry's server; set_config takes it as a value. */
		char value[200];
		const char *params[1] = { value };

		snprintf(value, sizeof(value), "%s, public", ident);
		set = PQexecParams(conn, "SELECT set_config('search_path', $1, false)", 1, NULL, params, NULL, NULL, 0);
	}
	if (PQresultStatus(set) != PGRES_TUPLES_OK) {
		dbreg_fail_result(err, set, "cannot set the tenant's search_path");
		if (err)
			err->kind = DBREG_ERR_FAILED;
		PQclear(set);
		PQfinish(conn);
		goto out;
	}
	PQclear(set);
	*ret_conn = conn;
	if (ret_schema) {
		*ret_schema = schema;
		schema = NULL;
	}
	r = 0;
out:
	free(schema);
	free(ident);
	dbreg_resolution_free(res);
	return r;
}
