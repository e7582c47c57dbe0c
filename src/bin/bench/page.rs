//! The page: what the chat page's JS, WASM and CSS weigh as the server sends them (raw, gzip,
//! brotli), what the client-side builds weigh as a static host serves them, and how soon a
//! chat page is interactive after navigation starts (SPEC §11: ≤ 1 s on loopback).

use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};

use super::{setup::Server, verdict, Row};

/// Bytes of the page's assets per encoding ("raw", "gzip", "brotli").
pub async fn weight(server: &Server) -> Result<Map<String, Value>> {
    let mut page = Map::new();
    for (encoding, label) in [("identity", "raw"), ("gzip", "gzip"), ("br", "brotli")] {
        let mut total = 0usize;
        for asset in ["chatkit.wasm", "chatkit.js", "chatkit.css"] {
            let res = server
                .http
                .get(format!("{}/pkg/{asset}", server.base))
                .header("accept-encoding", encoding)
                .send()
                .await?;
            total += res.bytes().await?.len();
        }
        page.insert(label.into(), json!(total));
    }
    Ok(page)
}

pub fn weight_row(page: &Map<String, Value>) -> Row {
    let wire = page.get("brotli").and_then(Value::as_u64).unwrap_or(0);
    (
        "chat page JS+WASM+CSS bytes raw / gzip / br",
        format!("{} / {} / {}", page["raw"], page["gzip"], page["brotli"]),
        "budget ≤ 350 KB compressed".into(),
        verdict(wire <= 350 * 1024),
    )
}

/// How soon a chat page is interactive after navigation starts.
pub struct Interactive {
    pub p50_ms: f64,
    pub max_ms: f64,
    pub samples: usize,
}

/// Loads `path` signed in as `token`, in headless Chromium with an empty cache, several times;
/// `scripts/bench-interactive.mjs` does the browser side.
pub fn interactive_after_load(base: &str, token: &str, path: &str) -> Result<Interactive> {
    let output = Command::new("node")
        .args(["scripts/bench-interactive.mjs", base, token, path, "7"])
        .stderr(Stdio::inherit())
        .output()
        .context("running node (scripts/setup.sh --test installs Chromium and Playwright)")?;
    if !output.status.success() {
        bail!("bench-interactive.mjs failed ({})", output.status);
    }
    let report: Value = serde_json::from_slice(&output.stdout)
        .context("reading the bench-interactive.mjs report")?;
    let number = |key: &str| report[key].as_f64().context("incomplete report");
    Ok(Interactive {
        p50_ms: number("p50_ms")?,
        max_ms: number("max_ms")?,
        samples: report["samples_ms"].as_array().map_or(0, Vec::len),
    })
}

/// The client-side builds' rows, then the interactivity row.
pub fn rows(interactive: &Result<Interactive>) -> Vec<Row> {
    vec![
        bundle_row("CSR build (Trunk) JS+WASM+CSS bytes raw / br", "target/csr"),
        bundle_row(
            "example app (feature client) JS+WASM bytes raw / br",
            "examples/tasks-client/dist",
        ),
        match interactive {
            Ok(page) => (
                "chat page interactive after load p50 / max ms",
                format!("{:.0} / {:.0}", page.p50_ms, page.max_ms),
                format!("{} loads of a 100-message conversation", page.samples),
                verdict(page.max_ms <= 1000.0),
            ),
            Err(err) => (
                "chat page interactive after load",
                "not measured".into(),
                format!("{err:#}"),
                "NOT measured",
            ),
        },
    ]
}

pub fn report(interactive: &Result<Interactive>) -> Value {
    interactive
        .as_ref()
        .map(|p| json!({ "p50": p.p50_ms, "max": p.max_ms, "samples": p.samples }))
        .unwrap_or(Value::Null)
}

/// The size of a client-side build as a static host serves it: each `.wasm`, `.js` and `.css`
/// in `dir`, raw and with brotli (the `.br` files `scripts/precompress.mjs` wrote beside them).
fn bundle_row(name: &'static str, dir: &str) -> Row {
    let mut raw = 0u64;
    let mut brotli = 0u64;
    let entries = std::fs::read_dir(dir).into_iter().flatten().flatten();
    for entry in entries {
        let path = entry.path();
        let asset = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("wasm" | "js" | "css")
        );
        if !asset {
            continue;
        }
        raw += entry.metadata().map(|m| m.len()).unwrap_or(0);
        let compressed = format!("{}.br", path.display());
        brotli += std::fs::metadata(compressed).map(|m| m.len()).unwrap_or(0);
    }
    if raw == 0 || brotli == 0 {
        return (
            name,
            "not built".into(),
            format!("no build in {dir}"),
            "NOT measured",
        );
    }
    (
        name,
        format!("{raw} / {brotli}"),
        "budget ≤ 350 KB brotli".into(),
        verdict(brotli <= 350 * 1024),
    )
}
