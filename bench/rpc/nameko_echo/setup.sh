#!/usr/bin/env bash
# Create (or refresh) bench/.venv-nameko for the Nameko 2.14 RPC baseline.
#
# Why a separate venv: nameko 2.x needs eventlet, whose monkey patching must
# never be imported into the project's own venv. Idempotent: the venv is made
# once, and pip runs again only when requirements.txt changed since the last
# successful install (a copy of it is kept inside the venv as a stamp).
#
#   bash bench/rpc/nameko_echo/setup.sh        # PYTHON=python3.11 to choose
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$(cd "$here/../.." && pwd)/.venv-nameko"
req="$here/requirements.txt"
stamp="$venv/.bench-requirements.txt"
py="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    echo "creating $venv with $("$py" --version 2>&1)"
    "$py" -m venv "$venv"
fi

if ! cmp -s "$req" "$stamp" 2>/dev/null; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
    cp "$req" "$stamp"
fi

# Smoke test: the imports the service and the client need.
"$venv/bin/python" -W ignore -c '
import eventlet
eventlet.monkey_patch()
import nameko
from nameko.rpc import rpc
from nameko.runners import ServiceRunner
from nameko.standalone.rpc import ClusterRpcProxy
from importlib.metadata import version
print("nameko venv ok: nameko", version("nameko"), "eventlet", version("eventlet"))
'
