import Postgres

/// The tables the runtime keeps in every service schema: the idempotent-consumer table and the outbox.
/// A service lists ``migration`` as its version 1.
public enum RuntimeTables {
    public static let migration = PostgresMigration(version: 1, name: "runtime: processed messages and outbox", sql: """
        CREATE TABLE processed_messages (
            message_id text PRIMARY KEY,
            topic text NOT NULL,
            processed_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX processed_messages_age ON processed_messages (processed_at);
        CREATE TABLE outbox (
            id bigserial PRIMARY KEY,
            topic text NOT NULL,
            key bytea,
            headers bytea NOT NULL,
            payload bytea NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            sent_at timestamptz
        );
        CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
        CREATE INDEX outbox_sent_age ON outbox (sent_at) WHERE sent_at IS NOT NULL;
        """)

    /// The runtime tables' second version, listed by a service after its own migrations at the version it gives:
    /// message ids compare bytewise (the database's C.UTF-8 collation costs a strcoll per comparison in the primary
    /// key, for an order nothing reads). The partial index of unsent outbox ids stays although the relay deletes rows
    /// on delivery: without it the relay's fetch walked the deleted rows' entries in the primary key (5.6-6.3 ms per
    /// 1,000 rows instead of 2.7 ms).
    public static func bytewiseMessageIDs(version: Int) -> PostgresMigration {
        PostgresMigration(version: version, name: "runtime: message ids compare bytewise", sql: """
            ALTER TABLE processed_messages ALTER COLUMN message_id TYPE text COLLATE "C";
            """)
    }
}
