//! `kepler scan` and the human report shared by the commands that print a score:
//! grade and score first, each category's score, then what to fix and how.

use std::io::IsTerminal;
use std::process::ExitCode;

use kepler_core::config::Config;
use kepler_core::{CheckStatus, Domain, ScoreRecord};

use crate::cli::ScanArgs;

pub async fn scan(config: &Config, args: ScanArgs) -> anyhow::Result<ExitCode> {
    let domain = Domain::parse(&args.domain)
        .map_err(|e| anyhow::anyhow!("invalid_domain: {:?}: {e}", args.domain))?;
    let engine = kepler_engine::Engine::new(&config.engine)
        .map_err(|e| anyhow::anyhow!("cannot set up the scoring engine: {e}"))?;
    match engine.score(&domain).await {
        Ok(record) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&record)?);
            } else {
                print!("{}", render(&record, Style::for_stdout()));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(reason) => {
            eprintln!(
                "kepler: the run for {domain} failed: {reason} ({})",
                explain(reason)
            );
            Ok(ExitCode::from(3))
        }
    }
}

pub fn explain(reason: kepler_core::FailureReason) -> &'static str {
    use kepler_core::FailureReason::*;
    match reason {
        DomainNotResolvable => "the name does not exist in DNS",
        PrivateAddressRefused => {
            "every address of the name is private or reserved; set engine.allow_private_targets for test networks"
        }
        Timeout => "the run did not finish in time",
        EngineError => "the engine failed; see the log",
    }
}

/// Whether to colour the output.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    colour: bool,
}

impl Style {
    pub fn for_stdout() -> Style {
        Style {
            colour: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

fn grade_colour(grade: &str) -> &'static str {
    match grade.chars().next() {
        Some('A') => "1;32",
        Some('B') => "1;36",
        Some('C') => "1;33",
        _ => "1;31",
    }
}

/// The report a person wants to read.
pub fn render(record: &ScoreRecord, style: Style) -> String {
    let mut out = String::new();
    let headline = format!("{}  {}/100", record.grade, record.score);
    out.push_str(&format!(
        "{}  {}\n",
        style.paint("1", &record.domain),
        style.paint(grade_colour(&record.grade), &headline)
    ));
    out.push_str(&format!(
        "scored {} by engine {}{}\n",
        record
            .scored_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        record.engine_version,
        if record.cached {
            " (stored record)"
        } else {
            ""
        }
    ));
    for cap in &record.caps {
        let why = match cap {
            kepler_core::GradeCap::NoHttps => "no working HTTPS: the grade is capped at F",
            kepler_core::GradeCap::BadCertificate => {
                "untrusted, expired or mismatched certificate: the grade is capped at D"
            }
        };
        out.push_str(&format!("{}\n", style.paint("1;31", why)));
    }
    out.push('\n');
    for category in &record.categories {
        let score = category
            .score
            .map_or_else(|| "  —".to_owned(), |s| format!("{s:>3}"));
        out.push_str(&format!(
            "  {:<14} {score}  (weight {})\n",
            category.id.as_str(),
            category.weight
        ));
    }
    let findings: Vec<_> = record
        .categories
        .iter()
        .flat_map(|c| c.checks.iter().map(move |check| (c.id, check)))
        .filter(|(_, check)| {
            matches!(
                check.status,
                CheckStatus::Fail | CheckStatus::Warn | CheckStatus::Error
            )
        })
        .collect();
    if findings.is_empty() {
        out.push_str("\nNothing to fix.\n");
        return out;
    }
    out.push_str("\nWhat to fix:\n");
    for (category, check) in findings {
        let (label, colour) = match check.status {
            CheckStatus::Fail => ("fail ", "31"),
            CheckStatus::Warn => ("warn ", "33"),
            _ => ("error", "35"),
        };
        out.push_str(&format!(
            "  {} {}/{} ({:+})\n      seen: {}\n",
            style.paint(colour, label),
            category.as_str(),
            check.id,
            check.points,
            check.evidence
        ));
        if !check.recommendation.is_empty() {
            out.push_str(&format!("      fix:  {}\n", check.recommendation));
        }
    }
    out
}
