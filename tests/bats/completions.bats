#!/usr/bin/env bats
# Shell completions: bash completes commands, options, values and connection names
# (without needing a database); the zsh and fish scripts parse, and fish completes.

load helper

BASH_COMPLETION_SCRIPT=/usr/share/bash-completion/bash_completion

setup() {
	COMPLETIONS=$DBREG_SOURCE_ROOT/completions
	STUB_DIR=$BATS_TEST_TMPDIR/stub
}

# bash_complete LINE: the candidates bash offers with the cursor at the end of LINE,
# one per line, sorted.  LINE ending in a space completes a new, empty word.
bash_complete() {
	[ -r "$BASH_COMPLETION_SCRIPT" ] || skip "bash-completion is not installed"
	# shellcheck disable=SC2016
	bash --norc --noprofile -c '
		source "$1" || exit 1
		source "$2" || exit 1
		compopt() { :; }    # a builtin that works only while bash itself completes
		COMP_LINE=$3
		COMP_POINT=${#COMP_LINE}
		read -ra COMP_WORDS <<<"$COMP_LINE"
		[[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		COMPREPLY=()
		_dbreg dbreg "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}" || exit 1
		if ((${#COMPREPLY[@]})); then printf "%s\n" "${COMPREPLY[@]}" | sort; fi
	' bash "$BASH_COMPLETION_SCRIPT" "$COMPLETIONS/dbreg.bash" "$1"
}

# bash_options COMMAND: the options the bash completion knows for COMMAND, one per line.
bash_options() {
	# shellcheck disable=SC2016
	bash --norc --noprofile -c 'source "$1" && _dbreg_options "$2"' \
		bash "$COMPLETIONS/dbreg.bash" "$1" | tr ' ' '\n' | sed '/^$/d' | sort -u
}

# man_options PAGE: the options a man page defines in its OPTIONS section (the terms,
# each followed by its indented description).
man_options() {
	awk '/^# OPTIONS/ { on = 1; next } /^# / { on = 0 }
		on && /^\t/ && prev ~ /^\*-/ { print prev } { prev = $0 }' "$1" |
		grep -o '\*-[-a-z]*\*' | tr -d '*' | sort -u
}

# A dbreg on PATH that lists the given names, or fails like an unreachable registry.
stub_dbreg_listing() {
	mkdir -p "$STUB_DIR"
	{
		echo '#!/bin/sh'
		# shellcheck disable=SC2016
		echo '[ "$1 $2" = "list --names" ] || exit 2'
		printf 'echo %s\n' "$@"
	} >"$STUB_DIR/dbreg"
	chmod +x "$STUB_DIR/dbreg"
	PATH=$STUB_DIR:$PATH
}

stub_dbreg_failing() {
	mkdir -p "$STUB_DIR"
	printf '#!/bin/sh\necho "dbreg: error: connecting to the admin database: refused" >&2\nexit 69\n' \
		>"$STUB_DIR/dbreg"
	chmod +x "$STUB_DIR/dbreg"
	PATH=$STUB_DIR:$PATH
}

@test "completions: bash completes commands" {
	run bash_complete "dbreg re"
	assert_success
	assert_output "$(printf '%s\n' register repl resolve-schema)"
}

@test "completions: bash completes global options and --color values" {
	run bash_complete "dbreg --"
	assert_success
	assert_line --version
	assert_line --help
	assert_line --color=
	run bash_complete "dbreg --color "
	assert_output "$(printf '%s\n' always auto never)"
	run bash_complete "dbreg --color always li"
	assert_output list
}

@test "completions: bash completes the options of register" {
	run bash_complete "dbreg register --"
	assert_success
	local opt
	for opt in --host --port --database --user --type --region --ssl-mode --pool-min \
		--pool-max --pool-timeout --pool-recycle --no-pre-ping --inactive --tag --url \
		--password-stdin --no-password --test --replace --dry-run --help; do
		assert_line -- "$opt"
	done
	refute_line -- --purge
	refute_line -- --password-prompt
}

@test "completions: bash completes --type values" {
	run bash_complete "dbreg register db1 --type "
	assert_success
	assert_output "$(printf '%s\n' ADMIN ANALYTICS DEDICATED SHARED)"
	run bash_complete "dbreg register db1 --type=AN"
	assert_output ANALYTICS
	run bash_complete "dbreg list --type D"
	assert_output DEDICATED
}

@test "completions: bash completes --ssl-mode values" {
	run bash_complete "dbreg update db1 --ssl-mode "
	assert_success
	assert_output "$(printf '%s\n' allow disable prefer require verify-ca verify-full)"
}

@test "completions: bash completes the formats of each command" {
	run bash_complete "dbreg list -o "
	assert_output "$(printf '%s\n' csv json table wide)"
	run bash_complete "dbreg show db1 --format "
	assert_output "$(printf '%s\n' json table)"
	run bash_complete "dbreg health -o "
	assert_output "$(printf '%s\n' html json nagios prometheus table wide)"
	run bash_complete "dbreg resolve-schema -o "
	assert_output "$(printf '%s\n' json sql text)"
	run bash_complete "dbreg validate-config -o "
	assert_output "$(printf '%s\n' json text)"
}

@test "completions: bash completes --level and --context values" {
	run bash_complete "dbreg health --level "
	assert_output "$(printf '%s\n' basic deep extended)"
	run bash_complete "dbreg resolve-schema --context "
	assert_output "$(printf '%s\n' admin shared template tenant)"
}

@test "completions: bash completes a file name for --output" {
	touch "$BATS_TEST_TMPDIR/keyfile"
	run bash_complete "dbreg generate-key --output $BATS_TEST_TMPDIR/key"
	assert_success
	assert_output "$BATS_TEST_TMPDIR/keyfile"
}

@test "completions: bash completes commands after help" {
	run bash_complete "dbreg help gen"
	assert_output generate-key
}

@test "completions: bash completes connection names from dbreg list --names" {
	stub_dbreg_listing shared-primary shared-replica analytics-eu
	run bash_complete "dbreg show sh"
	assert_success
	assert_output "$(printf '%s\n' shared-primary shared-replica)"
	run bash_complete "dbreg update --host db2 "
	assert_output "$(printf '%s\n' analytics-eu shared-primary shared-replica)"
	run bash_complete "dbreg health shared-primary a"
	assert_output analytics-eu
	run bash_complete "dbreg resolve-schema --default-connection sh"
	assert_output "$(printf '%s\n' shared-primary shared-replica)"
	# show takes one NAME only; register names a new connection.
	run bash_complete "dbreg show shared-primary "
	assert_output ""
	run bash_complete "dbreg register "
	assert_output ""
}

@test "completions: bash completes no names, quietly, when dbreg list fails" {
	stub_dbreg_failing
	run --separate-stderr bash_complete "dbreg show "
	assert_success
	assert_output ""
	[ -z "$stderr" ] || fail "stderr: $stderr"
}

@test "completions: bash completes no names, quietly, without a registry" {
	# The real dbreg, with an admin database that refuses connections.
	local dbreg
	dbreg=$(command -v "$DBREG") || skip "dbreg is not built"
	PATH=$(dirname "$dbreg"):$PATH
	export ADMIN_DATABASE_URL='postgresql://127.0.0.1:1/none'
	run --separate-stderr bash_complete "dbreg deregister "
	assert_success
	assert_output ""
	[ -z "$stderr" ] || fail "stderr: $stderr"
}

@test "completions: bash knows every command dbreg(1) lists" {
	local cmd
	run bash_complete "dbreg "
	for cmd in $(awk '/^# COMMANDS/ { on = 1; next } /^# / { on = 0 }
			on && /^\*[a-z]/' "$DBREG_SOURCE_ROOT/man/dbreg.1.scd" |
			sed -E 's/^\*([a-z-]+)\*.*/\1/'); do
		assert_line "$cmd"
	done
}

@test "completions: bash offers exactly the options each man page documents" {
	local page cmd
	for page in "$DBREG_SOURCE_ROOT"/man/dbreg-*.1.scd; do
		cmd=$(basename "$page" .1.scd)
		cmd=${cmd#dbreg-}
		run diff <(man_options "$page") <(bash_options "$cmd")
		[ "$status" -eq 0 ] ||
			fail "$cmd: man page (<) and bash completion (>) differ: $output"
	done
}

@test "completions: zsh script parses" {
	command -v zsh >/dev/null || skip "zsh is not installed"
	run zsh -n "$COMPLETIONS/_dbreg"
	assert_success
	assert_output ""
}

@test "completions: fish script parses" {
	command -v fish >/dev/null || skip "fish is not installed"
	run fish -n "$COMPLETIONS/dbreg.fish"
	assert_success
	assert_output ""
}

@test "completions: fish completes commands" {
	command -v fish >/dev/null || skip "fish is not installed"
	run fish --no-config -c "source '$COMPLETIONS/dbreg.fish'; complete -C 'dbreg li'"
	assert_success
	assert_line --regexp $'^list\t'
	run fish --no-config -c "source '$COMPLETIONS/dbreg.fish'; complete -C 'dbreg re'"
	assert_line --regexp $'^register\t'
	assert_line --regexp $'^repl\t'
	assert_line --regexp $'^resolve-schema\t'
}

@test "completions: fish completes option values and connection names" {
	command -v fish >/dev/null || skip "fish is not installed"
	stub_dbreg_listing shared-primary analytics-eu
	run fish --no-config -c "source '$COMPLETIONS/dbreg.fish'; complete -C 'dbreg register x --type '"
	assert_line --regexp $'^DEDICATED\t'
	run fish --no-config -c "source '$COMPLETIONS/dbreg.fish'; complete -C 'dbreg show '"
	assert_line shared-primary
	assert_line analytics-eu
}

# formats_of COMMAND: the formats dbreg's own verb table gives COMMAND, from its --help.
formats_of() {
	"$DBREG" "$1" --help | sed -n 's/^Formats (-o): //p' | tr ' ' '\n' | sed '/^$/d' | sort
}

@test "completions: bash, zsh and fish offer the formats of dbreg's verb table, for every command" {
	local cmd want
	for cmd in $("$DBREG" --help | awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }'); do
		want=$(formats_of "$cmd")
		# shellcheck disable=SC2016
		run bash --norc --noprofile -c 'source "$1" && _dbreg_formats "$2"' bash "$COMPLETIONS/dbreg.bash" "$cmd"
		assert_equal "$(tr ' ' '\n' <<<"$output" | sed '/^$/d' | sort)" "$want"
		[ -n "$want" ] || continue
		# zsh and fish: the same words on the command's -o line.
		local zline fline
		zline=$(awk -v c="    $cmd)" '$0 == c || index($0, c) == 1 { on = 1 } on && /--format=/ { print; exit }' \
			"$COMPLETIONS/_dbreg")
		[[ $zline =~ :format:\(([^\)]*)\) ]] || fail "zsh: no formats for $cmd"
		assert_equal "$(tr ' ' '\n' <<<"${BASH_REMATCH[1]}" | sort)" "$want"
		fline=$(grep -E "__dbreg_using $cmd'.* -l format" -A1 "$COMPLETIONS/dbreg.fish" | tr -d '\n')
		[[ $fline =~ -a\ \'([^\']*)\' ]] || fail "fish: no formats for $cmd"
		assert_equal "$(tr ' ' '\n' <<<"${BASH_REMATCH[1]}" | sort)" "$want"
	done
}
