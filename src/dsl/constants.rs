//! The values of a file's `let` constants, resolved once: the checker
//! types uses of a constant by them, and the engine puts each value where
//! the constant is used ([`Expr::with_constants`]). One resolution for both,
//! so a file that checks is a file the engine can evaluate.
//!
//! A constant is a number (a duration in seconds, a percent as a fraction, a
//! size in bytes) or a string (the checker refuses series), so each one folds
//! to a single literal: a use costs the same however long the chain of
//! constants behind it (`let c2 = c1 + c1` repeated doubles nothing). The
//! lets are resolved in dependency order with an explicit stack, not by
//! recursion, so a chain of any length fits any thread's stack; what
//! recursion remains is over one expression's tree, which the parser
//! bounds ([`super::parse::MAX_DEPTH`]).

use super::ast::{Expr, Ident, Item, Let, Number, NumberKind, RuleFile, Span, StrLit};
use std::collections::{HashMap, HashSet};

/// What a constant folds to.
#[derive(Clone, Debug, PartialEq)]
pub enum ConstValue {
    Number(f64),
    Str(String),
}

/// Why a constant has no value.
#[derive(Clone, Debug, PartialEq)]
pub enum ConstError {
    /// Its value uses itself, through the reference at `at` (to `name`).
    Cycle { name: String, at: Span },
    /// Its own expression cannot be folded: what and where.
    Invalid { message: String, at: Span },
    /// It uses a constant that has no value (reported there).
    Dependent,
}

/// The constants of one file, by name (the first `let` of a name; a later
/// one is a duplicate, which the checker reports).
#[derive(Clone, Debug, Default)]
pub struct Constants {
    values: HashMap<String, Result<ConstValue, ConstError>>,
    /// Where each name's first `let` is (its name's span).
    defined_at: HashMap<String, Span>,
}

impl Constants {
    /// Resolves every `let` of `file`.
    pub fn resolve(file: &RuleFile) -> Constants {
        let mut lets: HashMap<&str, &Let> = HashMap::new();
        for item in &file.items {
            if let Item::Let(l) = item {
                lets.entry(l.name.name.as_str()).or_insert(l);
            }
        }
        let mut values: HashMap<String, Result<ConstValue, ConstError>> = HashMap::new();
        for item in &file.items {
            if let Item::Let(l) = item {
                resolve_from(l, &lets, &mut values);
            }
        }
        let defined_at = lets
            .iter()
            .map(|(name, l)| (name.to_string(), l.name.span))
            .collect();
        Constants { values, defined_at }
    }

    /// Whether `l` is the `let` that defines its name (not a duplicate).
    pub fn is_definition(&self, l: &Let) -> bool {
        self.defined_at.get(&l.name.name) == Some(&l.name.span)
    }

    /// The value of constant `name`, `None` when no `let` defines it.
    pub fn get(&self, name: &str) -> Option<&Result<ConstValue, ConstError>> {
        self.values.get(name)
    }
}

/// Resolves `root` and every constant it depends on, depth first with an
/// explicit stack: a constant is folded once all those it uses are.
fn resolve_from<'a>(
    root: &'a Let,
    lets: &HashMap<&str, &'a Let>,
    values: &mut HashMap<String, Result<ConstValue, ConstError>>,
) {
    if values.contains_key(&root.name.name) {
        return;
    }
    // Each entry: a constant whose dependencies are being resolved.
    let mut stack: Vec<&'a Let> = vec![root];
    let mut on_stack: HashSet<&str> = HashSet::from([root.name.name.as_str()]);
    while let Some(&l) = stack.last() {
        let mut pending: Option<&'a Let> = None;
        let mut cycle: Option<&Ident> = None;
        for id in references(&l.value) {
            if values.contains_key(&id.name) {
                continue;
            }
            if on_stack.contains(id.name.as_str()) {
                cycle = Some(id);
                break;
            }
            if let Some(&dep) = lets.get(id.name.as_str()) {
                pending = Some(dep);
                break;
            }
        }
        if let Some(id) = cycle {
            values.insert(
                l.name.name.clone(),
                Err(ConstError::Cycle {
                    name: id.name.clone(),
                    at: id.span,
                }),
            );
        } else if let Some(dep) = pending {
            on_stack.insert(dep.name.name.as_str());
            stack.push(dep);
            continue;
        } else {
            let folded = fold(&l.value, values);
            values.insert(l.name.name.clone(), folded);
        }
        on_stack.remove(l.name.name.as_str());
        stack.pop();
    }
}

/// The constants an expression names, in source order.
fn references(e: &Expr) -> Vec<&Ident> {
    let mut out = Vec::new();
    e.walk(&mut |x| {
        if let Expr::Const(id) = x {
            out.push(id);
        }
    });
    out
}

/// Folds an expression whose constants are all resolved.
fn fold(
    e: &Expr,
    values: &HashMap<String, Result<ConstValue, ConstError>>,
) -> Result<ConstValue, ConstError> {
    let number = |e: &Expr| -> Result<f64, ConstError> {
        match fold(e, values)? {
            ConstValue::Number(x) => Ok(x),
            ConstValue::Str(_) => Err(ConstError::Invalid {
                message: "a string is not a number".into(),
                at: e.span(),
            }),
        }
    };
    match e {
        Expr::Number(n) => Ok(ConstValue::Number(n.value)),
        Expr::Duration(d) => Ok(ConstValue::Number(d.seconds())),
        Expr::Str(s) => Ok(ConstValue::Str(s.value.clone())),
        Expr::Const(id) => match values.get(&id.name) {
            Some(Ok(v)) => Ok(v.clone()),
            _ => Err(ConstError::Dependent),
        },
        Expr::Paren(x, _) => fold(x, values),
        Expr::Neg(x, _) => Ok(ConstValue::Number(-number(x)?)),
        Expr::Binary(b) => {
            let (l, r) = (number(&b.lhs)?, number(&b.rhs)?);
            b.op.on_numbers(l, r)
                .map(ConstValue::Number)
                .ok_or_else(|| ConstError::Invalid {
                    message: format!("`{}` works on series, not on two numbers", b.op.symbol()),
                    at: b.span,
                })
        }
        Expr::Selector(_) | Expr::Call(_) | Expr::Aggregate(_) => Err(ConstError::Invalid {
            message: "a constant is a number, duration, percent, size or string, not series".into(),
            at: e.span(),
        }),
    }
}

impl Expr {
    /// This expression with every constant replaced by its value, a literal
    /// at the constant's place. Constants without a value are left as they
    /// are (the checker reports them; the engine refuses them).
    pub fn with_constants(&self, consts: &Constants) -> Expr {
        let mut e = self.clone();
        e.replace_constants(consts);
        e
    }

    fn replace_constants(&mut self, consts: &Constants) {
        match self {
            Expr::Const(id) => {
                let span = id.span;
                match consts.get(&id.name) {
                    Some(Ok(ConstValue::Number(x))) => {
                        *self = Expr::Number(Number {
                            value: *x,
                            kind: NumberKind::Plain,
                            text: x.to_string(),
                            span,
                        });
                    }
                    Some(Ok(ConstValue::Str(s))) => {
                        *self = Expr::Str(StrLit {
                            value: s.clone(),
                            span,
                        });
                    }
                    _ => {}
                }
            }
            Expr::Call(c) => c.args.iter_mut().for_each(|a| a.replace_constants(consts)),
            Expr::Aggregate(a) => {
                if let Some(p) = &mut a.param {
                    p.replace_constants(consts);
                }
                a.arg.replace_constants(consts);
            }
            Expr::Binary(b) => {
                b.lhs.replace_constants(consts);
                b.rhs.replace_constants(consts);
            }
            Expr::Neg(x, _) | Expr::Paren(x, _) => x.replace_constants(consts),
            Expr::Number(_) | Expr::Duration(_) | Expr::Str(_) | Expr::Selector(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsl::parse_str;

    fn resolved(src: &str) -> Constants {
        Constants::resolve(&parse_str(src, "t").expect("parses"))
    }

    #[test]
    fn folds_numbers_durations_and_strings() {
        let c =
            resolved("let a = 5m\nlet b = a * 2 + 1\nlet s = \"x\"\nlet t = s\nlet p = 99.9%\n");
        assert_eq!(c.get("b"), Some(&Ok(ConstValue::Number(601.0))));
        assert_eq!(c.get("t"), Some(&Ok(ConstValue::Str("x".into()))));
        assert_eq!(c.get("p"), Some(&Ok(ConstValue::Number(0.999))));
        assert_eq!(c.get("nope"), None);
    }

    #[test]
    fn a_comparison_of_numbers_is_one_or_zero() {
        let c = resolved("let a = 2 > bool 1\nlet b = 1 > bool 2\n");
        assert_eq!(c.get("a"), Some(&Ok(ConstValue::Number(1.0))));
        assert_eq!(c.get("b"), Some(&Ok(ConstValue::Number(0.0))));
    }

    #[test]
    fn a_cycle_is_found_where_it_closes() {
        let c = resolved("let a = b\nlet b = a + 1\n");
        match c.get("b") {
            Some(Err(ConstError::Cycle { name, at })) => {
                assert_eq!(name, "a");
                assert_eq!((at.line, at.col), (2, 9));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(c.get("a"), Some(&Err(ConstError::Dependent)));
    }

    #[test]
    fn doubling_chains_fold_to_one_number() {
        let mut src = String::from("let c0 = 1\n");
        for i in 1..=64 {
            src.push_str(&format!("let c{i} = c{} + c{}\n", i - 1, i - 1));
        }
        let c = resolved(&src);
        assert_eq!(c.get("c64"), Some(&Ok(ConstValue::Number(2f64.powi(64)))));
    }
}
