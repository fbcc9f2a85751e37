//! Arbitrary bytes as one member: scanned with a small record limit, every chunk
//! decoded, and the invariants of `auditlake::ingest::check` asserted.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    auditlake::ingest::check::check_member(data, auditlake::ingest::check::LIMIT);
});
