//! docs/scoring/*.md mirror the point constants exactly: every constant has a
//! row with its value, and every constant a row names exists with that value.

use std::collections::BTreeMap;
use std::path::PathBuf;

fn doc(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/scoring")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// (constant → points) from the table rows `| id | status | points | `CONSTANT` | ... |`.
fn documented(text: &str) -> BTreeMap<String, i32> {
    let mut found = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // ["", id, status, points, constant, when, ""]
        let constant = cells[4].trim_matches('`');
        if constant == "—" {
            assert_eq!(
                cells[3], "0",
                "a row without a constant must be worth 0: {line}"
            );
            continue;
        }
        let points: i32 = cells[3]
            .replace('−', "-")
            .parse()
            .unwrap_or_else(|_| panic!("points cell of {line}"));
        assert!(
            found.insert(constant.to_owned(), points).is_none(),
            "{constant} documented twice"
        );
    }
    found
}

fn check(page: &str, code: &[(&str, i32)]) {
    let docs = documented(&doc(page));
    let code: BTreeMap<String, i32> = code.iter().map(|(n, p)| ((*n).to_owned(), *p)).collect();
    assert_eq!(docs, code, "{page} and the code disagree");
}

#[test]
fn dns_page_mirrors_the_code() {
    check("dns.md", kepler_engine::dns::points::ALL);
}

#[test]
fn email_page_mirrors_the_code() {
    check("email.md", kepler_engine::mail::points::ALL);
}
