#!/usr/bin/env bash
# Run respool's benchmark from a fresh clone: its own virtualenv (.venv-bench)
# with respool and the peers (the [bench] extra), then benchmarks/bench.py with
# any arguments given here (e.g. --quick, --rounds 5).
#
# escudeiro, one of the peers, needs Python >= 3.12: this picks a 3.12 (else
# 3.13) interpreter from PATH or pyenv when there is one; otherwise it runs on
# python3 and the benchmark skips escudeiro with a note.
set -euo pipefail
cd "$(dirname "$0")/.."

works() {  # the interpreter runs (a pyenv shim without that version does not)
  [ -n "$1" ] && "$1" -c 'import sys' >/dev/null 2>&1
}

pick_python() {
  local version candidate
  for version in 3.12 3.13; do
    for candidate in \
      "$(command -v "python$version" 2>/dev/null || true)" \
      "$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".*/bin/python3 2>/dev/null \
         | sort -V | tail -n 1 || true)"; do
      if works "$candidate"; then
        echo "$candidate"
        return
      fi
    done
  done
  command -v python3
}

python=$(pick_python)
echo "benchmark interpreter: $python ($("$python" --version 2>&1))" >&2
venv=.venv-bench
if [ ! -x "$venv/bin/python" ] || \
   [ "$("$venv/bin/python" -c 'import sys; print(sys.version_info[:2])')" != \
     "$("$python" -c 'import sys; print(sys.version_info[:2])')" ]; then
  rm -rf "$venv"
  "$python" -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check -e ".[bench]"
exec "$venv/bin/python" benchmarks/bench.py "$@"
