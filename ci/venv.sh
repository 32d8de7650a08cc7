#!/bin/sh
# Makes the project's virtual environment and installs the project into it with its
# test extra. Called by the Makefile only when pyproject.toml changed since the last
# install (the stamp `.venv/.stamp`).
#
#   sh ci/venv.sh PYTHON VENV
set -u
python=$1
venv=$2
here=$(dirname "$0")

"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || {
  echo "lag-exporter needs Python 3.11 or later; $python is $("$python" --version 2>&1)."
  echo "Run make with PYTHON=/path/to/python3.11-or-later."
  exit 2
}
PYTHON=$python sh "$here/system-packages.sh" "the virtual environment" python3-venv || exit $?

# A venv left by another Python (an upgrade, a moved checkout) is made again.
if [ -x "$venv/bin/python" ] && ! "$venv/bin/python" -c '' 2>/dev/null; then
  rm -rf "$venv"
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "making the virtual environment $venv with $("$python" --version 2>&1)"
  "$python" -m venv "$venv" || { rm -rf "$venv"; exit 1; }
fi
echo "installing lag-exporter and its test tools into $venv (pip)"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'
