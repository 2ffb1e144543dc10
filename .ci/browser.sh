# shellcheck shell=bash
# Sourced by .ci/run: Debian's chromium for the console's browser tests (driven by
# Playwright from the "dev" extra with executable_path=/usr/bin/chromium; Playwright's own
# browser download is never used). POS_LOYALTY_REQUIRE_BROWSER=1 makes those tests fail,
# not skip, when the browser is missing.
if [ ! -x /usr/bin/chromium ]; then
  if command -v apt-get >/dev/null 2>&1; then
    _br_sudo=""
    [ "$(id -u)" -ne 0 ] && _br_sudo="sudo"
    $_br_sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $_br_sudo apt-get install -y -qq --no-install-recommends \
      chromium fonts-dejavu-core >/dev/null
    unset _br_sudo
  else
    echo "browser.sh: no apt-get; install chromium at /usr/bin/chromium" >&2
  fi
fi
export POS_LOYALTY_REQUIRE_BROWSER=1
