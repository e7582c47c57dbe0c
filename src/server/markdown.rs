//! Markdown to HTML for chat messages. It runs on the server only: the browser gets the result
//! in `Message::html` from the server functions, so the server-rendered page and the hydrated
//! one insert the very same string (no hydration mismatch), and the WASM bundle carries no
//! markdown parser. All input is untrusted (SPEC §10):
//! - raw HTML is shown as text;
//! - links keep only http, https and mailto URLs and open with `rel="noopener noreferrer nofollow"`;
//! - images are shown as links (no remote loads, no `data:` URLs);
//! - code blocks get a small deterministic syntax highlighter and a copy button.

use pulldown_cmark::{CodeBlockKind, CowStr, Event, LinkType, Options, Parser, Tag, TagEnd};

/// The words of `markdown` without its markup, on one line: for previews (the sidebar shows
/// "Marked task 1 (Buy oat milk) as done", not "**Buy oat milk**").
pub fn plain_text(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let mut out = String::with_capacity(markdown.len());
    for event in Parser::new_ext(markdown, options) {
        match event {
            Event::Text(text) | Event::Code(text) => out.push_str(&text),
            Event::SoftBreak | Event::HardBreak => out.push(' '),
            // Blocks (paragraphs, cells, items) end with a space; inline markup does not.
            Event::End(end)
                if !matches!(
                    end,
                    TagEnd::Emphasis
                        | TagEnd::Strong
                        | TagEnd::Strikethrough
                        | TagEnd::Link
                        | TagEnd::Image
                ) =>
            {
                out.push(' ')
            }
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub fn render(markdown: &str) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut events: Vec<Event> = Vec::new();
    let mut code: Option<(String, String)> = None; // (language, text) while inside a code block
    let mut link_stack: Vec<bool> = Vec::new(); // whether each open link was kept
    for event in Parser::new_ext(markdown, options) {
        match event {
            Event::Start(Tag::CodeBlock(kind)) => {
                let lang = match kind {
                    CodeBlockKind::Fenced(info) => info
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_lowercase(),
                    CodeBlockKind::Indented => String::new(),
                };
                code = Some((lang, String::new()));
            }
            Event::End(TagEnd::CodeBlock) => {
                if let Some((lang, text)) = code.take() {
                    events.push(Event::Html(CowStr::from(code_block(&lang, &text))));
                }
            }
            Event::Text(text) if code.is_some() => {
                if let Some((_, buffer)) = code.as_mut() {
                    buffer.push_str(&text);
                }
            }
            // Raw HTML from the author becomes visible text.
            Event::Html(html) | Event::InlineHtml(html) => events.push(Event::Text(html)),
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) => {
                // Email autolinks (`<a@b.c>`) become `mailto:` links.
                let keep = safe_url(&dest_url) || matches!(link_type, LinkType::Email);
                link_stack.push(keep);
                if keep {
                    events.push(Event::Start(Tag::Link {
                        link_type,
                        dest_url,
                        title,
                        id,
                    }));
                }
            }
            Event::End(TagEnd::Link) => {
                if link_stack.pop().unwrap_or(false) {
                    events.push(Event::End(TagEnd::Link));
                }
            }
            // Images never load: their alt text is shown, linked when the URL is safe.
            Event::Start(Tag::Image {
                dest_url,
                title,
                id,
                ..
            }) => {
                let keep = safe_url(&dest_url);
                link_stack.push(keep);
                if keep {
                    events.push(Event::Start(Tag::Link {
                        link_type: LinkType::Inline,
                        dest_url,
                        title,
                        id,
                    }));
                }
            }
            Event::End(TagEnd::Image) => {
                if link_stack.pop().unwrap_or(false) {
                    events.push(Event::End(TagEnd::Link));
                }
            }
            other => events.push(other),
        }
    }
    let mut html = String::with_capacity(markdown.len() * 2);
    pulldown_cmark::html::push_html(&mut html, events.into_iter());
    // The only anchors left are the ones generated above (author HTML was escaped).
    html.replace(
        "<a href=\"",
        "<a rel=\"noopener noreferrer nofollow\" target=\"_blank\" href=\"",
    )
}

fn safe_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("mailto:")
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
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

fn code_block(lang: &str, text: &str) -> String {
    let lang_label = if lang.is_empty() { "text" } else { lang };
    let lang_attr: String = lang_label
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '+')
        .collect();
    format!(
        "<div class=\"code-block\"><div class=\"code-head\"><span>{lang_attr}</span>\
         <button type=\"button\" class=\"copy-code\" aria-label=\"Copy code\">Copy</button></div>\
         <pre><code class=\"language-{lang_attr}\">{}</code></pre></div>",
        highlight(lang, text)
    )
}

const KEYWORDS: &[&str] = &[
    "as",
    "async",
    "await",
    "break",
    "class",
    "const",
    "continue",
    "def",
    "else",
    "elif",
    "enum",
    "export",
    "false",
    "fn",
    "for",
    "from",
    "func",
    "function",
    "if",
    "impl",
    "import",
    "in",
    "interface",
    "let",
    "loop",
    "match",
    "mod",
    "mut",
    "new",
    "nil",
    "None",
    "null",
    "pub",
    "return",
    "self",
    "Self",
    "static",
    "struct",
    "this",
    "trait",
    "true",
    "True",
    "False",
    "type",
    "use",
    "var",
    "where",
    "while",
    "with",
    "yield",
    "SELECT",
    "FROM",
    "WHERE",
    "INSERT",
    "UPDATE",
    "DELETE",
    "select",
    "from",
    "where",
];

/// A small, deterministic highlighter: strings, comments, numbers and common keywords.
fn highlight(lang: &str, text: &str) -> String {
    if matches!(lang, "" | "text" | "plain" | "txt") {
        return escape(text);
    }
    let hash_comments = matches!(
        lang,
        "python" | "py" | "bash" | "sh" | "shell" | "ruby" | "rb" | "toml" | "yaml" | "yml"
    );
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() * 2);
    let mut i = 0;
    let span = |out: &mut String, class: &str, s: &str| {
        out.push_str(&format!("<span class=\"tok-{class}\">{}</span>", escape(s)));
    };
    while i < chars.len() {
        let c = chars[i];
        let rest_starts = |p: &str| chars[i..].iter().take(p.len()).collect::<String>() == p;
        if rest_starts("//") && !hash_comments
            || (c == '#' && hash_comments)
            || rest_starts("--") && lang == "sql"
        {
            let end = chars[i..]
                .iter()
                .position(|&c| c == '\n')
                .map_or(chars.len(), |p| i + p);
            span(
                &mut out,
                "comment",
                &chars[i..end].iter().collect::<String>(),
            );
            i = end;
        } else if c == '"' || c == '\'' || c == '`' {
            let mut end = i + 1;
            while end < chars.len() && chars[end] != c && chars[end] != '\n' {
                if chars[end] == '\\' {
                    end += 1;
                }
                end += 1;
            }
            let end = (end + 1).min(chars.len());
            span(
                &mut out,
                "string",
                &chars[i..end].iter().collect::<String>(),
            );
            i = end;
        } else if c.is_ascii_digit() {
            let end = chars[i..]
                .iter()
                .position(|c| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '_'))
                .map_or(chars.len(), |p| i + p);
            span(
                &mut out,
                "number",
                &chars[i..end].iter().collect::<String>(),
            );
            i = end;
        } else if c.is_alphabetic() || c == '_' {
            let end = chars[i..]
                .iter()
                .position(|c| !(c.is_alphanumeric() || *c == '_'))
                .map_or(chars.len(), |p| i + p);
            let word: String = chars[i..end].iter().collect();
            if KEYWORDS.contains(&word.as_str()) {
                span(&mut out, "keyword", &word);
            } else {
                out.push_str(&escape(&word));
            }
            i = end;
        } else {
            out.push_str(&escape(&c.to_string()));
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{plain_text, render};

    #[test]
    fn renders_the_usual_markdown() {
        let html = render("# Title\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n- [x] done\n\n```rust\nfn main() {}\n```");
        assert!(html.contains("<h1>Title</h1>"));
        assert!(html.contains("<li>one</li>"));
        assert!(html.contains("<table>") && html.contains("<td>1</td>"));
        assert!(html.contains("type=\"checkbox\""));
        assert!(html.contains("<span class=\"tok-keyword\">fn</span>"));
        assert!(html.contains("class=\"copy-code\""));
    }

    #[test]
    fn untrusted_input_cannot_inject() {
        let corpus = [
            "<script>window.__xss = 1</script>",
            "<img src=x onerror=\"window.__xss=1\">",
            "[click](javascript:window.__xss=1)",
            "[click](JaVaScRiPt:alert(1))",
            "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
            "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
            "<svg onload=alert(1)>",
            "<a href=\"javascript:alert(1)\">x</a>",
            "<iframe src=\"https://evil.example\"></iframe>",
            "[x](https://ok.example \"\\\" onmouseover=alert(1) x=\\\"\")",
            "```html\n<script>alert(1)</script>\n```",
            "`<b onclick=alert(1)>`",
        ];
        for input in corpus {
            let html = render(input).to_lowercase();
            // Escaped text (`&lt;img …`) is harmless; only real tags matter.
            for tag in real_tags(&html) {
                for banned in ["<script", "<img", "<svg", "<iframe", "<object", "<embed"] {
                    assert!(!tag.starts_with(banned), "{input} -> {tag}");
                }
                // Attribute names only: quoted values are inert text.
                let names: String = tag.split('"').step_by(2).collect();
                assert!(
                    !names.contains(" on"),
                    "event handler in {tag} (from {input})"
                );
                assert!(
                    !tag.contains("javascript:") && !tag.contains("data:"),
                    "{input} -> {tag}"
                );
            }
        }
    }

    /// Every `<…>` tag in the HTML (escaped text never contains a raw `<`).
    pub(crate) fn real_tags(html: &str) -> Vec<String> {
        html.split('<')
            .skip(1)
            .map(|rest| format!("<{}", rest.split('>').next().unwrap_or_default()))
            .collect()
    }

    #[test]
    fn safe_links_get_rel_and_open_in_a_new_tab() {
        let html = render(
            "[docs](https://example.com) and <https://example.org> and [mail](mailto:a@b.c)",
        );
        assert_eq!(
            html.matches("rel=\"noopener noreferrer nofollow\"").count(),
            3,
            "{html}"
        );
        assert!(html.contains("href=\"https://example.com\""));
        assert!(html.contains("href=\"mailto:a@b.c\""));
    }

    #[test]
    fn raw_html_is_visible_as_text() {
        assert!(render("<b>bold</b>").contains("&lt;b&gt;bold&lt;/b&gt;"));
    }

    #[test]
    fn previews_are_plain_words() {
        assert_eq!(
            plain_text(
                "Marked task 1 (**Buy oat milk**) as done.\n\n| # | Task |\n|---|---|\n| 1 | `x` |"
            ),
            "Marked task 1 (Buy oat milk) as done. # Task 1 x"
        );
        assert_eq!(plain_text("\\*not bold\\*"), "*not bold*");
    }
}
