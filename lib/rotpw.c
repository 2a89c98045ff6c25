/* rotpw.c — rotate-password: a new random password set on a connection's server (its SCRAM
 * verifier computed here) and in the registry, in steps a crash at any point is resumed from. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"
#include "targets.h"

/* 64 characters, so that every one is drawn with the same chance; URL- and shell-safe. */
static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

struct rotpw {
	struct dbreg_ctx *ctx;
	PGresult *row;
	struct dbreg_binding b;
	const char *name, *id;
	char shown[128];
	int timeout_ms;
};

/* The job that logs in to the row's target with password. */
static void login_job(struct rotpw *r, struct fanout_job *j, const char *password)
{
	struct target_spec t = {
		.name = r->name, .host = r->b.host, .port = r->b.port, .dbname = r->b.database,
		.user = r->b.user, .sslmode = r->b.ssl_mode,
	};

	memset(j, 0, sizeof(*j));
	target_params(j, &t, "dbreg-rotate-password", NULL);
	if (password) {
		memcpy(j->secret, password, strlen(password) + 1);
		fanout_job_add(j, "password", j->secret);
	}
}

static int login(struct rotpw *r, const char *password, PGconn **ret, struct dbreg_error *err)
{
	struct fanout_job j;

	login_job(r, &j, password);
	return target_connect(&j, r->name, r->timeout_ms, ret, err);
}

/* A stored text of this row (the registry's or a pending one) decrypted into locked memory. */
static int decrypt(struct rotpw *r, const char *stored, char **ret, struct dbreg_error *err)
{
	struct fanout_job j = { .nparams = 0 };
	char *pw;

	if (target_password_one(&j, r->ctx, r->name, stored, &r->b, err) < 0)
		return -1;
	pw = sodium_malloc(strlen(j.secret) + 1);
	if (!pw) {
		sodium_memzero(j.secret, sizeof(j.secret));
		return dbreg_fail_oom(err);
	}
	memcpy(pw, j.secret, strlen(j.secret) + 1);
	sodium_memzero(j.secret, sizeof(j.secret));
	*ret = pw;
	return 0;
}

/* What makes a target one dbreg must not rotate on: checked on the logged-in connection. */
static int check_target(struct rotpw *r, PGconn *conn, struct dbreg_error *err)
{
	PGresult *res;
	const char *v;
	int bad;

	if (!PQconnectionUsedPassword(conn))
		return dbreg_fail(err, DBREG_ERR_FAILED,
		                  "connection '%s': the server let it in without a password (trust or peer?);"
		                  " a new password would not be asked for", r->shown);
	res = PQexec(conn, "SELECT pg_is_in_recovery()::text AS in_recovery");
	v = PQresultStatus(res) == PGRES_TUPLES_OK ? dbreg_result_value(res, 0, "in_recovery") : NULL;
	bad = !v ? -1 : strcmp(v, "true") == 0;
	PQclear(res);
	if (bad < 0)
		return dbreg_fail(err, DBREG_ERR_FAILED, "connection '%s': cannot ask whether the server is in recovery",
		                  r->shown);
	if (bad)
		return dbreg_fail(err, DBREG_ERR_FAILED,
		                  "connection '%s': the server is in recovery (a standby takes no ALTER ROLE;"
		                  " rotate the password on its primary)", r->shown);
	return 0;
}

/* Step 2: ALTER ROLE with the verifier computed here, so the plaintext reaches neither the
 * server nor its logs.  A utility statement takes no parameters: the verifier is a literal. */
static int set_on_server(struct rotpw *r, PGconn *conn, const char *password, bool *ret_refused,
                         struct dbreg_error *err)
{
	static const char head[] = "ALTER ROLE CURRENT_USER PASSWORD ";
	char *verifier, *literal, *sql;
	PGresult *res;
	int ok;

	verifier = PQencryptPasswordConn(conn, password, r->b.user ? r->b.user : "", "scram-sha-256");
	if (!verifier)
		return dbreg_fail(err, DBREG_ERR_FAILED, "connection '%s': cannot compute the SCRAM verifier: %s", r->shown,
		                  PQerrorMessage(conn));
	literal = PQescapeLiteral(conn, verifier, strlen(verifier));
	sodium_memzero(verifier, strlen(verifier));
	PQfreemem(verifier);
	if (!literal)
		return dbreg_fail_oom(err);
	sql = malloc(sizeof(head) + strlen(literal));
	if (!sql) {
		PQfreemem(literal);
		return dbreg_fail_oom(err);
	}
	memcpy(sql, head, sizeof(head) - 1);
	memcpy(sql + sizeof(head) - 1, literal, strlen(literal) + 1);
	PQfreemem(literal);
	res = PQexec(conn, sql);
	sodium_memzero(sql, strlen(sql));
	free(sql);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	/* Refused for certain only when the server said so and the session is still there: a
	 * lost answer may be a committed ALTER ROLE. */
	*ret_refused = !ok && PQresultStatus(res) == PGRES_FATAL_ERROR && PQstatus(conn) == CONNECTION_OK;
	if (!ok)
		dbreg_fail_result(err, res, "ALTER ROLE failed");
	PQclear(res);
	if (!ok)
		dbreg_error_prefix(err, "connection '%s': ", r->shown);
	return ok ? 0 : -1;
}

/* A pooler's row (metadata.pooler set), its admin database, or a row tagged as one: its
 * users live in the pooler's files, not in the server's roles. */
static bool is_pooler(const PGresult *row)
{
	const char *db = dbreg_result_value(row, 0, "database_name"), *tags = dbreg_result_value(row, 0, "tags");
	char list[1024];

	snprintf(list, sizeof(list), ",%s,", tags ? tags : "");
	return dbreg_result_value(row, 0, "pooler") || (db && strcmp(db, "pgbouncer") == 0) ||
	       strstr(list, ",pooler,") || strstr(list, ",pgbouncer,");
}

static int new_password(int length, char **ret, struct dbreg_error *err)
{
	char *pw = sodium_malloc((size_t)length + 1);

	if (!pw)
		return dbreg_fail_oom(err);
	for (int i = 0; i < length; i++)
		pw[i] = alphabet[randombytes_uniform(sizeof(alphabet) - 1)];
	pw[length] = '\0';
	*ret = pw;
	return 0;
}

/* A run that finds a pending record: the server has the pending password (steps 3 and 4 were
 * lost), or still the stored one (step 2 was).  *ret_conn: a login with the stored password,
 * to start over on, when the record was discarded. */
static int resume(struct rotpw *r, const char *old_pw, bool dry_run, int *ret_resumed, PGconn **ret_conn,
                  struct dbreg_error *err)
{
	const char *pending = dbreg_result_value(r->row, 0, "pending_password");
	struct dbreg_error e1, e2;
	char *pw = NULL;
	PGconn *conn = NULL;
	int rc;

	if (decrypt(r, pending, &pw, err) < 0)
		return -1;
	dbreg_error_clear(&e1);
	rc = login(r, pw, &conn, &e1);
	sodium_free(pw);
	/* A server that asks for no password proves nothing of which one it has. */
	if (rc == 0 && !PQconnectionUsedPassword(conn)) {
		PQfinish(conn);
		return dbreg_fail(err, DBREG_ERR_FAILED,
		                  "connection '%s': the server let it in without a password (trust or peer?)", r->shown);
	}
	if (rc == 0) {
		PQfinish(conn);
		*ret_resumed = DBREG_ROTPW_COMPLETED;
		return dry_run ? 0 : dbreg_registry_pending_finish(r->ctx, r->id, false, err);
	}
	dbreg_error_clear(&e2);
	if (login(r, old_pw, &conn, &e2) < 0)
		return dbreg_fail(err, DBREG_ERR_FAILED,
		                  "connection '%s': neither the pending password of the unfinished rotation nor the stored"
		                  " one logs in (%s); nothing was changed", r->shown, e2.message);
	*ret_resumed = DBREG_ROTPW_DISCARDED;
	if (!dry_run && dbreg_registry_pending_finish(r->ctx, r->id, true, err) < 0) {
		PQfinish(conn);
		return -1;
	}
	*ret_conn = conn;
	return 0;
}

static int rotate(struct rotpw *r, int length, unsigned flags, int *ret_resumed, struct dbreg_error *err)
{
	const char *stored = dbreg_result_value(r->row, 0, "encrypted_password");
	bool dry_run = flags & DBREG_ROTPW_DRY_RUN;
	char *old_pw = NULL, *new_pw = NULL, *sealed = NULL, *others = NULL;
	PGconn *conn = NULL, *check = NULL;
	bool refused = false;
	int rc = -1;

	if (!stored || !*stored)
		return dbreg_fail(err, DBREG_ERR_FAILED, "connection '%s' has no stored password to rotate", r->shown);
	if (is_pooler(r->row))
		return dbreg_fail(err, DBREG_ERR_FAILED,
		                  "connection '%s' is a pooler's (its users are the pooler's, not the server's);"
		                  " rotate the password on the server behind it", r->shown);
	/* The keys first: without them nothing can be tried. */
	if (dbreg_ctx_load_write_keys(r->ctx, err) < 0 || dbreg_registry_same_user(r->ctx, r->id, r->b.user, &others, err) < 0)
		return -1;
	if (*others && !(flags & DBREG_ROTPW_FORCE)) {
		dbreg_fail(err, DBREG_ERR_FAILED,
		           "other connections log in as '%s' too: %s (they may be the same role seen through a replica);"
		           " --force rotates it anyway", r->b.user ? r->b.user : "", others);
		free(others);
		return -1;
	}
	free(others);
	if (decrypt(r, stored, &old_pw, err) < 0)
		return -1;
	if (dbreg_result_value(r->row, 0, "pending_password")) {
		if (resume(r, old_pw, dry_run, ret_resumed, &conn, err) < 0)
			goto out;
		if (*ret_resumed == DBREG_ROTPW_COMPLETED) {
			rc = 0;
			goto out;
		}
	} else if (login(r, old_pw, &conn, err) < 0) {
		goto out;
	}
	if (check_target(r, conn, err) < 0)
		goto out;
	if (dry_run) {
		rc = 0;
		goto out;
	}
	if (new_password(length, &new_pw, err) < 0 ||
	    dbreg_encrypt_stored(r->ctx, dbreg_ctx_profile(r->ctx)->password_format, &r->b, new_pw, strlen(new_pw),
	                         &sealed, err) < 0)
		goto out;
	/* (1) recorded, (2) on the server, (3) proven, (4) stored: each step safe to stop after. */
	if (dbreg_registry_pending_record(r->ctx, r->id, sealed, err) < 0)
		goto out;
	dbreg_test_crash_point("1");
	if (set_on_server(r, conn, new_pw, &refused, err) < 0) {
		/* The server kept the old one: the record would only mislead.  Not known: the
		 * next run finds out which password the server has. */
		if (refused)
			dbreg_registry_pending_finish(r->ctx, r->id, true, NULL);
		else
			dbreg_error_prefix(err, "the new password stays pending (run rotate-password again to finish): ");
		goto out;
	}
	dbreg_test_crash_point("2");
	PQfinish(conn);
	conn = NULL;
	if (login(r, new_pw, &check, err) < 0) {
		dbreg_error_prefix(err, "the server took the new password but a fresh login with it failed"
		                        " (it stays pending; run rotate-password again): ");
		goto out;
	}
	PQfinish(check);
	dbreg_test_crash_point("3");
	rc = dbreg_registry_pending_finish(r->ctx, r->id, false, err);
out:
	PQfinish(conn);
	sodium_free(old_pw);
	sodium_free(new_pw);
	free(sealed);
	return rc;
}

_public_ int dbreg_rotate_password(struct dbreg_ctx *ctx, const char *name, int length, unsigned flags,
                                   int *ret_resumed, struct dbreg_error *err)
{
	struct rotpw r = { .ctx = ctx, .name = name, .timeout_ms = 10000 };
	int resumed = DBREG_ROTPW_FRESH, locked, rc;
	char *id;

	if (length == 0)
		length = DBREG_ROTPW_DEFAULT_LENGTH;
	if (length < DBREG_ROTPW_MIN_LENGTH || length > DBREG_ROTPW_MAX_LENGTH)
		return dbreg_fail(err, DBREG_ERR_USAGE, "--length: %d is out of range (%d..%d)", length,
		                  DBREG_ROTPW_MIN_LENGTH, DBREG_ROTPW_MAX_LENGTH);
	dbreg_printable(name, r.shown, sizeof(r.shown));
	if (dbreg_ctx_connect(ctx, NULL, err) < 0 || dbreg_ctx_check_writable(ctx, err) < 0)
		return -1;
	if (!dbreg_ctx_profile(ctx)->have_pending)
		return dbreg_fail(err, DBREG_ERR_CONFIG, "the registry has no pending-rotations table: run 'dbreg init'");
	r.row = dbreg_registry_rotpw_row(ctx, name, err);
	if (!r.row)
		return -1;
	if (PQntuples(r.row) != 1 || dbreg_binding_of_row(r.row, 0, &r.b) < 0 || !r.b.id) {
		rc = PQntuples(r.row) == 0 ? dbreg_fail_unknown_connection(ctx, name, err)
		                           : dbreg_fail(err, DBREG_ERR_INTERNAL, "cannot read connection '%s'", r.shown);
		PQclear(r.row);
		return rc;
	}
	if (!(id = strdup(r.b.id))) {
		PQclear(r.row);
		return dbreg_fail_oom(err);
	}
	PQclear(r.row);
	r.row = NULL;
	/* The whole run under the connection's lock, held by this session; the row read again
	 * under it, so that no update moved its target in between. */
	locked = dbreg_registry_rotpw_lock(ctx, id, true, err);
	if (locked <= 0) {
		free(id);
		return locked < 0 ? -1 : dbreg_fail(err, DBREG_ERR_FAILED, "connection '%s': rotation in progress", r.shown);
	}
	r.row = dbreg_registry_rotpw_row(ctx, name, err);
	if (!r.row)
		rc = -1;
	else if (PQntuples(r.row) != 1 || dbreg_binding_of_row(r.row, 0, &r.b) < 0 || !r.b.id || strcmp(r.b.id, id) != 0)
		rc = dbreg_fail(err, DBREG_ERR_FAILED, "connection '%s' changed while its rotation started; try again",
		                r.shown);
	else {
		r.id = r.b.id;
		rc = rotate(&r, length, flags, &resumed, err);
	}
	dbreg_registry_rotpw_lock(ctx, id, false, NULL);
	free(id);
	PQclear(r.row);
	if (rc == 0 && ret_resumed)
		*ret_resumed = resumed;
	return rc;
}
