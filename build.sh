#!/usr/bin/env bash
# The thin wrapper behind the README's commands.
#
#   ./build.sh quickstart   install what is missing, build (Release), run the quickstart
#   ./build.sh test         install what is missing, build (ASan+UBSan), run every test
#   ./build.sh bench        install what is missing, build (Release), run the benchmarks
#   ./build.sh deps         only install what is missing
#   ./build.sh build        only build (Release) into build/release
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)

# Debian packages the build, the tests and the quickstart need. Benchmarks
# add their peers (see bench_packages).
build_packages=(gcc make cmake pkg-config git ca-certificates curl procps
                liblua5.4-dev libuv1-dev libsqlite3-dev libyajl-dev
                libcmocka-dev libhttp-parser-dev libpq-dev sqlite3
                postgresql postgresql-client)
bench_packages=(redis-server)

# Installs the named packages that are not installed yet, idempotently, with
# non-interactive apt-get; says what it installs.
install_missing() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "runnel: installing missing Debian packages: ${missing[*]}"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || {
      echo "runnel: not root and no sudo; install these first: ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
}

jobs() { nproc 2>/dev/null || echo 2; }

configure_build() { # dir, cmake args...
  local dir=$1; shift
  cmake -S "$ROOT" -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j"$(jobs)"
}

cmd=${1:-}
case "$cmd" in
  deps)
    install_missing "${build_packages[@]}" ;;
  build)
    install_missing "${build_packages[@]}"
    configure_build build/release -DCMAKE_BUILD_TYPE=Release ;;
  quickstart)
    install_missing "${build_packages[@]}"
    configure_build build/release -DCMAKE_BUILD_TYPE=Release
    exec bash examples/quickstart/run.sh "$ROOT/build/release/runnel" ;;
  test)
    install_missing "${build_packages[@]}"
    configure_build build/asan -DCMAKE_BUILD_TYPE=Debug -DRUNNEL_SANITIZE=ON
    rm -rf build/asan/test-tmp
    cd build/asan
    exec ctest --output-on-failure -j"$(jobs)" ;;
  bench)
    install_missing "${build_packages[@]}" "${bench_packages[@]}"
    configure_build build/release -DCMAKE_BUILD_TYPE=Release
    exec bash tests/bench/run.sh "$ROOT/build/release" ;;
  *)
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    [ -z "$cmd" ] || [ "$cmd" = help ] || [ "$cmd" = --help ] || exit 2 ;;
esac
