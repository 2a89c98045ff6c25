/* deregister.c — dbreg deregister: soft delete a connection, or purge it. */
#include <getopt.h>

#include "dbreg-cmd.h"

enum { ARG_PURGE = 0x100 };
static const struct option deregister_options[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "purge", no_argument, NULL, ARG_PURGE },
	{},
};

static int run_deregister(struct dbreg_ctx *ctx, int argc, char **argv)
{
	struct dbreg_error err;
	bool purge = false;
	long tenants = 0;
	int c, r;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", deregister_options, NULL)) != -1) {
		switch (c) {
		case 'h':
			verb_help(&verb_deregister,
			          "  --purge      delete the row instead of marking it deleted\n"
			          "  -h, --help   show this help\n");
			return EXIT_OK;
		case ARG_PURGE: purge = true; break;
		default:
			return option_error("deregister", c, argv);
		}
	}
	r = verb_begin(&verb_deregister, ctx, argc, argv);
	if (r)
		return r;
	dbreg_error_clear(&err);
	if (dbreg_deregister(ctx, argv[optind], purge, &tenants, &err) < 0)
		return fail(&err);
	if (tenants > 0)
		log_warning("%ld tenant%s still point at '%s'", tenants, tenants == 1 ? "" : "s", argv[optind]);
	out_line("%s %s", purge ? "purged" : "deregistered", argv[optind]);
	return EXIT_OK;
}

const struct verb verb_deregister = {
	.name = "deregister",
	.run = run_deregister,
	.summary = "remove a connection (soft delete; --purge deletes the row)",
	.usage = "NAME [--purge]",
	.registry_writer = true,
	.options = deregister_options,
	.takes_names = true,
	.min_args = 1, .max_args = 1, .arg_name = "a connection NAME",
	.registry = VERB_REGISTRY_CONNECT,
};
