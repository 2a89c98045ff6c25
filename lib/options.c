/* options.c — the caller's choices (selection, health and pool options) as opaque objects with
 * setters, so a later option is a new setter and never a change to a struct a program compiled in. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void free_strv(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* A NULL-terminated copy of v (NULL for NULL); -1 on no memory. */
static int dup_strv(const char *const *v, char ***ret)
{
	size_t n = 0;
	char **copy;

	*ret = NULL;
	if (!v)
		return 0;
	while (v[n])
		n++;
	copy = calloc(n + 1, sizeof(*copy));
	if (!copy)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!(copy[i] = strdup(v[i]))) {
			free_strv(copy);
			return -1;
		}
	*ret = copy;
	return 0;
}

static int set_text(char **slot, const char *value, struct dbreg_error *err)
{
	char *copy = NULL;

	if (value && !(copy = strdup(value)))
		return dbreg_fail_oom(err);
	free(*slot);
	*slot = copy;
	return 0;
}

/* ---- the selection ---- */

_public_ int dbreg_filter_new(struct dbreg_filter **ret, struct dbreg_error *err)
{
	struct dbreg_filter *f = calloc(1, sizeof(*f));

	if (!f)
		return dbreg_fail_oom(err);
	f->active = -1;
	*ret = f;
	return 0;
}

_public_ void dbreg_filter_free(struct dbreg_filter *f)
{
	if (!f)
		return;
	free(f->type);
	free(f->region);
	free_strv(f->names);
	free_strv(f->tags);
	free(f);
}

_public_ int dbreg_filter_set_type(struct dbreg_filter *f, const char *type, struct dbreg_error *err)
{
	return set_text(&f->type, type, err);
}

_public_ int dbreg_filter_set_region(struct dbreg_filter *f, const char *region, struct dbreg_error *err)
{
	return set_text(&f->region, region, err);
}

_public_ void dbreg_filter_set_active(struct dbreg_filter *f, int active)
{
	f->active = active < 0 ? -1 : active != 0;
}

_public_ void dbreg_filter_set_include_deleted(struct dbreg_filter *f, int include)
{
	f->include_deleted = include != 0;
}

_public_ int dbreg_filter_set_fields(struct dbreg_filter *f, const enum dbreg_field *fields, size_t n,
                                     struct dbreg_error *err)
{
	uint64_t mask = 0;

	for (size_t i = 0; i < n; i++) {
		if ((unsigned)fields[i] >= DBREG_F__COUNT)
			return dbreg_fail(err, DBREG_ERR_USAGE, "no such field: %d", (int)fields[i]);
		/* region_code is read with region_id (it is its code). */
		mask |= DBREG_FIELD_BIT(fields[i] == DBREG_F_REGION_CODE ? DBREG_F_REGION_ID : fields[i]);
	}
	f->fields = mask;
	return 0;
}

_public_ int dbreg_filter_set_names(struct dbreg_filter *f, const char *const *names, struct dbreg_error *err)
{
	char **copy;

	if (dup_strv(names, &copy) < 0)
		return dbreg_fail_oom(err);
	free_strv(f->names);
	f->names = copy;
	return 0;
}

_public_ int dbreg_filter_add_tag(struct dbreg_filter *f, const char *tag, struct dbreg_error *err)
{
	size_t n = 0;
	char **v;

	while (f->tags && f->tags[n])
		n++;
	v = realloc(f->tags, (n + 2) * sizeof(*v));
	if (!v)
		return dbreg_fail_oom(err);
	f->tags = v;
	if (!(v[n] = strdup(tag))) {
		v[n] = NULL;
		return dbreg_fail_oom(err);
	}
	v[n + 1] = NULL;
	return 0;
}

/* ---- health ---- */

_public_ int dbreg_health_opts_new(struct dbreg_health_opts **ret, struct dbreg_error *err)
{
	struct dbreg_health_opts *o = calloc(1, sizeof(*o));

	if (!o)
		return dbreg_fail_oom(err);
	if (dbreg_filter_new(&o->filter, err) < 0) {
		free(o);
		return -1;
	}
	o->level = DBREG_LEVEL_BASIC;
	*ret = o;
	return 0;
}

_public_ void dbreg_health_opts_free(struct dbreg_health_opts *o)
{
	if (!o)
		return;
	dbreg_filter_free(o->filter);
	free(o->checker);
	free(o);
}

_public_ struct dbreg_filter *dbreg_health_opts_filter(struct dbreg_health_opts *o)
{
	return o->filter;
}

_public_ void dbreg_health_opts_set_level(struct dbreg_health_opts *o, enum dbreg_health_level level)
{
	o->level = level;
}

_public_ void dbreg_health_opts_set_timeout_ms(struct dbreg_health_opts *o, int timeout_ms)
{
	o->timeout_ms = timeout_ms;
}

_public_ void dbreg_health_opts_set_jobs(struct dbreg_health_opts *o, int jobs)
{
	o->jobs = jobs;
}

_public_ void dbreg_health_opts_set_threads(struct dbreg_health_opts *o, int threads)
{
	o->threads = threads;
}

_public_ void dbreg_health_opts_set_warn_ms(struct dbreg_health_opts *o, int warn_ms)
{
	o->warn_ms = warn_ms;
}

_public_ void dbreg_health_opts_set_crit_ms(struct dbreg_health_opts *o, int crit_ms)
{
	o->crit_ms = crit_ms;
}

_public_ void dbreg_health_opts_set_no_update(struct dbreg_health_opts *o, int no_update)
{
	o->no_update = no_update != 0;
}

_public_ void dbreg_health_opts_set_progress(struct dbreg_health_opts *o,
                                             void (*progress)(size_t done, size_t total, double elapsed_ms,
                                                              void *userdata),
                                             void *userdata)
{
	o->progress = progress;
	o->userdata = userdata;
}

_public_ int dbreg_health_opts_set_checker(struct dbreg_health_opts *o, const char *checker, struct dbreg_error *err)
{
	return set_text(&o->checker, checker, err);
}

_public_ void dbreg_health_opts_set_claim(struct dbreg_health_opts *o, long every_s, int batch)
{
	o->every_s = every_s > 0 ? every_s : 0;
	o->batch = batch > 0 ? batch : 0;
}

_public_ void dbreg_health_opts_set_keep(struct dbreg_health_opts *o, long keep_s)
{
	o->keep_s = keep_s > 0 ? keep_s : 0;
}

_public_ void dbreg_health_opts_set_cert_warn_days(struct dbreg_health_opts *o, int days)
{
	o->cert_warn_days = days > 0 ? days : 0;
}

_public_ void dbreg_health_opts_set_lag_warn(struct dbreg_health_opts *o, long lag_warn_s)
{
	o->lag_warn_s = lag_warn_s > 0 ? lag_warn_s : 0;
}

/* ---- pool statistics ---- */

_public_ int dbreg_pool_opts_new(struct dbreg_pool_opts **ret, struct dbreg_error *err)
{
	struct dbreg_pool_opts *o = calloc(1, sizeof(*o));

	if (!o)
		return dbreg_fail_oom(err);
	if (dbreg_filter_new(&o->filter, err) < 0) {
		free(o);
		return -1;
	}
	*ret = o;
	return 0;
}

_public_ void dbreg_pool_opts_free(struct dbreg_pool_opts *o)
{
	if (!o)
		return;
	dbreg_filter_free(o->filter);
	free(o);
}

_public_ struct dbreg_filter *dbreg_pool_opts_filter(struct dbreg_pool_opts *o)
{
	return o->filter;
}

_public_ void dbreg_pool_opts_set_timeout_ms(struct dbreg_pool_opts *o, int timeout_ms)
{
	o->timeout_ms = timeout_ms;
}

_public_ void dbreg_pool_opts_set_jobs(struct dbreg_pool_opts *o, int jobs)
{
	o->jobs = jobs;
}

_public_ void dbreg_pool_opts_set_progress(struct dbreg_pool_opts *o,
                                           void (*progress)(size_t done, size_t total, double elapsed_ms,
                                                            void *userdata),
                                           void *userdata)
{
	o->progress = progress;
	o->userdata = userdata;
}
