//! Small helpers over DNS names as plain strings.

/// `name` and its parents that still have at least two labels, nearest first:
/// `a.b.example.com` → `[a.b.example.com, b.example.com, example.com]`.
/// Top-level domains are left out: nothing a domain owner controls lives there.
pub fn ancestors(name: &str) -> Vec<String> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = name.split('.').filter(|l| !l.is_empty()).collect();
    (0..labels.len().saturating_sub(1))
        .map(|skip| labels[skip..].join("."))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors_stop_above_the_tld() {
        assert_eq!(
            ancestors("a.b.Example.com."),
            ["a.b.example.com", "b.example.com", "example.com"]
        );
        assert_eq!(ancestors("strong.test"), ["strong.test"]);
        assert!(ancestors("test").is_empty());
        assert!(ancestors("").is_empty());
    }
}
