//! Reading the first HTML form of a page the way a browser submits it, for the simulated
//! device's Terms-of-Use step against any vendor's page: the form's action and method,
//! its fields, and the submit button that accepts.

/// A form ready to submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    /// Where it posts (as written in the page; resolve it against the page's URL).
    pub action: String,
    /// `get` or `post` (lower case).
    pub method: String,
    /// The fields a browser sends: named inputs with their values, then the chosen
    /// submit button's name and value.
    pub fields: Vec<(String, String)>,
}

/// The attributes of the tag starting at `tag` (just after `<name`), up to its `>`.
fn attributes(tag: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = tag;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
        if rest.is_empty() || rest.starts_with('>') {
            return out;
        }
        let name_end = rest
            .find(|c: char| c.is_whitespace() || c == '=' || c == '>' || c == '/')
            .unwrap_or(rest.len());
        let name = rest[..name_end].to_ascii_lowercase();
        rest = rest[name_end..].trim_start();
        let mut value = String::new();
        if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            let (v, remaining) = match after.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let body = &after[1..];
                    let end = body.find(q).unwrap_or(body.len());
                    (&body[..end], body.get(end + 1..).unwrap_or(""))
                }
                _ => {
                    let end = after
                        .find(|c: char| c.is_whitespace() || c == '>')
                        .unwrap_or(after.len());
                    (&after[..end], &after[end..])
                }
            };
            value = unescape(v);
            rest = remaining;
        }
        if name.is_empty() {
            return out;
        }
        out.push((name, value));
    }
}

/// HTML character references a form's values commonly carry.
fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") || e.starts_with("#X") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Whether a submit button's value or label reads as accepting.
fn accepts(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    ["accept", "agree", "continue", "yes", "ok", "next"]
        .iter()
        .any(|w| t.contains(w))
        && !["decline", "disagree", "cancel", "reject"]
            .iter()
            .any(|w| t.contains(w))
}

/// The first form of `html`, with the submit button that accepts (by its value or label:
/// accept, agree, continue…; else the first one). `None` when the page has no form.
pub fn first_form(html: &str) -> Option<Form> {
    let lower = html.to_ascii_lowercase();
    let start = lower.find("<form")?;
    let end = lower[start..]
        .find("</form")
        .map_or(html.len(), |e| start + e);
    let form_attrs = attributes(&html[start + 5..]);
    let mut fields = Vec::new();
    // (name, value, label) of each submit control.
    let mut submits: Vec<(String, String, String)> = Vec::new();
    let mut at = start + 5;
    while let Some(i) = lower[at..end].find('<') {
        let tag_start = at + i + 1;
        let name_end = lower[tag_start..]
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .map_or(end, |e| tag_start + e);
        let tag = &lower[tag_start..name_end];
        let attrs = attributes(&html[name_end..]);
        let tag_close = lower[tag_start..]
            .find('>')
            .map_or(end, |e| tag_start + e + 1);
        match tag {
            "input" => {
                let kind = attr(&attrs, "type").unwrap_or("text").to_ascii_lowercase();
                let name = attr(&attrs, "name").unwrap_or_default().to_owned();
                let value = attr(&attrs, "value").unwrap_or_default().to_owned();
                match kind.as_str() {
                    "submit" => submits.push((name, value.clone(), value)),
                    "checkbox" | "radio"
                        if attr(&attrs, "checked").is_some() && !name.is_empty() =>
                    {
                        fields.push((name, if value.is_empty() { "on".into() } else { value }));
                    }
                    "checkbox" | "radio" => {}
                    "button" | "reset" | "image" | "file" => {}
                    _ if !name.is_empty() => fields.push((name, value)),
                    _ => {}
                }
            }
            "button" => {
                let kind = attr(&attrs, "type")
                    .unwrap_or("submit")
                    .to_ascii_lowercase();
                let label_end = lower[tag_close..end]
                    .find("</button")
                    .map_or(end, |e| tag_close + e);
                let label = html[tag_close..label_end].to_owned();
                if kind == "submit" {
                    submits.push((
                        attr(&attrs, "name").unwrap_or_default().to_owned(),
                        attr(&attrs, "value").unwrap_or_default().to_owned(),
                        label,
                    ));
                }
            }
            _ => {}
        }
        at = tag_close.max(at + i + 1);
    }
    let chosen = submits
        .iter()
        .find(|(_, value, label)| accepts(value) || accepts(label))
        .or_else(|| submits.first());
    if let Some((name, value, _)) = chosen
        && !name.is_empty()
    {
        fields.push((name.clone(), value.clone()));
    }
    Some(Form {
        action: attr(&form_attrs, "action").unwrap_or_default().to_owned(),
        method: attr(&form_attrs, "method")
            .unwrap_or("get")
            .to_ascii_lowercase(),
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_winmdm_tou_and_other_forms() {
        let ours = r#"<form method="post" action="/TermsOfUse"><input type="hidden" name="state" value="a&amp;b"><div class="actions"><button type="submit" name="action" value="accept" class="primary">Accept</button><button type="submit" name="action" value="decline">Decline</button></div></form>"#;
        let f = first_form(ours).unwrap();
        assert_eq!(
            (f.action.as_str(), f.method.as_str()),
            ("/TermsOfUse", "post")
        );
        assert_eq!(
            f.fields,
            [
                ("state".to_owned(), "a&b".to_owned()),
                ("action".to_owned(), "accept".to_owned())
            ]
        );
        let theirs = "<html><body><FORM METHOD=POST ACTION='https://tou.vendor.example/decide?x=1'>\
            <input name=ctx value=abc123><input type=checkbox name=read checked>\
            <input type=submit name=choice value='No thanks'>\
            <input type=submit name=choice value='I Agree'></FORM></body></html>";
        let f = first_form(theirs).unwrap();
        assert_eq!(f.action, "https://tou.vendor.example/decide?x=1");
        assert_eq!(
            f.fields,
            [
                ("ctx".to_owned(), "abc123".to_owned()),
                ("read".to_owned(), "on".to_owned()),
                ("choice".to_owned(), "I Agree".to_owned())
            ]
        );
        assert_eq!(first_form("<p>no form</p>"), None);
    }
}
