/* fuzz-decrypt.c — dbreg_stored_decrypt on stored text: made by dbreg_encrypt (v1) or
 * dbreg_encrypt_v2 (bit 1 of MODE) and altered, or raw.
 *
 * The keyring holds one fixed key, 32 bytes of 0x42; v2 texts are bound to one fixed row
 * (binding), and must not decrypt for another (other).  Input: a MODE byte, then
 *   MODE even: POS (2 bytes, little-endian), HOW, XOR, then the plaintext: the plaintext is
 *     encrypted; decrypting that must give exactly the plaintext (or fail when it holds
 *     a NUL, which no password can), and the length limit must be the documented one.
 *     Then one change at POS (HOW: XOR the byte, cut the text there, or drop the byte):
 *     the altered text must never decrypt to a different plaintext, nor (SPEC §3: no
 *     part can be altered undetected) to the same one.
 *   MODE odd: the rest, up to its first NUL, is decrypted as stored text.
 * Nothing may crash or leak either way, and stored text that decrypts is in SPEC §3's
 * format (base64url after the header).  Nonces are deterministic per input. */
#include <sodium.h>

#include "dbreg.h"
#include "fuzz.h"
#include "internal.h"

static struct dbreg_keyring *kr;
static const struct dbreg_binding binding = {
	"01234567-89ab-4cde-8f01-23456789abcd", "db.example.com", "5432", "app", "app_user", "verify-full",
};
static const struct dbreg_binding other = {
	"01234567-89ab-4cde-8f01-23456789abcd", "db.example.com", "5432", "app", "app_user", "disable",
};

/* Nonces from a stream that starts over with each input, so that a crash reproduces:
 * libsodium takes another random source only before sodium_init. */
static uint64_t draws;

static void det_buf(void *buf, size_t size)
{
	static const unsigned char seed[randombytes_SEEDBYTES] = { 'd', 'b', 'r', 'e', 'g' };
	unsigned char s[randombytes_SEEDBYTES];

	memcpy(s, seed, sizeof(s));
	memcpy(s + 8, &draws, sizeof(draws));
	draws++;
	randombytes_buf_deterministic(buf, size, s);
}

static uint32_t det_random(void)
{
	uint32_t v;

	det_buf(&v, sizeof(v));
	return v;
}

static const char *det_name(void)
{
	return "fuzz-deterministic";
}

static randombytes_implementation det_impl = {
	.implementation_name = det_name,
	.random = det_random,
	.buf = det_buf,
};

/* SPEC §3: what follows the header is base64url without padding, and nothing else. */
static int base64url(const char *s)
{
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == strlen(s);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	unsigned char key[DBREG_KEY_BYTES];
	struct dbreg_error err;

	(void)argc;
	(void)argv;
	if (randombytes_set_implementation(&det_impl) != 0 || sodium_init() < 0) {
		fprintf(stderr, "fuzz-decrypt: cannot set up libsodium\n");
		abort();
	}
	memset(key, 0x42, sizeof(key));
	dbreg_error_clear(&err);
	if (dbreg_keyring_new(&kr, &err) < 0 || dbreg_keyring_add(kr, key, &err) < 0) {
		fprintf(stderr, "fuzz-decrypt: cannot make the keyring: %s\n", err.message);
		abort();
	}
	return 0;
}

/* Decrypts stored; on success checks the result is a string and returns it. */
static char *decrypt(const char *stored, struct dbreg_error *err)
{
	char *out = NULL;

	dbreg_error_clear(err);
	if (dbreg_stored_decrypt(kr, NULL, &binding, stored, &out, err) < 0) {
		FUZZ_ASSERT(out == NULL, "a failed decrypt set its output");
		FUZZ_ASSERT(err->kind != DBREG_OK && err->message[0], "a failed decrypt without an error");
		return NULL;
	}
	FUZZ_ASSERT(out != NULL, "decrypt succeeded without a result");
	FUZZ_ASSERT(strlen(out) <= DBREG_PASSWORD_MAX, "decrypted %zu bytes, more than fit", strlen(out));
	return out;
}

static void raw(const uint8_t *data, size_t size)
{
	struct dbreg_error err;
	char id[DBREG_KEY_ID_LEN + 1];
	char *stored = fuzz_string(data, size), *out;

	if (!stored)
		return;
	if (dbreg_stored_key_id(stored, id) == 0)
		FUZZ_ASSERT(strlen(id) == DBREG_KEY_ID_LEN && strncmp(stored + 9, id, DBREG_KEY_ID_LEN) == 0,
		            "key id %s is not the one in the text", id);
	out = decrypt(stored, &err);
	if (out && !(strlen(stored) > 18 && base64url(stored + 18))) {
		fprintf(stderr, "fuzz-decrypt: stored text not in base64url decrypts: ");
		fuzz_print_c_string(stderr, stored, strlen(stored));
		fputc('\n', stderr);
		FUZZ_ASSERT(out == NULL, "SPEC §3: only base64url follows the header");
	}
	dbreg_secret_free(out);
	free(stored);
}

static void altered(const uint8_t *data, size_t size, bool v2)
{
	struct dbreg_error err;
	const char *plain;
	size_t plen, slen, pos;
	char *stored = NULL, *copy, *out;
	unsigned how, x;
	int r;

	if (size < 4)
		return;
	pos = (size_t)data[0] | (size_t)data[1] << 8;
	how = data[2] % 3;
	x = data[3];
	plain = (const char *)data + 4;
	plen = size - 4;

	dbreg_error_clear(&err);
	r = v2 ? dbreg_encrypt_v2(kr, &binding, NULL, plain, plen, &stored, &err)
	       : dbreg_encrypt(kr, plain, plen, &stored, &err);
	if (plen > DBREG_PASSWORD_MAX) {
		FUZZ_ASSERT(r < 0 && err.kind == DBREG_ERR_USAGE, "a %zu-byte password was not refused", plen);
		return;
	}
	FUZZ_ASSERT(r == 0, "a %zu-byte password was refused: %s", plen, err.message);
	slen = strlen(stored);
	FUZZ_ASSERT(slen <= DBREG_STORED_MAX, "stored text of %zu bytes does not fit varchar(256)", slen);

	out = decrypt(stored, &err);
	if (memchr(plain, '\0', plen)) {
		FUZZ_ASSERT(out == NULL, "a password with a NUL came back as \"%s\"", out);
	} else {
		FUZZ_ASSERT(out != NULL, "the unaltered stored text does not decrypt: %s", err.message);
		FUZZ_ASSERT(strlen(out) == plen && memcmp(out, plain, plen) == 0, "decrypted to different text");
	}
	dbreg_secret_free(out);
	if (v2) {
		/* Another row's target (one field changed) is not what it was sealed for. */
		out = NULL;
		FUZZ_ASSERT(dbreg_stored_decrypt(kr, NULL, &other, stored, &out, &err) < 0 && out == NULL,
		            "a v2 text decrypts for another row's target");
	}

	/* One change at pos. */
	copy = strdup(stored);
	FUZZ_ASSERT(copy != NULL, "out of memory");
	pos %= slen;
	switch (how) {
	case 0:  /* flip bits, never to NUL and never to the same byte */
		x = x ? x : 1;
		if (((unsigned char)copy[pos] ^ x) == 0)
			x ^= 0x80;
		copy[pos] = (char)((unsigned char)copy[pos] ^ x);
		break;
	case 1:  /* cut */
		copy[pos] = '\0';
		break;
	default:  /* drop one byte */
		memmove(copy + pos, copy + pos + 1, slen - pos);
		break;
	}
	out = decrypt(copy, &err);
	if (out) {
		fprintf(stderr, "fuzz-decrypt: altered stored text decrypts:\n  stored:  ");
		fuzz_print_c_string(stderr, stored, strlen(stored));
		fprintf(stderr, "\n  altered: ");
		fuzz_print_c_string(stderr, copy, strlen(copy));
		fprintf(stderr, "\n");
		FUZZ_ASSERT(strlen(out) == plen && memcmp(out, plain, plen) == 0, "to a different password");
		/* SPEC §3: "no part of a stored value can be altered undetected". */
		FUZZ_ASSERT(out == NULL, "to the same password");
	}
	dbreg_secret_free(out);
	free(copy);
	free(stored);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	draws = 0;
	if (size < 1)
		return 0;
	if (data[0] & 1)
		raw(data + 1, size - 1);
	else
		altered(data + 1, size - 1, data[0] & 2);
	return 0;
}
