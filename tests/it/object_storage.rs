//! The store's object storage access (`mcpops::store::ObjectStorage`)
//! against a real S3 server: moto_server (`pip install "moto[server]>=5.2.1"`;
//! 5.2.0 answers a conditional create with 500 instead of 412), started by
//! each test on 127.0.0.1 on a port the test picks, and killed by its pid
//! when the test ends. Without moto_server the tests say SKIP and pass,
//! as the other peers' tests do; the closed-port test needs no server.

use crate::common::{KillOnDrop, free_port, http_body, wait_for};
use bytes::Bytes;
use mcpops::store::{Created, ObjectStorage, RemoteKind, RemotePolicy, S3Config, StoreError};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BUCKET: &str = "mcpops-test";

/// A moto_server on 127.0.0.1, killed (by pid) and reaped on drop.
pub(crate) struct Moto {
    _child: KillOnDrop,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Moto {
    /// Starts moto_server on a port the system chooses (`-p 0`: a port
    /// picked beforehand could be taken by another test's server between
    /// the pick and the bind, and this test would then talk to that one)
    /// and waits (at most 30 s) until it says where it listens and accepts
    /// connections there; `None` (said loudly, naming `test`) when
    /// moto_server is not installed.
    pub(crate) fn start(test: &str) -> Option<Moto> {
        let dir = tempfile::tempdir().unwrap();
        let log_path = dir.path().join("moto.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let spawned = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!(
                    "SKIP {test}: moto_server is not installed (pip install \"moto[server]>=5.2.1\"; .ci/run installs it)"
                );
                return None;
            }
            Err(e) => panic!("start moto_server: {e}"),
        };
        let mut guard = KillOnDrop(child);
        let log = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        // Werkzeug prints ` * Running on http://127.0.0.1:PORT` once bound.
        let listening = |text: &str| -> Option<u16> {
            let rest = text.split("Running on http://127.0.0.1:").nth(1)?;
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        };
        let mut port = 0;
        wait_for("moto_server to listen", Duration::from_secs(30), || {
            if let Ok(Some(status)) = guard.0.try_wait() {
                panic!("moto_server exited ({status}):\n{}", log(&log_path));
            }
            match listening(&log(&log_path)) {
                Some(p) => {
                    port = p;
                    std::net::TcpStream::connect(("127.0.0.1", p)).is_ok()
                }
                None => false,
            }
        });
        Some(Moto {
            _child: guard,
            port,
            _dir: dir,
        })
    }

    pub(crate) fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates `bucket` with a plain, unsigned PUT (moto takes it while
    /// its auth is off, as it is by default): mcpops never creates buckets.
    pub(crate) fn create_bucket(&self, bucket: &str) {
        let (status, _, body) = http_body(self.port, "PUT", &format!("/{bucket}"), None);
        assert_eq!(status, 200, "create bucket {bucket}: {body}");
    }

    /// Turns signature checking on for every later request
    /// (`INITIAL_NO_AUTH_ACTION_COUNT` = 0).
    pub(crate) fn require_auth(&self) {
        self.reset_auth(0);
    }

    /// Lets the next `requests` requests through unsigned (moto's
    /// `INITIAL_NO_AUTH_ACTION_COUNT`), so that a test can look at what
    /// a refused client left.
    pub(crate) fn reset_auth(&self, requests: u32) {
        let count = requests.to_string();
        let (status, _, body) = http_body(
            self.port,
            "POST",
            "/moto-api/reset-auth",
            Some(("text/plain", &count)),
        );
        assert_eq!(status, 200, "reset-auth: {body}");
    }

    /// The store at `s3://bucket/prefix` on this server, with credentials
    /// given (moto takes any while its auth is off) so that nothing depends
    /// on the test machine's AWS environment.
    pub(crate) fn storage(&self, bucket: &str, prefix: &str) -> ObjectStorage {
        ObjectStorage::s3(&S3Config {
            bucket: bucket.into(),
            prefix: prefix.into(),
            endpoint: Some(self.endpoint()),
            credentials: Some(("mcpops-key".into(), "mcpops-secret".into())),
            region: Some("us-east-1".into()),
            ..S3Config::default()
        })
        .unwrap()
    }
}

/// The store at `s3://BUCKET/p` on whatever answers at 127.0.0.1:`port`,
/// with the default retry policy whatever MCPOPS_S3_* the machine sets.
fn storage_at_port(port: u16) -> ObjectStorage {
    ObjectStorage::s3(&S3Config {
        bucket: BUCKET.into(),
        prefix: "p".into(),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        credentials: Some(("k".into(), "s".into())),
        region: Some("us-east-1".into()),
        policy: Some(RemotePolicy::default()),
    })
    .unwrap()
}

/// The remote error's kind and message; panics on anything else.
fn remote(e: StoreError) -> (RemoteKind, String) {
    match e {
        StoreError::Remote { kind, .. } => (kind, e.to_string()),
        other => panic!("not a remote error: {other:?}"),
    }
}

#[test]
fn a_second_create_of_one_key_is_refused_with_412_and_the_first_write_stays() {
    let Some(moto) = Moto::start("object_storage create") else {
        return;
    };
    moto.create_bucket(BUCKET);
    let s = moto.storage(BUCKET, "store/a");
    let key = "_mcpops/manifests/00000000000000000001.json";
    assert_eq!(
        s.put_create(key, Bytes::from_static(b"first")).unwrap(),
        Created::Created
    );
    assert_eq!(
        s.put_create(key, Bytes::from_static(b"second")).unwrap(),
        Created::AlreadyExists
    );
    assert_eq!(s.get(key).unwrap().unwrap(), Bytes::from_static(b"first"));
    s.put_overwrite(key, Bytes::from_static(b"third")).unwrap();
    assert_eq!(s.get(key).unwrap().unwrap(), Bytes::from_static(b"third"));
    // The prefix is where the object went, seen from the bucket's root.
    let root = moto.storage(BUCKET, "");
    assert_eq!(root.list("").unwrap()[0].key, format!("store/a/{key}"));
    s.delete(key).unwrap();
    assert_eq!(s.get(key).unwrap(), None);
}

#[test]
fn ranges_come_back_as_the_bytes_at_those_offsets() {
    let Some(moto) = Moto::start("object_storage ranges") else {
        return;
    };
    moto.create_bucket(BUCKET);
    let s = moto.storage(BUCKET, "p");
    let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
    s.put_overwrite("seg.parquet", Bytes::from(data.clone()))
        .unwrap();
    for range in [0..1, 100..200, 9_990..10_000, 0..10_000] {
        let got = s.get_range("seg.parquet", range.clone()).unwrap();
        assert_eq!(
            &got[..],
            &data[range.start as usize..range.end as usize],
            "{range:?}"
        );
    }
    // Past the end: an error, never a short buffer passed on as the range.
    assert!(s.get_range("seg.parquet", 20_000..20_010).is_err());
    let (kind, said) = remote(s.get_range("absent", 0..4).unwrap_err());
    assert_eq!(kind, RemoteKind::Other, "{said}");
    assert!(said.contains("NoSuchKey"), "{said}");
}

#[test]
fn a_listing_of_more_than_one_page_returns_every_key() {
    let Some(moto) = Moto::start("object_storage list") else {
        return;
    };
    moto.create_bucket(BUCKET);
    let s = moto.storage(BUCKET, "fleet");
    // S3 pages ListObjectsV2 at 1,000 keys: 1,001 need a continuation.
    const N: usize = 1_001;
    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let s = &s;
            scope.spawn(move || {
                for i in (t..N).step_by(4) {
                    s.put_overwrite(&format!("segments/k{i:05}"), Bytes::from(vec![1u8; i % 7]))
                        .unwrap();
                }
            });
        }
    });
    eprintln!("{N} puts to moto_server: {:?}", started.elapsed());
    s.put_overwrite("other/x", Bytes::from_static(b"x"))
        .unwrap();
    let started = Instant::now();
    let listed = s.list("segments").unwrap();
    eprintln!("list of {N} keys: {:?}", started.elapsed());
    assert_eq!(listed.len(), N);
    for (i, l) in listed.iter().enumerate() {
        assert_eq!(l.key, format!("segments/k{i:05}"));
        assert_eq!(l.size, (i % 7) as u64);
    }
    assert_eq!(s.list("").unwrap().len(), N + 1);
    assert_eq!(s.list("other").unwrap()[0].key, "other/x");
}

#[test]
fn credentials_the_server_does_not_know_are_refused_in_its_words() {
    let Some(moto) = Moto::start("object_storage credentials") else {
        return;
    };
    moto.create_bucket(BUCKET);
    moto.require_auth();
    let s = moto.storage(BUCKET, "p");
    let (kind, said) = remote(s.put_create("k", Bytes::from_static(b"x")).unwrap_err());
    eprintln!("wrong credentials: {said}");
    assert_eq!(kind, RemoteKind::Access, "{said}");
    assert!(kind.is_setup());
    assert!(
        said.contains("InvalidAccessKeyId")
            && said.contains("The AWS Access Key Id you provided does not exist in our records"),
        "{said}"
    );
    assert!(!said.contains("<?xml"), "{said}");
    let (kind, said) = remote(s.get("k").unwrap_err());
    assert_eq!(kind, RemoteKind::Access, "{said}");
    let (kind, said) = remote(s.list("").unwrap_err());
    assert_eq!(kind, RemoteKind::Access, "{said}");
}

#[test]
fn a_closed_port_fails_within_20_seconds_as_unreachable() {
    // Nothing listens: the port was free a moment ago and nobody took it.
    let port = free_port();
    let s = storage_at_port(port);
    let started = Instant::now();
    let (kind, said) = remote(s.get("manifest").unwrap_err());
    let took = started.elapsed();
    eprintln!("closed port: {took:?}: {said}");
    assert!(took < Duration::from_secs(20), "{took:?}: {said}");
    assert_eq!(kind, RemoteKind::Unreachable, "{said}");
    assert!(said.contains(&format!("127.0.0.1:{port}")), "{said}");
    let (kind, _) = remote(s.put_create("m", Bytes::from_static(b"x")).unwrap_err());
    assert_eq!(kind, RemoteKind::Unreachable);
}

#[test]
fn a_missing_bucket_is_named_and_never_reads_as_an_empty_store() {
    let Some(moto) = Moto::start("object_storage missing bucket") else {
        return;
    };
    let s = moto.storage("mcpops-absent", "p");
    let (kind, said) = remote(s.put_create("k", Bytes::from_static(b"x")).unwrap_err());
    eprintln!("missing bucket: {said}");
    assert_eq!(kind, RemoteKind::NoBucket, "{said}");
    assert!(said.contains("NoSuchBucket"), "{said}");
    assert!(
        !said.contains("Object at location"),
        "not a missing object: {said}"
    );
    // A GET is a 404 too: it must not read as "no such object".
    let (kind, said) = remote(s.get("manifest").unwrap_err());
    assert_eq!(kind, RemoteKind::NoBucket, "{said}");
    let (kind, said) = remote(s.list("").unwrap_err());
    assert_eq!(kind, RemoteKind::NoBucket, "{said}");
}

#[test]
fn an_endpoint_that_is_a_web_server_but_not_s3_never_reads_as_an_empty_store() {
    // Python's http.server answers 404 (an HTML page) to every GET of a
    // path it does not serve: read as "no such object", a wrong endpoint
    // would make the store look empty.
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let spawned = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(child) = spawned else {
        eprintln!("SKIP object_storage web server: python3 is not installed");
        return;
    };
    let mut guard = KillOnDrop(child);
    wait_for("http.server to listen", Duration::from_secs(30), || {
        if let Ok(Some(status)) = guard.0.try_wait() {
            panic!("http.server exited ({status})");
        }
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let s = storage_at_port(port);
    let (kind, said) = remote(s.get("_mcpops/manifest.json").unwrap_err());
    eprintln!("web server: {said}");
    assert_eq!(kind, RemoteKind::Config, "{said}");
    assert!(said.contains("404"), "{said}");
}
