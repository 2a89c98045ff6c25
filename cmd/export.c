/* export.c — dbreg conninfo and dbreg export: registered connections for psql and every libpq program. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dbreg-cmd.h"

static const struct option conninfo_options[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "format", required_argument, NULL, 'o' },
	OUT_JSON_OPTIONS,
	{},
};

/* The string (kv, uri) or the JSON object of these keys, port a number where it is one. */
enum { I_LINE, I_HOST, I_PORT, I_PORT_TEXT, I_DBNAME, I_USER, I_SSLMODE, I__COUNT };
static const struct out_column conninfo_columns[I__COUNT] = {
	[I_LINE] = { .flags = OUT_C_TEXT, .only = OUT_KV | OUT_URI },
	[I_HOST] = { .key = "host" },
	[I_PORT] = { .key = "port", .kind = OUT_K_INT, .flags = OUT_C_OMIT_NULL },
	[I_PORT_TEXT] = { .key = "port", .flags = OUT_C_OMIT_NULL },  /* a list of ports */
	[I_DBNAME] = { .key = "dbname" },
	[I_USER] = { .key = "user" },
	[I_SSLMODE] = { .key = "sslmode" },
};

static bool plain_number(const char *s)
{
	char *end = NULL;

	if (!s || !*s)
		return false;
	(void)strtol(s, &end, 10);
	return end && !*end;
}

static void print_conninfo(enum out_format fmt, const struct dbreg_conn *c, const char *line)
{
	const char *port = dbreg_conninfo_value(c, "port"), *v[I__COUNT] = { line };
	struct out_doc *d = out_doc_new(stdout, fmt, OUT_DOC_SINGLE);
	v[I_HOST] = dbreg_conninfo_value(c, "host");
	if (plain_number(port))
		v[I_PORT] = port;
	else
		v[I_PORT_TEXT] = port;
	v[I_DBNAME] = dbreg_conninfo_value(c, "dbname");
	v[I_USER] = dbreg_conninfo_value(c, "user");
	v[I_SSLMODE] = dbreg_conninfo_value(c, "sslmode");
	out_doc_section(d, NULL, conninfo_columns, I__COUNT);
	out_doc_row(d, v, NULL, NULL);
	out_doc_end(d);
}

static int run_conninfo(struct dbreg_ctx *ctx, int argc, char **argv)
{
	enum out_format fmt = OUT_KV;
	struct dbreg_conn_list *l = NULL;
	struct dbreg_error err;
	char *text = NULL;
	int c, r;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":ho:", conninfo_options, NULL)) != -1) {
		switch (c) {
		case 'h':
			verb_help(&verb_conninfo,
			          "  -o, --format FMT   kv (default, libpq key=value), uri or json\n"
			          OUT_JSON_HELP
			          "  -h, --help         show this help\n");
			return EXIT_OK;
		case 'o':
			if (verb_format(&verb_conninfo, optarg, &fmt) < 0)
				return EXIT_USAGE;
			break;
		default:
			if (out_option(c))
				break;
			return option_error("conninfo", c, argv);
		}
	}
	r = verb_begin(&verb_conninfo, ctx, argc, argv);
	if (r)
		return r;
	dbreg_error_clear(&err);
	if (dbreg_show(ctx, argv[optind], &l, &err) < 0)
		return fail(&err);
	if (fmt != OUT_JSON &&
	    dbreg_conninfo_string(dbreg_conn_list_at(l, 0), fmt == OUT_URI ? DBREG_CONNINFO_URI : DBREG_CONNINFO_KEYVALUE,
	                          &text, &err) < 0) {
		dbreg_conn_list_free(l);
		return fail(&err);
	}
	print_conninfo(fmt, dbreg_conn_list_at(l, 0), text);
	free(text);
	dbreg_conn_list_free(l);
	return EXIT_OK;
}

enum { ARG_TYPE = 0x100, ARG_REGION, ARG_TAG, ARG_SERVICE_FILE, ARG_PGPASS, ARG_OUTPUT, ARG_FORCE };
static const struct option export_options[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "type", required_argument, NULL, ARG_TYPE },
	{ "region", required_argument, NULL, ARG_REGION },
	{ "tag", required_argument, NULL, ARG_TAG },
	{ "service-file", no_argument, NULL, ARG_SERVICE_FILE },
	{ "pgpass", required_argument, NULL, ARG_PGPASS },
	{ "output", required_argument, NULL, ARG_OUTPUT },
	{ "force", no_argument, NULL, ARG_FORCE },
	{},
};

/* The password file, past stdio's buffers (which nobody wipes): 0600, whole or not at all. */
static int write_pgpass(const char *path, const char *text, bool force)
{
	struct out_file o;
	size_t len = strlen(text), done = 0;

	if (out_file_open(&o, path, 0600) < 0)
		return -1;
	while (done < len) {
		ssize_t w = write(fileno(o.f), text + done, len - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			log_error("cannot write %s: %s", path, w < 0 ? strerror(errno) : "short write");
			out_file_abort(&o);
			return -1;
		}
		done += (size_t)w;
	}
	return out_file_commit(&o, force);
}

/* Text of whole lines for a terminal: each line escaped, the line breaks kept. */
static void print_lines_safe(char *text, FILE *f)
{
	for (char *line = text, *nl; *line; line = nl + 1) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		out_fputs_safe(line, f);
		fputc('\n', f);
		if (!nl)
			break;
	}
}

/* Every name registered (else the first that is not, exit 1), and the filter narrowed to them. */
static int check_names(struct dbreg_ctx *ctx, const char *const *names, struct dbreg_filter *filter)
{
	struct dbreg_error err;

	dbreg_error_clear(&err);
	for (size_t i = 0; names && names[i]; i++) {
		struct dbreg_conn_list *one = NULL;

		if (dbreg_show(ctx, names[i], &one, &err) < 0)
			return fail(&err);
		dbreg_conn_list_free(one);
	}
	if (dbreg_filter_set_names(filter, names, &err) < 0)
		return fail(&err);
	return EXIT_OK;
}

/* A section of the service file to stdout (escaped for a terminal) or to the temp file. */
static int emit_section(const char *text, size_t len, void *userdata)
{
	struct out_file *o = userdata;
	char *copy;

	if (o)
		return fwrite(text, 1, len, o->f) == len ? 0 : -1;
	if (!(copy = strndup(text, len)))
		return -1;
	print_lines_safe(copy, stdout);
	free(copy);
	return 0;
}

/* --service-file: the sections written as the rows come, to stdout or, whole or not at
 * all, to path. */
static int export_service_file(struct dbreg_ctx *ctx, const char *const *names, struct dbreg_filter *filter,
                               const char *path, bool force)
{
	struct dbreg_conn_stream *s = NULL;
	struct out_file o;
	struct dbreg_error err;
	size_t n = 0;
	int r = check_names(ctx, names, filter);

	dbreg_error_clear(&err);
	if (r)
		return r;
	if (path && out_file_open(&o, path, 0644) < 0)
		return EXIT_NEGATIVE;
	if (dbreg_list_stream(ctx, filter, &s, &err) < 0 ||
	    dbreg_service_file_stream(s, emit_section, path ? &o : NULL, &n, &err) < 0) {
		dbreg_conn_stream_free(s);
		if (path)
			out_file_abort(&o);
		return fail(&err);
	}
	dbreg_conn_stream_free(s);
	if (n == 0) {
		if (path)
			out_file_abort(&o);
		log_error("no connection matches the selection");
		return EXIT_NEGATIVE;
	}
	if (path)
		return out_file_commit(&o, force) < 0 ? EXIT_NEGATIVE : EXIT_OK;
	return EXIT_OK;
}

static int run_export(struct dbreg_ctx *ctx, int argc, char **argv)
{
	const char *arg_pgpass = NULL, *arg_output = NULL;
	bool arg_service_file = false, arg_force = false;
	struct dbreg_filter *filter = NULL;
	const char *const *names, *path;
	size_t rows = 0, written = 0, skipped = 0;
	struct dbreg_error err;
	char *text = NULL;
	int c, r;

	dbreg_error_clear(&err);
	if (dbreg_filter_new(&filter, &err) < 0)
		return fail(&err);
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", export_options, NULL)) != -1) {
		switch (c) {
		case 'h':
			verb_help(&verb_export,
			          "  --type TYPE        only connections of this type\n"
			          "  --region CODE      only connections in this region\n"
			          "  --tag TAG          only connections with this tag (repeat: with all of them)\n"
			          "  --service-file     write a pg_service.conf (no passwords) to stdout or --output\n"
			          "  --pgpass FILE      write a password file to FILE, mode 0600\n"
			          "  --output FILE      write the service file to FILE atomically (mode 0644)\n"
			          "  --force            replace FILE if it exists\n"
			          "  -h, --help         show this help\n");
			dbreg_filter_free(filter);
			return EXIT_OK;
		case ARG_TYPE: r = dbreg_filter_set_type(filter, optarg, &err); break;
		case ARG_REGION: r = dbreg_filter_set_region(filter, optarg, &err); break;
		case ARG_TAG: r = dbreg_filter_add_tag(filter, optarg, &err); break;
		case ARG_SERVICE_FILE: arg_service_file = true; r = 0; break;
		case ARG_PGPASS: arg_pgpass = optarg; r = 0; break;
		case ARG_OUTPUT: arg_output = optarg; r = 0; break;
		case ARG_FORCE: arg_force = true; r = 0; break;
		default:
			if (out_option(c))
				break;
			dbreg_filter_free(filter);
			return option_error("export", c, argv);
		}
		if (r < 0) {
			dbreg_filter_free(filter);
			return fail(&err);
		}
	}
	r = parse_names("export", argc, argv, &names);
	if (!r && arg_service_file && arg_pgpass)
		r = usage_error("export", "--service-file and --pgpass exclude each other");
	else if (!r && !arg_service_file && !arg_pgpass)
		r = usage_error("export", "one of --service-file and --pgpass FILE is required");
	else if (!r && arg_pgpass && strcmp(arg_pgpass, "-") == 0)
		r = usage_error("export", "--pgpass: the password file is never written to standard output");
	else if (!r && arg_pgpass && !*arg_pgpass)
		r = usage_error("export", "--pgpass: the file name is empty");
	else if (!r && arg_output && !arg_service_file)
		r = usage_error("export", "--output goes with --service-file (--pgpass names its own FILE)");
	else if (!r && arg_output && !*arg_output)
		r = usage_error("export", "--output: the file name is empty");
	else if (!r && arg_force && !arg_output && !arg_pgpass)
		r = usage_error("export", "--force needs --output FILE or --pgpass FILE");
	if (r) {
		dbreg_filter_free(filter);
		return r;
	}
	path = arg_pgpass ? arg_pgpass : arg_output;
	/* Before anything is read or decrypted; out_file_commit refuses again if one appears meanwhile. */
	if (path && !arg_force && access(path, F_OK) == 0) {
		dbreg_filter_free(filter);
		log_error("%s already exists; use --force to replace it", path);
		return EXIT_NEGATIVE;
	}
	r = connect_registry(ctx);
	if (!r && arg_service_file) {
		r = export_service_file(ctx, names, filter, arg_output, arg_force);
		dbreg_filter_free(filter);
		return r;
	}
	if (!r)
		r = check_names(ctx, names, filter);
	if (!r && dbreg_pgpass_file_select(ctx, filter, &text, &rows, &written, &skipped, &err) < 0)
		r = fail(&err);
	dbreg_filter_free(filter);
	if (r)
		return r;
	if (rows == 0) {
		dbreg_secret_free(text);
		log_error("no connection matches the selection");
		return EXIT_NEGATIVE;
	}
	r = write_pgpass(arg_pgpass, text, arg_force) < 0 ? EXIT_NEGATIVE : EXIT_OK;
	dbreg_secret_free(text);
	if (r == EXIT_OK) {
		fprintf(stderr, "wrote %zu password%s to ", written, written == 1 ? "" : "s");
		out_fputs_safe(arg_pgpass, stderr);
		if (skipped)
			fprintf(stderr, " (%zu connection%s without a password skipped)", skipped, skipped == 1 ? "" : "s");
		fputc('\n', stderr);
	}
	return r;
}

const struct verb verb_conninfo = {
	.name = "conninfo",
	.run = run_conninfo,
	.summary = "print a connection's libpq connection string (never its password)",
	.usage = "NAME [-o kv|uri|json]",
	.options = conninfo_options,
	.takes_names = true,
	.min_args = 1, .max_args = 1, .arg_name = "a connection NAME",
	.formats = OUT_KV | OUT_URI | OUT_JSON,
	.registry = VERB_REGISTRY_CONNECT,
};

const struct verb verb_export = {
	.name = "export",
	.run = run_export,
	.summary = "write connections as a pg_service.conf or a .pgpass file",
	.usage = "[NAME...] [--type TYPE] [--region CODE] [--tag TAG]... (--service-file [--output FILE] | --pgpass FILE)\n"
	         "       [--force]",
	.options = export_options,
	.takes_names = true,
	.min_args = 0, .max_args = VERB_ANY,
	.registry = VERB_REGISTRY_SELF,  /* after the check that its file does not exist */
};
