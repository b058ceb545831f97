#!/usr/bin/env bash
# A throwaway PostgreSQL server on a free loopback port, for the read-store tests.
#   bash scripts/postgres.sh start DIR   initdb + start in DIR; prints the connection URL. TLS is
#                                        on, with a throwaway CA in DIR/ca.pem (clients that ask
#                                        for TLS verify against it; the URL alone does not ask)
#   bash scripts/postgres.sh stop DIR    stops the server started in DIR
# Installs Debian's postgresql package on first use if no server binaries are present. PostgreSQL
# refuses to run as root, so under root the server runs as the `postgres` user the package makes.
set -euo pipefail
action="${1:?usage: postgres.sh start|stop DIR}"
dir="${2:?usage: postgres.sh start|stop DIR}"
mkdir -p "$dir" && dir="$(cd "$dir" && pwd)"
# The server runs as another user, who may not enter the caller's (private) working directory.
cd /

bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "installing PostgreSQL from Debian packages" >&2
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq postgresql >&2
  bindir="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)"
fi

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$action" in
  start)
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then
      chown postgres "$dir"
      runuser -u postgres -- test -w "$dir" \
        || { echo "postgres.sh: the postgres user cannot reach $dir (a parent directory is private): pick a directory under /tmp" >&2; exit 1; }
    fi
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    as_owner "$bindir/initdb" -D "$dir/data" -U trackwire -A trust -E UTF8 --no-sync > "$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    # A CA and a server certificate for 127.0.0.1, valid for two days.
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=trackwire test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
      -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$dir/server.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 2 \
      -extfile "$dir/server.ext" -out "$dir/server.crt" 2>/dev/null
    chmod 600 "$dir/server.key"
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir/server.key" "$dir/server.crt"
    # Durability settings off: a test database is thrown away, and fsync costs seconds per test.
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -c listen_addresses=127.0.0.1 -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c ssl=on -c ssl_cert_file=$dir/server.crt -c ssl_key_file=$dir/server.key" \
      start > /dev/null || { cat "$dir/server.log" >&2; exit 1; }
    echo "postgres://trackwire@127.0.0.1:$port/postgres"
    ;;
  stop)
    [ -d "$dir/data" ] && as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop > /dev/null || true
    ;;
  *) echo "usage: postgres.sh start|stop DIR" >&2; exit 2 ;;
esac
