# fish completion for dbreg(1): commands, options, option values, connection names.

# The command: the first word that is neither a global option nor its value.
function __dbreg_command
    set -l tokens (commandline -opc)
    set -e tokens[1]
    set -l after_color 0
    for t in $tokens
        if test $after_color = 1
            set after_color 0
            contains -- $t auto always never; and continue
        end
        switch $t
            case --color
                set after_color 1
            case '-*'
            case '*'
                echo $t
                return 0
        end
    end
    return 1
end

# True when the command is one of the arguments.
function __dbreg_using
    set -l cmd (__dbreg_command); or return 1
    contains -- $cmd $argv
end

# True when no command has been given yet.
function __dbreg_no_command
    not __dbreg_command >/dev/null
end

# True when the command is one of the arguments and no positional argument follows it
# yet, for commands that take exactly one NAME.
function __dbreg_first_arg_of
    __dbreg_using $argv; or return 1
    set -l tokens (commandline -opc)
    set -l seen 0
    set -l skip 0
    for t in $tokens[2..-1]
        if test $skip = 1
            set skip 0
            continue
        end
        switch $t
            case '--*=*'
            case --host --port --database --user --type --region --ssl-mode --pool-min \
                --pool-max --pool-timeout --pool-recycle --tag --url --pooler --pooler-db -o --format \
                --color
                set skip 1
            case '-*'
            case '*'
                set seen (math $seen + 1)
        end
    end
    # The command itself is the first word seen.
    test $seen -le 1
end

# Connection names, from the registry itself; nothing when it cannot be reached.
function __dbreg_connections
    set -q PGCONNECT_TIMEOUT; or set -lx PGCONNECT_TIMEOUT 3
    command dbreg list --names </dev/null 2>/dev/null
end

set -l commands init register update list show conninfo export deregister import encrypt-password \
    generate-key health resolve-schema pool-stats validate-config psql exec rotate-key rotate-password repl

complete -c dbreg -f

# Global options and the commands.
complete -c dbreg -n __dbreg_no_command -l version -d 'Print the version and exit'
complete -c dbreg -n __dbreg_no_command -s h -l help -d 'Print help and exit'
complete -c dbreg -n __dbreg_no_command -l color -x -a 'auto always never' \
    -d 'When to use colour'
complete -c dbreg -n __dbreg_no_command -l no-pager -d 'Never page the output'
complete -c dbreg -n __dbreg_no_command -a init -d 'Create or upgrade the registry schema'
complete -c dbreg -n __dbreg_no_command -a register -d 'Add a connection'
complete -c dbreg -n __dbreg_no_command -a update -d 'Change fields of a connection'
complete -c dbreg -n __dbreg_no_command -a list -d 'List the registered connections'
complete -c dbreg -n __dbreg_no_command -a show -d 'Show one connection in full'
complete -c dbreg -n __dbreg_no_command -a deregister -d 'Remove a connection'
complete -c dbreg -n __dbreg_no_command -a conninfo -d 'Print the connection string of a connection'
complete -c dbreg -n __dbreg_no_command -a export \
    -d 'Write connections as a pg_service.conf or a .pgpass file'
complete -c dbreg -n __dbreg_no_command -a import \
    -d 'Register the connections of a service file or a CSV'
complete -c dbreg -n __dbreg_no_command -a encrypt-password \
    -d 'Print the encrypted stored text of a password'
complete -c dbreg -n __dbreg_no_command -a generate-key -d 'Make a new encryption key'
complete -c dbreg -n __dbreg_no_command -a health -d 'Check the registered databases'
complete -c dbreg -n __dbreg_no_command -a resolve-schema \
    -d 'Map a tenant to its schema and connection'
complete -c dbreg -n __dbreg_no_command -a pool-stats -d 'Compare pool sizes with server usage'
complete -c dbreg -n __dbreg_no_command -a validate-config -d 'Check the whole configuration'
complete -c dbreg -n __dbreg_no_command -a repl -d 'Interactive mode'
complete -c dbreg -n __dbreg_no_command -a help -d 'Show the help of a command'

# help COMMAND
complete -c dbreg -n '__dbreg_first_arg_of help' -a "$commands"

# Every command
complete -c dbreg -n 'not __dbreg_no_command; and not __dbreg_using help' -s h -l help \
    -d 'Print help and exit'

# register, update
set -l conn '__dbreg_using register update'
complete -c dbreg -n $conn -l host -x -a '(__fish_print_hostnames)' \
    -d 'Host name, IP address or Unix-socket directory'
complete -c dbreg -n $conn -l port -x -d Port
complete -c dbreg -n $conn -l database -x -d 'Database name'
complete -c dbreg -n $conn -l user -x -d 'User name'
complete -c dbreg -n $conn -l type -x -a 'ADMIN SHARED ANALYTICS DEDICATED' -d 'Connection type'
complete -c dbreg -n $conn -l region -x -d 'Region code'
complete -c dbreg -n $conn -l ssl-mode -x \
    -a 'disable allow prefer require verify-ca verify-full' -d 'libpq sslmode'
complete -c dbreg -n $conn -l pool-min -x -d 'Minimum pool size'
complete -c dbreg -n $conn -l pool-max -x -d 'Maximum pool size'
complete -c dbreg -n $conn -l pool-timeout -x -d 'Pool timeout in seconds'
complete -c dbreg -n $conn -l pool-recycle -x -d 'Pool recycle time in seconds'
complete -c dbreg -n $conn -l no-pre-ping -d 'Do not test pooled connections before use'
complete -c dbreg -n $conn -l tag -x -d Tag
complete -c dbreg -n $conn -l url -x -d 'libpq URI or key=value string'
complete -c dbreg -n $conn -l password-stdin -d 'Read the password from standard input'
complete -c dbreg -n $conn -l no-password -d 'No password'
complete -c dbreg -n $conn -l test -d 'Log in to the database before writing'
complete -c dbreg -n $conn -l dry-run -d 'Check everything, write nothing'
complete -c dbreg -n '__dbreg_using register' -l pooler -x -a pgbouncer -d 'The connection is a PgBouncer'
complete -c dbreg -n '__dbreg_using update' -l pooler -x -a 'pgbouncer none' \
    -d 'Make it a PgBouncer, or no longer one'
complete -c dbreg -n $conn -l pooler-db -x -d "The PgBouncer's admin console database"
complete -c dbreg -n '__dbreg_using register' -l inactive -d 'Register as inactive'
complete -c dbreg -n '__dbreg_using register' -l replace \
    -d 'Rewrite an existing connection in place'
complete -c dbreg -n '__dbreg_using update' -l activate -d 'Mark the connection active'
complete -c dbreg -n '__dbreg_using update' -l deactivate -d 'Mark the connection inactive'
complete -c dbreg -n '__dbreg_using update' -l inactive -d 'Mark the connection inactive'
complete -c dbreg -n '__dbreg_using update' -l pre-ping -d 'Test pooled connections before use again'
complete -c dbreg -n '__dbreg_using update' -l password-prompt \
    -d 'New password from the terminal'

# list
complete -c dbreg -n '__dbreg_using list' -l type -x -a 'ADMIN SHARED ANALYTICS DEDICATED' \
    -d 'Only this connection type'
complete -c dbreg -n '__dbreg_using list' -l region -x -d 'Only this region'
complete -c dbreg -n '__dbreg_using list' -l tag -x -d 'Only connections with this tag'
complete -c dbreg -n '__dbreg_using list' -l active -d 'Only active connections'
complete -c dbreg -n '__dbreg_using list' -l inactive -d 'Only inactive connections'
complete -c dbreg -n '__dbreg_using list' -l all -d 'Include deregistered connections'
complete -c dbreg -n '__dbreg_using list' -s o -l format -x -a 'table wide json csv' \
    -d 'Output format'
complete -c dbreg -n '__dbreg_using list' -l names -d 'Names only, one per line'
complete -c dbreg -n '__dbreg_using list health pool-stats' -l no-headers -d 'A table without its header line'
complete -c dbreg -n '__dbreg_using list show health pool-stats' -l no-pager -d 'Never page the output'
complete -c dbreg -n '__dbreg_using list show health pool-stats conninfo resolve-schema rotate-key validate-config' -l pretty -d 'Indented JSON, also when not on a terminal'

# show, deregister, update: one connection name
complete -c dbreg -n '__dbreg_first_arg_of update show deregister psql exec rotate-password' -a '(__dbreg_connections)'
complete -c dbreg -n '__dbreg_using show' -s o -l format -x -a 'table json' -d 'Output format'
complete -c dbreg -n '__dbreg_using deregister' -l purge \
    -d 'Delete the row instead of marking it deleted'

# import FILE
complete -c dbreg -n '__dbreg_using import' -F
complete -c dbreg -n '__dbreg_using import' -l from -x -a 'service csv' -d 'What FILE is'
complete -c dbreg -n '__dbreg_using import' -l pgpass -r -F -d 'Passwords from this .pgpass file'
complete -c dbreg -n '__dbreg_using import' -l type -x -a 'ADMIN SHARED ANALYTICS DEDICATED' \
    -d 'Type of connections that give none'
complete -c dbreg -n '__dbreg_using import' -l region -x -d 'Region of connections that give none'
complete -c dbreg -n '__dbreg_using import' -l dry-run -d 'Check everything, write nothing'
complete -c dbreg -n '__dbreg_using import' -l replace -d 'Rewrite connections already registered'

# init, encrypt-password
complete -c dbreg -n '__dbreg_using init' -l password-format -x -a 'dbreg fernet' \
    -d 'What passwords are written in'
complete -c dbreg -n '__dbreg_using encrypt-password' -l password-stdin \
    -d 'Read the password from standard input'
complete -c dbreg -n '__dbreg_using encrypt-password' -l password-format -x -a 'dbreg fernet' \
    -d 'The stored format to print'
complete -c dbreg -n '__dbreg_using encrypt-password' -l for -x -a '(__dbreg_connections)' \
    -d 'Bind it to this registered connection'
complete -c dbreg -n '__dbreg_using encrypt-password' -l id -x -d 'Bind it to this row id'
complete -c dbreg -n '__dbreg_using encrypt-password' -l host -x -d 'Bind it to this host'
complete -c dbreg -n '__dbreg_using encrypt-password' -l port -x -d 'Bind it to this port'
complete -c dbreg -n '__dbreg_using encrypt-password' -l database -x -d 'Bind it to this database'
complete -c dbreg -n '__dbreg_using encrypt-password' -l user -x -d 'Bind it to this user'
complete -c dbreg -n '__dbreg_using encrypt-password' -l ssl-mode -x \
    -a 'disable allow prefer require verify-ca verify-full' -d 'Bind it to this ssl mode'

# generate-key
complete -c dbreg -n '__dbreg_using generate-key' -l output -r -F \
    -d 'Write the key to a new file'
complete -c dbreg -n '__dbreg_using generate-key' -l force -d 'Replace an existing file'

# health
complete -c dbreg -n '__dbreg_using health' -a '(__dbreg_connections)'
complete -c dbreg -n '__dbreg_using health' -l type -x -a 'ADMIN SHARED ANALYTICS DEDICATED' \
    -d 'Only this connection type'
complete -c dbreg -n '__dbreg_using health' -l region -x -d 'Only this region'
complete -c dbreg -n '__dbreg_using health' -l tag -x -d 'Only connections with this tag'
complete -c dbreg -n '__dbreg_using health' -l level -x -a 'basic extended deep' \
    -d 'Check level'
complete -c dbreg -n '__dbreg_using health' -l timeout -x -d 'Deadline of each check, seconds'
complete -c dbreg -n '__dbreg_using health' -l jobs -x -d 'Checks at once'
complete -c dbreg -n '__dbreg_using health' -l threads -x -d 'Event loops, each with its share of the checks'
complete -c dbreg -n '__dbreg_using health' -l warn-ms -x \
    -d 'Slower than this is DEGRADED, milliseconds'
complete -c dbreg -n '__dbreg_using health' -l crit-ms -x \
    -d 'Slower than this is UNHEALTHY, milliseconds'
complete -c dbreg -n '__dbreg_using health' -l cert-warn-days -x \
    -d 'Deep: a certificate expiring within this many days is DEGRADED'
complete -c dbreg -n '__dbreg_using health' -l lag-warn -x \
    -d 'Deep: a replica replaying further behind is DEGRADED (e.g. 90s, 5m)'
complete -c dbreg -n '__dbreg_using health' -l no-update \
    -d 'Do not write the results to the registry'
complete -c dbreg -n '__dbreg_using health' -l claim -d 'Check only the rows due, claimed in batches'
complete -c dbreg -n '__dbreg_using health' -l every -x -d 'With --claim: how often each row is checked (e.g. 5m)'
complete -c dbreg -n '__dbreg_using health' -l batch -x -d 'With --claim: rows claimed at a time'
complete -c dbreg -n '__dbreg_using health' -l checker-id -x -d 'Who writes the results (default the host name)'
complete -c dbreg -n '__dbreg_using health' -l keep -x -d 'History kept (e.g. 14d)'
complete -c dbreg -n '__dbreg_using health' -l history -d 'How each connection did over a window'
complete -c dbreg -n '__dbreg_using health' -l since -x -d 'With --history: the window (e.g. 7d)'
complete -c dbreg -n '__dbreg_using health' -s o -l format -x \
    -a 'table wide json prometheus nagios html' -d 'Output format'
complete -c dbreg -n '__dbreg_using health' -l output -r -F -d 'Write the report to a file'
complete -c dbreg -n '__dbreg_using health' -l status -x -a 'HEALTHY DEGRADED UNHEALTHY UNKNOWN' \
    -d 'Show only these statuses'
complete -c dbreg -n '__dbreg_using health' -l failing -d 'Show only what is not HEALTHY'
complete -c dbreg -n '__dbreg_using health' -l sort -x -a 'status name latency' -d 'Order of the results'

# resolve-schema
complete -c dbreg -n '__dbreg_using resolve-schema' -l context -x \
    -a 'admin tenant shared template' -d 'Schema context'
complete -c dbreg -n '__dbreg_using resolve-schema' -l check -d 'Confirm the schema exists'
complete -c dbreg -n '__dbreg_using resolve-schema' -l default-connection -x \
    -a '(__dbreg_connections)' -d 'Connection of tenants without one'
complete -c dbreg -n '__dbreg_using resolve-schema' -s o -l format -x -a 'text json sql' \
    -d 'Output format'
complete -c dbreg -n '__dbreg_using resolve-schema' -l validate -x \
    -d 'Check a name against the schema rules'

# pool-stats
complete -c dbreg -n '__dbreg_using pool-stats' -a '(__dbreg_connections)'
complete -c dbreg -n '__dbreg_using pool-stats' -s o -l format -x -a 'table wide json prometheus' \
    -d 'Output format'
complete -c dbreg -n '__dbreg_using pool-stats' -l output -r -F -d 'Write the report to FILE atomically'
complete -c dbreg -n '__dbreg_using pool-stats' -l watch -x -d 'Refresh every SECONDS'
complete -c dbreg -n '__dbreg_using pool-stats' -l tag -x -d 'Only connections with this tag'
complete -c dbreg -n '__dbreg_using pool-stats' -l timeout -x -d 'Deadline of each server, seconds'
complete -c dbreg -n '__dbreg_using pool-stats' -l jobs -x -d 'Servers asked at once'

# validate-config
complete -c dbreg -n '__dbreg_using validate-config' -l offline \
    -d 'Skip the checks that need the network'
complete -c dbreg -n '__dbreg_using validate-config' -l strict -d 'Warnings fail too'
complete -c dbreg -n '__dbreg_using validate-config' -s o -l format -x -a 'text json' \
    -d 'Output format'

# psql, exec
complete -c dbreg -n __dbreg_no_command -a psql -d 'Run psql on a registered database'
complete -c dbreg -n __dbreg_no_command -a exec -d 'Run a command with the libpq environment of a registered database'
complete -c dbreg -n '__dbreg_using psql exec' -l tenant -x -d "The tenant's connection, search_path at its schema"

# conninfo: one connection name
complete -c dbreg -n '__dbreg_first_arg_of conninfo' -a '(__dbreg_connections)'
complete -c dbreg -n '__dbreg_using conninfo' -s o -l format -x -a 'kv uri json' -d 'Output format'

# export
complete -c dbreg -n '__dbreg_using export' -a '(__dbreg_connections)'
complete -c dbreg -n '__dbreg_using export' -l type -x -a 'ADMIN SHARED ANALYTICS DEDICATED' \
    -d 'Only this connection type'
complete -c dbreg -n '__dbreg_using export' -l region -x -d 'Only this region'
complete -c dbreg -n '__dbreg_using export' -l tag -x -d 'Only connections with this tag'
complete -c dbreg -n '__dbreg_using export' -l service-file -d 'Write a pg_service.conf'
complete -c dbreg -n '__dbreg_using export' -l pgpass -r -F -d 'Write a password file, mode 0600'
complete -c dbreg -n '__dbreg_using export' -l output -r -F -d 'Write the service file to a file'
complete -c dbreg -n '__dbreg_using export' -l force -d 'Replace an existing file'

# rotate-key
complete -c dbreg -n __dbreg_no_command -a rotate-key -d 'Re-encrypt every stored password with the current key'
complete -c dbreg -n '__dbreg_using rotate-key' -l dry-run -d 'Say what would be re-encrypted, write nothing'
complete -c dbreg -n '__dbreg_using rotate-key' -l to -x -a 'dbreg fernet' -d 'The format to re-encrypt into'
complete -c dbreg -n '__dbreg_using rotate-key' -l skip-undecryptable -d 'Leave passwords that do not decrypt'
complete -c dbreg -n '__dbreg_using rotate-key' -s o -l format -x -a 'text json' -d 'Output format'

# rotate-password NAME
complete -c dbreg -n __dbreg_no_command -a rotate-password \
    -d 'Set a new random password on a connection\'s server and in the registry'
complete -c dbreg -n '__dbreg_using rotate-password' -l length -x -d 'Characters in the new password (16..127)'
complete -c dbreg -n '__dbreg_using rotate-password' -l dry-run -d 'Check and log in, change nothing'
complete -c dbreg -n '__dbreg_using rotate-password' -l force \
    -d 'Rotate even when other connections log in as the same user'
