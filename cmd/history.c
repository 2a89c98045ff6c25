/* history.c — dbreg health --history: how each connection did over a window, from the history. */
#include <stdio.h>
#include <stdlib.h>

#include "dbreg-cmd.h"

enum { K_NAME, K_CHECKS, K_FAILURES, K_UPTIME, K_P50, K_P95, K_CHANGES, K_LAST, K__COUNT };

static const struct out_column history_columns[K__COUNT] = {
	[K_NAME] = { "connection_name", "NAME", OUT_K_TEXT, OUT_C_NAME },
	[K_CHECKS] = { "checks", "CHECKS", OUT_K_INT },
	[K_FAILURES] = { "failures", "FAILURES", OUT_K_INT },
	[K_UPTIME] = { "uptime_pct", "UPTIME", OUT_K_REAL },
	[K_P50] = { "latency_p50_ms", "P50", OUT_K_REAL },
	[K_P95] = { "latency_p95_ms", "P95", OUT_K_REAL },
	[K_CHANGES] = { "status_changes", "CHANGES", OUT_K_INT },
	[K_LAST] = { "last_failure", "LAST FAILURE", OUT_K_TEXT },
};

/* A measured figure (>= 0) as text into buf, and as shown into shown; NULL when unmeasured. */
static const char *figure(double v, const char *unit, char *buf, char *shown, size_t size, const char **ret_shown)
{
	if (v < 0)
		return NULL;
	snprintf(buf, size, "%.2f", v);
	snprintf(shown, size, "%.1f%s", v, unit);
	*ret_shown = shown;
	return buf;
}

static void add_entry(struct out_doc *d, const struct dbreg_health_history_entry *e)
{
	char checks[32], failures[32], changes[32], uptime[32], p50[32], p95[32], s_uptime[32], s_p50[32], s_p95[32];
	const char *v[K__COUNT] = { NULL }, *shown[K__COUNT] = { NULL };

	snprintf(checks, sizeof(checks), "%ld", e->checks);
	snprintf(failures, sizeof(failures), "%ld", e->failures);
	snprintf(changes, sizeof(changes), "%ld", e->status_changes);
	v[K_NAME] = e->connection_name;
	v[K_CHECKS] = checks;
	v[K_FAILURES] = failures;
	v[K_UPTIME] = figure(e->uptime_pct, " %", uptime, s_uptime, sizeof(uptime), &shown[K_UPTIME]);
	v[K_P50] = figure(e->latency_p50_ms, " ms", p50, s_p50, sizeof(p50), &shown[K_P50]);
	v[K_P95] = figure(e->latency_p95_ms, " ms", p95, s_p95, sizeof(p95), &shown[K_P95]);
	v[K_CHANGES] = changes;
	v[K_LAST] = e->last_failure;
	out_doc_row(d, v, shown, NULL);
}

int health_history(struct dbreg_ctx *ctx, const struct dbreg_filter *filter, long since_s, enum out_format fmt)
{
	struct dbreg_health_history *h;
	struct dbreg_error err;
	struct out_doc *d;
	int r;

	if ((r = connect_registry(ctx)))
		return r;
	if (dbreg_health_history_read(ctx, filter, since_s, &h, &err) < 0)
		return fail(&err);
	d = out_doc_new(stdout, fmt, OUT_DOC_ARRAY);
	out_doc_section(d, NULL, history_columns, K__COUNT);
	for (size_t i = 0; i < dbreg_health_history_count(h); i++)
		add_entry(d, dbreg_health_history_at(h, i));
	out_doc_end(d);
	dbreg_health_history_free(h);
	return fflush(stdout) == 0 && !ferror(stdout) ? EXIT_OK : EXIT_NEGATIVE;
}
