-- A tenant is one Jira site this service is installed in. Times are Unix seconds (UTC).
CREATE TABLE tenants (
    id               TEXT PRIMARY KEY,
    public_id        TEXT NOT NULL UNIQUE,
    status           TEXT NOT NULL CHECK (status IN ('installed', 'enabled', 'disabled', 'uninstalled')),
    product_base_url TEXT NOT NULL,
    display_url      TEXT,
    help_center_url  TEXT,
    product_type     TEXT,
    description      TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    uninstalled_at   BIGINT
);
CREATE INDEX tenants_uninstalled ON tenants (status, uninstalled_at);

-- How a tenant was installed through Atlassian Connect. Kept apart from `tenants` so that another
-- front door (Forge Remote) can install tenants without a Connect client key.
CREATE TABLE connect_installations (
    tenant_id       TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    client_key      TEXT NOT NULL UNIQUE,
    shared_secret   TEXT NOT NULL,
    installation_id TEXT,
    cloud_id        TEXT,
    installed_at    BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
