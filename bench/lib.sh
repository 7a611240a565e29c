# Helpers the benchmark scripts share (sourced).

# The benchmark's own user, an admin and viewer (status, metrics): its config table, and curl
# with its token (every API call but /healthz needs one: docs/security.md).
bench_user() {
  echo '[[user]]'; echo 'name = "bench"'; echo 'roles = ["admin", "viewer"]'
  echo "token_sha256 = \"$(printf %s bench-admin | sha256sum | cut -d' ' -f1)\""
}
api() { curl -s -H "Authorization: Bearer bench-admin" "$@"; }

metric_q() { # a histogram's quantile from a node's /metrics, as its bucket's upper bound: name q [port]
  api "localhost:${3:-18082}/metrics" | python3 -c "
import sys
name, q = sys.argv[1], float(sys.argv[2])
b = [(float(l.split('le=\"')[1].split('\"')[0]), int(l.split()[-1])) for l in sys.stdin if l.startswith(name + '_bucket') and '+Inf' not in l]
tot = b[-1][1] if b else 0
print('n/a' if tot == 0 else next(('%g ms' % (le * 1e3) for le, c in b if c >= q * tot), '> %g ms' % (b[-1][0] * 1e3)))
" "$1" "$2"
}
