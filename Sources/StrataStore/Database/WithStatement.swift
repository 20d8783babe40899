import PostgresNIO

/// One statement made of data-modifying `WITH` parts, so that writes to several tables cost one round
/// trip between the server and PostgreSQL rather than one each.
///
/// Its parts run in no set order and see the same snapshot: none may depend on another's rows. A row
/// that must end before another starts (a projection's current row, say) is ended by an earlier
/// statement.
struct WithStatement {
    private var bindings = PostgresBindings()
    private var parts: [String] = []

    /// Binds `value` as the statement's next parameter; answers its placeholder.
    mutating func bind<Value: PostgresDynamicTypeEncodable>(_ value: Value) -> String {
        bindings.append(value)
        return "$\(bindings.count)"
    }

    /// Binds `value` as the statement's next parameter; answers its placeholder.
    mutating func bind<Value: PostgresThrowingDynamicTypeEncodable>(_ value: Value) throws -> String {
        try bindings.append(value)
        return "$\(bindings.count)"
    }

    /// Adds `statement` (an INSERT, UPDATE or DELETE) as a part.
    mutating func add(_ statement: String) {
        parts.append("part_\(parts.count) AS (\(statement))")
    }

    /// The statement, its parts followed by `final`, a SELECT; nil when it has no part.
    func query(finally final: String = "SELECT 1") -> PostgresQuery? {
        guard !parts.isEmpty else { return nil }
        return PostgresQuery(unsafeSQL: "WITH \(parts.joined(separator: ",\n")) \(final)", binds: bindings)
    }
}
