//! What `watch` runs: `watch.toml`, or the flags that cover the common case.
//!
//! The file is read with serde (`deny_unknown_fields` everywhere, so a
//! misspelt key is an error, not a silently ignored line); its errors carry
//! `FILE:LINE:COL`. Flags add targets to the file's and override its
//! single values ([`WatchConfig::apply_flags`]).

use super::WatchError;
use super::probe::ProbeConfig;
use super::scrape::ScrapeConfig;
use crate::store::LiveOptions;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A whole `watch.toml`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchConfig {
    /// The store directory (`--store` overrides it).
    pub store: Option<PathBuf>,
    /// The address of the HTTP API, `/metrics` and OTLP/HTTP [default:
    /// 127.0.0.1:9464].
    #[serde(default)]
    pub listen: Option<String>,
    /// A second listener that serves only OTLP/HTTP (`/v1/traces`,
    /// `/v1/metrics`), e.g. `127.0.0.1:4318`, the port OpenTelemetry's
    /// exporters default to. The main listener serves OTLP either way.
    #[serde(default)]
    pub otlp: Option<String>,
    /// The scrape and probe interval of targets that do not set their own,
    /// and the interval at which watch records its own health.
    #[serde(default, with = "duration_opt")]
    pub interval: Option<Duration>,
    #[serde(default)]
    pub flush: FlushConfig,
    #[serde(default)]
    pub mirror: MirrorConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub scrape: Vec<ScrapeConfig>,
    #[serde(default)]
    pub probe: Vec<ProbeConfig>,
    #[serde(default)]
    pub rules: RulesConfig,
    #[serde(default)]
    pub alertmanager: AlertmanagerConfig,
    #[serde(default)]
    pub notify: NotifyConfig,
    /// The directory `[rules] files` are relative to: the file's own, so
    /// that a `watch.toml` names its rules wherever watch is started from.
    #[serde(skip)]
    pub base_dir: Option<PathBuf>,
}

/// `[rules]`: the rule files watch evaluates, and how.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// Paths, or patterns with `*` and `?` in their last component
    /// (`rules/*.rules`), relative to the `watch.toml`.
    #[serde(default)]
    pub files: Vec<String>,
    /// Steps are evaluated at `now - offset`, so that late samples are in
    /// [default: the longest scrape or probe interval plus 5s].
    #[serde(default, with = "duration_opt")]
    pub offset: Option<Duration>,
    /// `dry-run` journals every action and runs none [default: auto].
    pub mode: Option<RulesMode>,
}

/// Whether actions run for real (`auto`, each block's own `mode` still
/// applies) or none does (`dry-run`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RulesMode {
    #[default]
    Auto,
    DryRun,
}

impl RulesMode {
    pub fn name(self) -> &'static str {
        match self {
            RulesMode::Auto => "auto",
            RulesMode::DryRun => "dry-run",
        }
    }
}

/// `[alertmanager]`: where firing alerts go.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Each Alertmanager's base URL (`http://127.0.0.1:9093`); alerts go to
    /// its `/api/v2/alerts`.
    #[serde(default)]
    pub urls: Vec<String>,
    /// How often firing alerts are sent again [default: 1m, as Prometheus's
    /// `--rules.alert.resend-delay`].
    #[serde(default, with = "duration_opt")]
    pub resend: Option<Duration>,
}

/// `[notify]`: where `notify` actions go when no Alertmanager is configured.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// A URL that gets Alertmanager's webhook payload.
    pub webhook: Option<String>,
}

/// How often firing alerts are sent again when `[alertmanager] resend` is not set.
pub const DEFAULT_RESEND: Duration = Duration::from_secs(60);

/// What the default offset adds to the longest interval: time for a
/// scrape's samples to be appended.
pub const OFFSET_MARGIN: Duration = Duration::from_secs(5);

/// `[flush]`: when the live store's head goes into Parquet segments.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlushConfig {
    /// Flush once the head holds this many samples.
    pub samples: Option<usize>,
    /// Flush at least this often while the head holds anything.
    #[serde(default, with = "duration_opt")]
    pub interval: Option<Duration>,
}

/// `[mirror]`: a store each flush's segments are copied to (`mcpops sync`
/// after every flush), typically on object storage; the log and the head
/// stay in the local store.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    /// The mirror, as `--store` names a store (`s3://BUCKET/PREFIX`).
    pub store: Option<String>,
    /// The mirror's shard this watch writes (one per watch, so that
    /// several write one store without racing).
    pub shard: Option<String>,
    /// An S3-compatible server's URL (as `--s3-endpoint`).
    pub endpoint: Option<String>,
}

impl MirrorConfig {
    /// The mirror store, if one is set.
    pub fn store(&self) -> Result<Option<crate::store::Store>, WatchError> {
        let Some(text) = &self.store else {
            if self.shard.is_some() || self.endpoint.is_some() {
                return Err(WatchError::Config(
                    "mirror: shard and endpoint need a mirror store (mirror.store)".into(),
                ));
            }
            return Ok(None);
        };
        let bad = |e: crate::store::StoreError| WatchError::Config(format!("mirror: {e}"));
        let mut store =
            crate::store::Store::resolve(Some(text), self.endpoint.as_deref()).map_err(bad)?;
        if let Some(shard) = &self.shard {
            store = store.shard(shard).map_err(bad)?;
        }
        Ok(Some(store))
    }
}

/// `[limits]`: what one API request may cost.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// The most samples one query may hold at once (as `--max-samples`).
    pub max_samples: Option<u64>,
    /// The longest a query may run before it is answered 503 `timeout`
    /// (a request's own `timeout` may only shorten it) [default: 2m, as
    /// Prometheus's `--query.timeout`].
    #[serde(default, with = "duration_opt")]
    pub query_timeout: Option<Duration>,
}

/// The address the API listens on when neither the file nor `--listen` says.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9464";

/// Prometheus's default `--query.timeout`.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(120);

/// What the command line adds to, or overrides in, the file.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub store: Option<PathBuf>,
    pub scrape: Vec<String>,
    pub interval: Option<Duration>,
    pub listen: Option<String>,
    pub otlp: Option<String>,
    /// Each `--probe-cmd`, already split into argv.
    pub probe_cmd: Vec<Vec<String>>,
    pub probe_url: Vec<String>,
    /// `--rules FILE`, added to the file's `[rules] files`.
    pub rules: Vec<PathBuf>,
    pub mode: Option<RulesMode>,
    /// `--alertmanager URL`, added to the file's `[alertmanager] urls`.
    pub alertmanager: Vec<String>,
    pub offset: Option<Duration>,
}

impl WatchConfig {
    /// Reads and checks `watch.toml`.
    pub fn load(path: &Path) -> Result<WatchConfig, WatchError> {
        let text = std::fs::read_to_string(path).map_err(|source| WatchError::Io {
            what: path.display().to_string(),
            source,
        })?;
        let mut config = WatchConfig::parse(&text, &path.display().to_string())?;
        config.base_dir = path.parent().map(Path::to_path_buf);
        Ok(config)
    }

    /// Parses the text of a `watch.toml`; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<WatchConfig, WatchError> {
        let config: WatchConfig = toml::from_str(text).map_err(|e| {
            let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
            WatchError::ConfigFile {
                origin: origin.to_string(),
                line,
                col,
                message: e.message().trim_end().to_string(),
            }
        })?;
        config.check(origin)?;
        Ok(config)
    }

    /// The checks serde cannot make: addresses that parse, a target that
    /// names what to probe.
    fn check(&self, origin: &str) -> Result<(), WatchError> {
        let bad = |what: String| Err(WatchError::Config(format!("{origin}: {what}")));
        for (key, addr) in [("listen", &self.listen), ("otlp", &self.otlp)] {
            if let Some(a) = addr
                && let Err(e) = parse_addr(a)
            {
                return bad(format!("{key}: {e}"));
            }
        }
        if self.interval.is_some_and(|d| d.is_zero()) {
            return bad("interval: must be more than 0s".into());
        }
        if self.limits.max_samples == Some(0) {
            return bad("limits.max_samples: must be at least 1".into());
        }
        if self.limits.query_timeout.is_some_and(|d| d.is_zero()) {
            return bad("limits.query_timeout: must be more than 0s".into());
        }
        if self.flush.samples == Some(0) {
            return bad("flush.samples: must be at least 1".into());
        }
        for url in self.alertmanager.urls.iter().chain(&self.notify.webhook) {
            if let Err(e) = check_http_url(url) {
                return bad(e);
            }
        }
        if self.alertmanager.resend.is_some_and(|d| d.is_zero()) {
            return bad("alertmanager.resend: must be more than 0s".into());
        }
        for pattern in &self.rules.files {
            if pattern.trim().is_empty() {
                return bad("rules.files: an empty path".into());
            }
        }
        for (i, p) in self.probe.iter().enumerate() {
            if p.command.is_empty() == p.url.is_none() {
                return bad(format!(
                    "probe #{}: give either `command` (a stdio server) or `url` (Streamable HTTP), not both nor neither",
                    i + 1
                ));
            }
        }
        Ok(())
    }

    /// Adds the flags' targets and lets their values override the file's.
    pub fn apply_flags(mut self, flags: Flags) -> Result<WatchConfig, WatchError> {
        if flags.store.is_some() {
            self.store = flags.store;
        }
        if let Some(i) = flags.interval {
            if i.is_zero() {
                return Err(WatchError::Config(
                    "--interval: must be more than 0s".into(),
                ));
            }
            self.interval = Some(i);
        }
        for (flag, value, slot) in [
            ("--listen", flags.listen, &mut self.listen),
            ("--otlp", flags.otlp, &mut self.otlp),
        ] {
            if let Some(v) = value {
                parse_addr(&v).map_err(|e| WatchError::Config(format!("{flag}: {e}")))?;
                *slot = Some(v);
            }
        }
        for url in &flags.alertmanager {
            check_http_url(url).map_err(|e| WatchError::Config(format!("--alertmanager: {e}")))?;
        }
        self.alertmanager.urls.extend(flags.alertmanager);
        // Flags' paths are the command line's, relative to the working
        // directory (the file's are relative to the file): made absolute.
        let cwd = std::env::current_dir().ok();
        self.rules.files.extend(flags.rules.iter().map(|p| {
            match &cwd {
                Some(cwd) if p.is_relative() => cwd.join(p),
                _ => p.clone(),
            }
            .display()
            .to_string()
        }));
        if flags.mode.is_some() {
            self.rules.mode = flags.mode;
        }
        if flags.offset.is_some() {
            self.rules.offset = flags.offset;
        }
        self.scrape
            .extend(flags.scrape.iter().map(|u| ScrapeConfig::from_url(u)));
        self.probe
            .extend(flags.probe_cmd.into_iter().map(ProbeConfig::from_command));
        self.probe
            .extend(flags.probe_url.iter().map(|u| ProbeConfig::from_url(u)));
        Ok(self)
    }

    /// The interval of targets that set none.
    pub fn default_interval(&self) -> Duration {
        self.interval.unwrap_or(DEFAULT_INTERVAL)
    }

    /// The API's address.
    pub fn listen_addr(&self) -> Result<SocketAddr, WatchError> {
        let text = self.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        parse_addr(text).map_err(|e| WatchError::Config(format!("listen: {e}")))
    }

    /// The separate OTLP listener's address, if any.
    pub fn otlp_addr(&self) -> Result<Option<SocketAddr>, WatchError> {
        self.otlp
            .as_deref()
            .map(|a| parse_addr(a).map_err(|e| WatchError::Config(format!("otlp: {e}"))))
            .transpose()
    }

    /// The live store's flush thresholds and mirror.
    pub fn live_options(&self) -> Result<LiveOptions, WatchError> {
        // Field by field: the store may add options this file does not set.
        let mut options = LiveOptions::default();
        if let Some(n) = self.flush.samples {
            options.flush_samples = n;
        }
        if let Some(i) = self.flush.interval {
            options.flush_interval = i;
        }
        options.mirror = self.mirror.store()?;
        Ok(options)
    }

    pub fn max_samples(&self) -> u64 {
        self.limits
            .max_samples
            .unwrap_or(crate::engine::budget::DEFAULT_MAX_SAMPLES)
    }

    pub fn query_timeout(&self) -> Duration {
        self.limits.query_timeout.unwrap_or(DEFAULT_QUERY_TIMEOUT)
    }

    /// How far behind the clock steps are evaluated: `[rules] offset`, else
    /// the longest scrape or probe interval plus [`OFFSET_MARGIN`], so that
    /// a step sees every target's round for it.
    pub fn rules_offset(&self) -> Duration {
        if let Some(o) = self.rules.offset {
            return o;
        }
        let default = self.default_interval();
        let longest = self
            .scrape
            .iter()
            .map(|s| s.interval.unwrap_or(default))
            .chain(self.probe.iter().map(|p| p.interval.unwrap_or(default)))
            .max()
            .unwrap_or(default);
        longest + OFFSET_MARGIN
    }

    pub fn rules_mode(&self) -> RulesMode {
        self.rules.mode.unwrap_or_default()
    }

    pub fn resend(&self) -> Duration {
        self.alertmanager.resend.unwrap_or(DEFAULT_RESEND)
    }

    /// The rule files now: each path as it is, each pattern expanded
    /// (sorted), relative ones from the `watch.toml`'s directory. A pattern
    /// that matches nothing, or a path that does not exist, is an error.
    pub fn rule_paths(&self) -> Result<Vec<PathBuf>, WatchError> {
        let mut paths = Vec::new();
        for pattern in &self.rules.files {
            let path = match &self.base_dir {
                Some(base) if Path::new(pattern).is_relative() => base.join(pattern),
                _ => PathBuf::from(pattern),
            };
            let found =
                expand(&path).map_err(|e| WatchError::Config(format!("rules.files: {e}")))?;
            for p in found {
                if !paths.contains(&p) {
                    paths.push(p);
                }
            }
        }
        Ok(paths)
    }
}

/// A URL watch posts to: `http://` (watch sends without TLS).
fn check_http_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("`{url}`: give an http:// URL (watch posts without TLS)"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("`{url}`: the URL has no host"));
    }
    Ok(())
}

/// A path, or the files that match the `*` and `?` of its last component.
fn expand(path: &Path) -> Result<Vec<PathBuf>, String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    if !name.contains(['*', '?']) {
        if !path.is_file() {
            return Err(format!("{}: no such file", path.display()));
        }
        return Ok(vec![path.to_path_buf()]);
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if dir.to_string_lossy().contains(['*', '?']) {
        return Err(format!(
            "{}: only the file name may hold `*` or `?`",
            path.display()
        ));
    }
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .filter(|e| wildcard(&name, &e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect();
    found.sort();
    if found.is_empty() {
        return Err(format!("{}: no file matches", path.display()));
    }
    Ok(found)
}

/// Whether `text` matches `pattern`, where `*` is any run of characters
/// and `?` any one; a leading `.` is matched only by a `.`, as in a shell.
fn wildcard(pattern: &str, text: &str) -> bool {
    if text.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matching with one backtrack point for the last `*`.
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < t.len() {
        if i < p.len() && (p[i] == '?' || p[i] == t[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

/// An address as `HOST:PORT` with a literal IP (`127.0.0.1:9464`,
/// `[::1]:9464`) or `localhost:PORT`; names are not resolved, so that
/// what is bound is what the file says.
pub fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    let t = text.trim();
    if let Some(port) = t.strip_prefix("localhost:") {
        let port: u16 = port
            .parse()
            .map_err(|_| format!("`{t}`: `{port}` is not a port number"))?;
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    t.parse().map_err(|_| {
        format!("`{t}` is not an address such as 127.0.0.1:9464 or [::1]:9464 (an IP and a port)")
    })
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Splits a command line like a POSIX shell does words, without running
/// one: blanks separate words; `'...'` keeps everything literally; `"..."`
/// keeps everything but `\"`, `\\`, `\$` and `` \` ``; a backslash outside
/// quotes escapes the next character. No expansion of any kind happens.
pub fn split_command(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(format!("`{line}`: a ' is not closed")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(format!("`{line}`: a \" is not closed")),
                        },
                        Some(c) => word.push(c),
                        None => return Err(format!("`{line}`: a \" is not closed")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(c) => {
                    in_word = true;
                    word.push(c);
                }
                None => return Err(format!("`{line}`: ends with a lone backslash")),
            },
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    if words.is_empty() {
        return Err("the command line is empty".into());
    }
    Ok(words)
}

/// Durations in `watch.toml` as the rest of mcpops writes them (`15s`, `1m`).
pub mod duration_opt {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        crate::time::parse_duration_ms(&text)
            .map(|ms| Some(Duration::from_millis(ms as u64)))
            .map_err(serde::de::Error::custom)
    }
}

/// The scrape and probe interval when neither the target nor `--interval` says.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_file_parses() {
        let c = WatchConfig::parse(
            r#"
store = "/var/lib/mcpops"
listen = "127.0.0.1:9500"
otlp = "127.0.0.1:4318"
interval = "30s"

[flush]
samples = 1000
interval = "5m"

[limits]
max_samples = 5000
query_timeout = "10s"

[[scrape]]
url = "http://127.0.0.1:9100/metrics"

[[probe]]
url = "http://127.0.0.1:3001/mcp"
"#,
            "watch.toml",
        )
        .unwrap();
        assert_eq!(c.default_interval(), Duration::from_secs(30));
        assert_eq!(c.listen_addr().unwrap().port(), 9500);
        assert_eq!(c.otlp_addr().unwrap().unwrap().port(), 4318);
        assert_eq!(c.live_options().unwrap().flush_samples, 1000);
        assert_eq!(
            c.live_options().unwrap().flush_interval,
            Duration::from_secs(300)
        );
        assert!(c.live_options().unwrap().mirror.is_none());
        assert_eq!(c.max_samples(), 5000);
        assert_eq!(c.query_timeout(), Duration::from_secs(10));
        assert_eq!(c.scrape.len(), 1);
        assert_eq!(c.probe.len(), 1);
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let e = WatchConfig::parse("interval = \"15s\"\nlisen = \"x\"\n", "w.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("w.toml:2:1: "), "{e}");
        assert!(e.contains("lisen"), "{e}");
        let e = WatchConfig::parse("\n\ninterval = \"soon\"\n", "w.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("w.toml:3:12: "), "{e}");
        assert!(e.contains("not a duration"), "{e}");
        let e = WatchConfig::parse("listen = \"nowhere\"\n", "w.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("listen: `nowhere` is not an address"), "{e}");
        let e = WatchConfig::parse("[[probe]]\n", "w.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("probe #1"), "{e}");
    }

    #[test]
    fn flags_add_targets_and_override_values() {
        let c = WatchConfig::parse(
            "listen = \"127.0.0.1:1\"\n[[scrape]]\nurl = \"http://a/metrics\"\n",
            "w",
        )
        .unwrap()
        .apply_flags(Flags {
            listen: Some("localhost:2".into()),
            scrape: vec!["http://b/metrics".into()],
            probe_cmd: vec![vec!["server".into(), "--stdio".into()]],
            interval: Some(Duration::from_secs(5)),
            ..Flags::default()
        })
        .unwrap();
        assert_eq!(c.listen_addr().unwrap(), "127.0.0.1:2".parse().unwrap());
        assert_eq!(c.scrape.len(), 2);
        assert_eq!(c.probe[0].command, ["server", "--stdio"]);
        assert_eq!(c.default_interval(), Duration::from_secs(5));
        let e = WatchConfig::default()
            .apply_flags(Flags {
                otlp: Some("4318".into()),
                ..Flags::default()
            })
            .unwrap_err();
        assert!(e.to_string().starts_with("--otlp: "), "{e}");
    }

    #[test]
    fn command_lines_split_like_a_shell() {
        assert_eq!(
            split_command(r#"npx -y "@scope/server everything" --opt='a b' x\ y "q\"t" """#)
                .unwrap(),
            [
                "npx",
                "-y",
                "@scope/server everything",
                "--opt=a b",
                "x y",
                "q\"t",
                ""
            ]
        );
        assert_eq!(split_command("  a\t b  ").unwrap(), ["a", "b"]);
        assert_eq!(split_command(r#""a\nb""#).unwrap(), [r"a\nb"]);
        assert!(split_command("'open").unwrap_err().contains("not closed"));
        assert!(split_command("\"open").unwrap_err().contains("not closed"));
        assert!(split_command("a \\").unwrap_err().contains("backslash"));
        assert!(split_command("   ").is_err());
    }

    #[test]
    fn rules_alertmanager_and_notify_sections() {
        let dir = std::env::temp_dir().join(format!("mcpops-cfg-rules-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("rules")).unwrap();
        for f in ["b.rules", "a.rules", ".hidden.rules", "c.txt"] {
            std::fs::write(dir.join("rules").join(f), "").unwrap();
        }
        let toml = dir.join("watch.toml");
        std::fs::write(
            &toml,
            r#"
interval = "10s"
[rules]
files = ["rules/*.rules"]
mode = "dry-run"
[alertmanager]
urls = ["http://127.0.0.1:9093"]
resend = "30s"
[notify]
webhook = "http://127.0.0.1:9999/hook"
[[scrape]]
url = "http://127.0.0.1:9100/metrics"
interval = "20s"
"#,
        )
        .unwrap();
        let c = WatchConfig::load(&toml).unwrap();
        assert_eq!(c.rules_mode(), RulesMode::DryRun);
        assert_eq!(c.resend(), Duration::from_secs(30));
        // The longest interval (the scrape's 20s) plus the margin.
        assert_eq!(c.rules_offset(), Duration::from_secs(25));
        assert_eq!(
            c.rule_paths().unwrap(),
            [dir.join("rules/a.rules"), dir.join("rules/b.rules")]
        );
        let c = c
            .apply_flags(Flags {
                mode: Some(RulesMode::Auto),
                offset: Some(Duration::from_secs(2)),
                alertmanager: vec!["http://127.0.0.1:9094".into()],
                rules: vec![dir.join("rules/c.txt")],
                ..Flags::default()
            })
            .unwrap();
        assert_eq!(c.rules_mode(), RulesMode::Auto);
        assert_eq!(c.rules_offset(), Duration::from_secs(2));
        assert_eq!(c.alertmanager.urls.len(), 2);
        assert_eq!(c.rule_paths().unwrap().len(), 3);

        let e = WatchConfig::parse("[rules]\nmode = \"sometimes\"\n", "w.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("w.toml:2:8: "), "{e}");
        let e = WatchConfig::parse("[rules]\nfile = []\n", "w.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("w.toml:2:1: ") && e.contains("file"), "{e}");
        let e = WatchConfig::parse("[alertmanager]\nurls = [\"https://am\"]\n", "w.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("http:// URL"), "{e}");
        let e = WatchConfig::parse("[rules]\nfiles = [\"nowhere/*.rules\"]\n", "w.toml")
            .unwrap()
            .rule_paths()
            .unwrap_err()
            .to_string();
        assert!(e.contains("nowhere"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn wildcards_match_like_a_shell() {
        assert!(wildcard("*.rules", "a.rules"));
        assert!(wildcard("a?c*", "abcdef"));
        assert!(wildcard("*a*b", "xxaxxb"));
        assert!(!wildcard("*.rules", "a.rules.bak"));
        assert!(!wildcard("*.rules", ".a.rules"));
        assert!(wildcard(".*", ".a"));
    }
}
