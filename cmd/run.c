/* run.c — dbreg psql and dbreg exec: a program on a registered database, its password in a private
 * passfile (never argv, never the environment), dbreg waiting for it as system(3) does. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dbreg-cmd.h"

enum { ARG_TENANT = 0x100 };

static const struct option run_options[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "tenant", required_argument, NULL, ARG_TENANT },
	{},
};

static volatile sig_atomic_t child_pid;

/* SIGTERM and SIGHUP go to the child; dbreg waits for it either way. */
static void forward(int sig)
{
	if (child_pid > 0)
		kill((pid_t)child_pid, sig);
}

/* Starts argv with env; 0 and *ret_pid, else the errno of the exec. */
static int spawn(const char *path, char *const *argv, char *const *env, pid_t *ret_pid)
{
	static const int defaults[] = { SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGPIPE, SIGCHLD };
	posix_spawnattr_t attr;
	sigset_t none, dflt;
	int r;

	sigemptyset(&none);
	sigemptyset(&dflt);
	for (size_t i = 0; i < ELEMENTSOF(defaults); i++)
		sigaddset(&dflt, defaults[i]);
	if ((r = posix_spawnattr_init(&attr)) != 0)
		return r;
	/* The child starts as if from a shell: default dispositions, nothing blocked. */
	posix_spawnattr_setsigdefault(&attr, &dflt);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
	r = strchr(path, '/') ? posix_spawn(ret_pid, path, NULL, &attr, argv, env)
	                      : posix_spawnp(ret_pid, path, NULL, &attr, argv, env);
	posix_spawnattr_destroy(&attr);
	return r;
}

/* psql from PATH, else from pg_config --bindir. */
static int spawn_psql(char **argv, char *const *env, pid_t *ret_pid)
{
	char *pg_argv[] = { "pg_config", "--bindir", NULL }, bindir[4096], path[4200];
	int r = spawn("psql", argv, env, ret_pid), fds[2], status;
	posix_spawn_file_actions_t fa;
	ssize_t n = 0, got;
	pid_t pid;

	if (r != ENOENT)
		return r;
	if (pipe(fds) < 0)
		return r;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	if (posix_spawnp(&pid, "pg_config", &fa, NULL, pg_argv, env) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		close(fds[0]);
		close(fds[1]);
		return r;
	}
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	while ((got = read(fds[0], bindir + n, sizeof(bindir) - 1 - (size_t)n)) > 0 || (got < 0 && errno == EINTR))
		n += got > 0 ? got : 0;
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	bindir[n] = '\0';
	bindir[strcspn(bindir, "\n")] = '\0';
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !bindir[0])
		return r;
	snprintf(path, sizeof(path), "%s/psql", bindir);
	return spawn(path, argv, env, ret_pid);
}

/* The child's status as a shell gives it; r, the spawn's error, is 127 or 126. */
static int child_status(int r, int status, const char *what)
{
	if (r != 0) {
		log_error("%s: %s", what, r == ENOENT ? "command not found" : strerror(r));
		return r == ENOENT ? 127 : 126;
	}
	if (status < 0)
		return EXIT_NEGATIVE;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* Prepares the child's environment and password file, runs the child to its end with SIGINT
 * and SIGQUIT ignored (the terminal sends them to it too) and SIGTERM and SIGHUP forwarded,
 * and removes the file.  From before the file exists until it is gone, a stopping signal is
 * either held or forwarded, never left to kill dbreg with the file behind. */
static int run_child(struct dbreg_ctx *ctx, bool psql, const char *name, const char *tenant, char **argv)
{
	struct sigaction ign = { .sa_handler = SIG_IGN }, fwd = { .sa_handler = forward };
	struct sigaction old_int, old_quit, old_term, old_hup;
	struct dbreg_child *c = NULL;
	struct dbreg_error err;
	sigset_t stopping, old_mask;
	int r, status = 0;
	pid_t pid = 0;

	sigemptyset(&stopping);
	sigaddset(&stopping, SIGINT);
	sigaddset(&stopping, SIGQUIT);
	sigaddset(&stopping, SIGTERM);
	sigaddset(&stopping, SIGHUP);
	sigaddset(&stopping, SIGCHLD);
	sigprocmask(SIG_BLOCK, &stopping, &old_mask);
	dbreg_error_clear(&err);
	if (dbreg_child_prepare(ctx, name, tenant, &c, &err) < 0) {
		sigprocmask(SIG_SETMASK, &old_mask, NULL);
		return fail(&err);
	}
	sigaction(SIGINT, &ign, &old_int);
	sigaction(SIGQUIT, &ign, &old_quit);
	sigaction(SIGTERM, &fwd, &old_term);
	sigaction(SIGHUP, &fwd, &old_hup);
	fflush(stdout);
	fflush(stderr);
	/* The child starts with nothing blocked (posix_spawnattr_setsigmask). */
	r = psql ? spawn_psql(argv, dbreg_child_environ(c), &pid) : spawn(argv[0], argv, dbreg_child_environ(c), &pid);
	if (r == 0) {
		sigset_t forwarded;

		child_pid = pid;
		/* A signal held since the file was made reaches the child now. */
		sigemptyset(&forwarded);
		sigaddset(&forwarded, SIGTERM);
		sigaddset(&forwarded, SIGHUP);
		sigprocmask(SIG_UNBLOCK, &forwarded, NULL);
		while (waitpid(pid, &status, 0) < 0) {
			if (errno != EINTR) {
				status = -1;
				break;
			}
		}
		sigprocmask(SIG_BLOCK, &stopping, NULL);
		child_pid = 0;
	}
	/* The password file goes as soon as the child has gone, before any held signal acts. */
	dbreg_child_free(c);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGQUIT, &old_quit, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGHUP, &old_hup, NULL);
	sigprocmask(SIG_SETMASK, &old_mask, NULL);
	return child_status(r, status, psql ? "psql" : argv[0]);
}

static int run_on_target(const struct verb *v, struct dbreg_ctx *ctx, int argc, char **argv)

{
	bool psql = v == &verb_psql;
	const char *tenant = NULL, *name = NULL;
	struct dbreg_error err;
	char **child_argv;
	int ch, rc, first, n;

	opterr = 0;
	/* '+': the first word that is not an option ends dbreg's (the rest are the child's). */
	while ((ch = getopt_long(argc, argv, "+h", run_options, NULL)) != -1) {
		switch (ch) {
		case 'h':
			verb_help(v, "      --tenant TENANT   the tenant's connection, search_path set to its schema\n"
			             "  -h, --help            show this help\n");
			return EXIT_OK;
		case ARG_TENANT: tenant = optarg; break;
		default:
			return option_error(v->name, ch, argv);
		}
	}
	first = optind;
	if (!tenant) {
		if (first >= argc || strcmp(argv[first], "--") == 0)
			return usage_error(v->name, "a connection NAME (or --tenant TENANT) is required");
		name = argv[first++];
		dbreg_error_clear(&err);
		if (dbreg_check_connection_name(name, &err) < 0)
			return usage_error(v->name, "%s", err.message);
	}
	if (first < argc && strcmp(argv[first], "--") == 0)
		first++;
	if (!psql && first >= argc)
		return usage_error(v->name, "a COMMAND to run is required (dbreg exec NAME -- COMMAND [ARGS...])");
	if (in_repl_script && psql && first >= argc)
		return usage_error(v->name, "an interactive psql cannot read a script's standard input; give it -c or -f");
	rc = connect_registry(ctx);
	if (rc)
		return rc;
	n = argc - first;
	child_argv = calloc((size_t)n + 2, sizeof(*child_argv));
	if (!child_argv) {
		log_error("out of memory");
		return EXIT_NEGATIVE;
	}
	if (psql)
		child_argv[0] = "psql";
	for (int i = 0; i < n; i++)
		child_argv[i + (psql ? 1 : 0)] = argv[first + i];
	rc = run_child(ctx, psql, name, tenant, child_argv);
	free(child_argv);
	return rc;
}

static int run_psql(struct dbreg_ctx *ctx, int argc, char **argv)
{
	return run_on_target(&verb_psql, ctx, argc, argv);
}

static int run_exec(struct dbreg_ctx *ctx, int argc, char **argv)
{
	return run_on_target(&verb_exec, ctx, argc, argv);
}

const struct verb verb_psql = {
	.name = "psql",
	.run = run_psql,
	.summary = "run psql on a registered database, its password never shown",
	.usage = "(NAME | --tenant TENANT) [-- PSQL-ARGS...]",
	.options = run_options,
	.takes_names = true,
	.min_args = 0, .max_args = VERB_ANY,  /* NAME (or --tenant) [-- ARGS...]: run.c reads them */
	.registry = VERB_REGISTRY_SELF,
};

const struct verb verb_exec = {
	.name = "exec",
	.run = run_exec,
	.summary = "run a command with the libpq environment of a registered database",
	.usage = "(NAME | --tenant TENANT) -- COMMAND [ARGS...]",
	.options = run_options,
	.takes_names = true,
	.min_args = 0, .max_args = VERB_ANY,
	.registry = VERB_REGISTRY_SELF,
};
