#!/usr/bin/env bats
# dbreg generate-key: a new 32-byte key as standard base64 with padding, on stdout or in a
# new 0600 file (never overwriting one without --force); the key works as
# DB_ENCRYPTION_KEY and DB_ENCRYPTION_KEY_FILE.  Needs no registry.

# $stderr is set by bats (run --separate-stderr); exports in a test stay in that test.
# shellcheck disable=SC2154,SC2030,SC2031
load helper

KEY_RE='^[A-Za-z0-9+/]{43}=$'

setup() {
	unset DB_ENCRYPTION_KEY DB_ENCRYPTION_KEY_FILE DB_ENCRYPTION_OLD_KEYS ADMIN_DATABASE_URL
}

# The key id SPEC §3 gives a base64 key.
key_id_of() {
	python3 -c 'import base64, hashlib, sys
print(hashlib.blake2b(base64.b64decode(sys.argv[1].strip(), validate=True), digest_size=32).hexdigest()[:8])' "$1"
}

@test "generate-key: prints 44 characters of standard base64 that decode to 32 bytes" {
	run --separate-stderr "$DBREG" generate-key
	assert_success
	assert_equal "${#lines[@]}" 1
	assert_output --regexp "$KEY_RE"
	assert_equal "$(base64 -d <<<"$output" | wc -c)" 32
	# Its id on stderr: BLAKE2b-256 of the raw key, the first 8 hex digits.
	assert_equal "$stderr" "key id $(python3 -c 'import base64, hashlib, sys
print(hashlib.blake2b(base64.b64decode(sys.argv[1]), digest_size=32).hexdigest()[:8])' "$output")"
}

@test "generate-key: two runs give different keys" {
	local a b
	a=$("$DBREG" generate-key)
	b=$("$DBREG" generate-key)
	[[ $a =~ $KEY_RE && $b =~ $KEY_RE ]] || fail "not keys"
	[ "$a" != "$b" ] || fail "the same key twice"
}

@test "generate-key: needs no ADMIN_DATABASE_URL and no key" {
	export ADMIN_DATABASE_URL='postgresql://x@127.0.0.1:1/db'
	run --separate-stderr "$DBREG" generate-key
	assert_success
	assert_output --regexp "$KEY_RE"
}

@test "generate-key: the key works as DB_ENCRYPTION_KEY" {
	local key
	key=$("$DBREG" generate-key)
	export DB_ENCRYPTION_KEY=$key
	run --separate-stderr "$DBREG" encrypt-password "${V2_TARGET[@]}" --password-stdin <<<"gen-key-pw"
	assert_success
	assert_output --regexp "$STORED_RE"
	assert_equal "$(cut -d: -f3 <<<"$output")" "$(key_id_of "$key")"
}

@test "generate-key: --output writes a new 0600 file and prints nothing on stdout" {
	local file=$BATS_TEST_TMPDIR/new.key
	run --separate-stderr "$DBREG" generate-key --output "$file"
	assert_success
	assert_output ''
	[ -f "$file" ] || fail "no file"
	assert_equal "$(stat -c %a "$file")" 600
	run head -n1 "$file"
	assert_output --regexp "$KEY_RE"
	assert_equal "$(wc -l <"$file")" 1
	# The key is not on stderr either.
	[[ $stderr != *"$(head -n1 "$file")"* ]] || fail "the key is on stderr"
}

@test "generate-key: --output makes a 0600 file whatever the umask" {
	local file=$BATS_TEST_TMPDIR/umask.key
	# shellcheck disable=SC2016
	run --separate-stderr bash -c 'umask 000 && "$DBREG" generate-key --output "$1"' bash "$file"
	assert_success
	assert_equal "$(stat -c %a "$file")" 600
	# shellcheck disable=SC2016
	run --separate-stderr bash -c 'umask 000 && "$DBREG" generate-key --output="$1" --force' bash "$file"
	assert_success
	assert_equal "$(stat -c %a "$file")" 600
}

@test "generate-key: the file works as DB_ENCRYPTION_KEY_FILE" {
	local file=$BATS_TEST_TMPDIR/file.key
	"$DBREG" generate-key --output "$file" 2>/dev/null
	export DB_ENCRYPTION_KEY_FILE=$file
	run --separate-stderr "$DBREG" encrypt-password "${V2_TARGET[@]}" --password-stdin <<<"gen-file-pw"
	assert_success
	assert_output --regexp "$STORED_RE"
	assert_equal "$(cut -d: -f3 <<<"$output")" "$(key_id_of "$(cat "$file")")"
}

@test "generate-key: Try to overwrite an existing file without --force" {
	local file=$BATS_TEST_TMPDIR/existing.key
	echo "keep me" >"$file"
	chmod 0600 "$file"
	local before
	before=$(stat -c '%a %i %s' "$file")
	run --separate-stderr "$DBREG" generate-key --output "$file"
	assert_failure 1
	assert_output ''
	[[ $stderr == "dbreg: error: "*"$file"*--force* ]] || fail "stderr: $stderr"
	assert_equal "$(cat "$file")" "keep me"
	assert_equal "$(stat -c '%a %i %s' "$file")" "$before"
}

@test "generate-key: Try to write through a symlink without --force" {
	local target=$BATS_TEST_TMPDIR/target link=$BATS_TEST_TMPDIR/link.key
	echo "target" >"$target"
	ln -s "$target" "$link"
	run --separate-stderr "$DBREG" generate-key --output "$link"
	assert_failure 1
	assert_equal "$(cat "$target")" target
	# A dangling symlink is not followed either.
	ln -s "$BATS_TEST_TMPDIR/nowhere" "$BATS_TEST_TMPDIR/dangling.key"
	run --separate-stderr "$DBREG" generate-key --output "$BATS_TEST_TMPDIR/dangling.key"
	assert_failure 1
	[ ! -e "$BATS_TEST_TMPDIR/nowhere" ] || fail "wrote through a dangling symlink"
}

@test "generate-key: --force replaces an existing file, still 0600" {
	local file=$BATS_TEST_TMPDIR/forced.key
	echo "old key" >"$file"
	chmod 0644 "$file"
	run --separate-stderr "$DBREG" generate-key --output "$file" --force
	assert_success
	assert_output ''
	run head -n1 "$file"
	assert_output --regexp "$KEY_RE"
	assert_equal "$(stat -c %a "$file")" 600
	local first
	first=$(cat "$file")
	run --separate-stderr "$DBREG" generate-key --force --output "$file"
	assert_success
	[ "$(cat "$file")" != "$first" ] || fail "the key was not replaced"
	assert_equal "$(stat -c %a "$file")" 600
	# No temporary files left behind.
	run find "$BATS_TEST_TMPDIR" -maxdepth 1 -name '*forced*'
	assert_output "$file"
}

@test "generate-key: --force creates a file that does not exist yet" {
	local file=$BATS_TEST_TMPDIR/forced-new.key
	run --separate-stderr "$DBREG" generate-key --output "$file" --force
	assert_success
	assert_equal "$(stat -c %a "$file")" 600
}

@test "generate-key: Try to use --force without --output" {
	run --separate-stderr "$DBREG" generate-key --force
	assert_failure 2
	assert_output ''
	[[ $stderr == "dbreg: error: "*--output* ]] || fail "stderr: $stderr"
	[[ $stderr == *"Try 'dbreg generate-key --help' for more information."* ]] || fail "stderr: $stderr"
}

@test "generate-key: Try to give --output without a FILE" {
	run --separate-stderr "$DBREG" generate-key --output
	assert_failure 2
	assert_output ''
}

@test "generate-key: Try to give an argument" {
	run --separate-stderr "$DBREG" generate-key some-file
	assert_failure 2
	assert_output ''
	[ ! -e some-file ] || fail "created some-file"
}

@test "generate-key: --output makes the missing directories, 0700, as the README's command needs on a fresh account" {
	export HOME=$BATS_TEST_TMPDIR/home
	mkdir -m 755 "$HOME"
	# The README's command, as a shell expands it, where there is no ~/.config yet.
	run --separate-stderr bash -c "umask 022 && \"\$DBREG\" generate-key --output ~/.config/dbreg/key"
	assert_success
	assert_output ''
	assert_equal "$stderr" "wrote a new key to $HOME/.config/dbreg/key (key id $(key_id_of "$(cat "$HOME/.config/dbreg/key")"))"
	assert_equal "$(stat -c %a "$HOME/.config" "$HOME/.config/dbreg" "$HOME/.config/dbreg/key" | tr '\n' ' ')" '700 700 600 '
	# A directory that was there keeps its mode.
	assert_equal "$(stat -c %a "$HOME")" 755
	# A second key in an existing directory needs nothing made.
	run --separate-stderr "$DBREG" generate-key --output "$HOME/.config/dbreg/other"
	assert_success
}

@test "generate-key: Try to write below a file, where no directory can be made" {
	touch "$BATS_TEST_TMPDIR/file"
	run --separate-stderr "$DBREG" generate-key --output "$BATS_TEST_TMPDIR/file/dir/key"
	assert_failure 1
	assert_output ''
	assert_equal "$stderr" "dbreg: error: cannot create the directory $BATS_TEST_TMPDIR/file/dir: Not a directory"
}
