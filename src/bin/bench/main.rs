//! The project's benchmark (SPEC §11). Run with `scripts/bench.sh` (it builds the release first).
//!
//! It starts the release server on its own database, seeds realistic data with bulk SQL, serves
//! an instant OpenAI-compatible mock model, drives load over loopback from this process, runs
//! the same SQL through `pgbench` for the raw floor, and prints one table (also written as JSON).
//! Each phase is a module of its own; this one runs them in order and prints what they found.

mod branches;
mod cluster;
mod live;
mod model;
mod page;
mod parked;
mod reads;
mod render;
mod replies;
mod search;
mod setup;
mod streams;
mod turns;

use anyhow::{bail, Result};
use serde_json::{json, Map, Value};

/// One row of the table: the measure, its value, its context, the verdict.
pub type Row = (&'static str, String, String, &'static str);

pub fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

/// What the phases found.
struct Results {
    machine: String,
    reads: reads::Reads,
    turns: turns::Overhead,
    live: live::Latencies,
    rss_pollers_mb: f64,
    streams: Result<streams::StreamCosts>,
    replies: replies::Replies,
    page: Map<String, Value>,
    interactive: Result<page::Interactive>,
    floors: reads::Floors,
    on_postgres: cluster::BusResult,
    on_nats: cluster::BusResult,
    search: Result<search::Measured>,
    branches: Result<branches::Measured>,
    parked: Result<parked::Measured>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let opts = setup::Options::from_env();
    if !opts.server_bin.exists() {
        bail!(
            "{} is missing: build the release first (scripts/bench.sh does)",
            opts.server_bin.display()
        );
    }
    let machine = setup::machine();
    eprintln!("[bench] machine: {machine}");
    if let Ok(phase) = std::env::var("BENCH_ONLY") {
        return only(&opts, &phase).await;
    }
    let results = run(&opts, machine).await?;
    let rows = table(&opts, &results);
    print(&results, &rows);
    write_report(&opts, &results, &rows)
}

/// One phase on its own (`BENCH_ONLY=turns|search`), for working on what it measures: its
/// rows are printed, nothing is written.
async fn only(opts: &setup::Options, phase: &str) -> Result<()> {
    let db_url = setup::fresh_database(&opts.admin_url).await?;
    let model = model::start().await?;
    let rows = match phase {
        "turns" => {
            let server = setup::start_server(opts, &db_url, &model.url).await?;
            let user = setup::bench_user(&server, &db_url).await?;
            vec![turns::row(
                &turns::overhead(&server, &user, &model.busy).await?,
            )]
        }
        "search" => {
            // The schema comes from the server's migrations; the search phase seeds before
            // it starts its own server.
            drop(setup::start_server(opts, &db_url, &model.url).await?);
            search::rows(&search::measure(opts, &db_url, &model.url).await)
        }
        other => bail!("BENCH_ONLY={other}: the phases on their own are turns and search"),
    };
    for (name, value, context, verdict) in rows {
        println!("| {name} | {value} | {context} | {verdict} |");
    }
    Ok(())
}

/// The phases in order on one server, then the replicas (on the same database).
async fn run(opts: &setup::Options, machine: String) -> Result<Results> {
    // Before any server starts: the servers inherit it.
    let fd_limit = setup::raise_fd_limit();
    let db_url = setup::fresh_database(&opts.admin_url).await?;
    let model = model::start().await?;
    let server = setup::start_server(opts, &db_url, &model.url).await?;
    let user = setup::bench_user(&server, &db_url).await?;
    let reads = reads::measure(&server, &user, opts).await;

    eprintln!("[bench] full turns with the instant mock model");
    let turns = turns::overhead(&server, &user, &model.busy).await?;
    eprintln!("[bench] live replies: model token to delta, commit to another tab's event");
    let (http, base, token) = (&server.http, &server.base, &user.token);
    let live = live::measure(http, base, token, &turns.conversation, &model.clock).await?;
    eprintln!("[bench] 500 pollers (every 2 s, as the UI does)");
    let rss_pollers_mb = reads::pollers_rss_mb(&server, &user).await;
    let streams = streams::measure(&server, &db_url, fd_limit).await;
    if let Err(err) = &streams {
        eprintln!("[bench] could not measure the event streams' cost: {err:#}");
    }
    let replies = replies::measure(&server, &db_url, token, &model.clock).await;
    for err in [
        replies.cpu.as_ref().err(),
        replies.concurrent_ms.as_ref().err(),
    ]
    .into_iter()
    .flatten()
    {
        eprintln!("[bench] could not measure a streamed reply: {err:#}");
    }

    eprintln!("[bench] page weight (as served, compressed by the server)");
    let page = page::weight(&server).await?;
    eprintln!("[bench] chat page interactive after load (headless Chromium, empty cache)");
    let interactive = page::interactive_after_load(base, token, &format!("/chat/{}", user.small));
    if let Err(err) = &interactive {
        eprintln!("[bench] could not measure interactivity: {err:#}");
    }
    eprintln!("[bench] pgbench floors");
    let floors = reads::floors(&db_url, &user, opts)?;
    eprintln!("[bench] current branch of a 10,000-message conversation with 1,000 branch points vs a straight one");
    let branches = branches::measure(&server, &user, &db_url, opts).await;
    if let Err(err) = &branches {
        eprintln!("[bench] could not measure the current branch page: {err:#}");
    }
    eprintln!("[bench] 1,000 turns parked on an approval (100 users × 10 conversations), then 100 approved");
    let parked = parked::measure(&server).await;
    if let Err(err) = &parked {
        eprintln!("[bench] could not measure the parked turns: {err:#}");
    }
    drop(server);

    // Several replicas, each bus backend in turn (the single server above is stopped).
    let (bin, site) = (&opts.server_bin, &opts.site_root);
    eprintln!("[bench] 3 replicas, 1,000 event streams: Postgres NOTIFY bus");
    let on_postgres = cluster::measure(bin, site, &db_url, setup::PORT + 10, None).await?;
    let nats_url =
        std::env::var("BENCH_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    eprintln!("[bench] 3 replicas, 1,000 event streams: NATS bus ({nats_url})");
    let on_nats = cluster::measure(bin, site, &db_url, setup::PORT + 20, Some(&nats_url)).await?;

    // Last: 1,000,000 messages on the database, and a server of its own for them.
    eprintln!("[bench] search and export: 1,000,000 messages, 100,000 of them the searcher's");
    let search = search::measure(opts, &db_url, &model.url).await;
    if let Err(err) = &search {
        eprintln!("[bench] could not measure search and export: {err:#}");
    }
    Ok(Results {
        machine,
        reads,
        turns,
        live,
        rss_pollers_mb,
        streams,
        replies,
        page,
        interactive,
        floors,
        on_postgres,
        on_nats,
        search,
        branches,
        parked,
    })
}

/// The rows, in the table's order.
fn table(opts: &setup::Options, r: &Results) -> Vec<Row> {
    let mut rows = reads::load_rows(&r.reads, &r.floors);
    rows.push(turns::row(&r.turns));
    rows.extend(live::rows(&r.live));
    rows.extend(streams::rows(&r.streams));
    rows.extend(replies::rows(&r.replies));
    rows.extend(reads::other_rows(&r.reads, &r.floors, r.rss_pollers_mb));
    rows.extend(branches::rows(&r.branches));
    rows.extend(parked::rows(&r.parked));
    rows.push(page::weight_row(&r.page));
    rows.extend(cluster::rows(&r.on_postgres, &r.on_nats));
    rows.extend(search::rows(&r.search));
    rows.extend(page::rows(&r.interactive));
    rows.extend(render::rows(&opts.server_bin));
    rows
}

fn print(r: &Results, rows: &[Row]) {
    println!("\nchatkit benchmark — {}\n", r.machine);
    println!("| measure | value | context | budget |\n|---|---|---|---|");
    for (name, value, context, verdict) in rows {
        println!("| {name} | {value} | {context} | {verdict} |");
    }
    let (list, poll) = (&r.reads.list, &r.reads.poll);
    println!(
        "\n(errors: list {}, poll {}; requests: list {}, poll {})",
        list.errors, poll.errors, list.requests, poll.requests
    );
}

/// The JSON report: each phase's entries, and every row's verdict.
fn write_report(opts: &setup::Options, r: &Results, rows: &[Row]) -> Result<()> {
    let mut report = Map::new();
    let mut add = |entries: Value| {
        if let Value::Object(entries) = entries {
            report.extend(entries);
        }
    };
    add(json!({
        "machine": r.machine,
        "duration_secs": opts.duration.as_secs(),
        "concurrency": opts.concurrency,
        "turn_overhead_ms": turns::report(&r.turns),
        "token_to_delta_ms": live::summary(&r.live.delta_ms),
        "commit_to_event_ms": live::summary(&r.live.event_ms),
        "replicas": cluster::report(&r.on_postgres, &r.on_nats),
        "notify_falls_behind": cluster::crossover(&r.on_postgres, &r.on_nats),
        "page_bytes": r.page,
        "interactive_ms": page::report(&r.interactive),
        "verdicts": rows.iter().map(|row| json!({ "measure": row.0, "value": row.1, "budget": row.3 })).collect::<Vec<_>>(),
    }));
    add(reads::report(&r.reads, &r.floors, r.rss_pollers_mb));
    add(streams::report(&r.streams));
    add(replies::report(&r.replies));
    add(search::report(&r.search));
    add(branches::report(&r.branches));
    add(parked::report(&r.parked));
    if let Some(dir) = opts.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&opts.out, serde_json::to_string_pretty(&report)?)?;
    println!("\nJSON written to {}", opts.out.display());
    Ok(())
}
