//! Segment checksums: computed once when a segment is written, verified on
//! every read of the bytes they cover. A segment's footer region (page index
//! and footer) is checked when a reader opens it, and a row group's column
//! chunks when a reader decodes them, from the one buffer it then decodes,
//! so a flipped byte is found before any of its data is used, at the cost of
//! a CRC-32 over bytes that are read anyway.

use super::StoreError;
use super::manifest::{SegmentChecksums, SegmentMeta};
use bytes::{Buf, Bytes};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader, RowGroupMetaData};
use parquet::file::reader::{ChunkReader, Length};
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Bytes hashed per read when checksumming a whole file.
const HASH_CHUNK: usize = 1 << 20;

/// The checksums of a segment file as it is on disk.
pub fn checksums_of(path: &Path) -> Result<SegmentChecksums, StoreError> {
    let file = File::open(path).map_err(|e| StoreError::io(path, e))?;
    let len = file_len(&file, path)?;
    let metadata = ParquetMetaDataReader::new()
        .parse_and_finish(&file)
        .map_err(|e| StoreError::parquet(path, e))?;
    let spans = row_group_spans(&metadata);
    let footer_start = footer_start(&spans);
    let mut row_groups = Vec::with_capacity(spans.len());
    for span in &spans {
        row_groups.push(hash_span(&file, path, span.clone())?);
    }
    Ok(SegmentChecksums {
        row_groups,
        footer_bytes: len - footer_start.min(len),
        footer: hash_span(&file, path, footer_start.min(len)..len)?,
    })
}

/// Opens a segment for reading: its length must be the one recorded, its
/// footer region must match its checksum (when it has checksums), and its
/// row groups must be as many as were checksummed.
pub fn open_segment(
    path: &Path,
    segment: &SegmentMeta,
    options: ArrowReaderOptions,
) -> Result<(File, ArrowReaderMetadata), StoreError> {
    let file = File::open(path).map_err(|e| StoreError::io(path, e))?;
    let len = file_len(&file, path)?;
    if len != segment.bytes {
        return Err(corrupt(
            path,
            format!(
                "the file is {len} bytes, its manifest entry says {}: truncated or overwritten",
                segment.bytes
            ),
        ));
    }
    if let Some(sums) = &segment.checksums {
        let start = len.checked_sub(sums.footer_bytes).ok_or_else(|| {
            corrupt(
                path,
                "the footer region is larger than the file".to_string(),
            )
        })?;
        let tail = read_span(&file, path, start..len)?;
        if crc32fast::hash(&tail) != sums.footer {
            return Err(mismatch(
                path,
                "footer (page index and file metadata)",
                start..len,
            ));
        }
    }
    let metadata =
        ArrowReaderMetadata::load(&file, options).map_err(|e| StoreError::parquet(path, e))?;
    if let Some(sums) = &segment.checksums
        && sums.row_groups.len() != metadata.metadata().num_row_groups()
    {
        return Err(corrupt(
            path,
            format!(
                "{} row groups, {} checksummed",
                metadata.metadata().num_row_groups(),
                sums.row_groups.len()
            ),
        ));
    }
    Ok((file, metadata))
}

/// One row group's column chunks, read in one piece and checked against
/// `expected` (no check for a segment without checksums): what the Parquet
/// reader then decodes from, instead of reading the file page by page.
pub fn read_row_group_bytes(
    file: &File,
    path: &Path,
    metadata: &ParquetMetaData,
    row_group: usize,
    expected: Option<u32>,
) -> Result<RowGroupBytes, StoreError> {
    let span = row_group_span(metadata.row_group(row_group));
    let bytes = read_span(file, path, span.clone())?;
    if let Some(expected) = expected
        && crc32fast::hash(&bytes) != expected
    {
        return Err(mismatch(path, &format!("row group {row_group}"), span));
    }
    Ok(RowGroupBytes {
        start: span.start,
        bytes: Bytes::from(bytes),
        file_len: file_len(file, path)?,
    })
}

/// Where each row group's column chunks lie in the file.
pub fn row_group_spans(metadata: &ParquetMetaData) -> Vec<Range<u64>> {
    metadata.row_groups().iter().map(row_group_span).collect()
}

fn row_group_span(rg: &RowGroupMetaData) -> Range<u64> {
    let ranges = rg.columns().iter().map(|c| {
        let (start, len) = c.byte_range();
        start..start + len
    });
    ranges
        .reduce(|a, b| a.start.min(b.start)..a.end.max(b.end))
        .unwrap_or(0..0)
}

/// Where the footer region begins: after the last row group, or after the
/// leading magic when there is none.
fn footer_start(spans: &[Range<u64>]) -> u64 {
    spans.iter().map(|s| s.end).max().unwrap_or(4)
}

/// A row group's bytes in memory, answering the Parquet reader's reads at
/// their file offsets; a read outside them is an error (the reader asks for
/// nothing else: the page index was read with the footer).
pub struct RowGroupBytes {
    start: u64,
    bytes: Bytes,
    file_len: u64,
}

impl RowGroupBytes {
    fn slice(&self, start: u64, len: Option<usize>) -> Result<Bytes, ParquetError> {
        let end_of = self.start + self.bytes.len() as u64;
        let within = start >= self.start
            && len.is_none_or(|l| start.saturating_add(l as u64) <= end_of)
            && start <= end_of;
        if !within {
            return Err(ParquetError::General(format!(
                "read at offset {start} outside the row group's bytes {}..{end_of}",
                self.start
            )));
        }
        let from = (start - self.start) as usize;
        Ok(match len {
            Some(l) => self.bytes.slice(from..from + l),
            None => self.bytes.slice(from..),
        })
    }
}

impl Length for RowGroupBytes {
    fn len(&self) -> u64 {
        self.file_len
    }
}

impl ChunkReader for RowGroupBytes {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> Result<Self::T, ParquetError> {
        Ok(self.slice(start, None)?.reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> Result<Bytes, ParquetError> {
        self.slice(start, Some(length))
    }
}

fn file_len(file: &File, path: &Path) -> Result<u64, StoreError> {
    Ok(file.metadata().map_err(|e| StoreError::io(path, e))?.len())
}

fn read_span(file: &File, path: &Path, span: Range<u64>) -> Result<Vec<u8>, StoreError> {
    let len = usize::try_from(span.end.saturating_sub(span.start))
        .map_err(|_| corrupt(path, format!("a region of {span:?} bytes")))?;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, span.start)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                corrupt(path, format!("bytes {span:?} lie past the end of the file"))
            }
            _ => StoreError::io(path, e),
        })?;
    Ok(buf)
}

fn hash_span(file: &File, path: &Path, span: Range<u64>) -> Result<u32, StoreError> {
    let mut hasher = crc32fast::Hasher::new();
    let mut at = span.start;
    while at < span.end {
        let next = (at + HASH_CHUNK as u64).min(span.end);
        hasher.update(&read_span(file, path, at..next)?);
        at = next;
    }
    Ok(hasher.finalize())
}

fn corrupt(path: &Path, message: String) -> StoreError {
    StoreError::Corrupt {
        path: path.display().to_string(),
        message,
    }
}

fn mismatch(path: &Path, region: &str, span: Range<u64>) -> StoreError {
    corrupt(
        path,
        format!(
            "checksum mismatch in the {region} (bytes {}..{}): the segment is damaged; \
             `mcpops verify` lists damaged segments and `mcpops repair` sets them aside",
            span.start, span.end
        ),
    )
}
