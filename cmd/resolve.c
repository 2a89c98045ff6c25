/* resolve.c — dbreg resolve-schema: tenant to schema name and connection, with strict validation. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "dbreg-cmd.h"

static const char resolve_options[] =
	"  --context CONTEXT          tenant (default), admin, shared or template\n"
	"  --check                    confirm the schema exists on the tenant's database\n"
	"  --default-connection NAME  the SHARED connection of tenants without their own\n"
	"                             (default shared-primary)\n"
	"  --validate NAME            check a schema name against the naming rules\n"
	"  -o, --format FMT           text (default), json or sql\n"
	OUT_JSON_HELP
	"  -h, --help                 show this help\n";

enum { R_SCHEMA, R_CONTEXT, R_TENANT, R_CONNECTION, R_SQL, R__COUNT };
static const struct out_column resolution_columns[R__COUNT] = {
	[R_SCHEMA] = { .key = "schema", .flags = OUT_C_TEXT, .only = OUT_TEXT | OUT_JSON },
	[R_CONTEXT] = { .key = "context" },
	[R_TENANT] = { .key = "tenant", .kind = OUT_K_JSON },
	[R_CONNECTION] = { .key = "connection", .kind = OUT_K_JSON },
	[R_SQL] = { .flags = OUT_C_TEXT, .only = OUT_SQL },
};

static json_t *tenant_json(const struct dbreg_resolution *r)
{
	if (!dbreg_resolution_tenant_id(r))
		return json_null();
	return json_pack("{s:s, s:s, s:o}", "id", dbreg_resolution_tenant_id(r), "slug",
	                 dbreg_resolution_tenant_slug(r), "name", out_json_text(dbreg_resolution_tenant_name(r)));
}

enum { ARG_CONTEXT = 0x100, ARG_CHECK, ARG_DEFAULT_CONNECTION, ARG_VALIDATE };
static const struct option resolve_long_options[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "format", required_argument, NULL, 'o' },
	OUT_JSON_OPTIONS,
	{ "context", required_argument, NULL, ARG_CONTEXT },
	{ "check", no_argument, NULL, ARG_CHECK },
	{ "default-connection", required_argument, NULL, ARG_DEFAULT_CONNECTION },
	{ "validate", required_argument, NULL, ARG_VALIDATE },
	{},
};

static int run_resolve_schema(struct dbreg_ctx *ctx, int argc, char **argv)
{
	enum dbreg_schema_context context = DBREG_CONTEXT_TENANT;
	const char *default_conn = "shared-primary", *validate = NULL, *tenant = NULL;
	enum out_format fmt = OUT_TEXT;
	struct dbreg_resolution *r = NULL;
	struct dbreg_error err;
	bool check = false;
	char *ident = NULL;
	int c, rc = EXIT_OK;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":ho:", resolve_long_options, NULL)) != -1) {
		switch (c) {
		case 'h':
			verb_help(&verb_resolve_schema, resolve_options);
			return EXIT_OK;
		case 'o':
			if (verb_format(&verb_resolve_schema, optarg, &fmt) < 0)
				return EXIT_USAGE;
			break;
		case ARG_CONTEXT:
			c = dbreg_schema_context_parse(optarg);
			if (c < 0)
				return usage_error("resolve-schema", "--context: '%s' is not admin, tenant, shared or template",
				                   optarg);
			context = (enum dbreg_schema_context)c;
			break;
		case ARG_CHECK: check = true; break;
		case ARG_DEFAULT_CONNECTION: default_conn = optarg; break;
		case ARG_VALIDATE: validate = optarg; break;
		default:
			if (out_option(c))
				break;
			return option_error("resolve-schema", c, argv);
		}
	}
	if (verb_begin(&verb_resolve_schema, ctx, argc, argv))
		return EXIT_USAGE;
	if (optind < argc)
		tenant = argv[optind];
	dbreg_error_clear(&err);

	if (validate) {
		/* The rules alone: no registry, no connection. */
		if (tenant || check)
			return usage_error("resolve-schema", "--validate takes a schema name and nothing else");
		if (dbreg_check_schema_name(validate, &err) < 0) {
			log_error("%s", err.message);
			return EXIT_NEGATIVE;
		}
		out_line("%s: valid schema name", validate);
		return EXIT_OK;
	}
	if (context == DBREG_CONTEXT_TENANT && !tenant)
		return usage_error("resolve-schema", "a TENANT (id or slug) is required in the tenant context");
	if (context != DBREG_CONTEXT_TENANT && (tenant || check))
		return usage_error("resolve-schema", "--context %s takes no TENANT and no --check",
		                   dbreg_schema_context_name(context));
	if (dbreg_check_connection_name(default_conn, &err) < 0)
		return usage_error("resolve-schema", "--default-connection: %s", err.message);
	if (context == DBREG_CONTEXT_TENANT) {
		if (!dbreg_is_canonical_uuid(tenant) && dbreg_check_slug_lookup(tenant, &err) < 0)
			return usage_error("resolve-schema", "%s", err.message);
		rc = connect_registry(ctx);
		if (rc)
			return rc;
	}
	if (dbreg_resolve_schema(ctx, context, tenant, &r, &err) < 0)
		return fail(&err);
	if (context == DBREG_CONTEXT_TENANT && (fmt == OUT_JSON || check) &&
	    dbreg_resolution_find_connection(ctx, r, default_conn, &err) < 0) {
		rc = fail(&err);
		goto out;
	}
	if (check && dbreg_resolution_check(ctx, r, 10, &err) < 0) {
		rc = fail(&err);
		goto out;
	}
	if (fmt == OUT_SQL && dbreg_resolution_sql_identifier(ctx, r, &ident, &err) < 0) {
		rc = fail(&err);
		goto out;
	}
	{
		const struct dbreg_conn *conn = dbreg_resolution_connection(r);
		json_t *t = tenant_json(r), *cj = conn ? out_conn_json(conn) : json_null();
		char *tenant_text = json_dumps(t, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
		char *conn_text = json_dumps(cj, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER), *sql = NULL;
		const char *v[R__COUNT] = { dbreg_resolution_schema(r), dbreg_schema_context_name(context) };
		struct out_doc *d = out_doc_new(stdout, fmt, OUT_DOC_SINGLE);

		if (ident && asprintf(&sql, "SET search_path TO %s, public;", ident) < 0)
			sql = NULL;
		v[R_TENANT] = tenant_text;
		v[R_CONNECTION] = conn_text;
		v[R_SQL] = sql;
		out_doc_section(d, NULL, resolution_columns, R__COUNT);
		out_doc_row(d, v, NULL, NULL);
		out_doc_end(d);
		json_decref(t);
		json_decref(cj);
		free(tenant_text);
		free(conn_text);
		free(sql);
		free(ident);
	}
out:
	dbreg_resolution_free(r);
	return rc;
}

const struct verb verb_resolve_schema = {
	.name = "resolve-schema",
	.run = run_resolve_schema,
	.summary = "resolve a tenant (id or slug) to its schema and connection",
	.usage = "[TENANT] [--context admin|tenant|shared|template] [--check] [--default-connection NAME]\n"
	         "       [-o text|json|sql]\n"
	         "       dbreg resolve-schema --validate NAME",
	.options = resolve_long_options,
	.min_args = 0, .max_args = 1,
	.formats = OUT_TEXT | OUT_JSON | OUT_SQL,
	.registry = VERB_REGISTRY_SELF,  /* not for --validate, nor for a context without a tenant */
};
