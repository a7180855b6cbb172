//! Where a segment's bytes are read from. Readers (scans, the catalog,
//! verify) ask a [`SegmentSource`] for byte ranges of a segment named by its
//! manifest entry, never for a file: a store in a local directory answers
//! with positioned reads of the file, and a store on object storage can
//! answer the same requests with ranged GETs. A reader needs the footer
//! region once per segment and one range per row group it decodes, each of
//! which the manifest's checksums cover.

use super::StoreError;
use super::manifest::SegmentMeta;
use bytes::Bytes;
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Byte ranges of the segments a manifest lists.
pub trait SegmentSource: Sync {
    /// What errors call the segment: its file's path, or its object's URL.
    fn name(&self, segment: &SegmentMeta) -> String;

    /// The segment's length as stored (not as its manifest entry says).
    fn len(&self, segment: &SegmentMeta) -> Result<u64, StoreError>;

    /// Bytes `range` of the segment; a range past its end is
    /// [`StoreError::Corrupt`].
    fn read(&self, segment: &SegmentMeta, range: Range<u64>) -> Result<Bytes, StoreError>;
}

/// The segments of a store in a local directory.
pub struct LocalSegments<'a> {
    root: &'a Path,
}

impl<'a> LocalSegments<'a> {
    pub fn new(root: &'a Path) -> Self {
        LocalSegments { root }
    }

    fn path(&self, segment: &SegmentMeta) -> PathBuf {
        self.root.join(&segment.path)
    }
}

impl SegmentSource for LocalSegments<'_> {
    fn name(&self, segment: &SegmentMeta) -> String {
        self.path(segment).display().to_string()
    }

    fn len(&self, segment: &SegmentMeta) -> Result<u64, StoreError> {
        let path = self.path(segment);
        let meta = std::fs::metadata(&path).map_err(|e| StoreError::io(&path, e))?;
        Ok(meta.len())
    }

    fn read(&self, segment: &SegmentMeta, range: Range<u64>) -> Result<Bytes, StoreError> {
        let path = self.path(segment);
        let file = File::open(&path).map_err(|e| StoreError::io(&path, e))?;
        read_span(&file, &path, range).map(Bytes::from)
    }
}

/// Bytes `span` of an open file; a span past its end is corrupt (the file
/// is shorter than what describes it).
pub(super) fn read_span(file: &File, path: &Path, span: Range<u64>) -> Result<Vec<u8>, StoreError> {
    let len =
        usize::try_from(span.end.saturating_sub(span.start)).map_err(|_| StoreError::Corrupt {
            path: path.display().to_string(),
            message: format!("a region of {span:?} bytes"),
        })?;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, span.start)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => StoreError::Corrupt {
                path: path.display().to_string(),
                message: format!("bytes {span:?} lie past the end of the file"),
            },
            _ => StoreError::io(path, e),
        })?;
    Ok(buf)
}
