//! The authentication flags (`--client-ca-file`, `--anonymous-auth`, `--token-auth-file`,
//! `--requestheader-*`) and the authenticator chain they make, in upstream's order: front-proxy
//! headers, client certificates, static tokens, then the token authenticators others add.

use std::path::PathBuf;

use super::token_file::TokenFile;
use super::x509::{CaBundle, RequestHeader, X509};
use super::{Anonymous, Authenticator, Chain, Remote};

#[derive(Debug, Clone, clap::Args)]
#[group(id = "authentication-flags")]
#[command(next_help_heading = "Authentication flags")]
pub struct Flags {
    /// Enables anonymous requests to the secure port. Requests that are not rejected by
    /// another authentication method are treated as anonymous requests (user
    /// system:anonymous, group system:unauthenticated).
    /// (Unset is true; whether it was given matters beside --authentication-config.)
    #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true")]
    pub anonymous_auth: Option<bool>,
    /// File with Authentication Configuration to configure the JWT Token authenticator or the
    /// anonymous authenticator. This flag is mutually exclusive with the --oidc-* flags if the
    /// file configures the JWT Token authenticator. This flag is mutually exclusive with
    /// --anonymous-auth if the file configures the Anonymous authenticator. Reloaded when the
    /// file changes.
    #[arg(long)]
    pub authentication_config: Option<PathBuf>,
    /// The URL of the OpenID issuer, only HTTPS scheme will be accepted. If set, it will be
    /// used to verify the OIDC JSON Web Token (JWT).
    #[arg(long)]
    pub oidc_issuer_url: Option<String>,
    /// The client ID for the OpenID Connect client, must be set if oidc-issuer-url is set.
    #[arg(long)]
    pub oidc_client_id: Option<String>,
    /// If set, the OpenID server's certificate will be verified by one of the authorities in
    /// the oidc-ca-file, otherwise the host's root CA set will be used.
    #[arg(long)]
    pub oidc_ca_file: Option<PathBuf>,
    /// The OpenID claim to use as the user name. Note that claims other than the default
    /// ('sub') is not guaranteed to be unique and immutable. (default "sub")
    #[arg(long)]
    pub oidc_username_claim: Option<String>,
    /// If provided, all usernames will be prefixed with this value. If not provided, username
    /// claims other than 'email' are prefixed by the issuer URL to avoid clashes. To skip any
    /// prefixing, provide the value '-'.
    #[arg(long)]
    pub oidc_username_prefix: Option<String>,
    /// If provided, the name of a custom OpenID Connect claim for specifying user groups. The
    /// claim value is expected to be a string or array of strings.
    #[arg(long)]
    pub oidc_groups_claim: Option<String>,
    /// If provided, all groups will be prefixed with this value to prevent conflicts with
    /// other authentication strategies.
    #[arg(long)]
    pub oidc_groups_prefix: Option<String>,
    /// A key=value pair that describes a required claim in the ID Token. If set, the claim is
    /// verified to be present in the ID Token with a matching value. Repeat this flag to
    /// specify multiple claims.
    #[arg(long)]
    pub oidc_required_claim: Vec<String>,
    /// Comma-separated list of allowed JOSE asymmetric signing algorithms. JWTs with a
    /// supported 'alg' header values are: RS256, RS384, RS512, ES256, ES384, PS256, PS384,
    /// PS512 (kapi: not ES512). (default [RS256])
    #[arg(long, value_delimiter = ',')]
    pub oidc_signing_algs: Vec<String>,
    /// File with webhook configuration for token authentication in kubeconfig format. The API
    /// server will query the remote service to determine authentication for bearer tokens.
    #[arg(long)]
    pub authentication_token_webhook_config_file: Option<PathBuf>,
    /// The API version of the authentication.k8s.io TokenReview to send to and expect from
    /// the webhook.
    #[arg(long, default_value = "v1beta1")]
    pub authentication_token_webhook_version: String,
    /// The duration to cache responses from the webhook token authenticator.
    #[arg(long, default_value = "2m0s", value_parser = crate::shutdown::parse_duration)]
    pub authentication_token_webhook_cache_ttl: std::time::Duration,
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
    /// The JWT authenticators and the webhook, and the anonymous rule of the configuration
    /// file (`structured`), once started.
    remote: Vec<Remote>,
    anonymous_rule: Option<Anonymous>,
    api_audiences: Vec<String>,
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
            anonymous: flags.anonymous_auth.unwrap_or(true),
            remote: Vec::new(),
            anonymous_rule: None,
            api_audiences: Vec::new(),
        })
    }

    /// Starts the JWT authenticators (`--authentication-config` or `--oidc-*`) and the token
    /// webhook the flags configure; `sa_issuers` and `api_audiences` are the resolved
    /// service-account issuers and the server's audiences.
    pub fn start_remote(
        &mut self,
        flags: &Flags,
        sa_issuers: &[String],
        api_audiences: &[String],
    ) -> Result<(), String> {
        let started = super::structured::start(flags, sa_issuers, api_audiences)?;
        self.remote = started.remote;
        self.anonymous_rule = started.anonymous;
        self.api_audiences = api_audiences.to_vec();
        Ok(())
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
            remote: Vec::new(),
            anonymous_rule: None,
            api_audiences: Vec::new(),
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
        let anonymous = self.anonymous_rule.unwrap_or(Anonymous {
            enabled: self.anonymous,
            paths: Vec::new(),
        });
        Chain::new(authenticators, self.anonymous).with_remote(
            self.remote,
            anonymous,
            self.api_audiences,
        )
    }
}
