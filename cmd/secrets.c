/* secrets.c — dbreg encrypt-password and dbreg generate-key: the secrets side. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "dbreg-cmd.h"

enum {
	ARG_PASSWORD_STDIN = 0x100,
	ARG_PASSWORD_FORMAT,
	ARG_FOR,
	/* The six target options, in the order of DBREG_BIND_*. */
	ARG_ID,
	ARG_HOST,
	ARG_PORT,
	ARG_DATABASE,
	ARG_USER,
	ARG_SSL_MODE,
};
static const struct option encrypt_options[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "password-stdin", no_argument, NULL, ARG_PASSWORD_STDIN },
	{ "password-format", required_argument, NULL, ARG_PASSWORD_FORMAT },
	{ "for", required_argument, NULL, ARG_FOR },
	{ "id", required_argument, NULL, ARG_ID },
	{ "host", required_argument, NULL, ARG_HOST },
	{ "port", required_argument, NULL, ARG_PORT },
	{ "database", required_argument, NULL, ARG_DATABASE },
	{ "user", required_argument, NULL, ARG_USER },
	{ "ssl-mode", required_argument, NULL, ARG_SSL_MODE },
	{},
};
static const char *const target_option[DBREG_BIND__COUNT] = {
	"--id", "--host", "--port", "--database", "--user", "--ssl-mode",
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

/* The target a dbreg password is bound to: the registered connection's, for --for. */
static int target_of(struct dbreg_ctx *ctx, const char *name, const char *target[DBREG_BIND__COUNT],
                     struct dbreg_conn_list **ret_row)
{
	static const enum dbreg_field fields[DBREG_BIND__COUNT] = {
		DBREG_F_ID, DBREG_F_HOST, DBREG_F_PORT, DBREG_F_DATABASE_NAME, DBREG_F_USERNAME, DBREG_F_SSL_MODE,
	};
	struct dbreg_error err;
	const struct dbreg_conn *c;

	dbreg_error_clear(&err);
	if (!getenv("ADMIN_DATABASE_URL")) {
		log_error("--for needs the registry: ADMIN_DATABASE_URL is not set");
		return EXIT_CONFIG;
	}
	if (dbreg_ctx_connect(ctx, NULL, &err) < 0 || dbreg_show(ctx, name, ret_row, &err) < 0)
		return fail(&err);
	c = dbreg_conn_list_at(*ret_row, 0);
	for (int i = 0; i < DBREG_BIND__COUNT; i++)
		target[i] = dbreg_conn_get(c, fields[i]);
	return EXIT_OK;
}

static int run_encrypt_password(struct dbreg_ctx *ctx, int argc, char **argv)
{
	enum pw_source src = PW_PROMPT;
	struct dbreg_error err;
	struct dbreg_conn_list *row = NULL;
	const char *arg_password_format = NULL, *arg_for = NULL, *format;
	const char *target[DBREG_BIND__COUNT] = { NULL };
	char *pw, *stored, id[40], shown[700];
	int c, r, given = 0;
	size_t len;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", encrypt_options, NULL)) != -1) {
		switch (c) {
		case 'h':
			verb_help(&verb_encrypt_password,
			          "      --password-stdin          read the password from the first line of standard input\n"
			          "      --password-format FORMAT  dbreg or fernet (default: the registry's, else dbreg)\n"
			          "      --for NAME                bind it to the registered connection NAME (its id and target)\n"
			          "      --id UUID --host HOST --port PORT --database DB --user USER --ssl-mode MODE\n"
			          "                                bind it to this row id and target (all six)\n"
			          "  -h, --help                    show this help\n");
			return EXIT_OK;
		case ARG_PASSWORD_STDIN: src = PW_STDIN; break;
		case ARG_PASSWORD_FORMAT: arg_password_format = optarg; break;
		case ARG_FOR: arg_for = optarg; break;
		case ARG_ID: case ARG_HOST: case ARG_PORT: case ARG_DATABASE: case ARG_USER: case ARG_SSL_MODE:
			given += !target[c - ARG_ID];
			target[c - ARG_ID] = optarg;
			break;
		default:
			return option_error("encrypt-password", c, argv);
		}
	}
	if (verb_begin(&verb_encrypt_password, ctx, argc, argv))
		return EXIT_USAGE;
	if (arg_password_format && strcmp(arg_password_format, "dbreg") != 0 && strcmp(arg_password_format, "fernet") != 0)
		return usage_error("encrypt-password", "--password-format: unknown format '%s' (known: dbreg, fernet)",
		                   arg_password_format);
	if (src == PW_STDIN && in_repl_script)
		return usage_error("encrypt-password", "--password-stdin cannot be used in a script read from standard input");
	if (arg_for && given)
		return usage_error("encrypt-password", "--for and %s exclude each other", target_option[0]);
	if (given && given < DBREG_BIND__COUNT)
		for (int i = 0; i < DBREG_BIND__COUNT; i++)
			if (!target[i])
				return usage_error("encrypt-password", "%s is missing: a dbreg password is bound to all six of "
				                   "--id, --host, --port, --database, --user and --ssl-mode", target_option[i]);
	if (target[DBREG_BIND_ID]) {
		/* The id as the registry prints a uuid: lower case. */
		if (!dbreg_is_canonical_uuid(target[DBREG_BIND_ID]))
			return usage_error("encrypt-password", "--id: '%s' is not a UUID", target[DBREG_BIND_ID]);
		for (size_t i = 0; i < 36; i++)
			id[i] = (char)(target[DBREG_BIND_ID][i] >= 'A' && target[DBREG_BIND_ID][i] <= 'F'
			               ? target[DBREG_BIND_ID][i] + 32 : target[DBREG_BIND_ID][i]);
		id[36] = '\0';
		target[DBREG_BIND_ID] = id;
	}
	format = encrypt_format(ctx, arg_password_format);
	if (strcmp(format, "dbreg") == 0 && !arg_for && !given)
		return usage_error("encrypt-password", "a dbreg password is bound to its row: give --for NAME, or --id, "
		                   "--host, --port, --database, --user and --ssl-mode");
	if (arg_for && (r = target_of(ctx, arg_for, target, &row)) != EXIT_OK)
		return r;
	dbreg_error_clear(&err);
	/* The key (or passphrase) before the password is typed. */
	if (dbreg_ctx_load_format_keys(ctx, format, &err) < 0) {
		dbreg_conn_list_free(row);
		return fail(&err);
	}
	if (arg_for || given)
		password_target(shown, sizeof(shown), target[DBREG_BIND_USER], target[DBREG_BIND_HOST],
		                target[DBREG_BIND_PORT], target[DBREG_BIND_DATABASE]);
	r = password_read("encrypt-password", arg_for || given ? shown : NULL, src, true, &pw, &len);
	if (r) {
		dbreg_conn_list_free(row);
		return r;
	}
	r = dbreg_encrypt_password(ctx, format, arg_for || given ? target : NULL, pw, len, &stored, &err);
	password_free(pw);
	dbreg_conn_list_free(row);
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

	const char *slash = strrchr(path, '/');

	if (!force && access(path, F_OK) == 0) {
		log_error("%s already exists; use --force to replace it", path);
		return EXIT_NEGATIVE;
	}
	/* A fresh account has no ~/.config/dbreg: make it, private, as a key's home should be. */
	if (slash && slash != path) {
		char *dir = strndup(path, (size_t)(slash - path));

		if (!dir || out_make_dirs(dir, 0700) < 0) {
			log_error("cannot create the directory %s: %s", dir ? dir : path, strerror(errno));
			free(dir);
			return EXIT_NEGATIVE;
		}
		free(dir);
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
	char id[DBREG_KEY_ID_LEN + 1] = "?";
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
	if (verb_begin(&verb_generate_key, NULL, argc, argv))
		return EXIT_USAGE;
	if (force && !output)
		return usage_error("generate-key", "--force needs --output FILE");
	dbreg_error_clear(&err);
	if (dbreg_key_generate(&key, &err) < 0)
		return fail(&err);
	{
		/* Its id (what stored passwords and validate-config name it by), never the key, on stderr. */
		unsigned char raw[DBREG_KEY_BYTES];

		if (dbreg_key_parse(key, raw, &err) == 0)
			dbreg_key_id(raw, id);
		sodium_memzero(raw, sizeof(raw));
	}
	if (output) {
		r = write_key_file(output, key, force);
		if (r == EXIT_OK)
			fprintf(stderr, "wrote a new key to %s (key id %s)\n", output, id);
	} else {
		puts(key);
		fprintf(stderr, "key id %s\n", id);
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
	.registry = VERB_REGISTRY_SELF,  /* for --for, and for the registry's password format */
};

const struct verb verb_generate_key = {
	.name = "generate-key",
	.run = run_generate_key,
	.summary = "print a new encryption key, or write it to a new file",
	.usage = "[--output FILE [--force]]",
	.options = generate_options,
	.registry = VERB_REGISTRY_NONE,
};
