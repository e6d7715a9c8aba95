//! `--token-auth-file`: static bearer tokens from a CSV file (`token,user,uid,"group1,group2"`),
//! as upstream's tokenfile authenticator. Read once at start; a token the file does not hold is
//! not this authenticator's (the chain goes on, and answers 401 if no one accepts it).

use std::collections::HashMap;
use std::path::Path;

use super::{Authenticator, Outcome, UserInfo, bearer_token};
use crate::transport::Request;

/// Lines read from the file at most: a static token file is small; this bounds a wrong path
/// (a huge file) to a clear start-up error.
const MAX_TOKENS: usize = 100_000;

pub struct TokenFile {
    tokens: HashMap<String, UserInfo>,
}

impl TokenFile {
    pub fn load(path: &Path) -> Result<TokenFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--token-auth-file {}: {e}", path.display()))?;
        TokenFile::parse(&text).map_err(|e| format!("--token-auth-file {}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<TokenFile, String> {
        let mut tokens = HashMap::new();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::None)
            .from_reader(text.as_bytes());
        for (i, record) in reader.records().enumerate() {
            if i >= MAX_TOKENS {
                return Err(format!("more than {MAX_TOKENS} tokens"));
            }
            let record = record.map_err(|e| e.to_string())?;
            let line = record.position().map(|p| p.line()).unwrap_or(i as u64 + 1);
            if record.len() == 1 && record[0].trim().is_empty() {
                continue;
            }
            if record.len() < 3 {
                return Err(format!(
                    "token file '{line}' must have at least 3 columns (token, user name, user uid), found {}",
                    record.len()
                ));
            }
            let token = record[0].to_owned();
            if token.is_empty() {
                return Err(format!("token file line {line}: empty token"));
            }
            let groups = record
                .get(3)
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            if tokens.contains_key(&token) {
                eprintln!("kapi: warning: --token-auth-file: duplicate token on line {line}");
            }
            tokens.insert(
                token,
                UserInfo {
                    name: record[1].to_owned(),
                    uid: record[2].to_owned(),
                    groups,
                    ..UserInfo::default()
                },
            );
        }
        Ok(TokenFile { tokens })
    }
}

impl Authenticator for TokenFile {
    fn authenticate(&self, req: &Request) -> Outcome {
        match bearer_token(req).and_then(|t| self.tokens.get(t)) {
            Some(user) => Outcome::User(user.clone()),
            None => Outcome::NotMine,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_name_user_uid_and_groups() {
        let f = TokenFile::parse(
            "t1,alice,uid-1,\"devs,ops\"\nt2,bob,uid-2\n\nt3,carol,uid-3,,extra\n",
        )
        .unwrap();
        assert_eq!(f.tokens["t1"].name, "alice");
        assert_eq!(f.tokens["t1"].groups, vec!["devs", "ops"]);
        assert_eq!(f.tokens["t2"].uid, "uid-2");
        assert!(f.tokens["t2"].groups.is_empty());
        assert!(f.tokens["t3"].groups.is_empty());
        assert!(TokenFile::parse("t1,alice\n").is_err());
    }
}
