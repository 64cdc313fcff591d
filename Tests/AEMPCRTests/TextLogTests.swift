// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR

/// txt-stat / serial-log text: two printed TPM 1.2 containers are two boots, not one log; a
/// record whose "Event:" line is garbled is an error, not a silently shorter log.
@Suite struct TextLogTests {
    static let events = (0..<3).map { k in
        DRTMEvent(pcr: 17, type: .tbootMeasurement, digests: [MultiHasher.hash(.sha1, [UInt8(k)])])
    }

    static func container(_ events: [DRTMEvent]) -> String {
        "TBOOT: \t Event Log Container:\n" + events.map { TextWriter.legacyEvent($0, bank: .sha1) }.joined()
    }

    @Test func oneContainerParses() throws {
        let log = try DRTMEventLog.parse(text: Self.container(Self.events), source: "one.txt")
        #expect(log.events.count == 3)
    }

    @Test func twoContainersAreRefused() {
        let text = Self.container(Self.events) + Self.container(Self.events)
        #expect { try DRTMEventLog.parse(text: text, source: "two.txt") } throws: { e in
            (e as? CodedError)?.description.contains("second printed sha1 log") == true
        }
    }

    @Test func garbledRecordStartIsRefused() {
        let text = Self.container(Self.events).replacingOccurrences(of: "Event:", with: "Evnt:", options: [], range: nil)
        #expect { try DRTMEventLog.parse(text: text, source: "garbled.txt") } throws: { e in
            guard let l = e as? CodedError else { return false }
            return l.line == 3 && l.description.contains("outside any \"Event:\" record")
        }
    }
}
