#!/usr/bin/env bash
# Install schemathesis (the API fuzzer the contract tests run) into a project venv, pinned,
# and print the path of its `st` command. Idempotent: an installed venv of the pinned version
# is reused.
#
# Environment:
#   KOMMERCE_STATE_DIR   where the venv lives (default: $HOME/.cache/kommerce)
set -euo pipefail

VERSION=4.32.5
STATE_DIR="${KOMMERCE_STATE_DIR:-$HOME/.cache/kommerce}"
VENV="$STATE_DIR/venv-schemathesis"

say() { echo "schemathesis: $*" >&2; }

# The version file is written last, so a half-finished install is redone.
if [[ -x $VENV/bin/st && $(cat "$VENV/.kommerce-version" 2>/dev/null) == "$VERSION" ]]; then
    echo "$VENV/bin/st"
    exit 0
fi
command -v python3 >/dev/null || { say "python3 is missing"; exit 1; }
say "installing schemathesis $VERSION into $VENV"
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION" >&2
# CPython 3.11 before 3.11.9 can raise SystemError("AST constructor recursion depth mismatch")
# from ast.parse of a deeply nested source; hypothesis parses schemathesis's own sources only
# to *name* a lambda in a repr, and that crash ended whole runs. Name it `<unknown>` instead.
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cat >"$site/kommerce_lambda_names.py" <<'PY'
"""Installed by scripts/schemathesis.sh: see the comment there."""
try:
    from hypothesis.internal import lambda_sources as _sources

    _original = _sources._lambda_description

    def _lambda_description(f, *args, **kwargs):
        try:
            return _original(f, *args, **kwargs)
        except SystemError:
            return "lambda: <unknown>"

    _sources._lambda_description = _lambda_description
except ImportError:
    pass
PY
echo "import kommerce_lambda_names" >"$site/kommerce_lambda_names.pth"
echo "$VERSION" >"$VENV/.kommerce-version"
echo "$VENV/bin/st"
