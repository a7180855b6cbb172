//! The integration tests, as modules of one test crate: polars and the rest
//! link once into one binary instead of once per file. `cargo test --test it
//! store::` runs one module.

mod act;
mod analyze;
mod cli;
mod cli_snapshots;
mod common;
mod diagnostics;
mod docs;
mod dsl_errors;
mod dsl_format;
mod dsl_fuzz;
mod dsl_parse;
mod dsl_shipped;
mod engine;
mod engine_fuzz;
mod engine_live;
mod generate_fleet;
mod generate_prom;
mod ingest_formats;
mod lang;
mod live_store;
mod nab;
mod object_storage;
mod otlp;
mod probe;
mod registry;
mod remediate_e2e;
mod report;
mod scrape;
mod store;
mod store_on_s3;
mod watch_api;
mod watch_e2e;
mod watch_rules;
