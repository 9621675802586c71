import Foundation
import RapportProto
import SwiftProtobuf

/// One thing read from an ingest file: an item to send, or a line that cannot become one.
enum SourceRecord {
    case item(line: Int, Rapport_V1_IngestItem)
    case problem(line: Int, String)
}

/// Items read one at a time from a JSON-lines or CSV file.
protocol IngestSource: AnyObject {
    /// The next record, nil at the end of the file.
    func next() throws -> SourceRecord?
    /// How far into the file reading is, 0...1, when the file's size is known.
    var fractionRead: Double? { get }
}

/// The lines of a file (or standard input for `-`), numbered from 1, without their line ends.
final class LineReader {
    private let file: UnsafeMutablePointer<FILE>
    private var buffer: UnsafeMutablePointer<CChar>?
    private var capacity = 0
    private(set) var lineNumber = 0
    private(set) var bytesRead: Int64 = 0
    /// The file's size; nil for standard input or a pipe.
    let size: Int64?

    init(path: String) throws {
        if path == "-" {
            guard let input = fdopen(STDIN_FILENO, "r") else { throw InputError("cannot read standard input") }
            file = input
            size = nil
        } else {
            guard let opened = fopen(path, "r") else {
                throw InputError("cannot open '\(path)': \(String(cString: strerror(errno)))")
            }
            file = opened
            var info = stat()
            if fstat(fileno(opened), &info) == 0, (info.st_mode & S_IFMT) == S_IFREG {
                size = Int64(info.st_size)
            } else {
                size = nil
            }
        }
    }

    deinit {
        free(buffer)
        fclose(file)
    }

    /// True when `path` names something that is not a regular file (a pipe, a FIFO, a device): it can be read once.
    static func isPipe(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) != S_IFREG
    }

    var fractionRead: Double? {
        guard let size, size > 0 else { return nil }
        return min(1, Double(bytesRead) / Double(size))
    }

    /// The next line, or nil at the end of the file.
    func next() throws -> String? {
        let count = getline(&buffer, &capacity, file)
        guard count >= 0, let buffer else {
            if ferror(file) != 0 { throw InputError("read error: \(String(cString: strerror(errno)))") }
            return nil
        }
        lineNumber += 1
        bytesRead += Int64(count)
        var length = count
        while length > 0, buffer[length - 1] == 0x0A || buffer[length - 1] == 0x0D { length -= 1 }
        // Text in another encoding (a Latin-1 export) stops the file: read as UTF-8 it would be stored corrupted.
        guard var line = String(validating: UnsafeRawBufferPointer(start: buffer, count: length), as: UTF8.self) else {
            throw InputError("line \(lineNumber): not valid UTF-8 (convert the file to UTF-8 first)")
        }
        if lineNumber == 1, line.hasPrefix("\u{FEFF}") { line.removeFirst() }
        return line
    }
}

/// JSON lines: each non-blank line is one `IngestItem` in protobuf's JSON mapping.
final class JSONLinesSource: IngestSource {
    private let reader: LineReader

    init(reader: LineReader) { self.reader = reader }

    var fractionRead: Double? { reader.fractionRead }

    func next() throws -> SourceRecord? {
        while let line = try reader.next() {
            let text = line.trimmingCharacters(in: .whitespaces)
            guard !text.isEmpty else { continue }
            let number = reader.lineNumber
            do {
                let item = try Rapport_V1_IngestItem(jsonString: text)
                guard item.item != nil else {
                    return .problem(line: number, "an item needs an \"event\" or an \"order\" object")
                }
                return .item(line: number, item)
            } catch let error as JSONDecodingError {
                return .problem(line: number, Self.explain(error))
            } catch {
                return .problem(line: number, "not an IngestItem: \(error)")
            }
        }
        return nil
    }

    /// SwiftProtobuf's JSON errors in words.
    static func explain(_ error: JSONDecodingError) -> String {
        switch error {
        case .unknownField(let name): "unknown field '\(name)' (fields are lowerCamelCase: occurTime, externalId...)"
        case .unrecognizedEnumValue: "unknown enum value (write the full name, e.g. CHANNEL_WEB, IDENTITY_KIND_EMAIL)"
        case .malformedTimestamp: "a time is not RFC 3339, e.g. 2026-03-01T10:00:00Z"
        case .malformedNumber, .numberRange: "a number is malformed or out of range"
        case .truncated, .failure, .trailingGarbage: "not a JSON object on one line"
        case .conflictingOneOf: "an item holds both an event and an order"
        default: "not an IngestItem in protobuf JSON form (\(error))"
        }
    }
}
