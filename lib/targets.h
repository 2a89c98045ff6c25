/* targets.h — the one way to reach a registered database: its parameters, its password, its login. */
#ifndef DBREG_TARGETS_H
#define DBREG_TARGETS_H

#include "fanout.h"
#include "internal.h"

/* One target's settings, from its registry row or from the options. */
struct target_spec {
	const char *name;     /* for messages; may be NULL */
	const char *host, *port, *dbname, *user, *sslmode;
};

/* The settings of a registry row (its strings stay the row's). */
struct target_spec target_spec_of(const struct dbreg_conn *c);

/* The one builder of target parameters: every keyword explicit (no port is
 * 5432, no sslmode `prefer`), since libpq's environment is the admin
 * connection's (dbreg_pgenv_take); options is the per-run "-c ..." or NULL. */
void target_params(struct fanout_job *j, const struct target_spec *s, const char *appname, const char *options);

/* The one decrypt: the stored text of a connection into j->secret, added as
 * its password; b is the row it was read from (its id and target, which a v2
 * value is bound to).  Fails with j->error (and ret_err, when given) set: no
 * key, undecryptable, another row's. */
int target_password(struct fanout_job *j, struct dbreg_ctx *ctx, const char *name, const char *stored,
                    const struct dbreg_binding *b, bool have_keys, const char *key_error,
                    struct dbreg_error *ret_err);
/* The keys target_password may need: the keyring, and the Fernet key when a
 * passphrase is set.  A key or passphrase that is set but unusable fails
 * (DBREG_ERR_CONFIG); none at all leaves the rows that need it unchecked. */
int target_keys(struct dbreg_ctx *ctx, bool *ret_have_keys, char *key_error, size_t size, struct dbreg_error *err);
/* Logs in to j's target within timeout_ms through the fan-out loop (bounded like any
 * check) and hands over the connection, blocking; j is cleared either way. */
int target_connect(struct fanout_job *j, const char *name, int timeout_ms, PGconn **ret, struct dbreg_error *err);
/* target_keys, then target_password: one login's password outside a run of many. */
int target_password_one(struct fanout_job *j, struct dbreg_ctx *ctx, const char *name, const char *stored,
                        const struct dbreg_binding *b, struct dbreg_error *err);

/* A target's answer is untrusted.  The text of the named column (NULL: the
 * first) in the one row of res; NULL with why set when res is not exactly
 * that (an error, no row or several, no such column, NULL unless ret_null is
 * given, which then says so and gets ""). */
const char *target_answer(const PGresult *res, const char *column, bool *ret_null, char *why, size_t size);
/* A whole number >= 0, all of text. */
bool target_count(const char *text, long *ret);

/* Registry rows to log in to, packed (a fraction of a PGresult's memory), read by
 * dbreg_registry_targets_each as the server sends them. */
#define TARGET_MAX_COLUMNS 32
struct target_rows;
/* The selected rows (among the ids of a JSON array, unless NULL) into *ret. */
int target_rows_load(struct dbreg_ctx *ctx, const struct dbreg_filter *filter, const char *ids_json,
                     struct target_rows **ret, struct dbreg_error *err);
size_t target_rows_count(const struct target_rows *r);
void target_rows_free(struct target_rows *r);

struct target_run {
	struct dbreg_ctx *ctx;
	const struct target_rows *rows;
	int have_keys;
	char key_error[256];
	char options[48];
	int threads;                     /* event loops for target_fanout (0: 1) */
	size_t jobs_wanted, jobs_used;   /* set by target_fanout */
	long fd_limit;
	/* the rows' columns, found by name */
	int c_id, c_name, c_type, c_region, c_host, c_port, c_database, c_user, c_ssl_mode, c_password, c_active,
		c_pool_min, c_pool_max, c_pool_timeout, c_pool_recycle;
	int c_pending;        /* pending_password, an unfinished rotate-password's (-1: not asked for) */
	int c_pooler, c_pooler_db;  /* metadata.pooler and .pooler_db (-1: not asked for) */
	int c_expected_role;  /* the row's type or metadata.expected_role, as the registry has it (-1: not asked for) */
	bool pending_round;   /* target_fanout logs in with the pending passwords, not the stored ones */
};

/* Loads the keyring if it can (rows with a password need it) and the per-run
 * options; fails (DBREG_ERR_CONFIG) only for a key that is set but unusable,
 * and DBREG_ERR_INTERNAL for rows without the columns dbreg_registry_targets gives. */
int target_run_init(struct target_run *t, struct dbreg_ctx *ctx, const struct target_rows *rows, int timeout_ms,
                    struct dbreg_error *err);
/* A value of one row ("" for NULL, as libpq gives it); col from target_run. */
const char *target_value(const struct target_run *t, int row, int col);
bool target_isnull(const struct target_run *t, int row, int col);
/* Connection parameters of one row. */
void target_job_init(struct fanout_job *j, struct target_run *t, int row, const char *appname);
/* The same, to another database of its server (a pooler's admin console), or NULL: the row's. */
void target_job_init_db(struct fanout_job *j, struct target_run *t, int row, const char *appname, const char *dbname);
/* The row's pooler ("pgbouncer"), or NULL when it is a server's. */
const char *target_pooler(const struct target_run *t, int row);
/* A pooler row's admin console database (metadata.pooler_db, default "pgbouncer"). */
const char *target_pooler_db(const struct target_run *t, int row);
/* What the registry says the row's server is ("primary", "replica", or another text an
 * operator put in metadata.expected_role), or NULL when it says nothing. */
const char *target_expected_role(const struct target_run *t, int row);

/* Runs the jobs through the fan-out loop, passwords decrypted just in time and
 * the context's cancellation honoured; fails only when the loop itself does. */
int target_fanout(struct target_run *t, struct fanout_job *jobs, size_t n, int max_jobs, int timeout_ms,
                  void (*progress)(size_t, size_t, double, void *), void *progress_userdata, struct dbreg_error *err);
/* The same for the jobs of a source (the rows of t, one job each as a slot frees up). */
int target_fanout_source(struct target_run *t, const struct fanout_source *src, int max_jobs, int timeout_ms,
                         void (*progress)(size_t, size_t, double, void *), void *progress_userdata,
                         struct dbreg_error *err);

/* A fan-out of one job: logs in to s with password (NULL: none), runs sql with
 * an optional $1, and hands back its result (one row at least, PQclear it).
 * A failed login or query is DBREG_ERR_FAILED naming the target. */
int target_query_one(const struct target_spec *s, const char *password, int timeout_ms, const char *sql,
                     const char *param, PGresult **ret, struct dbreg_error *err);

#endif
