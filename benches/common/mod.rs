//! The 20-server, 7-day fleet (seed 11) the engine and analyzer benchmarks
//! run on, the same one scripts/compare-duckdb.sh generates. Set
//! MCPOPS_BENCH_STORE to an existing store of it to skip generating and
//! ingesting (about a minute).

use mcpops::generate::{GenerateOptions, generate};
use mcpops::ingest::{IngestOptions, ingest_path};
use mcpops::store::Store;

pub fn fleet_store(tmp: &tempfile::TempDir) -> Store {
    if let Ok(dir) = std::env::var("MCPOPS_BENCH_STORE") {
        return Store::open(dir);
    }
    let out = tmp.path().join("fleet");
    generate(&GenerateOptions {
        servers: 20,
        days: 7,
        seed: 11,
        out: out.clone(),
        gzip: false,
        ..GenerateOptions::default()
    })
    .expect("generate");
    let store = Store::open(tmp.path().join("store"));
    let mut w = store.writer().expect("writer");
    let opts = IngestOptions {
        quiet: true,
        ..IngestOptions::default()
    };
    ingest_path(&out, &opts, &mut w).expect("ingest");
    w.commit().expect("commit");
    store
}
