//! Arbitrary bytes as an AWS CloudHSM member, framed in each of its four forms and
//! decoded (`check::check_cloudhsm`): every event a row or a reject, chunks and
//! offsets consistent, no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    auditlake::ingest::check::check_cloudhsm(data);
});
