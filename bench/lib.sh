# Shared by the benchmark scripts (source it).

# write_doc_section NAME REPORT: puts REPORT (which starts with `<!-- NAME:start` and ends with
# `<!-- NAME:end -->`) into docs/benchmarks.md, replacing the previous section of that name and
# keeping everything else.
write_doc_section() {
  local name=$1 report=$2 doc=docs/benchmarks.md
  mkdir -p docs
  [ -f "$doc" ] || printf '# Benchmarks\n\n' > "$doc"
  if grep -q "<!-- $name:start" "$doc"; then
    awk -v report="$report" -v start="<!-- $name:start" -v end="<!-- $name:end" '
      index($0, start) == 1 { print report; skip = 1; next }
      index($0, end) == 1 { skip = 0; next }
      !skip { print }' "$doc" > "$doc.tmp"
    mv "$doc.tmp" "$doc"
  else
    printf '\n%s\n' "$report" >> "$doc"
  fi
}
