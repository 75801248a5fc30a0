#!/bin/sh
# curl_loop: the second client of the Remus network tests (runs natively in the test's netns: ip netns exec NS sh
# curl_loop.sh URL STOPFILE). One fresh curl per request to URL until STOPFILE exists; each answer's body goes to stdout
# as is; a connect failure (curl exit 7: nothing was sent, as while the tap is being created again) is counted and
# retried; any other failure (reset, timeout, HTTP error) is a failed request, reported on stderr. Ends with the lines
# curl_ok=N curl_failed=N curl_connect_errors=N. Exit 0 when nothing failed.
url="$1"
stop="$2"
ok=0
failed=0
connect_errors=0
while [ ! -e "$stop" ]; do
  body=$(curl -sS -f --connect-timeout 30 --max-time 40 "$url" 2>"$stop.err")
  rc=$?
  case $rc in
    0) printf '%s\n' "$body"; ok=$((ok + 1)) ;;
    7) connect_errors=$((connect_errors + 1)); sleep 0.05 ;;
    *) failed=$((failed + 1)); echo "curl_error exit $rc: $(cat "$stop.err")" >&2 ;;
  esac
done
rm -f "$stop.err"
echo "curl_ok=$ok"
echo "curl_failed=$failed"
echo "curl_connect_errors=$connect_errors"
[ "$failed" -eq 0 ]
