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
	"  --output FILE       write the report to FILE atomically (mode 0644)\n"
	"  --watch SECONDS     redraw every SECONDS on a terminal until Ctrl-C\n"
	"  --no-headers        tables without their header lines\n"
	"  --no-pager          never page the output\n"
	"  -h, --help          show this help\n";

static json_t *count_or_null(long v)
{
	return v < 0 ? json_null() : json_integer(v);
}

static json_t *fraction_or_null(double v)
{
	return v < 0 ? json_null() : json_real((double)(long long)(v * 1000 + 0.5) / 1000);
}

/* A pooler row's "pooler" object: its pools as the pooler reports them. */
static json_t *pooler_json(const struct dbreg_pool_conn *c)
{
	json_t *pools = json_array();

	for (size_t k = 0; k < c->npools; k++) {
		const struct dbreg_pooler_pool *p = &c->pools[k];

		json_array_append_new(pools, json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
			"database", out_json_text(p->database), "user", out_json_text(p->user),
			"cl_active", count_or_null(p->cl_active), "cl_waiting", count_or_null(p->cl_waiting),
			"sv_active", count_or_null(p->sv_active), "sv_idle", count_or_null(p->sv_idle),
			"sv_used", count_or_null(p->sv_used), "maxwait", count_or_null(p->maxwait),
			"pool_mode", out_json_text(p->pool_mode), "pool_size", count_or_null(p->pool_size)));
	}
	return json_pack("{s:o, s:o}", "type", out_json_text(c->pooler), "pools", pools);
}

static void print_json(FILE *f, const struct dbreg_pool_report *r)
{
	json_t *conns = json_array(), *servers = json_array(), *root;

	for (size_t i = 0; i < dbreg_pool_report_conn_count(r); i++) {
		const struct dbreg_pool_conn *c = dbreg_pool_report_conn(r, i);
		json_t *o;

		o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:{s:o, s:o, s:o, s:o, s:o}, s:o, s:o, s:o}",
			"connection_name", c->connection_name,
			"pool_min_size", (json_int_t)c->pool_min_size,
			"pool_max_size", (json_int_t)c->pool_max_size,
			"pool_timeout_seconds", (json_int_t)c->pool_timeout_seconds,
			"pool_recycle_seconds", (json_int_t)c->pool_recycle_seconds,
			"backends",
			"total", count_or_null(c->total), "active", count_or_null(c->active), "idle", count_or_null(c->idle),
			"idle_in_transaction", count_or_null(c->idle_in_transaction), "waiting", count_or_null(c->waiting),
			"oldest_xact_seconds", fraction_or_null(c->oldest_xact_seconds),
			"saturation", fraction_or_null(c->saturation),
			"error", out_json_text(c->error));
		/* Only a pooler's row has the key: a server's has no pooler to describe. */
		if (c->pooler)
			json_object_set_new(o, "pooler", pooler_json(c));
		json_array_append_new(conns, o);
	}
	for (size_t i = 0; i < dbreg_pool_report_server_count(r); i++) {
		const struct dbreg_pool_server *s = dbreg_pool_report_server(r, i);

		json_array_append_new(servers, json_pack("{s:s, s:i, s:o, s:o, s:I, s:o, s:o}",
			"host", s->host,
			"port", atoi(s->port),
			"max_connections", count_or_null(s->max_connections),
			"reserved_connections", count_or_null(s->reserved_connections),
			"sum_pool_max_size", (json_int_t)s->sum_pool_max_size,
			"overcommitted", s->overcommitted < 0 ? json_null() : json_boolean(s->overcommitted),
			"backends", count_or_null(s->backends)));
	}
	root = json_pack("{s:o, s:o}", "connections", conns, "servers", servers);
	out_json_print(f, root);
	json_decref(root);
}

static const char *fmt_long(char *buf, size_t size, long v)
{
	if (v < 0)
		return NULL;
	snprintf(buf, size, "%ld", v);
	return buf;
}

/* A pooler's pools beside the registry's pool for that connection. */
static void print_pooler_table(FILE *f, const struct dbreg_pool_report *r)
{
	static const char *const ph[] = { "NAME", "DATABASE", "USER", "MODE", "CL-ACTIVE", "CL-WAITING", "SV-ACTIVE",
	                                  "SV-IDLE", "SV-USED", "MAXWAIT", "POOL-SIZE", "REGISTRY-MAX" };
	struct out_table *t = out_table_new(ELEMENTSOF(ph), ph);
	size_t rows = 0;

	for (size_t i = 0; i < dbreg_pool_report_conn_count(r); i++) {
		const struct dbreg_pool_conn *c = dbreg_pool_report_conn(r, i);

		for (size_t k = 0; c->pooler && k < c->npools; k++) {
			const struct dbreg_pooler_pool *p = &c->pools[k];
			char b[8][32];
			const char *cells[ELEMENTSOF(ph)] = {
				c->connection_name, p->database, p->user, p->pool_mode,
				fmt_long(b[0], 32, p->cl_active), fmt_long(b[1], 32, p->cl_waiting),
				fmt_long(b[2], 32, p->sv_active), fmt_long(b[3], 32, p->sv_idle), fmt_long(b[4], 32, p->sv_used),
				NULL, fmt_long(b[6], 32, p->pool_size), fmt_long(b[7], 32, c->pool_max_size),
			};

			if (p->maxwait >= 0) {
				snprintf(b[5], 32, "%ld s", p->maxwait);
				cells[9] = b[5];
			}
			out_table_add(t, cells);
			rows++;
		}
	}
	if (rows) {
		fputc('\n', f);
		out_table_print(f, t);
	}
	out_table_free(t);
}

static void print_table(FILE *f, const struct dbreg_pool_report *r)
{
	static const char *const ch[] = { "NAME", "MIN", "MAX", "BACKENDS", "ACTIVE", "IDLE", "IDLE-IN-TX", "WAITING",
	                                  "OLDEST-XACT", "SATURATION", "ERROR" };
	static const char *const sh[] = { "SERVER", "MAX-CONN", "RESERVED", "SUM-POOL-MAX", "OVERCOMMITTED", "BACKENDS" };
	struct out_table *t = out_table_new(ELEMENTSOF(ch), ch);

	for (size_t i = 0; i < dbreg_pool_report_conn_count(r); i++) {
		const struct dbreg_pool_conn *c = dbreg_pool_report_conn(r, i);
		char b[9][32];
		const char *cells[ELEMENTSOF(ch)] = {
			c->connection_name, fmt_long(b[0], 32, c->pool_min_size), fmt_long(b[1], 32, c->pool_max_size),
			fmt_long(b[2], 32, c->total), fmt_long(b[3], 32, c->active), fmt_long(b[4], 32, c->idle),
			fmt_long(b[5], 32, c->idle_in_transaction), fmt_long(b[6], 32, c->waiting), NULL, NULL, c->error,
		};

		if (c->oldest_xact_seconds >= 0) {
			snprintf(b[7], 32, "%.1f s", c->oldest_xact_seconds);
			cells[8] = b[7];
		}
		if (c->saturation >= 0) {
			snprintf(b[8], 32, "%.0f%%", c->saturation * 100);
			cells[9] = b[8];
		}
		out_table_add(t, cells);
	}
	out_table_print(f, t);
	out_table_free(t);
	/* Only PgBouncers in the report: no server to sum pools on. */
	if (dbreg_pool_report_server_count(r) == 0) {
		print_pooler_table(f, r);
		return;
	}
	fputc('\n', f);
	t = out_table_new(ELEMENTSOF(sh), sh);
	for (size_t i = 0; i < dbreg_pool_report_server_count(r); i++) {
		const struct dbreg_pool_server *s = dbreg_pool_report_server(r, i);
		char b[4][32], server[300];
		const char *cells[ELEMENTSOF(sh)] = {
			server, fmt_long(b[0], 32, s->max_connections), fmt_long(b[1], 32, s->reserved_connections),
			fmt_long(b[2], 32, s->sum_pool_max_size),
			s->overcommitted < 0 ? NULL : s->overcommitted ? "YES" : "no",
			s->backends >= 0 ? fmt_long(b[3], 32, s->backends)
				: s->max_connections >= 0 ? "unavailable (needs pg_monitor)" : NULL,
		};

		snprintf(server, sizeof(server), "%s:%s", s->host, s->port);
		out_table_add(t, cells);
	}
	out_table_print(f, t);
	out_table_free(t);
	print_pooler_table(f, r);
}

static void conn_labels(FILE *f, const struct dbreg_pool_conn *c)
{
	out_prom_label(f, "connection", c->connection_name, true);
}

/* One gauge per connection that has a value (v >= 0). */
static void conn_gauge(FILE *f, const struct dbreg_pool_report *r, const char *name, const char *help,
                       double (*value)(const struct dbreg_pool_conn *))
{
	out_prom_family(f, name, "gauge", help);
	for (size_t i = 0; i < dbreg_pool_report_conn_count(r); i++) {
		const struct dbreg_pool_conn *c = dbreg_pool_report_conn(r, i);
		double v = value(c);

		if (v < 0)
			continue;
		fprintf(f, "%s{", name);
		conn_labels(f, c);
		fprintf(f, "} %.15g\n", v);
	}
}

static double v_min(const struct dbreg_pool_conn *c) { return (double)c->pool_min_size; }
static double v_max(const struct dbreg_pool_conn *c) { return (double)c->pool_max_size; }
static double v_saturation(const struct dbreg_pool_conn *c) { return c->saturation; }
static double v_oldest(const struct dbreg_pool_conn *c) { return c->oldest_xact_seconds; }
static double v_up(const struct dbreg_pool_conn *c) { return c->error ? 0 : 1; }

/* A PgBouncer's pools, one family per figure, labelled by connection, database and user. */
static void pooler_gauge(FILE *f, const struct dbreg_pool_report *r, const char *name, const char *help,
                         size_t offset)
{
	out_prom_family(f, name, "gauge", help);
	for (size_t i = 0; i < dbreg_pool_report_conn_count(r); i++) {
		const struct dbreg_pool_conn *c = dbreg_pool_report_conn(r, i);

		for (size_t k = 0; c->pooler && k < c->npools; k++) {
			const struct dbreg_pooler_pool *p = &c->pools[k];
			long v = *(const long *)((const char *)p + offset);

			if (v < 0)
				continue;
			fprintf(f, "%s{", name);
			conn_labels(f, c);
			out_prom_label(f, "database", p->database, false);
			out_prom_label(f, "user", p->user, false);
			fprintf(f, "} %ld\n", v);
		}
	}
}

/* The run itself, as health reports its own: a file left by a failed run shows it. */
static void print_prometheus_run(FILE *f, bool success)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	out_prom_family(f, "dbreg_pool_run_success", "gauge",
	                "Whether the last pool-stats run could read the registry (1) or not (0).");
	fprintf(f, "dbreg_pool_run_success %d\n", success);
	out_prom_family(f, "dbreg_pool_run_timestamp_seconds", "gauge",
	                "When the last pool-stats run ended, in seconds since the epoch.");
	fprintf(f, "dbreg_pool_run_timestamp_seconds %.3f\n", (double)now.tv_sec + (double)now.tv_nsec / 1e9);
}

static void print_prometheus(FILE *f, const struct dbreg_pool_report *r)
{
	static const struct { const char *state; size_t offset; } states[] = {
		{ "active", offsetof(struct dbreg_pool_conn, active) },
		{ "idle", offsetof(struct dbreg_pool_conn, idle) },
		{ "idle_in_transaction", offsetof(struct dbreg_pool_conn, idle_in_transaction) },
		{ "waiting", offsetof(struct dbreg_pool_conn, waiting) },
	};
	static const struct { const char *name, *help; size_t offset; } pooler[] = {
		{ "dbreg_pool_pgbouncer_cl_active", "Client connections of the PgBouncer pool linked to a server connection.",
		  offsetof(struct dbreg_pooler_pool, cl_active) },
		{ "dbreg_pool_pgbouncer_cl_waiting", "Client connections of the PgBouncer pool waiting for a server connection.",
		  offsetof(struct dbreg_pooler_pool, cl_waiting) },
		{ "dbreg_pool_pgbouncer_sv_active", "Server connections of the PgBouncer pool linked to a client.",
		  offsetof(struct dbreg_pooler_pool, sv_active) },
		{ "dbreg_pool_pgbouncer_sv_idle", "Server connections of the PgBouncer pool unused and ready.",
		  offsetof(struct dbreg_pooler_pool, sv_idle) },
		{ "dbreg_pool_pgbouncer_sv_used", "Server connections of the PgBouncer pool idle past server_check_delay.",
		  offsetof(struct dbreg_pooler_pool, sv_used) },
		{ "dbreg_pool_pgbouncer_maxwait_seconds", "How long the oldest waiting client of the PgBouncer pool has waited.",
		  offsetof(struct dbreg_pooler_pool, maxwait) },
		{ "dbreg_pool_pgbouncer_pool_size", "The PgBouncer database's pool_size (SHOW DATABASES).",
		  offsetof(struct dbreg_pooler_pool, pool_size) },
	};

	conn_gauge(f, r, "dbreg_pool_up", "Whether the connection's server (or pooler) answered pool-stats (1) or not (0).",
	           v_up);
	out_prom_family(f, "dbreg_pool_connections", "gauge",
	                "Backends of the connection's database and user by state (waiting: on a lock), from pg_stat_activity.");
	for (size_t i = 0; i < dbreg_pool_report_conn_count(r); i++) {
		const struct dbreg_pool_conn *c = dbreg_pool_report_conn(r, i);

		for (size_t k = 0; k < ELEMENTSOF(states); k++) {
			long v = *(const long *)((const char *)c + states[k].offset);

			if (v < 0)
				continue;
			fputs("dbreg_pool_connections{", f);
			conn_labels(f, c);
			out_prom_label(f, "state", states[k].state, false);
			fprintf(f, "} %ld\n", v);
		}
	}
	conn_gauge(f, r, "dbreg_pool_min_size", "The registry's configured pool_min_size.", v_min);
	conn_gauge(f, r, "dbreg_pool_max_size", "The registry's configured pool_max_size.", v_max);
	conn_gauge(f, r, "dbreg_pool_saturation", "Backends of the connection's database and user over pool_max_size.",
	           v_saturation);
	conn_gauge(f, r, "dbreg_pool_oldest_xact_seconds", "Age of the oldest open transaction of the connection's user.",
	           v_oldest);
	out_prom_family(f, "dbreg_pool_server_max_connections", "gauge", "The server's max_connections less reserved slots.");
	for (size_t i = 0; i < dbreg_pool_report_server_count(r); i++) {
		const struct dbreg_pool_server *sv = dbreg_pool_report_server(r, i);

		if (sv->max_connections < 0)
			continue;
		fputs("dbreg_pool_server_max_connections{", f);
		out_prom_label(f, "host", sv->host, true);
		out_prom_label(f, "port", sv->port, false);
		fprintf(f, "} %ld\n", sv->max_connections - sv->reserved_connections);
	}
	out_prom_family(f, "dbreg_pool_server_sum_pool_max_size", "gauge",
	                "The sum of pool_max_size of the connections on the server.");
	for (size_t i = 0; i < dbreg_pool_report_server_count(r); i++) {
		const struct dbreg_pool_server *sv = dbreg_pool_report_server(r, i);

		fputs("dbreg_pool_server_sum_pool_max_size{", f);
		out_prom_label(f, "host", sv->host, true);
		out_prom_label(f, "port", sv->port, false);
		fprintf(f, "} %ld\n", sv->sum_pool_max_size);
	}
	for (size_t k = 0; k < ELEMENTSOF(pooler); k++)
		pooler_gauge(f, r, pooler[k].name, pooler[k].help, pooler[k].offset);
	print_prometheus_run(f, true);
}

static void print_report(FILE *f, enum out_format fmt, const struct dbreg_pool_report *r)
{
	if (fmt == OUT_JSON)
		print_json(f, r);
	else if (fmt == OUT_PROMETHEUS)
		print_prometheus(f, r);
	else if (dbreg_pool_report_conn_count(r) == 0)
		fprintf(stderr, "no active connections\n");
	else
		print_table(f, r);
}

/* A run that could not read the registry still rewrites a Prometheus report, as health does. */
static void report_failure(enum out_format fmt, const char *output)
{
	struct out_file o;

	if (fmt != OUT_PROMETHEUS)
		return;
	if (!output) {
		print_prometheus_run(stdout, false);
		fflush(stdout);
	} else if (out_file_open(&o, output, 0644) == 0) {
		print_prometheus_run(o.f, false);
		out_file_commit(&o, true);
	}
}

enum { ARG_WATCH = 0x100, ARG_TAG, ARG_TIMEOUT, ARG_JOBS, ARG_OUTPUT };
static const struct option pool_long_options[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "tag", required_argument, NULL, ARG_TAG },
	{ "timeout", required_argument, NULL, ARG_TIMEOUT },
	{ "jobs", required_argument, NULL, ARG_JOBS },
	{ "format", required_argument, NULL, 'o' },
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
		if (output) {
			struct out_file of;

			/* A reader (the textfile collector) never sees half a report. */
			if (out_file_open(&of, output, 0644) < 0) {
				dbreg_pool_report_free(r);
				return EXIT_NEGATIVE;
			}
			print_report(of.f, fmt, r);
			if (out_file_commit(&of, true) < 0) {
				dbreg_pool_report_free(r);
				return EXIT_NEGATIVE;
			}
		} else {
			print_report(stdout, fmt, r);
		}
		dbreg_pool_report_free(r);
		if (!watch) {
			if (!output && (fflush(stdout) != 0 || ferror(stdout))) {
				log_error("write failure on standard output: %s", strerror(errno));
				stdout_failure_reported = true;
				return EXIT_NEGATIVE;
			}
			return any_error ? EXIT_NEGATIVE : EXIT_OK;
		}
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
	const char *arg_tags[64];
	struct out_progress shown = { .what = "asking" };
	const char *output = NULL;
	long watch = 0, timeout_s = 0, jobs = 0;
	int c, rc, ntags = 0;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":ho:", pool_long_options, NULL)) != -1) {
		switch (c) {
		case 'h':
			verb_help(&verb_pool_stats, pool_options);
			return EXIT_OK;
		case 'o':
			if (out_parse_format("pool-stats", optarg, OUT_TABLE | OUT_WIDE | OUT_JSON | OUT_PROMETHEUS, &fmt) < 0)
				return EXIT_USAGE;
			break;
		case ARG_WATCH:
			if (parse_positive("pool-stats", "--watch", optarg, 86400, &watch) < 0)
				return EXIT_USAGE;
			break;
		case ARG_TAG:
			if (ntags == (int)ELEMENTSOF(arg_tags))
				return usage_error("pool-stats", "--tag: at most %zu", ELEMENTSOF(arg_tags));
			arg_tags[ntags++] = optarg;
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
	    add_tags(dbreg_pool_opts_filter(o), arg_tags, ntags, &err) < 0) {
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
};
