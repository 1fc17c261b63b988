# The Debian packages flowgate needs, in one list, and the function that installs the missing
# ones. Sourced (not run) by scripts/demo, scripts/test and the benchmarks.
#
#   ensure_packages build          # what `cargo build` needs (scripts/demo)
#   ensure_packages build test     # plus what the tests run (scripts/test)
#
# Each line: the purposes it serves (comma-separated), how to tell it is there, the packages.
# A machine that has everything never touches apt.
FLOWGATE_PACKAGES='
build            command:cc               gcc libc6-dev
build            command:make             make
build            command:cmake            cmake
test             command:php              php-cli
test             php-module:mbstring      php-mbstring
test             php-module:apcu          php-apcu
test,load        command:redis-server     redis-server
test,load        command:redis-cli        redis-tools
test             command:openssl          openssl
test             file:/usr/bin/chromium   chromium
test             file:/usr/bin/chromedriver chromium-driver
test             command:promtool         prometheus
test             command:systemd-analyze  systemd
test             file:/bin/kill           procps
test             command:python3          python3
test             python-modules:ensurepip,venv python3-venv
test             command:node             nodejs
test             command:npm              npm
test             command:curl             curl
test             command:go               golang-go
test             path:/usr/share/gocode/src/github.com/golang-jwt/jwt/go.mod golang-github-golang-jwt-jwt-dev
test             command:javac            default-jdk-headless
test             debian-python:jwt        python3-jwt
load,callgrind   command:wrk              wrk
load,callgrind,idle command:nginx       nginx
callgrind        command:valgrind         valgrind
'
# Why each is needed:
# - build: a C toolchain and cmake for the native parts of dependencies (Pingora's zlib-ng via
#   libz-ng-sys, zstd, ring); a machine with only the Rust toolchain lacks cmake.
# - test: the PHP reference scripts (tests/php, examples/*/*.php; mb_substr is mbstring's; the
#   verification kit's shared replay cache is APCu's);
#   real Redis servers, Clusters (`redis-cli --cluster create`) and Sentinels; certificates for
#   the TLS Redis tests and the HTTPS listener tests (openssl, also their `s_client` client); Debian's Chromium driven through ChromeDriver (never a downloaded one);
#   the operator's kit (tests/deploy.rs): promtool for the alert rules, systemd-analyze for the
#   unit (and /bin/kill for its ExecReload), a Python venv for kubernetes-validate from PyPI;
#   Node.js and npm for the real Socket.IO chat backend and clients (tests/node); curl (with
#   HTTP/2) as a second real client of the connection-layer tests (aborts, h2c, HTTP/1.0);
#   the verifier and signer kits of other languages (tests/kits_*.rs): Go with Debian's
#   golang-jwt (built offline, no module proxy), a JDK, PyJWT for Debian's own python3.
# - load, callgrind, idle: benches/load.sh, benches/instructions.sh and benches/idle.sh.

# _flowgate_present CHECK: whether what CHECK names is installed.
_flowgate_present() {
  local kind=${1%%:*} what=${1#*:}
  case $kind in
    command) command -v "$what" >/dev/null || [ -x "/usr/sbin/$what" ] ;;
    file) [ -x "$what" ] ;;
    php-module) command -v php >/dev/null && php -m 2>/dev/null | grep -qix "$what" ;;
    python-modules) command -v python3 >/dev/null && python3 -c "import $what" 2>/dev/null ;;
    debian-python) [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import $what" 2>/dev/null ;;
    path) [ -e "$what" ] ;;
    *) return 1 ;;
  esac
}

# ensure_packages PURPOSE…: installs (apt-get, as root or through sudo) every package of the list
# that serves one of PURPOSEs and is missing.
ensure_packages() {
  local need=() more=() purposes check packages purpose wanted
  while read -r purposes check packages; do
    [ -n "$purposes" ] || continue
    wanted=
    for purpose in "$@"; do
      case ",$purposes," in *",$purpose,"*) wanted=1 ;; esac
    done
    [ -n "$wanted" ] || continue
    if ! _flowgate_present "$check"; then
      read -r -a more <<<"$packages"
      need+=("${more[@]}")
    fi
  done <<<"$FLOWGATE_PACKAGES"
  [ ${#need[@]} -gt 0 ] || return 0
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || {
      echo "$(basename "$0"): missing packages: ${need[*]}; run as root or install them" >&2
      return 1
    }
    sudo=(sudo)
  fi
  echo "$(basename "$0"): installing ${need[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
}
