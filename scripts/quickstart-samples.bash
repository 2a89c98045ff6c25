# quickstart-samples.bash — the sample connections scripts/quickstart registers, kept in one
# place so that a test (tests/bats/validate-config.bats) registers exactly the same.
#
#   . scripts/quickstart-samples.bash
#   quickstart_samples DBREG HOST PORT PASSWORD-FILE
#
# Each sample is a different database of the sandbox, logged in to as its admin role
# (whose password comes from PASSWORD-FILE, never from the command line): two rows with
# the same host, port, database and user would be a conn-duplicate warning, and a fresh
# quickstart passes `dbreg validate-config --strict`.  A name already registered is left
# as it is.

# NAME TYPE DATABASE, one sample each.
quickstart_sample_list=(
	"shared-primary SHARED platform_admin"
	"analytics-replica ANALYTICS postgres"
)

quickstart_samples() {
	local dbreg=$1 host=$2 port=$3 pwfile=$4 sample name type db

	for sample in "${quickstart_sample_list[@]}"; do
		read -r name type db <<<"$sample"
		if "$dbreg" show "$name" >/dev/null 2>&1 </dev/null; then
			echo "$name is already registered"
			continue
		fi
		"$dbreg" register "$name" --type "$type" --region local \
			--host "$host" --port "$port" --database "$db" \
			--user dbreg_admin --tag sample --test --password-stdin <"$pwfile" || return
	done
}
