//! Ids in an answer that the evidence pack does not hold: instance, ENI, security-group and other
//! resource ids, IP addresses, ARNs, access keys and host names. A small model mangles ids
//! (`order-api` for `orders-api`); the console marks every such string instead of trusting it.

use crate::action::propose::{is_access_key_id, is_instance_id};
use std::net::IpAddr;

/// Resource-id prefixes AWS uses with a hex suffix.
const PREFIXES: [&str; 9] = [
    "i-", "eni-", "sg-", "acl-", "vpc-", "subnet-", "ami-", "vol-", "snap-",
];

/// A prefix and a digit-bearing alphanumeric tail: well-formed ids and mangled ones alike (a
/// model's `i-0f9e8d7c6b5a43m` must be flagged, not ignored).
fn is_prefixed_id(t: &str) -> bool {
    PREFIXES.iter().any(|p| {
        t.strip_prefix(p).is_some_and(|h| {
            h.len() >= 6
                && h.bytes().all(|b| b.is_ascii_alphanumeric())
                && h.bytes().any(|b| b.is_ascii_digit())
        })
    })
}

fn is_ip(t: &str) -> bool {
    if t.parse::<IpAddr>().is_ok() {
        return true;
    }
    // 10.0.3.88:5432
    t.rsplit_once(':')
        .is_some_and(|(h, p)| p.bytes().all(|b| b.is_ascii_digit()) && h.parse::<IpAddr>().is_ok())
}

/// A dotted name with a digit or three labels: a host, an endpoint, a bucket.
fn is_host(t: &str) -> bool {
    let labels: Vec<&str> = t.split('.').collect();
    labels.len() >= 3
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b':')
        })
        && t.bytes().any(|b| b.is_ascii_alphabetic())
}

/// An access key id, or what a model made of one (`AKIAHB5KRV3YL` for `AKIAHB5KRV3PYWKWZMMA`).
fn is_key_like(t: &str) -> bool {
    ["AKIA", "ASIA"].iter().any(|p| {
        t.strip_prefix(p).is_some_and(|rest| {
            rest.len() >= 4
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
    })
}

/// Whether `t` names a resource the way ids do.
pub fn is_identifier(t: &str) -> bool {
    t.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("arn:"))
        || is_key_like(t)
        || is_instance_id(t)
        || is_prefixed_id(t)
        || is_access_key_id(t)
        || is_ip(t)
        || is_host(t)
}

/// The identifiers in `text`, as written.
pub fn identifiers(text: &str) -> Vec<String> {
    let mut out: Vec<String> = text
        .split(|c: char| {
            c.is_whitespace()
                || matches!(
                    c,
                    ',' | ';' | '(' | ')' | '[' | ']' | '{' | '}' | '"' | '\'' | '<' | '>' | '`'
                )
        })
        .map(|t| t.trim_end_matches(['.', ':', '!', '?']))
        .filter(|t| !t.is_empty() && is_identifier(t))
        .map(str::to_string)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Identifiers in `answer` that appear nowhere in `known` (the pack's text).
pub fn unknown(answer: &str, known: &str) -> Vec<String> {
    identifiers(answer)
        .into_iter()
        .filter(|t| !known.contains(t.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_ids_the_pack_does_not_hold() {
        let known = "i-0f9e8d7c6b5a43210 orders-api 10.0.3.88:5432 db.cluster-x.us-east-1.rds.amazonaws.com";
        let answer = "Instance i-0f9e8d7c6b5a43m and i-0f9e8d7c6b5a43210 hit 10.0.3.88:5432, \
                      also 203.0.113.9 via arn:aws:iam::123456789012:user/eve and AKIAABCDEFGHIJKLMNOP; \
                      see db.cluster-x.us-east-1.rds.amazonaws.com.";
        assert_eq!(
            unknown(answer, known),
            [
                "203.0.113.9",
                "AKIAABCDEFGHIJKLMNOP",
                "arn:aws:iam::123456789012:user/eve",
                "i-0f9e8d7c6b5a43m"
            ]
        );
        // Mangled keys and an upper-case ARN are flagged too.
        assert_eq!(
            unknown(
                "keys AKIAHB5KRV3YL and AKIAT4G5BIGS-67A, ARN:aws::1:user/x",
                known
            ),
            ["AKIAHB5KRV3YL", "AKIAT4G5BIGS-67A", "ARN:aws::1:user/x"]
        );
        // Ordinary words and numbers are not identifiers.
        assert!(identifiers("the rate-limit hit 95 % at 12:00, e.g. retries").is_empty());
    }
}
