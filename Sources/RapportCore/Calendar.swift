public import Foundation

extension LocalDate {
    /// How many days `month` has in `year` (29 for February without a year).
    public static func daysIn(month: Int, year: Int?) -> Int {
        switch month {
        case 2:
            guard let year else { return 29 }
            return (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days from 1970-01-01 to this date (a date without a year: in 1970).
    public var daysSinceEpoch: Int { Self.daysSinceEpoch(year: year ?? 1970, month: month, day: day) }

    /// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (negative before).
    public static func daysSinceEpoch(year: Int, month: Int, day: Int) -> Int {
        // Howard Hinnant's days_from_civil.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The date `days` after 1970-01-01.
    public static func civil(daysSinceEpoch days: Int) -> LocalDate {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return LocalDate(year: yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month: month, day: day)
    }
}

/// A wall-clock time of day (`09:00`), read in some time zone.
public struct LocalTime: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public var hour: Int
    public var minute: Int

    public init(hour: Int, minute: Int = 0) {
        self.hour = hour
        self.minute = minute
    }

    /// Parses `HH:MM` (24-hour), or throws naming `field`.
    public init(parsing text: String, field: String) throws(RapportError) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 2, parts[1].count == 2, let hour = Int(parts[0]), let minute = Int(parts[1]),
            (0...23).contains(hour), (0...59).contains(minute)
        else { throw .invalid(field, "'\(text)' is not a time of day such as '09:00' (24-hour HH:MM)") }
        self.init(hour: hour, minute: minute)
    }

    /// Checks the hour and minute.
    public func validate(field: String) throws(RapportError) {
        guard (0...23).contains(hour), (0...59).contains(minute) else { throw .invalid(field, "must be a time of day from 00:00 to 23:59") }
    }

    /// Minutes since midnight.
    public var minutes: Int { hour * 60 + minute }

    public var description: String { (hour < 10 ? "0" : "") + "\(hour):" + (minute < 10 ? "0" : "") + "\(minute)" }

    public static func < (lhs: LocalTime, rhs: LocalTime) -> Bool { lhs.minutes < rhs.minutes }
}

/// Conversions between instants and wall-clock dates and times in a time zone.
public enum ZonedTime {
    /// The date and minutes since midnight that `instant` shows on a wall clock in `zone`.
    public static func local(_ instant: Timestamp, in zone: TimeZone) -> (date: LocalDate, minutes: Int) {
        let offset = Int64(zone.secondsFromGMT(for: instant.date)) * 1000
        let local = instant.millisecondsSinceEpoch + offset
        let (days, rest) = local.quotientAndRemainder(dividingBy: 86_400_000)
        let dayCount = rest < 0 ? days - 1 : days
        let millisOfDay = rest < 0 ? rest + 86_400_000 : rest
        return (LocalDate.civil(daysSinceEpoch: Int(dayCount)), Int(millisOfDay / 60_000))
    }

    /// The instant a wall clock in `zone` shows `time` on `date` (which needs a year). A time skipped by a
    /// daylight-saving jump is read after the jump; a time shown twice is its first occurrence.
    public static func instant(_ date: LocalDate, _ time: LocalTime, in zone: TimeZone) -> Timestamp {
        instants(date, time, in: zone)[0]
    }

    /// Every instant a wall clock in `zone` shows `time` on `date`, earliest first: one, two for a time shown
    /// twice when clocks go back, and for a time skipped by a jump forward the instant read after the jump.
    public static func instants(_ date: LocalDate, _ time: LocalTime, in zone: TimeZone) -> [Timestamp] {
        let days = Int64(date.daysSinceEpoch)
        let wall = days * 86_400_000 + Int64(time.minutes) * 60_000
        func offset(_ milliseconds: Int64) -> Int64 {
            Int64(zone.secondsFromGMT(for: Timestamp(millisecondsSinceEpoch: milliseconds).date)) * 1000
        }
        // The offsets a day before and after cover both sides of any transition near the wall time.
        let before = offset(wall - 86_400_000)
        let after = offset(wall + 86_400_000)
        let valid = Set([wall - before, wall - after].filter { $0 + offset($0) == wall }).sorted()
        return (valid.isEmpty ? [wall - before] : valid).map { Timestamp(millisecondsSinceEpoch: $0) }
    }

    /// The first instant strictly after `after` at which a wall clock in `zone` shows `time` on the day of the
    /// year `month`/`day` (29 February is 28 February in other years).
    public static func nextAnnual(month: Int, day: Int, at time: LocalTime, in zone: TimeZone, after: Timestamp) -> Timestamp {
        let year = local(after, in: zone).date.year ?? 1970
        for candidateYear in (year - 1)...(year + 2) {
            let candidateDay = min(day, LocalDate.daysIn(month: month, year: candidateYear))
            let instant = instant(LocalDate(year: candidateYear, month: month, day: candidateDay), time, in: zone)
            if instant > after { return instant }
        }
        return after + .seconds(366 * 86_400)
    }

    /// The start of the next day in `zone` after `instant`.
    public static func nextMidnight(after instant: Timestamp, in zone: TimeZone) -> Timestamp {
        let today = local(instant, in: zone).date
        let tomorrow = LocalDate.civil(daysSinceEpoch: today.daysSinceEpoch + 1)
        let next = Self.instant(tomorrow, LocalTime(hour: 0), in: zone)
        return next > instant ? next : instant + .seconds(86_400)
    }
}
