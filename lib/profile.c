/* profile.c — the registry's real shape, read from the catalog once per connection: dbreg's own
 * registry and the platform's (enum types, region ids, names unique over all rows) through one path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "migrations.h"

#define REGISTRY "admin.database_connections"

/* The columns of SPEC §1 every registry has, whatever their types. */
static const char *const spec_columns[] = {
	"id", "region_id", "connection_name", "connection_type", "host", "port", "database_name", "ssl_mode",
	"username", "encrypted_password", "pool_min_size", "pool_max_size", "pool_timeout_seconds",
	"pool_recycle_seconds", "pool_pre_ping", "is_active", "is_healthy", "last_health_check",
	"consecutive_failures", "max_consecutive_failures", "metadata", "tags", "created_at", "updated_at",
	"deleted_at",
};

_public_ int dbreg_schema_version(void)
{
	return dbreg_migrations[dbreg_migration_count - 1].version;
}

static char *dup_or_null(const PGresult *res, const char *column)
{
	int col = PQfnumber(res, column);

	return col < 0 || PQgetisnull(res, 0, col) ? NULL : strdup(PQgetvalue(res, 0, col));
}

static bool flag(const PGresult *res, const char *column)
{
	int col = PQfnumber(res, column);

	return col >= 0 && !PQgetisnull(res, 0, col) && PQgetvalue(res, 0, col)[0] == 't';
}

void dbreg_profile_clear(struct dbreg_profile *p)
{
	free(p->type_labels);
	free(p->type_name);
	free(p->region_table);
	free(p->missing_columns);
	memset(p, 0, sizeof(*p));
}

int dbreg_profile_read(PGconn *conn, struct dbreg_profile *p, struct dbreg_error *err)
{
	/* One query: whether the registry and dbreg's bookkeeping exist, and what
	 * the registry's columns are.  Identifiers come back quoted by the server. */
	static const char sql[] =
		"WITH reg AS (SELECT to_regclass('" REGISTRY "') AS oid),"
		" cols AS (SELECT a.attname, a.attnum, t.oid AS typid, t.typtype FROM pg_attribute a"
		"   JOIN pg_type t ON t.oid = a.atttypid, reg"
		"   WHERE a.attrelid = reg.oid AND a.attnum > 0 AND NOT a.attisdropped)"
		" SELECT (SELECT oid IS NOT NULL FROM reg) AS have_registry,"
		" to_regclass('admin.dbreg_schema_migrations') IS NOT NULL AS have_log,"
		" to_regclass('admin.tenants') IS NOT NULL AS have_tenants,"
		" to_regclass('admin.dbreg_settings') IS NOT NULL AS have_settings,"
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
		"   AS missing_columns";
	char list[1024];
	const char *params[1] = { list };
	bool have_settings;
	size_t o = 0;
	PGresult *res;

	memset(p, 0, sizeof(*p));
	o += (size_t)snprintf(list, sizeof(list), "{");
	for (size_t i = 0; i < ELEMENTSOF(spec_columns); i++)
		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", i ? "," : "", spec_columns[i]);
	snprintf(list + o, sizeof(list) - o, "}");
	res = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		dbreg_fail_result(err, res, "cannot read the registry's shape");
		PQclear(res);
		return -1;
	}
	p->have_registry = flag(res, "have_registry");
	p->have_log = flag(res, "have_log");
	p->have_tenants = flag(res, "have_tenants");
	p->type_is_enum = flag(res, "type_is_enum");
	p->names_unique_all = flag(res, "names_unique_all");
	p->type_labels = dup_or_null(res, "type_labels");
	p->type_name = dup_or_null(res, "type_name");
	p->region_table = dup_or_null(res, "region_table");
	p->missing_columns = dup_or_null(res, "missing_columns");
	have_settings = flag(res, "have_settings");
	PQclear(res);
	/* Where dbreg has not said, the platform's format: a registry dbreg did not create. */
	snprintf(p->password_format, sizeof(p->password_format), "%s", p->have_log ? "dbreg" : "fernet");
	if (have_settings) {
		res = PQexec(conn, "SELECT value FROM admin.dbreg_settings WHERE name = 'password_format'");
		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && PQfnumber(res, "value") == 0 &&
		    (strcmp(PQgetvalue(res, 0, 0), "dbreg") == 0 || strcmp(PQgetvalue(res, 0, 0), "fernet") == 0))
			snprintf(p->password_format, sizeof(p->password_format), "%s", PQgetvalue(res, 0, 0));
		PQclear(res);
	}
	if (p->have_log) {
		res = PQexec(conn, "SELECT coalesce(max(version), 0)::text AS version FROM admin.dbreg_schema_migrations");
		if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQfnumber(res, "version") != 0) {
			dbreg_fail_result(err, res, "cannot read the registry schema version");
			PQclear(res);
			dbreg_profile_clear(p);
			return -1;
		}
		p->version = atoi(PQgetvalue(res, 0, 0));
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
