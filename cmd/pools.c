/* pools.c — dbreg pool-stats: configured pool sizes against what each server reports now. */
#include <errno.h>
#include <stddef.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dbreg-cmd.h"

static const char pool_options[] =
	"  --tag TAG           only connections with this tag (repeat: with all of them)\n"
	"  --timeout SECONDS   each server's deadline (default 5)\n"
	"  --jobs N            servers asked at once (default 64)\n"
	"  -o, --format FMT    table (default), wide (cells never cut), json or prometheus\n"
	OUT_JSON_HELP
	"  --output FILE       write the report to FILE atomically (mode 0644)\n"
	"  --watch SECONDS     redraw every SECONDS on a terminal until Ctrl-C\n"
	"  --no-headers        tables without their header lines\n"
	"  --no-pager          never page the output\n"
	"  -h, --help          show this help\n";

static const char *fmt_long(char *buf, size_t size, long v)
{
	if (v < 0)
		return NULL;
	snprintf(buf, size, "%ld", v);
	return buf;
}

static const char *fmt_real(char *buf, size_t size, const char *format, double v)
{
	if (v < 0)
		return NULL;
	snprintf(buf, size, format, v);
	return buf;
}

static json_t *count_or_null(long v)
{
	return v < 0 ? json_null() : json_integer(v);
}

/* A pooler row's "pooler" object: its pools as the pooler reports them (JSON text). */
static char *pooler_json(const struct dbreg_pool_conn *c)
{
	json_t *pools = json_array(), *o;
	char *text;

	for (size_t k = 0; k < c->npools; k++) {
		const struct dbreg_pooler_pool *p = &c->pools[k];

		json_array_append_new(pools, json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
			"database", out_json_text(p->database), "user", out_json_text(p->user),
			"cl_active", count_or_null(p->cl_active), "cl_waiting", count_or_null(p->cl_waiting),
			"sv_active", count_or_null(p->sv_active), "sv_idle", count_or_null(p->sv_idle),
			"sv_used", count_or_null(p->sv_used), "maxwait", count_or_null(p->maxwait),
			"pool_mode", out_json_text(p->pool_mode), "pool_size", count_or_null(p->pool_size)));
	}
	o = json_pack("{s:o, s:o}", "type", out_json_text(c->pooler), "pools", pools);
	text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return text;
}

/* The connections: the registry's pool beside what the server (or pooler) reports. */
enum { C_NAME, C_UP, C_MIN, C_MAX, C_TIMEOUT, C_RECYCLE, C_TOTAL, C_ACTIVE, C_IDLE, C_IIT, C_WAITING, C_OLDEST,
       C_OLDEST_RAW, C_SATURATION, C_SATURATION_RAW, C_ERROR, C_POOLER, C__COUNT };
static const char connections_help[] =
	"Backends of the connection's database and user by state (waiting: on a lock), from pg_stat_activity.";
static const struct out_column conn_columns[C__COUNT] = {
	[C_NAME] = { .key = "connection_name", .header = "NAME", .flags = OUT_C_LABEL, .label = "connection" },
	[C_UP] = { .key = "up", .kind = OUT_K_INT, .only = OUT_PROMETHEUS, .metric = "dbreg_pool_up",
	           .help = "Whether the connection's server (or pooler) answered pool-stats (1) or not (0)." },
	[C_MIN] = { .key = "pool_min_size", .header = "MIN", .kind = OUT_K_INT, .metric = "dbreg_pool_min_size",
	            .help = "The registry's configured pool_min_size." },
	[C_MAX] = { .key = "pool_max_size", .header = "MAX", .kind = OUT_K_INT, .metric = "dbreg_pool_max_size",
	            .help = "The registry's configured pool_max_size." },
	[C_TIMEOUT] = { .key = "pool_timeout_seconds", .kind = OUT_K_INT },
	[C_RECYCLE] = { .key = "pool_recycle_seconds", .kind = OUT_K_INT },
	[C_TOTAL] = { .key = "backends.total", .header = "BACKENDS", .kind = OUT_K_INT },
	[C_ACTIVE] = { .key = "backends.active", .header = "ACTIVE", .kind = OUT_K_INT, .metric = "dbreg_pool_connections",
	               .help = connections_help, .label = "state", .label_value = "active" },
	[C_IDLE] = { .key = "backends.idle", .header = "IDLE", .kind = OUT_K_INT, .metric = "dbreg_pool_connections",
	             .help = connections_help, .label = "state", .label_value = "idle" },
	[C_IIT] = { .key = "backends.idle_in_transaction", .header = "IDLE-IN-TX", .kind = OUT_K_INT,
	            .metric = "dbreg_pool_connections", .help = connections_help, .label = "state",
	            .label_value = "idle_in_transaction" },
	[C_WAITING] = { .key = "backends.waiting", .header = "WAITING", .kind = OUT_K_INT,
	                .metric = "dbreg_pool_connections", .help = connections_help, .label = "state",
	                .label_value = "waiting" },
	[C_OLDEST] = { .key = "oldest_xact_seconds", .header = "OLDEST-XACT", .kind = OUT_K_REAL },
	[C_OLDEST_RAW] = { .key = "oldest", .kind = OUT_K_REAL, .only = OUT_PROMETHEUS,
	                   .metric = "dbreg_pool_oldest_xact_seconds",
	                   .help = "Age of the oldest open transaction of the connection's user." },
	[C_SATURATION] = { .key = "saturation", .header = "SATURATION", .kind = OUT_K_REAL },
	[C_SATURATION_RAW] = { .key = "saturation_raw", .kind = OUT_K_REAL, .only = OUT_PROMETHEUS,
	                       .metric = "dbreg_pool_saturation",
	                       .help = "Backends of the connection's database and user over pool_max_size." },
	[C_ERROR] = { .key = "error", .header = "ERROR" },
	/* Only a pooler's row has the key: a server's has no pooler to describe. */
	[C_POOLER] = { .key = "pooler", .kind = OUT_K_JSON, .flags = OUT_C_OMIT_NULL },
};

static void add_conn(struct out_doc *d, const struct dbreg_pool_conn *c)
{
	char b[C__COUNT][40], shown_oldest[40], shown_saturation[40];
	const char *v[C__COUNT] = { NULL }, *shown[C__COUNT] = { NULL };
	char *pooler = c->pooler ? pooler_json(c) : NULL;

	v[C_NAME] = c->connection_name;
	v[C_UP] = c->error ? "0" : "1";
	v[C_MIN] = fmt_long(b[C_MIN], 40, c->pool_min_size);
	v[C_MAX] = fmt_long(b[C_MAX], 40, c->pool_max_size);
	v[C_TIMEOUT] = fmt_long(b[C_TIMEOUT], 40, c->pool_timeout_seconds);
	v[C_RECYCLE] = fmt_long(b[C_RECYCLE], 40, c->pool_recycle_seconds);
	v[C_TOTAL] = fmt_long(b[C_TOTAL], 40, c->total);
	v[C_ACTIVE] = fmt_long(b[C_ACTIVE], 40, c->active);
	v[C_IDLE] = fmt_long(b[C_IDLE], 40, c->idle);
	v[C_IIT] = fmt_long(b[C_IIT], 40, c->idle_in_transaction);
	v[C_WAITING] = fmt_long(b[C_WAITING], 40, c->waiting);
	v[C_OLDEST] = fmt_real(b[C_OLDEST], 40, "%.3f", c->oldest_xact_seconds);
	v[C_OLDEST_RAW] = fmt_real(b[C_OLDEST_RAW], 40, "%.15g", c->oldest_xact_seconds);
	shown[C_OLDEST] = fmt_real(shown_oldest, 40, "%.1f s", c->oldest_xact_seconds);
	v[C_SATURATION] = fmt_real(b[C_SATURATION], 40, "%.3f", c->saturation);
	v[C_SATURATION_RAW] = fmt_real(b[C_SATURATION_RAW], 40, "%.15g", c->saturation);
	shown[C_SATURATION] = fmt_real(shown_saturation, 40, "%.0f%%", c->saturation * 100);
	v[C_ERROR] = c->error;
	v[C_POOLER] = pooler;
	out_doc_row(d, v, shown, NULL);
	free(pooler);
}

/* The servers the connections share: their capacity beside the pools' sum. */
enum { S_SERVER, S_HOST, S_PORT, S_MAX, S_RESERVED, S_AVAILABLE, S_SUM, S_OVER, S_BACKENDS, S__COUNT };
static const struct out_column server_columns[S__COUNT] = {
	[S_SERVER] = { .header = "SERVER" },
	[S_HOST] = { .key = "host", .flags = OUT_C_LABEL },
	[S_PORT] = { .key = "port", .kind = OUT_K_INT, .flags = OUT_C_LABEL },
	[S_MAX] = { .key = "max_connections", .header = "MAX-CONN", .kind = OUT_K_INT },
	[S_RESERVED] = { .key = "reserved_connections", .header = "RESERVED", .kind = OUT_K_INT },
	[S_AVAILABLE] = { .key = "available", .kind = OUT_K_INT, .only = OUT_PROMETHEUS,
	                  .metric = "dbreg_pool_server_max_connections",
	                  .help = "The server's max_connections less reserved slots." },
	[S_SUM] = { .key = "sum_pool_max_size", .header = "SUM-POOL-MAX", .kind = OUT_K_INT,
	            .metric = "dbreg_pool_server_sum_pool_max_size",
	            .help = "The sum of pool_max_size of the connections on the server." },
	[S_OVER] = { .key = "overcommitted", .header = "OVERCOMMITTED", .kind = OUT_K_BOOL },
	[S_BACKENDS] = { .key = "backends", .header = "BACKENDS", .kind = OUT_K_INT },
};

static void add_server(struct out_doc *d, const struct dbreg_pool_server *s)
{
	char b[S__COUNT][40], server[300];
	const char *v[S__COUNT] = { NULL }, *shown[S__COUNT] = { NULL };

	snprintf(server, sizeof(server), "%s:%s", s->host, s->port);
	v[S_SERVER] = server;
	v[S_HOST] = s->host;
	v[S_PORT] = s->port;
	v[S_MAX] = fmt_long(b[S_MAX], 40, s->max_connections);
	v[S_RESERVED] = fmt_long(b[S_RESERVED], 40, s->reserved_connections);
	if (s->max_connections >= 0)
		v[S_AVAILABLE] = fmt_long(b[S_AVAILABLE], 40, s->max_connections - s->reserved_connections);
	v[S_SUM] = fmt_long(b[S_SUM], 40, s->sum_pool_max_size);
	v[S_OVER] = s->overcommitted < 0 ? NULL : s->overcommitted ? "true" : "false";
	shown[S_OVER] = s->overcommitted < 0 ? NULL : s->overcommitted ? "YES" : "no";
	v[S_BACKENDS] = fmt_long(b[S_BACKENDS], 40, s->backends);
	if (s->backends < 0 && s->max_connections >= 0)
		shown[S_BACKENDS] = "unavailable (needs pg_monitor)";
	out_doc_row(d, v, shown, NULL);
}

/* A PgBouncer's pools beside the registry's pool for that connection (in JSON, the
 * connection's "pooler" object). */
enum { P_NAME, P_DATABASE, P_USER, P_MODE, P_CL_ACTIVE, P_CL_WAITING, P_SV_ACTIVE, P_SV_IDLE, P_SV_USED, P_MAXWAIT,
       P_POOL_SIZE, P_REGISTRY_MAX, P__COUNT };
static const struct out_column pooler_columns[P__COUNT] = {
	[P_NAME] = { .key = "connection_name", .header = "NAME", .flags = OUT_C_LABEL, .label = "connection" },
	[P_DATABASE] = { .key = "database", .header = "DATABASE", .flags = OUT_C_LABEL },
	[P_USER] = { .key = "user", .header = "USER", .flags = OUT_C_LABEL },
	[P_MODE] = { .key = "pool_mode", .header = "MODE" },
	[P_CL_ACTIVE] = { .key = "cl_active", .header = "CL-ACTIVE", .kind = OUT_K_INT,
	                  .metric = "dbreg_pool_pgbouncer_cl_active",
	                  .help = "Client connections of the PgBouncer pool linked to a server connection." },
	[P_CL_WAITING] = { .key = "cl_waiting", .header = "CL-WAITING", .kind = OUT_K_INT,
	                   .metric = "dbreg_pool_pgbouncer_cl_waiting",
	                   .help = "Client connections of the PgBouncer pool waiting for a server connection." },
	[P_SV_ACTIVE] = { .key = "sv_active", .header = "SV-ACTIVE", .kind = OUT_K_INT,
	                  .metric = "dbreg_pool_pgbouncer_sv_active",
	                  .help = "Server connections of the PgBouncer pool linked to a client." },
	[P_SV_IDLE] = { .key = "sv_idle", .header = "SV-IDLE", .kind = OUT_K_INT, .metric = "dbreg_pool_pgbouncer_sv_idle",
	                .help = "Server connections of the PgBouncer pool unused and ready." },
	[P_SV_USED] = { .key = "sv_used", .header = "SV-USED", .kind = OUT_K_INT, .metric = "dbreg_pool_pgbouncer_sv_used",
	                .help = "Server connections of the PgBouncer pool idle past server_check_delay." },
	[P_MAXWAIT] = { .key = "maxwait", .header = "MAXWAIT", .kind = OUT_K_INT,
	                .metric = "dbreg_pool_pgbouncer_maxwait_seconds",
	                .help = "How long the oldest waiting client of the PgBouncer pool has waited." },
	[P_POOL_SIZE] = { .key = "pool_size", .header = "POOL-SIZE", .kind = OUT_K_INT,
	                  .metric = "dbreg_pool_pgbouncer_pool_size",
	                  .help = "The PgBouncer database's pool_size (SHOW DATABASES)." },
	[P_REGISTRY_MAX] = { .key = "registry_max", .header = "REGISTRY-MAX", .kind = OUT_K_INT },
};

static void add_pools(struct out_doc *d, const struct dbreg_pool_conn *c)
{
	for (size_t k = 0; c->pooler && k < c->npools; k++) {
		const struct dbreg_pooler_pool *p = &c->pools[k];
		char b[P__COUNT][40], maxwait[40];
		const char *v[P__COUNT] = { c->connection_name, p->database, p->user, p->pool_mode,
			fmt_long(b[P_CL_ACTIVE], 40, p->cl_active), fmt_long(b[P_CL_WAITING], 40, p->cl_waiting),
			fmt_long(b[P_SV_ACTIVE], 40, p->sv_active), fmt_long(b[P_SV_IDLE], 40, p->sv_idle),
			fmt_long(b[P_SV_USED], 40, p->sv_used), fmt_long(b[P_MAXWAIT], 40, p->maxwait),
			fmt_long(b[P_POOL_SIZE], 40, p->pool_size), fmt_long(b[P_REGISTRY_MAX], 40, c->pool_max_size) };
		const char *shown[P__COUNT] = { NULL };

		if (p->maxwait >= 0) {
			snprintf(maxwait, sizeof(maxwait), "%ld s", p->maxwait);
			shown[P_MAXWAIT] = maxwait;
		}
		out_doc_row(d, v, shown, NULL);
	}
}

/* The run itself, as health reports its own: a file left by a failed run shows it. */
static void run_gauges(struct out_doc *d, bool success)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	out_doc_gauge(d, "dbreg_pool_run_success", "Whether the last pool-stats run could read the registry (1) or not (0).",
	              success);
	out_doc_gauge(d, "dbreg_pool_run_timestamp_seconds", "When the last pool-stats run ended, in seconds since the epoch.",
	              (double)now.tv_sec + (double)now.tv_nsec / 1e9);
}

static void print_report(FILE *f, enum out_format fmt, const struct dbreg_pool_report *r)
{
	struct out_doc *d;

	if (fmt == OUT_TABLE && dbreg_pool_report_conn_count(r) == 0) {
		fprintf(stderr, "no active connections\n");
		return;
	}
	d = out_doc_new(f, fmt, 0);
	out_doc_section(d, "connections", conn_columns, C__COUNT);
	for (size_t i = 0; i < dbreg_pool_report_conn_count(r); i++)
		add_conn(d, dbreg_pool_report_conn(r, i));
	out_doc_section(d, "servers", server_columns, S__COUNT);
	for (size_t i = 0; i < dbreg_pool_report_server_count(r); i++)
		add_server(d, dbreg_pool_report_server(r, i));
	out_doc_section(d, NULL, pooler_columns, P__COUNT);
	for (size_t i = 0; i < dbreg_pool_report_conn_count(r); i++)
		add_pools(d, dbreg_pool_report_conn(r, i));
	run_gauges(d, true);
	out_doc_end(d);
}

/* A run that could not read the registry still rewrites a Prometheus report, as health does. */
static void report_failure(enum out_format fmt, const char *output)
{
	struct out_sink sink;
	struct out_doc *d;

	if (fmt != OUT_PROMETHEUS || out_sink_open(&sink, output, 0644) < 0)
		return;
	d = out_doc_new(sink.f, fmt, 0);
	run_gauges(d, false);
	out_doc_end(d);
	out_sink_close(&sink);
}

enum { ARG_WATCH = 0x100, ARG_TAG, ARG_TIMEOUT, ARG_JOBS, ARG_OUTPUT };
static const struct option pool_long_options[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "tag", required_argument, NULL, ARG_TAG },
	{ "timeout", required_argument, NULL, ARG_TIMEOUT },
	{ "jobs", required_argument, NULL, ARG_JOBS },
	{ "format", required_argument, NULL, 'o' },
	OUT_JSON_OPTIONS,
	{ "watch", required_argument, NULL, ARG_WATCH },
	{ "output", required_argument, NULL, ARG_OUTPUT },
	OUT_TABLE_OPTIONS,
	{},
};

/* Every round of pool-stats on one set of options. */
static int pool_rounds(struct dbreg_ctx *ctx, const struct dbreg_pool_opts *o, enum out_format fmt, long watch,
                       const char *output)
{
	struct dbreg_error err;
	struct out_sink sink;

	dbreg_error_clear(&err);
	for (;;) {
		struct dbreg_pool_report *r = NULL;
		bool any_error = false;

		if (dbreg_pool_stats(ctx, o, &r, &err) < 0) {
			report_failure(fmt, output);
			return fail(&err);
		}
		if (watch) {
			time_t now = time(NULL);
			char when[32];

			strftime(when, sizeof(when), "%H:%M:%S", localtime(&now));
			printf("\033[H\033[2J%sdbreg pool-stats%s  every %lds  %s  (Ctrl-C to stop)\n\n", color(C_BOLD),
			       color(C_RESET), watch, when);
		}
		for (size_t i = 0; i < dbreg_pool_report_conn_count(r); i++)
			any_error |= dbreg_pool_report_conn(r, i)->error != NULL;
		/* A reader (the textfile collector) never sees half a report. */
		if (out_sink_open(&sink, output, 0644) < 0) {
			dbreg_pool_report_free(r);
			return EXIT_NEGATIVE;
		}
		print_report(sink.f, fmt, r);
		dbreg_pool_report_free(r);
		if (out_sink_close(&sink) < 0)
			return EXIT_NEGATIVE;
		if (!watch)
			return any_error ? EXIT_NEGATIVE : EXIT_OK;
		fflush(stdout);
		if (sleep((unsigned)watch) != 0 || dbreg_ctx_was_cancelled(ctx))
			return EXIT_OK;
	}
}

static int run_pool_stats(struct dbreg_ctx *ctx, int argc, char **argv)
{
	const char *const *names;
	struct dbreg_pool_opts *o = NULL;
	enum out_format fmt = OUT_TABLE;
	struct dbreg_error err;
	struct tag_list arg_tags = { .n = 0 };
	struct out_progress shown = { .what = "asking" };
	const char *output = NULL;
	long watch = 0, timeout_s = 0, jobs = 0;
	int c, rc;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":ho:", pool_long_options, NULL)) != -1) {
		switch (c) {
		case 'h':
			verb_help(&verb_pool_stats, pool_options);
			return EXIT_OK;
		case 'o':
			if (verb_format(&verb_pool_stats, optarg, &fmt) < 0)
				return EXIT_USAGE;
			break;
		case ARG_WATCH:
			if (parse_positive("pool-stats", "--watch", optarg, 86400, &watch) < 0)
				return EXIT_USAGE;
			break;
		case ARG_TAG:
			if (tag_list_add("pool-stats", &arg_tags, optarg) < 0)
				return EXIT_USAGE;
			break;
		case ARG_TIMEOUT:
			if (parse_positive("pool-stats", "--timeout", optarg, 3600, &timeout_s) < 0)
				return EXIT_USAGE;
			break;
		case ARG_JOBS:
			if (parse_positive("pool-stats", "--jobs", optarg, 10000, &jobs) < 0)
				return EXIT_USAGE;
			break;
		case ARG_OUTPUT:
			if (!*optarg)
				return usage_error("pool-stats", "--output: the file name cannot be empty");
			output = optarg;
			break;
		default:
			if (out_option(c))
				break;
			return option_error("pool-stats", c, argv);
		}
	}
	if (parse_names("pool-stats", argc, argv, &names))
		return EXIT_USAGE;
	dbreg_error_clear(&err);
	if (watch && !out_is_terminal())
		return usage_error("pool-stats", "--watch redraws a terminal; standard output is not one");
	if (watch && output)
		return usage_error("pool-stats", "--watch redraws a terminal; it does not go with --output");
	if (watch)
		out_pager_stop();  /* each redraw must reach the screen as it is made */
	rc = connect_registry(ctx);
	if (rc) {
		report_failure(fmt, output);
		return rc;
	}
	if (dbreg_pool_opts_new(&o, &err) < 0 || dbreg_filter_set_names(dbreg_pool_opts_filter(o), names, &err) < 0 ||
	    add_tags(dbreg_pool_opts_filter(o), &arg_tags, &err) < 0) {
		dbreg_pool_opts_free(o);
		return fail(&err);
	}
	dbreg_pool_opts_set_timeout_ms(o, (int)timeout_s * 1000);
	dbreg_pool_opts_set_jobs(o, (int)jobs);
	/* A person watching a long run sees how far it is; --watch redraws the screen itself. */
	if (!watch && !output && isatty(STDERR_FILENO))
		dbreg_pool_opts_set_progress(o, out_progress, &shown);
	rc = pool_rounds(ctx, o, fmt, watch, output);
	dbreg_pool_opts_free(o);
	return rc;
}

const struct verb verb_pool_stats = {
	.name = "pool-stats",
	.run = run_pool_stats,
	.summary = "configured pool sizes against live server usage",
	.usage = "[NAME...] [--tag TAG]... [--timeout SECONDS] [--jobs N] [-o table|wide|json|prometheus]\n"
	         "       [--output FILE] [--watch SECONDS] [--no-headers] [--no-pager]",
	.options = pool_long_options,
	.paged = true,
	.takes_names = true,
	.min_args = 0, .max_args = VERB_ANY,
	.formats = OUT_TABLE | OUT_WIDE | OUT_JSON | OUT_PROMETHEUS,
	.registry = VERB_REGISTRY_SELF,  /* a failure rewrites a Prometheus report too */
};
