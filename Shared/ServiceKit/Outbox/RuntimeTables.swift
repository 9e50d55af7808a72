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

    /// The runtime tables' third version (listed like ``bytewiseMessageIDs(version:)``): how far each partition has
    /// been consumed by records without a CloudEvents id (marketing's plain JSON pushes), which are known as done by
    /// their coordinates: one row per partition rather than one per record. Each had cost a row and two index entries
    /// in `processed_messages` (4.7-7 us of PostgreSQL and 430 bytes of WAL per record at 20k records/s, 25 us for a
    /// batch of one); the function below costs about 0.1 ms per batch, so records with an id keep using
    /// `processed_messages`.
    /// Coordinate ids already recorded there become the starting positions.
    ///
    /// `advance_consumed_positions` moves the batch's partitions from their first to their next offset, and fails with
    /// a unique violation (constraint `consumed_positions_behind`) when a partition was consumed past its first offset
    /// already, or is being consumed by a concurrent transaction that commits first: the consume loop then takes its
    /// careful path, as for a message id seen before.
    public static func consumedPositions(version: Int) -> PostgresMigration {
        PostgresMigration(version: version, name: "runtime: consumed positions per partition", sql: """
            CREATE TABLE consumed_positions (
                topic text COLLATE "C" NOT NULL,
                partition integer NOT NULL,
                next_offset bigint NOT NULL,
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (topic, partition)
            );
            -- Coordinate ids are 'at:' || topic || '/' || partition || '/' || offset (topic names cannot hold '/').
            INSERT INTO consumed_positions (topic, partition, next_offset)
            SELECT topic, split_part(rest, '/', 1)::integer, max(split_part(rest, '/', 2)::bigint) + 1
            FROM (SELECT topic, substr(message_id, length(topic) + 5) AS rest FROM processed_messages
                  WHERE message_id LIKE 'at:%' AND substr(message_id, 4, length(topic)) = topic) AS ids
            GROUP BY 1, 2;
            DELETE FROM processed_messages WHERE message_id LIKE 'at:%';
            CREATE FUNCTION advance_consumed_positions(topics text[], partitions integer[], firsts bigint[], nexts bigint[]) RETURNS void
            -- Generic plans: with custom ones (planned again on every call, as PostgreSQL chose for these array
            -- arguments) a call for one partition took 187 us instead of 93.
            LANGUAGE plpgsql SET search_path FROM CURRENT SET plan_cache_mode = force_generic_plan AS $$
            DECLARE
                moved integer;
            BEGIN
                -- A partition seen for the first time starts at this batch; a concurrent first insert waits here.
                INSERT INTO consumed_positions (topic, partition, next_offset)
                SELECT * FROM unnest(topics, partitions, firsts) ON CONFLICT DO NOTHING;
                -- Row locks: a concurrent batch of the same partition waits, then no longer matches once it commits.
                WITH advanced AS (
                    UPDATE consumed_positions p SET next_offset = b.next_offset, updated_at = now()
                    FROM unnest(topics, partitions, firsts, nexts) AS b(topic, partition, first_offset, next_offset)
                    WHERE p.topic = b.topic AND p.partition = b.partition AND p.next_offset <= b.first_offset
                    RETURNING 1)
                SELECT count(*) INTO moved FROM advanced;
                IF moved < cardinality(topics) THEN
                    RAISE EXCEPTION 'records at offsets already consumed' USING ERRCODE = 'unique_violation', CONSTRAINT = 'consumed_positions_behind';
                END IF;
            END $$;
            """)
    }
}
