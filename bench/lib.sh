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

# apt_install_missing PACKAGE...: installs with apt-get those of PACKAGE whose command (the
# same name; `time` for /usr/bin/time) is missing; sudo when not root.
apt_install_missing() {
  local need=() p
  for p in "$@"; do
    case "$p" in
      time) [ -x /usr/bin/time ] || need+=(time) ;;
      *) command -v "$p" >/dev/null || need+=("$p") ;;
    esac
  done
  [ ${#need[@]} -gt 0 ] || return 0
  echo "== installing ${need[*]}"
  local sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
}

# build_release: pcapd and gencap in release; sets $pcapd (PCAPD=path overrides) and $gencap,
# and checks BASE (an earlier build to compare with) when given.
build_release() {
  echo "== building (release)"
  cargo build --release --bin pcapd --example gencap 2>&1 | grep -v -E '^\s*(Compiling|Finished)' || true
  pcapd=${PCAPD:-target/release/pcapd}
  gencap=target/release/examples/gencap
  if [ -n "${base:-}" ] && [ ! -x "$base" ]; then
    echo "BASE=$base is not an executable" >&2
    exit 2
  fi
}
