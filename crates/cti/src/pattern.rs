//! STIX 2.1 patterns, parsed by the grammar of the specification (STIX 2.1, section 9, and its
//! ANTLR grammar `STIXPattern.g4`): a lexer of its tokens and a recursive-descent parser of
//! its rules, the left-recursive ones as loops. Written here rather than generated: the
//! grammar is small, and a hand-written parser says where a pattern goes wrong without a
//! parser-generator runtime in the node.

/// A token of the pattern language.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// `IdentifierWithoutHyphen` (false) or `IdentifierWithHyphen` (true).
    Ident(String, bool),
    Str,
    IntPos,
    IntNeg,
    Float {
        negative: bool,
    },
    Hex,
    Binary,
    Timestamp,
    Bool,
    Kw(&'static str),
    Op(&'static str),
    Punct(char),
}

const KEYWORDS: [&str; 17] = [
    "AND",
    "OR",
    "NOT",
    "FOLLOWEDBY",
    "LIKE",
    "MATCHES",
    "ISSUPERSET",
    "ISSUBSET",
    "EXISTS",
    "LAST",
    "IN",
    "START",
    "STOP",
    "SECONDS",
    "WITHIN",
    "REPEATS",
    "TIMES",
];

fn lex(text: &str) -> Result<Vec<(Tok, usize)>, String> {
    let b: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let quoted = |i: usize| -> Result<(usize, String), String> {
        // b[i] is the opening quote; \' and \\ are the only escapes.
        let mut j = i + 1;
        let mut s = String::new();
        while j < b.len() {
            match b[j] {
                '\\' if j + 1 < b.len() && (b[j + 1] == '\'' || b[j + 1] == '\\') => {
                    s.push(b[j + 1]);
                    j += 2;
                }
                '\\' => return Err(format!("at {j}: a backslash escapes only ' and \\")),
                '\'' => return Ok((j + 1, s)),
                c => {
                    s.push(c);
                    j += 1;
                }
            }
        }
        Err(format!("at {i}: a string is not closed"))
    };
    while i < b.len() {
        let c = b[i];
        let at = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '/' && b.get(i + 1) == Some(&'*') {
            let end = (i + 2..b.len().saturating_sub(1)).find(|&k| b[k] == '*' && b[k + 1] == '/');
            i = end.map(|k| k + 2).ok_or(format!("at {i}: a comment is not closed"))?;
            continue;
        }
        if c == '/' && b.get(i + 1) == Some(&'/') {
            while i < b.len() && b[i] != '\n' && b[i] != '\r' {
                i += 1;
            }
            continue;
        }
        if matches!(c, 'h' | 'b' | 't') && b.get(i + 1) == Some(&'\'') {
            let (end, s) = quoted(i + 1)?;
            let ok = match c {
                'h' => s.len().is_multiple_of(2) && s.chars().all(|x| x.is_ascii_hexdigit()),
                'b' => is_base64(&s),
                _ => is_timestamp(&s),
            };
            if !ok {
                let kind = match c {
                    'h' => "hex",
                    'b' => "binary (base64)",
                    _ => "timestamp (t'YYYY-MM-DDTHH:MM:SS[.s]Z')",
                };
                return Err(format!("at {at}: {c}'{s}' is not a {kind} literal"));
            }
            out.push((
                match c {
                    'h' => Tok::Hex,
                    'b' => Tok::Binary,
                    _ => Tok::Timestamp,
                },
                at,
            ));
            i = end;
            continue;
        }
        if c == '\'' {
            let (end, _) = quoted(i)?;
            out.push((Tok::Str, at));
            i = end;
            continue;
        }
        let digit_at = |k: usize| b.get(k).is_some_and(|d| d.is_ascii_digit());
        let starts_number = c.is_ascii_digit()
            || (c == '.' && digit_at(i + 1))
            || ((c == '+' || c == '-') && (digit_at(i + 1) || (b.get(i + 1) == Some(&'.') && digit_at(i + 2))));
        if starts_number {
            let negative = c == '-';
            let mut j = if c == '+' || c == '-' { i + 1 } else { i };
            let int_start = j;
            while digit_at(j) {
                j += 1;
            }
            if b.get(j) == Some(&'.') && digit_at(j + 1) {
                j += 1;
                while digit_at(j) {
                    j += 1;
                }
                out.push((Tok::Float { negative }, at));
            } else {
                let digits: String = b[int_start..j].iter().collect();
                if digits.len() > 1 && digits.starts_with('0') {
                    return Err(format!("at {at}: an integer has no leading zero ({digits})"));
                }
                out.push((if negative { Tok::IntNeg } else { Tok::IntPos }, at));
            }
            i = j;
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let mut j = i;
            let mut hyphen = false;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == '_' || b[j] == '-') {
                hyphen |= b[j] == '-';
                j += 1;
            }
            let word: String = b[i..j].iter().collect();
            let tok = if let Some(k) = KEYWORDS.iter().find(|k| **k == word) {
                Tok::Kw(k)
            } else if word == "true" || word == "false" {
                Tok::Bool
            } else {
                Tok::Ident(word, hyphen)
            };
            out.push((tok, at));
            i = j;
            continue;
        }
        let two: String = b[i..(i + 2).min(b.len())].iter().collect();
        let op = match two.as_str() {
            "==" => Some("="),
            "!=" | "<>" => Some("!="),
            "<=" => Some("<="),
            ">=" => Some(">="),
            _ => None,
        };
        if let Some(op) = op {
            out.push((Tok::Op(op), at));
            i += 2;
            continue;
        }
        match c {
            '=' => out.push((Tok::Op("="), at)),
            '<' => out.push((Tok::Op("<"), at)),
            '>' => out.push((Tok::Op(">"), at)),
            '[' | ']' | '(' | ')' | ':' | '.' | ',' | '*' => out.push((Tok::Punct(c), at)),
            _ => return Err(format!("at {at}: {c:?} is not part of the pattern language")),
        }
        i += 1;
    }
    Ok(out)
}

fn is_base64(s: &str) -> bool {
    let b = s.as_bytes();
    let ok = |c: u8| c.is_ascii_alphanumeric() || c == b'+' || c == b'/';
    let pad = b.iter().rev().take_while(|c| **c == b'=').count();
    b.len().is_multiple_of(4) && pad <= 2 && b[..b.len() - pad].iter().all(|c| ok(*c))
}

fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let d = |r: std::ops::Range<usize>| b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
    let head = b.len() >= 20
        && d(0..4)
        && b[4] == b'-'
        && d(5..7)
        && b[7] == b'-'
        && d(8..10)
        && b[10] == b'T'
        && d(11..13)
        && b[13] == b':'
        && d(14..16)
        && b[16] == b':'
        && d(17..19);
    let tail = &b[19.min(b.len())..];
    head && (tail == b"Z" || (tail.len() >= 3 && tail[0] == b'.' && tail.last() == Some(&b'Z') && d(20..b.len() - 1)))
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    at: usize,
    len: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|(t, _)| t)
    }

    fn pos(&self) -> usize {
        self.toks.get(self.at).map(|(_, p)| *p).unwrap_or(self.len)
    }

    fn err<T>(&self, want: &str) -> Result<T, String> {
        match self.peek() {
            Some(t) => Err(format!("at {}: expected {want}, found {}", self.pos(), describe(t))),
            None => Err(format!("at the end: expected {want}")),
        }
    }

    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == Some(t) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, t: Tok, want: &str) -> Result<(), String> {
        if self.eat(&t) {
            Ok(())
        } else {
            self.err(want)
        }
    }

    /// observationExpressions: observationExpressionOr (FOLLOWEDBY observationExpressionOr)*
    fn observation_expressions(&mut self) -> Result<(), String> {
        self.observation_or()?;
        while self.eat(&Tok::Kw("FOLLOWEDBY")) {
            self.observation_or()?;
        }
        Ok(())
    }

    fn observation_or(&mut self) -> Result<(), String> {
        self.observation_and()?;
        while self.eat(&Tok::Kw("OR")) {
            self.observation_and()?;
        }
        Ok(())
    }

    fn observation_and(&mut self) -> Result<(), String> {
        self.observation()?;
        while self.eat(&Tok::Kw("AND")) {
            self.observation()?;
        }
        Ok(())
    }

    /// `[ comparisonExpression ]` or `( observationExpressions )`, then any qualifiers.
    fn observation(&mut self) -> Result<(), String> {
        if self.eat(&Tok::Punct('[')) {
            self.comparison()?;
            self.expect(Tok::Punct(']'), "']' closing the observation expression")?;
        } else if self.eat(&Tok::Punct('(')) {
            self.observation_expressions()?;
            self.expect(Tok::Punct(')'), "')'")?;
        } else {
            return self.err("an observation expression ('[' or '(')");
        }
        loop {
            if self.eat(&Tok::Kw("START")) {
                self.expect(Tok::Timestamp, "a timestamp literal t'…' after START")?;
                self.expect(Tok::Kw("STOP"), "STOP")?;
                self.expect(Tok::Timestamp, "a timestamp literal t'…' after STOP")?;
            } else if self.eat(&Tok::Kw("WITHIN")) {
                if !(self.eat(&Tok::IntPos) || self.eat(&Tok::Float { negative: false })) {
                    return self.err("a positive number of seconds after WITHIN");
                }
                self.expect(Tok::Kw("SECONDS"), "SECONDS")?;
            } else if self.eat(&Tok::Kw("REPEATS")) {
                self.expect(Tok::IntPos, "a positive integer after REPEATS")?;
                self.expect(Tok::Kw("TIMES"), "TIMES")?;
            } else {
                return Ok(());
            }
        }
    }

    fn comparison(&mut self) -> Result<(), String> {
        self.comparison_and()?;
        while self.eat(&Tok::Kw("OR")) {
            self.comparison_and()?;
        }
        Ok(())
    }

    fn comparison_and(&mut self) -> Result<(), String> {
        self.prop_test()?;
        while self.eat(&Tok::Kw("AND")) {
            self.prop_test()?;
        }
        Ok(())
    }

    fn prop_test(&mut self) -> Result<(), String> {
        if self.eat(&Tok::Punct('(')) {
            self.comparison()?;
            return self.expect(Tok::Punct(')'), "')'");
        }
        if self.eat(&Tok::Kw("EXISTS")) {
            return self.object_path();
        }
        self.object_path()?;
        self.eat(&Tok::Kw("NOT"));
        match self.peek().cloned() {
            Some(Tok::Op("=" | "!=")) => {
                self.at += 1;
                self.primitive()
            }
            Some(Tok::Op(_)) => {
                self.at += 1;
                self.orderable()
            }
            Some(Tok::Kw("IN")) => {
                self.at += 1;
                self.set()
            }
            Some(Tok::Kw("LIKE" | "MATCHES" | "ISSUBSET" | "ISSUPERSET")) => {
                self.at += 1;
                self.expect(Tok::Str, "a string literal")
            }
            _ => self.err("a comparison operator (=, !=, <, <=, >, >=, IN, LIKE, MATCHES, ISSUBSET, ISSUPERSET)"),
        }
    }

    /// objectType ':' firstPathComponent objectPathComponent*
    fn object_path(&mut self) -> Result<(), String> {
        match self.peek() {
            Some(Tok::Ident(..)) => self.at += 1,
            _ => return self.err("an object type (such as ipv4-addr)"),
        }
        self.expect(Tok::Punct(':'), "':' between the object type and its property")?;
        match self.peek() {
            Some(Tok::Ident(_, false) | Tok::Str) => self.at += 1,
            _ => return self.err("a property name"),
        }
        loop {
            if self.eat(&Tok::Punct('.')) {
                match self.peek() {
                    Some(Tok::Ident(_, false) | Tok::Str) => self.at += 1,
                    _ => return self.err("a property name after '.'"),
                }
            } else if self.eat(&Tok::Punct('[')) {
                if !(self.eat(&Tok::IntPos) || self.eat(&Tok::IntNeg) || self.eat(&Tok::Punct('*'))) {
                    return self.err("a list index or '*'");
                }
                self.expect(Tok::Punct(']'), "']' closing the list index")?;
            } else {
                return Ok(());
            }
        }
    }

    fn orderable(&mut self) -> Result<(), String> {
        match self.peek() {
            Some(
                Tok::IntPos | Tok::IntNeg | Tok::Float { .. } | Tok::Str | Tok::Binary | Tok::Hex | Tok::Timestamp,
            ) => {
                self.at += 1;
                Ok(())
            }
            _ => self.err("a literal"),
        }
    }

    fn primitive(&mut self) -> Result<(), String> {
        if self.eat(&Tok::Bool) {
            return Ok(());
        }
        self.orderable()
    }

    fn set(&mut self) -> Result<(), String> {
        self.expect(Tok::Punct('('), "'(' opening the set")?;
        if self.eat(&Tok::Punct(')')) {
            return Ok(());
        }
        self.primitive()?;
        while self.eat(&Tok::Punct(',')) {
            self.primitive()?;
        }
        self.expect(Tok::Punct(')'), "')' closing the set")
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s, _) => format!("{s:?}"),
        Tok::Str => "a string".into(),
        Tok::IntPos | Tok::IntNeg => "an integer".into(),
        Tok::Float { .. } => "a number".into(),
        Tok::Hex | Tok::Binary | Tok::Timestamp | Tok::Bool => "a literal".into(),
        Tok::Kw(k) => k.to_string(),
        Tok::Op(o) => format!("'{o}'"),
        Tok::Punct(c) => format!("'{c}'"),
    }
}

/// Parses a STIX 2.1 pattern; the error says where and what was expected.
pub fn parse(pattern: &str) -> Result<(), String> {
    let toks = lex(pattern)?;
    let mut p = Parser { toks, at: 0, len: pattern.chars().count() };
    p.observation_expressions()?;
    if p.at < p.toks.len() {
        return p.err("the end of the pattern");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn the_specifications_examples_parse() {
        for ok in [
            "[ipv4-addr:value = '198.51.100.7']",
            "[file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']",
            "[email-message:from_ref.value MATCHES '.+\\\\@example\\\\.com$' AND email-message:body_multipart[*].body_raw_ref.name MATCHES '^Final Report.+\\\\.exe$']",
            "([ipv4-addr:value = '198.51.100.1/32' OR ipv4-addr:value = '203.0.113.33/32'] AND [domain-name:value = 'example.com']) WITHIN 600 SECONDS",
            "[network-traffic:dst_ref.type = 'domain-name' AND network-traffic:dst_ref.value = 'example.com'] REPEATS 5 TIMES WITHIN 1800 SECONDS",
            "[file:name = 'foo.dll'] START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00.000Z'",
            "[windows-registry-key:key = 'HKEY_LOCAL_MACHINE\\\\foo\\\\bar'] FOLLOWEDBY [process:name NOT IN ('a.exe', 'b.exe')]",
            "[x509-certificate:hashes.'SHA-1' = 'aabb' OR file:size > 1024 AND file:size <= -1 AND file:x_f = h'0aff' AND file:x_b = b'aGk=']",
            "[artifact:payload_bin = b'iVBORw0KGgoAAAANSUhEUgAAADI=' AND file:extensions.'windows-pebinary-ext'.sections[0].entropy > 7.0]",
            "[process:name = 'x' AND process:pid != 4 AND EXISTS process:parent_ref AND process:is_hidden = true]",
            "[network-traffic:src_port ISSUBSET '10.0.0.0/8' OR network-traffic:dst_ref.value ISSUPERSET '10.1.0.0/16' OR url:value LIKE 'http://%']",
        ] {
            parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn what_is_not_a_pattern_says_where() {
        for (bad, want) in [
            ("[ ]", "an object type"),
            ("[this is not a pattern]", "':'"),
            ("[a:b = 'x'] AND ((((]", "observation expression"),
            ("[ipv4-addr:value = '1.2.3.4'", "']'"),
            ("ipv4-addr:value = '1.2.3.4'", "observation expression"),
            ("[ipv4-addr:value = 'open]", "not closed"),
            ("[ipv4-addr:value == ]", "a literal"),
            ("[file:name = 'a'] WITHIN -5 SECONDS", "positive number"),
            ("[file:name = 'a'] START t'2016-06-01' STOP t'2016-07-01T00:00:00Z'", "timestamp"),
            ("[file:hashes.MD5 = h'abc']", "hex"),
            ("[file:size > 01]", "leading zero"),
            ("[file:name = 'a'] [file:name = 'b']", "end of the pattern"),
            ("", "observation expression"),
        ] {
            let err = parse(bad).expect_err(bad);
            assert!(err.contains(want), "{bad}: {err}");
        }
    }
}
