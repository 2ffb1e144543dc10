# Sourced by .ci/run before the tests: the PC/SC stack the PC/SC tests drive for real.
#  - pyscard builds from source: it needs libpcsclite-dev, swig and a C compiler. It is the
#    "pcsc" extra, not "dev" (so the README's test command works without these packages);
#    it is installed here into the .venv the test command then reuses.
#    (python3-venv: Debian's python3 cannot make the venv without it on a fresh machine.)
#  - pcscd with Debian's vsmartcard-vpcd virtual reader. The tests start their own pcscd in
#    the foreground with a private reader.conf.d (vpcd on free ports) and stop it afterwards;
#    if a system pcscd is already serving with /etc/reader.conf.d/vpcd they use that one.
# POS_LOYALTY_REQUIRE_PCSC=1 makes the PC/SC tests fail, not skip, where any of it is missing
# (elsewhere they skip and say why).
if command -v apt-get >/dev/null 2>&1; then
    pcsc_sudo=""
    if [ "$(id -u)" -ne 0 ]; then pcsc_sudo="sudo"; fi
    $pcsc_sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $pcsc_sudo apt-get install -y -qq --no-install-recommends \
        python3-venv gcc python3-dev libpcsclite-dev swig pcscd vsmartcard-vpcd >/dev/null
    unset pcsc_sudo
    python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev,pcsc]'
else
    echo "pcsc.sh: no apt-get; install libpcsclite-dev, swig, pcscd and vsmartcard-vpcd" >&2
fi
export POS_LOYALTY_REQUIRE_PCSC=1
