import Foundation
import Testing
@testable import RapportCore

@Suite("CurrencyCode")
struct CurrencyCodeTests {
    @Test(arguments: [("eur", "EUR"), ("EUR", "EUR"), ("Usd", "USD"), ("jpy", "JPY"), ("kwd", "KWD")])
    func acceptsCaseInsensitively(input: String, code: String) throws {
        let currency = try CurrencyCode(input)
        #expect(currency.code == code)
        #expect(currency.description == code)
    }

    @Test(arguments: ["EURO", "XXX", "", "EU", " EUR", "EUR ", "ABC", "XAU", "€"])
    func rejectsNamingTheField(input: String) {
        expectSingleViolation(field: "orders[0].currency", mentions: ["'\(input)'", "ISO 4217"]) { () throws(RapportError) in
            try CurrencyCode(input, field: "orders[0].currency")
        }
    }

    @Test func defaultFieldIsCurrency() {
        expectSingleViolation(field: "currency") { () throws(RapportError) in try CurrencyCode("XXX") }
    }

    @Test(arguments: [("JPY", 0), ("KRW", 0), ("KWD", 3), ("BHD", 3), ("EUR", 2), ("USD", 2), ("CLF", 4), ("VED", 2), ("UYI", 0), ("CHE", 2)])
    func minorUnitDigits(code: String, digits: Int) throws {
        #expect(try CurrencyCode(code).minorUnitDigits == digits)
    }

    @Test func ordersByCode() throws {
        let codes = try ["USD", "EUR", "JPY", "CHF"].map { code throws(RapportError) in try CurrencyCode(code) }
        #expect(codes.sorted().map(\.code) == ["CHF", "EUR", "JPY", "USD"])
    }

    @Test func codableAsPlainStringAndValidatedOnDecode() throws {
        let data = try JSONEncoder().encode([try CurrencyCode("eur")])
        #expect(String(decoding: data, as: UTF8.self) == #"["EUR"]"#)
        #expect(try JSONDecoder().decode([CurrencyCode].self, from: Data(#"["gbp"]"#.utf8)) == [try CurrencyCode("GBP")])
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([CurrencyCode].self, from: Data(#"["EURO"]"#.utf8)) }
    }
}

@Suite("Money")
struct MoneyTests {
    @Test(arguments: [
        (Int64(1999), "EUR", "19.99 EUR"),
        (-1999, "EUR", "-19.99 EUR"),
        (5, "EUR", "0.05 EUR"),
        (-5, "EUR", "-0.05 EUR"),
        (0, "EUR", "0.00 EUR"),
        (100, "USD", "1.00 USD"),
        (1500, "JPY", "1500 JPY"),
        (-1500, "JPY", "-1500 JPY"),
        (0, "JPY", "0 JPY"),
        (1005, "KWD", "1.005 KWD"),
        (50, "KWD", "0.050 KWD"),
        (-1, "KWD", "-0.001 KWD"),
        (12345, "CLF", "1.2345 CLF"),
        (Int64.max, "EUR", "92233720368547758.07 EUR"),
        (Int64.min, "EUR", "-92233720368547758.08 EUR"),
    ])
    func description(minorUnits: Int64, code: String, text: String) {
        #expect(Money(minorUnits: minorUnits, currency: currency(code)).description == text)
    }
}

@Suite("CurrencyTotal")
struct CurrencyTotalTests {
    @Test(arguments: [
        // total, orders, average (half away from zero)
        (Int64(1000), Int64(1), Int64(1000)),
        (1000, 3, 333),  // 333.33
        (2000, 3, 667),  // 666.67
        (5, 2, 3),  // 2.5
        (7, 2, 4),  // 3.5
        (9, 4, 2),  // 2.25
        (10, 4, 3),  // 2.5
        (11, 4, 3),  // 2.75
        (1, 3, 0),  // 0.33
        (-5, 2, -3),  // -2.5
        (-9, 4, -2),  // -2.25
        (-10, 4, -3),  // -2.5
        (-11, 4, -3),  // -2.75
        (0, 5, 0),
    ])
    func averageOrderValueRoundsHalfAwayFromZero(total: Int64, orders: Int64, average: Int64) {
        let eur = currency("EUR")
        let aggregate = CurrencyTotal(currency: eur, totalMinor: total, orderCount: orders)
        #expect(aggregate.averageOrderValue == Money(minorUnits: average, currency: eur))
    }

    @Test func averageOfNoOrdersIsZeroInTheSameCurrency() {
        let jpy = currency("JPY")
        #expect(CurrencyTotal(currency: jpy, totalMinor: 0, orderCount: 0).averageOrderValue == Money(minorUnits: 0, currency: jpy))
        // Even a non-zero total (refunds netted elsewhere) does not divide by zero.
        #expect(CurrencyTotal(currency: jpy, totalMinor: 500, orderCount: 0).averageOrderValue == Money(minorUnits: 0, currency: jpy))
    }

    @Test func totalIsTheSumAsMoney() {
        let kwd = currency("KWD")
        let aggregate = CurrencyTotal(currency: kwd, totalMinor: 12_345, orderCount: 2)
        #expect(aggregate.total == Money(minorUnits: 12_345, currency: kwd))
        #expect(aggregate.total.description == "12.345 KWD")
    }
}
