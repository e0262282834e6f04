//! The `url` setting of the NATS inputs and outputs: server addresses, the credentials written
//! in them taken out, and the URLs as they may be shown.

use crate::config::Secret;

/// Credentials written in a server URL: `nats://user:password@host` or `nats://token@host`.
#[derive(Clone, PartialEq, Eq)]
pub(super) enum UrlCredentials {
    UserPassword(String, Secret),
    Token(Secret),
}

/// The servers of a `url` setting. Credentials written in the URLs are taken out of them and
/// returned apart, so that the client sends them as authentication and never shows them (it
/// logs server addresses; it does not authenticate with a URL's credentials itself).
#[derive(Clone)]
pub(super) struct Servers {
    pub(super) addrs: Vec<async_nats::ServerAddr>,
    pub(super) credentials: Option<UrlCredentials>,
    /// The URLs as written, without their credentials, for logs.
    pub(super) shown: String,
}

/// Why a `url` setting names no usable servers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServersError {
    /// A server that does not parse as a NATS URL.
    #[error("invalid server `{server}`: {reason}")]
    Invalid {
        /// The server as written, its password replaced.
        server: String,
        /// Why.
        reason: String,
    },
    /// Two servers give different credentials.
    #[error("the servers in url give different credentials")]
    DifferentCredentials,
    /// No server at all.
    #[error("url must name at least one server")]
    Empty,
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// Parses `nats://host:port[,...]` (the scheme may be left out, or be `tls`, `ws`, `wss`).
/// Errors show the URL with its password replaced.
pub(super) fn parse_servers(url: &str) -> Result<Servers, ServersError> {
    let mut addrs = Vec::new();
    let mut credentials = None;
    let mut shown = Vec::new();
    for server in url.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        shown.push(redact_url(server));
        let invalid = |e: &dyn std::fmt::Display| ServersError::Invalid {
            server: redact_url(server),
            reason: e.to_string(),
        };
        let text = if server.contains("://") {
            server.to_string()
        } else {
            format!("nats://{server}")
        };
        let mut parsed = url::Url::parse(&text).map_err(|e| invalid(&e))?;
        let user = decode(parsed.username());
        let these = match (user.is_empty(), parsed.password()) {
            (true, None) => None,
            (false, None) => Some(UrlCredentials::Token(Secret(user))),
            (_, Some(password)) => {
                Some(UrlCredentials::UserPassword(user, Secret(decode(password))))
            }
        };
        if these.is_some() {
            if credentials.is_some() && credentials != these {
                return Err(ServersError::DifferentCredentials);
            }
            credentials = these;
            // Only fails for URLs that cannot have credentials, which these had.
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
        }
        addrs.push(async_nats::ServerAddr::from_url(parsed).map_err(|e| invalid(&e))?);
    }
    if addrs.is_empty() {
        return Err(ServersError::Empty);
    }
    Ok(Servers {
        addrs,
        credentials,
        shown: shown.join(","),
    })
}

/// A server URL as it may be shown: the password in it (or a token, written as a user) is
/// replaced by `<redacted>`.
pub fn redact_url(server: &str) -> String {
    let (scheme, rest) = match server.find("://") {
        Some(i) => server.split_at(i + 3),
        None => ("", server),
    };
    let authority = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority].rfind('@') {
        Some(at) => {
            let shown = match rest[..at].split_once(':') {
                Some((user, _)) => format!("{user}:<redacted>"),
                None => "<redacted>".to_string(),
            };
            format!("{scheme}{shown}{}", &rest[at..])
        }
        None => server.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_out_of_urls_and_urls_are_shown_without_them() {
        let servers = parse_servers("nats://bob:p%40ss@a:4222, b:4223").unwrap();
        assert_eq!(servers.addrs.len(), 2);
        assert!(matches!(
            servers.credentials,
            Some(UrlCredentials::UserPassword(ref u, ref p)) if u == "bob" && p.0 == "p@ss"
        ));
        assert!(!format!("{:?}", servers.addrs).contains("p%40ss"));
        assert!(matches!(
            parse_servers("tok3n@a").unwrap().credentials,
            Some(UrlCredentials::Token(ref t)) if t.0 == "tok3n"
        ));
        assert_eq!(
            redact_url("nats://bob:secret@a:4222/x"),
            "nats://bob:<redacted>@a:4222/x"
        );
        assert_eq!(redact_url("tok3n@a:4222"), "<redacted>@a:4222");
        assert_eq!(redact_url("nats://a:4222"), "nats://a:4222");
        assert_eq!(
            parse_servers("nats://u:1@a,nats://u:2@b").err(),
            Some(ServersError::DifferentCredentials)
        );
        assert_eq!(parse_servers(" , ").err(), Some(ServersError::Empty));
    }
}
