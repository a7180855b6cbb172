//! The 20-server, 7-day fleet (seed 11) the engine and analyzer benchmarks
//! run on, the same one scripts/compare-duckdb.sh generates, in either
//! shape. Set MCPOPS_BENCH_STORE (MCPOPS_BENCH_PROM_STORE for the
//! Prometheus shape) to an existing store of it to skip generating and
//! ingesting (about a minute).

use mcpops::generate::{GenerateOptions, Shape, generate};
use mcpops::ingest::{IngestOptions, ingest_path};
use mcpops::store::Store;

#[allow(dead_code)]
pub fn fleet_store(tmp: &tempfile::TempDir) -> Store {
    shaped_store(tmp, Shape::Events, "MCPOPS_BENCH_STORE")
}

/// The same fleet as a Prometheus server scraping it every minute would
/// hold it (`generate --shape prometheus`: histograms, counters that reset,
/// `instance` and `job`, node_exporter's filesystems). Set
/// MCPOPS_BENCH_PROM_STORE to an existing store of it to skip the setup.
#[allow(dead_code)]
pub fn prometheus_fleet_store(tmp: &tempfile::TempDir) -> Store {
    shaped_store(tmp, Shape::Prometheus, "MCPOPS_BENCH_PROM_STORE")
}

fn shaped_store(tmp: &tempfile::TempDir, shape: Shape, reuse: &str) -> Store {
    if let Ok(dir) = std::env::var(reuse) {
        return Store::open(dir);
    }
    let out = tmp.path().join("fleet");
    generate(&GenerateOptions {
        servers: 20,
        days: 7,
        seed: 11,
        out: out.clone(),
        gzip: false,
        shape,
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

/// xorshift64*: the benches' deterministic generator, no dependency.
pub struct Rng(pub u64);

#[allow(dead_code)]
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}
