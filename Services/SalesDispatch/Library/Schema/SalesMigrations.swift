import Postgres
import ServiceKit

/// sales-dispatch's schema: the org (units, teams, reps with rotation state), versioned policies, the
/// opportunity library, per-opportunity deadlines (indexed by due time: firing never scans), ownership
/// intervals, decisions with their explanations, follow-ups, conversions and the inputs a simulation replays.
enum SalesMigrations {
    static let all: [PostgresMigration] = [
        RuntimeTables.migration,
        PostgresMigration(version: 2, name: "org, policies and opportunities", sql: """
            CREATE TABLE org_units (
                id text PRIMARY KEY,
                name text NOT NULL,
                parent_id text REFERENCES org_units (id),
                updated_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE TABLE teams (
                id text PRIMARY KEY,
                name text NOT NULL,
                org_unit_id text NOT NULL REFERENCES org_units (id),
                updated_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE TABLE reps (
                employee_id text PRIMARY KEY,
                name text NOT NULL DEFAULT '',
                team_id text NOT NULL REFERENCES teams (id),
                role text NOT NULL CHECK (role IN ('rep', 'lead', 'admin')),
                product_lines text[] NOT NULL DEFAULT '{}',
                weight integer NOT NULL CHECK (weight > 0),
                daily_new_cap integer CHECK (daily_new_cap >= 0),
                max_holding integer CHECK (max_holding >= 0),
                paused boolean NOT NULL DEFAULT false,
                active boolean NOT NULL DEFAULT true,
                left_at timestamptz,
                holding integer NOT NULL DEFAULT 0,
                new_today integer NOT NULL DEFAULT 0,
                claims_today integer NOT NULL DEFAULT 0,
                counts_day text NOT NULL DEFAULT '',
                last_assigned_seq bigint NOT NULL DEFAULT 0,
                pass double precision NOT NULL DEFAULT 0,
                updated_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE INDEX reps_team ON reps (team_id);
            CREATE TABLE policies (
                version integer PRIMARY KEY,
                body jsonb NOT NULL,
                created_by text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE TABLE opportunities (
                id uuid PRIMARY KEY,
                customer_id uuid NOT NULL,
                product_line text NOT NULL,
                status text NOT NULL CHECK (status IN ('queued', 'assigned', 'pool', 'won', 'lost', 'merged')),
                team_id text NOT NULL,
                owner_id text,
                previous_owner_id text,
                cooldown_until timestamptz,
                locked boolean NOT NULL DEFAULT false,
                open_orders integer NOT NULL DEFAULT 0,
                paid boolean NOT NULL DEFAULT false,
                priority integer NOT NULL DEFAULT 0,
                channel text NOT NULL DEFAULT '',
                region text NOT NULL DEFAULT '',
                phone_masked text,
                phone_key text,
                campaign_id text,
                created_at timestamptz NOT NULL,
                assigned_at timestamptz,
                last_follow_up_at timestamptz,
                follow_up_due timestamptz,
                deal_due timestamptz,
                follow_up_warned boolean NOT NULL DEFAULT false,
                deal_warned boolean NOT NULL DEFAULT false,
                merged_into uuid,
                reinquiries integer NOT NULL DEFAULT 0,
                updated_at timestamptz NOT NULL DEFAULT now(),
                CHECK ((status = 'assigned') = (owner_id IS NOT NULL))
            );
            -- One open opportunity per customer and product line: the guard against holding anything twice.
            CREATE UNIQUE INDEX opportunities_open ON opportunities (customer_id, product_line) WHERE status IN ('queued', 'assigned', 'pool');
            CREATE INDEX opportunities_customer ON opportunities (customer_id);
            CREATE INDEX opportunities_created ON opportunities (created_at);
            CREATE INDEX opportunities_owner ON opportunities (owner_id) WHERE status = 'assigned';
            CREATE INDEX opportunities_queue ON opportunities (team_id, priority DESC, created_at) WHERE status = 'queued';
            CREATE INDEX opportunities_pool ON opportunities (priority DESC, created_at) WHERE status = 'pool';
            -- The next timer of each held opportunity (a warning or a deadline); firing one schedules the next.
            CREATE TABLE deadlines (
                opportunity_id uuid PRIMARY KEY,
                kind text NOT NULL,
                due_at timestamptz NOT NULL
            );
            CREATE INDEX deadlines_due ON deadlines (due_at);
            CREATE TABLE ownership (
                opportunity_id uuid NOT NULL,
                employee_id text NOT NULL,
                started_at timestamptz NOT NULL,
                ended_at timestamptz,
                opened_how text NOT NULL,
                closed_how text,
                opened_decision uuid,
                closed_decision uuid
            ) WITH (fillfactor = 80);
            CREATE INDEX ownership_opportunity ON ownership (opportunity_id, started_at);
            CREATE TABLE decisions (
                id uuid PRIMARY KEY,
                opportunity_id uuid,
                kind text NOT NULL,
                policy_version integer NOT NULL,
                actor text NOT NULL,
                detail json NOT NULL,
                created_at timestamptz NOT NULL
            );
            CREATE INDEX decisions_opportunity ON decisions (opportunity_id, created_at);
            -- What a simulation reads back by time (re-inquiries as inputs, recycles to compare).
            CREATE INDEX decisions_replayed ON decisions (created_at) WHERE kind IN ('reinquired', 'recycled');
            CREATE TABLE follow_ups (
                id uuid PRIMARY KEY,
                opportunity_id uuid NOT NULL,
                employee_id text NOT NULL,
                at timestamptz NOT NULL,
                source text NOT NULL,
                outcome text NOT NULL,
                note text,
                next_contact_at timestamptz
            );
            CREATE INDEX follow_ups_opportunity ON follow_ups (opportunity_id, at);
            CREATE INDEX follow_ups_at ON follow_ups (at);
            CREATE TABLE conversions (
                order_id text PRIMARY KEY,
                opportunity_id uuid,
                customer_id uuid NOT NULL,
                status text NOT NULL,
                amount_cents bigint NOT NULL DEFAULT 0,
                credited_to text,
                occurred_at timestamptz NOT NULL
            );
            CREATE INDEX conversions_time ON conversions (occurred_at);
            CREATE TABLE customer_aliases (
                absorbed_id uuid PRIMARY KEY,
                survivor_id uuid NOT NULL
            );
            """),
        PostgresMigration(version: 3, name: "fewer opportunity indexes", sql: """
            -- Every move of an opportunity between queue, rep and pool changes its status, so each is a new row version
            -- with an entry in every index. Two of them had no need to be there: opportunity ids are UUIDv7 of their
            -- creation time, so the primary key serves time ranges; and open opportunities are found by customer
            -- through opportunities_open, so the customer index need only hold the closed ones.
            DROP INDEX opportunities_created;
            CREATE INDEX opportunities_customer_closed ON opportunities (customer_id) WHERE status NOT IN ('queued', 'assigned', 'pool');
            DROP INDEX opportunities_customer;
            """),
        RuntimeTables.bytewiseMessageIDs(version: 4),
        RuntimeTables.consumedPositions(version: 5),
    ]
}
