import Foundation

/// Progress of an ingest on stderr: a bar redrawn in place on a terminal, otherwise a line every few batches.
final class IngestProgress {
    private let onTerminal = Terminal.stderrIsTerminal
    private let linesEvery: Int
    private let start = ContinuousClock.now
    private var drawn = false

    init(linesEvery: Int = 10) { self.linesEvery = max(1, linesEvery) }

    var elapsed: Duration { ContinuousClock.now - start }

    func update(batches: Int, items: Int, fraction: Double?) {
        let seconds = max(0.001, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        let rate = Int(Double(items) / seconds)
        if onTerminal {
            var text = "\r\u{1B}[K"
            if let fraction {
                let width = 30
                let filled = Int(fraction * Double(width))
                text += "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
                text += String(format: "%3d%%  ", Int(fraction * 100))
            }
            text += "\(items) items  \(rate) items/s"
            Terminal.errorRaw(text)
            drawn = true
        } else if batches % linesEvery == 0 {
            let percent = fraction.map { String(format: " (%d%% of the file)", Int($0 * 100)) } ?? ""
            Terminal.error("ingest: \(batches) batches, \(items) items sent\(percent), \(rate) items/s")
        }
    }

    /// Clears the bar before the summary is printed.
    func finish() {
        if drawn { Terminal.errorRaw("\r\u{1B}[K") }
    }
}
