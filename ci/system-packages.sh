#!/bin/sh
# Installs the Debian packages that `make demo` or `make test` needs and the machine
# lacks, with one line saying what and why. apt-get runs directly as root and through
# sudo otherwise; a machine without apt gets one message naming what to install.
#
#   sh ci/system-packages.sh PURPOSE PACKAGE...
#
# Each package is checked by the command it provides, so nothing is installed (and
# apt is not even asked) when everything is already there.
set -u
purpose=$1
shift

# The command a package provides and what it is for, one "package:command:why" a line.
provides() {
  case $1 in
    default-jre-headless) echo "java:runs the local Kafka broker (Java 17 or later)" ;;
    maven) echo "mvn:fetches the Kafka jars from Maven Central" ;;
    prometheus) echo "promtool:the real Prometheus of the tests (with promtool)" ;;
    prometheus-alertmanager) echo "prometheus-alertmanager:the real Alertmanager of the tests" ;;
    openssl) echo "openssl:makes the TLS certificates of the tests" ;;
    chromium) echo "chromium:the headless browser of the web UI tests" ;;
    python3-venv) echo "venv:makes the project's virtual environment .venv" ;;
    *) echo "$1:" ;;
  esac
}

# The major version of the `java` on PATH, or 0 when there is none.
java_major() {
  command -v java >/dev/null 2>&1 || { echo 0; return; }
  java -version 2>&1 | sed -n 's/.*version "\([0-9][0-9]*\)\(\.\([0-9]*\)\)\{0,1\}.*/\1 \3/p' | {
    read -r major minor
    # Java 8 and older print 1.x: the major version is the second number.
    if [ "${major:-0}" = 1 ]; then echo "${minor:-0}"; else echo "${major:-0}"; fi
  }
}

missing=""
reasons=""
for pkg in "$@"; do
  entry=$(provides "$pkg")
  cmd=${entry%%:*}
  why=${entry#*:}
  if [ "$cmd" = java ]; then
    [ "$(java_major)" -ge 17 ] && continue
  elif [ "$cmd" = venv ]; then
    # Debian moves ensurepip (and so `python3 -m venv`) into python3-venv.
    "${PYTHON:-python3}" -c 'import ensurepip, venv' >/dev/null 2>&1 && continue
  elif command -v "$cmd" >/dev/null 2>&1; then
    continue
  fi
  missing="$missing $pkg"
  reasons="$reasons; $pkg: $why"
done
[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "$purpose needs:$missing${reasons:+ (${reasons#; })}."
  echo "This machine has no apt-get: install them with its package manager, then run make again."
  exit 2
fi
if [ "$(id -u)" = 0 ]; then
  sudo=""
elif command -v sudo >/dev/null 2>&1; then
  sudo="sudo"
else
  echo "$purpose needs the Debian packages$missing and is not root; there is no sudo either."
  echo "As root: apt-get install$missing"
  exit 2
fi

echo "$purpose: installing Debian packages$missing${sudo:+ through sudo} (${reasons#; })"
log=$(mktemp)
# shellcheck disable=SC2086
if ! { $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing; } >"$log" 2>&1; then
  cat "$log"
  rm -f "$log"
  echo "apt-get could not install$missing; install them by hand and run make again."
  exit 1
fi
rm -f "$log"

case " $* " in
  *" default-jre-headless "*)
    major=$(java_major)
    if [ "$major" -lt 17 ]; then
      echo "Java 17 or later is needed to run Kafka; the java on PATH ($(command -v java)) is Java $major."
      echo "Install OpenJDK 17 or later and put it first on PATH (or point JAVA_HOME at it)."
      exit 2
    fi
    ;;
esac
exit 0
