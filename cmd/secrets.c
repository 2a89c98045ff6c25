/* secrets.c — dbreg encrypt-password and dbreg generate-key: the secrets side. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dbreg-cmd.h"

enum { ARG_PASSWORD_STDIN = 0x100, ARG_PASSWORD_FORMAT };
static const struct option encrypt_options[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "password-stdin", no_argument, NULL, ARG_PASSWORD_STDIN },
	{ "password-format", required_argument, NULL, ARG_PASSWORD_FORMAT },
	{},
};

/* The format to write: the one given, else the registry's when there is one to ask, else
 * dbreg's.  A registry that cannot be asked is said, not hidden: the text may not suit it. */
static const char *encrypt_format(struct dbreg_ctx *ctx, const char *given)
{
	struct dbreg_error err;

	if (given)
		return given;
	if (!getenv("ADMIN_DATABASE_URL"))
		return "dbreg";
	dbreg_error_clear(&err);
	if (dbreg_ctx_connect(ctx, NULL, &err) < 0) {
		log_warning("cannot read the registry's password format (%s); writing dbreg's"
		            " (see --password-format)", err.message);
		return "dbreg";
	}
	return dbreg_password_format(ctx);
}

static int run_encrypt_password(struct dbreg_ctx *ctx, int argc, char **argv)
{
	enum pw_source src = PW_PROMPT;
	struct dbreg_error err;
	const char *arg_password_format = NULL, *format;
	char *pw, *stored;
	size_t len;
	int c, r;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", encrypt_options, NULL)) != -1) {
		switch (c) {
		case 'h':
			verb_help(&verb_encrypt_password,
			          "      --password-stdin          read the password from the first line of standard input\n"
			          "      --password-format FORMAT  dbreg or fernet (default: the registry's, else dbreg)\n"
			          "  -h, --help                    show this help\n");
			return EXIT_OK;
		case ARG_PASSWORD_STDIN: src = PW_STDIN; break;
		case ARG_PASSWORD_FORMAT: arg_password_format = optarg; break;
		default:
			return option_error("encrypt-password", c, argv);
		}
	}
	if (optind < argc)
		return usage_error("encrypt-password", "unexpected argument '%s'", argv[optind]);
	if (arg_password_format && strcmp(arg_password_format, "dbreg") != 0 && strcmp(arg_password_format, "fernet") != 0)
		return usage_error("encrypt-password", "--password-format: unknown format '%s' (known: dbreg, fernet)",
		                   arg_password_format);
	if (src == PW_STDIN && in_repl_script)
		return usage_error("encrypt-password", "--password-stdin cannot be used in a script read from standard input");
	format = encrypt_format(ctx, arg_password_format);
	dbreg_error_clear(&err);
	/* The key (or passphrase) before the password is typed. */
	if (dbreg_ctx_load_format_keys(ctx, format, &err) < 0)
		return fail(&err);
	r = password_read("encrypt-password", src, true, &pw, &len);
	if (r)
		return r;
	r = dbreg_encrypt_password(ctx, format, pw, len, &stored, &err);
	password_free(pw);
	if (r < 0)
		return fail(&err);
	puts(stored);
	free(stored);
	return EXIT_OK;
}

/* Writes text to path with mode 0600, whole or not at all: a new file, or with
 * force a replacement. */
static int write_key_file(const char *path, const char *text, bool force)
{
	struct out_file o;

	if (!force && access(path, F_OK) == 0) {
		log_error("%s already exists; use --force to replace it", path);
		return EXIT_NEGATIVE;
	}
	if (out_file_open(&o, path, 0600) < 0)
		return EXIT_NEGATIVE;
	/* Past stdio's buffers, which nobody wipes. */
	if (write(fileno(o.f), text, strlen(text)) != (ssize_t)strlen(text) || write(fileno(o.f), "\n", 1) != 1) {
		log_error("cannot write %s: %s", path, strerror(errno));
		out_file_abort(&o);
		return EXIT_NEGATIVE;
	}
	return out_file_commit(&o, force) < 0 ? EXIT_NEGATIVE : EXIT_OK;
}

enum { ARG_OUTPUT = 0x100, ARG_FORCE };
static const struct option generate_options[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "output", required_argument, NULL, ARG_OUTPUT },
	{ "force", no_argument, NULL, ARG_FORCE },
	{},
};

static int run_generate_key(struct dbreg_ctx *ctx, int argc, char **argv)
{
	const char *output = NULL;
	struct dbreg_error err;
	bool force = false;
	char *key;
	int c, r;

	(void)ctx;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", generate_options, NULL)) != -1) {
		switch (c) {
		case 'h':
			verb_help(&verb_generate_key,
			          "  --output FILE   write the key to a new file, mode 0600, instead of stdout\n"
			          "  --force         replace FILE if it exists\n"
			          "  -h, --help      show this help\n");
			return EXIT_OK;
		case ARG_OUTPUT: output = optarg; break;
		case ARG_FORCE: force = true; break;
		default:
			return option_error("generate-key", c, argv);
		}
	}
	if (optind < argc)
		return usage_error("generate-key", "unexpected argument '%s'", argv[optind]);
	if (force && !output)
		return usage_error("generate-key", "--force needs --output FILE");
	dbreg_error_clear(&err);
	if (dbreg_key_generate(&key, &err) < 0)
		return fail(&err);
	if (output) {
		r = write_key_file(output, key, force);
		if (r == EXIT_OK)
			fprintf(stderr, "wrote a new key to %s\n", output);
	} else {
		puts(key);
		r = EXIT_OK;
	}
	dbreg_secret_free(key);
	return r;
}

const struct verb verb_encrypt_password = {
	.name = "encrypt-password",
	.run = run_encrypt_password,
	.summary = "encrypt a password and print its stored text",
	.usage = "[--password-stdin] [--password-format dbreg|fernet]",
	.options = encrypt_options,
};

const struct verb verb_generate_key = {
	.name = "generate-key",
	.run = run_generate_key,
	.summary = "print a new encryption key, or write it to a new file",
	.usage = "[--output FILE [--force]]",
	.options = generate_options,
};
