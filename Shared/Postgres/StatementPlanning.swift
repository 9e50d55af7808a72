/// How PostgreSQL plans a transaction's prepared statements (its `plan_cache_mode`).
public enum StatementPlanning: Sendable {
    /// PostgreSQL's default: a statement gets a plan for its values on each execution until a generic plan looks no
    /// dearer. Right for batches, whose array sizes decide between a nested loop and a hash join.
    case automatic
    /// Each prepared statement is planned once per connection and that plan is reused, whatever the values. For short
    /// requests whose statements probe indexes by key: planning a batch-shaped statement (arrays of one element)
    /// cost 0.3-0.7 ms, more than running it, and PostgreSQL kept planning it, as a one-element plan always looks
    /// cheaper than the generic one. A statement's plan is made when the connection first runs it and kept until
    /// the table's statistics change, so use it only for statements whose plan does not depend on the table's size.
    case reused

    /// The `SET LOCAL` that selects it, if it is not the default.
    var setting: String? {
        switch self {
        case .automatic: nil
        case .reused: "SET LOCAL plan_cache_mode = force_generic_plan"
        }
    }
}
