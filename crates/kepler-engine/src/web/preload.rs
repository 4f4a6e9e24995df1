//! The HSTS preload list, as far as an offline, deterministic engine can know it.
//!
//! The Observatory ships Chromium's full list. Kepler does not download it at
//! run time (a score must not depend on when it ran), so the built-in list holds
//! only whole top-level domains that Chromium preloads with `includeSubDomains`
//! (registries that require HTTPS for every name); callers can add entries.

use std::collections::BTreeMap;

/// TLDs preloaded in their entirety in Chromium's list.
const PRELOADED_TLDS: &[&str] = &[
    "android", "app", "boo", "chrome", "dad", "day", "dev", "eat", "esq", "fly", "foo", "gle",
    "gmail", "google", "hangout", "ing", "meme", "mov", "new", "nexus", "page", "phd", "prof",
    "rsvp", "search", "youtube", "zip",
];

/// Preloaded names, each with its `includeSubDomains` flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreloadList {
    entries: BTreeMap<String, bool>,
}

impl Default for PreloadList {
    fn default() -> Self {
        PreloadList::builtin()
    }
}

impl PreloadList {
    /// The built-in list (whole preloaded TLDs).
    pub fn builtin() -> PreloadList {
        PreloadList {
            entries: PRELOADED_TLDS
                .iter()
                .map(|t| ((*t).to_owned(), true))
                .collect(),
        }
    }

    /// No entries at all.
    pub fn empty() -> PreloadList {
        PreloadList {
            entries: BTreeMap::new(),
        }
    }

    /// Adds a name, forced to HTTPS; `include_subdomains` covers names below it.
    pub fn with(mut self, name: &str, include_subdomains: bool) -> PreloadList {
        self.entries.insert(
            name.trim_end_matches('.').to_ascii_lowercase(),
            include_subdomains,
        );
        self
    }

    /// The Observatory's rule: the host itself, or a parent with `includeSubDomains`.
    pub fn contains(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if self.entries.contains_key(&host) {
            return true;
        }
        let mut rest = host.as_str();
        while let Some((_, parent)) = rest.split_once('.') {
            if self.entries.get(parent) == Some(&true) {
                return true;
            }
            rest = parent;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::PreloadList;

    #[test]
    fn host_or_parent_with_subdomains() {
        let list = PreloadList::empty()
            .with("exact.test", false)
            .with("wide.test", true);
        let cases = [
            ("exact.test", true),
            ("www.exact.test", false),
            ("wide.test", true),
            ("a.b.wide.test", true),
            ("other.test", false),
            ("EXACT.TEST.", true),
        ];
        for (host, expected) in cases {
            assert_eq!(list.contains(host), expected, "{host}");
        }
        let builtin = PreloadList::builtin();
        assert!(builtin.contains("example.dev"));
        assert!(!builtin.contains("example.test"));
        assert!(!builtin.contains("dev.example.test"));
    }
}
