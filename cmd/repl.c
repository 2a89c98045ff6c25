/* repl.c — dbreg repl: an interactive shell over the same verb table, and its script mode. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "config.h"
#include "dbreg-cmd.h"

#if HAVE_LIBEDIT
#include "edit.h"

/* libedit, once the interactive REPL has loaded it (NULL: plain lines). */
static const struct edit_api *ed;
#endif

#define HISTORY_MAX 1000
#define MAX_ARGS 256

static struct dbreg_ctx *repl_ctx;
static volatile sig_atomic_t at_prompt, prompt_interrupted;

/* Ctrl-C: at the prompt, a flag that read_command sees (it starts a fresh line: nothing
 * jumps out of the line editor); during a command, cancel it, not the session. */
static void on_sigint(int sig)
{
	(void)sig;
	if (at_prompt)
		prompt_interrupted = 1;
	else
		dbreg_ctx_cancel(repl_ctx);
}

/* Waits until standard input can be read (1) or Ctrl-C was pressed at the prompt (0);
 * -1 on a poll error.  SIGINT is blocked but inside ppoll, so a Ctrl-C between the
 * flag's test and the wait is not missed. */
static int wait_input(void)
{
	struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
	sigset_t block, old;
	int n = 1;

	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &old);
	if (!prompt_interrupted) {
		n = ppoll(&p, 1, NULL, &old);
		if (n < 0 && errno == EINTR)
			n = 1;  /* the caller tests the flag again */
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (prompt_interrupted)
		return 0;
	return n < 0 ? -1 : 1;
}

/* Splits a line as a shell would: blanks separate words; '…' is literal; "…" and
 * backslash escape; an unquoted '|' ends the command, and *ret_pipe (when not NULL)
 * points after it, at the shell command to pipe the output into (else NULL).
 * Returns the word count, -1 on an unterminated quote. */
static int split_line(const char *line, char *buf, char **argv, int max, const char **ret_pipe)
{
	int argc = 0;
	char *o = buf;
	const char *p = line;

	if (ret_pipe)
		*ret_pipe = NULL;
	for (;;) {
		bool in_word = false;

		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		if (!*p || *p == '#')
			break;
		if (*p == '|' && ret_pipe) {
			*ret_pipe = p + 1;
			break;
		}
		if (argc >= max - 1)
			return -2;
		argv[argc] = o;
		while (*p && !(*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') && !(*p == '|' && ret_pipe)) {
			in_word = true;
			if (*p == '\'') {
				for (p++; *p && *p != '\''; p++)
					*o++ = *p;
				if (!*p)
					return -1;
				p++;
			} else if (*p == '"') {
				for (p++; *p && *p != '"'; p++) {
					if (*p == '\\' && (p[1] == '"' || p[1] == '\\' || p[1] == '$' || p[1] == '`'))
						p++;
					*o++ = *p;
				}
				if (!*p)
					return -1;
				p++;
			} else if (*p == '\\' && p[1]) {
				*o++ = p[1];
				p += 2;
			} else {
				*o++ = *p++;
			}
		}
		if (in_word) {
			*o++ = '\0';
			argc++;
		}
	}
	argv[argc] = NULL;
	return argc;
}

static void repl_help(void)
{
	printf("Commands (each as on the command line, without 'dbreg'):\n");
	for (size_t i = 0; dbreg_verbs[i]; i++)
		if (strcmp(dbreg_verbs[i]->name, "repl") != 0)
			printf("  %-18s %s\n", dbreg_verbs[i]->name, dbreg_verbs[i]->summary);
	printf("  %-18s %s\n  %-18s %s\n", "help [COMMAND]", "this list, or a command's options", "quit, exit, Ctrl-D",
	       "leave");
	printf("Ctrl-C cancels the running command; Tab completes commands, options and connection names.\n");
}

/* Runs one command line; returns its exit status (0 for an empty line). */
static int run_line(const char *line, bool *ret_quit, bool *ret_changed)
{
	size_t len = strlen(line);
	char *buf = malloc(len + 1), *argv[MAX_ARGS];
	const char *pipe_to;
	const struct verb *v;
	int argc, status;

	*ret_quit = false;
	*ret_changed = false;
	if (!buf) {
		log_error("out of memory");
		return EXIT_NEGATIVE;
	}
	argc = split_line(line, buf, argv, MAX_ARGS, &pipe_to);
	if (argc < 0) {
		free(buf);
		log_error(argc == -1 ? "unterminated quote" : "too many words");
		return EXIT_USAGE;
	}
	if (pipe_to && (argc == 0 || strspn(pipe_to, " \t\r\n") == strlen(pipe_to))) {
		free(buf);
		log_error("a pipe needs a command on each side: COMMAND | SHELL-COMMAND");
		return EXIT_USAGE;
	}
	if (argc == 0) {
		free(buf);
		return 0;
	}
	if (strcmp(argv[0], "quit") == 0 || strcmp(argv[0], "exit") == 0 || strcmp(argv[0], "\\q") == 0) {
		*ret_quit = true;
		free(buf);
		return 0;
	}
	if (strcmp(argv[0], "dbreg") == 0 && argc > 1) {
		/* A line pasted from a shell. */
		memmove(argv, argv + 1, (size_t)argc * sizeof(argv[0]));
		argc--;
	}
	if (strcmp(argv[0], "help") == 0) {
		if (argc == 1) {
			repl_help();
			status = 0;
		} else {
			char *sub[] = { argv[1], (char *)"--help", NULL };

			status = verb_dispatch(repl_ctx, 2, sub);
		}
		free(buf);
		return status;
	}
	if (strcmp(argv[0], "repl") == 0) {
		free(buf);
		log_error("already in the REPL");
		return EXIT_USAGE;
	}
	v = verb_find(argv[0]);
	if (pipe_to && out_pipe_begin(pipe_to) < 0) {
		log_error("cannot start '%s': %s", pipe_to, strerror(errno));
		free(buf);
		return EXIT_NEGATIVE;
	}
	dbreg_ctx_reset_cancel(repl_ctx);
	status = verb_dispatch(repl_ctx, argc, argv);
	if (pipe_to) {
		/* As a shell with pipefail: the shell command's status when it failed, else dbreg's. */
		int reader = out_pipe_end();

		if (reader)
			status = reader;
	}
	if (dbreg_ctx_was_cancelled(repl_ctx))
		fprintf(stderr, "cancelled\n");
	dbreg_ctx_reset_cancel(repl_ctx);
	*ret_changed = v && v->registry_writer && status == 0;
	fflush(stdout);
	free(buf);
	return status;
}

/* Script mode: one command a line, output only; failing lines reported by number. */
static int run_script(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int lineno = 0, failed = 0;

	in_repl_script = true;
	while ((n = getline(&line, &cap, stdin)) >= 0) {
		bool quit, changed;
		int status;

		lineno++;
		status = run_line(line, &quit, &changed);
		if (status != 0) {
			fprintf(stderr, "dbreg: line %d failed (exit status %d)\n", lineno, status);
			failed = 1;
		}
		if (quit)
			break;
	}
	free(line);
	in_repl_script = false;
	return failed ? EXIT_NEGATIVE : EXIT_OK;
}

#if HAVE_LIBEDIT
/* ---- completion ---- */
static char **name_cache;
static size_t name_count;
static bool names_stale = true;

static void names_refresh(void)
{
	struct dbreg_conn_list *l = NULL;
	struct dbreg_error err;

	for (size_t i = 0; i < name_count; i++)
		free(name_cache[i]);
	free(name_cache);
	name_cache = NULL;
	name_count = 0;
	names_stale = false;
	if (dbreg_ctx_connect(repl_ctx, NULL, &err) < 0 || dbreg_list(repl_ctx, NULL, &l, &err) < 0)
		return;
	name_cache = calloc(dbreg_conn_list_count(l) + 1, sizeof(char *));
	for (size_t i = 0; name_cache && i < dbreg_conn_list_count(l); i++) {
		name_cache[i] = strdup(dbreg_conn_get(dbreg_conn_list_at(l, i), DBREG_F_CONNECTION_NAME));
		if (name_cache[i])
			name_count++;
	}
	dbreg_conn_list_free(l);
}

static const struct verb *completing_verb;
static enum { C_VERBS, C_OPTIONS, C_NAMES, C_VALUES } completing;
static const char *const *value_list;

static const char *const types[] = { "ADMIN", "SHARED", "ANALYTICS", "DEDICATED", NULL };
static const char *const ssl_modes[] = { "disable", "allow", "prefer", "require", "verify-ca", "verify-full", NULL };
static const char *const levels[] = { "basic", "extended", "deep", NULL };
static const char *const contexts[] = { "admin", "tenant", "shared", "template", NULL };
/* -o's values: the verb table's. */
static const char *const *formats_of(const struct verb *v)
{
	static const char *names[12];

	out_format_names(v->formats, names);
	return names;
}

static char *generator(const char *text, int state)
{
	static size_t i, len;
	static const char *extra[] = { "help", "quit", "exit", NULL };
	static char buf[128];

	if (!state) {
		i = 0;
		len = strlen(text);
	}
	switch (completing) {
	case C_VERBS:
		for (;;) {
			size_t nverbs = 0;
			const char *name;

			while (dbreg_verbs[nverbs])
				nverbs++;
			if (i < nverbs)
				name = dbreg_verbs[i]->name;
			else if (extra[i - nverbs])
				name = extra[i - nverbs];
			else
				return NULL;
			i++;
			if (strcmp(name, "repl") != 0 && strncmp(name, text, len) == 0)
				return strdup(name);
		}
	case C_OPTIONS:
		for (const struct option *o = completing_verb->options; o && o[i].name; ) {
			const struct option *opt = &o[i++];

			snprintf(buf, sizeof(buf), "--%s", opt->name);
			if (strncmp(buf, text, len) == 0)
				return strdup(buf);
		}
		return NULL;
	case C_NAMES:
		while (i < name_count) {
			const char *name = name_cache[i++];

			if (strncmp(name, text, len) == 0)
				return strdup(name);
		}
		return NULL;
	case C_VALUES:
		while (value_list && value_list[i]) {
			const char *v = value_list[i++];

			if (strncmp(v, text, len) == 0)
				return strdup(v);
		}
		return NULL;
	}
	return NULL;
}

static char **complete(const char *text, int start, int end)
{
	char *line = strndup(*ed->line_buffer, (size_t)start), *words[MAX_ARGS];
	char *buf = malloc(strlen(line) + 1);
	int argc = buf ? split_line(line, buf, words, MAX_ARGS, NULL) : -1;
	char **matches = NULL;
	sig_atomic_t prompt_was = at_prompt;

	(void)end;
	/* Completion may query the registry: Ctrl-C now cancels that. */
	at_prompt = 0;
	*ed->attempted_completion_over = 1;  /* never fall back to file names */
	if (argc < 0)
		goto out;
	completing_verb = argc > 0 ? verb_find(words[0]) : NULL;
	if (argc == 0) {
		completing = C_VERBS;
	} else if (argc > 0 && strcmp(words[0], "help") == 0 && argc == 1) {
		completing = C_VERBS;
	} else if (!completing_verb) {
		goto out;
	} else {
		const char *prev = words[argc - 1];

		value_list = NULL;
		if (strcmp(prev, "--type") == 0)
			value_list = types;
		else if (strcmp(prev, "--ssl-mode") == 0)
			value_list = ssl_modes;
		else if (strcmp(prev, "--level") == 0)
			value_list = levels;
		else if (strcmp(prev, "--context") == 0)
			value_list = contexts;
		else if (strcmp(prev, "-o") == 0 || strcmp(prev, "--format") == 0)
			value_list = formats_of(completing_verb);
		if (value_list) {
			completing = C_VALUES;
		} else if (text[0] == '-') {
			completing = C_OPTIONS;
		} else if (completing_verb->takes_names || strcmp(prev, "--default-connection") == 0) {
			if (names_stale)
				names_refresh();
			completing = C_NAMES;
		} else {
			goto out;
		}
	}
	matches = ed->completion_matches(text, generator);
out:
	free(line);
	free(buf);
	at_prompt = prompt_was;
	return matches;
}

static char *history_path(void)
{
	const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	char dir[4096], *path;

	if (state && *state == '/')
		snprintf(dir, sizeof(dir), "%s/dbreg", state);
	else if (home && *home)
		snprintf(dir, sizeof(dir), "%s/.local/state/dbreg", home);
	else
		return NULL;
	/* Private; without it the history is only not saved. */
	(void)out_make_dirs(dir, 0700);
	if (asprintf(&path, "%s/history", dir) < 0)
		return NULL;
	return path;
}

static void history_save(const char *path)
{
	int fd;

	if (!path)
		return;
	/* Created 0600 before libedit writes to it; an existing file is tightened. */
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0) {
		fchmod(fd, 0600);
		close(fd);
	}
	ed->stifle_history(HISTORY_MAX);
	ed->write_history(path);
}

/* libedit's callback interface: the REPL waits for input itself (wait_input), so a
 * Ctrl-C at the prompt ends the line without leaving libedit from a signal handler. */
static char *entered;
static bool line_done;

static void on_line(char *line)
{
	entered = line;
	line_done = true;
}

static char *read_command_edit(const char *prompt)
{
	entered = NULL;
	line_done = false;
	prompt_interrupted = 0;
	ed->callback_handler_install(prompt, on_line);
	while (!line_done) {
		int r = wait_input();

		if (r < 0)
			break;
		if (r == 0) {
			/* Ctrl-C: the line is dropped and the prompt starts over on a fresh line. */
			prompt_interrupted = 0;
			ed->callback_handler_remove();
			fputc('\n', stdout);
			fflush(stdout);
			ed->callback_handler_install(prompt, on_line);
			continue;
		}
		ed->callback_read_char();
	}
	ed->callback_handler_remove();
	return entered;
}
#endif

/* Without libedit: a line read with read(2), so that a Ctrl-C (EINTR) drops it. */
static char *read_command_plain(const char *prompt)
{
	size_t len = 0, cap = 128;
	char *line = malloc(cap);

	if (!line)
		return NULL;
	prompt_interrupted = 0;
	fputs(prompt, stdout);
	fflush(stdout);
	for (;;) {
		char ch;
		int r = wait_input();
		ssize_t n = r > 0 ? read(STDIN_FILENO, &ch, 1) : 0;

		if (r == 0 || (n < 0 && errno == EINTR)) {
			if (prompt_interrupted) {
				prompt_interrupted = 0;
				sodium_memzero(line, len);
				len = 0;
				fputc('\n', stdout);
				fputs(prompt, stdout);
				fflush(stdout);
			}
			continue;
		}
		if (n <= 0) {
			if (len > 0)
				break;
			free(line);
			return NULL;
		}
		if (ch == '\n')
			break;
		if (len + 1 >= cap) {
			char *bigger = malloc(cap * 2);

			if (!bigger) {
				/* Never a line cut short: out of memory ends the session, as EOF does. */
				sodium_memzero(line, len);
				free(line);
				return NULL;
			}
			memcpy(bigger, line, len);
			sodium_memzero(line, len);
			free(line);
			line = bigger;
			cap *= 2;
		}
		line[len++] = ch;
	}
	line[len] = '\0';
	return line;
}

static char *read_command(const char *prompt)
{
#if HAVE_LIBEDIT
	if (ed)
		return read_command_edit(prompt);
#endif
	return read_command_plain(prompt);
}

#if HAVE_LIBEDIT
/* A password keyword or a URI's user:password@ in a line. */
static bool holds_secret(const char *line)
{
	const char *p;

	if (strcasestr(line, "password="))
		return true;
	for (p = strstr(line, "://"); p; p = strstr(p + 1, "://")) {
		size_t auth = strcspn(p + 3, "/@ \t?#");

		if (p[3 + auth] == '@' && memchr(p + 3, ':', auth))
			return true;
	}
	return false;
}
#endif

static int run_interactive(void)
{
	struct sigaction sa = { .sa_handler = on_sigint }, old;
	char prompt[160];
#if HAVE_LIBEDIT
	char *hist;
#endif
	struct dbreg_error err;

	dbreg_error_clear(&err);
	if (dbreg_ctx_connect(repl_ctx, NULL, &err) < 0)
		fprintf(stderr, "dbreg: warning: %s\n", err.message);
#if HAVE_LIBEDIT
	ed = edit_load();
	hist = ed ? history_path() : NULL;
	if (ed) {
		*ed->readline_name = "dbreg";
		*ed->attempted_completion_function = complete;
		*ed->completion_append_character = ' ';
	}
	if (hist) {
		ed->using_history();
		ed->stifle_history(HISTORY_MAX);
		ed->read_history(hist);
	}
#endif
	printf("dbreg %s — type 'help' for the commands, 'quit' or Ctrl-D to leave.\n", dbreg_version());
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old);
	for (;;) {
		const char *db = dbreg_ctx_admin_dbname(repl_ctx);
		bool quit = false, changed = false;
		char *line;
		int status;

		snprintf(prompt, sizeof(prompt), "dbreg%s%s> ", *db ? " " : "", db);
		at_prompt = 1;
		line = read_command(prompt);
		at_prompt = 0;
		if (!line) {
			putchar('\n');
			break;
		}
		status = run_line(line, &quit, &changed);
#if !HAVE_LIBEDIT
		(void)status;  /* no history to keep a line from */
#else
		/* A refused line may be a password typed in the wrong place: not kept. */
		if (ed && *line && strspn(line, " \t") != strlen(line) && status != EXIT_USAGE && !holds_secret(line))
			ed->add_history(line);
#endif
		sodium_memzero(line, strlen(line));
		free(line);
#if HAVE_LIBEDIT
		if (changed)
			names_stale = true;
		history_save(hist);  /* after every line: a killed session loses nothing */
#endif
		if (quit)
			break;
	}
	sigaction(SIGINT, &old, NULL);
#if HAVE_LIBEDIT
	history_save(hist);
	free(hist);
	for (size_t i = 0; i < name_count; i++)
		free(name_cache[i]);
	free(name_cache);
#endif
	return EXIT_OK;
}

static int run_repl(struct dbreg_ctx *ctx, int argc, char **argv)
{
	static const struct option repl_options[] = {
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", repl_options, NULL)) != -1) {
		if (c == 'h') {
			verb_help(&verb_repl, "  -h, --help   show this help\n");
			return EXIT_OK;
		}
		return option_error("repl", c, argv);
	}
	if (verb_begin(&verb_repl, ctx, argc, argv))
		return EXIT_USAGE;
	repl_ctx = ctx;
	in_repl = true;
	if (!isatty(STDIN_FILENO))
		return run_script();
	return run_interactive();
}

const struct verb verb_repl = {
	.name = "repl",
	.run = run_repl,
	.summary = "an interactive shell over these commands (script mode on a pipe)",
	.usage = "[-h]",
	.registry = VERB_REGISTRY_SELF,  /* once, kept, and again when it drops */
};
