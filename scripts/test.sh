#!/usr/bin/env bash
# Set up and run the whole test suite, on a fresh Debian/Ubuntu machine as root or on a prepared one:
#   1. apt-installs the system packages below that are missing (Python, Chromium for the browser tests, ...);
#   2. creates .venv and installs the project with its `st` and `test` extras;
#   3. runs `python -m pytest -q` (extra arguments are passed on, e.g. `bash scripts/test.sh -m "not slow"`).
# The exit code is pytest's. The MindSpore FAQ pages are not in the repository (corpus/README.md): the tests read
# them from FAQBOT_CORPUS, by default ../shared/corpus next to the project folder; this script checks it is there
# and passes it on as an absolute path.
set -euo pipefail

# System packages the tests need. Add yours here (one list, installed in one apt-get call).
#   python3 python3-venv  the interpreter and venv (Debian keeps venv in its own package)
#   chromium              the browser tests drive /usr/bin/chromium through Playwright
#   fonts-wqy-microhei    Chinese text in the browser (screenshots, rendering checks)
#   postgresql nginx      services that other tests start
APT_PACKAGES="python3 python3-venv chromium fonts-wqy-microhei postgresql nginx"

cd "$(dirname "$0")/.."
FAQBOT_CORPUS=${FAQBOT_CORPUS:-../shared/corpus}
if [ ! -d "$FAQBOT_CORPUS/mindspore-master" ] || [ ! -d "$FAQBOT_CORPUS/mindspore-r1.1" ]; then
  echo "test.sh: no MindSpore FAQ corpus at $FAQBOT_CORPUS; set FAQBOT_CORPUS to its folder (see corpus/README.md)" >&2
  exit 1
fi
FAQBOT_CORPUS=$(cd "$FAQBOT_CORPUS" && pwd)
export FAQBOT_CORPUS
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for pkg in $APT_PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
else
  echo "test.sh: not a Debian/Ubuntu machine; make sure these are installed: $APT_PACKAGES" >&2
fi
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "test.sh: missing system packages: ${missing[*]}; run as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "test.sh: apt-get install ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
pip install -q -e '.[st,test]'
exec python -m pytest -q "$@"
