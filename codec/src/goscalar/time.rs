//! metav1.Time and MicroTime: RFC 3339 parsing and formatting as Go does.

use super::*;

// ---------------------------------------------------------------------------------------------
// metav1.Time / MicroTime
// ---------------------------------------------------------------------------------------------

/// Unix seconds of Go's zero `time.Time` (0001-01-01T00:00:00Z), which metav1 marshals as `null`.
pub const GO_ZERO_TIME_UNIX: i64 = -62_135_596_800;

const RFC3339: &str = "2006-01-02T15:04:05Z07:00";
const RFC3339_MICRO: &str = "2006-01-02T15:04:05.000000Z07:00";

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in(m: u32, y: i64) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Go's `appendInt`: sign, then at least `width` digits.
fn append_go_int(out: &mut Vec<u8>, x: i64, width: usize) {
    if x < 0 {
        out.push(b'-');
    }
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(x.unsigned_abs());
    for _ in digits.len()..width {
        out.push(b'0');
    }
    out.extend_from_slice(digits.as_bytes());
}

/// Two decimal digits of `x` (0..=99). Hot path: every timestamp written as JSON.
#[inline]
fn push2(out: &mut Vec<u8>, x: i64) {
    out.push(b'0' + (x / 10) as u8);
    out.push(b'0' + (x % 10) as u8);
}

fn append_date_time(out: &mut Vec<u8>, secs: i64) {
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    if (0..=9999).contains(&y) {
        push2(out, y / 100);
        push2(out, y % 100);
    } else {
        append_go_int(out, y, 4);
    }
    out.push(b'-');
    push2(out, i64::from(mo));
    out.push(b'-');
    push2(out, i64::from(d));
    out.push(b'T');
    push2(out, sod / 3600);
    out.push(b':');
    push2(out, sod / 60 % 60);
    out.push(b':');
    push2(out, sod % 60);
}

/// `metav1.Time` JSON form (without quotes): `t.UTC().AppendFormat(RFC3339)`, second
/// precision. Years outside 0000..9999 are written as Go's AppendFormat does (`-0001`,
/// `10000`); metav1 does not reject them. The caller handles Go's zero time (`null`).
pub fn format_time(secs: i64, out: &mut Vec<u8>) {
    append_date_time(out, secs);
    out.push(b'Z');
}

/// `metav1.MicroTime` JSON form (without quotes): `RFC3339Micro`, six fractional digits,
/// truncated. `nanos` >= 1e9 carries into the seconds as `time.Unix` does.
pub fn format_micro_time(secs: i64, nanos: u32, out: &mut Vec<u8>) {
    let secs = secs.saturating_add(i64::from(nanos / 1_000_000_000));
    let nanos = nanos % 1_000_000_000;
    append_date_time(out, secs);
    out.push(b'.');
    append_go_int(out, i64::from(nanos / 1000), 6);
    out.push(b'Z');
}

/// Go's `getnum`: one or two digits (exactly two when `fixed`).
fn getnum(s: &[u8], fixed: bool) -> Option<(u32, &[u8])> {
    let d0 = *s.first().filter(|c| c.is_ascii_digit())?;
    match s.get(1) {
        Some(d1) if d1.is_ascii_digit() => {
            Some((u32::from(d0 - b'0') * 10 + u32::from(d1 - b'0'), &s[2..]))
        }
        _ if fixed => None,
        _ => Some((u32::from(d0 - b'0'), &s[1..])),
    }
}

/// Go's `time.atoi` for short fields: optional sign, digits only.
fn go_atoi(s: &[u8]) -> Option<i64> {
    let (neg, d) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut v: i64 = 0;
    for &c in d {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(i64::from(c - b'0'))?;
    }
    Some(if neg { -v } else { v })
}

/// Go's `time.parse` specialised to the RFC3339 or RFC3339Micro layout, errors included.
fn parse_go_time(value: &str, micro: bool) -> Result<(i64, u32), ScalarError> {
    let layout = if micro { RFC3339_MICRO } else { RFC3339 };
    let orig = value.as_bytes();
    let cannot = |rest: &[u8], elem: &str| {
        ScalarError(format!(
            "parsing time {} as {}: cannot parse {} as {}",
            quoted(orig),
            quoted(layout.as_bytes()),
            quoted(rest),
            quoted(elem.as_bytes())
        ))
    };
    let range = |what: &str| {
        ScalarError(format!(
            "parsing time {}: {what} out of range",
            quoted(orig)
        ))
    };
    fn skip(v: &[u8], c: u8) -> Option<&[u8]> {
        v.strip_prefix(&[c])
    }

    let mut v = orig;
    // 2006
    if v.len() < 4 || !v[..4].iter().all(u8::is_ascii_digit) {
        return Err(cannot(v, "2006"));
    }
    let year = v[..4]
        .iter()
        .fold(0i64, |a, &c| a * 10 + i64::from(c - b'0'));
    v = &v[4..];
    v = skip(v, b'-').ok_or_else(|| cannot(v, "-"))?;
    // 01
    let (month, rest) = getnum(v, true).ok_or_else(|| cannot(v, "01"))?;
    if !(1..=12).contains(&month) {
        return Err(range("month"));
    }
    v = rest;
    v = skip(v, b'-').ok_or_else(|| cannot(v, "-"))?;
    // 02 (validated against the month at the end, as Go does)
    let (day, rest) = getnum(v, true).ok_or_else(|| cannot(v, "02"))?;
    v = rest;
    v = skip(v, b'T').ok_or_else(|| cannot(v, "T"))?;
    // 15: one or two digits
    let (hour, rest) = getnum(v, false).ok_or_else(|| cannot(v, "15"))?;
    if hour >= 24 {
        return Err(range("hour"));
    }
    v = rest;
    v = skip(v, b':').ok_or_else(|| cannot(v, ":"))?;
    // 04
    let (min, rest) = getnum(v, true).ok_or_else(|| cannot(v, "04"))?;
    if min >= 60 {
        return Err(range("minute"));
    }
    v = rest;
    v = skip(v, b':').ok_or_else(|| cannot(v, ":"))?;
    // 05
    let (sec, rest) = getnum(v, true).ok_or_else(|| cannot(v, "05"))?;
    if sec >= 60 {
        return Err(range("second"));
    }
    v = rest;
    let mut nsec: u32 = 0;
    if micro {
        // .000000: exactly six digits after '.' or ','.
        if v.len() < 7 || !(v[0] == b'.' || v[0] == b',') {
            return Err(cannot(v, ".000000"));
        }
        match go_atoi(&v[1..7]) {
            None => return Err(cannot(v, ".000000")),
            Some(x) if x < 0 => return Err(range("fractional second")),
            Some(x) => nsec = (x * 1000) as u32,
        }
        v = &v[7..];
    } else if v.len() >= 2 && (v[0] == b'.' || v[0] == b',') && v[1].is_ascii_digit() {
        // Fractional second not in the layout: any number of digits, truncated to nanos.
        let n = 1 + v[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        let used = &v[1..n.min(10)];
        let mut ns = used.iter().fold(0u32, |a, &c| a * 10 + u32::from(c - b'0'));
        for _ in used.len()..9 {
            ns *= 10;
        }
        nsec = ns;
        v = &v[n..];
    }
    // Z07:00
    let mut offset: i64 = 0;
    if v.first() == Some(&b'Z') {
        v = &v[1..];
    } else {
        if v.len() < 6 || v[3] != b':' {
            return Err(cannot(v, "Z07:00"));
        }
        let hold = v;
        let mut bad = false;
        let (mut hr, mut mm) = (0u32, 0u32);
        match getnum(&v[1..3], true) {
            Some((h, _)) => {
                hr = h;
                match getnum(&v[4..6], true) {
                    Some((m, _)) => mm = m,
                    None => bad = true,
                }
            }
            None => bad = true,
        }
        let mut range_what = None;
        if hr > 24 {
            range_what = Some("time zone offset hour");
        }
        if mm > 60 {
            range_what = Some("time zone offset minute");
        }
        offset = i64::from(hr * 60 + mm) * 60;
        match v[0] {
            b'+' => {}
            b'-' => offset = -offset,
            _ => bad = true,
        }
        if let Some(w) = range_what {
            return Err(range(w));
        }
        if bad {
            return Err(cannot(hold, "Z07:00"));
        }
        v = &v[6..];
    }
    if !v.is_empty() {
        return Err(ScalarError(format!(
            "parsing time {}: extra text: {}",
            quoted(orig),
            quoted(v)
        )));
    }
    if day < 1 || day > days_in(month, year) {
        return Err(range("day"));
    }
    let secs = days_from_civil(year, month, day) * 86_400 + i64::from(hour * 3600 + min * 60 + sec)
        - offset;
    Ok((secs, nsec))
}

/// Parse as Go's `time.Parse(time.RFC3339, s)` accepts it (what `metav1.Time` unmarshals
/// with): fractional seconds with `.` or `,` truncated to nanoseconds, a one-digit hour,
/// `Z` or ±hh:mm up to ±24:60. Returns UTC Unix seconds and nanoseconds.
pub fn parse_rfc3339(s: &str) -> Result<(i64, u32), ScalarError> {
    parse_go_time(s, false)
}

/// Parse as `time.Parse(metav1.RFC3339Micro, s)` (what `metav1.MicroTime` unmarshals with):
/// exactly six fractional digits are required.
pub fn parse_micro_time(s: &str) -> Result<(i64, u32), ScalarError> {
    parse_go_time(s, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    fn ft(secs: i64) -> String {
        let mut out = Vec::new();
        format_time(secs, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn fmt_micro(secs: i64, nanos: u32) -> String {
        let mut out = Vec::new();
        format_micro_time(secs, nanos, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn time_format() {
        assert_eq!(ft(0), "1970-01-01T00:00:00Z");
        assert_eq!(ft(-1), "1969-12-31T23:59:59Z");
        assert_eq!(ft(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(ft(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(ft(-86_400 * 365), "1969-01-01T00:00:00Z");
        assert_eq!(ft(-2_208_988_800), "1900-01-01T00:00:00Z");
        assert_eq!(ft(GO_ZERO_TIME_UNIX), "0001-01-01T00:00:00Z");
        assert_eq!(ft(-62_167_219_200), "0000-01-01T00:00:00Z");
        assert_eq!(ft(-62_167_219_201), "-0001-12-31T23:59:59Z");
        assert_eq!(ft(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(ft(253_402_300_800), "10000-01-01T00:00:00Z");
        // Extreme values must not panic.
        ft(i64::MAX);
        ft(i64::MIN);
        assert_eq!(
            fmt_micro(1_700_000_000, 123_456_789),
            "2023-11-14T22:13:20.123456Z"
        );
        assert_eq!(fmt_micro(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(fmt_micro(-1, 999_999), "1969-12-31T23:59:59.000999Z");
        assert_eq!(fmt_micro(0, 1_500_000_000), "1970-01-01T00:00:01.500000Z");
        fmt_micro(i64::MAX, u32::MAX);
    }

    #[test]
    fn civil_round_trip() {
        for days in (-800_000i64..800_000).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert!((1..=12).contains(&m) && d >= 1 && d <= days_in(m, y));
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn time_parse() {
        let ok = |s: &str| parse_rfc3339(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(ok("2023-11-14T22:13:20Z"), (1_700_000_000, 0));
        assert_eq!(ok("2023-11-14T23:13:20+01:00"), (1_700_000_000, 0));
        assert_eq!(ok("2023-11-14T17:43:20-04:30"), (1_700_000_000, 0));
        assert_eq!(ok("2023-11-14T22:13:20.5Z"), (1_700_000_000, 500_000_000));
        assert_eq!(
            ok("2023-11-14T22:13:20.123456789Z"),
            (1_700_000_000, 123_456_789)
        );
        assert_eq!(
            ok("2023-11-14T22:13:20.1234567899Z"),
            (1_700_000_000, 123_456_789)
        );
        assert_eq!(ok("2023-11-14T22:13:20,25Z"), (1_700_000_000, 250_000_000));
        assert_eq!(ok("2023-11-14T2:13:20Z"), (1_699_928_000, 0));
        assert_eq!(ok("2023-11-14T22:13:20+24:00"), (1_700_000_000 - 86_400, 0));
        assert_eq!(ok("2023-11-14T22:13:20+23:60"), (1_700_000_000 - 86_400, 0));
        assert_eq!(ok("1969-12-31T23:59:59Z"), (-1, 0));
        assert_eq!(ok("0000-01-01T00:00:00Z"), (-62_167_219_200, 0));
        assert_eq!(ok("0001-01-01T00:00:00Z"), (GO_ZERO_TIME_UNIX, 0));
        assert_eq!(ok("9999-12-31T23:59:59Z"), (253_402_300_799, 0));
        assert_eq!(ok("2000-02-29T00:00:00Z"), (951_782_400, 0));

        let e = |s: &str| parse_rfc3339(s).unwrap_err().0;
        let layout = "\"2006-01-02T15:04:05Z07:00\"";
        assert_eq!(
            e(""),
            format!("parsing time \"\" as {layout}: cannot parse \"\" as \"2006\"")
        );
        assert_eq!(
            e("2023-11-14 22:13:20Z"),
            format!(
                "parsing time \"2023-11-14 22:13:20Z\" as {layout}: cannot parse \" 22:13:20Z\" as \"T\""
            )
        );
        assert_eq!(
            e("2023-11-14T22:13:20"),
            format!(
                "parsing time \"2023-11-14T22:13:20\" as {layout}: cannot parse \"\" as \"Z07:00\""
            )
        );
        assert_eq!(
            e("2023-1-14T22:13:20Z"),
            format!(
                "parsing time \"2023-1-14T22:13:20Z\" as {layout}: cannot parse \"1-14T22:13:20Z\" as \"01\""
            )
        );
        assert_eq!(
            e("2023-02-29T00:00:00Z"),
            "parsing time \"2023-02-29T00:00:00Z\": day out of range"
        );
        assert_eq!(
            e("2023-13-01T00:00:00Z"),
            "parsing time \"2023-13-01T00:00:00Z\": month out of range"
        );
        assert_eq!(
            e("2023-11-14T24:00:00Z"),
            "parsing time \"2023-11-14T24:00:00Z\": hour out of range"
        );
        assert_eq!(
            e("2023-11-14T23:60:00Z"),
            "parsing time \"2023-11-14T23:60:00Z\": minute out of range"
        );
        assert_eq!(
            e("2023-11-14T23:59:60Z"),
            "parsing time \"2023-11-14T23:59:60Z\": second out of range"
        );
        assert_eq!(
            e("2023-11-14T22:13:20+25:00"),
            "parsing time \"2023-11-14T22:13:20+25:00\": time zone offset hour out of range"
        );
        assert_eq!(
            e("2023-11-14T22:13:20Zjunk"),
            "parsing time \"2023-11-14T22:13:20Zjunk\": extra text: \"junk\""
        );
        assert_eq!(
            e("2023-11-14T22:13:20z"),
            format!(
                "parsing time \"2023-11-14T22:13:20z\" as {layout}: cannot parse \"z\" as \"Z07:00\""
            )
        );
        assert_eq!(
            e("2023-11-14T22:13:20*01:00"),
            format!(
                "parsing time \"2023-11-14T22:13:20*01:00\" as {layout}: cannot parse \"*01:00\" as \"Z07:00\""
            )
        );
        assert_eq!(
            e("2023-11-14T22:13:20Zé"),
            "parsing time \"2023-11-14T22:13:20Z\\xc3\\xa9\": extra text: \"\\xc3\\xa9\""
        );
        assert!(parse_rfc3339("10000-01-01T00:00:00Z").is_err());
        assert!(parse_rfc3339("-001-01-01T00:00:00Z").is_err());
        assert!(parse_rfc3339("2023-11-14t22:13:20Z").is_err());
    }

    #[test]
    fn micro_time_parse() {
        assert_eq!(
            parse_micro_time("2023-11-14T22:13:20.123456Z").unwrap(),
            (1_700_000_000, 123_456_000)
        );
        assert_eq!(
            parse_micro_time("2023-11-14T23:13:20.000001+01:00").unwrap(),
            (1_700_000_000, 1_000)
        );
        let layout = "\"2006-01-02T15:04:05.000000Z07:00\"";
        assert_eq!(
            parse_micro_time("2023-11-14T22:13:20Z").unwrap_err().0,
            format!(
                "parsing time \"2023-11-14T22:13:20Z\" as {layout}: cannot parse \"Z\" as \".000000\""
            )
        );
        assert_eq!(
            parse_micro_time("2023-11-14T22:13:20.1234567Z")
                .unwrap_err()
                .0,
            format!(
                "parsing time \"2023-11-14T22:13:20.1234567Z\" as {layout}: cannot parse \"7Z\" as \"Z07:00\""
            )
        );
        assert!(parse_micro_time("2023-11-14T22:13:20.12345Z").is_err());
        // Go's atoi takes a sign here.
        assert_eq!(
            parse_micro_time("2023-11-14T22:13:20.-00001Z")
                .unwrap_err()
                .0,
            "parsing time \"2023-11-14T22:13:20.-00001Z\": fractional second out of range"
        );
        // Round trip with the formatter.
        let mut out = Vec::new();
        format_micro_time(1_700_000_000, 654_321_000, &mut out);
        let s = String::from_utf8(out).unwrap();
        assert_eq!(parse_micro_time(&s).unwrap(), (1_700_000_000, 654_321_000));
    }

    // ----- duration -----
}
