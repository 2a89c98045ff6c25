/* profile.c — the registry's real shape, read from the catalog once per connection: dbreg's own
 * registry and the platform's (enum types, region ids, names unique over all rows) through one path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "migrations.h"

#define REGISTRY "admin.database_connections"

/* The columns of SPEC §1 every registry has, and the kinds of type dbreg can read each as
 * (the kind of a column's type is worked out in SQL, below). */
static const struct {
	const char *name, *kinds, *describe;
} spec_columns[] = {
	{ "id", "uuid text", "a uuid" },
	{ "region_id", "text uuid", "a text code or a uuid" },
	{ "connection_name", "text", "text" },
	{ "connection_type", "text enum", "text or an enum" },
	{ "host", "text", "text" },
	{ "port", "integer", "an integer" },
	{ "database_name", "text", "text" },
	{ "ssl_mode", "text enum", "text or an enum" },
	{ "username", "text", "text" },
	{ "encrypted_password", "text", "text" },
	{ "pool_min_size", "integer", "an integer" },
	{ "pool_max_size", "integer", "an integer" },
	{ "pool_timeout_seconds", "integer", "an integer" },
	{ "pool_recycle_seconds", "integer", "an integer" },
	{ "pool_pre_ping", "boolean", "boolean" },
	{ "is_active", "boolean", "boolean" },
	{ "is_healthy", "boolean", "boolean" },
	{ "last_health_check", "timestamp", "a timestamp" },
	{ "consecutive_failures", "integer", "an integer" },
	{ "max_consecutive_failures", "integer", "an integer" },
	{ "metadata", "json", "jsonb or json" },
	{ "tags", "text[]", "a text array" },
	{ "created_at", "timestamp", "a timestamp" },
	{ "updated_at", "timestamp", "a timestamp" },
	{ "deleted_at", "timestamp", "a timestamp" },
};

_public_ int dbreg_schema_version(void)
{
	return dbreg_migrations[dbreg_migration_count - 1].version;
}

static char *dup_or_null(const PGresult *res, const char *column)
{
	const char *v = dbreg_result_value(res, 0, column);

	return v ? strdup(v) : NULL;
}

static bool flag(const PGresult *res, const char *column)
{
	const char *v = dbreg_result_value(res, 0, column);

	return v && v[0] == 't';
}

void dbreg_profile_clear(struct dbreg_profile *p)
{
	free(p->type_labels);
	free(p->type_name);
	free(p->region_table);
	free(p->missing_columns);
	free(p->type_problems);
	memset(p, 0, sizeof(*p));
}

/* "port text\nis_active integer" from the catalog into the profile's messages, one a line:
 * "column port is text, not an integer". */
static int describe_types(struct dbreg_profile *p, const char *lines)
{
	size_t size = strlen(lines) * 2 + 64 * ELEMENTSOF(spec_columns), o = 0;
	const char *line = lines;

	p->type_problems = malloc(size);
	if (!p->type_problems)
		return -1;
	p->type_problems[0] = '\0';
	while (*line) {
		size_t n = strcspn(line, "\n"), name = strcspn(line, " ");
		const char *want = "?";

		for (size_t i = 0; i < ELEMENTSOF(spec_columns); i++)
			if (strlen(spec_columns[i].name) == name && strncmp(line, spec_columns[i].name, name) == 0)
				want = spec_columns[i].describe;
		if (name < n)
			o += (size_t)snprintf(p->type_problems + o, size - o, "%scolumn %.*s is %.*s, not %s", o ? "\n" : "",
			                      (int)name, line, (int)(n - name - 1), line + name + 1, want);
		line += n + (line[n] == '\n');
	}
	return 0;
}

int dbreg_profile_read(PGconn *conn, struct dbreg_profile *p, struct dbreg_error *err)
{
	/* One query: whether the registry and dbreg's bookkeeping exist, and what
	 * the registry's columns are.  Identifiers come back quoted by the server. */
	static const char sql[] =
		"WITH reg AS (SELECT to_regclass('" REGISTRY "') AS oid),"
		" cols AS (SELECT a.attname, a.attnum, t.oid AS typid, t.typtype,"
		"   CASE WHEN t.typtype = 'e' THEN 'enum'"
		"     WHEN t.oid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype) THEN 'integer'"
		"     WHEN t.oid = 'uuid'::regtype THEN 'uuid' WHEN t.oid = 'bool'::regtype THEN 'boolean'"
		"     WHEN t.oid IN ('timestamptz'::regtype, 'timestamp'::regtype) THEN 'timestamp'"
		"     WHEN t.oid IN ('jsonb'::regtype, 'json'::regtype) THEN 'json'"
		"     WHEN t.typcategory = 'S' THEN 'text'"
		"     WHEN t.typcategory = 'A' AND (SELECT e.typcategory FROM pg_type e WHERE e.oid = t.typelem) = 'S'"
		"       THEN 'text[]'"
		"     ELSE 'other' END AS kind"
		"   FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid, reg"
		"   WHERE a.attrelid = reg.oid AND a.attnum > 0 AND NOT a.attisdropped)"
		" SELECT (SELECT oid IS NOT NULL FROM reg) AS have_registry,"
		" to_regclass('admin.dbreg_schema_migrations') IS NOT NULL AS have_log,"
		" to_regclass('admin.tenants') IS NOT NULL AS have_tenants,"
		" to_regclass('admin.dbreg_settings') IS NOT NULL AS have_settings,"
		" to_regclass('admin.dbreg_pending_rotations') IS NOT NULL AS have_pending,"
		" to_regclass('admin.dbreg_health_history') IS NOT NULL AS have_history,"
		" (SELECT format_type(typid, NULL) FROM cols WHERE attname = 'connection_type') AS type_name,"
		" (SELECT typtype = 'e' FROM cols WHERE attname = 'connection_type') AS type_is_enum,"
		" (SELECT string_agg(e.enumlabel, ', ' ORDER BY e.enumsortorder) FROM pg_enum e, cols"
		"   WHERE cols.attname = 'connection_type' AND e.enumtypid = cols.typid) AS type_labels,"
		" (SELECT format('%I.%I', n.nspname, c.relname) FROM pg_constraint k"
		"   JOIN pg_class c ON c.oid = k.confrelid JOIN pg_namespace n ON n.oid = c.relnamespace, reg, cols"
		"   WHERE k.conrelid = reg.oid AND k.contype = 'f' AND cols.attname = 'region_id'"
		"     AND k.conkey = ARRAY[cols.attnum]"
		"     AND EXISTS (SELECT 1 FROM pg_attribute ca WHERE ca.attrelid = c.oid AND ca.attname = 'code'"
		"                 AND NOT ca.attisdropped)"
		"   LIMIT 1) AS region_table,"
		" EXISTS (SELECT 1 FROM pg_index i, reg, cols WHERE i.indrelid = reg.oid AND i.indisunique"
		"   AND i.indpred IS NULL AND i.indnkeyatts = 1 AND i.indkey[0] = cols.attnum"
		"   AND cols.attname = 'connection_name') AS names_unique_all,"
		" (SELECT string_agg(s, ', ' ORDER BY o) FROM unnest($1::text[]) WITH ORDINALITY AS u(s, o)"
		"   WHERE (SELECT oid FROM reg) IS NOT NULL AND NOT EXISTS (SELECT 1 FROM cols WHERE attname = s))"
		"   AS missing_columns,"
		" (SELECT string_agg(c.attname || ' ' || format_type(c.typid, NULL), E'\\n' ORDER BY u.o)"
		"   FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(s, kinds, o) JOIN cols c ON c.attname = u.s"
		"   WHERE c.kind <> ALL (string_to_array(u.kinds, ' '))) AS bad_types";
	char list[1024], kinds[1024];
	const char *params[2] = { list, kinds };
	bool have_settings;
	size_t o = 0, k = 0;
	PGresult *res;

	memset(p, 0, sizeof(*p));
	o += (size_t)snprintf(list, sizeof(list), "{");
	k += (size_t)snprintf(kinds, sizeof(kinds), "{");
	for (size_t i = 0; i < ELEMENTSOF(spec_columns); i++) {
		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", i ? "," : "", spec_columns[i].name);
		k += (size_t)snprintf(kinds + k, sizeof(kinds) - k, "%s\"%s\"", i ? "," : "", spec_columns[i].kinds);
	}
	snprintf(list + o, sizeof(list) - o, "}");
	snprintf(kinds + k, sizeof(kinds) - k, "}");
	res = PQexecParams(conn, sql, 2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		dbreg_fail_result(err, res, "cannot read the registry's shape");
		PQclear(res);
		return -1;
	}
	p->have_registry = flag(res, "have_registry");
	p->have_log = flag(res, "have_log");
	p->have_tenants = flag(res, "have_tenants");
	p->have_pending = flag(res, "have_pending");
	p->have_history = flag(res, "have_history");
	p->type_is_enum = flag(res, "type_is_enum");
	p->names_unique_all = flag(res, "names_unique_all");
	p->type_labels = dup_or_null(res, "type_labels");
	p->type_name = dup_or_null(res, "type_name");
	p->region_table = dup_or_null(res, "region_table");
	p->missing_columns = dup_or_null(res, "missing_columns");
	have_settings = flag(res, "have_settings");
	if (dbreg_result_value(res, 0, "bad_types") && describe_types(p, dbreg_result_value(res, 0, "bad_types")) < 0) {
		PQclear(res);
		dbreg_profile_clear(p);
		return dbreg_fail_oom(err);
	}
	PQclear(res);
	/* Where dbreg has not said, the platform's format: a registry dbreg did not create. */
	snprintf(p->password_format, sizeof(p->password_format), "%s", p->have_log ? "dbreg" : "fernet");
	if (have_settings) {
		res = PQexec(conn, "SELECT value FROM admin.dbreg_settings WHERE name = 'password_format'");
		const char *v = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 ?
		                dbreg_result_value(res, 0, "value") : NULL;

		if (v && (strcmp(v, "dbreg") == 0 || strcmp(v, "fernet") == 0))
			snprintf(p->password_format, sizeof(p->password_format), "%s", v);
		PQclear(res);
	}
	if (p->have_log) {
		res = PQexec(conn, "SELECT coalesce(max(version), 0)::text AS version FROM admin.dbreg_schema_migrations");
		if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || !dbreg_result_value(res, 0, "version")) {
			dbreg_fail_result(err, res, "cannot read the registry schema version");
			PQclear(res);
			dbreg_profile_clear(p);
			return -1;
		}
		p->version = atoi(dbreg_result_value(res, 0, "version"));
		PQclear(res);
	}
	return 0;
}

int dbreg_profile_check(const struct dbreg_profile *p, const char *dbname, struct dbreg_error *err)
{
	if (!p->have_registry)
		return dbreg_fail(err, DBREG_ERR_CONFIG, "database \"%s\" has no dbreg registry schema; run 'dbreg init'",
		                  dbname);
	if (p->missing_columns)
		return dbreg_fail(err, DBREG_ERR_CONFIG,
		                  "admin.database_connections in database \"%s\" lacks the registry's columns %s",
		                  dbname, p->missing_columns);
	if (p->type_problems) {
		char first[256];

		/* The first is enough to act on; validate-config lists them all. */
		snprintf(first, sizeof(first), "%.*s", (int)strcspn(p->type_problems, "\n"), p->type_problems);
		return dbreg_fail(err, DBREG_ERR_CONFIG,
		                  "admin.database_connections in database \"%s\" has a column dbreg cannot read: %s%s",
		                  dbname, first, strchr(p->type_problems, '\n') ? " (and more: see dbreg validate-config)" : "");
	}
	/* A registry of dbreg's own, older than this dbreg: upgrade it first.  One
	 * without dbreg's bookkeeping (the platform's) is read as it is. */
	if (p->have_log && p->version < dbreg_schema_version())
		return dbreg_fail(err, DBREG_ERR_CONFIG,
		                  "the registry schema is at version %d; this dbreg needs version %d: run 'dbreg init'",
		                  p->version, dbreg_schema_version());
	return 0;
}

int dbreg_profile_writable(const struct dbreg_profile *p, struct dbreg_error *err)
{
	if (!p->have_log)
		return dbreg_fail(err, DBREG_ERR_CONFIG,
		                  "this registry was not created or adopted by dbreg; run 'dbreg init' before writing");
	if (p->version > dbreg_schema_version())
		return dbreg_fail(err, DBREG_ERR_CONFIG,
		                  "the registry schema is at version %d, newer than this dbreg knows (%d); upgrade dbreg before writing",
		                  p->version, dbreg_schema_version());
	return 0;
}

/* What init found, for its report: "connection_type enum admin.connection_type (primary, ...),
 * region_id → admin.regions.code, names unique over all rows". */
void dbreg_profile_describe(const struct dbreg_profile *p, char *buf, size_t size)
{
	size_t o = 0;

	if (p->type_is_enum)
		o += (size_t)snprintf(buf + o, size - o, "connection_type enum %s (%s)", p->type_name ? p->type_name : "?",
		                      p->type_labels ? p->type_labels : "");
	else
		o += (size_t)snprintf(buf + o, size - o, "connection_type %s", p->type_name ? p->type_name : "text");
	if (o < size && p->region_table)
		o += (size_t)snprintf(buf + o, size - o, ", region_id \xe2\x86\x92 %s.code", p->region_table);
	if (o < size && p->names_unique_all)
		snprintf(buf + o, size - o, ", names unique over all rows");
}
