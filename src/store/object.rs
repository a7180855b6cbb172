//! Object storage access for the store: [`ObjectStorage`], a
//! synchronous face on the `object_store` crate that the rest of the store
//! (synchronous, parallel through rayon) calls as it calls the file system.
//! Keys are relative to the store's prefix; nothing else of the store's
//! layout lives here.
//!
//! - **A runtime of its own.** `object_store` is async. The wrapper keeps a
//!   small multi-thread tokio runtime (2 workers, which drive the sockets
//!   and hyper's connection pool) and runs each request with `block_on` on
//!   the caller's thread, so any number of rayon threads can wait on it at
//!   once. From inside a tokio runtime (`watch` is async) `block_on` would
//!   panic ("cannot start a runtime from within a runtime"); there the
//!   request runs on a scoped thread of its own instead, and the caller's
//!   thread waits for it. That blocks one of the caller's workers for the
//!   request's length, so async code should still call through
//!   `spawn_blocking`; but it is never a panic. Dropping the wrapper inside
//!   a runtime is safe too (the runtime is shut down in the background).
//! - **A short retry policy.** `object_store`'s default is 10 retries for
//!   up to 3 minutes: a wrong endpoint or a stopped server would hang a CLI
//!   command for minutes before it said anything. Here: 3 retries within
//!   15 s, a 5 s connect timeout, and a 120 s request timeout (it bounds
//!   a whole request, and a segment is uploaded in one); the environment
//!   variables `MCPOPS_S3_MAX_RETRIES`, `MCPOPS_S3_RETRY_TIMEOUT_SECS`,
//!   `MCPOPS_S3_CONNECT_TIMEOUT_SECS` and `MCPOPS_S3_TIMEOUT_SECS` override
//!   them (for a slow or distant server).
//! - **Credentials from the environment only.** The builder is
//!   `AmazonS3Builder::from_env()`: `AWS_ACCESS_KEY_ID`,
//!   `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` (default
//!   `us-east-1`), `AWS_ENDPOINT_URL`, web identity, ECS and EC2 instance
//!   credentials. `object_store` does not read `~/.aws/config` or
//!   `~/.aws/credentials` (it has no notion of `AWS_PROFILE`), so a profile
//!   there is not used: export the variables (`aws configure
//!   export-credentials --format env` prints them).
//! - **Path-style requests** (`http://endpoint/bucket/key`), which MinIO,
//!   moto and most S3-compatible servers take without DNS set-up.
//! - **Errors** keep the server's own words: [`StoreError::Remote`]'s
//!   message is `object_store`'s text with the S3 XML error body reduced to
//!   `Code: Message`. Its [`RemoteKind`] tells a set-up problem (bad
//!   credentials, refused access, no such bucket, an endpoint that does not
//!   answer: the user's to fix, exit 2) from any other failure (exit 1).

use super::StoreError;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{
    ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig,
};
use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

/// What kind of remote failure a [`StoreError::Remote`] is: whether the
/// user's set-up is at fault (and the command should exit 2) or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteKind {
    /// Credentials the server does not accept, or access it refuses
    /// (HTTP 401/403, `InvalidAccessKeyId`, `SignatureDoesNotMatch`,
    /// `AccessDenied`, expired tokens).
    Access,
    /// The bucket does not exist (`NoSuchBucket`).
    NoBucket,
    /// The endpoint could not be reached: connection refused, no such
    /// host, or no answer within the timeouts.
    Unreachable,
    /// The client could not be set up (a malformed endpoint, a bad
    /// override variable) or the server says it is addressed wrongly (a
    /// redirect to another region, an invalid bucket name).
    Config,
    /// Anything else: a server error, a dropped connection mid-transfer,
    /// an unexpected answer.
    Other,
}

impl RemoteKind {
    /// Whether the user's set-up is at fault: the CLI exits 2 for these.
    pub fn is_setup(self) -> bool {
        !matches!(self, RemoteKind::Other)
    }
}

/// The outcome of [`ObjectStorage::put_create`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// The object did not exist and now holds the bytes.
    Created,
    /// The object already existed (S3 answered 412 to `If-None-Match: *`,
    /// or 409 to a racing create); it was left as it was.
    AlreadyExists,
}

/// One listed object: its key relative to the store's prefix, its size in
/// bytes, and when it was last written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    pub last_modified: DateTime<Utc>,
}

/// Retries and timeouts for requests to an S3 server (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemotePolicy {
    pub max_retries: usize,
    pub retry_timeout: Duration,
    pub connect_timeout: Duration,
    pub timeout: Duration,
}

impl Default for RemotePolicy {
    fn default() -> Self {
        RemotePolicy {
            max_retries: 3,
            retry_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(120),
        }
    }
}

impl RemotePolicy {
    /// The defaults, overridden by `MCPOPS_S3_*` variables that are set.
    pub fn from_env() -> Result<Self, StoreError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) with the variables read through `get`
    /// (for tests, which must not set the process's environment).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, StoreError> {
        let number = |name: &str| -> Result<Option<u64>, StoreError> {
            let Some(text) = get(name) else {
                return Ok(None);
            };
            text.trim()
                .parse::<u64>()
                .map(Some)
                .map_err(|_| config_error(name, format!("{text:?} is not a whole number")))
        };
        let mut policy = RemotePolicy::default();
        if let Some(n) = number("MCPOPS_S3_MAX_RETRIES")? {
            policy.max_retries = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(s) = number("MCPOPS_S3_RETRY_TIMEOUT_SECS")? {
            policy.retry_timeout = Duration::from_secs(s);
        }
        if let Some(s) = number("MCPOPS_S3_CONNECT_TIMEOUT_SECS")? {
            policy.connect_timeout = Duration::from_secs(s);
        }
        if let Some(s) = number("MCPOPS_S3_TIMEOUT_SECS")? {
            policy.timeout = Duration::from_secs(s);
        }
        Ok(policy)
    }
}

/// How to reach an S3 bucket; everything left `None` comes from the
/// `AWS_*` environment.
#[derive(Debug, Clone, Default)]
pub struct S3Config {
    pub bucket: String,
    /// Key prefix of the store, without leading or trailing slashes.
    pub prefix: String,
    /// An S3-compatible server (`http://127.0.0.1:9000`); plain `http://`
    /// is allowed only when given here.
    pub endpoint: Option<String>,
    /// Access key id and secret, instead of the environment's (tests; a
    /// later `--s3-*` option).
    pub credentials: Option<(String, String)>,
    pub region: Option<String>,
    /// Retries and timeouts; `None`: the defaults with the `MCPOPS_S3_*`
    /// variables' overrides ([`RemotePolicy::from_env`]).
    pub policy: Option<RemotePolicy>,
}

/// Synchronous access to the objects under one prefix (see the module doc).
pub struct ObjectStorage {
    store: Arc<dyn ObjectStore>,
    /// The store's prefix; keys are joined onto it.
    prefix: String,
    /// `s3://bucket/prefix` (or the backend's name): the front of every
    /// location in an error.
    root: String,
    /// Shared with the storages of sub-prefixes ([`ObjectStorage::child`]).
    runtime: Arc<OwnRuntime>,
}

/// The wrapper's runtime, shut down when the last storage using it is
/// dropped.
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl std::fmt::Debug for ObjectStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStorage")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl ObjectStorage {
    /// An S3 bucket (or an S3-compatible server's), set up from the
    /// environment and `config`. No request is sent yet.
    pub fn s3(config: &S3Config) -> Result<Self, StoreError> {
        let root = join_root(&format!("s3://{}", config.bucket), &config.prefix);
        let setup = |message: String| config_error(&root, message);
        let policy = match config.policy {
            Some(policy) => policy,
            None => RemotePolicy::from_env()?,
        };
        let mut options = ClientOptions::new()
            .with_connect_timeout(policy.connect_timeout)
            .with_timeout(policy.timeout);
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_virtual_hosted_style_request(false)
            .with_retry(RetryConfig {
                max_retries: policy.max_retries,
                retry_timeout: policy.retry_timeout,
                ..RetryConfig::default()
            });
        if let Some(endpoint) = &config.endpoint {
            let lower = endpoint.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                return Err(setup(format!(
                    "the endpoint {endpoint:?} is not an http:// or https:// URL"
                )));
            }
            options = options.with_allow_http(lower.starts_with("http://"));
            builder = builder.with_endpoint(endpoint);
        }
        if let Some((key, secret)) = &config.credentials {
            builder = builder
                .with_access_key_id(key)
                .with_secret_access_key(secret);
        }
        if let Some(region) = &config.region {
            builder = builder.with_region(region);
        }
        let store = builder
            .with_client_options(options)
            .build()
            .map_err(|e| setup(readable(&e)))?;
        Self::with_root(Arc::new(store), &config.prefix, root)
    }

    /// Any `object_store` backend (`InMemory`, `LocalFileSystem` in tests),
    /// with the store under `prefix`.
    pub fn from_store(store: Arc<dyn ObjectStore>, prefix: &str) -> Result<Self, StoreError> {
        let root = join_root(&store.to_string(), prefix);
        Self::with_root(store, prefix, root)
    }

    fn with_root(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        root: String,
    ) -> Result<Self, StoreError> {
        let prefix = prefix.trim_matches('/').to_string();
        if !prefix.is_empty() {
            ObjectPath::parse(&prefix).map_err(|e| config_error(&root, e.to_string()))?;
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("mcpops-object-io")
            .enable_all()
            .build()
            .map_err(|e| StoreError::io(&root, e))?;
        Ok(ObjectStorage {
            store,
            prefix,
            root,
            runtime: Arc::new(OwnRuntime(Some(runtime))),
        })
    }

    /// The objects under `sub` (a key prefix of this storage's) as a
    /// storage of their own, on the same connection pool and runtime.
    pub fn child(&self, sub: &str) -> Result<ObjectStorage, StoreError> {
        let sub = sub.trim_matches('/');
        let prefix = match (self.prefix.is_empty(), sub.is_empty()) {
            (_, true) => self.prefix.clone(),
            (true, false) => sub.to_string(),
            (false, false) => format!("{}/{sub}", self.prefix),
        };
        ObjectPath::parse(&prefix).map_err(|e| config_error(&self.root, e.to_string()))?;
        Ok(ObjectStorage {
            store: self.store.clone(),
            root: join_root(&self.root, sub),
            prefix,
            runtime: self.runtime.clone(),
        })
    }

    /// The names one level below `prefix` that hold objects (S3's common
    /// prefixes with `/` as the delimiter), sorted.
    pub fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let path = self.path(prefix)?;
        let store = &self.store;
        let listed = self
            .run(async move { store.list_with_delimiter(Some(&path)).await })
            .map_err(|e| self.remote("list", prefix, &e))?;
        let mut names: Vec<String> = listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    /// The store's location, as errors name it (`s3://bucket/prefix`).
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The object's bytes; `None` when there is no such object (but a
    /// missing bucket is an error).
    pub fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let path = self.path(key)?;
        let store = &self.store;
        let got = self.run(async move {
            match store.get(&path).await {
                Ok(result) => result.bytes().await.map(Some),
                Err(e) if is_missing_object(&e) => Ok(None),
                Err(e) => Err(e),
            }
        });
        got.map_err(|e| self.remote("get", key, &e))
    }

    /// The object's size; `None` when there is no such object. A HEAD
    /// answer has no body, so a missing bucket reads as a missing object
    /// too: ask only about keys of a bucket known to exist.
    pub fn head(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let path = self.path(key)?;
        let store = &self.store;
        let got = self.run(async move {
            match store.head(&path).await {
                Ok(meta) => Ok(Some(meta.size)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        });
        got.map_err(|e| self.remote("head", key, &e))
    }

    /// Bytes `range` of the object (a missing object is an error: the
    /// caller knows it exists, from a manifest).
    pub fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StoreError> {
        let path = self.path(key)?;
        let store = &self.store;
        let want = range.end.saturating_sub(range.start);
        let bytes = self
            .run(async move { store.get_range(&path, range).await })
            .map_err(|e| self.remote("get", key, &e))?;
        // A server that answers a range request with the wrong length would
        // otherwise pass a short buffer on as if it were the segment's.
        if bytes.len() as u64 != want {
            return Err(StoreError::Remote {
                op: "get",
                location: self.location(key),
                kind: RemoteKind::Other,
                message: format!("asked for {want} bytes, got {}", bytes.len()),
            });
        }
        Ok(bytes)
    }

    /// Writes the object only if it does not exist yet (`If-None-Match: *`):
    /// the commit point of optimistic writers.
    pub fn put_create(&self, key: &str, bytes: Bytes) -> Result<Created, StoreError> {
        let path = self.path(key)?;
        let store = &self.store;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        let put = self.run(async move {
            store
                .put_opts(&path, PutPayload::from_bytes(bytes), opts)
                .await
        });
        match put {
            Ok(_) => Ok(Created::Created),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(Created::AlreadyExists),
            Err(e) => Err(self.remote("put", key, &e)),
        }
    }

    /// Writes the object, replacing what is there.
    pub fn put_overwrite(&self, key: &str, bytes: Bytes) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let store = &self.store;
        self.run(async move { store.put(&path, PutPayload::from_bytes(bytes)).await })
            .map(|_| ())
            .map_err(|e| self.remote("put", key, &e))
    }

    /// Every object whose key starts with the segments of `prefix` (`""`:
    /// the whole store), across all of the server's pages, in the server's
    /// order (S3: by key).
    pub fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        let path = self.path(prefix)?;
        let store = &self.store;
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let metas = self
            .run(async move {
                let path = (!path.as_ref().is_empty()).then_some(path);
                store.list(path.as_ref()).try_collect::<Vec<_>>().await
            })
            .map_err(|e| self.remote("list", prefix, &e))?;
        Ok(metas
            .into_iter()
            .map(|m| Listed {
                key: m
                    .location
                    .as_ref()
                    .strip_prefix(&strip)
                    .unwrap_or(m.location.as_ref())
                    .to_string(),
                size: m.size,
                last_modified: m.last_modified,
            })
            .collect())
    }

    /// Deletes the object; deleting one that is not there is not an error
    /// (S3 answers 204 either way).
    pub fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let store = &self.store;
        let deleted = self.run(async move {
            match store.delete(&path).await {
                Err(e) if is_missing_object(&e) => Ok(()),
                other => other,
            }
        });
        deleted.map_err(|e| self.remote("delete", key, &e))
    }

    /// The object path of `key` under the prefix; a key `object_store`
    /// would refuse (empty segments, `..`) is an error, not a panic.
    fn path(&self, key: &str) -> Result<ObjectPath, StoreError> {
        let key = key.trim_matches('/');
        let full = match (self.prefix.is_empty(), key.is_empty()) {
            (true, _) => key.to_string(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}/{key}", self.prefix),
        };
        ObjectPath::parse(&full)
            .map_err(|e| StoreError::Invalid(format!("object key {key:?}: {e}")))
    }

    fn location(&self, key: &str) -> String {
        join_root(&self.root, key)
    }

    fn remote(&self, op: &'static str, key: &str, e: &object_store::Error) -> StoreError {
        // object_store's own front ("Object at location p/k not found: ",
        // "Generic S3 error: ") names the key again and, for a missing
        // bucket, says "object not found": the message starts at the cause,
        // which holds the request, the status and the server's words.
        let cause = std::error::Error::source(e).unwrap_or(e);
        StoreError::Remote {
            op,
            location: self.location(key),
            kind: classify(e),
            message: readable(cause),
        }
    }

    /// Runs `future` to completion on the wrapper's runtime, from any
    /// thread: on a scoped thread when the caller is itself inside a tokio
    /// runtime, where `block_on` would panic (see the module doc).
    fn run<F>(&self, future: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        let runtime = self.runtime.0.as_ref().expect("present until dropped");
        if tokio::runtime::Handle::try_current().is_err() {
            return runtime.block_on(future);
        }
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| runtime.block_on(future));
            match waiter.join() {
                Ok(output) => output,
                // A panic in the request is the request's: pass it on as it was.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }
}

impl Drop for OwnRuntime {
    /// Dropping a runtime blocks until its workers stop, which tokio
    /// forbids (with a panic) inside another runtime; shut down in the
    /// background instead: nothing is in flight once the wrapper is dropped.
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// A set-up the client refuses before any request (exit 2).
fn config_error(location: &str, message: String) -> StoreError {
    StoreError::Remote {
        op: "configure",
        location: location.to_string(),
        kind: RemoteKind::Config,
        message,
    }
}

fn join_root(root: &str, key: &str) -> String {
    let key = key.trim_matches('/');
    if key.is_empty() {
        root.to_string()
    } else {
        format!("{}/{key}", root.trim_end_matches('/'))
    }
}

/// object_store's text for an error status the server answered with.
const HTTP_STATUS: &str = "Server returned non-2xx status code";

/// A 404 for the object itself. From an HTTP server only S3's own
/// `NoSuchKey` says so: a missing bucket is a 404 too, and so is every
/// answer of a web server that is not S3 at all (a wrong endpoint); read as
/// "no such object", either would make a store look empty. In-process
/// backends (`InMemory`, `LocalFileSystem`) have no body: their NotFound is
/// the object's.
fn is_missing_object(e: &object_store::Error) -> bool {
    if !matches!(e, object_store::Error::NotFound { .. }) {
        return false;
    }
    let text = crate::error_chain(e);
    !text.contains(HTTP_STATUS) || s3_code(&text) == Some("NoSuchKey")
}

/// S3 error codes that mean the credentials or the access are wrong.
const ACCESS_CODES: &[&str] = &[
    "AccessDenied",
    "AccountProblem",
    "AllAccessDisabled",
    "ExpiredToken",
    "InvalidAccessKeyId",
    "InvalidSecurity",
    "InvalidToken",
    "NotSignedUp",
    "SignatureDoesNotMatch",
    "TokenRefreshRequired",
];

/// S3 error codes that mean the request is addressed wrongly.
const CONFIG_CODES: &[&str] = &[
    "AuthorizationHeaderMalformed",
    "IllegalLocationConstraintException",
    "InvalidBucketName",
    "PermanentRedirect",
];

/// What kind of failure `e` is, from its variant, the S3 error code in the
/// server's answer, and the transport error in its source chain.
fn classify(e: &object_store::Error) -> RemoteKind {
    use object_store::Error as E;
    let text = crate::error_chain(e);
    if let Some(code) = s3_code(&text) {
        if code == "NoSuchBucket" {
            return RemoteKind::NoBucket;
        }
        if ACCESS_CODES.contains(&code) {
            return RemoteKind::Access;
        }
        if CONFIG_CODES.contains(&code) {
            return RemoteKind::Config;
        }
    }
    match e {
        // A 404 with no S3 error code: not an S3 server (a wrong endpoint).
        E::NotFound { .. } if text.contains(HTTP_STATUS) && s3_code(&text).is_none() => {
            return RemoteKind::Config;
        }
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => return RemoteKind::Access,
        E::UnknownConfigurationKey { .. } => return RemoteKind::Config,
        _ => {}
    }
    // A redirect from S3 means another region (or a bare redirect, which
    // object_store says "normally indicates an incorrectly configured region").
    if text.contains("incorrectly configured region") || text.contains("status code: 301") {
        return RemoteKind::Config;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(http) = s.downcast_ref::<object_store::client::HttpError>() {
            use object_store::client::HttpErrorKind as K;
            // A timeout cannot be told from a connect timeout here (reqwest
            // marks a connect timeout as a timeout first): an endpoint that
            // never answers is as unreachable as one that refuses.
            return match http.kind() {
                K::Connect | K::Timeout => RemoteKind::Unreachable,
                _ => RemoteKind::Other,
            };
        }
        source = s.source();
    }
    RemoteKind::Other
}

/// The `<Code>` of an S3 XML error body in `text`.
fn s3_code(text: &str) -> Option<&str> {
    xml_element(text, "Code")
}

fn xml_element<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = text.find(&open)? + open.len();
    let len = text[start..].find(&format!("</{name}>"))?;
    Some(text[start..start + len].trim())
}

/// The longest message kept: an HTML error page from a proxy would
/// otherwise fill the terminal.
const MESSAGE_LIMIT: usize = 600;

/// `e` as a user reads it: its text and causes, with an S3 XML error body
/// reduced to `Code: Message` (the server's own words, without the XML
/// declaration, request ids and host ids), whitespace collapsed, and cut
/// at [`MESSAGE_LIMIT`] characters.
fn readable(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = crate::error_chain(e);
    let body_start = text.find("<?xml").or_else(|| text.find("<Error>"));
    if let Some(start) = body_start
        && let Some(end) = text[start..]
            .find("</Error>")
            .map(|i| start + i + "</Error>".len())
    {
        let body = &text[start..end];
        let code = xml_element(body, "Code");
        let message = xml_element(body, "Message");
        let short = match (code, message) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c.to_string(),
            (None, Some(m)) => m.to_string(),
            (None, None) => body.to_string(),
        };
        text.replace_range(start..end, &short);
    }
    let mut text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some((cut, _)) = text.char_indices().nth(MESSAGE_LIMIT) {
        text.truncate(cut);
        text.push_str(" …");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    fn memory(prefix: &str) -> ObjectStorage {
        ObjectStorage::from_store(Arc::new(InMemory::new()), prefix).unwrap()
    }

    fn boxed(text: &str) -> Box<dyn std::error::Error + Send + Sync> {
        text.into()
    }

    const NO_BUCKET: &str = "Error performing GET http://127.0.0.1:1/nope/k in 2ms - Server \
        returned non-2xx status code: 404 Not Found: <?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
        <Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message>\
        <BucketName>nope</BucketName><RequestID>abc</RequestID></Error>";

    #[test]
    fn create_is_refused_once_the_object_exists_and_overwrite_replaces() {
        let s = memory("store/a");
        assert_eq!(
            s.put_create("m/1.json", Bytes::from_static(b"one"))
                .unwrap(),
            Created::Created
        );
        assert_eq!(
            s.put_create("m/1.json", Bytes::from_static(b"two"))
                .unwrap(),
            Created::AlreadyExists
        );
        assert_eq!(
            s.get("m/1.json").unwrap().unwrap(),
            Bytes::from_static(b"one")
        );
        s.put_overwrite("m/1.json", Bytes::from_static(b"three"))
            .unwrap();
        assert_eq!(
            s.get("m/1.json").unwrap().unwrap(),
            Bytes::from_static(b"three")
        );
        assert_eq!(s.get("m/2.json").unwrap(), None);
    }

    #[test]
    fn ranges_list_and_delete_work_relative_to_the_prefix() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let s = ObjectStorage::from_store(store.clone(), "p/q").unwrap();
        let other = ObjectStorage::from_store(store, "p/qq").unwrap();
        s.put_overwrite("seg/a", Bytes::from_static(b"0123456789"))
            .unwrap();
        s.put_overwrite("seg/b", Bytes::from_static(b"xy")).unwrap();
        s.put_overwrite("man/1", Bytes::from_static(b"m")).unwrap();
        other
            .put_overwrite("seg/c", Bytes::from_static(b"not ours"))
            .unwrap();
        assert_eq!(
            s.get_range("seg/a", 2..5).unwrap(),
            Bytes::from_static(b"234")
        );
        assert!(s.get_range("seg/a", 8..12).is_err(), "past the end");
        let keys = |v: Vec<Listed>| v.into_iter().map(|l| (l.key, l.size)).collect::<Vec<_>>();
        assert_eq!(
            keys(s.list("").unwrap()),
            [
                ("man/1".into(), 1),
                ("seg/a".into(), 10),
                ("seg/b".into(), 2)
            ]
        );
        assert_eq!(keys(s.list("seg").unwrap()).len(), 2);
        s.delete("seg/a").unwrap();
        s.delete("seg/a").unwrap();
        assert_eq!(keys(s.list("seg/").unwrap()), [("seg/b".into(), 2)]);
        assert_eq!(keys(other.list("").unwrap()), [("seg/c".into(), 8)]);
    }

    #[test]
    fn a_key_object_store_would_refuse_is_an_error_not_a_panic() {
        let s = memory("");
        for key in ["a//b", "a/../b", "a/./b"] {
            let e = s.get(key).unwrap_err();
            assert!(matches!(e, StoreError::Invalid(_)), "{key}: {e:?}");
        }
        assert!(ObjectStorage::from_store(Arc::new(InMemory::new()), "a//b").is_err());
    }

    #[test]
    fn a_missing_object_in_the_local_file_system_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let fs = object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        let s = ObjectStorage::from_store(Arc::new(fs), "store").unwrap();
        assert_eq!(s.get("x").unwrap(), None);
        assert_eq!(
            s.put_create("x", Bytes::from_static(b"1")).unwrap(),
            Created::Created
        );
        assert_eq!(
            s.put_create("x", Bytes::from_static(b"2")).unwrap(),
            Created::AlreadyExists
        );
        assert_eq!(s.get_range("x", 0..1).unwrap(), Bytes::from_static(b"1"));
        assert_eq!(s.list("").unwrap()[0].key, "x");
    }

    #[test]
    fn many_threads_call_at_once() {
        let s = memory("p");
        std::thread::scope(|scope| {
            for t in 0..8 {
                let s = &s;
                scope.spawn(move || {
                    for i in 0..20 {
                        s.put_overwrite(&format!("k/{t}/{i}"), Bytes::from(vec![t as u8; i]))
                            .unwrap();
                    }
                });
            }
        });
        assert_eq!(s.list("k").unwrap().len(), 160);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn called_and_dropped_inside_a_current_thread_runtime_it_does_not_panic() {
        let s = memory("p");
        s.put_overwrite("a", Bytes::from_static(b"x")).unwrap();
        assert_eq!(s.get("a").unwrap().unwrap(), Bytes::from_static(b"x"));
        drop(s);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn called_and_dropped_inside_a_multi_thread_runtime_it_does_not_panic() {
        let s = memory("p");
        assert_eq!(
            s.put_create("a", Bytes::from_static(b"x")).unwrap(),
            Created::Created
        );
        assert_eq!(s.list("").unwrap().len(), 1);
        drop(s);
    }

    #[test]
    fn the_server_s_xml_error_is_kept_as_code_and_message() {
        let e = object_store::Error::NotFound {
            path: "nope/k".into(),
            source: boxed(NO_BUCKET),
        };
        let said = readable(&e);
        assert!(
            said.contains("404 Not Found: NoSuchBucket: The specified bucket does not exist"),
            "{said}"
        );
        assert!(
            !said.contains("<?xml") && !said.contains("RequestID"),
            "{said}"
        );
        assert_eq!(classify(&e), RemoteKind::NoBucket);
        assert!(
            !is_missing_object(&e),
            "a missing bucket is not a missing object"
        );
        let web = object_store::Error::NotFound {
            path: "k".into(),
            source: boxed("Server returned non-2xx status code: 404 Not Found: <html>nope</html>"),
        };
        assert!(
            !is_missing_object(&web),
            "a web server's 404 is no S3 answer"
        );
        assert_eq!(classify(&web), RemoteKind::Config);
        let key = object_store::Error::NotFound {
            path: "k".into(),
            source: boxed(&format!(
                "{HTTP_STATUS}: 404 Not Found: <Error><Code>NoSuchKey</Code></Error>"
            )),
        };
        assert!(is_missing_object(&key));
        let long = object_store::Error::Generic {
            store: "S3",
            source: boxed(&"<html>".repeat(1000)),
        };
        assert!(readable(&long).chars().count() <= MESSAGE_LIMIT + 2);
    }

    #[test]
    fn failures_are_told_apart_by_whose_they_are() {
        use object_store::Error as E;
        use object_store::client::{HttpError, HttpErrorKind};
        let xml = |code: &str| {
            format!(
                "status code: 403 Forbidden: <Error><Code>{code}</Code><Message>m</Message></Error>"
            )
        };
        let http = |kind| E::Generic {
            store: "S3",
            source: Box::new(HttpError::new(
                kind,
                std::io::Error::other("tcp connect error"),
            )),
        };
        let table = [
            (
                E::PermissionDenied {
                    path: "k".into(),
                    source: boxed(&xml("InvalidAccessKeyId")),
                },
                RemoteKind::Access,
            ),
            (
                E::Unauthenticated {
                    path: "k".into(),
                    source: boxed("401"),
                },
                RemoteKind::Access,
            ),
            (
                E::Generic {
                    store: "S3",
                    source: boxed(&xml("SignatureDoesNotMatch")),
                },
                RemoteKind::Access,
            ),
            (
                E::Generic {
                    store: "S3",
                    source: boxed(&xml("AccessDenied")),
                },
                RemoteKind::Access,
            ),
            (
                E::NotFound {
                    path: "k".into(),
                    source: boxed(NO_BUCKET),
                },
                RemoteKind::NoBucket,
            ),
            (
                E::Generic {
                    store: "S3",
                    source: boxed(&xml("PermanentRedirect")),
                },
                RemoteKind::Config,
            ),
            (http(HttpErrorKind::Connect), RemoteKind::Unreachable),
            (http(HttpErrorKind::Timeout), RemoteKind::Unreachable),
            (http(HttpErrorKind::Decode), RemoteKind::Other),
            (
                E::Generic {
                    store: "S3",
                    source: boxed("status code: 500: <Error><Code>InternalError</Code></Error>"),
                },
                RemoteKind::Other,
            ),
            (
                E::NotFound {
                    path: "k".into(),
                    source: boxed("<Code>NoSuchKey</Code>"),
                },
                RemoteKind::Other,
            ),
        ];
        for (e, want) in table {
            assert_eq!(classify(&e), want, "{e}");
            assert_eq!(want.is_setup(), want != RemoteKind::Other);
        }
    }

    #[test]
    fn the_retry_policy_is_short_and_overridable() {
        let d = RemotePolicy::from_lookup(|_| None).unwrap();
        assert_eq!(d, RemotePolicy::default());
        assert_eq!((d.max_retries, d.retry_timeout.as_secs()), (3, 15));
        let p = RemotePolicy::from_lookup(|n| match n {
            "MCPOPS_S3_MAX_RETRIES" => Some("0".into()),
            "MCPOPS_S3_CONNECT_TIMEOUT_SECS" => Some(" 20 ".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!((p.max_retries, p.connect_timeout.as_secs()), (0, 20));
        let e =
            RemotePolicy::from_lookup(|n| (n == "MCPOPS_S3_TIMEOUT_SECS").then(|| "soon".into()))
                .unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::Remote {
                    kind: RemoteKind::Config,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("MCPOPS_S3_TIMEOUT_SECS"), "{e}");
    }

    #[test]
    fn an_endpoint_that_is_not_http_is_refused_before_any_request() {
        let e = ObjectStorage::s3(&S3Config {
            bucket: "bucket".into(),
            endpoint: Some("127.0.0.1:9000".into()),
            ..S3Config::default()
        })
        .unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::Remote {
                    kind: RemoteKind::Config,
                    ..
                }
            ),
            "{e:?}"
        );
    }
}
