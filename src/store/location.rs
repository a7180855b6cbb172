//! Where a store lives, as the user writes it (`--store`): a local directory
//! (a plain path or `file://PATH`) or a prefix in an S3 bucket
//! (`s3://bucket/prefix`).
//!
//! Parsing is strict on purpose: a `gs://` or `http://` store, an `s3://`
//! with no bucket, or a bucket name S3 would refuse is reported here, by
//! name, before any request is sent; otherwise the user would read the
//! server's answer to a request they never meant to make (or, for a
//! bucket name with a slash or capital letter, a signature error).

use super::StoreError;
use std::fmt;
use std::path::PathBuf;

/// A parsed `--store`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A directory on this machine.
    Local(PathBuf),
    /// Objects under `prefix` (no leading or trailing slash, possibly
    /// empty: the bucket's root) in `bucket`.
    S3 { bucket: String, prefix: String },
}

impl StoreLocation {
    /// Parses a path, `file://PATH` or `s3://BUCKET[/PREFIX]`; anything else
    /// is [`StoreError::Invalid`], naming what is wrong.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        if text.is_empty() {
            return Err(invalid(text, "the store location is empty"));
        }
        let Some((scheme, rest)) = split_scheme(text) else {
            return Ok(StoreLocation::Local(PathBuf::from(text)));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" if rest.is_empty() => Err(invalid(text, "file:// names no path")),
            "file" => Ok(StoreLocation::Local(PathBuf::from(rest))),
            "s3" => parse_s3(text, rest),
            other => Err(invalid(
                text,
                &format!(
                    "the scheme {other}:// is not supported; a store is a directory \
                     (PATH or file://PATH) or an S3 prefix (s3://BUCKET/PREFIX)"
                ),
            )),
        }
    }
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Local(path) => write!(f, "{}", path.display()),
            StoreLocation::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            StoreLocation::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// `(scheme, rest)` when `text` starts with a URL scheme (a letter, then
/// letters, digits, `+`, `-` or `.`) and `://`; `None` for a path, even one
/// holding `://` further on (`./a://b`).
fn split_scheme(text: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = text.split_once("://")?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some((scheme, rest))
}

fn parse_s3(text: &str, rest: &str) -> Result<StoreLocation, StoreError> {
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(invalid(text, "s3:// names no bucket (s3://BUCKET/PREFIX)"));
    }
    if let Some(why) = bucket_refusal(bucket) {
        return Err(invalid(
            text,
            &format!("{bucket:?} is not a valid S3 bucket name: {why}"),
        ));
    }
    let prefix = prefix.trim_matches('/');
    // Empty, `.` and `..` segments would name a different key than the user
    // wrote (object_store refuses them too, but later and less clearly).
    if !prefix.is_empty()
        && let Some(bad) = prefix
            .split('/')
            .find(|s| s.is_empty() || *s == "." || *s == "..")
    {
        let shown = if bad.is_empty() { "//" } else { bad };
        return Err(invalid(
            text,
            &format!("the prefix {prefix:?} holds {shown:?}; write it as plain segments a/b/c"),
        ));
    }
    if prefix.chars().any(char::is_control) {
        return Err(invalid(text, "the prefix holds a control character"));
    }
    Ok(StoreLocation::S3 {
        bucket: bucket.to_string(),
        prefix: prefix.to_string(),
    })
}

/// Why S3 would refuse `bucket` as a (general purpose) bucket name, if it
/// would: https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
fn bucket_refusal(bucket: &str) -> Option<&'static str> {
    if !(3..=63).contains(&bucket.len()) {
        return Some("it must be 3 to 63 characters long");
    }
    if !bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return Some("it may hold only lowercase letters, digits, dots and hyphens");
    }
    let edge = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !edge(bucket.bytes().next()) || !edge(bucket.bytes().last()) {
        return Some("it must begin and end with a letter or a digit");
    }
    if bucket.contains("..") {
        return Some("it must not hold two adjacent dots");
    }
    if bucket.parse::<std::net::Ipv4Addr>().is_ok() {
        return Some("it must not be an IP address");
    }
    None
}

fn invalid(text: &str, why: &str) -> StoreError {
    StoreError::Invalid(format!("--store {text:?}: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(bucket: &str, prefix: &str) -> StoreLocation {
        StoreLocation::S3 {
            bucket: bucket.into(),
            prefix: prefix.into(),
        }
    }

    #[test]
    fn paths_file_urls_and_s3_prefixes_parse() {
        let local = |p: &str| StoreLocation::Local(PathBuf::from(p));
        let table = [
            ("mcpops-store", local("mcpops-store")),
            ("/var/lib/mcpops", local("/var/lib/mcpops")),
            ("./a://b", local("./a://b")),
            ("C:\\store", local("C:\\store")),
            ("file:///var/lib/mcpops", local("/var/lib/mcpops")),
            ("FILE:///x", local("/x")),
            ("file://rel/dir", local("rel/dir")),
            ("s3://bucket-1", s3("bucket-1", "")),
            ("s3://bucket-1/", s3("bucket-1", "")),
            ("s3://my.bucket/fleet", s3("my.bucket", "fleet")),
            ("s3://b00/a/b/c/", s3("b00", "a/b/c")),
            ("S3://abc//x//", s3("abc", "x")),
            (
                "s3://abc/day=2026-01-01/x y",
                s3("abc", "day=2026-01-01/x y"),
            ),
        ];
        for (text, want) in table {
            assert_eq!(StoreLocation::parse(text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn what_is_not_a_store_location_is_named() {
        let table = [
            ("", "empty"),
            ("gs://bucket/x", "gs:// is not supported"),
            ("http://127.0.0.1:9000/bucket", "http:// is not supported"),
            ("file://", "names no path"),
            ("s3://", "names no bucket"),
            ("s3:///prefix", "names no bucket"),
            ("s3://ab", "3 to 63 characters"),
            (&format!("s3://{}", "a".repeat(64)), "3 to 63 characters"),
            ("s3://My-Bucket/x", "only lowercase letters"),
            ("s3://bucket_1", "only lowercase letters"),
            ("s3://-bucket", "begin and end"),
            ("s3://bucket./x", "begin and end"),
            ("s3://a..b", "adjacent dots"),
            ("s3://192.168.1.1/x", "IP address"),
            ("s3://bucket/a//b", "\"//\""),
            ("s3://bucket/a/../b", "\"..\""),
            ("s3://bucket/a/./b", "\".\""),
            ("s3://bucket/a\nb", "control character"),
        ];
        for (text, want) in table {
            let e = StoreLocation::parse(text).unwrap_err();
            assert!(matches!(e, StoreError::Invalid(_)), "{text}: {e:?}");
            let said = e.to_string();
            assert!(said.contains(want), "{text}: {said}");
            assert!(said.contains(&format!("{text:?}")), "{text}: {said}");
        }
    }

    #[test]
    fn display_gives_back_a_location_that_parses_to_itself() {
        for text in ["s3://bucket-1", "s3://bucket-1/a/b", "/var/lib/mcpops"] {
            let loc = StoreLocation::parse(text).unwrap();
            assert_eq!(loc.to_string(), text);
            assert_eq!(StoreLocation::parse(&loc.to_string()).unwrap(), loc);
        }
    }
}
