#!/usr/bin/env bash
# Start the local PostgreSQL, MariaDB and Redis when they are installed but not running, and
# install Debian's chromium (the dashboard's browser test) when it is missing.
# Never fails: the tests themselves skip (or fail when CI is set) if a server is missing.
set -u

if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
fi

if command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; then
  if ! (echo > /dev/tcp/127.0.0.1/3306) 2>/dev/null; then
    echo "starting MariaDB"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd 2>/dev/null || true
    sleep 3
  fi
fi
if command -v redis-server >/dev/null 2>&1 && ! (echo > /dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  echo "starting Redis (the Celery deployment test's broker)"
  redis-server --bind 127.0.0.1 --port 6379 --daemonize yes >/dev/null || true
fi
# The dashboard test drives this browser headless (Playwright with executable_path;
# Playwright's own browser download cannot work offline).
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 \
    && [ "$(id -u)" = 0 ]; then
  echo "installing chromium (dashboard browser test)"
  log="$(mktemp)"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq chromium; } >"$log" 2>&1; then
    echo "could not install chromium (see $log); the dashboard test will skip, or fail under CI"
  fi
fi
exit 0
