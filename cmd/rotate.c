/* rotate.c — dbreg rotate-key: every stored password into the current key and the registry's format. */
#include <getopt.h>
#include <string.h>

#include "dbreg-cmd.h"

enum { ARG_DRY_RUN = 0x100, ARG_TO, ARG_SKIP_UNDECRYPTABLE };

static const struct option rotate_options[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "format", required_argument, NULL, 'o' },
	{ "dry-run", no_argument, NULL, ARG_DRY_RUN },
	{ "to", required_argument, NULL, ARG_TO },
	{ "skip-undecryptable", no_argument, NULL, ARG_SKIP_UNDECRYPTABLE },
	{},
};

/* "12 from key 3f9a01bc, 3 from fernet, 40 already current" */
static void print_counts(const struct dbreg_rotation *r)
{
	long n;

	printf("%s%s: ", dbreg_rotation_dry_run(r) ? "would rotate into " : "rotated into ", dbreg_rotation_format(r));
	for (size_t i = 0; i < dbreg_rotation_source_count(r); i++) {
		const char *label = dbreg_rotation_source(r, i, &n);

		printf("%ld from %s%s, ", n, strcmp(label, "fernet") == 0 || strcmp(label, "v1") == 0 ? "" : "key ", label);
	}
	printf("%ld already current\n", dbreg_rotation_already_current(r));
	for (size_t i = 0; i < dbreg_rotation_skipped_count(r); i++) {
		fputs("skipped (does not decrypt): ", stdout);
		out_fputs_safe(dbreg_rotation_skipped(r, i), stdout);
		putchar('\n');
	}
}

static void print_json(const struct dbreg_rotation *r)
{
	json_t *from = json_object(), *skipped = json_array();
	long n;

	for (size_t i = 0; i < dbreg_rotation_source_count(r); i++) {
		const char *label = dbreg_rotation_source(r, i, &n);

		json_object_set_new(from, label, json_integer(n));
	}
	for (size_t i = 0; i < dbreg_rotation_skipped_count(r); i++)
		json_array_append_new(skipped, json_string(dbreg_rotation_skipped(r, i)));
	json_t *j = json_pack("{s:b, s:s, s:o, s:I, s:o}", "dry_run", dbreg_rotation_dry_run(r), "format",
	                      dbreg_rotation_format(r), "from", from, "already_current",
	                      (json_int_t)dbreg_rotation_already_current(r), "skipped", skipped);
	out_json_print(stdout, j);
	json_decref(j);
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
			return option_error("rotate-key", c, argv);
		}
	}
	rc = verb_begin(&verb_rotate_key, ctx, argc, argv);
	if (rc)
		return rc;
	dbreg_error_clear(&err);
	if (dbreg_rotate_key(ctx, to, flags, &r, &err) < 0)
		return fail(&err);
	if (fmt == OUT_JSON)
		print_json(r);
	else
		print_counts(r);
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
