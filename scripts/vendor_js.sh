#!/usr/bin/env bash
# Reproduce src/evalserve/server/static/vendor/ from the npm registry (no CDN at run time, no
# build step): each package is fetched at its pinned version with `npm pack`, and only its
# minified browser file and its licence are kept.
set -euo pipefail

CHARTJS_VERSION=4.6.1
PAPAPARSE_VERSION=5.5.3

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/src/evalserve/server/static/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

mkdir -p "$dest"
(cd "$work" && npm pack --silent "chart.js@$CHARTJS_VERSION" >/dev/null && tar xzf "chart.js-$CHARTJS_VERSION.tgz")
cp "$work/package/dist/chart.umd.min.js" "$dest/chart.umd.min.js"
cp "$work/package/LICENSE.md" "$dest/chart.js.LICENSE.md"
rm -rf "$work/package"
(cd "$work" && npm pack --silent "papaparse@$PAPAPARSE_VERSION" >/dev/null && tar xzf "papaparse-$PAPAPARSE_VERSION.tgz")
cp "$work/package/papaparse.min.js" "$dest/papaparse.min.js"
cp "$work/package/LICENSE" "$dest/papaparse.LICENSE"
printf 'chart.js %s (npm), dist/chart.umd.min.js\npapaparse %s (npm), papaparse.min.js\n' \
  "$CHARTJS_VERSION" "$PAPAPARSE_VERSION" > "$dest/VERSIONS"
echo "vendored chart.js $CHARTJS_VERSION and papaparse $PAPAPARSE_VERSION into $dest"
