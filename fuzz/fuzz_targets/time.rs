//! `parse_time` and `parse_day` on arbitrary strings: parsed times stay in years
//! 0000-9999, days round-trip through `format_day`/`parse_day`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        auditlake::ingest::check::check_time(s);
    }
});
