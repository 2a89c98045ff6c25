/* init.c — dbreg init: create or upgrade the registry schema. */
#include <getopt.h>
#include <string.h>

#include "dbreg-cmd.h"

enum { ARG_PASSWORD_FORMAT = 0x100 };

static const struct option init_options[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "password-format", required_argument, NULL, ARG_PASSWORD_FORMAT },
	{},
};

static int run_init(struct dbreg_ctx *ctx, int argc, char **argv)
{
	struct dbreg_error err;
	const char *arg_password_format = NULL;
	int c, applied = 0, version = 0, changed = 0;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", init_options, NULL)) != -1) {
		switch (c) {
		case 'h':
			verb_help(&verb_init,
			          "      --password-format FORMAT  what passwords are written in: dbreg or fernet\n"
			          "  -h, --help                    show this help\n");
			return EXIT_OK;
		case ARG_PASSWORD_FORMAT:
			arg_password_format = optarg;
			break;
		default:
			return option_error("init", c, argv);
		}
	}
	if (verb_begin(&verb_init, ctx, argc, argv))
		return EXIT_USAGE;
	if (arg_password_format && strcmp(arg_password_format, "dbreg") != 0 && strcmp(arg_password_format, "fernet") != 0)
		return usage_error("init", "--password-format: unknown format '%s' (known: dbreg, fernet)",
		                   arg_password_format);
	dbreg_error_clear(&err);
	if (dbreg_init(ctx, &applied, &version, &err) < 0)
		return fail(&err);
	if (dbreg_init_report(ctx)) {
		out_line("%s", dbreg_init_report(ctx));
		out_line("registry schema at version %d", version);
	} else if (applied == 0)
		out_line("registry schema already at version %d; nothing to do", version);
	else
		out_line("applied %d migration%s; registry schema at version %d", applied, applied == 1 ? "" : "s", version);
	if (!arg_password_format)
		return EXIT_OK;
	if (dbreg_set_password_format(ctx, arg_password_format, &changed, &err) < 0)
		return fail(&err);
	printf(changed ? "password format set to %s\n" : "password format already %s\n", arg_password_format);
	return EXIT_OK;
}

const struct verb verb_init = {
	.name = "init",
	.run = run_init,
	.summary = "create or upgrade the registry schema",
	.usage = "[--password-format dbreg|fernet]",
	.registry_writer = true,
	.options = init_options,
	.registry = VERB_REGISTRY_SELF,  /* dbreg_init connects, and creates what is missing */
};
