#!/usr/bin/env bash
# The arm64 proof: build a Debian bookworm arm64 root (the base of Raspberry Pi OS 64-bit) with
# debootstrap and qemu-user-static, copy this checkout into it, and run there, as a Pi user would:
#   1. the README's first command (pip install . && agegender models fetch; agegender predict ...)
#   2. agegender benchmark (model-only latency and the end-to-end loop, still and video mode)
# Timings under emulation mean nothing; that every step runs on arm64 wheels does.
#
#   sudo bash benchmarks/arm64_check.sh [--detector-model YUNET.onnx] [--cpu cortex-a72] [--root DIR] [--log FILE]
#
# --cpu is the CPU qemu emulates: cortex-a72 (Raspberry Pi 4, the default) or cortex-a76 (Pi 5). Not
# qemu's default "max" CPU: with it the int8 model's outputs came out wrong (the astronaut: "age 27 ± 0,
# female"), while emulated Pi CPUs give x86's outputs: an emulation fault, not a Pi's behaviour.
#
# Needs root, Debian's package mirror and PyPI (nothing else). Without internet access to the
# OpenCV model zoo, `models fetch` fails as it would for such a user; the YuNet file given with
# --detector-model is then put into the root's cache, as that user would copy it. Not run by CI
# (about 5 minutes from a new root on the 2-core machine). Its output is recorded in benchmarks/README.md.
set -euo pipefail

ROOT=/var/tmp/agegender-arm64
DETECTOR=""
CPU=cortex-a72
LOG=""
while [ $# -gt 0 ]; do
    case "$1" in
        --root) ROOT=$2; shift 2 ;;
        --detector-model) DETECTOR=$2; shift 2 ;;
        --cpu) CPU=$2; shift 2 ;;
        --log) LOG=$2; shift 2 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "arm64_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ -n "$LOG" ]; then exec > >(tee "$LOG") 2>&1; fi
[ "$(id -u)" = 0 ] || { echo "arm64_check.sh: run as root (debootstrap and chroot need it)" >&2; exit 1; }
REPO=$(cd "$(dirname "$0")/.." && pwd)
step() { echo; echo "== $(date -u +%H:%M:%S) $*"; }

step "host: $(uname -m), $(. /etc/os-release && echo "$PRETTY_NAME")"
if ! command -v debootstrap >/dev/null || [ ! -e /usr/lib/binfmt.d/qemu-aarch64.conf ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap qemu-user-static >/dev/null
fi

step "registering qemu-aarch64 with binfmt_misc"
[ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    cat /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register
fi

if [ ! -x "$ROOT/usr/bin/python3" ]; then
    step "debootstrap bookworm arm64 into $ROOT"
    rm -rf "$ROOT"
    debootstrap --arch=arm64 --variant=minbase \
        --include=python3,python3-venv,python3-pip,ca-certificates bookworm "$ROOT" http://deb.debian.org/debian
fi
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
for fs in proc sys dev; do
    mountpoint -q "$ROOT/$fs" || mount --bind "/$fs" "$ROOT/$fs"
done
trap 'for fs in dev sys proc; do umount -l "$ROOT/$fs" 2>/dev/null || true; done' EXIT

step "copying the checkout (tracked and new, not ignored, files) to /opt/agegender"
rm -rf "$ROOT/opt/agegender" && mkdir -p "$ROOT/opt/agegender"
(cd "$REPO" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar -cf - --no-recursion) | tar -xf - -C "$ROOT/opt/agegender"
if [ -n "$DETECTOR" ]; then cp "$DETECTOR" "$ROOT/opt/yunet.onnx"; fi

step "inside the arm64 root (qemu emulating a $CPU)"
export QEMU_CPU=$CPU
chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 QEMU_CPU="$CPU" \
        /bin/bash -euo pipefail -c '
    echo "machine: $(uname -m), emulated CPU $QEMU_CPU; $(. /etc/os-release && echo "$PRETTY_NAME"); $(python3 --version)"
    rm -rf /opt/venv && python3 -m venv /opt/venv && . /opt/venv/bin/activate
    pip install -q --upgrade pip
    cd /opt/agegender
    echo; echo "== the README first command: pip install . && agegender models fetch; agegender predict edge/samples/astronaut.png"
    pip install -q . && { agegender models fetch || {
        echo "(models fetch could not download: YuNet copied into the cache, as a user without that access would)"
        mkdir -p /root/.cache/agegender && cp /opt/yunet.onnx /root/.cache/agegender/face_detection_yunet_2023mar.onnx; }; }
    agegender predict edge/samples/astronaut.png
    echo; echo "== installed (no TensorFlow):"
    pip list 2>/dev/null | grep -iE "^(agegender|numpy|opencv|ai-edge-litert|tensorflow)" || true
    python -c "import importlib.util as u; print(\"tensorflow importable:\", u.find_spec(\"tensorflow\") is not None)"
    echo; echo "== agegender benchmark (under qemu emulation: the timings mean nothing)"
    agegender benchmark --runs 30 --warmup 5 --frames 12
'
step "arm64 check finished"
