//! Arbitrary bytes as a whole input file: sniffed and opened as zip, gzip or plain by
//! `for_each_member`, then each member scanned and decoded as in `scan_decode`.
#![no_main]

use std::io::Write;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// One directory per process; the input file is rewritten for each run.
static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"));
    let path = dir.path().join("input");
    let mut f = std::fs::File::create(&path).expect("create input");
    f.write_all(data).expect("write input");
    drop(f);
    auditlake::ingest::check::check_file(&path, auditlake::ingest::check::LIMIT);
});
