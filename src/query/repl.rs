//! `auditlake repl`: an interactive SQL prompt over the session.
//!
//! Statements may span lines and end with `;`. Backslash commands are one
//! [`Command`] table, which also prints `\?`. Ctrl-C during a query cancels
//! that query and keeps the session; an error is printed and the loop goes on.

use std::borrow::Cow;
use std::io::Write;
use std::str::FromStr;
use std::time::Instant;

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::{DefaultHistory, History};
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};

use super::print::{stream_to, Format};
use super::Session;
use crate::Result;

/// Backslash commands: name, argument, what it does.
pub const COMMANDS: &[(&str, &str, &str)] = &[
    ("\\d", "", "list tables and views"),
    ("\\d", "NAME", "show the columns of a table or view"),
    (
        "\\views",
        "",
        "list the views with the question each answers",
    ),
    (
        "\\timing",
        "",
        "toggle the elapsed time shown under results",
    ),
    (
        "\\format",
        "[FORMAT]",
        "show or set the output format (table, csv, json, ndjson)",
    ),
    ("\\q", "", "quit"),
    ("\\?", "", "this help"),
];

#[derive(Debug, PartialEq)]
pub enum Command {
    List,
    Describe(String),
    Views,
    Timing,
    Format(Option<String>),
    Quit,
    Help,
}

impl FromStr for Command {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut parts = s.trim().trim_end_matches(';').split_whitespace();
        let cmd = parts.next().unwrap_or("");
        let arg = parts.next().map(str::to_string);
        Ok(match (cmd, arg) {
            ("\\d", None) => Command::List,
            ("\\d", Some(n)) => Command::Describe(n),
            ("\\views", None) => Command::Views,
            ("\\timing", None) => Command::Timing,
            ("\\format", a) => Command::Format(a),
            ("\\q", None) | ("\\quit", None) => Command::Quit,
            ("\\?", None) | ("\\h", None) | ("\\help", None) => Command::Help,
            _ => return Err(format!("unknown command {s:?}: \\? lists the commands")),
        })
    }
}

const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP BY",
    "ORDER BY",
    "HAVING",
    "LIMIT",
    "JOIN",
    "LEFT JOIN",
    "ON",
    "AND",
    "OR",
    "NOT",
    "AS",
    "DISTINCT",
    "COUNT",
    "MIN",
    "MAX",
    "SUM",
    "AVG",
    "BETWEEN",
    "IN",
    "IS NULL",
    "IS NOT NULL",
    "LIKE",
    "WITH",
    "UNION",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "DESC",
    "ASC",
    "DATE",
    "INTERVAL",
    "EXPLAIN",
    "date_bin",
    "date_trunc",
];

/// Completes table, view and column names and SQL keywords.
struct ReplHelper {
    words: Vec<String>,
}

impl Completer for ReplHelper {
    type Candidate = Pair;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = line[..pos]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '\\'))
            .map_or(0, |i| i + 1);
        let word = &line[start..pos];
        if word.is_empty() {
            return Ok((pos, vec![]));
        }
        let lower = word.to_lowercase();
        let mut out: Vec<Pair> = self
            .words
            .iter()
            .filter(|w| w.to_lowercase().starts_with(&lower))
            .map(|w| Pair {
                display: w.clone(),
                replacement: w.clone(),
            })
            .collect();
        out.dedup_by(|a, b| a.display == b.display);
        Ok((start, out))
    }
}
impl Hinter for ReplHelper {
    type Hint = String;
}
impl Highlighter for ReplHelper {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        _default: bool,
    ) -> Cow<'b, str> {
        Cow::Borrowed(prompt)
    }
}
impl Validator for ReplHelper {}
impl Helper for ReplHelper {}

async fn completion_words(session: &Session) -> Vec<String> {
    let mut words: Vec<String> = KEYWORDS.iter().map(|s| s.to_string()).collect();
    words.extend(COMMANDS.iter().map(|c| c.0.to_string()));
    for v in &session.views {
        words.push(v.name.clone());
        if let Ok(df) = session.ctx.table(v.name.as_str()).await {
            words.extend(df.schema().fields().iter().map(|f| f.name().clone()));
        }
    }
    words.sort();
    words.dedup();
    words
}

fn history_path() -> Option<std::path::PathBuf> {
    if let Ok(p) = std::env::var("AUDITLAKE_HISTORY") {
        return Some(p.into());
    }
    std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".auditlake_history"))
}

/// Runs the prompt until `\q` or end of input.
pub fn run(
    rt: &tokio::runtime::Runtime,
    session: &Session,
    mut format: Format,
    max_rows: Option<usize>,
) -> Result<()> {
    let words = rt.block_on(completion_words(session));
    let mut rl: Editor<ReplHelper, DefaultHistory> =
        Editor::new().map_err(|e| crate::Error::Usage(format!("cannot start the prompt: {e}")))?;
    rl.set_helper(Some(ReplHelper { words }));
    let history = history_path();
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    let mut timing = true;
    let mut buf = String::new();
    // The banner goes to stderr, so piped output holds results only.
    if !crate::notes::quiet() {
        eprintln!("auditlake {} — SQL over the audit lake. End statements with ';'. \\? for help, \\q to quit.", env!("CARGO_PKG_VERSION"));
    }
    loop {
        let prompt = if buf.is_empty() {
            "auditlake> "
        } else {
            "        -> "
        };
        let line = match rl.readline(prompt) {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => {
                buf.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("auditlake: {e}");
                break;
            }
        };
        if buf.is_empty() && line.trim_start().starts_with('\\') {
            let _ = rl.add_history_entry(line.trim());
            match line.parse::<Command>() {
                Ok(Command::Quit) => break,
                Ok(cmd) => {
                    if let Err(e) = rt.block_on(command(session, cmd, &mut timing, &mut format)) {
                        if !e.is_broken_pipe() {
                            eprintln!("auditlake: {e}");
                        }
                    }
                }
                Err(e) => eprintln!("auditlake: {e}"),
            }
            continue;
        }
        if line.trim().is_empty() && buf.is_empty() {
            continue;
        }
        buf.push_str(&line);
        buf.push('\n');
        if line.trim_end().ends_with(';') {
            let sql = std::mem::take(&mut buf);
            let _ = rl.add_history_entry(sql.trim());
            rt.block_on(execute(session, &sql, format, timing, max_rows));
        }
        if crate::stdout::closed() {
            // The reader of the results went away (`auditlake repl < script | head`).
            return Ok(());
        }
    }
    if !buf.trim().is_empty() {
        rt.block_on(execute(session, &buf, format, timing, max_rows));
    }
    if let Some(h) = &history {
        if rl.history().len() > 0 {
            let _ = rl.save_history(h);
        }
    }
    Ok(())
}

/// Runs one or more statements, streaming each result to stdout; Ctrl-C cancels.
/// A table stops at `max_rows` rows and says how many there were.
async fn execute(
    session: &Session,
    sql: &str,
    format: Format,
    timing: bool,
    max_rows: Option<usize>,
) {
    let work = async {
        let mut out = crate::stdout::lock();
        // Each result with its own time (the first also carries planning the line).
        let mut since = Instant::now();
        for df in session.statements(sql).await? {
            if df.schema().fields().is_empty() {
                since = Instant::now();
                continue; // DDL: nothing to show
            }
            let rows = stream_to(df, &mut out, format, max_rows).await?;
            let elapsed = if timing {
                format!(" in {:.3}s", since.elapsed().as_secs_f64())
            } else {
                String::new()
            };
            let cut = match max_rows {
                Some(m) if format == Format::Table && rows > m => {
                    format!(" (first {m} shown; --maxrows or \\format csv for all)")
                }
                _ => String::new(),
            };
            writeln!(
                out,
                "{rows} row{}{elapsed}{cut}",
                if rows == 1 { "" } else { "s" }
            )
            .map_err(|e| crate::Error::io(std::path::Path::new("<stdout>"), e))?;
            since = Instant::now();
        }
        Ok::<_, crate::Error>(())
    };
    let result = tokio::select! {
        r = work => r,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("auditlake: query cancelled");
            return;
        }
    };
    match result {
        Err(e) if !e.is_broken_pipe() => eprintln!("auditlake: {}", one_line(&e.to_string())),
        _ => {}
    }
}

/// Errors on one line, as the house prints them.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

async fn command(
    session: &Session,
    cmd: Command,
    timing: &mut bool,
    format: &mut Format,
) -> Result<()> {
    let mut out = crate::stdout::lock();
    let w = |out: &mut crate::stdout::Stdout, s: String| {
        let _ = writeln!(out, "{s}");
    };
    match cmd {
        Command::List => {
            for v in &session.views {
                let kind = if v.name == "action_catalog" || v.name == "events" {
                    "table"
                } else {
                    "view"
                };
                w(&mut out, format!("{:<20} {kind}", v.name));
            }
        }
        Command::Describe(name) => {
            let df = session.ctx.table(name.as_str()).await?;
            if let Some(v) = session.views.iter().find(|v| v.name == name) {
                w(&mut out, format!("{} — {}", v.name, v.purpose));
            }
            for f in df.schema().fields() {
                w(
                    &mut out,
                    format!(
                        "  {:<16} {:<28} {}",
                        f.name(),
                        f.data_type().to_string(),
                        if f.is_nullable() { "" } else { "not null" }
                    ),
                );
            }
        }
        Command::Views => {
            for v in &session.views {
                w(&mut out, format!("{:<20} {}", v.name, v.purpose));
            }
        }
        Command::Timing => {
            *timing = !*timing;
            w(
                &mut out,
                format!("timing {}", if *timing { "on" } else { "off" }),
            );
        }
        Command::Format(None) => w(&mut out, format!("format {format:?}").to_lowercase()),
        Command::Format(Some(f)) => {
            let f: Format = f.parse().map_err(crate::Error::Usage)?;
            if f == Format::Parquet {
                return Err(crate::Error::Usage(
                    "parquet output needs a file: use `auditlake query -o FILE`".into(),
                ));
            }
            *format = f;
            w(&mut out, format!("format {f:?}").to_lowercase());
        }
        Command::Help => {
            for (name, arg, what) in COMMANDS {
                w(
                    &mut out,
                    format!("  {:<18} {what}", format!("{name} {arg}").trim_end()),
                );
            }
        }
        Command::Quit => {}
    }
    Ok(())
}
