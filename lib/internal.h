/* internal.h — what the library's modules share with each other (and unit tests), never exported. */
#ifndef DBREG_INTERNAL_H
#define DBREG_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <libpq-fe.h>

#include "dbreg.h"

#define _public_ __attribute__((visibility("default")))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

/* error.c */
int dbreg_fail(struct dbreg_error *err, enum dbreg_errkind kind, const char *fmt, ...) _printf_(3, 4);
/* Fills err from a failed result: message, SQLSTATE, kind from the class. */
int dbreg_fail_result(struct dbreg_error *err, const PGresult *res, const char *what);
int dbreg_fail_oom(struct dbreg_error *err);
/* Puts "<prefix>" before the message already in err. */
void dbreg_error_prefix(struct dbreg_error *err, const char *fmt, ...) _printf_(2, 3);

/* conninfo.c: the one module that parses and builds connection strings. */
struct dbreg_params {
	const char *keys[32];
	const char *vals[32];
	int n;
};
void dbreg_params_add(struct dbreg_params *p, const char *key, const char *val);
/* Opens the admin connection for url (libpq's expand_dbname), adding
 * connect_timeout=10 unless the URL or PGCONNECT_TIMEOUT gives one. */
int dbreg_connect_admin(const char *url, PGconn **ret, struct dbreg_error *err);
/* Classifies a failed connection: DBREG_ERR_CONFIG when the server refused us
 * (authentication, no such database or role), else DBREG_ERR_UNAVAILABLE. */
enum dbreg_errkind dbreg_classify_connect_failure(PGconn *conn);
/* First line of libpq's connection error, without "connection to server ... failed:". */
void dbreg_connect_error(PGconn *conn, char *buf, size_t size);

/* secret.c */
int dbreg_keyring_count(const struct dbreg_keyring *kr);

/* Logs in to one target (blocking) and runs SELECT 1. */
int dbreg_test_login(const char *host, const char *port, const char *dbname, const char *user,
                     const char *sslmode, const char *password, int timeout_s, struct dbreg_error *err);

/* ctx.c */
/* Connects without looking at the registry schema (for init). */
int dbreg_ctx_connect_raw(struct dbreg_ctx *ctx, struct dbreg_error *err);
PGconn *dbreg_ctx_conn(struct dbreg_ctx *ctx);
/* Refuses writes to a registry newer than this library knows. */
int dbreg_ctx_check_writable(struct dbreg_ctx *ctx, struct dbreg_error *err);
/* Runs a parameterized statement on the admin connection; on failure fills
 * err and returns NULL. expect is PGRES_TUPLES_OK or PGRES_COMMAND_OK. */
PGresult *dbreg_exec(struct dbreg_ctx *ctx, const char *sql, int nparams,
                     const char *const *params, ExecStatusType expect, struct dbreg_error *err);
int dbreg_ctx_cancelled(struct dbreg_ctx *ctx);
#include <signal.h>
volatile sig_atomic_t *dbreg_ctx_cancel_flag(struct dbreg_ctx *ctx);
void dbreg_ctx_set_schema_version(struct dbreg_ctx *ctx, int version);

/* registry.c */
int dbreg_registry_check_schema(PGconn *conn, int *ret_version, struct dbreg_error *err);
/* Turns a constraint violation into a message naming the field and the
 * allowed values, read from the database. */
int dbreg_fail_write(struct dbreg_ctx *ctx, const PGresult *res, const struct dbreg_spec *s,
                     const char *name, struct dbreg_error *err);

/* Targets to log in to: columns in the order of enum target_col. */
enum target_col {
	TC_ID, TC_NAME, TC_TYPE, TC_REGION, TC_HOST, TC_PORT, TC_DATABASE, TC_USER, TC_SSL_MODE,
	TC_PASSWORD, TC_ACTIVE, TC_POOL_MIN, TC_POOL_MAX, TC_POOL_TIMEOUT, TC_POOL_RECYCLE,
};
/* Live rows matching the filter (names select inactive rows too); an unknown
 * name is DBREG_ERR_FAILED. */
PGresult *dbreg_registry_targets(struct dbreg_ctx *ctx, const struct dbreg_filter *filter, struct dbreg_error *err);
/* Writes health results ([{"id","ok"}] as JSON) in one statement. */
int dbreg_registry_health_writeback(struct dbreg_ctx *ctx, const char *results_json, struct dbreg_error *err);

/* Tenant rows: id, slug, name, schema_name, status, deleted (t/f), database_connection_id. */
PGresult *dbreg_registry_tenant(struct dbreg_ctx *ctx, const char *key, struct dbreg_error *err);
int dbreg_registry_tenant_connection(struct dbreg_ctx *ctx, const char *conn_id, const char *default_name,
                                     struct dbreg_conn_list **ret, struct dbreg_error *err);
int dbreg_registry_stored_password(struct dbreg_ctx *ctx, const char *id, char **ret, struct dbreg_error *err);
char *dbreg_registry_quote_ident(struct dbreg_ctx *ctx, const char *name, struct dbreg_error *err);
/* Logs in to one target (blocking), runs sql with one optional parameter and
 * reads the first column of the first row as a boolean into *ret_true. */
int dbreg_target_ask(const char *host, const char *port, const char *dbname, const char *user,
                     const char *sslmode, const char *password, int timeout_s, const char *sql,
                     const char *param, int *ret_true, struct dbreg_error *err);

/* conn.c */
const char *dbreg_spec_value(const struct dbreg_spec *s, enum dbreg_field f);
char *dbreg_spec_tags_json(const struct dbreg_spec *s);    /* free() it */
const char *dbreg_spec_stored_password(const struct dbreg_spec *s);
const char *dbreg_spec_test_password(const struct dbreg_spec *s);
int dbreg_spec_writable(enum dbreg_field f);
struct dbreg_conn_list *dbreg_conn_list_from_result(PGresult *res, struct dbreg_error *err);
/* The SELECT list that dbreg_conn_list_from_result reads, in the order of enum
 * dbreg_field; the stored password itself never leaves the server. */
#define DBREG_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define DBREG_CONN_SELECT \
	"id::text, connection_name, connection_type, region_id, host, port::text, database_name," \
	" username, ssl_mode, pool_min_size::text, pool_max_size::text, pool_timeout_seconds::text," \
	" pool_recycle_seconds::text, pool_pre_ping::text, is_active::text, is_healthy::text, " \
	DBREG_TS("last_health_check") ", consecutive_failures::text, max_consecutive_failures::text," \
	" metadata::text, to_jsonb(tags)::text, " DBREG_TS("created_at") ", " DBREG_TS("updated_at") ", " \
	DBREG_TS("deleted_at") ", (encrypted_password IS NOT NULL)::text," \
	" CASE WHEN encrypted_password ~ '^dbreg:v1:[0-9a-f]{8}:' THEN substr(encrypted_password, 10, 8) END"

/* names.c */
bool dbreg_is_uuid(const char *s);

#endif
