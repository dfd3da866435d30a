//! RFC 3164 syslog from EC2 hosts (`/var/log/secure`, `/var/log/auth.log`, `/var/log/messages`):
//! `Mmm dd HH:MM:SS host prog[pid]: message`, with the variants real hosts write (no host name,
//! `[prog]` without a colon, single-digit days with or without padding, Solaris `[ID n facility]`
//! prefixes). Programs with meaning get typed fields: sshd, sudo, the health agent, the kernel,
//! cloud-init, and anything that reports a full disk.

use super::{Fields, Format, Level, ParseError, Parsed, SshOutcome, detect_level};
use crate::timefmt::MONTHS;
use std::collections::{HashMap, VecDeque};

/// The remote host of recent sshd connections, by (host name, pid): later lines of the same
/// connection (`fatal: Unable to negotiate ...`) do not repeat it.
#[derive(Debug, Default)]
pub struct SshdSessions {
    hosts: HashMap<(String, u32), String>,
    order: VecDeque<(String, u32)>,
}

/// Connections remembered at once; the oldest are forgotten first.
const MAX_SESSIONS: usize = 10_000;

impl SshdSessions {
    fn remember(&mut self, key: (String, u32), host: &str) {
        if self.hosts.insert(key.clone(), host.to_string()).is_none() {
            self.order.push_back(key);
            if self.order.len() > MAX_SESSIONS
                && let Some(old) = self.order.pop_front()
            {
                self.hosts.remove(&old);
            }
        }
    }
}

struct Header<'a> {
    host: Option<&'a str>,
    program: &'a str,
    pid: Option<u32>,
    body_start: usize,
}

/// True when the line starts with a syslog timestamp (`Mmm dd HH:MM:SS `).
pub fn looks_like(text: &str) -> bool {
    timestamp_end(text).is_some()
}

fn timestamp_end(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let month = text.get(..3)?;
    if !MONTHS.contains(&month) || b.get(3) != Some(&b' ') {
        return None;
    }
    let mut i = 4;
    while b.get(i) == Some(&b' ') {
        i += 1;
    }
    let day_start = i;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    if i == day_start || i - day_start > 2 || b.get(i) != Some(&b' ') {
        return None;
    }
    i += 1;
    // HH:MM:SS
    let t = text.get(i..i + 8)?.as_bytes();
    let ok =
        t[2] == b':' && t[5] == b':' && [0, 1, 3, 4, 6, 7].iter().all(|&k| t[k].is_ascii_digit());
    if !ok {
        return None;
    }
    i += 8;
    (b.get(i) == Some(&b' ')).then_some(i + 1)
}

fn header(text: &str) -> Option<Header<'_>> {
    let start = timestamp_end(text)?;
    let rest = &text[start..];
    let first_end = rest.find(' ').unwrap_or(rest.len());
    let first = &rest[..first_end];
    // Either `host prog[pid]: msg`, or the host is missing: `prog[pid]: msg` / `[prog] msg`.
    let (host, tag_start) = if first.ends_with(':') || first.starts_with('[') {
        (None, start)
    } else {
        (Some(first), start + first_end + 1)
    };
    let tag_rest = text.get(tag_start..)?;
    let (tag, body_start) = if let Some(inner) = tag_rest.strip_prefix('[') {
        let close = inner.find(']')?;
        let after = tag_start + 1 + close + 1;
        let after = after + usize::from(text[after..].starts_with(':'));
        (
            &inner[..close],
            after + usize::from(text[after..].starts_with(' ')),
        )
    } else {
        let colon = tag_rest
            .find(": ")
            .or_else(|| tag_rest.strip_suffix(':').map(str::len));
        match colon {
            Some(c) if !tag_rest[..c].contains(' ') && c > 0 => {
                (&tag_rest[..c], (tag_start + c + 2).min(text.len()))
            }
            // A message without a program tag: the whole rest is the body.
            _ => ("", tag_start),
        }
    };
    let (program, pid) = match tag.split_once('[') {
        Some((p, rest)) => (p, rest.trim_end_matches(']').parse().ok()),
        None => (tag, None),
    };
    Some(Header {
        host,
        program,
        pid,
        body_start,
    })
}

pub fn parse(text: &str, stream: &str, sshd: &mut SshdSessions) -> Result<Parsed, ParseError> {
    let h = header(text).ok_or(ParseError::Shape(Format::Syslog))?;
    let body = &text[h.body_start..];
    // In CloudWatch the stream is usually the instance id; otherwise the host name is the entity.
    let entity = if stream.starts_with("i-") {
        Some(stream.to_string())
    } else {
        h.host.map(str::to_string).or(Some(stream.to_string()))
    };
    let program = h.program;
    let (fields, level) = if program.starts_with("sshd") {
        let key = (h.host.unwrap_or("").to_string(), h.pid.unwrap_or(0));
        let mut f = sshd_fields(body);
        if let Fields::Ssh { remote_host, .. } = &mut f {
            match remote_host {
                Some(host) => sshd.remember(key, host),
                None => *remote_host = sshd.hosts.get(&key).cloned(),
            }
        }
        let level = match &f {
            Fields::Ssh {
                outcome:
                    SshOutcome::Failed
                    | SshOutcome::InvalidUser
                    | SshOutcome::AuthFailure
                    | SshOutcome::NotAllowed
                    | SshOutcome::Preauth,
                ..
            } => Level::Warn,
            _ => detect_level(body),
        };
        (f, level)
    } else if program == "sudo" {
        let f = sudo_fields(body).ok_or(ParseError::field(Format::Syslog, "sudo"))?;
        let level = if matches!(f, Fields::Sudo { denied: true, .. }) {
            Level::Warn
        } else {
            Level::Info
        };
        (f, level)
    } else if body.contains("No space left on device") || body.contains("Directory index full") {
        (Fields::DiskFull, Level::Error)
    } else if program == "node-health" {
        let pct = |key: &str| -> Option<f64> {
            let at = body.find(key)? + key.len();
            body[at..].split('%').next()?.parse().ok()
        };
        let f = if body.contains("disk ") {
            Fields::Health {
                disk_pct: pct("used="),
                cpu_pct: None,
            }
        } else {
            Fields::Health {
                disk_pct: None,
                cpu_pct: pct("util="),
            }
        };
        (f, detect_level(body))
    } else if program == "kernel" {
        (Fields::Kernel, detect_level(body))
    } else if program.starts_with("cloud-init") {
        (Fields::CloudInit, detect_level(body))
    } else {
        (
            Fields::Program {
                program: program.to_string(),
            },
            detect_level(body),
        )
    };
    Ok(Parsed {
        format: Format::Syslog,
        level,
        entity,
        fields,
        body_start: h.body_start,
    })
}

/// `user : TTY=pts/0 ; PWD=/home/user ; USER=root ; COMMAND=/bin/ls`, optionally with
/// `user NOT in sudoers ;` or `incorrect password attempts ;` before the TTY.
fn sudo_fields(body: &str) -> Option<Fields> {
    let (user, rest) = body.split_once(" : ")?;
    let user = user.trim();
    if user.is_empty() {
        return None;
    }
    let part = |key: &str| {
        rest.split(" ; ")
            .find_map(|p| p.trim().strip_prefix(key).map(str::to_string))
    };
    Some(Fields::Sudo {
        user: user.to_string(),
        run_as: part("USER="),
        command: part("COMMAND="),
        denied: rest.contains("NOT in sudoers")
            || rest.contains("incorrect password")
            || rest.contains("NOT allowed"),
    })
}

/// A plausible remote host: an IPv4/IPv6 address (as sshd prints it) or a dotted host name.
fn host_like(tok: &str) -> Option<&str> {
    let tok = tok
        .trim_end_matches([':', ',', ';', ')'])
        .trim_start_matches('(');
    // `user@::ffff:1.2.3.4` from tcpwrappers, and IPv4-mapped IPv6 addresses.
    let tok = tok.rsplit('@').next().unwrap_or(tok);
    let tok = tok.strip_prefix("::ffff:").unwrap_or(tok);
    if tok.is_empty() || tok.len() > 255 {
        return None;
    }
    let ipv4 = tok.split('.').count() == 4
        && tok
            .split('.')
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()));
    let ipv6 = tok.matches(':').count() >= 2
        && tok
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
    let name = tok.contains('.')
        && !tok.starts_with('.')
        && !tok.ends_with('.')
        && tok.bytes().any(|b| b.is_ascii_alphabetic())
        && tok
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    (ipv4 || ipv6 || name).then_some(tok)
}

/// The remote host of an sshd message, by the rules sshd's own wording allows:
/// - after `rhost=` (PAM);
/// - `Remote: 1.2.3.4-1780` (the verbose SSH: lines);
/// - after the last ` from ` in the part sshd wrote itself (after `ssh2:` comes client-supplied
///   text, which an attacker chooses);
/// - else the word before the last ` port ` (`Connection closed by user x 1.2.3.4 port 22`);
/// - else the word after ` by ` / ` for ` / ` with `.
fn sshd_host(body: &str) -> Option<String> {
    if let Some(at) = body.find("rhost=") {
        return body[at + 6..]
            .split_whitespace()
            .next()
            .and_then(host_like)
            .map(str::to_string);
    }
    if let Some(at) = body.find("Remote: ") {
        let v = body[at + 8..].split(';').next()?;
        let host = v.rsplit_once('-').map_or(v, |(h, _)| h);
        return host_like(host).map(str::to_string);
    }
    // `getaddrinfo for host.example [1.2.3.4] failed`: the address in brackets is the peer.
    if let Some(ip) = body.split(' ').find_map(|w| {
        let inner = w.strip_prefix('[')?.strip_suffix(']')?;
        host_like(inner).filter(|h| {
            !h.bytes()
                .any(|b| b.is_ascii_alphabetic() && !b.is_ascii_hexdigit())
        })
    }) {
        return Some(ip.to_string());
    }
    let own = ["ssh2:", "ssh1:"]
        .iter()
        .filter_map(|m| body.find(m))
        .min()
        .map_or(body, |cut| &body[..cut]);
    let words: Vec<&str> = own.split(' ').collect();
    if let Some(i) = words.iter().rposition(|w| *w == "from")
        && let Some(h) = words.get(i + 1).and_then(|w| host_like(w))
    {
        return Some(h.to_string());
    }
    if let Some(i) = words.iter().rposition(|w| *w == "port")
        && let Some(h) = i.checked_sub(1).and_then(|j| host_like(words[j]))
    {
        return Some(h.to_string());
    }
    for key in ["by", "for", "with"] {
        if let Some(i) = words.iter().rposition(|w| *w == key)
            && let Some(h) = words.get(i + 1).and_then(|w| host_like(w))
        {
            return Some(h.to_string());
        }
    }
    None
}

fn word_after<'a>(body: &'a str, key: &str) -> Option<&'a str> {
    let at = body.find(key)? + key.len();
    body[at..].split(' ').next()
}

fn sshd_fields(body: &str) -> Fields {
    // Solaris prefixes `[ID 800047 auth.info] `.
    let msg = match body.strip_prefix("[ID ") {
        Some(rest) => rest.split_once("] ").map_or(body, |(_, m)| m),
        None => body,
    };
    let remote_host = sshd_host(msg);
    let port = word_after(msg, " port ").and_then(|p| p.trim_end_matches(':').parse().ok());
    let user_after = |key: &str| {
        word_after(msg, key)
            .filter(|u| !u.is_empty() && *u != "from")
            .map(str::to_string)
    };
    let lower = msg.to_ascii_lowercase();
    let (outcome, user) = if msg.starts_with("Accepted ") {
        (SshOutcome::Accepted, user_after(" for "))
    } else if msg.starts_with("Failed ") {
        let user = if msg.contains(" invalid user ") {
            user_after(" invalid user ")
        } else {
            user_after(" for ")
        };
        (SshOutcome::Failed, user)
    } else if msg.starts_with("Invalid user ") || msg.starts_with("Illegal user ") {
        (SshOutcome::InvalidUser, user_after(" user "))
    } else if lower.contains("authentication failure") || lower.contains("authentication error") {
        let user = user_after(" user=").or_else(|| user_after(" for "));
        (SshOutcome::AuthFailure, user)
    } else if msg.starts_with("User ") && msg.contains(" not allowed because ") {
        (SshOutcome::NotAllowed, user_after("User "))
    } else if msg.contains("User not known") {
        (SshOutcome::AuthFailure, user_after(" user "))
    } else if msg.starts_with("Connection closed by ")
        || msg.starts_with("Disconnected from ")
        || msg.starts_with("Connection reset by ")
        || msg.starts_with("Disconnecting ")
        || msg.starts_with("Received disconnect from ")
        || msg.contains("Received disconnect from ")
    {
        let user = user_after(" user ");
        let outcome = if msg.contains("[preauth]") || msg.contains("invalid user") {
            SshOutcome::Preauth
        } else {
            SshOutcome::Closed
        };
        (outcome, user)
    } else if msg.starts_with("fatal:")
        || msg.starts_with("error: kex_exchange_identification")
        || msg.starts_with("banner exchange")
        || msg.starts_with("ssh_dispatch_run_fatal")
        || msg.starts_with("Did not receive identification")
        || msg.starts_with("Timeout before authentication")
        || msg.starts_with("refused connect")
        || msg.contains("[preauth]")
    {
        (SshOutcome::Preauth, None)
    } else {
        (SshOutcome::Other, None)
    };
    Fields::Ssh {
        outcome,
        user,
        remote_host,
        port,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::one;
    use super::*;

    fn host(line: &str) -> Option<String> {
        match one("/ec2/var/log/secure", "x", line).fields {
            Fields::Ssh { remote_host, .. } => remote_host,
            f => panic!("not sshd: {f:?}"),
        }
    }

    #[test]
    fn sshd_hosts_in_many_wordings() {
        let cases = [
            (
                "Feb 25 14:34:10 belka sshd[31603]: Failed password for invalid user ROOT from aaaa:bbbb:cccc:1234::1:1 port 50273 ssh2",
                "aaaa:bbbb:cccc:1234::1:1",
            ),
            (
                "Nov 11 08:04:52 r sshd[2737]: Failed password for invalid user test from 10.10.1.2 port 55555 ssh2 from 127.0.0.1 port 58946 ssh2",
                "127.0.0.1",
            ),
            (
                "Nov 11 08:04:52 r sshd[2737]: Failed password for invalid user test from 127.0.0.1 port 58946 ssh2: from 10.10.1.2 port 55555 ssh2",
                "127.0.0.1",
            ),
            (
                "Jul 17 23:04:01 srv sshd[1300]: Connection closed by authenticating user test 127.0.0.1 port 12345 192.0.2.11 port 46039 [preauth]",
                "192.0.2.11",
            ),
            (
                "Jun 25 23:53:34 [sshd] User root from 1.2.3.4 not allowed because not listed in AllowUsers",
                "1.2.3.4",
            ),
            (
                "Feb 17 17:40:17 sshd[19725]: Connection from 192.0.2.10 port 62004 on 192.0.2.10 port 22",
                "192.0.2.10",
            ),
            (
                "Nov 11 23:33:27 S sshd[5174]: refused connect from _U2FsdGVk=_@::ffff:218.249.210.161 (::ffff:218.249.210.161)",
                "218.249.210.161",
            ),
            (
                "Apr 29 17:16:20 m.local sshd[62312]: error: PAM: authentication error for james from example.com via 192.168.1.201",
                "example.com",
            ),
            (
                "Mar 29 05:59:23 dusky sshd[20878]: [ID 800047 auth.info] Failed keyboard-interactive for <invalid username> from 205.186.180.55 port 42742 ssh2",
                "205.186.180.55",
            ),
            (
                "Mar 15 09:21:01 host sshd[2717]: Connection closed by 192.0.2.212 [preauth]",
                "192.0.2.212",
            ),
            (
                "Mar 15 09:21:01 host sshd[2717]: reverse mapping checking getaddrinfo for h.example.com [192.0.2.7] failed - POSSIBLE BREAK-IN ATTEMPT!",
                "192.0.2.7",
            ),
            (
                "Mar 15 09:21:01 host sshd[2717]: Disconnected from invalid user admin 192.0.2.8 port 22 [preauth]",
                "192.0.2.8",
            ),
            (
                "Mar 15 09:21:01 host sshd[2717]: Bad protocol version identification 'x from 6.6.6.6' from 192.0.2.9 port 22",
                "192.0.2.9",
            ),
        ];
        for (line, want) in cases {
            assert_eq!(host(line).as_deref(), Some(want), "{line}");
        }
    }

    #[test]
    fn later_lines_of_a_connection_inherit_its_host() {
        let mut p = super::super::Parser::new();
        let r = |t: &str| super::super::tests::rec("/ec2/var/log/secure", "x", t);
        p.parse(&r("Nov 26 15:03:30 host sshd[22440]: Connection from 192.0.2.3 port 39678 on 192.168.1.9 port 22")).unwrap();
        let later = p.parse(&r("Nov 26 15:03:31 host sshd[22440]: fatal: Unable to negotiate a key exchange method [preauth]")).unwrap().unwrap();
        assert!(
            matches!(later.fields, Fields::Ssh { outcome: SshOutcome::Preauth, remote_host: Some(ref h), .. } if h == "192.0.2.3")
        );
        let other = p.parse(&r("Nov 26 15:03:31 host sshd[999]: fatal: Read from socket failed: Connection reset by peer [preauth]")).unwrap().unwrap();
        assert!(matches!(
            other.fields,
            Fields::Ssh {
                remote_host: None,
                ..
            }
        ));
    }

    #[test]
    fn sudo_and_health_and_disk() {
        let p = one(
            "g",
            "i-1",
            "Feb 24 00:13:02 precise32 sudo:      tsg : user NOT in sudoers ; TTY=pts/1 ; PWD=/home/vagrant ; USER=root ; COMMAND=/bin/ls",
        );
        assert_eq!(
            p.fields,
            Fields::Sudo {
                user: "tsg".into(),
                run_as: Some("root".into()),
                command: Some("/bin/ls".into()),
                denied: true
            }
        );
        let p = one(
            "g",
            "i-9",
            "Nov 23 10:01:00 ip-10-0-1-23 node-health[911]: disk / used=41% avail=11.8G",
        );
        assert_eq!(
            p.fields,
            Fields::Health {
                disk_pct: Some(41.0),
                cpu_pct: None
            }
        );
        assert_eq!(p.entity.as_deref(), Some("i-9"));
        let p = one(
            "g",
            "i-9",
            "Nov 23 10:01:00 ip-10-0-1-23 app[1893]: ERROR write /var/log/app/app.log: No space left on device",
        );
        assert_eq!(p.fields, Fields::DiskFull);
        let p = one(
            "g",
            "s",
            "Feb 22 11:47:05 localhost groupadd[6991]: new group: name=apache, GID=48",
        );
        assert_eq!(
            p.fields,
            Fields::Program {
                program: "groupadd".into()
            }
        );
        assert_eq!(p.entity.as_deref(), Some("localhost"));
    }

    #[test]
    fn broken_lines_are_errors_not_panics() {
        let mut s = SshdSessions::default();
        for t in [
            "Nov",
            "Nov 23 1",
            "Nov 23 10:01:02",
            "Nov 23 10:01:02 ",
            "Nov 23 10:01:02 host",
            "Nov 23 10:01:02 [x",
            "Nov 23 10:01:02 h sudo: : x",
        ] {
            let _ = parse(t, "s", &mut s);
        }
        assert!(parse("Nov 23 10:01:02 h sudo: nonsense", "s", &mut s).is_err());
    }
}
