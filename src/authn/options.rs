//! The authentication flags (`--client-ca-file`, `--anonymous-auth`, `--token-auth-file`,
//! `--requestheader-*`) and the authenticator chain they make, in upstream's order: front-proxy
//! headers, client certificates, static tokens, then the token authenticators others add.

use std::path::PathBuf;

use super::token_file::TokenFile;
use super::x509::{CaBundle, RequestHeader, X509};
use super::{Authenticator, Chain};

#[derive(Debug, Clone, clap::Args)]
#[group(id = "authentication-flags")]
#[command(next_help_heading = "Authentication flags")]
pub struct Flags {
    /// Enables anonymous requests to the secure port. Requests that are not rejected by
    /// another authentication method are treated as anonymous requests (user
    /// system:anonymous, group system:unauthenticated).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true")]
    pub anonymous_auth: bool,
    /// Any request presenting a client certificate signed by one of the authorities in this
    /// file is authenticated with an identity corresponding to the CommonName of the client
    /// certificate. kapi: the CA it generates in --data-dir when absent.
    #[arg(long)]
    pub client_ca_file: Option<PathBuf>,
    /// If set, the file that will be used to secure the secure port of the API server via
    /// token authentication (CSV: token,user,uid,"group1,group2").
    #[arg(long)]
    pub token_auth_file: Option<PathBuf>,
    /// Root certificate bundle to use to verify client certificates on incoming requests
    /// before trusting usernames in headers specified by --requestheader-username-headers.
    #[arg(long)]
    pub requestheader_client_ca_file: Option<PathBuf>,
    /// List of client certificate common names to allow to provide usernames in headers
    /// specified by --requestheader-username-headers. If empty, any client certificate
    /// validated by the authorities in --requestheader-client-ca-file is allowed.
    #[arg(long, value_delimiter = ',')]
    pub requestheader_allowed_names: Vec<String>,
    /// List of request headers to inspect for usernames. X-Remote-User is common.
    #[arg(long, value_delimiter = ',')]
    pub requestheader_username_headers: Vec<String>,
    /// List of request headers to inspect for UIDs. X-Remote-Uid is suggested.
    #[arg(long, value_delimiter = ',')]
    pub requestheader_uid_headers: Vec<String>,
    /// List of request headers to inspect for groups. X-Remote-Group is suggested.
    #[arg(long, value_delimiter = ',')]
    pub requestheader_group_headers: Vec<String>,
    /// List of request header prefixes to inspect. X-Remote-Extra- is suggested.
    #[arg(long, value_delimiter = ',')]
    pub requestheader_extra_headers_prefix: Vec<String>,
}

/// The authenticators the flags configure, ready to be chained.
pub struct Authentication {
    pub client_ca: CaBundle,
    pub requestheader_ca: Option<CaBundle>,
    request_header: Option<RequestHeader>,
    token_file: Option<TokenFile>,
    pub anonymous: bool,
}

fn lower(names: &[String]) -> Vec<String> {
    names
        .iter()
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect()
}

impl Authentication {
    /// Reads the files the flags name; `default_client_ca` is kapi's generated CA.
    pub fn load(
        flags: &Flags,
        default_client_ca: &std::path::Path,
    ) -> Result<Authentication, String> {
        let client_ca_path = flags
            .client_ca_file
            .clone()
            .unwrap_or_else(|| default_client_ca.to_path_buf());
        let client_ca = CaBundle::from_pem_file(&client_ca_path)
            .map_err(|e| format!("--client-ca-file: {e}"))?;
        let requestheader_ca = match &flags.requestheader_client_ca_file {
            Some(p) => Some(
                CaBundle::from_pem_file(p)
                    .map_err(|e| format!("--requestheader-client-ca-file: {e}"))?,
            ),
            None => None,
        };
        let username_headers = lower(&flags.requestheader_username_headers);
        let request_header = match (&requestheader_ca, username_headers.is_empty()) {
            (Some(ca), false) => Some(RequestHeader {
                ca: ca.clone(),
                allowed_names: flags.requestheader_allowed_names.clone(),
                username_headers,
                uid_headers: lower(&flags.requestheader_uid_headers),
                group_headers: lower(&flags.requestheader_group_headers),
                extra_prefixes: lower(&flags.requestheader_extra_headers_prefix),
            }),
            (Some(_), true) => {
                return Err(
                    "--requestheader-username-headers is required with --requestheader-client-ca-file"
                        .into(),
                );
            }
            _ => None,
        };
        let token_file = match &flags.token_auth_file {
            Some(p) => Some(TokenFile::load(p)?),
            None => None,
        };
        Ok(Authentication {
            client_ca,
            requestheader_ca,
            request_header,
            token_file,
            anonymous: flags.anonymous_auth,
        })
    }

    /// Client certificates only (kapi's generated CA), anonymous allowed: the in-process
    /// harness's configuration.
    pub fn client_certificates(client_ca: CaBundle) -> Authentication {
        Authentication {
            client_ca,
            requestheader_ca: None,
            request_header: None,
            token_file: None,
            anonymous: true,
        }
    }

    /// The CA bundles the TLS handshake names when it asks for a client certificate.
    pub fn handshake_bundles(&self) -> Vec<&CaBundle> {
        let mut bundles = vec![&self.client_ca];
        bundles.extend(self.requestheader_ca.as_ref());
        bundles
    }

    /// The chain in upstream's order, with `tokens` (bootstrap and service-account token
    /// authenticators) after the static token file.
    pub fn chain(self, tokens: Vec<Box<dyn Authenticator>>, loopback_token: &str) -> Chain {
        let mut authenticators: Vec<Box<dyn Authenticator>> = Vec::new();
        authenticators.push(Box::new(super::loopback::Loopback::with_token(
            loopback_token,
        )));
        if let Some(rh) = self.request_header {
            authenticators.push(Box::new(rh));
        }
        authenticators.push(Box::new(X509 { ca: self.client_ca }));
        if let Some(tf) = self.token_file {
            authenticators.push(Box::new(tf));
        }
        authenticators.extend(tokens);
        Chain::new(authenticators, self.anonymous)
    }
}
