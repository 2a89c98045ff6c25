/* rotpw.c — dbreg rotate-password: a new password for one connection, on its server and in the registry. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "dbreg-cmd.h"

enum { ARG_LENGTH = 0x100, ARG_DRY_RUN, ARG_FORCE };

static const struct option rotpw_options[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "length", required_argument, NULL, ARG_LENGTH },
	{ "dry-run", no_argument, NULL, ARG_DRY_RUN },
	{ "force", no_argument, NULL, ARG_FORCE },
	{},
};

static int run_rotate_password(struct dbreg_ctx *ctx, int argc, char **argv)
{
	struct dbreg_error err;
	unsigned flags = 0;
	int c, rc, length = 0, resumed = DBREG_ROTPW_FRESH;
	char *end;
	long v;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", rotpw_options, NULL)) != -1) {
		switch (c) {
		case 'h':
			verb_help(&verb_rotate_password,
			          "      --length N   characters in the new password (default 32, 16..127)\n"
			          "      --dry-run    check and log in, change nothing\n"
			          "      --force      rotate even when other connections log in as the same user\n"
			          "  -h, --help       show this help\n");
			return EXIT_OK;
		case ARG_LENGTH:
			v = strtol(optarg, &end, 10);
			if (!*optarg || *end || v < DBREG_ROTPW_MIN_LENGTH || v > DBREG_ROTPW_MAX_LENGTH)
				return usage_error("rotate-password", "--length: '%s' is not a number in %d..%d", optarg,
				                   DBREG_ROTPW_MIN_LENGTH, DBREG_ROTPW_MAX_LENGTH);
			length = (int)v;
			break;
		case ARG_DRY_RUN: flags |= DBREG_ROTPW_DRY_RUN; break;
		case ARG_FORCE: flags |= DBREG_ROTPW_FORCE; break;
		default:
			return option_error("rotate-password", c, argv);
		}
	}
	rc = verb_begin(&verb_rotate_password, ctx, argc, argv);
	if (rc)
		return rc;
	dbreg_error_clear(&err);
	if (dbreg_rotate_password(ctx, argv[optind], length, flags, &resumed, &err) < 0)
		return fail(&err);
	/* What an earlier run left, on stderr: stdout says only what this one did. */
	if (resumed == DBREG_ROTPW_COMPLETED)
		log_warning("an unfinished rotation was found: the server had its password, which is %s",
		            flags & DBREG_ROTPW_DRY_RUN ? "what would be stored" : "now stored");
	else if (resumed == DBREG_ROTPW_DISCARDED)
		log_warning("an unfinished rotation was found: the server never took its password, so it was %s",
		            flags & DBREG_ROTPW_DRY_RUN ? "left (a real run discards it)" : "discarded");
	out_line("%s %s", flags & DBREG_ROTPW_DRY_RUN ? "would rotate" : "rotated", argv[optind]);
	return EXIT_OK;
}

const struct verb verb_rotate_password = {
	.name = "rotate-password",
	.run = run_rotate_password,
	.summary = "set a new random password on a connection's server and in the registry, crash-safe",
	.usage = "NAME [--length N] [--dry-run] [--force]",
	.registry_writer = true,
	.options = rotpw_options,
	.takes_names = true,
	.min_args = 1, .max_args = 1, .arg_name = "a connection NAME",
	.registry = VERB_REGISTRY_CONNECT,
};
