/* targets.c — turning registry rows into fan-out jobs: connection parameters and passwords. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "targets.h"

int target_run_init(struct target_run *t, struct dbreg_ctx *ctx, PGresult *rows, int timeout_ms,
                    struct dbreg_error *err)
{
	struct dbreg_error kerr;

	memset(t, 0, sizeof(*t));
	t->ctx = ctx;
	t->rows = rows;
	dbreg_error_clear(&kerr);
	t->have_keys = dbreg_ctx_load_keys(ctx, &kerr) == 0;
	/* No key at all only leaves rows with a password unchecked; a key that is
	 * set but unusable is a configuration error. */
	if (!t->have_keys && dbreg_keys_configured()) {
		if (err)
			*err = kerr;
		return -1;
	}
	if (!t->have_keys) {
		const char *why = kerr.message;

		if (strncmp(why, "no encryption key: ", 19) == 0)
			why += 19;
		snprintf(t->key_error, sizeof(t->key_error), "%s", why);
	}
	/* The server ends a query that outlives the check; the loop ends everything else. */
	snprintf(t->options, sizeof(t->options), "-c statement_timeout=%d", timeout_ms);
	return 0;
}

void target_job_init(struct fanout_job *j, struct target_run *t, int row, const char *appname)
{
	j->userdata = (void *)(intptr_t)row;
	fanout_job_add(j, "host", PQgetvalue(t->rows, row, TC_HOST));
	fanout_job_add(j, "port", PQgetvalue(t->rows, row, TC_PORT));
	fanout_job_add(j, "dbname", PQgetvalue(t->rows, row, TC_DATABASE));
	fanout_job_add(j, "user", PQgetvalue(t->rows, row, TC_USER));
	fanout_job_add(j, "sslmode", PQgetvalue(t->rows, row, TC_SSL_MODE));
	fanout_job_add(j, "gssencmode", "disable");
	fanout_job_add(j, "fallback_application_name", appname);
	fanout_job_add(j, "options", t->options);
}

/* Decrypts a target's password just before its connection; fanout wipes it after. */
int target_prepare(struct fanout_job *j, void *userdata)
{
	struct target_run *t = userdata;
	int row = (int)(intptr_t)j->userdata;
	struct dbreg_error err;
	char *pw = NULL;

	if (PQgetisnull(t->rows, row, TC_PASSWORD))
		return 0;
	if (!t->have_keys) {
		snprintf(j->error, sizeof(j->error), "no key: %s", t->key_error);
		return -1;
	}
	if (dbreg_decrypt(dbreg_ctx_keyring(t->ctx), PQgetvalue(t->rows, row, TC_PASSWORD), &pw, &err) < 0) {
		snprintf(j->error, sizeof(j->error), "connection '%s': %s", PQgetvalue(t->rows, row, TC_NAME), err.message);
		return -1;
	}
	snprintf(j->secret, sizeof(j->secret), "%s", pw);
	dbreg_secret_free(pw);
	fanout_job_add(j, "password", j->secret);
	return 0;
}

int target_fanout(struct target_run *t, struct fanout_job *jobs, size_t n, int max_jobs, int timeout_ms,
                  void (*progress)(size_t, size_t, double, void *), void *progress_userdata, struct dbreg_error *err)
{
	struct fanout_opts fo = {
		.jobs = max_jobs > 0 ? max_jobs : 64,
		.timeout_ms = timeout_ms,
		.cancel = dbreg_ctx_cancel_flag(t->ctx),
		.progress = progress,
		.progress_userdata = progress_userdata,
		.prepare = target_prepare,
		.userdata = t,
	};
	char why[256] = "";

	if (fanout_run(jobs, n, &fo, why, sizeof(why)) < 0)
		return dbreg_fail(err, DBREG_ERR_INTERNAL, "the fan-out loop failed: %s", why);
	return 0;
}
