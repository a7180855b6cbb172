//! Stable diagnostic codes: every error and warning of the parser and the
//! checker carries one, so that scripts (`check --format json`), editors and
//! the documentation can name a finding without matching its wording, which
//! may improve. `docs/diagnostics.md` lists every code with an example; a
//! test keeps the two in step. A code is never reused for another meaning.
//!
//! Ranges: `E0xx` syntax and limits, `E1xx` names, `E2xx` types, `E3xx`
//! values, `E4xx` rule tests, `W0xx` warnings.

use serde::{Serialize, Serializer};
use std::fmt;

macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident = $code:literal, $summary:literal;)*) => {
        /// A diagnostic's stable code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $($(#[$doc])* $name,)*
        }

        impl Code {
            /// Every code, in order.
            pub const ALL: &'static [Code] = &[$(Code::$name,)*];

            /// The code as written: `E101`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$name => $code,)*
                }
            }

            /// What the code means, in one line.
            pub fn summary(self) -> &'static str {
                match self {
                    $(Code::$name => $summary,)*
                }
            }
        }
    };
}

codes! {
    /// The text does not follow the grammar (pest's error, in words).
    Syntax = "E001", "the text does not follow the grammar";
    /// Brackets or operators nest deeper than the parser allows.
    TooDeep = "E002", "an expression or a condition nests too deep";
    /// A number, duration or count does not fit.
    TooLarge = "E003", "a number, duration or count is too large";
    /// A setting or label is given twice.
    SetTwice = "E004", "a setting or a label is given twice";
    /// A block lacks a setting it needs.
    MissingSetting = "E005", "a block lacks a setting it needs";
    /// A rule file that cannot be read.
    Unreadable = "E006", "a rule file that cannot be read";
    /// A function or aggregation that does not exist.
    UnknownFunction = "E101", "unknown function or aggregation";
    /// `on` or `expect` names an alert that is not defined.
    UnknownAlert = "E102", "unknown alert";
    /// Two rules or constants share a name.
    DuplicateName = "E103", "a name is defined twice";
    /// A template or `where` uses a label the expression cannot carry.
    UnknownLabel = "E104", "a label that the alert's series do not carry";
    /// `labels` sets a label the alert sets itself.
    ReservedLabel = "E105", "a label the alert sets itself";
    /// `suppress A while A`, or suppressions that go round (A while B, B while A).
    SuppressCycle = "E106", "an alert suppressed by itself, directly or in a cycle";
    /// A range where an instant value is needed.
    RangeNotInstant = "E201", "a range where an instant value is needed";
    /// An instant value, number or string where a range is needed.
    InstantNotRange = "E202", "an instant value where a range is needed";
    /// A function or aggregation called with the wrong number of arguments.
    ArgumentCount = "E203", "the wrong number of arguments";
    /// An argument of the wrong type: a range, series or string for a number.
    ArgumentType = "E204", "an argument of the wrong type";
    /// An operator or condition that needs series got a number or a string.
    NeedsSeries = "E205", "series are needed, not a number or a string";
    /// A comparison of two numbers without `bool`, or `bool` elsewhere.
    NeedsBool = "E206", "`bool` is missing or misplaced";
    /// `by`/`without` on a function whose meaning is per series.
    CannotPool = "E207", "a function that cannot pool series with `by`";
    /// A string where it cannot be used.
    StringMisuse = "E208", "a string where it cannot be used";
    /// `resolve when` that is not a comparison (or a comparison with `bool`).
    NotComparison = "E209", "a `resolve when` that is not a comparison";
    /// A range, period or interval of zero or less.
    NotPositive = "E301", "a range, period or interval that is not longer than 0";
    /// A regular expression that does not compile.
    BadRegex = "E302", "a regular expression that does not compile";
    /// A number outside what its place allows (a quantile, a count).
    OutOfBounds = "E303", "a number outside the bounds its place allows";
    /// An evaluation step, `for` or test time the evaluation cannot honour.
    BadStep = "E304", "a step, `for` or test time the evaluation cannot honour";
    /// A `let` constant that cannot be computed.
    BadConstant = "E305", "a constant that cannot be computed";
    /// A maintenance window that does not parse.
    BadWindow = "E306", "a maintenance window that does not parse";
    /// A template or action that is not well formed or not safe.
    BadAction = "E307", "a template or an action that is not well formed or not safe";
    /// `approve within D by ""`: nobody to approve.
    NoApprover = "E308", "an `approve` that names no one";
    /// A test series that is not written as a test series is.
    BadTestSeries = "E401", "a test series that is not well formed";
    /// An expectation that cannot hold: a state for a value or the reverse.
    BadExpectation = "E402", "an expectation of the wrong kind";
    /// An alert on a noisy function without `for`.
    NoisyWithoutFor = "W001", "an alert on a noisy function without `for`";
    /// A remediation without `cooldown`.
    NoCooldown = "W002", "a remediation without `cooldown`";
    /// A bare name read as a metric selector, one edit away from a `let`
    /// constant of its file.
    NearConstant = "W003", "a metric name one edit away from a constant";
    /// A selector whose metric no stored series has (`check --store`, `query`).
    UnknownMetric = "W004", "a metric that no series in the store has";
    /// A label that no stored series of its metrics carries.
    UnknownStoreLabel = "W005", "a label that no series in the store carries";
    /// A function that does not suit the metric's type in the store.
    TypeMismatch = "W006", "a function that does not suit the metric's type";
    /// `resolve when` whose series cannot have the labels of the alert's.
    ResolveCannotMatch = "W007", "a `resolve when` whose series cannot match the alert's";
    /// `breaker` in a block without `escalate`, through which it pages.
    BreakerWithoutEscalate = "W008", "a `breaker` with no `escalate` to page through";
    /// `concurrency N per LABEL` or `suppress ... on (LABEL)` with a label
    /// that the alerts named do not carry.
    LabelNotCarried = "W009", "a `per` or `on` label that the alerts named do not carry";
}

impl Code {
    /// Warnings start with `W`; everything else is an error.
    pub fn is_warning(self) -> bool {
        self.as_str().starts_with('W')
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Code;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_well_formed() {
        let mut seen = HashSet::new();
        for c in Code::ALL {
            let s = c.as_str();
            assert!(seen.insert(s), "{s} twice");
            assert!(
                s.len() == 4
                    && (s.starts_with('E') || s.starts_with('W'))
                    && s[1..].chars().all(|d| d.is_ascii_digit()),
                "{s}"
            );
        }
    }
}
