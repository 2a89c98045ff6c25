/* registry.c — every statement on admin.* and the migrations: the library's SQL lives here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "internal.h"
#include "migrations.h"

#define REGISTRY "admin.database_connections"
/* pg_advisory_xact_lock key for init: "dbreg" in ASCII. */
#define INIT_LOCK "111542261362791"
/* One connection's rotation lock, two-key form (its own space beside the one-key
 * locks): ROW_LOCK_CLASS, hashtext(the id's text). */
#define ROW_LOCK_CLASS "431149"
/* rotate-key's, for its transaction ("dbrot" in ASCII); rotate-password's pending records
 * are written under it too. */
#define KEY_ROTATION_LOCK "431148396404"
/* A row's name, id and the target its password is bound to (d: the registry). */
#define TARGET_COLUMNS \
	"d.id::text AS id, d.connection_name::text AS connection_name, d.host::text AS host, d.port::text AS port," \
	" d.database_name::text AS database_name, d.username::text AS username, d.ssl_mode::text AS ssl_mode"

static int check_conn_result(PGresult *res, ExecStatusType expect, const char *what, struct dbreg_error *err)
{
	if (PQresultStatus(res) == expect)
		return 0;
	dbreg_fail_result(err, res, what);
	return -1;
}

/* ---- init ---- */
static int run(PGconn *conn, const char *sql, struct dbreg_error *err, const char *what)
{
	PGresult *res = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(res);
	int r = 0;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		r = dbreg_fail_result(err, res, what);
	PQclear(res);
	return r;
}

static int begin(struct dbreg_ctx *ctx, struct dbreg_error *err)
{
	return run(dbreg_ctx_conn(ctx), "BEGIN", err, "cannot start a transaction");
}

/* Ends a transaction that failed (the error is already set): -1. */
static int rollback(struct dbreg_ctx *ctx)
{
	dbreg_registry_end(ctx, false, NULL);
	return -1;
}

/* dbreg's own bookkeeping beside an existing registry: every migration counted as
 * done (the registry is already there), passwords kept in the platform's Fernet,
 * and not one existing object touched.  Says what it found in the context. */
static int adopt(struct dbreg_ctx *ctx, PGconn *conn, const struct dbreg_profile *p, struct dbreg_error *err)
{
	char found[1200], counts[256] = "";
	PGresult *res;

	if (p->missing_columns)
		return dbreg_fail(err, DBREG_ERR_CONFIG, "admin.database_connections lacks the registry's columns %s; not adopted",
		                  p->missing_columns);
	if (run(conn, "CREATE TABLE admin.dbreg_schema_migrations ("
	              " version integer PRIMARY KEY, description text NOT NULL,"
	              " applied_at timestamptz NOT NULL DEFAULT now())",
	        err, "cannot create the migrations table") < 0 ||
	    run(conn, "CREATE TABLE admin.dbreg_settings (name text PRIMARY KEY, value text NOT NULL)", err,
	        "cannot create the settings table") < 0 ||
	    run(conn, "INSERT INTO admin.dbreg_settings (name, value) VALUES ('password_format', 'fernet')", err,
	        "cannot record the password format") < 0)
		return -1;
	for (int i = 0; i < dbreg_migration_count; i++) {
		char v[16], d[160];
		const char *params[2] = { v, d };

		snprintf(v, sizeof(v), "%d", dbreg_migrations[i].version);
		snprintf(d, sizeof(d), "%s%s", dbreg_migrations[i].description,
		         dbreg_migrations[i].adopted_too ? "" : " (adopted)");
		if (dbreg_migrations[i].adopted_too &&
		    run(conn, dbreg_migrations[i].sql, err, "cannot create dbreg's own tables") < 0)
			return -1;
		res = PQexecParams(conn, "INSERT INTO admin.dbreg_schema_migrations (version, description) VALUES ($1, $2)",
		                   2, NULL, params, NULL, NULL, 0);
		if (check_conn_result(res, PGRES_COMMAND_OK, "cannot record the adoption", err) < 0) {
			PQclear(res);
			return -1;
		}
		PQclear(res);
	}
	/* The stored passwords, by format, in rows (live and deleted). */
	res = PQexec(conn,
	             "SELECT coalesce(string_agg(n || ' ' || f, ', ' ORDER BY f), 'none') AS counts FROM ("
	             " SELECT count(*)::text AS n, CASE WHEN encrypted_password LIKE 'dbreg:v1:%' THEN 'dbreg'"
	             "   WHEN encrypted_password LIKE 'gAAAAA%' THEN 'fernet' ELSE 'unknown' END AS f"
	             " FROM " REGISTRY " WHERE coalesce(encrypted_password, '') <> '' GROUP BY 2) AS byformat");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && dbreg_result_value(res, 0, "counts"))
		snprintf(counts, sizeof(counts), "%s", dbreg_result_value(res, 0, "counts"));
	PQclear(res);
	if (run(conn, "COMMIT", err, "cannot commit the adoption") < 0)
		return -1;
	dbreg_profile_describe(p, found, sizeof(found));
	dbreg_ctx_set_init_report(ctx, "adopted existing registry: %s, passwords: %s", found, counts);
	dbreg_ctx_forget_profile(ctx);
	return 0;
}

_public_ int dbreg_init(struct dbreg_ctx *ctx, int *ret_applied, int *ret_version, struct dbreg_error *err)
{
	struct dbreg_profile found;
	PGconn *conn;
	PGresult *res;
	int version, applied = 0, r;

	if (dbreg_ctx_connect_raw(ctx, err) < 0)
		return -1;
	conn = dbreg_ctx_conn(ctx);
	/* Two inits at once: the second waits for the lock, then finds nothing to do. */
	if (run(conn, "BEGIN", err, "cannot start the transaction") < 0 ||
	    run(conn, "SELECT pg_advisory_xact_lock(" INIT_LOCK ")", err, "cannot take the init lock") < 0 ||
	    run(conn, "SET LOCAL client_min_messages = warning", err, "cannot set up the session") < 0)
		goto fail;
	if (dbreg_profile_read(conn, &found, err) < 0)
		goto fail;
	if (found.have_registry && !found.have_log) {
		/* A registry dbreg did not create: adopt it, changing nothing of it. */
		r = adopt(ctx, conn, &found, err);
		dbreg_profile_clear(&found);
		if (r < 0)
			goto fail;
		if (ret_applied)
			*ret_applied = 0;
		if (ret_version)
			*ret_version = dbreg_schema_version();
		return 0;
	}
	dbreg_profile_clear(&found);
	if (run(conn, "CREATE SCHEMA IF NOT EXISTS admin", err, "cannot create schema admin") < 0 ||
	    run(conn, "CREATE TABLE IF NOT EXISTS admin.dbreg_schema_migrations ("
	              " version integer PRIMARY KEY, description text NOT NULL,"
	              " applied_at timestamptz NOT NULL DEFAULT now())",
	        err, "cannot create the migrations table") < 0)
		goto fail;
	res = PQexec(conn, "SELECT coalesce(max(version), 0)::text AS version FROM admin.dbreg_schema_migrations");
	if (check_conn_result(res, PGRES_TUPLES_OK, "cannot read the schema version", err) < 0) {
		PQclear(res);
		goto fail;
	}
	if (!dbreg_result_value(res, 0, "version")) {
		PQclear(res);
		dbreg_fail(err, DBREG_ERR_INTERNAL, "cannot read the schema version: the answer has none");
		goto fail;
	}
	version = atoi(dbreg_result_value(res, 0, "version"));
	PQclear(res);
	if (version > dbreg_schema_version()) {
		dbreg_fail(err, DBREG_ERR_CONFIG,
		           "the registry schema is at version %d, newer than this dbreg knows (%d); upgrade dbreg",
		           version, dbreg_schema_version());
		goto fail;
	}
	for (int i = 0; i < dbreg_migration_count; i++) {
		const struct dbreg_migration *m = &dbreg_migrations[i];
		char v[16];
		const char *params[2] = { v, m->description };
		char what[128];

		if (m->version <= version)
			continue;
		snprintf(what, sizeof(what), "migration %d (%s) failed", m->version, m->description);
		if (run(conn, m->sql, err, what) < 0)
			goto fail;
		snprintf(v, sizeof(v), "%d", m->version);
		res = PQexecParams(conn, "INSERT INTO admin.dbreg_schema_migrations (version, description) VALUES ($1, $2)",
		                   2, NULL, params, NULL, NULL, 0);
		if (check_conn_result(res, PGRES_COMMAND_OK, what, err) < 0) {
			PQclear(res);
			goto fail;
		}
		PQclear(res);
		applied++;
		version = m->version;
	}
	if (run(conn, "COMMIT", err, "cannot commit the migrations") < 0)
		goto fail;
	dbreg_ctx_forget_profile(ctx);
	if (ret_applied)
		*ret_applied = applied;
	if (ret_version)
		*ret_version = version;
	return 0;
fail:
	if (PQtransactionStatus(conn) != PQTRANS_IDLE)
		PQclear(PQexec(conn, "ROLLBACK"));
	return -1;
}

/* The format register, update and encrypt-password write; the stored passwords keep theirs. */
_public_ int dbreg_set_password_format(struct dbreg_ctx *ctx, const char *format, int *ret_changed,
                                       struct dbreg_error *err)
{
	int changed;

	if (!format || (strcmp(format, "dbreg") != 0 && strcmp(format, "fernet") != 0))
		return dbreg_fail(err, DBREG_ERR_USAGE, "unknown password format '%s' (known: dbreg, fernet)",
		                  format ? format : "");
	if (dbreg_ctx_connect(ctx, NULL, err) < 0 || dbreg_ctx_check_writable(ctx, err) < 0)
		return -1;
	changed = dbreg_registry_write_format(ctx, format, err);
	if (changed < 0)
		return -1;
	dbreg_ctx_forget_profile(ctx);
	if (ret_changed)
		*ret_changed = changed;
	return 0;
}

int dbreg_registry_write_format(struct dbreg_ctx *ctx, const char *format, struct dbreg_error *err)
{
	const char *params[1] = { format };
	PGresult *res = dbreg_exec(ctx,
	                           "INSERT INTO admin.dbreg_settings AS s (name, value) VALUES ('password_format', $1)"
	                           " ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value WHERE s.value <> EXCLUDED.value",
	                           1, params, PGRES_COMMAND_OK, err);
	int changed;

	if (!res)
		return -1;
	changed = strcmp(PQcmdTuples(res), "0") != 0;
	PQclear(res);
	return changed;
}

/* "no connection named 'X'" (DBREG_ERR_FAILED), with the live name it is closest to when one
 * is close enough to be what was meant.  Looks only when the session can still ask. */
int dbreg_fail_unknown_connection(struct dbreg_ctx *ctx, const char *name, struct dbreg_error *err)
{
	PGconn *conn = dbreg_ctx_conn(ctx);
	const char *params[1] = { name };
	const char **names = NULL, *near = NULL;
	char shown[128], near_shown[128];
	PGresult *res = NULL;
	int col, n = 0;

	dbreg_printable(name, shown, sizeof(shown));
	if (conn && PQtransactionStatus(conn) != PQTRANS_INERROR)
		res = PQexecParams(conn,
		                   "SELECT connection_name::text AS connection_name FROM " REGISTRY
		                   " WHERE deleted_at IS NULL AND abs(length(connection_name) - length($1)) <= 2",
		                   1, NULL, params, NULL, NULL, 0);
	col = res && PQresultStatus(res) == PGRES_TUPLES_OK ? PQfnumber(res, "connection_name") : -1;
	if (col >= 0 && (n = PQntuples(res)) > 0 && (names = calloc((size_t)n, sizeof(*names)))) {
		for (int i = 0; i < n; i++)
			names[i] = PQgetvalue(res, i, col);
		near = dbreg_name_closest(name, names, (size_t)n);
	}
	if (near)
		dbreg_fail(err, DBREG_ERR_FAILED, "no connection named '%s'; did you mean '%s'?", shown,
		           dbreg_printable(near, near_shown, sizeof(near_shown)));
	else
		dbreg_fail(err, DBREG_ERR_FAILED, "no connection named '%s'", shown);
	free(names);
	PQclear(res);
	return -1;
}

/* ---- rotate-key ---- */

/* In the caller's transaction: every row with a stored password, live and deleted, locked,
 * under the rotation lock (one rotation at a time; key "dbrot" in ASCII). */
PGresult *dbreg_registry_rotation_rows(struct dbreg_ctx *ctx, struct dbreg_error *err)
{
	PGresult *res = dbreg_exec(ctx, "SELECT pg_advisory_xact_lock(" KEY_ROTATION_LOCK ")", 0, NULL, PGRES_TUPLES_OK, err);

	if (!res)
		return NULL;
	PQclear(res);
	return dbreg_exec(ctx,
	                  "SELECT " TARGET_COLUMNS ", encrypted_password::text AS encrypted_password FROM " REGISTRY
	                  " d WHERE coalesce(encrypted_password, '') <> '' ORDER BY connection_name, deleted_at NULLS FIRST"
	                  " FOR UPDATE",
	                  0, NULL, PGRES_TUPLES_OK, err);
}

/* In the caller's transaction: the pending rotations (none before migration 4), locked,
 * each with its connection's name and target (a pending value is bound to them). */
PGresult *dbreg_registry_pending_rows(struct dbreg_ctx *ctx, struct dbreg_error *err)
{
	return dbreg_exec(ctx,
	                  dbreg_ctx_profile(ctx)->have_pending
	                      ? "SELECT " TARGET_COLUMNS ", p.encrypted_password::text AS encrypted_password"
	                        " FROM admin.dbreg_pending_rotations p JOIN " REGISTRY " d ON d.id::text = p.connection_id::text"
	                        " ORDER BY d.connection_name FOR UPDATE OF p"
	                      : "SELECT " TARGET_COLUMNS ", NULL::text AS encrypted_password FROM " REGISTRY " d WHERE false",
	                  0, NULL, PGRES_TUPLES_OK, err);
}

int dbreg_registry_set_pending(struct dbreg_ctx *ctx, const char *id, const char *stored, struct dbreg_error *err)
{
	const char *params[2] = { id, stored };
	PGresult *res = dbreg_exec(ctx, "UPDATE admin.dbreg_pending_rotations SET encrypted_password = $2"
	                                " WHERE connection_id::text = $1", 2, params, PGRES_COMMAND_OK, err);

	if (!res)
		return -1;
	PQclear(res);
	return 0;
}

int dbreg_registry_set_stored(struct dbreg_ctx *ctx, const char *id, const char *stored, struct dbreg_error *err)
{
	const char *params[2] = { id, stored };
	PGresult *res = dbreg_exec(ctx, "UPDATE " REGISTRY " SET encrypted_password = $2 WHERE id::text = $1", 2, params,
	                           PGRES_COMMAND_OK, err);

	if (!res)
		return -1;
	PQclear(res);
	return 0;
}

/* ---- rotate-password ---- */

/* The live row NAME with its target, type, tags and any pending rotation. */
PGresult *dbreg_registry_rotpw_row(struct dbreg_ctx *ctx, const char *name, struct dbreg_error *err)
{
#define ROTPW_ROW \
	"SELECT " TARGET_COLUMNS ", d.connection_type::text AS connection_type," \
	" array_to_string(d.tags::text[], ',') AS tags, d.encrypted_password::text AS encrypted_password," \
	" d.metadata::jsonb ->> 'pooler' AS pooler,"
	const char *params[1] = { name };

	return dbreg_exec(ctx,
	                  dbreg_ctx_profile(ctx)->have_pending
	                      ? ROTPW_ROW " p.encrypted_password::text AS pending_password,"
	                        " to_char(p.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS pending_since"
	                        " FROM " REGISTRY " d LEFT JOIN admin.dbreg_pending_rotations p"
	                        " ON p.connection_id::text = d.id::text"
	                        " WHERE d.connection_name = $1 AND d.deleted_at IS NULL"
	                      : ROTPW_ROW " NULL::text AS pending_password, NULL::text AS pending_since"
	                        " FROM " REGISTRY " d WHERE d.connection_name = $1 AND d.deleted_at IS NULL",
	                  1, params, PGRES_TUPLES_OK, err);
#undef ROTPW_ROW
}

/* rotate-password's session lock on one connection (the rotation lock update's password
 * writes try too): 1 taken, 0 held by another session. */
int dbreg_registry_rotpw_lock(struct dbreg_ctx *ctx, const char *id, bool take, struct dbreg_error *err)
{
	const char *params[1] = { id };
	PGresult *res = dbreg_exec(ctx,
	                           take ? "SELECT pg_try_advisory_lock(" ROW_LOCK_CLASS ", hashtext($1))::text AS locked"
	                                : "SELECT pg_advisory_unlock(" ROW_LOCK_CLASS ", hashtext($1))::text AS locked",
	                           1, params, PGRES_TUPLES_OK, err);
	const char *v = res ? dbreg_result_value(res, 0, "locked") : NULL;
	int r = v ? strcmp(v, "true") == 0 : -1;

	if (res && !v)
		dbreg_fail(err, DBREG_ERR_INTERNAL, "cannot take the rotation lock: the answer has no value");
	PQclear(res);
	return r;
}

/* The other live rows that log in as user (a comma-separated list, malloc'd; "" for none). */
int dbreg_registry_same_user(struct dbreg_ctx *ctx, const char *id, const char *user, char **ret,
                             struct dbreg_error *err)
{
	const char *params[2] = { id, user };
	PGresult *res = dbreg_exec(ctx,
	                           "SELECT coalesce(string_agg(connection_name::text, ', ' ORDER BY connection_name), '')"
	                           " AS names FROM " REGISTRY " WHERE deleted_at IS NULL AND username::text = $2"
	                           " AND id::text <> $1",
	                           2, params, PGRES_TUPLES_OK, err);
	const char *v = res ? dbreg_result_value(res, 0, "names") : NULL;

	if (!res)
		return -1;
	*ret = strdup(v ? v : "");
	PQclear(res);
	return *ret ? 0 : dbreg_fail_oom(err);
}

/* Step 1: the new password recorded before the server has it, committed durably. */
int dbreg_registry_pending_record(struct dbreg_ctx *ctx, const char *id, const char *stored, struct dbreg_error *err)
{
	const char *params[2] = { id, stored };
	PGresult *res;

	if (begin(ctx, err) < 0 ||
	    run(dbreg_ctx_conn(ctx), "SET LOCAL synchronous_commit = on", err, "cannot set synchronous_commit") < 0 ||
	    run(dbreg_ctx_conn(ctx), "SELECT pg_advisory_xact_lock(" KEY_ROTATION_LOCK ")", err,
	        "cannot take the rotation lock") < 0)
		return rollback(ctx);
	res = dbreg_exec(ctx,
	                 "INSERT INTO admin.dbreg_pending_rotations AS p (connection_id, encrypted_password)"
	                 " VALUES ($1, $2) ON CONFLICT (connection_id)"
	                 " DO UPDATE SET encrypted_password = EXCLUDED.encrypted_password, started_at = now()",
	                 2, params, PGRES_COMMAND_OK, err);
	if (!res)
		return rollback(ctx);
	PQclear(res);
	return run(dbreg_ctx_conn(ctx), "COMMIT", err, "cannot commit the pending rotation");
}

/* Step 4: the pending password into the row and the record gone, in one transaction
 * (rotate-key may have re-encrypted the record meanwhile: its text is what is stored).
 * discard: only the record goes (the server never took it). */
int dbreg_registry_pending_finish(struct dbreg_ctx *ctx, const char *id, bool discard, struct dbreg_error *err)
{
	const char *params[1] = { id };
	PGresult *res;
	bool moved;

	/* After any rotate-key that holds the records: its text, not the one before it. */
	if (begin(ctx, err) < 0 || run(dbreg_ctx_conn(ctx), "SELECT pg_advisory_xact_lock(" KEY_ROTATION_LOCK ")", err,
	                               "cannot take the rotation lock") < 0)
		return rollback(ctx);
	if (!discard) {
		res = dbreg_exec(ctx,
		                 "UPDATE " REGISTRY " d SET encrypted_password = p.encrypted_password"
		                 " FROM admin.dbreg_pending_rotations p"
		                 " WHERE p.connection_id::text = d.id::text AND d.id::text = $1",
		                 1, params, PGRES_COMMAND_OK, err);
		if (!res)
			return rollback(ctx);
		moved = strcmp(PQcmdTuples(res), "1") == 0;
		PQclear(res);
		if (!moved) {
			dbreg_registry_end(ctx, false, NULL);
			return dbreg_fail(err, DBREG_ERR_FAILED, "the pending rotation or its row is gone");
		}
	}
	res = dbreg_exec(ctx, "DELETE FROM admin.dbreg_pending_rotations WHERE connection_id::text = $1", 1, params,
	                 PGRES_COMMAND_OK, err);
	if (!res)
		return rollback(ctx);
	PQclear(res);
	return run(dbreg_ctx_conn(ctx), "COMMIT", err, "cannot commit the rotation");
}

/* ---- turning the database's refusals into messages ---- */

/* Collects the quoted literals of a constraint definition: its allowed values. */
static void quoted_literals(const char *def, char *out, size_t size)
{
	size_t o = 0;

	out[0] = '\0';
	for (const char *p = def; *p; p++) {
		if (*p != '\'')
			continue;
		if (o > 0 && o + 2 < size) {
			out[o++] = ',';
			out[o++] = ' ';
		}
		for (p++; *p && o + 1 < size; p++) {
			if (*p == '\'' && p[1] == '\'') {
				out[o++] = '\'';
				p++;
			} else if (*p == '\'') {
				break;
			} else {
				out[o++] = *p;
			}
		}
		out[o] = '\0';
		if (!*p)
			break;
	}
}

static const char *given(const struct dbreg_spec *s, const char *column)
{
	int f = dbreg_field_lookup(column);

	if (f < 0 || !s || !dbreg_spec_writable((enum dbreg_field)f))
		return NULL;
	return dbreg_spec_value(s, (enum dbreg_field)f);
}

static int fail_check(struct dbreg_ctx *ctx, const PGresult *res, const struct dbreg_spec *s,
                      struct dbreg_error *err)
{
	const char *conname = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
	const char *params[1] = { conname };
	PGresult *q;
	char allowed[512];
	const char *cols, *def, *val;

	if (!conname)
		return dbreg_fail_result(err, res, "the registry refused the values");
	q = PQexecParams(dbreg_ctx_conn(ctx),
	                 "SELECT array_to_string(ARRAY(SELECT attname FROM pg_attribute"
	                 "   WHERE attrelid = c.conrelid AND attnum = ANY (c.conkey) ORDER BY attnum), ', ') AS cols,"
	                 " pg_get_constraintdef(c.oid) AS def"
	                 " FROM pg_constraint c WHERE c.conname = $1 AND c.conrelid = '" REGISTRY "'::regclass",
	                 1, NULL, params, NULL, NULL, 0);
	cols = dbreg_result_value(q, 0, "cols");
	def = dbreg_result_value(q, 0, "def");
	if (PQresultStatus(q) != PGRES_TUPLES_OK || PQntuples(q) != 1 || !cols || !def) {
		PQclear(q);
		return dbreg_fail_result(err, res, "the registry refused the values");
	}
	val = given(s, cols);
	quoted_literals(def, allowed, sizeof(allowed));
	if (allowed[0] && (strstr(def, "ARRAY[") || strstr(def, " IN (")))
		dbreg_fail(err, DBREG_ERR_FAILED, "%s: '%s' is not allowed; allowed values: %s", cols,
		           val ? val : "", allowed);
	else if (val)
		dbreg_fail(err, DBREG_ERR_FAILED, "%s: '%s' is not allowed: the registry requires %s", cols, val, def);
	else
		dbreg_fail(err, DBREG_ERR_FAILED, "%s: the values are not allowed: the registry requires %s", cols, def);
	if (err)
		strcpy(err->sqlstate, "23514");
	PQclear(q);
	return -1;
}

/* A value refused by its column's type: an enum (name the labels) or a length. */
static int fail_type(struct dbreg_ctx *ctx, const PGresult *res, const struct dbreg_spec *s,
                     struct dbreg_error *err)
{
	PGresult *q;
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	int r = -2;

	q = PQexec(dbreg_ctx_conn(ctx),
	           "SELECT a.attname::text AS col, CASE WHEN t.typtype = 'e' THEN"
	           "   array_to_string(ARRAY(SELECT enumlabel FROM pg_enum WHERE enumtypid = t.oid ORDER BY enumsortorder), ', ')"
	           " END AS labels, CASE WHEN a.atttypmod > 4 AND t.typcategory = 'S' THEN a.atttypmod - 4 END AS max_len"
	           " FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
	           " WHERE a.attrelid = '" REGISTRY "'::regclass AND a.attnum > 0 AND NOT a.attisdropped");
	for (int i = 0; PQresultStatus(q) == PGRES_TUPLES_OK && i < PQntuples(q) && r == -2; i++) {
		const char *col = dbreg_result_value(q, i, "col"), *labels = dbreg_result_value(q, i, "labels");
		const char *max_len = dbreg_result_value(q, i, "max_len");
		const char *val = col ? given(s, col) : NULL;

		if (!val)
			continue;
		if (labels && strcmp(state, "22P02") == 0) {
			char list[512], needle[300];

			/* Is the value among the labels?  Compare as ", a, b, " lists. */
			snprintf(list, sizeof(list), ", %s, ", labels);
			snprintf(needle, sizeof(needle), ", %s, ", val);
			if (!strstr(list, needle))
				r = dbreg_fail(err, DBREG_ERR_FAILED, "%s: '%s' is not allowed; allowed values: %s", col, val,
				               labels);
		} else if (max_len && strcmp(state, "22001") == 0 && strlen(val) > (size_t)atoi(max_len)) {
			r = dbreg_fail(err, DBREG_ERR_FAILED, "%s: '%s' is too long; at most %s characters", col, val,
			               max_len);
		}
	}
	PQclear(q);
	if (r == -2)
		return dbreg_fail_result(err, res, "the registry refused the values");
	if (err)
		snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", state);
	return -1;
}

int dbreg_fail_write(struct dbreg_ctx *ctx, const PGresult *res, const struct dbreg_spec *s, const char *name,
                     struct dbreg_error *err)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	if (!state)
		return dbreg_fail_result(err, res, "the registry refused the values");
	/* The failed statement aborted the transaction: look things up after it. */
	if (PQtransactionStatus(dbreg_ctx_conn(ctx)) == PQTRANS_INERROR)
		PQclear(PQexec(dbreg_ctx_conn(ctx), "ROLLBACK"));
	if (strcmp(state, "23505") == 0) {
		dbreg_fail(err, DBREG_ERR_FAILED,
		           "connection '%s' is already registered; use --replace to rewrite it, or 'dbreg update'", name);
		if (err)
			strcpy(err->sqlstate, "23505");
		return -1;
	}
	if (strcmp(state, "23514") == 0)
		return fail_check(ctx, res, s, err);
	if (strcmp(state, "22P02") == 0 || strcmp(state, "22001") == 0)
		return fail_type(ctx, res, s, err);
	if (strcmp(state, "23502") == 0) {
		const char *col = PQresultErrorField(res, PG_DIAG_COLUMN_NAME);

		dbreg_fail(err, DBREG_ERR_FAILED, "%s: a value is required", col ? col : "a column");
		if (err)
			strcpy(err->sqlstate, "23502");
		return -1;
	}
	dbreg_fail_result(err, res, "the registry refused the values");
	if (err && err->kind == DBREG_ERR_FAILED && strncmp(state, "22", 2) != 0 && strncmp(state, "23", 2) != 0 &&
	    strncmp(state, "08", 2) != 0 && strncmp(state, "57", 2) != 0 && strncmp(state, "42", 2) == 0)
		err->kind = DBREG_ERR_CONFIG;  /* missing table or privilege: the registry is not what we expect */
	return -1;
}

/* ---- reading ---- */

/* The connection records' SELECT list for this registry, of the mask's fields (0: all; one
 * per process: the lib is single-threaded). */
static const char *select_fields(struct dbreg_ctx *ctx, uint64_t mask)
{
	static char buf[4600];

	return dbreg_conn_select_list(dbreg_ctx_profile(ctx), mask, buf, sizeof(buf));
}

static const char *select_list(struct dbreg_ctx *ctx)
{
	return select_fields(ctx, 0);
}

static int fetch(struct dbreg_ctx *ctx, const char *sql, int n, const char *const *params, uint64_t mask,
                 struct dbreg_conn_list **ret, struct dbreg_error *err)
{
	struct dbreg_conn_list *l;
	PGresult *res = dbreg_exec(ctx, sql, n, params, PGRES_TUPLES_OK, err);

	if (!res)
		return -1;
	l = dbreg_conn_list_from_result(res, mask, err);
	if (!l)
		return -1;
	*ret = l;
	return 0;
}

static char *names_json(const char *const *names)
{
	json_t *a;
	char *s;

	if (!names)
		return NULL;
	a = json_array();
	for (size_t i = 0; a && names[i]; i++)
		json_array_append_new(a, json_string(names[i]));
	s = a ? json_dumps(a, JSON_COMPACT) : NULL;
	json_decref(a);
	return s;
}

/* A region code the regions table does not have is refused, naming those it has (what
 * names it: "--region"). */
static int check_region_code(struct dbreg_ctx *ctx, const char *code, const char *what, struct dbreg_error *err)
{
	const struct dbreg_profile *p = dbreg_ctx_profile(ctx);
	const char *params[1] = { code };
	char sql[600], shown[128];
	PGresult *res;
	int col;

	snprintf(sql, sizeof(sql),
	         "SELECT EXISTS (SELECT 1 FROM %s WHERE code = $1) AS known,"
	         " (SELECT string_agg(code::text, ', ' ORDER BY code) FROM %s) AS codes",
	         p->region_table, p->region_table);
	res = dbreg_exec(ctx, sql, 1, params, PGRES_TUPLES_OK, err);
	if (!res)
		return -1;
	col = PQfnumber(res, "known");
	if (PQntuples(res) == 1 && col >= 0 && PQgetvalue(res, 0, col)[0] == 't') {
		PQclear(res);
		return 0;
	}
	col = PQfnumber(res, "codes");
	dbreg_fail(err, DBREG_ERR_FAILED, "%s: no region '%s'; known regions: %s", what,
	           dbreg_printable(code, shown, sizeof(shown)),
	           PQntuples(res) == 1 && col >= 0 && !PQgetisnull(res, 0, col) ? PQgetvalue(res, 0, col) : "none");
	PQclear(res);
	return -1;
}

static int check_region(struct dbreg_ctx *ctx, const struct dbreg_spec *s, struct dbreg_error *err)
{
	const char *code = dbreg_spec_value(s, DBREG_F_REGION_ID);

	if (!dbreg_ctx_profile(ctx)->region_table || !dbreg_spec_is_set(s, DBREG_F_REGION_ID) || !code)
		return 0;
	return check_region_code(ctx, code, "--region", err);
}

/* The values connection_type can hold: the enum's labels, or the list of a CHECK on that
 * column alone ("" when nothing limits them). */
static void type_values(struct dbreg_ctx *ctx, char *out, size_t size)
{
	const struct dbreg_profile *p = dbreg_ctx_profile(ctx);
	PGresult *q;

	out[0] = '\0';
	if (p->type_is_enum) {
		snprintf(out, size, "%s", p->type_labels ? p->type_labels : "");
		return;
	}
	q = PQexec(dbreg_ctx_conn(ctx),
	           "SELECT pg_get_constraintdef(c.oid) AS def FROM pg_constraint c"
	           " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]"
	           " WHERE c.conrelid = '" REGISTRY "'::regclass AND c.contype = 'c' AND cardinality(c.conkey) = 1"
	           " AND a.attname = 'connection_type'");
	for (int i = 0; PQresultStatus(q) == PGRES_TUPLES_OK && i < PQntuples(q) && !out[0]; i++) {
		const char *def = dbreg_result_value(q, i, "def");

		if (def && (strstr(def, "ARRAY[") || strstr(def, " IN (")))
			quoted_literals(def, out, size);
	}
	PQclear(q);
}

/* A --type or --region a selection names that the registry cannot hold is a mistake,
 * not an empty answer: refused, naming what it can hold (compared as the registry
 * compares: exactly). */
static int check_filter(struct dbreg_ctx *ctx, const struct dbreg_filter *filter, struct dbreg_error *err)
{
	char allowed[600], list[620], needle[300], shown[128];

	if (filter->type) {
		type_values(ctx, allowed, sizeof(allowed));
		snprintf(list, sizeof(list), ", %s, ", allowed);
		snprintf(needle, sizeof(needle), ", %s, ", filter->type);
		if (allowed[0] && !strstr(list, needle))
			return dbreg_fail(err, DBREG_ERR_FAILED, "--type: no type '%s' in this registry; its types: %s",
			                  dbreg_printable(filter->type, shown, sizeof(shown)), allowed);
	}
	if (filter->region && dbreg_ctx_profile(ctx)->region_table)
		return check_region_code(ctx, filter->region, "--region", err);
	return 0;
}

/* list's statement and its parameters; *names and *tags (JSON texts) are the caller's to free. */
static int list_query(struct dbreg_ctx *ctx, const struct dbreg_filter *filter, uint64_t mask, char *sql,
                      size_t size, const char *params[6], char **names, char **tags, struct dbreg_error *err)
{
	static const char where[] =
		" WHERE ($1::text IS NULL OR connection_type::text = $1)"
		"   AND ($2::text IS NULL OR %s = $2)"
		"   AND ($3::boolean IS NULL OR is_active = $3)"
		"   AND ($4::boolean OR deleted_at IS NULL)"
		"   AND ($5::jsonb IS NULL OR connection_name IN (SELECT jsonb_array_elements_text($5::jsonb)))"
		"   AND ($6::jsonb IS NULL OR tags::text[] @> ARRAY(SELECT jsonb_array_elements_text($6::jsonb)))"
		" ORDER BY connection_name, deleted_at NULLS FIRST, created_at";
	/* The rows are sorted as stored, then each is made text as it is sent: the server's
	 * work on the columns overlaps the reader's on the rows before. */
	static const char order[] = " ORDER BY d.connection_name, d.deleted_at NULLS FIRST, d.created_at";
	static const struct dbreg_filter none = { .active = -1 };
	char region[300], cond[sizeof(where) + 300], base[1200];

	if (!filter)
		filter = &none;
	*names = *tags = NULL;
	if (check_filter(ctx, filter, err) < 0)
		return -1;
	*names = names_json((const char *const *)filter->names);
	*tags = names_json((const char *const *)filter->tags);
	if ((filter->names && !*names) || (filter->tags && !*tags))
		return dbreg_fail_oom(err);
	params[0] = filter->type;
	params[1] = filter->region;
	params[2] = filter->active < 0 ? NULL : filter->active ? "true" : "false";
	params[3] = filter->include_deleted ? "true" : "false";
	params[4] = *names;
	params[5] = *tags;
	snprintf(cond, sizeof(cond), where, dbreg_region_code_expr(dbreg_ctx_profile(ctx), region, sizeof(region)));
	snprintf(sql, size, "SELECT %s FROM (SELECT %s FROM " REGISTRY " d%s) d%s", select_fields(ctx, mask),
	         dbreg_conn_base_columns(mask, base, sizeof(base)), cond, order);
	return 0;
}

_public_ int dbreg_list(struct dbreg_ctx *ctx, const struct dbreg_filter *filter, struct dbreg_conn_list **ret,
                        struct dbreg_error *err)
{
	uint64_t mask = filter ? filter->fields : 0;
	char sql[6400], *names, *tags;
	const char *params[6];
	int r = list_query(ctx, filter, mask, sql, sizeof(sql), params, &names, &tags, err);

	if (r == 0)
		r = fetch(ctx, sql, 6, params, mask, ret, err);
	free(names);
	free(tags);
	return r;
}

int dbreg_list_stream_mask(struct dbreg_ctx *ctx, const struct dbreg_filter *filter, uint64_t mask,
                           struct dbreg_conn_stream **ret, struct dbreg_error *err)
{
	char sql[6400], *names, *tags;
	const char *params[6];
	int r = list_query(ctx, filter, mask, sql, sizeof(sql), params, &names, &tags, err);

	if (r == 0)
		r = dbreg_conn_stream_open(ctx, sql, 6, params, mask, ret, err);
	free(names);
	free(tags);
	return r;
}

_public_ int dbreg_list_stream(struct dbreg_ctx *ctx, const struct dbreg_filter *filter,
                               struct dbreg_conn_stream **ret, struct dbreg_error *err)
{
	return dbreg_list_stream_mask(ctx, filter, filter ? filter->fields : 0, ret, err);
}

_public_ int dbreg_show(struct dbreg_ctx *ctx, const char *name, struct dbreg_conn_list **ret,
                        struct dbreg_error *err)
{
	struct dbreg_conn_list *l;
	const char *params[1] = { name };
	char sql[5200];

	snprintf(sql, sizeof(sql), "SELECT %s FROM " REGISTRY " d WHERE connection_name = $1 AND deleted_at IS NULL",
	         select_list(ctx));
	if (fetch(ctx, sql, 1, params, 0, &l, err) < 0)
		return -1;
	if (dbreg_conn_list_count(l) == 0) {
		dbreg_conn_list_free(l);
		return dbreg_fail_unknown_connection(ctx, name, err);
	}
	*ret = l;
	return 0;
}

/* ---- writing ---- */

/* write_rows' own flag beside DBREG_WRITE_*: the statement is register's INSERT. */
#define WRITE_INSERT 0x1000u

/* A statement under construction: SQL text from fixed identifiers, values as parameters. */
struct stmt {
	char sql[8192];
	size_t len;
	const char *params[DBREG_F__COUNT + 4];
	int n;
};

static void emit(struct stmt *st, const char *fmt, ...) _printf_(2, 3);
static void emit(struct stmt *st, const char *fmt, ...)
{
	va_list ap;
	int w;

	if (st->len >= sizeof(st->sql) - 1)
		return;  /* already full: the statement is refused before it runs */
	va_start(ap, fmt);
	w = vsnprintf(st->sql + st->len, sizeof(st->sql) - st->len, fmt, ap);
	va_end(ap);
	if (w > 0)
		st->len = st->len + (size_t)w < sizeof(st->sql) ? st->len + (size_t)w : sizeof(st->sql) - 1;
}

static int param(struct stmt *st, const char *value)
{
	st->params[st->n++] = value;
	return st->n;
}

/* Several writes as one (import): BEGIN, then COMMIT, or ROLLBACK on any failure
 * (a failed write may have rolled back already: see write_rows). */
int dbreg_registry_begin(struct dbreg_ctx *ctx, struct dbreg_error *err)
{
	if (dbreg_ctx_check_writable(ctx, err) < 0)
		return -1;
	return begin(ctx, err);
}

int dbreg_registry_end(struct dbreg_ctx *ctx, bool commit, struct dbreg_error *err)
{
	PGconn *conn = dbreg_ctx_conn(ctx);

	if (commit && PQtransactionStatus(conn) == PQTRANS_INTRANS)
		return run(conn, "COMMIT", err, "cannot commit the transaction");
	if (PQtransactionStatus(conn) != PQTRANS_IDLE)
		PQclear(PQexec(conn, "ROLLBACK"));
	return commit ? dbreg_fail(err, DBREG_ERR_FAILED, "the transaction was rolled back") : 0;
}

/* A write's transaction: its own when none is open (import runs several in its own). */
static int write_begin(struct dbreg_ctx *ctx, unsigned flags, bool *ret_own, struct dbreg_error *err)
{
	if (!(flags & DBREG_WRITE_DRY_RUN) && dbreg_ctx_check_writable(ctx, err) < 0)
		return -1;
	*ret_own = PQtransactionStatus(dbreg_ctx_conn(ctx)) == PQTRANS_IDLE;
	return *ret_own ? begin(ctx, err) : 0;
}

/* Commits its own transaction; a dry run, or a failure (which may have ended the caller's
 * transaction already: see dbreg_registry_end), is rolled back whatever happens.  The row
 * written (l) goes to *ret_row when all went well and it is wanted, else it is freed. */
static int write_end(struct dbreg_ctx *ctx, bool own, unsigned flags, int r, struct dbreg_conn_list *l,
                     struct dbreg_conn_list **ret_row, struct dbreg_error *err)
{
	PGconn *conn = dbreg_ctx_conn(ctx);

	if (r < 0 || (flags & DBREG_WRITE_DRY_RUN)) {
		if (PQtransactionStatus(conn) != PQTRANS_IDLE)
			PQclear(PQexec(conn, "ROLLBACK"));
	} else if (own) {
		r = run(conn, "COMMIT", err, "cannot commit the change");
	}
	if (r == 0 && ret_row)
		*ret_row = l;
	else
		dbreg_conn_list_free(l);
	return r;
}

/* Runs a writing statement that returns the row it wrote. */
static int write_rows(struct dbreg_ctx *ctx, struct stmt *st, const struct dbreg_spec *s, const char *name,
                      unsigned flags, struct dbreg_conn_list **ret, struct dbreg_error *err)
{
	PGconn *conn = dbreg_ctx_conn(ctx);
	struct dbreg_conn_list *l;
	PGresult *res;

	if (st->len >= sizeof(st->sql) - 1)
		return dbreg_fail(err, DBREG_ERR_INTERNAL, "statement too long");
	res = PQexecParams(conn, st->sql, st->n, NULL, st->params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		dbreg_fail_write(ctx, res, s, name, err);
		PQclear(res);
		return -1;
	}
	if (PQntuples(res) == 0) {
		PQclear(res);
		if (flags & WRITE_INSERT) {
			/* ON CONFLICT ... WHERE: the live row kept its place. */
			dbreg_fail(err, DBREG_ERR_FAILED,
			           "connection '%s' is already registered; use --replace to rewrite it, or 'dbreg update'", name);
			if (err)
				strcpy(err->sqlstate, "23505");
			return -1;
		}
		return dbreg_fail_unknown_connection(ctx, name, err);
	}
	if (flags & WRITE_INSERT) {
		int col = PQfnumber(res, "rewritten");

		dbreg_ctx_set_revived(ctx, col >= 0 && PQgetvalue(res, 0, col)[0] == 't' &&
		                          !(flags & DBREG_WRITE_REPLACE));
	}
	l = dbreg_conn_list_from_result(res, 0, err);
	if (!l)
		return -1;
	*ret = l;
	return 0;
}

/* ---- a connection's password ---- */

/* A write of one connection's password: refused while rotate-password holds that
 * connection (its session lock; this one ends with the transaction) or left a
 * rotation unfinished. */
static int guard_password(struct dbreg_ctx *ctx, const char *id, const char *name, struct dbreg_error *err)
{
	const char *params[1] = { id };
	PGresult *res;
	const char *locked, *pending;
	char shown[128];
	int r = 0;

	/* The table is named only where it exists: a name is looked up as the query is parsed. */
	res = dbreg_exec(ctx,
	                 dbreg_ctx_profile(ctx)->have_pending
	                     ? "SELECT pg_try_advisory_xact_lock(" ROW_LOCK_CLASS ", hashtext($1))::text AS locked,"
	                       " (SELECT count(*) FROM admin.dbreg_pending_rotations WHERE connection_id = $1)::text"
	                       " AS pending"
	                     : "SELECT pg_try_advisory_xact_lock(" ROW_LOCK_CLASS ", hashtext($1))::text AS locked,"
	                       " '0' AS pending",
	                 1, params, PGRES_TUPLES_OK, err);
	if (!res)
		return -1;
	locked = dbreg_result_value(res, 0, "locked");
	pending = dbreg_result_value(res, 0, "pending");
	dbreg_printable(name, shown, sizeof(shown));
	if (!locked || !pending)
		r = dbreg_fail(err, DBREG_ERR_INTERNAL, "cannot take the rotation lock: the answer has no value");
	else if (strcmp(locked, "true") != 0)
		r = dbreg_fail(err, DBREG_ERR_FAILED, "connection '%s': rotation in progress (dbreg rotate-password)", shown);
	else if (strcmp(pending, "0") != 0)
		r = dbreg_fail(err, DBREG_ERR_FAILED,
		               "connection '%s': a password rotation did not finish; run 'dbreg rotate-password %s' to complete it",
		               shown, shown);
	PQclear(res);
	return r;
}

/* Stores password in the row *l holds, for its id and target as the registry
 * now has them, in the registry's format; *l becomes the row as written. */
static int seal_row(struct dbreg_ctx *ctx, const char *password, struct dbreg_conn_list **l, struct dbreg_error *err)
{
	const struct dbreg_conn *c = dbreg_conn_list_at(*l, 0);
	struct dbreg_binding b;
	struct dbreg_conn_list *sealed;
	struct stmt st = { .len = 0, .n = 0 };
	char *stored;
	int r;

	dbreg_binding_of_conn(c, &b);
	if (dbreg_encrypt_stored(ctx, dbreg_ctx_profile(ctx)->password_format, &b, password, strlen(password), &stored,
	                         err) < 0)
		return -1;
	emit(&st, "UPDATE " REGISTRY " d SET encrypted_password = $%d", param(&st, stored));
	emit(&st, " WHERE id::text = $%d RETURNING %s", param(&st, b.id), select_list(ctx));
	r = write_rows(ctx, &st, NULL, dbreg_conn_get(c, DBREG_F_CONNECTION_NAME), 0, &sealed, err);
	free(stored);
	if (r < 0)
		return -1;
	dbreg_conn_list_free(*l);
	*l = sealed;
	return 0;
}

/* The value expression for a field: a parameter the server casts to the
 * column's type; a region code goes through the regions table (checked
 * before: see check_region). */
static void emit_value(struct stmt *st, struct dbreg_ctx *ctx, const char *value, enum dbreg_field f)
{
	const struct dbreg_profile *p = dbreg_ctx_profile(ctx);

	if (f == DBREG_F_REGION_ID && p->region_table && value)
		emit(st, "(SELECT r.id FROM %s r WHERE r.code = $%d)", p->region_table, param(st, value));
	else
		emit(st, "$%d", param(st, value));
}

/* Where the type has no SHARED label (and so no default dbreg knows), --type is required. */
static int check_type(struct dbreg_ctx *ctx, const struct dbreg_spec *s, struct dbreg_error *err)
{
	const struct dbreg_profile *p = dbreg_ctx_profile(ctx);
	char labels[520];

	if (dbreg_spec_is_set(s, DBREG_F_CONNECTION_TYPE) || !p->type_is_enum)
		return 0;
	snprintf(labels, sizeof(labels), ", %s, ", p->type_labels ? p->type_labels : "");
	if (strstr(labels, ", SHARED, "))
		return 0;
	return dbreg_fail(err, DBREG_ERR_USAGE, "--type is required in this registry: one of %s",
	                  p->type_labels ? p->type_labels : "its labels");
}

/* The stored password the statement writes: a given one is sealed after it, once the
 * row's id and target are known (seal_row); no password is NULL, or '' on a Fernet
 * registry, as the platform writes it. */
static const char *stored_value(struct dbreg_ctx *ctx, const struct dbreg_spec *s)
{
	return dbreg_spec_password(s) || strcmp(dbreg_ctx_profile(ctx)->password_format, "fernet") != 0 ? NULL : "";
}

/* "col = EXCLUDED.col, ..." for every field register writes (DEFAULT for the rest). */
static void emit_rewrite(struct stmt *st, const struct dbreg_spec *s, const char *tags)
{
	for (int f = 0; f < DBREG_F__COUNT; f++)
		if (dbreg_spec_writable(f))
			emit(st, "%s = %s%s, ", dbreg_field_name(f),
			     dbreg_spec_is_set(s, f) || dbreg_field_default(f) ? "EXCLUDED." : "DEFAULT",
			     dbreg_spec_is_set(s, f) || dbreg_field_default(f) ? dbreg_field_name(f) : "");
	/* No password given (an import row without one): a live row keeps its own. */
	emit(st, "encrypted_password = %s, tags = %s",
	     dbreg_spec_is_set(s, DBREG_F_HAS_PASSWORD) ? "EXCLUDED.encrypted_password"
	                                                : "CASE WHEN d.deleted_at IS NULL THEN d.encrypted_password END",
	     tags ? "EXCLUDED.tags" : "DEFAULT");
	/* Metadata is rewritten only when given (import); otherwise each caller says. */
	if (dbreg_spec_metadata_json(s))
		emit(st, ", metadata = EXCLUDED.metadata");
}

/* The metadata a write leaves: base (an SQL expression: the row's, or the given object; one
 * that is not an object counts as {}) with --pooler and --pooler-db merged in, other keys kept.
 * A new pooler gets the default pooler_db unless it has one. */
static void emit_metadata(struct stmt *st, const struct dbreg_spec *s, const char *base, const char *patch)
{
	const char *pooler = dbreg_spec_pooler(s);
	char obj[200];

	snprintf(obj, sizeof(obj), "CASE WHEN jsonb_typeof((%s)::jsonb) = 'object' THEN (%s)::jsonb ELSE '{}' END", base,
	         base);
	if (pooler && !*pooler)
		emit(st, "((%s) - 'pooler' - 'pooler_db')", obj);
	else if (pooler)
		emit(st, "('{\"pooler_db\": \"pgbouncer\"}'::jsonb || (%s) || $%d::jsonb)", obj, param(st, patch));
	else
		emit(st, "((%s) || $%d::jsonb)", obj, param(st, patch));
}

/* update --pooler-db alone: only on a row that is a pooler already. */
static int check_pooler_row(struct dbreg_ctx *ctx, const char *name, struct dbreg_error *err)
{
	const char *params[1] = { name };
	PGresult *res = dbreg_exec(ctx,
	                           "SELECT d.metadata::jsonb ->> 'pooler' AS pooler FROM " REGISTRY " d"
	                           " WHERE connection_name = $1 AND deleted_at IS NULL FOR UPDATE",
	                           1, params, PGRES_TUPLES_OK, err);
	char shown[128];
	int r = 0;

	if (!res)
		return -1;
	if (PQntuples(res) == 0)
		r = dbreg_fail_unknown_connection(ctx, name, err);
	else if (!dbreg_result_value(res, 0, "pooler"))
		r = dbreg_fail(err, DBREG_ERR_USAGE, "--pooler-db: connection '%s' is not a pooler; give --pooler pgbouncer too",
		               dbreg_printable(name, shown, sizeof(shown)));
	PQclear(res);
	return r;
}

/* The target fields a v2 password is bound to (SPEC §3), beside the id. */
static const enum dbreg_field bound_fields[] = {
	DBREG_F_HOST, DBREG_F_PORT, DBREG_F_DATABASE_NAME, DBREG_F_USERNAME, DBREG_F_SSL_MODE,
};

static bool same_text(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

/* The live row update is about to change, locked for the rest of the transaction:
 * its id, target and stored password, as the registry has them. */
static PGresult *prior_row(struct dbreg_ctx *ctx, const char *name, bool required, struct dbreg_error *err)
{
	const char *params[1] = { name };
	PGresult *res = dbreg_exec(ctx,
	                           "SELECT " TARGET_COLUMNS ", d.encrypted_password::text AS encrypted_password"
	                           " FROM " REGISTRY " d WHERE connection_name = $1 AND deleted_at IS NULL FOR UPDATE",
	                           1, params, PGRES_TUPLES_OK, err);
	struct dbreg_binding b;

	if (res && !required && PQntuples(res) == 0)
		return res;
	if (res && (PQntuples(res) != 1 || dbreg_binding_of_row(res, 0, &b) < 0 || !b.id)) {
		if (PQntuples(res) == 0)
			dbreg_fail_unknown_connection(ctx, name, err);
		else
			dbreg_fail(err, DBREG_ERR_INTERNAL, "cannot read connection '%s': unexpected answer", name);
		PQclear(res);
		return NULL;
	}
	return res;
}

/* After an update moved the row to another target: its dbreg password, bound to
 * the old one, re-encrypted for the new (a v1 one becomes v2).  Fernet tokens are
 * bound to nothing and stay. */
static int rebind_row(struct dbreg_ctx *ctx, const PGresult *prior, struct dbreg_conn_list **l, struct dbreg_error *err)
{
	const char *stored = dbreg_result_value(prior, 0, "encrypted_password");
	const struct dbreg_conn *c = dbreg_conn_list_at(*l, 0);
	struct dbreg_binding old, now;
	char keyid[DBREG_KEY_ID_LEN + 1], shown[128];
	struct dbreg_error e;
	char *pw = NULL;
	int version, r;

	if (!stored || (version = dbreg_stored_version(stored, keyid)) < 0)
		return 0;
	dbreg_binding_of_row(prior, 0, &old);
	dbreg_binding_of_conn(c, &now);
	if (same_text(old.host, now.host) && same_text(old.port, now.port) && same_text(old.database, now.database) &&
	    same_text(old.user, now.user) && same_text(old.ssl_mode, now.ssl_mode))
		return 0;
	dbreg_printable(dbreg_conn_get(c, DBREG_F_CONNECTION_NAME), shown, sizeof(shown));
	dbreg_error_clear(&e);
	if (dbreg_ctx_load_keys(ctx, &e) < 0)
		return dbreg_fail(err, e.kind,
		                  "connection '%s': its password is bound to its target and must be re-encrypted for the new one: %s",
		                  shown, e.message);
	r = dbreg_stored_decrypt(dbreg_ctx_keyring(ctx), NULL, &old, stored, &pw, &e);
	if (r < 0 && version == 2) {
		struct dbreg_error again;

		/* Already bound to the new target (the row was changed back to what it was encrypted for). */
		dbreg_error_clear(&again);
		if (dbreg_stored_decrypt(dbreg_ctx_keyring(ctx), NULL, &now, stored, &pw, &again) == 0) {
			dbreg_secret_free(pw);
			return 0;
		}
	}
	if (r < 0)
		return dbreg_fail(err, e.kind, "connection '%s': %s; give a new password with --password-stdin", shown,
		                  e.message);
	r = seal_row(ctx, pw, l, err);
	dbreg_secret_free(pw);
	return r;
}

_public_ int dbreg_register(struct dbreg_ctx *ctx, const char *name, const struct dbreg_spec *s, unsigned flags,
                            struct dbreg_conn_list **ret_row, struct dbreg_error *err)
{
	struct stmt st = { .len = 0, .n = 0 };
	struct dbreg_conn_list *l = NULL;
	PGresult *prior = NULL;
	char id[37];
	char *tags, *patch;
	bool own, pooler;
	int r;

	if (dbreg_check_connection_name(name, err) < 0 || dbreg_spec_check(s, 1, err) < 0 ||
	    check_type(ctx, s, err) < 0 || check_region(ctx, s, err) < 0)
		return -1;
	/* dbreg's own id for a new row (a revived or replaced one keeps its own). */
	if (dbreg_uuid_v4(id, err) < 0)
		return -1;
	tags = dbreg_spec_tags_json(s);
	patch = dbreg_spec_pooler_patch(s);
	pooler = dbreg_spec_pooler(s) != NULL;
	/* Every field with a documented default is written: the registry's own
	 * defaults may differ (the platform's sslmode 'require'). */
	emit(&st, "INSERT INTO " REGISTRY " AS d (id, connection_name");
	for (int f = 0; f < DBREG_F__COUNT; f++)
		if (dbreg_spec_writable(f) && (dbreg_spec_is_set(s, f) || dbreg_field_default(f)))
			emit(&st, ", %s", dbreg_field_name(f));
	if (dbreg_spec_is_set(s, DBREG_F_HAS_PASSWORD))
		emit(&st, ", encrypted_password");
	if (tags)
		emit(&st, ", tags");
	if (dbreg_spec_metadata_json(s) || pooler)
		emit(&st, ", metadata");
	emit(&st, ") VALUES ($%d", param(&st, id));
	emit(&st, ", $%d", param(&st, name));
	for (int f = 0; f < DBREG_F__COUNT; f++)
		if (dbreg_spec_writable(f) && (dbreg_spec_is_set(s, f) || dbreg_field_default(f))) {
			emit(&st, ", ");
			emit_value(&st, ctx, dbreg_spec_is_set(s, f) ? dbreg_spec_value(s, f) : dbreg_field_default(f), f);
		}
	if (dbreg_spec_is_set(s, DBREG_F_HAS_PASSWORD))
		emit(&st, ", $%d", param(&st, stored_value(ctx, s)));
	if (tags)
		emit(&st, ", ARRAY(SELECT jsonb_array_elements_text($%d::jsonb))", param(&st, tags));
	if (pooler) {
		char base[16] = "NULL";

		if (dbreg_spec_metadata_json(s))
			snprintf(base, sizeof(base), "$%d", param(&st, dbreg_spec_metadata_json(s)));
		emit(&st, ", ");
		emit_metadata(&st, s, base, patch);
	} else if (dbreg_spec_metadata_json(s)) {
		emit(&st, ", $%d::jsonb", param(&st, dbreg_spec_metadata_json(s)));
	}
	emit(&st, ")");
	if (dbreg_ctx_profile(ctx)->names_unique_all) {
		/* Names unique over all rows (the platform's): a name whose only row is
		 * deleted revives that row in place (same id), rewritten from these
		 * options with fresh health; a live one only with --replace. */
		emit(&st, " ON CONFLICT (connection_name) DO UPDATE SET ");
		emit_rewrite(&st, s, tags);
		emit(&st, ", deleted_at = NULL, is_healthy = true, consecutive_failures = 0, last_health_check = NULL%s",
		     dbreg_spec_metadata_json(s) ? "" : pooler ? ", metadata = EXCLUDED.metadata" : ", metadata = DEFAULT");
		if (!(flags & DBREG_WRITE_REPLACE))
			emit(&st, " WHERE d.deleted_at IS NOT NULL");
	} else if (flags & DBREG_WRITE_REPLACE) {
		/* Rewrite the live row in place (same id) from these options alone. */
		emit(&st, " ON CONFLICT (connection_name) WHERE deleted_at IS NULL DO UPDATE SET ");
		emit_rewrite(&st, s, tags);
		/* The row's other metadata stays, as update would keep it. */
		if (pooler && !dbreg_spec_metadata_json(s)) {
			emit(&st, ", metadata = ");
			emit_metadata(&st, s, "d.metadata", patch);
		}
	}
	/* Which it was, for the caller's message. */
	emit(&st, " RETURNING (d.xmax <> 0)::text AS rewritten, ");
	emit(&st, "%s", select_list(ctx));
	if (write_begin(ctx, flags, &own, err) < 0) {
		free(tags);
		free(patch);
		return -1;
	}
	/* A live row rewritten without a password keeps its own: bound to its old target, so
	 * read first (locked) and rebound after, under its rotation lock. */
	r = 0;
	if (!dbreg_spec_is_set(s, DBREG_F_HAS_PASSWORD) && (flags & DBREG_WRITE_REPLACE)) {
		prior = prior_row(ctx, name, false, err);
		if (!prior)
			r = -1;
		else if (PQntuples(prior) == 0) {
			PQclear(prior);
			prior = NULL;
		} else if (guard_password(ctx, dbreg_result_value(prior, 0, "id"), name, err) < 0)
			r = -1;
	}
	if (r == 0)
		r = write_rows(ctx, &st, s, name, flags | WRITE_INSERT, &l, err);
	free(tags);
	free(patch);
	if (r == 0 && dbreg_spec_password(s))
		r = guard_password(ctx, dbreg_conn_get(dbreg_conn_list_at(l, 0), DBREG_F_ID), name, err) < 0 ? -1
		  : seal_row(ctx, dbreg_spec_password(s), &l, err);
	else if (r == 0 && prior && same_text(dbreg_result_value(prior, 0, "id"), dbreg_conn_get(dbreg_conn_list_at(l, 0), DBREG_F_ID)))
		r = rebind_row(ctx, prior, &l, err);
	PQclear(prior);
	return write_end(ctx, own, flags, r, l, ret_row, err);
}

_public_ int dbreg_update(struct dbreg_ctx *ctx, const char *name, const struct dbreg_spec *s, unsigned flags,
                          struct dbreg_conn_list **ret_row, struct dbreg_error *err)
{
	struct stmt st = { .len = 0, .n = 0 };
	struct dbreg_conn_list *l = NULL;
	PGresult *prior = NULL;
	const char *sep = "";
	bool own, moves = false;
	char *tags, *patch;
	int r;

	if (dbreg_spec_check(s, 0, err) < 0 || check_region(ctx, s, err) < 0)
		return -1;
	for (size_t i = 0; i < ELEMENTSOF(bound_fields); i++)
		moves = moves || dbreg_spec_is_set(s, bound_fields[i]);
	tags = dbreg_spec_tags_json(s);
	patch = dbreg_spec_pooler_patch(s);
	emit(&st, "UPDATE " REGISTRY " d SET ");
	for (int f = 0; f < DBREG_F__COUNT; f++)
		if (dbreg_spec_writable(f) && dbreg_spec_is_set(s, f)) {
			emit(&st, "%s%s = ", sep, dbreg_field_name(f));
			emit_value(&st, ctx, dbreg_spec_value(s, f), f);
			sep = ", ";
		}
	if (dbreg_spec_is_set(s, DBREG_F_HAS_PASSWORD)) {
		emit(&st, "%sencrypted_password = $%d", sep, param(&st, stored_value(ctx, s)));
		sep = ", ";
	}
	if (tags) {
		emit(&st, "%stags = ARRAY(SELECT jsonb_array_elements_text($%d::jsonb))", sep, param(&st, tags));
		sep = ", ";
	}
	if (dbreg_spec_pooler(s) || patch) {
		char base[16] = "d.metadata";

		if (dbreg_spec_metadata_json(s))
			snprintf(base, sizeof(base), "$%d", param(&st, dbreg_spec_metadata_json(s)));
		emit(&st, "%smetadata = ", sep);
		emit_metadata(&st, s, base, patch);
		sep = ", ";
	} else if (dbreg_spec_metadata_json(s)) {
		emit(&st, "%smetadata = $%d::jsonb", sep, param(&st, dbreg_spec_metadata_json(s)));
		sep = ", ";
	}
	if (!*sep) {
		free(patch);
		free(tags);
		return dbreg_fail(err, DBREG_ERR_USAGE, "nothing to update: give at least one option to change");
	}
	emit(&st, " WHERE connection_name = $%d AND deleted_at IS NULL RETURNING %s", param(&st, name),
	     select_list(ctx));
	if (write_begin(ctx, flags, &own, err) < 0) {
		free(tags);
		free(patch);
		return -1;
	}
	r = 0;
	if (!dbreg_spec_pooler(s) && patch)
		r = check_pooler_row(ctx, name, err);
	/* A change of password or target rewrites the stored password: the row first,
	 * locked, and under its rotation lock. */
	if (r == 0 && (dbreg_spec_is_set(s, DBREG_F_HAS_PASSWORD) || moves)) {
		prior = prior_row(ctx, name, true, err);
		r = !prior || guard_password(ctx, dbreg_result_value(prior, 0, "id"), name, err) < 0 ? -1 : 0;
	}
	if (r == 0)
		r = write_rows(ctx, &st, s, name, flags, &l, err);
	free(tags);
	free(patch);
	if (r == 0 && dbreg_spec_password(s))
		r = seal_row(ctx, dbreg_spec_password(s), &l, err);
	else if (r == 0 && moves && !dbreg_spec_is_set(s, DBREG_F_HAS_PASSWORD))
		r = rebind_row(ctx, prior, &l, err);
	PQclear(prior);
	return write_end(ctx, own, flags, r, l, ret_row, err);
}

/* The slugs of tenants that point at the named live connection, if tenants exist
 * at all: live ones, or with all every one the foreign key still holds. */
static int tenants_of(struct dbreg_ctx *ctx, const char *name, bool all, long *ret_count, char *slugs, size_t size,
                      struct dbreg_error *err)
{
	const char *params[2] = { name, all ? "true" : "false" };
	PGresult *res;

	*ret_count = 0;
	slugs[0] = '\0';
	res = dbreg_exec(ctx, "SELECT to_regclass('admin.tenants') IS NOT NULL AS have_tenants", 0, NULL,
	                 PGRES_TUPLES_OK, err);
	if (!res)
		return -1;
	if (!dbreg_result_value(res, 0, "have_tenants") || dbreg_result_value(res, 0, "have_tenants")[0] != 't') {
		PQclear(res);
		return 0;
	}
	PQclear(res);
	res = dbreg_exec(ctx,
	                 "SELECT count(*) AS n, string_agg(t.slug, ', ' ORDER BY t.slug) AS slugs"
	                 " FROM admin.tenants t JOIN " REGISTRY " d ON d.id = t.database_connection_id"
	                 " WHERE d.connection_name = $1 AND ($2::boolean OR t.deleted_at IS NULL)"
	                 /* the row deregister acts on: the live one, else (purge) the deleted ones */
	                 "   AND (d.deleted_at IS NULL OR ($2::boolean AND NOT EXISTS"
	                 "     (SELECT 1 FROM " REGISTRY " l WHERE l.connection_name = $1 AND l.deleted_at IS NULL)))",
	                 2, params, PGRES_TUPLES_OK, err);
	if (!res)
		return -1;
	*ret_count = dbreg_result_value(res, 0, "n") ? atol(dbreg_result_value(res, 0, "n")) : 0;
	snprintf(slugs, size, "%s", dbreg_result_value(res, 0, "slugs") ? dbreg_result_value(res, 0, "slugs") : "");
	PQclear(res);
	return 0;
}

/* Any other table whose rows reference the row(s) purge would delete refuses
 * it, whatever its ON DELETE says: a purge never cascades silently (the
 * platform's migration history) nor fails half-way. */
static int referenced_elsewhere(struct dbreg_ctx *ctx, const char *name, struct dbreg_error *err)
{
	const char *params[1] = { name };
	char found[900] = "", shown[128];
	size_t o = 0;
	PGresult *fks;
	int r = 0;

	fks = dbreg_exec(ctx,
	                 "SELECT format('%I.%I', n.nspname, c.relname) AS tbl, quote_ident(a.attname) AS col"
	                 " FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid"
	                 " JOIN pg_namespace n ON n.oid = c.relnamespace"
	                 " JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]"
	                 " WHERE k.contype = 'f' AND k.confrelid = '" REGISTRY "'::regclass AND cardinality(k.conkey) = 1"
	                 "   AND NOT (c.oid = to_regclass('admin.tenants') AND a.attname = 'database_connection_id')"
	                 " ORDER BY 1, 2",
	                 0, NULL, PGRES_TUPLES_OK, err);
	if (!fks)
		return -1;
	for (int i = 0; i < PQntuples(fks) && r == 0; i++) {
		const char *tbl = dbreg_result_value(fks, i, "tbl"), *col = dbreg_result_value(fks, i, "col"), *rows;
		char sql[800];
		PGresult *n;

		if (!tbl || !col)
			continue;
		/* Both identifiers come quoted from the server's own catalog. */
		snprintf(sql, sizeof(sql),
		         "SELECT count(*)::text AS n FROM %s WHERE %s IN (SELECT id FROM " REGISTRY
		         " WHERE connection_name = $1 AND (deleted_at IS NULL OR NOT EXISTS"
		         " (SELECT 1 FROM " REGISTRY " WHERE connection_name = $1 AND deleted_at IS NULL)))",
		         tbl, col);
		n = dbreg_exec(ctx, sql, 1, params, PGRES_TUPLES_OK, err);
		if (!n) {
			r = -1;
			break;
		}
		rows = dbreg_result_value(n, 0, "n");
		if (rows && strcmp(rows, "0") != 0 && o < sizeof(found))
			o += (size_t)snprintf(found + o, sizeof(found) - o, "%s%s (%s row%s)", o ? ", " : "", tbl, rows,
			                      strcmp(rows, "1") == 0 ? "" : "s");
		PQclear(n);
	}
	PQclear(fks);
	if (r == 0 && found[0])
		r = dbreg_fail(err, DBREG_ERR_FAILED, "connection '%s' is still referenced by %s; purge refused",
		               dbreg_printable(name, shown, sizeof(shown)), found);
	return r;
}

_public_ int dbreg_deregister(struct dbreg_ctx *ctx, const char *name, int purge, long *ret_tenants,
                              struct dbreg_error *err)
{
	const char *params[1] = { name };
	char slugs[512];
	PGresult *res;
	long tenants;

	if (dbreg_ctx_check_writable(ctx, err) < 0 ||
	    tenants_of(ctx, name, purge, &tenants, slugs, sizeof(slugs), err) < 0)
		return -1;
	if (purge && tenants > 0)
		return dbreg_fail(err, DBREG_ERR_FAILED,
		                  "connection '%s' is still used by %ld tenant%s (%s); move them first", name, tenants,
		                  tenants == 1 ? "" : "s", slugs);
	if (purge && referenced_elsewhere(ctx, name, err) < 0)
		return -1;
	if (purge)
		/* The live row; or, when only deleted ones remain, those. */
		res = dbreg_exec(ctx,
		                 "DELETE FROM " REGISTRY " WHERE connection_name = $1 AND (deleted_at IS NULL OR NOT EXISTS"
		                 " (SELECT 1 FROM " REGISTRY " WHERE connection_name = $1 AND deleted_at IS NULL))"
		                 " RETURNING id",
		                 1, params, PGRES_TUPLES_OK, err);
	else
		res = dbreg_exec(ctx,
		                 "UPDATE " REGISTRY " SET deleted_at = now()"
		                 " WHERE connection_name = $1 AND deleted_at IS NULL RETURNING id",
		                 1, params, PGRES_TUPLES_OK, err);
	if (!res)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return dbreg_fail_unknown_connection(ctx, name, err);
	}
	PQclear(res);
	if (ret_tenants)
		*ret_tenants = tenants;
	return 0;
}

/* The row update --test logs in with: named columns host, port, database_name,
 * username, ssl_mode, encrypted_password; no row when NAME is not live. */
PGresult *dbreg_registry_login_row(struct dbreg_ctx *ctx, const char *name, struct dbreg_error *err)
{
	const char *params[1] = { name };

	return dbreg_exec(ctx,
	                  "SELECT id::text AS id, host::text AS host, port::text AS port, database_name::text AS database_name,"
	                  " username::text AS username, ssl_mode::text AS ssl_mode, encrypted_password"
	                  " FROM " REGISTRY " WHERE connection_name = $1 AND deleted_at IS NULL",
	                  1, params, PGRES_TUPLES_OK, err);
}

/* ---- tenants ---- */
PGresult *dbreg_registry_tenant(struct dbreg_ctx *ctx, const char *key, struct dbreg_error *err)
{
	const char *params[2] = { key, dbreg_is_canonical_uuid(key) ? "true" : "false" };

	/* A canonical UUID is an id (compared as text, so a slug never meets a uuid cast). */
	return dbreg_exec(ctx,
	                  "SELECT id::text AS id, slug::text AS slug, name::text AS name, schema_name::text AS schema_name,"
	                  " status::text AS status, deleted_at IS NOT NULL AS deleted,"
	                  " database_connection_id::text AS database_connection_id FROM admin.tenants"
	                  " WHERE CASE WHEN $2::boolean THEN id::text = lower($1) ELSE slug = $1 END",
	                  2, params, PGRES_TUPLES_OK, err);
}

/* The connection a tenant uses: its own (by id), else the active one by name, of any type
 * (the platform's shared databases are of type primary). */
int dbreg_registry_tenant_connection(struct dbreg_ctx *ctx, const char *conn_id, const char *default_name,
                                     struct dbreg_conn_list **ret, struct dbreg_error *err)
{
	static const char by_id[] = " WHERE id::text = $1 AND deleted_at IS NULL";
	static const char by_name[] =
		" WHERE connection_name = $1 AND deleted_at IS NULL AND is_active";
	const char *params[1] = { conn_id ? conn_id : default_name };
	struct dbreg_conn_list *l;
	char sql[5200];

	snprintf(sql, sizeof(sql), "SELECT %s FROM " REGISTRY " d%s", select_list(ctx), conn_id ? by_id : by_name);
	if (fetch(ctx, sql, 1, params, 0, &l, err) < 0)
		return -1;
	if (dbreg_conn_list_count(l) == 0) {
		dbreg_conn_list_free(l);
		if (conn_id)
			return dbreg_fail(err, DBREG_ERR_FAILED, "the tenant's connection %s is not registered (or deleted)",
			                  conn_id);
		return dbreg_fail(err, DBREG_ERR_FAILED,
		                  "the tenant has no connection of its own and there is no active connection '%s'"
		                  " (see --default-connection)", default_name);
	}
	*ret = l;
	return 0;
}

/* The stored password text of a connection (NULL when none); free() it, never print it. */
int dbreg_registry_stored_password(struct dbreg_ctx *ctx, const char *id, char **ret, struct dbreg_error *err)
{
	const char *params[1] = { id };
	PGresult *res = dbreg_exec(ctx, "SELECT encrypted_password::text AS encrypted_password FROM " REGISTRY
	                           " WHERE id::text = $1", 1, params, PGRES_TUPLES_OK, err);
	const char *v;
	char *copy = NULL;

	if (!res)
		return -1;
	v = PQntuples(res) == 1 ? dbreg_result_value(res, 0, "encrypted_password") : NULL;
	if (v && !(copy = strdup(v))) {
		PQclear(res);
		return dbreg_fail_oom(err);
	}
	PQclear(res);
	*ret = copy;
	return 0;
}

/* quote_ident(): quotes only where it must (upper case, keywords, odd characters). */
char *dbreg_registry_quote_ident(struct dbreg_ctx *ctx, const char *name, struct dbreg_error *err)
{
	const char *params[1] = { name };
	PGresult *res = dbreg_exec(ctx, "SELECT quote_ident($1) AS quoted", 1, params, PGRES_TUPLES_OK, err);
	const char *v;
	char *q;

	if (!res)
		return NULL;
	v = dbreg_result_value(res, 0, "quoted");
	if (!v) {
		PQclear(res);
		dbreg_fail(err, DBREG_ERR_INTERNAL, "the server did not quote the name");
		return NULL;
	}
	q = strdup(v);
	PQclear(res);
	if (!q)
		dbreg_fail_oom(err);
	return q;
}

/* ---- targets for the fan-out commands ---- */

/* The selection's parameters ($1 type, $2 region, $3 names, $4 tags) as text, and the
 * check that every name is registered (the first that is not is reported). */
struct selection {
	const char *params[4];
	char *names, *tags;
	char region[300];         /* the region as operators name it: its code, where region_id is a reference */
};

static void selection_clear(struct selection *sel)
{
	free(sel->names);
	free(sel->tags);
}

static int selection_init(struct dbreg_ctx *ctx, const struct dbreg_filter *filter, struct selection *sel,
                          struct dbreg_error *err)
{
	PGresult *res;

	*sel = (struct selection){ .names = NULL };
	if (check_filter(ctx, filter, err) < 0)
		return -1;
	sel->names = names_json((const char *const *)filter->names);
	sel->tags = names_json((const char *const *)filter->tags);
	if ((filter->names && !sel->names) || (filter->tags && !sel->tags)) {
		selection_clear(sel);
		return dbreg_fail_oom(err);
	}
	sel->params[0] = filter->type;
	sel->params[1] = filter->region;
	sel->params[2] = sel->names;
	sel->params[3] = sel->tags;
	dbreg_region_code_expr(dbreg_ctx_profile(ctx), sel->region, sizeof(sel->region));
	if (!sel->names)
		return 0;
	res = dbreg_exec(ctx,
	                 "SELECT n AS missing FROM jsonb_array_elements_text($1::jsonb) AS n"
	                 " WHERE NOT EXISTS (SELECT 1 FROM " REGISTRY " WHERE connection_name = n AND deleted_at IS NULL)"
	                 " LIMIT 1",
	                 1, sel->params + 2, PGRES_TUPLES_OK, err);
	if (!res) {
		selection_clear(sel);
		return -1;
	}
	if (PQntuples(res) > 0) {
		dbreg_fail_unknown_connection(ctx, dbreg_result_value(res, 0, "missing"), err);
		PQclear(res);
		selection_clear(sel);
		return -1;
	}
	PQclear(res);
	return 0;
}

/* The rows a selection takes, on the registry as d (%s: the region expression). */
#define SELECTION_WHERE \
	" d.deleted_at IS NULL" \
	"   AND ($1::text IS NULL OR d.connection_type::text = $1)" \
	"   AND ($2::text IS NULL OR %s = $2)" \
	"   AND CASE WHEN $3::jsonb IS NULL THEN d.is_active" \
	"       ELSE d.connection_name IN (SELECT jsonb_array_elements_text($3::jsonb)) END" \
	"   AND ($4::jsonb IS NULL OR d.tags::text[] @> ARRAY(SELECT jsonb_array_elements_text($4::jsonb)))"

static int targets_select(struct dbreg_ctx *ctx, const struct selection *sel, const char *ids_json,
                          int (*each)(const PGresult *, void *), void *userdata, struct dbreg_error *err)
{
	const char *params[5] = { sel->params[0], sel->params[1], sel->params[2], sel->params[3], ids_json };
	char sql[3000];

	snprintf(sql, sizeof(sql),
	         "SELECT id::text AS id, connection_name::text AS connection_name,"
	         " connection_type::text AS connection_type, %s AS region_id, host::text AS host,"
	         " port::text AS port, database_name::text AS database_name, username::text AS username,"
	         " ssl_mode::text AS ssl_mode, encrypted_password::text AS encrypted_password,"
	         " is_active::text AS is_active, pool_min_size::text AS pool_min_size,"
	         " pool_max_size::text AS pool_max_size, pool_timeout_seconds::text AS pool_timeout_seconds,"
	         " pool_recycle_seconds::text AS pool_recycle_seconds, %s AS pending_password,"
	         " d.metadata::jsonb ->> 'pooler' AS pooler, d.metadata::jsonb ->> 'pooler_db' AS pooler_db,"
	         /* What the row says the server is: its type where the registry's types are
	          * roles (the platform's enum), else metadata.expected_role when a string. */
	         " CASE WHEN lower(connection_type::text) IN ('primary', 'replica') THEN lower(connection_type::text)"
	         "      WHEN jsonb_typeof(d.metadata::jsonb -> 'expected_role') = 'string'"
	         "      THEN d.metadata::jsonb ->> 'expected_role' END AS expected_role"
	         " FROM " REGISTRY " d WHERE" SELECTION_WHERE
	         "   AND ($5::jsonb IS NULL OR d.id::text IN (SELECT jsonb_array_elements_text($5::jsonb)))"
	         " ORDER BY connection_name",
	         sel->region,
	         /* What an unfinished rotate-password may have set on the server already. */
	         dbreg_ctx_profile(ctx)->have_pending
	             ? "(SELECT p.encrypted_password::text FROM admin.dbreg_pending_rotations p"
	               " WHERE p.connection_id::text = d.id::text)"
	             : "NULL::text",
	         sel->region);
	return dbreg_exec_each(ctx, sql, 5, params, each, userdata, err);
}

int dbreg_registry_now(struct dbreg_ctx *ctx, char *buf, size_t size, struct dbreg_error *err)
{
	PGresult *res = dbreg_exec(ctx, "SELECT now()::text AS now", 0, NULL, PGRES_TUPLES_OK, err);
	const char *v;

	if (!res)
		return -1;
	v = dbreg_result_value(res, 0, "now");
	if (!v || strlen(v) >= size) {
		PQclear(res);
		return dbreg_fail(err, DBREG_ERR_INTERNAL, "the admin server did not say what time it is");
	}
	memcpy(buf, v, strlen(v) + 1);
	PQclear(res);
	return 0;
}

/* Due: not checked since now() - every ($5) nor since the run began ($6), and no live claim. */
#define DUE_WHERE \
	"   AND NOT EXISTS (SELECT 1 FROM admin.dbreg_health_history h WHERE h.connection_id = d.id::text" \
	"     AND h.checked_at > least(now() - make_interval(secs => $5::bigint), $6::timestamptz))" \
	"   AND NOT EXISTS (SELECT 1 FROM admin.dbreg_health_claims c WHERE c.connection_id = d.id::text" \
	"     AND c.expires_at > now())"

/* The parameters of DUE_WHERE after the selection's; every is the caller's buffer. */
static void due_params(const struct selection *sel, long every_s, char every[32], const char *run_started,
                       const char *params[6])
{
	snprintf(every, 32, "%ld", every_s);
	memcpy(params, sel->params, sizeof(sel->params));
	params[4] = every;
	params[5] = run_started;
}

/* The due rows of the selection (not checked since now() - every_s, nor since the run
 * began, so that a run checks a row once however long it takes), at most batch of them,
 * claimed for checker for lease_s seconds in one short statement: rows locked by another
 * claim are skipped, and a row whose claim another checker has just taken (ON CONFLICT,
 * on the claim's latest version) is not returned. */
PGresult *dbreg_registry_health_claim(struct dbreg_ctx *ctx, const struct dbreg_filter *filter, const char *checker,
                                      long every_s, long lease_s, int batch, const char *run_started,
                                      struct dbreg_error *err)
{
	struct selection sel;
	char every[32], lease[32], limit[16], sql[2400];
	const char *params[9];
	PGresult *res;

	if (dbreg_ctx_check_writable(ctx, err) < 0 || selection_init(ctx, filter, &sel, err) < 0)
		return NULL;
	due_params(&sel, every_s, every, run_started, params);
	snprintf(limit, sizeof(limit), "%d", batch);
	snprintf(lease, sizeof(lease), "%ld", lease_s);
	params[6] = limit;
	params[7] = checker;
	params[8] = lease;
	snprintf(sql, sizeof(sql),
	         "WITH due AS (SELECT d.id::text AS id FROM " REGISTRY " d WHERE" SELECTION_WHERE DUE_WHERE
	         "   ORDER BY d.connection_name LIMIT $7::int FOR UPDATE OF d SKIP LOCKED)"
	         " INSERT INTO admin.dbreg_health_claims AS c (connection_id, checker, claimed_at, expires_at)"
	         " SELECT id, $8, now(), now() + make_interval(secs => $9::bigint) FROM due"
	         " ON CONFLICT (connection_id) DO UPDATE SET checker = excluded.checker,"
	         "   claimed_at = excluded.claimed_at, expires_at = excluded.expires_at"
	         "   WHERE c.expires_at <= now()"
	         " RETURNING c.connection_id AS id",
	         sel.region);
	res = dbreg_exec(ctx, sql, 9, params, PGRES_TUPLES_OK, err);
	selection_clear(&sel);
	return res;
}

/* How many rows of the selection are due now, neither locked nor claimed. */
int dbreg_registry_health_due(struct dbreg_ctx *ctx, const struct dbreg_filter *filter, long every_s,
                              const char *run_started, long *ret_n, struct dbreg_error *err)
{
	struct selection sel;
	char every[32], sql[2000];
	const char *params[6];
	PGresult *res;

	if (selection_init(ctx, filter, &sel, err) < 0)
		return -1;
	due_params(&sel, every_s, every, run_started, params);
	snprintf(sql, sizeof(sql), "SELECT count(*)::text AS due FROM " REGISTRY " d WHERE" SELECTION_WHERE DUE_WHERE,
	         sel.region);
	res = dbreg_exec(ctx, sql, 6, params, PGRES_TUPLES_OK, err);
	selection_clear(&sel);
	if (!res)
		return -1;
	*ret_n = dbreg_result_value(res, 0, "due") ? atol(dbreg_result_value(res, 0, "due")) : 0;
	PQclear(res);
	return 0;
}

/* The rows of the selection among ids (a JSON array; NULL: all of them). */
int dbreg_registry_targets_each(struct dbreg_ctx *ctx, const struct dbreg_filter *filter, const char *ids_json,
                                int (*each)(const PGresult *res, void *userdata), void *userdata,
                                struct dbreg_error *err)
{
	struct selection sel;
	int rc;

	if (selection_init(ctx, filter, &sel, err) < 0)
		return -1;
	rc = targets_select(ctx, &sel, ids_json, each, userdata, err);
	selection_clear(&sel);
	return rc;
}

int dbreg_registry_health_release(struct dbreg_ctx *ctx, const char *ids_json, const char *checker,
                                  struct dbreg_error *err)
{
	const char *params[2] = { ids_json, checker };
	PGresult *res = dbreg_exec(ctx,
	                           "DELETE FROM admin.dbreg_health_claims WHERE checker = $2"
	                           " AND connection_id IN (SELECT jsonb_array_elements_text($1::jsonb))",
	                           2, params, PGRES_COMMAND_OK, err);

	PQclear(res);
	return res ? 0 : -1;
}

int dbreg_registry_health_writeback(struct dbreg_ctx *ctx, const char *results_json, const char *run_started,
                                    const char *checker, struct dbreg_error *err)
{
	const char *params[3] = { results_json, run_started, checker };
	PGresult *res;

	if (dbreg_ctx_check_writable(ctx, err) < 0)
		return -1;
	/* One statement, so one transaction: the registry's health columns (the trigger leaves
	 * updated_at alone), the history (UNKNOWN results too) and this checker's claims.  A
	 * failure is counted only when no other run has written a check of the row since this
	 * one began ($2): overlapping runs count one outage once.  Under concurrent runs the
	 * UPDATE waits for the other's row and reads its last_health_check again. */
	res = dbreg_exec(ctx,
	                 "WITH v AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS v(id text, status text,"
	                 "     latency_ms double precision, error text, server_version text, in_recovery boolean,"
	                 "     expected_role text, replay_lag_seconds double precision, replay_lag_bytes bigint,"
	                 "     tls_in_use boolean, tls_protocol text, tls_cipher text, cert_not_after double precision)),"
	                 " u AS (UPDATE " REGISTRY " d SET last_health_check = now(),"
	                 "     consecutive_failures = CASE WHEN v.status <> 'UNHEALTHY' THEN 0"
	                 "       WHEN d.last_health_check > $2::timestamptz THEN coalesce(d.consecutive_failures, 0)"
	                 "       ELSE coalesce(d.consecutive_failures, 0) + 1 END,"
	                 "     is_healthy = CASE WHEN v.status <> 'UNHEALTHY' THEN true"
	                 "       WHEN d.last_health_check > $2::timestamptz THEN d.is_healthy"
	                 "       WHEN coalesce(d.consecutive_failures, 0) + 1 >= d.max_consecutive_failures THEN false"
	                 "       ELSE d.is_healthy END"
	                 "   FROM v WHERE d.id::text = v.id AND v.status <> 'UNKNOWN' RETURNING d.id),"
	                 " h AS (INSERT INTO admin.dbreg_health_history (connection_id, checked_at, status, latency_ms,"
	                 "     error, checker, server_version, in_recovery, expected_role, replay_lag_seconds,"
	                 "     replay_lag_bytes, tls_in_use, tls_protocol, tls_cipher, cert_not_after)"
	                 "   SELECT v.id, now(), v.status, v.latency_ms, v.error, $3, v.server_version, v.in_recovery,"
	                 "     v.expected_role, v.replay_lag_seconds, v.replay_lag_bytes, v.tls_in_use, v.tls_protocol,"
	                 "     v.tls_cipher, to_timestamp(v.cert_not_after) FROM v RETURNING 1),"
	                 " c AS (DELETE FROM admin.dbreg_health_claims c USING v"
	                 "   WHERE c.connection_id = v.id AND c.checker = $3 RETURNING 1)"
	                 " SELECT (SELECT count(*) FROM u) AS updated, (SELECT count(*) FROM h) AS recorded",
	                 3, params, PGRES_TUPLES_OK, err);
	if (!res)
		return -1;
	PQclear(res);
	return 0;
}

/* History rows older than keep_s, at most batch of them: how many went in *ret_n. */
int dbreg_registry_health_prune(struct dbreg_ctx *ctx, long keep_s, int batch, long *ret_n, struct dbreg_error *err)
{
	char keep[32], limit[16];
	const char *params[2] = { keep, limit };
	PGresult *res;

	snprintf(keep, sizeof(keep), "%ld", keep_s);
	snprintf(limit, sizeof(limit), "%d", batch);
	res = dbreg_exec(ctx,
	                 "WITH old AS (DELETE FROM admin.dbreg_health_history WHERE ctid = ANY (ARRAY("
	                 "   SELECT ctid FROM admin.dbreg_health_history"
	                 "   WHERE checked_at < now() - make_interval(secs => $1::bigint) LIMIT $2::int)) RETURNING 1),"
	                 " gone AS (DELETE FROM admin.dbreg_health_claims WHERE expires_at < now() - interval '1 day'"
	                 "   RETURNING 1)"
	                 " SELECT (SELECT count(*) FROM old)::text AS pruned, (SELECT count(*) FROM gone) AS expired",
	                 2, params, PGRES_TUPLES_OK, err);
	if (!res)
		return -1;
	*ret_n = dbreg_result_value(res, 0, "pruned") ? atol(dbreg_result_value(res, 0, "pruned")) : 0;
	PQclear(res);
	return 0;
}

/* Per selected connection, over the window: its checks, failures, uptime (answered among
 * the known), latency percentiles of the answered checks, status changes, the last
 * failure and the last 100 latencies (-1: no answer) oldest first, all on the server. */
PGresult *dbreg_registry_health_history(struct dbreg_ctx *ctx, const struct dbreg_filter *filter, long since_s,
                                        struct dbreg_error *err)
{
	struct selection sel;
	char since[32], sql[3600];
	const char *params[5];
	PGresult *res;

	if (!dbreg_ctx_profile(ctx)->have_history) {
		dbreg_fail(err, DBREG_ERR_CONFIG, "this registry has no health history yet; run 'dbreg init'");
		return NULL;
	}
	if (selection_init(ctx, filter, &sel, err) < 0)
		return NULL;
	snprintf(since, sizeof(since), "%ld", since_s);
	memcpy(params, sel.params, sizeof(sel.params));
	params[4] = since;
	snprintf(sql, sizeof(sql),
	         "WITH s AS (SELECT d.id::text AS id, d.connection_name::text AS name FROM " REGISTRY " d"
	         "   WHERE" SELECTION_WHERE "),"
	         " h AS (SELECT s.name, h.checked_at, h.status, h.latency_ms,"
	         "     lag(h.status) OVER w AS previous,"
	         "     row_number() OVER (PARTITION BY s.name ORDER BY h.checked_at DESC) AS age"
	         "   FROM s JOIN admin.dbreg_health_history h ON h.connection_id = s.id"
	         "   WHERE h.checked_at > now() - make_interval(secs => $5::bigint)"
	         "   WINDOW w AS (PARTITION BY s.name ORDER BY h.checked_at))"
	         " SELECT s.name AS connection_name, count(h.status)::text AS checks,"
	         "   count(*) FILTER (WHERE h.status = 'UNHEALTHY')::text AS failures,"
	         "   round(100.0 * count(*) FILTER (WHERE h.status IN ('HEALTHY', 'DEGRADED'))"
	         "     / nullif(count(*) FILTER (WHERE h.status <> 'UNKNOWN'), 0), 2)::text AS uptime_pct,"
	         "   round((percentile_cont(0.5) WITHIN GROUP (ORDER BY h.latency_ms)"
	         "     FILTER (WHERE h.status IN ('HEALTHY', 'DEGRADED')))::numeric, 1)::text AS latency_p50_ms,"
	         "   round((percentile_cont(0.95) WITHIN GROUP (ORDER BY h.latency_ms)"
	         "     FILTER (WHERE h.status IN ('HEALTHY', 'DEGRADED')))::numeric, 1)::text AS latency_p95_ms,"
	         "   count(*) FILTER (WHERE h.previous IS NOT NULL AND h.previous <> h.status)::text AS status_changes,"
	         "   to_char(max(h.checked_at) FILTER (WHERE h.status = 'UNHEALTHY') AT TIME ZONE 'UTC',"
	         "     'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS last_failure,"
	         "   coalesce(string_agg(CASE WHEN h.status IN ('HEALTHY', 'DEGRADED') AND h.latency_ms IS NOT NULL"
	         "       THEN round(h.latency_ms::numeric, 1)::text ELSE '-1' END, ',' ORDER BY h.checked_at)"
	         "     FILTER (WHERE h.age <= 100), '') AS latencies"
	         " FROM s LEFT JOIN h ON h.name = s.name GROUP BY s.name ORDER BY s.name",
	         sel.region);
	res = dbreg_exec(ctx, sql, 5, params, PGRES_TUPLES_OK, err);
	selection_clear(&sel);
	return res;
}

/* ---- validate-config ---- */
/* These take validate's own connection: it reads registries that dbreg_ctx_connect
 * would refuse (no schema, an old one), to report on them. */

PGresult *dbreg_registry_validate_rows(PGconn *conn, struct dbreg_error *err)
{
	PGresult *res = PQexec(conn,
		"SELECT d.id::text AS id, d.connection_name::text AS connection_name, d.host::text AS host,"
		" d.port::text AS port,"
		" d.database_name::text AS database_name, d.username::text AS username, d.ssl_mode::text AS ssl_mode,"
		" d.encrypted_password::text AS encrypted_password, d.pool_min_size::text AS pool_min_size,"
		" d.pool_max_size::text AS pool_max_size, d.pool_timeout_seconds::text AS pool_timeout_seconds,"
		" d.pool_recycle_seconds::text AS pool_recycle_seconds,"
		/* The row's group, by one window rather than a query per row: its size, and the
		 * id of its first member by name, the row that reports the group, once. */
		" count(*) OVER same AS group_size, first_value(d.id::text) OVER same AS group_lead"
		" FROM " REGISTRY " d WHERE d.deleted_at IS NULL"
		" WINDOW same AS (PARTITION BY lower(d.host), d.port, d.database_name, d.username ORDER BY d.connection_name"
		"   ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)"
		" ORDER BY d.connection_name");

	if (check_conn_result(res, PGRES_TUPLES_OK, "cannot read the registered connections", err) < 0) {
		PQclear(res);
		return NULL;
	}
	return res;
}

PGresult *dbreg_registry_validate_tenants(PGconn *conn, struct dbreg_error *err)
{
	/* conn_state is NULL for a tenant without a connection of its own. */
	PGresult *res = PQexec(conn,
		"SELECT t.slug::text AS slug, t.schema_name::text AS schema_name, t.status::text AS status,"
		" t.database_connection_id::text AS database_connection_id, d.connection_name::text AS connection_name,"
		" CASE WHEN t.database_connection_id IS NULL THEN NULL WHEN d.id IS NULL THEN 'missing'"
		"   WHEN d.deleted_at IS NOT NULL THEN 'deleted' WHEN NOT d.is_active THEN 'inactive' ELSE 'ok' END"
		"   AS conn_state"
		" FROM admin.tenants t LEFT JOIN " REGISTRY " d ON d.id = t.database_connection_id"
		" WHERE t.deleted_at IS NULL AND t.status::text <> 'deleted' ORDER BY t.slug");

	if (check_conn_result(res, PGRES_TUPLES_OK, "cannot read the tenants", err) < 0) {
		PQclear(res);
		return NULL;
	}
	return res;
}

PGresult *dbreg_registry_validate_default(PGconn *conn, const char *name, struct dbreg_error *err)
{
	const char *params[1] = { name };
	PGresult *res = PQexecParams(conn,
		"SELECT CASE WHEN is_active THEN 't' ELSE 'f' END AS is_active FROM " REGISTRY
		" WHERE connection_name = $1 AND deleted_at IS NULL",
		1, NULL, params, NULL, NULL, 0);

	if (check_conn_result(res, PGRES_TUPLES_OK, "cannot read the default connection", err) < 0) {
		PQclear(res);
		return NULL;
	}
	return res;
}
