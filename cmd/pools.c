/* pools.c — dbreg pool-stats: configured pool sizes against what each server reports now. */
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
	"  -o, --format FMT    table (default) or json\n"
	"  --watch SECONDS     redraw every SECONDS on a terminal until Ctrl-C\n"
	"  -h, --help          show this help\n";

static json_t *count_or_null(long v)
{
	return v < 0 ? json_null() : json_integer(v);
}

static json_t *fraction_or_null(double v)
{
	return v < 0 ? json_null() : json_real((double)(long long)(v * 1000 + 0.5) / 1000);
}

static void print_json(const struct dbreg_pool_report *r)
{
	json_t *conns = json_array(), *servers = json_array(), *root;

	for (size_t i = 0; i < dbreg_pool_report_conn_count(r); i++) {
		const struct dbreg_pool_conn *c = dbreg_pool_report_conn(r, i);

		json_array_append_new(conns, json_pack("{s:s, s:I, s:I, s:I, s:I, s:{s:o, s:o, s:o, s:o, s:o}, s:o, s:o, s:o}",
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
			"error", out_json_text(c->error)));
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
	out_json_print(stdout, root);
	json_decref(root);
}

static const char *fmt_long(char *buf, size_t size, long v)
{
	if (v < 0)
		return NULL;
	snprintf(buf, size, "%ld", v);
	return buf;
}

static void print_table(const struct dbreg_pool_report *r)
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
	out_table_print(stdout, t);
	out_table_free(t);
	putchar('\n');
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
	out_table_print(stdout, t);
	out_table_free(t);
}

enum { ARG_WATCH = 0x100, ARG_TAG, ARG_TIMEOUT, ARG_JOBS };
static const struct option pool_long_options[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "tag", required_argument, NULL, ARG_TAG },
	{ "timeout", required_argument, NULL, ARG_TIMEOUT },
	{ "jobs", required_argument, NULL, ARG_JOBS },
	{ "format", required_argument, NULL, 'o' },
	{ "watch", required_argument, NULL, ARG_WATCH },
	{},
};

/* Every round of pool-stats on one set of options. */
static int pool_rounds(struct dbreg_ctx *ctx, const struct dbreg_pool_opts *o, enum out_format fmt, long watch)
{
	struct dbreg_error err;

	dbreg_error_clear(&err);
	for (;;) {
		struct dbreg_pool_report *r = NULL;
		bool any_error = false;

		if (dbreg_pool_stats(ctx, o, &r, &err) < 0)
			return fail(&err);
		if (watch) {
			time_t now = time(NULL);
			char when[32];

			strftime(when, sizeof(when), "%H:%M:%S", localtime(&now));
			printf("\033[H\033[2J%sdbreg pool-stats%s  every %lds  %s  (Ctrl-C to stop)\n\n", color(C_BOLD),
			       color(C_RESET), watch, when);
		}
		if (fmt == OUT_JSON)
			print_json(r);
		else if (dbreg_pool_report_conn_count(r) == 0)
			fprintf(stderr, "no active connections\n");
		else
			print_table(r);
		for (size_t i = 0; i < dbreg_pool_report_conn_count(r); i++)
			any_error |= dbreg_pool_report_conn(r, i)->error != NULL;
		dbreg_pool_report_free(r);
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
	const char *arg_tags[64];
	long watch = 0, timeout_s = 0, jobs = 0;
	int c, rc, ntags = 0;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":ho:", pool_long_options, NULL)) != -1) {
		switch (c) {
		case 'h':
			verb_help(&verb_pool_stats, pool_options);
			return EXIT_OK;
		case 'o':
			if (out_parse_format("pool-stats", optarg, OUT_TABLE | OUT_JSON, &fmt) < 0)
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
		default:
			return option_error("pool-stats", c, argv);
		}
	}
	if (parse_names("pool-stats", argc, argv, &names))
		return EXIT_USAGE;
	dbreg_error_clear(&err);
	if (watch && !isatty(STDOUT_FILENO))
		return usage_error("pool-stats", "--watch redraws a terminal; standard output is not one");
	rc = connect_registry(ctx);
	if (rc)
		return rc;
	if (dbreg_pool_opts_new(&o, &err) < 0 || dbreg_filter_set_names(dbreg_pool_opts_filter(o), names, &err) < 0 ||
	    add_tags(dbreg_pool_opts_filter(o), arg_tags, ntags, &err) < 0) {
		dbreg_pool_opts_free(o);
		return fail(&err);
	}
	dbreg_pool_opts_set_timeout_ms(o, (int)timeout_s * 1000);
	dbreg_pool_opts_set_jobs(o, (int)jobs);
	rc = pool_rounds(ctx, o, fmt, watch);
	dbreg_pool_opts_free(o);
	return rc;
}

const struct verb verb_pool_stats = {
	.name = "pool-stats",
	.run = run_pool_stats,
	.summary = "configured pool sizes against live server usage",
	.usage = "[NAME...] [--tag TAG]... [--timeout SECONDS] [--jobs N] [-o table|json] [--watch SECONDS]",
	.options = pool_long_options,
	.takes_names = true,
};
