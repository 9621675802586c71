/// One problem with one input field, named by its path (for example `emails[1]` or `lines[0].quantity`).
public struct FieldViolation: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The path of the field, in the engine's own names (`attributes.vip`, `identities[0].value`).
    public var field: String
    /// What is wrong with it, in words a person can act on.
    public var problem: String

    public init(field: String, problem: String) {
        self.field = field
        self.problem = problem
    }

    public var description: String { "\(field): \(problem)" }

    /// The same violation, with its field path placed under `parent` (`lines[0]` + `quantity` → `lines[0].quantity`).
    public func nested(under parent: String) -> FieldViolation {
        FieldViolation(field: parent.isEmpty ? field : (field.isEmpty ? parent : "\(parent).\(field)"), problem: problem)
    }
}

/// Every error the engine and its storage throw.
///
/// Each case says what kind of failure it is (they map one to one to gRPC status codes) and names the field or
/// the entity involved. A call that throws one of these has changed nothing.
public enum RapportError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The input is wrong; each violation names a field and the problem with it.
    case invalidArgument([FieldViolation])
    /// The entity (`customer`, `order`, `merge`...) with this id does not exist.
    case notFound(entity: String, id: String)
    /// An entity with this key already exists (an identity added to a customer while another owns it, a duplicate
    /// id...). A new customer's identity that another owns is an `invalidArgument` naming it (`identities[i]`).
    case alreadyExists(entity: String, id: String)
    /// An optimistic-concurrency check failed: the caller's etag is not the stored one.
    case etagMismatch(entity: String, id: String, expected: String, actual: String)
    /// The call is valid but the system is not in a state that allows it (unmerging a merge already undone...).
    case failedPrecondition(String)
    /// The storage backend failed (disk full, corrupt file...); the transaction was rolled back.
    case storage(String)

    /// One invalid field.
    public static func invalid(_ field: String, _ problem: String) -> RapportError {
        .invalidArgument([FieldViolation(field: field, problem: problem)])
    }

    public var description: String {
        switch self {
        case .invalidArgument: "invalid argument: " + message
        case .failedPrecondition: "failed precondition: " + message
        case .storage: "storage failure: " + message
        default: message
        }
    }

    /// What went wrong, without the name of the error's kind (for transports that carry the kind as a code).
    public var message: String {
        switch self {
        case .invalidArgument(let violations):
            violations.map(\.description).joined(separator: "; ")
        case .notFound(let entity, let id):
            "\(entity) '\(id)' not found"
        case .alreadyExists(let entity, let id):
            "\(entity) '\(id)' already exists"
        case .etagMismatch(let entity, let id, let expected, let actual):
            "\(entity) '\(id)' was changed by someone else: etag is \(actual), the request expected \(expected)"
        case .failedPrecondition(let message), .storage(let message):
            message
        }
    }

    /// The field violations of an `invalidArgument` error; empty for other cases.
    public var fieldViolations: [FieldViolation] {
        if case .invalidArgument(let violations) = self { return violations }
        return []
    }
}

/// Collects field violations while validating an input, then throws them all at once.
public struct Validator: Sendable {
    public private(set) var violations: [FieldViolation] = []

    public init() {}

    public mutating func add(_ field: String, _ problem: String) {
        violations.append(FieldViolation(field: field, problem: problem))
    }

    /// Runs `body`; if it throws, records its violations under `parent` and returns nil.
    @discardableResult
    public mutating func capture<T>(_ parent: String, _ body: () throws(RapportError) -> T) -> T? {
        do {
            return try body()
        } catch {
            if case .invalidArgument(let list) = error {
                violations.append(contentsOf: list.map { $0.nested(under: parent) })
            } else {
                violations.append(FieldViolation(field: parent, problem: error.description))
            }
            return nil
        }
    }

    /// Throws `invalidArgument` with every violation collected so far, if there is any.
    public func check() throws(RapportError) {
        if !violations.isEmpty { throw .invalidArgument(violations) }
    }
}
