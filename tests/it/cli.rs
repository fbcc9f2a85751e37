//! The command line itself: completions and man pages from the clap definitions,
//! logging and --quiet, flag names, read-only commands on a missing lake, --threads.

use std::process::Output;

use crate::common::{assert_success, bin};

/// The subcommands a user sees (the hidden `inflate` is not among them).
const SUBCOMMANDS: &[&str] = &[
    "convert",
    "fetch",
    "status",
    "verify",
    "compact",
    "prune",
    "query",
    "repl",
    "report",
    "findings",
    "serve",
    "users",
    "generate",
    "completions",
    "manpage",
    "config",
    "rules",
    "keys",
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
        assert!(
            script.len() > 1000,
            "{shell}: a script of {} bytes",
            script.len()
        );
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
        .arg(format!(
            "source <('{exe}' completions bash) && complete -p auditlake"
        ))
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
        assert!(
            text.contains("NAME") && text.contains("auditlake"),
            "{text}"
        );
        assert!(
            text.contains("Columnar analytics over HSM audit archives"),
            "{text}"
        );
    } else {
        eprintln!("man is not installed: checked the roff only");
    }
}

#[test]
fn manpage_dir_writes_one_page_per_subcommand() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("man1");
    let out = bin()
        .arg("manpage")
        .arg("--dir")
        .arg(&dir)
        .output()
        .unwrap();
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
        .chain([
            "auditlake.1".to_string(),
            "auditlake-config-show.1".to_string(),
            "auditlake-rules-show.1".to_string(),
            "auditlake-keys-generate.1".to_string(),
            "auditlake-findings-ack.1".to_string(),
            "auditlake-users-add.1".to_string(),
            "auditlake-users-list.1".to_string(),
            "auditlake-users-remove.1".to_string(),
        ])
        .collect();
    want.sort();
    assert_eq!(names, want);
    let convert = std::fs::read(dir.join("auditlake-convert.1")).unwrap();
    let text = String::from_utf8_lossy(&convert);
    assert!(text.contains(".TH auditlake-convert 1"), "{text}");
    assert!(
        text.contains("buffer\\-mb"),
        "the convert page lists its flags"
    );
    if man_available() {
        assert!(render_man(&convert).contains("--buffer-mb"));
    }
}

// ---- -v and -q ------------------------------------------------------------------------

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn verbose_logs_go_to_stderr_and_never_change_stdout() {
    let lake = crate::query::sample_lake();
    let sql = "SELECT tenant_id, count(*) AS n FROM events GROUP BY tenant_id ORDER BY tenant_id";
    for format in ["table", "ndjson"] {
        let run = |flags: &[&str]| {
            bin()
                .env_remove("RUST_LOG")
                .args(flags)
                .args(["query", "--format", format, "--lake"])
                .arg(lake)
                .arg(sql)
                .output()
                .unwrap()
        };
        let plain = run(&[]);
        assert_success(&plain);
        assert_eq!(stderr(&plain), "", "nothing on stderr without -v");
        for flags in [&["-v"][..], &["-vv"], &["--verbose"]] {
            let loud = run(flags);
            assert_success(&loud);
            assert_eq!(
                loud.stdout, plain.stdout,
                "{format} {flags:?}: stdout differs"
            );
            let log = stderr(&loud);
            assert!(
                log.contains("INFO") && log.contains("running SQL"),
                "{flags:?}: {log}"
            );
            assert!(log.contains("session: events registered"), "{log}");
            assert_eq!(*flags == ["-vv"], log.contains("DEBUG"), "{flags:?}: {log}");
        }
    }
    // -v after the subcommand too (a global flag), and RUST_LOG chooses when set.
    let out = bin()
        .args(["query", "-v", "--lake"])
        .arg(lake)
        .arg("SELECT 1")
        .env("RUST_LOG", "auditlake=debug")
        .output()
        .unwrap();
    assert_success(&out);
    assert!(stderr(&out).contains("DEBUG"), "{}", stderr(&out));
}

#[test]
fn verbose_convert_logs_sources_and_files() {
    let tmp = tempfile::tempdir().unwrap();
    let files = &crate::common::sample_files()[..2];
    let out = bin()
        .env_remove("RUST_LOG")
        .arg("-vv")
        .arg("convert")
        .args(files)
        .arg("--lake")
        .arg(tmp.path().join("lake"))
        .arg("--json")
        .output()
        .unwrap();
    assert_success(&out);
    let summary: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is JSON only");
    let log = stderr(&out);
    assert!(log.contains("sources found sources=2"), "{log}");
    assert!(log.contains("file published"), "{log}");
    assert!(
        log.contains(&format!("files={}", summary["files"])),
        "{log}"
    );
}

/// Every subcommand takes -q (before or after its name) and succeeds.
#[test]
fn quiet_is_accepted_by_every_subcommand() {
    let lake = crate::query::sample_lake();
    let tmp = tempfile::tempdir().unwrap();
    let l = lake.to_str().unwrap();
    let gen = tmp.path().join("gen");
    let g = gen.to_str().unwrap();
    let fresh = tmp.path().join("fresh");
    let one = crate::common::sample_files()[0].clone();
    let runs: Vec<Vec<&str>> = vec![
        vec![
            "convert",
            one.to_str().unwrap(),
            "--lake",
            fresh.to_str().unwrap(),
        ],
        vec!["status", "--lake", l],
        vec!["verify", "--lake", l],
        vec!["query", "--lake", l, "SELECT 1"],
        vec!["report", "daily_summary", "--lake", l],
        vec!["generate", "--output", g, "--events", "50", "--months", "1"],
        vec!["completions", "bash"],
        vec!["manpage"],
    ];
    for args in runs {
        for before in [true, false] {
            let mut cmd = bin();
            if before {
                cmd.arg("-q").args(&args);
            } else {
                cmd.arg(args[0]).arg("-q").args(&args[1..]);
            }
            let out = cmd.output().unwrap();
            assert_success(&out);
        }
    }
    let out = crate::common::with_stdin(
        bin()
            .args(["repl", "-q", "--lake", l])
            .env("AUDITLAKE_HISTORY", tmp.path().join("h")),
        "SELECT 1 AS one;\n\\q\n",
    );
    assert_success(&out);
    assert!(
        !stderr(&out).contains("SQL over the audit lake"),
        "-q drops the banner"
    );
}

#[test]
fn quiet_silences_notes_but_not_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let gen = |quiet: bool, dir: &str| {
        let mut c = bin();
        if quiet {
            c.arg("-q");
        }
        c.args(["generate", "--events", "50", "--months", "1", "--output"])
            .arg(tmp.path().join(dir))
            .output()
            .unwrap()
    };
    let loud = gen(false, "a");
    assert_success(&loud);
    assert!(
        stderr(&loud).contains("wrote 3 exports"),
        "{}",
        stderr(&loud)
    );
    let quiet = gen(true, "b");
    assert_success(&quiet);
    assert_eq!(stderr(&quiet), "");

    let lake = crate::query::sample_lake();
    let report = |quiet: bool| {
        let mut c = bin();
        if quiet {
            c.arg("-q");
        }
        c.args(["report", "failed_auth", "--lake"])
            .arg(lake)
            .arg("--output")
            .arg(tmp.path().join("r.md"))
            .output()
            .unwrap()
    };
    let loud = report(false);
    assert_success(&loud);
    assert!(stderr(&loud).contains("1 reports,"), "{}", stderr(&loud));
    let quiet = report(true);
    assert_success(&quiet);
    assert_eq!(stderr(&quiet), "");

    // An error still shows.
    let out = bin()
        .args(["-q", "query", "--lake"])
        .arg(lake)
        .arg("SELECT nope FROM events")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).starts_with("auditlake: "), "{}", stderr(&out));
}

#[test]
fn quiet_convert_does_not_name_skipped_zip_entries() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.zip");
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        z.add_directory("export/", opts).unwrap();
        z.start_file("export/audit.json", opts).unwrap();
        z.write_all(br#"[{"time":"2025-03-01 09:00:00 UTC","source":"thales/cloudhsm/p1","resourceID":"r1","actorID":"a1","tenantID":"t-q","action":"LUNA_LOGIN","status":"LUNA_RET_OK","traceID":"q1","meta":{"clientip":"10.0.0.1","role":"CO"}}]"#).unwrap();
        z.finish().unwrap();
    }
    let loud = crate::common::convert(&dir.path().join("a"), std::slice::from_ref(&path), &[]);
    assert_eq!(loud.code, 0, "{}", loud.stderr);
    assert!(
        loud.stderr.contains("skipped 1 zip entry"),
        "{}",
        loud.stderr
    );
    // `convert -q`, as before -q became global.
    let quiet = crate::common::convert(&dir.path().join("b"), &[path], &["-q"]);
    assert_eq!(quiet.code, 0, "{}", quiet.stderr);
    assert_eq!(quiet.stderr, "");
    assert_eq!(
        quiet.summary["skipped_entries"],
        loud.summary["skipped_entries"]
    );
}

// ---- one name per concept ---------------------------------------------------------------

#[test]
fn report_writes_with_output_o_and_the_old_out() {
    let lake = crate::query::sample_lake();
    let tmp = tempfile::tempdir().unwrap();
    let mut pages = Vec::new();
    for flag in ["--output", "-o", "--out"] {
        let path = tmp.path().join(format!("r{}.json", pages.len()));
        let out = bin()
            .args([
                "report",
                "failed_auth",
                "--format",
                "json",
                "--from",
                "2025-01-01",
                "--to",
                "2025-12-31",
                "--lake",
            ])
            .arg(lake)
            .arg(flag)
            .arg(&path)
            .output()
            .unwrap();
        assert_success(&out);
        assert!(
            out.stdout.is_empty(),
            "{flag}: the report goes to the file only"
        );
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        v["coverage"]["generated_at"] = serde_json::Value::Null;
        pages.push(v);
    }
    assert!(
        pages.windows(2).all(|w| w[0] == w[1]),
        "the same report three ways"
    );
    // --out is hidden: help shows one name.
    let help = stdout(&bin().args(["report", "--help"]).output().unwrap());
    assert!(help.contains("-o, --output <PATH|URL>"), "{help}");
    assert!(!help.contains("--out "), "{help}");
}

#[test]
fn every_written_file_is_named_by_output() {
    for sub in ["query", "report", "generate"] {
        let help = stdout(&bin().args([sub, "--help"]).output().unwrap());
        assert!(help.contains("-o, --output <"), "{sub}: {help}");
    }
}

// ---- read-only commands create nothing ----------------------------------------------------

#[test]
fn read_only_commands_on_a_missing_lake_say_so_and_create_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("not-yet").join("lake");
    let l = lake.to_str().unwrap();
    let runs: Vec<Vec<&str>> = vec![
        vec!["status", "--lake", l],
        vec!["status", "--json", "--lake", l],
        vec!["query", "--lake", l, "SELECT 1"],
        vec!["repl", "--lake", l],
        vec!["report", "--lake", l],
        vec!["report", "--lake", l, "--output", "never.md"],
        vec!["verify", "--lake", l],
        vec!["verify", "--fix", "--lake", l],
        vec!["compact", "--lake", l],
        vec!["compact", "--dry-run", "--lake", l],
        vec!["prune", "--older-than", "12mo", "--lake", l],
    ];
    for args in runs {
        let out = crate::common::with_stdin(bin().args(&args).current_dir(tmp.path()), "\\q\n");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert_eq!(
            stderr(&out),
            format!("auditlake: no lake at {l}\n"),
            "{args:?}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(
            !tmp.path().join("not-yet").exists(),
            "{args:?} created the lake's parent"
        );
        assert!(
            !tmp.path().join("never.md").exists(),
            "{args:?} wrote a report"
        );
    }
    // The lake from the environment, too.
    let out = bin()
        .arg("status")
        .env("AUDITLAKE_LAKE", &lake)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out), format!("auditlake: no lake at {l}\n"));
    assert!(!lake.exists());
}

#[test]
fn read_only_commands_on_an_empty_directory_say_there_is_no_lake() {
    let tmp = tempfile::tempdir().unwrap();
    let l = tmp.path().to_str().unwrap();
    for args in [
        vec!["status", "--lake", l],
        vec!["query", "--lake", l, "SELECT 1"],
        vec!["report", "--lake", l],
        vec!["verify", "--lake", l],
    ] {
        let out = bin().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert_eq!(
            stderr(&out),
            format!("auditlake: no lake at {l}\n"),
            "{args:?}"
        );
        assert_eq!(
            std::fs::read_dir(tmp.path()).unwrap().count(),
            0,
            "{args:?} wrote into it"
        );
    }
}

// ---- --threads bounds the worker pools ----------------------------------------------------

/// Names of the threads of a running process, from /proc.
fn thread_names(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim().to_string())
        .collect()
}

/// Converts the sample year with `--threads N`, paused in the first decode (so that
/// decoder stays and the writer, waiting for its result, keeps the encoders), and counts
/// (decoders, encoders, async workers) once the encoders are up.
fn threads_while_converting(threads: &str) -> (usize, usize, usize) {
    use std::io::BufRead;
    use std::process::Stdio;
    let tmp = tempfile::tempdir().unwrap();
    let mut child = bin()
        .arg("convert")
        .arg(crate::common::testdata("sample"))
        .arg("--lake")
        .arg(tmp.path().join("lake"))
        .args(["--json", "--threads", threads])
        .env("AUDITLAKE_PAUSE_AT", "decode:1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let paused = lines.any(|l| l.unwrap().contains("paused at decode:1"));
    // The encoders start right after the decoders, on the main thread: wait for them.
    let count =
        |names: &[String], prefix: &str| names.iter().filter(|n| n.starts_with(prefix)).count();
    let want: usize = threads.parse().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut names = thread_names(child.id());
    while paused && count(&names, "encoder-") < want && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        names = thread_names(child.id());
    }
    // A little longer: more than `want` encoders would show up now.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let names = thread_names(child.id());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(paused, "the convert never reached its first decode");
    let count = |prefix: &str| count(&names, prefix);
    (count("decoder-"), count("encoder-"), count("convert-io"))
}

#[test]
fn threads_bounds_decoders_encoders_and_async_workers() {
    let (decoders, encoders, io) = threads_while_converting("1");
    assert_eq!((decoders, encoders), (1, 1), "--threads 1");
    // The async workers (plus any blocking-pool thread busy at that moment).
    assert!(io >= 1, "the runtime's threads are named convert-io");
    // Decoders other than the paused one may have finished their work and ended.
    let (decoders, encoders, _) = threads_while_converting("3");
    assert!(
        (1..=3).contains(&decoders),
        "--threads 3: {decoders} decoders"
    );
    assert_eq!(encoders, 3, "--threads 3");
}

// ---- README and --help agree --------------------------------------------------------------

/// Every `[default: X]` of every subcommand's --help, by flag (`--buffer-mb` → {"160"}).
fn help_defaults() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let mut out: std::collections::BTreeMap<_, std::collections::BTreeSet<_>> = Default::default();
    for sub in SUBCOMMANDS {
        let help = stdout(&bin().args([sub, "--help"]).output().unwrap());
        let mut flag: Option<String> = None;
        for line in help.lines() {
            let t = line.trim_start();
            if t.starts_with('-') {
                flag = t
                    .split([',', ' ', '='])
                    .find(|w| w.starts_with("--"))
                    .map(str::to_string);
            }
            if let (Some(f), Some(i)) = (&flag, t.find("[default: ")) {
                let v = t[i + 10..].trim_end_matches(']').to_string();
                out.entry(f.clone()).or_default().insert(v);
            }
        }
    }
    out
}

/// Each mention in the README of a flag's default: "`--flag` … default X" or
/// "`--flag` … X by default" within the same sentence, and "[--flag 123]" in a synopsis.
fn readme_defaults() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let token = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
            .collect()
    };
    let mut out = Vec::new();
    for (i, _) in text.match_indices("--") {
        let name: String = text[i + 2..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
            .collect();
        if name.is_empty() || text[..i].ends_with('-') {
            continue;
        }
        let flag = format!("--{name}");
        let rest = &text[i + flag.len()..];
        // A synopsis "[--flag 123]": a number there reads as the default.
        if let Some(v) = rest.strip_prefix(' ').filter(|_| text[..i].ends_with('[')) {
            let v = token(v);
            if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()) {
                out.push((flag.clone(), v));
            }
        }
        if !text[..i].ends_with('`') {
            continue;
        }
        // The rest of the sentence, up to the next flag.
        let end = [". ", "`--", "; "]
            .iter()
            .filter_map(|p| rest.find(p))
            .min()
            .unwrap_or(rest.len())
            .min(80);
        let window = &rest[..end];
        if let Some(j) = window.find("default ") {
            let v = token(&window[j + 8..]);
            if !v.is_empty() {
                out.push((flag.clone(), v));
            }
        } else if let Some(j) = window.find(" by default") {
            let before = window[..j].trim_end();
            let v: String = before
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            if !v.is_empty() {
                out.push((flag, v));
            }
        }
    }
    out
}

#[test]
fn readme_and_help_agree_on_every_default() {
    let help = help_defaults();
    assert_eq!(help["--buffer-mb"], ["160".to_string()].into());
    let said = readme_defaults();
    // The parser sees the mentions it is meant to see.
    for flag in [
        "--buffer-mb",
        "--max-record-mb",
        "--zstd-level",
        "--maxrows",
    ] {
        assert!(
            said.iter().any(|(f, _)| f == flag),
            "no default of {flag} found in the README: {said:?}"
        );
    }
    for (flag, value) in &said {
        let Some(defaults) = help.get(flag) else {
            panic!("the README gives {flag} a default ({value}) that no --help shows");
        };
        assert!(
            defaults.contains(value),
            "the README says {flag} defaults to {value}, --help says {defaults:?}"
        );
    }
}

// ---- the config file ------------------------------------------------------------------------

const CONFIG: &str = r#"
lake = "LAKE_A"
storage_options = { aws_region = "eu-west-1", aws_secret_access_key = "file-secret-1" }
cluster = "df://scheduler:50050"
dpod_api_url = "https://thales.example/api"
dpod_token_url = "https://thales.example/token"
secret_file = "/run/secrets/dpod"

[profiles.prod]
lake = "s3://acme-audit-lake/dpod"
storage_options = { aws_session_token = "profile-token-2" }
"#;

fn show(config_home: &std::path::Path, args: &[&str], env_lake: Option<&str>) -> String {
    let mut c = bin();
    c.env("XDG_CONFIG_HOME", config_home).args(args);
    if let Some(l) = env_lake {
        c.env("AUDITLAKE_LAKE", l);
    }
    let out = c.output().unwrap();
    assert_success(&out);
    let text = stdout(&out);
    for secret in ["file-secret-1", "profile-token-2", "flag-secret-3"] {
        assert!(!text.contains(secret), "a secret shown: {text}");
    }
    text
}

#[test]
fn config_precedence_is_flag_then_environment_then_file_and_secrets_are_masked() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = crate::query::sample_lake();
    let home = tmp.path().join("xdg");
    std::fs::create_dir_all(home.join("auditlake")).unwrap();
    std::fs::write(
        home.join("auditlake/config.toml"),
        CONFIG.replace("LAKE_A", lake.to_str().unwrap()),
    )
    .unwrap();
    let l = lake.display().to_string();

    // The file from $XDG_CONFIG_HOME.
    let text = show(&home, &["config", "show"], None);
    assert!(text.contains(&format!("lake: {l} (config file)")), "{text}");
    assert!(
        text.contains("storage option aws_region: eu-west-1 (config file)"),
        "{text}"
    );
    assert!(
        text.contains("storage option aws_secret_access_key: **** (config file)"),
        "{text}"
    );
    for reserved in [
        "cluster: df://scheduler:50050",
        "dpod_api_url: https://thales.example/api",
        "dpod_token_url: https://thales.example/token",
        "secret_file: /run/secrets/dpod",
    ] {
        assert!(text.contains(reserved), "{reserved}: {text}");
    }
    // The environment over the file, a flag over both.
    let text = show(&home, &["config", "show"], Some("/env/lake"));
    assert!(
        text.contains("lake: /env/lake (environment: AUDITLAKE_LAKE)"),
        "{text}"
    );
    let text = show(
        &home,
        &[
            "config",
            "show",
            "--lake",
            "/flag/lake",
            "--storage-option",
            "aws_region=us-east-1",
            "--storage-option",
            "aws_secret_access_key=flag-secret-3",
        ],
        Some("/env/lake"),
    );
    assert!(text.contains("lake: /flag/lake (flag)"), "{text}");
    assert!(
        text.contains("storage option aws_region: us-east-1 (flag)"),
        "{text}"
    );
    assert!(
        !text.contains("eu-west-1"),
        "the flag's option replaces the file's: {text}"
    );
    assert!(
        text.contains("storage option aws_secret_access_key: **** (flag)"),
        "{text}"
    );
    // A profile over the top level; --config FILE instead of the default place.
    let file = tmp.path().join("other.toml");
    std::fs::write(&file, CONFIG).unwrap();
    let text = show(
        &home,
        &[
            "--profile",
            "prod",
            "config",
            "show",
            "--config",
            file.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        text.contains(&format!("config file: {}", file.display())),
        "{text}"
    );
    assert!(
        text.contains("lake: s3://acme-audit-lake/dpod (config file, profile prod)"),
        "{text}"
    );
    assert!(
        text.contains("storage option aws_session_token: ****"),
        "{text}"
    );

    // A real command takes its lake from the file.
    let out = bin()
        .env("XDG_CONFIG_HOME", &home)
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert_success(&out);
    let out = bin()
        .env("XDG_CONFIG_HOME", &home)
        .env("AUDITLAKE_LAKE", tmp.path().join("nope"))
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "the environment wins over the file"
    );
    assert!(stderr(&out).contains("no lake at"), "{}", stderr(&out));

    // Errors: an unknown profile, a missing --config file, a bad file, no lake at all.
    for (args, want) in [
        (
            vec!["--profile", "staging", "status"],
            "no profile \"staging\"",
        ),
        (
            vec!["status", "--config", "/nonexistent/auditlake.toml"],
            "/nonexistent/auditlake.toml",
        ),
    ] {
        let out = bin()
            .env("XDG_CONFIG_HOME", &home)
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&out).starts_with("auditlake: ") && stderr(&out).contains(want),
            "{}",
            stderr(&out)
        );
    }
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "lake = 3\n").unwrap();
    let out = bin()
        .args(["status", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    let out = bin().arg("status").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no lake: give --lake"),
        "{}",
        stderr(&out)
    );
}

/// `--cluster` (or $AUDITLAKE_CLUSTER) with no scheduler at the address: one line naming
/// it, exit 2, nothing on stdout.
#[test]
fn cluster_with_no_scheduler_there_is_one_line() {
    let l = crate::query::sample_lake().to_str().unwrap();
    let port = crate::common::free_port();
    let url = format!("df://127.0.0.1:{port}");
    let prefix = format!("auditlake: --cluster {url}: could not open a session on the scheduler");
    for args in [
        vec!["query", "--lake", l, "--cluster", &url, "SELECT 1"],
        vec!["repl", "--lake", l, "--cluster", &url],
        vec!["report", "--lake", l, "--cluster", &url],
    ] {
        let out = crate::common::with_stdin(bin().args(&args), "\\q\n");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert_eq!(
            stderr(&out).lines().count(),
            1,
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).starts_with(&prefix),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let out = bin()
        .args(["query", "--lake", l, "SELECT 1"])
        .env("AUDITLAKE_CLUSTER", &url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).starts_with(&prefix), "{}", stderr(&out));
}

/// Every help page: `auditlake --help`, `auditlake SUB --help` (the hidden `inflate`
/// too), the nested `config show` and `rules show`; (snapshot name, arguments).
fn help_pages() -> Vec<(String, Vec<&'static str>)> {
    let mut pages = vec![("auditlake".to_string(), vec!["--help"])];
    for sub in SUBCOMMANDS.iter().chain(&["inflate"]) {
        pages.push((sub.to_string(), vec![sub, "--help"]));
    }
    pages.push(("config-show".into(), vec!["config", "show", "--help"]));
    pages.push(("rules-show".into(), vec!["rules", "show", "--help"]));
    pages.push(("keys-generate".into(), vec!["keys", "generate", "--help"]));
    pages.push(("findings-ack".into(), vec!["findings", "ack", "--help"]));
    pages.push(("users-add".into(), vec!["users", "add", "--help"]));
    pages
}

/// The help the binary prints for `args`, the same whatever terminal the tests run in:
/// clap wraps at the terminal's width, else at $COLUMNS, so no terminal and COLUMNS=100.
fn help_text(args: &[&str]) -> String {
    let out = bin()
        .args(args)
        .env("COLUMNS", "100")
        .env_remove("LINES")
        .env_remove("AUDITLAKE_DPOD_API")
        .env_remove("AUDITLAKE_DPOD_TOKEN_URL")
        .env_remove("AUDITLAKE_DPOD_CLIENT_ID")
        .env_remove("AUDITLAKE_DPOD_SECRET_FILE")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_success(&out);
    assert!(out.stderr.is_empty(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

/// Compares `actual` with tests/snapshots/help/NAME.txt, naming the first line that
/// differs; AUDITLAKE_UPDATE_SNAPSHOTS=1 writes the snapshot instead.
fn assert_help_snapshot(name: &str, what: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots/help")
        .join(format!("{name}.txt"));
    if std::env::var_os("AUDITLAKE_UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no snapshot {}: run with AUDITLAKE_UPDATE_SNAPSHOTS=1",
            path.display()
        )
    });
    if actual == expected {
        return;
    }
    let (mut e, mut a) = (expected.lines(), actual.lines());
    for line in 1.. {
        let (want, got) = (e.next(), a.next());
        if want != got {
            panic!(
                "{what} differs from {} at line {line}:\n  snapshot: {want:?}\n  now:      {got:?}\n\
                 (a deliberate change: rerun with AUDITLAKE_UPDATE_SNAPSHOTS=1 and commit the file)",
                path.display()
            );
        }
        if want.is_none() {
            break;
        }
    }
    panic!(
        "{what} differs from {} in line endings or the final newline",
        path.display()
    );
}

/// The help of the top level and of every subcommand is as committed: a refactor of
/// the clap definitions must not change a flag, default, env var or line of help.
#[test]
fn help_of_every_command_matches_its_snapshot() {
    for (name, args) in help_pages() {
        let what = format!("`auditlake {}`", args.join(" "));
        assert_help_snapshot(&name, &what, &help_text(&args));
    }
}

/// `auditlake help SUB` prints what `auditlake SUB --help` prints.
#[test]
fn help_subcommand_matches_the_snapshots() {
    for (name, args) in help_pages().into_iter().skip(1) {
        let mut help = vec!["help"];
        help.extend(&args[..args.len() - 1]);
        let what = format!("`auditlake {}`", help.join(" "));
        assert_help_snapshot(&name, &what, &help_text(&help));
    }
}

/// The short help (`-h`: each flag's first line, the command's first paragraph) too.
#[test]
fn short_help_of_every_command_matches_its_snapshot() {
    for (name, mut args) in help_pages() {
        *args.last_mut().unwrap() = "-h";
        let what = format!("`auditlake {}`", args.join(" "));
        assert_help_snapshot(&format!("{name}.short"), &what, &help_text(&args));
    }
}
