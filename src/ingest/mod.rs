//! Ingest: one module per input format, each streaming its input line by line
//! (in place in the read buffer, never the whole file) into a
//! [`SampleSink`].
//!
//! - [`prometheus`]: Prometheus text 0.0.4 and OpenMetrics 1.0 text.
//! - [`csv`]: long (`timestamp,metric,value,<labels>`) and wide
//!   (`timestamp,<metric>,...`) CSV.
//! - [`jsonl`]: JSON lines of MCP calls, or generic samples.
//! - [`influx`]: Influx line protocol.
//! - [`parquet`]: Parquet long tables (exports, the store's own segments),
//!   read row group by row group rather than line by line.
//! - [`otlp`]: OpenTelemetry's OTLP traces and metrics, as the Collector's
//!   file exporter writes them (and as `mcpops watch` receives them).
//!
//! [`ingest_path`] takes a file (plain or `.gz`), a directory (every file with a
//! known extension under it, sorted; `.txt` only with `--format`) or `-` for
//! stdin. A line that does not
//! parse stops the run with `FILE:LINE:COL: message` ([`ParseError`]) unless
//! [`IngestOptions::skip_invalid`] is set, in which case it is counted and the
//! first few are kept in the [`IngestReport`]. Each parser keeps a map from the
//! raw text of a series to its id, so labels are parsed once per distinct
//! series, not once per line. Labels given in [`IngestOptions::labels`] are
//! added to every series; a label the input itself carries wins over them.

use crate::metadata::{MetricMeta, MetricType};
use crate::model::{RESERVED_COLUMNS, SampleSink, SeriesKey, SinkError, is_reserved_column};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};
use std::str::FromStr;

mod checks;
pub mod csv;
pub mod influx;
pub mod jsonl;
pub mod otlp;
pub mod parquet;
pub mod prometheus;

mod number;
pub(crate) use number::{EPOCH_MS_THRESHOLD, parse_f64, parse_i64, parse_time_text};

/// An input format, chosen by `--format` or by a file's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Prometheus text exposition 0.0.4 (`.prom`, `.txt`); timestamps in ms.
    Prometheus,
    /// OpenMetrics 1.0 text (`.om`, `.openmetrics`); timestamps in seconds.
    OpenMetrics,
    /// CSV, long or wide (`.csv`).
    Csv,
    /// JSON lines (`.jsonl`, `.ndjson`).
    JsonLines,
    /// Influx line protocol (`.lp`, `.influx`); timestamps in ns.
    Influx,
    /// Parquet long tables (`.parquet`): exports and store segments.
    Parquet,
    /// OTLP traces and metrics (`.otlp.jsonl`, `.otlp.json`, `.otlp.pb`).
    Otlp,
}

impl Format {
    /// The canonical `--format` name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Prometheus => "prometheus",
            Format::OpenMetrics => "openmetrics",
            Format::Csv => "csv",
            Format::JsonLines => "jsonl",
            Format::Influx => "influx",
            Format::Parquet => "parquet",
            Format::Otlp => "otlp",
        }
    }

    /// The format a file's extension names, looking through a trailing `.gz`;
    /// `None` for any other extension.
    pub fn from_path(path: &Path) -> Option<Format> {
        let (inner, _) = split_gz(path);
        // `x.otlp.jsonl` before its last extension: the Collector's file
        // exporter writes JSON lines of another shape than ours.
        let lower = inner.to_str()?.to_ascii_lowercase();
        if [".otlp.jsonl", ".otlp.json", ".otlp.pb"]
            .iter()
            .any(|e| lower.ends_with(e))
        {
            return Some(Format::Otlp);
        }
        let ext = Path::new(inner).extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "prom" | "txt" => Some(Format::Prometheus),
            "om" | "openmetrics" => Some(Format::OpenMetrics),
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" => Some(Format::JsonLines),
            "lp" | "influx" => Some(Format::Influx),
            "parquet" => Some(Format::Parquet),
            _ => None,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "prom" | "prometheus" => Ok(Format::Prometheus),
            "openmetrics" | "om" => Ok(Format::OpenMetrics),
            "csv" => Ok(Format::Csv),
            "jsonl" | "ndjson" | "json" => Ok(Format::JsonLines),
            "influx" | "lp" => Ok(Format::Influx),
            "parquet" => Ok(Format::Parquet),
            "otlp" => Ok(Format::Otlp),
            other => Err(format!(
                "unknown format `{other}`: expected prometheus (prom), openmetrics (om), csv, \
                 jsonl (ndjson, json), influx (lp), parquet or otlp"
            )),
        }
    }
}

/// How to read the input.
#[derive(Clone, Debug, Default)]
pub struct IngestOptions {
    /// Format of every file; `None` to go by each file's extension.
    pub format: Option<Format>,
    /// Timestamp (ms) for samples that carry none (Prometheus, OpenMetrics, Influx).
    pub at_ms: Option<i64>,
    /// Metric name for a wide CSV's single value column (NAB's `timestamp,value`);
    /// with several value columns, a prefix: `METRIC.<column>`.
    pub metric: Option<String>,
    /// Labels added to every series (the input's own labels win).
    pub labels: Vec<(String, String)>,
    /// Skip lines that do not parse instead of stopping.
    pub skip_invalid: bool,
    /// No progress bar (there is none either when stderr is not a terminal).
    pub quiet: bool,
}

/// A line that does not parse. `line` and `col` are 1-based (`col` counts
/// bytes); both are 0 for errors in the options rather than in a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub file: String,
    pub line: u64,
    pub col: u64,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.col, self.message
            )
        }
    }
}

impl std::error::Error for ParseError {}

/// What one [`ingest_path`] or [`ingest_reader`] call read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IngestReport {
    /// Files read.
    pub files: usize,
    /// Lines read (CSV: the line of the last record).
    pub lines: u64,
    /// Samples pushed into the sink.
    pub samples: u64,
    /// Distinct series the samples belong to.
    pub series: u64,
    /// Lines skipped with `skip_invalid`.
    pub skipped: u64,
    /// The first [`MAX_SKIPPED_KEPT`] skipped lines' errors.
    pub first_skipped: Vec<ParseError>,
    /// Input that was stored but breaks a promise of its kind (a counter
    /// going down without a restart, a histogram without its `+Inf`
    /// bucket...) or declares a metric otherwise than before: the first
    /// [`MAX_WARNINGS_KEPT`], in the order found.
    pub warnings: Vec<IngestWarning>,
    /// How many warnings there were in all.
    pub warnings_total: u64,
}

/// How many warnings a report keeps.
pub const MAX_WARNINGS_KEPT: usize = 50;

/// Input that was stored as written but deserves a look: where it is
/// (`line` 0 when no one line is to blame) and what queries will make of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestWarning {
    pub file: String,
    pub line: u64,
    pub message: String,
}

impl fmt::Display for IngestWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.file.is_empty(), self.line) {
            (true, _) => write!(f, "warning: {}", self.message),
            (false, 0) => write!(f, "{}: warning: {}", self.file, self.message),
            (false, line) => write!(f, "{}:{line}: warning: {}", self.file, self.message),
        }
    }
}

/// How many skipped lines' errors a report keeps.
pub const MAX_SKIPPED_KEPT: usize = 5;

/// Why an ingest run stopped.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Parse(ParseError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "{path}: unknown format: give --format (prometheus, openmetrics, csv, jsonl, influx, \
         parquet or otlp) or use a known extension (.prom .txt .om .csv .jsonl .ndjson .lp \
         .parquet .otlp.jsonl .otlp.json .otlp.pb, optionally .gz)"
    )]
    UnknownFormat { path: String },
    #[error("{path}: no timestamps: give --at TIME")]
    MissingTimestamp { path: String },
    #[error(
        "{path}: is a {kind}, not a regular file: reading it could block or never end; \
         to read a stream, pipe it to `mcpops ingest - --format FORMAT`"
    )]
    NotAFile { path: String, kind: &'static str },
    #[error("{path}: the gzip data is truncated or corrupt at byte {offset} of {size}: {source}")]
    Gzip {
        path: String,
        /// Bytes of the compressed file read when decompression failed.
        offset: u64,
        size: u64,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// One stream an ingest reads: a file or stdin, and its format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    /// `None` for stdin (`-`).
    pub path: Option<PathBuf>,
    pub format: Format,
}

/// Resolves the paths an ingest names into the streams it will read, in
/// order: a file, a directory (recursively, sorted, every file with a known
/// extension; others such as `incidents.json` or a README are skipped) or `-`
/// for stdin (which needs `opts.format`). `opts.format`, when set, applies to
/// every file. In a directory, `.txt` files (LICENSE.txt, notes) are skipped
/// unless `opts.format` is set; named on their own they are Prometheus text.
///
/// Everything that can be known without reading is checked here, before a
/// caller takes the store's lock: that each path exists, has a format, and is
/// a regular file (a FIFO or a device could block forever or never end).
pub fn resolve_inputs(
    paths: &[impl AsRef<Path>],
    opts: &IngestOptions,
) -> Result<Vec<Input>, IngestError> {
    let mut inputs = Vec::new();
    for path in paths {
        let path = path.as_ref();
        if path == Path::new("-") {
            let format = opts
                .format
                .ok_or_else(|| IngestError::UnknownFormat { path: "-".into() })?;
            inputs.push(Input { path: None, format });
            continue;
        }
        let name = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|e| io_error(&name, e))?;
        if meta.is_dir() {
            let mut files = Vec::new();
            walk(path, &mut files)?;
            files.sort();
            for (file, special) in files {
                let Some(detected) = Format::from_path(&file) else {
                    continue;
                };
                // In a tree, `.txt` is more often LICENSE.txt or notes than a
                // scrape: it is taken when named, or with --format.
                if opts.format.is_none() && inner_extension_is(&file, "txt") {
                    continue;
                }
                if let Some(kind) = special {
                    return Err(IngestError::NotAFile {
                        path: file.display().to_string(),
                        kind,
                    });
                }
                inputs.push(Input {
                    path: Some(file),
                    format: opts.format.unwrap_or(detected),
                });
            }
            continue;
        }
        if !meta.is_file() {
            return Err(IngestError::NotAFile {
                path: name,
                kind: file_kind(&meta.file_type()),
            });
        }
        let format = opts
            .format
            .or_else(|| Format::from_path(path))
            .ok_or(IngestError::UnknownFormat { path: name })?;
        inputs.push(Input {
            path: Some(path.to_path_buf()),
            format,
        });
    }
    Ok(inputs)
}

/// Reads resolved inputs into `sink`, as one run: label names are checked
/// for case clashes across all of them.
pub fn ingest_inputs(
    inputs: &[Input],
    opts: &IngestOptions,
    sink: &mut dyn SampleSink,
) -> Result<IngestReport, IngestError> {
    let stdin = inputs.iter().any(|i| i.path.is_none());
    // The sizes now, for the bar's total; a file that cannot be read fails
    // when it is opened, by name.
    let total: u64 = inputs
        .iter()
        .filter_map(|i| i.path.as_ref())
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let bar = crate::progress::run_bar(inputs.len(), (!stdin).then_some(total), opts.quiet);
    ingest_inputs_with(inputs, opts, sink, &bar)
}

/// [`ingest_inputs`], its progress (bytes read, files done) on `bar`.
pub fn ingest_inputs_with(
    inputs: &[Input],
    opts: &IngestOptions,
    sink: &mut dyn SampleSink,
    bar: &indicatif::ProgressBar,
) -> Result<IngestReport, IngestError> {
    let mut run = Run::new(opts, sink)?;
    for (done, input) in inputs.iter().enumerate() {
        bar.set_prefix(crate::progress::files_done(done, inputs.len()));
        match &input.path {
            None => {
                bar.set_message("-");
                run.stream("-", &mut bar.wrap_read(io::stdin().lock()), input.format)?
            }
            Some(path) => {
                bar.set_message(path.display().to_string());
                run.file(path, input.format, bar)?
            }
        }
    }
    bar.set_prefix(crate::progress::files_done(inputs.len(), inputs.len()));
    Ok(run.finish())
}

/// Ingests one path ([`resolve_inputs`] says what it may be) into `sink`.
pub fn ingest_path(
    path: &Path,
    opts: &IngestOptions,
    sink: &mut dyn SampleSink,
) -> Result<IngestReport, IngestError> {
    ingest_inputs(&resolve_inputs(&[path], opts)?, opts, sink)
}

/// Ingests one stream in a known format; `name` is what errors call it.
pub fn ingest_reader(
    mut reader: impl BufRead,
    name: &str,
    format: Format,
    opts: &IngestOptions,
    sink: &mut dyn SampleSink,
) -> Result<IngestReport, IngestError> {
    let mut run = Run::new(opts, sink)?;
    run.stream(name, &mut reader, format)?;
    Ok(run.finish())
}

/// Files under `dir`, recursively, each with `None` when it is a regular
/// file and else what it is; symlinks are followed to files (and to FIFOs,
/// which are then refused), not to directories (no cycles).
#[allow(clippy::type_complexity)]
fn walk(dir: &Path, out: &mut Vec<(PathBuf, Option<&'static str>)>) -> Result<(), IngestError> {
    let io_err = |e| io_error(&dir.display().to_string(), e);
    for entry in std::fs::read_dir(dir).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        let mut kind = entry.file_type().map_err(io_err)?;
        let path = entry.path();
        if kind.is_symlink() {
            match std::fs::metadata(&path) {
                Ok(target) if !target.is_dir() => kind = target.file_type(),
                _ => continue, // dangling, or a directory
            }
        }
        if kind.is_dir() {
            walk(&path, out)?;
        } else if kind.is_file() {
            out.push((path, None));
        } else {
            out.push((path, Some(file_kind(&kind))));
        }
    }
    Ok(())
}

/// What a file that is not a regular file is, for an error message.
fn file_kind(kind: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "FIFO (named pipe)";
        }
        if kind.is_socket() {
            return "socket";
        }
        if kind.is_char_device() {
            return "character device";
        }
        if kind.is_block_device() {
            return "block device";
        }
    }
    if kind.is_dir() {
        "directory"
    } else {
        "special file"
    }
}

/// Whether the extension under any `.gz` is `ext` (any case).
fn inner_extension_is(path: &Path, ext: &str) -> bool {
    Path::new(split_gz(path).0)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

/// The path without a trailing `.gz`, and whether there was one.
fn split_gz(path: &Path) -> (&std::ffi::OsStr, bool) {
    let name = path.file_name().unwrap_or(path.as_os_str());
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("gz") => (path.file_stem().unwrap_or(name), true),
        _ => (name, false),
    }
}

fn io_error(path: &str, source: io::Error) -> IngestError {
    IngestError::Io {
        path: path.to_string(),
        source,
    }
}

/// Whether an error from a gzip decoder is about the data (truncated,
/// corrupt) rather than the file beneath it (which carries an OS error).
fn is_decode_error(e: &io::Error) -> bool {
    e.raw_os_error().is_none()
        && matches!(
            e.kind(),
            io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData
        )
}

/// The message for two label names that differ only in case.
pub(crate) fn case_clash(name: &str, other: &str) -> String {
    format!(
        "label `{}` differs only in case from the label `{}` already in use: DuckDB matches \
         column names without regard to case (it would read the two as one column, or rename \
         one), so a store keeps one spelling; rename one",
        show_str(name),
        show_str(other)
    )
}

/// Whether `name` repeats a label of `labels`, exactly or but for case: the
/// message saying so.
pub(crate) fn repeated_label(labels: &[(String, String)], name: &str) -> Option<String> {
    let (other, _) = labels.iter().find(|(n, _)| n.eq_ignore_ascii_case(name))?;
    Some(if other == name {
        format!("label `{}` appears twice", show_str(name))
    } else {
        case_clash(name, other)
    })
}

/// A parsed timestamp (`raw` as written) the store can keep, else a bad
/// field at `col`; `hint` follows the message.
pub(crate) fn stored_ts(ms: i64, raw: &[u8], col: usize, hint: &str) -> Result<i64, Fail> {
    if crate::time::is_stored(ms) {
        Ok(ms)
    } else {
        bad(
            col,
            format!(
                "timestamp `{}` is outside the years 0 to 9999 that the store keeps{hint}",
                show(raw)
            ),
        )
    }
}

/// Read buffer per file.
const READ_BUFFER: usize = 256 * 1024;

/// Blocks a [`ReadAhead`] may hold read but not yet parsed.
const READ_AHEAD_BLOCKS: usize = 4;

/// A reader that reads its source on a thread of its own, [`READ_BUFFER`]
/// bytes at a time, up to [`READ_AHEAD_BLOCKS`] ahead of the parser, so that
/// the system calls (and gzip) run beside parsing. A read error reaches the
/// parser where it happened in the stream, as it would have read it. The
/// thread stops when the source ends, fails, or the reader is dropped.
struct ReadAhead {
    blocks: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    block: Vec<u8>,
    at: usize,
    /// An error the source gave, handed to the parser once the bytes
    /// before it are consumed.
    failed: Option<io::Error>,
}

impl ReadAhead {
    fn spawn<'scope, R: io::Read + Send + 'scope>(
        scope: &'scope std::thread::Scope<'scope, '_>,
        mut source: R,
    ) -> ReadAhead {
        let (send, blocks) = std::sync::mpsc::sync_channel(READ_AHEAD_BLOCKS);
        scope.spawn(move || {
            loop {
                let mut block = vec![0; READ_BUFFER];
                let mut filled = 0;
                // Fill the block, so that a slow source does not hand the
                // parser many tiny blocks.
                let result = loop {
                    match source.read(&mut block[filled..]) {
                        Ok(0) => break Ok(()),
                        Ok(n) => {
                            filled += n;
                            if filled == block.len() {
                                break Ok(());
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                block.truncate(filled);
                let end = filled < READ_BUFFER;
                if filled > 0 && send.send(Ok(block)).is_err() {
                    return;
                }
                if let Err(e) = result {
                    let _ = send.send(Err(e));
                    return;
                }
                if end {
                    return;
                }
            }
        });
        ReadAhead {
            blocks,
            block: Vec::new(),
            at: 0,
            failed: None,
        }
    }
}

impl io::Read for ReadAhead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for ReadAhead {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.at == self.block.len() {
            if let Some(e) = self.failed.take() {
                return Err(e);
            }
            match self.blocks.recv() {
                Ok(Ok(block)) => {
                    self.block = block;
                    self.at = 0;
                }
                Ok(Err(e)) => self.failed = Some(e),
                // The source ended.
                Err(_) => return Ok(&[]),
            }
        }
        Ok(&self.block[self.at..])
    }

    fn consume(&mut self, amount: usize) {
        self.at = (self.at + amount).min(self.block.len());
    }
}

/// Longest line accepted (bounded memory on a file with no newlines).
const MAX_LINE: u64 = 64 * 1024 * 1024;

/// One ingest run: the sink, the options, and what was read so far, across files.
pub(crate) struct Run<'a> {
    pub(crate) opts: &'a IngestOptions,
    sink: &'a mut dyn SampleSink,
    pub(crate) report: IngestReport,
    seen: HashSet<u32>,
    /// The file being read, as errors name it.
    pub(crate) name: String,
    /// Label names by their ASCII-lowercase form, spelt as the sink (the
    /// store) or this run first had them: DuckDB matches column names
    /// without regard to case, so a store keeps one spelling of each.
    spellings: HashMap<String, String>,
    /// The line being read (1-based), for warnings about its sample.
    pub(crate) line: u64,
    /// The `# TYPE` declarations of the file being read, by family name.
    pub(crate) types: HashMap<String, MetricType>,
    /// What the sink held declared and what this run declared since.
    declared: BTreeMap<String, MetricMeta>,
    /// This run's declarations, by metric name: later ones in the run are
    /// compared with these rather than with the sink's.
    declared_here: HashSet<String>,
    checks: checks::Checks,
    /// Interned series by id, for naming a series in a warning.
    keys: HashMap<u32, SeriesKey>,
}

impl<'a> Run<'a> {
    fn new(opts: &'a IngestOptions, sink: &'a mut dyn SampleSink) -> Result<Self, IngestError> {
        let option_error = |file: String, message| {
            IngestError::Parse(ParseError {
                file,
                line: 0,
                col: 0,
                message,
            })
        };
        if let Some(at) = opts.at_ms
            && let Err(message) = crate::time::check_stored_range(at)
        {
            return Err(option_error("--at".into(), message));
        }
        let mut spellings = HashMap::new();
        for name in sink.label_names() {
            spellings.entry(name.to_ascii_lowercase()).or_insert(name);
        }
        for (name, _) in &opts.labels {
            let checked = check_label_name(name).and_then(|()| {
                match spellings.get(&name.to_ascii_lowercase()) {
                    Some(other) if other != name => Err(case_clash(name, other)),
                    _ => Ok(()),
                }
            });
            if let Err(message) = checked {
                return Err(option_error(format!("--label {}", show_str(name)), message));
            }
            spellings.insert(name.to_ascii_lowercase(), name.clone());
        }
        let declared = sink.declared();
        Ok(Run {
            opts,
            sink,
            report: IngestReport::default(),
            seen: HashSet::new(),
            name: String::new(),
            spellings,
            line: 0,
            types: HashMap::new(),
            declared,
            declared_here: HashSet::new(),
            checks: checks::Checks::default(),
            keys: HashMap::new(),
        })
    }

    /// Reads one file, counting its bytes on the run's `bar`.
    fn file(
        &mut self,
        path: &Path,
        format: Format,
        bar: &indicatif::ProgressBar,
    ) -> Result<(), IngestError> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| io_error(&name, e))?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if format == Format::Parquet && !split_gz(path).1 {
            // Parquet is read from its footer back, by row group: the file
            // itself, not a stream; counted on the bar once read.
            self.begin(&name);
            parquet::ingest_chunks(file, self)?;
            bar.inc(len);
            return Ok(());
        }
        // Where this file starts on the run's bar: a gzip error's offset is
        // within the file.
        let base = bar.position();
        let raw = bar.wrap_read(file);
        // The file is read (and decompressed) on a thread of its own, ahead
        // of the parser: reading is a third of a plain file's ingest.
        if split_gz(path).1 {
            let streamed = std::thread::scope(|scope| {
                let mut reader = ReadAhead::spawn(scope, flate2::read::MultiGzDecoder::new(raw));
                self.stream(&name, &mut reader, format)
            });
            match streamed {
                // The file was read fine but did not decompress: bad input,
                // placed by how much of the file the decoder had taken.
                Err(IngestError::Io { path, source }) if is_decode_error(&source) => {
                    Err(IngestError::Gzip {
                        path,
                        offset: bar.position() - base,
                        size: len,
                        source,
                    })
                }
                other => other,
            }
        } else {
            std::thread::scope(|scope| {
                let mut reader = ReadAhead::spawn(scope, raw);
                self.stream(&name, &mut reader, format)
            })
        }
    }

    fn stream(
        &mut self,
        name: &str,
        reader: &mut dyn BufRead,
        format: Format,
    ) -> Result<(), IngestError> {
        self.begin(name);
        match format {
            Format::Prometheus => prometheus::ingest(reader, self, false),
            Format::OpenMetrics => prometheus::ingest(reader, self, true),
            Format::Csv => csv::ingest(reader, self),
            Format::JsonLines => jsonl::ingest(reader, self),
            Format::Influx => influx::ingest(reader, self),
            Format::Parquet => parquet::ingest_stream(reader, self),
            Format::Otlp => otlp::ingest(reader, self),
        }
    }

    /// Starts reading the file (or stream) called `name`.
    fn begin(&mut self, name: &str) {
        self.name = name.to_string();
        self.report.files += 1;
        self.checks.files.push(name.to_string());
        self.types.clear();
        self.line = 0;
    }

    /// The id of a series with the run's extra labels added (the input's
    /// win); a bad line at `col` when a label name differs only in case from
    /// one the store or this run already has.
    pub(crate) fn intern(
        &mut self,
        metric: String,
        mut labels: Vec<(String, String)>,
        col: usize,
    ) -> Result<u32, Fail> {
        labels.extend(self.opts.labels.iter().cloned());
        let key = SeriesKey::new(metric, labels);
        self.check_spellings(&key)
            .map_err(|message| Fail::Bad { col, message })?;
        let id = self.sink.intern(key.clone());
        if self.seen.insert(id) {
            self.report.series += 1;
            let declared = checks::declared_family(&key.metric, &self.types);
            let file = self.checks.files.len().saturating_sub(1) as u32;
            self.checks.classify(id, &key, declared, file, self.line);
            self.keys.insert(id, key);
        }
        Ok(id)
    }

    /// Checks a series' label names against each other and the known
    /// spellings, then records the new ones (only once all passed, so a
    /// rejected line leaves no spelling behind).
    fn check_spellings(&mut self, key: &SeriesKey) -> Result<(), String> {
        let mut new = Vec::new();
        for (i, (name, _)) in key.labels.iter().enumerate() {
            if let Some((other, _)) = key.labels[..i]
                .iter()
                .find(|(other, _)| other.eq_ignore_ascii_case(name))
            {
                return Err(case_clash(name, other));
            }
            let lower = if name.bytes().any(|b| b.is_ascii_uppercase()) {
                std::borrow::Cow::Owned(name.to_ascii_lowercase())
            } else {
                std::borrow::Cow::Borrowed(name.as_str())
            };
            match self.spellings.get(lower.as_ref()) {
                Some(known) if known != name => return Err(case_clash(name, known)),
                Some(_) => {}
                None => new.push((lower.into_owned(), name)),
            }
        }
        for (lower, name) in new {
            self.spellings.insert(lower, name.clone());
        }
        Ok(())
    }

    #[inline]
    pub(crate) fn push(&mut self, id: u32, ts: i64, value: f64) -> Result<(), IngestError> {
        self.sink.push(id, ts, value)?;
        self.report.samples += 1;
        let file = self.checks.files.len().saturating_sub(1) as u32;
        self.checks.sample(id, ts, value, file, self.line);
        Ok(())
    }

    /// Records what the input declares of a stored metric name. A type
    /// that differs from an earlier declaration (of this run or in the
    /// sink) is a warning; the newest wins.
    pub(crate) fn describe(&mut self, metric: &str, meta: MetricMeta) {
        if let Some(before) = self.declared.get(metric)
            && before.kind != meta.kind
        {
            let (file, line) = split_place(meta.declared_at.as_deref());
            let earlier = match &before.declared_at {
                Some(at) if self.declared_here.contains(metric) => format!("at {at}"),
                Some(at) => format!("in the store (from {at})"),
                None => "in the store".to_string(),
            };
            self.warn(IngestWarning {
                file,
                line,
                message: format!(
                    "`{}` is declared {} here but was declared {} {earlier}: the store keeps \
                     {}, the newest",
                    show_str(metric),
                    meta.kind,
                    before.kind,
                    meta.kind
                ),
            });
        }
        self.declared_here.insert(metric.to_string());
        self.declared.insert(metric.to_string(), meta.clone());
        self.sink.describe(metric, meta);
    }

    pub(crate) fn warn(&mut self, warning: IngestWarning) {
        self.report.warnings_total += 1;
        if self.report.warnings.len() < MAX_WARNINGS_KEPT {
            self.report.warnings.push(warning);
        }
    }

    /// The report, with the warnings of the checks that only the whole run
    /// can decide (counter resets against restarts, histogram batches).
    fn finish(mut self) -> IngestReport {
        let keys = std::mem::take(&mut self.keys);
        let name = |id: u32| {
            keys.get(&id)
                .map_or_else(|| format!("#{id}"), |k| k.to_string())
        };
        for w in self.checks.finish(&name) {
            self.warn(w);
        }
        self.report
    }

    /// `--at`, or the error saying it is needed.
    pub(crate) fn default_ts(&self) -> Result<i64, IngestError> {
        self.opts
            .at_ms
            .ok_or_else(|| IngestError::MissingTimestamp {
                path: self.name.clone(),
            })
    }

    /// Turns a line's outcome into the run's: a bad line stops the run, or is
    /// counted and skipped with `skip_invalid`; fatal errors always stop it.
    pub(crate) fn settle(
        &mut self,
        line: u64,
        outcome: Result<(), Fail>,
    ) -> Result<(), IngestError> {
        match outcome {
            Ok(()) => Ok(()),
            Err(Fail::Fatal(e)) => Err(e),
            Err(Fail::Bad { col, message }) => {
                let error = ParseError {
                    file: self.name.clone(),
                    line: line.max(1),
                    col: col.max(1) as u64,
                    message,
                };
                if !self.opts.skip_invalid {
                    return Err(IngestError::Parse(error));
                }
                self.report.skipped += 1;
                if self.report.first_skipped.len() < MAX_SKIPPED_KEPT {
                    self.report.first_skipped.push(error);
                }
                Ok(())
            }
        }
    }

    /// An error that stops the run whatever `skip_invalid` says (a bad header).
    pub(crate) fn fatal(&self, line: u64, col: usize, message: String) -> IngestError {
        IngestError::Parse(ParseError {
            file: self.name.clone(),
            line: line.max(1),
            col: col.max(1) as u64,
            message,
        })
    }
}

/// `FILE:LINE` split back into its parts (the line 0 when there is none).
fn split_place(place: Option<&str>) -> (String, u64) {
    let Some(place) = place else {
        return (String::new(), 0);
    };
    match place.rsplit_once(':') {
        Some((file, line)) if line.parse::<u64>().is_ok() => {
            (file.to_string(), line.parse().unwrap_or(0))
        }
        _ => (place.to_string(), 0),
    }
}

/// How a line failed: bad input at a column (1-based bytes), or an error
/// that ends the run (sink, missing `--at`).
#[derive(Debug)]
pub(crate) enum Fail {
    Bad { col: usize, message: String },
    Fatal(IngestError),
}

impl From<IngestError> for Fail {
    fn from(e: IngestError) -> Self {
        Fail::Fatal(e)
    }
}

/// A bad-line failure at a 1-based byte column.
pub(crate) fn bad<T>(col: usize, message: impl Into<String>) -> Result<T, Fail> {
    Err(Fail::Bad {
        col,
        message: message.into(),
    })
}

/// Feeds every line of `reader` to `parse_line` with its 1-based number,
/// settles each outcome (stop, or count and skip with `--skip-invalid`), and
/// adds the lines read to the report: the loop every line format shares.
pub(crate) fn for_each_line(
    reader: &mut dyn BufRead,
    run: &mut Run,
    mut parse_line: impl FnMut(&[u8], u64, &mut Run) -> Result<(), Fail>,
) -> Result<(), IngestError> {
    let mut lines = Lines::new(reader);
    let result = loop {
        let number = lines.number + 1;
        let line = match lines.next_line(&run.name) {
            Ok(Some(line)) => line,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        run.line = number;
        let outcome = parse_line(line, number, run);
        if let Err(e) = run.settle(number, outcome) {
            break Err(e);
        }
    };
    run.report.lines += lines.number;
    result
}

/// Lines of a stream without their `\n` or `\r\n`. A line that lies whole
/// in the reader's buffer is handed out in place; one that straddles a
/// refill is copied into a reused buffer. Memory stays bounded by the
/// longest line (at most [`MAX_LINE`]).
pub(crate) struct Lines<'r> {
    reader: &'r mut dyn BufRead,
    buf: Vec<u8>,
    /// Bytes of the reader's buffer to consume before the next line.
    pending: usize,
    /// 1-based number of the line last returned.
    pub(crate) number: u64,
}

impl<'r> Lines<'r> {
    pub(crate) fn new(reader: &'r mut dyn BufRead) -> Self {
        Lines {
            reader,
            buf: Vec::new(),
            pending: 0,
            number: 0,
        }
    }

    pub(crate) fn next_line(&mut self, name: &str) -> Result<Option<&[u8]>, IngestError> {
        if self.pending > 0 {
            self.reader.consume(self.pending);
            self.pending = 0;
        }
        let found = {
            let available = self.reader.fill_buf().map_err(|e| io_error(name, e))?;
            if available.is_empty() {
                return Ok(None);
            }
            find_byte(available, 0, b'\n')
        };
        if let Some(pos) = found {
            // The second `fill_buf` returns the same buffered bytes without reading.
            let available = self.reader.fill_buf().map_err(|e| io_error(name, e))?;
            let line = &available[..pos.min(available.len())];
            self.pending = pos + 1;
            self.number += 1;
            return Ok(Some(line.strip_suffix(b"\r").unwrap_or(line)));
        }
        self.buf.clear();
        loop {
            let available = self.reader.fill_buf().map_err(|e| io_error(name, e))?;
            if available.is_empty() {
                break; // the last line, without a newline
            }
            if let Some(pos) = find_byte(available, 0, b'\n') {
                self.buf.extend_from_slice(&available[..pos]);
                self.reader.consume(pos + 1);
                break;
            }
            let n = available.len();
            self.buf.extend_from_slice(available);
            self.reader.consume(n);
            if self.buf.len() as u64 > MAX_LINE {
                return Err(IngestError::Parse(ParseError {
                    file: name.to_string(),
                    line: self.number + 1,
                    col: MAX_LINE + 1,
                    message: format!("line longer than {} MiB", MAX_LINE >> 20),
                }));
            }
        }
        self.number += 1;
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Ok(Some(&self.buf))
    }
}

const LO_BYTES: u64 = 0x0101_0101_0101_0101;
const HI_BITS: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `word` equal to `b`; the lowest set bit is
/// exact (higher ones may be false positives, which callers never look at).
#[inline(always)]
fn byte_mask(word: u64, b: u8) -> u64 {
    let x = word ^ (LO_BYTES * u64::from(b));
    x.wrapping_sub(LO_BYTES) & !x & HI_BITS
}

#[inline(always)]
fn word_at(bytes: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[i..i + 8]);
    u64::from_le_bytes(w)
}

/// Index of the first `a` at or after `i`, eight bytes at a time.
#[inline]
pub(crate) fn find_byte(bytes: &[u8], mut i: usize, a: u8) -> Option<usize> {
    while i + 8 <= bytes.len() {
        let m = byte_mask(word_at(bytes, i), a);
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    while i < bytes.len() {
        if bytes[i] == a {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Index of the first `a` or `b` at or after `i`, eight bytes at a time.
#[inline]
pub(crate) fn find_either(bytes: &[u8], mut i: usize, a: u8, b: u8) -> Option<usize> {
    while i + 8 <= bytes.len() {
        let w = word_at(bytes, i);
        let m = byte_mask(w, a) | byte_mask(w, b);
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    while i < bytes.len() {
        if bytes[i] == a || bytes[i] == b {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Checks a label name the store can keep: not empty, not one of its own
/// columns in any case ([`is_reserved_column`]), not `__name__`.
pub(crate) fn check_label_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty label name".into());
    }
    if is_reserved_column(name) {
        return Err(format!(
            "label name `{}` is reserved: the store's own columns are {} (in any case, as \
             DuckDB matches column names); rename the label",
            show_str(name),
            RESERVED_COLUMNS.join(", ")
        ));
    }
    if name == "__name__" {
        // Prometheus rejects it too: with a metric name before the braces the
        // series has `__name__` twice; without one, it has no metric name.
        return Err(
            "`__name__` is the metric name, not a label: write `name{...}` or `{\"name\", ...}`"
                .into(),
        );
    }
    Ok(())
}

/// At most this many characters of input are quoted in an error message.
pub(crate) const SHOWN_CHARS: usize = 120;

/// Input text for an error message: lossy UTF-8, cut after [`SHOWN_CHARS`]
/// characters (on a character boundary) with a note of how much was cut, so
/// that a multi-megabyte line does not end up in the message whole.
pub(crate) fn show(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut chars = 0;
    let mut used = 0;
    'chunks: for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if chars == SHOWN_CHARS {
                break 'chunks;
            }
            out.push(c);
            chars += 1;
            used += c.len_utf8();
        }
        if !chunk.invalid().is_empty() {
            if chars == SHOWN_CHARS {
                break;
            }
            out.push(char::REPLACEMENT_CHARACTER);
            chars += 1;
            used += chunk.invalid().len();
        }
    }
    if used < bytes.len() {
        out.push_str(&format!("…({} more bytes)", bytes.len() - used));
    }
    out
}

/// [`show`] for text already decoded (names, values).
pub(crate) fn show_str(text: &str) -> String {
    show(text.as_bytes())
}

/// A library's message that may quote input (serde_json quotes a string it
/// did not expect): its first [`SHOWN_CHARS`] characters and its last few,
/// which say what was expected, around a note of how much was cut.
pub(crate) fn show_message(text: &str) -> String {
    const TAIL_CHARS: usize = 80;
    let Some((head_end, _)) = text.char_indices().nth(SHOWN_CHARS) else {
        return text.to_string();
    };
    let tail_start = text
        .char_indices()
        .rev()
        .nth(TAIL_CHARS - 1)
        .map_or(0, |(i, _)| i);
    if tail_start <= head_end {
        return text.to_string();
    }
    format!(
        "{}…({} more bytes)…{}",
        &text[..head_end],
        tail_start - head_end,
        &text[tail_start..]
    )
}

/// A fast hasher for raw series text (FxHash's word mixing with a splitmix
/// finish). Not DoS-resistant: input files are the operator's own.
#[derive(Default, Clone, Copy)]
pub(crate) struct RawHasher(u64);

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl RawHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for RawHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Raw series text (bytes) to a value, hashed with [`RawHasher`].
pub(crate) type RawMap<V> = HashMap<Box<[u8]>, V, BuildHasherDefault<RawHasher>>;

#[cfg(test)]
pub(crate) mod testutil {
    //! Helpers the format tests share: running a parser over text, and a
    //! deterministic generator of mutated lines for fuzz-style tests.

    use super::*;
    use crate::model::MemorySink;

    /// A resolved sample: metric, labels, timestamp, value.
    pub type Sample = (String, Vec<(String, String)>, i64, f64);

    pub fn opts() -> IngestOptions {
        IngestOptions {
            quiet: true,
            ..IngestOptions::default()
        }
    }

    /// Ingests `text` as `format`, returning the report and the samples.
    pub fn run(
        text: &str,
        format: Format,
        opts: &IngestOptions,
    ) -> Result<(IngestReport, Vec<Sample>), IngestError> {
        run_bytes(text.as_bytes(), format, opts)
    }

    pub fn run_bytes(
        bytes: &[u8],
        format: Format,
        opts: &IngestOptions,
    ) -> Result<(IngestReport, Vec<Sample>), IngestError> {
        let mut sink = MemorySink::default();
        let report = ingest_reader(bytes, "in", format, opts, &mut sink)?;
        let samples = sink
            .resolved()
            .into_iter()
            .map(|(k, t, v)| (k.metric.clone(), k.labels.clone(), t, v))
            .collect();
        Ok((report, samples))
    }

    /// The parse error `text` gives (panics if it gives none).
    pub fn parse_error(text: &str, format: Format, opts: &IngestOptions) -> ParseError {
        match run(text, format, opts) {
            Err(IngestError::Parse(e)) => e,
            other => panic!("expected a parse error for {text:?}, got {other:?}"),
        }
    }

    pub fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        v.sort();
        v
    }

    /// xorshift64*: deterministic, no dependency.
    pub struct Rng(pub u64);

    impl Rng {
        pub fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        pub fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }

        pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[self.below(items.len())]
        }
    }

    /// Mutates a line: flips, inserts, deletes or duplicates bytes, favouring
    /// the characters the formats treat specially; sometimes truncates.
    pub fn mutate(rng: &mut Rng, line: &str) -> Vec<u8> {
        const SPECIAL: &[u8] = b"{}\",=\\ #.-+eEi\t:0123456789NaIf\xff\xc3tT[]";
        let mut b = line.as_bytes().to_vec();
        for _ in 0..1 + rng.below(3) {
            let pos = rng.below(b.len() + 1);
            match rng.below(6) {
                0 if pos < b.len() => b[pos] = *rng.pick(SPECIAL),
                1 => b.insert(pos, *rng.pick(SPECIAL)),
                2 if pos < b.len() => {
                    b.remove(pos);
                }
                3 => b.truncate(pos),
                4 if pos < b.len() => {
                    let end = (pos + 1 + rng.below(8)).min(b.len());
                    let chunk = b[pos..end].to_vec();
                    b.splice(pos..pos, chunk);
                }
                _ => b.insert(pos, (rng.next() & 0xff) as u8),
            }
        }
        b.retain(|&c| c != b'\n' && c != b'\r');
        b
    }

    /// `count` lines drawn from `seeds`: every `verbatim_every`-th as it is,
    /// the rest mutated.
    pub fn fuzz_lines(
        rng: &mut Rng,
        seeds: &[&str],
        count: usize,
        verbatim_every: usize,
    ) -> Vec<Vec<u8>> {
        (0..count)
            .map(|i| {
                let seed = rng.pick(seeds);
                if i % verbatim_every == 0 {
                    seed.as_bytes().to_vec()
                } else {
                    mutate(rng, seed)
                }
            })
            .collect()
    }

    /// Feeds each line alone (errors must point inside it) and then all of
    /// them as one file with `skip_invalid` (errors must carry their line).
    /// `trailer` (OpenMetrics' `# EOF`) follows each input; an error on it
    /// must say so. Returns (lines that parsed alone, samples in the whole run).
    pub fn fuzz(
        format: Format,
        lines: &[Vec<u8>],
        opts: &IngestOptions,
        trailer: &str,
    ) -> (usize, u64) {
        let mut ok = 0;
        for line in lines {
            let mut input = line.clone();
            if !trailer.is_empty() {
                input.push(b'\n');
                input.extend_from_slice(trailer.as_bytes());
            }
            let shown = String::from_utf8_lossy(line);
            match run_bytes(&input, format, opts) {
                Ok(_) => ok += 1,
                Err(IngestError::Parse(e)) if e.line == 2 && !trailer.is_empty() => {
                    assert!(e.message.contains(trailer), "{e} for {shown:?}");
                }
                Err(IngestError::Parse(e)) => {
                    assert_eq!(e.line, 1, "{e} for {shown:?}");
                    assert!(
                        e.col >= 1 && e.col as usize <= line.len() + 1,
                        "{e} for {shown:?}"
                    );
                    assert!(!e.message.is_empty());
                }
                Err(e) => panic!("{e} for {shown:?}"),
            }
        }
        let mut all = Vec::new();
        for line in lines {
            all.extend_from_slice(line);
            all.push(b'\n');
        }
        all.extend_from_slice(trailer.as_bytes());
        let skipping = IngestOptions {
            skip_invalid: true,
            ..opts.clone()
        };
        let (report, samples) = run_bytes(&all, format, &skipping).expect("skip_invalid run");
        assert_eq!(report.samples as usize, samples.len());
        for e in &report.first_skipped {
            assert!(e.line >= 1 && e.line <= lines.len() as u64 + 1, "{e}");
            assert!(e.col >= 1, "{e}");
        }
        (ok, report.samples)
    }
}

#[cfg(test)]
mod tests {
    use super::number::fast_rfc3339;
    use super::testutil::*;
    use super::*;

    /// A source that gives `good`, a few bytes per read, then fails.
    struct FailsAfter {
        good: Vec<u8>,
        at: usize,
    }

    impl io::Read for FailsAfter {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.at == self.good.len() {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "bad block"));
            }
            let n = 3.min(buf.len()).min(self.good.len() - self.at);
            buf[..n].copy_from_slice(&self.good[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    #[test]
    fn read_ahead_gives_every_byte_then_the_error_where_it_happened() {
        let good: Vec<u8> = (0..READ_BUFFER * 3 + 17)
            .map(|i| b'a' + (i % 26) as u8)
            .collect();
        let got = std::thread::scope(|scope| {
            let mut reader = ReadAhead::spawn(
                scope,
                FailsAfter {
                    good: good.clone(),
                    at: 0,
                },
            );
            let mut got = Vec::new();
            let err = io::Read::read_to_end(&mut reader, &mut got).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            got
        });
        assert_eq!(got, good);
        // A clean end: every byte, then end of input, no error.
        let whole = std::thread::scope(|scope| {
            let mut reader = ReadAhead::spawn(scope, &good[..]);
            let mut whole = Vec::new();
            io::Read::read_to_end(&mut reader, &mut whole).unwrap();
            whole
        });
        assert_eq!(whole, good);
    }

    #[test]
    fn a_parser_that_stops_early_does_not_wait_for_the_rest_of_the_file() {
        let endless = io::repeat(b'x');
        std::thread::scope(|scope| {
            let mut reader = ReadAhead::spawn(scope, endless);
            assert_eq!(reader.fill_buf().unwrap()[0], b'x');
            // The reader drops here; the scope then joins the thread,
            // which must notice and stop.
        });
    }

    /// A directory is one bar: every byte of every file (gzipped ones
    /// counted as stored) on it, and the files done as its prefix.
    #[test]
    fn one_bar_counts_the_whole_run() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.prom"), "up{job=\"a\"} 1 1000\n").unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, b"up{job=\"b\"} 2 1000\nup{job=\"c\"} 3 1000\n")
            .unwrap();
        std::fs::write(dir.path().join("b.prom.gz"), gz.finish().unwrap()).unwrap();
        let opts = testutil::opts();
        let inputs = resolve_inputs(&[dir.path()], &opts).unwrap();
        let total: u64 = ["a.prom", "b.prom.gz"]
            .iter()
            .map(|f| std::fs::metadata(dir.path().join(f)).unwrap().len())
            .sum();
        let bar = crate::progress::run_bar(inputs.len(), Some(total), true);
        let mut sink = crate::model::MemorySink::default();
        let report = ingest_inputs_with(&inputs, &opts, &mut sink, &bar).unwrap();
        assert_eq!((report.files, report.samples), (2, 3));
        assert_eq!(bar.position(), total);
        assert_eq!(bar.length(), Some(total));
        assert_eq!(bar.prefix(), "2/2 files");
    }

    #[test]
    fn formats_parse_by_name_and_extension() {
        for (text, f) in [
            ("prom", Format::Prometheus),
            ("prometheus", Format::Prometheus),
            ("OM", Format::OpenMetrics),
            ("openmetrics", Format::OpenMetrics),
            ("csv", Format::Csv),
            ("jsonl", Format::JsonLines),
            ("ndjson", Format::JsonLines),
            ("json", Format::JsonLines),
            ("influx", Format::Influx),
            ("lp", Format::Influx),
        ] {
            assert_eq!(text.parse::<Format>(), Ok(f), "{text}");
            assert_eq!(f.name().parse::<Format>(), Ok(f));
        }
        assert!("yaml".parse::<Format>().unwrap_err().contains("yaml"));
        for (path, f) in [
            ("a/b.prom", Some(Format::Prometheus)),
            ("b.txt", Some(Format::Prometheus)),
            ("b.om.gz", Some(Format::OpenMetrics)),
            ("b.openmetrics", Some(Format::OpenMetrics)),
            ("x.CSV", Some(Format::Csv)),
            ("x.csv.gz", Some(Format::Csv)),
            ("x.ndjson", Some(Format::JsonLines)),
            ("calls.jsonl.gz", Some(Format::JsonLines)),
            ("x.lp", Some(Format::Influx)),
            ("x.influx.GZ", Some(Format::Influx)),
            ("incidents.json", None),
            ("README", None),
            ("x.gz", None),
            ("x.tar.gz", None),
        ] {
            assert_eq!(Format::from_path(Path::new(path)), f, "{path}");
        }
    }

    #[test]
    fn parse_error_displays_file_line_col() {
        let e = ParseError {
            file: "a.prom".into(),
            line: 3,
            col: 7,
            message: "bad".into(),
        };
        assert_eq!(e.to_string(), "a.prom:3:7: bad");
        assert_eq!(IngestError::Parse(e).to_string(), "a.prom:3:7: bad");
        let m = IngestError::MissingTimestamp {
            path: "a.prom".into(),
        };
        assert_eq!(m.to_string(), "a.prom: no timestamps: give --at TIME");
    }

    #[test]
    fn reserved_extra_label_is_rejected() {
        let mut o = opts();
        o.labels = vec![("day".into(), "x".into())];
        match run("m 1 1\n", Format::Prometheus, &o) {
            Err(IngestError::Parse(e)) => {
                assert!(e.message.contains("`day`"), "{e}");
                assert!(e.to_string().starts_with("--label day: "), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn extra_labels_added_and_input_labels_win() {
        let mut o = opts();
        o.labels = vec![("env".into(), "prod".into()), ("dc".into(), "x".into())];
        let (_, s) = run("m{env=\"dev\"} 1 5\nn 2 6\n", Format::Prometheus, &o).unwrap();
        assert_eq!(s[0].1, labels(&[("dc", "x"), ("env", "dev")]));
        assert_eq!(s[1].1, labels(&[("dc", "x"), ("env", "prod")]));
    }

    #[test]
    fn skip_invalid_counts_and_keeps_first_five() {
        let mut o = opts();
        o.skip_invalid = true;
        let text: String = (0..8)
            .map(|i| format!("m{{a=\"{i}\"}} x 1\nok 1 1\n"))
            .collect();
        let (r, s) = run(&text, Format::Prometheus, &o).unwrap();
        assert_eq!(r.skipped, 8);
        assert_eq!(r.first_skipped.len(), 5, "the first five are kept");
        assert_eq!(r.first_skipped[0].line, 1);
        assert_eq!(r.first_skipped[1].line, 3);
        assert_eq!(r.first_skipped[4].line, 9);
        assert_eq!(r.lines, 16);
        assert_eq!(r.samples, 8);
        assert_eq!(r.series, 1, "bad lines intern nothing");
        assert_eq!(s.len(), 8);
    }

    #[test]
    fn lines_strip_crlf_and_count() {
        let (r, s) = run("a 1 1\r\nb 2 2\r\n\r\nc 3 3", Format::Prometheus, &opts()).unwrap();
        assert_eq!(r.lines, 4);
        assert_eq!(
            s.iter().map(|x| x.3).collect::<Vec<_>>(),
            vec![1.0, 2.0, 3.0]
        );
    }

    #[test]
    fn fast_rfc3339_agrees_with_chrono() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut checked = 0;
        for _ in 0..20_000 {
            let y = 1900 + rng.below(300);
            let text = format!(
                "{y:04}-{:02}-{:02}{}{:02}:{:02}:{:02}{}{}",
                rng.below(14),
                rng.below(33),
                rng.pick(&["T", "t", " "]),
                rng.below(25),
                rng.below(61),
                rng.below(62),
                rng.pick(&["", ".5", ".123", ".123456789", ".1234567891", ".", ".0019"]),
                rng.pick(&[
                    "Z", "z", "+01:00", "-05:30", "+23:59", "+24:00", "", "+0100", "Zx"
                ]),
            );
            let slow = crate::time::parse_timestamp(&text);
            if let Some(fast) = fast_rfc3339(text.as_bytes()) {
                assert_eq!(Some(fast), slow, "{text}");
                checked += 1;
            }
            assert_eq!(parse_time_text(&text), slow, "{text}");
        }
        assert!(checked > 2000, "fast path taken {checked} times");
        assert_eq!(
            parse_time_text("2026-11-16T00:00:01.234Z"),
            Some(1_794_787_201_234)
        );
    }

    #[test]
    fn fast_decimals_agree_with_std() {
        let mut rng = Rng(42);
        for _ in 0..100_000 {
            let digits = 1 + rng.below(17);
            let mut t: String = (0..digits)
                .map(|_| char::from(b'0' + rng.below(10) as u8))
                .collect();
            if rng.below(2) == 0 {
                t.insert(rng.below(t.len() + 1), '.');
            }
            if rng.below(3) == 0 {
                t.insert(0, *rng.pick(&['-', '+']));
            }
            let want = t.parse::<f64>().ok();
            assert_eq!(
                parse_f64(t.as_bytes()).map(f64::to_bits),
                want.map(f64::to_bits),
                "{t}"
            );
        }
        for t in [
            "NaN", "+Inf", "-Inf", "Inf", "1e3", "-1.5E-3", ".5", "5.", "-0",
        ] {
            let want = t.parse::<f64>().unwrap();
            let got = parse_f64(t.as_bytes()).unwrap();
            assert!(
                got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                "{t}"
            );
        }
        for t in [
            "", ".", "-", "1..2", "1.2.3", "x", "1_000", "0x10", "1e", "++1",
        ] {
            assert_eq!(parse_f64(t.as_bytes()), None, "{t}");
        }
    }

    #[test]
    fn byte_search_finds_the_first_match() {
        let mut rng = Rng(3);
        for _ in 0..20_000 {
            let len = rng.below(40);
            let bytes: Vec<u8> = (0..len).map(|_| *rng.pick(b"ab\"}\\\n\x80\xff")).collect();
            let from = rng.below(len + 2);
            let slow1 = bytes
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, c)| **c == b'"')
                .map(|(i, _)| i);
            let slow2 = bytes
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, c)| **c == b'}' || **c == b'\\')
                .map(|(i, _)| i);
            assert_eq!(find_byte(&bytes, from, b'"'), slow1, "{bytes:?} {from}");
            assert_eq!(
                find_either(&bytes, from, b'}', b'\\'),
                slow2,
                "{bytes:?} {from}"
            );
        }
    }

    #[test]
    fn long_lines_straddle_buffer_refills() {
        // A tiny read buffer forces the copying path for most lines.
        let text: String = (0..200)
            .map(|i| format!("m{{a=\"{}\"}} {i} {i}\r\n", "x".repeat(i)))
            .collect();
        let reader = std::io::BufReader::with_capacity(16, text.as_bytes());
        let mut sink = crate::model::MemorySink::default();
        let r = ingest_reader(reader, "in", Format::Prometheus, &opts(), &mut sink).unwrap();
        assert_eq!((r.lines, r.samples, r.series), (200, 200, 200));
        let s = sink.resolved();
        assert_eq!(s[150].0.label("a").map(str::len), Some(150));
        assert_eq!((s[150].1, s[150].2), (150, 150.0));
        let no_newline = ingest_reader(
            "a 1 1\nb 2 2".as_bytes(),
            "in",
            Format::Prometheus,
            &opts(),
            &mut sink,
        )
        .unwrap();
        assert_eq!(no_newline.lines, 2);
    }

    #[test]
    fn integers_parse_with_overflow_checks() {
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"+7"), Some(7));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"-"), None);
        assert_eq!(parse_i64(b"1.5"), None);
    }
}
