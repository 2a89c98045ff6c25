/* history.c — the health history: what admin.dbreg_health_history says of each connection. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct dbreg_health_history {
	PGresult *res;                            /* strings point into it */
	struct dbreg_health_history_entry *entries;
	double *latencies;                        /* every entry's, one block */
	size_t n;
};

_public_ int dbreg_health_history_read(struct dbreg_ctx *ctx, const struct dbreg_filter *filter, long since_s,
                                       struct dbreg_health_history **ret, struct dbreg_error *err)
{
	(void)ctx;
	(void)filter;
	(void)since_s;
	*ret = NULL;
	return dbreg_fail(err, DBREG_ERR_INTERNAL, "the health history is not built yet");
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
