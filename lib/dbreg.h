/* dbreg.h — the one public interface of libdbreg, a registry of PostgreSQL connections. */
#ifndef DBREG_H
#define DBREG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Conventions: every call that can fail returns 0 on success and a negative
 * value on failure, and then fills the optional error object.  Output
 * parameters (ret_...) are left untouched on failure.  Every ..._free
 * accepts NULL.  The library never prints and never exits.
 */

/* What kind of failure; the command line maps each to its exit status. */
enum dbreg_errkind {
	DBREG_OK = 0,
	DBREG_ERR_FAILED,      /* ran, answer negative: not found, refused by the database */
	DBREG_ERR_USAGE,       /* a value dbreg checks itself is invalid */
	DBREG_ERR_UNAVAILABLE, /* the admin database cannot be reached */
	DBREG_ERR_CONFIG,      /* URL, key, authentication, schema missing or too new */
	DBREG_ERR_INTERNAL,    /* out of memory, I/O, a bug */
};

struct dbreg_error {
	enum dbreg_errkind kind;
	char sqlstate[6];      /* "" unless the database sent one */
	char message[1024];
};

void dbreg_error_clear(struct dbreg_error *err);

const char *dbreg_version(void);

/* ---- context: the admin connection, the keyring, settings ---- */
struct dbreg_ctx;

/* Reads ADMIN_DATABASE_URL and the key variables lazily: creation never fails
 * for want of them. */
int dbreg_ctx_new(struct dbreg_ctx **ret_ctx, struct dbreg_error *err);
void dbreg_ctx_free(struct dbreg_ctx *ctx);

/* Overrides ADMIN_DATABASE_URL (NULL: use the environment again). */
int dbreg_ctx_set_admin_url(struct dbreg_ctx *ctx, const char *url, struct dbreg_error *err);

/* Connects (or checks the kept connection, reconnecting once if it dropped)
 * and verifies the registry schema.  *ret_reconnected, when given, is set to 1
 * when a dropped connection was re-established. */
int dbreg_ctx_connect(struct dbreg_ctx *ctx, int *ret_reconnected, struct dbreg_error *err);

/* The database name of the admin connection, for prompts ("" if unknown). */
const char *dbreg_ctx_admin_dbname(struct dbreg_ctx *ctx);

/* Asks the server to cancel whatever the admin connection runs now, and
 * stops a running fan-out.  Async-signal-safe. */
void dbreg_ctx_cancel(struct dbreg_ctx *ctx);
/* Was dbreg_ctx_cancel called since the last reset? */
int dbreg_ctx_was_cancelled(struct dbreg_ctx *ctx);
/* Clears a pending cancellation before the next command. */
void dbreg_ctx_reset_cancel(struct dbreg_ctx *ctx);

/* Loads the keyring from the environment (DB_ENCRYPTION_KEY[_FILE],
 * DB_ENCRYPTION_OLD_KEYS).  DBREG_ERR_CONFIG when missing or malformed. */
int dbreg_ctx_load_keys(struct dbreg_ctx *ctx, struct dbreg_error *err);
/* After dbreg_ctx_connect: loads what writing a password into this registry
 * needs, the keyring or (a registry in the platform's Fernet format) the key
 * of DB_FERNET_PASSPHRASE; DBREG_ERR_CONFIG naming the variable otherwise. */
int dbreg_ctx_load_write_keys(struct dbreg_ctx *ctx, struct dbreg_error *err);
/* The same for a password format named ("dbreg" or NULL: the keyring; "fernet":
 * the passphrase's key), connected or not. */
int dbreg_ctx_load_format_keys(struct dbreg_ctx *ctx, const char *format, struct dbreg_error *err);

/* ---- secrets ---- */
#define DBREG_KEY_BYTES 32
#define DBREG_KEY_ID_LEN 8
#define DBREG_PASSWORD_MAX 138
#define DBREG_STORED_MAX 256

/* Parses a key in hex or base64 (either alphabet, padding optional, surrounding
 * white space ignored) into 32 bytes. */
int dbreg_key_parse(const char *text, unsigned char key[DBREG_KEY_BYTES], struct dbreg_error *err);
/* The key id: 8 lowercase hex digits of BLAKE2b-256(key), NUL-terminated. */
void dbreg_key_id(const unsigned char key[DBREG_KEY_BYTES], char id[DBREG_KEY_ID_LEN + 1]);
/* A new random key as standard base64 with padding; *ret is freed by the caller
 * with dbreg_secret_free. */
int dbreg_key_generate(char **ret_text, struct dbreg_error *err);

struct dbreg_keyring;
int dbreg_keyring_new(struct dbreg_keyring **ret, struct dbreg_error *err);
void dbreg_keyring_free(struct dbreg_keyring *kr);
/* The first key added is the current one (used to encrypt). */
int dbreg_keyring_add(struct dbreg_keyring *kr, const unsigned char key[DBREG_KEY_BYTES], struct dbreg_error *err);
int dbreg_keyring_add_text(struct dbreg_keyring *kr, const char *text, struct dbreg_error *err);
/* Parses DB_ENCRYPTION_KEY / DB_ENCRYPTION_KEY_FILE / DB_ENCRYPTION_OLD_KEYS. */
int dbreg_keyring_from_env(struct dbreg_keyring **ret, struct dbreg_error *err);

/* Encrypts len bytes of password into the stored text of SPEC §3. */
int dbreg_encrypt(const struct dbreg_keyring *kr, const char *password, size_t len,
                  char **ret_stored, struct dbreg_error *err);
/* Decrypts stored text; *ret_password is NUL-terminated and must be released
 * with dbreg_secret_free, which wipes it. */
int dbreg_decrypt(const struct dbreg_keyring *kr, const char *stored,
                  char **ret_password, struct dbreg_error *err);
/* The key id named by stored text, or NULL when it is not dbreg:v1 text. */
int dbreg_stored_key_id(const char *stored, char id[DBREG_KEY_ID_LEN + 1]);
/* Wipes and frees a string the library handed out as secret. */
void dbreg_secret_free(char *s);
/* The context's keyring (NULL before dbreg_ctx_load_keys succeeded). */
const struct dbreg_keyring *dbreg_ctx_keyring(struct dbreg_ctx *ctx);

/* ---- connection strings ---- */
/* Fields of a libpq URI or key=value string that a registered connection
 * keeps; absent ones are NULL.  A password inside is DBREG_ERR_USAGE. */
struct dbreg_url_parts;
int dbreg_url_parse(const char *url, struct dbreg_url_parts **ret, struct dbreg_error *err);
void dbreg_url_parts_free(struct dbreg_url_parts *p);
const char *dbreg_url_parts_host(const struct dbreg_url_parts *p);
const char *dbreg_url_parts_port(const struct dbreg_url_parts *p);
const char *dbreg_url_parts_dbname(const struct dbreg_url_parts *p);
const char *dbreg_url_parts_user(const struct dbreg_url_parts *p);
const char *dbreg_url_parts_sslmode(const struct dbreg_url_parts *p);

/* ---- registered connections ---- */
enum dbreg_field {
	DBREG_F_ID,
	DBREG_F_CONNECTION_NAME,
	DBREG_F_CONNECTION_TYPE,
	DBREG_F_REGION_ID,
	DBREG_F_HOST,
	DBREG_F_PORT,
	DBREG_F_DATABASE_NAME,
	DBREG_F_USERNAME,
	DBREG_F_SSL_MODE,
	DBREG_F_POOL_MIN_SIZE,
	DBREG_F_POOL_MAX_SIZE,
	DBREG_F_POOL_TIMEOUT_SECONDS,
	DBREG_F_POOL_RECYCLE_SECONDS,
	DBREG_F_POOL_PRE_PING,
	DBREG_F_IS_ACTIVE,
	DBREG_F_IS_HEALTHY,
	DBREG_F_LAST_HEALTH_CHECK,
	DBREG_F_CONSECUTIVE_FAILURES,
	DBREG_F_MAX_CONSECUTIVE_FAILURES,
	DBREG_F_METADATA,
	DBREG_F_TAGS,
	DBREG_F_CREATED_AT,
	DBREG_F_UPDATED_AT,
	DBREG_F_DELETED_AT,
	DBREG_F_HAS_PASSWORD,
	DBREG_F_KEY_ID,
	DBREG_F_PASSWORD_FORMAT,   /* dbreg, fernet, unknown; NULL without a password */
	DBREG_F_REGION_CODE,       /* only where region_id references a table of regions (dbreg_conn_has) */
	DBREG_F__COUNT
};

/* How a field's text is to be read by a formatter. */
enum dbreg_type {
	DBREG_T_TEXT,
	DBREG_T_INT,
	DBREG_T_BOOL,      /* "true" / "false" */
	DBREG_T_TIME,      /* RFC 3339, UTC */
	DBREG_T_JSON,      /* JSON text (metadata, tags) */
};

const char *dbreg_field_name(enum dbreg_field f);
enum dbreg_type dbreg_field_type(enum dbreg_field f);
/* The field for a name, or -1. */
int dbreg_field_lookup(const char *name);

struct dbreg_conn;
/* The field's value as text; NULL for SQL NULL. */
const char *dbreg_conn_get(const struct dbreg_conn *c, enum dbreg_field f);
/* Does the record carry field f at all (region_code only where the registry has regions)? */
int dbreg_conn_has(const struct dbreg_conn *c, enum dbreg_field f);


struct dbreg_conn_list;
/* Do the list's records carry field f (region_code only where the registry has regions)? */
int dbreg_conn_list_has(const struct dbreg_conn_list *l, enum dbreg_field f);
size_t dbreg_conn_list_count(const struct dbreg_conn_list *l);
const struct dbreg_conn *dbreg_conn_list_at(const struct dbreg_conn_list *l, size_t i);
void dbreg_conn_list_free(struct dbreg_conn_list *l);

/* A selection of connections.  New, it selects every live row, active or not;
 * each setter narrows it (values are copied). */
struct dbreg_filter;
int dbreg_filter_new(struct dbreg_filter **ret, struct dbreg_error *err);
void dbreg_filter_free(struct dbreg_filter *f);
/* Of this connection type (compared as text); NULL: any. */
int dbreg_filter_set_type(struct dbreg_filter *f, const char *type, struct dbreg_error *err);
/* In this region, by code; NULL: any. */
int dbreg_filter_set_region(struct dbreg_filter *f, const char *region, struct dbreg_error *err);
/* -1 any (the default), 0 inactive only, 1 active only. */
void dbreg_filter_set_active(struct dbreg_filter *f, int active);
/* Soft-deleted rows too. */
void dbreg_filter_set_include_deleted(struct dbreg_filter *f, int include);
/* Only these names (NULL-terminated); NULL: any. */
int dbreg_filter_set_names(struct dbreg_filter *f, const char *const *names, struct dbreg_error *err);
/* Only rows carrying this tag; several: rows carrying all of them. */
int dbreg_filter_add_tag(struct dbreg_filter *f, const char *tag, struct dbreg_error *err);
/* What dbreg_list and dbreg_list_stream read of each row: these n fields (connection_name
 * always; region_code and region_id together), so the server computes no other; the rest
 * read as absent (dbreg_conn_has: 0).  n == 0: every field (the default).  An unknown
 * field is DBREG_ERR_USAGE.  Other readers of a filter ignore it. */
int dbreg_filter_set_fields(struct dbreg_filter *f, const enum dbreg_field *fields, size_t n,
                            struct dbreg_error *err);

int dbreg_list(struct dbreg_ctx *ctx, const struct dbreg_filter *filter,
               struct dbreg_conn_list **ret, struct dbreg_error *err);
/* The same selection as dbreg_list, read row by row (libpq's single-row mode), so that
 * what it holds does not grow with the rows.  The context's admin connection is busy
 * until the stream is freed (freeing it early cancels the rest of the query). */
struct dbreg_conn_stream;
int dbreg_list_stream(struct dbreg_ctx *ctx, const struct dbreg_filter *filter,
                      struct dbreg_conn_stream **ret, struct dbreg_error *err);
/* 1 and the next row in *ret (valid until the next call or the free), 0 after the last,
 * -1 when the read failed (err set; the stream can only be freed then). */
int dbreg_conn_stream_next(struct dbreg_conn_stream *s, const struct dbreg_conn **ret,
                           struct dbreg_error *err);
/* Do the stream's rows carry field f (known before the first row)? */
int dbreg_conn_stream_has(const struct dbreg_conn_stream *s, enum dbreg_field f);
void dbreg_conn_stream_free(struct dbreg_conn_stream *s);
/* One live connection by name; DBREG_ERR_FAILED when there is none. */
int dbreg_show(struct dbreg_ctx *ctx, const char *name, struct dbreg_conn_list **ret,
               struct dbreg_error *err);

/* A set of values to write: register uses every field (unset ones take the
 * defaults), update only the ones set. */
struct dbreg_spec;
int dbreg_spec_new(struct dbreg_spec **ret, struct dbreg_error *err);
void dbreg_spec_free(struct dbreg_spec *s);
/* Sets a writable field from text; values dbreg checks itself (port, pool
 * sizes, booleans) are checked here: DBREG_ERR_USAGE.  NULL sets SQL NULL
 * where the column allows it. */
int dbreg_spec_set(struct dbreg_spec *s, enum dbreg_field f, const char *value, struct dbreg_error *err);
/* Whether the spec writes field f; DBREG_F_TAGS: tags were given;
 * DBREG_F_HAS_PASSWORD: a password was set or cleared. */
int dbreg_spec_is_set(const struct dbreg_spec *s, enum dbreg_field f);
/* The text a field was set to (owned by s), NULL when not set or set to NULL. */
const char *dbreg_spec_get(const struct dbreg_spec *s, enum dbreg_field f);
int dbreg_spec_add_tag(struct dbreg_spec *s, const char *tag, struct dbreg_error *err);
/* Takes host, port, dbname, user and sslmode from a URL, where not set yet. */
int dbreg_spec_merge_url(struct dbreg_spec *s, const char *url, struct dbreg_error *err);
/* Encrypts the password with the context's current key at once; the caller
 * wipes its own copy. */
int dbreg_spec_set_password(struct dbreg_spec *s, struct dbreg_ctx *ctx,
                            const char *password, size_t len, struct dbreg_error *err);
/* Stores no password (NULL). */
int dbreg_spec_clear_password(struct dbreg_spec *s);
/* Checks what can be checked without the database (pool bounds given together,
 * required fields for register). */
int dbreg_spec_check(const struct dbreg_spec *s, int for_register, struct dbreg_error *err);
/* Logs in to the target the spec describes (password included) and runs
 * SELECT 1; DBREG_ERR_FAILED with libpq's reason when it cannot. */
int dbreg_spec_test_login(struct dbreg_spec *s, struct dbreg_ctx *ctx, int timeout_s,
                          struct dbreg_error *err);

/* Logs in to the registered connection NAME as it would be after applying
 * spec (its stored password decrypted unless spec gives a new one). */
int dbreg_update_test_login(struct dbreg_ctx *ctx, const char *name, struct dbreg_spec *s, int timeout_s,
                            struct dbreg_error *err);

enum dbreg_write_flags {
	DBREG_WRITE_REPLACE = 1 << 0,  /* register: rewrite an existing row in place */
	DBREG_WRITE_DRY_RUN = 1 << 1,  /* check everything, write nothing */
};

/* Registers spec as NAME; *ret_row (optional) receives the row as written. */
int dbreg_register(struct dbreg_ctx *ctx, const char *name, const struct dbreg_spec *s,
                   unsigned flags, struct dbreg_conn_list **ret_row, struct dbreg_error *err);
/* Did the last dbreg_register revive a deleted row of that name (registries
 * whose names are unique over all rows) rather than add one? */
int dbreg_register_revived(struct dbreg_ctx *ctx);
/* Changes only the fields set in spec. */
int dbreg_update(struct dbreg_ctx *ctx, const char *name, const struct dbreg_spec *s,
                 unsigned flags, struct dbreg_conn_list **ret_row, struct dbreg_error *err);
/* The metadata object (JSON text, checked here; DBREG_ERR_USAGE when it is not an object). */
int dbreg_spec_set_metadata(struct dbreg_spec *s, const char *json, struct dbreg_error *err);
/* The connection is a connection pooler (PgBouncer): metadata.pooler = "pgbouncer" and
 * metadata.pooler_db (default "pgbouncer"), merged into the row's metadata, whose other keys
 * stay.  "none" removes both (update).  Any other type is DBREG_ERR_USAGE. */
int dbreg_spec_set_pooler(struct dbreg_spec *s, const char *type, struct dbreg_error *err);
/* metadata.pooler_db: the pooler's admin console, which pool-stats asks.  Needs
 * dbreg_spec_set_pooler, or (update) a row that is a pooler already. */
int dbreg_spec_set_pooler_db(struct dbreg_spec *s, const char *dbname, struct dbreg_error *err);

/* ---- import (dbreg-import(1)) ---- */
/* Connections read from files, then registered together: all or none. */
struct dbreg_import;
int dbreg_import_new(struct dbreg_import **ret, struct dbreg_error *err);
void dbreg_import_free(struct dbreg_import *im);
/* The type and region code given to entries that have none (NULL: none);
 * checked as register checks --type and --region. */
int dbreg_import_set_defaults(struct dbreg_import *im, const char *type, const char *region,
                              struct dbreg_error *err);
/* After dbreg_ctx_connect: every [NAME] section of the pg_service.conf at path
 * ("-": stdin) as connection NAME, from its host, port, dbname, user and
 * sslmode (other keys are ignored with a warning).  Its password, as libpq
 * picks it: the section's password= (with a warning), else the first matching
 * line of the pgpass file (NULL: none; like libpq, refused as DBREG_ERR_CONFIG
 * when group or others can access it); encrypted at once in the registry's
 * format, the plaintext wiped.  A refusal names FILE:LINE; DBREG_ERR_USAGE for
 * values dbreg checks. */
int dbreg_import_read_service(struct dbreg_import *im, struct dbreg_ctx *ctx, const char *path,
                              const char *pgpass, struct dbreg_error *err);
/* Every row of a CSV (RFC 4180; "-": stdin) whose header row names list's
 * fields (list -o csv): the writable ones are read (the region by region_code
 * where the file has it), the others ignored; an empty cell is not given.
 * A refusal names FILE:LINE, the line a row starts on. */
int dbreg_import_read_csv(struct dbreg_import *im, const char *path, struct dbreg_error *err);
/* What reading found worth a warning ("FILE:LINE: ..."; never a password). */
size_t dbreg_import_warning_count(const struct dbreg_import *im);
const char *dbreg_import_warning(const struct dbreg_import *im, size_t i);
/* The entries read, in the files' order. */
size_t dbreg_import_count(const struct dbreg_import *im);
const char *dbreg_import_name(const struct dbreg_import *im, size_t i);
/* Registers every entry as dbreg_register would (flags DBREG_WRITE_REPLACE,
 * DBREG_WRITE_DRY_RUN) in one transaction: any refusal rolls back all of them,
 * its message prefixed with the entry's FILE:LINE.  *ret_rows (optional): the
 * rows as written (a dry run: as they would be), by name. */
int dbreg_import_run(struct dbreg_ctx *ctx, struct dbreg_import *im, unsigned flags,
                     struct dbreg_conn_list **ret_rows, struct dbreg_error *err);
/* After dbreg_import_run: did entry i revive a deleted row of its name? */
int dbreg_import_revived(const struct dbreg_import *im, size_t i);

/* Soft delete, or with purge remove the row.  *ret_tenants (optional) gets the
 * number of tenants still pointing at it. */
int dbreg_deregister(struct dbreg_ctx *ctx, const char *name, int purge,
                     long *ret_tenants, struct dbreg_error *err);

/* Naming rules (SPEC §6); a refusal names the rule it broke (DBREG_ERR_USAGE).
 * Connection names: ^[a-z0-9][a-z0-9._-]*$, at most 100 bytes. */
int dbreg_check_connection_name(const char *name, struct dbreg_error *err);
/* Schema names: ^[a-z][a-z0-9_]*$, at most 63 bytes, not pg_*, not
 * information_schema, not a reserved word. */
int dbreg_check_schema_name(const char *name, struct dbreg_error *err);
/* Tenant slugs: ^[a-z0-9][a-z0-9-]*[a-z0-9]$, 4-54 characters, no --, not reserved. */
int dbreg_check_slug(const char *slug, struct dbreg_error *err);
/* What a tenant is looked up by: any stored slug of ^[a-z0-9][a-z0-9-]*[a-z0-9]$,
 * 2-63 characters (the stricter rules above are for what dbreg writes). */
int dbreg_check_slug_lookup(const char *slug, struct dbreg_error *err);
/* The schema a slug is expected to have: tenant_ + slug with - turned into _. */
int dbreg_schema_for_slug(const char *slug, char *buf, size_t size);

/* ---- init ---- */
/* Applies the missing migrations; *ret_applied gets how many, *ret_version the
 * schema version afterwards. */
int dbreg_init(struct dbreg_ctx *ctx, int *ret_applied, int *ret_version, struct dbreg_error *err);
/* Sets the format register, update and encrypt-password write passwords in:
 * "dbreg" (SPEC §3) or "fernet" (the platform's); stored passwords keep
 * theirs.  *ret_changed (optional) is 0 when it already was that format. */
/* The six values a dbreg:v2 password is bound to (SPEC §3, dbreg-encrypt-password(1)),
 * in this order; NULL is the empty string. */
enum {
	DBREG_BIND_ID,        /* the row's id: a UUID, canonical lower-case text */
	DBREG_BIND_HOST,
	DBREG_BIND_PORT,      /* plain decimal */
	DBREG_BIND_DATABASE,
	DBREG_BIND_USER,
	DBREG_BIND_SSL_MODE,
	DBREG_BIND__COUNT
};
/* Encrypts a password in format: "dbreg" (NULL too) is dbreg:v2 with the current
 * key, bound to target (required); "fernet" is the platform's token (target unused). */
int dbreg_encrypt_password(struct dbreg_ctx *ctx, const char *format, const char *const target[DBREG_BIND__COUNT],
                           const char *password, size_t len, char **ret_stored, struct dbreg_error *err);
int dbreg_set_password_format(struct dbreg_ctx *ctx, const char *format, int *ret_changed,
                              struct dbreg_error *err);
/* The format the connected registry writes ("dbreg" or "fernet"); NULL before
 * a connection. */
const char *dbreg_password_format(struct dbreg_ctx *ctx);
/* The schema version this library writes. */
int dbreg_schema_version(void);
/* After dbreg_init adopted a registry dbreg did not create: what it found
 * ("adopted existing registry: connection_type enum ..., passwords: 5 fernet");
 * NULL otherwise.  Owned by the context. */
const char *dbreg_init_report(struct dbreg_ctx *ctx);

/* ---- health ---- */
enum dbreg_health_level {
	DBREG_LEVEL_BASIC,     /* SELECT 1 */
	DBREG_LEVEL_EXTENDED,  /* + current_timestamp, version(), pg_is_in_recovery() */
	DBREG_LEVEL_DEEP,      /* + backends and max_connections */
};

enum dbreg_health_status {
	DBREG_HEALTHY,
	DBREG_DEGRADED,
	DBREG_UNHEALTHY,
	DBREG_UNKNOWN,
};

/* How to check: new, level basic, the defaults below, every active live row. */
struct dbreg_health_opts;
int dbreg_health_opts_new(struct dbreg_health_opts **ret, struct dbreg_error *err);
void dbreg_health_opts_free(struct dbreg_health_opts *o);
/* The selection, owned by o: type, region, tags; names select inactive rows too. */
struct dbreg_filter *dbreg_health_opts_filter(struct dbreg_health_opts *o);
void dbreg_health_opts_set_level(struct dbreg_health_opts *o, enum dbreg_health_level level);
/* Each check's deadline; 0: 5000. */
void dbreg_health_opts_set_timeout_ms(struct dbreg_health_opts *o, int timeout_ms);
/* Checks at once; 0: 64. */
void dbreg_health_opts_set_jobs(struct dbreg_health_opts *o, int jobs);
/* Event loops, each in its own thread with its share of the jobs (logins spread over the
 * cores); 0: one per online CPU.  At most one per job at once, and 64. */
void dbreg_health_opts_set_threads(struct dbreg_health_opts *o, int threads);
/* Slower than this is DEGRADED; 0: 1000. */
void dbreg_health_opts_set_warn_ms(struct dbreg_health_opts *o, int warn_ms);
/* Slower than this is UNHEALTHY, whatever else the check found; 0: no such limit. */
void dbreg_health_opts_set_crit_ms(struct dbreg_health_opts *o, int crit_ms);
/* Do not write the results back. */
void dbreg_health_opts_set_no_update(struct dbreg_health_opts *o, int no_update);
/* Called from the loop now and then, and once at the end. */
void dbreg_health_opts_set_progress(struct dbreg_health_opts *o,
                                    void (*progress)(size_t done, size_t total, double elapsed_ms, void *userdata),
                                    void *userdata);
/* Who writes the results (history rows, claims); NULL: the host name. */
int dbreg_health_opts_set_checker(struct dbreg_health_opts *o, const char *checker, struct dbreg_error *err);
/* Check only rows due (no check in the last every_s seconds, on the admin server's
 * clock, and no live claim), claimed batch rows at a time (0: 100) so that runs on
 * many hosts share the fleet; every_s 0: no claims, every selected row. */
void dbreg_health_opts_set_claim(struct dbreg_health_opts *o, long every_s, int batch);
/* History rows older than this are pruned by the run; 0: 14 days. */
void dbreg_health_opts_set_keep(struct dbreg_health_opts *o, long keep_s);
/* Deep: a server certificate expiring within this many days is DEGRADED; 0: 30. */
void dbreg_health_opts_set_cert_warn_days(struct dbreg_health_opts *o, int days);
/* Deep: a replica replaying more than this many seconds behind is DEGRADED; 0: 300. */
void dbreg_health_opts_set_lag_warn(struct dbreg_health_opts *o, long lag_warn_s);

/* One result; strings live as long as the report.  Fields a level does not
 * measure are NULL or negative. */
struct dbreg_health_result {
	const char *connection_name;
	const char *connection_type;
	const char *region_id;
	enum dbreg_health_status status;
	double latency_ms;
	const char *error;
	const char *server_version;
	int in_recovery;
	long backends;
	long max_connections;
	/* Something the operator should know of the check (NULL: nothing), e.g. that the
	 * login took the pending password of an unfinished rotate-password. */
	const char *note;
	/* Deep: TLS as negotiated on the check's own connection (tls_in_use -1: not
	 * measured); the server certificate's notAfter in seconds since the epoch (-1:
	 * none or not measured). */
	int tls_in_use;
	const char *tls_protocol, *tls_cipher;
	double cert_not_after;
	/* "primary" or "replica": what the registry says the row is (its type, else
	 * metadata.expected_role), or NULL. */
	const char *expected_role;
	/* Deep, on a server in recovery: replay delay (-1: null, idle and caught up, or
	 * not measured) and bytes received but not replayed (-1: not measured). */
	double replay_lag_seconds;
	long long replay_lag_bytes;
	/* Who checked (the run's checker id). */
	const char *checker;
};

struct dbreg_health_report;
/* Checks the selected connections concurrently.  Fails (without checking
 * anything) when the selection names an unregistered connection. */
int dbreg_health_run(struct dbreg_ctx *ctx, const struct dbreg_health_opts *opts,
                     struct dbreg_health_report **ret, struct dbreg_error *err);
size_t dbreg_health_report_count(const struct dbreg_health_report *r);
const struct dbreg_health_result *dbreg_health_report_at(const struct dbreg_health_report *r, size_t i);
/* When the run started, RFC 3339 UTC. */
const char *dbreg_health_report_checked_at(const struct dbreg_health_report *r);
/* Seconds since the epoch at the start of the run. */
double dbreg_health_report_checked_epoch(const struct dbreg_health_report *r);
/* Why the write-back failed, or NULL (also when skipped). */
const char *dbreg_health_report_writeback_error(const struct dbreg_health_report *r);
/* How many checks ran at once, and (ret_wanted) how many --jobs asked for, at
 * most one per target: fewer when the open-file limit (ret_fd_limit; -1 none)
 * leaves no room for more. */
size_t dbreg_health_report_jobs(const struct dbreg_health_report *r, size_t *ret_wanted, long *ret_fd_limit);
/* Whether the run checked only the rows it claimed (dbreg_health_opts_set_claim):
 * then no result means nothing was due, not an empty selection. */
int dbreg_health_report_claimed(const struct dbreg_health_report *r);
void dbreg_health_report_free(struct dbreg_health_report *r);
const char *dbreg_health_status_name(enum dbreg_health_status s);

/* The health history (admin.dbreg_health_history) of the selected connections over
 * the last since_s seconds, computed on the server: one entry per connection, by name. */
struct dbreg_health_history_entry {
	const char *connection_name;
	long checks;              /* history rows in the window, UNKNOWN ones included */
	long failures;            /* UNHEALTHY ones */
	double uptime_pct;        /* HEALTHY or DEGRADED among the known ones; -1: none known */
	double latency_p50_ms, latency_p95_ms;  /* -1: no latency measured */
	long status_changes;      /* a check whose status differs from the one before it */
	const char *last_failure; /* RFC 3339 UTC, or NULL */
	/* The window's latencies, oldest first, at most 100 (the last ones); -1 for a
	 * check without one: for a sparkline. */
	const double *latencies;
	size_t nlatencies;
};
struct dbreg_health_history;
int dbreg_health_history_read(struct dbreg_ctx *ctx, const struct dbreg_filter *filter, long since_s,
                              struct dbreg_health_history **ret, struct dbreg_error *err);
size_t dbreg_health_history_count(const struct dbreg_health_history *h);
const struct dbreg_health_history_entry *dbreg_health_history_at(const struct dbreg_health_history *h, size_t i);
/* The entry of one connection, or NULL. */
const struct dbreg_health_history_entry *dbreg_health_history_find(const struct dbreg_health_history *h,
                                                                   const char *connection_name);
void dbreg_health_history_free(struct dbreg_health_history *h);

/* ---- schema resolution ---- */
enum dbreg_schema_context {
	DBREG_CONTEXT_TENANT,    /* the tenant's schema_name */
	DBREG_CONTEXT_ADMIN,     /* admin */
	DBREG_CONTEXT_SHARED,    /* shared */
	DBREG_CONTEXT_TEMPLATE,  /* tenant_template */
};

/* Is s a UUID in canonical 8-4-4-4-12 hex form? */
int dbreg_is_canonical_uuid(const char *s);
/* The edit distance of two names (insertions, deletions, substitutions and swaps of
 * neighbours count one each); (size_t)-1 when either is longer than DBREG_DISTANCE_MAX. */
#define DBREG_DISTANCE_MAX 128
size_t dbreg_name_distance(const char *a, const char *b);
/* The candidate close enough to name to be what was meant (a typo or a prefix), or NULL. */
const char *dbreg_name_closest(const char *name, const char *const *candidates, size_t n);
/* Parses "tenant", "admin", "shared", "template"; -1 when it is none. */
int dbreg_schema_context_parse(const char *text);
const char *dbreg_schema_context_name(enum dbreg_schema_context c);

struct dbreg_resolution;
/* Resolves TENANT (a canonical UUID is an id, anything else a slug) to its
 * schema.  Only active, non-deleted tenants resolve: DBREG_ERR_FAILED names
 * the status otherwise.  Contexts other than tenant need no tenant and no
 * connection (ctx may then be unconnected). */
int dbreg_resolve_schema(struct dbreg_ctx *ctx, enum dbreg_schema_context context, const char *tenant,
                         struct dbreg_resolution **ret, struct dbreg_error *err);
const char *dbreg_resolution_schema(const struct dbreg_resolution *r);
enum dbreg_schema_context dbreg_resolution_context(const struct dbreg_resolution *r);
/* The tenant's id, slug and name; NULL outside the tenant context. */
const char *dbreg_resolution_tenant_id(const struct dbreg_resolution *r);
const char *dbreg_resolution_tenant_slug(const struct dbreg_resolution *r);
const char *dbreg_resolution_tenant_name(const struct dbreg_resolution *r);
/* Finds the tenant's connection: its own, else the active SHARED one named
 * default_name (NULL: shared-primary). */
int dbreg_resolution_find_connection(struct dbreg_ctx *ctx, struct dbreg_resolution *r, const char *default_name,
                                     struct dbreg_error *err);
/* The connection found above, or NULL. */
const struct dbreg_conn *dbreg_resolution_connection(const struct dbreg_resolution *r);
/* Logs in to that connection and checks the schema exists as its user sees
 * it; DBREG_ERR_FAILED when it does not. */
int dbreg_resolution_check(struct dbreg_ctx *ctx, struct dbreg_resolution *r, int timeout_s, struct dbreg_error *err);
/* The schema as an SQL identifier, quoted only where it must be; free() it. */
int dbreg_resolution_sql_identifier(struct dbreg_ctx *ctx, const struct dbreg_resolution *r, char **ret,
                                    struct dbreg_error *err);
void dbreg_resolution_free(struct dbreg_resolution *r);

/* ---- pool statistics ---- */
/* What to measure: new, every active live connection, the defaults below. */
struct dbreg_pool_opts;
int dbreg_pool_opts_new(struct dbreg_pool_opts **ret, struct dbreg_error *err);
void dbreg_pool_opts_free(struct dbreg_pool_opts *o);
/* The selection, owned by o; names select inactive rows too. */
struct dbreg_filter *dbreg_pool_opts_filter(struct dbreg_pool_opts *o);
/* Each target's deadline; 0: 5000. */
void dbreg_pool_opts_set_timeout_ms(struct dbreg_pool_opts *o, int timeout_ms);
/* Targets at once; 0: 64. */
void dbreg_pool_opts_set_jobs(struct dbreg_pool_opts *o, int jobs);
/* Called from the loop now and then, and once at the end (as for health). */
void dbreg_pool_opts_set_progress(struct dbreg_pool_opts *o,
                                  void (*progress)(size_t done, size_t total, double elapsed_ms, void *userdata),
                                  void *userdata);

/* One pool of a PgBouncer (SHOW POOLS, and pool_size from SHOW DATABASES by database
 * name); counts are -1 when the pooler did not say. */
struct dbreg_pooler_pool {
	const char *database;
	const char *user;
	long cl_active, cl_waiting, sv_active, sv_idle, sv_used;
	long maxwait;                 /* seconds the oldest waiting client has waited */
	const char *pool_mode;        /* session, transaction or statement */
	long pool_size;               /* the database's pool_size; -1 when SHOW DATABASES has no such database */
};

/* One connection: its configured pool beside what its server reports for
 * its database and user.  Counts are -1 and fractions < 0 when unknown. */
struct dbreg_pool_conn {
	const char *connection_name;
	const char *host;
	const char *port;
	long pool_min_size, pool_max_size, pool_timeout_seconds, pool_recycle_seconds;
	long total, active, idle, idle_in_transaction, waiting;
	double oldest_xact_seconds;   /* < 0: no open transaction or unknown */
	double saturation;            /* total / pool_max_size; < 0 when pool_max_size is 0 or unknown */
	const char *error;            /* NULL when measured */
	/* A pooler's row (metadata.pooler): its server usage is not measured (the counts
	 * above are -1, and it is in no server entry); its admin console's pools instead,
	 * but for the console's own pseudo-database "pgbouncer".  NULL and 0 otherwise. */
	const char *pooler;           /* "pgbouncer" */
	const struct dbreg_pooler_pool *pools;
	size_t npools;
};

/* One server (entries sharing host and port). */
struct dbreg_pool_server {
	const char *host;
	const char *port;
	long max_connections;         /* -1: no entry reached it */
	long reserved_connections;    /* superuser_reserved_connections (+ reserved_connections, 16+) */
	long sum_pool_max_size;
	int overcommitted;            /* -1 unknown, 0, 1 */
	long backends;                /* every client backend; -1 unless a user with pg_monitor looked */
};

struct dbreg_pool_report;
int dbreg_pool_stats(struct dbreg_ctx *ctx, const struct dbreg_pool_opts *opts, struct dbreg_pool_report **ret,
                     struct dbreg_error *err);
size_t dbreg_pool_report_conn_count(const struct dbreg_pool_report *r);
const struct dbreg_pool_conn *dbreg_pool_report_conn(const struct dbreg_pool_report *r, size_t i);
size_t dbreg_pool_report_server_count(const struct dbreg_pool_report *r);
const struct dbreg_pool_server *dbreg_pool_report_server(const struct dbreg_pool_report *r, size_t i);
void dbreg_pool_report_free(struct dbreg_pool_report *r);

/* ---- validate-config ---- */
enum dbreg_severity {
	DBREG_SEV_ERROR,
	DBREG_SEV_WARNING,
};

struct dbreg_finding {
	enum dbreg_severity severity;
	const char *code;            /* stable, documented in dbreg-validate-config(1) */
	const char *message;
	const char *connection_name; /* NULL unless it concerns exactly one connection */
};

struct dbreg_findings;
/* Runs every check of SPEC §8 (only those that need no network when
 * offline).  Everything wrong is a finding: this fails only when it cannot
 * run at all (out of memory). */
int dbreg_validate(struct dbreg_ctx *ctx, int offline, struct dbreg_findings **ret, struct dbreg_error *err);
size_t dbreg_findings_count(const struct dbreg_findings *f);
const struct dbreg_finding *dbreg_findings_at(const struct dbreg_findings *f, size_t i);
void dbreg_findings_free(struct dbreg_findings *f);
/* The connections finding i concerns: none, the one of its connection_name, or,
 * for a finding about several (conn-duplicate: a group of rows with the same target,
 * connection_name NULL), every one of them, sorted by name.  Out of range: 0, NULL. */
size_t dbreg_findings_connection_count(const struct dbreg_findings *f, size_t i);
const char *dbreg_findings_connection(const struct dbreg_findings *f, size_t i, size_t j);

/* ---- rotate-key ---- */
enum {
	DBREG_ROTATE_DRY_RUN = 1 << 0,               /* say what would change, write nothing */
	DBREG_ROTATE_SKIP_UNDECRYPTABLE = 1 << 1,    /* leave (and list) rows that do not decrypt */
};
/* Re-encrypts every stored password (live and deleted rows) into format to
 * ("dbreg": the current key; "fernet": the passphrase's key; NULL: the
 * registry's format), which then becomes the registry's, in one transaction
 * under the rotation lock.  Rows already in that format and key are left
 * alone; Fernet rows stay Fernet rows when the format is fernet.  A row that
 * does not decrypt (a key not in the keyring included) or does not fit fails
 * the whole (DBREG_ERR_FAILED naming the rows, nothing written), unless
 * DBREG_ROTATE_SKIP_UNDECRYPTABLE. */
struct dbreg_rotation;
int dbreg_rotate_key(struct dbreg_ctx *ctx, const char *to, unsigned flags, struct dbreg_rotation **ret,
                     struct dbreg_error *err);
int dbreg_rotation_dry_run(const struct dbreg_rotation *r);
/* The format rotated into. */
const char *dbreg_rotation_format(const struct dbreg_rotation *r);
/* Where the re-encrypted rows came from: a key id, or "fernet"; *ret_count rows each. */
size_t dbreg_rotation_source_count(const struct dbreg_rotation *r);
const char *dbreg_rotation_source(const struct dbreg_rotation *r, size_t i, long *ret_count);
long dbreg_rotation_already_current(const struct dbreg_rotation *r);
/* The connections left as they were (DBREG_ROTATE_SKIP_UNDECRYPTABLE). */
size_t dbreg_rotation_skipped_count(const struct dbreg_rotation *r);
const char *dbreg_rotation_skipped(const struct dbreg_rotation *r, size_t i);
void dbreg_rotation_free(struct dbreg_rotation *r);

/* ---- rotate-password ---- */
enum {
	DBREG_ROTPW_DRY_RUN = 1 << 0,   /* every check and login, nothing changed */
	DBREG_ROTPW_FORCE = 1 << 1,     /* even when other live rows log in as the same user */
};
enum {
	DBREG_ROTPW_DEFAULT_LENGTH = 32,
	DBREG_ROTPW_MIN_LENGTH = 16,
	DBREG_ROTPW_MAX_LENGTH = 127,   /* what a Fernet token holds */
};
/* What a run found of an earlier one (*ret_resumed). */
enum {
	DBREG_ROTPW_FRESH,       /* no unfinished rotation */
	DBREG_ROTPW_COMPLETED,   /* the server had the pending password: stored, nothing new set */
	DBREG_ROTPW_DISCARDED,   /* the server still had the stored one: the record dropped, then rotated */
};
/* A new random password (length characters of A-Z a-z 0-9 - _; 0: the default) for the
 * live connection name, set on its server by ALTER ROLE CURRENT_USER with a SCRAM-SHA-256
 * verifier computed here, then stored; crash-safe through admin.dbreg_pending_rotations,
 * and under the connection's rotation lock (held: DBREG_ERR_FAILED "rotation in progress"). */
int dbreg_rotate_password(struct dbreg_ctx *ctx, const char *name, int length, unsigned flags, int *ret_resumed,
                          struct dbreg_error *err);

/* ---- reaching a registered database (dbreg_open(3)) ---- */
/* libpq's connection, declared without libpq-fe.h (which names it PGconn). */
struct pg_conn;
/* The libpq keyword/value arrays for the live connection NAME: host, port,
 * dbname, user, sslmode, gssencmode, fallback_application_name and, when it has
 * one, the decrypted password (in locked memory, wiped by _free).  Every keyword
 * is explicit, so libpq's environment variables of the admin connection
 * (PGHOST, PGPASSWORD, ...) do not reach it through these; a program's own
 * PQconnectdb* calls still read that environment, as libpq always does. */
struct dbreg_target_params;
int dbreg_target_params(struct dbreg_ctx *ctx, const char *name, struct dbreg_target_params **ret,
                        struct dbreg_error *err);
/* NULL-terminated, for PQconnectdbParams(keywords, values, 0). */
const char *const *dbreg_target_params_keywords(const struct dbreg_target_params *p);
const char *const *dbreg_target_params_values(const struct dbreg_target_params *p);
/* One value by keyword, or NULL. */
const char *dbreg_target_params_get(const struct dbreg_target_params *p, const char *keyword);
void dbreg_target_params_free(struct dbreg_target_params *p);
/* A connected, blocking PGconn to the live connection NAME, logged in within
 * timeout_ms (0: 10 s; name resolution included); PQfinish() it.  Its notices
 * are dropped until the caller sets a notice processor.  DBREG_ERR_FAILED
 * when the login fails, DBREG_ERR_CONFIG when the password cannot be
 * decrypted for want of a key. */
int dbreg_open(struct dbreg_ctx *ctx, const char *name, int timeout_ms, struct pg_conn **ret_conn,
               struct dbreg_error *err);
/* The same for a tenant (id or slug, active): its connection (or the live
 * shared-primary), with search_path set to its schema, public; *ret_schema
 * (optional, free() it) gets the schema. */
int dbreg_open_tenant(struct dbreg_ctx *ctx, const char *tenant, int timeout_ms, struct pg_conn **ret_conn,
                      char **ret_schema, struct dbreg_error *err);

/* What a program run on a registered database gets (dbreg psql, dbreg exec):
 * this process's environment without DB_ENCRYPTION_*, DB_FERNET_*,
 * ADMIN_DATABASE_URL and every variable libpq reads but the TLS client files;
 * then PGHOST, PGPORT, PGDATABASE, PGUSER, PGSSLMODE from the row (NAME, or
 * with tenant non-NULL that tenant's connection, plus PGOPTIONS setting
 * search_path to its schema, public), and PGPASSFILE: a new 0600 file in
 * $XDG_RUNTIME_DIR (else /tmp) holding the decrypted password, removed by
 * _free (or, for a row without a password, the caller's own PGPASSFILE). */
struct dbreg_child;
int dbreg_child_prepare(struct dbreg_ctx *ctx, const char *name, const char *tenant, struct dbreg_child **ret,
                        struct dbreg_error *err);
/* NULL-terminated, for execve(). */
char *const *dbreg_child_environ(const struct dbreg_child *c);
/* The private password file, or NULL. */
const char *dbreg_child_passfile(const struct dbreg_child *c);
/* The tenant's schema, or NULL. */
const char *dbreg_child_schema(const struct dbreg_child *c);
void dbreg_child_free(struct dbreg_child *c);
/* This process's environment without what dbreg_child_environ drops, for a
 * program that is no database client (a pager, a shell pipe); NULL-terminated,
 * malloc'd (NULL when out of memory). */
char **dbreg_environ_safe(void);
void dbreg_environ_free(char **env);

/* ---- connection strings and files for other programs (dbreg conninfo, dbreg export) ---- */
/* Every one says what dbreg connects with: port 5432 and sslmode prefer where
 * the row has none; a NULL host, database or user is left to libpq. */
enum dbreg_conninfo_format {
	DBREG_CONNINFO_KEYVALUE,  /* host=... port=... dbname=... user=... sslmode=..., quoted as libpq reads it */
	DBREG_CONNINFO_URI,       /* postgresql://user@host:port/dbname?sslmode=..., every part percent-encoded */
};
/* The value the record connects with for host, port, dbname, user or
 * sslmode; NULL for another keyword or where libpq's default applies.  It
 * lives as long as the record. */
const char *dbreg_conninfo_value(const struct dbreg_conn *c, const char *keyword);
/* The record's connection string, never with a password; free() it. */
int dbreg_conninfo_string(const struct dbreg_conn *c, enum dbreg_conninfo_format format, char **ret,
                          struct dbreg_error *err);
/* A pg_service.conf: one [NAME] section per record, with host, port, dbname,
 * user and sslmode lines, never a password; free() it.  A value the file
 * cannot carry (a control character, trailing white space) is
 * DBREG_ERR_FAILED naming the connection. */
int dbreg_service_file(const struct dbreg_conn_list *l, char **ret, struct dbreg_error *err);
/* The same, a section at a time as the rows of s come (dbreg_list_stream), each handed to
 * emit (< 0: stop, DBREG_ERR_FAILED); what it holds does not grow with the rows.  The
 * sections emitted, also on failure, in *ret_count when given. */
int dbreg_service_file_stream(struct dbreg_conn_stream *s,
                              int (*emit)(const char *text, size_t len, void *userdata), void *userdata,
                              size_t *ret_count, struct dbreg_error *err);
/* A password file: host:port:dbname:user:password lines (: and \ escaped with
 * \; libpq's default socket directory as localhost) for the records of l that have a
 * password, each decrypted with the context's keys as a login would be.
 * *ret_written and *ret_skipped (optional) count the lines and the records
 * without a password.  Release *ret with dbreg_secret_free.  A password that
 * does not decrypt fails naming its connection (DBREG_ERR_CONFIG for want of
 * a key), and nothing is handed out. */
int dbreg_pgpass_file(struct dbreg_ctx *ctx, const struct dbreg_conn_list *l, char **ret, size_t *ret_written,
                      size_t *ret_skipped, struct dbreg_error *err);
/* The same for the selection of filter (NULL: every live connection), read row by row, so
 * that what it holds beside the file's text does not grow with the rows; *ret_rows
 * (optional) is how many the selection had (0: an empty file). */
int dbreg_pgpass_file_select(struct dbreg_ctx *ctx, const struct dbreg_filter *filter, char **ret,
                             size_t *ret_rows, size_t *ret_written, size_t *ret_skipped, struct dbreg_error *err);

#ifdef __cplusplus
}
#endif
#endif
