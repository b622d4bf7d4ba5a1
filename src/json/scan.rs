//! JSON text checked in one pass, exactly as strictly as [`super::parse`], giving back the text
//! of each value read.
//!
//! The strict readers keep most of a message as text and parse only what policy reads. With
//! serde_json alone that meant reading each kept member twice: once to find where it ends (its
//! raw capture, which does not check escapes or repeated keys) and once to check it. This reads
//! it once: it checks syntax, escapes, number range, nesting depth and repeated keys (in any
//! letter case) the way `parse` does, in the same order, and says where each value began and
//! ended. `tests` holds it to that: for every document tried, both accept or both refuse, for
//! the same kind of reason.
//!
//! Strings are most of a large answer's bytes; their ends are found with `memchr` (SIMD), which is
//! what pays for this reader: a 1 MiB answer costs a fraction of serde_json's byte-at-a-time scan.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::{Keys, StrictJsonError};

/// serde_json refuses a value nested 128 deep; so does this, to accept exactly what it does.
const MAX_DEPTH: usize = 127;

/// A cursor over JSON text. Each method reads one value (or the end of the text) from where the
/// last one stopped.
pub(crate) struct Scan<'t> {
    text: &'t str,
    at: usize,
    depth: usize,
}

/// Checks `text` as one JSON document, without building anything.
pub fn check(text: &str) -> Result<(), StrictJsonError> {
    let mut scan = Scan::new(text);
    scan.value()?;
    scan.end()
}

impl<'t> Scan<'t> {
    pub(crate) fn new(text: &'t str) -> Self {
        Self {
            text,
            at: 0,
            depth: 0,
        }
    }

    /// The first byte of the next value, not consumed (whitespace before it is).
    pub(crate) fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.bytes().get(self.at).copied()
    }

    /// Checks the next value and gives back its text.
    pub(crate) fn value(&mut self) -> Result<&'t str, StrictJsonError> {
        let start = self.start();
        match self.peek() {
            Some(b'{') => {
                self.members(|_, scan| scan.value().map(drop))?;
            }
            Some(b'[') => {
                self.elements(|scan| scan.value().map(drop))?;
            }
            Some(b'"') => {
                self.string()?;
            }
            Some(b'-' | b'0'..=b'9') => self.number()?,
            Some(b'n') => self.literal("null")?,
            Some(b't') => self.literal("true")?,
            Some(b'f') => self.literal("false")?,
            Some(_) => return Err(self.error("expected value")),
            None => return Err(self.error("EOF while parsing a value")),
        }
        Ok(&self.text[start..self.at])
    }

    /// Checks the next value and builds it, in the same pass: the value `super::parse` gives.
    pub(crate) fn build(&mut self) -> Result<Value, StrictJsonError> {
        match self.peek() {
            Some(b'{') => {
                let mut object = Map::new();
                self.members(|key, scan| {
                    object.insert(key.into_owned(), scan.build()?);
                    Ok(())
                })?;
                Ok(Value::Object(object))
            }
            Some(b'[') => {
                let mut items = Vec::new();
                self.elements(|scan| {
                    items.push(scan.build()?);
                    Ok(())
                })?;
                Ok(Value::Array(items))
            }
            Some(b'"') => self.str().map(|text| Value::String(text.into_owned())),
            _ => match self.value()? {
                "null" => Ok(Value::Null),
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                // Checked just now: serde_json only converts it, exactly as `parse` does.
                number => match number.parse::<u64>() {
                    Ok(integer) => Ok(Value::from(integer)),
                    Err(_) => serde_json::from_str(number)
                        .map_err(|err| StrictJsonError::Syntax(err.to_string())),
                },
            },
        }
    }

    /// Reads the object that must come next, calling `member` with each key in turn; `member`
    /// reads that key's value from the scanner. Gives back the object's text.
    pub(crate) fn members(
        &mut self,
        mut member: impl FnMut(Cow<'t, str>, &mut Self) -> Result<(), StrictJsonError>,
    ) -> Result<&'t str, StrictJsonError> {
        let start = self.start();
        self.open(b'{', "an object")?;
        let mut keys = Keys::default();
        if self.peek() == Some(b'}') {
            return self.close(start);
        }
        loop {
            match self.peek() {
                Some(b'"') => {}
                Some(_) => return Err(self.error("key must be a string")),
                None => return Err(self.error("EOF while parsing an object")),
            }
            let key = self.str()?;
            if let Err(key) = keys.insert(key.clone()) {
                return Err(StrictJsonError::DuplicateKey(key.into_owned()));
            }
            match self.peek() {
                Some(b':') => self.at += 1,
                Some(_) => return Err(self.error("expected `:`")),
                None => return Err(self.error("EOF while parsing an object")),
            }
            member(key, self)?;
            if self.comma_or(b'}', "expected `,` or `}`", "EOF while parsing an object")? {
                return self.close(start);
            }
        }
    }

    /// Reads the array that must come next, calling `element` for each item; `element` reads it
    /// from the scanner. Gives back the array's text.
    pub(crate) fn elements(
        &mut self,
        mut element: impl FnMut(&mut Self) -> Result<(), StrictJsonError>,
    ) -> Result<&'t str, StrictJsonError> {
        let start = self.start();
        self.open(b'[', "an array")?;
        if self.peek() == Some(b']') {
            return self.close(start);
        }
        loop {
            element(self)?;
            if self.comma_or(b']', "expected `,` or `]`", "EOF while parsing a list")? {
                return self.close(start);
            }
        }
    }

    /// After a member or an item: a comma and more to come (JSON has no trailing comma), or
    /// the closing bracket (`true`).
    fn comma_or(&mut self, close: u8, expected: &str, eof: &str) -> Result<bool, StrictJsonError> {
        match self.peek() {
            Some(b',') => self.at += 1,
            Some(byte) if byte == close => return Ok(true),
            Some(_) => return Err(self.error(expected)),
            None => return Err(self.error(eof)),
        }
        match self.peek() == Some(close) {
            true => Err(self.error("trailing comma")),
            false => Ok(false),
        }
    }

    /// Nothing but whitespace may follow the value read.
    pub(crate) fn end(&mut self) -> Result<(), StrictJsonError> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.error("trailing characters")),
        }
    }

    fn bytes(&self) -> &'t [u8] {
        self.text.as_bytes()
    }

    fn start(&mut self) -> usize {
        self.skip_whitespace();
        self.at
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.bytes().get(self.at) {
            self.at += 1;
        }
    }

    fn open(&mut self, bracket: u8, what: &str) -> Result<(), StrictJsonError> {
        if self.peek() != Some(bracket) {
            return Err(self.error(&format!("expected {what}")));
        }
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("recursion limit exceeded"));
        }
        self.at += 1;
        Ok(())
    }

    fn close(&mut self, start: usize) -> Result<&'t str, StrictJsonError> {
        self.at += 1;
        self.depth -= 1;
        Ok(&self.text[start..self.at])
    }

    /// The string that must come next, decoded: borrowed unless it has escapes.
    pub(crate) fn str(&mut self) -> Result<Cow<'t, str>, StrictJsonError> {
        if self.peek() != Some(b'"') {
            return Err(self.error("expected a string"));
        }
        let (quoted, escaped) = self.string()?;
        if !escaped {
            return Ok(Cow::Borrowed(&quoted[1..quoted.len() - 1]));
        }
        // Checked just now: serde_json only decodes it.
        serde_json::from_str(quoted)
            .map(Cow::Owned)
            .map_err(|err| StrictJsonError::Syntax(err.to_string()))
    }

    /// Checks the string that starts here; gives back its text with the quotes, and whether it
    /// has escapes.
    fn string(&mut self) -> Result<(&'t str, bool), StrictJsonError> {
        let start = self.at;
        self.at += 1;
        let mut escaped = false;
        loop {
            let Some(stop) = string_stop(&self.bytes()[self.at..]) else {
                return Err(self.error_at(self.text.len(), "EOF while parsing a string"));
            };
            self.at += stop;
            match self.bytes()[self.at] {
                b'"' => {
                    self.at += 1;
                    return Ok((&self.text[start..self.at], escaped));
                }
                b'\\' => {
                    self.at += 1;
                    escaped = true;
                    self.escape()?;
                }
                _ => return Err(self.error(CONTROL_CHARACTER)),
            }
        }
    }

    /// The escape after a backslash (RFC 8259 §7): a `\u` escape of a UTF-16 surrogate must be
    /// one of a pair, as serde_json has it.
    fn escape(&mut self) -> Result<(), StrictJsonError> {
        let Some(&kind) = self.bytes().get(self.at) else {
            return Err(self.error("EOF while parsing a string"));
        };
        self.at += 1;
        match kind {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Ok(()),
            b'u' => match self.hex4()? {
                0xD800..=0xDBFF => {
                    if self.bytes()[self.at..].starts_with(b"\\u") {
                        self.at += 2;
                        if (0xDC00..=0xDFFF).contains(&self.hex4()?) {
                            return Ok(());
                        }
                    }
                    Err(self.error("lone leading surrogate in hex escape"))
                }
                0xDC00..=0xDFFF => Err(self.error("lone trailing surrogate in hex escape")),
                _ => Ok(()),
            },
            _ => Err(self.error("invalid escape")),
        }
    }

    fn hex4(&mut self) -> Result<u16, StrictJsonError> {
        let mut value = 0u16;
        for _ in 0..4 {
            let Some(&digit) = self.bytes().get(self.at) else {
                return Err(self.error("EOF while parsing a string"));
            };
            let Some(digit) = char::from(digit).to_digit(16) else {
                return Err(self.error("invalid escape"));
            };
            value = value * 16 + digit as u16;
            self.at += 1;
        }
        Ok(value)
    }

    /// RFC 8259 §6's grammar; a number serde_json would read as an infinite f64 is refused.
    fn number(&mut self) -> Result<(), StrictJsonError> {
        let start = self.at;
        if self.bytes()[self.at] == b'-' {
            self.at += 1;
        }
        match self.bytes().get(self.at) {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => self.digits(),
            Some(_) => return Err(self.error("invalid number")),
            None => return Err(self.error("EOF while parsing a value")),
        }
        let integer_digits = self.at - start - usize::from(self.bytes()[start] == b'-');
        if self.bytes().get(self.at) == Some(&b'.') {
            self.at += 1;
            self.required_digits()?;
        }
        let mut exponent = false;
        if let Some(b'e' | b'E') = self.bytes().get(self.at) {
            exponent = true;
            self.at += 1;
            if let Some(b'+' | b'-') = self.bytes().get(self.at) {
                self.at += 1;
            }
            self.required_digits()?;
        }
        // f64::MAX has 309 integer digits: without an exponent, fewer are always finite.
        if exponent || integer_digits > 308 {
            let finite = self.text[start..self.at]
                .parse::<f64>()
                .is_ok_and(f64::is_finite);
            if !finite {
                return Err(self.error_at(start, "number out of range"));
            }
        }
        Ok(())
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.bytes().get(self.at) {
            self.at += 1;
        }
    }

    fn required_digits(&mut self) -> Result<(), StrictJsonError> {
        match self.bytes().get(self.at) {
            Some(b'0'..=b'9') => {
                self.digits();
                Ok(())
            }
            Some(_) => Err(self.error("invalid number")),
            None => Err(self.error("EOF while parsing a value")),
        }
    }

    fn literal(&mut self, word: &str) -> Result<(), StrictJsonError> {
        let rest = &self.bytes()[self.at..];
        if rest.starts_with(word.as_bytes()) {
            self.at += word.len();
            return Ok(());
        }
        let matched = rest
            .iter()
            .zip(word.as_bytes())
            .take_while(|(a, b)| a == b)
            .count();
        match matched == rest.len() {
            true => Err(self.error_at(self.text.len(), "EOF while parsing a value")),
            false => Err(self.error_at(self.at + matched, "expected ident")),
        }
    }

    fn error(&self, what: &str) -> StrictJsonError {
        self.error_at(self.at, what)
    }

    /// Where, as serde_json says it: line and column, both from 1.
    fn error_at(&self, at: usize, what: &str) -> StrictJsonError {
        let before = &self.bytes()[..at.min(self.text.len())];
        let line = 1 + memchr::memchr_iter(b'\n', before).count();
        let column = 1 + before.len() - memchr::memrchr(b'\n', before).map_or(0, |nl| nl + 1);
        StrictJsonError::Syntax(format!("{what} at line {line} column {column}"))
    }
}

const CONTROL_CHARACTER: &str = "control character (\\u0000-\\u001F) found while parsing a string";

/// Where a string's text stops being plain: its closing quote, a backslash, or a byte below
/// 0x20 (which a JSON string must escape). Most strings are short and end within a few words,
/// found eight bytes at a time (SWAR, as serde_json does); past that, `memchr` finds the quote
/// or backslash (SIMD), and the bytes it passed are checked for the other kind all at once,
/// without a branch per byte.
fn string_stop(text: &[u8]) -> Option<usize> {
    const SHORT: usize = 32;
    let mut at = 0;
    for word in text.chunks_exact(8).take(SHORT / 8) {
        let word = u64::from_le_bytes(word.try_into().expect("chunks of eight"));
        if let Some(stop) = first_stop_in(word) {
            return Some(at + stop);
        }
        at += 8;
    }
    if text.len() < SHORT {
        return text[at..]
            .iter()
            .position(|&b| is_stop(b))
            .map(|stop| at + stop);
    }
    let rest = &text[SHORT..];
    let stop = SHORT + memchr::memchr2(b'"', b'\\', rest).unwrap_or(rest.len());
    let passed = &text[SHORT..stop];
    if passed
        .iter()
        .copied()
        .min()
        .is_some_and(|least| least < 0x20)
    {
        return passed.iter().position(|&b| b < 0x20).map(|at| SHORT + at);
    }
    (stop < text.len()).then_some(stop)
}

fn is_stop(byte: u8) -> bool {
    matches!(byte, b'"' | b'\\') || byte < 0x20
}

/// The first of eight bytes (little-endian) that `is_stop`. Each test sets the high bit of a
/// byte that matches; a borrow can also set it in bytes after a match, never before one, so
/// the lowest bit set is the first match.
fn first_stop_in(word: u64) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = |word: u64, limit: u8| word.wrapping_sub(ONES * u64::from(limit)) & !word & HIGH;
    let equal = |word: u64, byte: u8| below(word ^ (ONES * u64::from(byte)), 1);
    let stops = equal(word, b'"') | equal(word, b'\\') | below(word, 0x20);
    (stops != 0).then(|| stops.trailing_zeros() as usize / 8)
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    /// Both accept, or both refuse for the same kind of reason (the same key if repeated); what
    /// both accept, both build alike.
    fn agree(text: &str) {
        let parsed = super::super::parse(text.as_bytes());
        let mut scan = Scan::new(text);
        let built = scan.build().and_then(|value| scan.end().map(|()| value));
        if let (Ok(parsed), Ok(built)) = (&parsed, &built) {
            assert_eq!(parsed, built, "{text:?}");
        }
        let parsed = parsed.map(drop);
        let scanned = check(text);
        assert_eq!(
            format!("{:?}", built.map(drop)),
            format!("{scanned:?}"),
            "{text:?}: built and checked differ"
        );
        match (&parsed, &scanned) {
            (Ok(()), Ok(()))
            | (Err(StrictJsonError::Syntax(_)), Err(StrictJsonError::Syntax(_))) => {}
            (Err(StrictJsonError::DuplicateKey(a)), Err(StrictJsonError::DuplicateKey(b)))
                if a == b => {}
            _ => panic!("{text:?}: parse says {parsed:?}, the scanner {scanned:?}"),
        }
    }

    #[test]
    fn a_string_stops_where_a_byte_by_byte_look_says() {
        let mut rng = StdRng::seed_from_u64(7);
        let alphabet = [
            b'a', b'"', b'\\', 0x00, 0x1f, 0x20, 0x21, 0x5b, 0x5d, 0x7f, 0x80, 0xa2, 0xdc, 0xff,
        ];
        for _ in 0..20_000 {
            let len = rng.random_range(0..80);
            let mut text = vec![b'x'; len];
            for _ in 0..rng.random_range(0..3) {
                if len > 0 {
                    text[rng.random_range(0..len)] = alphabet[rng.random_range(0..alphabet.len())];
                }
            }
            let expected = text.iter().position(|&b| is_stop(b));
            assert_eq!(string_stop(&text), expected, "{text:?}");
        }
    }

    #[test]
    fn edges_of_the_grammar_are_read_as_parse_reads_them() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let deep_objects = |n: usize| format!("{}1{}", r#"{"a":"#.repeat(n), "}".repeat(n));
        for text in [
            "",
            " ",
            "null",
            "nul",
            "nulll",
            "True",
            "[1,]",
            "{\"a\":1,}",
            "[,1]",
            "{,}",
            "{1:2}",
            "{\"a\" 1}",
            "{\"a\":}",
            "[1 2]",
            "01",
            "-",
            "-01",
            "1.",
            ".5",
            "1e",
            "1e+",
            "+1",
            "1E+5",
            "-0.0e-0",
            "1e400",
            "-1e400",
            "1e-400",
            "1.7976931348623157e308",
            "1.7976931348623159e308",
            "0e999999999999999999999",
            "1e99999999999999999999",
            "123456789012345678901234567890",
            "18446744073709551616",
            "-9223372036854775809",
            r#""\u0041""#,
            r#""\ud800""#,
            r#""\udc00""#,
            r#""\ud800\udc00""#,
            r#""\ud800\u0041""#,
            r#""\ud800\""#,
            r#""\u12""#,
            r#""\u12g4""#,
            r#""\x""#,
            r#""\/\b\f\n\r\t""#,
            "\"a\u{1}b\"",
            "\"\t\"",
            "\"\u{7f}é\"",
            "\"abc",
            "\"abc\\",
            "[\"a\"",
            "{\"a\":1",
            "{\"a\"",
            "1 2",
            "[] x",
            " [ ] ",
            "\u{a0}1",
            "[1]\u{feff}",
            &deep(127),
            &deep(128),
            &deep_objects(127),
            &deep_objects(128),
            &"1".repeat(400),
            &format!("1{}e-400", "0".repeat(400)),
            &format!("\"{}\u{1}{}\"", "a".repeat(40), "b".repeat(40)),
            &format!("\"{}\\\"{}\u{1f}\"", "a".repeat(40), "b".repeat(40)),
            &format!("\"{}\\u00e9{}\"", "a".repeat(40), "b".repeat(40)),
            &format!("\"{}", "a".repeat(40)),
        ] {
            agree(text);
        }
    }

    #[test]
    fn repeated_keys_are_refused_as_parse_refuses_them() {
        let many = |last: &str| {
            let keys: Vec<_> = (0..40).map(|i| format!("\"k{i}\":{i}")).collect();
            format!("{{{},\"{last}\":0}}", keys.join(","))
        };
        for text in [
            r#"{"a":1,"a":2}"#,
            r#"{"a":1,"A":2}"#,
            r#"{"name":1,"na\u006de":2}"#,
            r#"{"kind":1,"\u212aind":2}"#,
            r#"{"s":1,"ſ":2}"#,
            r#"[{"a":{"b":[{"c":1,"c":2}]}}]"#,
            r#"{"a":1,"a":2,"#,
            r#"{"a":1,"a"}"#,
            &many("k3"),
            &many("K39"),
            &many("k40"),
        ] {
            agree(text);
        }
    }

    #[test]
    fn random_documents_and_broken_copies_of_them_are_read_as_parse_reads_them() {
        let mut rng = StdRng::seed_from_u64(16);
        for _ in 0..20_000 {
            let mut text = String::new();
            random_value(&mut rng, &mut text, 0);
            agree(&text);
            let mut chars: Vec<char> = text.chars().collect();
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..=chars.len());
                match rng.random_range(0..3) {
                    0 if at < chars.len() => drop(chars.remove(at)),
                    1 if at < chars.len() => chars[at] = pick(&mut rng, BREAKERS),
                    _ => chars.insert(at, pick(&mut rng, BREAKERS)),
                }
            }
            agree(&chars.into_iter().collect::<String>());
        }
    }

    #[test]
    fn each_value_read_is_given_back_as_its_text() {
        let text = r#" { "a" : [1, {"b":"\u00e9"}] , "c":-2.5e3,"d":{} } "#;
        let mut scan = Scan::new(text);
        let mut members = Vec::new();
        let object = scan
            .members(|key, scan| {
                members.push((key.into_owned(), scan.value()?));
                Ok(())
            })
            .unwrap();
        scan.end().unwrap();
        assert_eq!(object, text.trim());
        assert_eq!(
            members,
            [
                ("a".to_owned(), r#"[1, {"b":"\u00e9"}]"#),
                ("c".to_owned(), "-2.5e3"),
                ("d".to_owned(), "{}"),
            ]
        );
    }

    const BREAKERS: &[char] = &[
        ',', ':', '[', ']', '{', '}', '"', '\\', ' ', '0', '-', '.', 'e', 'u', 'd', '\u{1}', 'A',
    ];
    const KEYS: &[&str] = &[
        "a",
        "A",
        "b",
        "name",
        "Name",
        r"na\u006de",
        "s",
        "ſ",
        r"\u212a",
        "k",
    ];
    const STRINGS: &[&str] = &[
        "",
        "x",
        "é",
        r"\u0041",
        r"\ud83d\ude00",
        r"\ud800",
        r"\udfff",
        r"\ud800\u0041",
        r"\n",
        r"\/",
        r"\q",
        "\u{1}",
        "\t",
        r"\u00",
        "\u{7f}",
    ];
    const NUMBERS: &[&str] = &[
        "0",
        "-0",
        "7",
        "-12",
        "1.5",
        "0.001",
        "1e5",
        "2E-3",
        "1e400",
        "-1e309",
        "1e-400",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "1.7976931348623157e308",
        "1.7976931348623159e308",
        "00",
        "1.e2",
        "-",
    ];

    fn pick<T: Copy>(rng: &mut StdRng, from: &[T]) -> T {
        from[rng.random_range(0..from.len())]
    }

    fn random_value(rng: &mut StdRng, out: &mut String, depth: usize) {
        let container = depth < 4 && rng.random_bool(0.5);
        match rng.random_range(0..if container { 2 } else { 6 }) {
            0 | 1 if container && rng.random_bool(0.5) => {
                out.push('{');
                for i in 0..rng.random_range(0..5) {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push('"');
                    out.push_str(pick(rng, KEYS));
                    out.push_str("\":");
                    random_value(rng, out, depth + 1);
                }
                out.push('}');
            }
            0 | 1 if container => {
                out.push('[');
                for i in 0..rng.random_range(0..5) {
                    if i > 0 {
                        out.push_str(pick(rng, &[",", " , ", ",\n"]));
                    }
                    random_value(rng, out, depth + 1);
                }
                out.push(']');
            }
            0 => out.push_str(pick(rng, &["null", "true", "false"])),
            1 | 2 => out.push_str(pick(rng, NUMBERS)),
            _ => {
                out.push('"');
                for _ in 0..rng.random_range(0..3) {
                    out.push_str(pick(rng, STRINGS));
                }
                out.push('"');
            }
        }
    }
}
