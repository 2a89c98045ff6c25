/* health.c — dbreg health: check registered databases concurrently; reports for people and for cron. */
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dbreg-cmd.h"

/* The monitoring-plugin convention (SPEC §4). */
enum { H_OK = 0, H_WARNING = 1, H_CRITICAL = 2, H_UNKNOWN = 3 };

static const char health_options[] =
	"  --type TYPE          only connections of this type\n"
	"  --region CODE        only connections in this region\n"
	"  --tag TAG            only connections with this tag (repeat: with all of them)\n"
	"  --level LEVEL        basic (default), extended or deep\n"
	"  --timeout SECONDS    each check's deadline (default 5)\n"
	"  --jobs N             checks at once (default 64)\n"
	"  --threads N          event loops, each with its share of the checks (default: one per CPU)\n"
	"  --warn-ms MS         slower answers are DEGRADED (default 1000)\n"
	"  --crit-ms MS         slower answers are UNHEALTHY (default: no limit)\n"
	"  --cert-warn-days N   deep: a server certificate expiring within N days is DEGRADED (default 30)\n"
	"  --lag-warn DURATION  deep: a replica replaying further behind is DEGRADED (default 300s)\n"
	"  --no-update          do not write the results (nor the history) to the registry\n"
	"  --claim              check only rows due, claimed in batches: for many checkers at once\n"
	"  --every DURATION     with --claim: how often each row is checked (e.g. 5m)\n"
	"  --batch N            with --claim: rows claimed at a time (default 100)\n"
	"  --checker-id ID      who writes the results (default the host name)\n"
	"  --keep DURATION      history kept (default 14d); older rows are pruned by the run\n"
	"  --history            how each connection did: checks, failures, uptime, latency\n"
	"  --since DURATION     with --history: the window (default 7d)\n"
	"  --status LIST        show only results with these statuses (e.g. UNHEALTHY,DEGRADED)\n"
	"  --failing            show only results that are not HEALTHY\n"
	"  --sort KEY           status (failing first: the table's default), name or latency\n"
	"  -o, --format FMT     table (default), wide (cells never cut), json, prometheus, nagios or html\n"
	OUT_JSON_HELP
	"  --output FILE        write the report to FILE atomically (mode 0644)\n"
	OUT_TABLE_HELP
	"  -h, --help           show this help\n";

static const char *status_color(enum dbreg_health_status s)
{
	switch (s) {
	case DBREG_HEALTHY: return color(C_GREEN);
	case DBREG_DEGRADED: return color(C_YELLOW);
	case DBREG_UNHEALTHY: return color(C_RED);
	default: return "";
	}
}

/* What a run prints (never what it checks or writes back): which results, in what order. */
enum sort_key { SORT_STATUS, SORT_NAME, SORT_LATENCY };
struct view {
	unsigned statuses;      /* 1 << status of those shown; 0: every one */
	enum sort_key sort;
	bool sort_given;        /* JSON keeps the name order unless --sort says otherwise */
	enum dbreg_health_level level;
	int warn_ms, crit_ms;   /* the thresholds in force (crit 0: none), for Nagios perfdata */
	bool cancelled;         /* Ctrl-C in the REPL: the table is one line of what got checked */
};

/* Worst first: what needs looking at heads the table. */
static int severity(enum dbreg_health_status s)
{
	switch (s) {
	case DBREG_UNHEALTHY: return 0;
	case DBREG_UNKNOWN: return 1;
	case DBREG_DEGRADED: return 2;
	default: return 3;
	}
}

static enum sort_key sort_by;  /* for qsort's comparison, which takes no context */
static const struct dbreg_health_report *sort_report;

static int compare(const void *pa, const void *pb)
{
	const struct dbreg_health_result *a = dbreg_health_report_at(sort_report, *(const size_t *)pa);
	const struct dbreg_health_result *b = dbreg_health_report_at(sort_report, *(const size_t *)pb);
	int d = 0;

	if (sort_by == SORT_STATUS)
		d = severity(a->status) - severity(b->status);
	else if (sort_by == SORT_LATENCY)
		/* Slowest first; unmeasured last. */
		d = a->latency_ms == b->latency_ms ? 0 : a->latency_ms < 0 ? 1 : b->latency_ms < 0 ? -1
		  : a->latency_ms > b->latency_ms ? -1 : 1;
	return d ? d : strcmp(a->connection_name ? a->connection_name : "", b->connection_name ? b->connection_name : "");
}

/* The indexes of the results shown, in order (malloc'd; *ret_n of them). */
static size_t *view_order(const struct dbreg_health_report *r, const struct view *v, bool sorted, size_t *ret_n)
{
	size_t n = dbreg_health_report_count(r), m = 0, *order = malloc((n ? n : 1) * sizeof(*order));

	for (size_t i = 0; order && i < n; i++)
		if (!v->statuses || (v->statuses & (1u << dbreg_health_report_at(r, i)->status)))
			order[m++] = i;
	if (order && sorted) {
		sort_by = v->sort;
		sort_report = r;
		qsort(order, m, sizeof(*order), compare);
	}
	*ret_n = order ? m : 0;
	return order;
}

static void count(const struct dbreg_health_report *r, size_t counts[4])
{
	memset(counts, 0, 4 * sizeof(size_t));
	for (size_t i = 0; i < dbreg_health_report_count(r); i++)
		counts[dbreg_health_report_at(r, i)->status]++;
}

static const char *state_name(int state)
{
	static const char *const names[] = { "OK", "WARNING", "CRITICAL", "UNKNOWN" };

	return names[state];
}


/* The report's columns; a level's unmeasured ones have no table header.  K_H_*: the page's
 * own (-o html), filled by html_cells. */
enum { K_NAME, K_TYPE, K_REGION, K_UP, K_STATUS, K_LATENCY, K_DURATION, K_CHECKED, K_VERSION, K_RECOVERY,
       K_BACKENDS, K_MAX_CONN, K_ROLE, K_LAG, K_LAG_BYTES, K_TLS, K_TLS_PROTOCOL, K_TLS_CIPHER, K_CERT,
       K_CERT_EXPIRY, K_CHECKER, K_ERROR,
       K_H_TYPE, K_H_REGION, K_H_ROLE, K_H_LAG, K_H_CERT, K_H_UPTIME, K_H_LATENCIES, K__COUNT };

/* The page has its own role, lag and certificate cells (K_H_*), with more in them. */
#define NOT_HTML (~(unsigned)OUT_HTML)

static void columns(struct out_column c[K__COUNT], enum dbreg_health_level level)
{
	/* dbreg_status's one-hot states: the library's names of the statuses. */
	static const char *states[DBREG_UNKNOWN + 2];
	bool deep = level >= DBREG_LEVEL_DEEP;
	const struct out_column all[K__COUNT] = {
		[K_NAME] = { "connection_name", "NAME", OUT_K_TEXT, OUT_C_LABEL | OUT_C_NAME, .label = "connection" },
		[K_TYPE] = { "type", NULL, OUT_K_TEXT, OUT_C_LABEL, .only = OUT_PROMETHEUS },
		[K_REGION] = { "region", NULL, OUT_K_TEXT, OUT_C_LABEL, .only = OUT_PROMETHEUS },
		[K_UP] = { "up", NULL, OUT_K_INT, 0, "dbreg_up",
		           "Whether the registered database answered its health check (1) or not (0).",
		           .only = OUT_PROMETHEUS },
		[K_STATUS] = { "status", "STATUS", OUT_K_TEXT, OUT_C_ONEHOT | OUT_C_STATE, "dbreg_status",
		               "The health status of the registered database (one-hot).", .label = "status",
		               .states = states },
		[K_LATENCY] = { "latency_ms", "LATENCY", OUT_K_REAL, OUT_C_PERF, .unit = "ms" },
		[K_DURATION] = { "duration", NULL, OUT_K_REAL, 0, "dbreg_check_duration_seconds",
		                 "How long the health check took.", .only = OUT_PROMETHEUS },
		[K_CHECKED] = { "checked", NULL, OUT_K_REAL, 0, "dbreg_last_check_timestamp_seconds",
		                "When the health check ran, in seconds since the epoch.", .only = OUT_PROMETHEUS },
		[K_VERSION] = { "server_version", level >= DBREG_LEVEL_EXTENDED ? "VERSION" : NULL, OUT_K_TEXT },
		[K_RECOVERY] = { "in_recovery", level >= DBREG_LEVEL_EXTENDED ? "RECOVERY" : NULL, OUT_K_BOOL,
		                 OUT_C_OPTIONAL, "dbreg_in_recovery",
		                 "Whether the registered database is a standby in recovery (1) or not (0)." },
		[K_BACKENDS] = { "backends", level >= DBREG_LEVEL_DEEP ? "BACKENDS" : NULL, OUT_K_INT, OUT_C_OPTIONAL,
		                 "dbreg_backends", "Client backends on the registered database's server." },
		[K_MAX_CONN] = { "max_connections", NULL, OUT_K_INT, OUT_C_OPTIONAL, "dbreg_max_connections",
		                 "The server's max_connections." },
		/* The deep level's: the table keeps to role, lag and the certificate's date; -o wide
		 * adds TLS, its cipher and the bytes not yet replayed. */
		[K_ROLE] = { "expected_role", deep ? "ROLE" : NULL, OUT_K_TEXT, .only = NOT_HTML },
		[K_LAG] = { "replay_lag_seconds", deep ? "LAG" : NULL, OUT_K_REAL, OUT_C_OPTIONAL,
		            "dbreg_replication_lag_seconds",
		            "How far behind the standby replays what it received (absent when caught up).",
		            .only = NOT_HTML },
		[K_LAG_BYTES] = { "replay_lag_bytes", deep && out_style.wide ? "LAG BYTES" : NULL, OUT_K_INT },
		[K_TLS] = { "tls_in_use", NULL, OUT_K_BOOL },
		[K_TLS_PROTOCOL] = { "tls_protocol", deep && out_style.wide ? "TLS" : NULL, OUT_K_TEXT },
		[K_TLS_CIPHER] = { "tls_cipher", deep && out_style.wide ? "CIPHER" : NULL, OUT_K_TEXT },
		[K_CERT] = { "cert_not_after", deep ? "CERT" : NULL, OUT_K_TEXT, .only = NOT_HTML },
		[K_CERT_EXPIRY] = { "cert_expiry", NULL, OUT_K_REAL, OUT_C_OPTIONAL, "dbreg_cert_expiry_timestamp_seconds",
		                    "When the server certificate expires (its notAfter), in seconds since the epoch.",
		                    .only = OUT_PROMETHEUS },
		[K_CHECKER] = { "checker", NULL, OUT_K_TEXT },
		[K_ERROR] = { "error", "ERROR", OUT_K_TEXT, OUT_C_REASON },
		[K_H_TYPE] = { "connection_type", "TYPE", OUT_K_TEXT, .only = OUT_HTML },
		[K_H_REGION] = { "region", "REGION", OUT_K_TEXT, .only = OUT_HTML },
		[K_H_ROLE] = { "role", "ROLE", OUT_K_TEXT, .only = OUT_HTML },
		[K_H_LAG] = { "replay_lag_seconds", level >= DBREG_LEVEL_DEEP ? "REPLAY LAG" : NULL, OUT_K_REAL,
		              .only = OUT_HTML },
		[K_H_CERT] = { "cert_not_after", level >= DBREG_LEVEL_DEEP ? "CERTIFICATE EXPIRES" : NULL, OUT_K_TEXT,
		               .only = OUT_HTML },
		[K_H_UPTIME] = { "uptime_pct", "UPTIME (7 DAYS)", OUT_K_REAL, .only = OUT_HTML },
		[K_H_LATENCIES] = { "latencies", "LATENCY (7 DAYS)", OUT_K_SERIES, .only = OUT_HTML },
	};

	for (int s = DBREG_HEALTHY; s <= DBREG_UNKNOWN; s++)
		states[s] = dbreg_health_status_name((enum dbreg_health_status)s);
	memcpy(c, all, sizeof(all));
}

/* -o html: what the page shows beyond the other formats: the history of the last
 * HISTORY_WINDOW_S (NULL: it could not be read) and its cells' texts. */
enum { HISTORY_WINDOW_S = 7 * 86400 };
struct html_page {
	const struct dbreg_health_history *history;
};
struct html_cells {
	char role[64], lag[32], shown_lag[64], cert[32], shown_cert[64], uptime[32], shown_uptime[64], summary[160];
	char *latencies;
};

/* The page's own columns of one result (K_H_*); c->latencies is malloc'd. */
static void html_cells(struct html_cells *c, const char **v, const char **shown, const struct dbreg_health_result *h,
                       const struct html_page *page, double epoch)
{
	const struct dbreg_health_history_entry *e = dbreg_health_history_find(page->history, h->connection_name);
	const char *actual = h->in_recovery < 0 ? NULL : h->in_recovery ? "standby" : "primary";
	size_t len;
	FILE *f;

	v[K_H_TYPE] = h->connection_type;
	v[K_H_REGION] = h->region_id;
	v[K_H_ROLE] = actual;
	if (h->expected_role) {
		snprintf(c->role, sizeof(c->role), "%s%sexpected %s%s", actual ? actual : "", actual ? " (" : "",
		         h->expected_role, actual ? ")" : "");
		shown[K_H_ROLE] = c->role;
	}
	if (h->replay_lag_seconds >= 0 || h->replay_lag_bytes >= 0) {
		int n = 0;

		c->shown_lag[0] = '\0';
		if (h->replay_lag_seconds >= 0) {
			snprintf(c->lag, sizeof(c->lag), "%.3f", h->replay_lag_seconds);
			v[K_H_LAG] = c->lag;
			n = snprintf(c->shown_lag, sizeof(c->shown_lag), "%.1f s", h->replay_lag_seconds);
		}
		if (h->replay_lag_bytes >= 0)
			snprintf(c->shown_lag + n, sizeof(c->shown_lag) - (size_t)n, "%s%lld bytes", n ? ", " : "",
			         h->replay_lag_bytes);
		shown[K_H_LAG] = c->shown_lag;
	}
	if (h->cert_not_after >= 0) {
		time_t t = (time_t)h->cert_not_after;
		struct tm tm;
		double days = (h->cert_not_after - epoch) / 86400;
		char date[32];

		snprintf(c->cert, sizeof(c->cert), "%.0f", h->cert_not_after);
		v[K_H_CERT] = c->cert;
		if (gmtime_r(&t, &tm) && strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", &tm)) {
			if (days >= 0)
				snprintf(c->shown_cert, sizeof(c->shown_cert), "%s (in %.0f days)", date, days);
			else
				snprintf(c->shown_cert, sizeof(c->shown_cert), "%s (expired)", date);
			shown[K_H_CERT] = c->shown_cert;
		}
	}
	c->latencies = NULL;
	if (!e || e->checks <= 0) {
		shown[K_H_UPTIME] = shown[K_H_LATENCIES] = "no history";
		return;
	}
	if (e->uptime_pct >= 0) {
		snprintf(c->uptime, sizeof(c->uptime), "%.2f", e->uptime_pct);
		snprintf(c->shown_uptime, sizeof(c->shown_uptime), "%.1f %% of %ld checks", e->uptime_pct, e->checks);
		v[K_H_UPTIME] = c->uptime;
	} else {
		snprintf(c->shown_uptime, sizeof(c->shown_uptime), "none of %ld checks known", e->checks);
	}
	shown[K_H_UPTIME] = c->shown_uptime;
	f = open_memstream(&c->latencies, &len);
	if (!f)
		abort();
	for (size_t i = 0; i < e->nlatencies; i++)
		fprintf(f, "%s%.1f", i ? "," : "", e->latencies[i] >= 0 ? e->latencies[i] : -1.0);
	fclose(f);
	if (e->latency_p50_ms >= 0)
		snprintf(c->summary, sizeof(c->summary), "%ld checks, %ld failed; median %.0f ms, p95 %.0f ms", e->checks,
		         e->failures, e->latency_p50_ms, e->latency_p95_ms);
	else
		snprintf(c->summary, sizeof(c->summary), "%ld checks, %ld failed", e->checks, e->failures);
	v[K_H_LATENCIES] = e->nlatencies ? c->latencies : NULL;
	shown[K_H_LATENCIES] = c->summary;
}

/* One result as the document's row (page: -o html's, else NULL). */
static void add_result(struct out_doc *d, const struct dbreg_health_result *h, double epoch,
                       const struct html_page *page)
{
	struct html_cells hc = { .latencies = NULL };
	char latency[32], shown_latency[32], duration[32], checked[32], backends[32], shown_backends[48], max[32];
	char lag[32], shown_lag[32], lag_bytes[32], cert[32], shown_cert[16], expiry[32];
	const char *v[K__COUNT] = { NULL }, *shown[K__COUNT] = { NULL }, *colors[K__COUNT] = { NULL };
	bool known = h->status != DBREG_UNKNOWN;

	v[K_NAME] = h->connection_name;
	v[K_TYPE] = h->connection_type;
	v[K_REGION] = h->region_id;
	v[K_UP] = !known ? NULL : h->status == DBREG_HEALTHY || h->status == DBREG_DEGRADED ? "1" : "0";
	v[K_STATUS] = dbreg_health_status_name(h->status);
	colors[K_STATUS] = status_color(h->status);
	if (h->latency_ms >= 0) {
		snprintf(latency, sizeof(latency), "%.1f", h->latency_ms);
		snprintf(shown_latency, sizeof(shown_latency), "%.0f ms", h->latency_ms);
		snprintf(duration, sizeof(duration), "%.6f", h->latency_ms / 1000);
		v[K_LATENCY] = latency;
		shown[K_LATENCY] = shown_latency;
		v[K_DURATION] = duration;
	}
	if (known) {
		snprintf(checked, sizeof(checked), "%.3f", epoch);
		v[K_CHECKED] = checked;
	}
	v[K_VERSION] = h->server_version;
	v[K_RECOVERY] = h->in_recovery < 0 ? NULL : h->in_recovery ? "true" : "false";
	shown[K_RECOVERY] = h->in_recovery < 0 ? NULL : h->in_recovery ? "yes" : "no";
	if (h->backends >= 0) {
		snprintf(backends, sizeof(backends), "%ld", h->backends);
		snprintf(shown_backends, sizeof(shown_backends), "%ld/%ld", h->backends, h->max_connections);
		v[K_BACKENDS] = backends;
		shown[K_BACKENDS] = shown_backends;
	}
	if (h->max_connections >= 0) {
		snprintf(max, sizeof(max), "%ld", h->max_connections);
		v[K_MAX_CONN] = max;
	}
	v[K_ROLE] = h->expected_role;
	if (h->replay_lag_seconds >= 0) {
		snprintf(lag, sizeof(lag), "%.3f", h->replay_lag_seconds);
		snprintf(shown_lag, sizeof(shown_lag), "%.1f s", h->replay_lag_seconds);
		v[K_LAG] = lag;
		shown[K_LAG] = shown_lag;
	}
	if (h->replay_lag_bytes >= 0) {
		snprintf(lag_bytes, sizeof(lag_bytes), "%lld", h->replay_lag_bytes);
		v[K_LAG_BYTES] = lag_bytes;
	}
	v[K_TLS] = h->tls_in_use < 0 ? NULL : h->tls_in_use ? "true" : "false";
	v[K_TLS_PROTOCOL] = h->tls_protocol;
	shown[K_TLS_PROTOCOL] = h->tls_in_use == 0 ? "no" : NULL;
	v[K_TLS_CIPHER] = h->tls_cipher;
	if (h->cert_not_after >= 0) {
		time_t t = (time_t)h->cert_not_after;
		struct tm tm;

		if (gmtime_r(&t, &tm)) {
			strftime(cert, sizeof(cert), "%Y-%m-%dT%H:%M:%SZ", &tm);
			strftime(shown_cert, sizeof(shown_cert), "%Y-%m-%d", &tm);
			v[K_CERT] = cert;
			shown[K_CERT] = shown_cert;
		}
		snprintf(expiry, sizeof(expiry), "%.0f", h->cert_not_after);
		v[K_CERT_EXPIRY] = expiry;
	}
	v[K_CHECKER] = h->checker;
	v[K_ERROR] = h->error;
	if (page)
		html_cells(&hc, v, shown, h, page, epoch);
	out_doc_row(d, v, shown, colors);
	free(hc.latencies);
}

/* The run's own gauges, so that a file left by a run that failed, or by none lately, shows it. */
static void run_gauges(struct out_doc *d, bool success, double started)
{
	out_doc_gauge(d, "dbreg_health_run_success",
	              "Whether the last health run could check the registry (1) or not (0).", success);
	out_doc_gauge(d, "dbreg_health_run_timestamp_seconds",
	              "When the last health run started, in seconds since the epoch.", started);
}

static const char count_format[] = "healthy=%zu degraded=%zu unhealthy=%zu unknown=%zu";

/* Nagios: line 1 counts the whole run and names the worst few, so the alert says where to look. */
static void nagios_status(struct out_doc *d, const struct dbreg_health_report *r, int state, const struct view *v,
                          const size_t *order, size_t n)
{
	char *line = NULL, counts[160];
	size_t len, c[4], shown = 0;
	FILE *f = open_memstream(&line, &len);

	if (!f)
		abort();
	count(r, c);
	if (dbreg_health_report_count(r) == 0)
		fprintf(f, "DBREG %s - no connection matches the selection", state_name(state));
	else
		fprintf(f, "DBREG %s - %zu checked: %zu healthy, %zu degraded, %zu unhealthy, %zu unknown",
		        state_name(state), dbreg_health_report_count(r), c[DBREG_HEALTHY], c[DBREG_DEGRADED],
		        c[DBREG_UNHEALTHY], c[DBREG_UNKNOWN]);
	for (size_t i = 0; i < n && shown < 5; i++) {
		const struct dbreg_health_result *h = dbreg_health_report_at(r, order[i]);

		if (h->status == DBREG_UNHEALTHY || h->status == DBREG_DEGRADED) {
			fputs(shown++ ? ", " : " (", f);
			out_fputs_safe(h->connection_name, f);
			fprintf(f, " %s", dbreg_health_status_name(h->status));
		}
	}
	if (shown)
		fputc(')', f);
	fclose(f);
	snprintf(counts, sizeof(counts), count_format, c[DBREG_HEALTHY], c[DBREG_DEGRADED], c[DBREG_UNHEALTHY],
	         c[DBREG_UNKNOWN]);
	out_doc_nagios(d, line, counts, v->warn_ms, v->crit_ms, "HEALTHY");
	free(line);
}

/* "203 checked in 4.2 s: 200 healthy, 1 degraded, 2 unhealthy": of the whole run (after
 * Ctrl-C in the REPL, of what got an answer). */
static void table_footer(struct out_doc *d, const struct dbreg_health_report *r, const struct view *v)
{
	static const char *const names[4] = { "healthy", "degraded", "unhealthy", "unknown" };
	char *text = NULL;
	size_t len, c[4];
	struct timespec now;
	const char *sep = ": ";
	FILE *f = open_memstream(&text, &len);

	if (!f)
		abort();
	count(r, c);
	clock_gettime(CLOCK_REALTIME, &now);
	if (v->cancelled)
		fprintf(f, "cancelled: %zu of %zu checked", dbreg_health_report_count(r) - c[DBREG_UNKNOWN],
		        dbreg_health_report_count(r));
	else
		fprintf(f, "%zu checked", dbreg_health_report_count(r));
	fprintf(f, " in %.1f s", (double)now.tv_sec + (double)now.tv_nsec / 1e9 - dbreg_health_report_checked_epoch(r));
	for (int k = DBREG_HEALTHY; k <= (v->cancelled ? DBREG_UNHEALTHY : DBREG_UNKNOWN); k++)
		if (c[k]) {
			fprintf(f, "%s%zu %s", sep, c[k], names[k]);
			sep = ", ";
		}
	fclose(f);
	out_doc_footer(d, text, v->cancelled);
	free(text);
}

static int overall(const struct dbreg_health_report *r)
{
	size_t c[4];

	count(r, c);
	if (c[DBREG_UNHEALTHY])
		return H_CRITICAL;
	if (c[DBREG_DEGRADED])
		return H_WARNING;
	if (c[DBREG_UNKNOWN])
		return H_UNKNOWN;
	return H_OK;
}

/* -o html: the page's heading, when and by whom the run checked, and what history it shows. */
static void html_heading(struct out_doc *d, const struct dbreg_health_report *r, const struct view *v,
                         const struct html_page *page, const char *history_why)
{
	static const char *const levels[] = { "basic", "extended", "deep" };
	const char *checker = NULL;
	char host[256] = "", *text = NULL;

	for (size_t i = 0; i < dbreg_health_report_count(r) && !checker; i++)
		checker = dbreg_health_report_at(r, i)->checker;
	/* The library's default checker is the host name. */
	if (!checker && gethostname(host, sizeof(host) - 1) == 0)
		checker = host;
	out_doc_title(d, "dbreg health");
	out_doc_meta(d, "checked_at", json_string(dbreg_health_report_checked_at(r)));
	out_doc_meta(d, "checker", out_json_text(checker ? checker : "unknown"));
	out_doc_meta(d, "level", json_string(levels[v->level]));
	if (page->history)
		out_doc_meta(d, "history", json_string("the last 7 days"));
	else if (asprintf(&text, "not available (%s)", history_why) >= 0)
		out_doc_meta(d, "history", out_json_text(text));
	free(text);
}

/* -o html: the history of the run's selection, for the page's uptime and sparklines.  NULL
 * (and why, in *why) when it cannot be read: the page does without, the run goes on. */
static struct dbreg_health_history *read_history(struct dbreg_ctx *ctx, struct dbreg_health_opts *o,
                                                 struct dbreg_error *why)
{
	struct dbreg_health_history *h = NULL;

	dbreg_error_clear(why);
	if (dbreg_health_history_read(ctx, dbreg_health_opts_filter(o), HISTORY_WINDOW_S, &h, why) < 0) {
		if (!why->message[0])
			snprintf(why->message, sizeof(why->message), "it could not be read");
		return NULL;
	}
	return h;
}

/* The report as a document: the table, Nagios and HTML in the view's order (failing
 * first), JSON in name order unless --sort, Prometheus every result.  history: -o html's
 * (NULL: none, history_why says why). */
static void print_report(FILE *f, enum out_format fmt, const struct dbreg_health_report *r, int state,
                         const struct view *v, const struct dbreg_health_history *history, const char *history_why)
{
	const struct html_page page = { .history = history };
	struct view every = *v;
	struct out_column cols[K__COUNT];
	struct out_doc *d = out_doc_new(f, fmt, 0);
	size_t n, c[4] = { 0 }, *order;

	if (fmt == OUT_PROMETHEUS)
		every.statuses = 0;  /* a monitor gets every result, whatever is shown */
	order = view_order(r, &every, fmt == OUT_TABLE || fmt == OUT_NAGIOS || fmt == OUT_HTML || v->sort_given, &n);
	columns(cols, v->level);
	if (fmt == OUT_JSON) {
		/* The summary counts the results it comes with (all of them, unless --status or --failing). */
		for (size_t i = 0; i < n; i++)
			c[dbreg_health_report_at(r, order[i])->status]++;
		out_doc_meta(d, "checked_at", json_string(dbreg_health_report_checked_at(r)));
		out_doc_meta(d, "summary", json_pack("{s:I, s:I, s:I, s:I}", "healthy", (json_int_t)c[DBREG_HEALTHY],
		                                     "degraded", (json_int_t)c[DBREG_DEGRADED], "unhealthy",
		                                     (json_int_t)c[DBREG_UNHEALTHY], "unknown", (json_int_t)c[DBREG_UNKNOWN]));
	}
	if (fmt == OUT_NAGIOS)
		nagios_status(d, r, state, v, order, n);
	if (fmt == OUT_HTML)
		html_heading(d, r, v, &page, history_why);
	out_doc_section(d, "results", cols, K__COUNT);
	for (size_t i = 0; i < n && !(fmt == OUT_TABLE && v->cancelled); i++)
		add_result(d, dbreg_health_report_at(r, order[i]), dbreg_health_report_checked_epoch(r),
		           fmt == OUT_HTML ? &page : NULL);
	if ((fmt == OUT_TABLE || fmt == OUT_HTML) && dbreg_health_report_count(r) > 0)
		table_footer(d, r, v);
	run_gauges(d, true, dbreg_health_report_checked_epoch(r));
	out_doc_end(d);
	free(order);
}

/* A run that could not check at all still answers a monitor: Nagios its one status line,
 * Prometheus (the file rewritten) the run's failure; the other formats print nothing. */
static void report_failure(enum out_format fmt, const char *output, const char *what, const char *why)
{
	struct out_sink sink;
	struct timespec now;
	struct out_doc *d;
	char line[1200], *shown = out_escape(why);

	if ((fmt != OUT_NAGIOS && fmt != OUT_PROMETHEUS) || out_sink_open(&sink, output, 0644) < 0) {
		free(shown);
		return;
	}
	d = out_doc_new(sink.f, fmt, 0);
	snprintf(line, sizeof(line), "DBREG UNKNOWN - %s%s", what, shown);
	free(shown);
	out_doc_nagios(d, line, "healthy=0 degraded=0 unhealthy=0 unknown=0", 0, 0, NULL);
	clock_gettime(CLOCK_REALTIME, &now);
	run_gauges(d, false, (double)now.tv_sec + (double)now.tv_nsec / 1e9);
	out_doc_end(d);
	out_sink_close(&sink);
}

enum {
	ARG_TYPE = 0x100, ARG_REGION, ARG_TAG, ARG_LEVEL, ARG_TIMEOUT, ARG_JOBS, ARG_WARN_MS, ARG_NO_UPDATE, ARG_OUTPUT,
	ARG_STATUS, ARG_FAILING, ARG_SORT, ARG_CRIT_MS, ARG_CLAIM, ARG_EVERY, ARG_BATCH, ARG_CHECKER_ID, ARG_KEEP,
	ARG_HISTORY, ARG_SINCE, ARG_CERT_WARN_DAYS, ARG_LAG_WARN, ARG_THREADS,
};
static const struct option health_long_options[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "format", required_argument, NULL, 'o' },
	OUT_JSON_OPTIONS,
	{ "type", required_argument, NULL, ARG_TYPE },
	{ "region", required_argument, NULL, ARG_REGION },
	{ "tag", required_argument, NULL, ARG_TAG },
	{ "level", required_argument, NULL, ARG_LEVEL },
	{ "timeout", required_argument, NULL, ARG_TIMEOUT },
	{ "jobs", required_argument, NULL, ARG_JOBS },
	{ "threads", required_argument, NULL, ARG_THREADS },
	{ "warn-ms", required_argument, NULL, ARG_WARN_MS },
	{ "crit-ms", required_argument, NULL, ARG_CRIT_MS },
	{ "cert-warn-days", required_argument, NULL, ARG_CERT_WARN_DAYS },
	{ "lag-warn", required_argument, NULL, ARG_LAG_WARN },
	{ "no-update", no_argument, NULL, ARG_NO_UPDATE },
	{ "output", required_argument, NULL, ARG_OUTPUT },
	{ "status", required_argument, NULL, ARG_STATUS },
	{ "failing", no_argument, NULL, ARG_FAILING },
	{ "sort", required_argument, NULL, ARG_SORT },
	{ "claim", no_argument, NULL, ARG_CLAIM },
	{ "every", required_argument, NULL, ARG_EVERY },
	{ "batch", required_argument, NULL, ARG_BATCH },
	{ "checker-id", required_argument, NULL, ARG_CHECKER_ID },
	{ "keep", required_argument, NULL, ARG_KEEP },
	{ "history", no_argument, NULL, ARG_HISTORY },
	{ "since", required_argument, NULL, ARG_SINCE },
	OUT_TABLE_OPTIONS,
	{},
};

/* --status HEALTHY,DEGRADED (any case): the statuses shown, as view.statuses bits. */
static int parse_statuses(const char *text, unsigned *ret)
{
	char *copy = strdup(text), *save = NULL;
	unsigned bits = 0;

	if (!copy)
		return -1;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int s;

		for (s = DBREG_HEALTHY; s <= DBREG_UNKNOWN; s++)
			if (strcasecmp(tok, dbreg_health_status_name((enum dbreg_health_status)s)) == 0)
				break;
		if (s > DBREG_UNKNOWN) {
			usage_error("health", "--status: '%s' is not HEALTHY, DEGRADED, UNHEALTHY or UNKNOWN", tok);
			free(copy);
			return -1;
		}
		bits |= 1u << s;
	}
	free(copy);
	if (!bits)
		return usage_error("health", "--status: give at least one status"), -1;
	*ret |= bits;
	return 0;
}

/* --history is another command in health's clothes: SPEC §4's exit codes, not the
 * plugin convention's, from its first usage error on. */
static bool wants_history(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--history") == 0)
			return true;
	return false;
}

/* A checker id goes into every result it writes: printable, and not too long. */
static int check_checker_id(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > 128)
		return usage_error("health", "--checker-id: give 1 to 128 characters"), -1;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)id[i] < 0x20 || id[i] == 0x7f)
			return usage_error("health", "--checker-id: no control characters"), -1;
	return 0;
}

static int run_health(struct dbreg_ctx *ctx, int argc, char **argv)
{
	const bool history_mode = wants_history(argc, argv);
	const int bad = history_mode ? EXIT_USAGE : H_UNKNOWN;  /* a usage error's status */
	long arg_every = 0, arg_keep = 0, arg_since = 0, arg_batch = 0;
	const char *arg_checker = NULL, *not_with_history = NULL;
	bool arg_claim = false;
	enum dbreg_health_level arg_level = DBREG_LEVEL_BASIC;
	int arg_timeout_ms = 0, arg_jobs = 0, arg_threads = 0, arg_warn_ms = 0, arg_crit_ms = 0, arg_no_update = 0, arg_cert_warn_days = 0;
	long arg_lag_warn = 0;
	const char *arg_type = NULL, *arg_region = NULL;
	struct tag_list arg_tags = { .n = 0 };
	const char *const *names;
	struct dbreg_health_opts *o = NULL;
	struct dbreg_health_report *r = NULL;
	struct dbreg_health_history *history = NULL;
	struct dbreg_error history_why;
	enum out_format fmt = OUT_TABLE;
	const char *output = NULL;
	struct out_sink sink;
	struct dbreg_error err;
	size_t jobs_used, jobs_wanted;
	struct view view = { .statuses = 0, .sort = SORT_STATUS };
	struct out_progress shown = { .what = "checking" };
	long v, fd_limit;
	int c, state;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":ho:", health_long_options, NULL)) != -1) {
		switch (c) {
		case 'h':
			verb_help(&verb_health, health_options);
			return EXIT_OK;
		case 'o':
			if (verb_format(&verb_health, optarg, &fmt) < 0)
				return bad;
			break;
		case ARG_TYPE: arg_type = optarg; break;
		case ARG_REGION: arg_region = optarg; break;
		case ARG_TAG:
			if (tag_list_add("health", &arg_tags, optarg) < 0)
				return bad;
			break;
		case ARG_LEVEL:
			if (strcmp(optarg, "basic") == 0)
				arg_level = DBREG_LEVEL_BASIC;
			else if (strcmp(optarg, "extended") == 0)
				arg_level = DBREG_LEVEL_EXTENDED;
			else if (strcmp(optarg, "deep") == 0)
				arg_level = DBREG_LEVEL_DEEP;
			else
				return usage_error("health", "--level: '%s' is not basic, extended or deep", optarg), bad;
			break;
		case ARG_TIMEOUT:
			if (parse_positive("health", "--timeout", optarg, 3600, &v) < 0)
				return bad;
			arg_timeout_ms = (int)v * 1000;
			break;
		case ARG_JOBS:
			if (parse_positive("health", "--jobs", optarg, 10000, &v) < 0)
				return bad;
			arg_jobs = (int)v;
			break;
		case ARG_THREADS:
			if (parse_positive("health", "--threads", optarg, 64, &v) < 0)
				return bad;
			arg_threads = (int)v;
			break;
		case ARG_WARN_MS:
			if (parse_positive("health", "--warn-ms", optarg, 3600000, &v) < 0)
				return bad;
			arg_warn_ms = (int)v;
			break;
		case ARG_CRIT_MS:
			if (parse_positive("health", "--crit-ms", optarg, 3600000, &v) < 0)
				return bad;
			arg_crit_ms = (int)v;
			break;
		case ARG_NO_UPDATE: arg_no_update = 1; not_with_history = "--no-update"; break;
		case ARG_OUTPUT: output = optarg; not_with_history = "--output"; break;
		case ARG_CLAIM: arg_claim = true; not_with_history = "--claim"; break;
		case ARG_EVERY:
			if (parse_duration("health", "--every", optarg, DURATION_MAX, &arg_every) < 0)
				return bad;
			break;
		case ARG_BATCH:
			if (parse_positive("health", "--batch", optarg, 10000, &arg_batch) < 0)
				return bad;
			break;
		case ARG_CHECKER_ID:
			if (check_checker_id(optarg) < 0)
				return bad;
			arg_checker = optarg;
			break;
		case ARG_KEEP:
			if (parse_duration("health", "--keep", optarg, DURATION_MAX, &arg_keep) < 0)
				return bad;
			break;
		case ARG_HISTORY: break;
		case ARG_SINCE:
			if (parse_duration("health", "--since", optarg, DURATION_MAX, &arg_since) < 0)
				return bad;
			break;
		case ARG_CERT_WARN_DAYS:
			if (parse_positive("health", "--cert-warn-days", optarg, 3650, &v) < 0)
				return bad;
			arg_cert_warn_days = (int)v;
			break;
		case ARG_LAG_WARN:
			if (parse_duration("health", "--lag-warn", optarg, DURATION_MAX, &arg_lag_warn) < 0)
				return bad;
			break;
		case ARG_STATUS:
			if (parse_statuses(optarg, &view.statuses) < 0)
				return bad;
			break;
		case ARG_FAILING:
			view.statuses |= 1u << DBREG_DEGRADED | 1u << DBREG_UNHEALTHY | 1u << DBREG_UNKNOWN;
			break;
		case ARG_SORT:
			if (strcmp(optarg, "status") == 0)
				view.sort = SORT_STATUS;
			else if (strcmp(optarg, "name") == 0)
				view.sort = SORT_NAME;
			else if (strcmp(optarg, "latency") == 0)
				view.sort = SORT_LATENCY;
			else
				return usage_error("health", "--sort: '%s' is not status, name or latency", optarg), bad;
			view.sort_given = true;
			break;
		default:
			if (out_option(c))
				break;
			option_error("health", c, argv);
			return bad;
		}
	}
	if (parse_names("health", argc, argv, &names))
		return bad;
	if (history_mode && not_with_history)
		return usage_error("health", "%s does not go with --history", not_with_history), bad;
	if (history_mode && fmt != OUT_TABLE && fmt != OUT_WIDE && fmt != OUT_JSON)
		return usage_error("health", "--history prints a table or JSON (-o table or -o json)"), bad;
	if (arg_since && !history_mode)
		return usage_error("health", "--since goes with --history"), bad;
	if (arg_claim != (arg_every > 0))
		return usage_error("health", arg_claim ? "--claim needs --every DURATION: how often each row is checked"
		                                       : "--every goes with --claim"), bad;
	if (arg_batch && !arg_claim)
		return usage_error("health", "--batch goes with --claim"), bad;
	if (arg_claim && arg_no_update)
		return usage_error("health", "--claim writes its claims and results to the registry;"
		                             " it cannot go with --no-update"), bad;
	view.warn_ms = arg_warn_ms ? arg_warn_ms : 1000;
	view.crit_ms = arg_crit_ms;
	if (arg_crit_ms && arg_crit_ms < view.warn_ms)
		return usage_error("health", "--crit-ms (%d) is below --warn-ms (%d%s)", arg_crit_ms, view.warn_ms,
		                   arg_warn_ms ? "" : ", the default"), bad;
	dbreg_error_clear(&err);
	dbreg_error_clear(&history_why);
	if (dbreg_health_opts_new(&o, &err) < 0 ||
	    dbreg_filter_set_type(dbreg_health_opts_filter(o), arg_type, &err) < 0 ||
	    dbreg_filter_set_region(dbreg_health_opts_filter(o), arg_region, &err) < 0 ||
	    dbreg_filter_set_names(dbreg_health_opts_filter(o), names, &err) < 0 ||
	    add_tags(dbreg_health_opts_filter(o), &arg_tags, &err) < 0) {
		dbreg_health_opts_free(o);
		log_error("%s", err.message);
		return H_UNKNOWN;
	}
	if (history_mode) {
		c = health_history(ctx, dbreg_health_opts_filter(o), arg_since, fmt);
		dbreg_health_opts_free(o);
		return c;
	}
	if (dbreg_health_opts_set_checker(o, arg_checker, &err) < 0) {
		dbreg_health_opts_free(o);
		log_error("%s", err.message);
		return H_UNKNOWN;
	}
	dbreg_health_opts_set_claim(o, arg_every, (int)arg_batch);
	dbreg_health_opts_set_keep(o, arg_keep);
	dbreg_health_opts_set_level(o, arg_level);
	view.level = arg_level;
	dbreg_health_opts_set_timeout_ms(o, arg_timeout_ms);
	dbreg_health_opts_set_jobs(o, arg_jobs);
	dbreg_health_opts_set_threads(o, arg_threads);
	dbreg_health_opts_set_warn_ms(o, arg_warn_ms);
	dbreg_health_opts_set_crit_ms(o, arg_crit_ms);
	dbreg_health_opts_set_no_update(o, arg_no_update);
	dbreg_health_opts_set_cert_warn_days(o, arg_cert_warn_days);
	dbreg_health_opts_set_lag_warn(o, arg_lag_warn);
	if (!output && isatty(STDERR_FILENO))
		dbreg_health_opts_set_progress(o, out_progress, &shown);
	if (connect_registry_err(ctx, &err)) {
		report_failure(fmt, output, "cannot reach the admin database: ", err.message);
		dbreg_health_opts_free(o);
		return H_UNKNOWN;
	}
	if (dbreg_health_run(ctx, o, &r, &err) < 0) {
		if (err.message[0])
			log_error("%s", err.message);
		report_failure(fmt, output, "cannot check: ", err.message[0] ? err.message : "the run failed");
		dbreg_health_opts_free(o);
		return H_UNKNOWN;
	}
	view.cancelled = dbreg_ctx_was_cancelled(ctx);
	if (dbreg_health_report_count(r) == 0 && dbreg_health_report_claimed(r) && !view.cancelled &&
	    !dbreg_health_report_writeback_error(r)) {
		/* Nothing due: cron stays quiet, and an --output file is left as it is. */
		dbreg_health_opts_free(o);
		dbreg_health_report_free(r);
		return H_OK;
	}
	if (fmt == OUT_HTML)
		history = read_history(ctx, o, &history_why);
	dbreg_health_opts_free(o);
	jobs_used = dbreg_health_report_jobs(r, &jobs_wanted, &fd_limit);
	if (jobs_used < jobs_wanted)
		log_warning("the open-file limit (%ld) leaves room for %zu checks at once, not %zu; raise it with 'ulimit -n'",
		            fd_limit, jobs_used, jobs_wanted);
	for (size_t i = 0; i < dbreg_health_report_count(r); i++)
		if (dbreg_health_report_at(r, i)->note)
			log_warning("connection '%s': %s", dbreg_health_report_at(r, i)->connection_name,
			            dbreg_health_report_at(r, i)->note);
	state = overall(r);
	if (dbreg_health_report_count(r) == 0) {
		/* Nothing checked is nothing known: a monitor must not read it as OK. */
		log_error("no connection matches the selection");
		state = H_UNKNOWN;
	}
	if (dbreg_health_report_writeback_error(r)) {
		log_error("the results were not written to the registry: %s", dbreg_health_report_writeback_error(r));
		if (state == H_OK || state == H_UNKNOWN)
			state = H_WARNING;
	}
	/* A report that did not reach its reader (a full disk, a closed pipe) is no report. */
	if (out_sink_open(&sink, output, 0644) < 0) {
		if (state != H_CRITICAL)
			state = H_UNKNOWN;
	} else {
		print_report(sink.f, fmt, r, state, &view, history, history_why.message);
		if (out_sink_close(&sink) < 0 && state != H_CRITICAL)
			state = H_UNKNOWN;
	}
	dbreg_health_history_free(history);
	dbreg_health_report_free(r);
	return state;
}

const struct verb verb_health = {
	.name = "health",
	.run = run_health,
	.summary = "check the registered databases concurrently",
	.usage = "[NAME...] [--type TYPE] [--region CODE] [--tag TAG]... [--level basic|extended|deep]\n"
	         "       [--timeout SECONDS] [--jobs N] [--threads N] [--warn-ms MS] [--crit-ms MS] [--no-update]\n"
	         "       [--cert-warn-days N] [--lag-warn DURATION]\n"
	         "       [--status LIST | --failing] [--sort status|name|latency]\n"
	         "       [--claim --every DURATION [--batch N]] [--checker-id ID] [--keep DURATION]\n"
	         "       [-o table|wide|json|prometheus|nagios|html] [--output FILE] [--no-headers] [--no-pager]\n"
	         "   or: health --history [NAME...] [--type TYPE] [--region CODE] [--tag TAG]... [--since DURATION]\n"
	         "       [-o table|json]",
	.options = health_long_options,
	.paged = true,
	.takes_names = true,
	.min_args = 0, .max_args = VERB_ANY,
	.formats = OUT_TABLE | OUT_WIDE | OUT_JSON | OUT_PROMETHEUS | OUT_NAGIOS | OUT_HTML,
	.registry = VERB_REGISTRY_SELF,  /* a failure is reported in the chosen format too */
};
