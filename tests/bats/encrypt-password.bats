#!/usr/bin/env bats
# dbreg encrypt-password: prints the stored text of SPEC §3 for a password, under the key
# id of the current key, whatever form the key is given in; needs no registry.

# $stderr is set by bats (run --separate-stderr); exports in a test stay in that test.
# shellcheck disable=SC2154,SC2030,SC2031
load helper
load platform

setup() {
	# The sandbox's URL, for the one test that asks a registry; the others run without one.
	SANDBOX_ADMIN_URL=${ADMIN_DATABASE_URL-}
	unset DB_ENCRYPTION_KEY DB_ENCRYPTION_KEY_FILE DB_ENCRYPTION_OLD_KEYS ADMIN_DATABASE_URL
	# 32 raw key bytes, kept as hex; the forms below are made from them.
	KEY_HEX=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
	# The row a dbreg:v2 text is bound to (SPEC §3): its id and five target fields.
	TARGET_FIELDS=(0f6b9a52-3c1e-4d7a-9b2f-5e8c1a7d3b40 db.internal 6432 app app_user verify-full)
	TARGET=(--id "${TARGET_FIELDS[0]}" --host "${TARGET_FIELDS[1]}" --port "${TARGET_FIELDS[2]}"
		--database "${TARGET_FIELDS[3]}" --user "${TARGET_FIELDS[4]}" --ssl-mode "${TARGET_FIELDS[5]}")
}

key_b64() { xxd -r -p <<<"$KEY_HEX" | base64 -w0; }
key_b64url_nopad() { key_b64 | tr '+/' '-_' | tr -d '='; }
key_b64url() { key_b64 | tr '+/' '-_'; }

# The key id SPEC §3 defines: the first 8 hex digits of BLAKE2b-256 of the raw key.
expected_key_id() {
	python3 -c 'import hashlib, sys
print(hashlib.blake2b(bytes.fromhex(sys.argv[1]), digest_size=32).hexdigest()[:8])' "$KEY_HEX"
}

# The length in bytes of the plaintext inside a stored text (nonce and tag taken off).
stored_plain_len() {
	python3 -c 'import base64, sys
p = sys.argv[1].split(":")[3]
print(len(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) - 24 - 16)' "$1"
}

@test "encrypt-password: prints one line in the stored format" {
	export DB_ENCRYPTION_KEY=$KEY_HEX
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --password-stdin <<<"enc-pw-1"
	assert_success
	assert_equal "${#lines[@]}" 1
	assert_output --regexp "$STORED_RE"
	assert_no_secret enc-pw-1
	assert_equal "$(cut -d: -f3 <<<"$output")" "$(expected_key_id)"
	assert_equal "$(stored_plain_len "$output")" 8
	[ "${#output}" -le 256 ] || fail "longer than the column"
}

# sodium_decrypt STORED [FIELD...]: the plaintext of STORED under the key KEY_HEX, decrypted
# by libsodium itself (through python's ctypes) as dbreg-encrypt-password(1) describes:
# XChaCha20-Poly1305-IETF, nonce first, the associated data the header dbreg:v2:<key-id> and
# then NUL and each field (id, host, port, database, user, ssl mode; default: TARGET_FIELDS).
# Exit 3 without libsodium.
sodium_decrypt() {
	local stored=$1
	shift
	[ $# -gt 0 ] || set -- "${TARGET_FIELDS[@]}"
	python3 - "$KEY_HEX" "$stored" "$@" <<-'EOF'
		import base64, ctypes, ctypes.util, sys
		name = ctypes.util.find_library("sodium")
		if not name:
		    sys.exit(3)
		na = ctypes.CDLL(name)
		if na.sodium_init() < 0:
		    sys.exit(3)
		key = bytes.fromhex(sys.argv[1])
		header, _, payload = sys.argv[2].rpartition(":")
		blob = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
		nonce, ct = blob[:24], blob[24:]
		out = ctypes.create_string_buffer(len(ct))
		outlen = ctypes.c_ulonglong(0)
		ad = header.encode()
		if header.startswith("dbreg:v2:"):
		    ad += b"".join(b"\0" + f.encode() for f in sys.argv[3:])
		r = na.crypto_aead_xchacha20poly1305_ietf_decrypt(
		    out, ctypes.byref(outlen), None, ct, ctypes.c_ulonglong(len(ct)),
		    ad, ctypes.c_ulonglong(len(ad)), nonce, key)
		if r != 0:
		    print("decryption failed", file=sys.stderr)
		    sys.exit(1)
		sys.stdout.write(out.raw[:outlen.value].decode())
	EOF
}

@test "encrypt-password: the text decrypts with the key, its header authenticated" {
	DB_ENCRYPTION_KEY=$(key_b64)
	export DB_ENCRYPTION_KEY
	local stored
	stored=$("$DBREG" encrypt-password "${TARGET[@]}" --password-stdin <<<"round-trip pässword")
	run sodium_decrypt "$stored"
	[ "$status" -ne 3 ] || skip "libsodium is not loadable from python"
	assert_success
	assert_output "round-trip pässword"
	# Another header (key id) is not the associated data it was sealed with.
	local other_id
	other_id=$(printf '%08x' $(( (0x$(cut -d: -f3 <<<"$stored") + 1) & 0xffffffff )))
	run sodium_decrypt "dbreg:v2:$other_id:$(cut -d: -f4 <<<"$stored")"
	assert_failure 1
	run sodium_decrypt "dbreg:v1:$(cut -d: -f3- <<<"$stored")"
	assert_failure 1
	# Bound to its row: any other id or target field is not what it was sealed for.
	local i fields
	for i in 0 1 2 3 4 5; do
		fields=("${TARGET_FIELDS[@]}")
		fields[i]=${fields[i]}x
		run sodium_decrypt "$stored" "${fields[@]}"
		assert_failure 1
	done
}

@test "encrypt-password: a dbreg password needs its row: --for NAME or all six target options" {
	export DB_ENCRYPTION_KEY=$KEY_HEX
	run --separate-stderr "$DBREG" encrypt-password --password-stdin <<<"pw"
	assert_failure 2
	assert_equal "$stderr" "dbreg: error: a dbreg password is bound to its row: give --for NAME, or --id, --host, --port, --database, --user and --ssl-mode
Try 'dbreg encrypt-password --help' for more information."
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]:0:10}" --password-stdin <<<"pw"
	assert_failure 2
	[[ $stderr == "dbreg: error: --ssl-mode is missing: "* ]] || fail "$stderr"
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --for x --password-stdin <<<"pw"
	assert_failure 2
	[[ $stderr == *"--for and --id exclude each other"* ]] || fail "$stderr"
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --id not-a-uuid --password-stdin <<<"pw"
	assert_failure 2
	[[ $stderr == *"--id: 'not-a-uuid' is not a UUID"* ]] || fail "$stderr"
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --port 05432 --password-stdin <<<"pw"
	assert_failure 2
	[[ $stderr == *"plain decimal"* ]] || fail "$stderr"
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --ssl-mode sometimes --password-stdin <<<"pw"
	assert_failure 2
	[[ $stderr == *"unknown ssl mode 'sometimes'"* ]] || fail "$stderr"
	run --separate-stderr "$DBREG" encrypt-password --for x --password-stdin <<<"pw"
	assert_failure 78
	[[ $stderr == *"ADMIN_DATABASE_URL is not set"* ]] || fail "$stderr"
	# An upper-case id is the same id: the registry prints a uuid in lower case.
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --id "${TARGET_FIELDS[0]^^}" --password-stdin <<<"case-pw"
	assert_success
	run sodium_decrypt "$output"
	[ "$status" -ne 3 ] || skip "libsodium is not loadable from python"
	assert_output case-pw
}

@test "encrypt-password: the known answer of the man page is the unit test's" {
	local man=$DBREG_SOURCE_ROOT/man/dbreg-encrypt-password.1.scd unit=$DBREG_SOURCE_ROOT/tests/unit/test-secret.c
	local want
	want=$(grep -o 'dbreg:v2:cb2f5160:[A-Za-z0-9_-]*' "$unit" | head -1)
	[ -n "$want" ] || fail "no v2 known answer in $unit"
	grep -qF "$want" "$man" || fail "the man page does not print $want"
}

@test "encrypt-password: two runs give different texts" {
	export DB_ENCRYPTION_KEY=$KEY_HEX
	local a b
	a=$("$DBREG" encrypt-password "${TARGET[@]}" --password-stdin <<<"same-password")
	b=$("$DBREG" encrypt-password "${TARGET[@]}" --password-stdin <<<"same-password")
	[[ $a =~ $STORED_RE && $b =~ $STORED_RE ]] || fail "not stored texts"
	[ "$a" != "$b" ] || fail "the same text twice: the nonce is not fresh"
	assert_equal "$(cut -d: -f3 <<<"$a")" "$(cut -d: -f3 <<<"$b")"
}

@test "encrypt-password: hex, base64 and base64url forms of a key give the same key id" {
	local want form key
	want=$(expected_key_id)
	for form in "$KEY_HEX" "${KEY_HEX^^}" "$(key_b64)" "$(key_b64url)" "$(key_b64url_nopad)" \
		"$(key_b64 | tr -d '=')"; do
		export DB_ENCRYPTION_KEY=$form
		run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --password-stdin <<<"forms-pw"
		[ "$status" -eq 0 ] || fail "key '$form': exit $status: $stderr"
		[[ $output =~ $STORED_RE ]] || fail "key '$form': $output"
		key=$(cut -d: -f3 <<<"$output")
		[ "$key" = "$want" ] || fail "key '$form': key id $key, not $want"
		assert_no_secret "$form"
	done
}

@test "encrypt-password: surrounding whitespace and a trailing newline around the key are ignored" {
	local want
	want=$(expected_key_id)
	DB_ENCRYPTION_KEY="  $(key_b64)"$'\n'
	export DB_ENCRYPTION_KEY
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --password-stdin <<<"ws-pw"
	assert_success
	assert_equal "$(cut -d: -f3 <<<"$output")" "$want"
	export DB_ENCRYPTION_KEY=$'\t'"$KEY_HEX"$' \n'
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --password-stdin <<<"ws-pw"
	assert_success
	assert_equal "$(cut -d: -f3 <<<"$output")" "$want"
}

@test "encrypt-password: takes the key from DB_ENCRYPTION_KEY_FILE (mode 0600)" {
	local file=$BATS_TEST_TMPDIR/key
	key_b64 >"$file"
	echo >>"$file"
	chmod 0600 "$file"
	export DB_ENCRYPTION_KEY_FILE=$file
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --password-stdin <<<"file-pw"
	assert_success
	assert_output --regexp "$STORED_RE"
	assert_equal "$(cut -d: -f3 <<<"$output")" "$(expected_key_id)"
	# Hex in the file, with blanks around it, works as well.
	printf '  %s  \n\n' "$KEY_HEX" >"$file"
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --password-stdin <<<"file-pw"
	assert_success
	assert_equal "$(cut -d: -f3 <<<"$output")" "$(expected_key_id)"
	# 0400 is private too.
	chmod 0400 "$file"
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --password-stdin <<<"file-pw"
	assert_success
}

@test "encrypt-password: reads the first line of stdin, without \\r\\n" {
	export DB_ENCRYPTION_KEY=$KEY_HEX
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --password-stdin < <(printf 'abc\r\nsecond\n')
	assert_success
	assert_equal "$(stored_plain_len "$output")" 3
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --password-stdin < <(printf 'abcdef')
	assert_success
	assert_equal "$(stored_plain_len "$output")" 6
}

@test "encrypt-password: needs no ADMIN_DATABASE_URL" {
	export DB_ENCRYPTION_KEY=$KEY_HEX
	export ADMIN_DATABASE_URL='postgresql://x@127.0.0.1:1/db'
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --password-stdin <<<"offline-pw"
	assert_success
	assert_output --regexp "$STORED_RE"
}

@test "encrypt-password: a password of 138 bytes fits; 139 is refused" {
	export DB_ENCRYPTION_KEY=$KEY_HEX
	local pw
	pw=$(head -c 200 /dev/zero | tr '\0' 'k' | head -c 138)
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --password-stdin <<<"$pw"
	assert_success
	[ "${#output}" -le 256 ] || fail "the stored text is ${#output} characters"
	assert_equal "$(stored_plain_len "$output")" 138
	assert_no_secret "$pw"
	pw=${pw}k
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --password-stdin <<<"$pw"
	assert_failure 2
	assert_output ''
	[[ $stderr == "dbreg: error: "*138* ]] || fail "stderr: $stderr"
	assert_no_secret "$pw"
}

@test "encrypt-password: Try to encrypt without a key" {
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --password-stdin <<<"no-key-pw"
	assert_failure 78
	assert_output ''
	[[ $stderr == "dbreg: error: "*generate-key* ]] || fail "no hint at dbreg generate-key: $stderr"
	assert_no_secret no-key-pw
}

@test "encrypt-password: Try to encrypt with a malformed key" {
	local key
	for key in not-a-key "${KEY_HEX:2}" "${KEY_HEX}00" "$(head -c 31 /dev/urandom | base64 -w0)" \
		"$(head -c 33 /dev/urandom | base64 -w0)" "${KEY_HEX:1}g" ' ' "$(key_b64)!"; do
		export DB_ENCRYPTION_KEY=$key
		run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --password-stdin <<<"bad-key-pw"
		[ "$status" -eq 78 ] || fail "key '$key': exit $status"
		assert_output ''
		[[ $stderr == "dbreg: error: "* ]] || fail "stderr: $stderr"
		assert_no_secret bad-key-pw
	done
}

@test "encrypt-password: Try to use a key file readable by group or others" {
	local file=$BATS_TEST_TMPDIR/key mode
	key_b64 >"$file"
	export DB_ENCRYPTION_KEY_FILE=$file
	for mode in 0644 0640 0604 0666; do
		chmod "$mode" "$file"
		run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --password-stdin <<<"shared-file-pw"
		[ "$status" -eq 78 ] || fail "mode $mode: exit $status"
		assert_output ''
		[[ $stderr == "dbreg: error: "*"$file"* ]] || fail "mode $mode: stderr: $stderr"
	done
}

@test "encrypt-password: Try to use a key file that is missing, empty or malformed" {
	local file=$BATS_TEST_TMPDIR/key
	export DB_ENCRYPTION_KEY_FILE=$BATS_TEST_TMPDIR/no-such-file
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --password-stdin <<<"pw"
	assert_failure 78
	: >"$file"
	chmod 0600 "$file"
	export DB_ENCRYPTION_KEY_FILE=$file
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --password-stdin <<<"pw"
	assert_failure 78
	echo not-a-key >"$file"
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --password-stdin <<<"pw"
	assert_failure 78
	export DB_ENCRYPTION_KEY_FILE=$BATS_TEST_TMPDIR
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --password-stdin <<<"pw"
	assert_failure 78
}

@test "encrypt-password: Try to give both DB_ENCRYPTION_KEY and DB_ENCRYPTION_KEY_FILE" {
	local file=$BATS_TEST_TMPDIR/key
	key_b64 >"$file"
	chmod 0600 "$file"
	export DB_ENCRYPTION_KEY=$KEY_HEX DB_ENCRYPTION_KEY_FILE=$file
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --password-stdin <<<"both-pw"
	assert_failure 78
	assert_output ''
	[[ $stderr == *DB_ENCRYPTION_KEY_FILE* ]] || fail "stderr: $stderr"
}

@test "encrypt-password: Try to read the password without a terminal" {
	export DB_ENCRYPTION_KEY=$KEY_HEX
	run --separate-stderr no_tty "$DBREG" encrypt-password "${TARGET[@]}" </dev/null
	assert_failure 2
	assert_output ''
	[[ $stderr == "dbreg: error: "*--password-stdin* ]] || fail "stderr: $stderr"
}

@test "encrypt-password: Try to encrypt an empty or missing password" {
	export DB_ENCRYPTION_KEY=$KEY_HEX
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --password-stdin <<<""
	assert_failure 2
	assert_output ''
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --password-stdin </dev/null
	assert_failure 2
	assert_output ''
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --password-stdin < <(printf '\r\n')
	assert_failure 2
}

@test "encrypt-password: Try to give the password as an argument" {
	export DB_ENCRYPTION_KEY=$KEY_HEX
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --password-stdin argv-password </dev/null
	assert_failure 2
	assert_output ''
	[[ $stderr == *"Try 'dbreg encrypt-password --help' for more information."* ]] ||
		fail "stderr: $stderr"
}

@test "encrypt-password: --password-format fernet writes the platform's token, with DB_FERNET_PASSPHRASE only" {
	export DB_FERNET_PASSPHRASE=the-platform-passphrase
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --password-stdin --password-format fernet <<<"fernet-pw"
	assert_success
	[[ $output == gAAAAA* ]] || fail "not a Fernet token: ${output:0:12}..."
	assert_equal "$(fernet_token decrypt <<<"$output")" fernet-pw
	assert_no_secret fernet-pw
	assert_no_secret the-platform-passphrase
	# No key is needed for Fernet; without the passphrase it is a configuration error.
	unset DB_FERNET_PASSPHRASE
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --password-stdin --password-format fernet <<<"fernet-pw"
	assert_failure 78
	assert_output ""
	[[ $stderr == *"DB_FERNET_PASSPHRASE or DB_FERNET_PASSPHRASE_FILE"* ]] || fail "stderr: $stderr"
}

@test "encrypt-password: a Fernet password over 127 bytes is refused; 127 fits" {
	export DB_FERNET_PASSPHRASE=the-platform-passphrase
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --password-stdin --password-format fernet \
		<<<"$(head -c 127 /dev/zero | tr '\0' x)"
	assert_success
	[ "${#output}" -le 256 ] || fail "${#output} characters do not fit varchar(256)"
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --password-stdin --password-format fernet \
		<<<"$(head -c 128 /dev/zero | tr '\0' x)"
	assert_failure 2
	assert_output ""
	[[ $stderr == *"at most 127"* ]] || fail "stderr: $stderr"
}

@test "encrypt-password: writes the format of the registry ADMIN_DATABASE_URL names" {
	ADMIN_DATABASE_URL=$SANDBOX_ADMIN_URL require_sandbox
	export ADMIN_DATABASE_URL=$SANDBOX_ADMIN_URL
	fresh_registry
	export DB_ENCRYPTION_KEY=$KEY_HEX DB_FERNET_PASSPHRASE=the-platform-passphrase
	"$DBREG" init >/dev/null
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --password-stdin <<<"reg-pw"
	assert_success
	[[ $output == dbreg:v2:* ]] || fail "$output"
	"$DBREG" init --password-format fernet >/dev/null
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --password-stdin <<<"reg-pw"
	assert_success
	assert_equal "$(fernet_token decrypt <<<"$output")" reg-pw
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --password-stdin --password-format dbreg <<<"reg-pw"
	[[ $output == dbreg:v2:* ]] || fail "$output"
	drop_registry
}

@test "encrypt-password: an admin database that cannot be asked gets dbreg's format, with a warning" {
	export DB_ENCRYPTION_KEY=$KEY_HEX
	export ADMIN_DATABASE_URL='postgresql://x@127.0.0.1:1/db'
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --password-stdin <<<"offline-pw"
	assert_success
	[[ $output == dbreg:v2:* ]] || fail "$output"
	[[ $stderr == *"cannot read the registry's password format"*--password-format* ]] || fail "stderr: $stderr"
}

@test "encrypt-password: Try to give an unknown --password-format" {
	export DB_ENCRYPTION_KEY=$KEY_HEX
	run --separate-stderr "$DBREG" encrypt-password "${TARGET[@]}" --password-stdin --password-format rot13 <<<"pw"
	assert_failure 2
	assert_output ""
	[[ $stderr == *"unknown format 'rot13' (known: dbreg, fernet)"* ]] || fail "stderr: $stderr"
}
