# Makes sure a PostgreSQL server is reachable and exports PG_ADMIN_URL (sourced, not run).
# Order: PG_ADMIN_URL/DATABASE_URL as given; the server on 127.0.0.1:5432 (started with
# pg_ctlcluster if installed but stopped); else a private cluster under ~/.cache/chatkit.
pg_reachable() { pg_isready -q -d "$1" -t 2 2>/dev/null || psql "$1" -qAtc 'select 1' >/dev/null 2>&1; }

ensure_postgres() {
  if [ -n "${PG_ADMIN_URL:-}" ]; then return 0; fi
  local local_url="postgres://postgres@127.0.0.1:5432/postgres"
  if pg_reachable "$local_url"; then PG_ADMIN_URL=$local_url; export PG_ADMIN_URL; return 0; fi
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "[postgres] starting the machine's cluster"
    for v in $(ls /etc/postgresql); do pg_ctlcluster --skip-systemctl-redirect "$v" main start 2>/dev/null || true; done
    for _ in 1 2 3 4 5 6 7 8 9 10; do pg_reachable "$local_url" && break; sleep 1; done
    if pg_reachable "$local_url"; then PG_ADMIN_URL=$local_url; export PG_ADMIN_URL; return 0; fi
  fi
  local bin
  bin=$(dirname "$(command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1)")
  if [ ! -x "$bin/initdb" ]; then
    echo "No PostgreSQL: install it (apt-get install postgresql) or set PG_ADMIN_URL." >&2
    return 1
  fi
  local dir="$HOME/.cache/chatkit/pg-test" port=54330
  local as=()
  [ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
  mkdir -p "$dir"; [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$dir"
  [ -f "$dir/PG_VERSION" ] || "${as[@]}" "$bin/initdb" -A trust -U postgres -D "$dir" >/dev/null
  echo "[postgres] starting a private cluster on port $port"
  "${as[@]}" "$bin/pg_ctl" -D "$dir" -o "-p $port -c listen_addresses=127.0.0.1 -k $dir" -l "$dir/server.log" -w start >/dev/null
  PG_ADMIN_URL="postgres://postgres@127.0.0.1:$port/postgres"; export PG_ADMIN_URL
  PRIVATE_PG_STOP="${as[*]} $bin/pg_ctl -D $dir -m fast stop"; export PRIVATE_PG_STOP
}
