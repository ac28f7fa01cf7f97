# Sourced by the scripts/e2e-*.sh checks: a scratch directory, processes stopped on exit, free ports.
python3 -c "import websockets" 2>/dev/null || pip install -q websockets
cargo build -q --bin wsgate

work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
