//! Criterion micro-benchmarks of convert's hot stages on generated data:
//! inflate, cut into records (scan), decode into Arrow batches, sort, Parquet encode.
//! `cargo bench --bench stages`. The end-to-end comparison with DuckDB is benches/compare.py.

use std::io::Read;
use std::sync::Arc;

use auditlake::generate::{generate, ExportFormat, GenerateOptions};
use auditlake::ingest::decode::decode_chunk;
use auditlake::ingest::interface::Chunk;
use auditlake::ingest::scan::Scanner;
use auditlake::lake::writer::{encode, sorted_batches};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const EVENTS: u64 = 200_000;

fn export() -> (Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let opts = GenerateOptions {
        out: dir.path().to_path_buf(),
        events: EVENTS,
        tenants: 1,
        start: "2025-01".into(),
        months: 1,
        seed: 7,
        format: ExportFormat::Zip,
        overlap_hours: 0,
        manifest: None,
        zones: false,
        rules: None,
        one_line_every: 0,
        routine: false,
    };
    let path = generate(&opts).unwrap().remove(0);
    let zip_bytes = std::fs::read(&path).unwrap();
    let mut json = Vec::new();
    zip::ZipArchive::new(std::io::Cursor::new(&zip_bytes))
        .unwrap()
        .by_index(0)
        .unwrap()
        .read_to_end(&mut json)
        .unwrap();
    (zip_bytes, json)
}

fn chunks(json: &[u8]) -> Vec<Chunk> {
    let mut s = Scanner::new(json);
    let mut out = Vec::new();
    while let Some(c) = s.next_chunk().unwrap() {
        out.push(c);
    }
    out
}

fn stages(c: &mut Criterion) {
    let (zip_bytes, json) = export();
    let mut g = c.benchmark_group("convert stages");
    g.sample_size(10);
    g.throughput(Throughput::Elements(EVENTS));

    g.bench_function("inflate", |b| {
        b.iter(|| {
            let mut z = zip::ZipArchive::new(std::io::Cursor::new(&zip_bytes)).unwrap();
            let mut m = z.by_index(0).unwrap();
            std::io::copy(&mut m, &mut std::io::sink()).unwrap()
        })
    });
    g.bench_function("scan records", |b| b.iter(|| chunks(&json).len()));

    let cs: Vec<Arc<Chunk>> = chunks(&json).into_iter().map(Arc::new).collect();
    g.bench_function("decode to Arrow", |b| {
        b.iter(|| {
            cs.iter()
                .map(|c| decode_chunk(c.clone()).slices.len())
                .sum::<usize>()
        })
    });

    let batches: Vec<_> = cs
        .iter()
        .flat_map(|c| decode_chunk(c.clone()).slices)
        .map(|s| s.batch)
        .collect();
    let mut shuffled = batches.clone();
    shuffled.reverse();
    g.bench_function("sort (out of order)", |b| {
        b.iter(|| sorted_batches(shuffled.clone()).unwrap().len())
    });
    g.bench_function("parquet encode (zstd 1)", |b| {
        b.iter(|| encode(&batches, 1).unwrap().len())
    });
    g.bench_function("parquet encode (zstd 3)", |b| {
        b.iter(|| encode(&batches, 3).unwrap().len())
    });
    g.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
