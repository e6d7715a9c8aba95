//! The x509 client-certificate authenticator: the chain rustls verified against
//! `--client-ca-file` names the user (CN) and its groups (each O), as upstream's
//! `CommonNameUserConversion`. Worked out once per connection (the certificate cannot change on
//! it) and kept in the connection's memo.

use std::rc::Rc;

use super::{Authenticator, Outcome, UserInfo};
use crate::transport::Request;

pub struct X509;

impl Authenticator for X509 {
    fn authenticate(&self, req: &Request) -> Outcome {
        let Some(leaf) = req.peer.certificates.first() else {
            return Outcome::NotMine;
        };
        let memo = req
            .peer
            .memo
            .get_or_init(|| Rc::new(user_of(leaf.as_ref())));
        match memo.downcast_ref::<Option<UserInfo>>() {
            Some(Some(user)) => Outcome::User(user.clone()),
            // A verified certificate without a CN authenticates no one: upstream's 401.
            Some(None) => Outcome::Invalid,
            None => Outcome::Invalid,
        }
    }
}

/// CN is the user and each O a group; a certificate without a CN names no one.
fn user_of(der: &[u8]) -> Option<UserInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let name = subject.iter_common_name().next()?.as_str().ok()?;
    if name.is_empty() {
        return None;
    }
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .map(str::to_owned)
        .collect();
    Some(UserInfo {
        name: name.to_owned(),
        groups,
        ..UserInfo::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_name_is_the_user_and_organizations_the_groups() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "alice");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "devs");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let user = user_of(cert.der()).unwrap();
        assert_eq!(user.name, "alice");
        assert_eq!(user.groups, vec!["devs"]);
        assert_eq!(user_of(b"not a certificate"), None);
    }
}
