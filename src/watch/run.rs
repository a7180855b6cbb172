//! The `watch` process: binds its listeners (a taken address fails before
//! anything is written), opens the live store, spawns one task per scrape
//! and probe target, records watch's own health every interval, serves the
//! API (and OTLP/HTTP) until SIGTERM or SIGINT, then stops the loops,
//! flushes the store and returns.
//!
//! Log lines go to stderr: errors (a target going down, a failed append)
//! always; progress (a target coming up, start and stop) only on a terminal
//! and without `--quiet`.

use super::config::WatchConfig;
use super::health::Health;
use super::targets::{TargetHealth, Targets};
use super::{Shared, WatchError, alerting, api, otlp, probe, rules, scrape};
use crate::store::LiveStore;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// How watch talks on stderr.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// `--quiet`: errors only.
    pub quiet: bool,
    /// Whether stderr is a terminal: off one, errors only.
    pub terminal: bool,
}

impl RunOptions {
    fn info(&self, line: &str) {
        if !self.quiet && self.terminal {
            eprintln!("mcpops: {line}");
        }
    }

    fn error(&self, line: &str) {
        eprintln!("mcpops: {line}");
    }
}

/// How long the loops and open connections get to finish once stopping.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// How often the target table is compared with the last one, for the log.
const LOG_EVERY: Duration = Duration::from_millis(500);

/// Runs watch on a multi-threaded tokio runtime of its own until a signal
/// stops it.
pub fn run_blocking(
    config: WatchConfig,
    store: PathBuf,
    options: RunOptions,
) -> Result<(), WatchError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("mcpops-watch")
        .build()
        .map_err(|source| WatchError::Io {
            what: "starting watch's runtime".into(),
            source,
        })?;
    let result = runtime.block_on(run(config, store, options));
    // A query past its timeout may still be evaluating on the blocking
    // pool: its answer is no longer wanted, and the store is flushed.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// Runs watch until SIGTERM or SIGINT (or a listener fails).
pub async fn run(
    config: WatchConfig,
    store_root: PathBuf,
    options: RunOptions,
) -> Result<(), WatchError> {
    let mut stop_signal = StopSignal::new()?;
    // Rule files first: one with errors refuses to start before anything
    // is bound or written.
    let rule_files = if config.rules.files.is_empty() {
        None
    } else {
        let loaded = rules::load(&config.rule_paths()?)?;
        for w in &loaded.warnings {
            options.error(&w.to_string());
        }
        Some(loaded)
    };
    let listen = config.listen_addr()?;
    let otlp_addr = config.otlp_addr()?;
    let listener = bind(listen, options).await?;
    let otlp_listener = match otlp_addr {
        Some(addr) => Some(bind(addr, options).await?),
        None => None,
    };

    let live = config.live_options()?;
    let root = store_root.clone();
    let store = tokio::task::spawn_blocking(move || LiveStore::open(&root, live))
        .await
        .map_err(|e| WatchError::Config(format!("opening the store: {e}")))??;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let shared = Shared {
        store: Arc::new(store),
        health: Arc::new(Health::new()),
        targets: Arc::new(Targets::new()),
        shutdown: stopped,
    };
    describe_health(&shared.health);
    shared.health.set(
        "mcpops_watch_start_time_seconds",
        &[],
        crate::time::now_ms() as f64 / 1000.0,
    );
    record_store_health(&shared);

    let interval = config.default_interval();
    let mut loops = JoinSet::new();
    for target in config.scrape.iter().cloned() {
        loops.spawn(scrape::run(target, interval, shared.clone()));
    }
    for target in config.probe.iter().cloned() {
        loops.spawn(probe::run(target, interval, shared.clone()));
    }
    let rules_state = Arc::new(rules::RulesState::default());
    let external_url = format!("http://{listen}");
    let log = rules::Log {
        quiet: options.quiet,
        terminal: options.terminal,
    };
    if let Some(loaded) = rule_files {
        let rules_options = rules::RulesOptions {
            offset: config.rules_offset(),
            mode: config.rules_mode(),
            max_samples: config.max_samples(),
            store_root: store_root.clone(),
            alertmanagers: config.alertmanager.urls.clone(),
            notify_webhook: config.notify.webhook.clone(),
            resend: config.resend(),
            external_url: external_url.clone(),
        };
        let (s, c, st) = (shared.clone(), config.clone(), rules_state.clone());
        let started = tokio::task::spawn_blocking(move || {
            rules::RuleLoop::start(s, c, loaded, rules_options, st, log)
        })
        .await
        .map_err(|e| WatchError::Config(format!("starting the rules: {e}")))?;
        let rule_loop = match started {
            Ok(l) => l,
            Err(e) => {
                // The store is open: flush what the journal's refusal left.
                let _ = shared.store.flush();
                return Err(e);
            }
        };
        options.info(&format!(
            "evaluating {} rule file(s) {} behind the clock, actions {}",
            config.rules.files.len(),
            crate::time::format_duration_ms(config.rules_offset().as_millis() as i64),
            config.rules_mode().name()
        ));
        loops.spawn(rule_loop.run());
        if !config.alertmanager.urls.is_empty() {
            loops.spawn(alerting::run(
                shared.clone(),
                rules_state.clone(),
                alerting::AlertingOptions {
                    urls: config.alertmanager.urls.clone(),
                    resend: config.resend(),
                    external_url: external_url.clone(),
                },
                log,
            ));
        }
    }
    loops.spawn(health_loop(shared.clone(), interval, options));
    loops.spawn(log_targets(shared.clone(), options));

    let api_options = api::ApiOptions {
        max_samples: config.max_samples(),
        query_timeout: config.query_timeout(),
        target_intervals: config
            .scrape
            .iter()
            .map(|s| (s.url.clone(), s.interval.unwrap_or(interval)))
            .collect::<BTreeMap<_, _>>(),
        rules: Some(rules_state.clone()),
        ..api::ApiOptions::default()
    };
    let app = api::router_with(shared.clone(), api_options).merge(otlp::router(shared.clone()));
    let mut servers = JoinSet::new();
    servers.spawn(serve(listener, app, shared.shutdown.clone()));
    if let Some(l) = otlp_listener {
        servers.spawn(serve(
            l,
            otlp::router(shared.clone()),
            shared.shutdown.clone(),
        ));
    }
    options.info(&format!(
        "watching {} scrape target(s) and {} probe(s) every {} into {}; API on http://{listen}{}",
        config.scrape.len(),
        config.probe.len(),
        crate::time::format_duration_ms(interval.as_millis() as i64),
        store_root.display(),
        otlp_addr
            .map(|a| format!(", OTLP also on http://{a}"))
            .unwrap_or_default()
    ));

    // Until a signal, or a server that fails (its error is returned after
    // the store is flushed).
    let mut failure = None;
    tokio::select! {
        signal = stop_signal.wait() => options.info(&format!("{signal}: stopping")),
        Some(ended) = servers.join_next() => {
            failure = Some(match ended {
                Ok(Ok(())) => WatchError::Config("the API server stopped".into()),
                Ok(Err(source)) => WatchError::Io { what: format!("serving on {listen}"), source },
                Err(e) => WatchError::Config(format!("the API server failed: {e}")),
            });
        }
    }
    let _ = stop.send(true);
    let finished = tokio::time::timeout(STOP_GRACE, async {
        while loops.join_next().await.is_some() {}
        while servers.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        options.error(&format!(
            "some loops or connections did not finish within {}s; stopping them",
            STOP_GRACE.as_secs()
        ));
        loops.abort_all();
        servers.abort_all();
    }
    let store = shared.store.clone();
    let flushed = tokio::task::spawn_blocking(move || store.flush())
        .await
        .map_err(|e| WatchError::Config(format!("flushing the store: {e}")))?;
    flushed?;
    options.info("stopped; the store is flushed");
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Binds `addr`, warning when it is not a loopback address (the API has no
/// authentication).
async fn bind(addr: SocketAddr, options: RunOptions) -> Result<TcpListener, WatchError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| WatchError::Bind { addr, source })?;
    if !addr.ip().is_loopback() {
        options.error(&format!(
            "warning: listening on {addr}, not a loopback address: the API has no authentication, \
             so whoever reaches it can read every series and send OTLP data"
        ));
    }
    Ok(listener)
}

async fn serve(
    listener: TcpListener,
    app: axum::Router,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            // Either the flag turns true, or its sender is gone: stop both ways.
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .await
}

/// SIGTERM and SIGINT, registered before anything starts so that neither
/// kills the process before the store is flushed.
struct StopSignal {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl StopSignal {
    fn new() -> Result<StopSignal, WatchError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let io = |source| WatchError::Io {
                what: "installing the SIGTERM/SIGINT handlers".into(),
                source,
            };
            Ok(StopSignal {
                term: signal(SignalKind::terminate()).map_err(io)?,
                int: signal(SignalKind::interrupt()).map_err(io)?,
            })
        }
        #[cfg(not(unix))]
        Ok(StopSignal {})
    }

    /// The name of the signal that came.
    async fn wait(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => "SIGTERM",
                _ = self.int.recv() => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

/// watch's own metrics and their help, as `/metrics` describes them and
/// the store records them.
const HEALTH_HELP: &[(&str, &str)] = &[
    ("mcpops_watch_up", "1 while mcpops watch runs."),
    (
        "mcpops_watch_start_time_seconds",
        "When this mcpops watch process started, in unix seconds.",
    ),
    (
        "mcpops_watch_wal_bytes",
        "Bytes of the live store's write-ahead log.",
    ),
    (
        "mcpops_watch_head_samples",
        "Samples in the live store's in-memory head, not yet in segments.",
    ),
    (
        "mcpops_watch_head_series",
        "Series in the live store's in-memory head.",
    ),
    (
        "mcpops_watch_late_samples_total",
        "Samples older than the newest one already stored for their series.",
    ),
    (
        "mcpops_watch_flushes_total",
        "Flushes of the head into Parquet segments.",
    ),
    (
        "mcpops_watch_flush_failures_total",
        "Flushes of the head that failed.",
    ),
    (
        "mcpops_watch_mirror_syncs_total",
        "Copies of the store's segments to the [mirror] store after a flush.",
    ),
    (
        "mcpops_watch_mirror_failures_total",
        "Copies to the [mirror] store that failed (the next flush tries again).",
    ),
    (
        "mcpops_watch_health_append_failures_total",
        "Rounds of watch's own health that could not be stored.",
    ),
    (
        "mcpops_watch_api_requests_total",
        "Requests to the HTTP API, by handler and status code.",
    ),
];

fn describe_health(h: &Health) {
    for (name, help) in HEALTH_HELP.iter().chain(rules::HEALTH_HELP) {
        h.describe(name, help);
    }
}

/// One round of watch's own health as a batch for the store, with each
/// metric's type and help declared as `/metrics` declares them.
fn health_batch(h: &Health, now_ms: i64) -> crate::model::MemorySink {
    use crate::metadata::{MetricMeta, MetricType, Part, TypeSource};
    use crate::model::SampleSink;
    let mut batch = h.batch(now_ms);
    for (name, help) in HEALTH_HELP.iter().chain(rules::HEALTH_HELP) {
        let (kind, family, part) = match name.strip_suffix("_total") {
            Some(family) => (MetricType::Counter, family, Some(Part::Total)),
            None => (MetricType::Gauge, *name, None),
        };
        let mut meta = MetricMeta::inferred(kind, family, part);
        meta.source = TypeSource::Declared;
        meta.help = Some(help.to_string());
        if name.ends_with("_seconds") {
            meta.unit = Some("seconds".into());
        } else if name.ends_with("_bytes") {
            meta.unit = Some("bytes".into());
        }
        batch.describe(name, meta);
    }
    batch
}

/// Copies the live store's own figures into watch's health registry.
pub fn record_store_health(shared: &Shared) {
    let h = &shared.health;
    let s = shared.store.stats();
    h.set("mcpops_watch_up", &[], 1.0);
    h.set("mcpops_watch_wal_bytes", &[], s.wal_bytes as f64);
    h.set("mcpops_watch_head_samples", &[], s.head_samples as f64);
    h.set("mcpops_watch_head_series", &[], s.head_series as f64);
    h.set(
        "mcpops_watch_late_samples_total",
        &[],
        s.late_samples as f64,
    );
    h.set("mcpops_watch_flushes_total", &[], s.flushes as f64);
    h.set(
        "mcpops_watch_flush_failures_total",
        &[],
        s.flush_failures as f64,
    );
    h.set(
        "mcpops_watch_mirror_syncs_total",
        &[],
        s.mirror_syncs as f64,
    );
    h.set(
        "mcpops_watch_mirror_failures_total",
        &[],
        s.mirror_failures as f64,
    );
}

/// Every interval (and once at start): watch's own health into the store.
async fn health_loop(shared: Shared, interval: Duration, options: RunOptions) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stop = shared.shutdown.clone();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        record_store_health(&shared);
        let batch = health_batch(&shared.health, crate::time::now_ms());
        let store = shared.store.clone();
        let appended = tokio::task::spawn_blocking(move || store.append(&batch)).await;
        let error = match appended {
            Ok(Ok(_)) => continue,
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        shared
            .health
            .add("mcpops_watch_health_append_failures_total", &[], 1.0);
        options.error(&format!("storing watch's own health failed: {error}"));
    }
}

/// One log line per change of a target's health.
async fn log_targets(shared: Shared, options: RunOptions) {
    let mut last: BTreeMap<String, TargetHealth> = BTreeMap::new();
    let mut tick = tokio::time::interval(LOG_EVERY);
    let mut stop = shared.shutdown.clone();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        for t in shared.targets.all() {
            let key = format!("{:?}/{}/{}", t.kind, t.job, t.instance);
            if last.get(&key) == Some(&t.health) {
                continue;
            }
            let kind = match t.kind {
                super::targets::TargetKind::Scrape => "scrape",
                super::targets::TargetKind::Probe => "probe",
            };
            let who = format!("{kind} target {}/{} ({})", t.job, t.instance, t.url);
            match t.health {
                TargetHealth::Up => options.info(&format!("{who} is up")),
                TargetHealth::Down => options.error(&format!("{who} is down: {}", t.last_error)),
                TargetHealth::Unknown => {}
            }
            last.insert(key, t.health);
        }
    }
}
