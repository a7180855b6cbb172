//! `mcpops watch`: reads `watch.toml` (if given), lets the flags add
//! targets and override values, and runs the live-monitoring process
//! ([`mcpops::watch::run_blocking`]) until SIGTERM or SIGINT. A bad config
//! or an address that cannot be bound exits 2.

use super::error::CliError;
use super::shared::duration_arg;
use super::{Context, WatchArgs, WatchMode};
use mcpops::store::{Store, StoreLocation};
use mcpops::watch::config::{Flags, RulesMode, WatchConfig, split_command};
use mcpops::watch::{RunOptions, WatchError};
use std::io::IsTerminal;
use std::time::Duration;

pub(super) fn run(ctx: &Context, args: WatchArgs) -> Result<(), CliError> {
    let file = match &args.config {
        Some(path) => WatchConfig::load(path).map_err(watch_error)?,
        None => WatchConfig::default(),
    };
    let interval = args
        .interval
        .as_deref()
        .map(|t| duration_arg("--interval", t))
        .transpose()?
        .map(|ms| Duration::from_millis(ms as u64));
    let probe_cmd = args
        .probe_cmd
        .iter()
        .map(|line| split_command(line).map_err(|e| CliError::usage(format!("--probe-cmd: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let offset = args
        .offset
        .as_deref()
        .map(|t| duration_arg("--offset", t))
        .transpose()?
        .map(|ms| Duration::from_millis(ms as u64));
    // `watch` keeps a write-ahead log and a journal beside its store: a
    // directory, never object storage.
    let store_flag = match &ctx.store_flag {
        Some(text) => match StoreLocation::parse(text)? {
            StoreLocation::Local(dir) => Some(dir),
            remote => {
                return Err(CliError::usage(format!(
                    "--store {remote}: watch writes to a store in a local directory"
                )));
            }
        },
        None => None,
    };
    let config = file
        .apply_flags(Flags {
            store: store_flag,
            scrape: args.scrape,
            interval,
            listen: args.listen,
            otlp: args.otlp,
            probe_cmd,
            probe_url: args.probe_url,
            rules: args.rules,
            mode: args.mode.map(|m| match m {
                WatchMode::Auto => RulesMode::Auto,
                WatchMode::DryRun => RulesMode::DryRun,
            }),
            alertmanager: args.alertmanager,
            offset,
        })
        .map_err(watch_error)?;
    // The store: --store, else the file's, else $MCPOPS_STORE or the default.
    let store = match &config.store {
        Some(dir) => dir.clone(),
        None => Store::resolve(None, None)?
            .require_local("watch")?
            .to_path_buf(),
    };
    let options = RunOptions {
        quiet: ctx.quiet,
        terminal: std::io::stderr().is_terminal(),
    };
    mcpops::watch::run_blocking(config, store, options).map_err(watch_error)
}

fn watch_error(e: WatchError) -> CliError {
    match e {
        WatchError::Store(s) => s.into(),
        e if e.is_usage() => CliError::Usage(e.into()),
        e => CliError::Failure(e.into()),
    }
}
