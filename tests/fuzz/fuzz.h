/* fuzz.h — what every libFuzzer harness in tests/fuzz shares. */
#ifndef DBREG_FUZZ_H
#define DBREG_FUZZ_H

#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libFuzzer's entry points (declared here for -Wmissing-prototypes). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A property broke: say which, and abort so that libFuzzer keeps the input. */
#define FUZZ_ASSERT(cond, ...)                                                       \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "%s:%d: property broken: %s\n", __FILE__, __LINE__, #cond); \
			fprintf(stderr, "  " __VA_ARGS__);                             \
			fputc('\n', stderr);                                           \
			abort();                                                       \
		}                                                                      \
	} while (0)

/* The input up to its first NUL, as a NUL-terminated string in its own malloc'd
 * buffer (so that ASan sees any read past the end); NULL only when out of memory. */
static inline char *fuzz_string(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t n = nul ? (size_t)(nul - data) : size;
	char *s = malloc(n + 1);

	if (!s)
		return NULL;
	if (n)
		memcpy(s, data, n);
	s[n] = '\0';
	return s;
}

/* Writes s as a C string literal (for a message that shows an input). */
static inline void fuzz_print_c_string(FILE *fp, const char *s, size_t n)
{
	fputc('"', fp);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			fprintf(fp, "\\%c", c);
		else if (c >= 0x20 && c < 0x7f)
			fputc(c, fp);
		else
			fprintf(fp, i + 1 < n && isxdigit((unsigned char)s[i + 1]) ? "\\x%02x\"\"" : "\\x%02x", c);
	}
	fputc('"', fp);
}

#endif
