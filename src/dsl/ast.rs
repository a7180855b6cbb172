//! The typed syntax tree of a rules file.
//!
//! Every node carries a [`Span`] for diagnostics. Durations are stored as
//! milliseconds (`i64`) everywhere, together with the text the author wrote so
//! that the formatter can print them back unchanged; in arithmetic a duration
//! means seconds (`Dur::seconds`). Numbers keep their meaning as f64
//! (percent as a fraction, sizes in bytes) and their text as written.
//!
//! [`Expr::sexpr`] and [`RuleFile::sexpr`] render a tree without spans or
//! source text, as S-expressions: tests compare trees with it, and the
//! formatter's round-trip check ("formats to the same tree") uses it.

use super::functions::{AggDef, FuncDef};
use crate::model::{MatchOp, Matcher};
use crate::time::format_duration_ms;
use std::fmt::Write as _;

/// Where a node sits in its file: byte offsets and the 1-based line and
/// column (in characters) of `start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub line: u32,
    pub col: u32,
}

/// A name as written (alert, label, constant, function, metric).
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A duration: milliseconds, and the text as written (`1h30m`).
#[derive(Clone, Debug, PartialEq)]
pub struct Dur {
    pub ms: i64,
    pub text: String,
    pub span: Span,
}

impl Dur {
    /// The duration in seconds, as arithmetic uses it.
    pub fn seconds(&self) -> f64 {
        self.ms as f64 / 1000.0
    }
}

/// A string literal, unescaped.
#[derive(Clone, Debug, PartialEq)]
pub struct StrLit {
    pub value: String,
    pub span: Span,
}

/// How a number literal was written; its `value` is already converted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumberKind {
    /// `3`, `0.25`, `1e-3`, `-2`, `Inf`, `NaN`
    Plain,
    /// `99.9%`: the value is the fraction 0.999
    Percent,
    /// `512KiB`, `10MB`: the value is in bytes
    Size,
    /// `5m` where a test expects a number: the value is in seconds
    Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Number {
    pub value: f64,
    pub kind: NumberKind,
    pub text: String,
    pub span: Span,
}

/// A label matcher as written; [`LabelMatcher::compile`] makes the model's
/// [`Matcher`] (the checker has already reported regexes that do not compile).
#[derive(Clone, Debug, PartialEq)]
pub struct LabelMatcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    pub span: Span,
}

impl LabelMatcher {
    pub fn compile(&self) -> Result<Matcher, regex::Error> {
        Matcher::new(self.name.clone(), self.op, self.value.clone())
    }
}

/// `metric{matchers}[range] offset D`. With `range` it is a range, without an
/// instant selector.
#[derive(Clone, Debug, PartialEq)]
pub struct Selector {
    pub metric: Ident,
    pub matchers: Vec<LabelMatcher>,
    pub range: Option<Dur>,
    pub offset: Option<Dur>,
    pub span: Span,
}

impl Selector {
    /// The compiled matchers, the metric name excluded.
    pub fn compile_matchers(&self) -> Result<Vec<Matcher>, regex::Error> {
        self.matchers.iter().map(LabelMatcher::compile).collect()
    }
}

/// `by (labels)` or `without (labels)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Grouping {
    pub without: bool,
    pub labels: Vec<Ident>,
    pub span: Span,
}

/// A function over time: `p95(x[5m]) by (server)`, `quantile(0.9, x[5m])`,
/// `time_to(disk.free_bytes[6h], 0)`. `pool` pools the samples of the series
/// that share the `by` labels (or all but the `without` ones) before the
/// function runs; see [`super::functions`].
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub func: Ident,
    /// The function's definition, resolved by the parser; `None` for an
    /// unknown name, which the checker reports (a checked rule has none).
    pub def: Option<&'static FuncDef>,
    pub args: Vec<Expr>,
    pub pool: Option<Grouping>,
    pub span: Span,
}

/// An aggregation across series: `max by (server) (x)`, `topk(3, x)`.
/// `param` is the first argument of `quantile`, `topk` and `bottomk`.
#[derive(Clone, Debug, PartialEq)]
pub struct Aggregate {
    pub op: Ident,
    /// The aggregation's definition (the parser accepts known names only).
    pub def: &'static AggDef,
    pub param: Option<Box<Expr>>,
    pub arg: Box<Expr>,
    pub grouping: Option<Grouping>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    Pow,
    Mul,
    Div,
    Mod,
    Add,
    Sub,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Unless,
    Or,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Pow => "^",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Gt => ">",
            BinOp::Lt => "<",
            BinOp::Ge => ">=",
            BinOp::Le => "<=",
            BinOp::And => "and",
            BinOp::Unless => "unless",
            BinOp::Or => "or",
        }
    }

    pub fn from_symbol(s: &str) -> Option<BinOp> {
        Some(match s {
            "^" => BinOp::Pow,
            "*" => BinOp::Mul,
            "/" => BinOp::Div,
            "%" => BinOp::Mod,
            "+" => BinOp::Add,
            "-" => BinOp::Sub,
            "==" => BinOp::Eq,
            "!=" => BinOp::Ne,
            ">" => BinOp::Gt,
            "<" => BinOp::Lt,
            ">=" => BinOp::Ge,
            "<=" => BinOp::Le,
            "and" => BinOp::And,
            "unless" => BinOp::Unless,
            "or" => BinOp::Or,
            _ => return None,
        })
    }

    /// Binding strength, higher binds tighter: `^` 6, `* / %` 5, `+ -` 4,
    /// comparisons 3, `and unless` 2, `or` 1. Unary minus sits between `^`
    /// and `*` (`-a^b` is `-(a^b)`, `-a*b` is `(-a)*b`), as in PromQL.
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Pow => 6,
            BinOp::Mul | BinOp::Div | BinOp::Mod => 5,
            BinOp::Add | BinOp::Sub => 4,
            BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Lt | BinOp::Ge | BinOp::Le => 3,
            BinOp::And | BinOp::Unless => 2,
            BinOp::Or => 1,
        }
    }

    pub fn is_comparison(self) -> bool {
        self.precedence() == 3
    }

    pub fn is_set(self) -> bool {
        matches!(self, BinOp::And | BinOp::Unless | BinOp::Or)
    }

    /// An arithmetic operator's result (NaN for the others).
    #[inline]
    pub fn arith(self, a: f64, b: f64) -> f64 {
        match self {
            BinOp::Add => a + b,
            BinOp::Sub => a - b,
            BinOp::Mul => a * b,
            BinOp::Div => a / b,
            BinOp::Mod => a % b,
            BinOp::Pow => a.powf(b),
            _ => f64::NAN,
        }
    }

    /// Whether a comparison holds (false for the other operators).
    #[inline]
    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            BinOp::Eq => a == b,
            BinOp::Ne => a != b,
            BinOp::Gt => a > b,
            BinOp::Lt => a < b,
            BinOp::Ge => a >= b,
            BinOp::Le => a <= b,
            _ => false,
        }
    }

    /// The operator between two numbers, as PromQL computes it: a
    /// comparison gives 1 or 0 (`bool`, which two numbers need); `None` for
    /// `and`/`or`/`unless`, which need series.
    pub fn on_numbers(self, a: f64, b: f64) -> Option<f64> {
        if self.is_set() {
            None
        } else if self.is_comparison() {
            Some(if self.holds(a, b) { 1.0 } else { 0.0 })
        } else {
            Some(self.arith(a, b))
        }
    }
}

/// `lhs op [bool] [on (labels)] rhs`.
#[derive(Clone, Debug, PartialEq)]
pub struct Binary {
    pub op: BinOp,
    pub return_bool: bool,
    pub on: Option<Grouping>,
    pub lhs: Box<Expr>,
    pub rhs: Box<Expr>,
    pub span: Span,
}

/// An expression. Bare names that a `let` defines are [`Expr::Const`]; all
/// other bare names are selectors.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Number(Number),
    /// A duration literal; seconds in arithmetic.
    Duration(Dur),
    Str(StrLit),
    Const(Ident),
    Selector(Selector),
    Call(Call),
    Aggregate(Aggregate),
    Binary(Binary),
    /// Unary minus.
    Neg(Box<Expr>, Span),
    /// Parentheses, kept so that the formatter prints them back.
    Paren(Box<Expr>, Span),
}

impl Expr {
    pub fn span(&self) -> Span {
        match self {
            Expr::Number(n) => n.span,
            Expr::Duration(d) => d.span,
            Expr::Str(s) => s.span,
            Expr::Const(i) => i.span,
            Expr::Selector(s) => s.span,
            Expr::Call(c) => c.span,
            Expr::Aggregate(a) => a.span,
            Expr::Binary(b) => b.span,
            Expr::Neg(_, s) | Expr::Paren(_, s) => *s,
        }
    }

    /// The expression without enclosing parentheses.
    pub fn unparen(&self) -> &Expr {
        let mut e = self;
        while let Expr::Paren(inner, _) = e {
            e = inner;
        }
        e
    }

    /// Direct sub-expressions, in source order.
    pub fn children(&self) -> Vec<&Expr> {
        match self {
            Expr::Number(_)
            | Expr::Duration(_)
            | Expr::Str(_)
            | Expr::Const(_)
            | Expr::Selector(_) => vec![],
            Expr::Call(c) => c.args.iter().collect(),
            Expr::Aggregate(a) => a.param.iter().map(|p| &**p).chain([&*a.arg]).collect(),
            Expr::Binary(b) => vec![&b.lhs, &b.rhs],
            Expr::Neg(e, _) | Expr::Paren(e, _) => vec![e],
        }
    }

    /// Calls `f` on this expression and every sub-expression, parents first.
    pub fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a Expr)) {
        f(self);
        for c in self.children() {
            c.walk(f);
        }
    }

    /// The S-expression of this tree: no spans, literals by value.
    pub fn sexpr(&self) -> String {
        let mut out = String::new();
        self.write_sexpr(&mut out);
        out
    }

    fn write_sexpr(&self, out: &mut String) {
        match self {
            Expr::Number(n) => write_num(out, n.value),
            Expr::Duration(d) => out.push_str(&dur_text(d.ms)),
            Expr::Str(s) => {
                let _ = write!(out, "{:?}", s.value);
            }
            Expr::Const(i) => {
                let _ = write!(out, "(const {})", i.name);
            }
            Expr::Selector(s) => {
                let _ = write!(out, "(sel {}", s.metric.name);
                for m in &s.matchers {
                    let _ = write!(out, " ({} {} {:?})", m.op.symbol(), m.name, m.value);
                }
                if let Some(r) = &s.range {
                    let _ = write!(out, " [{}]", dur_text(r.ms));
                }
                if let Some(o) = &s.offset {
                    let _ = write!(out, " (offset {})", dur_text(o.ms));
                }
                out.push(')');
            }
            Expr::Call(c) => {
                let _ = write!(out, "(call {}", c.func.name);
                for a in &c.args {
                    out.push(' ');
                    a.write_sexpr(out);
                }
                if let Some(g) = &c.pool {
                    out.push(' ');
                    write_grouping(out, g);
                }
                out.push(')');
            }
            Expr::Aggregate(a) => {
                let _ = write!(out, "(agg {}", a.op.name);
                if let Some(g) = &a.grouping {
                    out.push(' ');
                    write_grouping(out, g);
                }
                if let Some(p) = &a.param {
                    out.push(' ');
                    p.write_sexpr(out);
                }
                out.push(' ');
                a.arg.write_sexpr(out);
                out.push(')');
            }
            Expr::Binary(b) => {
                let _ = write!(out, "({}", b.op.symbol());
                if b.return_bool {
                    out.push_str(" bool");
                }
                if let Some(on) = &b.on {
                    out.push_str(" (on");
                    for l in &on.labels {
                        out.push(' ');
                        out.push_str(&l.name);
                    }
                    out.push(')');
                }
                out.push(' ');
                b.lhs.write_sexpr(out);
                out.push(' ');
                b.rhs.write_sexpr(out);
                out.push(')');
            }
            Expr::Neg(e, _) => {
                out.push_str("(neg ");
                e.write_sexpr(out);
                out.push(')');
            }
            Expr::Paren(e, _) => {
                out.push_str("(paren ");
                e.write_sexpr(out);
                out.push(')');
            }
        }
    }
}

fn write_num(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}

fn dur_text(ms: i64) -> String {
    format_duration_ms(ms)
}

fn write_grouping(out: &mut String, g: &Grouping) {
    out.push_str(if g.without { "(without" } else { "(by" });
    for l in &g.labels {
        out.push(' ');
        out.push_str(&l.name);
    }
    out.push(')');
}

/// A filter in a template: `{{value | duration}}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    Duration,
    Percent,
    Bytes,
}

impl Filter {
    pub fn name(self) -> &'static str {
        match self {
            Filter::Duration => "duration",
            Filter::Percent => "percent",
            Filter::Bytes => "bytes",
        }
    }
}

/// One piece of a template.
#[derive(Clone, Debug, PartialEq)]
pub enum TemplatePart {
    Text(String),
    /// `{{name}}` or `{{name | filter}}`; `span` covers the braces in the source.
    Var {
        name: String,
        filter: Option<Filter>,
        span: Span,
    },
}

/// A string with `{{label}}` placeholders (summary, labels, actions).
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    /// The unescaped string as written.
    pub raw: String,
    pub parts: Vec<TemplatePart>,
    pub span: Span,
}

impl Template {
    /// The names the template refers to, with their spans.
    pub fn vars(&self) -> impl Iterator<Item = (&str, Span)> {
        self.parts.iter().filter_map(|p| match p {
            TemplatePart::Var { name, span, .. } => Some((name.as_str(), *span)),
            TemplatePart::Text(_) => None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertSeverity {
    Critical,
    Warning,
    Info,
}

impl AlertSeverity {
    pub fn name(self) -> &'static str {
        match self {
            AlertSeverity::Critical => "critical",
            AlertSeverity::Warning => "warning",
            AlertSeverity::Info => "info",
        }
    }
}

/// `labels { team = "platform" }`: names and templated values.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelPair {
    pub name: Ident,
    pub value: Template,
}

/// The layout of a block: which settings it has, in source order, each with
/// the span from its key to the end of its value. The formatter keeps this
/// order; the engine does not need it.
pub type Layout = Vec<(&'static str, Span)>;

#[derive(Clone, Debug, PartialEq)]
pub struct Let {
    pub name: Ident,
    pub value: Expr,
    pub span: Span,
}

/// `evaluate every 30s`: the evaluation step of the file (default 1m).
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluate {
    pub every: Dur,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub name: Ident,
    pub when: Expr,
    /// Pending this long before firing; `None` is 0.
    pub for_: Option<Dur>,
    /// Stays firing this long after the condition clears; `None` is 0.
    pub keep_firing: Option<Dur>,
    /// `None` means [`AlertSeverity::Warning`].
    pub severity: Option<(AlertSeverity, Span)>,
    pub labels: Vec<LabelPair>,
    pub summary: Option<Template>,
    pub runbook: Option<Template>,
    /// `resolve when EXPR` (hysteresis): once firing, the alert stays firing
    /// until this holds for its series, even when `when` no longer does.
    pub resolve_when: Option<Expr>,
    pub layout: Layout,
    pub span: Span,
}

impl Alert {
    pub fn severity(&self) -> AlertSeverity {
        self.severity.map(|s| s.0).unwrap_or(AlertSeverity::Warning)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub name: Ident,
    pub expr: Expr,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionKind {
    /// Runs a command without a shell: the template is split into arguments
    /// as a shell splits words, then filled (see `template::exec_argv`).
    Exec,
    /// Writes to the audit log and the report.
    Notify,
    /// POSTs the alert as JSON.
    Webhook,
}

impl ActionKind {
    pub fn name(self) -> &'static str {
        match self {
            ActionKind::Exec => "exec",
            ActionKind::Notify => "notify",
            ActionKind::Webhook => "webhook",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Action {
    pub kind: ActionKind,
    pub target: Template,
    pub span: Span,
}

/// A comparison in a `where` filter over an alert's labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhereOp {
    Eq,
    Ne,
    Regex,
    NotRegex,
}

impl WhereOp {
    pub fn symbol(self) -> &'static str {
        match self {
            WhereOp::Eq => "==",
            WhereOp::Ne => "!=",
            WhereOp::Regex => "=~",
            WhereOp::NotRegex => "!~",
        }
    }

    /// The label matcher that tests the same thing (regexes anchored).
    pub fn match_op(self) -> MatchOp {
        match self {
            WhereOp::Eq => MatchOp::Equal,
            WhereOp::Ne => MatchOp::NotEqual,
            WhereOp::Regex => MatchOp::Regex,
            WhereOp::NotRegex => MatchOp::NotRegex,
        }
    }
}

/// `where severity == "critical" and server =~ "edge-.*"`: `and` binds
/// tighter than `or`; parentheses group.
#[derive(Clone, Debug, PartialEq)]
pub enum Where {
    Cond {
        label: Ident,
        op: WhereOp,
        value: StrLit,
    },
    And(Box<Where>, Box<Where>),
    Or(Box<Where>, Box<Where>),
    Paren(Box<Where>),
}

impl Where {
    pub fn sexpr(&self) -> String {
        match self {
            Where::Cond { label, op, value } => {
                format!("({} {} {:?})", op.symbol(), label.name, value.value)
            }
            Where::And(a, b) => format!("(and {} {})", a.sexpr(), b.sexpr()),
            Where::Or(a, b) => format!("(or {} {})", a.sexpr(), b.sexpr()),
            Where::Paren(a) => format!("(paren {})", a.sexpr()),
        }
    }

    /// Every condition, in source order.
    pub fn conds(&self) -> Vec<(&Ident, WhereOp, &StrLit)> {
        match self {
            Where::Cond { label, op, value } => vec![(label, *op, value)],
            Where::And(a, b) | Where::Or(a, b) => {
                let mut v = a.conds();
                v.extend(b.conds());
                v
            }
            Where::Paren(a) => a.conds(),
        }
    }
}

/// `max N per D`: at most N actions per series within any D.
#[derive(Clone, Debug, PartialEq)]
pub struct MaxRate {
    pub count: i64,
    pub per: Dur,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Remediate {
    pub name: Ident,
    /// The alerts it acts on.
    pub on: Vec<Ident>,
    pub filter: Option<Where>,
    pub action: Action,
    pub timeout: Option<Dur>,
    pub cooldown: Option<Dur>,
    pub max: Option<MaxRate>,
    /// `verify within D`: the alert must resolve within D of the action.
    pub verify: Option<Dur>,
    pub escalate: Option<Action>,
    /// `concurrency N` (the whole block) and `concurrency N per LABEL` (per
    /// value of the label): how many of its actions may run at once.
    pub concurrency: Vec<Concurrency>,
    /// `breaker N per D`: fleet-wide circuit breaker; after N actions of the
    /// block within D it stops acting and pages (the escalation).
    pub breaker: Option<MaxRate>,
    /// `guard EXPR`: checked when an action is due; it runs only if the
    /// expression has a result then.
    pub guard: Option<Expr>,
    /// `approve within D by "who"`: the action waits for `mcpops approve`.
    pub approve: Option<Approve>,
    /// `mode dry-run | auto`; `None` is auto (watch's `--mode` overrides).
    pub mode: Option<(Mode, Span)>,
    pub layout: Layout,
    pub span: Span,
}

/// `concurrency N` or `concurrency N per LABEL`.
#[derive(Clone, Debug, PartialEq)]
pub struct Concurrency {
    pub limit: i64,
    /// `None`: the limit holds for the whole block.
    pub per: Option<Ident>,
    pub span: Span,
}

/// `approve within 15m by "oncall"`.
#[derive(Clone, Debug, PartialEq)]
pub struct Approve {
    pub within: Dur,
    pub by: StrLit,
    pub span: Span,
}

/// Whether a block's actions run for real in `watch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    DryRun,
    Auto,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::DryRun => "dry-run",
            Mode::Auto => "auto",
        }
    }
}

/// `suppress ALERT while OTHER [on (label, ...)]`: inhibition. While OTHER
/// fires, ALERT's instances that share its labels (the listed ones, else
/// every label name both carry except `alertname` and `severity`) are
/// suppressed: not remediated, not sent to Alertmanager.
#[derive(Clone, Debug, PartialEq)]
pub struct Suppress {
    pub target: Ident,
    pub while_: Ident,
    pub on: Option<Vec<Ident>>,
    pub span: Span,
}

/// A weekly slot in which maintenance may run: `"Sat 02:00-04:00 UTC"`.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowSpec {
    /// The string as written.
    pub text: StrLit,
    /// The parsed window; `None` when it does not parse (the checker says why).
    pub window: Option<super::window::Window>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Maintenance {
    pub name: Ident,
    pub when: Expr,
    pub window: WindowSpec,
    pub action: Action,
    pub timeout: Option<Dur>,
    pub cooldown: Option<Dur>,
    pub max: Option<MaxRate>,
    pub guard: Option<Expr>,
    pub mode: Option<(Mode, Span)>,
    pub layout: Layout,
    pub span: Span,
}

/// `series SELECTOR = "0.2x9 1.5x30"` in a test.
#[derive(Clone, Debug, PartialEq)]
pub struct TestSeries {
    pub selector: Selector,
    pub values: StrLit,
    /// The parsed notation; `None` when it does not parse (the checker says why).
    pub points: Option<Vec<super::series::Run>>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExpectTarget {
    /// `value(EXPR)`
    Value(Expr),
    /// An alert (or remediation, or maintenance) name.
    Alert(Ident),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertState {
    Firing,
    Pending,
    /// Fired before and no longer firing.
    Resolved,
}

impl AlertState {
    /// The word a test writes: `firing`, `pending`, `resolved`.
    pub fn word(self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Pending => "pending",
            AlertState::Resolved => "resolved",
        }
    }
}

impl ActionState {
    /// The word a test writes: `run`, `escalated`, `suppressed`,
    /// `awaiting_approval`.
    pub fn word(self) -> &'static str {
        match self {
            ActionState::Run => "run",
            ActionState::Escalated => "escalated",
            ActionState::Suppressed => "suppressed",
            ActionState::AwaitingApproval => "awaiting_approval",
        }
    }
}

/// `expect REMEDIATE at T == run`: what a remediation or maintenance block
/// did at a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionState {
    /// Its action ran (or would have, in a dry run).
    Run,
    /// Its escalation ran.
    Escalated,
    /// It was due and held back (cooldown, max, concurrency, breaker, guard,
    /// inhibition).
    Suppressed,
    /// It waits for `mcpops approve`.
    AwaitingApproval,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExpectResult {
    /// `== none`: no result, or the alert is not active.
    None,
    /// `== firing`, `== pending`, `== resolved`
    State(AlertState),
    /// `== run`, `== escalated`, `== suppressed`, `== awaiting_approval`
    Action(ActionState),
    /// `== 1.5`
    Value(Number),
}

/// `expect TARGET at T == RESULT { labels }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Expect {
    pub target: ExpectTarget,
    /// Time since the start of the test series.
    pub at: Dur,
    pub result: ExpectResult,
    /// Labels the result must carry (`{ server="a" }`), possibly empty.
    pub labels: Vec<(Ident, StrLit)>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TestBlock {
    pub name: StrLit,
    /// The step of the series notation; `None` is 1m.
    pub interval: Option<Dur>,
    pub series: Vec<TestSeries>,
    pub expects: Vec<Expect>,
    pub span: Span,
}

/// One top-level item of a file.
// Items are built once per file and a file holds tens of them, so the size
// of the largest (a remediation with its safety settings) costs nothing
// that matters; boxing it would change every match on items in every room.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Let(Let),
    Evaluate(Evaluate),
    Alert(Alert),
    Record(Record),
    Remediate(Remediate),
    Maintenance(Maintenance),
    Suppress(Suppress),
    Test(TestBlock),
}

impl Item {
    pub fn span(&self) -> Span {
        match self {
            Item::Let(x) => x.span,
            Item::Evaluate(x) => x.span,
            Item::Alert(x) => x.span,
            Item::Record(x) => x.span,
            Item::Remediate(x) => x.span,
            Item::Maintenance(x) => x.span,
            Item::Suppress(x) => x.span,
            Item::Test(x) => x.span,
        }
    }

    /// The keyword that starts the item.
    pub fn keyword(&self) -> &'static str {
        match self {
            Item::Let(_) => "let",
            Item::Evaluate(_) => "evaluate",
            Item::Alert(_) => "alert",
            Item::Record(_) => "record",
            Item::Remediate(_) => "remediate",
            Item::Maintenance(_) => "maintenance",
            Item::Suppress(_) => "suppress",
            Item::Test(_) => "test",
        }
    }

    pub fn sexpr(&self) -> String {
        let mut o = String::new();
        match self {
            Item::Let(l) => {
                let _ = write!(o, "(let {} {})", l.name.name, l.value.sexpr());
            }
            Item::Evaluate(e) => {
                let _ = write!(o, "(evaluate {})", dur_text(e.every.ms));
            }
            Item::Record(r) => {
                let _ = write!(o, "(record {} {})", r.name.name, r.expr.sexpr());
            }
            Item::Alert(a) => {
                let _ = write!(o, "(alert {} (when {})", a.name.name, a.when.sexpr());
                if let Some(x) = &a.resolve_when {
                    let _ = write!(o, " (resolve_when {})", x.sexpr());
                }
                if let Some(d) = &a.for_ {
                    let _ = write!(o, " (for {})", dur_text(d.ms));
                }
                if let Some(d) = &a.keep_firing {
                    let _ = write!(o, " (keep_firing {})", dur_text(d.ms));
                }
                if let Some((s, _)) = &a.severity {
                    let _ = write!(o, " (severity {})", s.name());
                }
                if !a.labels.is_empty() {
                    o.push_str(" (labels");
                    for l in &a.labels {
                        let _ = write!(o, " ({} {:?})", l.name.name, l.value.raw);
                    }
                    o.push(')');
                }
                if let Some(t) = &a.summary {
                    let _ = write!(o, " (summary {:?})", t.raw);
                }
                if let Some(t) = &a.runbook {
                    let _ = write!(o, " (runbook {:?})", t.raw);
                }
                o.push(')');
            }
            Item::Remediate(r) => {
                let _ = write!(o, "(remediate {} (on", r.name.name);
                for a in &r.on {
                    let _ = write!(o, " {}", a.name);
                }
                o.push(')');
                if let Some(w) = &r.filter {
                    let _ = write!(o, " (where {})", w.sexpr());
                }
                let _ = write!(o, " (do {})", action_sexpr(&r.action));
                write_opt_dur(&mut o, "timeout", &r.timeout);
                write_opt_dur(&mut o, "cooldown", &r.cooldown);
                if let Some(m) = &r.max {
                    let _ = write!(o, " (max {} {})", m.count, dur_text(m.per.ms));
                }
                write_opt_dur(&mut o, "verify", &r.verify);
                if let Some(a) = &r.escalate {
                    let _ = write!(o, " (escalate {})", action_sexpr(a));
                }
                for c in &r.concurrency {
                    let _ = write!(o, " (concurrency {}", c.limit);
                    if let Some(l) = &c.per {
                        let _ = write!(o, " (per {})", l.name);
                    }
                    o.push(')');
                }
                if let Some(b) = &r.breaker {
                    let _ = write!(o, " (breaker {} {})", b.count, dur_text(b.per.ms));
                }
                write_opt_guard(&mut o, &r.guard);
                if let Some(a) = &r.approve {
                    let _ = write!(o, " (approve {} {:?})", dur_text(a.within.ms), a.by.value);
                }
                write_opt_mode(&mut o, &r.mode);
                o.push(')');
            }
            Item::Maintenance(m) => {
                let _ = write!(
                    o,
                    "(maintenance {} (when {}) (window {:?}) (do {})",
                    m.name.name,
                    m.when.sexpr(),
                    m.window.text.value,
                    action_sexpr(&m.action)
                );
                write_opt_dur(&mut o, "timeout", &m.timeout);
                write_opt_dur(&mut o, "cooldown", &m.cooldown);
                if let Some(x) = &m.max {
                    let _ = write!(o, " (max {} {})", x.count, dur_text(x.per.ms));
                }
                write_opt_guard(&mut o, &m.guard);
                write_opt_mode(&mut o, &m.mode);
                o.push(')');
            }
            Item::Suppress(x) => {
                let _ = write!(o, "(suppress {} {}", x.target.name, x.while_.name);
                if let Some(on) = &x.on {
                    o.push_str(" (on");
                    for l in on {
                        let _ = write!(o, " {}", l.name);
                    }
                    o.push(')');
                }
                o.push(')');
            }
            Item::Test(t) => {
                let _ = write!(o, "(test {:?}", t.name.value);
                write_opt_dur(&mut o, "interval", &t.interval);
                for s in &t.series {
                    let _ = write!(
                        o,
                        " (series {} {:?})",
                        Expr::Selector(s.selector.clone()).sexpr(),
                        s.values.value
                    );
                }
                for e in &t.expects {
                    o.push_str(" (expect ");
                    match &e.target {
                        ExpectTarget::Value(x) => {
                            let _ = write!(o, "(value {})", x.sexpr());
                        }
                        ExpectTarget::Alert(a) => o.push_str(&a.name),
                    }
                    let _ = write!(o, " {} ", dur_text(e.at.ms));
                    match &e.result {
                        ExpectResult::None => o.push_str("none"),
                        ExpectResult::State(st) => o.push_str(st.word()),
                        ExpectResult::Action(st) => o.push_str(st.word()),
                        ExpectResult::Value(n) => write_num(&mut o, n.value),
                    }
                    for (k, v) in &e.labels {
                        let _ = write!(o, " ({} {:?})", k.name, v.value);
                    }
                    o.push(')');
                }
                o.push(')');
            }
        }
        o
    }
}

fn write_opt_dur(o: &mut String, key: &str, d: &Option<Dur>) {
    if let Some(d) = d {
        let _ = write!(o, " ({key} {})", dur_text(d.ms));
    }
}

fn write_opt_guard(o: &mut String, g: &Option<Expr>) {
    if let Some(g) = g {
        let _ = write!(o, " (guard {})", g.sexpr());
    }
}

fn write_opt_mode(o: &mut String, m: &Option<(Mode, Span)>) {
    if let Some((m, _)) = m {
        let _ = write!(o, " (mode {})", m.name());
    }
}

fn action_sexpr(a: &Action) -> String {
    format!("{} {:?}", a.kind.name(), a.target.raw)
}

/// A parsed rules file.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct RuleFile {
    /// The file's name as given (used in diagnostics).
    pub name: String,
    pub items: Vec<Item>,
}

impl RuleFile {
    /// The evaluation step in milliseconds: `evaluate every`, else 1m.
    pub fn step_ms(&self) -> i64 {
        self.items
            .iter()
            .find_map(|i| match i {
                Item::Evaluate(e) => Some(e.every.ms),
                _ => None,
            })
            .unwrap_or(super::DEFAULT_STEP_MS)
    }

    pub fn constant(&self, name: &str) -> Option<&Let> {
        self.items.iter().find_map(|i| match i {
            Item::Let(l) if l.name.name == name => Some(l),
            _ => None,
        })
    }

    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.items.iter().filter_map(|i| match i {
            Item::Alert(a) => Some(a),
            _ => None,
        })
    }

    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.items.iter().filter_map(|i| match i {
            Item::Record(r) => Some(r),
            _ => None,
        })
    }

    pub fn remediations(&self) -> impl Iterator<Item = &Remediate> {
        self.items.iter().filter_map(|i| match i {
            Item::Remediate(r) => Some(r),
            _ => None,
        })
    }

    pub fn maintenances(&self) -> impl Iterator<Item = &Maintenance> {
        self.items.iter().filter_map(|i| match i {
            Item::Maintenance(m) => Some(m),
            _ => None,
        })
    }

    pub fn suppressions(&self) -> impl Iterator<Item = &Suppress> {
        self.items.iter().filter_map(|i| match i {
            Item::Suppress(x) => Some(x),
            _ => None,
        })
    }

    pub fn tests(&self) -> impl Iterator<Item = &TestBlock> {
        self.items.iter().filter_map(|i| match i {
            Item::Test(t) => Some(t),
            _ => None,
        })
    }

    /// The whole file as S-expressions, one item per line.
    pub fn sexpr(&self) -> String {
        let mut out = String::new();
        for i in &self.items {
            out.push_str(&i.sexpr());
            out.push('\n');
        }
        out
    }
}
