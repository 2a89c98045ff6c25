/* tenant.c — tenant to schema resolution (SPEC §6); the naming rules themselves live in names.c. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"
#include "targets.h"

struct dbreg_resolution {
	enum dbreg_schema_context context;
	const char *schema;
	PGresult *tenant;                /* one row, or NULL outside the tenant context */
	struct dbreg_conn_list *conn;    /* found on demand */
};

/* The tenant row's columns (dbreg_registry_tenant), read by name. */
static const char *tenant_value(const PGresult *res, const char *column)
{
	return dbreg_result_value(res, 0, column);
}

static const char *const context_names[] = {
	[DBREG_CONTEXT_TENANT] = "tenant",
	[DBREG_CONTEXT_ADMIN] = "admin",
	[DBREG_CONTEXT_SHARED] = "shared",
	[DBREG_CONTEXT_TEMPLATE] = "template",
};

/* The fixed schemas of the contexts that need no tenant. */
static const char *const context_schemas[] = {
	[DBREG_CONTEXT_ADMIN] = "admin",
	[DBREG_CONTEXT_SHARED] = "shared",
	[DBREG_CONTEXT_TEMPLATE] = "tenant_template",
};

_public_ int dbreg_schema_context_parse(const char *text)
{
	for (size_t i = 0; i < ELEMENTSOF(context_names); i++)
		if (strcmp(text, context_names[i]) == 0)
			return (int)i;
	return -1;
}

_public_ const char *dbreg_schema_context_name(enum dbreg_schema_context c)
{
	return (unsigned)c < ELEMENTSOF(context_names) ? context_names[c] : NULL;
}

_public_ int dbreg_resolve_schema(struct dbreg_ctx *ctx, enum dbreg_schema_context context, const char *tenant,
                                  struct dbreg_resolution **ret, struct dbreg_error *err)
{
	struct dbreg_resolution *r;
	PGresult *res;
	const char *status;

	if ((unsigned)context >= ELEMENTSOF(context_names))
		return dbreg_fail(err, DBREG_ERR_USAGE, "unknown context");
	if (context == DBREG_CONTEXT_TENANT) {
		if (!tenant || !*tenant)
			return dbreg_fail(err, DBREG_ERR_USAGE, "a TENANT (id or slug) is required in the tenant context");
		if (!dbreg_is_canonical_uuid(tenant) && dbreg_check_slug_lookup(tenant, err) < 0)
			return -1;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return dbreg_fail_oom(err);
	r->context = context;
	if (context != DBREG_CONTEXT_TENANT) {
		r->schema = context_schemas[context];
		*ret = r;
		return 0;
	}
	res = dbreg_registry_tenant(ctx, tenant, err);
	if (!res) {
		free(r);
		return -1;
	}
	r->tenant = res;
	if (PQntuples(res) == 0) {
		dbreg_resolution_free(r);
		return dbreg_fail(err, DBREG_ERR_FAILED, "no tenant '%s'", tenant);
	}
	status = tenant_value(res, "status");
	if (!status)
		status = "without a status";
	if (tenant_value(res, "deleted") && tenant_value(res, "deleted")[0] == 't') {
		dbreg_fail(err, DBREG_ERR_FAILED, "tenant '%s' is deleted", tenant_value(res, "slug"));
		dbreg_resolution_free(r);
		return -1;
	}
	if (strcmp(status, "active") != 0) {
		dbreg_fail(err, DBREG_ERR_FAILED, "tenant '%s' is %s, not active", tenant_value(res, "slug"), status);
		dbreg_resolution_free(r);
		return -1;
	}
	r->schema = tenant_value(res, "schema_name");
	/* A registry dbreg did not create may lack the constraints: check anyway. */
	if (!r->schema || dbreg_check_stored_schema(r->schema, err) < 0) {
		if (!r->schema)
			dbreg_fail(err, DBREG_ERR_FAILED, "no schema name");
		if (err)
			err->kind = DBREG_ERR_FAILED;
		dbreg_error_prefix(err, "tenant '%s' has a stored schema name that breaks the rules: ",
		                   tenant_value(res, "slug"));
		dbreg_resolution_free(r);
		return -1;
	}
	*ret = r;
	return 0;
}

_public_ const char *dbreg_resolution_schema(const struct dbreg_resolution *r)
{
	return r->schema;
}

_public_ enum dbreg_schema_context dbreg_resolution_context(const struct dbreg_resolution *r)
{
	return r->context;
}

static const char *tenant_field(const struct dbreg_resolution *r, const char *column)
{
	return r->tenant ? tenant_value(r->tenant, column) : NULL;
}

_public_ const char *dbreg_resolution_tenant_id(const struct dbreg_resolution *r) { return tenant_field(r, "id"); }
_public_ const char *dbreg_resolution_tenant_slug(const struct dbreg_resolution *r) { return tenant_field(r, "slug"); }
_public_ const char *dbreg_resolution_tenant_name(const struct dbreg_resolution *r) { return tenant_field(r, "name"); }

_public_ int dbreg_resolution_find_connection(struct dbreg_ctx *ctx, struct dbreg_resolution *r,
                                              const char *default_name, struct dbreg_error *err)
{
	const char *own;

	if (r->conn)
		return 0;
	if (!r->tenant)
		return dbreg_fail(err, DBREG_ERR_USAGE, "only a tenant has a connection to find");
	own = tenant_value(r->tenant, "database_connection_id");
	return dbreg_registry_tenant_connection(ctx, own, default_name ? default_name : "shared-primary", &r->conn, err);
}

_public_ const struct dbreg_conn *dbreg_resolution_connection(const struct dbreg_resolution *r)
{
	return r->conn ? dbreg_conn_list_at(r->conn, 0) : NULL;
}

_public_ int dbreg_resolution_check(struct dbreg_ctx *ctx, struct dbreg_resolution *r, int timeout_s,
                                    struct dbreg_error *err)
{
	const struct dbreg_conn *c = dbreg_resolution_connection(r);
	struct fanout_job j = { .nparams = 0 };
	struct target_spec t;
	const char *name, *answer;
	char *stored = NULL, shown[128], why[300];
	PGresult *res = NULL;
	int rc;

	if (!c)
		return dbreg_fail(err, DBREG_ERR_USAGE, "no connection found to check the schema on");
	name = dbreg_conn_get(c, DBREG_F_CONNECTION_NAME);
	t = target_spec_of(c);
	if (dbreg_registry_stored_password(ctx, dbreg_conn_get(c, DBREG_F_ID), &stored, err) < 0)
		return -1;
	if (stored && *stored) {
		struct dbreg_binding b;

		dbreg_binding_of_conn(c, &b);
		if (target_password_one(&j, ctx, name, stored, &b, err) < 0) {
			free(stored);
			sodium_memzero(j.secret, sizeof(j.secret));
			return -1;
		}
	}
	rc = target_query_one(&t, stored && *stored ? j.secret : NULL, timeout_s * 1000,
	                      "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS present", r->schema, &res,
	                      err);
	sodium_memzero(j.secret, sizeof(j.secret));
	free(stored);
	if (rc < 0)
		return -1;
	/* The target's answer is untrusted: exactly a boolean, or a clear error. */
	answer = target_answer(res, "present", NULL, why, sizeof(why));
	if (!answer || (strcmp(answer, "t") != 0 && strcmp(answer, "f") != 0)) {
		PQclear(res);
		return dbreg_fail(err, DBREG_ERR_FAILED, "connection '%s' gave a malformed answer to the schema check: %s",
		                  dbreg_printable(name, shown, sizeof(shown)), answer ? "not a boolean" : why);
	}
	rc = answer[0] == 't';
	PQclear(res);
	if (!rc)
		return dbreg_fail(err, DBREG_ERR_FAILED, "schema %s does not exist on connection '%s' (database %s)",
		                  r->schema, dbreg_printable(name, shown, sizeof(shown)), dbreg_conn_get(c, DBREG_F_DATABASE_NAME));
	return 0;
}

_public_ int dbreg_resolution_sql_identifier(struct dbreg_ctx *ctx, const struct dbreg_resolution *r, char **ret,
                                             struct dbreg_error *err)
{
	char *q;

	/* The fixed schemas are plain identifiers; a stored one asks the server. */
	if (r->context != DBREG_CONTEXT_TENANT)
		q = strdup(r->schema);
	else
		q = dbreg_registry_quote_ident(ctx, r->schema, err);
	if (!q)
		return r->context != DBREG_CONTEXT_TENANT ? dbreg_fail_oom(err) : -1;
	*ret = q;
	return 0;
}

_public_ void dbreg_resolution_free(struct dbreg_resolution *r)
{
	if (!r)
		return;
	PQclear(r->tenant);
	dbreg_conn_list_free(r->conn);
	free(r);
}
