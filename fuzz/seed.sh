#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the webhook payloads in tests/fixtures/corpus
# (real GitHub/octokit examples). Run from fuzz/ before the first `cargo fuzz run`.
set -euo pipefail
cd "$(dirname "$0")"
webhooks=../tests/fixtures/corpus/webhooks
mkdir -p corpus/signature corpus/headers corpus/event
# event: byte 0 picks the event name (its index in src/lib.rs EVENTS), byte 1 even = raw bytes.
mapfile -t events < <(sed -n '/^pub const EVENTS/,/^];/p' src/lib.rs | grep -o '"[a-z_]*"' | tr -d '"')
for i in "${!events[@]}"; do
  for file in "$webhooks/${events[$i]}"/*.json; do
    [ -e "$file" ] || continue
    { printf "\\x$(printf %02x "$i")\\x00"; cat "$file"; } > "corpus/event/${events[$i]}-$(basename "$file")"
  done
done
# installation_target has no corpus payload: GitHub's documented shape, by hand.
printf '\x01\x00{"action":"renamed","account":{"id":5,"login":"new-name","node_id":"U_5","type":"User"},"changes":{"login":{"from":"old-name"}},"target_type":"User","installation":{"id":9}}' \
  > corpus/event/installation_target-renamed.json
# signature and headers take structured input (arbitrary): the raw payloads are
# still useful bytes to start from.
for file in "$webhooks"/*/*.json; do
  name="$(basename "$(dirname "$file")")-$(basename "$file")"
  cp "$file" "corpus/signature/$name"
  cp "$file" "corpus/headers/$name"
done
echo "seeded: $(ls corpus/event | wc -l) event, $(ls corpus/headers | wc -l) headers, $(ls corpus/signature | wc -l) signature"
