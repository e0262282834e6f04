//! The credentials a request must carry: its `Authorization` header read as RFC 9110 says (the
//! scheme in any case, then the credentials), the credentials compared in constant time.

use hyper::header::HeaderValue;

use crate::client::http::HttpAuth;
use crate::config::Secret;

/// The `Authorization` a server expects.
pub struct Expected {
    /// `Bearer` or `Basic`.
    scheme: &'static str,
    /// The token, or the encoded `user:password`.
    credentials: Secret,
}

impl Expected {
    /// What requests must carry under `auth`.
    pub fn new(auth: &HttpAuth) -> Expected {
        let scheme = match auth {
            HttpAuth::Bearer(_) => "Bearer",
            HttpAuth::Basic { .. } => "Basic",
        };
        let full = auth.header_value().0;
        let credentials = full
            .strip_prefix(scheme)
            .map_or(full.as_str(), str::trim_start);
        Expected {
            scheme,
            credentials: Secret(credentials.to_string()),
        }
    }

    /// Whether `given` (the request's `Authorization`, if any) carries these credentials.
    pub fn admits(&self, given: Option<&HeaderValue>) -> bool {
        use subtle::ConstantTimeEq;
        let given = given.map_or(&b""[..], HeaderValue::as_bytes);
        // `credentials = auth-scheme [ 1*SP ( token68 / #auth-param ) ]`; the scheme is
        // case-insensitive, the token is not.
        let (scheme, rest) = match given.iter().position(|b| *b == b' ') {
            Some(at) => given.split_at(at),
            None => (given, &b""[..]),
        };
        let rest = rest.trim_ascii();
        let scheme_matches = scheme.eq_ignore_ascii_case(self.scheme.as_bytes());
        let credentials_match = bool::from(rest.ct_eq(self.credentials.0.as_bytes()));
        scheme_matches & credentials_match
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admits(expected: &Expected, given: &str) -> bool {
        expected.admits(Some(&HeaderValue::from_str(given).unwrap()))
    }

    #[test]
    fn the_scheme_is_case_insensitive_and_the_credentials_are_not() {
        let bearer = Expected::new(&HttpAuth::Bearer(Secret("t0K".into())));
        for given in ["Bearer t0K", "bearer t0K", "BEARER t0K", "bEaReR   t0K"] {
            assert!(admits(&bearer, given), "{given}");
        }
        for given in [
            "Bearer t0k",
            "Bearer",
            "Bearert0K",
            "Basic t0K",
            "t0K",
            "Bearer t0K x",
        ] {
            assert!(!admits(&bearer, given), "{given}");
        }
        assert!(!bearer.admits(None));
        let basic = Expected::new(&HttpAuth::Basic {
            user: "Aladdin".into(),
            password: Secret("open sesame".into()),
        });
        assert!(admits(&basic, "basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="));
        assert!(admits(&basic, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="));
        assert!(!admits(&basic, "Basic qWxhZGRpbjpvcGVuIHNlc2FtZQ=="));
        assert!(!admits(&basic, "Bearer QWxhZGRpbjpvcGVuIHNlc2FtZQ=="));
    }
}
