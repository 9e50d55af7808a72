import Postgres
import ServiceKit

/// identity-merge's schema: the identity graph (customers, identifiers), each customer's leads and tags,
/// operator separations, the versioned rules and every decision with its reason.
enum IdentityMigrations {
    static let all: [PostgresMigration] = [
        RuntimeTables.migration,
        PostgresMigration(version: 2, name: "identity graph", sql: """
            CREATE TABLE rules (
                version integer PRIMARY KEY,
                body jsonb NOT NULL,
                created_by text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE TABLE customers (
                id uuid PRIMARY KEY,
                status text NOT NULL CHECK (status IN ('active', 'merged', 'erased')),
                merged_into uuid,
                registered boolean NOT NULL DEFAULT false,
                registered_at timestamptz,
                first_seen_at timestamptz NOT NULL,
                first_channel text,
                first_campaign text,
                display_name text,
                name_masked text,
                phone_masked text,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                erased_at timestamptz
            );
            CREATE INDEX customers_merged_into ON customers (merged_into) WHERE merged_into IS NOT NULL;
            CREATE TABLE identifiers (
                ident text PRIMARY KEY,
                kind text NOT NULL,
                customer_id uuid NOT NULL,
                mask text NOT NULL,
                linked_at timestamptz NOT NULL
            );
            CREATE INDEX identifiers_customer ON identifiers (customer_id);
            CREATE TABLE customer_leads (
                lead_id text PRIMARY KEY,
                customer_id uuid NOT NULL,
                channel text,
                campaign_id text,
                course_interest text,
                occurred_at timestamptz NOT NULL,
                idents text[] NOT NULL
            );
            CREATE INDEX customer_leads_customer ON customer_leads (customer_id);
            CREATE TABLE tags (
                customer_id uuid NOT NULL,
                tag text NOT NULL,
                source text NOT NULL,
                expires_at timestamptz,
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (customer_id, tag, source)
            );
            CREATE TABLE separations (
                customer_id uuid NOT NULL,
                other_id uuid NOT NULL,
                PRIMARY KEY (customer_id, other_id)
            );
            CREATE TABLE decisions (
                id uuid PRIMARY KEY,
                customer_id uuid NOT NULL,
                action text NOT NULL,
                rule text,
                subject text,
                rules_version integer,
                detail jsonb NOT NULL,
                at timestamptz NOT NULL DEFAULT now()
            );
            CREATE INDEX decisions_customer ON decisions (customer_id, at);
            """),
        RuntimeTables.bytewiseMessageIDs(version: 3),
        RuntimeTables.consumedPositions(version: 4),
    ]
}
