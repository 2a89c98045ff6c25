/* migrations.c — the registry schema, one versioned step at a time (applied by registry.c). */
#include "internal.h"
#include "migrations.h"

/* Do not change a migration once released: add a new one. */
static const char m1[] =
	"CREATE SCHEMA IF NOT EXISTS admin;\n"
	"CREATE TABLE IF NOT EXISTS admin.database_connections (\n"
	"  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),\n"
	"  region_id text,\n"
	"  connection_name varchar(100) NOT NULL\n"
	"    CONSTRAINT database_connections_connection_name_check\n"
	"    CHECK (connection_name ~ '^[a-z0-9][a-z0-9._-]*$'),\n"
	"  connection_type text NOT NULL DEFAULT 'SHARED'\n"
	"    CONSTRAINT database_connections_connection_type_check\n"
	"    CHECK (connection_type IN ('ADMIN', 'SHARED', 'ANALYTICS', 'DEDICATED')),\n"
	"  host varchar(255) NOT NULL,\n"
	"  port integer NOT NULL DEFAULT 5432\n"
	"    CONSTRAINT database_connections_port_check CHECK (port BETWEEN 1 AND 65535),\n"
	"  database_name varchar(63) NOT NULL,\n"
	"  ssl_mode varchar(20) NOT NULL DEFAULT 'prefer'\n"
	"    CONSTRAINT database_connections_ssl_mode_check\n"
	"    CHECK (ssl_mode IN ('disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full')),\n"
	"  username varchar(255) NOT NULL,\n"
	"  encrypted_password varchar(256),\n"
	"  pool_min_size integer NOT NULL DEFAULT 5,\n"
	"  pool_max_size integer NOT NULL DEFAULT 20,\n"
	"  pool_timeout_seconds integer NOT NULL DEFAULT 30\n"
	"    CONSTRAINT database_connections_pool_timeout_seconds_check CHECK (pool_timeout_seconds > 0),\n"
	"  pool_recycle_seconds integer NOT NULL DEFAULT 3600\n"
	"    CONSTRAINT database_connections_pool_recycle_seconds_check CHECK (pool_recycle_seconds > 0),\n"
	"  pool_pre_ping boolean NOT NULL DEFAULT true,\n"
	"  is_active boolean NOT NULL DEFAULT true,\n"
	"  is_healthy boolean NOT NULL DEFAULT true,\n"
	"  last_health_check timestamptz,\n"
	"  consecutive_failures integer NOT NULL DEFAULT 0,\n"
	"  max_consecutive_failures integer NOT NULL DEFAULT 3\n"
	"    CONSTRAINT database_connections_max_consecutive_failures_check CHECK (max_consecutive_failures > 0),\n"
	"  metadata jsonb NOT NULL DEFAULT '{}',\n"
	"  tags text[] NOT NULL DEFAULT '{}',\n"
	"  created_at timestamptz NOT NULL DEFAULT now(),\n"
	"  updated_at timestamptz NOT NULL DEFAULT now(),\n"
	"  deleted_at timestamptz,\n"
	"  CONSTRAINT database_connections_pool_size_check\n"
	"    CHECK (pool_min_size >= 0 AND pool_min_size <= pool_max_size)\n"
	");\n"
	"CREATE UNIQUE INDEX IF NOT EXISTS database_connections_name_live_key\n"
	"  ON admin.database_connections (connection_name) WHERE deleted_at IS NULL;\n"
	"CREATE INDEX IF NOT EXISTS database_connections_type_idx\n"
	"  ON admin.database_connections (connection_type) WHERE deleted_at IS NULL;\n"
	/* Health columns are written by every health run: they must not make a
	 * row look reconfigured. */
	"CREATE OR REPLACE FUNCTION admin.dbreg_touch_updated_at() RETURNS trigger\n"
	"LANGUAGE plpgsql AS $$\n"
	"BEGIN\n"
	"  IF to_jsonb(NEW) - ARRAY['is_healthy', 'last_health_check', 'consecutive_failures', 'updated_at']\n"
	"     IS DISTINCT FROM\n"
	"     to_jsonb(OLD) - ARRAY['is_healthy', 'last_health_check', 'consecutive_failures', 'updated_at'] THEN\n"
	"    NEW.updated_at := now();\n"
	"  END IF;\n"
	"  RETURN NEW;\n"
	"END $$;\n"
	"DROP TRIGGER IF EXISTS database_connections_touch ON admin.database_connections;\n"
	"CREATE TRIGGER database_connections_touch BEFORE UPDATE ON admin.database_connections\n"
	"  FOR EACH ROW EXECUTE FUNCTION admin.dbreg_touch_updated_at();\n";

/* Tenants, read by resolve-schema; slug and schema rules mirror lib/names.c. */
static const char m2[] =
	"CREATE TABLE IF NOT EXISTS admin.tenants (\n"
	"  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),\n"
	"  slug varchar(63) NOT NULL UNIQUE\n"
	"    CONSTRAINT tenants_slug_check CHECK (\n"
	"      slug ~ '^[a-z0-9][a-z0-9-]*[a-z0-9]$' AND length(slug) BETWEEN 4 AND 54\n"
	"      AND position('--' IN slug) = 0\n"
	"      AND slug NOT IN ('admin', 'api', 'app', 'www', 'mail', 'ftp', 'test', 'dev', 'staging', 'prod',\n"
	"                       'production', 'platform', 'system', 'root', 'tenant', 'organization', 'org',\n"
	"                       'public', 'private', 'shared')),\n"
	"  name text NOT NULL,\n"
	"  schema_name varchar(63) NOT NULL UNIQUE\n"
	"    CONSTRAINT tenants_schema_name_check CHECK (\n"
	"      schema_name ~ '^[a-z][a-z0-9_]*$' AND schema_name NOT LIKE 'pg\\_%'\n"
	"      AND schema_name NOT IN ('information_schema', 'user', 'table', 'index', 'where', 'select',\n"
	"                              'insert', 'update', 'delete', 'create', 'drop', 'alter', 'grant',\n"
	"                              'revoke', 'commit', 'rollback')),\n"
	"  database_connection_id uuid REFERENCES admin.database_connections (id) ON DELETE RESTRICT,\n"
	"  status text NOT NULL DEFAULT 'pending'\n"
	"    CONSTRAINT tenants_status_check CHECK (status IN ('pending', 'provisioning', 'active', 'suspended',\n"
	"                                                     'migrating', 'archived', 'deleted')),\n"
	"  created_at timestamptz NOT NULL DEFAULT now(),\n"
	"  updated_at timestamptz NOT NULL DEFAULT now(),\n"
	"  deleted_at timestamptz\n"
	");\n"
	"CREATE INDEX IF NOT EXISTS tenants_connection_idx ON admin.tenants (database_connection_id);\n";

/* dbreg's own settings; a registry dbreg creates stores passwords in dbreg's format
 * (one it adopts, in Fernet: registry.c's adoption writes that row itself). */
static const char m3[] =
	"CREATE TABLE IF NOT EXISTS admin.dbreg_settings (\n"
	"  name text PRIMARY KEY,\n"
	"  value text NOT NULL\n"
	");\n"
	"INSERT INTO admin.dbreg_settings (name, value) VALUES ('password_format', 'dbreg')\n"
	"  ON CONFLICT (name) DO NOTHING;\n";

/* rotate-password's record of a new password before the server has it (step 1 of
 * its run): what a crashed run is completed or discarded from.  The id as the row's
 * text, and no foreign key: an adopted registry's id column may be text. */
static const char m4[] =
	"CREATE TABLE IF NOT EXISTS admin.dbreg_pending_rotations (\n"
	"  connection_id text PRIMARY KEY,\n"
	"  encrypted_password varchar(256) NOT NULL,\n"
	"  started_at timestamptz NOT NULL DEFAULT now()\n"
	");\n";

/* dbreg health's history and its claims (health --claim): keyed by the row's id as
 * text, without a foreign key, as migration 4 (an adopted id column may be text). */
static const char m5[] =
	"CREATE TABLE IF NOT EXISTS admin.dbreg_health_history (\n"
	"  connection_id text NOT NULL,\n"
	"  checked_at timestamptz NOT NULL DEFAULT now(),\n"
	"  status text NOT NULL CHECK (status IN ('HEALTHY', 'DEGRADED', 'UNHEALTHY', 'UNKNOWN')),\n"
	"  latency_ms double precision,\n"
	"  error text,\n"
	"  checker text NOT NULL,\n"
	"  server_version text,\n"
	"  in_recovery boolean,\n"
	"  expected_role text,\n"
	"  replay_lag_seconds double precision,\n"
	"  replay_lag_bytes bigint,\n"
	"  tls_in_use boolean,\n"
	"  tls_protocol text,\n"
	"  tls_cipher text,\n"
	"  cert_not_after timestamptz\n"
	");\n"
	"CREATE INDEX IF NOT EXISTS dbreg_health_history_connection\n"
	"  ON admin.dbreg_health_history (connection_id, checked_at);\n"
	"CREATE INDEX IF NOT EXISTS dbreg_health_history_checked_at ON admin.dbreg_health_history (checked_at);\n"
	"CREATE TABLE IF NOT EXISTS admin.dbreg_health_claims (\n"
	"  connection_id text PRIMARY KEY,\n"
	"  checker text NOT NULL,\n"
	"  claimed_at timestamptz NOT NULL DEFAULT now(),\n"
	"  expires_at timestamptz NOT NULL\n"
	");\n";

const struct dbreg_migration dbreg_migrations[] = {
	{ 1, "database_connections registry", m1, 0 },
	{ 2, "tenants", m2, 0 },
	{ 3, "dbreg settings", m3, 0 },
	{ 4, "pending password rotations", m4, 1 },
	{ 5, "health history and claims", m5, 1 },
};
const int dbreg_migration_count = (int)ELEMENTSOF(dbreg_migrations);
