//! The server binary: config, database, then serve until SIGINT/SIGTERM.

// mimalloc: the request path allocates many small buffers (JSON, rows); with it the
// conversation-list benchmark went from 8.6k to 10.2k req/s (README "Performance").
#[cfg(feature = "ssr")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's defaults keep freed memory resident on threads that go idle, e.g. argon2's 19 MiB
/// per password hash on a blocking thread (idle RSS 49 MB instead of 18 MB). Purge at once and
/// commit arena memory on demand; throughput is unchanged. And no transparent huge pages: with
/// them every touched 2 MiB region is resident whole, which made 5,000 idle event streams cost
/// 19.4 KB each instead of 11.6 KB (and idle RSS 31 MB instead of 19 MB). The option numbers
/// are those of `mi_option_e` in mimalloc.h (v3, pinned by Cargo.lock), which the bindings do
/// not name.
#[cfg(feature = "ssr")]
fn tune_allocator() {
    const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 43;
    // SAFETY: mimalloc's option setters take plain integers and store them atomically.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        libmimalloc_sys::mi_option_set(MI_OPTION_ALLOW_THP, 0);
    }
    // The option alone acts when mimalloc starts, before `main`; the process flag it would set
    // also covers the memory mimalloc already holds.
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments and only sets a flag of this process.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

#[cfg(feature = "ssr")]
#[tokio::main]
async fn main() -> std::process::ExitCode {
    use chatkit::server::{self, config::Config, db::Database};

    tune_allocator();
    server::init_tracing();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("configuration error: {err:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let db = match Database::connect(&config).await {
        Ok(db) => db,
        Err(err) => {
            eprintln!("{err:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = run(config, &db).await;
    db.shutdown().await;
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "ssr")]
async fn run(
    config: chatkit::server::config::Config,
    db: &chatkit::server::db::Database,
) -> anyhow::Result<()> {
    use anyhow::Context;
    use chatkit::server::{self, auth::JwtKeys, state::AppState};
    let jwt = JwtKeys::from_config(&config)?;
    let addr = config.addr;
    let grace = config.shutdown_grace;
    let options = server::leptos_options(&config);
    let state = AppState::new(db.pool.clone(), config, jwt, options);
    let background = state.agent.background.clone();
    // Turn ownership (take over turns whose owner died, this very server's included; hear stop
    // requests from other replicas) and the live event listener.
    state.start();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    // The bound address, not the configured one: with port 0 the kernel picks the port, and
    // whoever started the process (the tests) reads it from here.
    let addr = listener.local_addr().unwrap_or(addr);
    tracing::info!("listening on http://{addr}");

    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let mut serving = tokio::spawn(server::serve(listener, server::router(state), async move {
        let _ = stop_rx.changed().await;
    }));
    tokio::select! {
        result = &mut serving => return result?.map_err(Into::into),
        _ = server::shutdown_signal() => {}
    }
    let _ = stop_tx.send(true);
    // In-flight requests and agent turns get a bounded time to finish.
    let drained = tokio::time::timeout(grace, async {
        let _ = serving.await;
        background.close();
        background.wait().await;
    })
    .await;
    if drained.is_err() {
        tracing::warn!("shutdown grace period over; stopping with work still running");
    }
    Ok(())
}

#[cfg(not(feature = "ssr"))]
pub fn main() {
    // The browser side starts in `lib.rs::hydrate`.
}
