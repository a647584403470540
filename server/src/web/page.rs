//! The chat page: one file built into the binary, served with a Content-Security-Policy that
//! allows its own inline script and style (by hash) and a connection back to this server, and
//! nothing from any other origin.

use std::sync::OnceLock;

use data_encoding::BASE64;
use sha2::{Digest, Sha256};

pub const PAGE: &str = include_str!("page.html");

/// The page's Content-Security-Policy, computed once.
pub fn content_security_policy() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| policy_for(PAGE))
}

fn policy_for(page: &str) -> String {
    let hashes = |tag: &str| -> String {
        inline_elements(page, tag)
            .map(|body| format!(" 'sha256-{}'", BASE64.encode(&Sha256::digest(body))))
            .collect()
    };
    format!(
        "default-src 'none'; script-src{}; style-src{}; connect-src 'self'; img-src 'self' data:; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        hashes("script"),
        hashes("style"),
    )
}

/// The text inside every `<tag ...>...</tag>` element of `page`.
fn inline_elements<'a>(page: &'a str, tag: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    let open = format!("<{tag}");
    let close = format!("</{tag}>");
    let mut rest = page;
    std::iter::from_fn(move || {
        let start = rest.find(&open)?;
        let after_open = &rest[start..];
        let body_start = after_open.find('>')? + 1;
        let body_len = after_open[body_start..].find(&close)?;
        let body = &after_open[body_start..body_start + body_len];
        rest = &after_open[body_start + body_len + close.len()..];
        Some(body)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_hashes_each_inline_script_and_style() {
        let page = "<style>a{}</style><script>let x = 1;</script><script type=\"x\">2</script>";
        let csp = policy_for(page);
        let hash = |s: &str| BASE64.encode(&Sha256::digest(s));
        assert!(csp.contains(&format!(
            "script-src 'sha256-{}' 'sha256-{}';",
            hash("let x = 1;"),
            hash("2")
        )));
        assert!(csp.contains(&format!("style-src 'sha256-{}';", hash("a{}"))));
        assert!(csp.starts_with("default-src 'none';"));
    }

    #[test]
    fn the_page_needs_nothing_from_another_host() {
        for outside in ["http://", "https://", "//cdn", "@import", "url(http"] {
            assert!(!PAGE.contains(outside), "the page refers to {outside}");
        }
        assert_eq!(inline_elements(PAGE, "script").count(), 1);
        assert_eq!(inline_elements(PAGE, "style").count(), 1);
        assert!(
            !PAGE.contains(" onclick="),
            "inline handlers are blocked by the policy"
        );
    }
}
