/* ctx.c — the library context: the admin connection, the keyring, cancellation. */
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "config.h"
#include "internal.h"

struct dbreg_ctx {
	char *url;               /* NULL: ADMIN_DATABASE_URL */
	PGconn *conn;
	PGcancel *cancel;        /* for the kept connection; used from a signal handler */
	struct dbreg_keyring *keys;
	struct dbreg_profile profile;
	char *init_report;       /* what the last init found, when it adopted a registry */
	unsigned char *fernet_key;   /* sodium_malloc'd once derived */
	int fernet_state;            /* 0 not tried, 1 have it, 2 none set */
	bool revived;                /* the last register revived a deleted row */
	volatile sig_atomic_t cancelled;
};

_public_ const char *dbreg_version(void)
{
	return DBREG_VERSION;
}

_public_ int dbreg_ctx_new(struct dbreg_ctx **ret_ctx, struct dbreg_error *err)
{
	struct dbreg_ctx *ctx;

	dbreg_pgenv_take();
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return dbreg_fail_oom(err);
	*ret_ctx = ctx;
	return 0;
}

static void drop_conn(struct dbreg_ctx *ctx)
{
	PGcancel *c = ctx->cancel;

	ctx->cancel = NULL;
	PQfreeCancel(c);
	PQfinish(ctx->conn);
	ctx->conn = NULL;
}

_public_ void dbreg_ctx_free(struct dbreg_ctx *ctx)
{
	if (!ctx)
		return;
	drop_conn(ctx);
	dbreg_keyring_free(ctx->keys);
	dbreg_profile_clear(&ctx->profile);
	free(ctx->init_report);
	if (ctx->fernet_key)
		sodium_free(ctx->fernet_key);  /* wipes */
	free(ctx->url);
	free(ctx);
}

_public_ int dbreg_ctx_set_admin_url(struct dbreg_ctx *ctx, const char *url, struct dbreg_error *err)
{
	char *copy = NULL;

	if (url && !(copy = strdup(url)))
		return dbreg_fail_oom(err);
	free(ctx->url);
	ctx->url = copy;
	drop_conn(ctx);
	return 0;
}

static const char *admin_url(struct dbreg_ctx *ctx)
{
	return ctx->url ? ctx->url : getenv("ADMIN_DATABASE_URL");
}

/* The profile of the registry conn holds, read into ctx once it passes. */
static int take_profile(struct dbreg_ctx *ctx, PGconn *conn, struct dbreg_error *err)
{
	struct dbreg_profile profile;

	if (dbreg_profile_read(conn, &profile, err) < 0 || dbreg_profile_check(&profile, PQdb(conn), err) < 0) {
		dbreg_profile_clear(&profile);
		return -1;
	}
	dbreg_profile_clear(&ctx->profile);
	ctx->profile = profile;
	return 0;
}

_public_ int dbreg_ctx_connect(struct dbreg_ctx *ctx, int *ret_reconnected, struct dbreg_error *err)
{
	int reconnected = 0;
	PGconn *conn;

	if (ctx->conn) {
		PGresult *res;

		if (PQstatus(ctx->conn) == CONNECTION_OK) {
			/* A terminated backend is only noticed on use: ask it. */
			res = PQexec(ctx->conn, "SELECT 1");
			if (PQresultStatus(res) == PGRES_TUPLES_OK) {
				PQclear(res);
				if (ret_reconnected)
					*ret_reconnected = 0;
				/* Connected raw (init), or the shape changed since (init in the REPL). */
				return ctx->profile.have_registry ? 0 : take_profile(ctx, ctx->conn, err);
			}
			PQclear(res);
		}
		drop_conn(ctx);
		reconnected = 1;
	}
	if (dbreg_connect_admin(admin_url(ctx), &conn, err) < 0)
		return -1;
	if (take_profile(ctx, conn, err) < 0) {
		PQfinish(conn);
		return -1;
	}
	ctx->conn = conn;
	ctx->cancel = PQgetCancel(conn);
	if (ret_reconnected)
		*ret_reconnected = reconnected;
	return 0;
}

int dbreg_ctx_connect_raw(struct dbreg_ctx *ctx, struct dbreg_error *err)
{
	drop_conn(ctx);
	if (dbreg_connect_admin(admin_url(ctx), &ctx->conn, err) < 0)
		return -1;
	ctx->cancel = PQgetCancel(ctx->conn);
	return 0;
}

_public_ const char *dbreg_ctx_admin_dbname(struct dbreg_ctx *ctx)
{
	if (ctx->conn)
		return PQdb(ctx->conn);
	return "";
}

_public_ void dbreg_ctx_cancel(struct dbreg_ctx *ctx)
{
	char buf[256];
	PGcancel *c;

	if (!ctx)
		return;
	ctx->cancelled = 1;
	c = ctx->cancel;
	if (c)
		PQcancel(c, buf, sizeof(buf));  /* documented as safe in a signal handler */
}

_public_ void dbreg_ctx_reset_cancel(struct dbreg_ctx *ctx)
{
	ctx->cancelled = 0;
}

_public_ int dbreg_ctx_was_cancelled(struct dbreg_ctx *ctx)
{
	return ctx->cancelled;
}

volatile sig_atomic_t *dbreg_ctx_cancel_flag(struct dbreg_ctx *ctx)
{
	return &ctx->cancelled;
}

PGconn *dbreg_ctx_conn(struct dbreg_ctx *ctx)
{
	return ctx->conn;
}

/* init changed the shape: the next connect reads it again. */
void dbreg_ctx_forget_profile(struct dbreg_ctx *ctx)
{
	dbreg_profile_clear(&ctx->profile);
}

int dbreg_ctx_check_writable(struct dbreg_ctx *ctx, struct dbreg_error *err)
{
	return dbreg_profile_writable(&ctx->profile, err);
}

void dbreg_ctx_set_init_report(struct dbreg_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	free(ctx->init_report);
	ctx->init_report = NULL;
	va_start(ap, fmt);
	if (vasprintf(&ctx->init_report, fmt, ap) < 0)
		ctx->init_report = NULL;
	va_end(ap);
}

int dbreg_ctx_fernet_key(struct dbreg_ctx *ctx, const unsigned char **ret_key, struct dbreg_error *err)
{
	int have = 0;

	if (ctx->fernet_state == 0) {
		if (sodium_init() < 0)
			return dbreg_fail(err, DBREG_ERR_INTERNAL, "libsodium failed to initialise");
		ctx->fernet_key = sodium_malloc(DBREG_FERNET_KEY_BYTES);
		if (!ctx->fernet_key)
			return dbreg_fail_oom(err);
		/* PBKDF2 with 100,000 rounds: once per context, not once per row. */
		if (dbreg_fernet_key_from_env(ctx->fernet_key, &have, err) < 0)
			return -1;
		ctx->fernet_state = have ? 1 : 2;
	}
	*ret_key = ctx->fernet_state == 1 ? ctx->fernet_key : NULL;
	return ctx->fernet_state == 1;
}

_public_ const char *dbreg_password_format(struct dbreg_ctx *ctx)
{
	return ctx->profile.have_registry ? ctx->profile.password_format : NULL;
}

int dbreg_ctx_fernet_write_key(struct dbreg_ctx *ctx, const unsigned char **ret_key, struct dbreg_error *err)
{
	int r = dbreg_ctx_fernet_key(ctx, ret_key, err);

	if (r == 0)
		return dbreg_fail(err, DBREG_ERR_CONFIG,
		                  "writing Fernet tokens (the platform's format) needs its passphrase: set"
		                  " DB_FERNET_PASSPHRASE or DB_FERNET_PASSPHRASE_FILE");
	return r < 0 ? -1 : 0;
}

_public_ int dbreg_ctx_load_format_keys(struct dbreg_ctx *ctx, const char *format, struct dbreg_error *err)
{
	const unsigned char *key;

	if (format && strcmp(format, "fernet") == 0)
		return dbreg_ctx_fernet_write_key(ctx, &key, err);
	return dbreg_ctx_load_keys(ctx, err);
}

_public_ int dbreg_ctx_load_write_keys(struct dbreg_ctx *ctx, struct dbreg_error *err)
{
	return dbreg_ctx_load_format_keys(ctx, ctx->profile.password_format, err);
}

void dbreg_ctx_set_revived(struct dbreg_ctx *ctx, bool revived)
{
	ctx->revived = revived;
}

_public_ int dbreg_register_revived(struct dbreg_ctx *ctx)
{
	return ctx && ctx->revived;
}

_public_ const char *dbreg_init_report(struct dbreg_ctx *ctx)
{
	return ctx ? ctx->init_report : NULL;
}

const struct dbreg_profile *dbreg_ctx_profile(struct dbreg_ctx *ctx)
{
	return &ctx->profile;
}

_public_ int dbreg_ctx_load_keys(struct dbreg_ctx *ctx, struct dbreg_error *err)
{
	struct dbreg_keyring *kr;

	if (ctx->keys)
		return 0;
	if (dbreg_keyring_from_env(&kr, err) < 0)
		return -1;
	ctx->keys = kr;
	return 0;
}

_public_ const struct dbreg_keyring *dbreg_ctx_keyring(struct dbreg_ctx *ctx)
{
	return ctx->keys;
}

void dbreg_rows_drain(struct dbreg_ctx *ctx)
{
	PGresult *res;

	while (ctx->conn && (res = PQgetResult(ctx->conn)))
		PQclear(res);
}

int dbreg_rows_send(struct dbreg_ctx *ctx, const char *sql, int nparams, const char *const *params,
                    struct dbreg_error *err)
{
	if (!ctx->conn)
		return dbreg_fail(err, DBREG_ERR_INTERNAL, "not connected to the admin database");
	if (!PQsendQueryParams(ctx->conn, sql, nparams, NULL, params, NULL, NULL, 0) || !PQsetSingleRowMode(ctx->conn)) {
		dbreg_fail(err, DBREG_ERR_UNAVAILABLE, "cannot send the query: %s", PQerrorMessage(ctx->conn));
		dbreg_rows_drain(ctx);
		return -1;
	}
	return 0;
}

int dbreg_rows_next(struct dbreg_ctx *ctx, PGresult **ret, struct dbreg_error *err)
{
	PGresult *res = PQgetResult(ctx->conn);
	ExecStatusType st = PQresultStatus(res);

	*ret = NULL;
	if (st == PGRES_SINGLE_TUPLE && PQntuples(res) == 1) {
		*ret = res;
		return 1;
	}
	if (st == PGRES_TUPLES_OK) {
		*ret = res;
		dbreg_rows_drain(ctx);  /* the NULL that readies the connection */
		return 0;
	}
	dbreg_ctx_fail_result(ctx, res, err);
	PQclear(res);
	dbreg_rows_drain(ctx);
	return -1;
}

int dbreg_exec_each(struct dbreg_ctx *ctx, const char *sql, int nparams, const char *const *params,
                    int (*each)(const PGresult *res, void *userdata), void *userdata, struct dbreg_error *err)
{
	PGresult *res;
	int r;

	if (dbreg_rows_send(ctx, sql, nparams, params, err) < 0)
		return -1;
	do {
		r = dbreg_rows_next(ctx, &res, err);
		if (r >= 0 && each(res, userdata) < 0) {
			PQclear(res);
			dbreg_rows_drain(ctx);
			return dbreg_fail_oom(err);
		}
		PQclear(res);
	} while (r > 0);
	return r;
}

PGresult *dbreg_exec(struct dbreg_ctx *ctx, const char *sql, int nparams, const char *const *params,
                     ExecStatusType expect, struct dbreg_error *err)
{
	PGresult *res;

	if (!ctx->conn) {
		dbreg_fail(err, DBREG_ERR_INTERNAL, "not connected to the admin database");
		return NULL;
	}
	res = PQexecParams(ctx->conn, sql, nparams, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != expect) {
		dbreg_ctx_fail_result(ctx, res, err);
		PQclear(res);
		return NULL;
	}
	return res;
}

int dbreg_ctx_fail_result(struct dbreg_ctx *ctx, const PGresult *res, struct dbreg_error *err)
{
	if (ctx->cancelled) {
		dbreg_fail(err, DBREG_ERR_FAILED, "the query was interrupted (Ctrl-C)");
		if (err)
			strcpy(err->sqlstate, "57014");
		return -1;
	}
	return dbreg_fail_result(err, res, "the admin database refused the statement");
}

/* ---- validate-config ---- */
const char *dbreg_ctx_admin_url(struct dbreg_ctx *ctx)
{
	return admin_url(ctx);
}
