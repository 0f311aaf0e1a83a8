# Shared by rkube's scripts: installs what a machine is missing, from Debian's packages
# and PyPI only. Sourced, not run.

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then
    echo "==> apt-get update"
    as_root apt-get update -qq
    apt_updated=1
  fi
  echo "==> apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# ensure_docker: a running Docker engine (installs docker.io and starts dockerd if needed).
ensure_docker() {
  if docker info >/dev/null 2>&1; then return 0; fi
  command -v dockerd >/dev/null 2>&1 || apt_install docker.io
  echo "==> starting dockerd (log: /tmp/rkube-dockerd.log)"
  as_root sh -c 'nohup dockerd >/tmp/rkube-dockerd.log 2>&1 &'
  for _ in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "error: dockerd did not start; see /tmp/rkube-dockerd.log" >&2
  return 1
}

# ensure_deps [test]: etcd, protoc, kubectl and Docker for everyone; busybox, tmux (a real
# terminal for interactive kubectl), curl, a font for the bench's plot and the Python
# kubernetes client for the test suite and the bench.
ensure_deps() {
  local want=()
  command -v etcd >/dev/null 2>&1 || want+=(etcd-server)
  command -v protoc >/dev/null 2>&1 || want+=(protobuf-compiler)
  command -v kubectl >/dev/null 2>&1 || want+=(kubernetes-client)
  command -v hostname >/dev/null 2>&1 || want+=(hostname)
  if [ "${1:-}" = test ]; then
    command -v busybox >/dev/null 2>&1 || want+=(busybox-static)
    command -v python3 >/dev/null 2>&1 || want+=(python3 python3-pip)
    command -v tmux >/dev/null 2>&1 || want+=(tmux)
    command -v curl >/dev/null 2>&1 || want+=(curl)
    # The typeface of `rkube bench`'s plot.
    [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || want+=(fonts-dejavu-core)
  fi
  if [ ${#want[@]} -gt 0 ]; then apt_install "${want[@]}"; fi
  if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo is not installed; install a Rust toolchain (rustup) first" >&2
    return 1
  fi
  ensure_docker
  if [ "${1:-}" = test ] && ! python3 -c 'import kubernetes' >/dev/null 2>&1; then
    echo "==> pip install kubernetes"
    python3 -m pip install --quiet kubernetes \
      || python3 -m pip install --quiet --break-system-packages kubernetes
  fi
}
