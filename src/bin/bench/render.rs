//! What the server-side markdown renderer costs: the server binary's size (the syntax
//! definitions are in it) and the time to render one message with code in every language the
//! highlighter must know, measured in this process with the server's own renderer.

use std::time::Instant;

use chatkit::server::markdown;

use super::live::percentile;

/// A reply as a model writes one: prose, a table, and a code block per language.
fn sample_message() -> String {
    let blocks = [
        ("rust", "fn main() {\n    let xs: Vec<u32> = (1..10).collect();\n    println!(\"{xs:?}\");\n}"),
        ("python", "def total(xs):\n    # sum them\n    return sum(x * 2 for x in xs)"),
        ("javascript", "const f = async (id) => {\n  const res = await fetch(`/api/${id}`);\n  return res.json();\n};"),
        ("typescript", "interface Task { id: number; title: string }\nconst t: Task = { id: 1, title: 'a' };"),
        ("json", "{\"tasks\": [{\"id\": 1, \"done\": false}], \"count\": 1}"),
        ("yaml", "services:\n  app:\n    image: chatkit:latest # pinned\n    ports: [\"3000:3000\"]"),
        ("toml", "[package]\nname = \"chatkit\"\nversion = \"0.1.0\""),
        ("sql", "SELECT id, title FROM tasks WHERE user_id = $1 AND deleted_at IS NULL AND NOT completed ORDER BY id;"),
        ("bash", "for f in *.log; do\n  gzip \"$f\" && echo \"done $f\"\ndone"),
        ("html", "<ul class=\"tasks\"><li data-id=\"1\">Buy milk</li></ul>"),
        ("css", ".tasks li { color: #333; padding: 0.25rem 0; }"),
        ("go", "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hi\") }"),
        ("java", "public class Main {\n  public static void main(String[] a) { System.out.println(1); }\n}"),
        ("c", "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); return 0; }"),
        ("cpp", "#include <vector>\nint main() { std::vector<int> v{1, 2}; return v.size(); }"),
        ("markdown", "# Plan\n\n- [ ] *write* it\n- [x] **ship** it"),
        ("diff", "--- a/tasks.txt\n+++ b/tasks.txt\n@@ -1,2 +1,2 @@\n-buy milk\n+buy oat milk"),
    ];
    let mut text = String::from(
        "Here is what I found, with **examples** in each language.\n\n\
         | id | title | done |\n|---|---|---|\n| 1 | Buy milk | no |\n| 2 | Call mum | yes |\n\n",
    );
    for (lang, code) in blocks {
        text.push_str(&format!("In {lang}:\n\n```{lang}\n{code}\n```\n\n"));
    }
    text
}

pub struct RenderCost {
    /// The first render of the process (it loads the syntax definitions).
    pub first_ms: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub samples: usize,
    pub bytes_in: usize,
}

pub fn measure() -> RenderCost {
    let message = sample_message();
    let started = Instant::now();
    let html = markdown::render(&message);
    let first_ms = started.elapsed().as_secs_f64() * 1000.0;
    assert!(html.contains("hl-"), "the sample is highlighted");
    let mut times = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        std::hint::black_box(markdown::render(std::hint::black_box(&message)));
        times.push(started.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    RenderCost {
        first_ms,
        p50_us: percentile(&times, 0.5),
        p99_us: percentile(&times, 0.99),
        samples: times.len(),
        bytes_in: message.len(),
    }
}

/// The benchmark's rows for the renderer and the binary it lives in.
pub fn rows(server_bin: &std::path::Path) -> Vec<(&'static str, String, String, &'static str)> {
    let cost = measure();
    let binary = std::fs::metadata(server_bin).map(|m| m.len()).unwrap_or(0);
    vec![
        (
            "server binary bytes (release, syntax definitions included)",
            binary.to_string(),
            format!("{}", server_bin.display()),
            "measured",
        ),
        (
            "markdown render of one message p50 / p99 µs",
            format!("{:.0} / {:.0}", cost.p50_us, cost.p99_us),
            format!(
                "{} renders of a {}-byte reply with code in 17 languages; first render {:.1} ms (loads the syntaxes); each message is rendered once and kept",
                cost.samples, cost.bytes_in, cost.first_ms
            ),
            "measured",
        ),
    ]
}
