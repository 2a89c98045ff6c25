/* error.c — filling the error object that every fallible call takes. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

_public_ void dbreg_error_clear(struct dbreg_error *err)
{
	if (!err)
		return;
	err->kind = DBREG_OK;
	err->sqlstate[0] = '\0';
	err->message[0] = '\0';
}

int dbreg_fail(struct dbreg_error *err, enum dbreg_errkind kind, const char *fmt, ...)
{
	if (err) {
		va_list ap;

		err->kind = kind;
		err->sqlstate[0] = '\0';
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
	}
	return -1;
}

int dbreg_fail_oom(struct dbreg_error *err)
{
	return dbreg_fail(err, DBREG_ERR_INTERNAL, "out of memory");
}

static void chomp(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = '\0';
}

int dbreg_fail_result(struct dbreg_error *err, const PGresult *res, const char *what)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	enum dbreg_errkind kind = DBREG_ERR_FAILED;

	if (!primary && res)
		primary = PQresultErrorMessage(res);
	if (!primary || !*primary)
		primary = "no answer from the server";
	if (state) {
		/* 08: connection exception; 57P: operator intervention (shutdown). */
		if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)
			kind = DBREG_ERR_UNAVAILABLE;
		else if (strncmp(state, "28", 2) == 0 || strcmp(state, "42501") == 0)
			kind = DBREG_ERR_CONFIG;
	} else if (!res || PQresultStatus(res) == PGRES_FATAL_ERROR) {
		/* No SQLSTATE: libpq itself failed, most often a lost connection. */
		kind = DBREG_ERR_UNAVAILABLE;
	}
	dbreg_fail(err, kind, "%s: %s", what, primary);
	if (err) {
		chomp(err->message);
		if (state)
			snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", state);
	}
	return -1;
}

void dbreg_error_prefix(struct dbreg_error *err, const char *fmt, ...)
{
	char prefix[256];
	size_t plen, mlen;
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	plen = strlen(prefix);
	mlen = strlen(err->message);
	if (plen + mlen + 1 > sizeof(err->message))
		mlen = sizeof(err->message) - plen - 1;
	memmove(err->message + plen, err->message, mlen);
	memcpy(err->message, prefix, plen);
	err->message[plen + mlen] = '\0';
}

const char *dbreg_printable(const char *s, char *buf, size_t size)
{
	size_t o = 0;

	if (!s)
		s = "";
	for (; *s && o + 5 < size; s++) {
		unsigned char c = (unsigned char)*s;

		if (c >= 0x20 && c < 0x7f)
			buf[o++] = (char)c;
		else
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
	}
	if (*s && o + 4 < size) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

const char *dbreg_result_value(const PGresult *res, int row, const char *column)
{
	int col = PQfnumber(res, column);

	if (col < 0 || row < 0 || row >= PQntuples(res) || PQgetisnull(res, row, col))
		return NULL;
	return PQgetvalue(res, row, col);
}

void dbreg_test_crash_point(const char *point)
{
	const char *at = getenv("DBREG_TEST_CRASH_AFTER");

	if (at && strcmp(at, point) == 0)
		raise(SIGKILL);
}
