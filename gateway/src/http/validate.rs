//! Input rules and output formats shared by the handlers.

use super::errors::ApiError;

/// Longest accepted e-mail address (RFC 5321 path limit).
const MAX_EMAIL_LEN: usize = 254;
/// Longest slug; the `Tenant` CRD allows 50 so the namespace `tenant-<slug>` fits in 63.
pub const MAX_SLUG_LEN: usize = 40;

pub use switchboard_crds::phone_number::is_e164;

/// Lower-cases and trims an e-mail address and checks its shape (one `@`, a dotted domain,
/// no spaces); deliverability is proven by the verification mail, not here.
pub fn normalize_email(field: &str, raw: &str) -> Result<String, ApiError> {
    let email = raw.trim().to_lowercase();
    let bad = || ApiError::invalid(field, "invalid_email", "not a valid e-mail address");
    if email.len() > MAX_EMAIL_LEN || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    let domain_ok = !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
    if local.is_empty() || local.len() > 64 || !domain_ok {
        return Err(bad());
    }
    Ok(email)
}

/// Trims a display text and checks its length (1..=max characters, no control characters).
pub fn display_text(field: &str, raw: &str, max: usize) -> Result<String, ApiError> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(ApiError::invalid(
            field,
            "required",
            format!("{field} must not be empty"),
        ));
    }
    if text.chars().count() > max {
        return Err(ApiError::invalid(
            field,
            "too_long",
            format!("{field} must be at most {max} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            "invalid_characters",
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(text.to_owned())
}

/// A DNS-1123 label from a company name: lower-case ASCII letters, digits and single dashes,
/// at most [`MAX_SLUG_LEN`] characters; `tenant` when nothing usable remains.
pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.truncate(MAX_SLUG_LEN);
    let slug = slug.trim_matches('-').to_owned();
    if slug.is_empty() {
        "tenant".to_owned()
    } else if uuid::Uuid::try_parse(&slug).is_ok() {
        // Tenant ids are UUIDs and tenants are looked up by slug or id: a slug shaped like a
        // UUID could name another tenant's id (issue 15), so it never is one.
        format!("t-{slug}")
    } else {
        slug
    }
}

/// The `n`-th candidate slug (`acme`, `acme-2`, `acme-3`, …), still within the length limit.
pub fn slug_candidate(base: &str, n: u32) -> String {
    if n <= 1 {
        return base.to_owned();
    }
    let suffix = format!("-{n}");
    let keep = MAX_SLUG_LEN - suffix.len();
    let stem: String = base.chars().take(keep).collect();
    format!("{}{suffix}", stem.trim_end_matches('-'))
}

/// Formats Unix milliseconds as RFC 3339.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_follows_the_crd_pattern() {
        assert!(is_e164("+15550100"));
        assert!(!is_e164("+05550100"));
        assert!(!is_e164("15550100"));
        assert!(!is_e164("+1"));
        assert!(!is_e164("+1555010012345678"));
    }

    #[test]
    fn slugs_are_dns_labels() {
        assert_eq!(slugify("Acme Inc."), "acme-inc");
        assert_eq!(slugify("  Ünïcode & Co  "), "n-code-co");
        assert_eq!(slugify("!!!"), "tenant");
        assert_eq!(slugify("--a--b--"), "a-b");
        let id = "0b9e5d8e-7f0c-4c4e-9a51-2f3e4d5c6b7a";
        assert_eq!(slugify(id), format!("t-{id}"));
        assert_eq!(slugify(&id.to_uppercase()), format!("t-{id}"));
        let long = slugify(&"x".repeat(100));
        assert_eq!(long.len(), MAX_SLUG_LEN);
        let candidate = slug_candidate(&long, 12);
        assert!(candidate.len() <= MAX_SLUG_LEN && candidate.ends_with("-12"));
        assert_eq!(slug_candidate("acme", 1), "acme");
        assert_eq!(slug_candidate("acme", 2), "acme-2");
        let re = |s: &str| {
            s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !s.starts_with('-')
                && !s.ends_with('-')
        };
        for name in ["Acme Inc.", "a-", "ÄÖÜ GmbH", "1-2-3"] {
            assert!(re(&slugify(name)), "{name}");
        }
    }

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(
            normalize_email("email", " Alice@Example.COM ").unwrap(),
            "alice@example.com"
        );
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "a@b",
            "a b@c.io",
            "a@@b.io",
            "a@b..io",
            "a@.b.io",
        ] {
            let error = normalize_email("email", bad).unwrap_err();
            assert_eq!(error.field.as_deref(), Some("email"), "{bad}");
        }
    }
}
