# Sourced by .ci/run before the tests: the PC/SC stack the PC/SC tests drive for real.
#  - pyscard (the `pcsc` extra) builds from source: it needs libpcsclite-dev, swig and a C
#    compiler, so it goes into the test venv here, after those packages, not in `dev`.
#  - pcscd with Debian's vsmartcard-vpcd virtual reader. The tests start their own pcscd in
#    the foreground with a private reader.conf.d (vpcd on free loopback-tested ports) and stop
#    it afterwards; if a system pcscd is already serving with /etc/reader.conf.d/vpcd they use
#    that one instead. Without these packages the PC/SC tests skip and say why.
if command -v apt-get >/dev/null 2>&1; then
    pcsc_sudo=""
    if [ "$(id -u)" -ne 0 ]; then pcsc_sudo="sudo"; fi
    $pcsc_sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $pcsc_sudo apt-get install -y -qq --no-install-recommends \
        gcc libpcsclite-dev swig pcscd vsmartcard-vpcd >/dev/null
    unset pcsc_sudo
else
    echo "pcsc.sh: no apt-get; install libpcsclite-dev, swig, pcscd and vsmartcard-vpcd" >&2
fi
python3 -m venv .venv && .venv/bin/pip install -q 'pyscard>=2.0'
