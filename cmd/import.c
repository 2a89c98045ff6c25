/* import.c — dbreg import: connections from a pg_service.conf (and .pgpass) or a CSV, all in one transaction. */
#include <getopt.h>
#include <string.h>

#include "dbreg-cmd.h"

enum { ARG_FROM = 0x100, ARG_PGPASS, ARG_TYPE, ARG_REGION, ARG_DRY_RUN, ARG_REPLACE };
static const struct option import_options[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "from", required_argument, NULL, ARG_FROM },
	{ "pgpass", required_argument, NULL, ARG_PGPASS },
	{ "type", required_argument, NULL, ARG_TYPE },
	{ "region", required_argument, NULL, ARG_REGION },
	{ "dry-run", no_argument, NULL, ARG_DRY_RUN },
	{ "replace", no_argument, NULL, ARG_REPLACE },
	{},
};

static const char import_help[] =
	"  --from service FILE    every [NAME] section of a pg_service.conf\n"
	"  --from csv FILE        every row of a CSV with dbreg list -o csv's header (- is stdin)\n"
	"  --pgpass FILE          passwords from this .pgpass file (service only; mode 0600)\n"
	"  --type TYPE            the type of connections that give none\n"
	"  --region CODE          the region of connections that give none\n"
	"  --dry-run              check everything, write nothing\n"
	"  --replace              rewrite connections already registered under a name\n"
	"  -h, --help             show this help\n";

static int run_import(struct dbreg_ctx *ctx, int argc, char **argv)
{
	const char *from = NULL, *pgpass = NULL, *type = NULL, *region = NULL, *file;
	struct dbreg_conn_list *rows = NULL;
	struct dbreg_import *im = NULL;
	struct dbreg_error err;
	bool dry_run = false, replace = false;
	size_t n;
	int c, r;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", import_options, NULL)) != -1) {
		switch (c) {
		case 'h':
			verb_help(&verb_import, import_help);
			return EXIT_OK;
		case ARG_FROM:
			if (strcmp(optarg, "service") != 0 && strcmp(optarg, "csv") != 0)
				return usage_error("import", "--from: '%s' is not service or csv", optarg);
			from = optarg;
			break;
		case ARG_PGPASS: pgpass = optarg; break;
		case ARG_TYPE: type = optarg; break;
		case ARG_REGION: region = *optarg ? optarg : NULL; break;
		case ARG_DRY_RUN: dry_run = true; break;
		case ARG_REPLACE: replace = true; break;
		default:
			return option_error("import", c, argv);
		}
	}
	if (!from)
		return usage_error("import", "--from service or --from csv is required");
	r = verb_begin(&verb_import, ctx, argc, argv);
	if (r)
		return r;
	file = argv[optind];
	if (pgpass && strcmp(from, "service") != 0)
		return usage_error("import", "--pgpass goes with --from service");
	if (strcmp(file, "-") == 0 && in_repl_script)
		return usage_error("import", "'-' cannot be read in a script read from standard input");

	dbreg_error_clear(&err);
	if (dbreg_import_new(&im, &err) < 0)
		return fail(&err);
	if (dbreg_import_set_defaults(im, type, region, &err) < 0) {
		r = usage_error("import", "%s", err.message);
		goto out;
	}
	r = connect_registry(ctx);
	if (r)
		goto out;
	if (strcmp(from, "service") == 0)
		r = dbreg_import_read_service(im, ctx, file, pgpass, &err);
	else
		r = dbreg_import_read_csv(im, file, &err);
	for (size_t i = 0; i < dbreg_import_warning_count(im); i++)
		log_warning("%s", dbreg_import_warning(im, i));
	if (r < 0) {
		r = fail(&err);
		goto out;
	}
	n = dbreg_import_count(im);
	if (n == 0) {
		log_warning("%s holds no connections; nothing to import", strcmp(file, "-") == 0 ? "stdin" : file);
		r = EXIT_OK;
		goto out;
	}
	if (dbreg_import_run(ctx, im, (replace ? DBREG_WRITE_REPLACE : 0) | (dry_run ? DBREG_WRITE_DRY_RUN : 0),
	                     &rows, &err) < 0) {
		r = fail(&err);
		goto out;
	}
	if (dry_run) {
		out_line("dry run: would register %zu connection%s as:", n, n == 1 ? "" : "s");
		out_conn_list(stdout, OUT_TABLE, rows, false);
	} else {
		/* In the file's order, as register says it. */
		for (size_t i = 0; i < n; i++) {
			const char *name = dbreg_import_name(im, i), *id = NULL;

			for (size_t j = 0; j < dbreg_conn_list_count(rows) && !id; j++) {
				const struct dbreg_conn *row = dbreg_conn_list_at(rows, j);

				if (strcmp(dbreg_conn_get(row, DBREG_F_CONNECTION_NAME), name) == 0)
					id = dbreg_conn_get(row, DBREG_F_ID);
			}
			out_line("%s %s (id %s)", dbreg_import_revived(im, i) ? "revived" : "registered", name, id ? id : "?");
		}
	}
	r = EXIT_OK;
out:
	dbreg_conn_list_free(rows);
	dbreg_import_free(im);
	return r;
}

const struct verb verb_import = {
	.name = "import",
	.run = run_import,
	.summary = "register the connections of a service file or a CSV, all or none",
	.usage = "(--from service FILE [--pgpass FILE] | --from csv FILE) [OPTIONS]",
	.registry_writer = true,
	.options = import_options,
	.min_args = 1, .max_args = 1, .arg_name = "a FILE to import",
	.registry = VERB_REGISTRY_SELF,  /* once the file is read */
};
