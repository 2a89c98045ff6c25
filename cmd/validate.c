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
	{},
};

static const char *severity_name(enum dbreg_severity s)
{
	return s == DBREG_SEV_ERROR ? "error" : "warning";
}

static void print_text(FILE *f, const struct dbreg_findings *l, size_t errors, size_t warnings)
{
	for (size_t i = 0; i < dbreg_findings_count(l); i++) {
		const struct dbreg_finding *x = dbreg_findings_at(l, i);
		const char *c = color(x->severity == DBREG_SEV_ERROR ? C_RED : C_YELLOW);

		size_t n = dbreg_findings_connection_count(l, i);

		fprintf(f, "%s%-7s%s %s: ", c, severity_name(x->severity), *c ? color(C_RESET) : "", x->code);
		if (n) {
			fputc('[', f);
			for (size_t j = 0; j < n; j++) {
				if (j)
					fputs(", ", f);
				/* A name as the registry holds it may carry anything. */
				out_fputs_safe(dbreg_findings_connection(l, i, j), f);
			}
			fputs("] ", f);
		}
		out_fputs_safe(x->message, f);
		fputc('\n', f);
	}
	fprintf(f, "%zu error%s, %zu warning%s\n", errors, errors == 1 ? "" : "s", warnings, warnings == 1 ? "" : "s");
}

static void print_json(FILE *f, const struct dbreg_findings *l, bool ok, size_t errors, size_t warnings)
{
	json_t *findings = json_array(), *root;

	for (size_t i = 0; i < dbreg_findings_count(l); i++) {
		const struct dbreg_finding *x = dbreg_findings_at(l, i);
		size_t n = dbreg_findings_connection_count(l, i);
		json_t *o = json_pack("{s:s, s:s, s:s, s:o}",
			"severity", severity_name(x->severity),
			"code", x->code,
			"message", x->message,
			"connection_name", out_json_text(x->connection_name));

		/* Only a finding about several connections has the list: the others keep their
		 * four keys. */
		if (o && n > 1 && !x->connection_name) {
			json_t *names = json_array();

			for (size_t j = 0; j < n; j++)
				json_array_append_new(names, out_json_text(dbreg_findings_connection(l, i, j)));
			json_object_set_new(o, "connection_names", names);
		}
		json_array_append_new(findings, o);
	}
	root = json_pack("{s:b, s:I, s:I, s:o}", "ok", ok, "errors", (json_int_t)errors, "warnings",
	                 (json_int_t)warnings, "findings", findings);
	out_json_print(f, root);
	json_decref(root);
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
			          "  -h, --help         show this help\n");
			return EXIT_OK;
		case ARG_OFFLINE: offline = true; break;
		case ARG_STRICT: strict = true; break;
		case 'o':
			if (verb_format(&verb_validate_config, optarg, &fmt) < 0)
				return EXIT_USAGE;
			break;
		default:
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
	if (fmt == OUT_JSON)
		print_json(stdout, l, ok, errors, warnings);
	else
		print_text(stdout, l, errors, warnings);
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
