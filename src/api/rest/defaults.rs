//! What the server fills in on create that no kind decides: generated name suffixes and
//! timestamps. Per-kind defaults live in the kinds' strategies (`crate::kinds`).

/// Five characters from upstream's generateName alphabet (no vowels, no confusable digits).
pub fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut seed = uuid::Uuid::new_v4().as_u128();
    (0..5)
        .map(|_| {
            let c = ALPHABET[(seed % ALPHABET.len() as u128) as usize] as char;
            seed /= ALPHABET.len() as u128;
            c
        })
        .collect()
}

/// Seconds since the Unix epoch now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `secs` as an RFC 3339 timestamp, as upstream's metav1.Time writes it.
pub fn rfc3339(secs: i64) -> String {
    let mut out = Vec::new();
    kapi_codec::goscalar::format_time(secs, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

pub fn now_rfc3339() -> String {
    rfc3339(unix_now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn generated_suffixes_have_five_characters() {
        assert_eq!(random_suffix().len(), 5);
    }
}
