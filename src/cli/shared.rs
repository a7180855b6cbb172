//! What several subcommands share: flag values parsed into the library's
//! terms, rule files loaded for a run, and the period a command works on.

use super::error::CliError;
use mcpops::dsl::RuleFile;
use mcpops::engine::value::{GridError, Labels};
use mcpops::store::Store;
use mcpops::time::{now_ms, parse_time};
use std::io::{self, Write};
use std::path::PathBuf;

/// Parses a `--from`/`--to`/`--at`/`--before` value.
pub fn time_arg(flag: &str, text: &str) -> Result<i64, CliError> {
    parse_time(text, now_ms()).map_err(|e| CliError::usage(format!("{flag}: {e}")))
}

/// Parses a duration flag such as `--step 5m`.
pub fn duration_arg(flag: &str, text: &str) -> Result<i64, CliError> {
    mcpops::time::parse_duration_ms(text).map_err(|e| CliError::usage(format!("{flag}: {e}")))
}

/// A range that [`mcpops::engine::Grid::checked_range`] refused, as a usage
/// error that names the flags (or `step_from`: `--step`, or the rule
/// file's `evaluate every` when no `--step` was given).
pub fn range_error(e: GridError, step_from: &str) -> CliError {
    use mcpops::engine::value::Bound;
    CliError::usage(match e {
        GridError::StepNotPositive => format!("{step_from}: {e}"),
        GridError::Reversed => "--to is before --from".into(),
        GridError::OutOfYears(Bound::From) => {
            "--from: the time is outside the years 0000-9999".into()
        }
        GridError::OutOfYears(Bound::To) => "--to: the time is outside the years 0000-9999".into(),
        GridError::TooManySteps(n) => format!(
            "--from .. --to every {step_from}: {n} steps is more than the {} allowed: choose a larger step or a shorter range",
            mcpops::dsl::MAX_STEPS
        ),
    })
}

/// Loads rule files for test, backtest, analyze and report: unreadable
/// files are usage errors, files with errors exit 3 with their diagnostics.
pub fn load_checked_rules(files: &[PathBuf]) -> Result<Vec<RuleFile>, CliError> {
    let set = mcpops::dsl::load_rules(files).map_err(|e| CliError::Usage(e.into()))?;
    if set.has_errors() {
        let text: Vec<String> = set
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.to_string())
            .collect();
        return Err(CliError::rules(text.join("\n")));
    }
    Ok(set.files)
}

/// What a [`period`] must fit.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bounds {
    /// The period is evaluated at this step, and where the step comes from
    /// (`--step`, or the rules' `evaluate every`): the engine's own guard
    /// ([`mcpops::engine::Grid::checked_range`]) must accept the grid.
    pub step: Option<(i64, &'static str)>,
    /// The period is analysed: its data may span at most
    /// [`mcpops::analyze::fleet::MAX_BUCKETS`] five-minute buckets.
    pub analysed: bool,
}

/// The period a command works on, and the extent of the data it defaulted from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    pub from_ms: i64,
    pub to_ms: i64,
    /// Where the store's data is dense: the first and last sample times the
    /// defaults come from.
    pub extent: (i64, i64),
}

/// The period of `analyze`, `report` and `backtest`: `--to` (default: the
/// last sample where the store's data is dense), `--from` (else `to -
/// since`, else the first such sample). Outlying samples the defaults leave
/// out ([`mcpops::analyze::period`]) are named in one line on stderr with how
/// to include them. A period that needs more than [`mcpops::dsl::MAX_STEPS`]
/// steps or more than a year of analysis fails with a usage error (exit 2)
/// before anything is allocated for it.
pub fn period(
    store: &Store,
    from: Option<i64>,
    to: Option<i64>,
    since: Option<i64>,
    bounds: Bounds,
) -> Result<Period, CliError> {
    let snapshot = store.snapshot()?;
    let segments = &snapshot.manifest().segments;
    let dense = match (mcpops::analyze::period::dense_period(segments), to) {
        (Some(dense), _) => dense,
        // An empty store needs no default when both ends are given.
        (None, Some(to_ms)) if from.is_some() || since.is_some() => {
            mcpops::analyze::period::DensePeriod {
                from_ms: to_ms,
                to_ms,
                left_out: Vec::new(),
            }
        }
        (None, _) => return Err(empty_store(store)),
    };
    let to_ms = to.unwrap_or(dense.to_ms);
    let from_ms = from
        .or(since.map(|s| to_ms.saturating_sub(s)))
        .unwrap_or(dense.from_ms);
    let from_given = from.is_some() || since.is_some();
    let left_out: Vec<_> = dense
        .left_out
        .iter()
        .filter(|r| (!from_given && r.to_ms < from_ms) || (to.is_none() && r.from_ms > to_ms))
        .collect();
    if !left_out.is_empty() {
        let samples: u64 = left_out.iter().map(|r| r.rows).sum();
        let mut runs: Vec<String> = left_out
            .iter()
            .take(3)
            .map(|r| {
                let (a, b) = (
                    mcpops::time::day_of(r.from_ms),
                    mcpops::time::day_of(r.to_ms),
                );
                if a == b {
                    format!("{} on {a}", r.rows)
                } else {
                    format!("{} from {a} to {b}", r.rows)
                }
            })
            .collect();
        if left_out.len() > 3 {
            runs.push(format!("{} more runs", left_out.len() - 3));
        }
        eprintln!(
            "mcpops: left out {samples} sample(s) far from the rest of the data ({}); give --from/--to to include them",
            runs.join(", ")
        );
    }
    if to_ms >= from_ms {
        if let Some((step, step_from)) = bounds.step {
            mcpops::engine::Grid::checked_range(from_ms, to_ms, step)
                .map_err(|e| range_error(e, step_from))?;
        }
        if bounds.analysed
            && let Some((a, b)) = mcpops::analyze::period::extent_within(segments, from_ms, to_ms)
        {
            mcpops::analyze::fleet::check_span(a, b).map_err(CliError::usage)?;
        }
    }
    Ok(Period {
        from_ms,
        to_ms,
        extent: (dense.from_ms, dense.to_ms),
    })
}

/// The usage error of a command that needs data in an empty store.
pub fn empty_store(store: &Store) -> CliError {
    CliError::usage(format!(
        "the store {} is empty: ingest data first (mcpops ingest data/fleet)",
        store.location()
    ))
}

/// The store's first and last sample times, for commands whose range defaults to all of it.
pub fn store_extent(store: &Store) -> Result<(i64, i64), CliError> {
    store
        .snapshot()?
        .manifest()
        .extent()
        .ok_or_else(|| empty_store(store))
}

/// A JSON document, pretty-printed, and a newline.
pub(super) fn write_json(out: &mut dyn Write, json: &serde_json::Value) -> io::Result<()> {
    writeln!(
        out,
        "{}",
        serde_json::to_string_pretty(json).unwrap_or_default()
    )
}

/// The label encoding of every tabular output (`export`, `query` and
/// `backtest` CSV): one column per label name any row has, sorted.
pub fn label_columns<'a>(sets: impl IntoIterator<Item = &'a Labels>) -> Vec<&'a str> {
    sets.into_iter()
        .flat_map(|labels| labels.iter().map(|(k, _)| k.as_str()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// One row's cells under [`label_columns`]: the value, empty where the row
/// lacks the label (the store drops empty values, so the two cannot be
/// confused).
pub fn label_cells<'a>(labels: &'a Labels, columns: &[&str]) -> Vec<&'a str> {
    columns
        .iter()
        .map(|c| {
            labels
                .iter()
                .find(|(k, _)| k == c)
                .map_or("", |(_, v)| v.as_str())
        })
        .collect()
}

/// Labels as a JSON object, name to value (the backtest's alerts and records).
pub fn labels_object(labels: &Labels) -> serde_json::Value {
    labels
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
        .collect::<serde_json::Map<_, _>>()
        .into()
}
