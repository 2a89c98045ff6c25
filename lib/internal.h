/* internal.h — what the library's modules share with each other (and unit tests), never exported. */
#ifndef DBREG_INTERNAL_H
#define DBREG_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
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
/* A value from outside (a name, the environment), fit for a message: printable
 * ASCII as is, anything else as \xNN, a long one cut with "...". Returns buf. */
const char *dbreg_printable(const char *s, char *buf, size_t size);
/* A test-only crash (SIGKILL, as a power loss gives no warning) where DBREG_TEST_CRASH_AFTER
 * names this point: proves that a command killed there is resumed or left whole. */
void dbreg_test_crash_point(const char *point);
/* The value of column (by name) in row of res; NULL when the result has no such
 * column or row, or the value is NULL.  Results are never read by position. */
const char *dbreg_result_value(const PGresult *res, int row, const char *column);
/* Puts "<prefix>" before the message already in err. */
void dbreg_error_prefix(struct dbreg_error *err, const char *fmt, ...) _printf_(2, 3);

/* names.c: a stored schema name dbreg will use (the pattern and length alone;
 * dbreg_check_schema_name's other rules are validate-config warnings for stored rows). */
int dbreg_check_stored_schema(const char *name, struct dbreg_error *err);

/* options.c: what the opaque option objects hold. */
struct dbreg_filter {
	char *type, *region;  /* NULL: any */
	int active;           /* -1 any, 0 inactive only, 1 active only */
	bool include_deleted;
	char **names;         /* NULL-terminated, or NULL: any */
	char **tags;          /* NULL-terminated, all required, or NULL */
	uint64_t fields;      /* what dbreg_list reads (DBREG_FIELD_BIT), 0: every field */
};
struct dbreg_health_opts {
	enum dbreg_health_level level;
	int timeout_ms, jobs, warn_ms, crit_ms;
	int threads;          /* event loops; 0: one per online CPU */
	bool no_update;
	struct dbreg_filter *filter;
	void (*progress)(size_t done, size_t total, double elapsed_ms, void *userdata);
	void *userdata;
	char *checker;        /* NULL: the host name */
	long every_s;         /* > 0: claim due rows */
	int batch;
	long keep_s;
	int cert_warn_days;
	long lag_warn_s;
};
struct dbreg_pool_opts {
	int timeout_ms, jobs;
	struct dbreg_filter *filter;
	void (*progress)(size_t done, size_t total, double elapsed_ms, void *userdata);
	void *userdata;
};

/* conninfo.c: the one module that parses and builds connection strings. */
struct dbreg_params {
	const char *keys[64];
	const char *vals[64];
	int n;
};
void dbreg_params_add(struct dbreg_params *p, const char *key, const char *val);
/* Moves every variable libpq reads (but the password file and the TLS client
 * files) out of the environment, once, before any thread: only the admin
 * connection gets them back, as explicit keywords under its URL. */
void dbreg_pgenv_take(void);
/* The host a .pgpass line names for host: libpq's "localhost" for none or its
 * default socket directory, else host itself (another directory as its path). */
const char *dbreg_pgpass_host(const char *host);
/* Is var one that libpq reads (PQconndefaults()'s envvar)?  *ret_tls: one of
 * the TLS client files (PGSSLCERT, PGSSLKEY, PGSSLROOTCERT, PGSSLCRL, PGSSLCRLDIR). */
bool dbreg_libpq_var(const char *var, bool *ret_tls);
/* A variable dbreg_pgenv_take moved (NULL when it was not set or empty). */
const char *dbreg_pgenv_get(const char *var);
/* Opens the admin connection for url (libpq's expand_dbname) over the moved
 * variables: a deadline of connect_timeout (else PGCONNECT_TIMEOUT, else 10 s)
 * for each host, as libpq does; values libpq would refuse are DBREG_ERR_CONFIG. */
int dbreg_connect_admin(const char *url, PGconn **ret, struct dbreg_error *err);
/* What dbreg_connect_admin would refuse before it sends a byte. */
int dbreg_admin_url_check(const char *url, struct dbreg_error *err);
/* Server NOTICEs on conn are dropped: the library never prints. */
void dbreg_conn_quiet(PGconn *conn);
/* First line of libpq's connection error, without "connection to server ... failed:". */
void dbreg_connect_error(PGconn *conn, char *buf, size_t size);
/* The i-th entry of a comma-separated list into buf ("" when absent). */
const char *dbreg_list_item(const char *s, size_t i, char *buf, size_t size);
/* How many entries a comma-separated list has (0 for NULL). */
size_t dbreg_list_len(const char *s);
/* A user's libpq file: the variable's value env, else ~/name (HOME, else the
 * password database), into buf; "" when there is no home. */
const char *dbreg_user_file(const char *env, const char *name, char *buf, size_t size);
/* A libpq port entry: empty (the default) or 1..65535. */
bool dbreg_port_ok(const char *text);

/* secret.c */
int dbreg_keyring_count(const struct dbreg_keyring *kr);
/* Format v2 (SPEC §3): the associated data binds the text to its row's target. */
struct dbreg_binding {
	const char *id;        /* canonical lower-case UUID text */
	const char *host, *port, *database, *user, *ssl_mode;  /* NULL: empty */
};
/* v2 text under the current key; nonce (24 bytes) NULL: a random one (given: known answers). */
int dbreg_encrypt_v2(const struct dbreg_keyring *kr, const struct dbreg_binding *b, const unsigned char *nonce,
                     const char *password, size_t len, char **ret_stored, struct dbreg_error *err);
/* v2 text for its binding: another binding is DBREG_ERR_FAILED "does not belong to this
 * connection's target". */
int dbreg_decrypt_v2(const struct dbreg_keyring *kr, const struct dbreg_binding *b, const char *stored,
                     char **ret_password, struct dbreg_error *err);
/* 1 or 2 and the key id of dbreg's stored text, -1 for anything else. */
int dbreg_stored_version(const char *stored, char id[DBREG_KEY_ID_LEN + 1]);
/* A random (version 4) UUID in canonical lower-case text: a new row's id, chosen
 * before its password is encrypted for it. */
int dbreg_uuid_v4(char out[37], struct dbreg_error *err);
/* The key id of the current key (the first added), or NULL for an empty ring. */
const char *dbreg_keyring_current_id(const struct dbreg_keyring *kr);
/* Adds the keys of a DB_ENCRYPTION_OLD_KEYS list: at most 15, empty items
 * ignored, a bad one named by its position counted from 1.  With ret_bad,
 * goes past bad items and lists their positions (up to max_bad; *ret_nbad
 * counts them all); err then names the last. */
int dbreg_keyring_add_list(struct dbreg_keyring *kr, const char *list, size_t *ret_bad, size_t max_bad,
                           size_t *ret_nbad, struct dbreg_error *err);
/* Is any key variable set (so that failing to load it is an error, not "no key")? */
bool dbreg_keys_configured(void);

/* Fernet, the platform's password format (PLATFORM-REGISTRY.md, SPEC §3), with libcrypto. */
#define DBREG_FERNET_KEY_BYTES 32
/* The longest password whose token fits varchar(256): 112..127 bytes make 248
 * characters, 128 make 268 (secret.c proves it at compile time). */
#define DBREG_FERNET_PASSWORD_MAX 127
/* The platform's Fernet key: PBKDF2-HMAC-SHA256(passphrase, salt
 * "NeoMultiTenant2024" (18 bytes), 100000 iterations, 32 bytes). */
int dbreg_fernet_derive(const char *passphrase, size_t len, unsigned char key[DBREG_FERNET_KEY_BYTES],
                        struct dbreg_error *err);
/* Is stored a Fernet token by the platform's rule (it starts with "gAAAAA")? */
bool dbreg_is_fernet(const char *stored);
/* Decrypts a Fernet token (no TTL: the platform has none), the HMAC checked
 * before anything is decrypted.  *ret_password is NUL-terminated; release it
 * with dbreg_secret_free.  A token that is none, altered or made with another
 * key, bad padding, or a NUL in the password: DBREG_ERR_FAILED. */
int dbreg_fernet_decrypt(const unsigned char key[DBREG_FERNET_KEY_BYTES], const char *token, char **ret_password,
                         struct dbreg_error *err);
/* Encrypts len bytes into a Fernet token (a fresh random IV, the time now);
 * *ret_token is malloc'd.  Over DBREG_FERNET_PASSWORD_MAX bytes, or a NUL
 * inside (it would not decrypt): DBREG_ERR_USAGE. */
int dbreg_fernet_encrypt(const unsigned char key[DBREG_FERNET_KEY_BYTES], const char *password, size_t len,
                         char **ret_token, struct dbreg_error *err);
/* dbreg_fernet_encrypt with the timestamp and IV given: for known-answer
 * tests only, since an IV used twice under one key gives plaintext away. */
int dbreg_fernet_encrypt_at(const unsigned char key[DBREG_FERNET_KEY_BYTES], const char *password, size_t len,
                            uint64_t timestamp, const unsigned char iv[16], char **ret_token,
                            struct dbreg_error *err);
/* The key from DB_FERNET_PASSPHRASE or DB_FERNET_PASSPHRASE_FILE (both set:
 * DBREG_ERR_CONFIG; the file is read as a key file is, less exactly one
 * trailing "\n" or "\r\n").  Neither set: 0 with *ret_have = 0. */
int dbreg_fernet_key_from_env(unsigned char key[DBREG_FERNET_KEY_BYTES], int *ret_have, struct dbreg_error *err);
/* Any stored password by its format: dbreg:v1 with the keyring, dbreg:v2 with
 * the keyring and b (the row it was read from: NULL refuses v2), a Fernet token
 * with fernet_key; NULL kr or fernet_key: none loaded (DBREG_ERR_CONFIG naming
 * the variable); any other text is in no known format (DBREG_ERR_FAILED). */
int dbreg_stored_decrypt(const struct dbreg_keyring *kr, const unsigned char *fernet_key,
                         const struct dbreg_binding *b, const char *stored, char **ret_password,
                         struct dbreg_error *err);


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
/* A query whose rows are read one at a time (libpq's single-row mode) on the admin
 * connection, which is busy until the end: dbreg_rows_send sends it; dbreg_rows_next
 * gives 1 and a row (PGRES_SINGLE_TUPLE), 0 and the end's result (the columns, no row;
 * the connection is ready again), or -1 (err set, the rest drained); *ret is the
 * caller's to PQclear.  dbreg_rows_drain drops what is left. */
int dbreg_rows_send(struct dbreg_ctx *ctx, const char *sql, int nparams, const char *const *params,
                    struct dbreg_error *err);
int dbreg_rows_next(struct dbreg_ctx *ctx, PGresult **ret, struct dbreg_error *err);
void dbreg_rows_drain(struct dbreg_ctx *ctx);
/* sql in libpq's single-row mode: each result (a row each, then the end's, which has the
 * columns and no row) to each, freed after; the memory it takes does not grow with the
 * rows.  each < 0 is out of memory: the rest is drained, and the call fails. */
int dbreg_exec_each(struct dbreg_ctx *ctx, const char *sql, int nparams, const char *const *params,
                    int (*each)(const PGresult *res, void *userdata), void *userdata, struct dbreg_error *err);
/* A failed statement on the admin connection (res, NULL when none came) into err, as
 * dbreg_exec says it: an interrupted query (Ctrl-C) as such, else the server's reason; -1. */
int dbreg_ctx_fail_result(struct dbreg_ctx *ctx, const PGresult *res, struct dbreg_error *err);
#include <signal.h>
volatile sig_atomic_t *dbreg_ctx_cancel_flag(struct dbreg_ctx *ctx);
/* After init: the next connect reads the registry's profile again. */
void dbreg_ctx_forget_profile(struct dbreg_ctx *ctx);

/* profile.c: the registry's shape, read from the catalog once per connection. */
struct dbreg_profile {
	bool have_registry;     /* admin.database_connections exists */
	bool have_log;          /* dbreg's bookkeeping (created or adopted by dbreg) */
	bool have_tenants;
	bool have_pending;      /* admin.dbreg_pending_rotations (migration 4) */
	bool have_history;      /* admin.dbreg_health_history and _claims (migration 5) */
	bool type_is_enum;      /* connection_type is an enum (type_labels its labels) */
	bool names_unique_all;  /* connection names unique over all rows, deleted ones too */
	int version;            /* dbreg's schema version, 0 without the log */
	char *type_labels;      /* "primary, replica, ..." or NULL */
	char *type_name;        /* connection_type's type, as format_type names it */
	char password_format[8];  /* what register/update write: "dbreg" or "fernet" */
	char *region_table;     /* region_id references this table (quoted), which has a code; or NULL */
	char *missing_columns;  /* SPEC §1 columns the table lacks, or NULL */
	char *type_problems;    /* "column port is text, not an integer", one a line, or NULL */
};
int dbreg_profile_read(PGconn *conn, struct dbreg_profile *p, struct dbreg_error *err);
void dbreg_profile_clear(struct dbreg_profile *p);
/* Can commands read it (DBREG_ERR_CONFIG naming what is wrong otherwise)? */
int dbreg_profile_check(const struct dbreg_profile *p, const char *dbname, struct dbreg_error *err);
/* Can commands write it: created or adopted by dbreg, not newer than this dbreg. */
int dbreg_profile_writable(const struct dbreg_profile *p, struct dbreg_error *err);
void dbreg_profile_describe(const struct dbreg_profile *p, char *buf, size_t size);
/* ctx.c: the key of DB_FERNET_PASSPHRASE(_FILE), derived once (locked memory):
 * 1 and *ret_key, 0 when neither is set, -1 when one is set but unusable. */
int dbreg_ctx_fernet_key(struct dbreg_ctx *ctx, const unsigned char **ret_key, struct dbreg_error *err);
/* The same key for writing: its absence is DBREG_ERR_CONFIG naming the variables. */
int dbreg_ctx_fernet_write_key(struct dbreg_ctx *ctx, const unsigned char **ret_key, struct dbreg_error *err);
void dbreg_ctx_set_revived(struct dbreg_ctx *ctx, bool revived);
/* ctx.c: what init found (dbreg_init_report). */
void dbreg_ctx_set_init_report(struct dbreg_ctx *ctx, const char *fmt, ...) _printf_(2, 3);
/* ctx.c: the connected registry's profile. */
const struct dbreg_profile *dbreg_ctx_profile(struct dbreg_ctx *ctx);

/* registry.c */
/* Turns a constraint violation into a message naming the field and the
 * allowed values, read from the database. */
int dbreg_fail_write(struct dbreg_ctx *ctx, const PGresult *res, const struct dbreg_spec *s,
                     const char *name, struct dbreg_error *err);

/* A transaction around several dbreg_register calls (import): begin, then end
 * with commit (fails when the transaction is gone) or without (ROLLBACK). */
int dbreg_registry_begin(struct dbreg_ctx *ctx, struct dbreg_error *err);
/* The registry's password format set to format: 1 changed, 0 already so, -1. */
int dbreg_registry_write_format(struct dbreg_ctx *ctx, const char *format, struct dbreg_error *err);
/* rotate-key, in the caller's transaction: the rows with a stored password (id,
 * connection_name, encrypted_password), locked, under the rotation lock; and one's new text. */
PGresult *dbreg_registry_rotation_rows(struct dbreg_ctx *ctx, struct dbreg_error *err);
PGresult *dbreg_registry_pending_rows(struct dbreg_ctx *ctx, struct dbreg_error *err);
int dbreg_registry_set_pending(struct dbreg_ctx *ctx, const char *id, const char *stored, struct dbreg_error *err);
/* "no connection named 'X'", with a did-you-mean among the live names: -1. */
int dbreg_fail_unknown_connection(struct dbreg_ctx *ctx, const char *name, struct dbreg_error *err);
/* rotate-password's statements (registry.c says what each does). */
PGresult *dbreg_registry_rotpw_row(struct dbreg_ctx *ctx, const char *name, struct dbreg_error *err);
int dbreg_registry_rotpw_lock(struct dbreg_ctx *ctx, const char *id, bool take, struct dbreg_error *err);
int dbreg_registry_same_user(struct dbreg_ctx *ctx, const char *id, const char *user, char **ret,
                             struct dbreg_error *err);
int dbreg_registry_pending_record(struct dbreg_ctx *ctx, const char *id, const char *stored, struct dbreg_error *err);
int dbreg_registry_pending_finish(struct dbreg_ctx *ctx, const char *id, bool discard, struct dbreg_error *err);
int dbreg_registry_set_stored(struct dbreg_ctx *ctx, const char *id, const char *stored, struct dbreg_error *err);
int dbreg_registry_end(struct dbreg_ctx *ctx, bool commit, struct dbreg_error *err);

/* Targets to log in to, for targets.c (which reads the columns by name). */
/* Live rows matching the filter (names select inactive rows too), among the ids of a
 * JSON array unless ids_json is NULL, by connection name, to each as dbreg_exec_each
 * reads them; an unknown name is DBREG_ERR_FAILED. */
int dbreg_registry_targets_each(struct dbreg_ctx *ctx, const struct dbreg_filter *filter, const char *ids_json,
                                int (*each)(const PGresult *res, void *userdata), void *userdata,
                                struct dbreg_error *err);
/* The admin server's now(), as text. */
int dbreg_registry_now(struct dbreg_ctx *ctx, char *buf, size_t size, struct dbreg_error *err);
/* health --claim: claims up to batch due rows of the selection for checker; the claimed ids
 * (column "id"). */
PGresult *dbreg_registry_health_claim(struct dbreg_ctx *ctx, const struct dbreg_filter *filter, const char *checker,
                                      long every_s, long lease_s, int batch, const char *run_started,
                                      struct dbreg_error *err);
/* How many rows of the selection are due (as for the claim), neither locked nor claimed. */
int dbreg_registry_health_due(struct dbreg_ctx *ctx, const struct dbreg_filter *filter, long every_s,
                              const char *run_started, long *ret_n, struct dbreg_error *err);
/* Gives up checker's claims of the ids (a JSON array), unchecked. */
int dbreg_registry_health_release(struct dbreg_ctx *ctx, const char *ids_json, const char *checker,
                                  struct dbreg_error *err);
/* Writes health results (a JSON array of {"id","status",...}) in one statement: the
 * registry's health columns (failures counted once, guarded by run_started, the admin
 * server's time when the run began), the history, and the release of checker's claims. */
int dbreg_registry_health_writeback(struct dbreg_ctx *ctx, const char *results_json, const char *run_started,
                                    const char *checker, struct dbreg_error *err);
/* Removes at most batch history rows older than keep_s (*ret_n: how many), and claims
 * expired for a day. */
int dbreg_registry_health_prune(struct dbreg_ctx *ctx, long keep_s, int batch, long *ret_n, struct dbreg_error *err);
/* The history summary of the selection over since_s seconds (see history.c). */
PGresult *dbreg_registry_health_history(struct dbreg_ctx *ctx, const struct dbreg_filter *filter, long since_s,
                                        struct dbreg_error *err);

/* Tenant rows: id, slug, name, schema_name, status, deleted (t/f), database_connection_id. */
PGresult *dbreg_registry_tenant(struct dbreg_ctx *ctx, const char *key, struct dbreg_error *err);
int dbreg_registry_tenant_connection(struct dbreg_ctx *ctx, const char *conn_id, const char *default_name,
                                     struct dbreg_conn_list **ret, struct dbreg_error *err);
PGresult *dbreg_registry_login_row(struct dbreg_ctx *ctx, const char *name, struct dbreg_error *err);
int dbreg_registry_stored_password(struct dbreg_ctx *ctx, const char *id, char **ret, struct dbreg_error *err);
char *dbreg_registry_quote_ident(struct dbreg_ctx *ctx, const char *name, struct dbreg_error *err);

/* conn.c */
const char *dbreg_field_default(enum dbreg_field f);
const char *dbreg_spec_value(const struct dbreg_spec *s, enum dbreg_field f);
char *dbreg_spec_tags_json(const struct dbreg_spec *s);    /* free() it */
/* The metadata object's text as given (NULL: not given). */
const char *dbreg_spec_metadata_json(const struct dbreg_spec *s);
/* --pooler: "pgbouncer", "" (none: remove it) or NULL (not given). */
const char *dbreg_spec_pooler(const struct dbreg_spec *s);
/* The object --pooler and --pooler-db merge into the row's metadata (malloc'd JSON), or
 * NULL when they add nothing. */
char *dbreg_spec_pooler_patch(const struct dbreg_spec *s);
/* The password given (plaintext, locked memory; NULL: none, or not given). */
const char *dbreg_spec_password(const struct dbreg_spec *s);
/* One stored password in format (NULL: "dbreg"): dbreg:v2 bound to b, or Fernet (b unused). */
int dbreg_encrypt_stored(struct dbreg_ctx *ctx, const char *format, const struct dbreg_binding *b,
                         const char *password, size_t len, char **ret_stored, struct dbreg_error *err);
/* A row's binding: from a record, or from a result row with the columns id, host,
 * port, database_name, username and ssl_mode (-1 when one is missing).  The
 * strings stay the record's or the result's. */
void dbreg_binding_of_conn(const struct dbreg_conn *c, struct dbreg_binding *b);
int dbreg_binding_of_row(const PGresult *res, int row, struct dbreg_binding *b);
int dbreg_spec_writable(enum dbreg_field f);
/* A mask of fields (DBREG_FIELD_BIT), 0 for all: what a read selects.  connection_name
 * is always read; region_code comes with region_id. */
#define DBREG_FIELD_BIT(f) (UINT64_C(1) << (unsigned)(f))
/* With fields: the stored password too (column stored_password), for the library's own
 * readers that decrypt it (a password file); never in a public record's fields. */
#define DBREG_STORED_PASSWORD (UINT64_C(1) << 63)
_Static_assert(DBREG_F__COUNT < 63, "a field mask is 63 bits and the stored password's");
/* A record's stored password, where its read asked for it (DBREG_STORED_PASSWORD), or NULL. */
const char *dbreg_conn_stored_password(const struct dbreg_conn *c);
/* dbreg_list_stream with this mask of fields (DBREG_FIELD_BIT, DBREG_STORED_PASSWORD; 0:
 * every field) instead of the filter's. */
int dbreg_list_stream_mask(struct dbreg_ctx *ctx, const struct dbreg_filter *filter, uint64_t mask,
                           struct dbreg_conn_stream **ret, struct dbreg_error *err);
struct dbreg_conn_list *dbreg_conn_list_from_result(PGresult *res, uint64_t mask, struct dbreg_error *err);
/* The rows of sql (connection records: dbreg_conn_select_list's columns for mask) one by
 * one, in single-row mode on the admin connection, which is busy until the stream is freed. */
int dbreg_conn_stream_open(struct dbreg_ctx *ctx, const char *sql, int nparams, const char *const *params,
                           uint64_t mask, struct dbreg_conn_stream **ret, struct dbreg_error *err);
/* "expr AS name, ..." for the mask's fields of the field table, region_code where the
 * profile has regions: the SELECT list (over admin.database_connections AS d)
 * that dbreg_conn_list_from_result reads.  Into buf, which it returns. */
struct dbreg_profile;
const char *dbreg_conn_select_list(const struct dbreg_profile *p, uint64_t mask, char *buf, size_t size);
/* The registry's columns the mask's fields (0: all: "*") are made from, with those the rows
 * are ordered by (connection_name, deleted_at, created_at): the inner SELECT list. */
const char *dbreg_conn_base_columns(uint64_t mask, char *buf, size_t size);
/* The region code of row d as an SQL expression: through the regions table, or region_id itself. */
const char *dbreg_region_code_expr(const struct dbreg_profile *p, char *buf, size_t size);

/* ---- validate-config: what validate.c needs from the modules that own each thing ---- */
/* conninfo.c: what validate-config needs to know of a connection string, read by libpq's parser. */
struct dbreg_conninfo_facts {
	int parsed;            /* 0: libpq refused it (see error and unknown_keyword) */
	int unknown_keyword;   /* the refusal is a keyword or URI parameter libpq does not know */
	char error[512];       /* libpq's refusal, with quoted parts that could be secret hidden */
	int has_password;
	char *host, *hostaddr, *port, *sslmode, *requiressl, *service;  /* NULL when absent */
};
/* -1 only when out of memory: a string libpq refuses is parsed == 0. */
int dbreg_conninfo_inspect(const char *url, struct dbreg_conninfo_facts *f);
void dbreg_conninfo_facts_clear(struct dbreg_conninfo_facts *f);
/* libpq's sslmodes, weakest first (0 disable .. 5 verify-full); -1 for no sslmode. */
int dbreg_sslmode_rank(const char *mode);
#define DBREG_SSLMODE_ENCRYPTED 3  /* require: below it, traffic may go unencrypted */

/* secret.c: reads a key file as the keyring does (refusing one that group or
 * others can read) into locked memory; release with dbreg_key_text_free. */
int dbreg_key_file_read(const char *path, char **ret_text, struct dbreg_error *err);
void dbreg_key_text_free(char *text);
/* secret.c: a whole file that may hold passwords (a .pgpass, a service file)
 * into locked memory with read(2), never stdio: NUL-terminated, *ret_len (optional)
 * without the NUL; at most max bytes.  private_only: only a regular file that group
 * and others cannot access, as libpq requires of .pgpass (else DBREG_ERR_CONFIG);
 * other failures are of kind.  what names it in messages.  Release with
 * dbreg_key_text_free (wipes). */
int dbreg_secret_file_read(const char *what, const char *path, bool private_only, enum dbreg_errkind kind,
                           size_t max, char **ret_text, size_t *ret_len, struct dbreg_error *err);

/* ctx.c: the admin URL the context uses (ADMIN_DATABASE_URL unless overridden), or NULL. */
const char *dbreg_ctx_admin_url(struct dbreg_ctx *ctx);

/* registry.c, on a connection of validate's own (any schema, or none). */
/* Every live row, by connection_name: id, connection_name, host, port, database_name,
 * username, ssl_mode, encrypted_password, pool_*; group_size counts the live rows with
 * the same host, port, database and user (itself included), group_lead is the id of
 * the first of them by connection_name. */
PGresult *dbreg_registry_validate_rows(PGconn *conn, struct dbreg_error *err);
/* Live tenants: slug, schema_name, status, database_connection_id, connection_name,
 * conn_state (missing, deleted, inactive or ok; NULL without a connection of their own). */
PGresult *dbreg_registry_validate_tenants(PGconn *conn, struct dbreg_error *err);
/* The live connection NAME: is_active ('t'/'f') and connection_type; no row when there is none. */
PGresult *dbreg_registry_validate_default(PGconn *conn, const char *name, struct dbreg_error *err);

/* validate.c: a service as libpq finds it (PGSERVICEFILE or ~/.pg_service.conf,
 * then PGSYSCONFDIR's or the built-in pg_service.conf), read without connecting. */
struct dbreg_service {
	int found;
	char file[4096];       /* the file that defines it */
	char searched[8300];   /* the files looked in, for a message */
	char error[4200];      /* a service file that exists but cannot be read */
	char *host, *hostaddr, *port, *sslmode, *requiressl;  /* its settings; NULL when not set */
};
/* -1 only when out of memory. */
int dbreg_service_find(const char *name, struct dbreg_service *ret);
/* conninfo.c: a service file's text (NUL-terminated, len without the NUL,
 * changed in place) line by line as libpq reads it: white space around a line
 * and "#" comments skipped; each "[name" line is a GROUP (key the name, value
 * "" when the "]" is there, NULL when not), each "key=value" a SETTING (nothing
 * trimmed around "="), anything else OTHER (key the line).  line counts from 1.
 * Stops at the first nonzero visit, and returns it (0 at the end). */
#define DBREG_SERVICE_FILE_MAX (4u << 20)
enum dbreg_service_line { DBREG_SVC_GROUP, DBREG_SVC_SETTING, DBREG_SVC_OTHER };
int dbreg_service_walk(char *text, size_t len,
                       int (*visit)(void *ud, enum dbreg_service_line kind, const char *key, const char *value,
                                    unsigned line),
                       void *ud);
void dbreg_service_clear(struct dbreg_service *s);

#endif
