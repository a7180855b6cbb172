//! `mcpops generate`: the sample fleet, and one line saying what was written.

use super::error::{CliError, io_failure};
use super::shared::{duration_arg, time_arg};
use super::{GenerateArgs, GenerateShape};
use mcpops::generate::{GenerateOptions, Shape, generate};
use std::io::Write;

pub(super) fn run(args: GenerateArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let mut opts = GenerateOptions {
        servers: args.servers,
        days: args.days,
        seed: args.seed,
        out: args.out,
        gzip: !args.no_gzip,
        shape: match args.shape {
            GenerateShape::Events => Shape::Events,
            GenerateShape::Prometheus => Shape::Prometheus,
        },
        ..GenerateOptions::default()
    };
    if let Some(d) = args.scrape_interval {
        opts.scrape_interval_ms = duration_arg("--scrape-interval", &d)?;
    }
    if let Some(t) = args.start {
        opts.start_ms = time_arg("--start", &t)?;
    }
    if let Some(r) = args.rate {
        opts.calls_per_second = r;
    }
    let summary = generate(&opts)?;
    let samples = match opts.shape {
        Shape::Events => "gauge samples",
        Shape::Prometheus => "scraped samples",
    };
    writeln!(
        out,
        "wrote {} file(s) to {}: {} calls, {} {samples}, {} incident(s) in incidents.json",
        summary.files.len(),
        opts.out.display(),
        summary.calls,
        summary.gauge_samples,
        summary.incidents.len()
    )
    .map_err(io_failure)
}
