//! Diagnostics: what went wrong, where, rendered like rustc's.

use super::ast::Span;
use serde::Serialize;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding of the parser or the checker. `line` and `col` are 1-based;
/// `col` counts characters. `source_line` is the text of that line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: String,
    pub line: u32,
    pub col: u32,
    pub message: String,
    pub source_line: String,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// ```text
    /// error: expected a duration such as `5m` after `for`
    ///   --> rules/x.rules:12:9
    ///    |
    /// 12 |   for   soon
    ///    |         ^
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let num = self.line.to_string();
        let pad = " ".repeat(num.len());
        writeln!(f, "{label}: {}", self.message)?;
        writeln!(f, "{pad}--> {}:{}:{}", self.file, self.line, self.col)?;
        writeln!(f, "{pad} |")?;
        writeln!(f, "{num} | {}", self.source_line)?;
        let caret: String = self
            .source_line
            .chars()
            .take(self.col.saturating_sub(1) as usize)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        writeln!(f, "{pad} | {caret}^")
    }
}

/// Maps byte offsets of one source text to lines and columns.
pub struct LineIndex<'a> {
    src: &'a str,
    starts: Vec<usize>,
    /// Whether each line is ASCII: then a column is a byte offset, found in
    /// constant time (a long line must not make every span cost its length).
    ascii: Vec<bool>,
}

impl<'a> LineIndex<'a> {
    pub fn new(src: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        let ascii = starts
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                let e = starts.get(i + 1).copied().unwrap_or(src.len());
                src.as_bytes()[s..e].is_ascii()
            })
            .collect();
        LineIndex { src, starts, ascii }
    }

    /// The text this index maps.
    pub fn source(&self) -> &'a str {
        self.src
    }

    /// 1-based line and character column of a byte offset (clamped to the
    /// text and moved back to a character boundary).
    pub fn line_col(&self, pos: usize) -> (u32, u32) {
        let mut pos = pos.min(self.src.len());
        while !self.src.is_char_boundary(pos) {
            pos -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= pos) - 1;
        let start = self.starts[line];
        let col = if self.ascii[line] {
            pos - start + 1
        } else {
            self.src[start..pos].chars().count() + 1
        };
        (line as u32 + 1, col as u32)
    }

    pub fn span(&self, start: usize, end: usize) -> Span {
        let (line, col) = self.line_col(start);
        Span {
            start,
            end,
            line,
            col,
        }
    }

    /// The text of a 1-based line, without its line break.
    pub fn line_text(&self, line: u32) -> &'a str {
        let i = (line.max(1) - 1) as usize;
        let Some(&start) = self.starts.get(i) else {
            return "";
        };
        let end = self.starts.get(i + 1).copied().unwrap_or(self.src.len());
        self.src[start..end].trim_end_matches(['\n', '\r'])
    }

    /// The byte offset where a 1-based line starts.
    pub fn line_start(&self, line: u32) -> usize {
        self.starts
            .get((line.max(1) - 1) as usize)
            .copied()
            .unwrap_or(self.src.len())
    }

    pub fn diag(&self, file: &str, severity: Severity, pos: usize, message: String) -> Diagnostic {
        let (line, col) = self.line_col(pos);
        Diagnostic {
            severity,
            file: file.to_string(),
            line,
            col,
            message,
            source_line: self.line_text(line).to_string(),
        }
    }

    pub fn error(&self, file: &str, pos: usize, message: String) -> Diagnostic {
        self.diag(file, Severity::Error, pos, message)
    }

    pub fn warning(&self, file: &str, pos: usize, message: String) -> Diagnostic {
        self.diag(file, Severity::Warning, pos, message)
    }
}
