//! Segment checksums: computed once when a segment is written, verified on
//! every read of the bytes they cover. A segment's footer region (page index
//! and footer) is checked when a reader opens it, and a row group's column
//! chunks when a reader decodes them, from the one buffer it then decodes,
//! so a flipped byte is found before any of its data is used, at the cost of
//! a CRC-32 over bytes that are read anyway.

use super::StoreError;
use super::manifest::{SegmentChecksums, SegmentMeta};
use super::source::SegmentSource;
use bytes::{Buf, Bytes};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader, RowGroupMetaData};
use parquet::file::reader::{ChunkReader, Length};
use std::ops::Range;

/// The checksums of a segment encoded in memory.
pub fn checksums_of_bytes(bytes: &Bytes) -> Result<SegmentChecksums, ParquetError> {
    let metadata = ParquetMetaDataReader::new().parse_and_finish(bytes)?;
    let hash = |span: Range<u64>| {
        let region = usize::try_from(span.start)
            .ok()
            .zip(usize::try_from(span.end).ok())
            .and_then(|(start, end)| bytes.get(start..end))
            .ok_or_else(|| {
                ParquetError::General(format!("bytes {span:?} lie past the end of the segment"))
            })?;
        Ok(crc32fast::hash(region))
    };
    checksums_over(&metadata, bytes.len() as u64, hash)
}

/// The checksums of a segment of `len` bytes whose metadata is `metadata`,
/// hashing each region with `hash`.
fn checksums_over<E>(
    metadata: &ParquetMetaData,
    len: u64,
    mut hash: impl FnMut(Range<u64>) -> Result<u32, E>,
) -> Result<SegmentChecksums, E> {
    let spans = row_group_spans(metadata);
    let footer_start = footer_start(&spans).min(len);
    let mut row_groups = Vec::with_capacity(spans.len());
    for span in &spans {
        row_groups.push(hash(span.clone())?);
    }
    Ok(SegmentChecksums {
        row_groups,
        footer_bytes: len - footer_start,
        footer: hash(footer_start..len)?,
    })
}

/// Opens a segment for reading and returns its metadata: its length must be
/// the one recorded, its footer region must match its checksum (when it has
/// checksums: the metadata is then parsed from those checked bytes, read
/// once), and its row groups must be as many as were checksummed.
pub fn open_segment(
    source: &dyn SegmentSource,
    segment: &SegmentMeta,
    options: ArrowReaderOptions,
) -> Result<ArrowReaderMetadata, StoreError> {
    let name = source.name(segment);
    let len = source.len(segment)?;
    if len != segment.bytes {
        return Err(corrupt(
            &name,
            format!(
                "the file is {len} bytes, its manifest entry says {}: truncated or overwritten",
                segment.bytes
            ),
        ));
    }
    let metadata = match &segment.checksums {
        Some(sums) => {
            let start = len.checked_sub(sums.footer_bytes).ok_or_else(|| {
                corrupt(
                    &name,
                    "the footer region is larger than the file".to_string(),
                )
            })?;
            let tail = source.read(segment, start..len)?;
            if crc32fast::hash(&tail) != sums.footer {
                return Err(mismatch(
                    &name,
                    "footer (page index and file metadata)",
                    start..len,
                ));
            }
            let tail = RangeBytes {
                start,
                bytes: tail,
                file_len: len,
            };
            ArrowReaderMetadata::load(&tail, options)
        }
        None => {
            let reader = SourceReader {
                source,
                segment,
                len,
            };
            ArrowReaderMetadata::load(&reader, options)
        }
    }
    .map_err(|e| StoreError::parquet(&name, e))?;
    if let Some(sums) = &segment.checksums
        && sums.row_groups.len() != metadata.metadata().num_row_groups()
    {
        return Err(corrupt(
            &name,
            format!(
                "{} row groups, {} checksummed",
                metadata.metadata().num_row_groups(),
                sums.row_groups.len()
            ),
        ));
    }
    Ok(metadata)
}

/// One row group's column chunks, read in one piece and checked against
/// the segment's checksum of them (no check for a segment without
/// checksums): what the Parquet reader then decodes from, instead of
/// reading the file page by page.
pub fn read_row_group_bytes(
    source: &dyn SegmentSource,
    segment: &SegmentMeta,
    metadata: &ParquetMetaData,
    row_group: usize,
) -> Result<RangeBytes, StoreError> {
    let span = row_group_span(metadata.row_group(row_group));
    let bytes = source.read(segment, span.clone())?;
    let expected = segment
        .checksums
        .as_ref()
        .and_then(|c| c.row_groups.get(row_group).copied());
    if let Some(expected) = expected
        && crc32fast::hash(&bytes) != expected
    {
        return Err(mismatch(
            &source.name(segment),
            &format!("row group {row_group}"),
            span,
        ));
    }
    Ok(RangeBytes {
        start: span.start,
        bytes,
        // What `open_segment` found the file to be.
        file_len: segment.bytes,
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

/// A region of a segment in memory (a row group's column chunks, or the
/// footer region), answering the Parquet reader's reads at their file
/// offsets; a read outside it is an error (the reader asks for nothing
/// else: the page index lies in the footer region, read with the footer).
pub struct RangeBytes {
    start: u64,
    bytes: Bytes,
    file_len: u64,
}

impl RangeBytes {
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

impl Length for RangeBytes {
    fn len(&self) -> u64 {
        self.file_len
    }
}

impl ChunkReader for RangeBytes {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> Result<Self::T, ParquetError> {
        Ok(self.slice(start, None)?.reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> Result<Bytes, ParquetError> {
        self.slice(start, Some(length))
    }
}

/// A segment read on demand through its source, for one without checksums
/// (whose footer region's length is not recorded).
struct SourceReader<'a> {
    source: &'a dyn SegmentSource,
    segment: &'a SegmentMeta,
    len: u64,
}

impl Length for SourceReader<'_> {
    fn len(&self) -> u64 {
        self.len
    }
}

impl ChunkReader for SourceReader<'_> {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> Result<Self::T, ParquetError> {
        Ok(self.get_bytes_to(start, self.len)?.reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> Result<Bytes, ParquetError> {
        self.get_bytes_to(start, start.saturating_add(length as u64))
    }
}

impl SourceReader<'_> {
    fn get_bytes_to(&self, start: u64, end: u64) -> Result<Bytes, ParquetError> {
        self.source
            .read(self.segment, start..end)
            .map_err(|e| ParquetError::External(Box::new(e)))
    }
}

fn corrupt(name: &str, message: String) -> StoreError {
    StoreError::Corrupt {
        path: name.to_string(),
        message,
    }
}

fn mismatch(name: &str, region: &str, span: Range<u64>) -> StoreError {
    corrupt(
        name,
        format!(
            "checksum mismatch in the {region} (bytes {}..{}): the segment is damaged; \
             `mcpops verify` lists damaged segments and `mcpops repair` sets them aside",
            span.start, span.end
        ),
    )
}
