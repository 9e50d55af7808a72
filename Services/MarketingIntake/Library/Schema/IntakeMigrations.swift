import Postgres
import ServiceKit

/// marketing-intake's schema: lead sources (API keys kept hashed) and every lead it accepted, with the event
/// it emitted (contacts only encrypted), for replay and per-channel/campaign counts.
enum IntakeMigrations {
    static let all: [PostgresMigration] = [
        RuntimeTables.migration,
        PostgresMigration(version: 2, name: "lead sources and leads", sql: """
            CREATE TABLE lead_sources (
                id uuid PRIMARY KEY,
                name text NOT NULL UNIQUE,
                default_channel text NOT NULL,
                key_prefix text NOT NULL UNIQUE,
                key_hash bytea NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                key_rotated_at timestamptz,
                disabled_at timestamptz
            );
            CREATE TABLE leads (
                lead_id uuid PRIMARY KEY,
                source_id uuid NOT NULL REFERENCES lead_sources (id),
                platform_lead_id text,
                channel text NOT NULL,
                campaign_id text,
                ad_group_id text,
                ad_id text,
                phone_key text,
                email_key text,
                wechat_key text,
                phone_masked text,
                phone_region text,
                course_interest text,
                is_test boolean NOT NULL,
                occurred_at timestamptz NOT NULL,
                received_at timestamptz NOT NULL,
                received_via text NOT NULL,
                redeliveries integer NOT NULL DEFAULT 0,
                event bytea NOT NULL
            );
            CREATE UNIQUE INDEX leads_source_platform_lead ON leads (source_id, platform_lead_id) WHERE platform_lead_id IS NOT NULL;
            CREATE INDEX leads_channel_campaign_received ON leads (channel, campaign_id, received_at);
            CREATE INDEX leads_phone_key ON leads (phone_key) WHERE phone_key IS NOT NULL;
            """),
        PostgresMigration(version: 3, name: "webhooks, flood duplicates and campaign costs", sql: """
            -- Webhook settings per source: Standard Webhooks secrets (AES-GCM sealed, base64, several during rotation),
            -- Google Ads' shared key (SHA-256), and the field mapping of platforms that push their own JSON.
            ALTER TABLE lead_sources ADD COLUMN webhook_secrets jsonb NOT NULL DEFAULT '[]',
                ADD COLUMN google_key_hash bytea, ADD COLUMN field_mapping jsonb, ADD COLUMN webhook_updated_at timestamptz;
            -- Deliveries seen, so a replayed webhook-id is refused; kept an hour (the timestamp tolerance is minutes).
            CREATE TABLE webhook_deliveries (
                source_id uuid NOT NULL REFERENCES lead_sources (id),
                webhook_id text NOT NULL,
                received_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (source_id, webhook_id)
            );
            CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_at);
            -- The same phone again within the flood window is counted on the first lead, not emitted again.
            ALTER TABLE leads ADD COLUMN flood_duplicates integer NOT NULL DEFAULT 0, ADD COLUMN click_id text;
            CREATE INDEX leads_phone_received ON leads (phone_key, received_at) WHERE phone_key IS NOT NULL;
            DROP INDEX leads_phone_key;
            CREATE INDEX leads_occurred ON leads (occurred_at);
            -- Spend per channel, campaign and day (the stats time zone's day); a restatement replaces it.
            CREATE TABLE campaign_costs (
                channel text NOT NULL,
                campaign_id text NOT NULL,
                day date NOT NULL,
                spend_minor bigint NOT NULL CHECK (spend_minor >= 0),
                impressions bigint NOT NULL DEFAULT 0,
                clicks bigint NOT NULL DEFAULT 0,
                reported_by text NOT NULL DEFAULT '',
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (channel, campaign_id, day)
            );
            """),
        PostgresMigration(version: 4, name: "leads write less per row", sql: """
            -- Every lead paid for a foreign-key check on its source (a trigger running a locking query per row, 6 us of the
            -- ~45 us a lead cost the database). The service looks the source up in the lead's own transaction, and lead
            -- sources are disabled, never deleted: a trigger refuses deleting one instead.
            ALTER TABLE leads DROP CONSTRAINT leads_source_id_fkey;
            CREATE FUNCTION refuse_lead_source_delete() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'lead sources are disabled, never deleted: leads keep pointing at them' USING ERRCODE = 'restrict_violation';
            END $$;
            CREATE TRIGGER lead_sources_never_deleted BEFORE DELETE ON lead_sources FOR EACH ROW EXECUTE FUNCTION refuse_lead_source_delete();
            -- No query reads leads by (channel, campaign, received_at): the stats filter on occurred_at (leads_occurred).
            DROP INDEX leads_channel_campaign_received;
            -- Hex identity keys and platform ids compare bytewise: the database's C.UTF-8 collation costs a strcoll per
            -- comparison in these two indexes, for an order nothing reads.
            ALTER TABLE leads ALTER COLUMN phone_key TYPE text COLLATE "C", ALTER COLUMN platform_lead_id TYPE text COLLATE "C";
            """),
        RuntimeTables.bytewiseMessageIDs(version: 5),
        RuntimeTables.consumedPositions(version: 6),
    ]
}
