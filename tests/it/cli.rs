//! The command line itself: completions and man pages from the clap definitions,
//! logging and --quiet, flag names, read-only commands on a missing lake, --threads.

use std::process::Output;

use crate::common::{assert_success, bin};

/// The subcommands a user sees (the hidden `inflate` is not among them).
const SUBCOMMANDS: &[&str] = &[
    "convert", "status", "verify", "query", "repl", "report", "generate", "completions",
    "manpage",
];

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

#[test]
fn completions_for_every_shell_name_the_subcommands() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = bin().args(["completions", shell]).output().unwrap();
        assert_success(&out);
        let script = stdout(&out);
        assert!(script.len() > 1000, "{shell}: a script of {} bytes", script.len());
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell}'s script does not name {sub}");
        }
    }
}

#[test]
fn bash_completion_script_loads() {
    let exe = env!("CARGO_BIN_EXE_auditlake");
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("source <('{exe}' completions bash) && complete -p auditlake"))
        .output()
        .expect("run bash");
    assert_success(&out);
    assert!(stdout(&out).contains("auditlake"), "{}", stdout(&out));
}

#[test]
fn unknown_shell_is_a_usage_error() {
    let out = bin().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("auditlake: "));
}

fn man_available() -> bool {
    std::process::Command::new("man")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Renders a roff page with `man -l -`, as a user would read it.
fn render_man(page: &[u8]) -> String {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = std::process::Command::new("man")
        .args(["-l", "-"])
        .env("MANWIDTH", "100")
        .env("MAN_KEEP_FORMATTING", "")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(page).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_success(&out);
    stdout(&out)
}

#[test]
fn manpage_is_roff_and_renders() {
    let out = bin().arg("manpage").output().unwrap();
    assert_success(&out);
    let page = stdout(&out);
    let th = page
        .lines()
        .find(|l| l.starts_with(".TH "))
        .expect("a .TH line");
    assert!(th.starts_with(".TH auditlake 1"), "{th}");
    assert!(th.contains(env!("CARGO_PKG_VERSION")), "{th}");
    assert!(page.contains(".SH NAME") && page.contains(".SH SYNOPSIS"));
    for sub in SUBCOMMANDS {
        assert!(page.contains(sub), "the page does not name {sub}");
    }
    if man_available() {
        let text = render_man(&out.stdout);
        assert!(text.contains("NAME") && text.contains("auditlake"), "{text}");
        assert!(text.contains("Columnar analytics over HSM audit archives"), "{text}");
    } else {
        eprintln!("man is not installed: checked the roff only");
    }
}

#[test]
fn manpage_dir_writes_one_page_per_subcommand() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("man1");
    let out = bin().arg("manpage").arg("--dir").arg(&dir).output().unwrap();
    assert_success(&out);
    assert!(out.stdout.is_empty(), "nothing on stdout with --dir");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut want: Vec<String> = SUBCOMMANDS
        .iter()
        .map(|s| format!("auditlake-{s}.1"))
        .chain(["auditlake.1".to_string()])
        .collect();
    want.sort();
    assert_eq!(names, want);
    let convert = std::fs::read(dir.join("auditlake-convert.1")).unwrap();
    let text = String::from_utf8_lossy(&convert);
    assert!(text.contains(".TH auditlake-convert 1"), "{text}");
    assert!(text.contains("buffer\\-mb"), "the convert page lists its flags");
    if man_available() {
        assert!(render_man(&convert).contains("--buffer-mb"));
    }
}
