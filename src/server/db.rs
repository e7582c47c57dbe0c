//! Finding a database (SPEC §3): `DATABASE_URL`, else the local server on 5432, else a private
//! cluster from the machine's PostgreSQL binaries. Migrations run at start-up.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{bail, Context};
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    ConnectOptions, Connection, PgConnection, PgPool,
};

use super::config::Config;

const DATABASE_NAME: &str = "chatkit";
const LOCAL_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const PRIVATE_PORT: u16 = 54329;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The pool, and the private cluster when the app started one (stopped by `shutdown`).
pub struct Database {
    pub pool: PgPool,
    cluster: Option<PrivateCluster>,
}

impl Database {
    pub async fn connect(config: &Config) -> anyhow::Result<Self> {
        let (url, cluster) = match &config.database_url {
            Some(url) => (url.clone(), None),
            None => match local_server_url().await {
                Some(url) => (url, None),
                None => {
                    let cluster = PrivateCluster::start(&config.data_dir.join("postgres"))?;
                    let url = cluster.url();
                    ensure_database(&cluster.admin_url(), DATABASE_NAME).await?;
                    (url, Some(cluster))
                }
            },
        };
        let options: PgConnectOptions = url
            .parse()
            .context("DATABASE_URL is not a valid postgres:// URL")?;
        let pool = PgPoolOptions::new()
            .max_connections(config.db_max_connections)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            // sqlx pings every connection it hands out: a round trip before each query of a
            // turn. Only a connection idle for a while may have been closed under us.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > Duration::from_secs(30) {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options.log_statements(tracing::log::LevelFilter::Trace))
            .await
            .with_context(|| format!("could not connect to the database at {}", redact(&url)))?;
        MIGRATOR
            .run(&pool)
            .await
            .context("running database migrations")?;
        tracing::info!(database = %redact(&url), private_cluster = cluster.is_some(), "database ready");
        Ok(Self { pool, cluster })
    }

    /// Closes the pool and stops the private cluster, if any.
    pub async fn shutdown(self) {
        self.pool.close().await;
        if let Some(cluster) = self.cluster {
            cluster.stop();
        }
    }
}

/// The local server on 127.0.0.1:5432, with database `chatkit` created if missing.
async fn local_server_url() -> Option<String> {
    let connect = PgConnection::connect(LOCAL_SERVER);
    let Ok(Ok(conn)) = tokio::time::timeout(Duration::from_secs(3), connect).await else {
        return None;
    };
    drop(conn.close().await);
    match ensure_database(LOCAL_SERVER, DATABASE_NAME).await {
        Ok(()) => Some(format!(
            "postgres://postgres@127.0.0.1:5432/{DATABASE_NAME}"
        )),
        Err(err) => {
            tracing::warn!(error = %err, "local server reachable but database could not be created");
            None
        }
    }
}

async fn ensure_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(admin_url).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        // Identifiers cannot be bound; `name` is a constant of ours, quoted anyway.
        let created = sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await;
        // A concurrent start-up may have created it meanwhile: that is fine.
        if let Err(err) = created {
            if !err.to_string().contains("already exists") {
                return Err(err.into());
            }
        }
    }
    Ok(())
}

/// Hides the password of a connection URL for logs.
pub fn redact(url: &str) -> String {
    match url.parse::<PgConnectOptions>() {
        Ok(_) if url.contains('@') => {
            let (scheme_user, rest) = url.split_once('@').unwrap_or((url, ""));
            let user_part = match scheme_user.rsplit_once(':') {
                Some((before, _)) if before.contains("//") && !before.ends_with('/') => {
                    format!("{before}:***")
                }
                _ => scheme_user.to_string(),
            };
            format!("{user_part}@{rest}")
        }
        _ => url.split('@').next_back().unwrap_or_default().to_string(),
    }
}

/// A Postgres cluster in the data directory, run from the machine's own binaries.
struct PrivateCluster {
    bin_dir: PathBuf,
    data_dir: PathBuf,
    as_postgres_user: bool,
}

impl PrivateCluster {
    fn start(data_dir: &Path) -> anyhow::Result<Self> {
        let Some(bin_dir) = find_postgres_bin_dir() else {
            bail!(
                "No database available: set DATABASE_URL, start PostgreSQL on 127.0.0.1:5432, \
                 or install the PostgreSQL server binaries (initdb, pg_ctl; e.g. `apt-get install postgresql`)."
            );
        };
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let data_dir = data_dir.canonicalize()?;
        // PostgreSQL refuses to run as root; run it as the `postgres` account then.
        let as_postgres_user = is_root();
        let cluster = Self {
            bin_dir,
            data_dir,
            as_postgres_user,
        };
        if as_postgres_user {
            run(Command::new("chown")
                .arg("-R")
                .arg("postgres:postgres")
                .arg(&cluster.data_dir))?;
        }
        if !cluster.data_dir.join("PG_VERSION").exists() {
            tracing::info!(dir = %cluster.data_dir.display(), "initialising a private PostgreSQL cluster");
            run(cluster
                .command("initdb")
                .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "-D"])
                .arg(&cluster.data_dir))?;
        }
        let options = format!(
            "-p {PRIVATE_PORT} -c listen_addresses=127.0.0.1 -k {}",
            cluster.data_dir.display()
        );
        let log = cluster.data_dir.join("server.log");
        let status = cluster
            .command("pg_ctl")
            .arg("-D")
            .arg(&cluster.data_dir)
            .args(["-o", &options, "-l"])
            .arg(&log)
            .args(["-w", "-t", "30", "start"])
            .status()?;
        if !status.success() {
            bail!(
                "the private PostgreSQL cluster did not start; see {}",
                log.display()
            );
        }
        Ok(cluster)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{PRIVATE_PORT}/{DATABASE_NAME}")
    }

    fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{PRIVATE_PORT}/postgres")
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin_dir.join(program);
        if self.as_postgres_user {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(path);
            cmd
        } else {
            Command::new(path)
        }
    }

    fn stop(self) {
        tracing::info!("stopping the private PostgreSQL cluster");
        let result = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "fast", "-w", "stop"])
            .status();
        if let Err(err) = result {
            tracing::warn!(error = %err, "could not stop the private cluster");
        }
    }
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let output = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !output.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `initdb` on PATH, else the newest `/usr/lib/postgresql/*/bin`.
fn find_postgres_bin_dir() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
    });
    on_path.or_else(|| {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
                let bin = entry.path().join("bin");
                bin.join("initdb").is_file().then_some((version, bin))
            })
            .collect();
        versions.sort();
        versions.pop().map(|(_, bin)| bin)
    })
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_passwords() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(
            redact("postgres://postgres@h/db"),
            "postgres://postgres@h/db"
        );
        assert!(!redact("postgres://a:b@c/d").contains('b'));
    }
}
