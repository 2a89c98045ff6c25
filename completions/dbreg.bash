# bash completion for dbreg(1): commands, options, option values, connection names.
# shellcheck shell=bash disable=SC2207

# Connection names, from the registry itself.  Quiet and quick when the registry
# cannot be reached: no output, no prompt, a short connect timeout.
_dbreg_connection_names()
{
    PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-3} command dbreg list --names \
        </dev/null 2>/dev/null
}

# The options of COMMAND that take an argument.
_dbreg_arg_options()
{
    local conn='--host --port --database --user --type --region --ssl-mode
        --pool-min --pool-max --pool-timeout --pool-recycle --tag --url --pooler --pooler-db'
    case $1 in
        register | update) echo "$conn" ;;
        list) echo '--type --region --tag -o --format' ;;
        show | validate-config) echo '-o --format' ;;
        pool-stats) echo '--tag --timeout --jobs -o --format --output --watch' ;;
        generate-key) echo '--output' ;;
        conninfo) echo '-o --format' ;;
        export) echo '--type --region --tag --pgpass --output' ;;
        import) echo '--from --pgpass --type --region' ;;
        psql | exec) echo '--tenant' ;;
        rotate-key) echo '--to -o --format' ;;
        rotate-password) echo '--length' ;;
        init) echo '--password-format' ;;
        encrypt-password)
            echo '--password-format --for --id --host --port --database --user --ssl-mode'
            ;;
        health)
            echo '--type --region --tag --level --timeout --jobs --threads --warn-ms --crit-ms --cert-warn-days
                --lag-warn -o --format --output --status --sort --every --batch --checker-id --keep --since'
            ;;
        resolve-schema) echo '--context --default-connection -o --format --validate' ;;
    esac
}

# Every option of COMMAND.
_dbreg_options()
{
    local help='-h --help'
    case $1 in
        init) echo "--password-format $help" ;;
        repl) echo "$help" ;;
        register)
            echo "$(_dbreg_arg_options register) --no-pre-ping --inactive
                --password-stdin --no-password --test --replace --dry-run $help"
            ;;
        update)
            echo "$(_dbreg_arg_options update) --no-pre-ping --pre-ping --activate
                --deactivate --inactive --password-stdin --password-prompt --no-password
                --test --dry-run $help"
            ;;
        list)
            echo "--type --region --tag --active --inactive --all -o --format --pretty --names --no-headers
                --no-pager $help"
            ;;
        show) echo "-o --format --pretty --no-pager $help" ;;
        deregister) echo "--purge $help" ;;
        conninfo) echo "-o --format --pretty $help" ;;
        export)
            echo "--type --region --tag --service-file --pgpass --output --force $help"
            ;;
        import) echo "--from --pgpass --type --region --dry-run --replace $help" ;;
        encrypt-password)
            echo "--password-stdin --password-format --for --id --host --port --database --user
                --ssl-mode $help"
            ;;
        generate-key) echo "--output --force $help" ;;
        psql | exec) echo "--tenant $help" ;;
        rotate-key) echo "--dry-run --to --skip-undecryptable -o --format --pretty $help" ;;
        rotate-password) echo "--length --dry-run --force $help" ;;
        health)
            echo "--type --region --tag --level --timeout --jobs --threads --warn-ms --crit-ms --cert-warn-days
                --lag-warn --no-update -o --format --pretty --output --status --failing --sort --no-headers --no-pager
                --claim --every --batch --checker-id --keep --history --since $help"
            ;;
        resolve-schema)
            echo "--context --check --default-connection -o --format --pretty --validate $help"
            ;;
        pool-stats)
            echo "--tag --timeout --jobs -o --format --pretty --output --watch --no-headers --no-pager $help"
            ;;
        validate-config) echo "--offline --strict -o --format --pretty $help" ;;
    esac
}

# The output formats of COMMAND.
_dbreg_formats()
{
    case $1 in
        list) echo 'table wide json csv' ;;
        conninfo) echo 'kv uri json' ;;
        show) echo 'table json' ;;
        pool-stats) echo 'table wide json prometheus' ;;
        health) echo 'table wide json prometheus nagios html' ;;
        resolve-schema) echo 'text json sql' ;;
        validate-config | rotate-key) echo 'text json' ;;
    esac
}

_dbreg()
{
    local cur prev words cword split
    _init_completion -s || return

    local commands='init register update list show conninfo export deregister import encrypt-password
        generate-key health resolve-schema pool-stats validate-config psql exec rotate-key rotate-password
        repl help'

    # The command is the first word that is neither a global option nor its value.
    local i cmd='' cmd_at=0
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            --color)
                case ${words[i + 1]-} in auto | always | never) ((i++)) ;; esac
                ;;
            -*) ;;
            *)
                cmd=${words[i]}
                cmd_at=$i
                break
                ;;
        esac
    done

    if [[ -z $cmd ]]; then
        case $prev in
            --color)
                COMPREPLY=($(compgen -W 'auto always never' -- "$cur"))
                return 0
                ;;
        esac
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W '--version -h --help --color= --no-pager' -- "$cur"))
            [[ ${COMPREPLY-} == *= && ${#COMPREPLY[@]} -eq 1 ]] && compopt -o nospace
        else
            COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        fi
        return 0
    fi

    if [[ $cmd == help ]]; then
        if ((cword == cmd_at + 1)); then
            COMPREPLY=($(compgen -W "${commands/help/}" -- "$cur"))
        fi
        return 0
    fi

    # The value of an option.
    local arg_options
    arg_options=" $(_dbreg_arg_options "$cmd" | tr -s '\n ' ' ') "
    if [[ $prev == -* && $arg_options == *" $prev "* ]]; then
        case $prev in
            --type)
                COMPREPLY=($(compgen -W 'ADMIN SHARED ANALYTICS DEDICATED' -- "$cur"))
                ;;
            --ssl-mode)
                COMPREPLY=($(compgen -W 'disable allow prefer require verify-ca
                    verify-full' -- "$cur"))
                ;;
            -o | --format)
                COMPREPLY=($(compgen -W "$(_dbreg_formats "$cmd")" -- "$cur"))
                ;;
            --password-format | --to)
                COMPREPLY=($(compgen -W 'dbreg fernet' -- "$cur"))
                ;;
            --level)
                COMPREPLY=($(compgen -W 'basic extended deep' -- "$cur"))
                ;;
            --pooler)
                if [[ $cmd == update ]]; then
                    COMPREPLY=($(compgen -W 'pgbouncer none' -- "$cur"))
                else
                    COMPREPLY=($(compgen -W 'pgbouncer' -- "$cur"))
                fi
                ;;
            --sort)
                COMPREPLY=($(compgen -W 'status name latency' -- "$cur"))
                ;;
            --status)
                COMPREPLY=($(compgen -W 'HEALTHY DEGRADED UNHEALTHY UNKNOWN' -- "$cur"))
                ;;
            --context)
                COMPREPLY=($(compgen -W 'admin tenant shared template' -- "$cur"))
                ;;
            --default-connection | --for)
                COMPREPLY=($(compgen -W "$(_dbreg_connection_names)" -- "$cur"))
                ;;
            --output | --pgpass)
                _filedir
                ;;
            --from)
                COMPREPLY=($(compgen -W 'service csv' -- "$cur"))
                ;;
            --host)
                # A Unix-socket directory, or a host name.
                if [[ $cur == /* ]]; then
                    _filedir -d
                else
                    _known_hosts_real -- "$cur"
                fi
                ;;
        esac
        return 0
    fi
    $split && return 0

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(_dbreg_options "$cmd")" -- "$cur"))
        return 0
    fi

    # Positional arguments given so far, not counting option values.
    local npos=0
    for ((i = cmd_at + 1; i < cword; i++)); do
        if [[ ${words[i]} == -* ]]; then
            [[ $arg_options == *" ${words[i]} "* ]] && ((i++))
        else
            ((npos++))
        fi
    done

    case $cmd in
        update | show | deregister | conninfo | rotate-password)
            if ((npos == 0)); then
                COMPREPLY=($(compgen -W "$(_dbreg_connection_names)" -- "$cur"))
            fi
            ;;
        health | pool-stats | export)
            COMPREPLY=($(compgen -W "$(_dbreg_connection_names)" -- "$cur"))
            ;;
        import)
            # The FILE (--from's value is not counted: it takes an argument).
            ((npos == 0)) && _filedir
            ;;
        psql | exec)
            # The connection, then (exec) the command to run on it.
            if ((npos == 0)) && [[ " ${words[*]:cmd_at:cword-cmd_at} " != *" --tenant "* ]]; then
                COMPREPLY=($(compgen -W "$(_dbreg_connection_names)" -- "$cur"))
            elif [[ $cmd == exec ]]; then
                COMPREPLY=($(compgen -c -- "$cur"))
            fi
            ;;
    esac
    return 0
} &&
    complete -F _dbreg dbreg

# ex: filetype=sh
