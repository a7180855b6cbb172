//! An action made ready for a set of labels: the argument vector of an
//! `exec` (run without a shell), the URL of a `webhook`, the text of a
//! `notify`. The filling rules are [`crate::dsl::template`]'s: a label value
//! is always exactly one argument (or part of one), never an option unless
//! the command has `--` before it, and percent-encoded in a URL. The
//! backtest's dry run shows actions this way; whatever runs them for real
//! takes the same [`Prepared`] values.

use crate::dsl::ast::{Action, ActionKind};
use crate::dsl::template::{self, ExecError};
use crate::engine::value::push_quoted;
use std::fmt;

/// What an action would do.
#[derive(Clone, Debug, PartialEq)]
pub enum Prepared {
    /// The program and its arguments, for `execve` (no shell).
    Exec(Vec<String>),
    /// The URL to POST the alert to.
    Webhook(String),
    /// The text of the notification.
    Notify(String),
}

/// The values an action's template sees for a decision: `{{value}}` (the
/// condition's value), `{{alert}}` (the trigger) and the labels.
pub fn lookup<'a>(
    labels: &'a crate::engine::Labels,
    trigger: &'a str,
    value: f64,
) -> impl Fn(&str) -> Option<String> + 'a {
    move |name: &str| match name {
        "value" => Some(value.to_string()),
        "alert" => Some(trigger.to_string()),
        _ => labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone()),
    }
}

/// Fills `action`'s template with the values `lookup` gives (labels,
/// `value`, `alert`, `severity`).
pub fn prepare(
    action: &Action,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Prepared, ExecError> {
    Ok(match action.kind {
        ActionKind::Exec => Prepared::Exec(template::exec_argv(&action.target, lookup)?),
        ActionKind::Webhook => Prepared::Webhook(template::webhook_url(&action.target, lookup)),
        ActionKind::Notify => Prepared::Notify(template::render(&action.target, lookup)),
    })
}

/// The dry run's line for an action: what [`Prepared`] shows, or why it
/// would be refused (`exec refused: ...`).
pub fn describe(action: &Action, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    match prepare(action, lookup) {
        Ok(p) => p.to_string(),
        Err(e) => format!("{} refused: {e}", action.kind.name()),
    }
}

/// Whether an argument reads the same in a space-joined command line:
/// non-empty, without whitespace, quotes, backslashes or control characters.
fn plain(arg: &str) -> bool {
    !arg.is_empty()
        && !arg
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '\\'))
}

/// `exec "systemctl restart mcp@a"` when every argument is plain, else the
/// argument vector `exec ["mcp-admin", "--server", "a b"]` (each quoted as
/// Prometheus quotes label values); `webhook "URL"`; `notify "text"` with
/// control characters escaped. One line whatever the values hold.
impl fmt::Display for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Prepared::Exec(argv) if argv.iter().all(|a| plain(a)) => {
                write!(f, "exec \"{}\"", argv.join(" "))
            }
            Prepared::Exec(argv) => {
                let mut out = String::from("exec [");
                for (i, a) in argv.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    push_quoted(&mut out, a);
                }
                out.push(']');
                f.write_str(&out)
            }
            Prepared::Webhook(url) => write!(f, "webhook \"{url}\""),
            Prepared::Notify(text) => {
                let mut out = String::from("notify ");
                push_quoted(&mut out, text);
                f.write_str(&out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsl::ast::Item;

    /// The action of a one-maintenance file whose `do` is `action_src`.
    fn action(action_src: &str) -> Action {
        let src = format!(
            "maintenance M {{\n  when x > 1\n  window \"daily 02:00-04:00 UTC\"\n  do {action_src}\n}}\n"
        );
        let file = crate::dsl::parse_str(&src, "t").expect("parses");
        match &file.items[0] {
            Item::Maintenance(m) => m.action.clone(),
            _ => unreachable!(),
        }
    }

    fn with_server(value: &str) -> impl Fn(&str) -> Option<String> + '_ {
        move |name| (name == "server").then(|| value.to_string())
    }

    const HOSTILE: &[&str] = &[
        "a b",
        "it's",
        "say \"hi\"",
        "$(rm -rf /)",
        "`reboot`",
        "a; rm -rf /",
        "a && b | c > /etc/passwd",
        "line\nbreak",
        "tab\there",
        "back\\slash",
        "a/b",
        "a?b=c",
        "a#frag",
        "100%",
        "ünïcødé ☃",
        "*",
        "",
    ];

    #[test]
    fn a_label_value_is_always_exactly_one_argument() {
        let a = action(r#"exec "mcp-admin vacuum --server {{server}} --now""#);
        for value in HOSTILE {
            let argv = template::exec_argv(&a.target, &with_server(value)).expect(value);
            assert_eq!(
                argv,
                ["mcp-admin", "vacuum", "--server", value, "--now"],
                "{value:?}"
            );
        }
        // Inside a word, the value is part of that one argument.
        let a = action(r#"exec "systemctl restart mcp@{{server}}.service""#);
        let argv = template::exec_argv(&a.target, &with_server("x y; z")).unwrap();
        assert_eq!(argv, ["systemctl", "restart", "mcp@x y; z.service"]);
    }

    #[test]
    fn the_template_text_is_split_like_a_shell_splits_words() {
        let a = action(r#"exec "tool 'two words' \"and {{server}}\" back\\ slash '' end""#);
        let argv = template::exec_argv(&a.target, &with_server("$HOME")).unwrap();
        assert_eq!(
            argv,
            ["tool", "two words", "and $HOME", "back slash", "", "end"]
        );
        for (bad, why) in [
            (r#"exec "tool 'open""#, "unclosed `'`"),
            (r#"exec "tool \\""#, "lone `\\`"),
            (r#"exec "   ""#, "empty"),
        ] {
            let e = template::split_exec(&action(bad).target).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn a_value_that_would_be_an_option_is_refused_unless_after_double_dash() {
        let a = action(r#"exec "rm {{server}}""#);
        let e = template::exec_argv(&a.target, &with_server("-rf")).unwrap_err();
        assert_eq!(
            e,
            ExecError::OptionLike {
                name: "server".into(),
                value: "-rf".into()
            }
        );
        assert!(
            describe(&a, &with_server("-rf")).starts_with("exec refused: `{{server}}` is \"-rf\"")
        );
        let a = action(r#"exec "rm -- {{server}}""#);
        assert_eq!(
            template::exec_argv(&a.target, &with_server("-rf")).unwrap(),
            ["rm", "--", "-rf"]
        );
        // A value inside an argument that the template starts is not an option.
        let a = action(r#"exec "tool --server={{server}}""#);
        assert_eq!(
            template::exec_argv(&a.target, &with_server("-x")).unwrap(),
            ["tool", "--server=-x"]
        );
    }

    #[test]
    fn webhook_values_are_percent_encoded() {
        let a = action(r#"webhook "https://h.example/hooks/{{server}}?server={{server}}&x=1""#);
        let url = template::webhook_url(&a.target, &with_server("a/b?c=d&e#f %g ü\n"));
        let enc = "a%2Fb%3Fc%3Dd%26e%23f%20%25g%20%C3%BC%0A";
        assert_eq!(
            url,
            format!("https://h.example/hooks/{enc}?server={enc}&x=1")
        );
        let url = template::webhook_url(&a.target, &with_server("mcp-01.x_y~"));
        assert_eq!(
            url,
            "https://h.example/hooks/mcp-01.x_y~?server=mcp-01.x_y~&x=1"
        );
    }

    #[test]
    fn the_dry_run_shows_one_line_and_plain_commands_as_before() {
        let a = action(r#"exec "systemctl restart mcp@{{server}}""#);
        assert_eq!(
            describe(&a, &with_server("mcp-06")),
            r#"exec "systemctl restart mcp@mcp-06""#
        );
        let shown = describe(&a, &with_server("x\ny \"z\""));
        assert_eq!(shown, r#"exec ["systemctl", "restart", "mcp@x\ny \"z\""]"#);
        let n = action(r#"notify "oncall {{server}}""#);
        assert_eq!(
            describe(&n, &with_server("a\nb")),
            r#"notify "oncall a\nb""#
        );
        assert_eq!(describe(&n, &with_server("a")), r#"notify "oncall a""#);
    }
}
