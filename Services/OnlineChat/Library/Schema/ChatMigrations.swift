import Postgres
import ServiceKit

/// online-chat's schema: sites (origins and bot flow as data), conversations (session token kept hashed, names
/// and phones only sealed), their messages, and the contacts each conversation turned into a lead.
enum ChatMigrations {
    static let all: [PostgresMigration] = [
        RuntimeTables.migration,
        PostgresMigration(version: 2, name: "sites, conversations, messages and contacts", sql: """
            CREATE TABLE sites (
                id text PRIMARY KEY,
                name text NOT NULL,
                allowed_origins text[] NOT NULL,
                locale text NOT NULL DEFAULT 'zh',
                bot_flow jsonb NOT NULL,
                flow_version integer NOT NULL DEFAULT 1,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                disabled_at timestamptz
            );
            CREATE TABLE conversations (
                id uuid PRIMARY KEY,
                site_id text NOT NULL REFERENCES sites (id),
                token_hash bytea NOT NULL UNIQUE,
                visitor_id text NOT NULL,
                status text NOT NULL,
                step integer NOT NULL DEFAULT 0,
                attempts integer NOT NULL DEFAULT 0,
                answers jsonb NOT NULL DEFAULT '{}',
                flow_version integer NOT NULL,
                locale text NOT NULL,
                page_url text,
                referrer_url text,
                utm jsonb NOT NULL DEFAULT '{}',
                client_ip text,
                operator_id text,
                lead_id uuid,
                last_seq integer NOT NULL DEFAULT 0,
                visitor_messages integer NOT NULL DEFAULT 0,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                closed_at timestamptz
            );
            CREATE INDEX conversations_open ON conversations (updated_at DESC) WHERE status <> 'closed';
            CREATE INDEX conversations_site_updated ON conversations (site_id, updated_at DESC);
            CREATE TABLE messages (
                conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
                seq integer NOT NULL,
                author text NOT NULL,
                author_id text,
                body text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (conversation_id, seq)
            );
            -- Each phone a conversation yields is emitted once; the conversation keeps one lead id for all of them.
            CREATE TABLE conversation_contacts (
                conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
                phone_key text NOT NULL,
                lead_id uuid NOT NULL,
                emitted_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (conversation_id, phone_key)
            );
            """),
        PostgresMigration(version: 3, name: "the customer of each chat lead, for erasure", sql: """
            -- From identity.customers.v1: which customer a conversation's lead resolved to (merges move it), so an
            -- erasure of that customer finds every conversation to scrub.
            ALTER TABLE conversations ADD COLUMN customer_id uuid, ADD COLUMN erased_at timestamptz;
            CREATE INDEX conversations_lead ON conversations (lead_id) WHERE lead_id IS NOT NULL;
            CREATE INDEX conversations_customer ON conversations (customer_id) WHERE customer_id IS NOT NULL;
            -- Customers absorbed by merges: events of one customer arrive in order, but a merge (keyed by the survivor)
            -- may be read before the absorbed customer's own resolved events; erasure follows these aliases.
            CREATE TABLE customer_aliases (
                alias uuid PRIMARY KEY,
                customer_id uuid NOT NULL
            );
            CREATE INDEX customer_aliases_customer ON customer_aliases (customer_id);
            -- Customers erased (ids only), so a resolved event read after the erasure scrubs at once.
            CREATE TABLE erased_customers (
                customer_id uuid PRIMARY KEY,
                erased_at timestamptz NOT NULL DEFAULT now()
            );
            """),
        PostgresMigration(version: 4, name: "leavers, whose operator tokens are refused", sql: """
            -- From hr.employees.v1: an employee who left is refused at once, whatever their token's expiry.
            CREATE TABLE employees_left (
                employee_id text PRIMARY KEY,
                left_at timestamptz NOT NULL
            );
            """),
        RuntimeTables.bytewiseMessageIDs(version: 5),
        RuntimeTables.consumedPositions(version: 6),
    ]
}
