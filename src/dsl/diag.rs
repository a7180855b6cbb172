//! Diagnostics: what went wrong, where, rendered like rustc's, each with its
//! stable [`Code`].

use super::ast::Span;
pub use super::codes::Code;
use serde::Serialize;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding of the parser or the checker. `line` and `col` are 1-based;
/// `col` counts characters, and `width` how many the caret underlines (the
/// span, clipped to its first line). `source_line` is the text of that line.
/// `notes` say more about the finding; `help` says what to do about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    pub file: String,
    pub line: u32,
    pub col: u32,
    pub width: u32,
    pub message: String,
    pub source_line: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// With a `help:` line.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// With a `note:` line.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    /// ```text
    /// error[E101]: unknown function `p96`
    ///   --> rules/x.rules:12:9
    ///    |
    /// 12 |   when p96(x[5m]) > 1
    ///    |        ^^^
    ///    = help: did you mean `p95`?
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let num = self.line.to_string();
        let pad = " ".repeat(num.len());
        writeln!(f, "{label}[{}]: {}", self.code, self.message)?;
        writeln!(f, "{pad}--> {}:{}:{}", self.file, self.line, self.col)?;
        writeln!(f, "{pad} |")?;
        writeln!(f, "{num} | {}", self.source_line)?;
        let caret: String = self
            .source_line
            .chars()
            .take(self.col.saturating_sub(1) as usize)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        writeln!(
            f,
            "{pad} | {caret}{}",
            "^".repeat(self.width.max(1) as usize)
        )?;
        for n in &self.notes {
            writeln!(f, "{pad} = note: {n}")?;
        }
        if let Some(h) = &self.help {
            writeln!(f, "{pad} = help: {h}")?;
        }
        Ok(())
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

    /// A finding with `code` over the bytes `start..end` (the caret
    /// underlines them on the first line; at least one character).
    pub fn diag(
        &self,
        file: &str,
        code: Code,
        start: usize,
        end: usize,
        message: String,
    ) -> Diagnostic {
        let (line, col) = self.line_col(start);
        let source_line = self.line_text(line);
        let line_end = self.line_start(line) + source_line.len();
        let end = end.min(line_end).max(start);
        let width = self
            .src
            .get(start.min(self.src.len())..end.min(self.src.len()))
            .map_or(1, |t| t.chars().count().max(1)) as u32;
        Diagnostic {
            code,
            severity: if code.is_warning() {
                Severity::Warning
            } else {
                Severity::Error
            },
            file: file.to_string(),
            line,
            col,
            width,
            message,
            source_line: source_line.to_string(),
            notes: Vec::new(),
            help: None,
        }
    }

    /// A finding at one character.
    pub fn at(&self, file: &str, code: Code, pos: usize, message: String) -> Diagnostic {
        self.diag(file, code, pos, pos, message)
    }
}
