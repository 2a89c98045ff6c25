/* targets.h — registry rows (dbreg_registry_targets) as fan-out jobs, for health and pool-stats. */
#ifndef DBREG_TARGETS_H
#define DBREG_TARGETS_H

#include "fanout.h"
#include "internal.h"

struct target_run {
	struct dbreg_ctx *ctx;
	PGresult *rows;
	int have_keys;
	char key_error[256];
	char options[48];
};

/* Loads the keyring if it can (rows with a password need it) and the per-run
 * options; fails (DBREG_ERR_CONFIG) only for a key that is set but unusable. */
int target_run_init(struct target_run *t, struct dbreg_ctx *ctx, PGresult *rows, int timeout_ms,
                    struct dbreg_error *err);
/* Connection parameters of one row. */
void target_job_init(struct fanout_job *j, struct target_run *t, int row, const char *appname);
/* fanout_opts.prepare, with the target_run as userdata. */
int target_prepare(struct fanout_job *j, void *userdata);

/* Runs the jobs through the fan-out loop, passwords decrypted just in time and
 * the context's cancellation honoured; fails only when the loop itself does. */
int target_fanout(struct target_run *t, struct fanout_job *jobs, size_t n, int max_jobs, int timeout_ms,
                  void (*progress)(size_t, size_t, double, void *), void *progress_userdata, struct dbreg_error *err);

#endif
