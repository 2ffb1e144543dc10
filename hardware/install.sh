#!/bin/sh
# Install a terminal the way hardware/pos-loyalty.service runs it. From a checkout, as root:
#   sudo sh hardware/install.sh
# It creates exactly what the unit names: the user pos-loyalty (groups plugdev, dialout), the
# venv /opt/pos-loyalty/venv with pos-loyalty in it, /etc/pos-loyalty/terminal.toml (kept if
# it exists), /var/lib/pos-loyalty (0700, owned by the user), the udev rule, the modprobe
# blacklist and the unit itself. Re-running it upgrades the package and keeps the config.
#
# ROOT=/some/dir installs under that directory instead of / (image builds, tests) and skips
# the steps that act on the running system (useradd, chown, udevadm, modprobe, systemctl).
# PIP_ARGS are passed to pip (e.g. --no-index --find-links /media/usb/wheels offline).
set -eu

ROOT="${ROOT:-}"
SRC="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
VENV="$ROOT/opt/pos-loyalty/venv"

if [ -z "$ROOT" ] && ! id pos-loyalty >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/pos-loyalty --shell /usr/sbin/nologin \
        --groups plugdev,dialout pos-loyalty
fi

if [ "${SKIP_VENV:-}" != "1" ]; then
    "$PYTHON" -m venv "$VENV"
    # shellcheck disable=SC2086  # PIP_ARGS is a list of options
    "$VENV/bin/pip" install --quiet ${PIP_ARGS:-} "$SRC"
fi

install -d -m 0755 "$ROOT/etc/pos-loyalty"
if [ ! -e "$ROOT/etc/pos-loyalty/terminal.toml" ]; then
    install -m 0644 "$SRC/examples/terminal.toml" "$ROOT/etc/pos-loyalty/terminal.toml"
fi
install -d -m 0700 "$ROOT/var/lib/pos-loyalty"
install -d -m 0755 "$ROOT/etc/udev/rules.d" "$ROOT/etc/modprobe.d" "$ROOT/etc/systemd/system"
install -m 0644 "$SRC/hardware/99-pos-loyalty-nfc.rules" "$ROOT/etc/udev/rules.d/"
install -m 0644 "$SRC/hardware/blacklist-pos-loyalty-nfc.conf" "$ROOT/etc/modprobe.d/"
install -m 0644 "$SRC/hardware/pos-loyalty.service" "$ROOT/etc/systemd/system/"

if [ -z "$ROOT" ]; then
    chown pos-loyalty:pos-loyalty /var/lib/pos-loyalty
    udevadm control --reload && udevadm trigger
    modprobe -r pn533_usb pn533 port100 nfc 2>/dev/null || true
    systemctl daemon-reload
fi

echo "installed. Next, as the service's user, enroll into the daemon's database:"
echo "  sudo -u pos-loyalty $VENV/bin/pos-loyalty enroll --config /etc/pos-loyalty/terminal.toml https://central:8443 CODE"
echo "then: sudo systemctl enable --now pos-loyalty"
