# Sourced by the scripts: PATH with Swift, the repository root, root check.
export PATH="/opt/swift/usr/bin:$PATH:/usr/sbin:/sbin"
MESHD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$MESHD_ROOT"
require_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "$1 creates network namespaces and needs root: sudo $0" >&2
    exit 1
  fi
}
# Debian's stock kernel for the VM lane (linux-image-amd64), newest first.
vm_kernel() { ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1 || true; }
