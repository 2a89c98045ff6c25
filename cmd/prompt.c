/* prompt.c — reading passwords: from the terminal without echo, or the first line of stdin. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "dbreg-cmd.h"

/* Longer than any password we accept, so an overlong one is seen, not cut. */
#define PW_BUF 1024

void password_target(char *buf, size_t size, const char *user, const char *host, const char *port,
                     const char *database)
{
	bool v6 = host && strchr(host, ':');

	/* A host list or a socket directory is shown as stored: it says which row it is. */
	snprintf(buf, size, "%s@%s%s%s:%s/%s", user ? user : "", v6 ? "[" : "", host && *host ? host : "localhost",
	         v6 ? "]" : "", port && *port ? port : "5432", database ? database : "");
}

void password_free(char *pw)
{
	sodium_free(pw);  /* wipes */
}

/* Reads one line from fd into buf; returns its length without the newline, -1 on error or EOF with nothing. */
static ssize_t read_line(int fd, char *buf, size_t size, bool *ret_truncated)
{
	size_t n = 0;
	bool got = false;
	char c;

	*ret_truncated = false;
	for (;;) {
		ssize_t r = read(fd, &c, 1);

		if (r < 0 && errno == EINTR)
			return -2;  /* interrupted: the caller restores the terminal */
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got = true;
		if (c == '\n')
			break;
		if (n + 1 < size)
			buf[n++] = c;
		else
			*ret_truncated = true;
	}
	if (!got)
		return -1;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return (ssize_t)n;
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = sig;
}

/* Asks on the terminal with echo off.  A signal that would stop or end us
 * restores the terminal first, then acts as it would have. */
static ssize_t ask(int tty, const char *question, char *buf, size_t size, bool *truncated)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGTSTP };
	struct sigaction sa = { .sa_handler = on_signal }, old_sa[ELEMENTSOF(sigs)];
	struct termios old, quiet;
	bool restore = false;
	ssize_t n = -1;

	interrupted = 0;
	sigemptyset(&sa.sa_mask);  /* no SA_RESTART: read() returns at once */
	for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
		sigaction(sigs[i], &sa, &old_sa[i]);
	if (write(tty, question, strlen(question)) >= 0) {
		if (tcgetattr(tty, &old) == 0) {
			quiet = old;
			quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
			quiet.c_lflag |= ICANON;
			restore = tcsetattr(tty, TCSAFLUSH, &quiet) == 0;
		}
		n = read_line(tty, buf, size, truncated);
		if (restore)
			tcsetattr(tty, TCSAFLUSH, &old);
		if (write(tty, "\n", 1) < 0)
			n = -1;
	}
	for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
		sigaction(sigs[i], &old_sa[i], NULL);
	if (interrupted) {
		raise(interrupted);  /* now with the caller's disposition */
		return -1;
	}
	return n;
}

int password_read(const char *verb, const char *target, enum pw_source src, bool confirm, char **ret,
                  size_t *ret_len)
{
	char *pw = sodium_malloc(PW_BUF), *again = NULL, question[600], *shown = out_escape(target);
	bool truncated = false;
	ssize_t n;
	int tty = -1;

	/* Which password is asked for: the one of app@pg1.internal:5432/app. */
	if (shown && *shown)
		snprintf(question, sizeof(question), "Password for %s: ", shown);
	else
		snprintf(question, sizeof(question), "Password: ");
	free(shown);

	if (!pw) {
		log_error("out of memory");
		return EXIT_NEGATIVE;
	}
	if (src == PW_STDIN && isatty(STDIN_FILENO)) {
		/* Typed, not piped (the REPL, a person at a shell): never echoed. */
		n = ask(STDIN_FILENO, question, pw, PW_BUF, &truncated);
		if (n < 0) {
			password_free(pw);
			return usage_error(verb, "--password-stdin: no password on standard input");
		}
	} else if (src == PW_STDIN) {
		n = read_line(STDIN_FILENO, pw, PW_BUF, &truncated);
		if (n < 0) {
			password_free(pw);
			return usage_error(verb, "--password-stdin: no password on standard input");
		}
	} else {
		tty = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
		if (tty < 0) {
			password_free(pw);
			return usage_error(verb, "no terminal to read the password from (use --password-stdin)");
		}
		n = ask(tty, question, pw, PW_BUF, &truncated);
		if (n >= 0 && confirm) {
			bool t2;
			ssize_t m;

			again = sodium_malloc(PW_BUF);
			if (!again) {
				n = -1;
			} else {
				m = ask(tty, "Password (again): ", again, PW_BUF, &t2);
				if (m != n || t2 != truncated || sodium_memcmp(pw, again, (size_t)n) != 0) {
					password_free(again);
					password_free(pw);
					close(tty);
					log_error("the passwords do not match; nothing was written");
					return EXIT_NEGATIVE;
				}
				password_free(again);
			}
		}
		close(tty);
		if (n < 0) {
			password_free(pw);
			log_error("no password read from the terminal");
			return EXIT_NEGATIVE;
		}
	}
	if (truncated || n > DBREG_PASSWORD_MAX) {
		password_free(pw);
		return usage_error(verb, "the password is longer than %d bytes, the most the registry can store; nothing was written",
		                   DBREG_PASSWORD_MAX);
	}
	if (n == 0) {
		password_free(pw);
		return usage_error(verb, "the password is empty (use --no-password to store none)");
	}
	*ret = pw;
	*ret_len = (size_t)n;
	return 0;
}
