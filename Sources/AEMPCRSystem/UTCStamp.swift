// SPDX-License-Identifier: Apache-2.0
import Glibc

/// A moment as `20261130T042700Z` (UTC, ISO 8601 basic format): the suffix of a kept sealed
/// set (`LABEL.prev-…`), of a notice state set aside, and the `sealed_at` of a saved prediction.
public func utcStamp(_ now: time_t = time(nil)) -> String {
    var t = now
    var tmv = tm()
    gmtime_r(&t, &tmv)
    var buf = [CChar](repeating: 0, count: 32)
    let n = strftime(&buf, buf.count, "%Y%m%dT%H%M%SZ", &tmv)
    return String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
