//! Markdown to HTML for chat messages. It runs on the server only: the browser gets the result
//! in `Message::html` from the server functions, so the server-rendered page and the hydrated
//! one insert the very same string (no hydration mismatch), and the WASM bundle carries no
//! markdown parser. All input is untrusted (SPEC §10):
//! - raw HTML is shown as text;
//! - links keep only http, https and mailto URLs and open with `rel="noopener noreferrer nofollow"`;
//! - images are shown as links (no remote loads, no `data:` URLs);
//! - code blocks are highlighted by syntect (CSS classes only, no inline styles) and get a
//!   copy button.

use std::sync::OnceLock;

use pulldown_cmark::{CodeBlockKind, CowStr, Event, LinkType, Options, Parser, Tag, TagEnd};
use two_face::re_exports::syntect::{
    html::{ClassStyle, ClassedHTMLGenerator},
    parsing::{SyntaxReference, SyntaxSet},
    util::LinesWithEndings,
};

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
         <pre tabindex=\"0\"><code class=\"language-{lang_attr}\">{}</code></pre></div>",
        highlight(lang, text)
    )
}

/// The syntax definitions (syntect's with bat's additions, via two-face: TOML, TypeScript…),
/// loaded once per process on first use.
fn syntaxes() -> &'static SyntaxSet {
    static SET: OnceLock<SyntaxSet> = OnceLock::new();
    SET.get_or_init(two_face::syntax::extra_newlines)
}

/// Code larger than this is shown plain: highlighting is linear, but not free.
const MAX_HIGHLIGHTED: usize = 64 * 1024;

/// The syntax a fence's language names: its name or file extension, or a usual alias.
fn syntax_for(lang: &str) -> Option<&'static SyntaxReference> {
    let token = match lang {
        "" | "text" | "plain" | "plaintext" | "txt" => return None,
        "c++" | "cxx" | "hpp" => "cpp",
        "golang" => "go",
        "shell" | "console" | "zsh" | "shellscript" => "bash",
        "patch" => "diff",
        "yml" => "yaml",
        "js" | "jsx" | "mjs" | "cjs" => "js",
        "ts" | "tsx" | "mts" => "ts",
        "py" | "python3" => "py",
        "rs" => "rs",
        "md" => "md",
        "htm" | "xhtml" => "html",
        other => other,
    };
    syntaxes()
        .find_syntax_by_token(token)
        .filter(|syntax| syntax.name != "Plain Text")
}

/// Highlights `text` as `lang` with CSS classes (`hl-` + the scope's parts, styled for light
/// and dark mode in the stylesheet); unknown languages, and code past `MAX_HIGHLIGHTED`, are
/// plain escaped text. The generator escapes every piece of text it emits.
fn highlight(lang: &str, text: &str) -> String {
    let Some(syntax) = syntax_for(lang).filter(|_| text.len() <= MAX_HIGHLIGHTED) else {
        return escape(text);
    };
    let mut html = ClassedHTMLGenerator::new_with_class_style(
        syntax,
        syntaxes(),
        ClassStyle::SpacedPrefixed { prefix: "hl-" },
    );
    for line in LinesWithEndings::from(text) {
        if html
            .parse_html_for_line_which_includes_newline(line)
            .is_err()
        {
            return escape(text);
        }
    }
    html.finalize()
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
        assert!(
            html.contains("<span class=\"hl-storage hl-type hl-function hl-rust\">fn</span>"),
            "{html}"
        );
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

    /// One small program per language the issue lists, and a token each must mark.
    const SAMPLES: [(&str, &str, &str); 17] = [
        ("rust", "fn main() { let x = 1; }", "hl-keyword"),
        ("python", "def f(x):\n    return 'a'  # c", "hl-comment"),
        ("javascript", "const f = () => 'a'; // c", "hl-comment"),
        ("typescript", "let n: number = 1;", "hl-support hl-type"),
        ("json", "{\"a\": [1, true]}", "hl-constant hl-numeric"),
        ("yaml", "key: value # c", "hl-comment"),
        ("toml", "[section]\nkey = 123", "hl-constant hl-numeric"),
        ("sql", "SELECT id FROM t WHERE id = 1;", "hl-keyword"),
        ("bash", "echo \"$HOME\" # c", "hl-comment"),
        ("html", "<p class=\"a\">x</p>", "hl-entity hl-name hl-tag"),
        (
            "css",
            "a { color: red; }",
            "hl-support hl-type hl-property-name",
        ),
        ("go", "package main\nfunc main() {}", "hl-keyword"),
        ("java", "class A { int x = 1; }", "hl-storage"),
        ("c", "int main(void) { return 0; }", "hl-keyword"),
        ("cpp", "#include <vector>\nint main() {}", "hl-keyword"),
        ("markdown", "# Title\n*em*", "hl-markup hl-heading"),
        ("diff", "--- a\n+++ b\n-old\n+new", "hl-markup hl-inserted"),
    ];

    #[test]
    fn every_listed_language_gets_token_classes() {
        for (lang, code, class) in SAMPLES {
            let html = render(&format!("```{lang}\n{code}\n```"));
            assert!(
                html.contains(&format!("class=\"{class}")),
                "{lang}: {class} missing in {html}"
            );
            assert!(!html.contains("style="), "{lang}: classes only");
        }
        // Aliases a model writes.
        for alias in [
            "ts", "js", "py", "sh", "shell", "yml", "c++", "golang", "rs", "patch",
        ] {
            let html = render(&format!("```{alias}\nx = 1\n```"));
            assert!(
                html.contains("class=\"hl-source")
                    || html.contains("class=\"hl-text")
                    || html.contains("class=\"hl-meta"),
                "{alias}: {html}"
            );
        }
    }

    #[test]
    fn unknown_languages_and_code_payloads_stay_plain_escaped_text() {
        let html = render("```klingon\nqaStaH nuq?\n```");
        assert!(
            html.contains("<code class=\"language-klingon\">qaStaH nuq?\n</code>"),
            "{html}"
        );
        let html = render("```\nno language\n```");
        assert!(!html.contains("hl-"), "{html}");
        for lang in ["html", "javascript", "unknown", ""] {
            let html = render(&format!(
                "```{lang}\n<script>alert(1)</script><img src=x onerror=alert(1)>\n```"
            ));
            for tag in real_tags(&html) {
                assert!(
                    tag.starts_with("<span")
                        || tag.starts_with("</span")
                        || tag.starts_with("<div")
                        || tag.starts_with("</div")
                        || tag.starts_with("<pre")
                        || tag.starts_with("</pre")
                        || tag.starts_with("<code")
                        || tag.starts_with("</code")
                        || tag.starts_with("<button")
                        || tag.starts_with("</button"),
                    "{lang}: {tag} in {html}"
                );
            }
            // The code's text survives whole, escaped, between the tags.
            let text: String = html
                .split('<')
                .map(|piece| piece.split_once('>').map_or(piece, |(_, text)| text))
                .collect();
            assert!(
                text.contains(
                    "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
                ),
                "{lang}: {text}"
            );
        }
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
