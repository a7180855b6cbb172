//! Shared by the integration tests: running the binary as a user does (the
//! command-line tests), and the fuzz tests' seeded generator.
// Each test crate uses its own subset of these.
#![allow(dead_code)]

use flate2::read::GzDecoder;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `mcpops --store STORE --quiet ARGS...`.
pub fn mcpops(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mcpops"))
        .arg("--store")
        .arg(store)
        .arg("--quiet")
        .args(args)
        .output()
        .expect("run mcpops")
}

/// Everything the command printed, stdout then stderr.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Generates a fleet into `out` and ingests it into `store`.
pub fn generate_and_ingest(store: &Path, out: &Path, servers: u32, days: u32, seed: u64) {
    let (servers, days, seed) = (servers.to_string(), days.to_string(), seed.to_string());
    let o = mcpops(
        store,
        &[
            "generate",
            "--servers",
            &servers,
            "--days",
            &days,
            "--seed",
            &seed,
            "--out",
            out.to_str().expect("utf-8 path"),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = mcpops(store, &["ingest", out.to_str().expect("utf-8 path")]);
    assert!(o.status.success(), "{}", text(&o));
}

/// A deterministic generator (xorshift64) for the fuzz tests.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// One of `items`.
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// A file's text, gunzipped when its name ends in `.gz`.
pub fn read_text(path: &Path) -> String {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if path.extension().is_some_and(|e| e == "gz") {
        let mut text = String::new();
        GzDecoder::new(bytes.as_slice())
            .read_to_string(&mut text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        text
    } else {
        String::from_utf8(bytes).unwrap()
    }
}

/// Files under `dir`, as sorted paths relative to it.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// One HTTP/1.1 request to 127.0.0.1:`port` (a form body for POST) over a
/// plain TCP stream: the status code, the Content-Type and the body. Every
/// read and write is bounded by a timeout.
pub fn http(port: u16, method: &str, target: &str, form: Option<&str>) -> (u16, String, String) {
    let form = form.map(|f| ("application/x-www-form-urlencoded", f));
    http_body(port, method, target, form)
}

/// [`http`] with a body of any content type (`(content type, body)`).
pub fn http_body(
    port: u16,
    method: &str,
    target: &str,
    form: Option<(&str, &str)>,
) -> (u16, String, String) {
    use std::io::Write;
    use std::net::TcpStream;
    use std::time::Duration;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("read timeout");
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .expect("write timeout");
    let body = form.map_or("", |(_, b)| b);
    let mut request = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some((content_type, _)) = form {
        request.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the answer");
    let text = String::from_utf8(raw).expect("a UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("headers and a body");
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a status line: {head}"));
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, content_type, body)
}

/// The body of a chunked HTTP/1.1 answer.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).expect("a chunk size");
        if n == 0 {
            break;
        }
        out.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
    out
}

/// A free port on 127.0.0.1 (bound, then released for the test's server).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A child process killed and reaped (by its PID) when dropped, so a
/// failing assert still stops what the test started.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The test fixtures' directory (`tests/fixtures`).
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Whether python3 imports `modules` (comma-separated); says SKIP loudly,
/// naming `test`, when it does not.
pub fn python_has(modules: &str, test: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIP {test}: python3 with {modules} is not installed (.ci/run installs it)");
    }
    ok
}

/// The prometheus_client target `tests/fixtures/prom_target.py` and the
/// port it listens on; `None` (said loudly, naming `test`) when python3 or
/// prometheus_client is missing.
pub fn start_prom_target(test: &str) -> Option<(KillOnDrop, u16)> {
    if !python_has("prometheus_client", test) {
        return None;
    }
    let mut cmd = Command::new("python3");
    cmd.arg(fixtures().join("prom_target.py"));
    Some(start_printing_port(cmd))
}

/// Starts a fixture server that prints `PORT <n>` as its first line once it
/// listens, and returns it with that port.
pub fn start_printing_port(mut cmd: Command) -> (KillOnDrop, u16) {
    use std::io::BufRead;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("start {cmd:?}: {e}"));
    let stdout = child.stdout.take().expect("its stdout");
    let guard = KillOnDrop(child);
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("its first line");
    let port = line
        .strip_prefix("PORT ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("{cmd:?} said {line:?}"));
    (guard, port)
}

/// Waits (at most `limit`, polling every 100 ms) until `done` holds.
pub fn wait_for(what: &str, limit: std::time::Duration, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(
            started.elapsed() < limit,
            "gave up after {limit:?} waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Waits (at most 30 s) until the `mcpops watch` in `child` answers 200 on
/// `/-/ready` at `port`; panics with `log()` (what it printed) if it exits
/// first or never gets ready.
pub fn wait_watch_ready(child: &mut std::process::Child, port: u16, log: impl Fn() -> String) {
    wait_for(
        "watch to be ready",
        std::time::Duration::from_secs(30),
        || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("watch exited ({status}) before it was ready:\n{}", log());
            }
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && http(port, "GET", "/-/ready", None).0 == 200
        },
    );
}

/// Debian's Alertmanager, on a port of its own, routing everything to the
/// webhook at `hook_url` (groups by alertname, waits 1s); `None` (said loudly) when it is not installed.
pub fn start_alertmanager(dir: &Path, hook_url: &str) -> Option<(KillOnDrop, u16)> {
    let bin = Path::new("/usr/bin/prometheus-alertmanager");
    if !bin.exists() {
        eprintln!(
            "SKIP alertmanager: /usr/bin/prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)"
        );
        return None;
    }
    let config = dir.join("alertmanager.yml");
    std::fs::write(
        &config,
        format!(
            "route:\n  receiver: sink\n  group_by: ['alertname']\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: sink\n    webhook_configs:\n      - url: '{hook_url}'\n        send_resolved: true\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.join("alertmanager.log")).unwrap();
    let child = std::process::Command::new(bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start alertmanager");
    let mut guard = KillOnDrop(child);
    wait_for(
        "alertmanager to be ready",
        std::time::Duration::from_secs(30),
        || {
            if let Ok(Some(status)) = guard.0.try_wait() {
                panic!(
                    "alertmanager exited ({status}):\n{}",
                    std::fs::read_to_string(dir.join("alertmanager.log")).unwrap_or_default()
                );
            }
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && http(port, "GET", "/-/ready", None).0 == 200
        },
    );
    Some((guard, port))
}
