//! `watch`'s scraper against real peers: Debian's Prometheus scraping the
//! same prometheus_client target (the two agree on series and values, on a
//! dropped series and a killed target), hostile HTTP peers (silent, slow,
//! endless, gzip bombs, 5xx, redirect loops, refused connections), and the
//! rounds' batches in a live store, read back through the engine.
//!
//! Every server is on 127.0.0.1 with a port the test chose; every process
//! is killed by its PID when its guard drops.

use crate::common::{KillOnDrop, free_port, start_prom_target};
use mcpops::engine::query::query;
use mcpops::engine::value::{Grid, Value, is_stale};
use mcpops::model::MemorySink;
use mcpops::store::{LiveOptions, LiveStore, ScanRequest};
use mcpops::watch::Shared;
use mcpops::watch::health::Health;
use mcpops::watch::scrape::{
    ACCEPT_HEADER, Body, Failure, ScrapeConfig, Scraper, Target, client, fetch,
};
use mcpops::watch::targets::{TargetHealth, Targets};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn get(url: &str) -> String {
    let mut stream = std::net::TcpStream::connect(url.split('/').next().unwrap()).unwrap();
    let path = &url[url.find('/').unwrap()..];
    write!(stream, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut stream, &mut text).unwrap();
    text
}

/// A live store in a temporary directory and the state collectors share.
struct Room {
    _dir: tempfile::TempDir,
    shared: Shared,
    stop: tokio::sync::watch::Sender<bool>,
}

fn room() -> Room {
    let dir = tempfile::tempdir().unwrap();
    let store = LiveStore::open(&dir.path().join("store"), LiveOptions::default()).unwrap();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    Room {
        _dir: dir,
        shared: Shared {
            store: Arc::new(store),
            health: Arc::new(Health::new()),
            targets: Arc::new(Targets::new()),
            shutdown,
        },
        stop,
    }
}

/// An instant query over the store: each series (as text) and its value.
fn instant(store: &LiveStore, expr: &str, t_ms: i64) -> BTreeMap<String, f64> {
    let expr = mcpops::dsl::parse_query(expr).unwrap_or_else(|d| panic!("{expr}: {d:?}"));
    let value = query(
        store.snapshot().unwrap(),
        &expr,
        Grid::instant(t_ms),
        10_000_000,
    )
    .unwrap();
    let Value::Vector(series) = value else {
        panic!("{expr:?} is not a vector")
    };
    series
        .into_iter()
        .filter_map(|s| {
            let v = s.values.first()?.get()?;
            let mut labels = s.labels.clone();
            if let Some(m) = &s.metric {
                labels.push(("__name__".into(), m.clone()));
            }
            labels.sort();
            Some((render(&labels), v))
        })
        .collect()
}

/// The values of `expr` at `t_ms`, in the order of their series' labels.
fn values(store: &LiveStore, expr: &str, t_ms: i64) -> Vec<f64> {
    instant(store, expr, t_ms).into_values().collect()
}

fn render(labels: &[(String, String)]) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Prometheus's `/api/v1/query` at `t_ms`, in the same shape.
async fn prom_instant(port: u16, expr: &str, t_ms: i64) -> BTreeMap<String, f64> {
    let url = format!(
        "http://127.0.0.1:{port}/api/v1/query?query={}&time={}",
        urlencode(expr),
        t_ms as f64 / 1000.0
    );
    let body: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    assert_eq!(body["status"], "success", "{body}");
    body["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut labels: Vec<(String, String)> = r["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            labels.sort();
            let v = r["value"][1].as_str().unwrap();
            let v = match v {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().unwrap(),
            };
            (render(&labels), v)
        })
        .collect()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

const FIXTURE_METRICS: [&str; 8] = [
    "fixture_requests_total",
    "fixture_requests_created",
    "fixture_temperature_celsius",
    "fixture_latency_seconds_bucket",
    "fixture_latency_seconds_count",
    "fixture_latency_seconds_sum",
    "fixture_latency_seconds_created",
    "up",
];

/// Both sides' answers for every fixture metric at `t_ms`, compared.
async fn agree(store: &LiveStore, prom_port: u16, t_ms: i64, what: &str) -> usize {
    let mut compared = 0;
    for metric in FIXTURE_METRICS {
        let ours = instant(store, metric, t_ms);
        let theirs = prom_instant(prom_port, metric, t_ms).await;
        assert_eq!(
            ours, theirs,
            "{what}: `{metric}` at {t_ms} differs (left: mcpops, right: Prometheus)"
        );
        compared += ours.len();
    }
    compared
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_and_watch_agree_on_the_same_target() {
    let prometheus = Path::new("/usr/bin/prometheus");
    if !prometheus.exists() {
        eprintln!(
            "SKIP: /usr/bin/prometheus is missing (apt-get install prometheus; .ci/run does)"
        );
        return;
    }
    let Some((fixture, port)) = start_prom_target("scrape") else {
        return;
    };
    let mut fixture = Some(fixture);
    let dir = tempfile::tempdir().unwrap();
    let prom_port = free_port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: \
             fixture\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
    )
    .unwrap();
    let _prometheus = KillOnDrop(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    let room = room();
    let mut target = ScrapeConfig::from_url(&format!("http://127.0.0.1:{port}/metrics"));
    target.job = "fixture".into();
    let scraper = tokio::spawn(mcpops::watch::scrape::run(
        target,
        Duration::from_secs(1),
        room.shared.clone(),
    ));
    // Ready within 30s, or the test fails rather than hangs.
    let ready = Instant::now();
    loop {
        let up = reqwest::get(format!("http://127.0.0.1:{prom_port}/-/ready"))
            .await
            .is_ok_and(|r| r.status().is_success());
        if up {
            break;
        }
        assert!(
            ready.elapsed() < Duration::from_secs(30),
            "prometheus never got ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Prometheus starts its scrape loops a few seconds after it is ready.
    while prom_instant(prom_port, "up", now_ms()).await.is_empty() {
        assert!(
            ready.elapsed() < Duration::from_secs(30),
            "prometheus never scraped"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let store = room.shared.store.clone();
    let control = |what: &str| get(&format!("127.0.0.1:{port}/control/{what}"));
    let settle = Duration::from_millis(3500);

    // Steady values: after a few rounds of both, one evaluation time.
    tokio::time::sleep(settle).await;
    let t1 = now_ms() - 200;
    let n = agree(&store, prom_port, t1, "steady").await;
    assert!(n >= 20, "only {n} series compared");
    assert_eq!(values(&store, "up", t1), vec![1.0]);

    // New values.
    assert!(control("advance").contains("ok"));
    tokio::time::sleep(settle).await;
    let t2 = now_ms() - 200;
    agree(&store, prom_port, t2, "after an advance").await;
    assert_ne!(
        instant(&store, "fixture_requests_total", t1),
        instant(&store, "fixture_requests_total", t2),
        "the values moved"
    );

    // A dropped series goes stale in both.
    assert!(control("drop?room=y").contains("ok"));
    tokio::time::sleep(settle).await;
    let t3 = now_ms() - 200;
    agree(&store, prom_port, t3, "after a drop").await;
    let rooms = instant(&store, "fixture_temperature_celsius", t3);
    assert_eq!(rooms.len(), 1, "{rooms:?}");
    assert!(rooms.keys().all(|k| k.contains("room=\"x\"")), "{rooms:?}");

    // The target killed: up 0, and its series gone from instant queries, in both.
    drop(fixture.take());
    tokio::time::sleep(settle).await;
    let t4 = now_ms() - 200;
    agree(&store, prom_port, t4, "after the target died").await;
    assert_eq!(values(&store, "up", t4), vec![0.0]);
    assert!(instant(&store, "fixture_requests_total", t4).is_empty());
    let theirs = prom_instant(prom_port, "fixture_requests_total", t4).await;
    assert!(theirs.is_empty(), "{theirs:?}");

    let status = room.shared.targets.all();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].health, TargetHealth::Down);
    assert!(!status[0].last_error.is_empty());
    let errors = room.shared.health.get(
        "mcpops_watch_scrape_errors_total",
        &[
            ("job", "fixture"),
            ("instance", &format!("127.0.0.1:{port}")),
            ("reason", "http"),
        ],
    );
    assert!(errors.is_some_and(|e| e >= 1.0), "{errors:?}");
    room.stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), scraper)
        .await
        .expect("the loop ends on shutdown")
        .unwrap();
}

/// One HTTP peer's behaviour, for the hostile-peer tests.
#[derive(Clone)]
enum Peer {
    /// A whole response: status line and headers, then the body.
    Respond { head: String, body: Vec<u8> },
    /// Reads the request and never answers.
    Silent,
    /// Headers at once, then a byte of body every 100ms, forever.
    Trickle,
    /// Headers at once, then 64 KiB chunks as fast as they are taken, forever.
    Endless,
    /// A redirect to itself, forever.
    RedirectLoop,
}

/// Serves `peer` on a port of 127.0.0.1 until the test's runtime ends; the
/// requests' heads are kept for the test to read.
async fn serve(peer: Peer) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let peer = peer.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head).into_owned());
                match peer {
                    Peer::Respond { head, body } => {
                        let _ = socket.write_all(head.as_bytes()).await;
                        let _ = socket.write_all(&body).await;
                        let _ = socket.shutdown().await;
                    }
                    Peer::Silent => {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                    Peer::Trickle => {
                        let _ = socket
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
                            .await;
                        loop {
                            if socket.write_all(b"#").await.is_err() {
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                    Peer::Endless => {
                        let _ = socket
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
                            .await;
                        let chunk = b"# padding\n".repeat(6554);
                        while socket.write_all(&chunk).await.is_ok() {}
                    }
                    Peer::RedirectLoop => {
                        let _ = socket
                            .write_all(
                                b"HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n",
                            )
                            .await;
                    }
                }
            });
        }
    });
    (port, heads)
}

fn ok(content_type: &str, extra: &str, body: &[u8]) -> Peer {
    Peer::Respond {
        head: format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n{extra}Content-Length: {}\r\n\
             Connection: close\r\n\r\n",
            body.len()
        ),
        body: body.to_vec(),
    }
}

fn target_at(port: u16, extra: &str) -> Target {
    let config: ScrapeConfig = toml::from_str(&format!(
        "url = \"http://127.0.0.1:{port}/metrics\"\njob = \"t\"\ninterval = \"2s\"\ntimeout = \"1s\"\n{extra}"
    ))
    .unwrap();
    Target::new(&config, Duration::from_secs(15)).unwrap()
}

async fn fetch_from(peer: Peer, extra: &str) -> (Result<Body, Failure>, Duration, Vec<String>) {
    let (port, heads) = serve(peer).await;
    let target = target_at(port, extra);
    let started = Instant::now();
    let result = fetch(&client().unwrap(), &target).await;
    let heads = heads.lock().unwrap().clone();
    (result, started.elapsed(), heads)
}

/// Parses a fetched body as a round of a target `job="t"` would.
fn parsed(body: Body) -> MemorySink {
    let config: ScrapeConfig =
        toml::from_str("url = \"http://127.0.0.1:1/metrics\"\njob = \"t\"").unwrap();
    let round = Scraper::new(&config, Duration::from_secs(15))
        .unwrap()
        .round(Ok(body), 1_800_000_000_000, Duration::ZERO);
    assert!(round.outcome.is_ok(), "{:?}", round.outcome);
    round.batch
}

fn value_of(batch: &MemorySink, metric: &str) -> Option<(i64, f64)> {
    batch
        .resolved()
        .into_iter()
        .find(|(k, _, _)| k.metric == metric)
        .map(|(_, t, v)| (t, v))
}

#[tokio::test]
async fn negotiation_sends_prometheus_headers_and_parses_by_content_type() {
    // OpenMetrics: timestamps in seconds.
    let om = b"# TYPE a gauge\na 1 1800000000.5\n# EOF\n";
    let (result, _, heads) = fetch_from(
        ok(
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            "",
            om,
        ),
        "",
    )
    .await;
    let head = heads[0].to_ascii_lowercase();
    assert!(
        head.contains(&format!("accept: {}", ACCEPT_HEADER.to_ascii_lowercase())),
        "{head}"
    );
    assert!(head.contains("accept-encoding: gzip"), "{head}");
    assert!(
        head.contains("x-prometheus-scrape-timeout-seconds: 1\r\n"),
        "{head}"
    );
    let batch = parsed(result.unwrap());
    assert_eq!(value_of(&batch, "a"), Some((1_800_000_000_500, 1.0)));
    // The same numbers as Prometheus text: milliseconds.
    let text = b"# TYPE a gauge\na 1 1800000000500\n";
    let (result, _, _) = fetch_from(ok("text/plain; version=0.0.4", "", text), "").await;
    assert_eq!(
        value_of(&parsed(result.unwrap()), "a"),
        Some((1_800_000_000_500, 1.0))
    );
    // OpenMetrics parsed as text would have failed: the negotiation matters.
    let (result, _, _) = fetch_from(ok("text/plain", "", om), "").await;
    let body = result.unwrap();
    let config: ScrapeConfig = toml::from_str("url = \"http://127.0.0.1:1/m\"").unwrap();
    let round = Scraper::new(&config, Duration::from_secs(15))
        .unwrap()
        .round(Ok(body), 1_800_000_000_000, Duration::ZERO);
    assert_eq!(round.outcome.unwrap_err().reason(), "parse");
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[tokio::test]
async fn gzip_bodies_are_read_and_bombs_stop_at_the_limit() {
    let text = b"a 1\nb{x=\"y\"} 2\n".to_vec();
    let (result, _, _) = fetch_from(
        ok("text/plain", "Content-Encoding: gzip\r\n", &gzip(&text)),
        "",
    )
    .await;
    let body = result.unwrap();
    assert_eq!(body.bytes, text, "decompressed");
    assert_eq!(value_of(&parsed(body), "b"), Some((1_800_000_000_000, 2.0)));
    // 64 MiB of comments in about 64 KiB of gzip: the limit counts what it inflates to.
    let bomb = gzip(&b"#\n".repeat(32 << 20));
    assert!(bomb.len() < 1 << 20);
    let (result, elapsed, _) = fetch_from(
        ok("text/plain", "Content-Encoding: gzip\r\n", &bomb),
        "body_size_limit = \"1MB\"",
    )
    .await;
    assert_eq!(result.unwrap_err(), Failure::BodySizeLimit(1 << 20));
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
}

#[tokio::test]
async fn an_endless_body_stops_at_the_limit_or_the_timeout() {
    let (result, elapsed, _) = fetch_from(Peer::Endless, "body_size_limit = 100000").await;
    assert_eq!(result.unwrap_err(), Failure::BodySizeLimit(100_000));
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
    let (result, elapsed, _) = fetch_from(Peer::Endless, "").await;
    assert_eq!(
        result.unwrap_err(),
        Failure::Timeout(Duration::from_secs(1))
    );
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
}

#[tokio::test]
async fn silent_and_slow_peers_time_out_on_time() {
    for peer in [Peer::Silent, Peer::Trickle] {
        let (result, elapsed, _) = fetch_from(peer, "").await;
        let e = result.unwrap_err();
        assert_eq!(e.reason(), "timeout", "{e}");
        assert!(e.to_string().contains("timed out after 1s"), "{e}");
        assert!(
            elapsed >= Duration::from_millis(990) && elapsed < Duration::from_millis(1500),
            "{elapsed:?}"
        );
    }
}

#[tokio::test]
async fn http_failures_name_the_status_the_loop_or_the_refusal() {
    let (result, _, _) = fetch_from(
        Peer::Respond {
            head: "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\n".into(),
            body: b"busy".to_vec(),
        },
        "",
    )
    .await;
    let e = result.unwrap_err();
    assert_eq!(e.reason(), "http");
    assert!(e.to_string().contains("503"), "{e}");

    let (result, _, heads) = fetch_from(Peer::RedirectLoop, "").await;
    let e = result.unwrap_err();
    assert_eq!(e.reason(), "http");
    assert!(e.to_string().contains("redirect"), "{e}");
    assert_eq!(heads.len(), 11, "the first request and 10 redirects");

    // A redirect that ends is followed.
    let (end, _) = serve(ok("text/plain", "", b"a 7\n")).await;
    let (result, _, _) = fetch_from(
        Peer::Respond {
            head: format!(
                "HTTP/1.1 301 Moved\r\nLocation: http://127.0.0.1:{end}/metrics\r\nContent-Length: 0\r\n\r\n"
            ),
            body: Vec::new(),
        },
        "",
    )
    .await;
    assert_eq!(
        value_of(&parsed(result.unwrap()), "a"),
        Some((1_800_000_000_000, 7.0))
    );

    let port = free_port();
    let result = fetch(&client().unwrap(), &target_at(port, "")).await;
    let e = result.unwrap_err();
    assert_eq!(e.reason(), "http");
    assert!(
        e.to_string().to_ascii_lowercase().contains("refused"),
        "{e}"
    );
}

#[tokio::test]
async fn invalid_utf8_fails_the_round_by_its_place() {
    let (result, _, _) = fetch_from(ok("text/plain", "", b"ok 1\nbad{x=\"\xff\"} 1\n"), "").await;
    let config: ScrapeConfig = toml::from_str("url = \"http://127.0.0.1:1/m\"").unwrap();
    let round = Scraper::new(&config, Duration::from_secs(15))
        .unwrap()
        .round(result, 1_800_000_000_000, Duration::ZERO);
    let e = round.outcome.unwrap_err();
    assert_eq!(e.reason(), "parse");
    assert!(e.to_string().contains("/m:2:"), "{e}");
    assert_eq!(round.batch.samples.len(), 5, "only the synthetic series");
}

/// The rounds as stored: an instant query stops returning a series at its
/// marker, range functions skip markers, and each marker is stored once.
#[test]
fn stored_markers_end_series_for_the_engine() {
    let room = room();
    let store = &room.shared.store;
    let config: ScrapeConfig =
        toml::from_str("url = \"http://127.0.0.1:9/metrics\"\njob = \"j\"").unwrap();
    let mut scraper = Scraper::new(&config, Duration::from_secs(15)).unwrap();
    let t0 = 1_800_000_000_000;
    let body = |text: &str| {
        Ok(Body {
            bytes: text.as_bytes().to_vec(),
            content_type: "text/plain".into(),
        })
    };
    let rounds = [
        body("a_total 1\nb 5\n"),
        body("a_total 2\nb 6\n"),
        body("a_total 3\n"),
        body("a_total 4\n"),
        Err(Failure::Http("refused".into())),
        body("a_total 6\n"),
    ];
    for (i, fetched) in rounds.into_iter().enumerate() {
        let round = scraper.round(fetched, t0 + i as i64 * 15_000, Duration::ZERO);
        store.append(&round.batch).unwrap();
        scraper.commit(round);
    }
    store.append(&scraper.end(t0 + 90_000).unwrap()).unwrap();

    // b ends at its marker (t0+30s), not 5 minutes after its last sample.
    assert_eq!(instant(store, "b", t0 + 29_999).len(), 1);
    assert!(instant(store, "b", t0 + 30_000).is_empty());
    assert!(instant(store, "b", t0 + 45_000).is_empty());
    // a ends at the failed round, comes back, and ends with the run.
    assert!(instant(store, "a_total", t0 + 60_000).is_empty());
    assert_eq!(values(store, "a_total", t0 + 75_000), vec![6.0]);
    assert!(instant(store, "a_total", t0 + 90_000).is_empty());
    assert!(instant(store, "up", t0 + 90_000).is_empty());
    assert_eq!(values(store, "up", t0 + 60_000), vec![0.0]);
    // Range functions see the samples only: a's four before the failure,
    // not its marker at 60s.
    assert_eq!(values(store, "count(a_total[61s])", t0 + 60_000), vec![4.0]);
    assert_eq!(
        values(store, "max(b[2m])", t0 + 60_000),
        vec![6.0],
        "NaN skipped"
    );
    assert_eq!(values(store, "count(b[2m])", t0 + 60_000), vec![2.0]);

    // Each marker once: b at 30s; a at 60s and 90s; the synthetic series at 90s.
    let all = store
        .snapshot()
        .unwrap()
        .scan(&ScanRequest::default())
        .unwrap();
    let markers = |metric: &str| -> Vec<i64> {
        all.iter()
            .filter(|s| s.key.metric == metric)
            .flat_map(|s| {
                s.timestamps
                    .iter()
                    .zip(&s.values)
                    .filter(|(_, v)| is_stale(**v))
                    .map(|(t, _)| t - t0)
            })
            .collect()
    };
    assert_eq!(markers("b"), vec![30_000]);
    assert_eq!(markers("a_total"), vec![60_000, 90_000]);
    assert_eq!(markers("up"), vec![90_000]);
    assert_eq!(markers("scrape_series_added"), vec![90_000]);
}

/// The whole loop against a peer whose body the test changes: rounds on
/// the interval, a vanished series' single marker, the target table and
/// the health counters, markers at shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_scrapes_on_its_interval_and_ends_cleanly() {
    let body = Arc::new(Mutex::new(b"a 1\nb 2\n".to_vec()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = body.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let body = served.lock().unwrap().clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&body).await;
            });
        }
    });
    let room = room();
    let config: ScrapeConfig = toml::from_str(&format!(
        "url = \"http://127.0.0.1:{port}/metrics\"\njob = \"loop\"\ninterval = \"300ms\""
    ))
    .unwrap();
    let started = now_ms();
    let task = tokio::spawn(mcpops::watch::scrape::run(
        config,
        Duration::from_secs(15),
        room.shared.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    *body.lock().unwrap() = b"a 1\n".to_vec();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    room.stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the loop ends on shutdown")
        .unwrap();
    let ended = now_ms();

    let instance = format!("127.0.0.1:{port}");
    let who = [("job", "loop"), ("instance", instance.as_str())];
    let rounds = room
        .shared
        .health
        .get("mcpops_watch_scrapes_total", &who)
        .unwrap();
    assert!(
        (8.0..=11.0).contains(&rounds),
        "{rounds} rounds in 3s at 300ms"
    );
    let status = &room.shared.targets.all()[0];
    assert_eq!(status.health, TargetHealth::Up, "{status:?}");
    assert_eq!(status.instance, instance);
    assert!(status.last_round_ms >= started && status.last_round_ms <= ended);

    let all = room
        .shared
        .store
        .snapshot()
        .unwrap()
        .scan(&ScanRequest::default())
        .unwrap();
    let series = |metric: &str| all.iter().find(|s| s.key.metric == metric).unwrap();
    let stale = |metric: &str| {
        series(metric)
            .values
            .iter()
            .filter(|v| is_stale(**v))
            .count()
    };
    assert_eq!(stale("b"), 1, "b vanished once");
    assert_eq!(stale("a"), 1, "a ended with the run");
    assert_eq!(stale("up"), 1);
    // Rounds keep the target's phase: each falls a whole number of
    // intervals after the first (a round late under load is late, not
    // shifted; a skipped tick leaves a gap of two intervals).
    let times = series("up").timestamps.clone();
    let rel: Vec<i64> = times.iter().map(|t| t - times[0]).collect();
    for r in &rel[..rel.len() - 1] {
        let off = r.rem_euclid(300);
        assert!(off <= 100 || off >= 200, "rounds at {rel:?}");
    }
    assert_eq!(series("a").key.label("job"), Some("loop"));
    assert_eq!(series("a").key.label("instance"), Some(instance.as_str()));
}

#[tokio::test]
async fn a_bad_target_is_reported_not_scraped() {
    let room = room();
    let mut config = ScrapeConfig::from_url("https://127.0.0.1:1/metrics");
    config.job = "tls".into();
    mcpops::watch::scrape::run(config.clone(), Duration::from_secs(1), room.shared.clone()).await;
    let status = &room.shared.targets.all()[0];
    assert_eq!(status.health, TargetHealth::Down);
    assert!(
        status.last_error.contains("https is not supported"),
        "{}",
        status.last_error
    );
    assert!(config.check(Duration::from_secs(1)).is_err());
    assert_eq!(
        room.shared.health.get(
            "mcpops_watch_scrape_errors_total",
            &[
                ("job", "tls"),
                ("instance", "https://127.0.0.1:1/metrics"),
                ("reason", "config")
            ]
        ),
        Some(1.0)
    );
}

/// scripts/scrape-load.py serves what it says and writes a watch.toml that
/// watch reads: every target parses as a round of 1,000 series.
#[tokio::test]
async fn the_load_script_serves_targets_watch_can_read() {
    if !Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        eprintln!("SKIP: python3 is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/scrape-load.py");
    let mut child = Command::new("python3")
        .arg(script)
        .args([
            "--targets",
            "3",
            "--series",
            "1000",
            "--interval",
            "2s",
            "--out",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _guard = KillOnDrop(child);
    // Kept open: the script prints a second line, and a closed pipe would kill it.
    let mut stdout = BufReader::new(stdout);
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.starts_with("3 targets x 1000 series"), "{line}");
    let text = std::fs::read_to_string(dir.path().join("watch.toml")).unwrap();
    let config: mcpops::watch::config::WatchConfig = toml::from_str(&text).unwrap();
    assert_eq!(config.scrape.len(), 3);
    assert!(config.store.is_some());
    let client = client().unwrap();
    let mut instances = Vec::new();
    for target in &config.scrape {
        assert_eq!(target.interval, Some(Duration::from_secs(2)));
        let scraper = Scraper::new(target, Duration::from_secs(15)).unwrap();
        let fetched = fetch(&client, scraper.target()).await;
        let round = scraper.round(fetched, now_ms(), Duration::ZERO);
        assert_eq!(round.outcome.unwrap().stored, 1000);
        instances.push(scraper.target().instance.clone());
    }
    instances.dedup();
    assert_eq!(instances.len(), 3, "one instance per target");
}
