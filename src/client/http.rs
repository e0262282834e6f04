//! What the HTTP input and output share: how a request authenticates.

use base64::Engine;
use serde::Deserialize;

use crate::config::{Secret, Validator};

/// How requests authenticate.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum HttpAuth {
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// HTTP basic authentication.
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: Secret,
    },
}

impl HttpAuth {
    /// Checks the block at `path`: credentials no client could send or that anyone could guess.
    pub fn validate(&self, path: &str, v: &mut Validator<'_>) {
        match self {
            HttpAuth::Bearer(token) => {
                if token.0.trim().is_empty() {
                    v.error_at(&format!("{path}.bearer"), "the token must not be empty");
                } else if !token.0.bytes().all(|b| b.is_ascii_graphic()) {
                    v.error_at(
                        &format!("{path}.bearer"),
                        "the token must be printable ASCII without spaces",
                    );
                }
            }
            HttpAuth::Basic { user, password } => {
                if user.contains(':') {
                    // RFC 7617: the first colon separates the user from the password.
                    v.error_at(
                        &format!("{path}.basic.user"),
                        "the user must not contain `:`",
                    );
                }
                if password.0.is_empty() {
                    v.error_at(
                        &format!("{path}.basic.password"),
                        "the password must not be empty",
                    );
                }
            }
        }
    }

    /// The `Authorization` header value a request carries.
    pub fn header_value(&self) -> Secret {
        Secret(match self {
            HttpAuth::Bearer(token) => format!("Bearer {}", token.0),
            HttpAuth::Basic { user, password } => {
                let pair = format!("{user}:{}", password.0);
                let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
                format!("Basic {encoded}")
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_as_rfc_7617_and_6750_spell_them() {
        let basic = HttpAuth::Basic {
            user: "Aladdin".into(),
            password: Secret("open sesame".into()),
        };
        assert_eq!(basic.header_value().0, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        let bearer = HttpAuth::Bearer(Secret("t0k".into()));
        assert_eq!(bearer.header_value().0, "Bearer t0k");
    }
}
