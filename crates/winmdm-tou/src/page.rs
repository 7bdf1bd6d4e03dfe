//! The HTML pages: terms (Accept, and Decline where allowed), vendor steps, errors.
//!
//! Accessible by construction: `lang` set, one `h1`, labelled controls, a focusable
//! scrolling region for long terms, visible focus, WCAG AA contrast in both themes, usable
//! by keyboard alone (the first Tab stops on the terms, the next on Accept), responsive.
//! Back and Forward buttons are wired to the browser history by a script the
//! Content-Security-Policy admits by nonce. Never a credentials form: step fields are text
//! or numeric, never passwords.

use http::{Response, StatusCode, header};

use crate::request::{Scenario, Theme, WindowsVersion};

/// The terms to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    /// The page title and heading.
    pub title: String,
    /// The terms.
    pub body: TermsBody,
}

/// The terms' text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TermsBody {
    /// Plain text, HTML-escaped; blank lines separate paragraphs.
    Text(String),
    /// HTML inserted as is. Only for markup the vendor controls entirely: it runs with
    /// the page's authority (the CSP still blocks inline scripts).
    TrustedHtml(String),
}

impl Terms {
    /// Plain-text terms.
    pub fn text(title: impl Into<String>, body: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            body: TermsBody::Text(body.into()),
        }
    }
}

/// A vendor step before the decision (for example a one-time PIN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepPage {
    /// The step's ID (returned with the submission).
    pub id: String,
    /// Title and heading.
    pub title: String,
    /// Plain-text introduction.
    pub intro: String,
    /// The fields.
    pub fields: Vec<StepField>,
    /// An error to show (for example "That code is not valid").
    pub error: Option<String>,
}

/// One field of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepField {
    /// The form name (letters, digits, `-`, `_`).
    pub name: String,
    /// The visible label.
    pub label: String,
    /// What it takes.
    pub kind: FieldKind,
}

/// Kinds of step fields (deliberately no password: the page must never collect
/// credentials).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Free text.
    Text,
    /// Digits (a numeric keyboard on touch devices).
    Numeric,
    /// A one-time code (numeric, `autocomplete="one-time-code"`).
    OneTimeCode,
}

/// The styles to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stylesheet {
    /// This crate's CSS for both themes.
    Builtin,
    /// Microsoft's MDM-ISV template stylesheets, served by the vendor under `base_url`
    /// (`…/ui-dark.css`, `…/ui-light.css`, `…/oobe-desktop.css`, `…/oobe-light.css`,
    /// `…/settings-desktop.css`), chosen by scenario and Windows version as the doc
    /// maps them.
    MicrosoftTemplates {
        /// Where the files are (an `https` URL; its origin joins the CSP).
        base_url: String,
    },
}

/// The page's texts (English by default).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Labels {
    pub accept: String,
    pub decline: String,
    pub back: String,
    pub forward: String,
    pub next: String,
    pub terms_region: String,
    pub navigation: String,
    pub error_title: String,
    pub error_body: String,
}

impl Default for Labels {
    fn default() -> Self {
        Self {
            accept: "Accept".into(),
            decline: "Decline".into(),
            back: "Back".into(),
            forward: "Forward".into(),
            next: "Next".into(),
            terms_region: "Terms of use".into(),
            navigation: "Page navigation".into(),
            error_title: "Something went wrong".into(),
            error_body: "This page cannot continue. Go back and start again.".into(),
        }
    }
}

/// Presentation settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageConfig {
    /// The page language (`lang`). Default `en`.
    pub lang: String,
    /// Texts.
    pub labels: Labels,
    /// Styles.
    pub stylesheet: Stylesheet,
    /// CSP `frame-ancestors` sources. Default `'self' ms-appx-web: ms-appx:`: Windows 11
    /// shows the page inside an iframe of its own app host, Windows 10 full screen.
    pub frame_ancestors: Vec<String>,
}

impl Default for PageConfig {
    fn default() -> Self {
        Self {
            lang: "en".into(),
            labels: Labels::default(),
            stylesheet: Stylesheet::Builtin,
            frame_ancestors: vec!["'self'".into(), "ms-appx-web:".into(), "ms-appx:".into()],
        }
    }
}

/// HTML-escapes text for element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const BUILTIN_CSS: &str = r#"
*,*::before,*::after{box-sizing:border-box}
html{font-family:"Segoe UI Variable","Segoe UI",system-ui,sans-serif;font-size:100%;line-height:1.5}
body{margin:0;min-height:100vh}
.theme-dark body{background:#004275;color:#ffffff}
.theme-light body{background:#ffffff;color:#1b1b1b}
main{max-width:42rem;margin:0 auto;padding:2rem 1.25rem 3rem}
h1{font-size:1.75rem;font-weight:600;line-height:1.25;margin:0 0 1rem}
.terms{max-height:55vh;overflow:auto;padding:1rem;border-radius:.25rem;margin-bottom:1.5rem}
.terms>:first-child{margin-top:0}.terms>:last-child{margin-bottom:0}
.theme-dark .terms{border:1px solid #a9c7e6}
.theme-light .terms{border:1px solid #767676}
.terms:focus-visible,button:focus-visible,input:focus-visible{outline:3px solid currentColor;outline-offset:2px}
.theme-dark .terms:focus-visible,.theme-dark button:focus-visible,.theme-dark input:focus-visible{outline-color:#ffffff}
.theme-light .terms:focus-visible,.theme-light button:focus-visible,.theme-light input:focus-visible{outline-color:#1b1b1b}
.actions{display:flex;flex-wrap:wrap;gap:.75rem;justify-content:flex-end}
button{font:inherit;font-weight:600;min-width:7.5rem;min-height:2.75rem;padding:.5rem 1.25rem;border-radius:.25rem;cursor:pointer}
.theme-dark .primary{background:#ffffff;color:#004275;border:2px solid #ffffff}
.theme-dark .secondary,.theme-dark nav button{background:transparent;color:#ffffff;border:2px solid #ffffff}
.theme-light .primary{background:#005fb8;color:#ffffff;border:2px solid #005fb8}
.theme-light .secondary,.theme-light nav button{background:#f3f3f3;color:#1b1b1b;border:2px solid #767676}
nav{display:flex;gap:.75rem;margin-top:2rem}
label{display:block;font-weight:600;margin-bottom:.25rem}
input{font:inherit;width:100%;max-width:20rem;padding:.5rem;border-radius:.25rem;margin-bottom:1rem}
.theme-dark input{background:#ffffff;color:#1b1b1b;border:2px solid #ffffff}
.theme-light input{background:#ffffff;color:#1b1b1b;border:2px solid #767676}
.error{font-weight:600;padding:.5rem .75rem;border-radius:.25rem;margin-bottom:1rem}
.theme-dark .error{background:#ffffff;color:#a4262c}
.theme-light .error{background:#fde7e9;color:#a4262c}
@media (max-width:30rem){h1{font-size:1.4rem}.actions{justify-content:stretch}.actions button{flex:1 1 100%}}
"#;

/// What a rendered page needs besides its content.
pub(crate) struct Frame<'a> {
    pub config: &'a PageConfig,
    pub scenario: Scenario,
    pub windows: Option<&'a WindowsVersion>,
    /// The CSP nonce (base64, fresh per response).
    pub nonce: &'a str,
    /// The CSP `form-action` sources besides `'self'` (the redirect target).
    pub form_targets: Vec<String>,
}

impl Frame<'_> {
    fn theme_class(&self) -> &'static str {
        match self.scenario.theme() {
            Theme::DarkBlue => "theme-dark",
            Theme::Light => "theme-light",
        }
    }

    /// The template files for this scenario and Windows version.
    fn template_files(&self) -> [&'static str; 2] {
        let win11 = self
            .windows
            .and_then(WindowsVersion::is_windows_11)
            .unwrap_or(true);
        match (self.scenario, win11) {
            (Scenario::Oobe, false) => ["ui-dark.css", "oobe-desktop.css"],
            (Scenario::Oobe, true) => ["ui-light.css", "oobe-light.css"],
            (Scenario::Settings, _) => ["ui-light.css", "settings-desktop.css"],
        }
    }

    fn head(&self, title: &str) -> String {
        let styles = match &self.config.stylesheet {
            Stylesheet::Builtin => format!("<style nonce=\"{}\">{BUILTIN_CSS}</style>", self.nonce),
            Stylesheet::MicrosoftTemplates { base_url } => self
                .template_files()
                .iter()
                .map(|f| {
                    format!(
                        "<link rel=\"stylesheet\" href=\"{}/{f}\">",
                        escape(base_url.trim_end_matches('/'))
                    )
                })
                .collect(),
        };
        format!(
            "<!doctype html>\n<html lang=\"{lang}\" class=\"{class}\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <meta name=\"referrer\" content=\"no-referrer\"><title>{title}</title>{styles}</head><body><main>",
            lang = escape(&self.config.lang),
            class = self.theme_class(),
            title = escape(title),
        )
    }

    fn tail(&self) -> String {
        let l = &self.config.labels;
        format!(
            "<nav aria-label=\"{nav}\"><button type=\"button\" id=\"nav-back\">{back}</button>\
             <button type=\"button\" id=\"nav-forward\">{fwd}</button></nav></main>\
             <script nonce=\"{nonce}\">document.getElementById('nav-back').addEventListener('click',function(){{history.back()}});\
             document.getElementById('nav-forward').addEventListener('click',function(){{history.forward()}});</script>\
             </body></html>",
            nav = escape(&l.navigation),
            back = escape(&l.back),
            fwd = escape(&l.forward),
            nonce = self.nonce,
        )
    }

    /// The Content-Security-Policy.
    pub(crate) fn csp(&self) -> String {
        let mut style = format!("'nonce-{}'", self.nonce);
        if let Stylesheet::MicrosoftTemplates { base_url } = &self.config.stylesheet
            && let Ok(u) = url::Url::parse(base_url)
        {
            style.push(' ');
            style.push_str(&u.origin().ascii_serialization());
        }
        let mut form = String::from("'self'");
        for t in &self.form_targets {
            form.push(' ');
            form.push_str(t);
        }
        format!(
            "default-src 'none'; style-src {style}; script-src 'nonce-{nonce}'; img-src 'self' data:; \
             form-action {form}; frame-ancestors {fa}; base-uri 'none'",
            nonce = self.nonce,
            fa = if self.config.frame_ancestors.is_empty() {
                "'none'".to_owned()
            } else {
                self.config.frame_ancestors.join(" ")
            },
        )
    }

    pub(crate) fn respond(&self, status: StatusCode, html: String) -> Response<Vec<u8>> {
        let len = html.len();
        let mut r = Response::new(html.into_bytes());
        *r.status_mut() = status;
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("text/html; charset=utf-8"),
        );
        h.insert(header::CONTENT_LENGTH, header::HeaderValue::from(len));
        h.insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            header::HeaderValue::from_static("nosniff"),
        );
        h.insert(
            header::REFERRER_POLICY,
            header::HeaderValue::from_static("no-referrer"),
        );
        if let Ok(v) = header::HeaderValue::from_str(&self.csp()) {
            h.insert(header::CONTENT_SECURITY_POLICY, v);
        }
        r
    }

    pub(crate) fn terms(&self, terms: &Terms, action: &str, state: &str, decline: bool) -> String {
        let l = &self.config.labels;
        let body = match &terms.body {
            TermsBody::TrustedHtml(h) => h.clone(),
            TermsBody::Text(t) => t
                .split("\n\n")
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| format!("<p>{}</p>", escape(p).replace('\n', "<br>")))
                .collect(),
        };
        let decline = if decline {
            format!(
                "<button type=\"submit\" name=\"action\" value=\"decline\" class=\"secondary\">{}</button>",
                escape(&l.decline)
            )
        } else {
            String::new()
        };
        format!(
            "{head}<h1>{title}</h1><div class=\"terms\" tabindex=\"0\" role=\"region\" aria-label=\"{region}\">{body}</div>\
             <form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"state\" value=\"{state}\">\
             <div class=\"actions\"><button type=\"submit\" name=\"action\" value=\"accept\" class=\"primary\">{accept}</button>{decline}</div></form>{tail}",
            head = self.head(&terms.title),
            title = escape(&terms.title),
            region = escape(&l.terms_region),
            action = escape(action),
            state = escape(state),
            accept = escape(&l.accept),
            tail = self.tail(),
        )
    }

    pub(crate) fn step(&self, step: &StepPage, action: &str, state: &str) -> String {
        let l = &self.config.labels;
        let error = step.error.as_ref().map_or(String::new(), |e| {
            format!(
                "<p class=\"error\" role=\"alert\" id=\"step-error\">{}</p>",
                escape(e)
            )
        });
        let fields: String = step
            .fields
            .iter()
            .map(|f| {
                let name: String = f
                    .name
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .take(32)
                    .collect();
                let extra = match f.kind {
                    FieldKind::Text => "type=\"text\" autocomplete=\"off\"",
                    FieldKind::Numeric => "type=\"text\" inputmode=\"numeric\" autocomplete=\"off\"",
                    FieldKind::OneTimeCode => {
                        "type=\"text\" inputmode=\"numeric\" autocomplete=\"one-time-code\""
                    }
                };
                let described = if step.error.is_some() {
                    " aria-describedby=\"step-error\" aria-invalid=\"true\""
                } else {
                    ""
                };
                format!(
                    "<label for=\"f-{name}\">{label}</label><input id=\"f-{name}\" name=\"field.{name}\" {extra} required{described}>",
                    label = escape(&f.label),
                )
            })
            .collect();
        format!(
            "{head}<h1>{title}</h1><p>{intro}</p>{error}<form method=\"post\" action=\"{action}\">\
             <input type=\"hidden\" name=\"state\" value=\"{state}\">{fields}\
             <div class=\"actions\"><button type=\"submit\" name=\"action\" value=\"step\" class=\"primary\">{next}</button></div></form>{tail}",
            head = self.head(&step.title),
            title = escape(&step.title),
            intro = escape(&step.intro),
            action = escape(action),
            state = escape(state),
            next = escape(&l.next),
            tail = self.tail(),
        )
    }

    pub(crate) fn error(&self) -> String {
        let l = &self.config.labels;
        format!(
            "{head}<h1>{title}</h1><p>{body}</p>{tail}",
            head = self.head(&l.error_title),
            title = escape(&l.error_title),
            body = escape(&l.error_body),
            tail = self.tail(),
        )
    }
}
