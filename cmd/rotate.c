/* rotate.c — dbreg rotate-key: every stored password into the current key and the registry's format. */
#include <getopt.h>
#include <string.h>

#include "dbreg-cmd.h"

enum { ARG_DRY_RUN = 0x100, ARG_TO, ARG_SKIP_UNDECRYPTABLE };

static const struct option rotate_options[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "format", required_argument, NULL, 'o' },
	OUT_JSON_OPTIONS,
	{ "dry-run", no_argument, NULL, ARG_DRY_RUN },
	{ "to", required_argument, NULL, ARG_TO },
	{ "skip-undecryptable", no_argument, NULL, ARG_SKIP_UNDECRYPTABLE },
	{},
};

enum { K_LINE, K_DRY_RUN, K_FORMAT, K_FROM, K_CURRENT, K_SKIPPED, K__COUNT };
static const struct out_column rotation_columns[K__COUNT] = {
	[K_LINE] = { .flags = OUT_C_TEXT },
	[K_DRY_RUN] = { .key = "dry_run", .kind = OUT_K_BOOL },
	[K_FORMAT] = { .key = "format" },
	[K_FROM] = { .key = "from", .kind = OUT_K_JSON },
	[K_CURRENT] = { .key = "already_current", .kind = OUT_K_INT },
	[K_SKIPPED] = { .key = "skipped", .kind = OUT_K_JSON },
};
/* The text's line for each password left as it was. */
static const struct out_column skipped_columns[] = {
	{ .flags = OUT_C_TEXT },
};

/* "rotated into dbreg: 12 from key 3f9a01bc, 3 from fernet, 40 already current", then each
 * one skipped; JSON the counts by source. */
static void print_report(enum out_format fmt, const struct dbreg_rotation *r)
{
	json_t *from = json_object(), *skipped = json_array();
	char *line = NULL, *from_text, *skipped_text, current[32];
	const char *v[K__COUNT];
	size_t len;
	FILE *f = open_memstream(&line, &len);
	struct out_doc *d;
	long n;

	if (!f)
		abort();
	fprintf(f, "%s%s: ", dbreg_rotation_dry_run(r) ? "would rotate into " : "rotated into ", dbreg_rotation_format(r));
	for (size_t i = 0; i < dbreg_rotation_source_count(r); i++) {
		const char *label = dbreg_rotation_source(r, i, &n);

		fprintf(f, "%ld from %s%s, ", n, strcmp(label, "fernet") == 0 || strcmp(label, "v1") == 0 ? "" : "key ", label);
		json_object_set_new(from, label, json_integer(n));
	}
	fprintf(f, "%ld already current", dbreg_rotation_already_current(r));
	fclose(f);
	for (size_t i = 0; i < dbreg_rotation_skipped_count(r); i++)
		json_array_append_new(skipped, out_json_text(dbreg_rotation_skipped(r, i)));
	from_text = json_dumps(from, JSON_COMPACT | JSON_PRESERVE_ORDER);
	skipped_text = json_dumps(skipped, JSON_COMPACT);
	snprintf(current, sizeof(current), "%ld", dbreg_rotation_already_current(r));
	v[K_LINE] = line;
	v[K_DRY_RUN] = dbreg_rotation_dry_run(r) ? "true" : "false";
	v[K_FORMAT] = dbreg_rotation_format(r);
	v[K_FROM] = from_text;
	v[K_CURRENT] = current;
	v[K_SKIPPED] = skipped_text;
	d = out_doc_new(stdout, fmt, OUT_DOC_SINGLE);
	out_doc_section(d, NULL, rotation_columns, K__COUNT);
	out_doc_row(d, v, NULL, NULL);
	out_doc_section(d, NULL, skipped_columns, ELEMENTSOF(skipped_columns));
	for (size_t i = 0; i < dbreg_rotation_skipped_count(r); i++) {
		char *text = NULL;
		const char *sv[1];

		if (asprintf(&text, "skipped (does not decrypt): %s", dbreg_rotation_skipped(r, i)) < 0)
			continue;
		sv[0] = text;
		out_doc_row(d, sv, NULL, NULL);
		free(text);
	}
	out_doc_end(d);
	json_decref(from);
	json_decref(skipped);
	free(from_text);
	free(skipped_text);
	free(line);
}

static int run_rotate_key(struct dbreg_ctx *ctx, int argc, char **argv)
{
	enum out_format fmt = OUT_TEXT;
	struct dbreg_rotation *r = NULL;
	const char *to = NULL;
	struct dbreg_error err;
	unsigned flags = 0;
	int c, rc;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":ho:", rotate_options, NULL)) != -1) {
		switch (c) {
		case 'h':
			verb_help(&verb_rotate_key,
			          "      --dry-run              say what would be re-encrypted, write nothing\n"
			          "      --to FORMAT            dbreg or fernet, which then becomes the registry's\n"
			          "      --skip-undecryptable   leave (and list) passwords that do not decrypt\n"
			          "  -o, --format FMT           text (default) or json\n"
			          OUT_JSON_HELP
			          "  -h, --help                 show this help\n");
			return EXIT_OK;
		case 'o':
			if (verb_format(&verb_rotate_key, optarg, &fmt) < 0)
				return EXIT_USAGE;
			break;
		case ARG_DRY_RUN: flags |= DBREG_ROTATE_DRY_RUN; break;
		case ARG_SKIP_UNDECRYPTABLE: flags |= DBREG_ROTATE_SKIP_UNDECRYPTABLE; break;
		case ARG_TO:
			if (strcmp(optarg, "dbreg") != 0 && strcmp(optarg, "fernet") != 0)
				return usage_error("rotate-key", "--to: unknown format '%s' (known: dbreg, fernet)", optarg);
			to = optarg;
			break;
		default:
			if (out_option(c))
				break;
			return option_error("rotate-key", c, argv);
		}
	}
	rc = verb_begin(&verb_rotate_key, ctx, argc, argv);
	if (rc)
		return rc;
	dbreg_error_clear(&err);
	if (dbreg_rotate_key(ctx, to, flags, &r, &err) < 0)
		return fail(&err);
	print_report(fmt, r);
	dbreg_rotation_free(r);
	return EXIT_OK;
}

const struct verb verb_rotate_key = {
	.name = "rotate-key",
	.run = run_rotate_key,
	.summary = "re-encrypt every stored password with the current key, in one transaction",
	.usage = "[--dry-run] [--to dbreg|fernet] [--skip-undecryptable] [-o text|json]",
	.registry_writer = true,
	.options = rotate_options,
	.formats = OUT_TEXT | OUT_JSON,
	.registry = VERB_REGISTRY_CONNECT,
};
