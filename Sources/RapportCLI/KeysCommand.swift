import ArgumentParser
import Foundation
import RapportProto

/// `rapport keys ...`: API keys (admin only).
struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Create, list and revoke API keys (needs an admin key).",
        subcommands: [KeysCreate.self, KeysList.self, KeysRevoke.self]
    )
}

/// The roles as typed on the command line.
enum RoleArgument: String, CaseIterable, ExpressibleByArgument {
    case admin, marketing, sales, service, analyst
    case readOnly = "read-only"

    /// Also as the README's role table and the proto spell it: `read_only`.
    init?(argument: String) {
        self.init(rawValue: argument.lowercased().replacingOccurrences(of: "_", with: "-"))
    }

    var proto: Rapport_V1_Role {
        switch self {
        case .admin: .admin
        case .marketing: .marketing
        case .sales: .sales
        case .service: .service
        case .analyst: .analyst
        case .readOnly: .readOnly
        }
    }
}

extension Printer {
    static func keysTable(_ keys: [Rapport_V1_ApiKey]) -> String {
        var table = TextTable("ID", "NAME", "ROLE", "CREATED", "REVOKED")
        for key in keys {
            table.add(
                key.id, key.name, Format.name(key.role).replacingOccurrences(of: "_", with: "-"),
                Format.time(key.createTime, isSet: key.hasCreateTime), Format.time(key.revokeTime, isSet: key.hasRevokeTime))
        }
        return table.render()
    }
}
