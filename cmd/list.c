/* list.c — dbreg list and dbreg show: registered connections, never their passwords. */
#include <getopt.h>
#include <string.h>

#include "dbreg-cmd.h"

enum { ARG_TYPE = 0x100, ARG_REGION, ARG_TAG, ARG_ACTIVE, ARG_INACTIVE, ARG_ALL, ARG_NAMES };
static const struct option list_options[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "format", required_argument, NULL, 'o' },
	OUT_JSON_OPTIONS,
	{ "type", required_argument, NULL, ARG_TYPE },
	{ "region", required_argument, NULL, ARG_REGION },
	{ "tag", required_argument, NULL, ARG_TAG },
	{ "active", no_argument, NULL, ARG_ACTIVE },
	{ "inactive", no_argument, NULL, ARG_INACTIVE },
	{ "all", no_argument, NULL, ARG_ALL },
	{ "names", no_argument, NULL, ARG_NAMES },
	OUT_TABLE_OPTIONS,
	{},
};

static int run_list(struct dbreg_ctx *ctx, int argc, char **argv)
{
	const char *arg_type = NULL, *arg_region = NULL;
	struct tag_list arg_tags = { .n = 0 };
	int arg_active = -1, arg_all = 0;
	struct dbreg_filter *filter = NULL;
	enum out_format fmt = OUT_TABLE;
	struct dbreg_conn_stream *st = NULL;
	struct dbreg_error err;
	bool names = false;
	int c, r;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":ho:", list_options, NULL)) != -1) {
		switch (c) {
		case 'h':
			verb_help(&verb_list,
			          "  --type TYPE        only connections of this type\n"
			          "  --region CODE      only connections in this region\n"
			          "  --tag TAG          only connections with this tag (repeat: with all of them)\n"
			          "  --active           only active connections\n"
			          "  --inactive         only inactive connections\n"
			          "  --all              deleted connections too\n"
			          "  -o, --format FMT   table (default), wide (cells never cut), json or csv\n"
			          OUT_JSON_HELP
			          "  --names            names only, one per line\n"
			          "  --no-headers       a table without its header line\n"
			          "  --no-pager         never page the output\n"
			          "  -h, --help         show this help\n");
			return EXIT_OK;
		case 'o':
			if (verb_format(&verb_list, optarg, &fmt) < 0)
				return EXIT_USAGE;
			break;
		case ARG_TYPE: arg_type = optarg; break;
		case ARG_REGION: arg_region = optarg; break;
		case ARG_TAG:
			if (tag_list_add("list", &arg_tags, optarg) < 0)
				return EXIT_USAGE;
			break;
		case ARG_ACTIVE:
		case ARG_INACTIVE:
			if (arg_active >= 0 && arg_active != (c == ARG_ACTIVE))
				return usage_error("list", "--active and --inactive exclude each other");
			arg_active = c == ARG_ACTIVE;
			break;
		case ARG_ALL: arg_all = 1; break;
		case ARG_NAMES: names = true; break;
		default:
			if (out_option(c))
				break;
			return option_error("list", c, argv);
		}
	}
	r = verb_begin(&verb_list, ctx, argc, argv);
	if (r)
		return r;
	dbreg_error_clear(&err);
	if (dbreg_filter_new(&filter, &err) < 0 || dbreg_filter_set_type(filter, arg_type, &err) < 0 ||
	    dbreg_filter_set_region(filter, arg_region, &err) < 0 || add_tags(filter, &arg_tags, &err) < 0) {
		dbreg_filter_free(filter);
		return fail(&err);
	}
	dbreg_filter_set_active(filter, arg_active);
	dbreg_filter_set_include_deleted(filter, arg_all);
	/* The server computes only what is shown: a table's columns, or the names. */
	if (names || fmt == OUT_TABLE) {
		enum dbreg_field shown[DBREG_F__COUNT] = { DBREG_F_CONNECTION_NAME };

		if (dbreg_filter_set_fields(filter, shown, names ? 1 : out_conn_table_fields(shown), &err) < 0) {
			dbreg_filter_free(filter);
			return fail(&err);
		}
	}
	r = dbreg_list_stream(ctx, filter, &st, &err);
	dbreg_filter_free(filter);
	if (r < 0)
		return fail(&err);
	if (names) {
		const struct dbreg_conn *conn;

		while ((r = dbreg_conn_stream_next(st, &conn, &err)) > 0) {
			out_fputs_safe(dbreg_conn_get(conn, DBREG_F_CONNECTION_NAME), stdout);
			putchar('\n');
		}
	} else {
		size_t rows = 0;

		r = out_conn_stream(stdout, fmt, st, &rows, &err);
		/* An empty table is said on stderr. */
		if (r == 0 && rows == 0 && fmt == OUT_TABLE)
			fprintf(stderr, "no connections registered%s\n",
			        arg_type || arg_region || arg_tags.n || arg_active >= 0 ? " match" : "");
	}
	dbreg_conn_stream_free(st);
	if (r < 0)
		return fail(&err);
	return EXIT_OK;
}

static const struct option show_options[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "format", required_argument, NULL, 'o' },
	OUT_JSON_OPTIONS,
	OUT_PAGER_OPTIONS,
	{},
};

static int run_show(struct dbreg_ctx *ctx, int argc, char **argv)
{
	enum out_format fmt = OUT_TABLE;
	struct dbreg_conn_list *l = NULL;
	struct dbreg_error err;
	int c, r;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":ho:", show_options, NULL)) != -1) {
		switch (c) {
		case 'h':
			verb_help(&verb_show,
			          "  -o, --format FMT   table (default) or json\n"
			          OUT_JSON_HELP
			          "  --no-pager         never page the output\n"
			          "  -h, --help         show this help\n");
			return EXIT_OK;
		case 'o':
			if (verb_format(&verb_show, optarg, &fmt) < 0)
				return EXIT_USAGE;
			break;
		default:
			if (out_option(c))
				break;
			return option_error("show", c, argv);
		}
	}
	r = verb_begin(&verb_show, ctx, argc, argv);
	if (r)
		return r;
	dbreg_error_clear(&err);
	if (dbreg_show(ctx, argv[optind], &l, &err) < 0)
		return fail(&err);
	out_conn_list(stdout, fmt, l, true);
	dbreg_conn_list_free(l);
	return EXIT_OK;
}

const struct verb verb_list = {
	.name = "list",
	.run = run_list,
	.summary = "list the registered connections",
	.usage = "[--type TYPE] [--region CODE] [--tag TAG]... [--active | --inactive] [--all]\n"
	         "       [-o table|wide|json|csv] [--names] [--no-headers] [--no-pager]",
	.options = list_options,
	.paged = true,
	.formats = OUT_TABLE | OUT_WIDE | OUT_JSON | OUT_CSV,
	.registry = VERB_REGISTRY_CONNECT,
};

const struct verb verb_show = {
	.name = "show",
	.run = run_show,
	.summary = "show one connection in full (never its password)",
	.usage = "NAME [-o table|json] [--no-pager]",
	.options = show_options,
	.paged = true,
	.min_args = 1, .max_args = 1, .arg_name = "a connection NAME",
	.formats = OUT_TABLE | OUT_JSON,
	.registry = VERB_REGISTRY_CONNECT,
	.takes_names = true,
};
