/* fuzz-key.c — dbreg_key_parse and the keyring on any text.
 *
 * The input up to its first NUL is the key text.  Properties: nothing crashes or leaks;
 * a key that parses has an id of 8 lowercase hex digits, and its text (blanks around
 * aside) is 64, 43 or 44 characters of hex or base64; a text that parses is one that
 * dbreg_keyring_add_text takes too, and the keyring then encrypts with that key. */
#include <ctype.h>

#include "dbreg.h"
#include "fuzz.h"
#include "internal.h"

static int is_id(const char *id)
{
	for (int i = 0; i < DBREG_KEY_ID_LEN; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return 0;
	return id[DBREG_KEY_ID_LEN] == '\0';
}

/* SPEC §3/§4: 32 bytes as 64 hex digits or base64 (padding optional), white space around
 * ignored: whatever parses is 64, 43 or 44 characters once trimmed. */
static int plausible_length(const char *text)
{
	size_t n;

	while (isspace((unsigned char)*text))
		text++;
	n = strlen(text);
	while (n > 0 && isspace((unsigned char)text[n - 1]))
		n--;
	return n == 64 || n == 43 || n == 44;
}

/* ... and holds only hex digits, or only characters of the two base64 alphabets. */
static int plausible_chars(const char *text)
{
	static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_=";
	size_t n;

	while (isspace((unsigned char)*text))
		text++;
	n = strlen(text);
	while (n > 0 && isspace((unsigned char)text[n - 1]))
		n--;
	return strspn(text, chars) >= n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char key[DBREG_KEY_BYTES];
	char id[DBREG_KEY_ID_LEN + 2];
	struct dbreg_keyring *kr = NULL;
	struct dbreg_error err;
	char *text = fuzz_string(data, size);
	int parsed, added;

	if (!text)
		return 0;

	dbreg_error_clear(&err);
	parsed = dbreg_key_parse(text, key, &err) == 0;
	if (parsed) {
		memset(id, 'X', sizeof(id));
		dbreg_key_id(key, id);
		FUZZ_ASSERT(is_id(id), "key id \"%.9s\" is not 8 lowercase hex digits", id);
		if (!plausible_length(text) || !plausible_chars(text)) {
			fprintf(stderr, "fuzz-key: this key text parsed: ");
			fuzz_print_c_string(stderr, text, strlen(text));
			fputc('\n', stderr);
		}
		FUZZ_ASSERT(plausible_length(text), "a key of unexpected length parsed");
		FUZZ_ASSERT(plausible_chars(text), "a key with characters of neither hex nor base64 parsed");
	} else {
		FUZZ_ASSERT(err.kind != DBREG_OK && err.message[0], "a refusal without an error");
	}

	dbreg_error_clear(&err);
	FUZZ_ASSERT(dbreg_keyring_new(&kr, &err) == 0, "dbreg_keyring_new: %s", err.message);
	added = dbreg_keyring_add_text(kr, text, &err) == 0;
	FUZZ_ASSERT(added == parsed, "dbreg_key_parse %s but dbreg_keyring_add_text %s", parsed ? "took it" : "refused it",
	            added ? "took it" : "refused it");
	FUZZ_ASSERT(dbreg_keyring_count(kr) == added, "keyring holds %d keys", dbreg_keyring_count(kr));
	if (added) {
		char *stored = NULL, sid[DBREG_KEY_ID_LEN + 1];

		FUZZ_ASSERT(dbreg_encrypt(kr, "pw", 2, &stored, &err) == 0, "dbreg_encrypt: %s", err.message);
		FUZZ_ASSERT(dbreg_stored_key_id(stored, sid) == 0 && strcmp(sid, id) == 0,
		            "stored text %s does not name key %s", stored, id);
		free(stored);
	}
	dbreg_keyring_free(kr);
	free(text);
	return 0;
}
