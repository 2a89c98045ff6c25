/* init.c — dbreg init: create or upgrade the registry schema. */
#include <getopt.h>

#include "dbreg-cmd.h"

static const struct option init_options[] = {
	{ "help", no_argument, NULL, 'h' },
	{},
};

static int run_init(struct dbreg_ctx *ctx, int argc, char **argv)
{
	struct dbreg_error err;
	int c, applied = 0, version = 0;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", init_options, NULL)) != -1) {
		if (c == 'h') {
			verb_help(&verb_init, "  -h, --help   show this help\n");
			return EXIT_OK;
		}
		return option_error("init", c, argv);
	}
	if (optind < argc)
		return usage_error("init", "unexpected argument '%s'", argv[optind]);
	dbreg_error_clear(&err);
	if (dbreg_init(ctx, &applied, &version, &err) < 0)
		return fail(&err);
	if (dbreg_init_report(ctx)) {
		out_fputs_safe(dbreg_init_report(ctx), stdout);
		printf("\nregistry schema at version %d\n", version);
	} else if (applied == 0)
		printf("registry schema already at version %d; nothing to do\n", version);
	else
		printf("applied %d migration%s; registry schema at version %d\n", applied, applied == 1 ? "" : "s",
		       version);
	return EXIT_OK;
}

const struct verb verb_init = {
	.name = "init",
	.run = run_init,
	.summary = "create or upgrade the registry schema",
	.usage = "[-h]",
	.registry_writer = true,
	.options = init_options,
};
