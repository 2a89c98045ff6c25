/* dbreg.c — main: global options, the verb table, exit codes, and a checked stdout. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "config.h"
#include "dbreg-cmd.h"

int arg_color;
bool arg_color_forced;
bool arg_no_pager;
bool in_repl;
bool in_repl_script;
bool stdout_failure_reported;

const struct verb *const dbreg_verbs[] = {
	&verb_init,
	&verb_register,
	&verb_update,
	&verb_list,
	&verb_show,
	&verb_deregister,
	&verb_encrypt_password,
	&verb_generate_key,
	&verb_rotate_key,
	&verb_rotate_password,
	&verb_health,
	&verb_resolve_schema,
	&verb_pool_stats,
	&verb_validate_config,
	&verb_conninfo,
	&verb_export,
	&verb_import,
	&verb_psql,
	&verb_exec,
	&verb_repl,
	NULL,
};

const struct verb *verb_find(const char *name)
{
	for (size_t i = 0; dbreg_verbs[i]; i++)
		if (strcmp(dbreg_verbs[i]->name, name) == 0)
			return dbreg_verbs[i];
	return NULL;
}

const char *verb_closest(const char *name)
{
	const char *names[ELEMENTSOF(dbreg_verbs)];
	size_t n = 0;

	for (; dbreg_verbs[n]; n++)
		names[n] = dbreg_verbs[n]->name;
	return dbreg_name_closest(name, names, n);
}

static void vlog(const char *level, const char *fmt, va_list ap)
{
	char *msg = NULL;

	fflush(stdout);
	fprintf(stderr, "dbreg: %s: ", level);
	/* Messages quote names, hosts and servers' words: never a raw control character. */
	if (vasprintf(&msg, fmt, ap) >= 0) {
		out_fputs_safe(msg, stderr);
		free(msg);
	}
	fputc('\n', stderr);
}

void log_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("error", fmt, ap);
	va_end(ap);
}

void log_warning(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("warning", fmt, ap);
	va_end(ap);
}

int usage_error(const char *verb, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("error", fmt, ap);
	va_end(ap);
	/* In the REPL the commands are typed without "dbreg". */
	if (verb)
		fprintf(stderr, in_repl ? "Try 'help %s' for more information.\n" : "Try 'dbreg %s --help' for more information.\n",
		        verb);
	else
		fprintf(stderr, in_repl ? "Try 'help' for the commands.\n" : "Try 'dbreg --help' for more information.\n");
	return EXIT_USAGE;
}

int option_error(const char *verb, int c, char **argv)
{
	const char *arg = argv[optind - 1];
	char name[64];

	/* A long option as typed (without its =value); a short one by the letter
	 * getopt stopped at, which may sit inside a cluster like -xo. */
	if (strncmp(arg, "--", 2) == 0)
		snprintf(name, sizeof(name), "%.*s", (int)strcspn(arg, "="), arg);
	else
		snprintf(name, sizeof(name), "-%c", optopt > 0 && optopt < 128 ? optopt : '?');
	if (c == ':')
		return usage_error(verb, "option '%s' needs a value", name);
	if (name[1] == '-') {
		/* "--levle": did you mean "--level"? */
		const struct verb *v = verb ? verb_find(verb) : NULL;
		const char *names[128], *near;
		char shown[80];
		size_t n = 0;

		for (size_t i = 0; v && v->options && v->options[i].name && n < ELEMENTSOF(names); i++)
			names[n++] = v->options[i].name;
		near = dbreg_name_closest(name + 2, names, n);
		if (near) {
			snprintf(shown, sizeof(shown), "--%s", near);
			return usage_error(verb, "unknown option '%s'; did you mean '%s'?", name, shown);
		}
	}
	return usage_error(verb, "unknown option '%s'", name);
}

int tag_list_add(const char *verb, struct tag_list *t, const char *tag)
{
	if (t->n == (int)ELEMENTSOF(t->tags)) {
		usage_error(verb, "--tag: at most %zu", ELEMENTSOF(t->tags));
		return -1;
	}
	t->tags[t->n++] = tag;
	return 0;
}

int add_tags(struct dbreg_filter *filter, const struct tag_list *t, struct dbreg_error *err)
{
	for (int i = 0; i < t->n; i++)
		if (dbreg_filter_add_tag(filter, t->tags[i], err) < 0)
			return -1;
	return 0;
}

int parse_names(const char *verb, int argc, char **argv, const char *const **ret)
{
	struct dbreg_error err;

	dbreg_error_clear(&err);
	for (int i = optind; i < argc; i++)
		if (dbreg_check_connection_name(argv[i], &err) < 0)
			return usage_error(verb, "%s", err.message);
	*ret = NULL;
	if (optind < argc) {
		argv[argc] = NULL;  /* argv is NULL-terminated by contract */
		*ret = (const char *const *)argv + optind;
	}
	return 0;
}

int parse_positive(const char *verb, const char *opt, const char *text, long max, long *ret)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || end == text || *end || v <= 0 || v > max) {
		usage_error(verb, "%s: '%s' is not a whole number from 1 to %ld", opt, text, max);
		return -1;
	}
	*ret = v;
	return 0;
}

int parse_duration(const char *verb, const char *opt, const char *text, long max_s, long *ret)
{
	static const struct { char suffix; long seconds; } units[] = { { 's', 1 }, { 'm', 60 }, { 'h', 3600 },
	                                                                { 'd', 86400 } };
	long unit = 1, v;
	char *end;

	errno = 0;
	v = strtol(text, &end, 10);
	if (!errno && end != text && *end && !end[1]) {
		unit = 0;
		for (size_t i = 0; i < ELEMENTSOF(units); i++)
			if (*end == units[i].suffix)
				unit = units[i].seconds;
		end += unit != 0;
	}
	if (errno || end == text || *end || !unit || !(text[0] >= '0' && text[0] <= '9') || v <= 0 ||
	    v > max_s / unit) {
		usage_error(verb, "%s: '%s' is not a duration: a whole number of seconds, or with s, m, h or d"
		            " (e.g. 90s, 5m, 2h, 14d), from 1 s to %ld d", opt, text, max_s / 86400);
		return -1;
	}
	*ret = v * unit;
	return 0;
}

int exit_status(enum dbreg_errkind kind)
{
	switch (kind) {
	case DBREG_OK: return EXIT_OK;
	case DBREG_ERR_USAGE: return EXIT_USAGE;
	case DBREG_ERR_UNAVAILABLE: return EXIT_UNAVAILABLE;
	case DBREG_ERR_CONFIG: return EXIT_CONFIG;
	case DBREG_ERR_FAILED:
	case DBREG_ERR_INTERNAL:
	default: return EXIT_NEGATIVE;
	}
}

int fail(const struct dbreg_error *err)
{
	log_error("%s", err->message[0] ? err->message : "unknown failure");
	return exit_status(err->kind);
}

int verb_args(const struct verb *v, int argc, char **argv)
{
	struct dbreg_error err;
	int n = argc - optind;

	if (n < v->min_args)
		return usage_error(v->name, "%s is required", v->arg_name ? v->arg_name : "an argument");
	if (v->max_args != VERB_ANY && n > v->max_args)
		return usage_error(v->name, "unexpected argument '%s'", argv[optind + v->max_args]);
	dbreg_error_clear(&err);
	for (int i = optind; v->takes_names && i < argc; i++)
		if (dbreg_check_connection_name(argv[i], &err) < 0)
			return usage_error(v->name, "%s", err.message);
	return 0;
}

int verb_begin(const struct verb *v, struct dbreg_ctx *ctx, int argc, char **argv)
{
	int r = verb_args(v, argc, argv);

	return r ? r : v->registry == VERB_REGISTRY_CONNECT ? connect_registry(ctx) : 0;
}

int verb_format(const struct verb *v, const char *text, enum out_format *ret)
{
	return out_parse_format(v->name, text, v->formats, ret);
}

int connect_registry_err(struct dbreg_ctx *ctx, struct dbreg_error *ret_err)
{
	struct dbreg_error own, *err = ret_err ? ret_err : &own;
	int reconnected = 0;

	dbreg_error_clear(err);
	if (dbreg_ctx_connect(ctx, &reconnected, err) < 0)
		return fail(err);
	if (reconnected)
		fprintf(stderr, "dbreg: the admin connection was lost; reconnected\n");
	return 0;
}

int connect_registry(struct dbreg_ctx *ctx)
{
	return connect_registry_err(ctx, NULL);
}

void verb_help(const struct verb *v, const char *options)
{
	const char *names[12];

	printf("Usage: dbreg %s %s\n\n%s\n", v->name, v->usage, v->summary);
	if (options)
		printf("\nOptions:\n%s", options);
	if (v->formats) {
		out_format_names(v->formats, names);
		printf("\nFormats (-o):");
		for (size_t i = 0; names[i]; i++)
			printf(" %s", names[i]);
		putchar('\n');
	}
	printf("\nSee dbreg-%s(1) for details and exit status.\n", v->name);
}

static void main_help(FILE *f)
{
	fprintf(f, "Usage: dbreg [--version] [-h|--help] [--color=auto|always|never] [--no-pager] COMMAND [ARGS]\n\n"
	       "Manage the registry of PostgreSQL connections in admin.database_connections.\n\n"
	       "Commands:\n");
	for (size_t i = 0; dbreg_verbs[i]; i++)
		fprintf(f, "  %-18s %s\n", dbreg_verbs[i]->name, dbreg_verbs[i]->summary);
	fprintf(f, "\nEnvironment: ADMIN_DATABASE_URL, DB_ENCRYPTION_KEY or DB_ENCRYPTION_KEY_FILE,\n"
	       "DB_ENCRYPTION_OLD_KEYS, NO_COLOR.\n"
	       "Run 'dbreg COMMAND --help' for a command's options; see dbreg(1).\n");
}

/* No core file may carry a key or a password. */
static void harden(void)
{
	struct rlimit none = { 0, 0 };

	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	setrlimit(RLIMIT_CORE, &none);
}

static int close_stdout(int status)
{
	/* A full disk or closed pipe must not pass for success. */
	if (stdout_failure_reported) {
		fclose(stdout);
		return status;  /* the verb said so, and chose its status */
	}
	if (fflush(stdout) != 0 || ferror(stdout) || fclose(stdout) != 0) {
		if (errno != EPIPE)
			fprintf(stderr, "dbreg: error: write failure on standard output: %s\n", strerror(errno));
		return status ? status : EXIT_NEGATIVE;
	}
	return status;
}

int verb_dispatch(struct dbreg_ctx *ctx, int argc, char **argv)
{
	const struct verb *v = verb_find(argv[0]);
	int status;

	if (!v) {
		const char *near = verb_closest(argv[0]);

		if (near)
			return usage_error(NULL, "unknown command '%s'; did you mean '%s'?", argv[0], near);
		return usage_error(NULL, "unknown command '%s'", argv[0]);
	}
	optind = 0;  /* each verb parses its own options from a fresh getopt */
	out_style = (struct out_style){ .no_pager = arg_no_pager };
	if (!v->paged || arg_no_pager)
		return v->run(ctx, argc, argv);
	out_pager_begin();
	status = v->run(ctx, argc, argv);
	out_pager_end();
	return status;
}

int main(int argc, char **argv)
{
	enum { ARG_VERSION = 0x100, ARG_COLOR, ARG_NO_PAGER };
	static const struct option options[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, ARG_VERSION },
		{ "color", required_argument, NULL, ARG_COLOR },
		{ "colour", required_argument, NULL, ARG_COLOR },
		{ "no-pager", no_argument, NULL, ARG_NO_PAGER },
		{},
	};
	static char *bare_repl[] = { (char *)"repl", NULL };
	const char *color_mode = "auto", *nc = getenv("NO_COLOR");
	struct dbreg_ctx *ctx = NULL;
	struct dbreg_error err;
	int c, status;

	harden();
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+h", options, NULL)) != -1) {
		switch (c) {
		case 'h':
			main_help(stdout);
			return close_stdout(EXIT_OK);
		case ARG_VERSION:
			printf("dbreg %s\n", DBREG_VERSION);
			return close_stdout(EXIT_OK);
		case ARG_COLOR:
			if (strcmp(optarg, "auto") != 0 && strcmp(optarg, "always") != 0 && strcmp(optarg, "never") != 0)
				return usage_error(NULL, "--color: '%s' is not auto, always or never", optarg);
			color_mode = optarg;
			break;
		case ARG_NO_PAGER:
			arg_no_pager = true;
			break;
		default:
			return option_error(NULL, c, argv);
		}
	}
	if (strcmp(color_mode, "always") == 0)
		arg_color = arg_color_forced = 1;
	else if (strcmp(color_mode, "auto") == 0)
		arg_color = isatty(STDOUT_FILENO) && !(nc && *nc) && !(getenv("TERM") && strcmp(getenv("TERM"), "dumb") == 0);

	if (optind >= argc) {
		/* A bare dbreg on a terminal is the REPL; anywhere else, a usage error. */
		if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
			fprintf(stderr, "dbreg: error: no command given\n");
			main_help(stderr);
			return EXIT_USAGE;
		}
		argv = bare_repl;
		argc = 1;
		optind = 0;
	}
	if (strcmp(argv[optind], "help") == 0) {
		if (optind + 1 < argc) {
			char *sub[] = { argv[optind + 1], (char *)"--help", NULL };

			if (!verb_find(sub[0]))
				return verb_dispatch(NULL, 1, sub);
			status = verb_dispatch(NULL, 2, sub);
		} else {
			main_help(stdout);
			status = EXIT_OK;
		}
		return close_stdout(status);
	}
	dbreg_error_clear(&err);
	if (dbreg_ctx_new(&ctx, &err) < 0)
		return fail(&err);
	status = verb_dispatch(ctx, argc - optind, argv + optind);
	dbreg_ctx_free(ctx);
	return close_stdout(status);
}
