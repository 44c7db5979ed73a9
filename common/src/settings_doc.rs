//! The settings tables of the READMEs, generated from the clap definitions, so that each
//! setting is documented once: in the doc comment of its field. `minifig config --markdown`
//! and `factory config --markdown` print them; each README holds the output between
//! `<!-- settings:NAME -->` and `<!-- /settings:NAME -->`, and a test of each binary fails
//! when that copy is stale.

use std::fmt::Write;

use clap::{Arg, Command};

/// A variable that clap does not read (the log filter, which tracing-subscriber reads
/// itself), documented beside the code that uses it.
#[derive(Debug, Clone, Copy)]
pub struct EnvOnly {
    pub name: &'static str,
    pub default: &'static str,
    pub meaning: &'static str,
}

/// The row of `RUST_LOG`, whose default each binary sets for itself.
pub const fn rust_log(default: &'static str) -> EnvOnly {
    EnvOnly {
        name: "RUST_LOG",
        default,
        meaning: "Log filter ([`EnvFilter`](https://docs.rs/tracing-subscriber/latest/tracing_subscriber/filter/struct.EnvFilter.html) syntax).",
    }
}

/// The Markdown table of every argument of `command` that has an environment variable,
/// in declaration order, then the `env_only` variables: variable, default, meaning.
pub fn markdown(command: &Command, env_only: &[EnvOnly]) -> String {
    let mut table = String::from("| variable | default | meaning |\n| --- | --- | --- |\n");
    for arg in command.get_arguments().filter(|arg| !arg.is_hide_set()) {
        let Some(name) = arg.get_env() else { continue };
        row(&mut table, &name.to_string_lossy(), &default_of(arg), &meaning_of(arg));
    }
    for variable in env_only {
        row(&mut table, variable.name, &code(variable.default), variable.meaning);
    }
    table
}

/// The text between `<!-- settings:NAME -->` and `<!-- /settings:NAME -->` in `document`
/// (without the marker lines), where [`markdown`]'s output is kept.
pub fn section<'a>(document: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<!-- settings:{name} -->\n");
    let close = format!("<!-- /settings:{name} -->");
    let start = document.find(&open)? + open.len();
    let end = start + document[start..].find(&close)?;
    Some(&document[start..end])
}

fn row(table: &mut String, name: &str, default: &str, meaning: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(table, "| `{name}` | {default} | {} |", cell(meaning));
}

fn default_of(arg: &Arg) -> String {
    let defaults: Vec<String> = arg.get_default_values().iter().map(|value| value.to_string_lossy().into()).collect();
    if !defaults.is_empty() {
        code(&defaults.join(","))
    } else if arg.is_required_set() {
        "required".into()
    } else {
        "unset".into()
    }
}

/// The whole doc comment: clap keeps it as the long help when it has several paragraphs,
/// and as the help (without its final full stop) when it has one.
fn meaning_of(arg: &Arg) -> String {
    if let Some(long) = arg.get_long_help() {
        return long.to_string();
    }
    let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
    if help.is_empty() || help.ends_with(['.', '!', '?']) { help } else { format!("{help}.") }
}

/// A table cell is one line, and `|` would end it.
fn cell(text: &str) -> String {
    text.split("\n\n").map(|paragraph| paragraph.replace('\n', " ")).collect::<Vec<_>>().join(" ").replace('|', "\\|")
}

fn code(text: &str) -> String {
    format!("`{text}`")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The help text.
    #[derive(Debug, clap::Parser)]
    #[command(name = "example")]
    struct Example {
        /// Where to listen.
        #[arg(long, env = "EXAMPLE_HOST", default_value = "127.0.0.1")]
        host: String,
        /// First paragraph.
        ///
        /// Second paragraph, with a | in it.
        #[arg(long, env = "EXAMPLE_TOKEN")]
        token: String,
        /// Optional.
        #[arg(long, env = "EXAMPLE_OPTIONAL")]
        optional: Option<u32>,
        /// Without a variable, so not a setting.
        #[arg(long)]
        flag: bool,
    }

    #[test]
    fn every_variable_gets_its_default_or_whether_it_is_required_and_its_whole_doc() {
        use clap::CommandFactory;
        let log = EnvOnly { name: "RUST_LOG", default: "info", meaning: "log filter" };
        assert_eq!(
            markdown(&Example::command(), &[log]),
            "| variable | default | meaning |\n\
             | --- | --- | --- |\n\
             | `EXAMPLE_HOST` | `127.0.0.1` | Where to listen. |\n\
             | `EXAMPLE_TOKEN` | required | First paragraph. Second paragraph, with a \\| in it. |\n\
             | `EXAMPLE_OPTIONAL` | unset | Optional. |\n\
             | `RUST_LOG` | `info` | log filter |\n"
        );
    }

    #[test]
    fn a_section_is_what_lies_between_its_markers() {
        let readme = "intro\n<!-- settings:x -->\n| a |\n<!-- /settings:x -->\nafter";
        assert_eq!(section(readme, "x"), Some("| a |\n"));
        assert_eq!(section(readme, "y"), None);
        assert_eq!(section("<!-- settings:x -->\nunclosed", "x"), None);
    }
}
