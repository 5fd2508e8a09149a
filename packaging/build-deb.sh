#!/usr/bin/env bash
# Builds the Debian package: target/debian/pcapd_<version>-1_<arch>.deb.
#
#   bash packaging/build-deb.sh
#
# Needs cargo-deb (`cargo install cargo-deb`; tests/setup.sh installs it) and dpkg-dev. The
# release binary is built first; then it generates what the package ships besides itself
# (man pages, shell completions, the packaged /etc/pcapd/pcapd.cfg) into target/deb-assets/,
# and `cargo deb --no-build` packs the assets listed in Cargo.toml's
# [package.metadata.deb]. Check the result with `lintian target/debian/*.deb`.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-deb >/dev/null || { echo "build-deb.sh: cargo-deb is missing: cargo install cargo-deb --locked" >&2; exit 1; }

cargo build --release --locked --bin pcapd
pcapd=target/release/pcapd
assets=target/deb-assets
rm -rf "$assets"
mkdir -p "$assets/man" "$assets/completions"

# Man pages from the clap definitions and the config key table, compressed as Debian wants.
"$pcapd" manpages "$assets/man" >/dev/null
gzip -9n "$assets"/man/*

"$pcapd" completions bash >"$assets/completions/pcapd"
"$pcapd" completions zsh >"$assets/completions/_pcapd"
"$pcapd" completions fish >"$assets/completions/pcapd.fish"

# /etc/pcapd/pcapd.cfg: the sample, with the credentials postinst makes switched on.
credentials=/etc/pcapd/credentials
{
    printf '## Installed by the pcapd Debian package. The package turned on sslcert, sslkey and\n'
    printf '## password_file below: its postinst made them in %s (self-signed\n' "$credentials"
    printf '## certificate for localhost, random password). Replace them with your own as needed.\n##\n'
    "$pcapd" sample-config |
        sed -e "s|^#sslcert =\$|sslcert = $credentials/cert.pem|" \
            -e "s|^#sslkey =\$|sslkey = $credentials/key.pem|" \
            -e "0,/^#password_file =\$/s|^#password_file =\$|password_file = $credentials/password|"
} >"$assets/pcapd.cfg"

# --strip: the release profile keeps line tables for backtraces; the package ships without.
cargo deb --no-build --locked --strip "$@"
