#!/usr/bin/env bash
# Installs everything the services and the Python package need. Idempotent:
# each step checks first and does nothing when its result is already there.
#   1. Debian packages: Java 17, Maven, PostgreSQL 15 (+ server headers), Redis, kcat, build tools
#   2. TimescaleDB (Apache-2 edition) built from Debian trixie's source package
#   3. Apache Kafka jars from Maven Central (deploy/kafka/pom.xml)
#   4. The Python virtualenv (.venv) with this project installed in editable mode
#   5. vegeta (the open-loop load generator of `ducats bench api`) from the Go module proxy, into .state/bin
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STAMPS=$STATE_DIR/stamps
mkdir -p "$STAMPS"
APT_PACKAGES=(openjdk-17-jre-headless maven postgresql-15 postgresql-server-dev-15 redis-server
              kcat cmake build-essential dpkg-dev chromium wrk)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  die "installing system packages needs root; fix: run as root or install: ${APT_PACKAGES[*]}"; fi; }

apt_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  need apt-get "this needs a Debian-like system with apt-get; install by hand: ${missing[*]}"
  log "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq >"$STATE_DIR/apt-update.log" 2>&1 || die "apt-get update failed; see $STATE_DIR/apt-update.log"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >"$STATE_DIR/apt-install.log" 2>&1 \
    || die "apt-get install failed; see $STATE_DIR/apt-install.log"
}

# Bookworm ships no TimescaleDB binary for PostgreSQL 15; trixie's source
# package (2.19.x) builds against postgresql-server-dev-15 in seconds.
timescaledb() {
  local pkglib; pkglib=$("$PG_BIN/pg_config" --pkglibdir)
  [ -f "$pkglib/timescaledb.so" ] && return 0
  local src=/etc/apt/sources.list.d/ducats-trixie-src.sources
  if [ ! -f "$src" ]; then
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      | as_root tee "$src" >/dev/null
    as_root apt-get update -qq >"$STATE_DIR/apt-update.log" 2>&1 || die "apt-get update (trixie deb-src) failed; see $STATE_DIR/apt-update.log"
  fi
  local b=$STATE_DIR/build/timescaledb
  rm -rf "$b" && mkdir -p "$b"
  log "building TimescaleDB from Debian's source package (about 15 s)"
  ( cd "$b" && apt-get source --download-only timescaledb >download.log 2>&1 \
      && dpkg-source -x --no-check ./timescaledb_*.dsc src >extract.log 2>&1 \
      && cd src && ./bootstrap -DAPACHE_ONLY=1 -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF \
           -DPG_CONFIG="$PG_BIN/pg_config" >../bootstrap.log 2>&1 \
      && make -C build -j"$(nproc)" >../make.log 2>&1 \
      && as_root make -C build install >../install.log 2>&1 ) \
    || die "TimescaleDB build failed; see the logs in $b"
}

kafka_jars() {
  local pom=$DUCATS_ROOT/deploy/kafka/pom.xml stamp=$STAMPS/kafka-jars
  local want; want=$(sha1sum "$pom" | cut -c1-40)
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && return 0
  need mvn "apt-get install -y maven"
  log "resolving Kafka jars from Maven Central"
  rm -rf "$KAFKA_LIBS"
  mvn -q -B -f "$pom" dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$KAFKA_LIBS" >"$STATE_DIR/mvn.log" 2>&1 \
    || die "mvn could not resolve the Kafka jars; see $STATE_DIR/mvn.log"
  echo "$want" > "$stamp"
}

# Neo4j 5 Community (off by default; `ducats up neo4j`): its jars, and deploy/neo4j/Standby.java
# compiled against them (javac comes with the JDK that Kafka's Java 17 is part of).
neo4j_jars() {
  local pom=$DUCATS_ROOT/deploy/neo4j/pom.xml src=$DUCATS_ROOT/deploy/neo4j/Standby.java stamp=$STAMPS/neo4j-jars
  local classes=$NEO4J_LIBS/../classes want
  want=$(cat "$pom" "$src" | sha1sum | cut -c1-40)
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && return 0
  need mvn "apt-get install -y maven"
  need javac "apt-get install -y openjdk-17-jdk-headless"
  log "resolving Neo4j jars from Maven Central (about 130 MB, once)"
  rm -rf "$NEO4J_LIBS" "$classes"
  mvn -q -B -f "$pom" dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$NEO4J_LIBS" >"$STATE_DIR/mvn-neo4j.log" 2>&1 \
    || die "mvn could not resolve the Neo4j jars; see $STATE_DIR/mvn-neo4j.log"
  mkdir -p "$classes"
  javac -cp "$NEO4J_LIBS/*" -d "$classes" "$src" >"$STATE_DIR/javac-neo4j.log" 2>&1 \
    || die "compiling deploy/neo4j/Standby.java failed; see $STATE_DIR/javac-neo4j.log"
  echo "$want" > "$stamp"
}

python_env() {
  local stamp=$STAMPS/venv want py=${PYTHON:-python3}
  need "$py" "install Python 3.11 and put python3 on PATH"
  "$py" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' \
    || die "Python 3.11+ is needed, found $("$py" --version 2>&1); fix: set PYTHON=/path/to/python3.11"
  want=$(cat "$DUCATS_ROOT/pyproject.toml" | sha1sum | cut -c1-40)
  [ -x "$DUCATS_ROOT/.venv/bin/ducats" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && return 0
  log "creating the Python environment in .venv"
  [ -x "$DUCATS_ROOT/.venv/bin/python" ] || "$py" -m venv "$DUCATS_ROOT/.venv" \
    || die "python -m venv failed; fix: apt-get install -y python3-venv"
  "$DUCATS_ROOT/.venv/bin/pip" install -q --upgrade pip >"$STATE_DIR/pip.log" 2>&1 || true
  "$DUCATS_ROOT/.venv/bin/pip" install -q -e "$DUCATS_ROOT[dev]" >>"$STATE_DIR/pip.log" 2>&1 \
    || die "pip install failed; see $STATE_DIR/pip.log"
  echo "$want" > "$stamp"
}

# vegeta, pinned, built by the machine's Go into .state/bin (bench/load.py finds it there).
VEGETA_VERSION=v12.13.0
vegeta() {
  local bin=$DUCATS_ROOT/.state/bin stamp=$STAMPS/vegeta
  [ -x "$bin/vegeta" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$VEGETA_VERSION" ] && return 0
  local go=go
  command -v go >/dev/null 2>&1 || [ ! -x /usr/local/go/bin/go ] || go=/usr/local/go/bin/go  # the official tarball's place
  need "$go" "install Go 1.22 or newer (apt-get install -y golang, or https://go.dev/dl)"
  log "building vegeta $VEGETA_VERSION from the Go module proxy (about 30 s)"
  mkdir -p "$bin"
  GOBIN=$bin "$go" install "github.com/tsenart/vegeta/v12@$VEGETA_VERSION" >"$STATE_DIR/vegeta.log" 2>&1 \
    || die "go install vegeta failed; see $STATE_DIR/vegeta.log"
  echo "$VEGETA_VERSION" > "$stamp"
}

apt_packages
timescaledb
kafka_jars
neo4j_jars
python_env
vegeta
