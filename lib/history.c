/* history.c — the health history: what admin.dbreg_health_history says of each connection. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "targets.h"

struct dbreg_health_history {
	PGresult *res;                            /* strings point into it */
	struct dbreg_health_history_entry *entries;
	double *latencies;                        /* every entry's, one block */
	size_t n;
};

/* A number the server sent: all of text, finite; NULL (or nothing) is -1. */
static bool number(const char *text, double *ret)
{
	char *end;

	*ret = -1;
	if (!text || !*text)
		return true;
	errno = 0;
	*ret = strtod(text, &end);
	return !errno && !*end && isfinite(*ret) && *ret >= -1;
}

/* A count the server sent (NULL is not one). */
static bool whole(const char *text, long *ret)
{
	return text && target_count(text, ret);
}

/* The comma-separated latencies into out (at most 100 of them); *ret_n how many. */
static bool series(const char *text, double *out, size_t *ret_n)
{
	size_t n = 0;

	while (text && *text && n < 100) {
		char *end;

		errno = 0;
		out[n] = strtod(text, &end);
		if (errno || end == text || !isfinite(out[n]) || out[n] < -1 || (*end && *end != ','))
			return false;
		n++;
		text = *end ? end + 1 : end;
	}
	*ret_n = n;
	return !text || !*text;
}

_public_ int dbreg_health_history_read(struct dbreg_ctx *ctx, const struct dbreg_filter *filter, long since_s,
                                       struct dbreg_health_history **ret, struct dbreg_error *err)
{
	static const char *const columns[] = { "connection_name", "checks", "failures", "uptime_pct", "latency_p50_ms",
	                                       "latency_p95_ms", "status_changes", "last_failure", "latencies" };
	struct dbreg_health_history *h;
	int c[ELEMENTSOF(columns)];
	PGresult *res;
	size_t n;

	*ret = NULL;
	res = dbreg_registry_health_history(ctx, filter, since_s > 0 ? since_s : 7L * 86400, err);
	if (!res)
		return -1;
	for (size_t k = 0; k < ELEMENTSOF(columns); k++)
		if ((c[k] = PQfnumber(res, columns[k])) < 0) {
			PQclear(res);
			return dbreg_fail(err, DBREG_ERR_INTERNAL, "the history has no column %s", columns[k]);
		}
	n = (size_t)PQntuples(res);
	h = calloc(1, sizeof(*h));
	if (h) {
		h->entries = calloc(n ? n : 1, sizeof(*h->entries));
		h->latencies = calloc(100 * (n ? n : 1), sizeof(*h->latencies));
	}
	if (!h || !h->entries || !h->latencies) {
		dbreg_health_history_free(h);
		PQclear(res);
		return dbreg_fail_oom(err);
	}
	h->res = res;
	for (size_t i = 0; i < n; i++) {
		struct dbreg_health_history_entry *e = &h->entries[i];
		int row = (int)i;
#define V(k) (PQgetisnull(res, row, c[k]) ? NULL : PQgetvalue(res, row, c[k]))
		e->connection_name = V(0);
		e->last_failure = V(7);
		e->latencies = h->latencies + 100 * i;
		if (!e->connection_name || !whole(V(1), &e->checks) || !whole(V(2), &e->failures) ||
		    !number(V(3), &e->uptime_pct) || !number(V(4), &e->latency_p50_ms) ||
		    !number(V(5), &e->latency_p95_ms) || !whole(V(6), &e->status_changes) ||
		    !series(V(8), h->latencies + 100 * i, &e->nlatencies)) {
			dbreg_health_history_free(h);
			return dbreg_fail(err, DBREG_ERR_INTERNAL, "the admin server's history summary is malformed");
		}
#undef V
	}
	h->n = n;
	*ret = h;
	return 0;
}

_public_ size_t dbreg_health_history_count(const struct dbreg_health_history *h)
{
	return h ? h->n : 0;
}

_public_ const struct dbreg_health_history_entry *dbreg_health_history_at(const struct dbreg_health_history *h,
                                                                         size_t i)
{
	return h && i < h->n ? &h->entries[i] : NULL;
}

_public_ const struct dbreg_health_history_entry *dbreg_health_history_find(const struct dbreg_health_history *h,
                                                                           const char *connection_name)
{
	for (size_t i = 0; h && connection_name && i < h->n; i++)
		if (strcmp(h->entries[i].connection_name, connection_name) == 0)
			return &h->entries[i];
	return NULL;
}

_public_ void dbreg_health_history_free(struct dbreg_health_history *h)
{
	if (!h)
		return;
	PQclear(h->res);
	free(h->entries);
	free(h->latencies);
	free(h);
}
