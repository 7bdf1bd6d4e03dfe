//! XML 1.0 (fifth edition) and Namespaces in XML 1.0 well-formedness, checked on the
//! tokens quick-xml delimits.
//!
//! quick-xml finds where markup begins and ends and checks that end tags match; it does
//! not check what is inside: names, the attribute grammar, characters outside the `Char`
//! production, `--` in comments, `]]>` in text, the XML declaration's grammar. These
//! functions check each token's text against the productions of XML 1.0 (numbers in
//! comments are the production numbers); the scanner in [`crate::soap`] applies them to
//! every token and adds the document-level rules (one root, nothing but comments,
//! processing instructions and white space around it, bound prefixes).

/// `[2] Char`.
pub(crate) fn is_char(c: char) -> bool {
    matches!(c,
        '\t' | '\n' | '\r'
        | '\u{20}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}'
        | '\u{10000}'..='\u{10FFFF}')
}

/// `[3] S`: the four white-space characters (not form feed, not Unicode spaces).
pub(crate) fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Only `[3] S`.
pub(crate) fn all_space(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

/// `[4] NameStartChar`.
fn is_name_start(c: char) -> bool {
    matches!(c,
        ':' | 'A'..='Z' | '_' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
        | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
        | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
}

/// `[4a] NameChar`.
fn is_name_char(c: char) -> bool {
    is_name_start(c)
        || matches!(c,
            '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// `[5] Name`.
pub(crate) fn is_name(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_ascii() {
        // The common case, byte by byte.
        return b
            .first()
            .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, b'_' | b':'))
            && b[1..]
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b':' | b'-' | b'.'));
    }
    let mut chars = s.chars();
    chars.next().is_some_and(is_name_start) && chars.all(is_name_char)
}

/// Namespaces `[7] QName`: `NCName` or `NCName ':' NCName`. Returns the prefix.
pub(crate) fn qname(s: &str) -> Result<Option<&str>, &'static str> {
    let colon = s.bytes().position(|b| b == b':');
    let ok = match colon {
        None => is_name(s),
        Some(i) => {
            let (prefix, local) = (&s[..i], &s[i + 1..]);
            is_name(prefix) && !local.contains(':') && is_name(local)
        }
    };
    match colon {
        _ if !ok && is_name(s) => Err("a name that is not a qualified name"),
        _ if !ok => Err("a malformed name"),
        Some(i) => Ok(Some(&s[..i])),
        None => Ok(None),
    }
}

/// Every character of `s` is a `Char`. On the bytes (a hot path: tokens and
/// certificates are kilobytes of base64): in UTF-8, the characters `Char` leaves out are
/// the C0 controls but tab, LF and CR (single bytes below 0x20) and U+FFFE, U+FFFF
/// (`EF BF BE`, `EF BF BF`); surrogates cannot occur in a `str`.
pub(crate) fn chars(s: &str) -> Result<(), &'static str> {
    scan(s.as_bytes(), false)
}

/// One pass over `b`: the `Char` rule and, for character data, no `]]>`.
fn scan(b: &[u8], no_cdata_end: bool) -> Result<(), &'static str> {
    // Nearly always clean: decide that with passes the compiler vectorizes, and look
    // byte by byte only when a control, `]` or `EF` occurs.
    // Branch-free, so that it vectorizes: a control other than tab, LF and CR.
    let suspect = b.iter().fold(false, |acc, &c| {
        acc | ((c < 0x20) & (c != b'\t') & (c != b'\n') & (c != b'\r'))
            | (c == 0xEF)
            | (no_cdata_end & (c == b']'))
    });
    if !suspect {
        return Ok(());
    }
    for (i, &c) in b.iter().enumerate() {
        // Printable ASCII (the bulk) needs no more look.
        if (0x20..0x5D).contains(&c) || (0x5E..0x80).contains(&c) {
            continue;
        }
        match c {
            b'\t' | b'\n' | b'\r' => {}
            0x00..=0x1F => return Err("a character XML does not allow"),
            b']' if no_cdata_end && b.get(i + 1..i + 3) == Some(b"]>") => {
                return Err("`]]>` in character data");
            }
            0xEF if matches!(b.get(i + 1..i + 3), Some([0xBF, 0xBE | 0xBF])) => {
                return Err("a character XML does not allow");
            }
            _ => {}
        }
    }
    Ok(())
}

/// `[14] CharData`: `Char`s, without the sequence `]]>`.
pub(crate) fn char_data(s: &str) -> Result<(), &'static str> {
    scan(s.as_bytes(), true)
}

/// `[15] Comment`: the text between `<!--` and `-->`.
pub(crate) fn comment(s: &str) -> Result<(), &'static str> {
    chars(s)?;
    if s.contains("--") || s.ends_with('-') {
        return Err("`--` in a comment");
    }
    Ok(())
}

/// `[16] PI`: the text between `<?` and `?>`. A target spelled `xml` in any case is
/// reserved (the declaration is read apart, at the start only).
pub(crate) fn processing_instruction(s: &str) -> Result<(), &'static str> {
    chars(s)?;
    let end = s.find(is_space).unwrap_or(s.len());
    let target = &s[..end];
    if !is_name(target) {
        return Err("a malformed processing-instruction target");
    }
    if target.eq_ignore_ascii_case("xml") {
        return Err("an XML declaration that is not at the start");
    }
    if target.contains(':') {
        // Namespaces in XML: no colons in processing-instruction targets.
        return Err("a colon in a processing-instruction target");
    }
    Ok(())
}

/// Where the first white space of `s` is (its length when none).
fn space_at(s: &str) -> usize {
    s.bytes()
        .position(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .unwrap_or(s.len())
}

/// Splits white space off the front; whether there was any.
fn skip_space(s: &str) -> (&str, bool) {
    let t = s.trim_start_matches(is_space);
    (t, t.len() != s.len())
}

/// `[25] Eq` then a quoted value: the value and what follows.
fn eq_quoted(s: &str) -> Result<(&str, &str), &'static str> {
    let (s, _) = skip_space(s);
    let s = s.strip_prefix('=').ok_or("an attribute without `=`")?;
    let (s, _) = skip_space(s);
    let quote = s.chars().next().ok_or("an attribute without a value")?;
    if quote != '"' && quote != '\'' {
        return Err("an attribute value without quotes");
    }
    let s = &s[1..];
    let q = if quote == '"' { b'"' } else { b'\'' };
    let end = s
        .bytes()
        .position(|b| b == q)
        .ok_or("an unterminated attribute value")?;
    Ok((&s[..end], &s[end + 1..]))
}

/// `[67] Reference` after its `&`: the length read, through the `;`, and the character.
/// Only the five predefined entities exist in a document without a DTD.
pub(crate) fn reference(s: &str) -> Result<(usize, char), &'static str> {
    let end = s.find(';').ok_or("an unterminated reference")?;
    let body = &s[..end];
    let ch = if let Some(num) = body.strip_prefix('#') {
        let value = if let Some(hex) = num.strip_prefix('x') {
            if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err("a malformed character reference");
            }
            u32::from_str_radix(hex, 16).ok()
        } else {
            if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
                return Err("a malformed character reference");
            }
            num.parse::<u32>().ok()
        };
        value
            .and_then(char::from_u32)
            .filter(|c| is_char(*c))
            .ok_or("a reference to a character XML does not allow")?
    } else {
        match body {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "apos" => '\'',
            "quot" => '"',
            _ if is_name(body) => return Err("a reference to an undeclared entity"),
            _ => return Err("a malformed reference"),
        }
    };
    Ok((end + 1, ch))
}

/// `[10] AttValue` between its quotes: `Char`s, no `<`, references well-formed.
fn attribute_value(s: &str) -> Result<(), &'static str> {
    let mut rest = s;
    while let Some(i) = rest.bytes().position(|b| b == b'<' || b == b'&') {
        chars(&rest[..i])?;
        if rest.as_bytes()[i] == b'<' {
            return Err("`<` in an attribute value");
        }
        let (len, _) = reference(&rest[i + 1..])?;
        rest = &rest[i + 1 + len..];
    }
    chars(rest)
}

/// `[40] STag` / `[44] EmptyElemTag`: the text between `<` and `>` (or `/>`), which
/// starts with the element's name. Checks the names as qualified names and the
/// attribute grammar, including the white space required between attributes, and hands
/// each attribute's name and value (between its quotes, references unresolved) to `each`
/// in order. Returns the length of the element's name.
pub(crate) fn start_tag<'r>(
    raw: &'r str,
    mut each: impl FnMut(&'r str, &'r str) -> Result<(), &'static str>,
) -> Result<usize, &'static str> {
    let name_end = space_at(raw);
    qname(&raw[..name_end])?;
    let mut rest = &raw[name_end..];
    loop {
        let (after, spaced) = skip_space(rest);
        if after.is_empty() {
            return Ok(name_end);
        }
        if !spaced {
            return Err("attributes not separated by white space");
        }
        let name_len = after
            .bytes()
            .position(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'='))
            .unwrap_or(after.len());
        let name = &after[..name_len];
        qname(name)?;
        let (value, next) = eq_quoted(&after[name_len..])?;
        attribute_value(value)?;
        each(name, value)?;
        rest = next;
    }
}

/// `[23] XMLDecl` between `<?` and `?>`. Only UTF-8 documents are read: another
/// declared encoding is refused rather than misread.
pub(crate) fn declaration(raw: &str) -> Result<(), &'static str> {
    const BAD: &str = "a malformed XML declaration";
    let rest = raw.strip_prefix("xml").ok_or(BAD)?;
    let mut pseudo = Vec::with_capacity(3);
    let mut rest = rest;
    loop {
        let (after, spaced) = skip_space(rest);
        if after.is_empty() {
            break;
        }
        if !spaced {
            return Err(BAD);
        }
        let name_end = after
            .find(|c: char| is_space(c) || c == '=')
            .unwrap_or(after.len());
        let (value, next) = eq_quoted(&after[name_end..]).map_err(|_| BAD)?;
        pseudo.push((&after[..name_end], value));
        rest = next;
    }
    let mut items = pseudo.into_iter().peekable();
    match items.next() {
        Some(("version", v))
            if v.strip_prefix("1.")
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())) => {}
        _ => return Err(BAD),
    }
    if let Some(&("encoding", e)) = items.peek() {
        let mut cs = e.chars();
        if !cs.next().is_some_and(|c| c.is_ascii_alphabetic())
            || !cs.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(BAD);
        }
        if !e.eq_ignore_ascii_case("UTF-8") && !e.eq_ignore_ascii_case("UTF8") {
            return Err("a document in an encoding other than UTF-8");
        }
        items.next();
    }
    if let Some(&("standalone", s)) = items.peek() {
        if s != "yes" && s != "no" {
            return Err(BAD);
        }
        items.next();
    }
    if items.next().is_some() {
        return Err(BAD);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_fifth_edition() {
        for ok in ["a", "_x", "s:Envelope", "é", "a-b.c1", "\u{10000}x"] {
            assert!(qname(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1a",
            "-a",
            "a b",
            "a:b:c",
            ":a",
            "a:",
            "a\"",
            "algorithmOIDReferencexsi:nil=\"true\"",
        ] {
            assert!(qname(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tags_need_space_between_attributes_and_quoted_values() {
        assert!(start_tag("a", |_, _| Ok(())).is_ok());
        assert!(start_tag("a b=\"1\"  c = '2' ", |_, _| Ok(())).is_ok());
        assert!(start_tag("a b=\"&lt;&#x41;&#65;\"", |_, _| Ok(())).is_ok());
        for bad in [
            "a b=\"1\"c=\"2\"",
            "a b=1",
            "a b",
            "a b=\"<\"",
            "a b=\"&x;\"",
            "a b=\"&#0;\"",
            "a b=\"\u{1}\"",
            "a b=\"1",
            "a:b:c",
        ] {
            assert!(start_tag(bad, |_, _| Ok(())).is_err(), "{bad}");
        }
    }

    #[test]
    fn declarations_comments_and_instructions() {
        assert!(declaration("xml version=\"1.0\"").is_ok());
        assert!(declaration("xml version='1.0' encoding='utf-8' standalone='yes' ").is_ok());
        for bad in [
            "xml",
            "xml encoding=\"UTF-8\"",
            "xml version=\"2.0\"",
            "xml version=\"1.0\" standalone=\"yes\" encoding=\"UTF-8\"",
            "xml version=\"1.0\" encoding=\"ISO-8859-1\"",
            "xml version=\"1.0\"standalone=\"no\"",
            "xml version=\"1.0\" standalone=\"maybe\"",
        ] {
            assert!(declaration(bad).is_err(), "{bad}");
        }
        assert!(comment(" a - b ").is_ok());
        assert!(comment(" a -- b ").is_err());
        assert!(comment(" a-").is_err());
        assert!(processing_instruction("xml-stylesheet href='a'").is_ok());
        assert!(processing_instruction("XmL x").is_err());
        assert!(processing_instruction("1x").is_err());
        assert!(char_data("a]]>b").is_err());
        assert!(char_data("a\u{FFFE}").is_err());
        assert!(char_data("a\u{FFFD}\t\r\n").is_ok());
    }
}
