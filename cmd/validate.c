/* validate.c — dbreg validate-config: the CI gate; every finding printed, exit 1 when the run fails. */
#include <getopt.h>
#include <string.h>

#include "dbreg-cmd.h"

enum { ARG_OFFLINE = 0x100, ARG_STRICT };
static const struct option validate_options[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "offline", no_argument, NULL, ARG_OFFLINE },
	{ "strict", no_argument, NULL, ARG_STRICT },
	{ "format", required_argument, NULL, 'o' },
	OUT_JSON_OPTIONS,
	{},
};

enum { F_SEVERITY, F_CODE, F_CODE_SHOWN, F_NAMES_SHOWN, F_MESSAGE, F_NAME, F_NAMES, F__COUNT };
static const struct out_column finding_columns[F__COUNT] = {
	[F_SEVERITY] = { .key = "severity", .flags = OUT_C_TEXT, .width = 7 },
	[F_CODE] = { .key = "code" },
	[F_CODE_SHOWN] = { .flags = OUT_C_TEXT },                    /* "conn-duplicate:" */
	[F_NAMES_SHOWN] = { .flags = OUT_C_TEXT },                   /* "[dup-a, dup-b]" */
	[F_MESSAGE] = { .key = "message", .flags = OUT_C_TEXT },
	[F_NAME] = { .key = "connection_name" },
	/* Only a finding about several connections has the list: the others keep their four keys. */
	[F_NAMES] = { .key = "connection_names", .kind = OUT_K_JSON, .flags = OUT_C_OMIT_NULL },
};

static void add_finding(struct out_doc *d, const struct dbreg_findings *l, size_t i)
{
	const struct dbreg_finding *x = dbreg_findings_at(l, i);
	size_t n = dbreg_findings_connection_count(l, i);
	const char *v[F__COUNT] = { NULL }, *colors[F__COUNT] = { NULL };
	char *code = NULL, *names = NULL, *list = NULL;
	json_t *a = json_array();
	size_t len;
	FILE *f;

	v[F_SEVERITY] = x->severity == DBREG_SEV_ERROR ? "error" : "warning";
	colors[F_SEVERITY] = color(x->severity == DBREG_SEV_ERROR ? C_RED : C_YELLOW);
	v[F_CODE] = x->code;
	if (asprintf(&code, "%s:", x->code) < 0)
		code = NULL;
	v[F_CODE_SHOWN] = code;
	if (n && (f = open_memstream(&names, &len))) {
		fputc('[', f);
		for (size_t j = 0; j < n; j++) {
			fputs(j ? ", " : "", f);
			fputs(dbreg_findings_connection(l, i, j), f);
			json_array_append_new(a, out_json_text(dbreg_findings_connection(l, i, j)));
		}
		fputc(']', f);
		fclose(f);
		v[F_NAMES_SHOWN] = names;
	}
	v[F_MESSAGE] = x->message;
	v[F_NAME] = x->connection_name;
	if (n > 1 && !x->connection_name)
		v[F_NAMES] = list = json_dumps(a, JSON_COMPACT);
	out_doc_row(d, v, NULL, colors);
	json_decref(a);
	free(code);
	free(names);
	free(list);
}

static void print_report(FILE *f, enum out_format fmt, const struct dbreg_findings *l, bool ok, size_t errors,
                         size_t warnings)
{
	struct out_doc *d = out_doc_new(f, fmt, 0);
	char footer[100];

	out_doc_meta(d, "ok", json_boolean(ok));
	out_doc_meta(d, "errors", json_integer((json_int_t)errors));
	out_doc_meta(d, "warnings", json_integer((json_int_t)warnings));
	out_doc_section(d, "findings", finding_columns, F__COUNT);
	for (size_t i = 0; i < dbreg_findings_count(l); i++)
		add_finding(d, l, i);
	snprintf(footer, sizeof(footer), "%zu error%s, %zu warning%s", errors, errors == 1 ? "" : "s", warnings,
	         warnings == 1 ? "" : "s");
	out_doc_footer(d, footer, false);
	out_doc_end(d);
}

static int run_validate(struct dbreg_ctx *ctx, int argc, char **argv)
{
	enum out_format fmt = OUT_TEXT;
	struct dbreg_findings *l = NULL;
	struct dbreg_error err;
	size_t errors = 0, warnings = 0;
	bool offline = false, strict = false, ok;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":ho:", validate_options, NULL)) != -1) {
		switch (c) {
		case 'h':
			verb_help(&verb_validate_config,
			          "  --offline          only the checks that need no network (URL and keys)\n"
			          "  --strict           warnings fail too\n"
			          "  -o, --format FMT   text (default) or json\n"
			          OUT_JSON_HELP
			          "  -h, --help         show this help\n");
			return EXIT_OK;
		case ARG_OFFLINE: offline = true; break;
		case ARG_STRICT: strict = true; break;
		case 'o':
			if (verb_format(&verb_validate_config, optarg, &fmt) < 0)
				return EXIT_USAGE;
			break;
		default:
			if (out_option(c))
				break;
			return option_error("validate-config", c, argv);
		}
	}
	if (verb_begin(&verb_validate_config, ctx, argc, argv))
		return EXIT_USAGE;

	/* No connect_registry: a URL or registry it would refuse is what we report on. */
	dbreg_error_clear(&err);
	if (dbreg_validate(ctx, offline, &l, &err) < 0)
		return fail(&err);
	for (size_t i = 0; i < dbreg_findings_count(l); i++) {
		if (dbreg_findings_at(l, i)->severity == DBREG_SEV_ERROR)
			errors++;
		else
			warnings++;
	}
	ok = errors == 0 && !(strict && warnings > 0);
	print_report(stdout, fmt, l, ok, errors, warnings);
	dbreg_findings_free(l);
	return ok ? EXIT_OK : EXIT_NEGATIVE;
}

const struct verb verb_validate_config = {
	.name = "validate-config",
	.run = run_validate,
	.summary = "run every check CI wants before a deploy",
	.usage = "[--offline] [--strict] [-o text|json]",
	.options = validate_options,
	.formats = OUT_TEXT | OUT_JSON,
	.registry = VERB_REGISTRY_SELF,  /* a URL or registry it would refuse is what it reports on */
};
