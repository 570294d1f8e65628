//! The settings that take one of a few named values, each a typed enum (a misspelt value is
//! refused at start with the key named).

use serde::{Deserialize, Serialize};

/// `tokens.user_token_algorithm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum UserTokenAlgorithm {
    /// HMAC with a key derived from the signing key (the default).
    #[default]
    #[serde(rename = "HS256")]
    Hs256,
    /// The signing key itself.
    #[serde(rename = "RS256")]
    Rs256,
}

/// `server.log_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum LogFormat {
    /// Readable lines.
    #[default]
    #[serde(rename = "text")]
    Text,
    /// One JSON object per line.
    #[serde(rename = "json")]
    Json,
}

/// `plugins.isolation`: where plugin code runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Isolation {
    /// Each plugin library in its own worker process: a crash or hang costs calls, never the
    /// host.
    #[default]
    #[serde(rename = "process")]
    Process,
    /// Inside the host process (faster per call; a plugin that aborts takes the host down).
    #[serde(rename = "in_process")]
    InProcess,
}

/// `providers.<name>.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProviderKind {
    #[serde(rename = "dev")]
    Dev,
    #[serde(rename = "google")]
    Google,
    #[serde(rename = "github")]
    GitHub,
    #[serde(rename = "oidc")]
    Oidc,
}

/// `providers.<name>.client_auth`: how the client secret goes to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientAuth {
    /// HTTP Basic authentication (the OpenID Connect default).
    #[serde(rename = "client_secret_basic")]
    ClientSecretBasic,
    /// In the form body (GitHub's only way).
    #[serde(rename = "client_secret_post")]
    ClientSecretPost,
}
