//! Semantic checks over parsed files: types (instant vs range), functions
//! and their arguments, names and references across the files checked
//! together, template labels, regexes, windows, limits; and the warnings.

use super::ast::*;
use super::constants::{ConstError, ConstValue, Constants};
use super::diag::{Code, Diagnostic, LineIndex};
use super::functions::{
    self, AggKernel, BUCKET_LABEL, HistFunc, InstFunc, Kernel, Noise, Param, Pool, SHORT_WINDOW_MS,
};
use super::parse::{Parsed, unknown_name};
use super::template::ALWAYS;
use super::{series, window};
use crate::model::MatchOp;
use crate::time::format_duration_ms;
use std::collections::{BTreeSet, HashMap, HashSet};

/// The shortest names [`Code::NearConstant`] compares.
const NEAR_CONSTANT_MIN_LEN: usize = 4;

/// What an expression evaluates to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    /// A number: literals, durations (seconds), constants, arithmetic on them.
    Scalar,
    /// An instant vector: one value per series.
    Vector,
    /// A range: samples per series over a window (`x[5m]`).
    Range,
    Str,
    /// Already reported; compatible with everything so errors do not cascade.
    Err,
}

/// The labels an expression's series can carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Labels {
    /// Any label but these (a selector: its series have whatever labels they have).
    AnyBut(BTreeSet<String>),
    /// Only these.
    Only(BTreeSet<String>),
}

impl Labels {
    fn any() -> Self {
        Labels::AnyBut(BTreeSet::new())
    }

    fn none() -> Self {
        Labels::Only(BTreeSet::new())
    }

    pub fn may_have(&self, l: &str) -> bool {
        match self {
            Labels::AnyBut(x) => !x.contains(l),
            Labels::Only(s) => s.contains(l),
        }
    }

    fn only(names: &[Ident]) -> Self {
        Labels::Only(names.iter().map(|i| i.name.clone()).collect())
    }

    fn without(&self, names: &[Ident]) -> Self {
        match self {
            Labels::AnyBut(x) => {
                let mut x = x.clone();
                x.extend(names.iter().map(|i| i.name.clone()));
                Labels::AnyBut(x)
            }
            Labels::Only(s) => {
                let mut s = s.clone();
                for n in names {
                    s.remove(&n.name);
                }
                Labels::Only(s)
            }
        }
    }

    fn intersect(&self, o: &Labels) -> Labels {
        match (self, o) {
            (Labels::AnyBut(a), Labels::AnyBut(b)) => Labels::AnyBut(a.union(b).cloned().collect()),
            (Labels::AnyBut(a), Labels::Only(s)) | (Labels::Only(s), Labels::AnyBut(a)) => {
                Labels::Only(s.difference(a).cloned().collect())
            }
            (Labels::Only(a), Labels::Only(b)) => {
                Labels::Only(a.intersection(b).cloned().collect())
            }
        }
    }

    fn union(&self, o: &Labels) -> Labels {
        match (self, o) {
            (Labels::AnyBut(a), Labels::AnyBut(b)) => {
                Labels::AnyBut(a.intersection(b).cloned().collect())
            }
            (Labels::AnyBut(a), Labels::Only(s)) | (Labels::Only(s), Labels::AnyBut(a)) => {
                Labels::AnyBut(a.difference(s).cloned().collect())
            }
            (Labels::Only(a), Labels::Only(b)) => Labels::Only(a.union(b).cloned().collect()),
        }
    }

    fn with(&self, extra: impl IntoIterator<Item = String>) -> Labels {
        match self {
            Labels::AnyBut(x) => {
                let mut x = x.clone();
                for e in extra {
                    x.remove(&e);
                }
                Labels::AnyBut(x)
            }
            Labels::Only(s) => {
                let mut s = s.clone();
                s.extend(extra);
                Labels::Only(s)
            }
        }
    }
}

#[derive(Clone, Debug)]
struct Typed {
    ty: Ty,
    labels: Labels,
}

impl Typed {
    fn new(ty: Ty, labels: Labels) -> Self {
        Typed { ty, labels }
    }

    fn scalar() -> Self {
        Typed::new(Ty::Scalar, Labels::none())
    }

    fn err() -> Self {
        Typed::new(Ty::Err, Labels::any())
    }
}

/// A name defined by some file, for duplicates and references.
struct Def {
    kind: &'static str,
    file: usize,
    line: u32,
}

/// What the files checked together define.
struct World<'a> {
    /// Alerts, remediations and maintenance share one namespace.
    rules: HashMap<&'a str, Def>,
    alerts: HashMap<&'a str, (&'a Alert, Labels)>,
    /// Names of blocks that failed to parse, by keyword.
    failed: HashSet<(String, String)>,
    names: Vec<&'a str>,
    /// `suppress A while B` of every file, as (A, B), for cycles.
    suppress: Vec<(&'a str, &'a str)>,
}

/// Checks parsed files together (references resolve across them); returns
/// the diagnostics of each file, in file order, sorted by position.
pub(crate) fn check_parsed(files: &[(Parsed, &str)]) -> Vec<Vec<Diagnostic>> {
    let idxs: Vec<LineIndex> = files.iter().map(|(_, src)| LineIndex::new(src)).collect();
    let mut out: Vec<Vec<Diagnostic>> = files.iter().map(|(p, _)| p.diags.clone()).collect();
    let mut world = World {
        rules: HashMap::new(),
        alerts: HashMap::new(),
        failed: HashSet::new(),
        names: files.iter().map(|(p, _)| p.file.name.as_str()).collect(),
        suppress: Vec::new(),
    };
    for (p, _) in files {
        world.failed.extend(p.failed.iter().cloned());
        world.suppress.extend(
            p.file
                .suppressions()
                .map(|x| (x.target.name.as_str(), x.while_.name.as_str())),
        );
    }

    // Names first (duplicates across files), then the alerts' label sets, which
    // remediations in any file need.
    let mut records: HashMap<&str, Def> = HashMap::new();
    let mut tests: HashMap<&str, Def> = HashMap::new();
    for (fi, (p, _)) in files.iter().enumerate() {
        let mut c = Checker::new(&p.file, &idxs[fi]);
        for item in &p.file.items {
            let (kind, name, span, map): (&'static str, &str, Span, &mut HashMap<&str, Def>) =
                match item {
                    Item::Alert(a) => ("alert", &a.name.name, a.name.span, &mut world.rules),
                    Item::Remediate(r) => {
                        ("remediation", &r.name.name, r.name.span, &mut world.rules)
                    }
                    Item::Maintenance(m) => {
                        ("maintenance", &m.name.name, m.name.span, &mut world.rules)
                    }
                    Item::Record(r) => ("record", &r.name.name, r.name.span, &mut records),
                    Item::Test(t) => ("test", &t.name.value, t.name.span, &mut tests),
                    _ => continue,
                };
            if let Some(prev) = map.get(name) {
                let at = if prev.file == fi {
                    format!("line {}", prev.line)
                } else {
                    format!("{}:{}", world.names[prev.file], prev.line)
                };
                let shown = if kind == "test" {
                    format!("{name:?}")
                } else {
                    format!("`{name}`")
                };
                c.error_note(
                    Code::DuplicateName,
                    span,
                    format!("duplicate name {shown}"),
                    format!("{} {shown} is already defined at {at}", prev.kind),
                );
            } else {
                map.insert(
                    name,
                    Def {
                        kind,
                        file: fi,
                        line: span.line,
                    },
                );
            }
        }
        out[fi].append(&mut c.diags);
    }

    // Alerts: their expressions, templates and label sets.
    for (fi, (p, _)) in files.iter().enumerate() {
        let mut c = Checker::new(&p.file, &idxs[fi]);
        c.check_file_level();
        for a in p.file.alerts() {
            let labels = c.check_alert(a);
            world
                .alerts
                .entry(a.name.name.as_str())
                .or_insert((a, labels));
        }
        out[fi].append(&mut c.diags);
    }

    // Everything else.
    for (fi, (p, _)) in files.iter().enumerate() {
        let mut c = Checker::new(&p.file, &idxs[fi]);
        for item in &p.file.items {
            match item {
                Item::Let(l) => c.check_let(l),
                Item::Record(r) => c.check_record(r),
                Item::Remediate(r) => c.check_remediate(r, &world),
                Item::Maintenance(m) => c.check_maintenance(m),
                Item::Test(t) => c.check_test(t, &world),
                Item::Suppress(x) => c.check_suppress(x, &world),
                Item::Alert(_) | Item::Evaluate(_) => {}
            }
        }
        out[fi].append(&mut c.diags);
    }

    for d in &mut out {
        d.sort_by_key(|a| (a.line, a.col, a.severity));
        d.dedup();
    }
    out
}

struct Checker<'a> {
    file: &'a RuleFile,
    idx: &'a LineIndex<'a>,
    diags: Vec<Diagnostic>,
    /// The file's constants, resolved as the engine resolves them.
    consts: Constants,
}

impl<'a> Checker<'a> {
    fn new(file: &'a RuleFile, idx: &'a LineIndex<'a>) -> Self {
        Checker {
            file,
            idx,
            diags: Vec::new(),
            consts: Constants::resolve(file),
        }
    }

    /// Records a finding over `span`; its code says whether it is an error
    /// or a warning.
    fn error(&mut self, code: Code, span: Span, msg: String) {
        let d = self.finding(code, span, msg);
        self.diags.push(d);
    }

    /// A finding with a `note:` line saying more about it.
    fn error_note(&mut self, code: Code, span: Span, msg: String, note: String) {
        let d = self.finding(code, span, msg).note(note);
        self.diags.push(d);
    }

    /// A finding with a `help:` line saying what to do about it.
    fn error_help(&mut self, code: Code, span: Span, msg: String, help: String) {
        let d = self.finding(code, span, msg).help(help);
        self.diags.push(d);
    }

    fn finding(&self, code: Code, span: Span, msg: String) -> Diagnostic {
        self.idx
            .diag(&self.file.name, code, span.start, span.end, msg)
    }

    /// The source text of a span, shortened for messages.
    fn text(&self, span: Span) -> String {
        let src = self.idx_src();
        let t = src.get(span.start..span.end).unwrap_or("");
        let t: String = t.split_whitespace().collect::<Vec<_>>().join(" ");
        if t.chars().count() > 40 {
            let short: String = t.chars().take(37).collect();
            format!("{short}...")
        } else {
            t
        }
    }

    fn idx_src(&self) -> &'a str {
        self.idx.source()
    }

    // ---------------------------------------------------------------- file level

    fn check_file_level(&mut self) {
        let mut seen: Option<Span> = None;
        let mut lets: HashMap<&str, u32> = HashMap::new();
        for item in &self.file.items {
            match item {
                Item::Evaluate(e) => {
                    if let Some(prev) = seen {
                        self.error(
                            Code::SetTwice,
                            e.span,
                            format!(
                                "`evaluate every` is given twice (first at line {})",
                                prev.line
                            ),
                        );
                    }
                    seen = Some(e.span);
                    if e.every.ms < super::MIN_STEP_MS {
                        self.error(Code::BadStep,
                            e.every.span,
                            format!(
                                "`evaluate every {}` is too fine: the evaluation step must be at least {}",
                                e.every.text,
                                format_duration_ms(super::MIN_STEP_MS)
                            ),
                        );
                    }
                }
                Item::Let(l) => {
                    if let Some(line) = lets.get(l.name.name.as_str()) {
                        self.error_note(
                            Code::DuplicateName,
                            l.name.span,
                            format!("duplicate name `{}`", l.name.name),
                            format!(
                                "constant `{}` is already defined at line {line}",
                                l.name.name
                            ),
                        );
                    } else {
                        lets.insert(&l.name.name, l.name.span.line);
                    }
                }
                _ => {}
            }
        }
    }

    // ---------------------------------------------------------------- expressions

    /// The type of a constant's value (already checked where it is defined).
    fn const_type(&self, id: &Ident) -> Ty {
        match self.consts.get(&id.name) {
            Some(Ok(ConstValue::Number(_))) => Ty::Scalar,
            Some(Ok(ConstValue::Str(_))) => Ty::Str,
            Some(Err(_)) | None => Ty::Err,
        }
    }

    /// Reports a range where an instant value is needed (`context` says by what).
    fn need_instant(&mut self, t: &Typed, e: &Expr, context: &str) {
        match t.ty {
            Ty::Range => {
                let text = self.text(e.span());
                self.error_help(
                    Code::RangeNotInstant,
                    e.span(),
                    format!("`{text}` is a range, but {context} needs an instant value"),
                    format!(
                        "apply a function over time such as `avg({text})`, or drop the `[...]`"
                    ),
                );
            }
            Ty::Str => self.error(
                Code::StringMisuse,
                e.span(),
                format!("a string cannot be used in {context}"),
            ),
            _ => {}
        }
    }

    fn expr(&mut self, e: &Expr) -> Typed {
        match e {
            Expr::Number(_) | Expr::Duration(_) => Typed::scalar(),
            Expr::Str(_) => Typed::new(Ty::Str, Labels::none()),
            Expr::Const(id) => Typed::new(self.const_type(id), Labels::none()),
            Expr::Paren(x, _) => self.expr(x),
            Expr::Selector(s) => self.selector(s),
            Expr::Neg(x, _) => {
                let t = self.expr(x);
                self.need_instant(&t, x, "`-`");
                match t.ty {
                    Ty::Range | Ty::Str => Typed::err(),
                    _ => t,
                }
            }
            Expr::Binary(b) => self.binary(b),
            Expr::Call(c) => self.call(c),
            Expr::Aggregate(a) => self.aggregate(a),
        }
    }

    fn selector(&mut self, s: &Selector) -> Typed {
        for m in &s.matchers {
            if let Err(e) = m.compile() {
                self.regex_error(m.span, &m.value, &e);
            }
        }
        if let Some(r) = &s.range
            && r.ms <= 0
        {
            self.error(
                Code::NotPositive,
                r.span,
                "a range must be longer than 0".into(),
            );
        }
        self.near_constant(s);
        let ty = if s.range.is_some() {
            Ty::Range
        } else {
            Ty::Vector
        };
        Typed::new(ty, Labels::any())
    }

    /// A bare name is a selector unless a `let` of the file defines it: one
    /// edit away from a constant, it is most likely the constant misspelt,
    /// and a selector of a metric that does not exist never selects a series.
    /// Names shorter than [`NEAR_CONSTANT_MIN_LEN`] are all one edit from
    /// each other (`x` and `a`): they are left alone.
    fn near_constant(&mut self, s: &Selector) {
        let bare = s.matchers.is_empty()
            && s.range.is_none()
            && s.offset.is_none()
            && s.span == s.metric.span;
        if !bare {
            return;
        }
        let name = s.metric.name.as_str();
        let near = self.file.items.iter().find_map(|i| match i {
            Item::Let(l)
                if name.chars().count() >= NEAR_CONSTANT_MIN_LEN
                    && l.name.name.chars().count() >= NEAR_CONSTANT_MIN_LEN
                    && functions::edit_distance(name, &l.name.name) == 1 =>
            {
                Some(l.name.name.clone())
            }
            _ => None,
        });
        if let Some(c) = near {
            self.error_help(
                Code::NearConstant,
                s.metric.span,
                format!("`{name}` is read as a metric, but no `let` defines it"),
                format!("did you mean the constant `{c}`?"),
            );
        }
    }

    fn regex_error(&mut self, span: Span, re: &str, e: &regex::Error) {
        let detail = e
            .to_string()
            .lines()
            .rev()
            .find(|l| l.starts_with("error:"))
            .map(|l| l.trim_start_matches("error:").trim().to_string())
            .unwrap_or_else(|| "invalid syntax".to_string());
        self.error(
            Code::BadRegex,
            span,
            format!("the regex `{re}` does not compile: {detail}"),
        );
    }

    fn binary(&mut self, b: &Binary) -> Typed {
        let l = self.expr(&b.lhs);
        let r = self.expr(&b.rhs);
        let sym = b.op.symbol();
        let ctx = format!("`{sym}`");
        self.need_instant(&l, &b.lhs, &ctx);
        self.need_instant(&r, &b.rhs, &ctx);
        if matches!(l.ty, Ty::Range | Ty::Str | Ty::Err)
            || matches!(r.ty, Ty::Range | Ty::Str | Ty::Err)
        {
            return Typed::err();
        }
        if b.return_bool && !b.op.is_comparison() {
            self.error(
                Code::NeedsBool,
                b.span,
                format!("`bool` only follows a comparison such as `>`, not `{sym}`"),
            );
        }
        let (ls, rs) = (l.ty == Ty::Scalar, r.ty == Ty::Scalar);
        if ls && rs {
            if b.op.is_comparison() && !b.return_bool {
                self.error(
                    Code::NeedsBool,
                    b.span,
                    format!("comparing two numbers needs `bool`, as in `1 {sym} bool 0`"),
                );
            }
            if b.op.is_set() {
                self.error(
                    Code::NeedsSeries,
                    b.span,
                    format!("`{sym}` works on series, not on two numbers"),
                );
            }
            if b.on.is_some() {
                self.error(
                    Code::NeedsSeries,
                    b.span,
                    "`on (...)` matches series, not numbers".into(),
                );
            }
            return Typed::scalar();
        }
        if ls || rs {
            if b.op.is_set() {
                let side = if ls { &b.lhs } else { &b.rhs };
                self.error(
                    Code::NeedsSeries,
                    side.span(),
                    format!("`{sym}` needs series on both sides, not a number"),
                );
            }
            if let Some(on) = &b.on {
                self.error(
                    Code::NeedsSeries,
                    on.span,
                    "`on (...)` matches series on both sides; one side is a number".into(),
                );
            }
            let labels = if ls { r.labels } else { l.labels };
            return Typed::new(Ty::Vector, labels);
        }
        let labels = match b.op {
            BinOp::And | BinOp::Unless => l.labels,
            BinOp::Or => l.labels.union(&r.labels),
            _ => match &b.on {
                Some(on) => Labels::only(&on.labels),
                None => l.labels.intersect(&r.labels),
            },
        };
        Typed::new(Ty::Vector, labels)
    }

    fn call(&mut self, c: &Call) -> Typed {
        let args: Vec<Typed> = c.args.iter().map(|a| self.expr(a)).collect();
        let Some(info) = c.def else {
            if functions::aggregation(&c.func.name).is_some() {
                self.error(
                    Code::RangeNotInstant,
                    c.func.span,
                    format!(
                        "`{}` aggregates across series: it needs an instant value",
                        c.func.name
                    ),
                );
            } else {
                let d = unknown_name(self.idx, &self.file.name, "function", &c.func);
                self.diags.push(d);
            }
            return Typed::err();
        };
        let name = info.name;
        let required = functions::required_args(info);
        if args.len() < required || args.len() > info.params.len() {
            let n = info.params.len();
            let count = if required == n {
                format!("{n}")
            } else {
                format!("{required} or {n}")
            };
            self.error(
                Code::ArgumentCount,
                c.func.span,
                format!(
                    "`{name}` takes {count} argument{}, as in `{name}{}`, found {}",
                    if n == 1 { "" } else { "s" },
                    info.arg_names,
                    args.len()
                ),
            );
            return Typed::err();
        }
        let mut range_labels = Labels::any();
        let mut threshold_labels: Option<Labels> = None;
        for (i, (param, (t, a))) in info.params.iter().zip(args.iter().zip(&c.args)).enumerate() {
            match param {
                Param::Instant => {
                    range_labels = t.labels.clone();
                    self.check_buckets(name, t, a);
                }
                Param::Range => {
                    range_labels = t.labels.clone();
                    match t.ty {
                        Ty::Range | Ty::Err => {}
                        Ty::Vector => {
                            let text = self.text(a.span());
                            self.error(Code::InstantNotRange,
                                a.span(),
                                format!("`{name}` needs a range such as `{text}[5m]`, not an instant value"),
                            );
                        }
                        Ty::Scalar | Ty::Str => self.error(
                            Code::InstantNotRange,
                            a.span(),
                            format!(
                                "`{name}` needs a range such as `x[5m]`, not a {}",
                                ty_word(t.ty)
                            ),
                        ),
                    }
                }
                Param::Series => {
                    range_labels = t.labels.clone();
                    if !matches!(t.ty, Ty::Vector | Ty::Err) {
                        let ord = ["first", "second", "third"].get(i).unwrap_or(&"last");
                        self.error(
                            Code::ArgumentType,
                            a.span(),
                            format!(
                                "the {ord} argument of `{name}` must be series at an instant such as `x`, not a {}",
                                ty_word(t.ty)
                            ),
                        );
                    }
                }
                Param::Text => {
                    if !matches!(t.ty, Ty::Str | Ty::Err) {
                        self.error(
                            Code::ArgumentType,
                            a.span(),
                            format!(
                                "argument {} of `{name}` must be a string in double quotes, not a {}",
                                i + 1,
                                ty_word(t.ty)
                            ),
                        );
                    }
                }
                Param::Threshold if matches!(t.ty, Ty::Vector) => {
                    threshold_labels = Some(t.labels.clone());
                }
                Param::Scalar | Param::OptScalar | Param::Threshold => {
                    let ord = ["first", "second", "third"].get(i).unwrap_or(&"last");
                    match t.ty {
                        Ty::Scalar | Ty::Err => {}
                        Ty::Range => self.error(
                            Code::ArgumentType,
                            a.span(),
                            format!("the {ord} argument of `{name}` must be a number, not a range"),
                        ),
                        Ty::Vector => self.error(
                            Code::ArgumentType,
                            a.span(),
                            format!("the {ord} argument of `{name}` must be a number, not series"),
                        ),
                        Ty::Str => self.error(
                            Code::ArgumentType,
                            a.span(),
                            format!(
                                "the {ord} argument of `{name}` must be a number, not a string"
                            ),
                        ),
                    }
                    if matches!(
                        info.kernel,
                        Kernel::QuantileAt | Kernel::Histogram(HistFunc::Quantile)
                    ) {
                        self.check_fraction(a);
                    }
                }
            }
        }
        if let Some(g) = &c.pool
            && info.pool == Pool::Not
        {
            let kw = if g.without { "without" } else { "by" };
            self.error_help(
                Code::CannotPool,
                g.span,
                format!("`{name}` cannot pool series with `{kw}`"),
                format!("aggregate its result instead, as in `max by (...) ({name}(...))`"),
            );
        }
        if let Kernel::Instant(f) = info.kernel {
            return match f {
                InstFunc::Vector | InstFunc::Scalar | InstFunc::Time => {
                    Typed::new(Ty::Vector, Labels::none())
                }
                InstFunc::LabelReplace => {
                    self.check_label_replace(c);
                    Typed::new(Ty::Vector, Labels::any())
                }
                _ => Typed::new(Ty::Vector, range_labels),
            };
        }
        let labels = if let Kernel::Histogram(_) = info.kernel {
            // One result per group of buckets: `le` and the metric name go.
            range_labels.without(&[Ident {
                name: BUCKET_LABEL.into(),
                span: c.span,
            }])
        } else if info.kernel == Kernel::Absent {
            match c.args.first().map(Expr::unparen) {
                Some(Expr::Selector(s)) => Labels::Only(
                    s.matchers
                        .iter()
                        .filter(|m| m.op == MatchOp::Equal && !m.value.is_empty())
                        .map(|m| m.name.clone())
                        .collect(),
                ),
                _ => Labels::none(),
            }
        } else {
            match &c.pool {
                Some(g) if g.without => range_labels.without(&g.labels),
                Some(g) => Labels::only(&g.labels),
                None => range_labels,
            }
        };
        let labels = match threshold_labels {
            Some(t) => labels.intersect(&t),
            None => labels,
        };
        Typed::new(Ty::Vector, labels)
    }

    /// `label_replace`'s destination must be a label name and its regex
    /// must compile, as Prometheus checks before it evaluates.
    fn check_label_replace(&mut self, c: &Call) {
        if let Some(Expr::Str(dst)) = c.args.get(1).map(Expr::unparen) {
            let ok = dst.value.chars().enumerate().all(|(i, ch)| {
                ch == '_' || ch.is_ascii_alphabetic() || (i > 0 && ch.is_ascii_digit())
            });
            if dst.value.is_empty() || !ok {
                self.error(
                    Code::ArgumentType,
                    dst.span,
                    format!("`{}` is not a label name", dst.value),
                );
            }
        }
        if let Some(Expr::Str(re)) = c.args.get(4).map(Expr::unparen)
            && let Err(e) = regex::Regex::new(&format!("^(?s:{})$", re.value))
        {
            self.error(
                Code::BadRegex,
                re.span,
                format!("bad regex in `label_replace`: {e}"),
            );
        }
    }

    /// The buckets of a histogram function: series that carry `le`.
    fn check_buckets(&mut self, name: &str, t: &Typed, a: &Expr) {
        match t.ty {
            Ty::Vector => {
                if !t.labels.may_have(BUCKET_LABEL) {
                    self.error_help(
                        Code::UnknownLabel,
                        a.span(),
                        format!(
                            "the buckets of `{name}` must carry the `{BUCKET_LABEL}` label, and these series cannot"
                        ),
                        format!(
                            "keep `{BUCKET_LABEL}` in the grouping, as in `sum by ({BUCKET_LABEL}, instance) (rate(x_bucket[5m]))`"
                        ),
                    );
                }
            }
            Ty::Err => {}
            Ty::Range => {
                let text = self.text(a.span());
                self.error(
                    Code::RangeNotInstant,
                    a.span(),
                    format!(
                        "`{name}` needs bucket series at an instant, not the range `{text}`: give it `rate({text})` or `increase({text})`"
                    ),
                );
            }
            Ty::Scalar | Ty::Str => self.error(
                Code::NeedsSeries,
                a.span(),
                format!(
                    "the last argument of `{name}` must be bucket series, not a {}",
                    ty_word(t.ty)
                ),
            ),
        }
    }

    /// A literal quantile must be within [0, 1].
    fn check_fraction(&mut self, a: &Expr) {
        if let Expr::Number(n) = a.unparen()
            && !(0.0..=1.0).contains(&n.value)
        {
            self.error(
                Code::OutOfBounds,
                n.span,
                format!("a quantile is between 0 and 1, found `{}`", n.text),
            );
        }
    }

    fn aggregate(&mut self, a: &Aggregate) -> Typed {
        let name = a.op.name.as_str();
        let info = a.def;
        if let Some(p) = &a.param {
            let t = self.expr(p);
            match t.ty {
                Ty::Scalar | Ty::Err => {}
                other => self.error(
                    Code::ArgumentType,
                    p.span(),
                    format!(
                        "the first argument of `{name}` must be a number, not {}",
                        ty_phrase(other)
                    ),
                ),
            }
            if info.kernel == AggKernel::Quantile {
                self.check_fraction(p);
            } else if let Expr::Number(n) = p.unparen()
                && (n.value < 1.0 || n.value.fract() != 0.0)
            {
                self.error(
                    Code::OutOfBounds,
                    n.span,
                    format!(
                        "`{name}` needs a whole number of at least 1, found `{}`",
                        n.text
                    ),
                );
            }
        }
        let t = self.expr(&a.arg);
        match t.ty {
            Ty::Range => {
                let text = self.text(a.arg.span());
                let msg = if functions::function(name).is_some() {
                    format!(
                        "`{name} by (...) (...)` aggregates across series and needs an instant value, but `{text}` is a range: for {name} over time write `{name}({text}) by (...)`"
                    )
                } else {
                    format!("`{name}` needs an instant value, but `{text}` is a range")
                };
                self.error(Code::RangeNotInstant, a.arg.span(), msg);
                return Typed::err();
            }
            Ty::Scalar | Ty::Str => {
                self.error(
                    Code::NeedsSeries,
                    a.arg.span(),
                    format!("`{name}` aggregates series, not a {}", ty_word(t.ty)),
                );
                return Typed::err();
            }
            _ => {}
        }
        let labels = if info.keeps_labels {
            t.labels
        } else {
            match &a.grouping {
                Some(g) if g.without => t.labels.without(&g.labels),
                Some(g) => Labels::only(&g.labels),
                None => Labels::none(),
            }
        };
        Typed::new(Ty::Vector, labels)
    }

    /// A top-level expression that must select series.
    fn series_expr(&mut self, e: &Expr, what: &str) -> Labels {
        let t = self.expr(e);
        match t.ty {
            Ty::Range => self.need_instant(&t, e, what),
            Ty::Scalar => self.error(
                Code::NeedsSeries,
                e.span(),
                format!("{what} is a plain number; it must select series, as in `x > 1`"),
            ),
            Ty::Str => self.error(
                Code::NeedsSeries,
                e.span(),
                format!("{what} is a string; it must select series"),
            ),
            _ => {}
        }
        t.labels
    }

    // ---------------------------------------------------------------- templates

    fn check_template(&mut self, t: &Template, labels: &Labels, owner: &str) {
        for (name, span) in t.vars() {
            if ALWAYS.contains(&name) || labels.may_have(name) {
                continue;
            }
            let why = match labels {
                // Of what it removes, only the label the template names.
                Labels::AnyBut(_) => format!("removes `{name}`"),
                Labels::Only(_) => labels_phrase(labels),
            };
            self.error(
                Code::UnknownLabel,
                span,
                format!("unknown template label `{{{{{name}}}}}`: the expression of {owner} {why}"),
            );
        }
    }

    /// An action's template; an `exec` command must split into arguments.
    fn check_action(&mut self, a: &Action, labels: &Labels, owner: &str) {
        self.check_template(&a.target, labels, owner);
        if a.kind == ActionKind::Exec
            && let Err(why) = super::template::split_exec(&a.target)
        {
            self.error(Code::BadAction, a.target.span, format!("`exec`: {why}"));
        }
    }

    // ---------------------------------------------------------------- blocks

    fn check_alert(&mut self, a: &Alert) -> Labels {
        let owner = format!("alert {}", a.name.name);
        let labels = self.series_expr(&a.when, &format!("the condition of {owner}"));
        let step = self.file.step_ms();
        if let Some(f) = &a.for_ {
            if f.ms > 0 && f.ms < step {
                self.error_help(
                    Code::BadStep,
                    f.span,
                    format!(
                        "`for {}` is shorter than the evaluation step ({})",
                        f.text,
                        format_duration_ms(step),
                    ),
                    format!(
                        "use at least `for {}`, or `for 0s`",
                        format_duration_ms(step)
                    ),
                );
            }
        } else if let Some(noisy) = noisy_function(&a.when) {
            self.error_help(
                Code::NoisyWithoutFor,
                a.name.span,
                format!(
                    "alert {} has no `for` and uses `{noisy}`, which is noisy",
                    a.name.name
                ),
                "add `for 5m` (or `for 0s` to fire at once) so that one spike does not fire it"
                    .into(),
            );
        }
        let mut keys = Vec::new();
        for l in &a.labels {
            if ALWAYS.contains(&l.name.name.as_str()) {
                self.error(
                    Code::ReservedLabel,
                    l.name.span,
                    format!(
                        "`{}` cannot be set in `labels`: it is set by the alert itself",
                        l.name.name
                    ),
                );
            }
            keys.push(l.name.name.clone());
        }
        for l in &a.labels {
            self.check_template(&l.value, &labels, &owner);
        }
        let full = labels.with(keys);
        for t in a.summary.iter().chain(a.runbook.iter()) {
            self.check_template(t, &full, &owner);
        }
        if let Some(r) = &a.resolve_when {
            self.check_resolve_when(a, r, &labels);
        }
        full
    }

    /// `resolve when`: read as `when` is, a comparison that filters series
    /// (its result is the series for which the alert may resolve), with
    /// series that can be the alert's.
    fn check_resolve_when(&mut self, a: &Alert, r: &Expr, when_labels: &Labels) {
        let what = format!("the `resolve when` of alert {}", a.name.name);
        let errors_before = self.diags.iter().filter(|d| d.is_error()).count();
        let labels = self.series_expr(r, &what);
        match r.unparen() {
            Expr::Binary(b) if b.op.is_comparison() && b.return_bool => self.error_help(
                Code::NotComparison,
                r.span(),
                format!(
                    "{what} compares with `bool`, which gives 0 or 1 for every series rather than the series for which it holds"
                ),
                "leave out `bool`, as in `resolve when x < 0.8`".into(),
            ),
            Expr::Binary(b) if b.op.is_comparison() => {}
            _ => self.error_help(
                Code::NotComparison,
                r.span(),
                format!("{what} must be a comparison such as `x < 0.8`"),
                "the alert resolves for the series for which the comparison holds".into(),
            ),
        }
        if self.diags.iter().filter(|d| d.is_error()).count() > errors_before {
            return;
        }
        // The alert's series resolve through `resolve when` only when the
        // two expressions can give series with the same labels.
        let clash = match (when_labels, &labels) {
            (Labels::Only(w), Labels::Only(r)) => w != r,
            (Labels::Only(s), Labels::AnyBut(x)) | (Labels::AnyBut(x), Labels::Only(s)) => {
                s.iter().any(|l| x.contains(l))
            }
            (Labels::AnyBut(_), Labels::AnyBut(_)) => false,
        };
        if clash {
            self.error_note(
                Code::ResolveCannotMatch,
                r.span(),
                format!(
                    "`resolve when` cannot give the series of alert {}: `when` {}, `resolve when` {}",
                    a.name.name,
                    labels_phrase(when_labels),
                    labels_phrase(&labels)
                ),
                "an alert resolves through `resolve when` for the series with the same labels; these would resolve only when their data stops".into(),
            );
        }
    }

    fn check_let(&mut self, l: &Let) {
        // A duplicate `let` is reported as such; its value is not the constant's.
        if !self.consts.is_definition(l) {
            return;
        }
        let errors_before = self.diags.iter().filter(|d| d.is_error()).count();
        let t = self.expr(&l.value);
        if matches!(t.ty, Ty::Vector | Ty::Range) {
            self.error(
                Code::BadConstant,
                l.value.span(),
                format!(
                    "constant `{}` must be a number, duration, percent, size or string, not {}",
                    l.name.name,
                    ty_phrase(t.ty)
                ),
            );
        }
        let reported = self.diags.iter().filter(|d| d.is_error()).count() > errors_before;
        // Whatever the engine could not resolve is an error here too.
        match self.consts.get(&l.name.name) {
            Some(Err(ConstError::Cycle { name, at })) => {
                let (name, at) = (name.clone(), *at);
                self.error(
                    Code::BadConstant,
                    at,
                    format!("constant `{name}` is defined in terms of itself"),
                );
            }
            Some(Err(ConstError::Invalid { message, at })) if !reported => {
                let (message, at) = (message.clone(), *at);
                self.error(
                    Code::BadConstant,
                    at,
                    format!("constant `{}`: {message}", l.name.name),
                );
            }
            _ => {}
        }
    }

    fn check_record(&mut self, r: &Record) {
        self.series_expr(&r.expr, &format!("record {}", r.name.name));
    }

    /// `KEYWORD N per DURATION` (`max`, `breaker`): at least one in a
    /// period longer than 0.
    fn check_rate(&mut self, m: &MaxRate, keyword: &str) {
        if m.count < 1 {
            self.error(
                Code::OutOfBounds,
                m.span,
                format!(
                    "`{keyword} {} per {}` allows no action: the count must be at least 1",
                    m.count, m.per.text
                ),
            );
        }
        if m.per.ms <= 0 {
            self.error(
                Code::NotPositive,
                m.per.span,
                format!("the period of `{keyword}` must be longer than 0"),
            );
        }
    }

    fn check_max(&mut self, m: &Option<MaxRate>) {
        if let Some(m) = m {
            self.check_rate(m, "max");
        }
    }

    /// The labels of the alert that `id` names in `keyword` (`on`,
    /// `suppress`), or None after reporting that it names another kind of
    /// block or nothing; silent where the alert's block failed to parse
    /// (its parse error already speaks for it).
    fn alert_ref<'w>(&mut self, id: &Ident, keyword: &str, world: &'w World) -> Option<&'w Labels> {
        if let Some((_, l)) = world.alerts.get(id.name.as_str()) {
            return Some(l);
        }
        if world
            .failed
            .contains(&("alert".to_string(), id.name.clone()))
        {
            return None;
        }
        match world.rules.get(id.name.as_str()) {
            Some(def) => self.error(
                Code::UnknownAlert,
                id.span,
                format!(
                    "`{}` is a {}, not an alert: `{keyword}` names alerts",
                    id.name, def.kind
                ),
            ),
            None => self.unknown_alert(id, keyword, world.alerts.keys().copied()),
        }
        None
    }

    /// "unknown alert `x` in `keyword`", with the closest of `names` as help.
    fn unknown_alert<'n>(
        &mut self,
        id: &Ident,
        keyword: &str,
        names: impl Iterator<Item = &'n str>,
    ) {
        let msg = format!("unknown alert `{}` in `{keyword}`", id.name);
        match closest(&id.name, names) {
            Some(s) => self.error_help(
                Code::UnknownAlert,
                id.span,
                msg,
                format!("did you mean `{s}`?"),
            ),
            None => self.error(Code::UnknownAlert, id.span, msg),
        }
    }

    fn check_remediate(&mut self, r: &Remediate, world: &World) {
        let owner = format!("remediation {}", r.name.name);
        let mut labels: Option<Labels> = None;
        for on in &r.on {
            labels = Some(match (self.alert_ref(on, "on", world), labels) {
                (Some(l), None) => l.clone(),
                (Some(l), Some(prev)) => prev.intersect(l),
                // Not an alert (reported, or its block failed to parse):
                // nothing is known of its labels.
                (None, _) => Labels::any(),
            });
        }
        let labels = labels.unwrap_or_else(Labels::any);
        if let Some(w) = &r.filter {
            for (label, op, value) in w.conds() {
                if matches!(op, WhereOp::Regex | WhereOp::NotRegex)
                    && let Err(e) = crate::model::Matcher::new(
                        label.name.clone(),
                        op.match_op(),
                        value.value.clone(),
                    )
                {
                    self.regex_error(value.span, &value.value, &e);
                }
                if !ALWAYS.contains(&label.name.as_str()) && !labels.may_have(&label.name) {
                    self.error(
                        Code::UnknownLabel,
                        label.span,
                        format!(
                            "unknown label `{}` in `where`: the alerts in `on` do not carry it",
                            label.name
                        ),
                    );
                }
            }
        }
        let alert_owner = match r.on.as_slice() {
            [one] => format!("alert {}", one.name),
            _ => format!("the alerts that {owner} acts on"),
        };
        for a in std::iter::once(&r.action).chain(r.escalate.iter()) {
            self.check_action(a, &labels, &alert_owner);
        }
        self.check_max(&r.max);
        self.check_safety(r, world);
        if r.cooldown.is_none() {
            self.error_help(
                Code::NoCooldown,
                r.name.span,
                format!(
                    "remediation {} has no `cooldown`: it may act again on every evaluation",
                    r.name.name
                ),
                "add one such as `cooldown 1h`".into(),
            );
        }
    }

    fn check_maintenance(&mut self, m: &Maintenance) {
        let owner = format!("maintenance {}", m.name.name);
        let labels = self.series_expr(&m.when, &format!("the condition of {owner}"));
        if m.window.window.is_none() {
            let why = window::Window::parse(&m.window.text.value)
                .err()
                .unwrap_or_default();
            self.error(
                Code::BadWindow,
                m.window.text.span,
                format!("the window {:?} does not parse: {why}", m.window.text.value),
            );
        }
        self.check_action(&m.action, &labels, &owner);
        self.check_max(&m.max);
        if let Some(g) = &m.guard {
            self.series_expr(g, &format!("the guard of {owner}"));
        }
    }

    /// `concurrency`, `breaker`, `guard` and `approve` of a remediation.
    fn check_safety(&mut self, r: &Remediate, world: &World) {
        let owner = format!("remediation {}", r.name.name);
        for c in &r.concurrency {
            if c.limit < 1 {
                self.error(
                    Code::OutOfBounds,
                    c.span,
                    format!(
                        "`concurrency {}` allows no action: the count must be at least 1",
                        c.limit
                    ),
                );
            }
            let Some(label) = &c.per else { continue };
            // Warned only when every alert of `on` is known and none can
            // carry the label: then every action shares one slot.
            let sets: Option<Vec<&Labels>> =
                r.on.iter()
                    .map(|a| world.alerts.get(a.name.as_str()).map(|x| &x.1))
                    .collect();
            if let Some(sets) = sets
                && !sets.is_empty()
                && !ALWAYS.contains(&label.name.as_str())
                && sets.iter().all(|l| !l.may_have(&label.name))
            {
                self.error_note(
                    Code::LabelNotCarried,
                    label.span,
                    format!(
                        "`concurrency {} per {}`: the alerts in `on` do not carry `{}`",
                        c.limit, label.name, label.name
                    ),
                    "their actions all have the same (empty) value of it, so this limits the whole block".into(),
                );
            }
        }
        if let Some(b) = &r.breaker {
            self.check_rate(b, "breaker");
            if r.escalate.is_none() {
                self.error_help(
                    Code::BreakerWithoutEscalate,
                    b.span,
                    format!(
                        "{owner} has a `breaker` but no `escalate`: when it opens, nobody is paged"
                    ),
                    "add a line such as `escalate notify \"oncall\"`".into(),
                );
            }
        }
        if let Some(g) = &r.guard {
            self.series_expr(g, &format!("the guard of {owner}"));
        }
        if let Some(a) = &r.approve {
            if a.within.ms <= 0 {
                self.error(
                    Code::NotPositive,
                    a.within.span,
                    "the time to approve within must be longer than 0".into(),
                );
            }
            if a.by.value.trim().is_empty() {
                self.error_help(
                    Code::NoApprover,
                    a.by.span,
                    format!("`approve` of {owner} names no one to approve"),
                    "name who approves, as in `approve within 15m by \"oncall\"`".into(),
                );
            }
        }
    }

    /// `suppress A while B [on (...)]`: two distinct alerts, labels that
    /// one of them carries, no cycle.
    fn check_suppress(&mut self, x: &Suppress, world: &World) {
        let mut sets: Vec<Option<&Labels>> = Vec::new();
        for a in [&x.target, &x.while_] {
            let l = self.alert_ref(a, "suppress", world);
            sets.push(l);
        }
        if x.target.name == x.while_.name {
            self.error(
                Code::SuppressCycle,
                x.span,
                format!(
                    "`suppress {0} while {0}` suppresses an alert by itself: it would never be delivered",
                    x.target.name
                ),
            );
        } else if let Some(path) = suppress_path(&world.suppress, &x.while_.name, &x.target.name) {
            let mut chain = vec![x.target.name.as_str()];
            chain.extend(path);
            self.error_note(
                Code::SuppressCycle,
                x.span,
                format!(
                    "`suppress {} while {}` is part of a cycle: {}",
                    x.target.name,
                    x.while_.name,
                    chain.join(" while ")
                ),
                "while they fire together each suppresses the other, and none is delivered".into(),
            );
        }
        if let (Some(on), [Some(a), Some(b)]) = (&x.on, sets.as_slice()) {
            for l in on {
                if !a.may_have(&l.name) && !b.may_have(&l.name) {
                    self.error_note(
                        Code::LabelNotCarried,
                        l.span,
                        format!(
                            "neither {} nor {} carries `{}`",
                            x.target.name, x.while_.name, l.name
                        ),
                        "instances are matched on the labels in `on`; one that neither carries matches every instance".into(),
                    );
                }
            }
        }
    }

    fn check_test(&mut self, t: &TestBlock, world: &World) {
        if let Some(i) = &t.interval
            && i.ms <= 0
        {
            self.error(
                Code::NotPositive,
                i.span,
                "the interval of a test must be longer than 0".into(),
            );
        }
        for s in &t.series {
            for m in &s.selector.matchers {
                if m.op != MatchOp::Equal {
                    self.error(
                        Code::BadTestSeries,
                        m.span,
                        format!(
                            "a test series is written with `=` labels only, not `{}`",
                            m.op.symbol()
                        ),
                    );
                }
            }
            if s.selector.range.is_some() || s.selector.offset.is_some() {
                self.error(
                    Code::BadTestSeries,
                    s.selector.span,
                    "a test series has no range or offset".into(),
                );
            }
            if s.points.is_none() {
                let why = series::parse(&s.values.value).err().unwrap_or_default();
                self.error(Code::BadTestSeries, s.values.span, why);
            }
        }
        let step = self.file.step_ms().max(super::MIN_STEP_MS);
        for e in &t.expects {
            // A test replays the rules at every step up to its last `expect`.
            let steps = (e.at.ms / step) as u64 + 1;
            if steps > super::MAX_STEPS {
                self.error(Code::BadStep,
                    e.at.span,
                    format!(
                        "`at {}` is {steps} evaluation steps of {} into the test: at most {} are allowed",
                        e.at.text,
                        format_duration_ms(step),
                        super::MAX_STEPS
                    ),
                );
            }
            match &e.target {
                ExpectTarget::Value(x) => {
                    let ty = self.expr(x);
                    self.need_instant(&ty, x, "`value(...)`");
                    match e.result {
                        ExpectResult::State(st) => self.error(
                            Code::BadExpectation,
                            e.span,
                            format!("`value(...)` is expected to be a number or `none`, not the alert state `{}`", st.word()),
                        ),
                        ExpectResult::Action(st) => self.error(
                            Code::BadExpectation,
                            e.span,
                            format!("`value(...)` is expected to be a number or `none`, not the action state `{}`", st.word()),
                        ),
                        _ => {}
                    }
                }
                ExpectTarget::Alert(name) => {
                    let known = world.rules.contains_key(name.name.as_str())
                        || ["alert", "remediate", "maintenance"]
                            .iter()
                            .any(|k| world.failed.contains(&(k.to_string(), name.name.clone())));
                    if !known {
                        self.unknown_alert(name, "expect", world.rules.keys().copied());
                    }
                    self.check_expect_word(e, name, world);
                }
            }
        }
    }
}

/// How a label set reads in a message: "keeps `a`, `b`" or "keeps no labels".
fn labels_phrase(l: &Labels) -> String {
    match l {
        Labels::Only(s) if s.is_empty() => "keeps no labels".to_string(),
        Labels::Only(s) => format!(
            "keeps only {}",
            s.iter()
                .map(|l| format!("`{l}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Labels::AnyBut(x) => format!(
            "removes {}",
            x.iter()
                .map(|l| format!("`{l}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The alerts from `from` to `to` following `suppress A while B` edges
/// (A to B), `from` and `to` included, when there is such a path.
fn suppress_path<'w>(
    edges: &[(&'w str, &'w str)],
    from: &'w str,
    to: &str,
) -> Option<Vec<&'w str>> {
    // Breadth first, remembering each alert's predecessor: the shortest
    // cycle is the one to show.
    let mut prev: HashMap<&str, &str> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([from]);
    let mut seen: HashSet<&str> = HashSet::from([from]);
    while let Some(at) = queue.pop_front() {
        if at == to {
            let mut path = vec![at];
            let mut cur = at;
            while let Some(p) = prev.get(cur) {
                path.push(p);
                cur = p;
            }
            path.reverse();
            return Some(path);
        }
        for (a, b) in edges {
            if *a == at && seen.insert(b) {
                prev.insert(b, at);
                queue.push_back(b);
            }
        }
    }
    None
}

impl Checker<'_> {
    /// The result of `expect NAME at T == ...` suits the kind of NAME:
    /// alert states for alerts, action states for remediation and
    /// maintenance blocks (which also take `firing`: acting for a firing
    /// episode), `none` for both, numbers for neither.
    fn check_expect_word(&mut self, e: &Expect, name: &Ident, world: &World) {
        let kind = world.rules.get(name.name.as_str()).map(|d| d.kind);
        const ALERT_WORDS: &str = "`firing`, `pending`, `resolved` or `none`";
        const ACTION_WORDS: &str =
            "`run`, `escalated`, `suppressed`, `awaiting_approval`, `firing` or `none`";
        let allowed = match kind {
            Some("alert") => ALERT_WORDS,
            Some(_) => ACTION_WORDS,
            None => "`firing`, `pending`, `resolved`, an action state or `none`",
        };
        let (word, fits) = match &e.result {
            ExpectResult::None => return,
            ExpectResult::Value(_) => ("a number".to_string(), false),
            ExpectResult::State(st) => (
                format!("`{}`", st.word()),
                kind.is_none_or(|k| k == "alert" || *st == AlertState::Firing),
            ),
            ExpectResult::Action(st) => (format!("`{}`", st.word()), kind != Some("alert")),
        };
        if fits {
            return;
        }
        let what = match kind {
            Some("alert") => "an alert".to_string(),
            Some(k) => format!("a {k} block"),
            None => "a name".to_string(),
        };
        let span = match &e.result {
            ExpectResult::Value(n) => n.span,
            _ => e.span,
        };
        let why = match &e.result {
            ExpectResult::State(_) => " (an alert state)",
            ExpectResult::Action(_) => " (what a remediation or maintenance block did)",
            _ => "",
        };
        self.error(
            Code::BadExpectation,
            span,
            format!(
                "`{}` is {what}: it is expected to be {allowed}, not {word}{why}",
                name.name
            ),
        );
    }
}

fn ty_word(t: Ty) -> &'static str {
    match t {
        Ty::Scalar => "number",
        Ty::Vector => "series",
        Ty::Range => "range",
        Ty::Str => "string",
        Ty::Err => "value",
    }
}

fn ty_phrase(t: Ty) -> &'static str {
    match t {
        Ty::Scalar => "a number",
        Ty::Vector => "series",
        Ty::Range => "a range",
        Ty::Str => "a string",
        Ty::Err => "a value",
    }
}

/// The first noisy function an expression uses (see [`functions`]).
fn noisy_function(e: &Expr) -> Option<String> {
    let mut found = None;
    e.walk(&mut |x| {
        if found.is_some() {
            return;
        }
        if let Expr::Call(c) = x
            && let Some(info) = c.def {
                let noisy = match info.noise {
                    Noise::Never => false,
                    Noise::Always => true,
                    Noise::ShortWindow => c.args.get(info.range_arg()).is_some_and(|a| {
                        matches!(a.unparen(), Expr::Selector(s) if s.range.as_ref().is_some_and(|r| r.ms < SHORT_WINDOW_MS))
                    }),
                };
                if noisy {
                    found = Some(c.func.name.clone());
                }
            }
    });
    found
}

/// The name closest to `name` among `names`, when close enough to suggest.
pub(super) fn closest<'n>(name: &str, names: impl Iterator<Item = &'n str>) -> Option<&'n str> {
    names
        .map(|n| (functions::edit_distance(name, n), n))
        .filter(|(d, n)| *d <= 3 && *d < n.len())
        .min()
        .map(|(_, n)| n)
}
