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
    ]
}
