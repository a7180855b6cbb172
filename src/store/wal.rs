//! The write-ahead log of the live store: `STORE/wal/NNNNNNNNNN.wal` files,
//! each an 8-byte magic followed by records framed as length (u32 LE),
//! CRC-32 of the payload (u32 LE) and payload. As in Prometheus's WAL, a
//! series is written once per file (a `series` record giving it a number
//! local to that file) and samples refer to it by that number, so a scrape
//! of a thousand series costs 20 bytes a sample, not a label set each; a
//! file therefore replays on its own, and damage in one never spoils the
//! next. Metric metadata is logged when it changes.
//!
//! Replay reads every record whose frame and checksum hold. A record cut
//! short at the end of a file (the write a crash or a full disk
//! interrupted) is a torn tail: it was never acknowledged, and the live
//! writer truncates it away. A record that fails its checksum with more
//! after it is damage in the middle: it is skipped and reported, and the
//! records after it still count (they carry their own checksums).

use super::StoreError;
use crate::metadata::MetricMeta;
use crate::model::SeriesKey;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// The log's directory under the store root.
pub const WAL_DIR: &str = "wal";
/// The live writer's lock, inside [`WAL_DIR`]: one `watch` per store.
pub const WAL_LOCK_FILE: &str = "lock";
const MAGIC: &[u8; 8] = b"MCPWAL1\n";
pub(super) const HEADER_BYTES: u64 = MAGIC.len() as u64;
const FRAME_BYTES: usize = 8;
/// The largest payload a record may have; a longer length is damage. A
/// batch with more samples is split over several records.
pub const MAX_RECORD_BYTES: usize = 16 << 20;
/// Bytes of one logged sample: series number, time, value bits.
const SAMPLE_BYTES: usize = 4 + 8 + 8;

const KIND_SERIES: u8 = 1;
const KIND_SAMPLES: u8 = 2;
const KIND_META: u8 = 3;

/// The name of log file `seq`.
pub fn file_name(seq: u64) -> String {
    format!("{seq:010}.wal")
}

/// The sequence number of a log file's name, if it is one.
pub fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".wal")?;
    if digits.len() < 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The log files in `dir`, in sequence order; a missing directory has none.
pub fn wal_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io(dir, e)),
    };
    let mut files: Vec<(u64, PathBuf)> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| {
            let seq = e.file_name().to_str().and_then(parse_file_name)?;
            Some((seq, e.path()))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Creates log file `seq` holding just the magic, synced with its
/// directory entry, so that records written to it later can be made
/// durable by syncing the file alone.
pub(super) fn create_file(dir: &Path, seq: u64) -> Result<File, StoreError> {
    use std::os::unix::fs::FileExt;
    let path = dir.join(file_name(seq));
    let file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| StoreError::io(&path, e))?;
    let written = file
        .write_all_at(MAGIC, 0)
        .and_then(|()| file.sync_all())
        .map_err(|e| StoreError::io(&path, e));
    if let Err(e) = written {
        // Half a header replays as an empty file, but leave nothing behind.
        drop(file);
        let _ = fs::remove_file(&path);
        return Err(e);
    }
    super::manifest::sync_dir(dir)?;
    Ok(file)
}

/// Records being encoded for one write.
#[derive(Default)]
pub(super) struct RecordBuf {
    pub buf: Vec<u8>,
}

impl RecordBuf {
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    fn begin(&mut self, kind: u8) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; FRAME_BYTES]);
        self.buf.push(kind);
        start
    }

    fn finish(&mut self, start: usize) {
        let payload = &self.buf[start + FRAME_BYTES..];
        let len = payload.len() as u32;
        let crc = crc32fast::hash(payload);
        self.buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
        self.buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    }

    fn put_str(&mut self, s: &str) {
        self.buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(s.as_bytes());
    }

    /// Series number `id` of this file is `key`.
    pub fn series(&mut self, id: u32, key: &SeriesKey) {
        let start = self.begin(KIND_SERIES);
        self.buf.extend_from_slice(&id.to_le_bytes());
        self.put_str(&key.metric);
        self.buf
            .extend_from_slice(&(key.labels.len() as u32).to_le_bytes());
        for (k, v) in &key.labels {
            self.put_str(k);
            self.put_str(v);
        }
        self.finish(start);
    }

    /// What `metric` is, as JSON (the manifest's own form of it).
    pub fn meta(&mut self, metric: &str, meta: &MetricMeta) {
        let start = self.begin(KIND_META);
        self.put_str(metric);
        // Serialising a plain struct of strings and enums cannot fail.
        let json = serde_json::to_vec(meta).unwrap_or_default();
        self.buf.extend_from_slice(&json);
        self.finish(start);
    }

    /// Samples by series number, split into records of at most
    /// [`MAX_RECORD_BYTES`]. Values are kept as their bits, so a staleness
    /// marker's NaN payload survives.
    pub fn samples(&mut self, samples: impl ExactSizeIterator<Item = (u32, i64, f64)>) {
        let per_record = (MAX_RECORD_BYTES - 5) / SAMPLE_BYTES;
        let mut left = samples.len();
        let mut samples = samples;
        while left > 0 {
            let n = left.min(per_record);
            let start = self.begin(KIND_SAMPLES);
            self.buf.extend_from_slice(&(n as u32).to_le_bytes());
            for (id, t, v) in samples.by_ref().take(n) {
                self.buf.extend_from_slice(&id.to_le_bytes());
                self.buf.extend_from_slice(&t.to_le_bytes());
                self.buf.extend_from_slice(&v.to_bits().to_le_bytes());
            }
            self.finish(start);
            left -= n;
        }
    }
}

/// One decoded record.
#[derive(Debug, PartialEq)]
pub enum Record {
    Series { id: u32, key: SeriesKey },
    Samples(Vec<(u32, i64, f64)>),
    Meta { metric: String, meta: MetricMeta },
}

/// Reads a payload: a checksum that holds does not make its content
/// sensible (a record of a later format, a bug), so every length is checked.
fn decode(payload: &[u8]) -> Result<Record, String> {
    struct Reader<'a>(&'a [u8]);
    impl<'a> Reader<'a> {
        fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
            if self.0.len() < n {
                return Err(format!("record ends {} byte(s) early", n - self.0.len()));
            }
            let (a, b) = self.0.split_at(n);
            self.0 = b;
            Ok(a)
        }
        fn u32(&mut self) -> Result<u32, String> {
            Ok(u32::from_le_bytes(
                self.take(4)?.try_into().unwrap_or_default(),
            ))
        }
        fn u64(&mut self) -> Result<u64, String> {
            Ok(u64::from_le_bytes(
                self.take(8)?.try_into().unwrap_or_default(),
            ))
        }
        fn string(&mut self) -> Result<String, String> {
            let n = self.u32()? as usize;
            String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "text is not UTF-8".to_string())
        }
    }
    let (&kind, rest) = payload.split_first().ok_or("empty record")?;
    let mut r = Reader(rest);
    let record = match kind {
        KIND_SERIES => {
            let id = r.u32()?;
            let metric = r.string()?;
            let n = r.u32()? as usize;
            // Each label takes at least 8 bytes: a count beyond that is damage.
            if n > r.0.len() / 8 {
                return Err(format!("a series record claims {n} labels"));
            }
            let mut labels = Vec::with_capacity(n);
            for _ in 0..n {
                labels.push((r.string()?, r.string()?));
            }
            Record::Series {
                id,
                key: SeriesKey::new(metric, labels),
            }
        }
        KIND_SAMPLES => {
            let n = r.u32()? as usize;
            if r.0.len() != n * SAMPLE_BYTES {
                return Err(format!(
                    "a samples record claims {n} samples in {} bytes",
                    r.0.len()
                ));
            }
            let mut samples = Vec::with_capacity(n);
            for _ in 0..n {
                let id = r.u32()?;
                let t = r.u64()? as i64;
                let v = f64::from_bits(r.u64()?);
                samples.push((id, t, v));
            }
            Record::Samples(samples)
        }
        KIND_META => {
            let metric = r.string()?;
            let meta: MetricMeta =
                serde_json::from_slice(r.0).map_err(|e| format!("metadata of `{metric}`: {e}"))?;
            r.0 = &[];
            Record::Meta { metric, meta }
        }
        other => return Err(format!("unknown record kind {other}")),
    };
    if !r.0.is_empty() {
        return Err(format!("{} byte(s) after the record's content", r.0.len()));
    }
    Ok(record)
}

/// What was wrong in a log file.
#[derive(Debug, Clone, PartialEq)]
pub enum Damage {
    /// The file ends inside a record (or in zeros where one should start):
    /// a write that never completed, so never acknowledged.
    TornTail { offset: u64, bytes: u64 },
    /// A record in the middle that fails its checksum or cannot be read;
    /// `bytes` of the file were skipped.
    Corrupt {
        offset: u64,
        bytes: u64,
        message: String,
    },
}

/// One log file as replay found it.
#[derive(Debug, Clone, PartialEq)]
pub struct FileReplay {
    pub seq: u64,
    pub path: PathBuf,
    /// Bytes up to the end of the last good record (where a torn tail starts).
    pub valid_len: u64,
    pub len: u64,
    pub records: u64,
    pub samples: u64,
    /// Samples naming a series number no record of the file defined (its
    /// series record was the damaged one): dropped.
    pub orphan_samples: u64,
    pub damage: Vec<Damage>,
}

/// Reads one log file's records in order, calling `on` with each that
/// holds, together with the file's series table so far (indexed by the
/// file's series numbers).
pub fn replay_file(
    seq: u64,
    path: &Path,
    bytes: &[u8],
    on: &mut dyn FnMut(&[Option<SeriesKey>], Record),
) -> FileReplay {
    let mut out = FileReplay {
        seq,
        path: path.to_path_buf(),
        valid_len: 0,
        len: bytes.len() as u64,
        records: 0,
        samples: 0,
        orphan_samples: 0,
        damage: Vec::new(),
    };
    if bytes.len() < MAGIC.len() {
        // A file created by a crash before its header reached the disk.
        if MAGIC.starts_with(bytes) || bytes.iter().all(|&b| b == 0) {
            if !bytes.is_empty() {
                out.damage.push(Damage::TornTail {
                    offset: 0,
                    bytes: bytes.len() as u64,
                });
            }
        } else {
            out.damage.push(Damage::Corrupt {
                offset: 0,
                bytes: bytes.len() as u64,
                message: "not a write-ahead log file (bad magic)".into(),
            });
        }
        return out;
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        out.damage.push(Damage::Corrupt {
            offset: 0,
            bytes: bytes.len() as u64,
            message: "not a write-ahead log file (bad magic)".into(),
        });
        return out;
    }
    let mut series: Vec<Option<SeriesKey>> = Vec::new();
    let mut at = MAGIC.len();
    out.valid_len = at as u64;
    let zeros_from = |p: usize| bytes[p..].iter().all(|&b| b == 0);
    while at < bytes.len() {
        let left = bytes.len() - at;
        let torn = |at: usize| Damage::TornTail {
            offset: at as u64,
            bytes: (bytes.len() - at) as u64,
        };
        if left < FRAME_BYTES {
            out.damage.push(torn(at));
            break;
        }
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or_default()) as usize;
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap_or_default());
        if len == 0 || len > MAX_RECORD_BYTES {
            if zeros_from(at) {
                out.damage.push(torn(at));
            } else {
                // The frame itself is damaged: nothing says where the next
                // record starts, so the rest of this file is lost.
                out.damage.push(Damage::Corrupt {
                    offset: at as u64,
                    bytes: left as u64,
                    message: format!(
                        "a record claims {len} bytes; the rest of the file is unreadable"
                    ),
                });
            }
            break;
        }
        let end = at + FRAME_BYTES + len;
        if end > bytes.len() {
            out.damage.push(torn(at));
            break;
        }
        let payload = &bytes[at + FRAME_BYTES..end];
        let problem = if crc32fast::hash(payload) != crc {
            if end == bytes.len() {
                // The last record, half on disk: a torn write.
                out.damage.push(torn(at));
                break;
            }
            Some("checksum mismatch".to_string())
        } else {
            match decode(payload) {
                Ok(record) => {
                    out.records += 1;
                    match record {
                        Record::Series { id, key } => {
                            let i = id as usize;
                            // Numbers are dense from 0; a wild one is damage.
                            if i > series.len() + (1 << 24) {
                                Some(format!("series number {id} out of range"))
                            } else {
                                if series.len() <= i {
                                    series.resize(i + 1, None);
                                }
                                series[i] = Some(key.clone());
                                on(&series, Record::Series { id, key });
                                None
                            }
                        }
                        Record::Samples(samples) => {
                            let known = samples
                                .iter()
                                .filter(|s| series.get(s.0 as usize).is_some_and(Option::is_some))
                                .count();
                            out.orphan_samples += (samples.len() - known) as u64;
                            out.samples += known as u64;
                            let samples = if known == samples.len() {
                                samples
                            } else {
                                samples
                                    .into_iter()
                                    .filter(|s| {
                                        series.get(s.0 as usize).is_some_and(Option::is_some)
                                    })
                                    .collect()
                            };
                            on(&series, Record::Samples(samples));
                            None
                        }
                        meta @ Record::Meta { .. } => {
                            on(&series, meta);
                            None
                        }
                    }
                }
                Err(message) => Some(message),
            }
        };
        if let Some(message) = problem {
            out.damage.push(Damage::Corrupt {
                offset: at as u64,
                bytes: (end - at) as u64,
                message,
            });
        }
        at = end;
        out.valid_len = at as u64;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::infer;

    fn key(m: &str, l: &str) -> SeriesKey {
        SeriesKey::new(m, vec![("job".into(), l.into())])
    }

    fn file_of(buf: &RecordBuf) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&buf.buf);
        bytes
    }

    fn replayed(bytes: &[u8]) -> (Vec<(SeriesKey, i64, u64)>, FileReplay) {
        let mut got = Vec::new();
        let r = replay_file(1, Path::new("x"), bytes, &mut |series, rec| {
            if let Record::Samples(s) = rec {
                for (id, t, v) in s {
                    let k = series[id as usize].clone().unwrap();
                    got.push((k, t, v.to_bits()));
                }
            }
        });
        (got, r)
    }

    #[test]
    fn records_round_trip_bit_exactly() {
        let mut b = RecordBuf::default();
        b.series(0, &key("up", "a"));
        b.series(1, &key("up", "b"));
        b.meta("up", &infer("up", false, &|_| false));
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        b.samples([(0, 5, 1.5), (1, -7, stale), (0, 5, f64::NEG_INFINITY)].into_iter());
        let (got, r) = replayed(&file_of(&b));
        assert!(r.damage.is_empty(), "{:?}", r.damage);
        assert_eq!(r.records, 4);
        assert_eq!(got.len(), 3);
        assert_eq!(got[1], (key("up", "b"), -7, 0x7ff0_0000_0000_0002));
        assert_eq!(got[2].2, f64::NEG_INFINITY.to_bits());
    }

    #[test]
    fn every_cut_of_the_last_record_is_a_torn_tail() {
        let mut b = RecordBuf::default();
        b.series(0, &key("up", "a"));
        b.samples([(0, 1, 1.0)].into_iter());
        let whole = file_of(&b);
        let first_end = {
            let mut one = RecordBuf::default();
            one.series(0, &key("up", "a"));
            file_of(&one).len()
        };
        for cut in first_end..whole.len() {
            let (got, r) = replayed(&whole[..cut]);
            assert!(got.is_empty());
            assert_eq!(r.valid_len, first_end as u64, "cut at {cut}");
            if cut > first_end {
                assert!(matches!(r.damage[..], [Damage::TornTail { .. }]), "{cut}");
            }
        }
        // A flipped byte in the last record is a torn write too.
        let mut flipped = whole.clone();
        let n = flipped.len();
        flipped[n - 3] ^= 0x40;
        let (got, r) = replayed(&flipped);
        assert!(got.is_empty());
        assert!(matches!(r.damage[..], [Damage::TornTail { .. }]));
        // Zeros where a record should start (a file extended, never written).
        let mut zeros = whole.clone();
        zeros.extend_from_slice(&[0; 100]);
        let (got, r) = replayed(&zeros);
        assert_eq!(got.len(), 1);
        assert_eq!(r.valid_len, whole.len() as u64);
    }

    #[test]
    fn a_damaged_record_in_the_middle_is_skipped_and_reported() {
        let mut b = RecordBuf::default();
        b.series(0, &key("up", "a"));
        b.samples([(0, 1, 1.0)].into_iter());
        let bad_at = file_of(&b).len();
        b.samples([(0, 2, 2.0)].into_iter());
        b.samples([(0, 3, 3.0)].into_iter());
        let mut bytes = file_of(&b);
        bytes[bad_at + FRAME_BYTES + 6] ^= 1;
        let (got, r) = replayed(&bytes);
        let times: Vec<i64> = got.iter().map(|g| g.1).collect();
        assert_eq!(times, vec![1, 3]);
        assert!(
            matches!(&r.damage[..], [Damage::Corrupt { offset, .. }] if *offset == bad_at as u64)
        );
        // A damaged frame length loses the rest of the file, nothing before.
        let mut bytes = file_of(&b);
        bytes[bad_at + 3] = 0x7f;
        let (got, r) = replayed(&bytes);
        assert_eq!(got.len(), 1);
        assert!(matches!(&r.damage[..], [Damage::Corrupt { .. }]));
    }

    #[test]
    fn hostile_payloads_are_errors_not_panics() {
        for payload in [
            vec![],
            vec![9],
            vec![KIND_SERIES, 1, 0, 0],
            vec![KIND_SERIES, 0, 0, 0, 0, 255, 255, 255, 255],
            vec![KIND_SERIES, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 127],
            vec![KIND_SAMPLES, 255, 255, 255, 255],
            vec![KIND_META, 1, 0, 0, 0, b'x', b'{'],
        ] {
            assert!(decode(&payload).is_err(), "{payload:?}");
        }
        assert_eq!(parse_file_name(&file_name(42)), Some(42));
        assert_eq!(parse_file_name("42.wal"), None);
    }
}
