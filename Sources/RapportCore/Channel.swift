/// The channel a piece of customer data came through.
public enum Channel: String, Hashable, Sendable, Codable, CaseIterable {
    case web, app, store, marketplace
    case callCenter = "call_center"
    case email, sms, social, other

    /// Parses a channel name, or throws naming `field`.
    public init(parsing text: String, field: String) throws(RapportError) {
        guard let channel = Channel(rawValue: text.lowercased()) else {
            throw .invalid(field, "'\(text)' is not a channel (one of \(Channel.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        self = channel
    }
}
